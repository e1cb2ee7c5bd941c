"""The expected-error model: it recovers a known noise scale, its held-out sigmas never see
their own residual, and a trained model's spread, intervals and domain flag follow it."""

import dataclasses

import numpy as np
import pytest
from scipy.stats import spearmanr

from molpred import predict
from molpred.trust.error_model import (
    MIN_ROWS,
    cross_fitted_sigma,
    error_features,
    fit_task,
    relative_error,
)
from molpred.trust.uncertainty import calibration_error
from tests.conftest import ESOL_TARGET, train_small


def _heteroscedastic(n: int, seed: int = 0):
    """Residuals whose scale grows with dissimilarity and latent distance, not with spread."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.5, 1.5, n)
    sim = rng.uniform(0.1, 1.0, n)
    latent = rng.lognormal(0.0, 0.4, n)
    true_sigma = 0.3 * np.exp(2.0 * (1 - sim) + 0.8 * np.log(latent))
    return error_features(spread, sim, latent), rng.normal(0, true_sigma), true_sigma


def test_fit_recovers_a_known_noise_scale():
    x, r, true_sigma = _heteroscedastic(600)
    model = fit_task(x, r)
    x_new, r_new, sigma_new = _heteroscedastic(400, seed=1)
    fitted = model.sigma(x_new)
    assert spearmanr(fitted, sigma_new).statistic > 0.9
    assert spearmanr(fitted, np.abs(r_new)).statistic > 0.3
    # the weights point the right way: dissimilar and far means larger error; spread is noise
    w = np.asarray(model.weights)
    assert w[2] > 0.3 and w[3] > 0.1 and abs(w[1]) < 0.15
    assert np.median(fitted / sigma_new) == pytest.approx(1.0, abs=0.2)  # in the data's units


def test_too_few_rows_give_no_model_and_nan_rows_are_ignored():
    x, r, _ = _heteroscedastic(MIN_ROWS - 1)
    assert fit_task(x, r) is None
    x, r, _ = _heteroscedastic(200)
    r[:50] = np.nan
    x[50:60, 1] = np.nan
    model = fit_task(x, r)
    assert model is not None and np.isfinite(model.weights).all()


def test_cross_fitted_sigma_never_sees_its_own_residual():
    x, r, _ = _heteroscedastic(200)
    before = cross_fitted_sigma(x, r, seed=3)
    changed = r.copy()
    changed[7] *= 50  # an outlier moves every fold's model except its own
    after = cross_fitted_sigma(x, changed, seed=3)
    assert after[7] == pytest.approx(before[7])
    assert np.sum(~np.isclose(after, before)) > 100


def test_relative_error_is_zero_at_the_median():
    sigma = np.array([1.0, 2.0, 4.0])
    assert relative_error([sigma], [2.0]) == pytest.approx(np.log([0.5, 1.0, 2.0]))


def test_calibration_error_separates_honest_from_overconfident():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    assert calibration_error(y, p) < 0.02
    sharp = np.where(p > 0.5, 0.99, 0.01)  # same ranking, far too sure
    assert calibration_error(y, sharp) > 0.2


def test_trained_model_spread_is_its_error_model(esol):
    model = train_small(esol.head(400))
    assert model.error_model(0) is not None
    assert model.domain.error_threshold is not None
    smiles = esol["smiles"].iloc[400:520].tolist() + ["[Si](C)(C)(C)O[Si](C)(C)C"]
    out = predict(model, smiles)
    std = out[f"{ESOL_TARGET}_std"].to_numpy()
    width = (out[f"{ESOL_TARGET}_upper"] - out[f"{ESOL_TARGET}_lower"]).to_numpy()
    # intervals scale with the expected error, molecule by molecule
    assert np.allclose(width / std, width[0] / std[0], rtol=1e-4)
    assert np.percentile(width, 90) / np.percentile(width, 10) > 1.1
    # the stranger is among the least trusted molecules, and out of the domain
    assert np.mean(std[:-1] < std[-1]) > 0.8 and not out["in_domain"].iloc[-1]


def test_files_without_an_error_model_keep_the_ensemble_spread(esol, tmp_path):
    """What a file saved before the error model existed predicts is unchanged."""
    model = train_small(esol.head(300))
    old = dataclasses.replace(model, info=dataclasses.replace(model.info, error_model=None))
    old.domain.error_threshold = None
    old.save(tmp_path / "old.pt")
    from molpred.artifact import load_model
    from molpred.models import member_outputs
    from molpred.trust.uncertainty import combine

    loaded = load_model(tmp_path / "old.pt")
    assert loaded.info.error_model is None and loaded.domain.error_threshold is None
    smiles = esol["smiles"].iloc[300:340].tolist()
    out = predict(loaded, smiles)
    from molpred.features import featurize_chunk

    values, variances, _, _ = member_outputs(loaded.members, featurize_chunk(smiles))
    _, spread = combine(values, variances, loaded.task_types)
    assert np.allclose(out[f"{ESOL_TARGET}_std"], spread[:, 0], rtol=1e-5)
    sim = out["domain_similarity"].to_numpy()
    assert (out["in_domain"].to_numpy(bool) == (sim >= loaded.domain.threshold)).all()


def test_expected_error_does_not_depend_on_the_domain_columns(esol):
    """Without the domain columns the model still computes what its expected error reads."""
    model = train_small(esol.head(300))
    smiles = esol["smiles"].iloc[300:360].tolist() + ["not a smiles"]
    full, bare = predict(model, smiles), predict(model, smiles, domain=False)
    assert "in_domain" not in bare.columns and "in_domain" in full.columns
    std = f"{ESOL_TARGET}_std"
    assert np.allclose(bare[std].iloc[:-1], full[std].iloc[:-1])
    assert np.isnan(bare[std].iloc[-1]) and bare["error"].iloc[-1]
