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
import warnings
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
            scores = np.abs(y - mu) / _floor(spread[mask, t])
        out.append(sorted(round(float(s), 6) for s in scores))
    return out


def _floor(spread: np.ndarray) -> np.ndarray:
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
    half = conformal_quantile(scores, confidence) * _floor(spread)
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
    targets: np.ndarray, mean: np.ndarray, spread: np.ndarray, lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, float]:  # fmt: skip
    """Quality of one regression task's uncertainty on labeled data.

    - ``spearman``: rank correlation between absolute error and predicted spread (higher is
      better; 0 means the spread says nothing about the error);
    - ``miscalibration_area``: mean absolute gap between expected and observed coverage of
      Gaussian intervals ``mean +- z * spread`` over confidence levels 1%..99% (0 is perfect);
    - ``coverage``: fraction of targets inside ``[lower, upper]`` when bounds are given.
    """
    from scipy.stats import norm, spearmanr  # here: importing scipy.stats costs ~0.6 s

    mask = ~np.isnan(targets) & ~np.isnan(mean)
    y, mu, sd = targets[mask], mean[mask], _floor(spread[mask])
    err = np.abs(y - mu)
    out = {"n": float(mask.sum())}
    constant = len(y) < 3 or np.ptp(sd) == 0 or np.ptp(err) == 0
    out["spearman"] = float("nan") if constant else float(spearmanr(err, sd).statistic)
    levels = np.linspace(0.01, 0.99, 99)
    z = norm.ppf(0.5 + levels / 2)
    observed = (err[None, :] <= z[:, None] * sd[None, :]).mean(axis=1)
    out["miscalibration_area"] = float(np.abs(observed - levels).mean()) if len(y) else math.nan
    if lower is not None and upper is not None:
        inside = (y >= lower[mask]) & (y <= upper[mask])
        out["coverage"] = float(inside.mean()) if len(y) else math.nan
        out["mean_interval_width"] = float((upper[mask] - lower[mask]).mean()) if len(y) else 0
    return out


# --------------------------------------------------------------------------------------------
# calibration of a freshly trained model (called by molpred.train.train)


@torch.no_grad()
def member_outputs(
    members: Sequence, feats, batch_size: int = 128, device: str | torch.device = "cpu",
    embeddings: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:  # fmt: skip
    """Score featurized molecules with every member.

    Returns values and variances ``[N, T, M]`` (NaN for failed rows), the first member's
    representations ``[N, D]`` when ``embeddings`` (else ``None``), and the raw outputs
    (standardized values / logits) ``[N, T, M]``.
    """
    from molpred.data import collate

    ok = np.flatnonzero([g is not None for g in feats.graphs])
    n, n_tasks, n_members = len(feats.graphs), members[0].config.n_tasks, len(members)
    values = np.full((n, n_tasks, n_members), np.nan, dtype=np.float32)
    variances = np.full_like(values, np.nan)
    raw = np.full_like(values, np.nan)
    emb = None
    for m in members:
        m.to(device).eval()
    for start in range(0, len(ok), batch_size):
        idx = ok[start : start + batch_size]
        batch = collate([feats.graphs[i] for i in idx], feats.descriptors[idx]).to(device)
        for j, m in enumerate(members):
            out, log_var, rep = m.forward_with_variance(batch)
            raw[idx, :, j] = out.cpu().numpy()
            values[idx, :, j] = m.to_units(out).cpu().numpy()
            if log_var is not None:
                var = torch.exp(log_var.clamp(-20, 20)) * m.y_scale**2
                variances[idx, :, j] = var.cpu().numpy()
            if embeddings and j == 0:
                if emb is None:
                    emb = np.full((n, rep.shape[1]), np.nan, dtype=np.float32)
                emb[idx] = rep.cpu().numpy()
    return values, variances, emb, raw


def calibrate(groups: Sequence[tuple[Sequence, object, object]], dataset, seed: int = 0):
    """Conformal scores and applicability domain of a trained model.

    ``groups`` holds, per data split, the members trained on it with their training and
    validation subsets. Temperatures are fitted first (per member, on its own validation set);
    the conformal scores pool every split's held-out molecules, scored by the members that did
    not train on them.

    Returns ``(calibration dict for the model metadata, Domain or None)``.
    """
    from molpred.domain import Domain, choose_threshold, knn_distance, max_similarity

    task_types = dataset.task_types
    per_task: list[list[float]] = [[] for _ in task_types]
    sims, errs, val_emb_dist = [], [], []
    reference = np.unique(np.concatenate([np.asarray(tr_idx) for _, tr_idx, _ in groups]))
    ref_fps = dataset.fingerprints[reference]
    rng = np.random.default_rng(seed)
    first_members, first_train, _ = groups[0]
    sample = rng.choice(first_train, size=min(2000, len(first_train)), replace=False)
    _, _, ref_emb, _ = member_outputs(first_members[:1], dataset.subset(sample).featurized(),
                                      embeddings=True)  # fmt: skip
    ref_emb_t = torch.from_numpy(ref_emb)
    for g, (members, _train_idx, val_idx) in enumerate(groups):
        if len(val_idx) == 0:
            continue
        val = dataset.subset(val_idx)
        values, variances, emb, raw = member_outputs(members, val.featurized(), embeddings=g == 0)
        for t, kind in enumerate(task_types):
            if kind == "classification":
                for j, m in enumerate(members):
                    m.temperature[t] = fit_temperature(raw[:, t, j], val.targets[:, t])
                    values[:, t, j] = 1.0 / (1.0 + np.exp(-raw[:, t, j] / float(m.temperature[t])))
        mean, spread = combine(values, variances, task_types)
        for t, scores in enumerate(conformal_scores(mean, spread, val.targets, task_types)):
            per_task[t].extend(scores)
        scale = np.array([float(members[0].y_scale[t]) if k == "regression" else 1.0
                          for t, k in enumerate(task_types)])  # fmt: skip
        with warnings.catch_warnings():  # a molecule unlabeled in every task: NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            errs.append(np.nanmean(np.abs(val.targets - mean) / scale, axis=1))
        sims.append(max_similarity(val.fingerprints, ref_fps))
        if emb is not None:
            val_emb_dist.append(knn_distance(torch.from_numpy(emb), ref_emb_t))
    calibration = {"conformal_scores": [sorted(s) for s in per_task],
                   "n_calibration": [len(s) for s in per_task]}  # fmt: skip
    if not sims:
        return calibration, None
    sim, err = np.concatenate(sims), np.concatenate(errs)
    choice = choose_threshold(sim, err)
    latent_scale = float(np.median(np.concatenate(val_emb_dist))) if val_emb_dist else 1.0
    domain = Domain(torch.from_numpy(np.ascontiguousarray(ref_fps)),
                    ref_emb_t.to(torch.float16), latent_scale, float(choice["threshold"]),
                    str(choice["rule"]), [dataset.smiles[i] for i in reference],
                    torch.from_numpy(np.ascontiguousarray(dataset.targets[reference])))  # fmt: skip
    calibration["domain_threshold"] = choice
    return calibration, domain
