"""One network fitted: the optimization settings, the training loop (AdamW, warm-up then cosine
decay, early stopping on the validation metric, the best epoch's weights restored), its masked
loss, and a member's outputs and metrics on a dataset.

:func:`molpred.train.train` fits every member of a model with :func:`fit`; the tuner fits its
trials with it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from molpred.data import MoleculeDataset
from molpred.features import collate
from molpred.io import DataError
from molpred.metrics import HIGHER_IS_BETTER, compute_metrics, primary_metric
from molpred.models import MolModel, float32_messages, resolve_device
from molpred.trees import tree_features

__all__ = [
    "TrainConfig",
    "FitResult",
    "fit",
    "evaluate",
    "masked_loss",
    "network_outputs",
    "member_raw_outputs",
    "predict_dataset",
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
    # molpred.transfer.frozen_epochs(epochs) when training starts from a pretrained encoder
    freeze_epochs: int | None = None
    # blend gradient-boosted trees on fingerprints and descriptors into every member, with the
    # network's share chosen on the validation rows (molpred.trees)
    trees: bool = True


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    metric: str
    history: list[dict[str, float]]
    seconds: float
    seconds_to_best: float


def _batches(ds: MoleculeDataset, batch_size: int, order: np.ndarray | None = None):
    order = np.arange(len(ds)) if order is None else order
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield collate([ds.graphs[i] for i in idx], ds.descriptors[idx], ds.targets[idx])


def masked_loss(
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
@float32_messages()  # training's view of a model: the same on every machine
def network_outputs(model: MolModel, ds: MoleculeDataset, batch_size: int = 256) -> torch.Tensor:
    """The network's raw outputs (standardized values / logits), ``[N, T]`` on the CPU, with
    float32 messages (as in training; scoring uses :func:`molpred.models.message_dtype`)."""
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
    metrics["loss"] = masked_loss(model, raw, targets).item() if len(ds) else float("nan")
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


@float32_messages()  # validation passes too: the best epoch is the same on any machine
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
            model.freeze_encoder(epoch <= frozen_epochs)
        model.train()
        total, count = 0.0, 0
        for batch in _batches(train, config.batch_size, rng.permutation(len(train))):
            if batch.num_graphs < 2 and count:  # a 1-molecule last batch adds only noise
                continue
            batch = batch.to(device)
            out, log_var, _ = model.forward_with_variance(batch)
            loss = masked_loss(model, out, batch.y, log_var)
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
        # patience counts from the first epoch that trains the encoder: a source encoder's
        # head-only epochs are a warm-up, not evidence that training has stopped improving
        if epoch > frozen_epochs and epoch - max(best[1], frozen_epochs) >= config.patience:
            break
    bar.close()
    model.freeze_encoder(False)
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(best[1], sign * best[0], metric, history, time.perf_counter() - start, best[3])
