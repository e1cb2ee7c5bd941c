"""Retrospective next-batch simulation: does ``molpred suggest`` find good molecules faster than
random picks, without a worse model?

Each labeled public set plays a project's candidate pool whose measurements are hidden. Start
from 5% of it labeled (random, per seed); each round, train a model with ``molpred train``'s
defaults (but 30 epochs, patience 10: 240 trainings on 2 cores) on everything labeled so far,
score the pool, let a strategy pick a batch of 48
(``molpred.suggest``), reveal their measured values, and repeat for 10 rounds. Reported per
strategy and round (mean over seeds): the fraction of the pool's top 5% (by the true objective)
found, and the RMSE of the model on the molecules not yet labeled.

Sets and goals:

- ``lipophilicity`` (MoleculeNet, 4,200): logD in 1-3 and highest solubility. Solubility is
  the bundled solubility model's prediction, known for every candidate (as a computed property
  would be); only logD is measured and learned.
- ``cyp3a4`` (PharmaBench CYP3A4 inhibition, 1,980): the weakest inhibitors, i.e. the highest
  IC50, modelled as log10(IC50 / uM) (the values are IC50 in uM, 0.0003-100).

Usage::

    python benchmarks/suggest_simulation.py                    # both sets, 3 seeds, 10 rounds
    python benchmarks/suggest_simulation.py --sets lipophilicity --seeds 0 --rounds 2 --quick
    python benchmarks/suggest_simulation.py --report benchmarks/results/suggest_simulation_*.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

import molpred
from molpred.chem import parent_key
from molpred.fitting import TrainConfig
from molpred.predictor import Predictor
from molpred.pretrained import model_path
from molpred.ranking import Objective, score
from molpred.suggest import BatchOptions, suggest
from molpred.train import train

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
STRATEGIES = ["random", "greedy", "ucb", "ei"]
TARGET = "y"


def pool(name: str) -> tuple[pd.DataFrame, list[Objective]]:
    """The candidate pool (``smiles``, measured ``y``, fixed columns) and the goal."""
    if name == "lipophilicity":
        df = pd.read_csv(DATA / "Lipophilicity.csv").rename(columns={"exp": TARGET})
        objectives = [Objective(TARGET, "range", 1.0, 1.0, 3.0), Objective("solubility", "higher")]
    elif name == "cyp3a4":
        df = pd.read_csv(DATA / "admet" / "pharmabench" / "cyp_3a4_reg_final_data.csv")
        df = df.rename(columns={"Smiles_unify": "smiles"})
        df[TARGET] = np.log10(df["value"])
        objectives = [Objective(TARGET, "higher")]
    else:
        raise ValueError(f"unknown set {name!r}")
    df = df[["smiles", TARGET]].copy()
    df["key"] = [parent_key(s) for s in df["smiles"]]
    df = df.dropna(subset=["key"])
    # one row per compound (measured twice: the mean), as a project's register would hold it
    df = df.groupby("key", sort=False).agg(smiles=("smiles", "first"), y=(TARGET, "mean"))
    df = df.reset_index(drop=True)
    if name == "lipophilicity":
        solubility = molpred.load_model(model_path("solubility"))
        df["solubility"] = molpred.predict(solubility, df["smiles"].tolist(), domain=False)[
            solubility.task_names[0]
        ].to_numpy()
    return df, objectives


def fit(labeled: pd.DataFrame, config: TrainConfig) -> molpred.MolpredModel:
    model, _ = train(  # random weights, as the committed results: the labeled set crosses
        labeled,  # SMALL_DATA during a run, and the encoder saw most of the pool's molecules
        "smiles",
        [TARGET],
        progress=False,
        cache_dir=None,
        train_config=config,
        init=None,
        cv_members=1,  # one member, as the committed results (five would cost 5x the time)
    )
    return model


def scored(model, prepared, fixed: pd.DataFrame) -> pd.DataFrame:
    """The pool as the page would show it: the model's columns plus the fixed ones."""
    table = Predictor(model).score(prepared)
    table.insert(0, "smiles", fixed["smiles"].to_numpy())
    for column in fixed.columns.drop(["smiles", TARGET]):
        table[column] = fixed[column].to_numpy()
    return table


def simulate(
    name: str, seeds, rounds: int, batch: int, start: float, config, strategies, save
) -> dict:
    df, objectives = pool(name)
    truth = score(df, objectives)
    top = truth >= np.quantile(truth, 0.95)
    print(f"{name}: {len(df)} molecules, top 5% = {int(top.sum())}", flush=True)
    prepared = None
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        initial = np.sort(rng.choice(len(df), int(round(start * len(df))), replace=False))
        t0 = time.perf_counter()
        first = fit(df.iloc[initial], replace(config, seed=seed))
        if prepared is None:  # the pool is featurized once; every model reads the same graphs
            prepared = Predictor(first).featurizer()(df["smiles"].tolist())
        print(f"  seed {seed}: first model in {time.perf_counter() - t0:.0f} s", flush=True)
        history = {}  # strategy -> per round: (labeled rows, predicted values of the pool)
        for strategy in strategies:
            labeled, model = initial.copy(), first
            found, rmse = [], []
            history[strategy] = []
            for r in range(rounds + 1):
                table = scored(model, prepared, df)
                history[strategy].append((labeled, table[TARGET].to_numpy()))
                rest = np.setdiff1d(np.arange(len(df)), labeled)
                err = table[TARGET].to_numpy()[rest] - df[TARGET].to_numpy()[rest]
                rmse.append(float(np.sqrt(np.mean(err**2))))
                found.append(int(top[labeled].sum()) - int(top[initial].sum()))
                if r == rounds:
                    break
                measured = df.iloc[labeled]
                kind, share = _shares(strategy)
                options = BatchOptions(n=batch, strategy=kind, seed=seed * 1000 + r, **share)
                picks = suggest(table.iloc[rest], objectives, options, measured=measured)
                labeled = np.sort(np.concatenate([labeled, picks.index.to_numpy()]))
                model = fit(df.iloc[labeled], replace(config, seed=seed))
            runs.append({"seed": seed, "strategy": strategy, "found": found, "rmse_rest": rmse})
            print(
                f"  seed {seed} {strategy:7s} found {found[-1]:3d}/{int(top.sum())} "
                f"(after 5 rounds {found[min(5, rounds)]}), rmse {rmse[0]:.3f} -> {rmse[-1]:.3f}"
                f"  [{time.perf_counter() - t0:.0f} s]",
                flush=True,
            )
        _add_shared_rest(runs, history, df[TARGET].to_numpy(), seed)
        save(
            {
                "set": name,
                "molecules": len(df),
                "top": int(top.sum()),
                "objectives": [o.__dict__ for o in objectives],
                "runs": runs,
            }
        )
    return {
        "set": name,
        "molecules": len(df),
        "top": int(top.sum()),
        "objectives": [o.__dict__ for o in objectives],
        "runs": runs,
    }


def _shares(strategy: str) -> tuple[str, dict[str, float]]:
    """``ucb+explore0.25+cover0.5`` -> ``("ucb", {"explore": 0.25, "cover": 0.5})``."""
    kind, *parts = strategy.split("+")
    shares = {}
    for part in parts:
        name = part.rstrip("0123456789.")
        shares[name] = float(part[len(name) :])
    return kind, shares


def _add_shared_rest(runs: list[dict], history: dict, truth: np.ndarray, seed: int) -> None:
    """Each strategy's error and random's on the same molecules: those neither has picked.

    ``rmse_rest`` compares different molecules: a strategy that picks the pool's best leaves
    a rest without them, random picks leave a representative one. On the molecules picked by
    neither, both models are judged on the same rows.
    """
    if "random" not in history:
        return
    for run in runs:
        if run["seed"] != seed or "rmse_shared_rest" in run:
            continue
        own, shared, base = history[run["strategy"]], [], []
        for (labeled, predicted), (random_labeled, random_predicted) in zip(
            own, history["random"], strict=True
        ):
            rows = np.setdiff1d(np.arange(len(truth)), np.union1d(labeled, random_labeled))
            shared.append(float(np.sqrt(np.mean((predicted[rows] - truth[rows]) ** 2))))
            base.append(float(np.sqrt(np.mean((random_predicted[rows] - truth[rows]) ** 2))))
        run["rmse_shared_rest"], run["random_rmse_shared_rest"] = shared, base


def summary(result: dict) -> pd.DataFrame:
    """Mean over seeds per strategy and round: top-5% found (count and fraction), RMSE."""
    rows = []
    for run in result["runs"]:
        for r, (f, e) in enumerate(zip(run["found"], run["rmse_rest"], strict=True)):
            rows.append({"strategy": run["strategy"], "round": r, "found": f, "rmse_rest": e})
    table = pd.DataFrame(rows).groupby(["strategy", "round"], sort=False).mean().reset_index()
    table["fraction_of_top"] = table["found"] / result["top"]
    return table


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5 * len(results), 7), squeeze=False)
    for col, result in enumerate(results):
        table = summary(result)
        for strategy, part in table.groupby("strategy", sort=False):
            axes[0, col].plot(part["round"], part["fraction_of_top"], marker="o", label=strategy)
            axes[1, col].plot(part["round"], part["rmse_rest"], marker="o", label=strategy)
        axes[0, col].set_title(f"{result['set']}: top-5% molecules found")
        axes[0, col].set_ylabel("fraction of the top 5% picked")
        axes[1, col].set_ylabel("RMSE on molecules not yet picked")
        axes[1, col].set_xlabel("round (48 molecules each)")
        axes[0, col].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(paths: list[Path], plot_path: Path) -> str:
    """The markdown table of RESULTS.md from finished runs, and the plot of the curves."""
    results = [r for p in paths for r in json.loads(p.read_text())["results"]]
    lines = [
        "| set | strategy | top-5% found, round 5 | vs random | round 10 | vs random "
        "| RMSE rest, round 5 | round 10 | shared rest vs random, round 5 | round 10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        runs = pd.DataFrame(result["runs"])
        by = {s: part for s, part in runs.groupby("strategy", sort=False)}
        base = by.get("random")
        for strategy, part in by.items():
            cells = [result["set"], strategy]
            for r in (5, 10):
                found = np.array([f[r] for f in part["found"]], dtype=float)
                cells.append(f"{found.mean():.1f} ± {found.std():.1f} of {result['top']}")
                if base is not None:
                    ref = np.mean([f[r] for f in base["found"]])
                    cells.append(f"{found.mean() / ref:.2f}x" if ref else "n/a")
            for r in (5, 10):
                rmse = np.array([e[r] for e in part["rmse_rest"]])
                cells.append(f"{rmse.mean():.3f} ± {rmse.std():.3f}")
            for r in (5, 10):  # the mean over seeds of RMSE / random's, on the same rows
                if "rmse_shared_rest" in part and part["rmse_shared_rest"].notna().all():
                    ratio = [
                        own[r] / base[r]
                        for own, base in zip(
                            part["rmse_shared_rest"], part["random_rmse_shared_rest"], strict=True
                        )
                    ]
                    cells.append(f"{np.mean(ratio):.3f}")
                else:
                    cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
    plot(results, plot_path)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["cyp3a4", "lipophilicity"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--start", type=float, default=0.05, help="fraction labeled at the start")
    ap.add_argument(
        "--strategies",
        nargs="+",
        default=STRATEGIES,
        help="strategy names; NAME+exploreF picks a fraction F of each batch by expected error",
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=30,
        help="epochs per model (train's default is 60; 30 with patience 10 keeps the 240 "
        "trainings of a full run near an hour on 2 cores)",
    )
    ap.add_argument("--quick", action="store_true", help="5 epochs per model (a smoke run)")
    ap.add_argument("--output", default=str(RESULTS / "suggest_simulation.json"))
    ap.add_argument("--report", type=Path, nargs="+", help="only tabulate and plot these runs")
    ap.add_argument("--plot", type=Path, default=RESULTS / "suggest_simulation.png")
    args = ap.parse_args()
    if args.report:
        print(report(args.report, args.plot))
        return
    epochs = 5 if args.quick else args.epochs
    config = TrainConfig(epochs=epochs, patience=max(epochs // 3, 2))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []

    def save(partial: dict) -> None:  # after every seed: a long run that stops keeps its data
        done = [*results, partial]
        out.write_text(json.dumps({"results": done, "epochs": epochs, "complete": False}))

    for s in args.sets:
        results.append(
            simulate(
                s, args.seeds, args.rounds, args.batch, args.start, config, args.strategies, save
            )
        )
    out.write_text(json.dumps({"results": results, "epochs": epochs, "complete": True}, indent=1))
    for result in results:
        print(result["set"])
        print(summary(result).to_string(index=False, float_format="%.3f"))
    print(f"table and plot of finished runs: --report {out}")


if __name__ == "__main__":
    main()
