"""The expected error of a regression prediction, learned from held-out residuals.

A network's own variance head and its members' disagreement rank errors poorly on scaffold
splits (Spearman ~0 on ESOL and Lipophilicity, ``benchmarks/ensemble_choice.py``); how far a
molecule lies from the training set does better, and the three together better still. The
error model is a log-linear Gaussian scale model fitted on validation residuals::

    sigma = exp(w0 + w . z),   z = standardized [log spread, 1 - Tanimoto similarity,
                                                 log latent distance]

by maximum likelihood (``r ~ N(0, sigma^2)``) with a small ridge penalty. The three slopes are
kept non-negative (a molecule further from the training set, or one the network itself doubts,
is never predicted to be *more* accurate): with four numbers per task and that prior, a few
dozen validation molecules cannot turn the model upside down. Its ``sigma`` is the
``<task>_std`` column (in the data's units), scales the conformal intervals, and flags the
applicability domain.

Shapes: ``spread [N]``, ``similarity [N]``, ``latent [N]``; features ``[N, 3]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "FEATURES",
    "error_features",
    "TaskErrorModel",
    "fit_task",
    "cross_fitted_sigma",
    "relative_error",
]

FEATURES = ("log_spread", "dissimilarity", "log_latent_distance")
MIN_ROWS = 20  # fewer labeled validation molecules than this: no error model for the task
RIDGE = 1e-2


def error_features(spread: np.ndarray, similarity: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """The error model's inputs ``[N, 3]`` (NaN where a molecule could not be scored)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack(
            [
                np.log(np.maximum(spread, 1e-6)),
                1.0 - similarity,
                np.log(np.maximum(latent, 1e-6)),
            ],
            axis=1,
        ).astype(np.float64)


@dataclass(frozen=True)
class TaskErrorModel:
    """One task's fitted scale model (see the module docstring)."""

    center: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]  # intercept first

    def sigma(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.center)) / np.asarray(self.scale)
        w = np.asarray(self.weights)
        return np.exp(np.clip(w[0] + z @ w[1:], -30.0, 30.0)).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "center": list(self.center),
            "scale": list(self.scale),
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: dict) -> TaskErrorModel:
        return cls(tuple(d["center"]), tuple(d["scale"]), tuple(d["weights"]))


def fit_task(features: np.ndarray, residuals: np.ndarray) -> TaskErrorModel | None:
    """Maximum-likelihood scale model on the labeled, finite rows; ``None`` with too few."""
    ok = np.isfinite(residuals) & np.isfinite(features).all(axis=1)
    x, r = features[ok], residuals[ok]
    if len(r) < MIN_ROWS:
        return None
    center, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = torch.tensor((x - center) / scale)
    r2 = torch.tensor(r.astype(np.float64) ** 2)
    intercept = torch.tensor([0.5 * np.log(max(float(r2.mean()), 1e-12))], dtype=torch.float64)
    intercept.requires_grad_(True)  # starts at the plain RMSE
    raw = torch.full((x.shape[1],), -2.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([intercept, raw], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        slopes = torch.nn.functional.softplus(raw)
        log_sigma = intercept + z @ slopes
        nll = (log_sigma + 0.5 * r2 * torch.exp(-2 * log_sigma)).mean()
        loss = nll + RIDGE * (slopes**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        weights = torch.cat([intercept, torch.nn.functional.softplus(raw)]).numpy()
    if not np.isfinite(weights).all():
        return None
    return TaskErrorModel(
        tuple(map(float, center)), tuple(map(float, scale)), tuple(map(float, weights))
    )


def cross_fitted_sigma(
    features: np.ndarray, residuals: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Each row's sigma from a model fitted without it (``folds``-fold), so that conformal
    scores and the domain threshold are computed on residuals the model did not see. NaN where
    a fold had too few rows to fit."""
    out = np.full(len(residuals), np.nan, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(residuals))
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part)
        model = fit_task(features[rest], residuals[rest])
        if model is not None:
            out[part] = model.sigma(features[part])
    return out


def relative_error(sigmas: Sequence[np.ndarray], medians: Sequence[float]) -> np.ndarray:
    """One number per molecule across a model's error-modelled tasks: the mean of
    ``log(sigma_t / median validation sigma_t)`` (0 is a typical validation molecule)."""
    logs = [
        np.log(np.maximum(s, 1e-12) / max(m, 1e-12)) for s, m in zip(sigmas, medians, strict=True)
    ]
    return np.mean(logs, axis=0)
