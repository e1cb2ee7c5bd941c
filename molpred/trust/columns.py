"""The trust columns of one model's predictions: spread, conformal intervals or prediction
sets, and the applicability domain (names from :mod:`molpred.schema`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from molpred.schema import ModelColumns, TaskColumns
from molpred.trust.uncertainty import prediction_set, regression_interval

__all__ = ["prediction_columns", "interval_columns", "held_inside", "bounded", "Placement"]


def interval_columns(
    task: TaskColumns,
    scores: list[float] | None,
    mean: np.ndarray,
    spread: np.ndarray,
    confidence: float,
) -> dict[str, object]:
    """A task's conformal columns at ``confidence``: bounds (regression; NaN when the model is
    not calibrated) or the prediction set (calibrated classification). Cheap: the page
    recomputes them when the confidence changes."""
    if task.kind == "regression":
        lo, hi = (
            regression_interval(mean, spread, scores, confidence)
            if scores
            else (np.full(len(mean), np.nan),) * 2
        )
        return {task.lower: lo, task.upper: hi}
    if task.set:
        return {task.set: prediction_set(mean, scores, confidence)}
    return {}


def prediction_columns(
    columns: ModelColumns,
    conformal: list[list[float] | None],
    mean: np.ndarray,
    spread: np.ndarray,
    place: Placement | None,
    failed: np.ndarray,
    confidence: float,
) -> dict[str, object]:
    """Column name -> values for one model, in output order.

    ``mean``, ``spread`` ``[N, T]``; ``conformal[t]`` the model's sorted held-out scores of task
    ``t`` (None if uncalibrated); ``place`` where the molecules lie relative to the training set
    (None without a domain); ``failed`` ``[N]`` rows that could not be scored.
    """
    out: dict[str, object] = {}
    for t, task in enumerate(columns.tasks):
        out[task.value] = mean[:, t]
        out[task.std] = spread[:, t]
        out.update(interval_columns(task, conformal[t], mean[:, t], spread[:, t], confidence))
    if columns.domain and place is not None:
        sim = place.similarity.copy()
        sim[failed] = np.nan
        latent = place.latent.copy()
        latent[failed] = np.nan
        out[columns.similarity] = sim
        out[columns.latent] = latent
        in_domain = pd.array(place.in_domain, dtype="boolean")
        in_domain[failed] = pd.NA
        out[columns.in_domain] = in_domain
    return out


def held_inside(mean: np.ndarray, columns: ModelColumns, bounds: dict) -> np.ndarray:
    """``mean`` ``[N, T]`` with each bounded task's values held inside its bounds: the value the
    interval is built around is the value shown (as when the page's slider rebuilds it)."""
    mean = mean.copy()
    for t, task in enumerate(columns.tasks):
        lo, hi = bounds.get(task.task, (None, None))
        if lo is not None or hi is not None:
            mean[:, t] = np.clip(mean[:, t], lo, hi)
    return mean


def bounded(cols: dict, columns: ModelColumns, bounds: dict) -> dict:
    """``cols`` with each bounded task's value and interval held inside its bounds (a bundled
    model's physical limits: :func:`molpred.pretrained.endpoints.value_bounds`)."""
    for task in columns.tasks:
        lo, hi = bounds.get(task.task, (None, None))
        if lo is None and hi is None:
            continue
        for name in (task.value, task.lower, task.upper):
            if name in cols:
                cols[name] = np.clip(np.asarray(cols[name], dtype=np.float64), lo, hi)
    return cols


@dataclass
class Placement:
    """Where molecules lie relative to a model's training set: Tanimoto similarity, latent
    distance (both ``[N]``) and the domain flag."""

    similarity: np.ndarray
    latent: np.ndarray
    in_domain: np.ndarray
