"""Scoring on a Ray cluster (``molpred predict --engine ray``; ``pip install 'molpred[ray]'``).

The same featurization and scoring code as :func:`molpred.predict.predict_file` runs inside Ray
Data actors: the model files travel once through Ray's object store (no shared file system
needed), each actor loads them once, and ``map_batches`` maps input blocks through them.

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
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from molpred.data import DataError

__all__ = ["predict_file_ray"]


class _Scorer:
    """Ray Data actor: loads the models once, then scores pandas batches."""

    def __init__(self, model_refs, names: Sequence[str], column: str, molblock: bool,
                 batch_size: int, device: str, threads: int | None, confidence: float,
                 domain: bool):  # fmt: skip
        import ray
        import torch

        if threads:  # Ray starts actors with OMP_NUM_THREADS=1
            torch.set_num_threads(threads)
        from molpred.artifact import load_model
        from molpred.predict import output_plan

        self.models = [load_model(ray.get(ref)) for ref in model_refs]
        self.plan = output_plan(self.models, names, confidence=confidence, domain=domain)
        self.column, self.molblock = column, molblock
        self.batch_size, self.device = batch_size, device

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        from molpred.predict import score_chunk

        return score_chunk(self.models, self.plan, df, self.column, self.molblock,
                           self.batch_size, self.device)  # fmt: skip


def _read(input_path: Path, ray_data):
    from molpred.io import table_format

    fmt = table_format(input_path)
    if fmt == "parquet":
        ds = ray_data.read_parquet(str(input_path))
        return ds.map_batches(lambda df: df.astype(str), batch_format="pandas"), ds.columns()
    if fmt not in ("csv", "tsv"):
        raise DataError("--engine ray reads .csv, .tsv (optionally .gz) and .parquet; "
                        f"convert {input_path.name} first")  # fmt: skip
    import pyarrow as pa
    from pyarrow import csv as pacsv

    delimiter = "," if fmt == "csv" else "\t"
    columns = list(pd.read_csv(input_path, sep=delimiter, nrows=0, encoding="utf-8-sig").columns)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                   strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)  # fmt: skip
    ds = ray_data.read_csv(str(input_path), parse_options=pacsv.ParseOptions(delimiter=delimiter),
                           convert_options=convert)  # fmt: skip
    return ds, columns


def predict_file_ray(
    model_paths: Sequence[str | Path],
    input_path: str | Path,
    output_path: str | Path,
    *,
    model_names: Sequence[str] | None = None,
    smiles_column: str | None = None,
    molblock_column: str | None = None,
    chunk_size: int = 10_000,
    batch_size: int = 128,
    actors: int | None = None,
    device: str = "cpu",
    address: str | None = None,
    threads: int | None = None,
    confidence: float = 0.9,
    domain: bool = True,
):
    """Score ``input_path`` on a Ray cluster (``address``; default: start a local instance).

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
    from molpred.artifact import load_model
    from molpred.io import TableWriter, table_format
    from molpred.predict import PredictSummary, _pick_column

    start = time.perf_counter()
    input_path, out = Path(input_path), Path(output_path)
    to_directory = str(output_path).endswith("/") or out.is_dir()
    if not to_directory:
        table_format(out)
    blobs = [Path(p).read_bytes() for p in model_paths]
    for blob in blobs:  # fail early, in the driver, on a bad model file
        load_model(blob)
    names = list(model_names or [Path(p).name.split(".")[0] for p in model_paths])
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ds, columns = _read(input_path, ray.data)
    col = _pick_column(columns, molblock_column, "molblock") if molblock_column \
        else _pick_column(columns, smiles_column, "SMILES")  # fmt: skip
    refs = [ray.put(blob) for blob in blobs]
    # leave one CPU for the read tasks: actors holding every CPU would starve them
    n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
    scored = ds.map_batches(
        _Scorer, batch_format="pandas", batch_size=chunk_size,
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        fn_constructor_kwargs=dict(model_refs=refs, names=names, column=col,
                                   molblock=molblock_column is not None,
                                   batch_size=batch_size, device=device, threads=threads,
                                   confidence=confidence, domain=domain),
    )  # fmt: skip
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
                wide = {c: "float32" for c in batch.columns
                        if pd.api.types.is_float_dtype(batch[c].dtype)}  # fmt: skip
                writer.write(batch.astype(wide))
                rows += len(batch)
                ok += int((batch["error"] == "").sum())
    summary = PredictSummary(rows, ok, rows - ok, time.perf_counter() - start)
    if rows and ok == 0:
        raise DataError(f"no valid molecules in {input_path.name}")
    return summary
