"""The page's speed before and after a change, in one run: ``app_speed.py`` from another
checkout (``--baseline-tree``, e.g. a ``git worktree`` of the commit before) and from this one,
alternately, so that both see the same machine.

Usage::

    git worktree add ../before <commit>
    python benchmarks/app_speed_before_after.py --baseline-tree ../before --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import save_result  # benchmarks/report.py, beside this script

ROOT = Path(__file__).resolve().parent.parent


def measure(tree: Path) -> dict:
    """One run of ``tree``'s own app_speed.py with ``tree``'s molpred (its page, its models)."""
    subprocess.run(
        [sys.executable, "benchmarks/app_speed.py"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        check=True,
        capture_output=True,
    )
    result = json.loads((tree / "benchmarks" / "results" / "app_speed.json").read_text())
    return {k: v for k, v in result.items() if k.endswith("_seconds")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-tree", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    trees = {"before": args.baseline_tree.resolve(), "after": ROOT}
    runs: dict[str, list[dict]] = {label: [] for label in trees}
    for _ in range(args.repeats):
        for label, tree in trees.items():
            runs[label].append(measure(tree))
    medians = {
        label: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]}
        for label, rs in runs.items()
    }
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": 2,
        "molecules": 1000,
        "baseline_tree": str(args.baseline_tree),
        "runs": runs,
        "medians": medians,
    }
    save_result(result, ROOT / "benchmarks" / "results" / "app_speed_before_after.json")


if __name__ == "__main__":
    main()
