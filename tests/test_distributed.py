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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "molpred.cli",
            "predict",
            str(model_file),
            str(src),
            "--output",
            str(tmp_path / "ray.csv"),
            "--engine",
            "ray",
            "--address",
            cluster,
            "--chunk-size",
            "300",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "molpred.cli",
            "predict",
            str(model_file),
            str(tiny_csv),
            "--output",
            f"{tmp_path}/shards/",
            "--engine",
            "ray",
            "--address",
            cluster,
            "--chunk-size",
            "4",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "16 rows: 13 scored, 3 failed" in proc.stderr
    df = pd.read_parquet(tmp_path / "shards")
    assert len(list((tmp_path / "shards").glob("*.parquet"))) >= 1 and len(df) == 16
    assert sorted(df["id"]) == sorted(pd.read_csv(tiny_csv)["id"])
