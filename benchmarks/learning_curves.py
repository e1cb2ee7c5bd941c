"""Learning curves on small data: molpred from scratch, molpred fine-tuned from the pretrained
encoder (``--init encoder``), and the fingerprint forest of ``accuracy.py``.

For ESOL, FreeSolv, Lipophilicity (RMSE) and BACE (ROC-AUC), on replicate 0 of the shared
scaffold splits, the training rows are subsampled to 50, 100, 200 and 400 molecules (per seed).
molpred gets its own random 90/10 cut of them into training and validation, or with ``--members 5``
what plain training now gives a chemist with that many molecules: five members, each validating on
its own fifth (``small_data_members.py``). Every model is scored on the split's test rows, and on
its validation rows, which no subsampled model sees: those choose the size below which plain
``molpred train`` starts from the encoder; the test rows only report. ``full`` trains on the split's
training rows and stops early on its validation rows, as ``accuracy.py`` does (so its validation
score is not held out, and the choice leaves it out).

The encoder was pretrained without any molecule of these test rows
(``molpred/pretrained/pretrain.py``).

Usage::

    python benchmarks/learning_curves.py                       # 4 sets, 4 sizes, 3 seeds, full
    python benchmarks/learning_curves.py --sets esol --sizes 50 --seeds 0 --no-full
    python benchmarks/learning_curves.py --resume --output OUT.json   # go on with a stopped run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.fitting import TrainConfig
from molpred.metrics import HIGHER_IS_BETTER, compute_metrics, primary_metric
from molpred.predict import predict
from molpred.pretrained.pretrain import ENCODER
from molpred.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import dataset, run_forest  # noqa: E402  (the harness's own forest)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SETS = ["esol", "freesolv", "lipo", "bace"]
METHODS = ["scratch", "finetuned", "forest"]


def _score(df, targets, task, rows, preds) -> float:
    y = df[targets].to_numpy(dtype=float)[rows]
    metric = primary_metric([task] * len(targets))
    return compute_metrics(y, preds, targets, [task] * len(targets))[metric]


def _cuts(fit_rows: np.ndarray, seed: int, members: int) -> list[dict]:
    """One random 90/10 training/validation cut (``members`` 1), or ``members`` cuts whose
    validation parts are the folds of a random partition (a cross-validation ensemble)."""
    order = np.random.default_rng(seed).permutation(fit_rows)
    if members == 1:
        n_val = max(int(round(0.1 * len(order))), 2)
        return [{"train": order[n_val:], "val": order[:n_val], "test": []}]
    folds = np.array_split(order, members)
    return [
        {"train": np.concatenate(folds[:k] + folds[k + 1 :]), "val": fold, "test": []}
        for k, fold in enumerate(folds)
    ]


def run_gnn(df, targets, task, fit_rows, seed, init, rows, workdir, members=1, config=None):
    splits = [rows["split"]] if fit_rows is None else _cuts(fit_rows, seed, members)
    path = workdir / f"split_{seed}.json"
    path.write_text(json.dumps([{k: list(map(int, v)) for k, v in s.items()} for s in splits]))
    start = time.perf_counter()
    model, _ = train(
        df,
        "smiles",
        targets,
        task_types=task,
        splits_file=path,
        progress=False,
        cache_dir=None,
        init=init,
        train_config=config,
    )
    seconds = time.perf_counter() - start
    out = {}
    for part in ("test", "heldout"):
        smiles = df["smiles"].iloc[rows[part]].tolist()
        preds = predict(model, smiles)[targets].to_numpy(dtype=float)
        out[part] = _score(df, targets, task, rows[part], preds)
    return out, seconds


def run_forest_on(df, targets, task, fit_rows, rows, workdir) -> tuple[dict, float]:
    out, seconds = {}, 0.0
    for part in ("test", "heldout"):
        split = {"train": list(map(int, fit_rows)), "val": [], "test": list(rows[part])}
        result = run_forest(df, targets, task, split, workdir, None)
        out[part] = _score(df, targets, task, rows[part], result["preds"])
        seconds += result["seconds"]
    return out, seconds / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--no-full", action="store_true", help="skip the full-size runs")
    ap.add_argument("--encoder", default=str(ENCODER))
    ap.add_argument(
        "--members",
        type=int,
        default=1,
        help="GNN members per run: 1, one 90/10 cut; K > 1, a K-fold cross-validation ensemble",
    )
    ap.add_argument(
        "--freeze-epochs", type=int, help="head-only epochs when fine-tuning (default: molpred's)"
    )
    ap.add_argument("--output", default=str(RESULTS / "learning_curves.json"))
    ap.add_argument(
        "--report", action="store_true", help="print the tables and threshold of --output"
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep --output's records and run only the cells it lacks (a stopped run goes on; "
        "give it the same --members, --encoder and --freeze-epochs)",
    )
    args = ap.parse_args()
    if args.report:
        report(pd.DataFrame(json.loads(Path(args.output).read_text())))
        return
    workdir = ROOT / "benchmarks" / "runs" / "learning_curves"
    workdir.mkdir(parents=True, exist_ok=True)
    resume = args.resume and Path(args.output).is_file()
    records = json.loads(Path(args.output).read_text()) if resume else []
    done = {(r["set"], r["size"], r["seed"], r["method"]) for r in records}
    for name in args.sets:
        df, targets, task, splits = dataset(name)
        split = splits[0]
        rows = {"test": split["test"], "heldout": split["val"], "split": split}
        plan = [(size, seed) for size in args.sizes for seed in args.seeds]
        if not args.no_full:
            plan.append(("full", 0))
        for size, seed in plan:
            if size == "full":
                fit_rows, forest_rows = None, np.array(split["train"])
            else:
                pool = np.array(split["train"])
                fit_rows = np.random.default_rng(seed).choice(pool, size, replace=False)
                forest_rows = fit_rows
            for method in args.methods:
                if (name, size, seed, method) in done:
                    continue
                if method == "forest":
                    metrics, seconds = run_forest_on(df, targets, task, forest_rows, rows, workdir)
                else:
                    init = args.encoder if method == "finetuned" else None
                    config = TrainConfig(freeze_epochs=args.freeze_epochs if init else None)
                    metrics, seconds = run_gnn(
                        df, targets, task, fit_rows, seed, init, rows, workdir, args.members, config
                    )
                metric = primary_metric([task] * len(targets))
                n_fit = len(split["train"]) + len(split["val"]) if size == "full" else size
                record = {"set": name, "metric": metric, "size": size, "seed": seed, "n_fit": n_fit}
                record["method"] = method
                record.update(metrics, seconds=round(seconds, 1))
                records.append(record)
                print(json.dumps(record), flush=True)
                Path(args.output).write_text(json.dumps(records, indent=1))
    report(pd.DataFrame(records))


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per set, size and method; the fine-tuned model's gain over scratch
    (relative RMSE reduction, or ROC-AUC difference)."""
    table = df.groupby(["set", "metric", "size", "method"], sort=False)[["test", "heldout"]]
    table = table.mean().unstack("method").reset_index()
    table.columns = [" ".join(map(str, c)).strip() for c in table.columns]
    higher = table["metric"].map(HIGHER_IS_BETTER)
    for part in ("test", "heldout"):
        if f"{part} finetuned" in table and f"{part} scratch" in table:
            tuned, scratch = table[f"{part} finetuned"], table[f"{part} scratch"]
            table[f"{part} gain"] = np.where(higher, tuned - scratch, 1 - tuned / scratch)
    return table


def small_data_threshold(df: pd.DataFrame) -> int:
    """The largest training size that starts from the encoder, chosen on the held-out
    validation rows (never the test rows): the largest subsampled size up to which the
    fine-tuned model beats scratch on most sets at every size (0: at none). Full-size runs are
    left out: their validation rows were the early-stopping set, so not held out."""
    table = summary(df[df["size"] != "full"])
    helped = (table["heldout gain"] > 0).groupby(table["size"]).mean().sort_index() > 0.5
    sizes = [int(s) for s in helped.index]
    first_miss = next((s for s, ok in zip(sizes, helped, strict=True) if not ok), None)
    return max((s for s in sizes if first_miss is None or s < first_miss), default=0)


def _markdown(table: pd.DataFrame) -> str:
    cells = [[str(c) for c in table.columns]] + [
        [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        for row in table.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "---|" * len(table.columns), *lines[1:]])


def report(df: pd.DataFrame) -> None:
    """Markdown tables (test rows; held-out validation rows), the issue's target (mean gain at
    <= 200 molecules) and the chosen threshold."""
    table = summary(df)
    for part in ("test", "heldout"):
        cols = ["set", "metric", "size", *[c for c in table if c.startswith(f"{part} ")]]
        print(f"\n{part} rows, mean over seeds\n\n{_markdown(table[cols])}")
    small = table[table["size"].isin([s for s in table["size"] if s != "full" and s <= 200])]
    for part in ("test", "heldout"):
        if f"{part} gain" not in small:  # one method only: nothing to compare
            continue
        gains = small.groupby("metric")[f"{part} gain"].mean().round(3).to_dict()
        print(f"\nmean {part} gain of fine-tuning over scratch at <= 200 molecules: {gains}")
    if "heldout gain" in table:
        threshold = small_data_threshold(df)
        print(f"\nSMALL_DATA, the largest size that starts from the encoder: {threshold}")


if __name__ == "__main__":
    main()
