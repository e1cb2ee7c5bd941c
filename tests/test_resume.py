"""Library scoring survives kill -9: restarted with --resume, the output is byte-identical."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from molpred.io import DataError
from molpred.models import message_dtype
from molpred.predict import predict_file
from molpred.train import train

from .conftest import ESOL_TARGET, FAST, ROOT, SMALL, train_small


@pytest.fixture(scope="module")
def setup(esol, tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    model = train_small(esol.head(80))
    model.save(d / "m.pt")
    smiles = (esol["smiles"].tolist() * 2)[:2000]
    smiles[7] = "not_a_smiles"
    pd.DataFrame({"id": [f"ID{i}" for i in range(2000)], "smiles": smiles}).to_csv(
        d / "lib.csv", index=False
    )
    return d


def _cmd(d, out, *extra):
    return [
        sys.executable,
        "-m",
        "molpred.cli",
        "predict",
        str(d / "m.pt"),
        str(d / "lib.csv"),
        "--output",
        str(out),
        "--chunk-size",
        "100",
        "--quiet",
        "--device",
        "cpu",
        *extra,
    ]


def _kill_after_parts(cmd, parts_dir, n_parts):
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = len(list(parts_dir.glob("part-*.json"))) if parts_dir.exists() else 0
        if done >= n_parts:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize(
    ("suffix", "kill_points"), [("csv", (1, 8, 15)), ("csv.gz", (5,)), ("parquet", (12,))]
)
@pytest.mark.slow
def test_kill_9_then_resume_is_byte_identical(setup, suffix, kill_points):
    d = setup
    ref = d / f"ref.{suffix}"
    subprocess.run(_cmd(d, ref), cwd=ROOT, check=True)
    out = d / f"out.{suffix}"
    parts = out.with_name(f".{out.name}.parts")
    for kill_at in kill_points:  # kill after that many parts; each restart resumes
        _kill_after_parts(_cmd(d, out, "--resume"), parts, kill_at)
        assert not out.exists()  # nothing that looks complete
    proc = subprocess.run(_cmd(d, out, "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "from an earlier run" in proc.stderr
    assert out.read_bytes() == ref.read_bytes()
    assert not parts.exists()
    df = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
    assert len(df) == 2000 and df["id"].tolist() == [f"ID{i}" for i in range(2000)]
    assert (df["error"].fillna("") != "").sum() == 1


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_is_byte_identical(setup):
    """Kills at random times (seeded), wherever the run is: importing, featurizing, writing a
    part, joining. Every restart resumes; the end result equals an uninterrupted run."""
    import random

    d = setup
    ref, out = d / "ref_random.csv.gz", d / "out_random.csv.gz"
    subprocess.run(_cmd(d, ref), cwd=ROOT, check=True)
    rng = random.Random(8)
    for _ in range(4):
        proc = subprocess.Popen(
            _cmd(d, out, "--resume"),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(1.0, 6.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    subprocess.run(_cmd(d, out, "--resume"), cwd=ROOT, check=True)
    assert out.read_bytes() == ref.read_bytes()


@pytest.mark.slow
def test_resume_refuses_a_changed_run(setup):
    d = setup
    out = d / "changed.csv"
    _kill_after_parts(_cmd(d, out, "--resume"), out.with_name(f".{out.name}.parts"), 2)
    proc = subprocess.run(
        _cmd(d, out, "--resume", "--batch-size", "7"), cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "cannot --resume" in proc.stderr


def test_panel_of_models_scores_once_with_one_column_per_task(setup, tiny_csv, tmp_path):
    from molpred.artifact import load_model

    m = load_model(setup / "m.pt")
    tox, _ = train(
        pd.read_csv("data/tox21.csv").head(120),
        "smiles",
        ["NR-AR", "SR-p53"],
        model_config=SMALL,
        train_config=FAST,
        progress=False,
    )
    predict_file([m, tox], tiny_csv, tmp_path / "panel.csv", progress=False)
    predict_file(m, tiny_csv, tmp_path / "single.csv", progress=False)
    panel = pd.read_csv(tmp_path / "panel.csv")
    single = pd.read_csv(tmp_path / "single.csv")
    cols = list(panel.columns)
    assert cols[-1] == "error" and cols.index(ESOL_TARGET) < cols.index("NR-AR") < cols.index(
        "SR-p53"
    )
    assert {"model0.domain_similarity", "model1.in_domain", "NR-AR_set"} <= set(cols)
    pd.testing.assert_series_equal(panel[ESOL_TARGET], single[ESOL_TARGET])
    with pytest.raises(DataError, match="molblock column"):
        predict_file(m, tiny_csv, tmp_path / "x.csv", molblock_column="nope", progress=False)


def test_molblock_column(setup, tmp_path):
    from rdkit import Chem

    from molpred.artifact import load_model

    blocks = [Chem.MolToMolBlock(Chem.MolFromSmiles(s)) for s in ("CCO", "c1ccccc1")] + ["junk"]
    pd.DataFrame({"mol": blocks, "id": [1, 2, 3]}).to_parquet(tmp_path / "b.parquet")
    predict_file(
        load_model(setup / "m.pt"),
        tmp_path / "b.parquet",
        tmp_path / "b.csv",
        molblock_column="mol",
        progress=False,
    )
    out = pd.read_csv(tmp_path / "b.csv", keep_default_na=False)
    assert out["error"].ne("").tolist() == [False, False, True]


def test_resume_refuses_other_output_columns(setup):
    """--percentiles adds a column per task: resuming without it wrote rows one field longer
    than the CSV's header (a Parquet output failed with pyarrow's message)."""
    from molpred.pretrained import model_path

    d = setup
    out = d / "percentiles.csv"
    cmd = _cmd(d, out, "--resume")
    cmd[4] = str(model_path("solubility"))  # a bundled model: it has approved-drug percentiles
    _kill_after_parts(cmd, out.with_name(f".{out.name}.parts"), 2)
    proc = subprocess.run([*cmd, "--percentiles"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot --resume" in proc.stderr


@pytest.mark.skipif(
    message_dtype(torch.device("cpu")) != torch.bfloat16,
    reason="float32 either way on a CPU without native bfloat16",
)
def test_resume_refuses_parts_written_in_another_precision(setup, monkeypatch):
    d = setup
    out = d / "precision.csv"
    monkeypatch.setenv("MOLPRED_PRECISION", "float32")
    _kill_after_parts(_cmd(d, out, "--resume"), out.with_name(f".{out.name}.parts"), 2)
    monkeypatch.delenv("MOLPRED_PRECISION")
    proc = subprocess.run(_cmd(d, out, "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot --resume" in proc.stderr
