"""Training in the page, in a real browser: upload measured data, train, score other molecules
while it trains, then score with the new model. A module of its own, so its server (and the
CPU its training takes) is gone before or after the other browser tests, never beside them.

Needs ``/usr/bin/chromium`` as ``test_browser.py`` does.
"""

import pandas as pd
import pytest

from .conftest import ROOT
from .test_browser import _download_csv, _open, _serve_with_model

pytestmark = pytest.mark.slow  # a real browser


@pytest.fixture(scope="module")
def training_server(tmp_path_factory, esol):
    """A server of its own: the model trained in the page lands in its models directory."""
    yield from _serve_with_model(tmp_path_factory, esol, "tiny.pt")


def test_train_in_chromium_while_the_page_stays_usable(training_server, browser, tmp_path):
    """Upload measured data, train, score other molecules while it trains, then find the new
    model among "Your models" and score with it."""
    page = _open(browser, training_server)
    page.get_by_text("Train a model on your own data").click()
    csv = tmp_path / "assay.csv"
    esol = pd.read_csv(ROOT / "data" / "esol.csv").head(600)  # a minute or two of training
    esol[["smiles", "measured log solubility in mols per litre"]].rename(
        columns={"measured log solubility in mols per litre": "logS"}
    ).to_csv(csv, index=False)
    uploader = page.locator('[data-testid="stFileUploader"]', has_text="Measured data")
    uploader.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("validation rmse").wait_for(timeout=120_000)  # live progress
    page.get_by_label("SMILES, one per line").fill("CCO\nc1ccccc1O")
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("2 candidates (2 scored, 0 with errors)").wait_for(timeout=120_000)
    page.get_by_text("Saved").wait_for(timeout=600_000)
    page.get_by_role("button", name="Score", exact=True).click()  # now with the new model too
    page.get_by_text("2 candidates (2 scored, 0 with errors)").wait_for(timeout=120_000)
    ranked = _download_csv(page)
    assert "logS" in " ".join(ranked.columns)
    page.close()
