"""Do molpred's uncertainty and applicability-domain outputs hold up on real scaffold splits?

For each data set and replicate of ``../shared/splits``, train molpred with its defaults (no
flags: variance head, temperature scaling, conformal calibration and domain come for free) and
evaluate the test split with :func:`molpred.evaluate.evaluate_model`: empirical coverage of the
90% conformal intervals / prediction sets, Spearman of |error| vs predicted spread,
miscalibration area, and error in vs out of the applicability domain. Also records what the
trust outputs cost: calibration time at training, and scoring time with and without the
domain columns.

Usage::

    python benchmarks/trust.py                       # esol freesolv lipo bbbp, 3 replicates
    python benchmarks/trust.py --datasets esol --replicates 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.evaluate import evaluate_model
from molpred.predict import predict
from molpred.train import train

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ROOT.parent / "shared" / "splits"
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"


def run(name: str, rep: int, confidence: float, workdir: Path) -> dict:
    manifest = json.loads((SPLITS / "manifest.json").read_text())[name]
    df = pd.read_csv(SPLITS / "clean" / f"{name}.csv")
    split = json.loads((SPLITS / f"{name}.json").read_text())[rep]
    targets, task = manifest["targets"], manifest["task"]
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "split.json").write_text(json.dumps([split]))
    start = time.perf_counter()
    model, metrics = train(
        df,
        "smiles",
        targets,
        task_types=task,
        progress=False,
        splits_file=workdir / "split.json",
        cache_dir=None,
    )
    seconds = time.perf_counter() - start
    fit_seconds = sum(m["seconds"] for m in metrics["members"])
    report = evaluate_model(model, df.iloc[split["test"]], "smiles", targets, confidence=confidence)
    unc = report["uncertainty"]
    row = {
        "dataset": name,
        "replicate": rep,
        "task": task,
        "confidence": confidence,
        "coverage": float(np.mean([u["coverage"] for u in unc.values()])),
        "n_test": report["n_molecules"],
        "metric": report["metrics"].get("rmse", report["metrics"].get("roc_auc")),
        "train_seconds": seconds,
        "fit_seconds": fit_seconds,
        "domain_threshold": report.get("domain_threshold"),
        "in_domain": report.get("in_domain"),
        "out_of_domain": report.get("out_of_domain"),
        "by_similarity": report.get("by_similarity"),
    }
    flagged = [k for k in (report.get("out_of_domain") or {}) if k.endswith("/mae")]
    ratios = [
        report["out_of_domain"][k] / report["in_domain"][k]
        for k in flagged
        if report["out_of_domain"][k] is not None and report["in_domain"][k]
    ]
    row["domain_mae_ratio"] = float(np.mean(ratios)) if ratios else None
    if task == "regression":
        row["width_ratio_90_10"] = float(np.mean([u["width_ratio_90_10"] for u in unc.values()]))
        row["spearman"] = float(np.nanmean([u["spearman"] for u in unc.values()]))
        row["miscalibration_area"] = float(
            np.mean([u["miscalibration_area"] for u in unc.values()])
        )
    else:
        row["mean_set_size"] = float(np.mean([u["mean_set_size"] for u in unc.values()]))
        row["calibration_error"] = float(np.nanmean([u["calibration_error"] for u in unc.values()]))
    if rep == 0:
        library = pd.read_csv(LIBRARY, nrows=5000).iloc[:, 0].tolist()
        timing = {}
        for domain in (False, True):
            start = time.perf_counter()
            predict(model, library, domain=domain, workers=1)
            timing[domain] = time.perf_counter() - start
        row["scoring_seconds_5k"] = {"without_domain": timing[False], "with_domain": timing[True]}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["esol", "freesolv", "lipo", "bbbp"])
    ap.add_argument("--replicates", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "trust.json"))
    args = ap.parse_args()
    rows = []
    for name in args.datasets:
        for rep in args.replicates:
            row = run(name, rep, args.confidence, ROOT / "benchmarks" / "runs" / "trust" / name)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "by_similarity"}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2, default=float) + "\n")
    table = summary(pd.DataFrame(rows))
    out.with_suffix(".md").write_text(table)
    print(table)


def summary(df: pd.DataFrame) -> str:
    lines = [
        "| data set | replicates | target coverage | coverage (mean ± sd) | Spearman "
        "abs(err) vs sd | interval width p90/p10 | miscalibration area | calibration error "
        "(ECE) | MAE out / in domain (mean) | MAE in / out of domain (rep 0) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in df.groupby("dataset", sort=False):
        first = g.iloc[0]
        task0 = [k for k in (first["in_domain"] or {}) if k.endswith("/mae")]
        in_out = "n/a"
        if task0:
            a, b = first["in_domain"][task0[0]], first["out_of_domain"][task0[0]]
            in_out = f"{a:.3f} (n={first['in_domain']['n']}) / " + (
                f"{b:.3f} (n={first['out_of_domain']['n']})" if b is not None else "none flagged"
            )
        spearman = _mean(g, "spearman", "{:.2f}")
        misc = _mean(g, "miscalibration_area", "{:.3f}")
        width = _mean(g, "width_ratio_90_10", "{:.2f}")
        ece = _mean(g, "calibration_error", "{:.3f}")
        ratio = _mean(g, "domain_mae_ratio", "{:.2f}x")
        lines.append(
            f"| {name} | {len(g)} | {g['confidence'].iloc[0]:.2f} | "
            f"{g['coverage'].mean():.3f} ± {g['coverage'].std(ddof=0):.3f} | {spearman} "
            f"| {width} | {misc} | {ece} | {ratio} | {in_out} |"
        )
    return "\n".join(lines) + "\n"


def _mean(g: pd.DataFrame, column: str, fmt: str) -> str:
    if column not in g or not g[column].notna().any():
        return "n/a"
    return fmt.format(g[column].mean())


if __name__ == "__main__":
    main()
