"""What a study gives: the best configuration for ``molpred train --config``, and an HTML
report of the whole study."""

from __future__ import annotations

import json
import time
from dataclasses import fields, replace
from html import escape
from pathlib import Path
from typing import Any

import optuna

from molpred.fitting import TrainConfig
from molpred.io import DataError, atomic_path
from molpred.models import ModelConfig
from molpred.tune.storage import redact
from molpred.tune.study import suggest

__all__ = ["export_best", "load_config", "write_report"]


def export_best(study: optuna.Study, path: str | Path, storage: str | None = None) -> dict:
    """Write the best trial's configuration as JSON for ``molpred train --config``."""
    best = study.best_trial
    model_kw, train_kw = _replay(best.params)
    settings = json.loads(study.user_attrs.get("settings", "{}"))
    budget = {k: settings[k] for k in ("epochs", "patience") if k in settings}
    # the rows the study chose on: train --config splits the same way by default, so its
    # test rows are ones the study never scored
    chosen_on = ("split", "cv", "splits_file", "replicate", "seed")
    split = {k: settings[k] for k in chosen_on if k in settings}
    config = {
        "model_config": model_kw,
        "train_config": {**train_kw, **budget},
        "source": {
            "study": study.study_name,
            "trial": best.number,
            "value": best.value,
            "metric": study.user_attrs.get("metric"),
            # what the value is not: molpred train adds its trees blend and, on small data,
            # a cross-validation ensemble; the trained model's own metrics are its card's
            "value_measures": "the trial's single network (no trees blend, no ensemble) on "
            "the study's validation rows, mean over its splits",
            "storage": redact(storage) if storage else None,
            "split": split,
        },
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    return config


def _replay(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Re-run :func:`suggest` on fixed parameters (the one place the space is defined)."""
    return suggest(optuna.trial.FixedTrial(params))


def load_config(path: str | Path) -> tuple[ModelConfig, TrainConfig, dict]:
    """Read an exported configuration: ``(ModelConfig, TrainConfig, source)``."""
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read config {path}: {exc}") from None
    known_m = {f.name for f in fields(ModelConfig)}
    known_t = {f.name for f in fields(TrainConfig)}
    unknown = (set(cfg.get("model_config", {})) - known_m) | (
        set(cfg.get("train_config", {})) - known_t
    )
    if unknown:
        raise DataError(f"unknown settings in {path}: {sorted(unknown)}")
    model = ModelConfig(**cfg.get("model_config", {}))
    train = replace(TrainConfig(), **cfg.get("train_config", {}))
    return model, train, cfg.get("source", {})


def write_report(study: optuna.Study, path: str | Path) -> Path:
    """A self-contained HTML report: optimization history, parameter importances, parallel
    coordinates, slice plots and the table of trials. plotly.js is embedded once, so the page
    opens offline."""
    from optuna import visualization as vis

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sections = [("Optimization history", vis.plot_optimization_history)]
    if len(complete) >= 2:
        sections += [
            ("Parameter importances", vis.plot_param_importances),
            ("Parallel coordinates", vis.plot_parallel_coordinate),
            ("Slice plots", vis.plot_slice),
        ]
    parts, first = [], True
    for title, plot in sections:
        try:
            fig = plot(study)
        except (ValueError, RuntimeError) as exc:  # e.g. importances of a constant objective
            parts.append(f"<h2>{title}</h2><p>not available: {exc}</p>")
            continue
        parts.append(f"<h2>{title}</h2>" + fig.to_html(full_html=False, include_plotlyjs=first))
        first = False
    table = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    best = f"trial {study.best_trial.number}, {study.best_value:.4f}" if complete else "none yet"
    name = escape(study.study_name)  # a name is text, never markup
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title>"
        "</head><body style='font-family:sans-serif;max-width:1100px;margin:auto'>"
        f"<h1>Study {name}</h1><p>metric: {escape(str(study.user_attrs.get('metric')))} "
        f"({study.direction.name.lower()}); trials: {len(study.trials)}; best: {best}; "
        f"written {time.strftime('%Y-%m-%d %H:%M')}</p>"
        + "".join(parts)
        + "<h2>Trials</h2>"
        + table.to_html(index=False, float_format="%.4g")
        + "</body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(html)
    return Path(path)
