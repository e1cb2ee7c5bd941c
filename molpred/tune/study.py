"""One study: the search space, the objective (a network trained per split, its validation
metric reported every epoch for pruning), and :func:`run_study`, which runs, resumes or joins a
study in its storage."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch

from molpred.data import MoleculeDataset, prepare_dataset
from molpred.features import default_cache_dir
from molpred.fitting import TrainConfig, fit
from molpred.io import read_table
from molpred.metrics import HIGHER_IS_BETTER, primary_metric
from molpred.models import ModelConfig, build_model, resolve_device
from molpred.splits import Split, make_splits
from molpred.tune.storage import StudyError, claim, open_storage, storage_url

__all__ = ["suggest", "TuneSettings", "run_study", "FAILURES_IN_A_ROW"]

# trials in a row that may fail in one worker (a CUDA out-of-memory trial is one failure; a
# failure every time is a cause to fix, not a search to go on with)
FAILURES_IN_A_ROW = 5


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


def _pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=4)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=5, max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose median, hyperband or none")


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
    split = ("scaffold-kfold" if s.split == "scaffold" else "kfold") if s.cv else s.split
    splits = make_splits(
        ds, split, folds=max(s.cv, 2), seed=s.seed, splits_file=s.splits_file, replicate=s.replicate
    )
    return ds, splits


def _objective(ds: MoleculeDataset, splits, s: TuneSettings, device: str) -> Callable:
    metric = primary_metric(ds.task_types)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0

    def objective(trial: optuna.Trial) -> float:
        try:
            return trial_value(trial)
        except RuntimeError as exc:  # the trial fails; why is kept with it
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise

    def trial_value(trial: optuna.Trial) -> float:
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
            # the metric itself: where it is undefined (one class in the fold's validation
            # rows), fit chose the epoch by the loss, which is not a value of the metric
            best = next((h for h in result.history if h["epoch"] == result.best_epoch), {})
            value = best.get(metric, float("nan"))  # {}: no epoch had a usable validation score
            scores.append(value)
            trial.set_user_attr(f"fold{fold}_best_epoch", result.best_epoch)
            trial.set_user_attr(f"fold{fold}_{metric}", None if math.isnan(value) else value)
        if all(math.isnan(v) for v in scores):
            raise StudyError(
                f"{metric} cannot be computed on the validation rows of any split (one class "
                "only in each): use more data, --split random or --cv"
            )
        return float(np.nanmean(scores))

    return objective


def _progress_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    state = trial.state.name.lower()
    value = "" if trial.value is None else f" value={trial.value:.4f}"
    extra = (
        f" (at epoch {trial.user_attrs['pruned_at_epoch']})"
        if "pruned_at_epoch" in trial.user_attrs
        else f" ({trial.user_attrs['error']})"
        if "error" in trial.user_attrs
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
    ``storage``: an RDB URL, a SQLite file path, or None for ``<study name>.db`` here.
    Raises :class:`StudyError` when the study of that name asks another question (other
    metric, targets, molecules, splits or budget) or when this worker's trials keep failing.
    """
    resolve_device(device)  # the options first: a typo fails before minutes of featurization
    name = study_name or _default_name(data, settings)
    rdb = open_storage(storage_url(storage, name))
    ds, splits = _prepare(data, settings, workers)
    if progress and len(ds.problems):
        print(
            f"{len(ds.problems)} input row(s) or label(s) left out (invalid SMILES, unusable "
            "or missing labels); the study uses the other rows",
            file=sys.stderr,
        )
    metric = primary_metric(ds.task_types)
    direction = "maximize" if HIGHER_IS_BETTER[metric] else "minimize"
    study = optuna.create_study(
        study_name=name,
        storage=rdb,
        load_if_exists=True,
        direction=direction,
        # not seeded: workers sharing a study must not propose the same trials (--seed fixes
        # the splits and the networks' initial weights)
        sampler=optuna.samplers.TPESampler(seed=None, multivariate=True, n_startup_trials=6),
        pruner=_pruner(settings.pruner, settings.epochs),
    )
    claim(study, _question(ds, splits, settings, metric), json.dumps(asdict(settings)))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    failures = _FailureLimit(FAILURES_IN_A_ROW)
    callbacks: list[Callable] = [optuna.study.MaxTrialsCallback(n_trials, states=finished)]
    callbacks.append(failures)
    if progress:
        callbacks.append(_progress_line)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done < n_trials:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(
            _objective(ds, splits, settings, device),
            timeout=timeout,
            callbacks=callbacks,
            catch=(RuntimeError,),  # e.g. CUDA out of memory for one large trial
            gc_after_trial=True,
        )
    failures.check()
    return study


def _question(ds: MoleculeDataset, splits: list[Split], s: TuneSettings, metric: str) -> dict:
    """What a study's values answer: trials are comparable only under the same question."""
    molecules = hashlib.sha256()
    for smiles in ds.smiles:
        molecules.update(smiles.encode() + b"\n")
    molecules.update(np.ascontiguousarray(ds.targets, dtype=np.float32).tobytes())
    assignment = hashlib.sha256()
    for split in splits:
        for part in split:
            assignment.update(np.asarray(part, dtype=np.int64).tobytes() + b"|")
    return {
        "metric": metric,
        "targets": list(s.target_columns),
        "task_types": list(ds.task_types),
        "molecules": f"{len(ds)}, sha256 {molecules.hexdigest()[:16]}",
        "splits": f"{len(splits)}, sha256 {assignment.hexdigest()[:16]}",
        "epochs": s.epochs,
        "patience": s.patience,
        "seed": s.seed,
    }


class _FailureLimit:
    """A study callback that stops this worker after ``limit`` failed trials in a row;
    :meth:`check` then raises with the last failure's reason."""

    def __init__(self, limit: int) -> None:
        self.limit, self.in_a_row, self.reason = limit, 0, ""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.FAIL:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.reason = trial.user_attrs.get("error", "no reason recorded")
        if self.in_a_row >= self.limit:
            study.stop()

    def check(self) -> None:
        if self.in_a_row >= self.limit:
            raise StudyError(
                f"{self.in_a_row} trials in a row failed, so this worker stopped; the last: "
                f"{self.reason}"
            )


def _default_name(data: Any, s: TuneSettings) -> str:
    stem = Path(str(data)).name.split(".")[0] if not isinstance(data, pd.DataFrame) else "data"
    return f"{stem}-{'-'.join(s.target_columns)}"[:60].replace(" ", "_")
