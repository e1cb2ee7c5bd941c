"""Which trees for small data: the member's boosted trees against random-forest variants.

On replicate 0 of the shared scaffold splits, the training rows are subsampled to 50, 100, 200
and 400 molecules exactly as ``learning_curves.py`` does (same seeds, same 90/10 cut). Tree
models alone, no network, scored on the split's validation rows (held out: no model here sees
them, so they may choose) and on its test rows (reported only):

- ``forest``: the harness's scikit-learn forest (``accuracy.run_forest``) on all the molecules;
- ``gbdt``: what a member fits today (``molpred.trees``): LightGBM boosting on the 90% cut,
  early-stopped on the 10%;
- ``rf``: LightGBM in random-forest mode on the member's own features, on the 90% cut;
- ``rf_all``: the same on all the molecules (what a cross-validation ensemble's pooled
  members see together).

Usage::

    python benchmarks/small_data_trees.py            # 4 sets, 4 sizes, 3 seeds (a few minutes)
    python benchmarks/small_data_trees.py --report
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from molpred.features import featurize_smiles
from molpred.metrics import compute_metrics, primary_metric
from molpred.trees import _PARAMS, _PATIENCE, _ROUNDS, tree_features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import dataset, run_forest  # noqa: E402
from learning_curves import SETS, _cuts, _markdown  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ["forest", "gbdt", "rf", "rf_all"]
RF_PARAMS = {
    "boosting": "rf",
    "bagging_fraction": 0.632,
    "bagging_freq": 1,
    "num_leaves": 1024,
    "min_data_in_leaf": 1,
    "min_sum_hessian_in_leaf": 1e-6,
    "lambda_l2": 0.0,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
    "num_threads": 2,
}


def lgb_fit(x, y, kind, train, val=None, seed=0, rf=False):
    """One LightGBM model per task; predictions (raw scores) for every row of ``x``."""
    out = np.full(y.shape, np.nan)
    for t in range(y.shape[1]):
        tr = train[~np.isnan(y[train, t])]
        if len(np.unique(y[tr, t])) < 2:
            continue
        objective = "binary" if kind == "classification" else "regression"
        if rf:
            share = 1 / 3 if kind == "regression" else 1 / np.sqrt(x.shape[1])
            params = {**RF_PARAMS, "objective": objective, "seed": seed}
            params["feature_fraction_bynode"] = share
            booster = lgb.train(params, lgb.Dataset(x[tr], y[tr, t]), 500)
        else:
            va = val[~np.isnan(y[val, t])]
            params = {**_PARAMS, "objective": objective, "seed": seed, "num_threads": 2}
            train_set = lgb.Dataset(x[tr], y[tr, t])
            val_set = lgb.Dataset(x[va], y[va, t], reference=train_set)
            booster = lgb.train(
                params,
                train_set,
                _ROUNDS,
                valid_sets=[val_set],
                callbacks=[lgb.early_stopping(_PATIENCE, verbose=False)],
            )
        # in random-forest mode LightGBM's raw score is the trees' sum, not their mean
        out[:, t] = booster.predict(x, raw_score=not rf)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output", default=str(RESULTS / "small_data_trees.json"))
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    if args.report:
        report(pd.DataFrame(json.loads(Path(args.output).read_text())))
        return
    records = []
    for name in args.sets:
        df, targets, task, splits = dataset(name)
        split = splits[0]
        feats = featurize_smiles(df["smiles"].tolist())
        x = tree_features(feats.fingerprints, feats.descriptors)
        y = df[targets].to_numpy(dtype=float)
        metric = primary_metric([task] * len(targets))
        for size in args.sizes:
            for seed in args.seeds:
                pool = np.array(split["train"])
                fit_rows = np.random.default_rng(seed).choice(pool, size, replace=False)
                cut = _cuts(fit_rows, seed, 1)[0]
                for method in METHODS:
                    if method == "forest":
                        parts = {}
                        for part in ("val", "test"):
                            s = {"train": list(map(int, fit_rows)), "val": [], "test": split[part]}
                            parts[part] = run_forest(df, targets, task, s, Path("."), None)["preds"]
                    else:
                        rf = method.startswith("rf")
                        train = fit_rows if method == "rf_all" else cut["train"]
                        raw = lgb_fit(x, y, task, train, cut["val"], seed, rf)
                        parts = {part: raw[split[part]] for part in ("val", "test")}
                    record = {"set": name, "size": size, "seed": seed, "method": method}
                    for part, preds in parts.items():
                        rows = split[part]
                        score = compute_metrics(y[rows], preds, targets, [task] * len(targets))
                        record["heldout" if part == "val" else "test"] = score[metric]
                    records.append(record)
                    print(json.dumps(record), flush=True)
        Path(args.output).write_text(json.dumps(records, indent=1))
    report(pd.DataFrame(records))


def report(df: pd.DataFrame) -> None:
    for part in ("heldout", "test"):
        table = df.groupby(["set", "size", "method"], sort=False)[part].mean().unstack("method")
        print(f"\n{part} rows, mean over seeds\n\n{_markdown(table.reset_index())}")


if __name__ == "__main__":
    main()
