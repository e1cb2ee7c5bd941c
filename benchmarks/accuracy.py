"""molpred vs chemprop and a fingerprint forest on the project's fixed scaffold splits.

For each data set and replicate, every tool trains with its defaults on the same rows of
``../shared/splits/clean/<name>.csv`` and the same ``{train, val, test}`` indices from
``../shared/splits/<name>.json``; the test metric is computed by this script from each tool's
test-set predictions, so all are scored by the same code.

chemprop 2.3.1 runs from its own virtual environment (it pins an older RDKit), created on first
use at ``benchmarks/runs/chemprop-venv``.

Usage::

    python benchmarks/accuracy.py --datasets esol freesolv --replicates 0 1 2
    python benchmarks/accuracy.py --quick --out /tmp/quick.json   # CI: FreeSolv, 1 rep, 3 epochs
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.fitting import TrainConfig
from molpred.metrics import HIGHER_IS_BETTER, compute_metrics, primary_metric
from molpred.predict import predict
from molpred.train import train

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ROOT.parent / "shared" / "splits"
RUNS = ROOT / "benchmarks" / "runs"
CHEMPROP_VENV = RUNS / "chemprop-venv"


def dataset(name: str) -> tuple[pd.DataFrame, list[str], str, list[dict]]:
    manifest = json.loads((SPLITS / "manifest.json").read_text())[name]
    df = pd.read_csv(SPLITS / "clean" / f"{name}.csv")
    splits = json.loads((SPLITS / f"{name}.json").read_text())
    return df, manifest["targets"], manifest["task"], splits


def train_default(df, targets, task, split, workdir: Path, epochs: int | None = None):
    """molpred's default model trained on a split's train and validation rows (its test rows
    held out): ``(model, seconds)``."""
    split_file = workdir / "split.json"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps([split]))
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    start = time.perf_counter()
    model, _ = train(
        df,
        "smiles",
        targets,
        task_types=task,
        train_config=cfg,
        splits_file=split_file,
        progress=False,
        cache_dir=None,
    )
    return model, time.perf_counter() - start


def run_molpred(df, targets, task, split, workdir: Path, epochs: int | None) -> dict:
    model, seconds = train_default(df, targets, task, split, workdir, epochs)
    test = df.iloc[split["test"]]
    preds = predict(model, test["smiles"].tolist())[targets].to_numpy(dtype=float)
    member = model.info.metrics["members"][0]
    return {
        "preds": preds,
        "seconds": seconds,
        "epochs": member["epochs_run"],
        "best_epoch": member["best_epoch"],
        "seconds_to_best": member["seconds_to_best"],
    }


def ensure_chemprop() -> Path:
    exe = CHEMPROP_VENV / "bin" / "chemprop"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHEMPROP_VENV)], check=True)
        subprocess.run(
            [
                str(CHEMPROP_VENV / "bin" / "pip"),
                "install",
                "-q",
                "torch==2.13.0",
                "chemprop==2.3.1",
            ],
            check=True,
        )
    return exe


def run_chemprop(df, targets, task, split, workdir: Path, epochs: int | None) -> dict:
    exe = ensure_chemprop()
    data = workdir / "data.csv"
    df.to_csv(data, index=False)
    (workdir / "split.json").write_text(json.dumps([split]))
    out = workdir / "chemprop"
    shutil.rmtree(out, ignore_errors=True)  # a rerun must not pick up an old checkpoint
    cmd = [
        str(exe),
        "train",
        "--data-path",
        str(data),
        "--task-type",
        task,
        "--smiles-columns",
        "smiles",
        "--target-columns",
        *targets,
        "--splits-file",
        str(workdir / "split.json"),
        "--output-dir",
        str(out),
    ]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    model_file = next(out.rglob("best*.pt"))
    test = workdir / "test.csv"
    df.iloc[split["test"]][["smiles"]].to_csv(test, index=False)
    preds_file = workdir / "chemprop_preds.csv"
    subprocess.run(
        [
            str(exe),
            "predict",
            "--test-path",
            str(test),
            "--model-paths",
            str(model_file),
            "--preds-path",
            str(preds_file),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    preds = pd.read_csv(preds_file)[targets].to_numpy(dtype=float)
    best = next(out.rglob("best-epoch=*.ckpt")).name
    best_epoch = int(best.split("=")[1].split("-")[0]) + 1  # Lightning counts from 0
    epochs = int(pd.read_csv(next(out.rglob("metrics.csv")))["epoch"].max()) + 1
    # chemprop logs no time per epoch: the run's wall time shared evenly over its epochs
    return {
        "preds": preds,
        "seconds": seconds,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "seconds_to_best": seconds * best_epoch / epochs,
    }


_FOREST_FEATURES: dict[int, np.ndarray] = {}


def forest_features(smiles: list[str]) -> np.ndarray:
    """Morgan count fingerprint (radius 2, 2,048) and RDKit's whole 2D descriptor list, per
    molecule (computed once per data set: every replicate reuses it)."""
    key = hash(tuple(smiles))
    if key not in _FOREST_FEATURES:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import Descriptors, rdFingerprintGenerator

        RDLogger.DisableLog("rdApp.*")
        gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
        rows = []
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            counts = gen.GetCountFingerprintAsNumPy(mol).astype(np.float32)
            desc = np.array([f(mol) for _, f in Descriptors.descList], dtype=np.float64)
            rows.append(np.concatenate([counts, np.nan_to_num(desc, posinf=0, neginf=0)]))
        x = np.clip(np.stack(rows), -1e9, 1e9).astype(np.float32)  # a few descriptors explode
        _FOREST_FEATURES[key] = x
    return _FOREST_FEATURES[key]


def run_forest(df, targets, task, split, workdir: Path, epochs: int | None) -> dict:
    """The baseline a modeller tries first: scikit-learn's random forest (500 trees) on
    fingerprints and descriptors, one forest per task on its labeled rows, trained on train and
    validation rows together (a forest needs no early stopping). Regression forests draw a third
    of the features at each split (Breiman's recommendation), classifiers the square root."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    x = forest_features(df["smiles"].tolist())
    fit_rows = np.array(split["train"] + split["val"])
    start = time.perf_counter()
    preds = np.full((len(split["test"]), len(targets)), np.nan)
    for t, col in enumerate(targets):
        y = df[col].to_numpy(dtype=float)[fit_rows]
        ok = ~np.isnan(y)
        common = dict(n_estimators=500, n_jobs=-1, random_state=0, min_samples_leaf=1)
        if task == "classification":
            if len(np.unique(y[ok])) < 2:
                continue
            forest = RandomForestClassifier(max_features="sqrt", **common)
            forest.fit(x[fit_rows[ok]], y[ok].astype(int))
            preds[:, t] = forest.predict_proba(x[split["test"]])[:, 1]
        else:
            forest = RandomForestRegressor(max_features=1 / 3, **common)
            forest.fit(x[fit_rows[ok]], y[ok])
            preds[:, t] = forest.predict(x[split["test"]])
    seconds = time.perf_counter() - start
    return {
        "preds": preds,
        "seconds": seconds,
        "epochs": 1,
        "best_epoch": 1,
        "seconds_to_best": seconds,
    }


TOOLS = {"molpred": run_molpred, "chemprop": run_chemprop, "forest": run_forest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--datasets",
        nargs="+",
        default=["esol", "freesolv", "lipo", "bbbp", "bace", "clintox", "tox21", "sider"],
    )
    ap.add_argument("--replicates", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    ap.add_argument("--epochs", type=int, help="override both tools' epochs (quick mode)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="the harness's smoke test: FreeSolv, replicate 0, 3 epochs, every tool",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "accuracy.json"))
    ap.add_argument(
        "--reuse",
        nargs="*",
        default=[],
        metavar="JSON",
        help="earlier result files: a --reuse-tools result for a (data set, replicate) "
        "found there is reused (the references do not change when molpred does)",
    )
    ap.add_argument("--reuse-tools", nargs="+", default=["chemprop", "forest"])
    ap.add_argument(
        "--summarize",
        action="store_true",
        help="only write --out's Markdown table from its JSON (e.g. after a stopped "
        "run: rows are saved as they finish)",
    )
    args = ap.parse_args()
    if args.summarize:
        out = Path(args.out)
        out.with_suffix(".md").write_text(summary_table(pd.DataFrame(json.loads(out.read_text()))))
        print(out.with_suffix(".md").read_text())
        return
    if args.quick:
        args.datasets, args.replicates, args.epochs = ["freesolv"], [0], args.epochs or 3
    earlier = {
        (r["dataset"], r["replicate"], r["tool"]): r
        for f in args.reuse
        for r in json.loads(Path(f).read_text())
        if r["tool"] in args.reuse_tools
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:
        df, targets, task, splits = dataset(name)
        metric = primary_metric([task] * len(targets))
        for rep in args.replicates:
            y = df.iloc[splits[rep]["test"]][targets].to_numpy(dtype=float)
            for tool in args.tools:
                if (name, rep, tool) in earlier and args.epochs is None:
                    rows.append({**earlier[(name, rep, tool)], "reused": True})
                    continue
                workdir = RUNS / name / f"rep{rep}" / tool
                workdir.mkdir(parents=True, exist_ok=True)
                res = TOOLS[tool](df, targets, task, splits[rep], workdir, args.epochs)
                m = compute_metrics(y, res.pop("preds"), targets, [task] * len(targets))
                overall = {k: v for k, v in m.items() if "/" not in k}
                row = {
                    "dataset": name,
                    "replicate": rep,
                    "tool": tool,
                    "metric": metric,
                    "value": m[metric],
                    **overall,
                    **res,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
                out.write_text(json.dumps(rows, indent=2) + "\n")  # partial results survive
    out.write_text(json.dumps(rows, indent=2) + "\n")
    markdown = summary_table(pd.DataFrame(rows))
    out.with_suffix(".md").write_text(markdown)
    print(markdown)


def summary_table(df: pd.DataFrame) -> str:
    """Markdown: per data set and tool, test metric mean ± sd over replicates, train seconds,
    seconds per epoch and to the best epoch; then one verdict row per data set."""
    lines = [
        "| data set | metric | tool | test (mean ± sd) | replicates | train s (mean) "
        "| s per epoch | s to best epoch (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, tool), g in df.groupby(["dataset", "tool"], sort=False):
        sd = g["value"].std(ddof=0)
        to_best = g["seconds_to_best"].mean() if "seconds_to_best" in g else float("nan")
        per_epoch = (g["seconds"] / g["epochs"]).mean()
        lines.append(
            f"| {name} | {g['metric'].iloc[0]} | {tool} | {g['value'].mean():.3f} ± "
            f"{sd:.3f} | {len(g)} | {g['seconds'].mean():.0f} | {per_epoch:.2f} | "
            f"{to_best:.0f} |"
        )
    return "\n".join(lines) + "\n\n" + verdicts(df)


def verdicts(df: pd.DataFrame) -> str:
    """Per data set: does molpred's mean beat each reference tool's (chemprop, the forest), is
    a loss within one sd, and the ratio of chemprop's time to the best epoch to molpred's."""
    refs = [t for t in ("chemprop", "forest") if t in set(df["tool"])]
    head = " | ".join(f"{t} | vs {t}" for t in refs)
    lines = [
        f"| data set | molpred | {head} | time to best, chemprop / molpred |",
        "|---|---|" + "---|---|" * len(refs) + "---|",
    ]
    for name, g in df.groupby("dataset", sort=False):
        tools = {t: gg for t, gg in g.groupby("tool")}
        if "molpred" not in tools or any(t not in tools for t in refs):
            continue
        mine = tools["molpred"]["value"]
        higher = HIGHER_IS_BETTER[g["metric"].iloc[0]]
        cells = []
        for t in refs:
            ref = tools[t]["value"]
            better = mine.mean() > ref.mean() if higher else mine.mean() < ref.mean()
            within = abs(mine.mean() - ref.mean()) <= max(ref.std(ddof=0), mine.std(ddof=0))
            verdict = "win" if better else ("loss within 1 sd" if within else "loss")
            cells.append(f"{ref.mean():.3f} | {verdict}")
        ratio = (
            tools["chemprop"]["seconds_to_best"].mean() / tools["molpred"]["seconds_to_best"].mean()
            if "chemprop" in tools
            else float("nan")
        )
        lines.append(f"| {name} | {mine.mean():.3f} | {' | '.join(cells)} | {ratio:.1f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
