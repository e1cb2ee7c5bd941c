"""Train the bundled models from ``data/`` (``python -m molpred.pretrained.build``).

Scaffold split 80/10/10, seed 0, molpred's default model and training settings: the files are
reproducible from the repository alone. Test metrics land in each file's metadata (the model
card shown by the app) and in ``benchmarks/results/pretrained.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from molpred._version import __version__
from molpred.pretrained import CARDS, model_path
from molpred.train import train

ROOT = Path(__file__).resolve().parents[2]


def build(name: str, data_dir: Path) -> dict:
    card = CARDS[name]
    df = pd.read_csv(data_dir / card.data)
    start = time.perf_counter()
    model, metrics = train(
        df,
        card.smiles_column,
        list(card.targets),
        task_types=card.task,
        split="scaffold",
        progress=False,
        provenance={
            "card": name,
            "data": f"data/{card.data}",
            "split": "scaffold 80/10/10, seed 0",
        },
    )
    model.save(model_path(name))
    overall = {k: round(v, 4) for k, v in metrics["test"].items() if "/" not in k}
    return {
        "model": name,
        "test": overall,
        "n_problems": metrics["n_problems"],
        "seconds": round(time.perf_counter() - start, 1),
        "molpred": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=list(CARDS))
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data")
    args = ap.parse_args()
    results = [build(n, args.data_dir) for n in args.names]
    for r in results:
        print(json.dumps(r))
    out = ROOT / "benchmarks" / "results" / "pretrained.json"
    old = json.loads(out.read_text()) if out.exists() else []
    keep = [r for r in old if r["model"] not in args.names]
    out.write_text(json.dumps(keep + results, indent=2) + "\n")


if __name__ == "__main__":
    main()
