"""What the trees blended into every member (:mod:`molpred.trees`) cost at scoring time and in
the model file.

Trains molpred's default on ESOL (shared scaffold replicate 0), then scores the first ``--n``
MOSES test molecules on one thread, alternating the member with and without its trees
(``--repeats`` times, medians): CPU microseconds per molecule of the featurization, of
:func:`molpred.models.member_outputs` with and without the trees, and the file size with and
without them.

Usage::

    python benchmarks/trees_cost.py [--n 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accuracy import dataset  # benchmarks/accuracy.py, beside this script
from report import save_result  # benchmarks/report.py, beside this script

from molpred import train
from molpred.features import featurize_smiles
from molpred.models import member_outputs

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"


def cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def file_size(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return model.save(Path(tmp) / "model.pt").stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    df, targets, task, splits = dataset("esol")
    split_file = ROOT / "benchmarks" / "runs" / "trees_cost_split.json"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps(splits[:1]))
    model, _ = train(df, "smiles", targets, task_types=task, splits_file=split_file, progress=False)
    member = model.members[0]
    trees = member.trees
    network_only = copy.deepcopy(model)
    network_only.members[0].trees = None

    smiles = pd.read_csv(LIBRARY, nrows=args.n).iloc[:, 0].tolist()
    featurize = cpu(lambda: featurize_smiles(smiles, workers=1))
    feats = featurize_smiles(smiles, workers=1)
    with_trees, without = [], []
    for _ in range(args.repeats):
        member.trees = None
        without.append(cpu(lambda: member_outputs([member], feats)))
        member.trees = trees
        with_trees.append(cpu(lambda: member_outputs([member], feats)))
    per = 1e6 / len(smiles)
    network_us = float(np.median(without)) * per
    blended_us = float(np.median(with_trees)) * per
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "molecules": len(smiles),
        "threads": 1,
        "repeats": args.repeats,
        "trees": [b.num_trees() if b is not None else 0 for b in trees.boosters],
        "blend_weight": trees.weight,
        "cpu_us_per_molecule": {
            "featurize": round(featurize * per, 1),
            "model_network_alone": round(network_us, 1),
            "model_with_trees": round(blended_us, 1),
            "trees": round(blended_us - network_us, 1),
        },
        "trees_share_of_featurize_and_model": round(
            (blended_us - network_us) / (featurize * per + blended_us), 3
        ),
        "model_file_bytes": {"with_trees": file_size(model), "without": file_size(network_only)},
    }
    save_result(result, ROOT / "benchmarks" / "results" / "trees_cost.json")


if __name__ == "__main__":
    main()
