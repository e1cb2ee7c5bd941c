"""Featurization and training speed, as ratios against references measured in the same run.

- Featurization (one core): molpred's standardize + graph + descriptors rate, next to RDKit's
  parse-only rate (``Chem.MolFromSmiles``) on the same molecules: the ratio is the number to
  compare across machines.
- Training: the default model (``molpred train`` with no tuning flags) on bundled ESOL with a
  random 80/10/10 split: seconds per epoch, epochs run, and the test RMSE (chemprop's published
  range for this setting is 0.55-0.6).

Usage::

    python benchmarks/featurize_speed.py [--n 20000] [--out benchmarks/results/speed.json]

Reads ``../shared/data/moses_test.csv.gz`` when present (drug-like library), else bundled data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import pandas as pd
import torch
from rdkit import Chem

from molpred.chem import rdkit_log_silenced
from molpred.data import featurize_smiles
from molpred.train import TrainConfig, train

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

    esol = pd.read_csv(ROOT / "data" / "esol.csv")
    _, metrics = train(esol, "smiles", ["measured log solubility in mols per litre"],
                       train_config=TrainConfig(), progress=False, cache_dir=None)  # fmt: skip
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
        "esol_train_seconds_per_epoch": round(member["seconds"] / member["epochs_run"], 3),
        "esol_train_molecules": member["n_train"],
        "esol_epochs_run": member["epochs_run"],
        "esol_random_split_test_rmse": round(metrics["test"]["rmse"], 3),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
