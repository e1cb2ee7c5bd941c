"""How long the screening page takes to score and rank 1,000 pasted molecules (issues #6, #18).

The headline is what a chemist waits for: the page served by ``streamlit run``, driven in
headless Chromium (bundled models, default settings): paste 1,000 MOSES molecules, press
Score, and time until the ranked page is drawn and the run is over — scoring with every
bundled model, computed properties, alerts, depictions, ranking and the browser's drawing
included. The same page script is also timed under Streamlit's AppTest (no browser, no
server), which is how the rerank after a weight change and the one-model run are timed;
AppTest waits for a run by polling every millisecond, so its times run slower than the
server's. The library call alone (:func:`molpred.screen.screen`: one process without
depictions, and the page's call, all cores with depictions) shows where the time goes.

Usage::

    python benchmarks/app_speed.py [--n 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
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
sys.path.insert(0, str(ROOT))

from tests.load import ARGS, CHROMIUM, serve  # noqa: E402


def chromium_seconds(smiles: list[str]) -> float:
    """Seconds from clicking Score to the ranked page drawn in Chromium with the run over,
    the page served by ``streamlit run`` (median of 3)."""
    from playwright.sync_api import sync_playwright

    times = []
    with serve() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.goto(url)
            page.get_by_text("molpred · screen candidates").wait_for(timeout=300_000)
            page.get_by_label("SMILES, one per line").fill("\n".join(smiles))
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=300_000)
            start = time.perf_counter()
            page.get_by_role("button", name="Score", exact=True).click()
            page.get_by_text(f"{len(smiles):,} candidates (").wait_for(timeout=120_000)
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=300_000)
            page.wait_for_function(
                "document.querySelectorAll('[data-stale=\"true\"]').length === 0",
                timeout=300_000,
            )
            times.append(time.perf_counter() - start)
            page.close()
        browser.close()
    return sorted(times)[1]


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

    chromium_s = chromium_seconds(smiles)
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
        "page_in_chromium_score_and_rank_seconds": round(chromium_s, 2),
        "page_apptest_score_and_rank_seconds": round(page_s, 2),
        "page_rerank_after_weight_change_seconds": round(rerank_s, 2),
        "page_score_and_rank_solubility_only_seconds": round(one_model_s, 2),
    }
    save_result(result, ROOT / "benchmarks" / "results" / "app_speed.json")


if __name__ == "__main__":
    main()
