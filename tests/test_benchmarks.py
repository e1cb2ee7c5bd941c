"""The benchmark harness must not rot: its quick mode trains molpred, chemprop (in the
harness's own virtual environment) and the fingerprint forest on one shared scaffold split and
scores all three.

Runs where chemprop's environment exists or can be made: always in CI (``.ci/run``), locally
once ``benchmarks/runs/chemprop-venv`` exists (``python benchmarks/accuracy.py --quick`` makes it).
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import ROOT

SHARED_SPLITS = ROOT.parent / "shared" / "splits"
CHEMPROP = ROOT / "benchmarks" / "runs" / "chemprop-venv" / "bin" / "chemprop"


@pytest.mark.slow
def test_accuracy_quick_mode_runs_all_three_tools(tmp_path):
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
    assert {r["tool"] for r in rows} == {"molpred", "chemprop", "forest"}
    for row in rows:
        assert row["dataset"] == "freesolv" and row["metric"] == "rmse"
        assert math.isfinite(row["value"]) and row["value"] > 0 and row["seconds"] > 0
    table = out.with_suffix(".md").read_text()
    assert "| freesolv | rmse | molpred |" in table and "| freesolv | rmse | forest |" in table
    assert "vs forest" in table


@pytest.mark.slow
def test_ensemble_study_and_choice_run_end_to_end(tmp_path):
    """The study trains members and stores their outputs; the choice reads them and reports
    validation-chosen spreads and domain rules with their test values."""
    if not SHARED_SPLITS.is_dir():
        pytest.skip("needs ../shared/splits beside the checkout")
    archive = tmp_path / "study.zip"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ensemble_study.py"),
            "--datasets",
            "freesolv",
            "--replicates",
            "0",
            "--members",
            "200:0",
            "--epochs",
            "2",
            "--out",
            str(archive),
        ],
        check=True,
        cwd=ROOT,
        timeout=600,
    )
    out = tmp_path / "choice.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ensemble_choice.py"),
            str(archive),
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    (row,) = json.loads(out.read_text())
    assert row["dataset"] == "freesolv" and row["members"] == 1
    for key in ("spread/all three/val", "spread/all three/test", "domain/similarity/test"):
        assert math.isfinite(row[key])
    assert "| 1 | freesolv | spread/all three |" in out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_suggest_simulation_quick_mode(tmp_path):
    """One round of the retrospective loop on the CYP3A4 set: the script trains, scores, picks
    and records what the results table of RESULTS.md reads."""
    if not (ROOT.parent / "shared" / "data" / "admet").is_dir():
        pytest.skip("needs ../shared/data/admet beside the checkout")
    out = tmp_path / "simulation.json"
    script = ROOT / "benchmarks" / "suggest_simulation.py"
    subprocess.run(
        [sys.executable, str(script), "--sets", "cyp3a4", "--seeds", "0", "--rounds", "1"]
        + ["--strategies", "random", "greedy", "--quick", "--output", str(out)],
        check=True,
        cwd=ROOT,
        timeout=900,
    )
    result = json.loads(out.read_text())
    assert result["complete"] and result["epochs"] == 5
    (cyp,) = result["results"]
    assert cyp["set"] == "cyp3a4" and cyp["top"] >= 0.05 * cyp["molecules"]
    assert [r["strategy"] for r in cyp["runs"]] == ["random", "greedy"]
    for run in cyp["runs"]:
        assert run["found"][0] == 0 and 0 <= run["found"][1] <= 48
        assert all(math.isfinite(e) and e > 0 for e in run["rmse_rest"])
    random, greedy = cyp["runs"]
    # the rows neither picked: random against itself is its own rest; the start is shared
    assert random["rmse_shared_rest"] == random["rmse_rest"] == random["random_rmse_shared_rest"]
    assert greedy["rmse_shared_rest"][0] == greedy["rmse_rest"][0] == random["rmse_rest"][0]
    assert greedy["random_rmse_shared_rest"][1] != random["rmse_rest"][1]  # fewer rows


def test_the_small_data_threshold_is_the_one_the_learning_curves_chose():
    """transfer.SMALL_DATA is not a guess: it is what benchmarks/learning_curves.py's rule
    chooses from its committed results (validation rows only)."""
    import pandas as pd

    from molpred.transfer import SMALL_DATA

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from learning_curves import RESULTS, small_data_threshold

    records = pd.DataFrame(json.loads((RESULTS / "learning_curves.json").read_text()))
    assert small_data_threshold(records) == SMALL_DATA
    # the rule reads the held-out validation rows: moving every test score changes nothing
    records["test"] = -records["test"]
    assert small_data_threshold(records) == SMALL_DATA
    # a size at which fine-tuning loses on most sets stops it there
    worse = (records["size"] == 200) & (records["method"] == "finetuned")
    records.loc[worse & (records["metric"] == "rmse"), "heldout"] = 99.0
    assert small_data_threshold(records) == 100
    # re-derived inside today's default (five members, trees), from random weights and the
    # encoder at 50-400 molecules: the same threshold
    from small_data_members import threshold

    assert threshold() == SMALL_DATA


def test_small_data_trains_the_members_the_held_out_rows_chose():
    """transfer.SMALL_DATA_MEMBERS > 1 because benchmarks/small_data_members.py's rule chooses
    the cross-validation ensemble from its committed results, on held-out rows only."""
    from molpred.transfer import SMALL_DATA_MEMBERS

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from small_data_members import members_chosen, runs

    table = runs()
    assert len(table) == 4 * 4 * 3  # 4 sets, 4 sizes, 3 seeds
    assert members_chosen(table) == (SMALL_DATA_MEMBERS > 1)
    table[["test cv5", "test single"]] = table[["test single", "test cv5"]].to_numpy()
    assert members_chosen(table)  # the test rows do not choose
    table["heldout cv5"] = table["heldout single"] * np.where(table["metric"] == "rmse", 1.1, 0.9)
    assert not members_chosen(table)


def test_the_shipped_panel_follows_its_cross_validation():
    """Every candidate group is measured and ships as the rule chose: one multitask model
    with exactly its endpoints, or each endpoint alone."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from panel_table import _runs, decide, table

    from molpred.pretrained.build import GROUPS
    from molpred.pretrained.panel import PANEL

    runs = _runs()
    for group, endpoints in GROUPS.items():
        decision = decide(group, runs)
        assert decision is not None, f"{group}: not every single-task run was made"
        homes = {next(n for n, m in PANEL.items() if e in m.endpoints) for e in endpoints}
        if decision == "multitask":
            assert len(homes) == 1 and PANEL[homes.pop()].endpoints == endpoints, group
        else:
            assert all(PANEL[h].endpoints in {(e,) for e in endpoints} for h in homes), group
    assert "| absorption | P-gp inhibitor |" in table()


@pytest.mark.slow
def test_the_wheel_with_every_bundled_model_stays_under_its_limit(tmp_path):
    """Issue #18: the installable package, all bundled models inside, is at most 40 MB."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from wheel_size import LIMIT_MB, build_wheel, wheel_report

    from molpred.pretrained import CARDS

    report = wheel_report(build_wheel(tmp_path))
    assert {f"{name}.pt" for name in CARDS} <= set(report["model_files"])  # all inside
    assert report["megabytes"] <= LIMIT_MB, report["largest_compressed"]


def test_the_tdc_comparison_reads_the_shipped_models_cross_validation():
    """Issue #18: molpred's column is the shipped model's CV in the metric TDC ranks by, and
    every published number carries its source."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tdc_comparison import PUBLISHED, molpred_cv, table

    from molpred.pretrained.endpoints import ENDPOINTS

    published = json.loads(PUBLISHED.read_text())["benchmarks"]
    assert all(b["endpoint"] in ENDPOINTS for b in published)
    assert (PUBLISHED.parent / "tdc_admet_leaderboard.md").is_file()
    rows = table().splitlines()[2:]
    assert len(rows) == len(published)
    assert not any("not yet run" in r for r in rows)  # PPBR: converted from log10 fu
    pgp = molpred_cv("Pgp_inhibitor", "roc_auc")  # the shipped absorption model's CV
    assert pgp is not None and pgp[2] == 5 and 0.5 < pgp[0] <= 1.0
    assert f"{pgp[0]:.3f} ± {pgp[1]:.3f}" in rows[0]
    assert molpred_cv("Pgp_inhibitor", "spearman") is None  # not a recorded metric
