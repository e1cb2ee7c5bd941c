"""Calibration of a freshly trained model (called by :func:`molpred.train.train`): classifier
temperatures, conformal scores and the applicability domain, all from held-out molecules."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from molpred.models import member_outputs
from molpred.trust.domain import Domain, choose_threshold, knn_distance, max_similarity
from molpred.trust.uncertainty import combine, conformal_scores, fit_temperature

__all__ = ["calibrate"]


def calibrate(groups: Sequence[tuple[Sequence, object, object]], dataset, seed: int = 0):
    """Conformal scores and applicability domain of a trained model.

    ``groups`` holds, per data split, the members trained on it with their training and
    validation subsets. Temperatures are fitted first (per member, on its own validation set);
    the conformal scores pool every split's held-out molecules, scored by the members that did
    not train on them.

    Returns ``(calibration dict for the model metadata, Domain or None)``.
    """
    task_types = dataset.task_types
    per_task: list[list[float]] = [[] for _ in task_types]
    sims, errs, val_emb_dist = [], [], []
    reference = np.unique(np.concatenate([np.asarray(tr_idx) for _, tr_idx, _ in groups]))
    ref_fps = dataset.fingerprints[reference]
    rng = np.random.default_rng(seed)
    first_members, first_train, _ = groups[0]
    sample = rng.choice(first_train, size=min(2000, len(first_train)), replace=False)
    _, _, ref_emb, _ = member_outputs(
        first_members[:1], dataset.subset(sample).featurized(), embeddings=True
    )
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
        scale = np.array(
            [
                float(members[0].y_scale[t]) if k == "regression" else 1.0
                for t, k in enumerate(task_types)
            ]
        )
        with warnings.catch_warnings():  # a molecule unlabeled in every task: NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            errs.append(np.nanmean(np.abs(val.targets - mean) / scale, axis=1))
        sims.append(max_similarity(val.fingerprints, ref_fps))
        if emb is not None:
            val_emb_dist.append(knn_distance(torch.from_numpy(emb), ref_emb_t))
    calibration = {
        "conformal_scores": [sorted(s) for s in per_task],
        "n_calibration": [len(s) for s in per_task],
    }
    if not sims:
        return calibration, None
    sim, err = np.concatenate(sims), np.concatenate(errs)
    choice = choose_threshold(sim, err)
    latent_scale = float(np.median(np.concatenate(val_emb_dist))) if val_emb_dist else 1.0
    domain = Domain(
        torch.from_numpy(np.ascontiguousarray(ref_fps)),
        ref_emb_t.to(torch.float16),
        latent_scale,
        float(choice["threshold"]),
        str(choice["rule"]),
        [dataset.smiles[i] for i in reference],
        torch.from_numpy(np.ascontiguousarray(dataset.targets[reference])),
    )
    calibration["domain_threshold"] = choice
    return calibration, domain
