"""Featurization and training speed, as ratios against references measured in the same run.

- Featurization (one core): molpred's standardize + graph + descriptors rate, next to RDKit's
  parse-only rate (``Chem.MolFromSmiles``) on the same molecules: the ratio is the number to
  compare across machines. chemprop's own SMILES -> graph rate (``make_mol`` + its default
  featurizer) is timed on the same molecules in its environment when ``accuracy.py`` has
  built it.
- Training: the default model (``molpred train`` with no tuning flags) on bundled ESOL with a
  random 80/10/10 split: seconds per epoch, epochs run, and the test RMSE (chemprop's published
  range for this setting is 0.55-0.6).

Usage::

    python benchmarks/featurize_speed.py [--n 20000] [--out benchmarks/results/speed.json]

Reads ``../shared/data/moses_test.csv.gz`` when present (drug-like library), else bundled data.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
import torch
from rdkit import Chem
from report import save_result  # benchmarks/report.py, beside this script

from molpred.chem import rdkit_log_silenced
from molpred.features import featurize_smiles
from molpred.fitting import TrainConfig
from molpred.train import train

ROOT = Path(__file__).resolve().parent.parent
MOSES = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"


def library(n: int) -> tuple[list[str], str]:
    if MOSES.exists():
        return pd.read_csv(MOSES, nrows=n)["SMILES"].tolist(), MOSES.name
    smiles = pd.read_csv(ROOT / "data" / "lipophilicity.csv")["smiles"].tolist()
    return (smiles * (n // len(smiles) + 1))[:n], "data/lipophilicity.csv (repeated)"


def rate(fn, items) -> float:
    start = time.perf_counter()
    fn(items)
    return len(items) / (time.perf_counter() - start)


# chemprop's own path from SMILES to graph (make_mol + its default featurizer), timed inside
# its virtual environment (see accuracy.py) on the same molecules.
_CHEMPROP_RATE = """
import sys, time
from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
from chemprop.utils import make_mol
from rdkit import RDLogger

RDLogger.DisableLog("rdApp.*")
smiles = open(sys.argv[1]).read().split()
featurize = SimpleMoleculeMolGraphFeaturizer()
best = 0.0
for _ in range(2):
    start = time.perf_counter()
    for s in smiles:
        featurize(make_mol(s))
    best = max(best, len(smiles) / (time.perf_counter() - start))
print(round(best))
"""


def chemprop_featurize_rate(smiles: list[str]) -> int | None:
    """chemprop's SMILES -> graph rate on one core, or None without its environment."""
    python = ROOT / "benchmarks" / "runs" / "chemprop-venv" / "bin" / "python"
    if not python.exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".smi", delete=False) as fh:
        fh.write("\n".join(smiles))
    try:
        out = subprocess.run(
            [str(python), "-c", _CHEMPROP_RATE, fh.name],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    finally:
        os.unlink(fh.name)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="molecules to featurize")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))

    smiles, source = library(args.n)

    def parse(items):
        with rdkit_log_silenced():
            return [Chem.MolFromSmiles(s) for s in items]

    # interleave the two measurements twice so a noisy neighbour hurts both alike
    parse_rates, feat_rates = [], []
    for _ in range(2):
        parse_rates.append(rate(parse, smiles))
        feat_rates.append(rate(lambda s: featurize_smiles(s, workers=1), smiles))
    parse_rate, feat_rate = max(parse_rates), max(feat_rates)
    multi = rate(lambda s: featurize_smiles(s, workers=None), smiles * 2)
    chemprop = chemprop_featurize_rate(smiles)

    esol = pd.read_csv(ROOT / "data" / "esol.csv")
    _, metrics = train(
        esol,
        "smiles",
        ["measured log solubility in mols per litre"],
        train_config=TrainConfig(),
        progress=False,
        cache_dir=None,
    )
    member = metrics["members"][0]
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores",
        "library": source,
        "n_molecules": len(smiles),
        "rdkit_parse_per_s_1core": round(parse_rate),
        "molpred_featurize_per_s_1core": round(feat_rate),
        "featurize_vs_parse_ratio": round(feat_rate / parse_rate, 3),
        "molpred_featurize_per_s_all_cores": round(multi),
        "chemprop_featurize_per_s_1core": chemprop,
        "molpred_vs_chemprop_featurize": round(feat_rate / chemprop, 2) if chemprop else None,
        "esol_train_seconds_per_epoch": round(member["seconds"] / member["epochs_run"], 3),
        "esol_train_molecules": member["n_train"],
        "esol_epochs_run": member["epochs_run"],
        "esol_random_split_test_rmse": round(metrics["test"]["rmse"], 3),
    }
    save_result(result, Path(args.out))


if __name__ == "__main__":
    main()
