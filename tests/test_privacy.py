"""Nothing leaves the machine: training, prediction and the page's scoring run with every
network socket blocked (pytest-socket); only local Unix sockets stay allowed, for worker pools.
"""

import socket
import tomllib

import pytest
from pytest_socket import SocketBlockedError, disable_socket, enable_socket
from streamlit.testing.v1 import AppTest

from molpred.predict import predict, predict_file

from .conftest import ROOT, train_small


@pytest.fixture
def offline():
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()


def test_the_block_is_real(offline):
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9))


def test_train_predict_and_page_scoring_with_network_blocked(offline, esol, tmp_path):
    model = train_small(esol.head(60))
    assert predict(model, ["CCO", "C1CC"])["error"].tolist()[0] == ""
    src = tmp_path / "in.csv"
    src.write_text("smiles\nCCO\nc1ccccc1O\n")
    predict_file(model, src, tmp_path / "out.csv", progress=False, workers=2)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.text_area(key="pasted").input("CCO ethanol\nC1CC broken\nc1ccccc1O phenol")
    at.button(key="score_paste").click()
    at.run()
    assert not at.exception
    results = at.session_state["results"]
    assert len(results) == 3 and results.loc[0, "error"] == ""


def test_streamlit_usage_statistics_are_off():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"
