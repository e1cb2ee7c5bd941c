"""Train a model: :func:`train` runs the whole pipeline from a labeled table to a model file.

The table is featurized (:mod:`molpred.data`) and split (:mod:`molpred.splits`; a
cross-validation ensemble for small data); each member starts from random weights or a
pretrained encoder (:mod:`molpred.transfer`), is fitted (:mod:`molpred.fitting`) and gets its
trees (:mod:`molpred.trees`), whose share is chosen once for all members; then the model is
calibrated (:mod:`molpred.trust.calibrate`) and tested. Nothing here parses command-line
arguments: the CLI, the page and the panel's build call :func:`train`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molpred.artifact import MolpredModel
from molpred.data import MoleculeDataset, prepare_dataset
from molpred.features import default_cache_dir
from molpred.fitting import (
    FitResult,
    TrainConfig,
    evaluate,
    fit,
    masked_loss,
    network_outputs,
    predict_dataset,
)
from molpred.io import DataError, read_table
from molpred.metrics import HIGHER_IS_BETTER, compute_metrics, primary_metric, primary_score
from molpred.models import ModelConfig, MolModel, build_model, float32_messages, resolve_device
from molpred.parallel import torch_section
from molpred.splits import (
    SPLIT_SIZES,
    Split,
    cross_validation_members,
    make_splits,
    parent_groups,
)
from molpred.transfer import (
    Pretrained,
    architecture,
    default_members,
    default_start,
    frozen_epochs,
    initialize,
    load_pretrained,
)
from molpred.trees import choose_weight, fit_trees, tree_features
from molpred.trust.calibrate import calibrate

__all__ = ["TrainProgress", "train"]


@dataclass(frozen=True)
class TrainProgress:
    """Where :func:`train` is: member ``member`` of ``members`` (0-based), epoch ``epoch`` of
    at most ``epochs``, and that epoch's validation ``metric`` (None without validation)."""

    member: int
    members: int
    epoch: int
    epochs: int
    metric: str
    value: float | None


@float32_messages()  # a model trained here is the one trained on any machine
def train(
    data: pd.DataFrame | str | Path,
    smiles_column: str | None,
    target_columns: Sequence[str],
    *,
    task_types: Sequence[str] | str | None = None,
    model_config: ModelConfig | dict | None = None,
    train_config: TrainConfig | None = None,
    split: str = "random",
    split_sizes: Sequence[float] = SPLIT_SIZES,
    folds: int = 5,
    split_column: str | None = None,
    splits_file: str | Path | None = None,
    replicate: int | None = None,
    ensemble_size: int = 1,
    cv_members: int | None = None,
    standardization: str = "none",
    workers: int | None = None,
    cache_dir: str | Path | None = "default",
    progress: bool = True,
    provenance: dict | None = None,
    init: Pretrained | MolpredModel | str | Path | None = "auto",
    on_epoch: Callable[[TrainProgress], None] | None = None,
    calibration: bool = True,
):
    """Train (and test) a model from a labeled table.

    ``init``: a model (file) whose encoder every member starts from (:mod:`molpred.transfer`);
    ``model_config`` then defaults to its architecture and must match its encoder. ``"auto"``
    (the default): the bundled pretrained encoder up to ``transfer.SMALL_DATA`` training and
    validation molecules, if ``model_config`` has its encoder (``transfer.default_start``);
    ``None``: random weights.
    ``on_epoch(progress)`` follows training epoch by epoch (the page's progress bar); it may
    raise to stop training.
    ``calibration=False`` skips the temperatures, conformal scores, error model and domain: for
    a model only used as an encoder (:mod:`molpred.pretrained.pretrain`, where the error
    models of 174 descriptor tasks took longer than the training).

    One model is trained per split (k-fold and multi-replicate split files give several) and per
    ensemble seed; all of them become members of the returned model, whose prediction is their
    mean. Test metrics are reported per member and as mean and standard deviation.
    ``cv_members``: K turns each split into K (:func:`molpred.splits.cross_validation_members`:
    each validates on its own fold of the training and validation rows, the test rows stay
    out). None (the default): ``transfer.default_members`` for a random or scaffold split (5 up
    to ``transfer.SMALL_DATA`` training and validation molecules), else 1.

    Returns
    -------
    model, metrics
        A :class:`molpred.artifact.MolpredModel` and a dict with ``test`` (mean over members),
        ``test_std``, ``members`` (one entry per trained member), ``n_problems``,
        ``primary_metric`` and ``init`` (the encoder's name, or None for random weights).
    """
    df = read_table(data) if not isinstance(data, pd.DataFrame) else data
    train_config = train_config or TrainConfig()
    # the device and the source first: a wrong name fails before minutes of featurization
    resolve_device(train_config.device)
    auto = isinstance(init, str) and init == "auto"
    if auto or init is None or isinstance(init, Pretrained):
        pretrained = None if auto else init
    else:
        pretrained = load_pretrained(init)
    if cache_dir == "default":
        cache_dir = default_cache_dir()
    ds = prepare_dataset(
        df,
        smiles_column,
        target_columns,
        task_types,
        workers=workers,
        cache_dir=cache_dir,
        standardization=standardization,
    )
    _two_classes(ds)
    if isinstance(model_config, dict):
        model_config = ModelConfig(**model_config)
    if split_column is not None and split_column not in df.columns:
        raise DataError(f"split column {split_column!r} not found")
    splits = make_splits(
        ds,
        split,
        sizes=split_sizes,
        folds=folds,
        seed=train_config.seed,
        split_labels=None if split_column is None else df[split_column].tolist(),
        splits_file=splits_file,
        replicate=replicate,
    )
    # counted: what a member learns from (training and validation rows)
    n_learn = len(splits[0].train) + len(splits[0].val) if splits else 0
    parents = parent_groups(ds.smiles)  # a salt and its free base in one member's fold
    if cv_members is None:  # the user's own validation rows (a file, a column) stay as given
        chosen = split in ("random", "scaffold") and split_column is None and splits_file is None
        # counted by parent structure: whole groups fill the members' folds
        learn = np.concatenate([splits[0].train, splits[0].val]) if splits else []
        distinct = n_learn if parents is None else len({parents[i] for i in learn})
        cv_members = default_members(distinct) if chosen and len(splits) == 1 else 1
    if cv_members > 1:
        splits = [
            member
            for sp in splits
            for member in cross_validation_members(sp, cv_members, train_config.seed, parents)
        ]
    if auto and splits:
        pretrained = default_start(n_learn, model_config)
    if pretrained is not None:
        model_config = architecture(model_config, pretrained)
        provenance = {**(provenance or {}), "init": pretrained.provenance()}
        if train_config.freeze_epochs is None:
            train_config = replace(train_config, freeze_epochs=frozen_epochs(train_config.epochs))
    model_config = replace(model_config or ModelConfig(), task_types=tuple(ds.task_types))
    # no worker pool forks from another thread while this one is inside torch
    with torch_section():
        members, reports, groups = _fit_members(
            ds, splits, model_config, train_config, ensemble_size, pretrained, on_epoch, progress
        )
        calibrated, domain = (
            calibrate(groups, ds, seed=train_config.seed) if calibration else (None, None)
        )
    keys = sorted({k for r in reports for k in r["test"]})
    with warnings.catch_warnings():  # a metric undefined in every member stays NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = {k: float(np.nanmean([r["test"].get(k, np.nan) for r in reports])) for k in keys}
        std = {k: float(np.nanstd([r["test"].get(k, np.nan) for r in reports])) for k in keys}
    metrics = {
        "test": mean,
        "test_std": std,
        "members": reports,
        "n_problems": len(ds.problems),
        "primary_metric": primary_metric(ds.task_types),
        "init": None if pretrained is None else pretrained.name,
    }
    ensemble = _ensemble_test(members, ds, splits)
    if ensemble:
        metrics["test_ensemble"] = ensemble
    model = MolpredModel.from_training(
        members,
        ds,
        model_config=asdict(model_config),
        train_config=asdict(train_config),
        metrics=metrics,
        split=split if split_column is None and splits_file is None else "user",
        provenance=provenance,
        calibration=calibrated,
        domain=domain,
        standardization=standardization,
    )
    return model, metrics


def _ensemble_test(members: Sequence[MolModel], ds: MoleculeDataset, splits) -> dict:
    """Test metrics of the members' mean prediction, when every member has the same test rows
    (seeds, or a cross-validation ensemble); empty otherwise."""
    test = splits[0].test if splits else np.array([], dtype=np.int64)
    same = all(np.array_equal(sp.test, test) for sp in splits)
    if len(members) < 2 or not len(test) or not same:
        return {}
    rows = ds.subset(test)
    mean = np.mean([predict_dataset(m, rows) for m in members], axis=0)
    return compute_metrics(rows.targets, mean, ds.task_names, ds.task_types)


def _fit_members(
    ds, splits, model_config, train_config, ensemble_size, pretrained, on_epoch, progress
):
    """One member per split and ensemble seed: the members, their reports, and per split the
    members with its training and validation rows (for calibration)."""
    fitted: list[tuple[MolModel, Split, TrainConfig, FitResult]] = []
    for s_i, sp in enumerate(splits):
        for e_i in range(ensemble_size):
            cfg = replace(train_config, seed=train_config.seed + e_i)
            torch.manual_seed(cfg.seed)
            model = build_model(model_config)
            if pretrained is not None:
                initialize(model, pretrained)
            report = None
            if on_epoch is not None:
                metric = primary_metric(ds.task_types)
                member = (s_i * ensemble_size + e_i, len(splits) * ensemble_size)

                def report(epoch, val, member=member, metric=metric, cfg=cfg):
                    on_epoch(TrainProgress(*member, epoch, cfg.epochs, metric, val.get(metric)))

            result = fit(
                model,
                ds.subset(sp.train),
                ds.subset(sp.val),
                cfg,
                progress=progress,
                on_epoch=report,
            )
            if cfg.trees:
                model.trees = _fit_trees(model, ds.subset(sp.train), ds.subset(sp.val), cfg.seed)
            fitted.append((model, sp, cfg, result))
    _share_blend(ds, [(model, sp.val) for model, sp, _, _ in fitted])
    members: list[MolModel] = []
    reports: list[dict] = []
    groups = [([], sp.train, sp.val) for sp in splits]
    for i, (model, sp, cfg, result) in enumerate(fitted):
        test = evaluate(model, ds.subset(sp.test)) if len(sp.test) else {}
        val = evaluate(model, ds.subset(sp.val)) if len(sp.val) else {}
        members.append(model.cpu())
        groups[i // ensemble_size][0].append(model)
        reports.append(
            {
                "split": i // ensemble_size,
                "seed": cfg.seed,
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "seconds": result.seconds,
                "seconds_to_best": result.seconds_to_best,
                "n_train": len(sp.train),
                "n_val": len(sp.val),
                "n_test": len(sp.test),
                # the network's share of the blend; None: no trees (the network alone)
                "trees_weight": None if model.trees is None else model.trees.weight,
                "val": val,
                "test": test,
            }
        )
    return members, reports, groups


def _fit_trees(model: MolModel, train: MoleculeDataset, val: MoleculeDataset, seed: int):
    """The member's trees (:mod:`molpred.trees`), their share not yet chosen; None without
    validation rows. Targets go to the network's raw space: standardized values, 0/1 labels."""

    def raw_targets(ds: MoleculeDataset) -> np.ndarray:
        mean, scale = model.y_mean.cpu().numpy(), model.y_scale.cpu().numpy()
        regression = np.array([k == "regression" for k in ds.task_types])
        return np.where(regression, (ds.targets - mean) / scale, ds.targets)

    return fit_trees(
        tree_features(train.fingerprints, train.descriptors),
        raw_targets(train),
        tree_features(val.fingerprints, val.descriptors),
        raw_targets(val),
        train.task_types,
        seed=seed,
    )


@torch.no_grad()
def _share_blend(ds: MoleculeDataset, members: Sequence[tuple[MolModel, np.ndarray]]) -> None:
    """One network share for the blend of every member with trees, chosen on their validation
    rows pooled (:func:`molpred.trees.choose_weight`, with as many rows as distinct molecules
    among them): a cross-validation ensemble's members, each holding out its own fold, choose
    from every molecule rather than a fold each. At a share of 1.0 the members drop their
    trees."""
    blended = [(model, rows) for model, rows in members if model.trees is not None]
    if not blended:
        return
    metric = primary_metric(ds.task_types)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    parts = []
    for model, rows in blended:
        val = ds.subset(rows)
        device = model.y_scale.device
        trees = model.trees.raw(tree_features(val.fingerprints, val.descriptors))
        targets = np.asarray(val.targets, dtype=np.float32)
        network = network_outputs(model, val).to(device)
        parts.append((model, network, torch.from_numpy(trees).to(device), targets))
    all_targets = np.concatenate([p[3] for p in parts])
    labels = [np.isfinite(p[3]).sum() for p in parts]

    def score(weight: float) -> float:
        mixed = [(m, m.trees.mix(net, tr, weight), y) for m, net, tr, y in parts]
        if metric == "loss":  # regression and classification tasks together: per label
            losses = [
                masked_loss(m, raw, torch.from_numpy(y).to(raw.device)).item()
                for m, raw, y in mixed
            ]
            return -float(np.average(losses, weights=labels))
        units = np.concatenate([m.to_units(raw).cpu().numpy() for m, raw, _ in mixed])
        return sign * primary_score(all_targets, units, ds.task_types)

    n_rows = len(np.unique(np.concatenate([rows for _, rows in blended])))
    weight = choose_weight(score, n_rows)
    for model, _ in blended:
        if weight == 1.0:
            model.trees = None  # the network alone: nothing to carry
        else:
            model.trees.weight = weight


def _two_classes(ds: MoleculeDataset) -> None:
    """A classification task needs both classes among its usable labels: from one class a
    model learns nothing, yet would score every molecule confidently as that class."""
    for t, (name, kind) in enumerate(zip(ds.task_names, ds.task_types, strict=True)):
        labels = ds.targets[:, t]
        classes = np.unique(labels[~np.isnan(labels)])
        if kind == "classification" and len(classes) < 2:
            found = f"all {int(classes[0])}" if len(classes) else "no labels"
            raise DataError(
                f"classification target {name!r} has one class only ({found} in "
                f"{int((~np.isnan(labels)).sum())} usable rows): a model needs molecules of "
                "both classes"
            )
