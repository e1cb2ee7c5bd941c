"""Evaluate a trained model on labeled data: accuracy, uncertainty quality, and error as a
function of applicability-domain similarity (``molpred evaluate``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.artifact import MolpredModel
from molpred.chunks import Prepared
from molpred.data import prepare_dataset
from molpred.io import DataError, atomic_path, read_table
from molpred.metrics import compute_metrics
from molpred.predictor import Predictor
from molpred.trust.uncertainty import calibration_error, uncertainty_metrics

__all__ = ["evaluate_model", "SIMILARITY_BINS", "plot_error_by_similarity"]

SIMILARITY_BINS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0001)


def evaluate_model(
    model: MolpredModel,
    data: pd.DataFrame | str | Path,
    smiles_column: str | None = None,
    target_columns: Sequence[str] | None = None,
    *,
    confidence: float = 0.9,
) -> dict:
    """Metrics of ``model`` on a labeled table.

    Returns a dict with ``metrics`` (as in training: per task and averaged), ``uncertainty``
    (per task: Spearman of |error| vs spread, miscalibration area, conformal coverage and width
    for regression; set coverage and mean set size for classification), ``by_similarity`` (rows
    of a table: similarity bin, molecules, mean absolute error per task) and ``in_domain`` /
    ``out_of_domain`` errors, plus ``n_molecules`` and ``n_problems``. ``target_columns``
    pair with the model's tasks in order, unless they are the tasks' own names (then by name).
    """
    targets = list(target_columns or model.task_names)
    if len(targets) != len(model.task_names):
        raise DataError(
            f"the model predicts {len(model.task_names)} task(s), "
            f"got {len(targets)} target column(s)"
        )
    if sorted(targets) == sorted(model.task_names):  # the tasks' own names: pair by name
        targets = list(model.task_names)
    df = read_table(data) if not isinstance(data, pd.DataFrame) else data
    ds = prepare_dataset(
        df, smiles_column, targets, model.task_types, standardization=model.standardization
    )
    predictor = Predictor(model, confidence=confidence, batch_size=512)
    prepared = Prepared({model.standardization: ds.featurized()})
    frame = predictor.score(prepared, [""] * len(ds))
    schema = predictor.schema.models[0]
    preds = frame[[t.value for t in schema.tasks]].to_numpy(dtype=np.float64)
    y = ds.targets.astype(np.float64)
    report: dict = {
        "metrics": compute_metrics(ds.targets, preds, model.task_names, model.task_types),
        "n_molecules": len(ds),
        "n_problems": len(ds.problems),
        "confidence": confidence,
    }
    unc: dict[str, dict[str, float]] = {}
    for t, task in enumerate(schema.tasks):
        spread = frame[task.std].to_numpy(dtype=np.float64)
        if task.kind == "regression":
            unc[task.task] = uncertainty_metrics(
                y[:, t],
                preds[:, t],
                spread,
                frame[task.lower].to_numpy(np.float64),
                frame[task.upper].to_numpy(np.float64),
            )
        elif task.set:
            mask = ~np.isnan(y[:, t])
            sets = frame[task.set].to_numpy()[mask]
            truth = y[mask, t].astype(int).astype(str)
            unc[task.task] = {
                "n": float(mask.sum()),
                "coverage": float(
                    np.mean([s in c.split(",") for s, c in zip(truth, sets, strict=True)])
                ),
                "mean_set_size": float(np.mean([len(c.split(",")) if c else 0 for c in sets])),
                "calibration_error": calibration_error(y[mask, t], preds[mask, t]),
            }
    report["uncertainty"] = unc
    if schema.domain:
        sim = frame[schema.similarity].to_numpy(dtype=np.float64)
        abs_err = np.abs(preds - y)
        report["by_similarity"] = _by_similarity(sim, abs_err, model.task_names)
        flag = frame[schema.in_domain].to_numpy(dtype=bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            labeled = ~np.isnan(y).all(axis=1)  # n counts what the errors rest on
            for key, sel in (("in_domain", flag), ("out_of_domain", ~flag)):
                report[key] = {
                    "n": int((sel & labeled).sum()),
                    **{
                        f"{name}/mae": float(np.nanmean(abs_err[sel, t])) if sel.any() else None
                        for t, name in enumerate(model.task_names)
                    },
                }
        report["domain_threshold"] = model.domain.threshold if model.domain else None
    return report


def _by_similarity(sim: np.ndarray, abs_err: np.ndarray, tasks: Sequence[str]) -> list[dict]:
    rows = []
    edges = SIMILARITY_BINS
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (sim >= lo) & (sim < hi)
        labeled = int((sel & ~np.isnan(abs_err).all(axis=1)).sum())
        row: dict = {"similarity": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n": labeled}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for t, name in enumerate(tasks):
                row[f"{name}/mae"] = float(np.nanmean(abs_err[sel, t])) if sel.any() else None
        rows.append(row)
    return rows


def plot_error_by_similarity(report: dict, path: str | Path) -> Path:
    """Bar chart of mean absolute error per similarity bin (one series per task), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.get("by_similarity")
    if not rows:
        raise DataError("the model has no applicability domain to plot (old model file?)")
    table = pd.DataFrame(rows).set_index("similarity")
    series = [c for c in table.columns if c.endswith("/mae")]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    table[series].plot.bar(ax=ax, legend=len(series) > 1)
    for i, n in enumerate(table["n"]):
        ax.annotate(
            f"n={n}", (i, 0), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8
        )
    ax.set_xlabel("max Tanimoto similarity to the training set")
    ax.set_ylabel("mean absolute error")
    ax.set_title("Error by similarity to the training set")
    fig.tight_layout()
    with atomic_path(path) as tmp:  # a crash never leaves a half-written image
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(path)
