"""How the network's share of the blend is chosen (``molpred.trees.choose_weight``), compared
on rows that never chose it.

The blend weight is picked on a member's validation rows. With a few dozen of them the best
score is partly chance: on small FreeSolv subsets the trees, much worse than the network there,
won on five validation rows and made the model worse (``learning_curves.py``). This script
trains each model once, keeps its network and its trees apart, and scores every rule offline on
exactly the same outputs:

- ``best``: the weight that scores best on the validation rows (the rule of the first release);
- ``se<k>``: the largest network share whose shortfall from the best is at most ``k`` bootstrap
  standard errors of the paired difference (100 resamples of the validation rows, scored in
  the network's raw space);
- ``shrink<n0>``: the best weight pulled toward the network as if ``n0`` more validation rows
  had found the network alone best: ``(n * best + n0) / (n + n0)`` for ``n`` rows
  (``choose_weight(prior_rows=n0)``, the rule molpred ships with ``PRIOR_ROWS``);
- ``network``: no trees (weight 1), for reference.

Protocol: that of ``learning_curves.py`` with molpred's default start (the pretrained encoder up
to ``transfer.SMALL_DATA`` molecules, random weights above): ESOL, FreeSolv, Lipophilicity and
BACE on replicate 0 of the shared scaffold splits, training rows subsampled to 50, 100, 200 and
400 molecules (3 seeds, molpred's own 90/10 cut of them), scored on the split's validation rows
(``heldout``, which no subsampled model sees: the rule is chosen there) and test rows (reported
only). ``--full`` adds the full-size models of the eight sets on replicate 0 (test rows only:
their validation rows chose the weight).

Usage::

    python benchmarks/blend_weight_rule.py                 # about 30 min on 2 cores
    python benchmarks/blend_weight_rule.py --report        # tables from the saved results
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.features import featurize_smiles
from molpred.metrics import HIGHER_IS_BETTER, primary_metric, primary_score
from molpred.models import member_outputs
from molpred.train import train
from molpred.trees import WEIGHTS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import dataset  # noqa: E402
from learning_curves import _cuts, _markdown  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MARGINS = [0.25, 0.5, 1.0]
PSEUDO_ROWS = [10, 30]
SMALL_SETS = ["esol", "freesolv", "lipo", "bace"]
FULL_SETS = ["esol", "freesolv", "lipo", "bbbp", "bace", "clintox", "tox21", "sider"]
train_module = importlib.import_module("molpred.train")  # the module: molpred.train is train()
_CHOOSE = train_module.choose_weight


def _fit_keeping_trees(df, targets, task, split, workdir: Path):
    """Train with molpred's defaults, capturing what the weight choice sees (the validation
    score of each share, the number of validation rows) and keeping the trees whatever the rule
    would choose."""
    seen = {}

    def capture(score, n_rows, prior_rows=0):
        seen.update(score=score, n_rows=n_rows)
        return 0.5  # anything below 1 keeps the boosters; every rule is applied offline

    path = workdir / "split.json"
    path.write_text(json.dumps([{k: list(map(int, v)) for k, v in split.items()}]))
    train_module.choose_weight = capture
    try:
        model, _ = train(
            df, "smiles", targets, task_types=task, splits_file=path, progress=False, cache_dir=None
        )
    finally:
        train_module.choose_weight = _CHOOSE
    if "score" in seen:  # the raw outputs and targets the bootstrap rules resample
        smiles = df["smiles"].iloc[split["val"]].tolist()
        y = df[targets].to_numpy(dtype=float)[split["val"]]
        member = model.members[0]
        mean, scale = member.y_mean.numpy(), member.y_scale.numpy()
        regression = np.array([task == "regression"] * len(targets))
        seen.update(
            network=_raw(model, smiles, 1.0),
            trees=_raw(model, smiles, 0.0),
            val_raw=np.where(regression, (y - mean) / scale, y),
            task_types=[task] * len(targets),
        )
    return model, seen


def _within_standard_errors(seen: dict, margin: float, seed: int = 0) -> float:
    """The ``se<margin>`` rule: the largest network share whose shortfall from the best is at
    most ``margin`` bootstrap standard errors of the paired difference."""
    y, kinds = np.asarray(seen["val_raw"], dtype=float), seen["task_types"]
    sign = 1.0 if HIGHER_IS_BETTER[primary_metric(kinds)] else -1.0
    n = len(y)
    resamples = np.random.default_rng(seed).integers(0, n, size=(100, n))
    weights = WEIGHTS[::-1]  # from the network's side: a tie keeps the larger share
    raws = [w * seen["network"] + (1.0 - w) * seen["trees"] for w in weights]
    full = np.array([sign * primary_score(y, raw, kinds) for raw in raws])
    if not np.isfinite(full).any():
        return 1.0
    best = int(np.nanargmax(full))

    def resampled(raw: np.ndarray) -> np.ndarray:
        return np.array([sign * primary_score(y[r], raw[r], kinds) for r in resamples])

    at_best = resampled(raws[best])
    for i in range(best):  # larger network shares first
        if not np.isfinite(full[i]):
            continue
        with warnings.catch_warnings():  # resamples with one class have no score: left out
            warnings.simplefilter("ignore", RuntimeWarning)
            se = np.nanstd(at_best - resampled(raws[i]))
        if full[best] - full[i] <= (margin * se if np.isfinite(se) else np.inf):
            return float(weights[i])
    return float(weights[best])


def _raw(model, smiles: list[str], weight: float) -> np.ndarray:
    member = model.members[0]
    if member.trees is not None:
        member.trees.weight = weight
    _, _, _, raw = member_outputs([member], featurize_smiles(smiles))
    return raw[:, :, 0]


def _score(model, y: np.ndarray, network: np.ndarray, trees: np.ndarray, w: float, kinds):
    import torch

    member = model.members[0]
    mixed = torch.from_numpy(w * network + (1.0 - w) * trees)
    with torch.no_grad():
        return primary_score(y, member.to_units(mixed).numpy(), kinds)


def run_one(df, targets, task, split, parts: dict, workdir: Path) -> dict:
    start = time.perf_counter()
    model, seen = _fit_keeping_trees(df, targets, task, split, workdir)
    seconds = time.perf_counter() - start
    rules = ["best", *(f"se{k:g}" for k in MARGINS), *(f"shrink{n0}" for n0 in PSEUDO_ROWS)]
    weights = dict.fromkeys(rules, 1.0)  # no task could have trees: the network alone
    if "score" in seen:
        choose = {k: seen[k] for k in ("score", "n_rows")}
        weights["best"] = _CHOOSE(**choose, prior_rows=0)
        weights |= {f"se{k:g}": _within_standard_errors(seen, k) for k in MARGINS}
        weights |= {f"shrink{n0}": _CHOOSE(**choose, prior_rows=n0) for n0 in PSEUDO_ROWS}
    weights["network"] = 1.0
    kinds = [task] * len(targets)
    n_val = seen.get("n_rows")
    record = {"weights": weights, "seconds": round(seconds, 1), "n_val": n_val}
    for part, rows in parts.items():
        smiles = df["smiles"].iloc[rows].tolist()
        y = df[targets].to_numpy(dtype=float)[rows]
        network, trees = _raw(model, smiles, 1.0), _raw(model, smiles, 0.0)
        record[part] = {
            rule: _score(model, y, network, trees, w, kinds) for rule, w in weights.items()
        }
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=SMALL_SETS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--full", nargs="*", default=FULL_SETS, help="full-size sets (none: '')")
    ap.add_argument("--output", default=str(RESULTS / "blend_weight_rule.json"))
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    if args.report:
        report(json.loads(Path(args.output).read_text()))
        return
    workdir = ROOT / "benchmarks" / "runs" / "blend_weight_rule"
    workdir.mkdir(parents=True, exist_ok=True)
    plan = [(name, size, seed) for name in args.sets for size in args.sizes for seed in args.seeds]
    plan += [(name, "full", 0) for name in args.full if name]
    records = []
    for name, size, seed in plan:
        df, targets, task, splits = dataset(name)
        split = splits[0]
        if size == "full":
            cut, parts = split, {"test": split["test"]}
        else:
            pool = np.array(split["train"])
            fit_rows = np.random.default_rng(seed).choice(pool, size, replace=False)
            cut = _cuts(fit_rows, seed, 1)[0]
            parts = {"heldout": split["val"], "test": split["test"]}
        record = {"set": name, "size": size, "seed": seed}
        record["metric"] = primary_metric([task] * len(targets))
        record.update(run_one(df, targets, task, cut, parts, workdir))
        records.append(record)
        print(json.dumps(record), flush=True)
        Path(args.output).write_text(json.dumps(records, indent=1))
    report(records)


def _loss(metric: str, value: float) -> float:
    """Lower is better on every metric: RMSE as is, 1 - ROC-AUC."""
    return 1.0 - value if HIGHER_IS_BETTER[metric] else value


def table(records: list[dict], part: str) -> pd.DataFrame:
    """Per set and size, the mean over seeds of each rule's metric on ``part`` rows, and of its
    weight."""
    rows = []
    for r in records:
        if part not in r:
            continue
        for rule, value in r[part].items():
            rows.append(
                {"set": r["set"], "size": str(r["size"]), "rule": rule, "value": value}
                | {"weight": r["weights"][rule]}
            )
    df = pd.DataFrame(rows)
    return df.groupby(["set", "size", "rule"], sort=False)[["value", "weight"]].mean()


def relative(records: list[dict], part: str) -> pd.Series:
    """Each rule's mean relative excess loss over the best rule of the same run (0: always the
    best); the rule with the smallest is chosen on ``heldout``."""
    excess = []
    for r in records:
        if part not in r:
            continue
        losses = {rule: _loss(r["metric"], v) for rule, v in r[part].items()}
        low = min(losses.values())
        excess.append({rule: (v - low) / low for rule, v in losses.items()})
    return pd.DataFrame(excess).mean().sort_values()


def forest(part: str) -> pd.Series:
    """The harness's forest on the same rows and seeds (``learning_curves.py``'s results)."""
    runs = pd.DataFrame(json.loads((RESULTS / "learning_curves.json").read_text()))
    runs = runs[runs["method"] == "forest"].assign(size=lambda d: d["size"].astype(str))
    return runs.groupby(["set", "size"])[part].mean().rename("forest")


def report(records: list[dict]) -> None:
    """Markdown tables: each rule's metric on held-out and test rows beside the forest's, each
    rule's mean relative excess loss (the choice is made on held-out rows), the weights."""
    for part in ("heldout", "test"):
        t = table(records, part)["value"].unstack("rule")
        t = t.join(forest(part), on=["set", "size"]).reset_index()
        print(f"\n{part} rows, mean over seeds\n\n{_markdown(t)}")
        excess = (100 * relative(records, part)).rename("excess %").rename_axis("rule")
        print(f"\nmean relative excess loss on {part} rows\n\n{_markdown(excess.reset_index())}")
    w = table(records, "test")["weight"].unstack("rule").reset_index()
    print(f"\nchosen network share, mean over seeds\n\n{_markdown(w)}")


if __name__ == "__main__":
    main()
