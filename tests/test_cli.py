"""End to end through the installed ``molpred`` command, as a user runs it."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import ESOL_TARGET, ROOT


def run(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "molpred.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.mark.slow
def test_train_predict_evaluate(tmp_path, esol, tiny_csv):
    data = tmp_path / "esol.csv"
    esol.head(150).to_csv(data, index=False)
    model = tmp_path / "m.pt"
    trained = run(
        "train",
        data,
        "--target-columns",
        ESOL_TARGET,
        "--epochs",
        "3",
        "--hidden-size",
        "32",
        "--head-hidden-size",
        "32",
        "--split",
        "scaffold",
        "--output",
        model,
        "--quiet",
        "--metrics-out",
        tmp_path / "metrics.json",
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["rmse"] > 0 and metrics["members"][0]["n_train"] > 100
    weight = metrics["members"][0]["trees_weight"]  # the default blends trees, and says so
    assert (weight is None) == ("blended with trees" not in trained.stdout)
    n_test = metrics["members"][0]["n_test"]  # what the test metrics rest on, said
    assert f"{n_test} test molecules" in trained.stdout
    assert ("too few to judge" in trained.stdout) == (n_test < 20)

    out = tmp_path / "scores.csv"
    proc = run("predict", model, tiny_csv, "--output", out, "--top", "3", "--quiet")
    scores = pd.read_csv(out, keep_default_na=False)
    src = pd.read_csv(tiny_csv, keep_default_na=False)
    assert scores["id"].tolist() == src["id"].tolist()
    assert (scores["error"] != "").sum() == 3 and "16 rows: 13 scored, 3 failed" in proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 4  # header + top 3

    proc = run(
        "evaluate",
        model,
        data,
        "--target-columns",
        ESOL_TARGET,
        "--output",
        tmp_path / "eval.json",
        "--plot",
        tmp_path / "domain.png",
    )
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n_molecules"] == 150 and report["metrics"]["rmse"] > 0
    unc = report["uncertainty"][ESOL_TARGET]
    assert 0 <= unc["coverage"] <= 1 and -1 <= unc["spearman"] <= 1
    assert sum(row["n"] for row in report["by_similarity"]) == 150
    assert report["in_domain"]["n"] + report["out_of_domain"]["n"] == 150
    assert (tmp_path / "domain.png").read_bytes()[:4] == b"\x89PNG"
    assert "error by similarity" in proc.stdout
    # the rule printed is the rule applied (the expected error flags molecules too)
    assert "similarity >= " in proc.stdout and "and expected error" in proc.stdout
    proc = run("evaluate", model, data, "--target-columns", ESOL_TARGET, "--confidence", "0.999")
    assert "calibration molecules cannot bound the interval" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr

    proc = run(
        "predict", model, tiny_csv, "--output", out, "--no-domain", "--confidence", "0.8", "--quiet"
    )
    assert "domain_similarity" not in pd.read_csv(out).columns


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "tune", "suggest"])
def test_help_shows_a_worked_example_that_can_be_pasted(command):
    help_text = run(command, "--help").stdout
    example = help_text[help_text.index("example:") :].splitlines()
    assert len(example) > 1
    for before, line in zip(example, example[1:], strict=False):  # a continued command says so
        if line.startswith("      -"):
            assert before.endswith(" \\"), (before, line)


@pytest.mark.slow
def test_unusable_input_exits_2_with_one_line(tmp_path, tiny_csv):
    proc = run(
        "train",
        tmp_path / "missing.csv",
        "--target-columns",
        "y",
        "--output",
        tmp_path / "m.pt",
        check=False,
    )
    assert proc.returncode == 2 and "file not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run(
        "train", tiny_csv, "--target-columns", "nope", "--output", tmp_path / "m.pt", check=False
    )
    assert proc.returncode == 2 and "'nope'" in proc.stderr
    proc = run("predict", tmp_path / "m.pt", tiny_csv, "--output", tmp_path / "o.csv", check=False)
    assert proc.returncode == 2 and "model file not found" in proc.stderr
    proc = run(  # a device this machine lacks: one line, not a traceback
        "train", tiny_csv, "--target-columns", "logS", "--device", "cuda:7", "-o",
        tmp_path / "m.pt", check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "--device cuda:7" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "a_file").write_text("")
    bundled = ROOT / "molpred" / "pretrained" / "solubility.pt"
    proc = run("predict", bundled, tiny_csv, "-o", tmp_path / "a_file" / "o.csv", check=False)
    assert proc.returncode == 2 and "Not a directory" in proc.stderr  # no traceback
    assert len(proc.stderr.strip().splitlines()) == 1


def test_reports_are_strict_json(tmp_path):
    """An undefined metric (a similarity bin without labels) is null: jq and browsers
    reject NaN."""
    import numpy as np

    from molpred.cli.commands import _write_json

    _write_json(tmp_path / "r.json", {"a": float("nan"), "b": [np.float32(1.5), np.inf], "c": 2})
    strict = json.loads((tmp_path / "r.json").read_text(), parse_constant=pytest.fail)
    assert strict == {"a": None, "b": [1.5, None], "c": 2}


def test_a_negative_top_is_refused():
    proc = run("predict", "m.pt", "x.csv", "-o", "o.csv", "--top", "-3", check=False)
    assert proc.returncode == 2 and "-3 is negative" in proc.stderr


def test_train_flag_defaults_are_the_library_defaults():
    """The CLI keeps its own literal defaults (so ``--help`` starts without torch); they must
    equal the dataclasses' so ``molpred train`` and ``train()`` build the same model."""
    from dataclasses import asdict

    from molpred.cli import build_parser
    from molpred.fitting import TrainConfig
    from molpred.models import ModelConfig

    parser = build_parser()
    args = vars(parser.parse_args(["train", "x.csv", "--target-columns", "y", "-o", "m"]))
    model, optim = asdict(ModelConfig()), asdict(TrainConfig())
    for key in ("dropout", "head_hidden_size", "head_layers"):
        assert args[key] == model[key], key
    # the encoder's flags are unset (ModelConfig's default, or the --init model's encoder);
    # their help states ModelConfig's default
    (subcommands,) = [a for a in parser._actions if a.dest == "command"]
    helps = {a.dest: a.help for a in subcommands.choices["train"]._actions}
    for key in ("encoder", "hidden_size", "depth", "pooling"):
        assert args[key] is None and f"default: {model[key]}" in helps[key], key
    assert args["no_descriptors"] is not model["descriptors"]
    for key in ("epochs", "batch_size", "lr", "weight_decay", "patience", "seed", "trees"):
        assert args[key] == optim[key], key
    no_trees = ["train", "x.csv", "--target-columns", "y", "-o", "m", "--no-trees"]
    assert vars(parser.parse_args(no_trees))["trees"] is False


@pytest.fixture(scope="module")
def model_file(esol, tmp_path_factory):
    from .conftest import train_small

    return train_small(esol.head(100)).save(tmp_path_factory.mktemp("cli") / "esol.pt")


def test_options_are_checked_before_scoring(model_file, tiny_csv, tmp_path):
    """Mistakes that would only show after an hours-long run are refused before it starts."""
    src = tmp_path / "lib.csv"
    src.write_bytes(tiny_csv.read_bytes())
    proc = run("predict", model_file, src, "--output", src, check=False)
    assert proc.returncode == 2 and "is the input file" in proc.stderr
    assert src.read_bytes() == tiny_csv.read_bytes()  # the input is untouched
    out = tmp_path / "scores.csv"
    proc = run(
        "predict", model_file, src, "--output", out, "--top", "3", "--sort-by", "nope", check=False
    )
    assert proc.returncode == 2 and "--sort-by 'nope'" in proc.stderr and not out.exists()
    proc = run("predict", model_file, src, "--output", tmp_path / "scores.sdf", check=False)
    assert proc.returncode == 2 and "cannot write sdf" in proc.stderr
    assert not list(tmp_path.glob(".scores.sdf*"))  # nothing was scored


def test_top_rows_are_the_best_of_the_whole_file(model_file, esol, tmp_path):
    """--top keeps the best rows while streaming; they are the best rows of the written file,
    across chunks, including the rows of a resumed run's finished parts."""
    src = tmp_path / "lib.csv"
    esol[["smiles"]].head(60).to_csv(src, index=False)
    out = tmp_path / "scores.csv"
    proc = run(
        "predict",
        model_file,
        src,
        "--output",
        out,
        "--top",
        "5",
        "--ascending",
        "--chunk-size",
        "7",
        "--workers",
        "1",
        "--quiet",
    )
    written = pd.read_csv(out, keep_default_na=False)
    best = written.sort_values(ESOL_TARGET, kind="stable")["smiles"].head(5).str.strip().tolist()
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 6 and [line.split()[0] for line in lines[1:]] == best
    assert "_lower" not in lines[0] and "domain_similarity" not in lines[0]


def test_a_users_error_column_is_kept_apart(model_file, tmp_path):
    """An input column named ``error`` is the user's data: kept as ``input_error``, never
    mixed with molpred's reasons."""
    src = tmp_path / "lib.csv"
    src.write_text("smiles,error\nCCO,failed\nC1CC,\nc1ccccc1O,\n")
    out = tmp_path / "scores.csv"
    proc = run("predict", model_file, src, "--output", out, "--top", "5", "--quiet")
    scores = pd.read_csv(out, keep_default_na=False)
    assert scores["input_error"].tolist() == ["failed", "", ""]
    assert scores["error"].tolist()[0] == "" and scores["error"].tolist()[2] == ""
    assert "unparseable" in scores["error"][1]
    assert "3 rows: 2 scored, 1 failed" in proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 3  # header + both scored rows


def test_predict_panel_scores_with_every_bundled_model(tmp_path):
    from molpred.pretrained import CARDS, available

    out = tmp_path / "panel.csv"
    run("predict", "--panel", "admet", ROOT / "data" / "candidates.smi", "-o", out, "--quiet")
    table = pd.read_csv(out)
    assert len(table) == 22 and table["error"].notna().sum() == 2
    for name in available():
        first = CARDS[name].targets[0]
        column = first if first in table else f"{name}.{first}"
        assert table[column].notna().sum() == 20, name
        assert table[f"{column}_pct_approved"].between(0, 100).sum() == 20, name
    proc = run("predict", ROOT / "data" / "candidates.smi", "-o", out, check=False)
    assert proc.returncode == 2 and "--panel admet" in proc.stderr


def test_help_shows_defaults_and_starts_without_torch():
    assert "(default: 60)" in run("train", "--help").stdout
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, molpred.cli; molpred.cli.build_parser(); print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert proc.stdout.strip() == "False"


def test_one_models_metrics_print_without_a_spread(capsys):
    from molpred.cli.commands import _print_metrics

    metrics = {"test": {"rmse": 0.5, "loss": 0.1}, "test_std": {"rmse": 0.0}, "members": [{}]}
    _print_metrics(metrics, ["y"])
    out = capsys.readouterr().out
    assert "rmse" in out and "±" not in out and "loss" not in out


def test_the_smiles_column_is_found_by_name_for_every_command(model_file, esol, tmp_path):
    """train, tune and evaluate find a column headed 'SMILES' as predict does (they looked for
    exactly 'smiles' and stopped)."""
    from molpred.data import prepare_dataset

    data = tmp_path / "upper.csv"
    esol.head(40).rename(columns={"smiles": "SMILES"}).to_csv(data, index=False)
    proc = run("evaluate", model_file, data, "--target-columns", ESOL_TARGET)
    assert proc.stdout.startswith("40 molecules")
    assert len(prepare_dataset(pd.read_csv(data), None, [ESOL_TARGET])) == 40  # train, tune
    named = ["--smiles-column", "smiles", "--target-columns", ESOL_TARGET]
    proc = run("evaluate", model_file, data, *named, check=False)
    assert proc.returncode == 2 and "SMILES column 'smiles' not found" in proc.stderr
