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


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; wall seconds and memory (PSS) of its process tree, sampled every 0.2 s:
    the peak, and the peak of each tenth of the run (does memory grow with the input?)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})  # fmt: skip
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
    return {"seconds": seconds, "peak_pss_mb": round(max(tenths) / 1024, 1),
            "peak_pss_mb_by_tenth": [round(kb / 1024) for kb in tenths],
            "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else []}  # fmt: skip


def parse_rate(smiles: list[str]) -> float:
    start = time.perf_counter()
    with rdkit_log_silenced():
        for s in smiles:
            Chem.MolFromSmiles(s)
    return len(smiles) / (time.perf_counter() - start)


def molpred_model(path: Path) -> Path:
    if not path.exists():
        subprocess.run([sys.executable, "-m", "molpred.cli", "train", str(ROOT / "data/esol.csv"),
                        "--target-columns", ESOL_TARGET, "--output", str(path), "--quiet"],
                       check=True)  # fmt: skip
    return path


def chemprop_model(exe: Path, workdir: Path) -> Path:
    found = list(workdir.rglob("best*.pt"))
    if found:
        return found[0]
    subprocess.run([str(exe), "train", "--data-path", str(ROOT / "data/esol.csv"),
                    "--task-type", "regression", "--smiles-columns", "smiles",
                    "--target-columns", ESOL_TARGET, "--epochs", "5",
                    "--output-dir", str(workdir)], check=True, capture_output=True)  # fmt: skip
    return next(workdir.rglob("best*.pt"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(ROOT.parent / "shared/data/moses_test.csv.gz"))
    ap.add_argument("--smiles-column", default="SMILES")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--model", default=str(RUNS / "esol_molpred.pt"))
    ap.add_argument("--no-chemprop", action="store_true")
    ap.add_argument("--runs", nargs="+", default=["molpred", "molpred_no_domain"],
                    choices=["molpred", "molpred_no_domain"],
                    help="molpred's default output, and without the applicability domain")
    ap.add_argument("--out", help="results JSON (default: benchmarks/results/library_<name>.json)")
    args = ap.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    library = Path(args.library)
    name = library.name.split(".")[0]
    all_smiles = pd.read_csv(library, usecols=[args.smiles_column])[args.smiles_column]
    rows, smiles = len(all_smiles), all_smiles.head(20_000).tolist()
    del all_smiles
    result: dict = {"date": date.today().isoformat(), "library": library.name,
                    "cores": len(os.sched_getaffinity(0)), "machine": platform.machine(),
                    "rdkit_parse_per_s_1core": round(parse_rate(smiles))}  # fmt: skip
    result["rows"] = rows

    model = molpred_model(Path(args.model))
    result["molpred_model"] = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; from molpred.artifact import load_model; "
         "print(json.dumps(load_model(sys.argv[1]).members[0].config.__dict__, default=list))",
         str(model)], capture_output=True, text=True, check=True).stdout)  # fmt: skip
    # CSV out, like chemprop's: the same formatting work for both tools.
    variants = {"molpred": [], "molpred_no_domain": ["--no-domain"]}
    for label in args.runs:
        extra = variants[label]
        out = RUNS / f"{name}_{label}.csv"
        m = run_measured([sys.executable, "-m", "molpred.cli", "predict", str(model),
                          str(library), "--smiles-column", args.smiles_column, "--output",
                          str(out), "--quiet", "--workers", str(args.workers),
                          "--device", "cpu", *extra])  # fmt: skip
        result[label] = {**m, "molecules_per_s": round(rows / m["seconds"]),
                         "workers": args.workers}  # fmt: skip
        out.unlink(missing_ok=True)  # up to 0.4 GB of CSV per run

    exe = RUNS.parent / "chemprop-venv" / "bin" / "chemprop"
    if not args.no_chemprop:
        if not exe.exists():
            sys.path.insert(0, str(Path(__file__).parent))
            from accuracy import ensure_chemprop

            ensure_chemprop()
        cp_model = chemprop_model(exe, RUNS / "chemprop_esol")
        data = RUNS / f"{name}_chemprop_input.csv"
        pd.read_csv(library, usecols=[args.smiles_column]).rename(
            columns={args.smiles_column: "smiles"}).to_csv(data, index=False)  # fmt: skip
        c = run_measured([str(exe), "predict", "--test-path", str(data), "--model-paths",
                          str(cp_model), "--preds-path", str(RUNS / f"{name}_chemprop.csv"),
                          "--num-workers", "0"])  # fmt: skip
        result["chemprop"] = {**c, "molecules_per_s": round(rows / c["seconds"])}
        for label in args.runs:
            mine = result[label]
            mine["speedup_vs_chemprop"] = round(c["seconds"] / mine["seconds"], 2)
            mine["memory_ratio_vs_chemprop"] = round(mine["peak_pss_mb"] / c["peak_pss_mb"], 3)
    result["molpred_vs_parse_1core"] = round(
        result["molpred"]["molecules_per_s"] / result["rdkit_parse_per_s_1core"], 3)  # fmt: skip
    save_result(result, Path(args.out or ROOT / "benchmarks" / "results" / f"library_{name}.json"))


if __name__ == "__main__":
    main()
