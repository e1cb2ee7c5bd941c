"""End to end through the installed ``molpred`` command, as a user runs it."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import ESOL_TARGET, ROOT


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "molpred.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_train_predict_evaluate(tmp_path, esol, tiny_csv):
    data = tmp_path / "esol.csv"
    esol.head(150).to_csv(data, index=False)
    model = tmp_path / "m.pt"
    run("train", data, "--target-columns", ESOL_TARGET, "--epochs", "3", "--hidden-size", "32",
        "--head-hidden-size", "32", "--split", "scaffold", "--output", model, "--quiet",
        "--metrics-out", tmp_path / "metrics.json")  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["rmse"] > 0 and metrics["members"][0]["n_train"] > 100

    out = tmp_path / "scores.csv"
    proc = run("predict", model, tiny_csv, "--output", out, "--top", "3", "--quiet")
    scores = pd.read_csv(out, keep_default_na=False)
    src = pd.read_csv(tiny_csv, keep_default_na=False)
    assert scores["id"].tolist() == src["id"].tolist()
    assert (scores["error"] != "").sum() == 3 and "16 rows: 13 scored, 3 failed" in proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 4  # header + top 3

    proc = run("evaluate", model, data, "--target-columns", ESOL_TARGET, "--output",
               tmp_path / "eval.json", "--plot", tmp_path / "domain.png")  # fmt: skip
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n_molecules"] == 150 and report["metrics"]["rmse"] > 0
    unc = report["uncertainty"][ESOL_TARGET]
    assert 0 <= unc["coverage"] <= 1 and -1 <= unc["spearman"] <= 1
    assert sum(row["n"] for row in report["by_similarity"]) == 150
    assert report["in_domain"]["n"] + report["out_of_domain"]["n"] == 150
    assert (tmp_path / "domain.png").read_bytes()[:4] == b"\x89PNG"
    assert "error by similarity" in proc.stdout

    proc = run("predict", model, tiny_csv, "--output", out, "--no-domain", "--confidence", "0.8",
               "--quiet")  # fmt: skip
    assert "domain_similarity" not in pd.read_csv(out).columns


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_help_shows_a_worked_example(command):
    assert "example:" in run(command, "--help").stdout


def test_unusable_input_exits_2_with_one_line(tmp_path, tiny_csv):
    proc = run("train", tmp_path / "missing.csv", "--target-columns", "y", "--output",
               tmp_path / "m.pt", check=False)  # fmt: skip
    assert proc.returncode == 2 and "file not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run("train", tiny_csv, "--target-columns", "nope", "--output", tmp_path / "m.pt",
               check=False)  # fmt: skip
    assert proc.returncode == 2 and "'nope'" in proc.stderr
    proc = run("predict", tmp_path / "m.pt", tiny_csv, "--output", tmp_path / "o.csv",
               check=False)  # fmt: skip
    assert proc.returncode == 2 and "model file not found" in proc.stderr


def test_train_flag_defaults_are_the_library_defaults():
    """The CLI keeps its own literal defaults (so ``--help`` starts without torch); they must
    equal the dataclasses' so ``molpred train`` and ``train()`` build the same model."""
    from dataclasses import asdict

    from molpred.cli import build_parser
    from molpred.models import ModelConfig
    from molpred.train import TrainConfig

    args = vars(build_parser().parse_args(["train", "x.csv", "--target-columns", "y", "-o", "m"]))
    model, optim = asdict(ModelConfig()), asdict(TrainConfig())
    for key in ("encoder", "hidden_size", "depth", "dropout", "pooling", "head_hidden_size",
                "head_layers"):
        assert args[key] == model[key], key
    assert args["no_descriptors"] is not model["descriptors"]
    for key in ("epochs", "batch_size", "lr", "weight_decay", "patience", "seed"):
        assert args[key] == optim[key], key
