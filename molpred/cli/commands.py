"""The ``molpred`` subcommands: each takes the parsed arguments, calls the library and prints
what a user reads. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields

from molpred.cli.parser import build_parser
from molpred.splits import SPLIT_SIZES


def train(args: argparse.Namespace) -> int:
    from molpred.fitting import TrainConfig
    from molpred.models import ModelConfig
    from molpred.train import train as train_model

    provenance = None
    if args.config:
        args, provenance = _apply_config(args)

    encoder = {"encoder": args.encoder, "hidden_size": args.hidden_size, "depth": args.depth}
    encoder["pooling"] = args.pooling
    pretrained = None
    if args.init not in ("auto", "none"):
        from molpred.transfer import load_pretrained

        pretrained = load_pretrained(args.init)
    # unset encoder flags: the source's encoder with --init, else molpred's defaults
    base = pretrained.config if pretrained is not None else ModelConfig()
    model_config = ModelConfig(
        **{k: getattr(base, k) if v is None else v for k, v in encoder.items()},
        dropout=args.dropout,
        head_hidden_size=args.head_hidden_size,
        head_layers=args.head_layers,
        descriptors=not args.no_descriptors,
    )
    names = {f.name for f in fields(TrainConfig)}
    train_config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    model, metrics = train_model(
        args.data,
        args.smiles_column,
        args.target_columns,
        task_types=args.task,
        model_config=model_config,
        train_config=train_config,
        split=args.split,
        split_sizes=args.split_sizes,
        folds=args.folds,
        split_column=args.split_column,
        splits_file=args.splits_file,
        replicate=args.replicate,
        ensemble_size=args.ensemble_size,
        cv_members=args.cv_members,
        standardization=args.standardize,
        workers=args.workers,
        cache_dir=None if args.no_cache else "default",
        progress=not args.quiet,
        provenance=provenance,
        init=pretrained if pretrained is not None else {"auto": "auto"}.get(args.init),
    )
    model.save(args.output)
    if args.init == "auto" and metrics["init"]:
        from molpred.transfer import SMALL_DATA

        print(
            f"started from the pretrained {metrics['init']} (at most {SMALL_DATA} training "
            "and validation molecules); --init none trains from random weights",
            file=sys.stderr,
        )
    _print_metrics(metrics, model.task_names)
    if metrics["n_problems"]:
        print(
            f"{metrics['n_problems']} notes on input rows (rows or labels that could not be "
            "used, repeated measurements that disagree)"
            + (
                f" (see {args.problems_out})"
                if args.problems_out
                else " (write them with --problems-out)"
            ),
            file=sys.stderr,
        )
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
    defaults = {
        "encoder": model_cfg.encoder,
        "hidden_size": model_cfg.hidden_size,
        "depth": model_cfg.depth,
        "dropout": model_cfg.dropout,
        "pooling": model_cfg.pooling,
        "head_hidden_size": model_cfg.head_hidden_size,
        "head_layers": model_cfg.head_layers,
        "no_descriptors": not model_cfg.descriptors,
        "epochs": train_cfg.epochs,
        "batch_size": train_cfg.batch_size,
        "lr": train_cfg.lr,
        "weight_decay": train_cfg.weight_decay,
        "patience": train_cfg.patience,
        "init": "none",  # the study scored random-weight trials; an explicit --init still wins
    }
    given = sys.argv[1:] if args.argv is None else args.argv
    splitting = ("--split", "--split-column", "--splits-file", "--folds", "--replicate")
    own_split = _given(given, splitting)
    if not own_split:  # else the user's split wins
        defaults.update(_study_split(source.get("split", {})))
    again = build_parser(train_defaults=defaults).parse_args(args.argv)
    study = source.get("split", {})
    if study.get("cv") and again.split.endswith("kfold"):
        print(
            "note: the study chose this configuration by cross-validation over every "
            "molecule, so the test metrics of k-fold models trained with it are optimistic",
            file=sys.stderr,
        )
    elif study and (own_split or _other_rows(again, study)):
        print(
            "note: this split differs from the study's, so its test rows may include "
            "molecules the study chose the configuration on (optimistic test metrics)",
            file=sys.stderr,
        )
    again.argv = args.argv
    return again, {"config": args.config, **source}


def _other_rows(args: argparse.Namespace, study: dict) -> bool:
    """Whether a train run that kept the study's split flags still splits other rows: another
    seed, other split sizes, or other structures (the study featurized them as drawn)."""
    return (
        args.seed != study.get("seed", 0)
        or tuple(args.split_sizes) != SPLIT_SIZES
        or args.standardize != "none"
    )


def _given(argv: list[str], flags: tuple[str, ...]) -> bool:
    """Whether ``argv`` sets one of ``flags`` (argparse takes unambiguous prefixes too)."""
    names = [a.split("=", 1)[0] for a in argv if a.startswith("--") and len(a) > 3]
    return any(flag.startswith(name) for name in names for flag in flags)


def _study_split(study: dict) -> dict:
    """train's split defaults from a study's (``export_best``'s ``source["split"]``): the same
    splits, so the test rows are ones the study did not choose on."""
    if not study:
        return {}  # a configuration exported before splits were recorded
    defaults = {"seed": study.get("seed", 0)}
    if study.get("splits_file"):
        defaults.update(splits_file=study["splits_file"], replicate=study.get("replicate"))
    elif study.get("cv"):
        kfold = "scaffold-kfold" if study.get("split") == "scaffold" else "kfold"
        defaults.update(split=kfold, folds=study["cv"])
    elif study.get("split"):
        defaults["split"] = study["split"]
    return defaults


def tune(args: argparse.Namespace) -> int:
    from molpred.tune import (
        TuneSettings,
        export_best,
        redact,
        run_study,
        storage_url,
        write_report,
    )

    if args.cv == 1:
        raise ValueError("--cv needs 2 folds or more (0: one train/val/test split)")
    if args.cv and args.splits_file:
        raise ValueError("--cv and --splits-file exclude each other: the file holds the splits")
    if args.replicate is not None and not args.splits_file:
        raise ValueError("--replicate chooses an entry of --splits-file, which was not given")
    settings = TuneSettings(
        smiles_column=args.smiles_column,
        target_columns=tuple(args.target_columns),
        task_types=(args.task,) * len(args.target_columns) if args.task else None,
        split=args.split,
        cv=args.cv,
        splits_file=args.splits_file,
        replicate=args.replicate,
        epochs=args.epochs,
        seed=args.seed,
        pruner=args.pruner,
    )
    study = run_study(
        args.data,
        settings,
        n_trials=args.n_trials,
        timeout=args.timeout,
        storage=args.storage,
        study_name=args.study_name,
        workers=args.workers,
        device=args.device,
        progress=not args.quiet,
    )
    storage = storage_url(args.storage, study.study_name)
    states = [t.state.name for t in study.trials]
    print(
        f"study {study.study_name} on {redact(storage)}: {len(states)} trials "
        f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
        f"{states.count('FAIL')} failed)"
    )
    if states.count("COMPLETE"):
        print(
            f"best: trial {study.best_trial.number} {study.user_attrs.get('metric')}="
            f"{study.best_value:.4f} {study.best_params}"
        )
        if args.export:
            export_best(study, args.export, storage)
            print(f"best configuration written to {args.export}")
    if args.report:
        print(f"report written to {write_report(study, args.report)}")
    if args.export and not states.count("COMPLETE"):
        print(
            f"molpred tune: error: no trial has completed, so there is no configuration to "
            f"write to {args.export}; run more trials (or a longer --timeout)",
            file=sys.stderr,
        )
        return 1
    return 0


def report(args: argparse.Namespace) -> int:
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
    overall = [k for k in test if "/" not in k and k != "loss"]  # the loss is training's business
    n = len(metrics["members"])
    tested = sorted({m.get("n_test", 0) for m in metrics["members"]})  # k-fold: one per fold
    n_test = tested[0]
    rests = f"{n_test}{f'-{tested[-1]}' if len(tested) > 1 else ''} test molecules"
    rests += " per model" if len(tested) > 1 else ""
    if 0 < n_test < 20:
        rests += ": too few to judge the model by"
    print(
        f"test metrics (mean ± sd over {n} models; {rests}):"
        if n > 1
        else f"test metrics ({rests}):"
    )
    for key in overall:
        print(f"  {key:8s} {test[key]:.4f}" + (f" ± {std[key]:.4f}" if n > 1 else ""))
    if len(task_names) > 1:
        for key in sorted(k for k in test if "/" in k):
            print(f"  {key:40s} {test[key]:.4f}")
    ensemble = metrics.get("test_ensemble", {})
    if ensemble:
        print(f"test metrics of the model (the mean of its {n} models' predictions):")
        for key in overall:
            print(f"  {key:8s} {ensemble[key]:.4f}")
    weights = {m.get("trees_weight") for m in metrics["members"]} - {None}
    if weights:  # one share for every member with trees
        share = ", ".join(f"{w:.2f}" for w in sorted(weights))
        print(f"blended with trees; the network's share (chosen on validation rows): {share}")


def _write_json(path: str, obj: dict) -> None:
    from molpred.io import atomic_path

    with atomic_path(path) as tmp:  # strict JSON: an undefined metric is null, not NaN
        tmp.write_text(json.dumps(_finite(obj), indent=2, default=float, allow_nan=False))


def _finite(obj):
    """``obj`` with NaN and infinite floats as None (JSON's null)."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from molpred.io import DataError, writable_format
    from molpred.predict import predict_file
    from molpred.predictor import Predictor

    # every option that can be checked is checked before an hours-long run, not after it
    source, output = Path(args.input), Path(args.output)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise DataError(f"--output {args.output} is the input file; choose another name")
    if args.engine == "ray":
        local_only = {"--resume": args.resume, "--workers": args.workers, "--top": args.top}
        given = [flag for flag, value in local_only.items() if value]
        if given:
            raise DataError(f"{', '.join(given)}: for the local engine, not --engine ray")
    if not (args.engine == "ray" and (args.output.endswith("/") or output.is_dir())):
        writable_format(output)
    models = list(args.model)
    if args.panel:
        from molpred.pretrained import available, model_path

        models = [str(model_path(n)) for n in available()] + models
    if not models:
        raise DataError("give one or more model files, or --panel admet for the bundled models")
    predictor = Predictor.from_files(
        models,
        confidence=args.confidence,
        domain=not args.no_domain,
        batch_size=args.batch_size,
        device=args.device,
        percentiles=args.percentiles or bool(args.panel),
    )
    top = _top_rows(args, predictor) if args.top else None
    # what to read and how, the same for both engines
    source = dict(
        smiles_column=args.smiles_column,
        molblock_column=args.molblock_column,
        chunk_size=args.chunk_size,
    )
    if args.engine == "ray":
        from molpred.distributed import predict_file_ray

        summary = predict_file_ray(
            predictor, args.input, args.output, actors=args.actors, address=args.address, **source
        )
        print(summary, file=sys.stderr)
        return 0
    summary = predict_file(
        predictor,
        args.input,
        args.output,
        workers=args.workers,
        resume=args.resume,
        progress=not args.quiet,
        top=top,
        **source,
    )
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
        raise DataError(
            f"--sort-by {args.sort_by!r} is not a predicted column: {schema.value_columns}"
        ) from None
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


def evaluate(args: argparse.Namespace) -> int:
    from molpred.artifact import load_model
    from molpred.evaluate import evaluate_model, plot_error_by_similarity

    model = load_model(args.model)
    report = evaluate_model(
        model, args.data, args.smiles_column, args.target_columns, confidence=args.confidence
    )
    print(f"{report['n_molecules']} molecules ({report['n_problems']} notes on input rows)")
    for key, value in report["metrics"].items():
        print(f"  {key:40s} {value:.4f}")
    for task, values in report["uncertainty"].items():
        print(f"uncertainty, {task}:")
        for key, value in values.items():
            print(f"  {key:40s} {value:.4f}")
        if values.get("mean_interval_width") == float("inf"):
            n = dict(zip(model.task_names, model.info.n_calibration, strict=False)).get(task, 0)
            print(
                f"  (at --confidence {args.confidence} the {n} calibration molecules cannot "
                "bound the interval: it is infinite; a lower confidence can be)"
            )
    if report.get("by_similarity"):
        import pandas as pd

        print("error by similarity to the training set:")
        print(pd.DataFrame(report["by_similarity"]).to_string(index=False, float_format="%.3f"))
        rule = f"similarity >= {report['domain_threshold']:.3f}"
        if model.domain is not None and model.domain.error_threshold is not None:
            rule += " and expected error not unusually high (relative to validation molecules)"
        print(f"in domain ({rule}): {report['in_domain']}")
        print(f"out of domain: {report['out_of_domain']}")
    if args.plot:
        print(f"plot written to {plot_error_by_similarity(report, args.plot)}")
    if args.output:
        _write_json(args.output, report)
    return 0
