"""Calibration of a freshly trained model (called by :func:`molpred.train.train`): classifier
temperatures, conformal scores and the applicability domain, all from held-out molecules."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from scipy.special import expit

from molpred.models import member_outputs
from molpred.trust.domain import Domain, choose_threshold, knn_distance, max_similarity
from molpred.trust.error_model import (
    FEATURES,
    cross_fitted_sigma,
    error_features,
    fit_task,
    relative_error,
)
from molpred.trust.uncertainty import combine, conformal_scores, fit_temperature

__all__ = ["calibrate"]


def calibrate(groups: Sequence[tuple[Sequence, object, object]], dataset, seed: int = 0):
    """Conformal scores, error model and applicability domain of a trained model.

    ``groups`` holds, per data split, the members trained on it with their training and
    validation subsets. Temperatures are fitted first (per member, on its own validation set).
    Every split's held-out molecules are pooled, scored by the members that did not train on
    them; on them each regression task's error model is fitted (:mod:`molpred.trust.error_model`)
    and, from its cross-fitted sigmas, the conformal scores and the domain threshold follow.

    Returns ``(calibration dict for the model metadata, Domain or None)``.
    """
    task_types = dataset.task_types
    reference = np.unique(np.concatenate([np.asarray(tr_idx) for _, tr_idx, _ in groups]))
    ref_fps = dataset.fingerprints[reference]
    rng = np.random.default_rng(seed)
    first_members = groups[0][0]
    # drawn from every group's training rows: from the first group's alone, another group's
    # validation rows (the first's training rows in cross-validation) could be all of it
    sample = rng.choice(reference, size=min(2000, len(reference)), replace=False)
    # the model's representation is its first member's, as when it predicts
    _, _, ref_emb, _ = member_outputs(
        first_members[:1], dataset.subset(sample).featurized(), embeddings=True
    )
    ref_emb_t = torch.from_numpy(ref_emb)
    held = _held_out(groups, dataset, sample, ref_emb_t)
    calibration: dict = {}
    if held is None:
        calibration["conformal_scores"] = [[] for _ in task_types]
        calibration["n_calibration"] = [0 for _ in task_types]
        return calibration, None
    targets, mean, spread, sim, latent_raw = held
    latent_scale = float(np.nanmedian(latent_raw)) if np.isfinite(latent_raw).any() else 1.0
    latent = latent_raw / max(latent_scale, 1e-12)
    models, medians, sigma = [], [], spread.copy()
    for t, kind in enumerate(task_types):
        model = None
        if kind == "regression":
            x = error_features(spread[:, t], sim, latent)
            r = targets[:, t] - mean[:, t]
            model = fit_task(x, r)
            if model is not None:
                oof = cross_fitted_sigma(x, r, seed=seed)
                sigma[:, t] = np.where(np.isfinite(oof), oof, model.sigma(x))
        models.append(model)
        medians.append(float(np.nanmedian(sigma[:, t])) if model is not None else float("nan"))
    per_task = conformal_scores(mean, sigma, targets, task_types)
    calibration["conformal_scores"] = [sorted(s) for s in per_task]
    calibration["n_calibration"] = [len(s) for s in per_task]
    if any(m is not None for m in models):
        calibration["error_model"] = {
            "features": list(FEATURES),
            "tasks": [None if m is None else m.to_dict() for m in models],
            "medians": medians,
        }
    scale = np.array(
        [
            float(first_members[0].y_scale[t]) if k == "regression" else 1.0
            for t, k in enumerate(task_types)
        ]
    )
    with warnings.catch_warnings():  # a molecule unlabeled in every task: NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        err = np.nanmean(np.abs(targets - mean) / scale, axis=1)
    choice = choose_threshold(sim, err)
    modelled = [t for t, m in enumerate(models) if m is not None]
    if modelled:  # also flag an unusually high expected error
        rel = relative_error([sigma[:, t] for t in modelled], [medians[t] for t in modelled])
        by_error = choose_threshold(-rel, err)
        choice["expected_error"] = {
            "threshold": -by_error["threshold"],
            "rule": by_error["rule"]
            .replace("5th percentile", "95th percentile")
            .replace("similarity", "expected error"),
            "error_ratio": by_error["error_ratio"],
        }
    domain = Domain(
        torch.from_numpy(np.ascontiguousarray(ref_fps)),
        ref_emb_t.to(torch.float16),
        latent_scale,
        float(choice["threshold"]),
        str(choice["rule"]),
        [dataset.smiles[i] for i in reference],
        torch.from_numpy(np.ascontiguousarray(dataset.targets[reference])),
        error_threshold=choice["expected_error"]["threshold"] if modelled else None,
    )
    calibration["domain_threshold"] = choice
    return calibration, domain


def _held_out(groups, dataset, ref_rows, ref_emb):
    """Every split's validation molecules scored by the members that did not train on them:
    ``(targets, mean, spread [N, T], similarity, raw latent distance [N])``, or None if no split
    has validation molecules. Classification temperatures are fitted here, per member.

    A molecule's similarity is to its split's training rows and its latent distance to the
    reference embeddings (``ref_emb`` of the dataset's ``ref_rows``) other than itself: in a
    cross-validation ensemble every validation molecule is another member's training molecule,
    and measured against all of them each would sit at similarity 1 (the domain threshold
    then put every new molecule out of domain)."""
    task_types = dataset.task_types
    representation = groups[0][0][:1]
    parts = []
    for members, train_idx, val_idx in groups:
        if len(val_idx) == 0:
            continue
        val = dataset.subset(val_idx)
        feats = val.featurized()
        # the representation is the first member's: reuse it where that member is here
        shared = members[0] is representation[0]
        values, variances, emb, raw = member_outputs(members, feats, embeddings=shared)
        for t, kind in enumerate(task_types):
            if kind == "classification":
                for j, m in enumerate(members):
                    m.temperature[t] = fit_temperature(raw[:, t, j], val.targets[:, t])
                    values[:, t, j] = expit(raw[:, t, j] / float(m.temperature[t]))
        mean, spread = combine(values, variances, task_types)
        if not shared:
            _, _, emb, _ = member_outputs(representation, feats, embeddings=True)
        parts.append(
            (
                val.targets,
                mean,
                spread,
                max_similarity(val.fingerprints, dataset.fingerprints[np.asarray(train_idx)]),
                knn_distance(torch.from_numpy(emb), ref_emb[~np.isin(ref_rows, val_idx)]),
            )
        )
    if not parts:
        return None
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
