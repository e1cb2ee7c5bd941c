"""How large is the expected calibration error of a *perfectly* calibrated classifier on a
test set of a given size?

Binned ECE (10 bins, :func:`molpred.trust.uncertainty.calibration_error`) is biased upwards on
small samples: labels drawn from the predicted probabilities themselves still leave each bin's
observed frequency off its mean probability by sampling noise. This simulates that floor for
the test-set sizes of the shared scaffold splits, so that a measured ECE can be read against it.

Usage::

    python benchmarks/ece_floor.py --sizes 147 152 204 --out benchmarks/results/ece_floor.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from molpred.trust.uncertainty import calibration_error

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[147, 152, 204])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ece_floor.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    shapes = {
        "uniform probabilities": lambda n: rng.uniform(size=n),
        "confident, beta(0.3, 0.3)": lambda n: rng.beta(0.3, 0.3, size=n),
    }
    rows = []
    for n in args.sizes:
        for name, draw in shapes.items():
            ece = []
            for _ in range(args.draws):
                p = draw(n)
                y = (rng.uniform(size=n) < p).astype(float)  # labels from p itself: calibrated
                ece.append(calibration_error(y, p))
            row = {
                "n": n,
                "probabilities": name,
                "median_ece": float(np.median(ece)),
                "p90_ece": float(np.percentile(ece, 90)),
            }
            rows.append(row)
            print(json.dumps(row))
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
