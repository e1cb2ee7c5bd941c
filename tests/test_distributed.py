"""``--engine ray`` against a real Ray head node started by the test, on loopback."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray")

from molpred.predict import predict_file  # noqa: E402

from .conftest import ESOL_TARGET, ROOT, train_small  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


pytestmark = pytest.mark.slow  # a real cluster / browser


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = _free_port()
    tmp = tmp_path_factory.mktemp("ray")
    # a real cluster authenticates its clients: give this one its own token
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    subprocess.run(
        [
            RAY,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            str(tmp),
        ],
        check=True,
        capture_output=True,
    )
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True)
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        os.environ.pop(key, None)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def model_file(esol, tmp_path_factory):
    model = train_small(esol.head(80))
    return model.save(tmp_path_factory.mktemp("m") / "esol.pt")


def _ray_cli(model_file, src, output, cluster, *options) -> subprocess.CompletedProcess:
    """``molpred predict --engine ray`` against the test's cluster (a client authenticates with
    the token it reads when Ray is imported: another process)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "molpred.cli",
            "predict",
            str(model_file),
            str(src),
            "--output",
            str(output),
            "--engine",
            "ray",
            "--address",
            cluster,
            "--quiet",
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ray_engine_matches_local_engine(cluster, model_file, esol, tmp_path):
    smiles = (esol["smiles"].tolist() * 2)[:1200]
    smiles[5], smiles[700] = "C1CC", ""
    src = tmp_path / "lib.csv"
    pd.DataFrame({"id": [f"{i:05d}" for i in range(1200)], "smiles": smiles}).to_csv(
        src, index=False
    )
    from molpred.artifact import load_model

    predict_file(
        load_model(model_file), src, tmp_path / "local.csv", chunk_size=300, progress=False
    )
    proc = _ray_cli(model_file, src, tmp_path / "ray.csv", cluster, "--chunk-size", "300")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1200 rows: 1198 scored, 2 failed" in proc.stderr
    local = pd.read_csv(tmp_path / "local.csv", dtype={"id": str}, keep_default_na=False)
    ray_ = pd.read_csv(tmp_path / "ray.csv", dtype={"id": str}, keep_default_na=False)
    assert list(ray_.columns) == list(local.columns)
    assert ray_["id"].tolist() == local["id"].tolist()  # same rows, same order
    assert ray_["error"].tolist() == local["error"].tolist()
    a = pd.to_numeric(local[ESOL_TARGET]).to_numpy()
    b = pd.to_numeric(ray_[ESOL_TARGET]).to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.isnan(a[[5, 700]]).all() and np.isnan(b[[5, 700]]).all()


def test_ray_engine_writes_sharded_parquet(cluster, model_file, tiny_csv, tmp_path):
    proc = _ray_cli(model_file, tiny_csv, f"{tmp_path}/shards/", cluster, "--chunk-size", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "16 rows: 13 scored, 3 failed" in proc.stderr
    df = pd.read_parquet(tmp_path / "shards")
    assert len(list((tmp_path / "shards").glob("*.parquet"))) >= 1 and len(df) == 16
    assert sorted(df["id"]) == sorted(pd.read_csv(tiny_csv)["id"])


def _local_and_ray(model_file, src, tmp_path, cluster):
    """The same input scored by both engines."""
    from molpred.artifact import load_model

    predict_file(load_model(model_file), src, tmp_path / "local.csv", progress=False)
    proc = _ray_cli(model_file, src, tmp_path / "ray.csv", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [
        pd.read_csv(tmp_path / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("local", "ray")
    ]


def test_ray_reads_files_as_the_local_engine_does(cluster, model_file, tmp_path):
    """A European spreadsheet's CSV (';', decimal commas), a byte that is not UTF-8 and an
    unnamed index column: Ray read none of them as the local engine does (it failed on the
    first two and renamed the third)."""
    src = tmp_path / "semi.csv"
    src.write_bytes(
        b";id;smiles;IC50 (uM, mean)\n0;007;CCO;-0,77\n1;caf\xe9;c1ccccc1O;1,5\n2;x;C1CC;2\n"
    )
    local, ray_ = _local_and_ray(model_file, src, tmp_path, cluster)
    pd.testing.assert_frame_equal(local.drop(columns=ESOL_TARGET), ray_.drop(columns=ESOL_TARGET))
    assert local["id"].tolist() == ["007", "caf\ufffd", "x"] and list(local)[0] == "Unnamed: 0"
    assert local["IC50 (uM, mean)"].tolist() == ["-0.77", "1.5", "2"]


def test_ray_handles_header_only_and_missing_smiles_as_local(cluster, model_file, tmp_path):
    header_only = tmp_path / "empty.csv"
    header_only.write_text("id,smiles\n")
    local, ray_ = _local_and_ray(model_file, header_only, tmp_path, cluster)
    assert list(ray_.columns) == list(local.columns) and ray_.empty and local.empty
    parquet = tmp_path / "gaps.parquet"
    frame = pd.DataFrame(
        {"id": [7, 3, 11], "smiles": ["CCO", None, "c1ccccc1O"], "dose": [123456789.0, 1.5, 2.0]}
    )
    frame.set_index("id").to_parquet(parquet)  # a stored index comes back as a column
    local, ray_ = _local_and_ray(model_file, parquet, tmp_path, cluster)
    assert ray_["error"].tolist() == local["error"].tolist() == ["", "missing SMILES", ""]
    assert list(ray_.columns) == list(local.columns) and local.columns[0] == "id"
    assert ray_["id"].tolist() == local["id"].tolist() == ["7", "3", "11"]
    assert ray_["dose"].tolist() == local["dose"].tolist()  # not rounded to float32
    assert float(local["dose"][0]) == 123456789.0


# run as a client of the test's cluster: a predictor whose actor dies on one molecule (a
# segfault, an out-of-memory kill), a second run into the same directory, too many actors
_FAILURES = """
import os, sys
import pandas as pd
from molpred.artifact import load_model
from molpred.distributed import predict_file_ray
from molpred.io import DataError
from molpred.predictor import Predictor

model_file, src, tmp, address = sys.argv[1:]

class DiesOnCyclopropene:
    def __init__(self, predictor):
        self.predictor = predictor

    def score_frame(self, df, column, molblock=False):
        if (df[column] == "C1=CC1").any():
            os._exit(1)
        return self.predictor.score_frame(df, column, molblock=molblock)

predictor = Predictor.of(load_model(model_file), None)
try:
    predict_file_ray(DiesOnCyclopropene(predictor), src, f"{tmp}/out.csv", address=address)
    print("RESULT crash: no error")
except Exception as exc:
    print("RESULT crash:", type(exc).__name__)
predict_file_ray(predictor, src, f"{tmp}/shards/", address=address)
before = sorted(os.listdir(f"{tmp}/shards"))
try:
    predict_file_ray(predictor, src, f"{tmp}/shards/", address=address)
except DataError as exc:
    print("RESULT again:", exc)
after = sorted(os.listdir(f"{tmp}/shards"))
print("RESULT shards:", after == before, len(pd.read_parquet(f"{tmp}/shards")))
try:
    predict_file_ray(predictor, src, f"{tmp}/x.csv", address=address, actors=2)
except DataError as exc:
    print("RESULT actors:", exc)
"""


def test_ray_fails_instead_of_retrying_forever_or_mixing_runs(cluster, model_file, tmp_path):
    """An actor that dies on a molecule was restarted forever (Ray's default for actor
    pools); a second run into the same directory added its shards to the first run's; and
    actors holding every CPU left none for reading, so nothing ever moved."""
    src = tmp_path / "in.csv"
    pd.DataFrame({"smiles": ["CCO", "C1=CC1", "c1ccccc1O"]}).to_csv(src, index=False)
    proc = subprocess.run(
        [sys.executable, "-c", _FAILURES, str(model_file), str(src), str(tmp_path), cluster],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Ray's own messages share stdout
    lines = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert lines[0].startswith("crash: ") and lines[0] != "crash: no error"
    assert "already holds files" in lines[1]
    assert lines[2] == "shards: True 3"
    assert "2 CPU" in lines[3]


def test_local_only_options_are_refused_with_ray(tiny_csv, tmp_path, capsys):
    """--top and --workers were ignored without a word under --engine ray."""
    from molpred.cli import main

    for flag in (["--top", "3"], ["--workers", "2"], ["--resume"]):
        argv = ["predict", "m.pt", str(tiny_csv), "-o", str(tmp_path / "o.csv"), "--engine", "ray"]
        assert main([*argv, *flag]) == 2
        assert f"{flag[0]}: for the local engine" in capsys.readouterr().err
