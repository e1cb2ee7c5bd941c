"""Load on the screening page (issue #8): N concurrent Chromium sessions, each pasting its own
200 molecules, scoring them with the bundled models and downloading the ranked CSV; checks that
no session sees another's rows and records the wall time.

Usage::

    python benchmarks/app_load.py [--sessions 10] [--molecules 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from report import save_result  # benchmarks/report.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load import check_no_cross_talk, concurrent_sessions, serve  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--molecules", type=int, default=200)
    args = ap.parse_args()
    smiles = pd.read_csv(ROOT / "data" / "lipophilicity.csv")["smiles"].tolist()
    n = args.molecules
    batches = [smiles[k * n : (k + 1) * n] for k in range(args.sessions)]
    with serve() as url:
        seconds, tables = concurrent_sessions(url, batches)
    check_no_cross_talk(batches, tables)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": 2,
        "sessions": args.sessions,
        "molecules_per_session": n,
        "models": "all bundled (6, 18 tasks)",
        "seconds_all_sessions_done": round(seconds, 1),
        "scored_rows": int(sum((t["error"] == "").sum() for t in tables)),
        "cross_talk": False,
    }
    save_result(result, ROOT / "benchmarks" / "results" / "app_load.json")


if __name__ == "__main__":
    main()
