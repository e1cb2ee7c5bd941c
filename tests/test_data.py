import pickle

import numpy as np
import pandas as pd
import pytest

from molpred.data import infer_task_types, prepare_dataset
from molpred.features import collate, featurize_chunk, featurize_smiles
from molpred.io import DataError


def test_prepare_reports_every_unusable_row(tiny_csv):
    df = pd.read_csv(tiny_csv)
    ds = prepare_dataset(df, "smiles", ["logS", "active"], ["regression", "classification"])
    reasons = dict(zip(ds.problems["row"], ds.problems["reason"], strict=False))
    assert "unparseable" in reasons[2]  # not_a_smiles
    assert "valence" in reasons[4]
    assert "empty" in reasons[6] or "missing" in reasons[6]
    assert "unusable label 'abc'" in reasons[13]
    # CCO appears twice (rows 0 and 12): merged, regression averaged, class agrees
    i = ds.smiles.index("CCO")
    assert ds.source_rows[i] == [0, 12]
    assert ds.targets[i, 0] == pytest.approx(0.6)
    assert ds.targets[i, 1] == 1
    # the salt is kept as drawn by default; its missing class label stays NaN
    j = ds.smiles.index("CCN(CC)CC.Cl")
    assert np.isnan(ds.targets[j, 1])
    assert len(ds) == 16 - 3 - 1  # 3 invalid SMILES, 1 duplicate
    parent = prepare_dataset(
        df, "smiles", ["logS", "active"], ["regression", "classification"], standardization="parent"
    )
    assert "CCN(CC)CC" in parent.smiles and "CCN(CC)CC.Cl" not in parent.smiles


def test_a_row_with_an_unusable_label_is_reported_once_with_its_smiles():
    df = pd.DataFrame({"smiles": ["CCO", "CCN", "CCC"], "y": ["1.0", ">10", "2"]})
    ds = prepare_dataset(df, "smiles", ["y"], ["regression"])
    assert ds.problems[["row", "smiles"]].values.tolist() == [[1, "CCN"]]
    assert "unusable label '>10'" in ds.problems["reason"][0]


def test_classes_written_as_words_are_read_as_0_and_1():
    df = pd.DataFrame(
        {"smiles": ["CCO", "CCN", "CCC", "CCCl"], "hit": ["Active", "inactive", "", "ACTIVE "]}
    )
    ds = prepare_dataset(df, "smiles", ["hit"])
    assert ds.task_types == ["classification"] and len(ds.problems) == 1  # the blank row
    assert ds.targets[:, 0].tolist() == [1.0, 0.0, 1.0]
    mixed = pd.DataFrame({"smiles": ["CCO", "CCN"], "y": ["active", "3.2"]})  # not all words
    assert prepare_dataset(mixed, "smiles", ["y"]).targets[:, 0] == pytest.approx([3.2])


def test_conflicting_class_labels_are_reported():
    df = pd.DataFrame({"smiles": ["CCO", "OCC", "C(C)O", "CCN"], "y": [1, 0, 0, 1]})
    ds = prepare_dataset(df, "smiles", ["y"], "classification")
    assert ds.targets[ds.smiles.index("CCO"), 0] == 0  # majority
    assert ds.problems["reason"].str.contains("conflicting labels").sum() == 1


def test_disagreeing_measurements_are_reported_and_ties_leave_nothing_behind():
    """Ethanol measured at 1 and 1000 was averaged to 500.5 without a word; a class tie left
    a molecule without any label in the dataset (counted in split sizes and test counts)."""
    df = pd.DataFrame(
        {
            "smiles": ["CCO", "OCC", "CCN", "NCC", "CCC", "CCCl", "CCBr"],
            "y": [1.0, 1000.0, 2.0, 2.1, 3.0, 4.0, 5.0],
        }
    )
    ds = prepare_dataset(df, "smiles", ["y"], "regression")
    assert ds.targets[ds.smiles.index("CCO"), 0] == 500.5
    reasons = ds.problems["reason"].tolist()
    assert len(reasons) == 1 and "disagree: [1.0, 1000.0] -> mean 500.5" in reasons[0]
    tie = pd.DataFrame({"smiles": ["CCO", "OCC", "CCN", "CCC"], "y": [1, 0, 1, 0]})
    ds = prepare_dataset(tie, "smiles", ["y"], "classification")
    assert "CCO" not in ds.smiles and len(ds) == 2 and not np.isnan(ds.targets).any()
    assert ds.problems["reason"].str.contains("missing \\(tie\\)").sum() == 1


def test_missing_column_and_unusable_tables():
    df = pd.DataFrame({"smiles": ["CCO"], "y": [1.0]})
    with pytest.raises(DataError, match="'nope'"):
        prepare_dataset(df, "smiles", ["nope"])
    with pytest.raises(DataError, match="no numeric labels"):
        prepare_dataset(pd.DataFrame({"smiles": ["CCO"], "y": ["x"]}), "smiles", ["y"])
    with pytest.raises(DataError, match="no valid molecules"):
        prepare_dataset(pd.DataFrame({"smiles": ["C1CC"], "y": [1.0]}), "smiles", ["y"])
    with pytest.raises(DataError, match="0/1"):
        prepare_dataset(
            pd.DataFrame({"smiles": ["CCO"], "y": [2.0]}), "smiles", ["y"], "classification"
        )


def test_inf_label_is_reported_and_masked():
    df = pd.DataFrame({"smiles": ["CCO", "CCC"], "y": [np.inf, 1.0]})
    ds = prepare_dataset(df, "smiles", ["y"])
    assert len(ds) == 1 and "unusable label" in ds.problems["reason"][0]


def test_task_type_inference():
    df = pd.DataFrame({"a": [0, 1, np.nan], "b": [0.5, 1, 2]})
    assert infer_task_types(df) == ["classification", "regression"]


def test_parallel_and_cached_featurization_match_serial(esol, tmp_path):
    smiles = esol["smiles"].tolist()[:300] + ["bad", None]
    serial = featurize_smiles(smiles, canonical=True, workers=1)
    parallel = featurize_smiles(smiles, canonical=True, workers=2)
    cached = featurize_smiles(smiles, canonical=True, cache_dir=tmp_path)
    again = featurize_smiles(smiles, canonical=True, cache_dir=tmp_path)  # read from disk
    assert len(list(tmp_path.glob("*.npz"))) == 1
    for other in (parallel, cached, again):
        assert other.errors == serial.errors and other.canonical == serial.canonical
        np.testing.assert_array_equal(other.descriptors, serial.descriptors)
        for a, b in zip(serial.graphs, other.graphs, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a.x, b.x)
                np.testing.assert_array_equal(a.edge_index, b.edge_index)


def test_collate_offsets_edges_per_graph():
    feats = featurize_smiles(["CCO", "c1ccccc1"])
    batch = collate(feats.graphs, feats.descriptors, np.array([[1.0], [np.nan]]))
    assert batch.num_graphs == 2 and batch.x.shape[0] == 9
    assert batch.batch.tolist() == [0] * 3 + [1] * 6
    assert batch.edge_index[:, 4:].min() >= 3  # benzene edges point into benzene atoms
    assert batch.y.shape == (2, 1) and np.isnan(batch.y[1, 0].item())


def test_featurized_survives_pickling_as_flat_arrays():
    """Worker processes send chunks packed; what arrives equals what was made, failed rows
    (None graphs) included, and a chunk where nothing parsed."""
    smiles = ["CCO", "not a smiles", None, "C", "c1ccccc1O", "[Na+].[Cl-]"]
    sent = featurize_chunk(smiles)
    got = pickle.loads(pickle.dumps(sent))
    assert got.errors == sent.errors and got.canonical == sent.canonical
    assert [g is None for g in got.graphs] == [g is None for g in sent.graphs]
    for a, b in zip(sent.graphs, got.graphs, strict=True):
        if a is not None:
            for key in ("x", "atom_mass", "edge_index", "edge_attr"):
                np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    np.testing.assert_array_equal(got.descriptors, sent.descriptors)
    np.testing.assert_array_equal(got.fingerprints, sent.fingerprints)
    empty = pickle.loads(pickle.dumps(featurize_chunk(["nope"])))
    assert empty.graphs == [None] and empty.errors[0]


def test_chunk_featurized_in_parse_batches_equals_one_batch(monkeypatch):
    """A chunk is parsed and featurized a batch at a time; the joined result is the same as
    doing the whole chunk at once, failed rows and their positions included."""
    import molpred.features as features

    smiles = ["CCO", "not a smiles", "c1ccccc1O", None, "C[C@H](N)C(=O)O", "[Na+].[Cl-]", "CC#N"]
    whole = featurize_chunk(smiles)
    monkeypatch.setattr(features, "PARSE_BATCH", 2)
    batched = featurize_chunk(smiles)
    assert batched.errors == whole.errors and batched.canonical == whole.canonical
    for a, b in zip(whole.graphs, batched.graphs, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.x, b.x)
            np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_array_equal(batched.descriptors, whole.descriptors)
    np.testing.assert_array_equal(batched.fingerprints, whole.fingerprints)


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 cut short"])
def test_a_damaged_feature_cache_is_recomputed(esol, tmp_path, damage):
    """A cut or empty cache file raised BadZipFile / EOFError in every later training."""
    smiles = esol["smiles"].tolist()[:20]
    first = featurize_smiles(smiles, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*.npz")
    cache.write_bytes(damage)
    again = featurize_smiles(smiles, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.descriptors, first.descriptors)


def test_the_feature_cache_is_keyed_by_the_rdkit_version(monkeypatch):
    """Another RDKit may canonicalize (and so deduplicate) and describe molecules differently."""
    from rdkit import rdBase

    from molpred import features

    key = features._cache_key(["CCO"], True, "none")
    monkeypatch.setattr(rdBase, "rdkitVersion", "1999.01.1")
    assert features._cache_key(["CCO"], True, "none") != key
