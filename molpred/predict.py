"""The one scoring entry point, shared by the CLI, the Python API and the web app.

:func:`predict` scores a list of SMILES and returns one row per input, in input order, with an
``error`` column that is empty when scoring succeeded. :func:`predict_file` streams a file of any
size through the same code with one or several models:

- chunks are featurized once, in worker processes, a bounded number ahead of the models (memory
  does not grow with the file), while the models score the current chunk;
- each finished chunk is written atomically as its own part file next to the output, with a
  manifest naming the input, the models and the options. ``resume=True`` skips the parts already
  written, so a run killed at any point (even ``kill -9``) and restarted finishes with output
  byte-identical to an uninterrupted run;
- at the end the parts are joined, in order, into the output (CSV, gzip CSV, TSV or Parquet).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from molpred import __version__
from molpred.artifact import MolpredModel, weights_digest
from molpred.data import (
    DataError,
    Featurized,
    collate,
    featurize_chunk,
    featurize_smiles,
    worker_pool,
)
from molpred.io import TableWriter, atomic_path, iter_table, table_format
from molpred.train import resolve_device

__all__ = ["predict", "predict_file", "score_chunk", "score_featurized", "prediction_columns",
           "PredictSummary"]  # fmt: skip


@torch.no_grad()
def score_featurized(
    model: MolpredModel, feats: Featurized, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """Member predictions for featurized molecules: ``[N, T, M]`` (NaN for failed rows)."""
    dev = resolve_device(device)
    ok = np.flatnonzero([g is not None for g in feats.graphs])
    n_tasks, n_members = len(model.task_names), len(model.members)
    out = np.full((len(feats.graphs), n_tasks, n_members), np.nan, dtype=np.float32)
    for member in model.members:
        member.to(dev).eval()
    for start in range(0, len(ok), batch_size):
        idx = ok[start : start + batch_size]
        batch = collate([feats.graphs[i] for i in idx], feats.descriptors[idx]).to(dev)
        preds = [m.predict(batch).cpu().numpy() for m in model.members]
        out[idx] = np.stack(preds, axis=-1)
    return out


def prediction_columns(
    models: Sequence[MolpredModel], names: Sequence[str] | None = None
) -> list[list[str]]:
    """Output column name of every task of every model.

    Task names are used as they are when they are unique across the models, else prefixed with
    the model's name (``<name>.<task>``).
    """
    names = list(names) if names is not None else [f"model{i}" for i in range(len(models))]
    names = [n if names.count(n) == 1 else f"{n}{i + 1}" for i, n in enumerate(names)]
    tasks = [t for m in models for t in m.task_names]
    unique = len(tasks) == len(set(tasks))
    return [[t if unique else f"{n}.{t}" for t in m.task_names]
            for m, n in zip(models, names, strict=True)]  # fmt: skip


def _score_frame(
    models: Sequence[MolpredModel], columns: Sequence[Sequence[str]], feats: Featurized,
    errors: Sequence[str], batch_size: int, device: str,
) -> pd.DataFrame:  # fmt: skip
    cols: dict[str, np.ndarray | list[str]] = {}
    for model, names in zip(models, columns, strict=True):
        scores = score_featurized(model, feats, batch_size, device)
        mean = scores.mean(axis=-1)
        for t, name in enumerate(names):
            cols[name] = mean[:, t]
            if scores.shape[-1] > 1:
                cols[f"{name}_std"] = scores[:, t, :].std(axis=-1)
    cols["error"] = list(errors)
    return pd.DataFrame(cols)


def predict(
    model: MolpredModel,
    smiles: Sequence[object],
    *,
    batch_size: int = 512,
    workers: int | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """Score molecules.

    Returns
    -------
    pandas.DataFrame
        One row per input, in order: ``smiles`` (as given), one column per task (values in the
        training data's units; probabilities for classification), ``<task>_std`` across ensemble
        members when the model has several, and ``error`` (``""`` when scored).
    """
    smiles = list(smiles)
    feats = featurize_smiles(smiles, workers=workers)
    columns = prediction_columns([model])
    frame = _score_frame([model], columns, feats, feats.errors, batch_size, device)
    frame.insert(0, "smiles", smiles)
    return frame


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
        return (f"{self.rows} rows: {self.scored} scored, {self.failed} failed{resumed} "
                f"({self.seconds:.1f} s, {rate:.0f} molecules/s)")  # fmt: skip


def _pick_column(columns: Sequence[str], requested: str | None, what: str) -> str:
    if requested is not None:
        if requested not in columns:
            raise DataError(f"{what} column {requested!r} not found; available: "
                            f"{', '.join(map(str, columns))}")  # fmt: skip
        return requested
    for col in columns:
        if str(col).strip().lower() in ("smiles", "canonical_smiles", "smi"):
            return col
    raise DataError(f"no SMILES column found (looked for 'smiles'); pass --smiles-column. "
                    f"Available: {', '.join(map(str, columns))}")  # fmt: skip


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
                raise DataError("cannot --resume: the input file, models or options differ "
                                f"from the interrupted run (delete {self.dir} to start over)")
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

    def join(self, n_parts: int) -> None:
        """Concatenate the parts, in order, into the output (atomically), then remove them."""
        with atomic_path(self.output) as tmp:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                writer = None
                for i in range(n_parts):
                    table = pq.read_table(self.path(i))
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                if writer is not None:
                    writer.close()
            else:  # CSV/TSV bytes (and gzip members) concatenate
                with open(tmp, "wb") as out:
                    for i in range(n_parts):
                        with open(self.path(i), "rb") as part:
                            shutil.copyfileobj(part, out, 1 << 20)
        shutil.rmtree(self.dir)


def _identity(input_path: Path, models: Sequence[MolpredModel], options: dict) -> dict:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "models": [weights_digest([member.state_dict() for member in m.members]) for m in models],
        "molpred_version": __version__,
        **options,
    }


def predict_file(
    models: MolpredModel | Sequence[MolpredModel],
    input_path: str | Path,
    output_path: str | Path,
    *,
    model_names: Sequence[str] | None = None,
    smiles_column: str | None = None,
    molblock_column: str | None = None,
    chunk_size: int = 10_000,
    batch_size: int = 512,
    workers: int = 1,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
) -> PredictSummary:
    """Stream ``input_path`` through one or several models into ``output_path``.

    The output has the input columns, one column per task of every model (see
    :func:`prediction_columns`), ``<task>_std`` for ensembles, and ``error``; its rows line up
    with the input's. Nothing is written to ``output_path`` until every row is done.

    Raises
    ------
    DataError
        Unreadable input, missing column, a ``resume`` that does not match the interrupted
        run, or no molecule could be scored (the output, with every row's reason, is still
        written in that last case).
    """
    start = time.perf_counter()
    models = [models] if isinstance(models, MolpredModel) else list(models)
    input_path, output_path = Path(input_path), Path(output_path)
    table_format(output_path)  # reject an unsupported output name before any work
    columns = prediction_columns(models, model_names)
    chunks = iter_table(input_path, chunk_size)
    first = next(chunks)
    col = _pick_column(list(first.columns), molblock_column, "molblock") if molblock_column \
        else _pick_column(list(first.columns), smiles_column, "SMILES")  # fmt: skip
    options = {"column": col, "molblock": molblock_column is not None, "chunk_size": chunk_size,
               "batch_size": batch_size, "columns": columns,
               "output": output_path.name}  # fmt: skip
    parts = _Parts(output_path, _identity(input_path, models, options), resume)
    work = partial(featurize_chunk, molblock=molblock_column is not None)
    pool = worker_pool(workers) if workers > 1 else None
    pending: deque = deque()
    totals = {"rows": 0, "scored": 0, "resumed": 0}
    bar = tqdm(desc="predict", unit="mol", disable=not progress, dynamic_ncols=True, smoothing=0.1)

    def submit(i: int, df: pd.DataFrame) -> None:
        counts = parts.done(i)
        if counts is not None:  # finished by an earlier run
            job = None
        else:
            items = df[col].tolist()
            job = pool.apply_async(work, (items,)) if pool else items
        pending.append((i, df, job, counts))

    n_parts = 0
    try:
        source: Iterator[tuple[int, pd.DataFrame]] = enumerate(_chain(first, chunks))
        for i, df in source:  # keep up to 2 chunks per worker in flight, never more
            submit(i, df)
            if len(pending) >= 2 * max(1, workers):
                break
        while pending:
            i, df, job, counts = pending.popleft()
            nxt = next(source, None)
            if counts is None:
                feats = job.get() if pool else work(job)
                if nxt is not None:
                    submit(*nxt)
                out = _assemble(models, columns, df, feats, batch_size, device)
                counts = {"rows": len(df), "scored": int((out["error"] == "").sum())}
                parts.write(i, out, counts)
            else:
                if nxt is not None:
                    submit(*nxt)
                totals["resumed"] += counts["rows"]
            totals["rows"] += counts["rows"]
            totals["scored"] += counts["scored"]
            n_parts = i + 1
            bar.update(counts["rows"])
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    parts.join(n_parts)
    rows, scored = totals["rows"], totals["scored"]
    summary = PredictSummary(rows, scored, rows - scored, time.perf_counter() - start,
                             totals["resumed"])  # fmt: skip
    if rows and scored == 0:
        raise DataError(f"no valid molecules in {input_path.name} (output written with "
                        "the reason for every row)")  # fmt: skip
    return summary


def _assemble(
    models: Sequence[MolpredModel], columns: Sequence[Sequence[str]], df: pd.DataFrame,
    feats: Featurized, batch_size: int, device: str,
) -> pd.DataFrame:  # fmt: skip
    """Input columns (renamed ``input_<name>`` on a clash), prediction columns, ``error``."""
    result = _score_frame(models, columns, feats, _merge_errors(df, feats.errors), batch_size,
                          device)  # fmt: skip
    out = df.drop(columns=["error"], errors="ignore").reset_index(drop=True)
    out = out.rename(columns={c: f"input_{c}" for c in result.columns if c in out.columns})
    return pd.concat([out, result], axis=1)


def score_chunk(
    models: Sequence[MolpredModel], columns: Sequence[Sequence[str]], df: pd.DataFrame,
    column: str, molblock: bool = False, batch_size: int = 512, device: str = "cpu",
) -> pd.DataFrame:  # fmt: skip
    """Featurize and score one chunk of an input table in this process (the unit of work of
    the Ray engine); same output as a chunk of :func:`predict_file`."""
    feats = featurize_chunk(df[column].tolist(), molblock=molblock)
    return _assemble(models, columns, df, feats, batch_size, device)


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def _merge_errors(df: pd.DataFrame, errors: Sequence[str]) -> list[str]:
    """A reader's error (broken SDF record) explains a row better than "empty SMILES"."""
    if "error" not in df.columns:
        return list(errors)
    return [r if r else e for r, e in zip(df["error"].astype(str), errors, strict=True)]
