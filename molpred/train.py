"""Fit and evaluate models; :func:`train` runs the whole pipeline from a table to a model file.

Nothing here parses command-line arguments: the CLI and the tuner call these functions.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from molpred.artifact import MolpredModel
from molpred.data import MoleculeDataset, prepare_dataset
from molpred.features import collate
from molpred.io import DataError, read_table
from molpred.metrics import HIGHER_IS_BETTER, compute_metrics, primary_metric, primary_score
from molpred.models import ModelConfig, MolModel, build_model, resolve_device
from molpred.parallel import torch_section
from molpred.splits import Split, cross_validation_members, make_splits
from molpred.transfer import (
    FREEZE_EPOCHS,
    Pretrained,
    architecture,
    default_members,
    default_start,
    initialize,
    load_pretrained,
    set_frozen,
)
from molpred.trees import choose_weight, fit_trees, tree_features
from molpred.trust.calibrate import calibrate

__all__ = [
    "TrainConfig",
    "TrainProgress",
    "FitResult",
    "fit",
    "evaluate",
    "predict_dataset",
    "train",
    "default_cache_dir",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimization settings. Stored in every model file."""

    epochs: int = 60
    batch_size: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    grad_clip: float = 10.0
    patience: int = 20
    seed: int = 0
    device: str = "auto"
    # epochs in which only the head learns (the encoder and pooling are frozen); None: 0, or
    # molpred.transfer.FREEZE_EPOCHS when training starts from a pretrained encoder
    freeze_epochs: int | None = None
    # blend gradient-boosted trees on fingerprints and descriptors into every member, with the
    # network's share chosen on the validation rows (molpred.trees)
    trees: bool = True


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


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    metric: str
    history: list[dict[str, float]]
    seconds: float
    seconds_to_best: float


def default_cache_dir() -> Path:
    import os

    root = os.environ.get("MOLPRED_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "molpred"
    )
    return Path(root) / "features"


def _batches(ds: MoleculeDataset, batch_size: int, order: np.ndarray | None = None):
    order = np.arange(len(ds)) if order is None else order
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield collate([ds.graphs[i] for i in idx], ds.descriptors[idx], ds.targets[idx])


def _loss(
    model: MolModel, out: torch.Tensor, y: torch.Tensor, log_var: torch.Tensor | None = None
) -> torch.Tensor:
    """Masked loss: MSE on standardized regression targets, BCE on classification logits.

    With ``log_var`` (the variance head), the Gaussian negative log-likelihood of the residual of
    the *detached* mean is added for regression tasks: it trains the variance head alone.
    """
    mask = ~torch.isnan(y)
    y_std = torch.where(model.is_classification, y, (y - model.y_mean) / model.y_scale)
    y_std = torch.nan_to_num(y_std)
    mse = (out - y_std) ** 2
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out, y_std, reduction="none")
    per = torch.where(model.is_classification, bce, mse)
    if log_var is not None:
        log_var = log_var.clamp(-20, 20)
        nll = 0.5 * (log_var + (out.detach() - y_std) ** 2 * torch.exp(-log_var))
        per = per + torch.where(model.is_classification, torch.zeros_like(nll), nll)
    return (per * mask).sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def network_outputs(model: MolModel, ds: MoleculeDataset, batch_size: int = 256) -> torch.Tensor:
    """The network's raw outputs (standardized values / logits), ``[N, T]`` on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    outs = [model(b.to(device)).cpu() for b in _batches(ds, batch_size)]
    return torch.cat(outs) if outs else torch.zeros((0, model.config.n_tasks))


def member_raw_outputs(model: MolModel, ds: MoleculeDataset, batch_size: int = 256) -> torch.Tensor:
    """The member's raw outputs ``[N, T]`` on its device: the network's, trees blended in
    where it has them."""
    raw = network_outputs(model, ds, batch_size)
    if model.trees is not None:
        raw = model.trees.blend(raw, tree_features(ds.fingerprints, ds.descriptors))
    return raw.to(model.y_scale.device)


@torch.no_grad()
def predict_dataset(model: MolModel, ds: MoleculeDataset, batch_size: int = 256) -> np.ndarray:
    """Predictions in data units (probabilities for classification), ``[N, T]``."""
    return model.to_units(member_raw_outputs(model, ds, batch_size)).cpu().numpy()


@torch.no_grad()
def evaluate(model: MolModel, ds: MoleculeDataset) -> dict[str, float]:
    """Metrics of ``model`` on ``ds`` (per task and averaged), plus the loss (masked mean over
    every label, of the same outputs)."""
    raw = member_raw_outputs(model, ds)
    metrics = compute_metrics(
        ds.targets, model.to_units(raw).cpu().numpy(), ds.task_names, ds.task_types
    )
    targets = torch.from_numpy(np.asarray(ds.targets, dtype=np.float32)).to(raw.device)
    metrics["loss"] = _loss(model, raw, targets).item() if len(ds) else float("nan")
    return metrics


def _fit_scalers(model: MolModel, train: MoleculeDataset) -> None:
    desc = train.descriptors
    model.desc_mean.copy_(torch.from_numpy(desc.mean(0)))
    model.desc_scale.copy_(torch.from_numpy(np.where(desc.std(0) > 1e-6, desc.std(0), 1.0)))
    y = train.targets
    for t, kind in enumerate(train.task_types):
        col = y[:, t][~np.isnan(y[:, t])].astype(np.float64)  # float32 squares overflow
        if kind == "regression" and len(col):
            model.y_mean[t] = float(col.mean())
            model.y_scale[t] = float(col.std()) if col.std() > 1e-8 else 1.0


def _lr_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up from 10% to 100%, then cosine decay to 10% of the peak rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return 0.1 + 0.9 * step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def fit(
    model: MolModel,
    train: MoleculeDataset,
    val: MoleculeDataset,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``model`` in place; the weights of the best validation epoch are restored.

    ``on_epoch(epoch, val_metrics)`` is called after every epoch (the tuner prunes from it; it may
    raise to stop training).
    """
    if len(train) == 0:
        raise DataError("the training split is empty")
    # Same data, config and seed give byte-identical weights: without this, the threaded CPU
    # scatter/index kernels sum in a varying order and runs drift apart (tests/test_train.py).
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _fit(model, train, val, config, progress, on_epoch)
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _fit(model, train, val, config, progress, on_epoch) -> FitResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    _fit_scalers(model, train)
    model.to(device)
    metric = primary_metric(train.task_types)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch)
    )
    best = (-math.inf, 0, copy.deepcopy(model.state_dict()), 0.0)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(
        range(1, config.epochs + 1),
        desc="train",
        unit="epoch",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    frozen_epochs = config.freeze_epochs or 0
    for epoch in bar:
        if frozen_epochs:
            set_frozen(model, epoch <= frozen_epochs)
        model.train()
        total, count = 0.0, 0
        for batch in _batches(train, config.batch_size, rng.permutation(len(train))):
            if batch.num_graphs < 2 and count:  # a 1-molecule last batch adds only noise
                continue
            batch = batch.to(device)
            out, log_var, _ = model.forward_with_variance(batch)
            loss = _loss(model, out, batch.y, log_var)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            total += loss.item() * batch.num_graphs
            count += batch.num_graphs
        val_metrics = evaluate(model, val) if len(val) else {"loss": total / count}
        score = val_metrics.get(metric, float("nan"))
        if math.isnan(score):  # e.g. one class only in validation: fall back to the loss
            score = -val_metrics["loss"] * sign
        history.append({"epoch": epoch, "train_loss": total / count, **val_metrics})
        if sign * score > best[0]:
            best = (
                sign * score,
                epoch,
                copy.deepcopy(model.state_dict()),
                time.perf_counter() - start,
            )
        bar.set_postfix(
            loss=f"{total / count:.3f}", **{f"val_{metric}": f"{score:.3f}"}, best=best[1]
        )
        if on_epoch is not None:
            on_epoch(epoch, val_metrics)
        if epoch - best[1] >= config.patience:
            break
    bar.close()
    set_frozen(model, False)
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(best[1], sign * best[0], metric, history, time.perf_counter() - start, best[3])


def train(
    data: pd.DataFrame | str | Path,
    smiles_column: str,
    target_columns: Sequence[str],
    *,
    task_types: Sequence[str] | str | None = None,
    model_config: ModelConfig | dict | None = None,
    train_config: TrainConfig | None = None,
    split: str = "random",
    split_sizes: Sequence[float] = (0.8, 0.1, 0.1),
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
):
    """Train (and test) a model from a labeled table.

    ``init``: a model (file) whose encoder every member starts from (:mod:`molpred.transfer`);
    ``model_config`` then defaults to its architecture and must match its encoder. ``"auto"``
    (the default): the bundled pretrained encoder up to ``transfer.SMALL_DATA`` training and
    validation molecules, if ``model_config`` has its encoder (``transfer.default_start``);
    ``None``: random weights.
    ``on_epoch(progress)`` follows training epoch by epoch (the page's progress bar); it may
    raise to stop training.

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
    # the source first: a wrong name fails before minutes of featurization
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
    if cv_members is None:  # the user's own validation rows (a file, a column) stay as given
        chosen = split in ("random", "scaffold") and split_column is None and splits_file is None
        cv_members = default_members(n_learn) if chosen and len(splits) == 1 else 1
    if cv_members > 1:
        splits = [
            member
            for sp in splits
            for member in cross_validation_members(sp, cv_members, train_config.seed)
        ]
    if auto and splits:
        pretrained = default_start(n_learn, model_config)
    if pretrained is not None:
        model_config = architecture(model_config, pretrained)
        provenance = {**(provenance or {}), "init": pretrained.provenance()}
        if train_config.freeze_epochs is None:
            train_config = replace(train_config, freeze_epochs=FREEZE_EPOCHS)
    model_config = replace(model_config or ModelConfig(), task_types=tuple(ds.task_types))
    # no worker pool forks from another thread while this one is inside torch
    with torch_section():
        members, reports, groups = _fit_members(
            ds, splits, model_config, train_config, ensemble_size, pretrained, on_epoch, progress
        )
        calibration, domain = calibrate(groups, ds, seed=train_config.seed)
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
        calibration=calibration,
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
                _loss(m, raw, torch.from_numpy(y).to(raw.device)).item() for m, raw, y in mixed
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
