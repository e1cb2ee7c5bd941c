"""Training from another model's encoder: the weights really start from the source, the frozen
epochs leave them alone, the new file is self-contained and names its source, and a mismatched
encoder is refused."""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from functools import partial

import pandas as pd
import pytest
import torch

import molpred
from molpred.artifact import weights_digest
from molpred.cli import main
from molpred.io import DataError
from molpred.train import train
from molpred.transfer import frozen_epochs, load_pretrained
from tests.conftest import ESOL_TARGET, FAST, ROOT, SMALL, train_small

FREESOLV = ROOT / "data" / "freesolv.csv"


@pytest.fixture(scope="module")
def source(esol):
    return train_small(esol.iloc[:200])


def _encoder(model) -> dict[str, torch.Tensor]:
    state = model.members[0].state_dict()
    return {k: v for k, v in state.items() if k.startswith(("encoder.", "pool."))}


def _train(source, epochs: int, freeze: int | None, **kw):
    df = pd.read_csv(FREESOLV).iloc[:150]
    model, _ = train(
        df,
        "smiles",
        ["expt"],
        train_config=replace(FAST, epochs=epochs, patience=epochs, freeze_epochs=freeze),
        progress=False,
        cache_dir=None,
        init=source,
        **kw,
    )
    return model


def test_frozen_epochs_keep_the_source_encoder_then_it_learns(source):
    before = _encoder(source)
    frozen = _train(source, epochs=2, freeze=2)
    for name, value in _encoder(frozen).items():
        torch.testing.assert_close(value, before[name], msg=name)
    thawed = _train(source, epochs=3, freeze=1)
    assert any(not torch.equal(v, before[k]) for k, v in _encoder(thawed).items())
    assert frozen.config.hidden_size == source.config.hidden_size == SMALL.hidden_size


def test_patience_counts_from_the_unfrozen_epochs(source, monkeypatch):
    """A validation score that never improves: with --patience 1 the run stopped in its second
    epoch, the encoder still frozen, so the new model was the source's with a head."""
    monkeypatch.setattr("molpred.fitting.evaluate", lambda model, ds: {"rmse": 1.0, "loss": 1.0})
    df = pd.read_csv(FREESOLV).iloc[:150]
    _, metrics = train(
        df,
        "smiles",
        ["expt"],
        train_config=replace(FAST, epochs=10, patience=1, freeze_epochs=3),
        progress=False,
        cache_dir=None,
        init=source,
        cv_members=1,
    )
    assert [m["epochs_run"] for m in metrics["members"]] == [4]  # 3 frozen, then 1 of patience


def test_the_new_file_is_self_contained_and_names_its_source(source, tmp_path):
    path = tmp_path / "source.pt"
    source.save(path)
    model = _train(path, epochs=2, freeze=None)
    init = model.info.provenance["init"]
    assert init["name"] == "source.pt"
    # the source file's own digest, as stored in its metadata: a user can match the two
    stored = json.loads(torch.load(path, weights_only=True)["metadata"])["weights_sha256"]
    assert init["weights_sha256"] == stored == source.weights_sha256()
    # the default with a source: 5 head-only epochs, but at most half of the run (all of a
    # 5-epoch run from the page was head-only: the encoder never trained)
    assert model.info.train_config["freeze_epochs"] == 1
    assert [frozen_epochs(e) for e in (2, 5, 9, 10, 60)] == [1, 2, 4, 5, 5]
    model.save(tmp_path / "fine.pt")
    path.unlink()  # the source is gone: the fine-tuned model still loads and scores
    again = molpred.load_model(tmp_path / "fine.pt")
    scored = molpred.predict(again, ["CCO", "c1ccccc1"])
    assert scored["expt"].notna().all()
    assert again.info.provenance["init"] == init


def test_same_seed_same_model(source):
    a, b = _train(source, epochs=2, freeze=1), _train(source, epochs=2, freeze=1)
    assert weights_digest([a.members[0].state_dict()]) == weights_digest(
        [b.members[0].state_dict()]
    )


def test_a_different_encoder_is_refused(source):
    with pytest.raises(DataError, match="hidden_size 64 .*48"):
        _train(source, epochs=1, freeze=1, model_config=replace(SMALL, hidden_size=64))
    assert load_pretrained(source).config.depth == SMALL.depth


def test_cli_init(source, tmp_path, capsys):
    src = tmp_path / "esol.pt"
    source.save(src)
    out = tmp_path / "fs.pt"
    args = ["train", str(FREESOLV), "--target-columns", "expt", "--epochs", "2", "--quiet"]
    assert main([*args, "--init", str(src), "--output", str(out), "--head-hidden-size", "32"]) == 0
    model = molpred.load_model(out)
    assert model.info.provenance["init"]["name"] == "esol.pt"
    assert model.config.hidden_size == SMALL.hidden_size and model.config.head_hidden_size == 32
    assert main([*args, "--init", str(src), "--hidden-size", "64", "-o", str(out)]) == 2
    assert "must match" in capsys.readouterr().err
    assert ESOL_TARGET not in model.task_names


def test_plain_training_starts_from_the_pretrained_encoder_when_data_are_small(
    tmp_path, monkeypatch, capsys
):
    import molpred.transfer as transfer

    encoder = load_pretrained(transfer.ENCODER)  # bundled: shipped with the package
    df = pd.read_csv(FREESOLV).iloc[:120]
    fast = replace(FAST, epochs=2, patience=1)  # one head-only epoch, then one more
    # a score that never improves: the best epoch is the first, the frozen one
    monkeypatch.setattr("molpred.fitting.evaluate", lambda model, ds: {"rmse": 1.0, "loss": 1.0})
    run = partial(train, df, "smiles", ["expt"], train_config=fast, progress=False, cache_dir=None)
    model, metrics = run()
    assert metrics["init"] == "encoder"
    # and a cross-validation ensemble: each member validates on its own fold of the 108
    # training and validation molecules (the random split's 12 test molecules stay out)
    assert len(model.members) == transfer.SMALL_DATA_MEMBERS
    assert sum(m["n_val"] for m in metrics["members"]) == 108
    assert {m["n_test"] for m in metrics["members"]} == {12}
    assert model.info.provenance["init"]["weights_sha256"] == encoder.sha256
    assert model.info.train_config["freeze_epochs"] == transfer.frozen_epochs(2) == 1
    for name, value in _encoder(model).items():  # the best epoch was the frozen one: as is
        torch.testing.assert_close(value, encoder.state[name], msg=name)
    # another architecture, or more molecules than the threshold: random weights
    _, small = run(model_config=SMALL)
    monkeypatch.setattr(transfer, "SMALL_DATA", 100)  # 120 rows: 108 train + validation
    many_model, many = run()
    assert small["init"] is None and many["init"] is None
    assert len(many_model.members) == 1  # above the threshold: one member, one cut
    monkeypatch.undo()
    data = tmp_path / "fs.csv"
    df.to_csv(data, index=False)
    args = ["train", str(data), "--target-columns", "expt", "--epochs", "1", "--quiet", "-o"]
    assert main([*args, str(tmp_path / "auto.pt")]) == 0
    assert "started from the pretrained encoder" in capsys.readouterr().err
    assert molpred.load_model(tmp_path / "auto.pt").info.provenance["init"]["name"] == "encoder"
    assert main([*args, str(tmp_path / "none.pt"), "--init", "none"]) == 0
    assert "init" not in (molpred.load_model(tmp_path / "none.pt").info.provenance or {})


def test_pretraining_makes_one_stripped_network_without_the_held_out_molecules(
    esol, tmp_path, monkeypatch
):
    """``python -m molpred.pretrained.pretrain`` on a small shared folder: one network even at
    small-data size, the molecules of a held-out test split left out, its summary where
    ``--summary`` says, and a file without domain or calibration, never computed."""
    from molpred.chem import parent_key
    from molpred.pretrained import pretrain

    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    (shared / "splits" / "clean").mkdir(parents=True)
    smiles = esol["smiles"].iloc[:80]
    pd.DataFrame({"SMILES": smiles}).to_csv(shared / "data" / "moses_train.csv.gz", index=False)
    for name in pretrain.HELD_OUT:  # each set's test split: the first three molecules
        pd.DataFrame({"smiles": smiles.iloc[:3]}).to_csv(
            shared / "splits" / "clean" / f"{name}.csv", index=False
        )
        (shared / "splits" / f"{name}.json").write_text(json.dumps([{"test": [0, 1, 2]}]))
    summary, output = tmp_path / "summary.json", tmp_path / "encoder.pt"
    argv = ["pretrain", "--moses", "80", "--epochs", "2", "--batch-size", "32", "--workers", "1"]
    argv += ["--no-bundled", "--shared", str(shared), "--output", str(output)]
    monkeypatch.setattr("sys.argv", [*argv, "--summary", str(summary)])

    def calibrate(*args, **kwargs):
        raise AssertionError("an encoder is not calibrated: strip() drops it")

    monkeypatch.setattr(importlib.import_module("molpred.train"), "calibrate", calibrate)
    pretrain.main()
    record = json.loads(summary.read_text())
    assert record["left_out"]["held_out"] == len({parent_key(s) for s in smiles.iloc[:3]})
    assert (
        record["molecules"] == 80 - record["left_out"]["held_out"] - record["left_out"]["duplicate"]
    )
    assert record["batch_size"] == 32 and record["epochs"] == 2 and record["device"] == "cpu"
    encoder = molpred.load_model(output)
    assert len(encoder.members) == 1  # 77 molecules would otherwise be a 5-member ensemble
    assert encoder.domain is None and encoder.info.conformal_scores == ()
    assert encoder.info.provenance["pretraining"]["batch_size"] == 32
