"""The bundled models: present, loadable without code execution, described by their cards, and
carrying everything the page shows (metrics, calibration, domain, nearest neighbours)."""

import numpy as np
import pytest

import molpred
from molpred.predict import predict
from molpred.pretrained import CARDS, available, model_path
from molpred.pretrained.approved import has_reference
from molpred.pretrained.panel import PANEL


def test_every_card_has_its_model_file():
    assert available() == list(CARDS)


@pytest.mark.parametrize("name", list(CARDS))
def test_bundled_model_matches_its_card(name):
    card = CARDS[name]
    model = molpred.load_model(model_path(name))
    assert model.task_names == list(card.targets)
    assert set(model.task_types) == {card.task}
    meta = model.info
    assert meta.split.startswith("scaffold") and meta.card == name
    assert meta.metrics["test"] and meta.molpred_version and meta.created
    if name in PANEL:  # the card's metrics: scaffold cross-validation, mean and sd per endpoint
        cv = meta.metrics["cross_validation"]
        assert cv["folds"] == 5 and set(cv["per_endpoint"]) == set(card.targets)
        assert all(len(e["folds"]) == 5 for e in cv["per_endpoint"].values())
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
