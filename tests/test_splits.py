import json

import numpy as np
import pandas as pd
import pytest

from molpred.splits import (
    kfold_splits,
    make_splits,
    random_split,
    scaffold,
    scaffold_kfold_splits,
    scaffold_split,
    splits_from_file,
    splits_from_labels,
)


def _check_partition(split, n):
    allidx = np.concatenate(split)
    assert len(allidx) == n and len(set(allidx.tolist())) == n


def test_random_split_sizes_and_partition():
    s = random_split(100, (0.8, 0.1, 0.1), seed=1)
    assert (len(s.train), len(s.val), len(s.test)) == (80, 10, 10)
    _check_partition(s, 100)
    assert not np.array_equal(s.test, random_split(100, seed=2).test)


def test_bad_sizes_rejected():
    with pytest.raises(ValueError):
        random_split(10, (0.5, 0.5, 0.5))


def test_scaffold_split_shares_no_scaffold(esol):
    smiles = esol["smiles"].tolist()
    s = scaffold_split(smiles, seed=0)
    _check_partition(s, len(smiles))
    parts = [{scaffold(smiles[i]) for i in p} for p in s]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert 0.7 < len(s.train) / len(smiles) <= 0.8


def test_kfold_each_molecule_tested_once():
    splits = kfold_splits(23, k=4, seed=0)
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == list(range(23))
    for s in splits:
        _check_partition(s, 23)


def test_scaffold_kfold_tests_each_molecule_once_and_shares_no_series(esol):
    smiles = esol["smiles"].tolist()
    splits = scaffold_kfold_splits(smiles, k=5, seed=0)
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == list(range(len(smiles)))
    folds = [s.test for s in splits]
    keys = [scaffold(s) for s in smiles]
    names, counts = np.unique(keys, return_counts=True)
    catch_all = set(names[counts > len(smiles) / 10])  # ESOL: acyclic molecules, benzenes
    assert catch_all == {"", "c1ccccc1"}
    for i, s in enumerate(splits):
        _check_partition(s, len(smiles))
        assert s.val.tolist() == folds[(i + 1) % 5].tolist()
        parts = [{keys[j] for j in p} - catch_all for p in s]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    # a catch-all group is dealt out: every fold tests some of it, none all of it
    for key in catch_all:
        per_fold = [sum(keys[j] == key for j in f) for f in folds]
        assert min(per_fold) > 0 and max(per_fold) < (np.array(keys) == key).sum() / 2
    # groups dealt largest first, each to the smallest fold: near-equal folds
    biggest = max(c for name, c in zip(names, counts, strict=True) if name not in catch_all)
    assert max(map(len, folds)) <= len(smiles) / 5 + biggest
    assert scaffold_kfold_splits(smiles, k=5, seed=0)[2].test.tolist() == folds[2].tolist()
    assert scaffold_kfold_splits(smiles, k=5, seed=1)[2].test.tolist() != folds[2].tolist()


def test_scaffold_kfold_keeps_a_dominant_series_whole(esol):
    """Only the catch-alls are dealt out: a lead series of 40% of the set is one fold's test."""
    series = [f"c1ccc2[nH]c(C{'C' * i})cc2c1" for i in range(40)]  # one indole scaffold
    smiles = series + esol["smiles"].head(60).tolist()
    folds = [set(s.test.tolist()) for s in scaffold_kfold_splits(smiles, k=5, seed=0)]
    homes = [i for i, fold in enumerate(folds) if fold & set(range(40))]
    assert len(homes) == 1 and set(range(40)) <= folds[homes[0]]


def test_labels_and_file_map_input_rows_to_molecules(tmp_path):
    # 4 input rows; rows 1 and 2 were merged into molecule 1; row 3 was invalid (absent)
    source_rows = [[0], [1, 2], [4]]
    with pytest.warns(UserWarning, match="rows 1 2"):  # one molecule, two parts: said
        s = splits_from_labels(["train", "Val", "test", "x", "TEST"], source_rows)
    assert s.train.tolist() == [0] and s.val.tolist() == [1] and s.test.tolist() == [2]
    with pytest.raises(ValueError, match="not one of"):
        splits_from_labels(["train", "bogus", "", "", "test"], source_rows)
    with pytest.warns(UserWarning, match="1 molecule\\(s\\) have no train / val / test label"):
        s = splits_from_labels(["train", "", "", "x", "test"], source_rows)  # a blank cell
    assert s.train.tolist() == [0] and s.val.tolist() == [] and s.test.tolist() == [2]
    f = tmp_path / "splits.json"
    f.write_text(json.dumps([{"train": [0, 4], "val": [1, 2], "test": [3]}]))
    (s,) = splits_from_file(f, source_rows)
    assert s.train.tolist() == [0, 2] and s.val.tolist() == [1] and s.test.tolist() == []
    # a file listing only a later row of a merged molecule keeps it (it vanished)
    f.write_text(json.dumps({"train": [0, 4], "test": [2]}))
    (s,) = splits_from_file(f, source_rows)
    assert s.train.tolist() == [0, 2] and s.test.tolist() == [1]
    # a negative index (it named the last valid row) and a row in two parts are errors
    for bad, reason in (
        ({"train": [0], "test": [-1]}, "test row -1"),
        ({"train": [0, 4], "test": [4]}, "row 4 is in train and test"),
    ):
        f.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=reason):
            splits_from_file(f, source_rows)


def test_scaffold_groups_too_big_to_hold_out_train_instead_of_becoming_the_test_set():
    """85 acyclic molecules of 100 made an 85-molecule test set (and a 15-molecule training
    set); one scaffold for all molecules leaves nothing to hold out, which is said."""
    acyclic = [f"C{'C' * (i % 9)}O{'C' * (i // 9)}" for i in range(85)]
    rings = [
        f"c1ccc{'c' * 1}c1{'C' * i}N" if i % 2 else f"C1CC{'C' * (i % 5)}C1{'O' * 1}C{'C' * i}"
        for i in range(15)
    ]
    split = scaffold_split(acyclic + rings, seed=0)
    assert sorted(split.train.tolist())[:85] == list(range(85))
    assert len(split.val) + len(split.test) > 0 and len(split.test) < 15
    with pytest.raises(ValueError, match="largest scaffold holds 12 of the 12"):
        scaffold_split(["c1ccccc1" + "C" * i for i in range(12)])
    # series that are big, but each smaller than the training share, split as before
    series = [
        f"{ring}{'C' * i}"
        for ring in ("c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1")
        for i in range(1, 21)
    ]
    sizes = [len(p) for p in scaffold_split(series, seed=0)]
    assert sizes == [80, 0, 20]


def test_a_replicate_the_splits_file_does_not_hold_is_an_error(tmp_path):
    from molpred.data import MoleculeDataset

    ds = MoleculeDataset([], [], np.zeros((3, 0)), np.zeros((3, 1)), ["y"], ["regression"],
                         [[0], [1], [2]])  # fmt: skip
    f = tmp_path / "splits.json"
    f.write_text(json.dumps([{"train": [0], "val": [1], "test": [2]}] * 2))
    assert make_splits(ds, splits_file=f, replicate=1)[0].val.tolist() == [1]
    for replicate in (2, -1):  # -1 would silently be the last
        with pytest.raises(ValueError, match="numbered 0 to 1"):
            make_splits(ds, splits_file=f, replicate=replicate)


def test_cross_validation_members_hold_out_every_molecule_once_and_keep_the_test_rows():
    from molpred.splits import Split, cross_validation_members

    base = Split(np.arange(0, 80), np.arange(80, 90), np.arange(90, 100))
    members = cross_validation_members(base, 5, seed=3)
    assert len(members) == 5
    held = np.concatenate([m.val for m in members])
    np.testing.assert_array_equal(np.sort(held), np.arange(90))  # each once
    for m in members:
        np.testing.assert_array_equal(m.test, base.test)
        assert not set(m.train) & set(m.val) and len(m.train) + len(m.val) == 90
    assert [len(m.val) for m in members] == [18] * 5
    with pytest.raises(ValueError, match="2 validation rows per fold"):
        cross_validation_members(Split(np.arange(7), np.arange(7, 9), np.arange(0)), 5)
    # rows 2i and 2i+1 a salt and its free base: no member trains on one and validates the other
    pairs = [i // 2 for i in range(100)]
    for m in cross_validation_members(base, 5, seed=3, groups=pairs):
        assert not {pairs[i] for i in m.train} & {pairs[i] for i in m.val}
        assert len(m.val) == 18  # whole pairs dealt evenly
    # ten molecules as five pairs: every member still validates on a pair (a fold was empty)
    small = Split(np.arange(8), np.arange(8, 10), np.arange(0))
    for seed in range(5):
        members = cross_validation_members(small, 5, seed, groups=[i // 2 for i in range(10)])
        assert [len(m.val) for m in members] == [2] * 5


@pytest.mark.parametrize("split", ["random", "kfold", "scaffold", "scaffold-kfold"])
def test_a_salt_and_its_free_base_are_not_trained_on_and_tested(esol, split):
    """Read as drawn, a hydrochloride and its free base are two molecules: a random split put
    5 of 7 test molecules' parents in training (and scaffold k-fold, dealing acyclic molecules
    one by one, 5.7% of AqSolDB's)."""
    from molpred.chem import parent_key
    from molpred.data import prepare_dataset

    smiles = esol["smiles"].head(40).tolist()
    # a ring in the counter-ion gave the salt another scaffold than its free base (benzene)
    salts = [s + (".Cl" if i % 2 else ".[O-]C(=O)c1ccccc1") for i, s in enumerate(smiles)]
    df = pd.DataFrame({"smiles": smiles + salts, "y": range(80)})
    ds = prepare_dataset(df, "smiles", ["y"], "regression", cache_dir=None)
    keys = [parent_key(s) for s in ds.smiles]
    for part in make_splits(ds, split, folds=4, seed=0):
        train = {keys[i] for i in part.train}
        assert not train & {keys[i] for i in (*part.val, *part.test)}
        # groups land in each part as often as single molecules: the held-out parts keep
        # about their share (ties once sent every split pair to training)
        share = 0.1 if split in ("random", "scaffold") else 0.25
        assert len(part.test) >= 0.5 * share * len(ds)
    if split.startswith("scaffold"):
        return
    plain = prepare_dataset(df.head(40), "smiles", ["y"], "regression", cache_dir=None)
    assert (
        make_splits(plain, split, folds=4)[0].test.tolist()
        == (
            random_split(40, seed=0) if split == "random" else kfold_splits(40, 4, 0)[0]
        ).test.tolist()
    )  # nothing to keep together: the split is as before
