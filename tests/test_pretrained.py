"""The bundled models: present, loadable without code execution, described by their cards, and
carrying everything the page shows (metrics, calibration, domain, nearest neighbours)."""

import numpy as np
import pandas as pd
import pytest

import molpred
from molpred.predict import predict
from molpred.predictor import Predictor
from molpred.pretrained import CARDS, available, model_path
from molpred.pretrained.approved import has_reference
from molpred.pretrained.build import default_folds
from molpred.pretrained.panel import PANEL

from .conftest import ROOT


def test_every_card_has_its_model_file():
    assert available() == list(CARDS)


@pytest.mark.parametrize("name", list(CARDS))
def test_bundled_model_matches_its_card(name):
    card = CARDS[name]
    model = molpred.load_model(model_path(name))
    assert model.task_names == list(card.targets)
    assert set(model.task_types) == {card.task}
    meta = model.info
    assert meta.card == name
    assert meta.standardization == PANEL[name].standardization
    assert all((ROOT / path).is_file() for path in meta.provenance["data"])  # where it learned
    assert meta.metrics["test"] and meta.molpred_version and meta.created
    # the card's metrics: scaffold cross-validation, mean and sd per endpoint
    cv = meta.metrics["cross_validation"]
    assert (
        cv["folds"] == default_folds(card.targets)
        and meta.split == f"scaffold {cv['folds']}-fold CV"
    )
    assert set(cv["per_endpoint"]) == set(card.targets)
    assert all(len(e["folds"]) == cv["folds"] for e in cv["per_endpoint"].values())
    # then trained on every usable row: 90% to learn, 10% to stop and calibrate
    members = meta.metrics["final_fit"]["members"]
    assert [m["n_test"] for m in members] == [0]
    assert meta.n_train_molecules == members[0]["n_train"] + members[0]["n_val"]
    assert model.domain is not None and len(model.domain.smiles) == len(model.domain.fingerprints)
    out = predict(model, ["CC(=O)Oc1ccccc1C(=O)O", "C1CC"])
    assert out["error"].ne("").tolist() == [False, True]
    first = card.targets[0]
    assert np.isfinite(out.loc[0, first]) and out.loc[0, "in_domain"] in (True, False)
    if card.task == "classification":
        assert 0 <= out.loc[0, first] <= 1 and out.loc[0, f"{first}_set"] in ("0", "1", "0,1", "")
    else:
        assert out.loc[0, f"{first}_lower"] < out.loc[0, first] < out.loc[0, f"{first}_upper"]


@pytest.mark.parametrize("name", list(CARDS))
def test_every_bundled_endpoint_has_its_approved_drug_reference(name):
    """approved.json was rebuilt after the model: a percentile never mixes two builds. Each
    drug in it was predicted by a model that did not train on it (on its own training
    molecules a model predicts their labels, and new approved drugs sat at the ClinTox model's
    1st-5th percentile): the model itself for drugs it did not learn, cross-validation where
    it learned half of them or more."""
    from molpred.measured import parent_keys, training_keys
    from molpred.pretrained.approved import reference

    model = molpred.load_model(model_path(name))
    assert all(has_reference(model, t) for t in CARDS[name].targets)
    entry = reference()["models"][name]
    drugs = pd.read_csv(ROOT / "data" / "clintox.csv").query("FDA_APPROVED == 1")["smiles"]
    keys = [k for k in parent_keys(drugs.tolist()) if k]
    learned = set(training_keys(model.domain))
    assert entry["learned"] == sum(k in learned for k in keys)
    assert entry["cross_validated"] == (entry["learned"] >= len(drugs) / 2)
    if entry["cross_validated"]:
        assert entry["n"] >= 0.95 * len(keys)
    else:
        assert entry["n"] <= len(keys) - entry["learned"]


def test_a_salt_scores_as_its_parent_except_where_the_salt_form_is_measured():
    """Sodium ibuprofen's logD, CYP inhibition or Ames call are ibuprofen's; its solubility in
    AqSolDB, which measured salts as such, is not, but it is the same salt however drawn
    (covalently, C(=O)O[Na], it once came out 3.4 log units less soluble than drawn ionic)."""
    ibuprofen = "CC(C)Cc1ccc(C(C)C(=O)O)cc1"
    salts = [
        "CC(C)Cc1ccc(C(C)C(=O)[O-])cc1.[Na+]",
        "CC(C)Cc1ccc(C(C)C(=O)O[Na])cc1",
        "CC(C)Cc1ccc(C(C)C(=O)O[Na])cc1.O",
    ]
    panel = Predictor({name: molpred.load_model(model_path(name)) for name in available()})
    scored = predict(panel, [ibuprofen, *salts])
    assert scored["error"].eq("").all()
    ionic, covalent = scored["logS_AqSolDB"].iloc[1:3]
    assert ionic == pytest.approx(covalent, abs=1e-6)
    for name, columns in zip(available(), panel.schema.models, strict=True):
        values = scored[[task.value for task in columns.tasks]].to_numpy()
        as_parent = np.allclose(values[1:], values[0], rtol=0, atol=1e-6)
        assert as_parent == (PANEL[name].standardization == "parent"), name


def test_a_cached_cross_validation_is_redone_when_the_folds_or_features_change(monkeypatch):
    """The cache key named the data and the configs only: after the salts moved to their free
    bases' folds, a rebuild would have reported the old folds' metrics from the cache."""
    import molpred.pretrained.build as build

    table = pd.DataFrame({"smiles": ["CCO", "CCN", "c1ccccc1O"], "logS": [0.1, 0.2, 0.3]})
    key = build._key(("logS",), 5, table, "parent")
    assert build._key(("logS",), 5, table, "parent") == key
    monkeypatch.setattr(build, "SPLIT_REVISION", build.SPLIT_REVISION + 1)
    assert build._key(("logS",), 5, table, "parent") != key
    monkeypatch.undo()
    monkeypatch.setattr(build, "featurizer_spec", lambda canonical, mode: f"other|{mode}")
    assert build._key(("logS",), 5, table, "parent") != key
