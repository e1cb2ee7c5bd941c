"""Choosing training defaults on validation data only.

Every candidate configuration trains on the train rows of each of the 3 scaffold replicates of
all 8 benchmark data sets and is scored on the validation rows. The test rows are removed from
the split before molpred sees the data, so the choice cannot leak the test set that
``accuracy.py`` reports on.

A candidate's score on a data set is its mean validation metric over the replicates; across
data sets, candidates are compared by their mean relative improvement over ``BASELINE`` (the
default the study questioned: sum pooling, weight decay 1e-2)
(RMSE: lower is better, ROC-AUC: higher is better).

Usage::

    python benchmarks/defaults_study.py                       # all candidates, 2 processes
    python benchmarks/defaults_study.py --summarize           # table from the saved JSON
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
from pathlib import Path

import pandas as pd
import torch
from accuracy import dataset  # this folder: benchmarks run as scripts

from molpred.data import prepare_dataset
from molpred.fitting import TrainConfig, fit
from molpred.metrics import HIGHER_IS_BETTER
from molpred.models import ModelConfig, build_model
from molpred.splits import make_splits

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "defaults_study.json"
DATASETS = ["lipo", "tox21", "bace", "bbbp", "sider", "clintox", "esol", "freesolv"]

# name -> (ModelConfig changes, TrainConfig changes); pooling is spelled out in each, so that
# changing the library default does not change what a candidate means
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "sum": ({"pooling": "sum"}, {}),
    "mean": ({"pooling": "mean"}, {}),
    "mean_wd4e-4": ({"pooling": "mean"}, {"weight_decay": 4e-4}),
}

BASELINE = "sum"

_datasets: dict[str, object] = {}


def _prepared(name: str):
    """The featurized data set and its 3 train/val splits (test rows dropped), once per process."""
    if name not in _datasets:
        df, targets, task, splits = dataset(name)
        ds = prepare_dataset(df, "smiles", targets, task, workers=1, cache_dir=None)
        reps = [{"train": s["train"], "val": s["val"], "test": []} for s in splits]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(reps, f)
        _datasets[name] = (ds, make_splits(ds, splits_file=f.name))
        Path(f.name).unlink()
    return _datasets[name]


def run_job(job: tuple[str, str, int]) -> dict:
    name, candidate, rep = job
    torch.set_num_threads(1)
    ds, splits = _prepared(name)
    model_changes, train_changes = CANDIDATES[candidate]
    sp = splits[rep]
    config = TrainConfig(**train_changes)
    torch.manual_seed(config.seed)  # the initial weights too, as train() does
    model = build_model(ModelConfig(**model_changes, task_types=tuple(ds.task_types)))
    result = fit(model, ds.subset(sp.train), ds.subset(sp.val), config, progress=False)
    return {
        "dataset": name,
        "candidate": candidate,
        "replicate": rep,
        "metric": result.metric,
        "val": result.best_score,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds": result.seconds,
    }


def summarize(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    table = df.groupby(["dataset", "candidate"])["val"].mean().unstack("candidate")
    metric = df.groupby("dataset")["metric"].first()
    sign = metric.map(lambda m: 1.0 if HIGHER_IS_BETTER[m] else -1.0)
    gain = table.sub(table[BASELINE], axis=0).mul(sign, axis=0).div(table[BASELINE], axis=0)
    seconds = df.groupby("candidate")["seconds"].sum()
    lines = [
        "| data set | metric | " + " | ".join(table.columns) + " |",
        "|---|---|" + "---|" * len(table.columns),
    ]
    for name, row in table.iterrows():
        lines.append(f"| {name} | {metric[name]} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    lines.append(
        f"| **mean relative gain vs {BASELINE}** | | "
        + " | ".join(f"{100 * v:+.2f}%" for v in gain.mean())
        + " |"
    )
    lines.append(
        "| train seconds (all jobs, 1 thread each) | | "
        + " | ".join(f"{seconds[c]:.0f}" for c in table.columns)
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--summarize", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    if not args.summarize:
        done = {(r["dataset"], r["candidate"], r["replicate"]) for r in rows}
        jobs = [
            (d, c, r)
            for d in args.datasets
            for c in args.candidates
            for r in range(3)
            if (d, c, r) not in done
        ]
        # data sets come largest first, so the two processes finish together
        with mp.get_context("fork").Pool(args.processes) as pool:
            for row in pool.imap_unordered(run_job, jobs):
                rows.append(row)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(
                    json.dumps(
                        {
                            "candidates": {
                                k: {"model": m, "train": t} for k, (m, t) in CANDIDATES.items()
                            },
                            "rows": rows,
                        },
                        indent=2,
                    )
                    + "\n"
                )
                print(row, flush=True)
    table = summarize(rows)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
