"""Per-task metrics with missing labels (NaN) masked out, plus their averages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["compute_metrics", "primary_metric", "primary_score", "HIGHER_IS_BETTER"]

HIGHER_IS_BETTER = {
    "rmse": False,
    "mae": False,
    "r2": True,
    "roc_auc": True,
    "pr_auc": True,
    "loss": False,
}


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    err = p - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
    }


def _classification(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if len(np.unique(y)) < 2:  # undefined with one class present
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    # imported here: scikit-learn takes ~1 s to import, which every `molpred predict` paid
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p))}


def compute_metrics(
    targets: np.ndarray, preds: np.ndarray, task_names: Sequence[str], task_types: Sequence[str]
) -> dict[str, float]:
    """Metrics per task (``"<task>/<metric>"``) and averaged over tasks (``"<metric>"``).

    Shapes: ``targets, preds [N, T]``; NaN targets are ignored. A task with no labels has no
    entries; a metric a task cannot have (ROC-AUC with one class, R² of one value) is NaN in
    its own entry; both are left out of the averages, so an average may cover fewer tasks
    than another.
    """
    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {}
    targets = np.asarray(targets, dtype=np.float64)  # float32 squares of large errors overflow
    preds = np.asarray(preds, dtype=np.float64)
    for t, (name, kind) in enumerate(zip(task_names, task_types, strict=True)):
        mask = ~np.isnan(targets[:, t])
        if mask.sum() == 0:
            continue
        fn = _regression if kind == "regression" else _classification
        for metric, value in fn(targets[mask, t], preds[mask, t]).items():
            out[f"{name}/{metric}"] = value
            if not np.isnan(value):
                per_metric.setdefault(metric, []).append(value)
    for metric, values in per_metric.items():
        out[metric] = float(np.mean(values))
    return out


def primary_metric(task_types: Sequence[str]) -> str:
    """The metric early stopping and tuning optimize: RMSE, ROC-AUC, or the loss if mixed."""
    kinds = set(task_types)
    if kinds == {"regression"}:
        return "rmse"
    if kinds == {"classification"}:
        return "roc_auc"
    return "loss"


def primary_score(targets: np.ndarray, preds: np.ndarray, task_types: Sequence[str]) -> float:
    """``compute_metrics(...)[primary_metric(task_types)]`` for all-regression (RMSE) or
    all-classification (ROC-AUC) tasks, NaN where no task has one, without scikit-learn's
    per-call overhead: :func:`molpred.trees.choose_weight` scores every candidate weight with it.
    ROC-AUC is the Mann-Whitney statistic of the ranks (ties averaged), as scikit-learn's."""
    from scipy.stats import rankdata

    values = []
    for t, kind in enumerate(task_types):
        mask = ~np.isnan(targets[:, t])
        y = np.asarray(targets[mask, t], dtype=np.float64)
        p = np.asarray(preds[mask, t], dtype=np.float64)
        if kind == "regression":
            if len(y):
                values.append(float(np.sqrt(((p - y) ** 2).mean())))
            continue
        positives = y == 1
        n_pos, n_neg = int(positives.sum()), int((~positives).sum())
        if n_pos and n_neg:
            rank_sum = rankdata(p)[positives].sum()
            values.append(float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))
    return float(np.mean(values)) if values else float("nan")
