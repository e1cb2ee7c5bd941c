"""How long the screening page takes to score and rank 1,000 pasted molecules (issue #6).

Drives the real page with Streamlit's AppTest (bundled models, default settings): paste 1,000
MOSES molecules, press Score, and time the run until the ranked table is built — scoring with
every bundled model, computed properties, alerts, depictions and ranking included. Also times
the library call alone (:func:`molpred.screen.screen`: one process without depictions, and
the page's call, all cores with depictions) to show where the time goes.

Usage::

    python benchmarks/app_speed.py [--n 1000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from report import save_result  # benchmarks/report.py, beside this script
from streamlit.testing.v1 import AppTest

import molpred
from molpred.parallel import default_workers
from molpred.pretrained import available, model_path
from molpred.screen import screen

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"


def page_seconds(smiles: list[str], models: list[str] | None = None) -> tuple[float, float]:
    """Seconds from pressing Score to the ranked table, and of a re-rank after a weight change
    (median of 3), through the real page script."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    if models is not None:
        at.sidebar.multiselect[0].set_value(models)
        at.run()
    at.text_area(key="pasted").input("\n".join(smiles))
    at.button(key="score_paste").click()
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception and len(at.session_state["results"]) == len(smiles)
    reranks = []
    for weight in (2.0, 3.0, 1.5):
        at.number_input(key="w_QED").set_value(weight)
        start = time.perf_counter()
        at.run()
        reranks.append(time.perf_counter() - start)
    assert not at.exception
    return seconds, sorted(reranks)[1]


def main() -> None:
    # the bundled models only: a user's models/ directory would be scored too
    os.environ["MOLPRED_MODELS_DIR"] = tempfile.mkdtemp(prefix="app_speed_models_")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    smiles = pd.read_csv(LIBRARY, nrows=args.n).iloc[:, 0].tolist()
    models = {n: molpred.load_model(model_path(n)) for n in available()}
    screen(models, smiles[:20])  # warm-up: imports, first-call overheads
    start = time.perf_counter()
    table = screen(models, smiles)
    library_1_s = time.perf_counter() - start
    start = time.perf_counter()  # what the page calls: all cores, with depictions
    screen(models, smiles, depict=True, workers=default_workers())
    library_s = time.perf_counter() - start

    page_s, rerank_s = page_seconds(smiles)
    one_model_s, _ = page_seconds(smiles, ["solubility"])
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": 2,
        "molecules": len(smiles),
        "models": list(models),
        "tasks": sum(len(m.task_names) for m in models.values()),
        "scored": int((table["error"] == "").sum()),
        "library_screen_1_process_seconds": round(library_1_s, 2),
        "library_screen_all_cores_with_depictions_seconds": round(library_s, 2),
        "page_score_and_rank_seconds": round(page_s, 2),
        "page_rerank_after_weight_change_seconds": round(rerank_s, 2),
        "page_score_and_rank_solubility_only_seconds": round(one_model_s, 2),
    }
    save_result(result, ROOT / "benchmarks" / "results" / "app_speed.json")


if __name__ == "__main__":
    main()
