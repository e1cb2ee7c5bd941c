"""Many chemists on one page at once: ``sessions`` real Chromium sessions (Playwright, on
loopback), each pasting its own ``per_session`` molecules, pressing Score and downloading the
ranked CSV. Used by ``tests/test_browser.py`` and ``benchmarks/app_load.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(env: dict[str, str] | None = None) -> Iterator[str]:
    """The app under ``streamlit run``, headless on a free loopback port; yields its URL."""
    port = _free_port()
    # stderr to a file, never a pipe nobody reads: a server that fills a pipe (64 KB) blocks
    # on its next log line and never stops. PYTHONFAULTHANDLER: a hung server's SIGABRT
    # writes every thread's stack there.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            proc.kill()
            raise RuntimeError(f"streamlit did not start: {_tail(log)}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired as exc:
            proc.send_signal(signal.SIGABRT)  # the stacks, then gone
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise RuntimeError(
                f"streamlit did not stop within 30 s of SIGTERM: {_tail(log)}"
            ) from exc
        finally:
            log.close()


def _tail(log, size: int = 6000) -> str:
    """The end of the server's stderr; after a SIGABRT, the thread stacks faulthandler wrote
    (without its list of extension modules)."""
    log.seek(0)
    text = log.read().decode(errors="replace")
    start = text.rfind("Fatal Python error")
    if start >= 0:
        return text[start:].split("\nExtension modules:")[0][-20_000:]
    return text[-size:]


async def _session(browser, url: str, k: int, smiles: list[str]) -> pd.DataFrame:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 1000}, accept_downloads=True
    )
    context.set_default_timeout(300_000)  # ten sessions share two cores
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_text("molpred · screen candidates").wait_for(timeout=300_000)
    lines = "\n".join(f"{s} s{k}_{i}" for i, s in enumerate(smiles))
    await page.get_by_label("SMILES, one per line").fill(lines)
    await page.get_by_role("button", name="Score", exact=True).click()
    await page.get_by_text(f"{len(smiles)} candidates (").wait_for(timeout=600_000)
    # the run over before the click, as a person would wait: a download asked for mid-run is
    # made by a button the run's end replaces, and Chromium reported it "canceled" (CI, twice)
    await page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=600_000)
    for attempt in range(2):  # headless Chromium cancelled one of ten concurrent downloads on
        # 2026-12-02, at the last green commit too (session 14 note): one more click, then fail
        async with page.expect_download(timeout=300_000) as info:
            await page.get_by_role("button", name="Download CSV").click()
        download = await info.value
        try:
            path = await download.path()
            break
        except Exception:
            if attempt:
                raise
    table = pd.read_csv(path, keep_default_na=False)
    await context.close()
    return table


async def _all(url: str, batches: list[list[str]]) -> list[pd.DataFrame]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            return await asyncio.gather(
                *(_session(browser, url, k, b) for k, b in enumerate(batches))
            )
        finally:
            await browser.close()


def concurrent_sessions(url: str, batches: list[list[str]]) -> tuple[float, list[pd.DataFrame]]:
    """Run one browser session per batch, all at once; returns (seconds, ranked tables).

    Runs in its own thread, so it works beside Playwright's sync API in the caller's thread.
    """
    result: dict = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            result["tables"] = asyncio.run(_all(url, batches))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc
        result["seconds"] = time.perf_counter() - start

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["seconds"], result["tables"]


def check_no_cross_talk(batches: list[list[str]], tables: list[pd.DataFrame]) -> None:
    """Every session got back exactly its own molecules, each scored or with a reason."""
    for k, (batch, table) in enumerate(zip(batches, tables, strict=True)):
        expected = {f"s{k}_{i}" for i in range(len(batch))}
        assert set(table["name"]) == expected, f"session {k} got someone else's rows"
        assert len(table) == len(batch)
        by_name = table.set_index("name")
        for i, s in enumerate(batch):
            assert by_name.loc[f"s{k}_{i}", "smiles"] == s
