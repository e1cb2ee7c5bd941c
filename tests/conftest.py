from pathlib import Path

import pandas as pd
import pytest

from molpred.fitting import TrainConfig
from molpred.models import ModelConfig

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLPRED_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_csv() -> Path:
    return DATA / "tiny.csv"


@pytest.fixture(scope="session")
def esol() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "esol.csv")


ESOL_TARGET = "measured log solubility in mols per litre"
SMALL = ModelConfig(hidden_size=48, head_hidden_size=48, depth=2)
FAST = TrainConfig(epochs=3, batch_size=32, patience=10)


def train_small(df: pd.DataFrame, targets=(ESOL_TARGET,), cv_members: int = 1):
    """A tiny, fast model on ``df`` (3 epochs, hidden size 48, one member unless
    ``cv_members``): for tests that need any model. (Small data trains a cross-validation
    ensemble by default; test_train, test_transfer and the page's training test that.)"""
    from molpred.train import train

    model, _ = train(
        df,
        "smiles",
        list(targets),
        model_config=SMALL,
        train_config=FAST,
        progress=False,
        cache_dir=None,
        cv_members=cv_members,
    )
    return model


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per browser-test module."""
    from playwright.sync_api import sync_playwright

    from tests.load import CHROMIUM

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()
