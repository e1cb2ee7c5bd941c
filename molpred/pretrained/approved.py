"""Approved-drug context: where a prediction sits among approved drugs.

The reference population is the FDA-approved molecules of ClinTox (``data/clintox.csv``,
``FDA_APPROVED == 1``), each predicted by a model that did not train on it: on its own
training molecules a model predicts close to their labels, which would make any new drug look
unusual. A model that learned half of them or more (ClinTox's and Tox21's) has those predicted
by cross-validation, the others by itself
(:func:`molpred.pretrained.build.approved_reference`). Each bundled model predicts its
reference drugs once at build time
(``python -m molpred.pretrained.build --approved``) and the 101 percentiles of every
predicted column are shipped in ``approved.json``, with the identity of the model build they
came from: a model rebuilt since has no reference (and so no percentile) until the reference
is rebuilt too, so a percentile never mixes two models.

``<value>_pct_approved`` (0-100, :class:`molpred.predictor.Predictor` with
``percentiles=True``) is the share of approved drugs predicted below the value, interpolated
between the stored percentiles (ties count half).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from molpred.artifact import MolpredModel
from molpred.pretrained import HERE
from molpred.pretrained.endpoints import value_bounds

__all__ = ["REFERENCE", "LEVELS", "identity", "has_reference", "population", "percentile"]

REFERENCE = HERE / "approved.json"
LEVELS = np.linspace(0, 100, 101)


def identity(model: MolpredModel) -> str:
    return f"{model.info.created}|{model.info.data_fingerprint}"


def _load(path: Path = REFERENCE) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"models": {}}


_CACHE: dict[Path, dict] = {}  # cleared by the build when it writes a new reference


def reference(path: Path = REFERENCE) -> dict:
    if path not in _CACHE:
        _CACHE[path] = _load(path)
    return _CACHE[path]


def _entry(model: MolpredModel) -> dict | None:
    """The reference of a bundled model (found by its card, whatever the caller names it),
    for this exact build."""
    entry = reference()["models"].get(model.info.card) if model.info.card else None
    return entry if entry is not None and entry["identity"] == identity(model) else None


def has_reference(model: MolpredModel, task: str) -> bool:
    """Whether ``task`` of ``model``, a bundled model, has an approved-drug reference for
    this exact build."""
    entry = _entry(model)
    return entry is not None and task in entry["tasks"]


def population(model: MolpredModel) -> int | None:
    """How many approved drugs ``model``'s percentiles stand on (each predicted by a model that
    did not train on it: fewer than ClinTox's 1,386 where a model's data held some and it was
    not cross-validated, :func:`molpred.pretrained.build.approved_reference`); None without a
    reference for this exact build."""
    entry = _entry(model)
    return None if entry is None else int(entry["n"])


def percentile(model: MolpredModel, task: str, values) -> np.ndarray | None:
    """Percentile (0-100) among approved drugs of ``values`` predicted by bundled ``model``
    for ``task``; None when there is no reference for this exact model build."""
    if not has_reference(model, task):
        return None
    quantiles = np.asarray(_entry(model)["tasks"][task], dtype=np.float64)
    lo, hi = value_bounds(model).get(task, (None, None))
    if lo is not None or hi is not None:  # the approved drugs' predictions held in bounds too
        quantiles = np.clip(quantiles, lo, hi)
    x = np.asarray(values, dtype=np.float64)
    # ties (many approved drugs predicted alike) take the middle of their run of levels
    lo = np.interp(x, quantiles, LEVELS, left=0.0, right=100.0)
    hi = 100.0 - np.interp(-x, -quantiles[::-1], LEVELS, left=0.0, right=100.0)
    out = (lo + hi) / 2
    out[np.isnan(x)] = np.nan
    return out
