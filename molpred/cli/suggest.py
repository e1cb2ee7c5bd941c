"""``molpred suggest``: the next batch to make and test, from scored candidates (the command
over :func:`molpred.suggest.suggest`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["suggest"]


def suggest(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from molpred.io import DataError, pick_column, read_table, writable_format
    from molpred.measured import measured_molecules
    from molpred.page.labels import preferred
    from molpred.predict import score_table
    from molpred.predictor import Predictor
    from molpred.ranking import parse_objective
    from molpred.screen import to_sdf
    from molpred.suggest import BatchOptions, expected_error
    from molpred.suggest import suggest as pick_batch

    sdf = args.output.lower().endswith(".sdf")
    if not sdf:
        writable_format(args.output)
    try:
        options = BatchOptions(
            n=args.n,
            strategy=args.strategy,
            beta=args.beta,
            explore=args.explore,
            cover=args.cover,
            max_per_scaffold=args.max_per_scaffold or None,
            max_similarity=args.max_similarity,
            seed=args.seed,
        )
        wanted = [parse_objective(text) for text in args.objective or []]
    except ValueError as exc:
        raise DataError(str(exc)) from None
    predictor = Predictor.from_files(args.model, confidence=args.confidence)
    objectives = _objectives(wanted, predictor, preferred(predictor))
    candidates = read_table(args.input, as_text=True)  # IDs stay as written ("0000016")
    column = pick_column(list(candidates.columns), args.smiles_column, "SMILES")
    table = score_table(predictor, candidates, column, args.workers)
    excluded = []
    for path in args.exclude or []:
        measured_table = read_table(path, as_text=True)
        try:  # the candidates' SMILES column name where the file has it, else found
            found = column if column in measured_table.columns else None
            pick_column(list(measured_table.columns), found, "SMILES")
        except DataError as exc:
            raise DataError(f"--exclude {path}: {exc}") from None
        excluded.append(measured_table)
    measured = measured_molecules(
        predictor,
        excluded,
        objectives,
        training=args.exclude_training,
        fill=options.strategy == "ei",
        smiles_column=column,
    )
    batch = pick_batch(table, objectives, options, measured=measured, smiles_column=column)
    if sdf:
        from molpred.io import atomic_path

        with atomic_path(args.output) as tmp:
            name = next((c for c in batch.columns if str(c).lower() in ("name", "id")), "name")
            tmp.write_bytes(to_sdf(batch, smiles_column=column, name_column=name))
    else:
        from molpred.io import TableWriter

        with TableWriter(args.output) as writer:
            writer.write(batch)
    failed = int((table["error"] != "").sum())
    print(
        f"{len(batch)} picked from {len(table)} candidates ({failed} could not be scored; "
        f"{batch.attrs['passed_over_as_measured']} ranked higher passed over as already "
        f"measured) -> {args.output}",
        file=sys.stderr,
    )
    if options.explore > 0 and not np.isfinite(expected_error(table, objectives)).any():
        print(
            "no pick went to teaching the model (--explore): that needs a ranked regression "
            "objective, whose expected error says where measuring teaches most",
            file=sys.stderr,
        )
    with pd.option_context("display.max_colwidth", 90, "display.expand_frame_repr", False):
        print(batch[["pick", column, "objective", "why"]].head(10).to_string(index=False))
    return 0


def _objectives(wanted: list, predictor, hints: dict[str, str]) -> list:
    """The objectives with their columns resolved (a task name is enough where it is
    unambiguous); without any, the bundled models' preferred directions."""
    from molpred.io import DataError
    from molpred.ranking import Objective

    schema = predictor.schema
    if not wanted:  # as the page: each model's tasks share a weight of 1
        share = {t.value: 1.0 / len(m.tasks) for m in schema.models for t in m.tasks}
        for column, hint in hints.items():
            direction, *bounds = hint.split()
            wanted.append(Objective(column, direction, share[column], *map(float, bounds)))
        if not wanted:
            raise DataError(
                "say what a good molecule is: --objective COLUMN=higher|lower|LOW..HIGH "
                f"(predicted columns: {', '.join(schema.value_columns)})"
            )
    resolved = []
    for o in wanted:
        try:
            column = schema.find(o.column).value
        except KeyError:
            raise DataError(
                f"--objective {o.column!r} is not a predicted column: {schema.value_columns}"
            ) from None
        resolved.append(Objective(column, o.direction, o.weight, o.low, o.high))
    return resolved
