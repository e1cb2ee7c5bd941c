"""End to end in a real browser: the app served headless on 127.0.0.1, driven by Debian's
Chromium through Playwright. Paste molecules (one invalid), score, check the ranked table and the
error row through the CSV download, upload a file, and save a screenshot.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; .ci/run installs it). Set
``MOLPRED_SCREENSHOT=path.png`` to keep the screenshot (README's image is made this way).
"""

import os
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import ROOT, train_small
from .load import CHROMIUM, check_no_cross_talk, concurrent_sessions, serve

pytestmark = pytest.mark.slow  # a real cluster / browser


def _serve_with_model(tmp_path_factory, esol, file_name: str):
    """The page served with one small ESOL model in its models directory."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium (see .ci/run)")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    models = tmp_path_factory.mktemp("models")
    train_small(esol.head(200)).save(models / file_name)
    with serve({"MOLPRED_MODELS_DIR": str(models)}) as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory, esol):
    yield from _serve_with_model(tmp_path_factory, esol, "tiny.pt")


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 1300}, accept_downloads=True)
    page.goto(url)
    page.get_by_text("molpred · screen candidates").wait_for(timeout=120_000)
    return page


def _download_csv(page) -> pd.DataFrame:
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download CSV").click()
    return pd.read_csv(info.value.path(), keep_default_na=False)


def test_paste_score_rank_in_chromium(server, browser, tmp_path):
    page = _open(browser, server)
    page.get_by_label("SMILES, one per line").fill(
        "CC(=O)Oc1ccccc1C(=O)O aspirin\nC1CC broken\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine\n"
        "c1ccccc1O phenol"
    )
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("4 candidates (3 scored, 1 with errors)").wait_for(timeout=180_000)
    ranked = _download_csv(page)
    assert sorted(ranked["name"]) == ["aspirin", "broken", "caffeine", "phenol"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked.iloc[-1]["name"] == "broken" and "unparseable SMILES" in ranked.iloc[-1]["error"]
    assert (ranked["error"].iloc[:3] == "").all()
    shot = Path(os.environ.get("MOLPRED_SCREENSHOT", tmp_path / "app.png"))
    page.get_by_role("img").first.wait_for(timeout=30_000)  # structure images drawn
    page.mouse.wheel(0, -10_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    page.close()


def test_upload_in_chromium(server, browser, tmp_path):
    """450 rows: enough chunks that the page scores them in worker processes of the server."""
    page = _open(browser, server)
    page.get_by_role("tab", name="Upload").click()
    csv = tmp_path / "cands.csv"
    esol = pd.read_csv(ROOT / "data" / "esol.csv").head(447)
    names = ["eth", "junk", "anil", *(f"esol{i}" for i in range(len(esol)))]
    pd.DataFrame({"smiles": ["CCO", "xyz", "c1ccccc1N", *esol["smiles"]], "name": names}).to_csv(
        csv, index=False
    )
    uploader = page.get_by_test_id("stTabs").locator('[data-testid="stFileUploader"]')
    uploader.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_role("button", name="Score file").click()
    page.get_by_text("450 candidates (449 scored, 1 with errors)").wait_for(timeout=180_000)
    ranked = _download_csv(page)
    assert sorted(ranked["name"]) == sorted(names)
    assert ranked.set_index("name").loc["junk", "error"] != ""
    page.close()


def test_ten_concurrent_sessions_without_cross_talk(server):
    """Issue #8's load check: 10 sessions at once, 200 different molecules each (the time is
    recorded by benchmarks/app_load.py)."""
    smiles = pd.read_csv(ROOT / "data" / "lipophilicity.csv")["smiles"].tolist()
    batches = [smiles[k * 200 : (k + 1) * 200] for k in range(10)]
    seconds, tables = concurrent_sessions(server, batches)
    check_no_cross_talk(batches, tables)
    assert all((t["error"] == "").sum() >= 190 for t in tables)
    print(f"10 sessions x 200 molecules: {seconds:.1f} s")


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory, esol):
    """README's flow: `make demo` leaves models/esol.pt (bundled ESOL's task name, as a bundled
    model has it too) and `make app` serves it beside every bundled model."""
    yield from _serve_with_model(tmp_path_factory, esol, "esol.pt")


def _rank_by(page, label: str, direction: str) -> None:
    for attempt in range(3):  # a late rerun can redraw the box while its options are open
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=120_000)
        box = page.get_by_role("combobox", name=label)
        box.click()
        box.fill(direction)  # the box filters its options by what it holds
        try:
            page.get_by_role("option", name=direction, exact=True).click(timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    page.wait_for_timeout(1500)
    # until the rerun is over: meanwhile the old table's buttons stand beside the new ones
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=120_000)
    page.wait_for_function(
        "document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=120_000
    )


def test_readme_flow_ranks_with_every_model(readme_server, browser):
    """The user's model and the bundled solubility model share a task name: both keep their
    columns, the ranking is not emptied, and the user's predictions drive the score. The page
    loads without a JavaScript error."""
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1300}, accept_downloads=True)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(readme_server)
    page.get_by_text("molpred · screen candidates").wait_for(timeout=120_000)
    page.get_by_label("SMILES, one per line").fill(
        "CCO ethanol\nc1ccccc1O phenol\nC1CC broken\nCCCCCCCCCCCC dodecane\n"
        "CC(=O)Oc1ccccc1C(=O)O aspirin\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine"
    )
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("6 candidates (5 scored, 1 with errors)").wait_for(timeout=180_000)
    page.get_by_text("Ranking: direction and weight per property").click()
    mine = "measured log solubility in mols per litre"
    scores = {}
    for direction in ("higher", "lower"):
        _rank_by(page, mine, direction)
        scores[direction] = _download_csv(page).set_index("name")
    table = scores["higher"]
    bundled = ["logS (ESOL) (log10(mol/L))", "logD7.4 (log10)", "dG_hyd (kcal/mol)",
               "NR-AR (probability)", "BBB_penetration (probability)",
               "CT_TOX (probability)"]  # fmt: skip
    assert {mine, *bundled} <= set(table.columns)  # every model's predictions, readable names
    scored = table[table["error"] == ""].index
    score = {d: pd.to_numeric(t.loc[scored, "score"]) for d, t in scores.items()}
    assert len(scored) == 5 and score["higher"].notna().all()
    # only the user's direction changed: the score moved with the user's predictions
    shift = score["higher"] - score["lower"]
    order = pd.to_numeric(table.loc[scored, mine]).sort_values().index
    assert shift[order].is_monotonic_increasing and shift.max() > shift.min()
    assert not errors, errors
    page.close()
