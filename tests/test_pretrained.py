"""The bundled models: present, loadable without code execution, described by their cards, and
carrying everything the page shows (metrics, calibration, domain, nearest neighbours)."""

import numpy as np
import pytest

import molpred
from molpred.predict import predict
from molpred.pretrained import CARDS, available, model_path
from molpred.pretrained.approved import has_reference
from molpred.pretrained.build import default_folds

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
    """approved.json was rebuilt after the model: a percentile never mixes two builds."""
    model = molpred.load_model(model_path(name))
    assert all(has_reference(model, name, t) for t in CARDS[name].targets)
