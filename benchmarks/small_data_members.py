"""One member or a cross-validation ensemble on small data: the choice behind
``transfer.SMALL_DATA_MEMBERS``.

Both are molpred's default start (the pretrained encoder, trees blended in with the shrunk
weight rule) on exactly the same subsampled molecules of ``learning_curves.py``:

- ``single``: one member on a random 90/10 training/validation cut, as before. Its scores come
  from ``blend_weight_rule.py``'s runs, rule ``shrink10`` (the shipped rule applied to the same
  training run; ``results/blend_weight_rule.json``);
- ``cv5``: five members, each validating on its own fifth of the molecules and training on the
  rest; the trees' share chosen once on all the folds pooled
  (``learning_curves.py --methods finetuned --members 5 --no-full --output
  results/learning_curves_cv5_trees.json``);
- ``forest``: the harness's forest (``results/learning_curves.json``).

The choice is made on the split's validation rows, which no subsampled model sees; the test rows
only report.

Usage::

    python benchmarks/small_data_members.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import _markdown, small_data_threshold  # noqa: E402

from molpred.metrics import HIGHER_IS_BETTER  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def runs(results: Path = RESULTS) -> pd.DataFrame:
    """One row per set, size and seed: held-out and test scores of the three models."""
    cv = pd.DataFrame(json.loads((results / "learning_curves_cv5_trees.json").read_text()))
    cv = cv.set_index(["set", "size", "seed"])[["metric", "heldout", "test"]]
    single = pd.DataFrame(
        [
            {"set": r["set"], "size": r["size"], "seed": r["seed"]}
            | {part: r[part]["shrink10"] for part in ("heldout", "test")}
            for r in json.loads((results / "blend_weight_rule.json").read_text())
            if r["size"] != "full"
        ]
    ).set_index(["set", "size", "seed"])
    lc = pd.DataFrame(json.loads((results / "learning_curves.json").read_text()))
    forest = lc[(lc["method"] == "forest") & (lc["size"] != "full")]
    forest = forest.astype({"size": int}).set_index(["set", "size", "seed"])
    out = cv.rename(columns={"heldout": "heldout cv5", "test": "test cv5"})
    for name, frame in (("single", single), ("forest", forest)):
        out = out.join(frame[["heldout", "test"]].add_suffix(f" {name}"), how="inner")
    return out.reset_index()


def members_chosen(table: pd.DataFrame) -> bool:
    """The cross-validation ensemble is chosen when, on held-out rows, it beats the single
    member in most (set, size) cells (means over seeds)."""
    mean = table.groupby(["set", "size", "metric"]).mean(numeric_only=True).reset_index()
    higher = mean["metric"].map(HIGHER_IS_BETTER)
    better = (mean["heldout cv5"] > mean["heldout single"]) == higher
    return bool(better.mean() > 0.5)


def report(table: pd.DataFrame) -> None:
    mean = table.groupby(["set", "metric", "size"], sort=False).mean(numeric_only=True)
    mean = mean.drop(columns="seed").reset_index()
    for part in ("heldout", "test"):
        cols = ["set", "metric", "size", *(f"{part} {m}" for m in ("single", "cv5", "forest"))]
        print(f"\n{part} rows, mean over 3 seeds\n\n{_markdown(mean[cols])}")
        higher = mean["metric"].map(HIGHER_IS_BETTER)
        wins = ((mean[f"{part} cv5"] > mean[f"{part} single"]) == higher).sum()
        beats = ((mean[f"{part} cv5"] > mean[f"{part} forest"]) == higher).sum()
        print(f"\n{part}: cv5 beats single in {wins} of {len(mean)} cells, the forest in {beats}")
    print(f"\nthe cross-validation ensemble is chosen: {members_chosen(table)}")


def _cv5_records(results: Path) -> pd.DataFrame | None:
    """The five-member default's learning curves, from the encoder and from random weights
    (``learning_curves.py --methods scratch --members 5 --no-full --output
    results/learning_curves_cv5_trees_scratch.json``); None before the scratch run."""
    path = results / "learning_curves_cv5_trees_scratch.json"
    if not path.is_file():
        return None
    tuned = json.loads((results / "learning_curves_cv5_trees.json").read_text())
    return pd.DataFrame(tuned + json.loads(path.read_text()))


def encoder_gain(results: Path = RESULTS) -> pd.DataFrame | None:
    """The encoder's gain within the new default: the five-member ensemble from the encoder
    against the same ensemble from random weights, per set and size (relative RMSE
    reduction, or ROC-AUC difference); None before the scratch run."""
    records = _cv5_records(results)
    if records is None:
        return None
    keys = ["set", "metric", "size"]
    mean = records.groupby([*keys, "method"])[["heldout", "test"]].mean().unstack("method")
    both = mean.xs("finetuned", axis=1, level="method").join(
        mean.xs("scratch", axis=1, level="method").add_suffix(" scratch"), how="inner"
    )
    higher = both.index.get_level_values("metric").map(HIGHER_IS_BETTER).to_numpy(dtype=bool)
    for part in ("heldout", "test"):
        new, old = both[part], both[f"{part} scratch"]
        both[f"{part} gain"] = np.where(higher, new - old, 1 - new / old)
    return both.reset_index()


def threshold(results: Path = RESULTS) -> int | None:
    """``transfer.SMALL_DATA`` as ``learning_curves.py``'s rule chooses it inside the new
    default (held-out rows only); None before the scratch run."""
    records = _cv5_records(results)
    return None if records is None else small_data_threshold(records)


def report_gain(gain: pd.DataFrame) -> None:
    print(f"\nthe encoder's gain in the five-member default\n\n{_markdown(gain)}")
    for metric, rows in gain.groupby("metric"):
        for label, part in (("<= 200", rows["size"] <= 200), ("at 400", rows["size"] == 400)):
            mean = rows.loc[part, ["heldout gain", "test gain"]].mean().round(3).to_dict()
            print(f"mean gain {label} molecules ({metric}): {mean}")
    print(f"\nthe small-data threshold inside the five-member default: {threshold()}")


if __name__ == "__main__":
    report(runs())
    gain = encoder_gain()
    if gain is not None:
        report_gain(gain)
