"""Choose the spread and the domain score on validation rows; report them on test rows.

Reads the member outputs that ``ensemble_study.py`` stored for each regression data set and
replicate of the shared scaffold splits, and compares:

- spreads: the network's own (variance head, and with several members their disagreement),
  1 - Tanimoto similarity, latent distance, and error models fitted on validation residuals from
  these inputs (:mod:`molpred.trust.error_model`); judged by Spearman(|error|, spread);
- domain scores: similarity, latent distance, expected error, and similarity or expected
  error; judged by MAE out of domain / MAE in domain at the threshold each rule picks on
  validation rows;
- ensembles of 1 and 4 members: test RMSE.

Every choice is made on validation rows (the error models' validation Spearman is cross-fitted:
each molecule's sigma comes from a model fitted without it); test rows are only reported.

Usage::

    python benchmarks/ensemble_choice.py benchmarks/results/ensemble_study_small.zip \\
        benchmarks/results/ensemble_study.zip --out benchmarks/results/ensemble_choice.json
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from molpred.trust.domain import choose_threshold
from molpred.trust.error_model import cross_fitted_sigma, error_features, fit_task

ROOT = Path(__file__).resolve().parent.parent
SPREAD_INPUTS = {
    "network": [0],
    "dissimilarity": [1],
    "latent": [2],
    "network+dissimilarity": [0, 1],
    "all three": [0, 1, 2],
}


def load(paths: list[str]) -> dict[str, tuple[dict, dict]]:
    runs = {}
    for path in paths:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(".json"):
                    info = json.loads(z.read(name))
                    if info["members"] and info["task_types"] == ["regression"]:
                        arrays = dict(np.load(io.BytesIO(z.read(name[:-5] + ".npz"))))
                        runs[name[:-5]] = (info, arrays)
    return runs


def part(arrays: dict, info: dict, which: str, keys: list[str]) -> dict[str, np.ndarray]:
    values = np.stack([arrays[f"{which}_{k}_value"][:, 0] for k in keys], 1)
    variances = np.stack([arrays[f"{which}_{k}_var"][:, 0] for k in keys], 1)
    latent = arrays[f"{which}_{keys[0]}_latent"]  # the model's representation: its first member
    mean = values.mean(1)
    spread = np.sqrt(variances.mean(1) + values.var(1))
    y = arrays[f"{which}_y"][:, 0]
    return {
        "y": y,
        "mean": mean,
        "error": np.abs(y - mean),
        "x": error_features(spread, arrays[f"{which}_sim"], latent),
    }


def rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def ratio(error: np.ndarray, out: np.ndarray) -> float:
    return float(error[out].mean() / error[~out].mean()) if out.any() and (~out).any() else np.nan


def evaluate(info: dict, arrays: dict, n_members: int) -> dict:
    keys = [m["key"] for m in info["members"] if m["hidden"] == 200][:n_members]
    val, test = (part(arrays, info, w, keys) for w in ("val", "test"))
    row = {
        "dataset": info["dataset"],
        "replicate": info["replicate"],
        "members": len(keys),
        "test_rmse": float(np.sqrt(np.mean((test["y"] - test["mean"]) ** 2))),
    }
    r_val = val["y"] - val["mean"]
    sigmas = {}
    for name, cols in SPREAD_INPUTS.items():
        model = fit_task(val["x"][:, cols], r_val)
        oof = cross_fitted_sigma(val["x"][:, cols], r_val)
        sigmas[name] = (oof, model.sigma(test["x"][:, cols]))
        row[f"spread/{name}/val"] = rho(val["error"], oof)
        row[f"spread/{name}/test"] = rho(test["error"], sigmas[name][1])
    # domain rules: a threshold on validation rows, then the out/in MAE ratio on test rows
    sim_v, sim_t = 1 - val["x"][:, 1], 1 - test["x"][:, 1]
    err_v, err_t = np.log(sigmas["all three"][0]), np.log(sigmas["all three"][1])
    lat_v, lat_t = val["x"][:, 2], test["x"][:, 2]
    flags = {}
    for name, (v, t) in {
        "similarity": (sim_v, sim_t),
        "latent": (-lat_v, -lat_t),
        "expected error": (-err_v, -err_t),
    }.items():
        c = choose_threshold(v, val["error"])
        flags[name] = (v < c["threshold"], t < c["threshold"])
    flags["similarity or expected error"] = tuple(
        a | b for a, b in zip(flags["similarity"], flags["expected error"], strict=True)
    )
    for name, (v, t) in flags.items():
        row[f"domain/{name}/val"] = ratio(val["error"], v)
        row[f"domain/{name}/test"] = ratio(test["error"], t)
        row[f"domain/{name}/flagged_test"] = float(t.mean())
    return row


def table(rows: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = [c for c in df.columns if c.startswith(("spread/", "domain/")) and "flagged" not in c]
    means = df.groupby(["members", "dataset"])[["test_rmse", *cols]].mean()
    lines = ["| members | data set | choice | validation | test |", "|---|---|---|---|---|"]
    for (members, dataset), r in means.iterrows():
        lines.append(f"| {members} | {dataset} | test RMSE | | {r['test_rmse']:.3f} |")
        for c in cols:
            if c.endswith("/val"):
                base = c[: -len("/val")]
                lines.append(
                    f"| {members} | {dataset} | {base} | {r[c]:.2f} | {r[base + '/test']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archives", nargs="+")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ensemble_choice.json"))
    args = ap.parse_args()
    rows = []
    for _key, (info, arrays) in sorted(load(args.archives).items()):
        for n in (1, 4):
            if sum(m["hidden"] == 200 for m in info["members"]) >= n:
                rows.append(evaluate(info, arrays, n))
    out = Path(args.out)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    md = table(rows)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
