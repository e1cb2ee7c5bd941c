"""Approved-drug context: where a prediction sits among approved drugs.

The reference population is the FDA-approved molecules of ClinTox (``data/clintox.csv``,
``FDA_APPROVED == 1``). Each bundled model predicts them once at build time
(``python -m molpred.pretrained.approved``) and the 101 percentiles of every predicted column
are shipped in ``approved.json``, with the identity of the model build they came from: a model
rebuilt since has no reference (and so no percentile) until the reference is rebuilt too, so a
percentile never mixes two models.

``<value>_pct_approved`` (0-100, :class:`molpred.predictor.Predictor` with
``percentiles=True``) is the share of approved drugs predicted below the value, interpolated
between the stored percentiles (ties count half).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.artifact import MolpredModel
from molpred.pretrained import HERE, available, model_path

__all__ = ["REFERENCE", "has_reference", "percentile", "build_reference"]

REFERENCE = HERE / "approved.json"
ROOT = Path(__file__).resolve().parents[2]
_LEVELS = np.linspace(0, 100, 101)


def _identity(model: MolpredModel) -> str:
    return f"{model.info.created}|{model.info.data_fingerprint}"


def _load(path: Path = REFERENCE) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"models": {}}


_CACHE: dict[Path, dict] = {}


def reference(path: Path = REFERENCE) -> dict:
    if path not in _CACHE:
        _CACHE[path] = _load(path)
    return _CACHE[path]


def _entry(model: MolpredModel, name: str) -> dict | None:
    entry = reference()["models"].get(name)
    ok = entry is not None and model.info.card == name and entry["identity"] == _identity(model)
    return entry if ok else None


def has_reference(model: MolpredModel, name: str, task: str) -> bool:
    """Whether ``task`` of ``model``, the bundled model ``name``, has an approved-drug
    reference for this exact build."""
    entry = _entry(model, name)
    return entry is not None and task in entry["tasks"]


def percentile(model: MolpredModel, name: str, task: str, values) -> np.ndarray | None:
    """Percentile (0-100) among approved drugs of ``values`` predicted by bundled model
    ``name`` for ``task``; None when there is no reference for this exact model build."""
    if not has_reference(model, name, task):
        return None
    quantiles = np.asarray(_entry(model, name)["tasks"][task], dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    # ties (many approved drugs predicted alike) take the middle of their run of levels
    lo = np.interp(x, quantiles, _LEVELS, left=0.0, right=100.0)
    hi = 100.0 - np.interp(-x, -quantiles[::-1], _LEVELS, left=0.0, right=100.0)
    out = (lo + hi) / 2
    out[np.isnan(x)] = np.nan
    return out


def build_reference(models: Mapping[str, MolpredModel] | None = None) -> dict:
    """Predict the approved drugs with every bundled model; write ``approved.json``."""
    from molpred.predict import predict

    if models is None:
        from molpred.artifact import load_model

        models = {n: load_model(model_path(n)) for n in available()}
    table = pd.read_csv(ROOT / "data" / "clintox.csv")
    drugs = table.loc[table["FDA_APPROVED"] == 1, "smiles"].tolist()
    out = {
        "population": "FDA-approved molecules of ClinTox (data/clintox.csv, FDA_APPROVED == 1)",
        "models": {},
    }
    for name, model in models.items():
        scored = predict(model, drugs)
        ok = scored[scored["error"] == ""]
        out["models"][name] = {
            "identity": _identity(model),
            "n": len(ok),
            "tasks": {
                task: np.percentile(ok[task].to_numpy(dtype=float), _LEVELS).round(5).tolist()
                for task in model.task_names
            },
        }
    REFERENCE.write_text(json.dumps(out) + "\n")
    _CACHE.clear()
    return out


if __name__ == "__main__":
    ref = build_reference()
    for name, entry in ref["models"].items():
        print(name, entry["n"], "approved drugs scored")
