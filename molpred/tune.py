"""Hyperparameter studies with Optuna: one search space, pruned trials, persistent storage.

- :func:`suggest` is the whole search space.
- :func:`run_study` optimizes the validation metric (mean over folds with ``cv``); every epoch is
  reported and a pruner stops weak trials early.
- Studies live in an RDB storage: a SQLite file by default (rerunning the same command resumes
  the study), or a PostgreSQL URL that several ``molpred tune`` workers on several machines share.
  Trials send heartbeats; a trial whose worker died is marked failed and re-queued once.
- :func:`export_best` writes the best configuration for ``molpred train --config``;
  :func:`write_report` writes a self-contained HTML report (no network needed to view it).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch

from molpred.data import MoleculeDataset, prepare_dataset
from molpred.features import default_cache_dir
from molpred.fitting import TrainConfig, fit
from molpred.io import DataError, atomic_path, read_table
from molpred.metrics import HIGHER_IS_BETTER, primary_metric
from molpred.models import ModelConfig, build_model
from molpred.splits import make_splits

__all__ = [
    "suggest",
    "TuneSettings",
    "run_study",
    "load_study",
    "export_best",
    "write_report",
    "redact",
]


def suggest(trial: optuna.Trial) -> tuple[dict[str, Any], dict[str, Any]]:
    """The search space: ``(ModelConfig fields, TrainConfig fields)`` for one trial."""
    model = {
        "encoder": trial.suggest_categorical("encoder", ["dmpnn", "gine"]),
        "depth": trial.suggest_int("depth", 2, 5),
        "hidden_size": trial.suggest_int("hidden_size", 100, 400, step=50),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4, step=0.05),
        "pooling": trial.suggest_categorical("pooling", ["sum", "mean", "attention"]),
        "descriptors": trial.suggest_categorical("descriptors", [True, False]),
        "head_layers": trial.suggest_int("head_layers", 1, 3),
    }
    model["head_hidden_size"] = model["hidden_size"]
    train = {
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [50, 64, 100]),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
    }
    return model, train


@dataclass(frozen=True)
class TuneSettings:
    """What a study searches on (everything but the search space)."""

    smiles_column: str | None  # None: found by its name
    target_columns: tuple[str, ...]
    task_types: tuple[str, ...] | None = None
    split: str = "scaffold"
    cv: int = 0  # folds; 0 = one train/val/test split
    splits_file: str | None = None
    replicate: int | None = None
    epochs: int = 40
    patience: int = 8
    seed: int = 0
    pruner: str = "median"  # median | hyperband | none


def redact(url: str) -> str:
    """A storage URL without its password (safe to print and to store in model files)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: leave as is
        return url


def _storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial silent for 30 s (its worker died) is failed and
    re-queued once by whichever worker notices.

    Workers started together on an empty database race to create Optuna's tables (on
    PostgreSQL the loser fails on ``CREATE TYPE``); a failed attempt is retried, and the retry
    finds the tables the winner made."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=10,
                    grace_period=30,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=1
                    ),
                    engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
                )
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=4)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=5, max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose median, hyperband or none")


def load_study(storage: str, study_name: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=_storage(storage))


def _prepare(data: pd.DataFrame | str | Path, s: TuneSettings, workers: int | None):
    df = read_table(data) if not isinstance(data, pd.DataFrame) else data
    ds = prepare_dataset(
        df,
        s.smiles_column,
        list(s.target_columns),
        list(s.task_types) if s.task_types else None,
        workers=workers,
        cache_dir=default_cache_dir(),
    )
    split = "kfold" if s.cv else s.split
    splits = make_splits(
        ds, split, folds=max(s.cv, 2), seed=s.seed, splits_file=s.splits_file, replicate=s.replicate
    )
    return ds, splits


def _objective(ds: MoleculeDataset, splits, s: TuneSettings, device: str) -> Callable:
    metric = primary_metric(ds.task_types)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0

    def objective(trial: optuna.Trial) -> float:
        model_kw, train_kw = suggest(trial)
        config = ModelConfig(**model_kw, task_types=tuple(ds.task_types))
        scores = []
        for fold, sp in enumerate(splits):
            tc = TrainConfig(
                epochs=s.epochs, patience=s.patience, seed=s.seed, device=device, **train_kw
            )
            torch.manual_seed(tc.seed)
            model = build_model(config)

            def report(epoch: int, val: dict[str, float], fold: int = fold) -> None:
                if fold:  # prune on the first fold's learning curve only
                    return
                value = val.get(metric, float("nan"))
                if math.isnan(value):
                    value = -sign * val["loss"]
                trial.report(value, epoch)
                if trial.should_prune():
                    trial.set_user_attr("pruned_at_epoch", epoch)
                    raise optuna.TrialPruned()

            result = fit(
                model, ds.subset(sp.train), ds.subset(sp.val), tc, progress=False, on_epoch=report
            )
            scores.append(result.best_score)
            trial.set_user_attr(f"fold{fold}_best_epoch", result.best_epoch)
            trial.set_user_attr(f"fold{fold}_{metric}", result.best_score)
        return float(np.mean(scores))

    return objective


def _progress_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    state = trial.state.name.lower()
    value = "" if trial.value is None else f" value={trial.value:.4f}"
    extra = (
        f" (at epoch {trial.user_attrs['pruned_at_epoch']})"
        if "pruned_at_epoch" in trial.user_attrs
        else ""
    )
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    try:
        best = f"best so far: trial {study.best_trial.number} value={study.best_value:.4f}"
    except ValueError:
        best = "no completed trial yet"
    print(
        f"trial {trial.number} {state}{extra}{value} [{params}] | {best}",
        file=sys.stderr,
        flush=True,
    )


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def run_study(
    data: pd.DataFrame | str | Path,
    settings: TuneSettings,
    *,
    n_trials: int,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> optuna.Study:
    """Run (or resume, or join) a study until it holds ``n_trials`` finished trials.

    ``n_trials`` counts complete and pruned trials of the whole study, across every worker and
    every earlier run, so rerunning the command after an interruption only runs what is missing.
    """
    name = study_name or _default_name(data, settings)
    storage = storage or f"sqlite:///{name}.db"
    ds, splits = _prepare(data, settings, workers)
    metric = primary_metric(ds.task_types)
    study = optuna.create_study(
        study_name=name,
        storage=_storage(storage),
        load_if_exists=True,
        direction="maximize" if HIGHER_IS_BETTER[metric] else "minimize",
        sampler=optuna.samplers.TPESampler(seed=None, multivariate=True, n_startup_trials=6),
        pruner=_pruner(settings.pruner, settings.epochs),
    )
    study.set_user_attr("metric", metric)
    study.set_user_attr("settings", json.dumps(asdict(settings)))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    callbacks: list[Callable] = [optuna.study.MaxTrialsCallback(n_trials, states=finished)]
    if progress:
        callbacks.append(_progress_line)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done < n_trials:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(
            _objective(ds, splits, settings, device),
            timeout=timeout,
            callbacks=callbacks,
            catch=(RuntimeError,),
            gc_after_trial=True,
        )
    return study


def _default_name(data: Any, s: TuneSettings) -> str:
    stem = Path(str(data)).name.split(".")[0] if not isinstance(data, pd.DataFrame) else "data"
    return f"{stem}-{'-'.join(s.target_columns)}"[:60].replace(" ", "_")


def export_best(study: optuna.Study, path: str | Path, storage: str | None = None) -> dict:
    """Write the best trial's configuration as JSON for ``molpred train --config``."""
    best = study.best_trial
    model_kw, train_kw = _replay(best.params)
    settings = json.loads(study.user_attrs.get("settings", "{}"))
    config = {
        "model_config": model_kw,
        "train_config": {**train_kw, "epochs": settings.get("epochs", 60)},
        "source": {
            "study": study.study_name,
            "trial": best.number,
            "value": best.value,
            "metric": study.user_attrs.get("metric"),
            "storage": redact(storage) if storage else None,
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
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{study.study_name}</title>"
        "</head><body style='font-family:sans-serif;max-width:1100px;margin:auto'>"
        f"<h1>Study {study.study_name}</h1><p>metric: {study.user_attrs.get('metric')} "
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
