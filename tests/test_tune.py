"""Hyperparameter studies: search space, pruning, persistence, export, reports, and several
workers on one real PostgreSQL server (started by .ci/postgres.sh; see .ci/run)."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from molpred.artifact import load_model
from molpred.splits import scaffold_kfold_splits
from molpred.tune import (
    StudyError,
    TuneSettings,
    export_best,
    load_config,
    load_study,
    run_study,
    storage_url,
    suggest,
    write_report,
)
from molpred.tune import study as tune

from .conftest import ESOL_TARGET, ROOT

SETTINGS = TuneSettings("smiles", (ESOL_TARGET,), epochs=3, patience=3)


@pytest.fixture(scope="module")
def small(tmp_path_factory, esol):
    path = tmp_path_factory.mktemp("tune") / "esol.csv"
    esol.head(120).to_csv(path, index=False)
    return path


def _shrink(monkeypatch):
    """Trials small enough for the test suite: the real space with tiny sizes."""

    def small_space(trial):
        model, train = suggest(trial)
        model.update(hidden_size=32, head_hidden_size=32, depth=2)
        return model, train

    monkeypatch.setattr(tune, "suggest", small_space)


def test_search_space_lives_in_one_function():
    params = {
        "encoder": "gine",
        "depth": 4,
        "hidden_size": 250,
        "dropout": 0.1,
        "pooling": "mean",
        "descriptors": False,
        "head_layers": 1,
        "lr": 5e-4,
        "batch_size": 64,
        "weight_decay": 1e-3,
    }
    model, train = suggest(optuna.trial.FixedTrial(params))
    assert model["encoder"] == "gine" and model["hidden_size"] == model["head_hidden_size"] == 250
    assert train == {"lr": 5e-4, "batch_size": 64, "weight_decay": 1e-3}
    study = optuna.create_study()
    trial = study.ask()
    m, t = suggest(trial)
    assert set(trial.params) == set(params) and 2 <= m["depth"] <= 6 and 1e-4 <= t["lr"] <= 3e-3


@pytest.mark.slow
def test_study_persists_resumes_exports_and_reports(small, tmp_path, monkeypatch, capsys):
    _shrink(monkeypatch)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = run_study(small, SETTINGS, n_trials=3, storage=storage, study_name="s")
    assert len(study.trials) == 3 and study.best_value > 0
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("trial ")]
    assert len(lines) == 3 and all("best so far" in l and "lr=" in l for l in lines)
    again = run_study(small, SETTINGS, n_trials=3, storage=storage, study_name="s")
    assert len(again.trials) == 3  # resumed: nothing left to do
    more = run_study(small, SETTINGS, n_trials=4, storage=storage, study_name="s")
    assert len(more.trials) == 4 and len({t.number for t in more.trials}) == 4

    cfg = export_best(more, tmp_path / "best.json", storage)
    model_cfg, train_cfg, source = load_config(tmp_path / "best.json")
    assert source["trial"] == more.best_trial.number and source["study"] == "s"
    assert model_cfg.encoder == more.best_params["encoder"]
    assert train_cfg.lr == pytest.approx(more.best_params["lr"])
    assert cfg["train_config"]["epochs"] == 3 and cfg["train_config"]["patience"] == 3
    assert "single network" in cfg["source"]["value_measures"]  # not the trained model's

    html = write_report(more, tmp_path / "report.html").read_text()
    for section in (
        "Optimization history",
        "Parameter importances",
        "Parallel coordinates",
        "Slice plots",
        "<table",
    ):
        assert section in html
    assert 'src="http' not in html  # plotly.js embedded: the report opens offline


def test_weak_trials_are_pruned(small, tmp_path, monkeypatch, capsys):
    _shrink(monkeypatch)
    monkeypatch.setattr(
        tune, "_pruner", lambda name, epochs: optuna.pruners.ThresholdPruner(upper=0.0)
    )  # every RMSE is above 0: prune at the first report
    study = run_study(small, SETTINGS, n_trials=2, storage=f"sqlite:///{tmp_path / 'p.db'}")
    states = {t.state for t in study.trials}
    assert states == {optuna.trial.TrialState.PRUNED}
    assert all(t.user_attrs["pruned_at_epoch"] == 1 for t in study.trials)
    assert "pruned (at epoch 1)" in capsys.readouterr().err


def test_unknown_config_keys_are_an_error(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"model_config": {"hiden_size": 3}}))
    with pytest.raises(ValueError, match="hiden_size"):
        load_config(tmp_path / "c.json")


def _cli(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "molpred.cli", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.mark.slow
def test_cli_tune_then_train_from_the_best_configuration(small, tmp_path):
    storage = f"sqlite:///{tmp_path / 'cli.db'}"
    proc = _cli(
        "tune",
        small,
        "--target-columns",
        ESOL_TARGET,
        "--n-trials",
        "2",
        "--epochs",
        "2",
        "--storage",
        storage,
        "--study-name",
        "cli",
        "--export",
        tmp_path / "best.json",
        "--report",
        tmp_path / "r.html",
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "best: trial" in out and err.count("trial ") >= 2
    best = json.loads((tmp_path / "best.json").read_text())
    proc = _cli(
        "train",
        small,
        "--target-columns",
        ESOL_TARGET,
        "--config",
        tmp_path / "best.json",
        "--hidden-size",
        "32",
        "--epochs",
        "2",
        "--output",
        tmp_path / "m.pt",
        "--quiet",
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    meta = load_model(tmp_path / "m.pt").info
    assert meta.provenance["study"] == "cli"
    assert meta.provenance["trial"] == best["source"]["trial"]
    assert meta.model_config["hidden_size"] == 32  # an explicit flag beats the config
    assert best["source"]["split"] == {
        "split": "scaffold", "cv": 0, "splits_file": None, "replicate": None, "seed": 0
    }  # fmt: skip
    assert meta.split == "scaffold"  # the study's split: its test rows were never scored
    assert meta.model_config["encoder"] == best["model_config"]["encoder"]
    assert meta.train_config["lr"] == pytest.approx(best["train_config"]["lr"])


@pytest.mark.slow
def test_killed_worker_leaves_the_study_usable(small, tmp_path, monkeypatch):
    """kill -9 a worker mid-trial: its trial turns stale (no heartbeat), is failed and re-queued
    by the next worker, and the study completes."""
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    proc = _cli(
        "tune",
        small,
        "--target-columns",
        ESOL_TARGET,
        "--n-trials",
        "50",
        "--epochs",
        "60",
        "--storage",
        storage,
        "--study-name",
        "k",
        "--pruner",
        "none",
    )
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:
        time.sleep(1)
        try:
            s = optuna.load_study(study_name="k", storage=storage)
            running = s.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        except KeyError:
            continue
    assert running, "the worker never started a trial"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    _shrink(monkeypatch)
    monkeypatch.setattr(
        tune,
        "open_storage",
        lambda url: optuna.storages.RDBStorage(
            url,
            heartbeat_interval=1,
            grace_period=2,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(1),
        ),
    )
    time.sleep(3)
    n_before = len(optuna.load_study(study_name="k", storage=storage).trials)
    resumed = TuneSettings("smiles", (ESOL_TARGET,), epochs=60)  # the command's settings
    study = run_study(small, resumed, n_trials=2 + n_before, storage=storage, study_name="k")
    killed = study.trials[running[0].number]
    assert killed.state == optuna.trial.TrialState.FAIL
    assert any(t.system_attrs.get("failed_trial") == killed.number for t in study.trials)
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def _postgres_url() -> str:
    url = os.environ.get("MOLPRED_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide MOLPRED_TEST_POSTGRES (see .ci/run)")
        pytest.skip("no PostgreSQL: export MOLPRED_TEST_POSTGRES=$(bash .ci/postgres.sh)")
    return url


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(small, tmp_path):
    url = _postgres_url()
    name = f"two-workers-{os.getpid()}-{time.time_ns()}"
    args = (
        "tune",
        small,
        "--target-columns",
        ESOL_TARGET,
        "--n-trials",
        "6",
        "--epochs",
        "2",
        "--storage",
        url,
        "--study-name",
        name,
    )
    workers = [_cli(*args) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1] for o in outputs]
    study = optuna.load_study(study_name=name, storage=url)
    finished = study.get_trials(
        states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    )
    assert len(finished) >= 6 and len({t.number for t in study.trials}) == len(study.trials)
    per_worker = [sum(1 for l in err.splitlines() if l.startswith("trial ")) for _, err in outputs]
    assert all(n >= 1 for n in per_worker), per_worker  # both really ran trials
    assert "molpred:***@" in outputs[0][0] and "molpred:molpred@" not in outputs[0][0]
    optuna.delete_study(study_name=name, storage=url)


def test_cross_validation_objective_is_the_mean_over_folds(small, tmp_path, monkeypatch):
    from dataclasses import replace

    _shrink(monkeypatch)
    study = run_study(
        small, replace(SETTINGS, cv=3), n_trials=1, storage=f"sqlite:///{tmp_path / 'cv.db'}"
    )
    trial = study.trials[0]
    ds, splits = tune._prepare(small, replace(SETTINGS, cv=3), None)
    expected = scaffold_kfold_splits(ds.smiles, 3, SETTINGS.seed)  # the scaffold split's CV
    assert all((a.val == b.val).all() for a, b in zip(splits, expected, strict=True))
    assert {f"fold{i}_best_epoch" for i in range(3)} <= set(trial.user_attrs)
    folds = [trial.user_attrs[f"fold{i}_rmse"] for i in range(3)]
    assert trial.value == pytest.approx(sum(folds) / 3) and len(set(folds)) == 3
    assert len(trial.intermediate_values) >= 1  # fold 0's learning curve, for pruning


@pytest.mark.slow
def test_workers_started_together_on_an_empty_database_all_connect():
    """Three workers racing to create Optuna's tables in a new PostgreSQL database: the losers
    of CREATE TYPE retry instead of failing (2 of 3 such races failed before the retry)."""
    import sqlalchemy

    url = sqlalchemy.make_url(_postgres_url())
    name = f"race_{os.getpid()}_{time.time_ns()}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    fresh = url.set(database=name).render_as_string(hide_password=False)
    code = f"from molpred.tune.storage import open_storage; open_storage({fresh!r})"
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_a_study_name_taken_by_another_question_is_refused(small, tmp_path, monkeypatch):
    """Resuming under a name with other targets, metric or budget would rank values that
    cannot be compared (a classification study's worst AUC exported as the best RMSE)."""
    from dataclasses import replace

    _shrink(monkeypatch)
    path = str(tmp_path / "studies.db")  # a plain file path is a SQLite file
    study = run_study(small, SETTINGS, n_trials=1, storage=path, study_name="q")
    settings = study.user_attrs["settings"]
    other = [
        (replace(SETTINGS, target_columns=("Molecular Weight",)), "targets"),
        (replace(SETTINGS, epochs=4), "epochs"),
        (replace(SETTINGS, seed=1), "splits"),
    ]
    for changed, word in other:
        with pytest.raises(StudyError, match=f"another question: .*{word}"):
            run_study(small, changed, n_trials=2, storage=path, study_name="q")
    again = run_study(small, SETTINGS, n_trials=2, storage=path, study_name="q")
    assert len(again.trials) == 2 and again.user_attrs["settings"] == settings


def test_a_worker_whose_trials_keep_failing_stops_with_the_reason(small, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the accelerator fell over")

    monkeypatch.setattr(tune, "fit", broken)
    with pytest.raises(StudyError, match="5 trials in a row failed.*accelerator fell over"):
        run_study(small, SETTINGS, n_trials=50, storage=str(tmp_path / "f.db"), progress=False)
    study = load_study(str(tmp_path / "f.db"), tune._default_name(small, SETTINGS))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 5


def test_options_that_cannot_work_fail_before_featurization(small, tmp_path, monkeypatch):
    monkeypatch.setattr(tune, "_prepare", lambda *a: pytest.fail("featurized"))
    with pytest.raises(StudyError, match="cannot use --storage"):
        run_study(small, SETTINGS, n_trials=1, storage="nosuchdialect://host/db")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            run_study(small, SETTINGS, n_trials=1, storage=str(tmp_path / "d.db"), device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        run_study(small, SETTINGS, n_trials=1, storage=str(tmp_path / "d.db"), device="gpu")


def test_default_storage_is_a_file_name_whatever_the_target_is_called():
    assert storage_url(None, "assay-IC50 (uM)/day 2") == "sqlite:///assay-IC50_uM_day_2.db"
    assert storage_url("runs/s.db", "x") == "sqlite:///runs/s.db"
    url = "postgresql://u:p@h/db"
    assert storage_url(url, "x") == url


def test_a_metric_undefined_on_every_validation_split_is_an_error(small, tmp_path, monkeypatch):
    """One class in the validation rows: ROC-AUC is undefined, and the validation loss that
    early stopping falls back to is not a value of it."""
    import pandas as pd

    _shrink(monkeypatch)
    data = pd.read_csv(small).head(60)
    data["active"] = [1, 0] * 30
    splits = tmp_path / "splits.json"
    val = [i for i in range(40, 60) if i % 2]  # class 0 only
    splits.write_text(json.dumps([{"train": list(range(40)), "val": val, "test": []}]))
    settings = TuneSettings(
        "smiles", ("active",), ("classification",), splits_file=str(splits), epochs=2, patience=2
    )
    with pytest.raises(StudyError, match="roc_auc cannot be computed"):
        run_study(data, settings, n_trials=1, storage=str(tmp_path / "c.db"), progress=False)


def test_report_neither_creates_a_database_nor_trusts_the_study_name(tmp_path):
    """A mistyped --storage left an empty 114 KB database behind; a study name went into the
    report's HTML as markup."""
    import optuna

    from molpred.cli import main
    from molpred.tune import write_report

    typo = tmp_path / "typo.db"
    args = ["report", "--storage", str(typo), "--study-name", "x", "-o", str(tmp_path / "r.html")]
    assert main(args) == 2 and not typo.exists()
    study = optuna.create_study(study_name="<script>alert(1)</script>")
    study.add_trial(optuna.trial.create_trial(value=1.0, params={}, distributions={}))
    html = write_report(study, tmp_path / "r.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html


def test_train_from_a_study_splits_as_the_study_unless_told_otherwise(tmp_path, capsys):
    from molpred.cli.commands import _apply_config
    from molpred.cli.parser import build_parser

    def parsed(study_split: dict, *flags: str):
        config = tmp_path / "best.json"
        source = {"study": "s", "split": study_split}
        config.write_text(json.dumps({"model_config": {}, "train_config": {}, "source": source}))
        argv = ["train", "d.csv", "--target-columns", "y", "-o", "m.pt", "--config", str(config)]
        argv += flags
        args = build_parser().parse_args(argv)
        args.argv = argv
        return _apply_config(args)[0]

    study = {"split": "scaffold", "cv": 0, "splits_file": None, "replicate": None, "seed": 3}
    args = parsed(study)
    assert (args.split, args.seed) == ("scaffold", 3)
    assert "differs" not in capsys.readouterr().err
    assert parsed(study, "--split", "random").split == "random"
    assert "differs from the study's" in capsys.readouterr().err
    assert parsed(study, "--seed", "3").seed == 3
    assert "differs" not in capsys.readouterr().err  # the study's own seed: the same rows
    assert parsed(study, "--seed", "1").seed == 1
    assert "differs from the study's" in capsys.readouterr().err  # other rows: said
    assert parsed(study, "--split-sizes", "0.8", "0.1", "0.1").seed == 3
    assert "differs" not in capsys.readouterr().err
    for flags in (("--split-sizes", "0.7", "0.15", "0.15"), ("--standardize", "parent")):
        parsed(study, *flags)
        assert "differs from the study's" in capsys.readouterr().err, flags
    assert parsed(study, "--split-c", "part").split_column == "part"  # a prefix is the flag
    assert parsed(study, "--split-c", "part").split == "random"  # the user's split, not the study's
    args = parsed({**study, "cv": 4})
    assert (args.split, args.folds) == ("scaffold-kfold", 4)
    assert "optimistic" in capsys.readouterr().err  # every molecule chose the configuration
    args = parsed({**study, "splits_file": "s.json", "replicate": 2})
    assert (args.splits_file, args.replicate) == ("s.json", 2)
    assert parsed({}).split == "random"  # a configuration exported before splits were kept


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cv", "1"], "2 folds or more"),
        (["--cv", "3", "--splits-file", "s.json"], "exclude each other"),
        (["--replicate", "1"], "--splits-file, which was not given"),
    ],
)
def test_tune_options_that_would_be_ignored_are_refused(small, tmp_path, flags, message, capsys):
    from molpred.cli import main

    argv = ["tune", str(small), "--target-columns", ESOL_TARGET, "--n-trials", "1"]
    assert main([*argv, "--storage", str(tmp_path / "s.db"), *flags]) == 2  # a usage error
    assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: no epoch to train, a negative count
        main([*argv, "--epochs", "0"])


def test_export_without_a_completed_trial_says_so(small, tmp_path, monkeypatch, capsys):
    from molpred.cli import main

    def fails(ds, splits, s, device):
        def objective(trial):
            raise optuna.TrialPruned()  # every trial pruned: nothing completes

        return objective

    monkeypatch.setattr(tune, "_objective", fails)
    argv = ["tune", str(small), "--target-columns", ESOL_TARGET, "--n-trials", "2", "--quiet"]
    out = tmp_path / "best.json"
    assert main([*argv, "--storage", str(tmp_path / "s.db"), "--export", str(out)]) == 1
    assert "no trial has completed" in capsys.readouterr().err and not out.exists()


def test_a_postgresql_url_without_a_driver_uses_the_installed_one(monkeypatch):
    import importlib.util

    from molpred.tune.storage import with_driver

    have = {"psycopg2"}
    found = lambda name: object() if name in have else None  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", found)
    assert with_driver("postgresql://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert with_driver("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert with_driver("sqlite:///x.db") == "sqlite:///x.db"
    have.add("psycopg")  # SQLAlchemy's own choice is installed: left to it
    assert with_driver("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    with pytest.raises(StudyError, match="driver is not installed"):
        from molpred.tune.storage import open_storage

        have.clear()
        open_storage("mysql://u:p@h/db", attempts=1)
