"""Train / validation / test splits over a prepared dataset.

Every splitter returns :class:`Split` objects of index arrays into the dataset. Scaffold splits
group molecules by Bemis-Murcko scaffold so no scaffold is shared between parts, which is the
honest estimate of performance on new chemical series (scaffold k-fold deals out the two
catch-all groups, acyclic molecules and plain benzenes, when they are large: see
:func:`scaffold_kfold_splits`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from molpred.chem import is_own_parent, parent_key, rdkit_log_silenced

if TYPE_CHECKING:
    from molpred.data import MoleculeDataset

SPLIT_SIZES = (0.8, 0.1, 0.1)  # train, validation, test

__all__ = [
    "Split",
    "random_split",
    "scaffold_split",
    "kfold_splits",
    "cross_validation_members",
    "scaffold_kfold_splits",
    "splits_from_labels",
    "splits_from_file",
    "SPLITTERS",
    "SPLIT_SIZES",
    "make_splits",
]


class Split(NamedTuple):
    """Index arrays into a dataset (``int64``); disjoint."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _check_sizes(sizes: Sequence[float]) -> tuple[float, float, float]:
    if len(sizes) != 3 or any(s < 0 for s in sizes) or not np.isclose(sum(sizes), 1.0):
        raise ValueError(f"split sizes must be three non-negative fractions summing to 1: {sizes}")
    return sizes[0], sizes[1], sizes[2]


def random_split(
    n: int,
    sizes: Sequence[float] = SPLIT_SIZES,
    seed: int = 0,
    groups: Sequence[object] | None = None,
) -> Split:
    """Shuffle ``range(n)`` and cut it into train / val / test; molecules of one ``groups``
    value (the same parent structure: a salt and its free base) end up in one part."""
    f_train, f_val, _ = _check_sizes(sizes)
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(round(f_train * n)), int(round(f_val * n))
    parts = [perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]]
    return Split(*_together(parts, groups))


def _together(parts: list[np.ndarray], groups: Sequence[object] | None) -> list[np.ndarray]:
    """``parts`` (cuts of one shuffled order) with each group's molecules moved to the part
    of its first molecule by row number: no parent structure is both trained on and tested,
    and as that molecule's place in the shuffle does not depend on the shuffle's other
    molecules, a group lands in each part as often as a single molecule does."""
    if groups is None:
        return parts
    part_of = {int(i): p for p, part in enumerate(parts) for i in part}
    home: dict[object, int] = {}
    for i in sorted(part_of):
        home.setdefault(groups[i], part_of[i])
    moved: list[list[int]] = [[] for _ in parts]
    for i in part_of:
        moved[home[groups[i]]].append(i)
    return [np.sort(np.array(m, dtype=np.int64)) for m in moved]


def scaffold(smiles: str) -> str:
    """Bemis-Murcko scaffold SMILES (``""`` for acyclic molecules)."""
    with rdkit_log_silenced():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return smiles
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def _scaffold_groups(smiles: Sequence[str], parents: Sequence[object] | None) -> dict:
    """Scaffold -> rows, by the scaffold of each molecule's parent structure (``parents``, from
    :func:`parent_groups`): an amine drawn as its benzoate has its free base's scaffold, not
    benzene."""
    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        groups.setdefault(scaffold(smi if parents is None else str(parents[i])), []).append(i)
    return groups


def scaffold_split(
    smiles: Sequence[str], sizes: Sequence[float] = SPLIT_SIZES, seed: int = 0
) -> Split:
    """Balanced Bemis-Murcko scaffold split.

    Scaffold groups larger than half the test size (the validation size without a test part)
    go to train first; the remaining groups are shuffled with ``seed`` and fill train, then
    validation, then test (without a test part, validation takes what is left). A group larger
    than the whole training share trains regardless (85% acyclic molecules once made an 85%
    test set). No scaffold is shared between parts; a salt has its parent structure's scaffold.
    Raises ValueError when nothing is left to hold out.
    """
    f_train, f_val, f_test = _check_sizes(sizes)
    n = len(smiles)
    groups = _scaffold_groups(smiles, parent_groups(smiles))
    n_train, n_val = f_train * n, f_val * n
    # groups too big for a held-out part go to train first (the smaller part sets the size:
    # with no test part, validation still gets shuffled groups, not the smallest ones)
    holdout = min(f for f in (f_val, f_test) if f > 0) if f_val + f_test > 0 else 0.0
    big, small = [], []
    for members in groups.values():
        (big if len(members) > holdout * n / 2 else small).append(members)
    rng = np.random.default_rng(seed)
    small = [small[i] for i in rng.permutation(len(small))]
    big.sort(key=len, reverse=True)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for members in big + small:
        # a group larger than the whole training share trains all the same: it would
        # otherwise become most of a held-out part
        if len(train) + len(members) <= n_train or len(members) > n_train:
            train += members
        elif len(val) + len(members) <= n_val or f_test == 0:
            val += members
        else:
            test += members
    if f_val + f_test > 0 and not val and not test:
        largest = max(map(len, groups.values()))
        raise ValueError(
            f"a scaffold split has nothing to hold out: its largest scaffold holds {largest} "
            f"of the {n} molecules and trains with the rest; use a random split"
        )
    return Split(*(np.array(sorted(p), dtype=np.int64) for p in (train, val, test)))


def kfold_splits(
    n: int, k: int = 5, seed: int = 0, groups: Sequence[object] | None = None
) -> list[Split]:
    """``k`` splits: fold ``i`` is the test set, fold ``i+1`` validation, the rest training;
    molecules of one ``groups`` value share a fold."""
    if not 2 <= k <= n:
        raise ValueError(f"k-fold needs 2 <= k <= number of molecules, got k={k}, n={n}")
    folds = _together(np.array_split(np.random.default_rng(seed).permutation(n), k), groups)
    out = []
    for i in range(k):
        val_i = (i + 1) % k
        train = np.concatenate([f for j, f in enumerate(folds) if j not in (i, val_i)])
        out.append(Split(np.sort(train), np.sort(folds[val_i]), np.sort(folds[i])))
    return out


def cross_validation_members(
    split: Split, k: int, seed: int = 0, groups: Sequence[object] | None = None
) -> list[Split]:
    """``k`` splits from one, for a cross-validation ensemble: its training and validation rows
    dealt at random into ``k`` folds, each fold the validation rows of one split and the others
    its training rows; every split keeps the test rows. Each member holds out its own fold, so
    together they hold out every molecule; molecules of one ``groups`` value (indexed by row,
    e.g. :func:`parent_groups`) share a fold."""
    rows = np.concatenate([split.train, split.val])
    if not 2 <= k <= len(rows) // 2:
        raise ValueError(
            f"a {k}-member cross-validation ensemble needs 2 <= k and 2 validation rows per "
            f"fold; there are {len(rows)} training and validation molecules"
        )
    shuffled = np.random.default_rng(seed).permutation(rows)
    if groups is None:
        folds = np.array_split(shuffled, k)
    else:  # whole groups, largest first, each to the smallest fold: none left without rows
        together: dict[object, list[int]] = {}
        for i in shuffled.tolist():
            together.setdefault(groups[i], []).append(i)
        folds = [np.array(f, dtype=np.int64) for f in _deal(list(together.values()), k)]
        if min(map(len, folds)) < 2:
            raise ValueError(
                f"a {k}-member cross-validation ensemble needs 2 validation rows per fold; "
                f"{len(together)} distinct parent structures cannot fill {k} folds"
            )
    return [
        Split(np.sort(np.concatenate(folds[:i] + folds[i + 1 :])), np.sort(fold), split.test)
        for i, fold in enumerate(folds)
    ]


CATCH_ALL = ("", "c1ccccc1")  # scaffolds of acyclic molecules and of plain benzenes
# which rows a seeded split holds out changed (cached cross-validation results keyed by it):
# 2 = a salt has its parent's scaffold and is dealt with its free base (scaffold splits,
# scaffold k-fold, cross-validation members)
SPLIT_REVISION = 2


def _deal(groups: list[list[int]], k: int) -> list[list[int]]:
    """``groups`` dealt into ``k`` folds of near-equal size: largest first, each to the
    smallest fold (stable: equal sizes keep the given, seeded, order)."""
    folds: list[list[int]] = [[] for _ in range(k)]
    for group in sorted(groups, key=len, reverse=True):
        min(folds, key=len).extend(group)
    return folds


def scaffold_kfold_splits(smiles: Sequence[str], k: int = 5, seed: int = 0) -> list[Split]:
    """``k`` scaffold cross-validation splits: Bemis-Murcko scaffold groups dealt into ``k``
    folds of near-equal size (largest groups first, each to the smallest fold; ties in seeded
    order). Fold ``i`` is the test set, fold ``i+1`` validation, the rest training, as in
    :func:`kfold_splits`.

    The two catch-all groups, acyclic molecules (empty scaffold) and plain benzenes, are not
    chemical series; when one is larger than half a fold (47% of AqSolDB, 41% of Tox21 together)
    it is dealt out molecule by molecule (seeded), like a random split. Held out whole, it would
    make one fold's test set a kind of molecule its training never saw, which a model trained
    on every row always has; a salt stays with its free base even then. Every other scaffold,
    however large (a dominant lead series), stays within one part. A salt has its parent
    structure's scaffold.
    """
    n = len(smiles)
    if not 2 <= k <= n:
        raise ValueError(f"k-fold needs 2 <= k <= number of molecules, got k={k}, n={n}")
    parents = parent_groups(smiles)
    groups = _scaffold_groups(smiles, parents)
    rng = np.random.default_rng(seed)
    members = []
    for key in rng.permutation(sorted(groups)):
        if key in CATCH_ALL and len(groups[key]) > n / (2 * k):  # its molecules one by one
            by_parent: dict[object, list[int]] = {}  # a salt beside its free base
            for i in rng.permutation(groups[key]).tolist():
                by_parent.setdefault(i if parents is None else parents[i], []).append(i)
            members.extend(by_parent.values())
        else:
            members.append(groups[key])
    parts = [np.array(sorted(f), dtype=np.int64) for f in _deal(members, k)]
    out = []
    for i in range(k):
        val_i = (i + 1) % k
        train = np.concatenate([f for j, f in enumerate(parts) if j not in (i, val_i)])
        out.append(Split(np.sort(train), parts[val_i], parts[i]))
    return out


_PART_NAMES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


def splits_from_labels(labels: Sequence[object], source_rows: Sequence[Sequence[int]]) -> Split:
    """Split from a per-input-row column of ``train`` / ``val`` / ``test`` labels.

    ``source_rows[i]`` lists the input rows merged into dataset molecule ``i`` (one structure
    drawn several times); the molecule takes the part of its first labeled row, with a warning
    where its rows disagree (the other parts are one molecule short). An empty label (a row a
    splits file leaves out) does not count; a molecule without any label is left out.
    """
    parts: list[list[int]] = [[], [], []]
    disagreeing = []
    for i, rows in enumerate(source_rows):
        found = {}
        for row in rows:
            name = str(labels[row]).strip().lower()
            if name == "":
                continue
            if name not in _PART_NAMES:
                raise ValueError(
                    f"split value {labels[row]!r} in row {row} is not one of train / val / test"
                )
            found.setdefault(_PART_NAMES[name], row)
        if len(found) > 1:
            disagreeing.append(rows)
        if found:
            parts[next(iter(found))].append(i)
    unlabeled = len(source_rows) - sum(map(len, parts))
    if unlabeled and not all(str(x).strip() == "" for x in labels):
        warnings.warn(
            f"{unlabeled} molecule(s) have no train / val / test label and are left out",
            stacklevel=2,
        )
    if disagreeing:
        shown = "; ".join(" ".join(map(str, rows)) for rows in disagreeing[:5])
        warnings.warn(
            f"{len(disagreeing)} molecule(s) drawn in several rows have rows in different "
            f"parts (rows {shown}); each goes to its first row's part",
            stacklevel=2,
        )
    return Split(*(np.array(p, dtype=np.int64) for p in parts))


def splits_from_file(path: str | Path, source_rows: Sequence[Sequence[int]]) -> list[Split]:
    """Splits from a JSON file: a list of ``{"train": [...], "val": [...], "test": [...]}`` of
    input row indices (chemprop's ``--splits-file`` format; a single object is also accepted).
    Rows that were dropped as invalid are skipped; a negative index, or a row in two parts of
    one replicate, is an error."""
    spec = json.loads(Path(path).read_text())
    if isinstance(spec, dict):
        spec = [spec]
    n_rows = 1 + max(r for rows in source_rows for r in rows)
    out = []
    for r, rep in enumerate(spec):
        labels = np.full(n_rows, "", dtype=object)
        listed: dict[int, str] = {}
        for key in ("train", "val", "test"):
            for i in rep.get(key, []):
                if not isinstance(i, int) or i < 0:
                    raise ValueError(f"replicate {r} of {Path(path).name}: {key} row {i!r}")
                if i in listed:
                    raise ValueError(
                        f"replicate {r} of {Path(path).name}: row {i} is in {listed[i]} and {key}"
                    )
                listed[i] = key
                if i < n_rows:  # beyond: a row dropped as invalid
                    labels[i] = key
        out.append(splits_from_labels(labels, source_rows))
    return out


SPLITTERS = ("random", "scaffold", "kfold", "scaffold-kfold")


def parent_groups(smiles: Sequence[str]) -> list[str] | None:
    """Each molecule's parent structure (:func:`molpred.chem.parent_key`), or None when every
    molecule has its own: a dataset read as drawn keeps a salt apart from its free base, and a
    random split must not train on one and test on the other. Only SMILES that may not be
    their own parent (several components, a charge, a metal) are parsed."""
    keys = [s if is_own_parent(s) else (parent_key(s) or s) for s in smiles]
    return keys if len(set(keys)) < len(keys) else None


def make_splits(
    ds: MoleculeDataset,
    split: str = "random",
    *,
    sizes: Sequence[float] = SPLIT_SIZES,
    folds: int = 5,
    seed: int = 0,
    split_labels: Sequence[object] | None = None,
    splits_file: str | Path | None = None,
    replicate: int | None = None,
) -> list[Split]:
    """The splits to train on: one for random/scaffold, ``folds`` for (scaffold) k-fold, or
    user-given."""
    if splits_file is not None:
        splits = splits_from_file(splits_file, ds.source_rows)
        if replicate is None:
            return splits
        if not 0 <= replicate < len(splits):
            raise ValueError(
                f"replicate {replicate} is not in {splits_file}: it holds {len(splits)} "
                f"split(s), numbered 0 to {len(splits) - 1}"
            )
        return [splits[replicate]]
    if split_labels is not None:
        return [splits_from_labels(split_labels, ds.source_rows)]
    if split == "random":
        return [random_split(len(ds), sizes, seed, parent_groups(ds.smiles))]
    if split == "scaffold":
        return [scaffold_split(ds.smiles, sizes, seed)]
    if split == "kfold":
        return kfold_splits(len(ds), folds, seed, parent_groups(ds.smiles))
    if split == "scaffold-kfold":
        return scaffold_kfold_splits(ds.smiles, folds, seed)
    raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITTERS)}")
