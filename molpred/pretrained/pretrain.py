"""Pretrain the encoder small-data models start from (``python -m molpred.pretrained.pretrain``).

The task, as CheMeleon does at larger scale: predict every RDKit 2D descriptor
(``Descriptors.descList``) of a molecule from its graph alone (the model gets no descriptor
inputs), so the encoder learns what medicinal chemistry descriptors see. Molecules: a seeded
sample of MOSES train (``../shared/data``) plus the bundled data sets (``data/``), without any
molecule, matched on its neutral parent structure, that lies in a test split of the shared
scaffold splits of ESOL, FreeSolv, Lipophilicity or BACE (the learning curves'
``benchmarks/learning_curves.py`` test rows are never seen). Each descriptor is mapped to a
normal distribution by its quantiles (scikit-learn's ``QuantileTransformer``), so heavy tails
(``Ipc``) weigh no more than the rest.

The result, ``molpred/pretrained/encoder.pt``, is an ordinary model file without a domain or
calibration (:func:`strip`); ``molpred train
--init encoder`` starts from it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rdkit.Chem import Descriptors
from sklearn.preprocessing import QuantileTransformer

from molpred.artifact import MolpredModel
from molpred.chem import InvalidMoleculeError, parent_key, rdkit_log_silenced, standardize
from molpred.fitting import TrainConfig
from molpred.models import ModelConfig, resolve_device
from molpred.parallel import map_ordered
from molpred.pretrained import HERE
from molpred.train import train

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
# the MoleculeNet sets bundled in data/, in the order the shipped encoder saw them
MOLECULENET_FILES = (
    "esol.csv",
    "lipophilicity.csv",
    "freesolv.csv",
    "bbbp.csv",
    "tox21.csv",
    "clintox.csv",
)
ENCODER = HERE / "encoder.pt"
HELD_OUT = ("esol", "freesolv", "lipo", "bace")  # the learning curves' sets
_CHUNK = 500


def held_out_keys(splits: Path = SHARED / "splits") -> set[str]:
    """Parent keys of every molecule in a test split (any replicate) of the held-out sets."""
    keys: set[str] = set()
    for name in HELD_OUT:
        df = pd.read_csv(splits / "clean" / f"{name}.csv")
        for split in json.loads((splits / f"{name}.json").read_text()):
            keys.update(k for k in map(parent_key, df["smiles"].iloc[split["test"]]) if k)
    return keys


def pretraining_smiles(
    n_moses: int, seed: int, exclude: set[str], bundled: bool = True, shared: Path = SHARED
) -> tuple[list[str], dict]:
    """A seeded MOSES sample plus (``bundled``) the bundled sets' molecules, one per parent
    structure, none of them in ``exclude``; and counts of what was left out."""
    moses = pd.read_csv(shared / "data" / "moses_train.csv.gz")["SMILES"]
    sample = moses.sample(n=min(n_moses, len(moses)), random_state=seed).tolist()
    extra = [
        s
        for source in (MOLECULENET_FILES if bundled else ())
        for s in pd.read_csv(ROOT / "data" / source)["smiles"]
    ]
    kept, seen, dropped = [], set(), {"held_out": 0, "duplicate": 0, "unreadable": 0}
    for smiles in [*sample, *extra]:
        key = parent_key(smiles)
        if key is None:
            dropped["unreadable"] += 1
        elif key in exclude:
            dropped["held_out"] += 1
        elif key in seen:
            dropped["duplicate"] += 1
        else:
            seen.add(key)
            kept.append(smiles)
    return kept, dropped


def _descriptor_chunk(smiles: list[str]) -> np.ndarray:
    out = np.full((len(smiles), len(Descriptors.descList)), np.nan)
    with rdkit_log_silenced():
        for i, s in enumerate(smiles):
            try:
                mol = standardize(s)
            except InvalidMoleculeError:
                continue
            for j, (_, fn) in enumerate(Descriptors.descList):
                try:
                    out[i, j] = fn(mol)
                except Exception:  # noqa: BLE001 - an RDKit descriptor that fails is missing
                    pass
    return out


def descriptor_targets(smiles: list[str], workers: int, seed: int = 0) -> pd.DataFrame:
    """Every usable RDKit descriptor, quantile-normalized; NaN where it could not be
    computed (a missing label, masked in training). Near-constant descriptors are dropped."""
    chunks = [smiles[i : i + _CHUNK] for i in range(0, len(smiles), _CHUNK)]
    values = np.vstack([out for _, _, out in map_ordered(_descriptor_chunk, chunks, workers)])
    values[~np.isfinite(values)] = np.nan
    names = [name for name, _ in Descriptors.descList]
    low, high = np.nanpercentile(values, [1, 99], axis=0)
    usable = (high > low) & (np.isnan(values).mean(axis=0) < 0.01)
    transform = QuantileTransformer(
        n_quantiles=1000, output_distribution="normal", subsample=100_000, random_state=seed
    )
    normal = transform.fit_transform(values[:, usable])  # NaN stays NaN
    columns = [f"desc_{n}" for n, u in zip(names, usable, strict=True) if u]
    return pd.DataFrame(normal, columns=columns)


def strip(model: MolpredModel) -> MolpredModel:
    """The encoder file as shipped: no domain and no calibration (the pretraining molecules are
    not a training set anyone predicts near, and nobody scores descriptors with intervals; the
    conformal scores of 178 tasks would be 80% of the file)."""
    info = replace(model.info, conformal_scores=(), n_calibration=(), error_model=None)
    return replace(model, info=info, domain=None, problems=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moses", type=int, default=40_000, help="MOSES train molecules sampled")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--device", default=TrainConfig.device, help="auto, cpu or cuda")
    ap.add_argument("--shared", type=Path, default=SHARED, help="holds data/ and splits/")
    ap.add_argument("--output", type=Path, default=ENCODER)
    ap.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="where the run's summary goes (default: results/encoder_pretraining.json when "
        "--output is the shipped encoder)",
    )
    ap.add_argument("--no-bundled", action="store_true", help="MOSES molecules only (a smoke run)")
    args = ap.parse_args()
    start = time.perf_counter()
    smiles, dropped = pretraining_smiles(
        args.moses,
        args.seed,
        held_out_keys(args.shared / "splits"),
        bundled=not args.no_bundled,
        shared=args.shared,
    )
    targets = descriptor_targets(smiles, args.workers, args.seed)
    table = pd.concat([pd.DataFrame({"smiles": smiles}), targets], axis=1)
    print(f"{len(smiles)} molecules ({dropped}), {targets.shape[1]} descriptors", flush=True)
    model, metrics = train(
        table,
        "smiles",
        list(targets.columns),
        task_types="regression",
        model_config=ModelConfig(descriptors=False, variance_head=False),
        # the encoder is what is shipped: no trees (they would learn descriptors from descriptors)
        train_config=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            patience=5,
            seed=args.seed,
            device=args.device,
            trees=False,
        ),
        split="random",
        split_sizes=(0.95, 0.05, 0.0),
        cv_members=1,  # one network, at any size (a smoke run is small data too)
        workers=args.workers,
        cache_dir=None,
        init=None,  # random weights: this is what makes the encoder
        calibration=False,  # strip() would drop it: no error models of every descriptor
        provenance={
            "card": "encoder",
            "pretraining": {
                "task": "RDKit 2D descriptors (quantile-normalized), from the graph alone",
                "moses_train_sample": args.moses,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "bundled_sets": not args.no_bundled,
                "seed": args.seed,
                "molecules": len(smiles),
                "left_out": dropped,
                "held_out_sets": list(HELD_OUT),
            },
        },
    )
    strip(model).save(args.output)
    val = metrics["members"][0]["val"]
    summary = {
        "molecules": len(smiles),
        "left_out": dropped,
        "descriptors": targets.shape[1],
        "val_rmse_normalized": round(val.get("rmse", float("nan")), 4),
        "val_r2": round(val.get("r2", float("nan")), 4),
        "best_epoch": metrics["members"][0]["best_epoch"],
        "seconds": round(time.perf_counter() - start, 1),
        "moses_train_sample": args.moses,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "device": str(resolve_device(args.device)),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_cores": os.cpu_count(),
    }
    print(json.dumps(summary))
    if args.summary is None and args.output == ENCODER:
        args.summary = ROOT / "benchmarks" / "results" / "encoder_pretraining.json"
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
