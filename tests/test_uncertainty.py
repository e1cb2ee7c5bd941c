import numpy as np
import pytest

from molpred.trust.uncertainty import (
    combine,
    conformal_quantile,
    conformal_scores,
    fit_temperature,
    prediction_set,
    regression_interval,
    uncertainty_metrics,
)


def test_ensemble_spread_is_the_mixture_std():
    values = np.array([[[1.0, 3.0]]])  # one molecule, one task, two members
    variances = np.array([[[1.0, 1.0]]])
    mean, spread = combine(values, variances, ["regression"])
    assert mean[0, 0] == 2.0 and spread[0, 0] == pytest.approx(np.sqrt(1.0 + 1.0))
    p = np.array([[[0.2]]])
    _, single = combine(p, np.full_like(p, np.nan), ["classification"])
    assert single[0, 0] == pytest.approx(0.4)  # Bernoulli sd of one model


def test_conformal_quantile_follows_the_finite_sample_rule():
    scores = list(np.arange(1, 20) / 10)  # 19 scores: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(scores, 0.9) == pytest.approx(1.8)
    assert conformal_quantile(scores[:5], 0.99) == np.inf  # too few for 99%
    with pytest.raises(ValueError):
        conformal_quantile(scores, 1.5)


def test_conformal_intervals_cover_exchangeable_data():
    rng = np.random.default_rng(0)
    n = 4000
    sd = rng.uniform(0.2, 2.0, size=2 * n)
    y = rng.normal(0, sd)
    mean = np.zeros(2 * n)
    scores = conformal_scores(mean[:n, None], sd[:n, None], y[:n, None], ["regression"])[0]
    lo, hi = regression_interval(mean[n:], sd[n:], scores, 0.9)
    coverage = ((y[n:] >= lo) & (y[n:] <= hi)).mean()
    assert abs(coverage - 0.9) < 0.02
    m = uncertainty_metrics(y[n:], mean[n:], sd[n:], lo, hi)
    assert m["spearman"] > 0.3 and m["miscalibration_area"] < 0.03
    assert abs(m["coverage"] - coverage) < 1e-12
    # an uninformative spread is caught: no rank correlation with the error
    flat = uncertainty_metrics(y[n:], mean[n:], np.ones(n))
    assert abs(flat["spearman"]) < 0.1 or np.isnan(flat["spearman"])
    # an uncalibrated model has no bounds: its coverage is unknown, not 0
    none = np.full(n, np.nan)
    assert np.isnan(uncertainty_metrics(y[n:], mean[n:], sd[n:], none, none)["coverage"])
    # and a row without bounds is left out, not counted as missed
    lo_part, hi_part = lo.copy(), hi.copy()
    lo_part[:10] = hi_part[:10] = np.nan
    part = uncertainty_metrics(y[n:], mean[n:], sd[n:], lo_part, hi_part)
    inside = (y[n + 10 :] >= lo[10:]) & (y[n + 10 :] <= hi[10:])
    assert part["coverage"] == pytest.approx(inside.mean())


def test_prediction_sets_and_coverage_for_classification():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=6000)
    y = (rng.uniform(size=6000) < p).astype(float)  # calibrated probabilities
    scores = conformal_scores(p[:3000, None], p[:3000, None], y[:3000, None], ["classification"])[0]
    sets = prediction_set(p[3000:], scores, 0.9)
    covered = np.mean([str(int(t)) in s.split(",") for t, s in zip(y[3000:], sets, strict=True)])
    assert abs(covered - 0.9) < 0.02
    assert {"0", "1", "0,1"} >= set(sets) - {""}
    assert prediction_set(np.array([np.nan]), scores, 0.9) == [""]


def test_temperature_scaling_undoes_overconfidence():
    rng = np.random.default_rng(2)
    true_logit = rng.normal(0, 1.5, size=3000)
    y = (rng.uniform(size=3000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    assert fit_temperature(3.0 * true_logit, y) == pytest.approx(3.0, rel=0.15)
    assert fit_temperature(true_logit[:5], y[:5]) == 1.0  # too little data: unchanged
