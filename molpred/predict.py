"""Scoring a list of SMILES or a file of any size, through :class:`~molpred.predictor.Predictor`.

:func:`predict` scores a list and returns one row per input, in input order, with an ``error``
column that is empty when scoring succeeded. :func:`predict_file` streams a file through the
same code with one or several models:

- chunks are featurized in worker processes, a bounded number ahead of the models (memory
  does not grow with the file), while the models score the current chunk;
- each finished chunk is written atomically as its own part file next to the output, with a
  manifest naming the input, the models and the options. ``resume=True`` skips the parts already
  written, so a run killed at any point (even ``kill -9``) and restarted finishes with output
  byte-identical to an uninterrupted run;
- at the end the parts are joined, in order, into the output (CSV, gzip CSV, TSV or Parquet);
- ``top`` keeps the best rows by one prediction while streaming.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from molpred._version import __version__
from molpred.artifact import MolpredModel
from molpred.features import PARALLEL_THRESHOLD
from molpred.io import (
    DataError,
    TableWriter,
    atomic_path,
    iter_table,
    pick_column,
    table_format,
    writable_format,
)
from molpred.models import message_dtype, resolve_device
from molpred.parallel import default_workers, scoring_threads
from molpred.predictor import Predictor
from molpred.schema import ERROR

_LIST_CHUNK = 1000  # molecules per chunk when a list is featurized in worker processes

__all__ = ["predict", "score_table", "predict_file", "PredictSummary", "TopRows"]


def predict(
    models: MolpredModel | Sequence[MolpredModel] | Predictor,
    smiles: Sequence[object],
    *,
    model_names: Sequence[str] | None = None,
    batch_size: int = 128,
    workers: int | None = None,
    device: str = "cpu",
    confidence: float = 0.9,
    domain: bool = True,
) -> pd.DataFrame:
    """Score molecules with one model or a panel (featurized once per standardization).

    ``smiles``: a sequence of molecules, or one SMILES string (one row). ``workers``:
    featurization processes (default: all cores from a few thousand molecules
    on, else this process).

    Returns
    -------
    pandas.DataFrame
        One row per input, in order: ``smiles`` (as given), then the columns of
        :mod:`molpred.schema`: per task its value (in the training data's units; calibrated
        probability for classification), ``<task>_std`` (predicted spread), conformal
        ``<task>_lower``/``<task>_upper`` bounds at ``confidence`` (regression) or the
        prediction set ``<task>_set`` (classification); per model ``domain_similarity`` (max
        Tanimoto to the training set), ``latent_distance`` and ``in_domain`` when ``domain``
        and the model carries its domain (prefixed ``<model name>.`` for a panel; task names
        too where they clash); and ``error`` (``""`` when scored).
    """
    predictor = Predictor.of(
        models,
        model_names,
        confidence=confidence,
        domain=domain,
        batch_size=batch_size,
        device=device,
    )
    if isinstance(smiles, str):  # one molecule, not one per character
        smiles = [smiles]
    return score_table(predictor, pd.DataFrame({"smiles": list(smiles)}), "smiles", workers)


def score_table(
    predictor: Predictor, frame: pd.DataFrame, column: str, workers: int | None = None
) -> pd.DataFrame:
    """``frame`` (kept whole, one row per row) with the panel's columns added: the in-memory
    path of :func:`predict` and ``molpred suggest``. ``workers`` as in :func:`predict`."""
    frame = frame.reset_index(drop=True)
    workers = workers or (default_workers() if len(frame) >= PARALLEL_THRESHOLD else 1)
    if workers <= 1:
        return predictor.score_frame(frame, column)
    chunks = (frame.iloc[i : i + _LIST_CHUNK] for i in range(0, len(frame), _LIST_CHUNK))
    with scoring_threads(workers):
        parts = [out for _, _, out in predictor.stream(chunks, column, workers=workers)]
    return pd.concat(parts, ignore_index=True)


@dataclass
class PredictSummary:
    rows: int
    scored: int
    failed: int
    seconds: float
    resumed_rows: int = 0

    def __str__(self) -> str:
        fresh = self.rows - self.resumed_rows
        rate = fresh / self.seconds if self.seconds > 0 else float("nan")
        resumed = f", {self.resumed_rows} from an earlier run" if self.resumed_rows else ""
        return (
            f"{self.rows} rows: {self.scored} scored, {self.failed} failed{resumed} "
            f"({self.seconds:.1f} s, {rate:.0f} molecules/s)"
        )


@dataclass
class TopRows:
    """The ``n`` best scored rows by one prediction column, kept while streaming."""

    n: int
    column: str
    ascending: bool = False
    rows: pd.DataFrame | None = field(default=None, repr=False)

    def add(self, chunk: pd.DataFrame) -> None:
        scored = chunk[chunk[ERROR] == ""]
        both = scored if self.rows is None else pd.concat([self.rows, scored], ignore_index=True)
        order = both[self.column].astype(float)
        keep = order.sort_values(ascending=self.ascending, kind="stable").index[: self.n]
        self.rows = both.loc[keep].reset_index(drop=True)


class _Parts:
    """Per-chunk part files of one output, with the manifest that makes them resumable."""

    def __init__(self, output: Path, identity: dict, resume: bool):
        self.output = output
        self.dir = output.with_name(f".{output.name}.parts")
        self.fmt = table_format(output)
        self.gz = output.name.lower().endswith(".gz")
        manifest = self.dir / "manifest.json"
        if resume and manifest.exists():
            if json.loads(manifest.read_text()) != identity:
                raise DataError(
                    "cannot --resume: the input file, models or options differ "
                    f"from the interrupted run (delete {self.dir} to start over)"
                )
        else:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            with atomic_path(manifest) as tmp:
                tmp.write_text(json.dumps(identity))

    def path(self, i: int) -> Path:
        return self.dir / f"part-{i:08d}.{self.fmt}{'.gz' if self.gz else ''}"

    def _counts(self, i: int) -> Path:
        return self.dir / f"part-{i:08d}.json"

    def done(self, i: int) -> dict | None:
        """Row counts of a finished part, or None if part ``i`` still has to be computed."""
        if self.path(i).exists() and self._counts(i).exists():
            return json.loads(self._counts(i).read_text())
        return None

    def write(self, i: int, df: pd.DataFrame, counts: dict) -> None:
        """Counts first, then the part: a part file only exists once complete (both atomic)."""
        with atomic_path(self._counts(i)) as tmp:
            tmp.write_text(json.dumps(counts))
        with TableWriter(self.path(i), header=(i == 0)) as writer:
            writer.write(df)

    def read(self, i: int) -> pd.DataFrame:
        """A finished part's rows, every cell as text (for ``top`` on a resumed run)."""
        if self.fmt == "parquet":
            return pd.read_parquet(self.path(i)).astype(str).replace("nan", "")
        sep = "," if self.fmt == "csv" else "\t"
        opts = dict(sep=sep, dtype=str, keep_default_na=False)
        names = list(pd.read_csv(self.path(0), nrows=0, **opts).columns)
        return pd.read_csv(self.path(i), header=0 if i == 0 else None, names=names, **opts)

    def join(self, n_parts: int) -> None:
        """Concatenate the parts, in order, into the output (atomically), then remove them."""
        with atomic_path(self.output) as tmp:
            if self.fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                # one schema for all parts: a column empty in one part (type null) takes
                # the type the others give it
                schemas = [pq.read_schema(self.path(i)) for i in range(n_parts)]
                if schemas:
                    schema = pa.unify_schemas(schemas, promote_options="permissive")
                    with pq.ParquetWriter(tmp, schema.remove_metadata()) as writer:
                        for i in range(n_parts):
                            writer.write_table(pq.read_table(self.path(i)).cast(writer.schema))
            else:  # CSV/TSV bytes (and gzip members) concatenate
                with open(tmp, "wb") as out:
                    for i in range(n_parts):
                        with open(self.path(i), "rb") as part:
                            shutil.copyfileobj(part, out, 1 << 20)
        shutil.rmtree(self.dir)


def _identity(input_path: Path, predictor: Predictor, options: dict) -> dict:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "models": [m.weights_sha256() for m in predictor.models],
        "molpred_version": __version__,
        **options,
    }


def predict_file(
    models: MolpredModel | Sequence[MolpredModel] | Predictor,
    input_path: str | Path,
    output_path: str | Path,
    *,
    model_names: Sequence[str] | None = None,
    smiles_column: str | None = None,
    molblock_column: str | None = None,
    chunk_size: int = 10_000,
    batch_size: int = 128,
    workers: int | None = None,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    confidence: float = 0.9,
    domain: bool = True,
    top: TopRows | None = None,
) -> PredictSummary:
    """Stream ``input_path`` through one or several models into ``output_path``.

    The output has the input columns (renamed ``input_<name>`` where they clash with molpred's),
    the columns of :func:`predict` for every model, and ``error``; its rows line up with the
    input's. Nothing is written to ``output_path`` until every row is done. ``workers``:
    featurization processes (default: all cores; ``1`` featurizes in this process).
    ``domain=False`` leaves out the applicability-domain columns; for models from before the
    error model it also skips the fingerprints they need (~20% of the scoring time), while a
    model with an error model still needs them for its expected error. ``top`` collects the
    best rows as they stream (rows of a resumed run's finished parts included).

    Raises
    ------
    DataError
        Unreadable input, missing column, a ``resume`` that does not match the interrupted
        run, or no molecule could be scored (the output, with every row's reason, is still
        written in that last case).
    """
    start = time.perf_counter()
    workers = default_workers() if workers is None else workers
    predictor = Predictor.of(
        models,
        model_names,
        confidence=confidence,
        domain=domain,
        batch_size=batch_size,
        device=device,
    )
    input_path, output_path = Path(input_path), Path(output_path)
    writable_format(output_path)  # reject an unsupported output name before any work
    chunks = iter_table(input_path, chunk_size)
    first = next(chunks)
    col = (
        pick_column(list(first.columns), molblock_column, "molblock")
        if molblock_column
        else pick_column(list(first.columns), smiles_column, "SMILES")
    )
    options = {
        "column": col,
        "molblock": molblock_column is not None,
        "chunk_size": chunk_size,
        "batch_size": predictor.batch_size,
        "columns": [[t.value for t in m.tasks] for m in predictor.schema.models],
        "output_columns": predictor.schema.columns(),  # percentiles, domain, ...: all of them
        "confidence": predictor.confidence,
        "domain": predictor.domain,
        "standardizations": predictor.standardizations,
        # parts written in another precision would not be the run's numbers
        "precision": str(message_dtype(resolve_device(device))),
        "output": output_path.name,
    }
    parts = _Parts(output_path, _identity(input_path, predictor, options), resume)
    totals = {"rows": 0, "scored": 0, "resumed": 0}
    bar = tqdm(desc="predict", unit="mol", disable=not progress, dynamic_ncols=True, smoothing=0.1)
    n_parts = 0
    try:
        with scoring_threads(workers):
            stream = predictor.stream(
                _chain(first, chunks),
                col,
                molblock=molblock_column is not None,
                workers=workers,
                skip=lambda i: parts.done(i) is not None,
            )
            for i, _, scored in stream:
                if scored is None:  # finished by an earlier run
                    counts = parts.done(i)
                    totals["resumed"] += counts["rows"]
                    if top is not None:
                        top.add(parts.read(i))
                else:
                    counts = {"rows": len(scored), "scored": int((scored[ERROR] == "").sum())}
                    parts.write(i, scored, counts)
                    if top is not None:
                        top.add(scored)
                totals["rows"] += counts["rows"]
                totals["scored"] += counts["scored"]
                n_parts = i + 1
                bar.update(counts["rows"])
    finally:
        bar.close()
    parts.join(n_parts)
    rows, scored = totals["rows"], totals["scored"]
    summary = PredictSummary(
        rows, scored, rows - scored, time.perf_counter() - start, totals["resumed"]
    )
    if rows and scored == 0:
        raise DataError(
            f"no valid molecules in {input_path.name} (output written with "
            "the reason for every row)"
        )
    return summary


def _chain(first: pd.DataFrame, rest):
    """The input's chunks, each with the first's columns in its order: the parts are written
    with one header, so a chunk with other columns would put cells under the wrong names."""
    yield first
    for i, chunk in enumerate(rest, start=1):
        if list(chunk.columns) != list(first.columns):
            raise DataError(
                f"chunk {i} of the input has other columns than the first "
                f"({list(chunk.columns)} against {list(first.columns)})"
            )
        yield chunk
