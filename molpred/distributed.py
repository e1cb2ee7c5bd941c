"""Scoring on a Ray cluster (``molpred predict --engine ray``; ``pip install 'molpred[ray]'``).

The same featurization and scoring code as :func:`molpred.predict.predict_file` runs inside Ray
Data actors: the already-loaded :class:`~molpred.predictor.Predictor` travels once through Ray's
object store (no shared file system needed), and ``map_batches`` maps input blocks through its
:meth:`~molpred.predictor.Predictor.score_frame`.

- Output to a file (``scores.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``): rows come back to the
  driver in input order and are written by the same writer as the local engine: the same rows,
  columns and errors as a local run's, predictions equal to float32 rounding.
- Output to a directory (a path ending in ``/`` or an empty or new directory): every block is
  written by the cluster as its own Parquet shard, for outputs too large for one machine.

Inputs: CSV/TSV (optionally .gz) and Parquet, read as sharded Ray datasets the way the local
engine reads them: text cells as written (the same separator detection, decimal commas and
replacement of undecodable bytes), Parquet with its own types.

A molecule that crashes an actor (a segfault in native code, a worker killed for memory) is
retried on a fresh actor a bounded number of times (:data:`RESTARTS`), then the run fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa

from molpred.io import DataError

__all__ = ["predict_file_ray", "RESTARTS"]

RESTARTS = 2  # times an actor that died is replaced (and its batch retried) before the run fails


class _Scorer:
    """Ray Data actor: takes the predictor from the object store once, then scores batches."""

    def __init__(self, predictor_ref, column: str, molblock: bool, threads: int | None):
        import ray
        import torch

        if threads:  # Ray starts actors with OMP_NUM_THREADS=1
            torch.set_num_threads(threads)
        self.predictor = ray.get(predictor_ref)
        self.column, self.molblock = column, molblock

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        # Ray hands Parquet columns over Arrow-backed (pd.NA for a missing SMILES); the local
        # reader's plain pandas types come from Arrow's default conversion
        df = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata().to_pandas()
        return self.predictor.score_frame(df, self.column, molblock=self.molblock)


def _read(input_path: Path, ray_data):
    from molpred.io import CSV_OPTIONS, csv_separator, decimal_points, table_format

    fmt = table_format(input_path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        # a stored pandas index: Ray reads it as a last column, the local reader as the first
        # (an index that was a plain range is stored as metadata only, and Ray drops it)
        meta = pq.read_schema(input_path).pandas_metadata or {}
        ds = ray_data.read_parquet(str(input_path))
        index = [c for c in meta.get("index_columns", []) if c in ds.columns()]
        columns = index + [c for c in ds.columns() if c not in index]
        return (ds.select_columns(columns) if index else ds), columns
    if fmt not in ("csv", "tsv"):
        raise DataError(
            "--engine ray reads .csv, .tsv (optionally .gz) and .parquet; "
            f"convert {input_path.name} first"
        )
    from pyarrow import csv as pacsv

    delimiter = csv_separator(input_path) if fmt == "csv" else "\t"
    # the header as pandas names it ("Unnamed: 0", "x.1" for a repeated name), as locally
    columns = list(pd.read_csv(input_path, sep=delimiter, nrows=0, **CSV_OPTIONS).columns)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.binary() for c in columns},  # decoded below, as locally
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    ds = ray_data.read_csv(
        str(input_path),
        read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=convert,
    )

    def as_text(df: pd.DataFrame) -> pd.DataFrame:
        text = pd.DataFrame(
            {c: [bytes(v).decode("utf-8", errors="replace") for v in df[c]] for c in columns},
            index=df.index,
        )
        return decimal_points(text) if delimiter == ";" else text

    return ds.map_batches(as_text, batch_format="pandas"), columns


def predict_file_ray(
    predictor,
    input_path: str | Path,
    output_path: str | Path,
    *,
    smiles_column: str | None = None,
    molblock_column: str | None = None,
    chunk_size: int = 10_000,
    actors: int | None = None,
    address: str | None = None,
    threads: int | None = None,
):
    """Score ``input_path`` with ``predictor`` on a Ray cluster (``address``; default: start a
    local instance).

    Rows, their order, the input columns and the errors are identical to the local engine's;
    predictions agree to float32 rounding (a few rows in thousands differ in the last digit,
    because Ray may batch rows differently and matrix products then sum in another order).
    ``threads`` sets torch's threads per actor (Ray starts actors with one).

    Returns a :class:`molpred.predict.PredictSummary`.
    """
    try:
        import ray
        import ray.data
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise DataError("--engine ray needs Ray: pip install 'molpred[ray]'") from None
    from molpred.io import table_format
    from molpred.predict import PredictSummary

    start = time.perf_counter()
    input_path, out = Path(input_path), Path(output_path)
    to_directory = str(output_path).endswith("/") or out.is_dir()
    if to_directory and out.is_dir() and any(out.iterdir()):
        raise DataError(  # new shards beside old ones would be read back as one table
            f"{out} already holds files; give an empty or new directory"
        )
    if not to_directory:
        table_format(out)
    with _session(ray, address):
        rows, ok = _score(
            predictor,
            input_path,
            out,
            to_directory,
            smiles_column,
            molblock_column,
            chunk_size,
            actors,
            threads,
            ray,
        )
    summary = PredictSummary(rows, ok, rows - ok, time.perf_counter() - start)
    if rows and ok == 0:
        raise DataError(f"no valid molecules in {input_path.name}")
    return summary


@contextmanager
def _session(ray, address: str | None) -> Iterator[None]:
    """Ray connected (a local instance started, and stopped after, if none is), with the data
    settings scoring needs, given back after."""
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    ctx = ray.data.DataContext.get_current()
    settings = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = settings
        if started_here:
            ray.shutdown()


def _score(
    predictor, input_path, out, to_directory, smiles_column, molblock_column, chunk_size,
    actors, threads, ray,
) -> tuple[int, int]:  # fmt: skip
    """Rows read and rows scored; the output written."""
    from molpred.io import TableWriter, pick_column

    ds, columns = _read(input_path, ray.data)
    col = (
        pick_column(columns, molblock_column, "molblock")
        if molblock_column
        else pick_column(columns, smiles_column, "SMILES")
    )
    cpus = int(ray.cluster_resources().get("CPU", 0))
    # the read tasks need a CPU too: actors holding every CPU starve them, and nothing moves
    if cpus < 2 or (actors is not None and actors >= cpus):
        raise DataError(
            f"the Ray cluster has {cpus} CPU(s): scoring needs at least one more CPU than "
            "--actors (one is left for reading the input)"
        )
    n_actors = actors or cpus - 1
    scored = ds.map_batches(
        _Scorer,
        batch_format="pandas",
        batch_size=chunk_size,
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        fn_constructor_kwargs=dict(
            predictor_ref=ray.put(predictor),
            column=col,
            molblock=molblock_column is not None,
            threads=threads,
        ),
        # an actor that dies on a molecule is replaced, its batch retried, a bounded number
        # of times (Ray's default for actor pools is forever)
        max_restarts=RESTARTS,
        max_task_retries=RESTARTS,
    )
    rows = ok = 0
    if to_directory:
        scored = scored.materialize()
        rows = scored.count()
        ok = scored.filter(expr=ray.data.expressions.col("error") == "").count()
        scored.write_parquet(str(out))
        return rows, ok
    with TableWriter(out) as writer:
        for batch in scored.iter_batches(batch_size=chunk_size, batch_format="pandas"):
            # predictions are float32; the trip through Arrow widens them (exactly); the
            # input's own columns are left as they are
            wide = {
                c: "float32"
                for c in batch.columns
                if c not in columns and pd.api.types.is_float_dtype(batch[c].dtype)
            }
            writer.write(batch.astype(wide))
            rows += len(batch)
            ok += int((batch["error"] == "").sum())
        if rows == 0:  # a header-only input: the header, as locally
            empty = pd.DataFrame({c: pd.Series(dtype=str) for c in columns})
            writer.write(predictor.score_frame(empty, col, molblock=molblock_column is not None))
    return rows, ok
