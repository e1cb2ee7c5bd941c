"""Start a model from another model's encoder (``molpred train --init MODEL``).

The message-passing encoder and the pooling of the source model's first member are copied
into every new member; the head (and variance head) start fresh, sized for the new tasks. During
the first ``TrainConfig.freeze_epochs`` epochs only the head learns, so its random start does
not wreck the pretrained representation; then everything trains together.

The new model file is self-contained: the copied weights are in it, and its provenance names
the source (file name, card, SHA-256 of the source's weights), so nothing refers to a file that
may be missing later.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from molpred.artifact import MolpredModel, load_model
from molpred.io import DataError
from molpred.models import ENCODER_PARTS, ModelConfig
from molpred.pretrained import HERE

__all__ = [
    "FREEZE_EPOCHS",
    "SMALL_DATA",
    "SMALL_DATA_MEMBERS",
    "ENCODER",
    "Pretrained",
    "load_pretrained",
    "default_start",
    "default_members",
    "architecture",
    "frozen_epochs",
    "initialize",
]

FREEZE_EPOCHS = 5  # head-only epochs when TrainConfig.freeze_epochs is None (see frozen_epochs)
# up to this many training and validation molecules plain training (and the page) starts from
# the pretrained encoder; chosen on validation rows by benchmarks/learning_curves.py (RESULTS.md)
SMALL_DATA = 400
# and trains this many members by cross-validation (benchmarks/learning_curves.py --members)
SMALL_DATA_MEMBERS = 5
ENCODER = "encoder"  # the bundled encoder pretrained for this (molpred/pretrained/pretrain.py)

# what an encoder's weights depend on: a new model must match the source in these
ARCHITECTURE = ("encoder", "hidden_size", "depth", "pooling")


@dataclass(frozen=True)
class Pretrained:
    """The transferable part of a model: encoder and pooling weights, and their architecture."""

    state: dict[str, torch.Tensor]
    config: ModelConfig
    name: str
    sha256: str

    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "weights_sha256": self.sha256}


def load_pretrained(source: MolpredModel | str | Path) -> Pretrained:
    """The encoder of a model file, of a bundled model by name (``encoder``: the one
    pretrained for this; or any bundled model's), or of a loaded model."""
    if isinstance(source, str) and not Path(source).exists() and (HERE / f"{source}.pt").is_file():
        source = HERE / f"{source}.pt"
    model = source if isinstance(source, MolpredModel) else load_model(source)
    name = model.info.card or (Path(source).name if not isinstance(source, MolpredModel) else "")
    member = model.members[0]
    state = {
        k: v.detach().cpu().clone()
        for k, v in member.state_dict().items()
        if k.startswith(ENCODER_PARTS)
    }
    # the digest a file of this model stores as its weights_sha256 (the same as the source
    # file's own, for files written by molpred since trees came in): what identifies it
    return Pretrained(state, member.config, name or "model", model.weights_sha256())


def default_start(n_molecules: int, requested: ModelConfig | None) -> Pretrained | None:
    """What plain training starts from: the bundled pretrained encoder when a model learns
    from at most :data:`SMALL_DATA` molecules (training and validation rows) and the
    requested architecture (if any) has its encoder; otherwise nothing (random weights)."""
    if n_molecules > SMALL_DATA or not (HERE / f"{ENCODER}.pt").is_file():
        return None
    pretrained = load_pretrained(HERE / f"{ENCODER}.pt")
    if requested is not None and any(
        getattr(requested, f) != getattr(pretrained.config, f) for f in ARCHITECTURE
    ):
        return None
    return pretrained


def default_members(n_molecules: int) -> int:
    """How many members plain training trains from one split, by cross-validation
    (``molpred.train``'s ``cv_members``): :data:`SMALL_DATA_MEMBERS` from at most
    :data:`SMALL_DATA` training and validation molecules (and at least two validation rows per
    fold), else 1. At these sizes a member trains in seconds, and one validation cut of a few
    molecules is a poor judge of early stopping and of the trees' share."""
    return SMALL_DATA_MEMBERS if 2 * SMALL_DATA_MEMBERS <= n_molecules <= SMALL_DATA else 1


def architecture(requested: ModelConfig | None, pretrained: Pretrained) -> ModelConfig:
    """The new model's configuration: the source's encoder with ``requested``'s head settings
    (all of the source's when nothing is requested). A requested encoder that differs from the
    source's is an error, not a silent switch."""
    source = pretrained.config
    if requested is None:  # molpred's default model around the source's encoder
        return replace(ModelConfig(), **{f: getattr(source, f) for f in ARCHITECTURE})
    clash = {
        f: (getattr(requested, f), getattr(source, f))
        for f in ARCHITECTURE
        if getattr(requested, f) != getattr(source, f)
    }
    if clash:
        detail = ", ".join(
            f"{f} {new!r} (the source has {old!r})" for f, (new, old) in clash.items()
        )
        raise DataError(f"--init {pretrained.name}: the encoder must match the source's: {detail}")
    return requested


def frozen_epochs(epochs: int) -> int:
    """Head-only epochs by default: :data:`FREEZE_EPOCHS`, but never more than half of the run
    (a 5-epoch run from the page would otherwise never train the encoder)."""
    return min(FREEZE_EPOCHS, epochs // 2)


def initialize(model: nn.Module, pretrained: Pretrained) -> None:
    """Copy the pretrained encoder and pooling into ``model`` (its head stays as built)."""
    own = model.state_dict()
    misfit = [k for k, v in pretrained.state.items() if k not in own or own[k].shape != v.shape]
    if misfit:  # e.g. a model file from another featurizer version
        raise DataError(
            f"--init {pretrained.name}: its encoder does not fit this one ({', '.join(misfit[:3])})"
        )
    model.load_state_dict(pretrained.state, strict=False)
