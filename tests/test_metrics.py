import numpy as np
import pytest

from molpred.metrics import compute_metrics, primary_metric, primary_score


def test_metrics_mask_missing_labels():
    y = np.array([[1.0, 0.0], [2.0, np.nan], [3.0, 1.0], [np.nan, 1.0], [4.0, 0.0]])
    p = np.array([[1.0, 0.1], [2.0, 0.9], [3.0, 0.8], [9.0, 0.7], [4.0, 0.2]])
    m = compute_metrics(y, p, ["r", "c"], ["regression", "classification"])
    assert m["r/rmse"] == 0.0 and m["r/r2"] == 1.0  # the NaN row with a wild prediction is ignored
    assert m["c/roc_auc"] == 1.0


def test_single_class_task_is_nan_and_left_out_of_the_average():
    y = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.2, 0.9], [0.1, 0.2], [0.3, 0.8]])
    m = compute_metrics(y, p, ["a", "b"], ["classification", "classification"])
    assert np.isnan(m["a/roc_auc"]) and m["roc_auc"] == m["b/roc_auc"] == 1.0


def test_primary_metric():
    assert primary_metric(["regression"]) == "rmse"
    assert primary_metric(["classification"] * 3) == "roc_auc"
    assert primary_metric(["regression", "classification"]) == "loss"


def test_primary_score_is_the_primary_metric():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(60, 2))
    y[rng.random(y.shape) < 0.2] = np.nan
    p = rng.normal(size=(60, 2))
    kinds = ["regression"] * 2
    assert primary_score(y, p, kinds) == pytest.approx(compute_metrics(y, p, "ab", kinds)["rmse"])
    labels = np.where(np.isnan(y), np.nan, (y > 0).astype(float))
    probs = np.round(1 / (1 + np.exp(-p)), 1)  # ties among the scores
    kinds = ["classification"] * 2
    expected = compute_metrics(labels, probs, "ab", kinds)["roc_auc"]
    assert primary_score(labels, probs, kinds) == pytest.approx(expected)
    assert np.isnan(primary_score(np.ones((5, 1)), np.ones((5, 1)), ["classification"]))
