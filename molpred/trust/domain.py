"""Applicability domain: is a query molecule like the ones the model learned from?

Two measures per query, both against the training set stored (compactly) in the model file:

- ``domain_similarity``: maximum Tanimoto similarity of its Morgan fingerprint (radius 2, 2048
  bits) to the training molecules. Computed as one matrix product of bit vectors, which gives
  exactly RDKit's ``BulkTanimotoSimilarity`` values (tested) at a fraction of the cost for many
  queries at once.
- ``latent_distance``: mean Euclidean distance to the ``k`` nearest training molecules in the
  model's own representation, divided by the median of the same quantity over validation
  molecules (so ~1 is typical of new data, > 2 is far out).

``in_domain`` is ``domain_similarity >= threshold`` and, for models with an error model
(:mod:`molpred.trust.error_model`), also the expected error relative to a typical validation
molecule at most ``error_threshold``: a molecule is out of the domain when it is unlike the
training set or when its expected error is unusually high. Both thresholds are chosen from the
validation error (:func:`choose_threshold`); ``benchmarks/ensemble_choice.py`` compares the
rules.

Shapes: fingerprints ``[N, 256]`` uint8 (2048 packed bits); representations ``[N, D]``.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from molpred.parallel import torch_section

__all__ = ["max_similarity", "knn_distance", "choose_threshold", "Domain"]

_CHUNK = 1024  # queries per matrix product
# at most this many [reference, query] pairs at once: two float32 temporaries, 128 MB
_ENTRIES = 1 << 24
_PREPARING = threading.Lock()  # one build of a shared model's reference, however many sessions


def _bits(packed: np.ndarray | torch.Tensor) -> torch.Tensor:
    arr = packed.numpy() if isinstance(packed, torch.Tensor) else packed
    return torch.from_numpy(np.unpackbits(np.ascontiguousarray(arr), axis=1).astype(np.float32))


class _Reference:
    """A reference set prepared once for many queries: its fingerprints as a sparse ``[N,
    2048]`` matrix (about 50 of 2,048 bits set: 8 bytes per bit set, against 8 KB per molecule
    dense) and its bit counts."""

    def __init__(self, packed: np.ndarray | torch.Tensor):
        arr = packed.numpy() if isinstance(packed, torch.Tensor) else np.asarray(packed)
        bits = np.unpackbits(np.ascontiguousarray(arr, dtype=np.uint8), axis=1)
        counts = bits.sum(1, dtype=np.int64)
        rows = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        cols = np.nonzero(bits)[1].astype(np.int32)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": used as documented
            warnings.simplefilter("ignore", UserWarning)
            self.bits = torch.sparse_csr_tensor(
                torch.from_numpy(rows),
                torch.from_numpy(cols),
                torch.ones(len(cols)),
                size=bits.shape,
            )
        self.counts = torch.from_numpy(counts.astype(np.float32))

    def __len__(self) -> int:
        return len(self.counts)

    def similarity(self, queries: torch.Tensor) -> torch.Tensor:
        """Tanimoto similarity ``[N, B]`` of every reference molecule to each query (bits
        ``[B, 2048]``); 0 where both fingerprints are empty."""
        inter = self.bits @ queries.T.contiguous()  # exact: integer counts < 2^24 in float32
        union = (self.counts[:, None] - inter).add_(queries.sum(1)[None, :]).clamp_(min=1)
        return inter.div_(union)


def max_similarity(
    queries: np.ndarray, reference: np.ndarray | torch.Tensor | _Reference
) -> np.ndarray:
    """Maximum Tanimoto similarity of each query to the reference set, ``[B]`` float32.

    The intersection counts are a sparse (reference, ~50 of 2048 bits set) times dense (query
    bits) product. An empty query fingerprint (no bits set) has similarity 0 to everything.
    """
    ref = reference if isinstance(reference, _Reference) else _Reference(reference)
    if len(queries) == 0 or len(ref) == 0:
        return np.zeros(len(queries), dtype=np.float32)
    out = np.empty(len(queries), dtype=np.float32)
    chunk = max(1, min(_CHUNK, _ENTRIES // len(ref)))
    for start in range(0, len(queries), chunk):
        q = _bits(queries[start : start + chunk])
        out[start : start + len(q)] = ref.similarity(q).max(0).values.numpy()
    return out


def knn_distance(queries: torch.Tensor, reference: torch.Tensor, k: int = 5) -> np.ndarray:
    """Mean Euclidean distance to the ``k`` nearest reference rows, ``[B]`` float32.

    In float64: cdist's matrix-product form loses digits to cancellation, and in float32 the
    loss showed (1e-3 relative) and changed with the number of threads."""
    if len(queries) == 0 or len(reference) == 0:
        return np.full(len(queries), np.nan, dtype=np.float32)
    k = min(k, len(reference))
    out = []
    for start in range(0, len(queries), _CHUNK):
        d = torch.cdist(queries[start : start + _CHUNK].double(), reference.double())
        out.append(d.topk(k, dim=1, largest=False).values.mean(1))
    return torch.cat(out).float().numpy()


def choose_threshold(similarity: np.ndarray, error: np.ndarray) -> dict[str, float | str]:
    """Similarity below which predictions are flagged out of domain, from validation data.

    Candidate thresholds are the 5th..25th percentiles of the validation similarities (so at
    most about a quarter of molecules like the validation set are flagged). For each,
    the mean error of the molecules below it is compared with the error of those above; the
    threshold with the largest ratio wins if that ratio is at least 1.2 (error clearly rises as
    similarity falls). Otherwise the 5th percentile is used: a query is flagged when it is less
    similar to the training set than 95% of validation molecules.
    """
    ok = ~np.isnan(error) & ~np.isnan(similarity)
    sim, err = similarity[ok], error[ok]
    fallback = float(np.percentile(sim, 5)) if len(sim) else 0.0
    best: tuple[float, float] = (0.0, fallback)
    min_group = max(10, int(0.05 * len(sim)))
    for pct in range(5, 30, 5):
        t = float(np.percentile(sim, pct)) if len(sim) else 0.0
        low, high = err[sim < t], err[sim >= t]
        if len(low) < min_group or len(high) < min_group or high.mean() <= 0:
            continue
        ratio = float(low.mean() / high.mean())
        if ratio > best[0]:
            best = (ratio, t)
    if best[0] >= 1.2:
        return {"threshold": best[1], "rule": "validation error", "error_ratio": best[0]}
    return {
        "threshold": fallback,
        "rule": "5th percentile of validation similarity",
        "error_ratio": best[0],
    }


@dataclass
class Domain:
    """What a model file stores to place new molecules relative to its training set.

    ``smiles`` and ``targets`` (``[N_train, T]``, NaN = unmeasured) let the app show a query's
    nearest training molecules with their measured values.
    """

    fingerprints: torch.Tensor  # [N_train, 256] uint8
    embeddings: torch.Tensor  # [K, D] float16, a sample of training representations
    latent_scale: float  # median validation k-NN distance
    threshold: float
    rule: str = ""
    smiles: list[str] | None = None
    targets: torch.Tensor | None = None
    error_threshold: float | None = None  # on the relative expected error; None: not used
    _reference: _Reference | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:  # copies and pickles leave the prepared reference out
        return {**self.__dict__, "_reference": None}  # (a cache; sparse tensors do not copy)

    def reference(self) -> _Reference:
        """The training fingerprints prepared for similarity queries: once per loaded model
        (a process that forks workers prepares it first, so that they all share it)."""
        if self._reference is None:
            with _PREPARING:
                if self._reference is None:
                    self._reference = _Reference(self.fingerprints)
        return self._reference

    def similarity(self, fps: np.ndarray) -> np.ndarray:
        return max_similarity(fps, self.reference())

    def place(
        self, fingerprints: np.ndarray, embeddings: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Similarity and latent distance ``[N]`` of molecules (latent NaN without
        representations)."""
        sim = self.similarity(fingerprints)
        latent = np.full(len(sim), np.nan, dtype=np.float32)
        if embeddings is not None:
            latent = self.latent(torch.from_numpy(np.nan_to_num(embeddings)))
        return sim, latent

    def in_domain(self, similarity: np.ndarray, relative_error: np.ndarray | None) -> np.ndarray:
        """Which molecules are in the domain (see the module docstring)."""
        inside = similarity >= self.threshold
        if self.error_threshold is not None and relative_error is not None:
            inside &= relative_error <= self.error_threshold
        return inside

    def latent(self, embeddings: torch.Tensor) -> np.ndarray:
        return knn_distance(embeddings, self.embeddings) / max(self.latent_scale, 1e-12)

    def neighbors(
        self, fp: np.ndarray, k: int = 5, task: int | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` most similar training molecules: ``(index, Tanimoto)``, best first; with
        ``task``, among those measured for it (a sparse panel task left most neighbours
        "not measured")."""
        with torch_section():
            sim = self.reference().similarity(_bits(fp.reshape(1, -1)))[:, 0]
            if task is not None and self.targets is not None:
                measured = ~torch.isnan(self.targets[:, task].float())
                sim = torch.where(measured, sim, torch.full_like(sim, -1.0))
                k = min(k, int(measured.sum()))
            top = sim.topk(min(k, len(sim)))
        return [(int(i), float(v)) for v, i in zip(top.values, top.indices, strict=True)]

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"domain_fingerprints": self.fingerprints, "domain_embeddings": self.embeddings}
        if self.targets is not None:
            out["domain_targets"] = self.targets
        return out

    def meta(self) -> dict:
        return {
            "latent_scale": self.latent_scale,
            "threshold": self.threshold,
            "rule": self.rule,
            "error_threshold": self.error_threshold,
            "smiles": self.smiles,
        }
