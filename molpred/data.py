"""Tables in, featurized molecules out.

- :func:`featurize_smiles` turns SMILES into graphs (in worker processes for large inputs, with an
  optional on-disk cache keyed by content hash) and never raises for a bad row.
- :func:`prepare_dataset` turns a labeled table into a deduplicated :class:`MoleculeDataset`,
  reporting every row it could not use and why.
- :func:`collate` packs graphs into one PyG ``Data`` batch for the model.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hashlib
import logging
import multiprocessing as mp
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from torch_geometric.data import Data

from molpred.chem import (
    STANDARDIZATIONS,
    InvalidMoleculeError,
    canonical_smiles,
    mol_from_block,
    standardize,
)
from molpred.domain import FP_BITS, fingerprint
from molpred.featurize import (
    DESCRIPTOR_NAMES,
    FEATURIZER_VERSION,
    MolGraph,
    clean_descriptors,
    featurize_mol,
    raw_descriptors,
)

__all__ = [
    "DataError",
    "Featurized",
    "MoleculeDataset",
    "featurize_smiles",
    "featurize_chunk",
    "featurize_parsed",
    "parse_all",
    "concat_featurized",
    "release_memory",
    "worker_pool",
    "prepare_dataset",
    "collate",
    "infer_task_types",
]

log = logging.getLogger(__name__)

PARALLEL_THRESHOLD = 4000  # below this, worker start-up costs more than it saves
_CHUNK = 1000
# Molecules parsed and featurized together within a chunk. Measured on 10,000 MOSES SMILES (CPU
# per molecule, one worker's peak RSS): 256 -> 583 us, 469 MB; 1000 -> 538 us, 488 MB; the
# whole chunk -> 541 us, 719 MB. Per batch, freeing RDKit molecules costs; past ~1000, memory.
_PARSE_BATCH = 1000


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc() if sys.platform.startswith("linux") else None


class DataError(ValueError):
    """A table cannot be used at all (missing column, no valid rows...). One-line message."""


# --------------------------------------------------------------------------------------------
# featurization


@dataclass
class Featurized:
    """Featurization result aligned with the input SMILES.

    ``graphs[i]`` is ``None`` exactly when ``errors[i]`` is non-empty; ``descriptors`` ``[N, D]``
    and packed Morgan ``fingerprints`` ``[N, 256]`` have a row for every input (zeros for failed
    rows; fingerprints are all zeros when not requested); ``canonical[i]`` is ``""`` for failed
    rows.
    """

    graphs: list[MolGraph | None]
    descriptors: np.ndarray
    canonical: list[str]
    errors: list[str]
    fingerprints: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.fingerprints is None:
            self.fingerprints = np.zeros((len(self.graphs), FP_BITS // 8), dtype=np.uint8)

    def __getstate__(self) -> dict:
        """Pickled (from worker processes) as a few flat arrays rather than four small arrays
        per molecule: ~10x cheaper to send and receive."""
        ok = [g for g in self.graphs if g is not None]
        return {"ok": np.array([g is not None for g in self.graphs], dtype=bool),
                "packed": pack(ok) if ok else None, "descriptors": self.descriptors,
                "canonical": self.canonical, "errors": self.errors,
                "fingerprints": self.fingerprints}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        graphs = iter(unpack(state["packed"]) if state["packed"] is not None else ())
        self.graphs = [next(graphs) if ok else None for ok in state["ok"]]
        self.descriptors, self.fingerprints = state["descriptors"], state["fingerprints"]
        self.canonical, self.errors = state["canonical"], state["errors"]


def featurize_chunk(
    items: Sequence[object],
    canonical: bool = False,
    molblock: bool = False,
    fingerprints: bool = True,
    standardization: str = "none",
) -> Featurized:
    """Featurize one chunk in this process (the unit of work of the worker pool).

    ``items`` are SMILES, or MDL molblocks with ``molblock=True``. ``fingerprints`` adds the
    Morgan fingerprints the applicability domain needs (~40 us per molecule).
    ``standardization``: see :func:`molpred.chem.standardize`.
    """
    # _PARSE_BATCH at a time: a chunk never holds all of its RDKit molecules at once.
    parts = [featurize_parsed(parse_all(items[i : i + _PARSE_BATCH], molblock=molblock,
                                        standardization=standardization),
                              canonical=canonical, fingerprints=fingerprints)
             for i in range(0, len(items), _PARSE_BATCH)]  # fmt: skip
    return concat_featurized(parts) if parts else featurize_parsed([], fingerprints=fingerprints)


def release_memory() -> None:
    """Give freed heap pages back to the operating system (glibc only; a no-op elsewhere).

    glibc keeps freed memory for reuse, so a process that featurizes and scores millions of
    molecules chunk after chunk would creep upwards; trimming after each chunk keeps its
    resident size flat (measured in ``benchmarks/library_scoring.py``)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def parse_all(
    items: Sequence[object], molblock: bool = False, standardization: str = "none"
) -> list[Chem.Mol | str]:
    """Molecule for every SMILES (or molblock), or the reason it failed."""
    parse = mol_from_block if molblock else standardize
    parsed: list[Chem.Mol | str] = []
    for item in items:
        try:
            parsed.append(parse(item, standardization))  # type: ignore[arg-type]
        except InvalidMoleculeError as exc:
            parsed.append(str(exc))
    return parsed


def featurize_parsed(
    mols: Sequence[Chem.Mol | str], canonical: bool = False, fingerprints: bool = True
) -> Featurized:
    """Featurize molecules that are already standardized; a string in ``mols`` is the reason
    that row could not be parsed and becomes its error."""
    n_desc = len(DESCRIPTOR_NAMES)
    graphs: list[MolGraph | None] = []
    desc = np.zeros((len(mols), n_desc), dtype=np.float32)
    fps = np.zeros((len(mols), FP_BITS // 8), dtype=np.uint8)
    canon: list[str] = []
    errors: list[str] = []
    for i, mol in enumerate(mols):
        try:
            if isinstance(mol, str):
                raise InvalidMoleculeError(mol)
            graph = featurize_mol(mol)
        except InvalidMoleculeError as exc:
            graphs.append(None)
            canon.append("")
            errors.append(str(exc))
            continue
        graphs.append(graph)
        desc[i] = raw_descriptors(mol)
        if fingerprints:
            fps[i] = fingerprint(mol)
        canon.append(canonical_smiles(mol) if canonical else "")
        errors.append("")
    return Featurized(graphs, clean_descriptors(desc), canon, errors, fps)


def concat_featurized(parts: Sequence[Featurized]) -> Featurized:
    if len(parts) == 1:
        return parts[0]
    return Featurized(
        graphs=[g for p in parts for g in p.graphs],
        descriptors=np.concatenate([p.descriptors for p in parts]),
        canonical=[c for p in parts for c in p.canonical],
        errors=[e for p in parts for e in p.errors],
        fingerprints=np.concatenate([p.fingerprints for p in parts]),
    )


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def featurize_smiles(
    smiles: Sequence[object],
    *,
    canonical: bool = False,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
    standardization: str = "none",
) -> Featurized:
    """Parse and featurize SMILES; bad entries get a reason, never an exception.

    Parameters
    ----------
    smiles
        Input strings (``None``/NaN allowed; they become error rows).
    canonical
        Also return canonical SMILES (needed to deduplicate training data).
    workers
        Worker processes; default all available cores for inputs above a few thousand rows.
    cache_dir
        Directory of the on-disk feature cache; ``None`` disables caching.
    standardization
        ``"none"`` or ``"parent"`` (see :func:`molpred.chem.standardize`).
    """
    smiles = list(smiles)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{_cache_key(smiles, canonical, standardization)}.npz"
        if cache_file.exists():
            try:
                return _load_cache(cache_file)
            except (OSError, ValueError, KeyError) as exc:  # corrupt cache: recompute
                log.warning("ignoring unreadable feature cache %s: %s", cache_file, exc)
    workers = workers or (default_workers() if len(smiles) >= PARALLEL_THRESHOLD else 1)
    chunks = [smiles[i : i + _CHUNK] for i in range(0, len(smiles), _CHUNK)] or [[]]
    work = partial(featurize_chunk, canonical=canonical, standardization=standardization)
    if workers <= 1 or len(chunks) <= 1:
        result = concat_featurized([work(c) for c in chunks])
    else:
        with worker_pool(workers) as pool:
            result = concat_featurized(pool.map(work, chunks, chunksize=1))
    if cache_file is not None:
        _save_cache(cache_file, result)
    return result


def worker_pool(workers: int):
    """A process pool for featurization (fork where available: much faster to start, and the
    children only run RDKit and numpy).

    Before forking, every object the parent holds is frozen out of the garbage collector's
    reach: otherwise each collection in a child writes to those objects' headers and, page by
    page, copies the parent's memory into the child (the tree's memory crept up over a long
    library run; flat with the freeze)."""
    methods = mp.get_all_start_methods()
    gc.collect()
    gc.freeze()
    try:
        return mp.get_context("fork" if "fork" in methods else "spawn").Pool(workers)
    finally:
        gc.unfreeze()


def _cache_key(smiles: Sequence[object], canonical: bool, standardization: str) -> str:
    spec = (f"v{FEATURIZER_VERSION}|{','.join(DESCRIPTOR_NAMES)}|{canonical}|morgan2-{FP_BITS}|"
            f"{standardization}")  # fmt: skip
    h = hashlib.sha256(spec.encode())
    for s in smiles:
        h.update(b"\x00" + str(s).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def _save_cache(path: Path, feats: Featurized) -> None:
    """The cache file holds the same flat arrays :class:`Featurized` pickles to."""
    state = feats.__getstate__()
    arrays = {**(state.pop("packed") or {}), **state,
              "canonical": np.array(state["canonical"], dtype=str),
              "errors": np.array(state["errors"], dtype=str)}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_cache(path: Path) -> Featurized:
    with np.load(path, allow_pickle=False) as z:
        state = {"ok": z["ok"], "descriptors": z["descriptors"], "fingerprints": z["fingerprints"],
                 "canonical": z["canonical"].tolist(), "errors": z["errors"].tolist(),
                 "packed": {k: z[k] for k in _PACK_KEYS} if "x" in z.files else None}  # fmt: skip
    feats = Featurized.__new__(Featurized)
    feats.__setstate__(state)
    return feats


# --------------------------------------------------------------------------------------------
# packing: many MolGraphs <-> a few flat arrays (used by collate and the cache)

_PACK_KEYS = ("x", "atom_mass", "edge_index", "edge_attr", "n_atoms", "n_edges")


def pack(graphs: Sequence[MolGraph]) -> dict[str, np.ndarray]:
    """Concatenate graphs; ``edge_index`` stays local to each graph (see :func:`unpack`)."""
    return dict(
        x=np.concatenate([g.x for g in graphs]),
        atom_mass=np.concatenate([g.atom_mass for g in graphs]),
        edge_index=np.concatenate([g.edge_index for g in graphs], axis=1),
        edge_attr=np.concatenate([g.edge_attr for g in graphs]),
        n_atoms=np.array([g.x.shape[0] for g in graphs], dtype=np.int64),
        n_edges=np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64),
    )


def unpack(arrays: dict[str, np.ndarray]) -> list[MolGraph]:
    a_off = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
    e_off = np.concatenate([[0], np.cumsum(arrays["n_edges"])])
    return [
        MolGraph(
            arrays["x"][a_off[i] : a_off[i + 1]],
            arrays["atom_mass"][a_off[i] : a_off[i + 1]],
            arrays["edge_index"][:, e_off[i] : e_off[i + 1]],
            arrays["edge_attr"][e_off[i] : e_off[i + 1]],
        )
        for i in range(len(arrays["n_atoms"]))
    ]


def collate(
    graphs: Sequence[MolGraph],
    descriptors: np.ndarray | None = None,
    targets: np.ndarray | None = None,
) -> Data:
    """Pack graphs into one PyG batch.

    Shapes of the result: ``x [sum N, F_a]`` long, ``atom_mass [sum N, 1]``, ``edge_index
    [2, sum E]`` (offset per graph), ``edge_attr [sum E, F_b]`` long, ``batch [sum N]``,
    ``descriptors [G, D]``, ``y [G, T]`` (NaN = missing), ``num_graphs = G``.
    """
    p = pack(graphs)
    offsets = np.repeat(np.cumsum(p["n_atoms"]) - p["n_atoms"], p["n_edges"])
    batch = Data(
        x=torch.from_numpy(p["x"].astype(np.int64)),
        atom_mass=torch.from_numpy(p["atom_mass"]),
        edge_index=torch.from_numpy(p["edge_index"] + offsets),
        edge_attr=torch.from_numpy(p["edge_attr"].astype(np.int64)),
        batch=torch.from_numpy(np.repeat(np.arange(len(graphs)), p["n_atoms"])),
    )
    batch.num_graphs = len(graphs)
    if descriptors is not None:
        batch.descriptors = torch.from_numpy(np.ascontiguousarray(descriptors, dtype=np.float32))
    if targets is not None:
        batch.y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    return batch


# --------------------------------------------------------------------------------------------
# labeled tables


@dataclass
class MoleculeDataset:
    """Deduplicated, featurized training data.

    ``targets`` is ``[N, T]`` float32 with NaN for missing labels; ``source_rows[i]`` lists the
    input rows merged into molecule ``i``; ``problems`` has one row per input row or label that
    could not be used (columns ``row``, ``smiles``, ``reason``).
    """

    smiles: list[str]
    graphs: list[MolGraph]
    descriptors: np.ndarray
    targets: np.ndarray
    task_names: list[str]
    task_types: list[str]
    source_rows: list[list[int]]
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_PROBLEM_COLS))
    fingerprints: np.ndarray | None = None  # [N, 256] packed Morgan bits

    def __post_init__(self) -> None:
        if self.fingerprints is None:
            self.fingerprints = np.zeros((len(self.graphs), FP_BITS // 8), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.graphs)

    def subset(self, index: Sequence[int]) -> MoleculeDataset:
        idx = list(index)
        return MoleculeDataset(
            smiles=[self.smiles[i] for i in idx],
            graphs=[self.graphs[i] for i in idx],
            descriptors=self.descriptors[idx],
            targets=self.targets[idx],
            task_names=self.task_names,
            task_types=self.task_types,
            source_rows=[self.source_rows[i] for i in idx],
            problems=self.problems,
            fingerprints=self.fingerprints[idx],
        )

    def featurized(self) -> Featurized:
        """The molecules as a :class:`Featurized` (for scoring with a trained model)."""
        return Featurized(list(self.graphs), self.descriptors, list(self.smiles),
                          [""] * len(self), self.fingerprints)  # fmt: skip


_PROBLEM_COLS = ["row", "smiles", "reason"]
TASK_TYPES = ("regression", "classification")


def infer_task_types(targets: pd.DataFrame) -> list[str]:
    """``classification`` for columns whose labels are all 0/1, else ``regression``."""
    types = []
    for col in targets.columns:
        values = targets[col].dropna().unique()
        is_binary = len(values) > 0 and set(np.asarray(values, dtype=float)) <= {0.0, 1.0}
        types.append("classification" if is_binary else "regression")
    return types


_LABEL_LIMIT = 1e30


def _numeric_labels(df: pd.DataFrame, columns: Sequence[str], problems: list) -> pd.DataFrame:
    out = {}
    for col in columns:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        bad_text = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        # inf, and finite values float32 (the training precision) cannot hold
        bad_inf = num.notna() & ~(num.abs() <= _LABEL_LIMIT)
        for row in np.flatnonzero(bad_text | bad_inf):
            problems.append((row, None, f"unusable label {raw.iloc[row]!r} in {col!r}"))
        num[bad_inf] = np.nan
        if num.notna().sum() == 0:
            raise DataError(f"target column {col!r} has no numeric labels")
        out[col] = num.to_numpy()
    return pd.DataFrame(out, index=df.index)


def prepare_dataset(
    df: pd.DataFrame,
    smiles_column: str,
    target_columns: Sequence[str],
    task_types: Sequence[str] | str | None = None,
    *,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
    standardization: str = "none",
) -> MoleculeDataset:
    """Parse, featurize and deduplicate a labeled table (``standardization``: see
    :func:`molpred.chem.standardize`).

    Invalid SMILES, unusable labels and rows without any label are reported in
    ``dataset.problems`` (never silently dropped). Duplicates (same canonical SMILES) are merged:
    regression labels are averaged; classification labels take the majority, and a conflict is
    reported (a tie becomes a missing label).
    """
    missing = [c for c in [smiles_column, *target_columns] if c not in df.columns]
    if missing:
        raise DataError(f"column(s) not found: {', '.join(map(repr, missing))}; "
                        f"available: {', '.join(map(str, df.columns))}")  # fmt: skip
    if len(df) == 0:
        raise DataError("the table has no rows")
    df = df.reset_index(drop=True)
    problems: list[tuple] = []
    labels = _numeric_labels(df, target_columns, problems)
    if task_types is None:
        task_types = infer_task_types(labels)
    elif isinstance(task_types, str):
        task_types = [task_types] * len(target_columns)
    task_types = list(task_types)
    for col, kind in zip(target_columns, task_types, strict=True):
        if kind not in TASK_TYPES:
            raise DataError(f"unknown task type {kind!r}; choose from {TASK_TYPES}")
        if kind == "classification":
            values = set(np.unique(labels[col].dropna()))
            if not values <= {0.0, 1.0}:
                raise DataError(f"classification column {col!r} must hold 0/1 labels, "
                                f"found {sorted(values)[:5]}")  # fmt: skip

    if standardization not in STANDARDIZATIONS:
        raise DataError(f"standardization must be one of {STANDARDIZATIONS}, got "
                        f"{standardization!r}")  # fmt: skip
    feats = featurize_smiles(df[smiles_column].tolist(), canonical=True, workers=workers,
                             cache_dir=cache_dir, standardization=standardization)  # fmt: skip
    y = labels.to_numpy(dtype=np.float64)
    groups: dict[str, list[int]] = {}
    for row, (err, canon) in enumerate(zip(feats.errors, feats.canonical, strict=True)):
        if err:
            problems.append((row, df[smiles_column].iloc[row], err))
        elif np.isnan(y[row]).all():
            problems.append((row, df[smiles_column].iloc[row], "no label in any target column"))
        else:
            groups.setdefault(canon, []).append(row)
    if not groups:
        raise DataError("no valid molecules with labels in the table")

    smiles, graphs, desc, targets, sources, fps = [], [], [], [], [], []
    for canon, rows in groups.items():
        first = rows[0]
        smiles.append(canon)
        fps.append(feats.fingerprints[first])
        graphs.append(feats.graphs[first])
        desc.append(feats.descriptors[first])
        sources.append(rows)
        targets.append(y[first] if len(rows) == 1 else _merge(y[rows], task_types, target_columns,
                                                              rows, canon, problems))  # fmt: skip

    table = pd.DataFrame(problems, columns=_PROBLEM_COLS)
    for i, row in enumerate(table["row"]):  # fill in the SMILES of label problems
        if table.at[i, "smiles"] is None:
            table.at[i, "smiles"] = df[smiles_column].iloc[row]
    return MoleculeDataset(
        smiles=smiles,
        graphs=graphs,
        descriptors=np.asarray(desc, dtype=np.float32).reshape(len(graphs), len(DESCRIPTOR_NAMES)),
        targets=np.asarray(targets, dtype=np.float32),
        task_names=list(target_columns),
        task_types=task_types,
        source_rows=sources,
        problems=table.sort_values("row", kind="stable").reset_index(drop=True),
        fingerprints=np.asarray(fps, dtype=np.uint8).reshape(len(graphs), FP_BITS // 8),
    )


def _merge(values, task_types, names, rows, canon, problems) -> np.ndarray:
    """Merge labels of duplicate molecules, task by task."""
    merged = np.full(values.shape[1], np.nan)
    for t, kind in enumerate(task_types):
        col = values[:, t][~np.isnan(values[:, t])]
        if len(col) == 0:
            continue
        if kind == "regression":
            merged[t] = col.mean()
            continue
        frac = col.mean()
        if 0 < frac < 1:
            outcome = "missing (tie)" if frac == 0.5 else f"majority {round(frac)}"
            problems.append((rows[0], canon, f"conflicting labels for {names[t]!r} in rows "
                             f"{rows}: {col.astype(int).tolist()} -> {outcome}"))  # fmt: skip
        merged[t] = np.nan if frac == 0.5 else float(round(frac))
    return merged
