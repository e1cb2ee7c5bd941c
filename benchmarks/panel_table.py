"""The ADMET panel's cross-validation table: multitask vs single-task per endpoint, and what
ships (``python benchmarks/panel_table.py`` > markdown, from ``results/panel_cv.json``).

The rule that chose :data:`molpred.pretrained.panel.PANEL`: a candidate group ships as one
multitask model when its mean cross-validated metric over the group's endpoints is at least as
good as the mean of the endpoints' single-task models; otherwise each endpoint ships alone.
Run the cross-validations with ``python -m molpred.pretrained.build --compare GROUP``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from molpred.pretrained.build import CV_FILE, GROUPS  # noqa: E402
from molpred.pretrained.panel import ENDPOINTS, PANEL  # noqa: E402

HIGHER = {"roc_auc": True, "rmse": False}


def _runs() -> dict[tuple[str, ...], dict]:
    cache = json.loads(CV_FILE.read_text()) if CV_FILE.exists() else {}
    return {tuple(r["endpoints"]): r for r in cache.values() if r["folds"] == 5}


def decide(group: str, runs: dict) -> str | None:
    """``multitask``, ``single`` or None (not all cross-validations have run)."""
    endpoints = GROUPS[group]
    multi = runs.get(endpoints)
    singles = [runs.get((e,)) for e in endpoints]
    if multi is None or any(s is None for s in singles):
        return None
    m = np.mean([multi["per_endpoint"][e]["mean"] for e in endpoints])
    s = np.mean([r["per_endpoint"][e]["mean"] for r, e in zip(singles, endpoints, strict=True)])
    better = m >= s if HIGHER[multi["metric"]] else m <= s
    return "multitask" if better else "single"


def shipped_in(endpoint: str) -> str:
    return next((name for name, m in PANEL.items() if endpoint in m.endpoints), "not yet")


def table() -> str:
    runs = _runs()
    lines = [
        "| group | endpoint | n | metric | multitask | single-task | decision | shipped in |",
        "|---|---|---|---|---|---|---|---|",
    ]
    grouped = {e for g in GROUPS.values() for e in g}
    for group, endpoints in GROUPS.items():
        decision = decide(group, runs) or "not yet measured"
        for e in endpoints:
            multi = runs.get(endpoints, {}).get("per_endpoint", {}).get(e)
            single = runs.get((e,), {}).get("per_endpoint", {}).get(e)
            cell = lambda r: f"{r['mean']:.3f} ± {r['sd']:.3f}" if r else "—"  # noqa: E731
            n = (multi or single or {}).get("n", "")
            metric = (runs.get(endpoints) or runs.get((e,)) or {}).get("metric", "")
            lines.append(
                f"| {group} | {ENDPOINTS[e].label} | {n} | {metric} | {cell(multi)} | "
                f"{cell(single)} | {decision} | {shipped_in(e)} |"
            )
    for e in ENDPOINTS:
        if e in grouped:
            continue
        single = runs.get((e,), {}).get("per_endpoint", {}).get(e)
        if single:
            metric = runs[(e,)]["metric"]
            lines.append(
                f"| — | {ENDPOINTS[e].label} | {single['n']} | {metric} | — | "
                f"{single['mean']:.3f} ± {single['sd']:.3f} | single | {shipped_in(e)} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
