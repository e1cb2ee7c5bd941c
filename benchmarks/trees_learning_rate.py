"""Fewer, larger trees: the trees' learning rate against their number and the blend's accuracy.

The trees blended into every member cost scoring time in proportion to their number
(``trees_cost.py``; ~500 per task at the default learning rate 0.03). This pilot trains
molpred's default through ``blend_study.run`` (one shared scaffold replicate per set) with the
trees' learning rate set to each value given, and records the trees per task, the chosen
weight and the test metric of the network, the trees and the blend. It only informs a future
choice of the default, which must be made on validation rows over all sets and replicates.

Usage::

    python benchmarks/trees_learning_rate.py [--sets esol lipo] [--rates 0.03 0.1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from blend_study import run  # benchmarks/blend_study.py, beside this script

import molpred.trees as trees_module

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["esol", "lipo"])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.03, 0.1])
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/trees_learning_rate.json"
    )
    args = ap.parse_args()
    default = trees_module._PARAMS["learning_rate"]
    records = []
    for name in args.sets:
        for rate in args.rates:
            trees_module._PARAMS["learning_rate"] = rate
            try:
                record = run(name, args.replicate)
            finally:
                trees_module._PARAMS["learning_rate"] = default
            records.append({**record, "learning_rate": rate})
            print(json.dumps(record), flush=True)
            args.out.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
