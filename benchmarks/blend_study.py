"""What the trees blended into every member buy (issue #17's accuracy goal), measured through
``molpred train`` itself.

Per data set and shared scaffold replicate, molpred's default (train rows; validation rows for
early stopping, the trees' early stopping and the blend weight, :mod:`molpred.trees`) is
trained once; its test rows are then scored three ways: the network alone (weight 1), the trees
alone (weight 0) and the default blend (the weight chosen on validation rows).

Usage::

    python benchmarks/blend_study.py [--sets esol bbbp ...] [--replicates 0 1 2] --out FILE
    python benchmarks/blend_study.py --summarize FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from accuracy import dataset, train_default  # benchmarks/accuracy.py, beside this script
from sklearn.metrics import mean_squared_error, roc_auc_score

from molpred import predict

ROOT = Path(__file__).resolve().parent.parent
SETS = ("esol", "freesolv", "lipo", "bbbp", "bace", "clintox", "tox21", "sider")


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


def run(name: str, replicate: int) -> dict:
    df, targets, task, splits = dataset(name)
    split = splits[replicate]
    workdir = ROOT / "benchmarks" / "runs" / f"blend_{name}_{replicate}"
    model, seconds = train_default(df, targets, task, split, workdir)
    test = df.iloc[split["test"]]
    y = test[targets].to_numpy(dtype=float)
    trees = model.members[0].trees
    chosen = 1.0 if trees is None else trees.weight  # None: the network alone was chosen
    scores = {"test_trees": float("nan")}
    for label, weight in (("network", 1.0), ("trees", 0.0), ("blend", chosen)):
        if trees is None and label == "trees":
            continue
        if trees is not None:
            trees.weight = weight
        preds = predict(model, test["smiles"].tolist())[targets].to_numpy(dtype=float)
        scores[f"test_{label}"] = metric(y, preds, task)
    if trees is not None:
        trees.weight = chosen
    boosters = [] if trees is None else [b for b in trees.boosters if b is not None]
    member = model.info.metrics["members"][0]
    return {
        "set": name,
        "replicate": replicate,
        "task": task,
        "weight": chosen,
        **scores,
        "seconds": seconds,
        "seconds_to_best": member["seconds_to_best"],
        "trees_per_task": [b.num_trees() for b in boosters],
    }


def summarize(files: list[Path]) -> str:
    """Markdown: per data set the mean over replicates of the network alone, the trees alone
    and the blend, beside chemprop's and the forest's means from ``results/accuracy.json``
    (the same replicates)."""
    rows = pd.DataFrame([r for f in files for r in json.loads(f.read_text())])
    refs = pd.DataFrame(json.loads((ROOT / "benchmarks/results/accuracy.json").read_text()))
    lines = [
        "| data set | metric | replicates | network | trees | blend (default) | weight | "
        "chemprop | forest | blend beats both |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SETS:
        mine = rows[rows["set"] == name]
        if mine.empty:
            continue
        reps = sorted(mine["replicate"])
        ref = refs[(refs["dataset"] == name) & refs["replicate"].isin(reps)]
        tools = {t: ref[ref["tool"] == t]["value"].mean() for t in ("chemprop", "forest")}
        higher = mine["task"].iloc[0] == "classification"
        blend = mine["test_blend"].mean()
        beats = all((blend > v) if higher else (blend < v) for v in tools.values())
        lines.append(
            f"| {name} | {'ROC-AUC' if higher else 'RMSE'} | {len(reps)} | "
            f"{mine['test_network'].mean():.3f} | {mine['test_trees'].mean():.3f} | "
            f"{blend:.3f} | {mine['weight'].mean():.2f} | {tools['chemprop']:.3f} | "
            f"{tools['forest']:.3f} | {'yes' if beats else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--replicates", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--summarize", nargs="+", type=Path)
    args = ap.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return
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
