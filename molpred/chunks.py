"""The worker side of scoring: a chunk of structures becomes a :class:`Prepared` (featurized
once per standardization the panel uses, with a :class:`ChunkHook`'s notes), and, where
workers are forked, the tasks they run with the panel they inherit: :class:`ChunkScorer`
(fork and the CPU: featurize and score) and :class:`ChunkTrees` (fork and a GPU: featurize and
run the members' trees, the network being the scoring process's). The scoring process's side
is :class:`molpred.predictor.Predictor`.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from rdkit import Chem

from molpred.features import Featurized, featurize_chunk, restandardized
from molpred.parallel import release_memory
from molpred.trees import tree_outputs

__all__ = [
    "ChunkHook",
    "Prepared",
    "ChunkFeaturizer",
    "ChunkScorer",
    "ChunkTrees",
    "FORK",
    "FORKED",
    "STREAMS",
]


class ChunkHook(Protocol):
    """More per-molecule work done with the scoring (the page's properties and depictions).

    ``annotate`` runs where the chunk is featurized (a worker process: the hook must pickle) on
    each parse batch's molecules, ``None`` where a row failed, and returns a frame aligned with
    them; its columns go between the predictions and ``error``.
    """

    def annotate(self, mols: Sequence[Chem.Mol | None]) -> pd.DataFrame: ...


@dataclass
class Prepared:
    """A featurized chunk: per standardization its :class:`Featurized`, and the hook's notes."""

    feats: dict[str, Featurized]
    notes: pd.DataFrame | None = None
    # per model of the panel, its members' trees' outputs when a worker computed them
    trees: list[list[np.ndarray | None]] | None = None

    def errors(self) -> list[str]:
        """Per row, the first reason any featurization gave (``""`` if none failed)."""
        columns = [f.errors for f in self.feats.values()]
        return [next((e for e in row if e), "") for row in zip(*columns, strict=True)]


@dataclass(frozen=True)
class ChunkFeaturizer:
    """The worker side of scoring: items (SMILES or molblocks) of one chunk -> :class:`Prepared`."""

    standardizations: tuple[str, ...]
    fingerprints: bool = True
    molblock: bool = False
    hook: ChunkHook | None = None
    trim: bool = True  # hand freed memory back after the chunk (see release_memory)

    def __call__(self, items: Sequence[object]) -> Prepared:
        notes: list[pd.DataFrame] = []

        def annotate(mols: list[Chem.Mol | str]) -> None:
            notes.append(self.hook.annotate([m if isinstance(m, Chem.Mol) else None for m in mols]))

        first, *others = self.standardizations
        # the hook sees the structures the panel's first model sees
        feats = {
            first: featurize_chunk(
                items,
                molblock=self.molblock,
                fingerprints=self.fingerprints,
                standardization=first,
                on_parsed=annotate if self.hook is not None else None,
            )
        }
        for mode in others:  # most molecules are the same under every standardization
            feats[mode] = restandardized(
                items, feats[first], mode, molblock=self.molblock, fingerprints=self.fingerprints
            )
        if self.trim:
            release_memory()
        joined = None
        if self.hook is not None:
            joined = pd.concat(notes, ignore_index=True) if notes else self.hook.annotate([])
        return Prepared(feats, joined)


class Panel(Protocol):
    """What a worker uses of the :class:`molpred.predictor.Predictor` it inherited."""

    models: list  # its MolpredModels

    def scored(self, prepared: Prepared) -> pd.DataFrame: ...


# the panels that forked workers score with, one key per stream: inherited at fork, so a
# chunk's task carries only the key. Linux only: fork with torch in the children is fragile
# elsewhere (macOS's system libraries).
FORKED: dict[int, Panel] = {}
STREAMS = itertools.count()
FORK = sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


@dataclass(frozen=True)
class ChunkScorer:
    """The worker side when workers also score: featurize a chunk, then score it with the
    panel this process inherited, on its share of the cores."""

    panel: int
    work: ChunkFeaturizer
    threads: int = 1
    trim: bool = True

    def __call__(self, items: Sequence[object]) -> pd.DataFrame:
        with _threads(self.threads):
            scored = FORKED[self.panel].scored(self.work(items))
        if self.trim:
            release_memory()
        return scored


@dataclass(frozen=True)
class ChunkTrees:
    """The worker side when this process scores on a GPU: featurize a chunk, then run every
    member's trees on it (CPU work) with the panel this process inherited, on its share of
    the cores."""

    panel: int
    work: ChunkFeaturizer
    threads: int = 1
    trim: bool = True

    def __call__(self, items: Sequence[object]) -> Prepared:
        with _threads(self.threads):  # the trees predict on torch's thread count
            prepared = self.work(items)
            prepared.trees = [
                tree_outputs(m.members, prepared.feats[m.standardization])
                for m in FORKED[self.panel].models
            ]
        if self.trim:
            release_memory()
        return prepared


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Torch (and so the trees) on ``n`` threads, restored after: the pool may not have
    forked, and then this is the scoring process (:func:`molpred.parallel.map_ordered`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
