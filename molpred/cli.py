"""``molpred`` command line: thin subcommands over the library.

Exit codes: 0 success; 2 unusable input (missing file or column, no valid molecules, bad model
file), with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields

from molpred._version import __version__

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
"""
TUNE_EXAMPLE = """example:
  molpred tune data/lipophilicity.csv --smiles-column smiles --target-columns exp \
      --n-trials 30 --timeout 3600 --export best.json --report study.html
  molpred train data/lipophilicity.csv --target-columns exp --config best.json -o logd.pt
  # many workers, many machines: the same command against one PostgreSQL database
  molpred tune data.csv --target-columns y --n-trials 200 --study-name assay7 \
      --storage postgresql://user:password@dbhost/studies
"""
REPORT_EXAMPLE = """example:
  molpred report --storage sqlite:///assay7.db --study-name assay7 --output study.html
"""
EVALUATE_EXAMPLE = """example:
  molpred evaluate esol.pt data/esol.csv --smiles-column smiles \\
      --target-columns "measured log solubility in mols per litre" --output metrics.json
"""


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--encoder", choices=["dmpnn", "gine"], default="dmpnn")
    g.add_argument("--hidden-size", type=int, default=200)
    g.add_argument("--depth", type=int, default=3, help="message-passing steps")
    g.add_argument("--dropout", type=float, default=0.0)
    g.add_argument("--pooling", choices=["mean", "sum", "attention"], default="mean")
    g.add_argument("--head-hidden-size", type=int, default=300)
    g.add_argument("--head-layers", type=int, default=2)
    g.add_argument("--no-descriptors", action="store_true",
                   help="do not feed RDKit 2D descriptors to the head")  # fmt: skip


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=60, help="maximum epochs")
    g.add_argument("--batch-size", type=int, default=50)
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    g.add_argument("--weight-decay", type=float, default=1e-2)
    g.add_argument("--patience", type=int, default=20, help="early-stopping patience (epochs)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The ``molpred`` parser; ``train_defaults`` replace train's defaults (``--config``)."""
    parser = argparse.ArgumentParser(prog="molpred", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"molpred {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="train a model on a labeled table", epilog=TRAIN_EXAMPLE,
                       formatter_class=fmt)  # fmt: skip
    t.add_argument("data", help=".csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    t.add_argument("--smiles-column", default="smiles")
    t.add_argument("--target-columns", nargs="+", required=True)
    t.add_argument("--task", choices=["regression", "classification"],
                   help="task type for all targets (default: inferred per column)")  # fmt: skip
    t.add_argument("--split", choices=["random", "scaffold", "kfold"], default="random")
    t.add_argument("--split-sizes", type=float, nargs=3, default=[0.8, 0.1, 0.1])
    t.add_argument("--folds", type=int, default=5, help="folds for --split kfold")
    t.add_argument("--split-column", help="column of train/val/test labels (overrides --split)")
    t.add_argument("--splits-file", help="JSON list of {train, val, test} row indices")
    t.add_argument("--replicate", type=int, help="use only this entry of --splits-file")
    t.add_argument("--ensemble-size", type=int, default=1, help="models per split (seeds)")
    t.add_argument("--standardize", choices=["none", "parent"], default="none",
                   help="none: structures as drawn (salts and charges kept, like chemprop); "
                        "parent: largest organic fragment, neutralized. Prediction repeats the "
                        "model's choice")  # fmt: skip
    t.add_argument("--workers", type=int, help="featurization processes (default: all cores)")
    t.add_argument("--no-cache", action="store_true", help="do not cache featurized data")
    t.add_argument("--metrics-out", help="write the metrics JSON here")
    t.add_argument("--problems-out", help="write rows that could not be used (CSV) here")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--output", "-o", required=True, help="model file to write")
    t.add_argument("--config", help="JSON from 'molpred tune --export': its settings become "
                   "the defaults, flags given here still win")  # fmt: skip
    _add_model_args(t)
    _add_train_args(t)
    if train_defaults:
        t.set_defaults(**train_defaults)

    u = sub.add_parser("tune", help="hyperparameter study with Optuna (pruned, resumable)",
                       epilog=TUNE_EXAMPLE, formatter_class=fmt)  # fmt: skip
    u.add_argument("data", help=".csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    u.add_argument("--smiles-column", default="smiles")
    u.add_argument("--target-columns", nargs="+", required=True)
    u.add_argument("--task", choices=["regression", "classification"])
    u.add_argument("--n-trials", type=int, required=True,
                   help="finished trials the study should hold (across all workers and runs)")
    u.add_argument("--timeout", type=float, help="stop this worker after S seconds")
    u.add_argument("--storage", help="RDB URL (default: sqlite:///<study-name>.db)")
    u.add_argument("--study-name", help="default: <data file>-<targets>")
    u.add_argument("--split", choices=["random", "scaffold"], default="scaffold")
    u.add_argument("--cv", type=int, default=0, help="K-fold cross-validation instead")
    u.add_argument("--splits-file", help="JSON list of {train, val, test} row indices")
    u.add_argument("--replicate", type=int, default=None, help="entry of --splits-file")
    u.add_argument("--epochs", type=int, default=40, help="maximum epochs per trial")
    u.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--device", default="auto")
    u.add_argument("--workers", type=int, help="featurization processes")
    u.add_argument("--export", help="write the best configuration (JSON) here")
    u.add_argument("--report", help="write an HTML report of the study here")
    u.add_argument("--quiet", action="store_true", help="no line per trial")

    r = sub.add_parser("report", help="HTML report of a study", epilog=REPORT_EXAMPLE,
                       formatter_class=fmt)  # fmt: skip
    r.add_argument("--storage", required=True)
    r.add_argument("--study-name", required=True)
    r.add_argument("--output", "-o", required=True)

    p = sub.add_parser("predict", help="score molecules with a trained model",
                       epilog=PREDICT_EXAMPLE, formatter_class=fmt)  # fmt: skip
    p.add_argument("model", nargs="+", help="one or more model files")
    p.add_argument("input", help=".csv/.tsv/.smi/.sdf/.parquet, optionally .gz")
    p.add_argument("--output", "-o", required=True, help=".csv, .csv.gz, .tsv or .parquet")
    p.add_argument("--smiles-column", help="default: the column named 'smiles'")
    p.add_argument("--molblock-column", help="score MDL molblocks from this column instead")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same command")  # fmt: skip
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: score on a Ray cluster (pip install 'molpred[ray]')")  # fmt: skip
    p.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    p.add_argument("--actors", type=int, help="Ray scoring actors (default: cluster CPUs - 1)")
    p.add_argument("--chunk-size", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=128,
                   help="molecules per forward pass (default 128: on a CPU the activations stay "
                        "in cache; on a GPU try 1024)")
    p.add_argument("--workers", type=int,
                   help="featurization processes (default: all cores; 1 = in this process)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--top", type=int, default=0, help="print the N highest-scoring rows")
    p.add_argument("--sort-by", help="task to rank by for --top (default: the first)")
    p.add_argument("--ascending", action="store_true", help="rank lowest first for --top")
    p.add_argument("--confidence", type=float, default=0.9,
                   help="level of the conformal intervals / prediction sets (default 0.9)")
    p.add_argument("--no-domain", action="store_true",
                   help="skip the applicability-domain columns (~20%% faster)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="metrics of a model on a labeled table",
                       epilog=EVALUATE_EXAMPLE, formatter_class=fmt)  # fmt: skip
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--smiles-column", default="smiles")
    e.add_argument("--target-columns", nargs="+", help="default: the model's task names")
    e.add_argument("--confidence", type=float, default=0.9, help="conformal level to check")
    e.add_argument("--plot", help="write a PNG of error by similarity to the training set")
    e.add_argument("--output", "-o", help="write the metrics JSON here")
    return parser


def _train(args: argparse.Namespace) -> int:
    from molpred.models import ModelConfig
    from molpred.train import TrainConfig, train

    provenance = None
    if args.config:
        args, provenance = _apply_config(args)

    model_config = ModelConfig(
        encoder=args.encoder, hidden_size=args.hidden_size, depth=args.depth,
        dropout=args.dropout, pooling=args.pooling, head_hidden_size=args.head_hidden_size,
        head_layers=args.head_layers, descriptors=not args.no_descriptors,
    )  # fmt: skip
    names = {f.name for f in fields(TrainConfig)}
    train_config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    model, metrics = train(
        args.data, args.smiles_column, args.target_columns, task_types=args.task,
        model_config=model_config, train_config=train_config, split=args.split,
        split_sizes=args.split_sizes, folds=args.folds, split_column=args.split_column,
        splits_file=args.splits_file, replicate=args.replicate,
        ensemble_size=args.ensemble_size, standardization=args.standardize,
        workers=args.workers,
        cache_dir=None if args.no_cache else "default", progress=not args.quiet,
        provenance=provenance,
    )  # fmt: skip
    model.save(args.output)
    _print_metrics(metrics, model.task_names)
    if metrics["n_problems"]:
        print(f"{metrics['n_problems']} input rows or labels could not be used"
              + (f" (see {args.problems_out})" if args.problems_out else
                 " (write them with --problems-out)"), file=sys.stderr)  # fmt: skip
    if args.problems_out:
        from molpred.io import atomic_path

        with atomic_path(args.problems_out) as tmp:
            model.problems.to_csv(tmp, index=False)
    if args.metrics_out:
        _write_json(args.metrics_out, metrics)
    print(f"model written to {args.output}")
    return 0


def _apply_config(args: argparse.Namespace) -> tuple[argparse.Namespace, dict]:
    """Re-parse with the exported configuration as defaults, so explicit flags still win."""
    from molpred.tune import load_config

    model_cfg, train_cfg, source = load_config(args.config)
    defaults = {"encoder": model_cfg.encoder, "hidden_size": model_cfg.hidden_size,
                "depth": model_cfg.depth, "dropout": model_cfg.dropout,
                "pooling": model_cfg.pooling, "head_hidden_size": model_cfg.head_hidden_size,
                "head_layers": model_cfg.head_layers, "no_descriptors": not model_cfg.descriptors,
                "epochs": train_cfg.epochs, "batch_size": train_cfg.batch_size, "lr": train_cfg.lr,
                "weight_decay": train_cfg.weight_decay, "patience": train_cfg.patience}  # fmt: skip
    again = build_parser(train_defaults=defaults).parse_args(args.argv)
    again.argv = args.argv
    return again, {"config": args.config, **source}


def _tune(args: argparse.Namespace) -> int:
    from molpred.tune import TuneSettings, export_best, redact, run_study, write_report

    settings = TuneSettings(
        smiles_column=args.smiles_column, target_columns=tuple(args.target_columns),
        task_types=(args.task,) * len(args.target_columns) if args.task else None,
        split=args.split, cv=args.cv, splits_file=args.splits_file, replicate=args.replicate,
        epochs=args.epochs, seed=args.seed, pruner=args.pruner,
    )  # fmt: skip
    study = run_study(args.data, settings, n_trials=args.n_trials, timeout=args.timeout,
                      storage=args.storage, study_name=args.study_name, workers=args.workers,
                      device=args.device, progress=not args.quiet)  # fmt: skip
    storage = args.storage or f"sqlite:///{study.study_name}.db"
    states = [t.state.name for t in study.trials]
    print(f"study {study.study_name} on {redact(storage)}: {len(states)} trials "
          f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
          f"{states.count('FAIL')} failed)")  # fmt: skip
    if states.count("COMPLETE"):
        print(f"best: trial {study.best_trial.number} {study.user_attrs.get('metric')}="
              f"{study.best_value:.4f} {study.best_params}")  # fmt: skip
        if args.export:
            export_best(study, args.export, storage)
            print(f"best configuration written to {args.export}")
    if args.report:
        print(f"report written to {write_report(study, args.report)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from molpred.tune import load_study, write_report

    try:
        study = load_study(args.storage, args.study_name)
    except KeyError:
        raise ValueError(f"no study named {args.study_name!r} in that storage") from None
    print(f"report written to {write_report(study, args.output)}")
    return 0


def _print_metrics(metrics: dict, task_names: Sequence[str]) -> None:
    test, std = metrics["test"], metrics["test_std"]
    if not test:
        return
    overall = [k for k in test if "/" not in k]
    print(f"test metrics (mean ± sd over {len(metrics['members'])} model(s)):")
    for key in overall:
        print(f"  {key:8s} {test[key]:.4f} ± {std[key]:.4f}")
    if len(task_names) > 1:
        for key in sorted(k for k in test if "/" in k):
            print(f"  {key:40s} {test[key]:.4f}")


def _write_json(path: str, obj: dict) -> None:
    from molpred.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float))


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from molpred.io import DataError, writable_format
    from molpred.predict import predict_file
    from molpred.predictor import Predictor

    # every option that can be checked is checked before an hours-long run, not after it
    source, output = Path(args.input), Path(args.output)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise DataError(f"--output {args.output} is the input file; choose another name")
    if args.engine == "ray" and args.resume:
        raise DataError("--resume is for the local engine; Ray retries failed tasks itself")
    if not (args.engine == "ray" and (args.output.endswith("/") or output.is_dir())):
        writable_format(output)
    predictor = Predictor.from_files(args.model, confidence=args.confidence,
                                     domain=not args.no_domain, batch_size=args.batch_size,
                                     device=args.device)  # fmt: skip
    top = _top_rows(args, predictor) if args.top else None
    if args.engine == "ray":
        from molpred.distributed import predict_file_ray

        summary = predict_file_ray(
            predictor, args.input, args.output, smiles_column=args.smiles_column,
            molblock_column=args.molblock_column, chunk_size=args.chunk_size,
            actors=args.actors, address=args.address,
        )  # fmt: skip
        print(summary, file=sys.stderr)
        return 0
    summary = predict_file(
        predictor, args.input, args.output, smiles_column=args.smiles_column,
        molblock_column=args.molblock_column, chunk_size=args.chunk_size, workers=args.workers,
        resume=args.resume, progress=not args.quiet, top=top,
    )  # fmt: skip
    print(summary, file=sys.stderr)
    if top is not None:
        _print_top(top, predictor)
    return 0


def _top_rows(args: argparse.Namespace, predictor):
    from molpred.io import DataError
    from molpred.predict import TopRows

    schema = predictor.schema
    try:
        task = schema.find(args.sort_by) if args.sort_by else schema.tasks[0]
    except KeyError:
        raise DataError(f"--sort-by {args.sort_by!r} is not a predicted column: "
                        f"{schema.value_columns}") from None  # fmt: skip
    return TopRows(args.top, task.value, args.ascending)


def _print_top(top, predictor) -> None:
    import pandas as pd

    from molpred.schema import ERROR

    if top.rows is None or top.rows.empty:
        return
    hidden = {ERROR, *predictor.schema.detail_columns}  # the file has them all
    rows = top.rows[[c for c in top.rows.columns if c not in hidden]]
    with pd.option_context("display.max_colwidth", 60, "display.expand_frame_repr", False):
        print(rows.to_string(index=False))


def _evaluate(args: argparse.Namespace) -> int:
    from molpred.artifact import load_model
    from molpred.evaluate import evaluate_model, plot_error_by_similarity

    model = load_model(args.model)
    report = evaluate_model(model, args.data, args.smiles_column, args.target_columns,
                            confidence=args.confidence)  # fmt: skip
    print(f"{report['n_molecules']} molecules ({report['n_problems']} rows unusable)")
    for key, value in report["metrics"].items():
        print(f"  {key:40s} {value:.4f}")
    for task, values in report["uncertainty"].items():
        print(f"uncertainty, {task}:")
        for key, value in values.items():
            print(f"  {key:40s} {value:.4f}")
    if report.get("by_similarity"):
        import pandas as pd

        print("error by similarity to the training set:")
        print(pd.DataFrame(report["by_similarity"]).to_string(index=False, float_format="%.3f"))
        print(f"in domain (similarity >= {report['domain_threshold']:.3f}): "
              f"{report['in_domain']}; out of domain: {report['out_of_domain']}")  # fmt: skip
    if args.plot:
        print(f"plot written to {plot_error_by_similarity(report, args.plot)}")
    if args.output:
        _write_json(args.output, report)
    return 0


COMMANDS = {"train": _train, "predict": _predict, "evaluate": _evaluate, "tune": _tune,
            "report": _report}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else list(argv)  # --config parses again
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as exc:  # DataError, ModelFileError, bad options
        print(f"molpred {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
