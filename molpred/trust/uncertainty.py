"""How much to believe a prediction: ensemble spread, calibration and conformal prediction.

- Regression: each member predicts a mean and (with the variance head) a variance; an ensemble's
  spread is the standard deviation of the mixture, ``sqrt(mean(var) + var(means))``.
- Classification: probabilities are calibrated by temperature scaling on validation logits. The
  spread is the standard deviation across members, or for one model the Bernoulli standard
  deviation ``sqrt(p (1 - p))``.
- Split conformal prediction on held-out (validation) molecules: regression intervals
  ``mean +- q * spread`` (normalized residual scores) and classification prediction sets. The
  sorted scores are stored in the model file, so any confidence level can be asked for later.

Shapes: ``values, variances [N, T, M]`` (molecules, tasks, ensemble members).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "combine",
    "fit_temperature",
    "conformal_scores",
    "conformal_quantile",
    "regression_interval",
    "prediction_set",
    "uncertainty_metrics",
    "spread_floor",
    "calibration_error",
]


def combine(
    values: np.ndarray, variances: np.ndarray, task_types: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and spread ``[N, T]`` from member values and variances ``[N, T, M]``."""
    mean = values.mean(axis=-1)
    spread = np.empty_like(mean)
    n_members = values.shape[-1]
    for t, kind in enumerate(task_types):
        if kind == "classification":
            p = mean[:, t]
            spread[:, t] = values[:, t].std(axis=-1) if n_members > 1 else np.sqrt(p * (1 - p))
        else:
            aleatoric = np.nan_to_num(variances[:, t].mean(axis=-1), nan=0.0)
            spread[:, t] = np.sqrt(aleatoric + values[:, t].var(axis=-1))
    return mean, spread


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature ``T`` minimizing the validation log-loss of ``sigmoid(logits / T)``.

    Returns 1.0 when there are too few labels of both classes to fit anything.
    """
    mask = ~np.isnan(labels)
    z, y = logits[mask], labels[mask]
    if len(y) < 10 or len(np.unique(y)) < 2:
        return 1.0
    z_t, y_t = torch.tensor(z, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z_t / log_t.exp(), y_t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(log_t.exp().item(), 0.05, 20.0))


def conformal_scores(
    mean: np.ndarray, spread: np.ndarray, targets: np.ndarray, task_types: Sequence[str]
) -> list[list[float]]:
    """Sorted nonconformity scores of held-out molecules, one list per task.

    Regression: ``|y - mean| / spread`` (spread floored at a small fraction of its median, so a
    near-zero spread cannot explode a score). Classification: ``1 - p(true class)``.
    """
    out: list[list[float]] = []
    for t, kind in enumerate(task_types):
        mask = ~np.isnan(targets[:, t])
        y, mu = targets[mask, t], mean[mask, t]
        if kind == "classification":
            scores = 1.0 - np.where(y > 0.5, mu, 1.0 - mu)
        else:
            scores = np.abs(y - mu) / spread_floor(spread[mask, t])
        # a score that is not finite cannot be ranked: NaN sorts anywhere and breaks quantiles
        out.append(sorted(round(float(s), 6) for s in scores if np.isfinite(s)))
    return out


def spread_floor(spread: np.ndarray) -> np.ndarray:
    """The spread, floored at a small fraction of its median (a near-zero spread cannot explode
    a normalized score)."""
    finite = spread[np.isfinite(spread)]
    med = float(np.median(finite)) if finite.size else 1.0
    return np.maximum(spread, 1e-3 * med if med > 0 else 1e-12)


def conformal_quantile(scores: Sequence[float], confidence: float) -> float:
    """The split-conformal quantile: the ``ceil((n + 1) c)``-th smallest score (inf if n is too
    small for the requested confidence)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    n = len(scores)
    k = math.ceil((n + 1) * confidence)
    return float(scores[k - 1]) if 0 < k <= n else math.inf


def regression_interval(
    mean: np.ndarray, spread: np.ndarray, scores: Sequence[float], confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper conformal bounds (same shape as ``mean``)."""
    half = conformal_quantile(scores, confidence) * spread_floor(spread)
    return mean - half, mean + half


def prediction_set(prob: np.ndarray, scores: Sequence[float], confidence: float) -> list[str]:
    """Conformal prediction sets for a binary task: ``"0"``, ``"1"``, ``"0,1"`` or ``""``."""
    q = conformal_quantile(scores, confidence)
    has0 = (prob <= q + 1e-12) | np.isinf(q)  # score of class 0 is p(1)
    has1 = (1.0 - prob <= q + 1e-12) | np.isinf(q)
    labels = []
    for p, a, b in zip(prob, has0, has1, strict=True):
        labels.append("" if np.isnan(p) else ",".join(c for c, m in (("0", a), ("1", b)) if m))
    return labels


def uncertainty_metrics(
    targets: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, float]:
    """Quality of one regression task's uncertainty on labeled data.

    - ``spearman``: rank correlation between absolute error and predicted spread (higher is
      better; 0 means the spread says nothing about the error);
    - ``miscalibration_area``: mean absolute gap between expected and observed coverage of
      Gaussian intervals ``mean +- z * spread`` over confidence levels 1%..99% (0 is perfect);
    - ``coverage``: fraction of targets inside ``[lower, upper]`` when bounds are given.
    """
    from scipy.stats import norm, spearmanr  # here: importing scipy.stats costs ~0.6 s

    mask = ~np.isnan(targets) & ~np.isnan(mean)
    y, mu, sd = targets[mask], mean[mask], spread_floor(spread[mask])
    err = np.abs(y - mu)
    out = {"n": float(mask.sum())}
    constant = len(y) < 3 or np.ptp(sd) == 0 or np.ptp(err) == 0
    out["spearman"] = float("nan") if constant else float(spearmanr(err, sd).statistic)
    levels = np.linspace(0.01, 0.99, 99)
    z = norm.ppf(0.5 + levels / 2)
    observed = (err[None, :] <= z[:, None] * sd[None, :]).mean(axis=1)
    out["miscalibration_area"] = float(np.abs(observed - levels).mean()) if len(y) else math.nan
    if lower is not None and upper is not None:
        # a row without bounds (an uncalibrated model) is neither covered nor missed
        has = ~np.isnan(lower[mask]) & ~np.isnan(upper[mask])
        yb, lo, hi = y[has], lower[mask][has], upper[mask][has]
        inside = (yb >= lo) & (yb <= hi)
        width = hi - lo
        out["coverage"] = float(inside.mean()) if len(yb) else math.nan
        out["mean_interval_width"] = float(width.mean()) if len(yb) else math.nan
        # how much the intervals adapt: 1.0 means every molecule gets the same width
        finite = len(yb) and np.isfinite(width).all()  # inf: too few calibration molecules
        p10, p90 = np.percentile(width, [10, 90]) if finite else (math.nan, math.nan)
        out["width_ratio_90_10"] = float(p90 / p10) if p10 > 0 else math.nan
    return out


def calibration_error(labels: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of binary probabilities: the molecule-weighted mean gap
    between the mean predicted probability and the observed frequency of positives, over
    ``bins`` equal-width probability bins (0 is perfectly calibrated)."""
    ok = ~np.isnan(labels) & ~np.isnan(prob)
    y, p = labels[ok], prob[ok]
    if not len(y):
        return math.nan
    which = np.minimum((p * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            gap += sel.sum() * abs(p[sel].mean() - y[sel].mean())
    return float(gap / len(y))
