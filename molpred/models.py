"""Encoder -> pooling -> head, composed from parts and configured by one frozen dataclass.

Encoders:

- ``dmpnn``: directed bond message passing in the style of chemprop's D-MPNN. Hidden states
  live on directed edges; a message into edge ``v->w`` sums the states of edges entering ``v``
  except the reverse edge ``w->v``.
- ``gine``: PyG's :class:`~torch_geometric.nn.GINEConv` with residual connections.

Input batches come from :func:`molpred.features.collate`; :func:`member_outputs` runs every
member of an ensemble over featurized molecules.

Precision: at inference on a CPU that multiplies bfloat16 natively (AVX512-BF16 or AMX), the
D-MPNN's messages are bfloat16 (its matrix products accumulate in float32, its sums of incoming
messages in bfloat16); everything else (the embeddings, pooling, descriptors, heads, outputs)
stays float32. The products are about half of a model's scoring time; predictions move by a
few thousandths of their units (``benchmarks/precision.py``). ``MOLPRED_PRECISION=float32``
keeps every step in float32 (numbers identical across machines). Training, including its
validation passes and calibration, always runs in float32 (:func:`float32_messages`): a model
trained on one machine is the one trained on another.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GINEConv, aggr

from molpred.features import Featurized, collate
from molpred.featurize import DESCRIPTOR_NAMES, atom_field_sizes, bond_field_sizes
from molpred.trees import tree_features

__all__ = [
    "ModelConfig",
    "MolModel",
    "build_model",
    "member_outputs",
    "resolve_device",
    "ENCODERS",
    "POOLINGS",
    "ENCODER_PARTS",
    "message_dtype",
    "float32_messages",
]


# the parameters of the representation (what a pretrained encoder passes on to a new model);
# the rest are the heads'
ENCODER_PARTS = ("encoder.", "pool.")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model. Stored in every model file via ``dataclasses.asdict``."""

    encoder: str = "dmpnn"
    hidden_size: int = 200
    depth: int = 3
    dropout: float = 0.0
    pooling: str = "mean"
    head_hidden_size: int = 300
    head_layers: int = 2
    descriptors: bool = True
    descriptor_clip: float = 5.0  # standardized descriptors are clipped to +-this many sd
    variance_head: bool = True  # regression tasks also predict their variance (see MolModel)
    task_types: tuple[str, ...] = field(default=("regression",))

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose from {sorted(ENCODERS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose from {sorted(POOLINGS)}")
        if self.depth < 1 or self.hidden_size < 1 or self.head_layers < 1:
            raise ValueError("depth, hidden_size and head_layers must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "task_types", tuple(self.task_types))

    @property
    def n_tasks(self) -> int:
        return len(self.task_types)


class FieldEmbedding(nn.Module):
    """Sum of one embedding per categorical field: equal to ``one_hot(codes) @ W``.

    Shapes: ``codes [N, F]`` long -> ``[N, out]``.
    """

    def __init__(self, sizes: Sequence[int], out: int):
        super().__init__()
        # EmbeddingBag sums the rows without materializing [N, F, out]: ~3x faster than
        # Embedding(...).sum(1) at inference (measured).
        self.embedding = nn.EmbeddingBag(sum(sizes), out, mode="sum")
        offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, codes: Tensor) -> Tensor:
        return self.embedding(codes + self.offsets)


class AtomEmbedding(nn.Module):
    """Atom codes and mass -> ``[N, out]``."""

    def __init__(self, out: int, bias: bool = True):
        super().__init__()
        self.fields = FieldEmbedding(atom_field_sizes(), out)
        self.mass = nn.Linear(1, out, bias=bias)

    def forward(self, x: Tensor, atom_mass: Tensor, gate: Tensor | None = None) -> Tensor:
        out = self.fields(x) + self.mass(atom_mass)
        return out if gate is None else out * gate


PRECISIONS = ("", "float32")  # MOLPRED_PRECISION: unset (the default) or float32
_FLOAT32 = contextvars.ContextVar("molpred_float32_messages", default=False)


def message_dtype(device: torch.device) -> torch.dtype:
    """The dtype of the D-MPNN's messages at inference on ``device`` (see the module's
    docstring): bfloat16 on a CPU with native bfloat16 products, unless
    ``MOLPRED_PRECISION=float32`` or inside :func:`float32_messages`; else float32."""
    precision = os.environ.get("MOLPRED_PRECISION", "")
    if precision not in PRECISIONS:
        raise ValueError(f"MOLPRED_PRECISION={precision!r}: leave it unset or set float32")
    if device.type != "cpu" or precision == "float32" or _FLOAT32.get():
        return torch.float32
    return torch.bfloat16 if _native_bf16() else torch.float32


@contextmanager
def float32_messages() -> Iterator[None]:
    """Message passing in float32 inside (also a decorator): training and its calibration
    give the same model on every machine."""
    token = _FLOAT32.set(True)
    try:
        yield
    finally:
        _FLOAT32.reset(token)


@functools.cache
def _native_bf16() -> bool:
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


PAD_ROWS = 256


def _rows(n: int) -> int:
    """Rows of a bfloat16 product: ``n`` rounded up to a multiple of :data:`PAD_ROWS`."""
    return -(-n // PAD_ROWS) * PAD_ROWS


def _padded(x: Tensor, rows: int) -> Tensor:
    return x if rows == x.size(0) else torch.nn.functional.pad(x, (0, 0, 0, rows - x.size(0)))


class DMPNNEncoder(nn.Module):
    """Directed message passing (chemprop's D-MPNN); returns atom states ``[N, hidden]``.

    Requires edges ``2k`` and ``2k+1`` to be reverses of each other (see ``featurize``).
    """

    def __init__(self, hidden: int, depth: int, dropout: float):
        super().__init__()
        self.depth = depth
        self.atom_in = AtomEmbedding(hidden)
        self.bond_in = FieldEmbedding(bond_field_sizes(), hidden)
        self.W_h = nn.Linear(hidden, hidden, bias=False)
        self.atom_out = AtomEmbedding(hidden)
        self.W_o = nn.Linear(hidden, hidden, bias=False)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: Data) -> Tensor:
        # Fused for speed (same math as chemprop's): index_select instead of advanced indexing,
        # the reverse edge subtracted in place through strided views of each (2k, 2k+1) pair
        # instead of a gather, addmm and in-place ReLU: ~20% faster inference than the
        # textbook form.
        src, dst = batch.edge_index
        n_atoms, n_edges, hidden = batch.x.size(0), src.numel(), self.W_h.out_features
        gate = batch.get("atom_gate")
        dtype = torch.float32 if self.training else message_dtype(batch.x.device)
        # bfloat16 products: rows padded to a multiple of PAD_ROWS (zeros), or oneDNN keeps a
        # kernel for every batch's row count and a library run's memory grows without end
        pad = dtype == torch.bfloat16 and not torch.is_grad_enabled()
        e_rows, a_rows = (_rows(n_edges), _rows(n_atoms)) if pad else (n_edges, n_atoms)
        h0 = self.atom_in(batch.x, batch.atom_mass, gate).index_select(0, src)
        h0 = _padded((h0 + self.bond_in(batch.edge_attr)).to(dtype), e_rows)
        w_h = self.W_h.weight.t().to(dtype)
        h = self.act(h0)
        for _ in range(self.depth - 1):
            incoming = h.new_zeros(n_atoms, hidden).index_add_(0, dst, h[:n_edges])
            if pad:  # gathered straight into the padded rows
                message = h.new_empty(e_rows, hidden)
                message[n_edges:].zero_()
                torch.index_select(incoming, 0, src, out=message[:n_edges])
            else:
                message = incoming.index_select(0, src)
            pairs, h_pairs = message[:n_edges].view(-1, 2, hidden), h[:n_edges].view(-1, 2, hidden)
            pairs[:, 0].sub_(h_pairs[:, 1])  # minus the reverse edge, in place
            pairs[:, 1].sub_(h_pairs[:, 0])
            h = self.dropout(torch.addmm(h0, message, w_h).relu_())
        incoming = h.new_zeros(a_rows, hidden).index_add_(0, dst, h[:n_edges])
        atoms = _padded(self.atom_out(batch.x, batch.atom_mass, gate).to(dtype), a_rows)
        out = torch.addmm(atoms, incoming, self.W_o.weight.t().to(dtype))[:n_atoms]
        return self.dropout(out.relu_()).float()


class GINEEncoder(nn.Module):
    """Stack of residual GINE convolutions; returns atom states ``[N, hidden]``."""

    def __init__(self, hidden: int, depth: int, dropout: float):
        super().__init__()
        self.atom_in = AtomEmbedding(hidden)
        self.bond_in = FieldEmbedding(bond_field_sizes(), hidden)
        self.convs = nn.ModuleList(
            GINEConv(
                nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)),
                train_eps=True,
            )
            for _ in range(depth)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(depth))
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: Data) -> Tensor:
        h = self.atom_in(batch.x, batch.atom_mass, batch.get("atom_gate"))
        e = self.bond_in(batch.edge_attr)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = h + self.dropout(torch.relu(norm(conv(h, batch.edge_index, e))))
        return h


ENCODERS: dict[str, type[nn.Module]] = {"dmpnn": DMPNNEncoder, "gine": GINEEncoder}
POOLINGS = ("mean", "sum", "attention")


def _pooling(name: str, hidden: int) -> aggr.Aggregation:
    if name == "mean":
        return aggr.MeanAggregation()
    if name == "sum":
        return aggr.SumAggregation()
    gate = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    return aggr.AttentionalAggregation(gate_nn=gate)


def _mlp(n_in: int, hidden: int, n_out: int, layers: int, dropout: float) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers - 1):
        mods += [nn.Dropout(dropout), nn.Linear(n_in if i == 0 else hidden, hidden), nn.ReLU()]
    mods += [nn.Dropout(dropout), nn.Linear(hidden if layers > 1 else n_in, n_out)]
    return nn.Sequential(*mods)


class MolModel(nn.Module):
    """``encoder`` -> ``pool`` -> (+ normalized descriptors) -> ``head``.

    The descriptor and target scalers and the classification temperatures are buffers, so one
    ``state_dict`` carries everything numeric. :meth:`forward` returns raw outputs (standardized
    values / logits) for the loss; :meth:`predict` returns values in the data's units and
    calibrated probabilities.

    An optional ``variance_head`` (a mean-variance estimator) reads the *detached* molecule
    representation and predicts each regression task's log-variance, so learning the variance
    never changes the mean prediction.

    Shapes: batch of ``G`` graphs -> ``[G, n_tasks]``.

    ``trees`` (a :class:`molpred.trees.TreeBlend`, or None) is the member's second opinion on
    fingerprints: :func:`member_outputs` blends it into the raw outputs; :meth:`forward` and
    :meth:`predict` are the network's alone.
    """

    trees = None  # set by training or loading; not part of the state dict

    def __init__(
        self,
        config: ModelConfig,
        encoder: nn.Module,
        pool: nn.Module,
        head: nn.Module,
        variance_head: nn.Module | None = None,
    ):
        super().__init__()
        self.config = config
        self.encoder, self.pool, self.head = encoder, pool, head
        self.variance_head = variance_head
        n_desc, n_tasks = len(DESCRIPTOR_NAMES), config.n_tasks
        self.register_buffer("desc_mean", torch.zeros(n_desc))
        self.register_buffer("desc_scale", torch.ones(n_desc))
        self.register_buffer("y_mean", torch.zeros(n_tasks))
        self.register_buffer("y_scale", torch.ones(n_tasks))
        self.register_buffer("temperature", torch.ones(n_tasks))  # logits / T, fit on validation
        is_cls = torch.tensor([t == "classification" for t in config.task_types])
        self.register_buffer("is_classification", is_cls, persistent=False)

    def freeze_encoder(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the encoder and pooling: only the heads learn while frozen."""
        for name, param in self.named_parameters():
            if name.startswith(ENCODER_PARTS):
                param.requires_grad_(not frozen)

    def embed(self, batch: Data) -> Tensor:
        """Molecule representation fed to the head, ``[G, hidden (+ n_descriptors)]``."""
        atoms = self.encoder(batch)
        mol = self.pool(atoms, batch.batch, dim_size=batch.num_graphs)
        if self.config.descriptors:
            desc = (batch.descriptors - self.desc_mean) / self.desc_scale
            clip = self.config.descriptor_clip
            mol = torch.cat([mol, desc.clamp(-clip, clip)], dim=1)
        return mol

    def forward(self, batch: Data) -> Tensor:
        return self.head(self.embed(batch))

    def forward_with_variance(self, batch: Data) -> tuple[Tensor, Tensor | None, Tensor]:
        """Raw outputs ``[G, T]``, log-variances ``[G, T]`` in standardized units (``None``
        without a variance head) and the molecule representation ``[G, D]``."""
        emb = self.embed(batch)
        log_var = None if self.variance_head is None else self.variance_head(emb.detach())
        return self.head(emb), log_var, emb

    def to_units(self, out: Tensor) -> Tensor:
        """Raw outputs -> values in the data's units / calibrated probabilities."""
        scaled = out * self.y_scale + self.y_mean
        return torch.where(self.is_classification, torch.sigmoid(out / self.temperature), scaled)

    @torch.no_grad()
    def predict(self, batch: Data) -> Tensor:
        return self.to_units(self.forward(batch))

    @torch.no_grad()
    def predict_full(self, batch: Data) -> tuple[Tensor, Tensor, Tensor]:
        """Values ``[G, T]``, variances in the data's units ``[G, T]`` (NaN where the model has
        none: classification tasks, or no variance head) and representations ``[G, D]``."""
        out, log_var, emb = self.forward_with_variance(batch)
        if log_var is None:
            var = torch.full_like(out, float("nan"))
        else:
            var = torch.exp(log_var.clamp(-20, 20)) * self.y_scale**2
            var = torch.where(self.is_classification, torch.full_like(var, float("nan")), var)
        return self.to_units(out), var, emb


def build_model(config: ModelConfig) -> MolModel:
    """Build an untrained model from its config alone (used by training and by model loading)."""
    h = config.hidden_size
    encoder = ENCODERS[config.encoder](h, config.depth, config.dropout)
    n_in = h + (len(DESCRIPTOR_NAMES) if config.descriptors else 0)
    head = _mlp(n_in, config.head_hidden_size, config.n_tasks, config.head_layers, config.dropout)
    pool = _pooling(config.pooling, h)
    variance = None
    if config.variance_head and "regression" in config.task_types:
        variance = _mlp(n_in, config.head_hidden_size, config.n_tasks, config.head_layers, 0.0)
    return MolModel(config, encoder, pool, head, variance)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU. A device this machine does not have is a
    ``ValueError`` (the user's option, not a failure of the run)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name} requested but CUDA is not available here")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s)")
    return device


@torch.no_grad()
def member_outputs(
    members: Sequence[MolModel],
    feats: Featurized,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    embeddings: bool = False,
    trees: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Score featurized molecules with every member (its trees blended in where it has them:
    ``feats`` then needs its fingerprints; their disagreement with the network adds to the
    member's variance, :meth:`molpred.trees.TreeBlend.disagreement`). ``trees``: the members'
    tree outputs already computed (:func:`molpred.trees.tree_outputs`, in a featurizing
    worker), else they are computed here.

    Returns values and variances ``[N, T, M]`` (NaN for failed rows), the first member's
    representations ``[N, D]`` when ``embeddings`` (else ``None``), and the raw outputs
    (standardized values / logits) ``[N, T, M]``.
    """
    ok = np.flatnonzero([g is not None for g in feats.graphs])
    n, n_tasks, n_members = len(feats.graphs), members[0].config.n_tasks, len(members)
    values = np.full((n, n_tasks, n_members), np.nan, dtype=np.float32)
    variances = np.full_like(values, np.nan)
    raw = np.full_like(values, np.nan)
    emb = None
    for m in members:
        m.to(device).eval()
    with_trees = trees is None and any(m.trees is not None for m in members)
    for start in range(0, len(ok), batch_size):
        idx = ok[start : start + batch_size]
        batch = collate([feats.graphs[i] for i in idx], feats.descriptors[idx]).to(device)
        x = tree_features(feats.fingerprints[idx], feats.descriptors[idx]) if with_trees else None
        for j, m in enumerate(members):
            out, log_var, rep = m.forward_with_variance(batch)
            between = 0.0
            if m.trees is not None:
                mine = m.trees.raw(x) if trees is None else trees[j][idx]
                mine = torch.from_numpy(mine).to(out)
                out, between = m.trees.mix(out, mine), m.trees.disagreement(out, mine)
            raw[idx, :, j] = out.cpu().numpy()
            values[idx, :, j] = m.to_units(out).cpu().numpy()
            if log_var is not None:
                var = (torch.exp(log_var.clamp(-20, 20)) + between) * m.y_scale**2
                variances[idx, :, j] = var.cpu().numpy()
            elif m.trees is not None:  # no variance head: the disagreement is the variance
                variances[idx, :, j] = (between * m.y_scale**2).cpu().numpy()
            if embeddings and j == 0:
                if emb is None:
                    emb = np.full((n, rep.shape[1]), np.nan, dtype=np.float32)
                emb[idx] = rep.cpu().numpy()
    return values, variances, emb, raw
