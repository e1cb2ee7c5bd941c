"""Does a gradient-boosted tree model on molpred's own features, blended with the network, beat
chemprop and the forest baseline? (issue #17's accuracy goal)

Per data set and shared scaffold replicate: molpred's default network (train rows, validation
rows for early stopping) and LightGBM on the features molpred already computes for every
molecule (the 2,048-bit Morgan fingerprint of the domain columns and the model's RDKit
descriptors; train rows, early stopping on validation rows). The blend weight
``w * network + (1 - w) * trees`` is chosen on the validation rows only (grid of 0.05); the
test rows score the network, the trees and the blend.

Usage::

    python benchmarks/blend_study.py [--sets esol bbbp ...] [--replicates 0 1 2] --out FILE
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
from accuracy import dataset  # benchmarks/accuracy.py, beside this script
from sklearn.metrics import mean_squared_error, roc_auc_score

from molpred import predict, train
from molpred.features import featurize_smiles
from molpred.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SETS = ("esol", "freesolv", "lipo", "bbbp", "bace", "clintox", "tox21", "sider")
WEIGHTS = np.round(np.arange(0.0, 1.0001, 0.05), 2)


def tree_features(smiles: list[str]) -> np.ndarray:
    feats = featurize_smiles(smiles)
    bits = np.unpackbits(feats.fingerprints, axis=1).astype(np.float32)
    return np.hstack([bits, feats.descriptors.astype(np.float32)])


def metric(y: np.ndarray, p: np.ndarray, task: str) -> float:
    """Mean over tasks of RMSE (regression) or ROC-AUC (classification), labeled rows only."""
    scores = []
    for t in range(y.shape[1]):
        ok = ~np.isnan(y[:, t])
        if task == "classification":
            if len(np.unique(y[ok, t])) < 2:
                continue
            scores.append(roc_auc_score(y[ok, t], p[ok, t]))
        else:
            scores.append(mean_squared_error(y[ok, t], p[ok, t]) ** 0.5)
    return float(np.mean(scores))


def fit_trees(x, y, task, train_rows, val_rows, seed=0):
    """One LightGBM model per task; predictions for every row (NaN where a task never trained)."""
    preds = np.full((len(x), y.shape[1]), np.nan)
    for t in range(y.shape[1]):
        tr = train_rows[~np.isnan(y[train_rows, t])]
        va = val_rows[~np.isnan(y[val_rows, t])]
        params = dict(
            n_estimators=2000,
            learning_rate=0.03,
            num_leaves=31,
            min_child_samples=5,
            colsample_bytree=0.3,
            subsample=0.8,
            subsample_freq=1,
            reg_lambda=1.0,
            random_state=seed,
            n_jobs=2,
            verbose=-1,
        )
        stop = [lgb.early_stopping(100, verbose=False)]
        if task == "classification":
            if len(np.unique(y[tr, t])) < 2 or len(np.unique(y[va, t])) < 2:
                preds[:, t] = np.nanmean(y[tr, t])
                continue
            model = lgb.LGBMClassifier(**params)
            model.fit(x[tr], y[tr, t].astype(int), eval_set=[(x[va], y[va, t])], callbacks=stop)
            preds[:, t] = model.predict_proba(x)[:, 1]
        else:
            model = lgb.LGBMRegressor(**params)
            model.fit(x[tr], y[tr, t], eval_set=[(x[va], y[va, t])], callbacks=stop)
            preds[:, t] = model.predict(x)
    return preds


def run(name: str, replicate: int) -> dict:
    df, targets, task, splits = dataset(name)
    split = splits[replicate]
    rows = {k: np.asarray(split[k]) for k in ("train", "val", "test")}
    y = df[targets].to_numpy(dtype=float)
    smiles = df["smiles"].tolist()

    start = time.perf_counter()
    split_file = ROOT / "benchmarks" / "runs" / f"blend_{name}_{replicate}.json"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps([split]))
    model, _ = train(
        df,
        "smiles",
        targets,
        task_types=task,
        train_config=TrainConfig(),
        splits_file=split_file,
        progress=False,
        cache_dir=None,
    )
    net_seconds = time.perf_counter() - start
    net = predict(model, smiles)[targets].to_numpy(dtype=float)

    start = time.perf_counter()
    trees = fit_trees(tree_features(smiles), y, task, rows["train"], rows["val"])
    tree_seconds = time.perf_counter() - start

    val_scores = [
        metric(y[rows["val"]], w * net[rows["val"]] + (1 - w) * trees[rows["val"]], task)
        for w in WEIGHTS
    ]
    pick = int(np.argmax(val_scores) if task == "classification" else np.argmin(val_scores))
    w = float(WEIGHTS[pick])
    test = rows["test"]
    return {
        "set": name,
        "replicate": replicate,
        "task": task,
        "weight": w,
        "test_network": metric(y[test], net[test], task),
        "test_trees": metric(y[test], trees[test], task),
        "test_blend": metric(y[test], w * net[test] + (1 - w) * trees[test], task),
        "test_half": metric(y[test], 0.5 * net[test] + 0.5 * trees[test], task),
        "network_seconds": net_seconds,
        "trees_seconds": tree_seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--replicates", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["set"], r["replicate"]) for r in results}
    for replicate in args.replicates:
        for name in args.sets:
            if (name, replicate) in done:
                continue
            results.append(run(name, replicate))
            print(json.dumps(results[-1]), flush=True)
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
