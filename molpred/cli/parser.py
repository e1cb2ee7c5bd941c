"""The ``molpred`` argument parser: every subcommand, option and default, with worked
examples. Imports nothing heavy."""

from __future__ import annotations

import argparse

from molpred._version import __version__
from molpred.splits import SPLIT_SIZES, SPLITTERS

__all__ = ["build_parser"]

TRAIN_EXAMPLE = """example:
  molpred train data/esol.csv --smiles-column smiles \\
      --target-columns "measured log solubility in mols per litre" \\
      --split scaffold --epochs 60 --output esol.pt
  molpred train data/tox21.csv --smiles-column smiles --target-columns NR-AR SR-p53 \\
      --task classification --split kfold --folds 5 --output tox21.pt
"""
PREDICT_EXAMPLE = """example:
  molpred predict esol.pt library.csv.gz --smiles-column smiles --output scores.csv
  molpred predict esol.pt candidates.smi --output scores.parquet --workers 2 --top 10
  # a panel of models in one pass (featurized once), resumable after a crash or kill:
  molpred predict esol.pt logd.pt tox21.pt vendor.sdf.gz --output panel.csv.gz --resume
  # every bundled ADMET model, with percentiles among approved drugs:
  molpred predict --panel admet library.csv.gz --output scores.parquet
"""
TUNE_EXAMPLE = """example:
  molpred tune data/lipophilicity.csv --smiles-column smiles --target-columns exp \\
      --n-trials 30 --timeout 3600 --export best.json --report study.html
  molpred train data/lipophilicity.csv --target-columns exp --config best.json -o logd.pt
  # many workers, many machines: the same command against one PostgreSQL database
  molpred tune data.csv --target-columns y --n-trials 200 --study-name assay7 \\
      --storage postgresql://user:password@dbhost/studies
"""
REPORT_EXAMPLE = """example:
  molpred report --storage sqlite:///assay7.db --study-name assay7 --output study.html
"""
SUGGEST_EXAMPLE = """example:
  # 48 to make next: likely in logD 1-3 and soluble, at most 2 per scaffold, none measured
  molpred suggest logd.pt solubility.pt candidates.csv --objective exp=1..3 \\
      --objective "measured log solubility in mols per litre=higher" \\
      --exclude measured.csv --exclude-training --output batch.csv
  molpred suggest assay.pt enumerated.smi --objective pIC50=higher --strategy ei \\
      --n 24 --max-similarity 0.6 --output batch.sdf
"""
EVALUATE_EXAMPLE = """example:
  molpred evaluate esol.pt data/esol.csv --smiles-column smiles \\
      --target-columns "measured log solubility in mols per litre" --output metrics.json
"""


def _positive(text: str) -> int:
    """A whole number, 1 or more (argparse type)."""
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _count(text: str) -> int:
    """A whole number, 0 or more (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


TARGETS_HELP = (
    "the measured columns; a name starting with - is given as --target-columns=-name, and the "
    "flag may be repeated"
)
SMILES_HELP = "default: the column named smiles, canonical_smiles or smi (any case)"


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    source = "; with --init, the source model's"
    g.add_argument("--encoder", choices=["dmpnn", "gine"], help=f"default: dmpnn{source}")
    g.add_argument("--hidden-size", type=int, help=f"default: 200{source}")
    g.add_argument("--depth", type=int, help=f"message-passing steps (default: 3{source})")
    g.add_argument("--dropout", type=float, default=0.0)
    g.add_argument("--pooling", choices=["mean", "sum", "attention"], help=f"default: mean{source}")
    g.add_argument("--head-hidden-size", type=int, default=300)
    g.add_argument("--head-layers", type=int, default=2)
    g.add_argument(
        "--no-descriptors", action="store_true", help="do not feed RDKit 2D descriptors to the head"
    )


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=60, help="maximum epochs")
    g.add_argument("--batch-size", type=int, default=50)
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    g.add_argument("--weight-decay", type=float, default=1e-2)
    g.add_argument("--patience", type=int, default=20, help="early-stopping patience (epochs)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument(
        "--init",
        metavar="MODEL",
        default="auto",
        help="start from this model's encoder (a model file or a bundled name such as "
        "'encoder'): a new head learns first, then everything. auto: the pretrained encoder "
        "when the model learns from few molecules (see README); none: random weights",
    )
    g.add_argument(
        "--freeze-epochs",
        type=int,
        help="epochs in which only the head learns (default: 5, at most half of --epochs, when "
        "starting from an encoder, else 0)",
    )
    g.add_argument(
        "--no-trees",
        dest="trees",
        action="store_false",
        help="train the network alone, without the gradient-boosted trees blended into it",
    )


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Worked examples kept as written; every option's default shown."""


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The ``molpred`` parser; ``train_defaults`` replace train's defaults (``--config``)."""
    parser = argparse.ArgumentParser(
        prog="molpred", description="Molecular property prediction with graph neural networks."
    )
    parser.add_argument("--version", action="version", version=f"molpred {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = _HelpFormatter

    t = sub.add_parser(
        "train", help="train a model on a labeled table", epilog=TRAIN_EXAMPLE, formatter_class=fmt
    )
    t.add_argument("data", help=".csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    t.add_argument("--smiles-column", help=SMILES_HELP)
    t.add_argument("--target-columns", nargs="+", action="extend", required=True, help=TARGETS_HELP)
    t.add_argument(
        "--task",
        choices=["regression", "classification"],
        help="task type for all targets (default: inferred per column)",
    )
    t.add_argument("--split", choices=list(SPLITTERS), default="random")
    t.add_argument("--split-sizes", type=float, nargs=3, default=list(SPLIT_SIZES))
    t.add_argument("--folds", type=int, default=5, help="folds for --split kfold or scaffold-kfold")
    t.add_argument("--split-column", help="column of train/val/test labels (overrides --split)")
    t.add_argument("--splits-file", help="JSON list of {train, val, test} row indices")
    t.add_argument("--replicate", type=int, help="use only this entry of --splits-file")
    t.add_argument("--ensemble-size", type=int, default=1, help="models per split (seeds)")
    t.add_argument(
        "--cv-members",
        type=int,
        help="members per split trained by cross-validation on its training and validation "
        "rows, each validating on its own fold (default: 5 up to 400 molecules from a random or "
        "scaffold split, else 1)",
    )
    t.add_argument(
        "--standardize",
        choices=["none", "parent"],
        default="none",
        help="none: structures as drawn (salts and charges kept, like chemprop); "
        "parent: largest organic fragment, neutralized. Prediction repeats the "
        "model's choice",
    )
    t.add_argument("--workers", type=int, help="featurization processes (default: all cores)")
    t.add_argument("--no-cache", action="store_true", help="do not cache featurized data")
    t.add_argument("--metrics-out", help="write the metrics JSON here")
    t.add_argument("--problems-out", help="write rows that could not be used (CSV) here")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--output", "-o", required=True, help="model file to write")
    t.add_argument(
        "--config",
        help="JSON from 'molpred tune --export': its settings become "
        "the defaults, flags given here still win",
    )
    _add_model_args(t)
    _add_train_args(t)
    if train_defaults:
        t.set_defaults(**train_defaults)

    u = sub.add_parser(
        "tune",
        help="hyperparameter study with Optuna (pruned, resumable)",
        epilog=TUNE_EXAMPLE,
        formatter_class=fmt,
    )
    u.add_argument("data", help=".csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    u.add_argument("--smiles-column", help=SMILES_HELP)
    u.add_argument("--target-columns", nargs="+", action="extend", required=True, help=TARGETS_HELP)
    u.add_argument("--task", choices=["regression", "classification"])
    u.add_argument(
        "--n-trials",
        type=_count,
        required=True,
        help="finished trials the study should hold (across all workers and runs)",
    )
    u.add_argument("--timeout", type=float, help="stop this worker after S seconds")
    u.add_argument(
        "--storage",
        help="RDB URL (sqlite:///file.db, postgresql://...) or a SQLite file path "
        "(default: <study-name>.db here)",
    )
    u.add_argument("--study-name", help="default: <data file>-<targets>")
    u.add_argument("--split", choices=["random", "scaffold"], default="scaffold")
    u.add_argument(
        "--cv",
        type=_count,
        default=0,
        help="K-fold cross-validation instead, K >= 2 (scaffold k-fold with --split scaffold)",
    )
    u.add_argument("--splits-file", help="JSON list of {train, val, test} row indices")
    u.add_argument("--replicate", type=int, default=None, help="entry of --splits-file")
    u.add_argument("--epochs", type=_positive, default=40, help="maximum epochs per trial")
    u.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    u.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the splits and the networks' initial weights (the sampler is not seeded: "
        "workers sharing a study must propose different trials)",
    )
    u.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    u.add_argument("--workers", type=int, help="featurization processes")
    u.add_argument("--export", help="write the best configuration (JSON) here")
    u.add_argument("--report", help="write an HTML report of the study here")
    u.add_argument("--quiet", action="store_true", help="no line per trial")

    r = sub.add_parser(
        "report", help="HTML report of a study", epilog=REPORT_EXAMPLE, formatter_class=fmt
    )
    r.add_argument("--storage", required=True)
    r.add_argument("--study-name", required=True)
    r.add_argument("--output", "-o", required=True)

    p = sub.add_parser(
        "predict",
        help="score molecules with a trained model",
        epilog=PREDICT_EXAMPLE,
        formatter_class=fmt,
    )
    p.add_argument("model", nargs="*", help="one or more model files (none with --panel)")
    p.add_argument("input", help=".csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    p.add_argument(
        "--panel",
        choices=["admet"],
        help="score with every bundled model (the page's ADMET panel), in one pass, with "
        "approved-drug percentiles; model files given too are added",
    )
    p.add_argument(
        "--percentiles",
        action="store_true",
        help="add <value>_pct_approved for bundled models: the prediction's percentile among "
        "approved drugs (on with --panel)",
    )
    p.add_argument("--output", "-o", required=True, help=".csv, .csv.gz, .tsv or .parquet")
    p.add_argument("--smiles-column", help=SMILES_HELP)
    p.add_argument("--molblock-column", help="score MDL molblocks from this column instead")
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run of the same command"
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: score on a Ray cluster (pip install 'molpred[ray]')",
    )
    p.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    p.add_argument("--actors", type=int, help="Ray scoring actors (default: cluster CPUs - 1)")
    p.add_argument("--chunk-size", type=int, default=10_000)
    p.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="molecules per forward pass (default 128: on a CPU the activations stay "
        "in cache; on a GPU try 1024)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="featurization processes (default: all cores; 1 = in this process)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--top", type=_count, default=0, help="print the N highest-scoring rows (0: none)"
    )
    p.add_argument("--sort-by", help="task to rank by for --top (default: the first)")
    p.add_argument("--ascending", action="store_true", help="rank lowest first for --top")
    p.add_argument(
        "--confidence",
        type=float,
        default=0.9,
        help="level of the conformal intervals / prediction sets (default 0.9)",
    )
    p.add_argument(
        "--no-domain",
        action="store_true",
        help="leave out the applicability-domain columns (~20%% faster with models from "
        "before the expected-error model, which need no fingerprints then)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser(
        "suggest",
        help="pick the next batch to make and test from scored candidates",
        epilog=SUGGEST_EXAMPLE,
        formatter_class=fmt,
    )
    s.add_argument("model", nargs="+", help="one or more model files")
    s.add_argument("input", help="candidates: .csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    s.add_argument("--output", "-o", required=True, help=".csv, .csv.gz, .tsv, .parquet or .sdf")
    s.add_argument("--smiles-column", help=SMILES_HELP)
    s.add_argument("--n", type=int, default=48, help="molecules in the batch")
    s.add_argument(
        "--objective",
        action="append",
        metavar="COLUMN=GOAL[@WEIGHT]",
        help="what a good molecule is, repeatable: GOAL is higher, lower or LOW..HIGH "
        "(default: the bundled models' preferred directions)",
    )
    s.add_argument(
        "--strategy",
        choices=["ucb", "greedy", "ei", "random"],
        default="ucb",
        help="ucb: objective + beta x its sd; greedy: objective; ei: expected improvement "
        "over the best measured; random: a control batch",
    )
    s.add_argument("--beta", type=float, default=1.0, help="weight of the sd for --strategy ucb")
    s.add_argument(
        "--explore",
        type=float,
        default=0.0,
        help="fraction of the batch picked where the model's expected error is largest "
        "(what it would learn most from)",
    )
    s.add_argument(
        "--cover",
        type=float,
        default=0.0,
        help="fraction of the batch spread over chemical space: each the best candidate of "
        "the cluster furthest below its share of the pool, counting measured molecules and "
        "earlier picks (keeps the next model accurate on the rest)",
    )
    s.add_argument(
        "--max-per-scaffold",
        type=int,
        default=2,
        help="at most this many picks per Bemis-Murcko scaffold (0: no limit)",
    )
    s.add_argument(
        "--max-similarity",
        type=float,
        help="no two picks more Tanimoto-similar than this (e.g. 0.6; default: no limit)",
    )
    s.add_argument(
        "--exclude",
        action="append",
        metavar="MEASURED_FILE",
        help="molecules already measured (a table with a SMILES column; columns named like an "
        "objective are read as measured values), repeatable",
    )
    s.add_argument(
        "--exclude-training", action="store_true", help="also exclude the models' training sets"
    )
    s.add_argument("--confidence", type=float, default=0.9, help="level of the intervals")
    s.add_argument("--workers", type=int, help="featurization processes (default: all cores)")
    s.add_argument("--seed", type=int, default=0, help="seed of the sampling (and of random)")

    e = sub.add_parser(
        "evaluate",
        help="metrics of a model on a labeled table",
        epilog=EVALUATE_EXAMPLE,
        formatter_class=fmt,
    )
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--smiles-column", help=SMILES_HELP)
    e.add_argument(
        "--target-columns",
        nargs="+",
        action="extend",
        help="default: the model's task names; " + TARGETS_HELP[4:],
    )
    e.add_argument("--confidence", type=float, default=0.9, help="conformal level to check")
    e.add_argument("--plot", help="write a PNG of error by similarity to the training set")
    e.add_argument("--output", "-o", help="write the metrics JSON here")
    return parser
