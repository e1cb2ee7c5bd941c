"""Scoring on a Ray cluster (``molpred predict --engine ray``; ``pip install 'molpred[ray]'``).

The same featurization and scoring code as :func:`molpred.predict.predict_file` runs inside Ray
Data actors: the already-loaded :class:`~molpred.predictor.Predictor` travels once through Ray's
object store (no shared file system needed), and ``map_batches`` maps input blocks through its
:meth:`~molpred.predictor.Predictor.score_frame`.

- Output to a file (``scores.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``): rows come back to the
  driver in input order and are written by the same writer as the local engine, so the file is
  identical to a local run's.
- Output to a directory (a path ending in ``/`` or an existing directory): every block is
  written by the cluster as its own Parquet shard, for outputs too large for one machine.

Inputs: CSV/TSV (optionally .gz) and Parquet, read as sharded Ray datasets with every cell as
text, as the local engine reads them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from molpred.io import DataError

__all__ = ["predict_file_ray"]


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
        return self.predictor.score_frame(df, self.column, molblock=self.molblock)


def _read(input_path: Path, ray_data):
    from molpred.io import table_format

    fmt = table_format(input_path)
    if fmt == "parquet":
        ds = ray_data.read_parquet(str(input_path))
        return ds.map_batches(lambda df: df.astype(str), batch_format="pandas"), ds.columns()
    if fmt not in ("csv", "tsv"):
        raise DataError(
            "--engine ray reads .csv, .tsv (optionally .gz) and .parquet; "
            f"convert {input_path.name} first"
        )
    import pyarrow as pa
    from pyarrow import csv as pacsv

    delimiter = "," if fmt == "csv" else "\t"
    columns = list(pd.read_csv(input_path, sep=delimiter, nrows=0, encoding="utf-8-sig").columns)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    ds = ray_data.read_csv(
        str(input_path),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=convert,
    )
    return ds, columns


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
    from molpred.io import TableWriter, pick_column, table_format
    from molpred.predict import PredictSummary

    start = time.perf_counter()
    input_path, out = Path(input_path), Path(output_path)
    to_directory = str(output_path).endswith("/") or out.is_dir()
    if not to_directory:
        table_format(out)
    if not ray.is_initialized():
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ds, columns = _read(input_path, ray.data)
    col = (
        pick_column(columns, molblock_column, "molblock")
        if molblock_column
        else pick_column(columns, smiles_column, "SMILES")
    )
    # leave one CPU for the read tasks: actors holding every CPU would starve them
    n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
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
    )
    rows = ok = 0
    if to_directory:
        scored = scored.materialize()
        rows = scored.count()
        ok = scored.filter(expr=ray.data.expressions.col("error") == "").count()
        scored.write_parquet(str(out))
    else:
        with TableWriter(out) as writer:
            for batch in scored.iter_batches(batch_size=chunk_size, batch_format="pandas"):
                # predictions are float32; the trip through Arrow widens them (exactly)
                wide = {
                    c: "float32"
                    for c in batch.columns
                    if pd.api.types.is_float_dtype(batch[c].dtype)
                }
                writer.write(batch.astype(wide))
                rows += len(batch)
                ok += int((batch["error"] == "").sum())
    summary = PredictSummary(rows, ok, rows - ok, time.perf_counter() - start)
    if rows and ok == 0:
        raise DataError(f"no valid molecules in {input_path.name}")
    return summary
