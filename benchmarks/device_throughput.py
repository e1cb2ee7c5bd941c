"""Training and scoring throughput on a CUDA device, beside the same machine's CPU.

Trains the default model on Lipophilicity (shared scaffold split, replicate 0) and scores the
MOSES test set with it, on ``cuda`` and on ``cpu``; writes one JSON record with the device named.
Run where a GPU is present (the project's CI has none)::

    python benchmarks/device_throughput.py --splits ../shared/splits \\
        --library ../shared/data/moses_test.csv.gz --out benchmarks/results/device_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from molpred.fitting import TrainConfig
from molpred.predict import predict_file
from molpred.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--rows", type=int, default=None, help="score only the first N rows")
    ap.add_argument("--devices", nargs="+", default=["cuda", "cpu"])
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    splits = Path(args.splits)
    manifest = json.loads((splits / "manifest.json").read_text())["lipo"]
    df = pd.read_csv(splits / "clean" / "lipo.csv")
    split_file = Path("/tmp/device_split.json")
    split_file.write_text(json.dumps([json.loads((splits / "lipo.json").read_text())[0]]))
    library = Path(args.library)
    if args.rows:
        library = Path("/tmp/device_library.csv")
        pd.read_csv(args.library, nrows=args.rows).to_csv(library, index=False)
    n_rows = len(pd.read_csv(library, usecols=[0]))
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "library_rows": n_rows,
        "runs": [],
    }
    # trained once, on the first device; then scored on each device
    start = time.perf_counter()
    model, metrics = train(
        df,
        "smiles",
        manifest["targets"],
        task_types="regression",
        train_config=TrainConfig(device=args.devices[0], epochs=args.epochs),
        splits_file=split_file,
        progress=False,
        cache_dir=None,
    )
    member = metrics["members"][0]
    record["train"] = {
        "device": args.devices[0],
        "wall_s": round(time.perf_counter() - start, 1),
        "epochs": member["epochs_run"],
        "s_per_epoch": round(member["seconds"] / member["epochs_run"], 3),
        "seconds_to_best": round(member["seconds_to_best"], 1),
        "test_rmse": round(metrics["test"]["rmse"], 4),
    }
    print(json.dumps(record["train"]), flush=True)
    for device in args.devices:
        start, cpu = time.perf_counter(), time.process_time()
        predict_file(
            model, library, f"/tmp/device_scores_{device}.parquet", device=device, progress=False
        )
        score_s = time.perf_counter() - start
        run = {
            "device": device,
            "score_s": round(score_s, 1),
            "molecules_per_s": round(n_rows / score_s),
            # the scoring process's own CPU (not its workers'): on a GPU, the serial part
            "scoring_process_cpu_us_per_molecule": round(
                (time.process_time() - cpu) / n_rows * 1e6, 1
            ),
        }
        record["runs"].append(run)
        print(json.dumps(run), flush=True)
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
