"""On which scale to learn plasma protein binding: % bound, or log10 of the unbound fraction?

Half of PharmaBench's PPB rows are more than 95% bound and a fifth more than 99%, where what
matters (the free drug) differs fivefold between 95% and 99% bound while % bound moves by 4.
The same default model is cross-validated on the same scaffold folds (5) of the bundled data
twice: learning % bound (as the panel first shipped) and learning log10(fu) (fu = 1 - fraction
bound, floored at 0.1%). Every molecule's out-of-fold prediction is then scored on both scales
(each model's prediction converted to the other's), and on the highly bound molecules alone.
Spearman does not depend on the scale, so it compares the two directly.

Usage::

    python benchmarks/ppb_scale.py       # about 10 min on 2 cores
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
from report import save_result  # benchmarks/report.py, beside this script
from scipy.stats import spearmanr

from molpred.data import prepare_dataset
from molpred.predict import predict
from molpred.pretrained.endpoints import ENDPOINTS, MIN_UNBOUND, endpoint_table
from molpred.pretrained.panel import PANEL
from molpred.splits import make_splits
from molpred.train import train

ROOT = Path(__file__).resolve().parent.parent
FOLDS = 5
HIGH = 0.9  # "highly bound": at least 90% bound


def out_of_fold(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each molecule's prediction by the fold model that did not train on it, its label, and
    the molecules (as training merged them)."""
    prepared = PANEL["ppb"].standardization  # as the shipped panel model prepares structures
    ds = prepare_dataset(
        table, "smiles", ["y"], ["regression"], workers=1, cache_dir=None, standardization=prepared
    )
    model, _ = train(
        table, "smiles", ["y"], task_types="regression", split="scaffold-kfold", folds=FOLDS,
        progress=False, cache_dir=None, standardization=prepared,
    )  # fmt: skip
    folds = make_splits(ds, "scaffold-kfold", folds=FOLDS, seed=0)  # train()'s folds
    pred = np.full(len(ds), np.nan)
    for k, fold in enumerate(folds):
        member = copy.copy(model)
        member.members = [model.members[k]]
        smiles = [ds.smiles[i] for i in fold.test]
        pred[fold.test] = predict(member, smiles, domain=False)["y"].to_numpy()
    return pred, ds.targets[:, 0].astype(float), list(ds.smiles)


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(pred) & np.isfinite(true)
    err = pred[ok] - true[ok]
    return {
        "rmse": round(float(np.sqrt(np.mean(err**2))), 3),
        "mae": round(float(np.mean(np.abs(err))), 3),
        "spearman": round(float(spearmanr(pred[ok], true[ok]).statistic), 3),
    }


def main() -> None:
    start = time.perf_counter()
    log_fu = endpoint_table(ENDPOINTS["log10_fu"]).rename(columns={"log10_fu": "y"})
    percent = log_fu.assign(y=100 * (1 - 10 ** log_fu["y"]))  # the same rows, % bound
    pred_pct, true_pct, mols_pct = out_of_fold(percent)
    pred_log, true_log, mols_log = out_of_fold(log_fu)
    assert mols_pct == mols_log  # the same molecules and folds for both
    as_log = np.log10(np.clip(1 - pred_pct / 100, MIN_UNBOUND, 1))  # % model on the log scale
    as_pct = 100 * (1 - 10**pred_log)
    high = true_pct >= 100 * HIGH
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "molecules": len(true_log),
        "highly_bound": int(high.sum()),
        "folds": FOLDS,
        "learned_percent_bound": {
            "on_percent_bound": scores(pred_pct, true_pct),
            "on_log10_fu": scores(as_log, true_log),
            "on_log10_fu_highly_bound": scores(as_log[high], true_log[high]),
        },
        "learned_log10_fu": {
            "on_percent_bound": scores(as_pct, true_pct),
            "on_log10_fu": scores(pred_log, true_log),
            "on_log10_fu_highly_bound": scores(pred_log[high], true_log[high]),
        },
        "seconds": round(time.perf_counter() - start),
    }
    save_result(result, ROOT / "benchmarks" / "results" / "ppb_scale.json")


if __name__ == "__main__":
    main()
