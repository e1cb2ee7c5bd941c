"""molpred's cross-validated panel next to the published TDC ADMET leaderboard (issue #18):
``python benchmarks/tdc_comparison.py`` > markdown.

molpred's numbers are the scaffold cross-validation of each shipped model
(the card of each model file, written by ``python -m molpred.pretrained.build``), in the metric TDC
ranks by; the published numbers (Chemprop-RDKit and the best entry) are read from
``published/tdc_admet_leaderboard.json``, whose sources are listed beside it. The protocols
differ: TDC trains on 80% (scaffold split, 5 seeds, one fixed 20% test set); molpred's models
are cross-validated over scaffold folds (each molecule tested once) and the sets were cleaned
as molpred cleans any data (parents, duplicates merged). Read the columns as neighbours, not as
a ranking. Where TDC ranks on another scale than molpred learns (PPBR in % bound; molpred learns
log10 of the unbound fraction), molpred's cell is its out-of-fold predictions converted to
TDC's scale, pooled over the folds (``results/ppb_scale.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from molpred.artifact import load_model  # noqa: E402
from molpred.pretrained import model_path  # noqa: E402
from molpred.pretrained.endpoints import ENDPOINTS  # noqa: E402
from molpred.pretrained.panel import PANEL  # noqa: E402

PUBLISHED = Path(__file__).resolve().parent / "published" / "tdc_admet_leaderboard.json"
PPB_SCALE = Path(__file__).resolve().parent / "results" / "ppb_scale.json"
NAMES = {"roc_auc": "AUROC", "pr_auc": "AUPRC", "mae": "MAE", "rmse": "RMSE"}


def molpred_cv(endpoint: str, metric: str) -> tuple[float, float, int] | None:
    """Mean, sd and folds of ``metric`` for ``endpoint`` in its shipped model's
    cross-validation, from the model's card (None if that run or metric is not recorded)."""
    model = next((m for m in PANEL.values() if endpoint in m.endpoints), None)
    if model is None or not model_path(model.name).is_file():
        return None
    run = load_model(model_path(model.name)).info.metrics.get("cross_validation")
    folds = run["folds"] if run else 0
    if run is None:
        return None
    scores = run["per_endpoint"][endpoint].get("metrics", {}).get(metric)
    if scores is None and metric == run["metric"]:
        scores = run["per_endpoint"][endpoint]
    return (scores["mean"], scores["sd"], folds) if scores else None


def converted_percent_bound(metric: str) -> str:
    """molpred's log10(fu) cross-validation, its predictions converted to % bound."""
    if not PPB_SCALE.exists():
        return "not yet run"
    run = json.loads(PPB_SCALE.read_text())
    value = run["learned_log10_fu"]["on_percent_bound"][metric]
    return f"{value:.3f} ({run['folds']} folds pooled; learned as log10 fu)"


def table() -> str:
    published = json.loads(PUBLISHED.read_text())["benchmarks"]
    lines = [
        "| TDC benchmark | metric | molpred (scaffold CV) | Chemprop-RDKit (TDC) "
        "| best TDC entry | data |",
        "|---|---|---|---|---|---|",
    ]
    for b in published:
        if b.get("scale") == "% bound":
            cell = converted_percent_bound(b["metric"])
        else:
            ours = molpred_cv(b["endpoint"], b["metric"])
            cell = f"{ours[0]:.3f} ± {ours[1]:.3f} ({ours[2]} folds)" if ours else "not yet run"
        chemprop = "{:.3f} ± {:.3f}".format(*b["chemprop_rdkit"])
        name, mean, sd, snapshot = b["best"]
        data = "same source" if b["same_data"] else f"other set ({ENDPOINTS[b['endpoint']].source})"
        arrow = "↑" if b["metric"] in ("roc_auc", "pr_auc") else "↓"
        lines.append(
            f"| {b['benchmark']} | {NAMES[b['metric']]} {arrow} | {cell} | {chemprop} | "
            f"{name} {mean:.3f} ± {sd:.3f} ({snapshot}) | {data} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
