"""What bfloat16 message passing changes: speed and predictions against float32 (the models
module's ``MOLPRED_PRECISION``; bfloat16 is the inference default on a CPU with native bfloat16
products).

Four measurements, each alternating the two precisions in one process:
- one message-passing product alone, ``[5000, 200] x [200, 200]`` plus the ``[5000, 200]``
  input (the default hidden size; 5,000 directed bonds are about 100 molecules), one thread;
- the whole bundled panel's scoring CPU seconds per 1,000 MOSES molecules, one thread, as a
  page worker scores its chunks (median of ``--repeats``);
- how far the panel's predictions on those molecules move: per endpoint the largest and the
  99th-percentile absolute change, against the endpoint's cross-validated RMSE (regression) or
  in probability (classification), and the rank correlation of the two precisions' values;
- test metrics of default models trained on replicate 0 of the shared scaffold splits
  (``--datasets``), predicted in each precision.

Usage::

    python benchmarks/precision.py [--n 1000] [--repeats 5] [--datasets esol lipo bbbp]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accuracy import dataset, train_default  # benchmarks/, beside this script
from report import save_result
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"
sys.path.insert(0, str(ROOT))

import molpred  # noqa: E402
from molpred.metrics import compute_metrics, primary_metric  # noqa: E402
from molpred.models import message_dtype  # noqa: E402
from molpred.predict import predict  # noqa: E402
from molpred.predictor import Predictor  # noqa: E402
from molpred.pretrained import available, model_path  # noqa: E402

PRECISIONS = ("float32", "bfloat16")


def precision(name: str) -> None:
    """Set the message passing's precision for what follows (bfloat16: the default, where the
    CPU has it)."""
    os.environ["MOLPRED_PRECISION"] = "float32" if name == "float32" else ""


def products(repeats: int, hidden: int = 200, edges: int = 5000) -> dict:
    """Milliseconds of one D-MPNN product (``addmm``) per precision, median of ``repeats``
    rounds of 20."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(edges, hidden, generator=generator), torch.randn(edges, hidden)
    w = torch.randn(hidden, hidden, generator=generator)
    ms: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for _ in range(repeats + 1):  # the first round warms up
        for p in PRECISIONS:
            dtype = torch.float32 if p == "float32" else torch.bfloat16
            x, y, z = b.to(dtype), a.to(dtype), w.to(dtype)
            start = time.perf_counter()
            for _ in range(20):
                torch.addmm(x, y, z)
            ms[p].append((time.perf_counter() - start) / 20 * 1e3)
    out = {p: round(statistics.median(v[1:]), 2) for p, v in ms.items()}
    out["speedup"] = round(out["float32"] / out["bfloat16"], 2)
    return out


def panel(n: int, repeats: int) -> tuple[dict, list[dict]]:
    smiles = pd.read_csv(LIBRARY, nrows=n).iloc[:, 0].tolist()
    models = {name: molpred.load_model(model_path(name)) for name in available()}
    predictor = Predictor(models)
    work = predictor.featurizer(trim=False)
    prepared = [work(smiles[i : i + 100]) for i in range(0, len(smiles), 100)]
    seconds = {p: [] for p in PRECISIONS}
    tables = {}
    for _ in range(repeats + 1):  # the first round warms up and is not counted
        for p in PRECISIONS:
            precision(p)
            start = time.process_time()
            tables[p] = pd.concat([predictor.score(c) for c in prepared], ignore_index=True)
            seconds[p].append(time.process_time() - start)
    per_1000 = 1000 / len(smiles)
    speed = {p: round(statistics.median(s[1:]) * per_1000, 2) for p, s in seconds.items()}
    changes = []
    for t in predictor.schema.tasks:
        a, b = (tables[p][t.value].to_numpy(dtype=float) for p in PRECISIONS)
        ok = np.isfinite(a) & np.isfinite(b)
        delta = np.abs(a[ok] - b[ok])
        row = {
            "model": t.model,
            "task": t.task,
            "kind": t.kind,
            "max_change": round(float(delta.max()), 4),
            "p99_change": round(float(np.quantile(delta, 0.99)), 4),
            "spearman": round(float(spearmanr(a[ok], b[ok]).statistic), 5),
        }
        cv = models[t.model].info.metrics.get("cross_validation", {}).get("per_endpoint", {})
        rmse = cv.get(t.task, {}).get("metrics", {}).get("rmse", {}).get("mean")
        if t.kind == "regression" and rmse:
            row["max_change_over_cv_rmse"] = round(row["max_change"] / rmse, 4)
        changes.append(row)
    return speed, changes


def test_metrics(names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        df, targets, task, splits = dataset(name)
        split = splits[0]
        precision("bfloat16")  # as by default (training is float32 whatever the setting)
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = train_default(df, targets, task, split, Path(tmp))
        test = df.iloc[split["test"]]
        row = {"set": name, "metric": primary_metric([task])}
        for p in PRECISIONS:
            precision(p)
            preds = predict(model, test["smiles"].tolist())[targets].to_numpy(dtype=float)
            kinds = [task] * len(targets)
            truth = test[targets].to_numpy(dtype=float)
            metric = primary_metric(kinds)
            row[p] = round(float(compute_metrics(truth, preds, targets, kinds)[metric]), 4)
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--datasets", nargs="*", default=["esol", "lipo", "bbbp"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    precision("bfloat16")
    native = message_dtype(torch.device("cpu")) == torch.bfloat16
    speed, changes = panel(args.n, args.repeats)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "native_bfloat16": native,
        "product_ms": products(args.repeats),
        "molecules": args.n,
        "panel_scoring_cpu_seconds_per_1000": speed,
        "largest_change_over_cv_rmse": max(
            (c.get("max_change_over_cv_rmse", 0) for c in changes), default=None
        ),
        "largest_probability_change": max(
            (c["max_change"] for c in changes if c["kind"] == "classification"), default=None
        ),
        "lowest_spearman": min(c["spearman"] for c in changes),
        "endpoints": changes,
        "test_metrics": test_metrics(args.datasets),
    }
    save_result(result, ROOT / "benchmarks" / "results" / "precision.json")


if __name__ == "__main__":
    main()
