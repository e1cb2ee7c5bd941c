"""Which inputs should the expected-error model read? Chosen on validation rows, checked on test.

The error model (:mod:`molpred.trust.error_model`) turns a regression prediction's spread, its
fingerprint dissimilarity to the training set and its latent distance into the expected error.
For a blended member the spread mixes two things: the network's own variance head and the
disagreement between the network and the trees, ``w (1 - w) (network - trees)^2``. This study
asks whether the error model ranks errors better when it reads them apart.

``--dump``: for each data set and shared scaffold replicate, train ``molpred train``'s default
(as ``trust.py`` does) and store, for the validation and test rows, the label, the blend, the
network's and the trees' predictions, the network's variance, the similarity and the latent
distance (``results/error_inputs.npz``). The analysis then fits each candidate error model on
the validation rows and reports Spearman(|error|, sigma): cross-fitted on validation (what
chooses) and on test (what checks).

Usage::

    python benchmarks/error_inputs.py --dump            # esol freesolv lipo, 3 replicates
    python benchmarks/error_inputs.py                   # the table from the stored npz
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from molpred.features import featurize_chunk
from molpred.models import member_outputs
from molpred.train import train
from molpred.trees import tree_features
from molpred.trust.domain import knn_distance, max_similarity
from molpred.trust.error_model import cross_fitted_sigma, fit_task

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ROOT.parent / "shared" / "splits"
OUT = ROOT / "benchmarks" / "results" / "error_inputs.npz"


def _components(model, smiles: list[str], train_fps: np.ndarray) -> dict[str, np.ndarray]:
    """Per molecule (first task): blend, network, trees, network variance (units),
    similarity to the training rows and latent distance (relative to the model's scale)."""
    feats = featurize_chunk(smiles, standardization=model.standardization)
    member = model.members[0]
    blend, blend_var, emb, _ = member_outputs([member], feats, embeddings=True)
    trees_kept, member.trees = member.trees, None
    try:
        network, network_var, _, _ = member_outputs([member], feats)
    finally:
        member.trees = trees_kept
    if trees_kept is not None:
        x = tree_features(feats.fingerprints, feats.descriptors)
        raw = trees_kept.raw(x)[:, 0]
        trees = raw * float(member.y_scale[0]) + float(member.y_mean[0])
        weight = trees_kept.weight
    else:
        trees, weight = network[:, 0, 0].copy(), 1.0
    domain = model.domain
    latent = knn_distance(torch.from_numpy(emb), domain.embeddings.float()) / domain.latent_scale
    return {
        "blend": blend[:, 0, 0],
        "blend_var": blend_var[:, 0, 0],
        "network": network[:, 0, 0],
        "network_var": network_var[:, 0, 0],
        "trees": trees,
        "weight": np.full(len(smiles), weight),
        "similarity": max_similarity(feats.fingerprints, train_fps),
        "latent": latent,
    }


def dump(datasets: list[str], replicates: list[int]) -> None:
    rows: dict[str, list] = {}
    for name in datasets:
        manifest = json.loads((SPLITS / "manifest.json").read_text())[name]
        df = pd.read_csv(SPLITS / "clean" / f"{name}.csv")
        target = manifest["targets"][0]
        for rep in replicates:
            split = json.loads((SPLITS / f"{name}.json").read_text())[rep]
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "split.json"
                path.write_text(json.dumps([split]))
                model, _ = train(
                    df,
                    "smiles",
                    [target],
                    task_types="regression",
                    progress=False,
                    splits_file=path,
                    cache_dir=None,
                )
            train_fps = featurize_chunk(
                df["smiles"].iloc[split["train"]].tolist(), standardization=model.standardization
            ).fingerprints
            for part in ("val", "test"):
                idx = split[part]
                comp = _components(model, df["smiles"].iloc[idx].tolist(), train_fps)
                comp["y"] = df[target].iloc[idx].to_numpy(dtype=np.float64)
                n = len(idx)
                comp["dataset"] = np.full(n, name)
                comp["replicate"] = np.full(n, rep)
                comp["part"] = np.full(n, part)
                for k, v in comp.items():
                    rows.setdefault(k, []).append(np.asarray(v))
            print(f"{name} replicate {rep}: done", flush=True)
    np.savez_compressed(OUT, **{k: np.concatenate(v) for k, v in rows.items()})


def _log(v: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(v, 1e-6))


# candidate inputs, each a function of the stored columns -> [N, k]
CANDIDATES = {
    "current (log spread, dissimilarity, log latent)": lambda d: np.stack(
        [0.5 * _log(d["blend_var"]), 1 - d["similarity"], _log(d["latent"])], 1
    ),
    "network variance, disagreement, dissimilarity, latent": lambda d: np.stack(
        [
            0.5 * _log(d["network_var"]),
            _log(np.abs(d["network"] - d["trees"])),
            1 - d["similarity"],
            _log(d["latent"]),
        ],
        1,
    ),
    "log spread, disagreement, dissimilarity, latent": lambda d: np.stack(
        [
            0.5 * _log(d["blend_var"]),
            _log(np.abs(d["network"] - d["trees"])),
            1 - d["similarity"],
            _log(d["latent"]),
        ],
        1,
    ),
    "disagreement, dissimilarity, latent": lambda d: np.stack(
        [_log(np.abs(d["network"] - d["trees"])), 1 - d["similarity"], _log(d["latent"])], 1
    ),
}


def analyse() -> pd.DataFrame:
    data = dict(np.load(OUT, allow_pickle=False))
    results = []
    for name in dict.fromkeys(data["dataset"]):
        for rep in sorted(set(data["replicate"][data["dataset"] == name])):
            here = (data["dataset"] == name) & (data["replicate"] == rep)
            sel = {part: here & (data["part"] == part) for part in ("val", "test")}
            val = {k: v[sel["val"]] for k, v in data.items()}
            test = {k: v[sel["test"]] for k, v in data.items()}
            r_val, r_test = val["y"] - val["blend"], test["y"] - test["blend"]
            for label, make in CANDIDATES.items():
                x_val, x_test = make(val).astype(np.float64), make(test).astype(np.float64)
                oof = cross_fitted_sigma(x_val, r_val)
                model = fit_task(x_val, r_val)
                ok = np.isfinite(oof)
                results.append(
                    {
                        "dataset": name,
                        "replicate": int(rep),
                        "inputs": label,
                        "val": spearmanr(np.abs(r_val[ok]), oof[ok])[0],
                        "test": spearmanr(np.abs(r_test), model.sigma(x_test))[0],
                    }
                )
    return pd.DataFrame(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", action="store_true", help="train and store the components first")
    ap.add_argument("--datasets", nargs="+", default=["esol", "freesolv", "lipo"])
    ap.add_argument("--replicates", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    if args.dump:
        dump(args.datasets, args.replicates)
    table = analyse()
    means = table.groupby(["inputs", "dataset"])[["val", "test"]].mean().unstack("dataset")
    print(means.round(3).to_string())


if __name__ == "__main__":
    main()
