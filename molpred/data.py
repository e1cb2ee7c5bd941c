"""A labeled table in, a deduplicated training set out.

:func:`prepare_dataset` turns a table of SMILES and labels into a :class:`MoleculeDataset`,
reporting every row or label it could not use and why; duplicates are merged.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.chem import STANDARDIZATIONS
from molpred.features import Featurized, featurize_smiles
from molpred.featurize import DESCRIPTOR_NAMES, FP_BITS, MolGraph
from molpred.io import DataError, pick_column

__all__ = [
    "MoleculeDataset",
    "prepare_dataset",
    "infer_task_types",
    "label_values",
    "TASK_TYPES",
    "CLASS_WORDS",
]


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
        return Featurized(
            list(self.graphs),
            self.descriptors,
            list(self.smiles),
            [""] * len(self),
            self.fingerprints,
        )


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
# words a class column is often written in (any case); a column of these alone reads as 0/1
CLASS_WORDS = {
    **dict.fromkeys(("active", "yes", "true", "positive", "pos"), 1.0),
    **dict.fromkeys(("inactive", "no", "false", "negative", "neg"), 0.0),
}


def label_values(raw: pd.Series) -> pd.Series:
    """A label column as numbers (NaN where a cell is blank or not a number). A column whose
    text cells are all class words (``active``/``inactive``, ``yes``/``no``,
    ``true``/``false``, ``positive``/``negative``) reads as 1/0."""
    words = raw.astype(str).str.strip().str.lower()
    filled = raw.notna() & (words != "")
    if filled.any() and words[filled].isin(list(CLASS_WORDS)).all():
        return words.map(CLASS_WORDS).where(filled).astype(float)
    return pd.to_numeric(raw, errors="coerce").astype(float)


def _numeric_labels(df: pd.DataFrame, columns: Sequence[str], problems: list) -> pd.DataFrame:
    out = {}
    for col in columns:
        raw = df[col]
        num = label_values(raw)
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
    smiles_column: str | None,
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
    reported (a tie becomes a missing label). ``smiles_column`` None: found by its name, as
    ``molpred predict`` finds it (``smiles``, ``SMILES``, ``canonical_smiles``...).
    """
    smiles_column = pick_column(list(df.columns), smiles_column, "SMILES")
    missing = [c for c in [smiles_column, *target_columns] if c not in df.columns]
    if missing:
        raise DataError(
            f"column(s) not found: {', '.join(map(repr, missing))}; "
            f"available: {', '.join(map(str, df.columns))}"
        )
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
                raise DataError(
                    f"classification column {col!r} must hold 0/1 labels, "
                    f"found {sorted(values)[:5]}"
                )

    if standardization not in STANDARDIZATIONS:
        raise DataError(
            f"standardization must be one of {STANDARDIZATIONS}, got {standardization!r}"
        )
    feats = featurize_smiles(
        df[smiles_column].tolist(),
        canonical=True,
        workers=workers,
        cache_dir=cache_dir,
        standardization=standardization,
    )
    y = labels.to_numpy(dtype=np.float64)
    groups: dict[str, list[int]] = {}
    unusable = {row for row, _, _ in problems}  # rows already reported for a label
    for row, (err, canon) in enumerate(zip(feats.errors, feats.canonical, strict=True)):
        if err:
            problems.append((row, df[smiles_column].iloc[row], err))
        elif np.isnan(y[row]).all():
            if row not in unusable:  # once per row: its unusable label already says why
                problems.append((row, df[smiles_column].iloc[row], "no label in any target column"))
        else:
            groups.setdefault(canon, []).append(row)
    if not groups:
        raise DataError("no valid molecules with labels in the table")

    smiles, graphs, desc, targets, sources, fps = [], [], [], [], [], []
    with warnings.catch_warnings():  # a target without any label: NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(y, axis=0)
    for canon, rows in groups.items():
        first = rows[0]
        label = (
            y[first]
            if len(rows) == 1
            else _merge(y[rows], task_types, target_columns, rows, canon, problems, spread)
        )
        if np.isnan(label).all():  # tied classes in every task: nothing to learn from
            continue
        smiles.append(canon)
        fps.append(feats.fingerprints[first])
        graphs.append(feats.graphs[first])
        desc.append(feats.descriptors[first])
        sources.append(rows)
        targets.append(label)
    if not targets:
        raise DataError("no valid molecules with labels in the table")

    table = pd.DataFrame(problems, columns=_PROBLEM_COLS)
    for i, row in enumerate(table["row"]):  # fill in the SMILES of label problems
        if pd.isna(table.at[i, "smiles"]):
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


# repeated measurements further apart than this share of a target's spread are reported
DISAGREEING = 0.5


def _merge(values, task_types, names, rows, canon, problems, spread) -> np.ndarray:
    """Merge labels of duplicate molecules, task by task: the mean of a regression target's
    values (reported where they lie more than :data:`DISAGREEING` of the target's standard
    deviation apart), the majority of a class (reported where the rows disagree)."""
    merged = np.full(values.shape[1], np.nan)
    for t, kind in enumerate(task_types):
        col = values[:, t][~np.isnan(values[:, t])]
        if len(col) == 0:
            continue
        if kind == "regression":
            merged[t] = col.mean()
            if np.ptp(col) > DISAGREEING * spread[t]:
                problems.append(
                    (
                        rows[0],
                        canon,
                        f"repeated measurements of {names[t]!r} in rows {rows} disagree: "
                        f"{[float(f'{v:.4g}') for v in col]} -> mean {col.mean():.4g}",
                    )
                )
            continue
        frac = col.mean()
        if 0 < frac < 1:
            outcome = "missing (tie)" if frac == 0.5 else f"majority {round(frac)}"
            problems.append(
                (
                    rows[0],
                    canon,
                    f"conflicting labels for {names[t]!r} in rows "
                    f"{rows}: {col.astype(int).tolist()} -> {outcome}",
                )
            )
        merged[t] = np.nan if frac == 0.5 else float(round(frac))
    return merged
