"""Library-scale scoring: throughput and peak memory of ``molpred predict`` vs chemprop.

Measured in one run, on the same file and cores:

- RDKit parse-only rate on the library (the reference limit of any SMILES-based tool),
- ``molpred predict`` molecules/s and peak memory (PSS) of its process tree, workers included,
  with its default output (uncertainty, conformal interval, applicability domain) and with
  ``--no-domain``; the model is ``molpred train`` with its defaults on bundled ESOL (trained on
  first use into ``benchmarks/runs/library``; delete it to retrain after changing defaults),
- ``chemprop predict`` molecules/s and peak memory (chemprop 2.3.1 from ``benchmarks/runs``;
  see ``accuracy.py``), unless ``--no-chemprop``.

Usage::

    python benchmarks/library_scoring.py --library ../shared/data/moses_test.csv.gz
    python benchmarks/library_scoring.py --library ../shared/data/moses_train.csv.gz \
        --no-chemprop --runs molpred
    # before/after a change, in one run: the same commands from another checkout first
    git worktree add ../before <commit>
    python benchmarks/library_scoring.py --baseline-tree ../before --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem
from report import save_result  # benchmarks/report.py, beside this script

from molpred.chem import rdkit_log_silenced

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "benchmarks" / "runs" / "library"
ESOL_TARGET = "measured log solubility in mols per litre"


def _tree_rss_kb(pid: int) -> int:
    """Proportional set size (PSS) of ``pid`` and all its descendants (kB), from /proc.

    PSS divides each shared page among the processes sharing it, so forked workers are not
    charged again for the parent's copy-on-write pages (summing RSS would count them twice).
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def run_measured(cmd: list[str], tree: Path | None = None) -> dict:
    """Run ``cmd``, with molpred imported from the checkout ``tree`` if given; wall seconds and
    memory (PSS) of its process tree, sampled every 0.2 s: the peak, and the peak of each tenth
    of the run (does memory grow with the input?).

    ``tree`` is both the working directory and ``PYTHONPATH``: ``python -m`` puts the working
    directory first on the path, so a run from this checkout imports this checkout's molpred
    whatever ``PYTHONPATH`` says (before/after runs once compared the code with itself)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tree or ROOT,
        env={**os.environ, **({"PYTHONPATH": str(tree)} if tree else {})},
    )
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - start, _tree_rss_kb(proc.pid)))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{err[-2000:]}")
    seconds = time.perf_counter() - start
    tenths = [0] * 10
    for t, kb in samples:
        i = min(9, int(10 * t / seconds))
        tenths[i] = max(tenths[i], kb)
    return {
        "seconds": seconds,
        "peak_pss_mb": round(max(tenths) / 1024, 1),
        "peak_pss_mb_by_tenth": [round(kb / 1024) for kb in tenths],
        "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else [],
    }


def parse_rate(smiles: list[str]) -> float:
    start = time.perf_counter()
    with rdkit_log_silenced():
        for s in smiles:
            Chem.MolFromSmiles(s)
    return len(smiles) / (time.perf_counter() - start)


def molpred_model(path: Path) -> Path:
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "molpred.cli",
                "train",
                str(ROOT / "data/esol.csv"),
                "--target-columns",
                ESOL_TARGET,
                "--output",
                str(path),
                "--quiet",
            ],
            check=True,
        )
    return path


def chemprop_model(exe: Path, workdir: Path) -> Path:
    found = list(workdir.rglob("best*.pt"))
    if found:
        return found[0]
    subprocess.run(
        [
            str(exe),
            "train",
            "--data-path",
            str(ROOT / "data/esol.csv"),
            "--task-type",
            "regression",
            "--smiles-columns",
            "smiles",
            "--target-columns",
            ESOL_TARGET,
            "--epochs",
            "5",
            "--output-dir",
            str(workdir),
        ],
        check=True,
        capture_output=True,
    )
    return next(workdir.rglob("best*.pt"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(ROOT.parent / "shared/data/moses_test.csv.gz"))
    ap.add_argument("--smiles-column", default="SMILES")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--model", default=str(RUNS / "esol_molpred.pt"))
    ap.add_argument("--no-chemprop", action="store_true")
    ap.add_argument(
        "--runs",
        nargs="+",
        default=["molpred", "molpred_no_domain"],
        choices=["molpred", "molpred_no_domain"],
        help="molpred's default output, and without the applicability domain",
    )
    ap.add_argument(
        "--baseline-tree",
        type=Path,
        help="also run each molpred variant from this checkout (PYTHONPATH), before "
        "the current one: a before/after comparison on the same machine",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="alternate baseline and current this many times (medians reported)",
    )
    ap.add_argument("--out", help="results JSON (default: benchmarks/results/library_<name>.json)")
    args = ap.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    library = Path(args.library).resolve()
    name = library.name.split(".")[0]
    all_smiles = pd.read_csv(library, usecols=[args.smiles_column])[args.smiles_column]
    rows, smiles = len(all_smiles), all_smiles.head(20_000).tolist()
    del all_smiles
    result: dict = {
        "date": date.today().isoformat(),
        "library": library.name,
        "cores": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "rdkit_parse_per_s_1core": round(parse_rate(smiles)),
    }
    result["rows"] = rows

    model = molpred_model(Path(args.model).resolve())
    result["molpred_model"] = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import json, sys; from molpred.artifact import load_model; "
                "print(json.dumps(load_model(sys.argv[1]).members[0].config.__dict__, "
                "default=list))",
                str(model),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    # CSV out, like chemprop's: the same formatting work for both tools.
    variants = {"molpred": [], "molpred_no_domain": ["--no-domain"]}
    trees = {"": None}
    if args.baseline_tree:
        trees = {"baseline_": args.baseline_tree.resolve(), "": None}
        result["baseline_tree"] = str(args.baseline_tree)
    for label in args.runs:
        for _ in range(args.repeats):
            for prefix, tree in trees.items():
                out = RUNS / f"{name}_{prefix}{label}.csv"
                m = run_measured(
                    [
                        sys.executable,
                        "-m",
                        "molpred.cli",
                        "predict",
                        str(model),
                        str(library),
                        "--smiles-column",
                        args.smiles_column,
                        "--output",
                        str(out),
                        "--quiet",
                        "--workers",
                        str(args.workers),
                        "--device",
                        "cpu",
                        *variants[label],
                    ],
                    tree,
                )
                m["molecules_per_s"] = round(rows / m["seconds"])
                result.setdefault(f"{prefix}{label}_runs", []).append(m)
                out.unlink(missing_ok=True)  # up to 0.4 GB of CSV per run
        for prefix in trees:
            runs = result[f"{prefix}{label}_runs"]
            seconds = float(np.median([r["seconds"] for r in runs]))
            result[f"{prefix}{label}"] = {
                "seconds": seconds,
                "molecules_per_s": round(rows / seconds),
                "peak_pss_mb": float(np.median([r["peak_pss_mb"] for r in runs])),
                "peak_pss_mb_by_tenth": runs[-1]["peak_pss_mb_by_tenth"],
                "workers": args.workers,
                "repeats": len(runs),
                "molecules_per_s_each": [r["molecules_per_s"] for r in runs],
            }

    exe = RUNS.parent / "chemprop-venv" / "bin" / "chemprop"
    if not args.no_chemprop:
        if not exe.exists():
            sys.path.insert(0, str(Path(__file__).parent))
            from accuracy import ensure_chemprop

            ensure_chemprop()
        cp_model = chemprop_model(exe, RUNS / "chemprop_esol")
        data = RUNS / f"{name}_chemprop_input.csv"
        pd.read_csv(library, usecols=[args.smiles_column]).rename(
            columns={args.smiles_column: "smiles"}
        ).to_csv(data, index=False)
        c = run_measured(
            [
                str(exe),
                "predict",
                "--test-path",
                str(data),
                "--model-paths",
                str(cp_model),
                "--preds-path",
                str(RUNS / f"{name}_chemprop.csv"),
                "--num-workers",
                "0",
            ]
        )
        result["chemprop"] = {**c, "molecules_per_s": round(rows / c["seconds"])}
        for label in [f"{p}{r}" for p in trees for r in args.runs]:
            mine = result[label]
            mine["speedup_vs_chemprop"] = round(c["seconds"] / mine["seconds"], 2)
            mine["memory_ratio_vs_chemprop"] = round(mine["peak_pss_mb"] / c["peak_pss_mb"], 3)
    result["molpred_vs_parse_1core"] = round(
        result["molpred"]["molecules_per_s"] / result["rdkit_parse_per_s_1core"], 3
    )
    save_result(result, Path(args.out or ROOT / "benchmarks" / "results" / f"library_{name}.json"))


if __name__ == "__main__":
    main()
