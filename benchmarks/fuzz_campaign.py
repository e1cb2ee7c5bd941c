"""The long fuzzing campaign of issue #8: the properties of ``tests/fuzzing.py`` (the same ones
CI runs briefly in ``tests/test_fuzz.py``) over more than 100,000 generated inputs.

Counts every generated SMILES string, file and label value, and any failure (the first
falsifying example is printed by hypothesis and the script exits non-zero). Writes
``benchmarks/results/fuzz_campaign.json``.

Usage::

    python benchmarks/fuzz_campaign.py [--predict-examples 20000] [--file-examples 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report import save_result  # benchmarks/report.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from molpred.fitting import TrainConfig  # noqa: E402
from molpred.models import ModelConfig  # noqa: E402
from molpred.train import train  # noqa: E402
from tests.fuzzing import (  # noqa: E402
    check_file,
    check_predict,
    check_train,
    labels,
    smiles_inputs,
    table_files,
)

TARGET = "measured log solubility in mols per litre"
SMALL = ModelConfig(hidden_size=48, head_hidden_size=48, depth=2)


def campaign(n_predict: int, n_files: int, n_train: int) -> dict:
    esol = pd.read_csv(ROOT / "data" / "esol.csv").head(60)
    model, _ = train(
        esol,
        "smiles",
        [TARGET],
        model_config=SMALL,
        progress=False,
        train_config=TrainConfig(epochs=3),
        cache_dir=None,
    )
    counts: Counter = Counter()

    def run(n: int):
        return settings(
            max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )

    @run(n_predict)
    @given(inputs=st.lists(smiles_inputs(), max_size=12))
    def predict_property(inputs):
        check_predict(model, inputs)
        counts["smiles_inputs"] += len(inputs)
        counts["predict_calls"] += 1

    @run(n_files)
    @given(file=table_files())
    def file_property(file):
        with tempfile.TemporaryDirectory() as tmp:
            counts[f"files_{check_file(model, Path(tmp), *file)}"] += 1

    def fit(df):
        return train(
            df,
            "smiles",
            ["y"],
            model_config=SMALL,
            train_config=TrainConfig(epochs=1, batch_size=32),
            progress=False,
            cache_dir=None,
        )[0]

    @run(n_train)
    @given(values=st.lists(labels(), min_size=1, max_size=24))
    def train_property(values):
        counts[f"label_tables_{check_train(values, fit)}"] += 1
        counts["label_values"] += len(values)

    started = time.perf_counter()
    for prop in (predict_property, file_property, train_property):
        prop()
    counts["seconds"] = round(time.perf_counter() - started)
    return dict(counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predict-examples", type=int, default=20_000)
    ap.add_argument("--file-examples", type=int, default=3_000)
    ap.add_argument("--train-examples", type=int, default=200)
    args = ap.parse_args()
    counts = campaign(args.predict_examples, args.file_examples, args.train_examples)
    total = sum(
        v
        for k, v in counts.items()
        if k in ("smiles_inputs", "label_values") or k.startswith("files_")
    )
    result = {"date": time.strftime("%Y-%m-%d"), "generated_inputs": total, "failures": 0, **counts}
    save_result(result, ROOT / "benchmarks" / "results" / "fuzz_campaign.json")


if __name__ == "__main__":
    main()
