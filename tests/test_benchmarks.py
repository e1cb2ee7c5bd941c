"""The benchmark harness must not rot: its quick mode trains both molpred and chemprop (in the
harness's own virtual environment) on one shared scaffold split and scores both.

Runs where chemprop's environment exists or can be made: always in CI (``.ci/run``), locally
once ``benchmarks/runs/chemprop-venv`` exists (``python benchmarks/accuracy.py --quick`` makes it).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

SHARED_SPLITS = ROOT.parent / "shared" / "splits"
CHEMPROP = ROOT / "benchmarks" / "runs" / "chemprop-venv" / "bin" / "chemprop"


@pytest.mark.slow
def test_accuracy_quick_mode_runs_both_tools(tmp_path):
    if not SHARED_SPLITS.is_dir():
        pytest.skip("needs ../shared/splits beside the checkout")
    if not CHEMPROP.exists() and not os.environ.get("CI"):
        pytest.skip("no chemprop environment: run python benchmarks/accuracy.py --quick once")
    out = tmp_path / "quick.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--quick", "--out", str(out)],
        check=True,
        cwd=ROOT,
        timeout=900,
    )
    rows = json.loads(out.read_text())
    assert {r["tool"] for r in rows} == {"molpred", "chemprop"}
    for row in rows:
        assert row["dataset"] == "freesolv" and row["metric"] == "rmse"
        assert math.isfinite(row["value"]) and row["value"] > 0 and row["seconds"] > 0
    assert "| freesolv | rmse | molpred |" in out.with_suffix(".md").read_text()
