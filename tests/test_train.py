import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from molpred.data import prepare_dataset
from molpred.fitting import TrainConfig, evaluate, fit
from molpred.models import build_model
from molpred.predict import predict
from molpred.train import train

from .conftest import ESOL_TARGET, FAST, ROOT, SMALL


def test_overfit_small_set(esol):
    """Training loss on 64 molecules must fall far below its start (chemprop's overfit test)."""
    ds = prepare_dataset(esol.head(64), "smiles", [ESOL_TARGET])
    model = build_model(replace(SMALL, hidden_size=64, head_hidden_size=64))
    cfg = TrainConfig(epochs=60, batch_size=16, lr=2e-3, patience=1000, weight_decay=0.0)
    result = fit(model, ds, ds, cfg, progress=False)
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert last < 0.1 * first
    assert evaluate(model, ds)["rmse"] < 0.35 * float(np.std(ds.targets))


def test_early_stopping_restores_best_weights(esol):
    ds = prepare_dataset(esol.head(120), "smiles", [ESOL_TARGET])
    train_ds, val_ds = ds.subset(range(100)), ds.subset(range(100, 120))
    model = build_model(SMALL)
    result = fit(model, train_ds, val_ds, TrainConfig(epochs=30, patience=3), progress=False)
    assert len(result.history) <= result.best_epoch + 3
    assert evaluate(model, val_ds)["rmse"] == pytest.approx(result.best_score, rel=1e-5)


def test_multitask_classification_with_missing_labels(tmp_path):
    df = pd.read_csv("data/tox21.csv").head(300)
    tasks = ["NR-AR", "SR-p53", "NR-AhR"]
    assert df[tasks].isna().any().any()  # the test needs real gaps
    model, metrics = train(
        df, "smiles", tasks, model_config=SMALL, train_config=FAST, progress=False
    )
    assert model.task_types == ["classification"] * 3
    assert {"roc_auc", "pr_auc"} <= set(metrics["test"])
    out = predict(model, df["smiles"].head(20))
    assert ((out[tasks] >= 0) & (out[tasks] <= 1)).all().all()


def test_a_classification_target_with_one_class_is_refused(esol):
    """All actives (the inactives were never exported): nothing to learn, and the model would
    call every molecule active with confidence."""
    from molpred.io import DataError

    data = esol.head(30).assign(active=1)
    data.loc[3, "active"] = None  # a missing label is not a second class
    with pytest.raises(DataError, match="'active' has one class only \\(all 1 in 29 usable"):
        train(data, "smiles", ["active"], task_types="classification", progress=False)


def test_mixed_regression_and_classification(tiny_csv):
    df = pd.read_csv(tiny_csv)
    model, metrics = train(
        df,
        "smiles",
        ["logS", "active"],
        task_types=["regression", "classification"],
        model_config=SMALL,
        train_config=FAST,
        split_sizes=(0.6, 0.2, 0.2),
        progress=False,
    )
    assert model.task_types == ["regression", "classification"]
    assert metrics["primary_metric"] == "loss"


def test_same_seed_same_weights(esol):
    df = esol.head(80)
    weights = []
    for _ in range(2):
        model, _ = train(
            df,
            "smiles",
            [ESOL_TARGET],
            model_config=SMALL,
            train_config=FAST,
            progress=False,
            cache_dir=None,
        )
        weights.append(model.members[0].state_dict())
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_kfold_trains_one_member_per_fold(esol):
    model, metrics = train(
        esol.head(60),
        "smiles",
        [ESOL_TARGET],
        split="kfold",
        folds=3,
        model_config=SMALL,
        train_config=FAST,
        progress=False,
    )
    assert len(model.members) == 3 and len(metrics["members"]) == 3
    assert sum(m["n_test"] for m in metrics["members"]) == 60
    out = predict(model, ["CCO"])
    assert f"{ESOL_TARGET}_std" in out.columns


@pytest.mark.slow
def test_same_seed_same_bytes_in_separate_processes(tmp_path):
    """Two fresh processes (different hash seeds, two torch threads each) train the same model:
    the weights are byte-identical and so are the predictions. (At the default hidden size the
    threaded kernels split their work; without deterministic algorithms these runs differ.)"""
    script = f"""
import sys, pandas as pd, torch
from molpred.predict import predict
from molpred.fitting import TrainConfig
from molpred.train import train
torch.set_num_threads(2)
df = pd.read_csv({str(ROOT / "data" / "esol.csv")!r}).head(300)
model, _ = train(df, "smiles", [{ESOL_TARGET!r}], split="scaffold", progress=False,
                 train_config=TrainConfig(epochs=3), cache_dir=None,
                 init=None)  # default model size, every weight learning
model.save(sys.argv[1])
predict(model, df["smiles"].head(50).tolist()).to_csv(sys.argv[2], index=False)
"""
    runs = []
    for i, hash_seed in enumerate(["1", "2"]):
        paths = (tmp_path / f"m{i}.pt", tmp_path / f"p{i}.csv")
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", script, *map(str, paths)],
            check=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        runs.append(paths)
    (a, pa), (b, pb) = runs
    wa = torch.load(a, weights_only=True)["members"]
    wb = torch.load(b, weights_only=True)["members"]
    for sa, sb in zip(wa, wb, strict=True):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
    assert pa.read_bytes() == pb.read_bytes()


def test_small_data_trains_a_cross_validation_ensemble_that_reports_its_own_test_score(esol):
    """Up to SMALL_DATA molecules plain training trains SMALL_DATA_MEMBERS members, each
    validating on its own fold; besides the members' mean metric, the model's (the members'
    mean prediction) on the shared test rows, which is what the saved model predicts."""
    from molpred.splits import random_split
    from molpred.transfer import SMALL_DATA_MEMBERS

    data = esol.head(120)
    model, metrics = train(
        data, "smiles", [ESOL_TARGET], model_config=SMALL, train_config=FAST, progress=False
    )
    assert len(model.members) == SMALL_DATA_MEMBERS
    ds = prepare_dataset(data, "smiles", [ESOL_TARGET])
    test = random_split(len(ds), seed=FAST.seed).test
    preds = predict(model, [ds.smiles[i] for i in test])[ESOL_TARGET].to_numpy()
    rmse = float(np.sqrt(np.mean((preds - ds.targets[test, 0]) ** 2)))
    assert metrics["test_ensemble"]["rmse"] == pytest.approx(rmse, rel=1e-4)
    one, one_metrics = train(
        data,
        "smiles",
        [ESOL_TARGET],
        model_config=SMALL,
        train_config=FAST,
        progress=False,
        cv_members=1,
    )
    assert len(one.members) == 1 and "test_ensemble" not in one_metrics


def test_few_parent_structures_drawn_many_ways_train_one_member():
    """Twelve rows, three parents each drawn as four salts: the five members' folds cannot each
    hold a whole parent, so plain training counts parents, not rows, and trains one member
    (five members asked a fold of no rows to validate them)."""
    parents = ["CCO", "CCCN", "c1ccccc1O"]
    smiles = [p + salt for p in parents for salt in ("", ".Cl", ".Br", ".I")]
    df = pd.DataFrame({"smiles": smiles, "y": np.arange(12.0)})
    model, metrics = train(
        df, "smiles", ["y"], model_config=SMALL, train_config=FAST, progress=False, cache_dir=None
    )
    assert len(model.members) == 1 and len(metrics["members"]) == 1
