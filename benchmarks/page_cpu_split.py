"""Who uses the 2 cores while the served page scores 1,000 molecules with the whole panel: the
Streamlit server's process tree (its scoring workers included) or the browser (issue #18's ≤ 5 s).

Serves ``app.py`` with ``streamlit run``, drives it in headless Chromium as ``app_speed.py`` does,
and for each Score reads, from ``/proc``, the CPU seconds of the server's processes and of
Chromium's between the click and the drawn page; also the wall seconds until the caption, until
the run is over, and until no stale element is left (``app_speed.py``'s end point).

Usage::

    python benchmarks/page_cpu_split.py [--n 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from report import save_result  # benchmarks/report.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"
sys.path.insert(0, str(ROOT))

from tests.load import ARGS, CHROMIUM, serve  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
_WHO = {"server": "streamlit run", "chromium": "chromium"}  # in each process's command line


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far (user + system, with reaped children) of every process whose command
    line names the server or Chromium."""
    total = dict.fromkeys(_WHO, 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                command = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        for who, pattern in _WHO.items():
            if pattern in command:
                total[who] += sum(int(f) for f in fields[11:15]) / _TICK
    return total


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    smiles = pd.read_csv(LIBRARY, nrows=args.n).iloc[:, 0].tolist()
    runs = []
    with serve() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(args.repeats + 1):  # the first warms the server up: not counted
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.goto(url)
            page.get_by_text("molpred · screen candidates").wait_for(timeout=300_000)
            page.get_by_label("SMILES, one per line").fill("\n".join(smiles))
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=300_000)
            before, start = cpu_seconds(), time.perf_counter()
            page.get_by_role("button", name="Score", exact=True).click()
            page.get_by_text(f"{len(smiles):,} candidates (").wait_for(timeout=120_000)
            caption = time.perf_counter() - start
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=300_000)
            over = time.perf_counter() - start
            page.wait_for_function(
                "document.querySelectorAll('[data-stale=\"true\"]').length === 0",
                timeout=300_000,
            )
            drawn = time.perf_counter() - start
            after = cpu_seconds()
            runs.append(
                {
                    "seconds_to_caption": round(caption, 2),
                    "seconds_to_run_over": round(over, 2),
                    "seconds_to_drawn": round(drawn, 2),
                    **{f"{who}_cpu_seconds": round(after[who] - before[who], 2) for who in _WHO},
                }
            )
            page.close()
        browser.close()
    runs = runs[1:]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "molecules": len(smiles),
        "runs": runs,
        "medians": {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]},
    }
    save_result(result, ROOT / "benchmarks" / "results" / "page_cpu_split.json")


if __name__ == "__main__":
    main()
