"""How long suggesting a batch takes: 48 from 20,000 scored candidates (issue #20: <= 10 s).

The first 20,000 molecules of MOSES test are scored once with two bundled models (logD and
solubility, as on the page; not timed), then each strategy picks 48 for "logD in 1-3 and
highest solubility" with the default diversity limit (2 per scaffold), once more with a
similarity limit of 0.6 and once with half the batch covering chemical space (``cover``);
median of ``--repeats`` runs. The page's chemical-space map
(fingerprints of every candidate, then PCA) is timed too, as the page draws it with a batch,
and leaving out the training molecules of the whole bundled panel (the page's default): the
first batch computes their parent keys, later ones reuse them.

Usage::

    python benchmarks/suggest_speed.py [--n-candidates 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

import molpred
from molpred.chem import is_own_parent
from molpred.featurize import fingerprint
from molpred.measured import measured_molecules, parent_keys
from molpred.predictor import Predictor
from molpred.pretrained import available, model_path
from molpred.ranking import Objective
from molpred.space import chemical_space
from molpred.suggest import STRATEGIES, BatchOptions, suggest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-candidates", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "suggest_speed.json"))
    args = ap.parse_args()
    smiles = pd.read_csv(LIBRARY, nrows=args.n_candidates)["SMILES"].tolist()
    models = {n: molpred.load_model(model_path(n)) for n in ("lipophilicity", "solubility")}
    table = molpred.predict(Predictor(models), smiles)
    logd, logs = (m.task_names[0] for m in models.values())
    objectives = [Objective(logd, "range", 1.0, 1.0, 3.0), Objective(logs, "higher")]
    timings = {}
    for strategy in STRATEGIES:
        options = BatchOptions(n=48, strategy=strategy)
        timings[strategy] = median_seconds(
            lambda options=options: suggest(table, objectives, options), args.repeats
        )
    cover = BatchOptions(n=48, cover=0.5)  # every candidate's fingerprint, then k-means
    timings["ucb, cover 0.5"] = median_seconds(
        lambda: suggest(table, objectives, cover), args.repeats
    )
    tight = BatchOptions(n=48, max_similarity=0.6)
    timings["ucb, max similarity 0.6"] = median_seconds(
        lambda: suggest(table, objectives, tight), args.repeats
    )

    blobs = [Chem.MolFromSmiles(s).ToBinary() for s in smiles]  # the page's molecule column

    def chemical_map() -> np.ndarray:  # as the page draws it: fingerprints, then the map
        return chemical_space(np.vstack([fingerprint(Chem.Mol(b)) for b in blobs]))

    timings["page map (fingerprints + PCA)"] = median_seconds(
        chemical_map, max(args.repeats // 2, 1)
    )
    # the page's default leaves out every chosen model's training molecules: their parent keys
    # are computed on the first batch of a loaded panel (then kept)
    panel = Predictor({n: molpred.load_model(model_path(n)) for n in available()})
    start = time.perf_counter()
    measured_molecules(panel, training=True, fill=False)
    timings["leave out the panel's training molecules, first batch"] = time.perf_counter() - start
    timings["ucb, leaving out the panel's training molecules, later batches"] = median_seconds(
        lambda: suggest(
            table,
            objectives,
            BatchOptions(n=48),
            measured=measured_molecules(panel, training=True, fill=False),
        ),
        args.repeats,
    )
    # the shortcut that makes the first batch cheap, checked on every training molecule
    trained = [s for model in panel.models if model.domain for s in model.domain.smiles or []]
    own = [s for s in trained if is_own_parent(s)]
    differ = sum(k != s for s, k in zip(own, parent_keys(own), strict=True))
    result = {
        "training_molecules": len(trained),
        "own_parents": len(own),
        "own_parents_not_their_parent_key": differ,
        "candidates": len(table),
        "batch": 48,
        "median_seconds": {k: round(v, 3) for k, v in timings.items()},
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    Path(args.output).write_text(json.dumps(result, indent=1))
    for name, seconds in timings.items():
        print(f"{name:32s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
