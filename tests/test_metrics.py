import numpy as np

from molpred.metrics import compute_metrics, primary_metric


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
