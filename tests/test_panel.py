"""The ADMET panel's definitions and data, and approved-drug percentiles."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import molpred
from molpred.predict import predict
from molpred.predictor import Predictor
from molpred.pretrained import CARDS, CATEGORIES, model_path
from molpred.pretrained.approved import percentile, reference
from molpred.pretrained.endpoints import DATA, ENDPOINTS, Endpoint, endpoint_table, group_table
from molpred.pretrained.panel import PANEL

from .conftest import train_small


@pytest.mark.parametrize("column", list(ENDPOINTS))
def test_every_endpoint_reads_its_bundled_file(column):
    e = ENDPOINTS[column]
    assert e.category in CATEGORIES and e.task in ("regression", "classification")
    assert e.preferred in ("higher", "lower", "") or e.preferred.startswith("range ")
    assert e.units and e.description and e.citation and e.licence
    table = endpoint_table(e)
    raw = pd.read_csv(DATA / e.source)
    assert len(table) == len(raw)  # every row kept: unusable values are NaN, reported later
    values = table[column].dropna()
    assert len(values) > 0.95 * raw[e.value_column].notna().sum()  # units read, not lost
    if e.task == "classification":
        assert set(values.unique()) <= {0.0, 1.0}


def test_transforms_give_the_stated_units(tmp_path):
    (tmp_path / "x.csv").write_text("s,v\nCCO,10\nCCN,0\nCCC,0.5\n")
    log = Endpoint(
        "a",
        "A",
        CATEGORIES[2],
        "regression",
        "log10(uM)",
        "higher",
        "d",
        "x.csv",
        "s",
        "v",
        "c",
        "l",
        "log10",
    )
    assert endpoint_table(log, tmp_path)["a"].tolist()[::2] == [1.0, np.log10(0.5)]
    assert np.isnan(endpoint_table(log, tmp_path)["a"][1])  # an IC50 of 0: unusable
    fu = replace(log, column="b", units="log10(fu)", transform="log10_unbound")
    fractions = endpoint_table(fu, tmp_path)["b"]  # bound fractions 10 (not one), 0 and 0.5
    assert np.isnan(fractions[0]) and fractions.tolist()[1:] == [0.0, np.log10(0.5)]
    (tmp_path / "x.csv").write_text("s,v\nCCO,1.0\nCCN,0.9995\n")  # all bound: at the floor
    assert endpoint_table(fu, tmp_path)["b"].tolist() == [-3.0, -3.0]


def test_endpoints_of_one_file_share_its_rows():
    table = group_table(("NR-AR", "SR-p53", "p_np"))
    tox21, bbbp = pd.read_csv(DATA / "tox21.csv"), pd.read_csv(DATA / "bbbp.csv")
    assert len(table) == len(tox21) + len(bbbp)
    head = table.iloc[: len(tox21)]
    assert head["NR-AR"].equals(tox21["NR-AR"]) and head["SR-p53"].equals(tox21["SR-p53"])
    assert head["p_np"].isna().all() and table["NR-AR"].iloc[len(tox21) :].isna().all()


def test_panel_cards_describe_each_endpoint():
    for name, spec in PANEL.items():
        card = CARDS[name]
        assert card.targets == spec.endpoints
        for e in spec.endpoints:
            assert card.unit(e) == ENDPOINTS[e].units
            assert card.category_of(e) == ENDPOINTS[e].category
            assert card.preference(e) == ENDPOINTS[e].preferred
            assert ENDPOINTS[e].citation in card.cite(e)


def test_percentiles_place_predictions_among_approved_drugs(esol):
    model = molpred.load_model(model_path("solubility"))
    task = model.task_names[0]
    q = reference()["models"]["solubility"]["tasks"][task]
    pct = percentile(model, task, [q[10], q[50], q[90], -50.0, 50.0, np.nan])
    assert pct[:5] == pytest.approx([10, 50, 90, 0, 100], abs=1)
    assert np.isnan(pct[5])
    # the reference belongs to one build: another model gets none
    assert percentile(train_small(esol.head(120)), task, [0.0]) is None


def test_predictor_adds_percentiles_only_when_asked_and_only_for_bundled_models(esol):
    bundled = molpred.load_model(model_path("bbb"))
    own = train_small(esol.head(120))
    plain = predict(Predictor({"bbb": bundled, "own": own}), ["CCO"])
    assert not [c for c in plain.columns if c.endswith("_pct_approved")]
    out = predict(Predictor({"bbb": bundled, "own": own}, percentiles=True), ["CCO", "C1CC"])
    assert [c for c in out.columns if c.endswith("_pct_approved")] == ["p_np_pct_approved"]
    assert list(out.columns).index("p_np_pct_approved") == list(out.columns).index("p_np") + 1
    assert 0 <= out.loc[0, "p_np_pct_approved"] <= 100 and np.isnan(out.loc[1, "p_np_pct_approved"])
    # found by the model's card, whatever the caller names it (a list gets "model0")
    unnamed = predict(Predictor([bundled], percentiles=True), ["CCO"])
    assert unnamed["p_np_pct_approved"].tolist() == out["p_np_pct_approved"].tolist()[:1]


def test_an_unbound_fraction_is_never_predicted_above_100_percent():
    """Caffeine's log10 fu came out at 0.11 (129% unbound), upper bound 1.66; 99 of 1,386
    approved drugs were predicted above 0."""
    model = molpred.load_model(model_path("ppb"))
    panel = Predictor({"ppb": model}, percentiles=True)
    molecules = [
        "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
        "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
        "CCCCCCCCCCCCCCCCCC(=O)O",
    ]
    out = predict(panel, molecules)
    for table in (out, panel.reinterval(out, 0.99)):
        values = table[["log10_fu", "log10_fu_lower", "log10_fu_upper"]].to_numpy()
        assert (values <= 0).all() and (values >= -3).all()
    assert out["log10_fu_pct_approved"].between(0, 100).all()
    # the interval is built around the value as shown: scored again at the same confidence
    # (the page's slider) a clipped prediction keeps its interval
    assert (out["log10_fu"] == 0).any()
    pd.testing.assert_frame_equal(panel.reinterval(out, panel.confidence), out)
