"""The ADMET panel's cross-validation table: multitask vs single-task per endpoint, and what
ships (``python benchmarks/panel_table.py`` > markdown, from ``results/panel_cv.json``); with
``--cards``, the bundled models' table of the README (from the model files).

The rule that chose :data:`molpred.pretrained.panel.PANEL`: a candidate group ships as one
multitask model when its mean cross-validated metric over the group's endpoints is at least as
good as the mean of the endpoints' single-task models; otherwise each endpoint ships alone.
Run the cross-validations with ``python -m molpred.pretrained.build --compare GROUP``; a group
and its endpoints alone are compared at the group's folds (:func:`default_folds`). A group whose
single-task runs were not made (too costly here) is shown as such, with its multitask numbers.
The choice was made with the defaults of 2026-12-01 (structures as drawn, no trees); the last
column is each shipped model's own cross-validation (its card), with today's defaults.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from molpred.pretrained.build import CV_FILE, GROUPS, default_folds  # noqa: E402
from molpred.pretrained.endpoints import ENDPOINTS  # noqa: E402
from molpred.pretrained.panel import PANEL  # noqa: E402

HIGHER = {"roc_auc": True, "rmse": False}


def _runs() -> dict[tuple[tuple[str, ...], int], dict]:
    """The cross-validations that chose the panel, by (endpoints, folds): made up to 2026-12-02
    with the defaults of then (structures as drawn, no trees); later runs, which record their
    ``settings``, are the shipped models' own (:func:`_shipped`)."""
    cache = json.loads(CV_FILE.read_text()) if CV_FILE.exists() else {}
    return {(tuple(r["endpoints"]), r["folds"]): r for r in cache.values() if "settings" not in r}


def _shipped() -> dict[str, dict]:
    """Per endpoint, the cross-validation of the bundled model that predicts it (its card)."""
    from molpred.artifact import load_model
    from molpred.pretrained import model_path

    out = {}
    for name in PANEL:
        cv = load_model(model_path(name)).info.metrics["cross_validation"]
        out.update({e: {"per_endpoint": cv["per_endpoint"]} for e in cv["per_endpoint"]})
    return out


def _at(runs: dict, endpoints: tuple[str, ...], folds: int) -> dict | None:
    return runs.get((endpoints, folds))


def decide(group: str, runs: dict) -> str | None:
    """``multitask``, ``single`` or None (not all cross-validations have run)."""
    endpoints = GROUPS[group]
    folds = default_folds(endpoints)
    multi = _at(runs, endpoints, folds)
    singles = [_at(runs, (e,), folds) for e in endpoints]
    if multi is None or any(s is None for s in singles):
        return None
    m = np.mean([multi["per_endpoint"][e]["mean"] for e in endpoints])
    s = np.mean([r["per_endpoint"][e]["mean"] for r, e in zip(singles, endpoints, strict=True)])
    better = m >= s if HIGHER[multi["metric"]] else m <= s
    return "multitask" if better else "single"


def shipped_in(endpoint: str) -> str:
    return next((name for name, m in PANEL.items() if endpoint in m.endpoints), "not yet")


def _cell(run: dict | None, endpoint: str) -> str:
    r = (run or {}).get("per_endpoint", {}).get(endpoint)
    return f"{r['mean']:.3f} ± {r['sd']:.3f}" if r else "—"


def table() -> str:
    runs, shipped = _runs(), _shipped()
    lines = [
        "| group | endpoint | n | folds | metric | multitask | single-task | decision "
        "| shipped in | shipped model |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    grouped = {e for g in GROUPS.values() for e in g}
    for group, endpoints in GROUPS.items():
        folds = default_folds(endpoints)
        multi = _at(runs, endpoints, folds)
        singles = sum(_at(runs, (e,), folds) is not None for e in endpoints)
        decision = decide(group, runs) or (
            f"not decided: {singles} of {len(endpoints)} single-task runs"
            if multi
            else "not yet measured"
        )
        for e in endpoints:
            single = _at(runs, (e,), folds)
            run = multi or single or {}
            n = run.get("per_endpoint", {}).get(e, {}).get("n", "")
            lines.append(
                f"| {group} | {ENDPOINTS[e].label} | {n} | {folds} | {run.get('metric', '')} | "
                f"{_cell(multi, e)} | {_cell(single, e)} | {decision} | {shipped_in(e)} | "
                f"{_cell(shipped.get(e), e)} |"
            )
    for name, model in PANEL.items():
        ungrouped = [e for e in model.endpoints if e not in grouped]
        run = _at(runs, model.endpoints, default_folds(model.endpoints))
        for e in ungrouped:
            n = (run or {}).get("per_endpoint", {}).get(e, {}).get("n", "")
            kind = "multitask as published" if len(model.endpoints) > 1 else "one endpoint"
            cells = f"{_cell(run, e)} | — " if len(model.endpoints) > 1 else f"— | {_cell(run, e)} "
            lines.append(
                f"| — | {ENDPOINTS[e].label} | {n} | {run['folds'] if run else ''} | "
                f"{(run or {}).get('metric', '')} | {cells}| {kind} | {name} | "
                f"{_cell(shipped.get(e), e)} |"
            )
    return "\n".join(lines)


def cards() -> str:
    """The bundled models as README lists them: endpoints, units and each model file's own
    cross-validated metrics (mean ± sd over its scaffold folds)."""
    from molpred.artifact import load_model
    from molpred.pretrained import CARDS, model_path

    lines = [
        "| model | category | predicts | units | scaffold CV (mean ± sd) |",
        "|---|---|---|---|---|",
    ]
    for name, card in CARDS.items():
        info = load_model(model_path(name)).info
        cv = info.metrics["cross_validation"]
        metric = {"roc_auc": "ROC-AUC", "rmse": "RMSE"}[cv["metric"]]
        per = list(cv["per_endpoint"].values())
        scores = "; ".join(f"{v['mean']:.3f} ± {v['sd']:.3f}" for v in per)
        units = "; ".join(dict.fromkeys(card.unit(t) for t in card.targets))
        cats = "; ".join(dict.fromkeys(card.category_of(t) for t in card.targets))
        labels = ", ".join(card.display(t) for t in card.targets)
        if name == "tox21":  # the range over its twelve assays, not twelve numbers
            means = [v["mean"] for v in per]
            scores = f"mean {np.mean(means):.3f}, {min(means):.3f}–{max(means):.3f} by assay"
            labels = f"{len(per)} assays ({labels.split(', ')[0]}, …)"
        lines.append(
            f"| `{name}` | {cats} | {labels} | {units} | {metric} {scores} ({cv['folds']} folds) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(cards() if "--cards" in sys.argv else table())
