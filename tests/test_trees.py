"""The trees blended into every member (molpred.trees): fitted, chosen on validation rows,
blended in the raw output space, saved without code and scored the same everywhere."""

import copy
import importlib
from dataclasses import replace

import numpy as np
import pytest
import torch

import molpred
from molpred.artifact import FORMAT_VERSION
from molpred.features import featurize_smiles
from molpred.models import member_outputs
from molpred.trees import PRIOR_ROWS, WEIGHTS, TreeBlend, tree_features

from .conftest import ESOL_TARGET, FAST, SMALL


def fit(data, targets, train_config=FAST, **options):
    """A tiny model, trees included unless ``train_config`` says otherwise; one member unless
    ``options`` say otherwise."""
    options.setdefault("cv_members", 1)
    return molpred.train(
        data,
        "smiles",
        targets,
        model_config=SMALL,
        train_config=train_config,
        progress=False,
        cache_dir=None,
        **options,
    )


@pytest.fixture(scope="module")
def blended(esol):
    return fit(esol.head(150), [ESOL_TARGET])


def test_every_member_carries_trees_with_a_validation_chosen_weight(blended):
    model, _ = blended
    trees = model.members[0].trees
    assert isinstance(trees, TreeBlend) and trees.weight in WEIGHTS
    assert trees.boosters[0] is not None and trees.boosters[0].num_trees() > 0
    assert model.info.train_config["trees"] is True
    assert model.info.metrics["members"][0]["trees_weight"] == trees.weight  # on the card


def test_the_output_is_the_raw_space_blend_of_network_and_trees(blended, esol):
    model, _ = blended
    member = model.members[0]
    smiles = esol["smiles"].iloc[200:230].tolist()
    feats = featurize_smiles(smiles)
    values, variances, _, raw = member_outputs([member], feats)
    trees, member.trees = member.trees, None  # the network alone
    try:
        _, own_variances, _, network = member_outputs([member], feats)
    finally:
        member.trees = trees
    x = tree_features(feats.fingerprints, feats.descriptors)
    tree_raw = trees.raw(x)
    expected = trees.weight * network[:, 0, 0] + (1 - trees.weight) * tree_raw[:, 0]
    np.testing.assert_allclose(raw[:, 0, 0], expected, rtol=1e-5, atol=1e-5)
    units = expected * float(member.y_scale[0]) + float(member.y_mean[0])
    np.testing.assert_allclose(values[:, 0, 0], units, rtol=1e-5, atol=1e-5)
    # their disagreement adds to the network's own variance, in the data's units
    w, scale = trees.weight, float(member.y_scale[0])
    between = w * (1 - w) * (network[:, 0, 0] - tree_raw[:, 0]) ** 2 * scale**2
    np.testing.assert_allclose(
        variances[:, 0, 0], own_variances[:, 0, 0] + between, rtol=1e-4, atol=1e-6
    )
    if 0 < trees.weight < 1:  # a real blend: the trees change the prediction and the spread
        assert not np.allclose(raw[:, 0, 0], network[:, 0, 0], atol=1e-3)
        assert (between > 0).all()


def test_trees_survive_the_model_file_and_score_identically(blended, esol, tmp_path):
    model, _ = blended
    path = model.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)  # no pickled code, LightGBM's text inside
    assert payload["format_version"] == FORMAT_VERSION == 4
    assert any(k.startswith("trees0_booster") for k in payload["extras"])
    loaded = molpred.load_model(path)
    assert loaded.members[0].trees.weight == model.members[0].trees.weight
    assert loaded.weights_sha256() == model.weights_sha256()  # the trees are in the digest
    network = copy.deepcopy(model)
    network.members[0].trees = None
    assert network.weights_sha256() != model.weights_sha256()
    assert torch.load(network.save(tmp_path / "n.pt"), weights_only=True)["format_version"] == 3
    smiles = esol["smiles"].iloc[200:260].tolist() + ["C1CC"]
    before = molpred.predict(model, smiles)
    after = molpred.predict(loaded, smiles)
    np.testing.assert_array_equal(before[ESOL_TARGET].to_numpy(), after[ESOL_TARGET].to_numpy())
    # without the domain columns the fingerprints the trees need are still computed
    quiet = molpred.predict(molpred.Predictor(loaded, domain=False), smiles)
    np.testing.assert_array_equal(quiet[ESOL_TARGET].to_numpy(), after[ESOL_TARGET].to_numpy())
    assert np.isnan(after[ESOL_TARGET].iloc[-1]) and after["error"].iloc[-1]


def test_the_trees_predict_on_this_process_s_threads_with_the_same_result(blended, esol):
    """A scoring worker's one thread, or every core where one process scores (a GPU run's CPU
    side): the booster gets torch's thread count, and the outputs do not depend on it."""
    model, _ = blended
    trees = model.members[0].trees
    feats = featurize_smiles(esol["smiles"].iloc[:300].tolist(), workers=1, cache_dir=None)
    x = tree_features(feats.fingerprints, feats.descriptors)
    booster, asked = trees.boosters[0], []
    predict = booster.predict

    def spy(*args, **kwargs):
        asked.append(kwargs["num_threads"])
        return predict(*args, **kwargs)

    threads = torch.get_num_threads()
    try:
        booster.predict = spy
        torch.set_num_threads(1)
        one = trees.raw(x)
        torch.set_num_threads(2)
        two = trees.raw(x)
    finally:
        torch.set_num_threads(threads)
        del booster.predict
    assert asked == [1, 2]
    np.testing.assert_array_equal(one, two)


def test_a_tampered_booster_fails_the_checksum(blended, tmp_path):
    model, _ = blended
    path = model.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    key = next(k for k in payload["extras"] if k.startswith("trees0_"))
    payload["extras"][key] = payload["extras"][key].flip(0)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(molpred.ModelFileError, match="checksum"):
        molpred.load_model(tmp_path / "bad.pt")


def test_trees_off_and_tasks_the_trees_cannot_learn(esol):
    off, _ = fit(esol.head(80), [ESOL_TARGET], train_config=replace(FAST, trees=False))
    assert off.members[0].trees is None
    # one class only in the training rows (the other is in a test row): that task stays the
    # network's alone (a task with one class in the whole table is refused before training)
    data = esol.head(120).assign(
        active=(esol[ESOL_TARGET].head(120) > -2).astype(float),
        constant=[1.0] * 119 + [0.0],
        part=["train"] * 96 + ["val"] * 12 + ["test"] * 12,
    )
    model, _ = fit(data, ["active", "constant"], task_types="classification", split_column="part")
    boosters = model.members[0].trees.boosters
    assert boosters[0] is not None and boosters[1] is None
    probs = molpred.predict(model, esol["smiles"].iloc[300:320].tolist())["active"]
    assert probs.between(0, 1).all()


def test_mixed_regression_and_classification_tasks_blend_too(esol):
    """Their primary metric is the loss: the weight is chosen on the blend's loss."""
    data = esol.head(150).assign(soluble=(esol[ESOL_TARGET].head(150) > -2).astype(float))
    model, metrics = fit(
        data, [ESOL_TARGET, "soluble"], task_types=["regression", "classification"]
    )
    assert metrics["primary_metric"] == "loss" and np.isfinite(metrics["test"]["loss"])
    scored = molpred.predict(model, esol["smiles"].iloc[300:320].tolist())
    assert scored[ESOL_TARGET].notna().all() and scored["soluble"].between(0, 1).all()


def test_the_weight_keeps_the_network_on_a_tie_and_hands_useless_networks_to_the_trees():
    from molpred.trees import choose_weight, fit_trees

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = x[:, :1] * 2.0
    trees = fit_trees(x[:150], y[:150], x[150:], y[150:], ["regression"])
    assert trees is not None and trees.weight == 1.0  # not chosen yet: the network alone
    tree_raw = torch.from_numpy(trees.raw(x[150:]))

    def rmse_of(network: np.ndarray):
        net = torch.from_numpy(network)
        return lambda w: -float(((trees.mix(net, tree_raw, w).numpy() - y[150:]) ** 2).mean())

    assert choose_weight(lambda w: 0.0, 50) == 1.0  # every weight scores the same
    # the network is perfect on validation rows: the trees can only hurt
    assert choose_weight(rmse_of(y[150:]), 50) == 1.0
    # a useless network: the trees take over, less what 50 rows leave to the prior (never all)
    noise = rng.normal(size=(50, 1)).astype(np.float32)
    expected = (50 * min(WEIGHTS) + PRIOR_ROWS) / (50 + PRIOR_ROWS)
    assert choose_weight(rmse_of(noise), 50) == pytest.approx(expected, abs=0.025)
    # no validation rows: no trees
    assert fit_trees(x[:150], y[:150], x[:0], y[:0], ["regression"]) is None


def test_few_validation_rows_leave_the_blend_mostly_to_the_network():
    """The best weight on n rows is pulled toward the network as if PRIOR_ROWS more rows had
    found it best: on 5 rows the network keeps most of the blend, on 5,000 the best stands."""
    from molpred.trees import choose_weight

    def chosen(n: int, prior_rows: float = PRIOR_ROWS) -> float:
        # the validation rows favour a network share of 0.2 (the trees' side)
        return choose_weight(lambda w: -((w - 0.2) ** 2), n, prior_rows)

    assert chosen(5, prior_rows=0) == chosen(5_000) == pytest.approx(0.2)
    assert chosen(5) == pytest.approx((5 * 0.2 + PRIOR_ROWS) / (5 + PRIOR_ROWS), abs=0.025)
    assert chosen(5) > 0.6
    # nothing scores: the network alone
    assert choose_weight(lambda w: np.nan, 3) == 1.0


def test_a_cross_validation_ensemble_chooses_one_weight_on_every_molecule(esol, monkeypatch):
    """Each member holds out its own fold; the weight is chosen once on the folds pooled (as
    many rows as molecules), and every member blends at it."""
    train_module = importlib.import_module("molpred.train")  # molpred.train is the function
    seen = []

    def recording(score, n_rows, prior_rows=PRIOR_ROWS):
        seen.append(n_rows)
        return choose(score, n_rows, prior_rows)

    choose = train_module.choose_weight
    monkeypatch.setattr(train_module, "choose_weight", recording)
    model, metrics = fit(esol.head(120), [ESOL_TARGET], split="kfold", folds=3, cv_members=None)
    assert len(model.members) == 3 and len(seen) == 1
    # kfold: each split validates on one fold and tests on another; the folds cover everything
    assert seen[0] == 120
    weights = {m["trees_weight"] for m in metrics["members"]}
    assert len(weights) == 1
    assert {None if m.trees is None else m.trees.weight for m in model.members} == weights
