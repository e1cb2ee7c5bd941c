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
from dataclasses import dataclass, field, replace
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
    default_workers,
    featurize_chunk,
    featurize_smiles,
    release_memory,
    worker_pool,
)
from molpred.io import TableWriter, atomic_path, iter_table, table_format
from molpred.train import resolve_device
from molpred.uncertainty import combine, member_outputs, prediction_set, regression_interval

__all__ = ["predict", "predict_file", "score_chunk", "score_features", "prediction_columns",
           "output_plan", "OutputPlan", "PredictSummary"]  # fmt: skip


@dataclass(frozen=True)
class OutputPlan:
    """The columns every model contributes and the trust options.

    ``tasks[m]`` are model ``m``'s task column names and ``prefixes[m]`` the prefix of its
    per-row domain columns (empty for a single model). ``standardizations[m]`` is how model
    ``m`` prepares structures: inputs are featurized once per distinct one (usually one).
    """

    tasks: list[list[str]]
    prefixes: list[str]
    confidence: float = 0.9
    domain: bool = True
    standardizations: list[str] = field(default_factory=lambda: ["none"])

    @property
    def modes(self) -> list[str]:
        """The distinct standardizations, in panel order."""
        return list(dict.fromkeys(self.standardizations))


def prediction_columns(
    models: Sequence[MolpredModel], names: Sequence[str] | None = None
) -> list[list[str]]:
    """Output column name of every task of every model.

    Task names are used as they are when they are unique across the models, else prefixed with
    the model's name (``<name>.<task>``).
    """
    names = _unique_names(models, names)
    tasks = [t for m in models for t in m.task_names]
    unique = len(tasks) == len(set(tasks))
    return [[t if unique else f"{n}.{t}" for t in m.task_names]
            for m, n in zip(models, names, strict=True)]  # fmt: skip


def _unique_names(models: Sequence[MolpredModel], names: Sequence[str] | None) -> list[str]:
    names = list(names) if names is not None else [f"model{i}" for i in range(len(models))]
    return [n if names.count(n) == 1 else f"{n}{i + 1}" for i, n in enumerate(names)]


def output_plan(
    models: Sequence[MolpredModel], names: Sequence[str] | None = None, *,
    confidence: float = 0.9, domain: bool = True,
) -> OutputPlan:  # fmt: skip
    """Column plan for scoring ``models`` together (see :class:`OutputPlan`)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    unique = _unique_names(models, names)
    prefixes = [""] if len(models) == 1 else [f"{n}." for n in unique]
    return OutputPlan(prediction_columns(models, names), prefixes, confidence, domain,
                      [m.standardization for m in models])  # fmt: skip


def featurize_for(
    plan: OutputPlan, items: Sequence[object], molblock: bool = False
) -> dict[str, Featurized]:
    """Featurize one chunk once per standardization the panel uses (in this process)."""
    feats = {mode: featurize_chunk(items, molblock=molblock, fingerprints=plan.domain,
                                   standardization=mode) for mode in plan.modes}  # fmt: skip
    release_memory()
    return feats


def combined_errors(feats: dict[str, Featurized]) -> list[str]:
    """Per row, the first reason any of the featurizations gave (``""`` if none failed)."""
    columns = [f.errors for f in feats.values()]
    return [next((e for e in row if e), "") for row in zip(*columns, strict=True)]


def score_features(
    models: Sequence[MolpredModel], plan: OutputPlan, feats: Featurized | dict[str, Featurized],
    errors: Sequence[str] | None = None, batch_size: int = 128, device: str = "cpu",
) -> pd.DataFrame:  # fmt: skip
    """Score molecules featurized once (per standardization) with every model of the panel.

    One row per molecule. Per task: value, ``_std``, conformal ``_lower``/``_upper``
    (regression) or ``_set`` (classification); per model: ``domain_similarity``,
    ``latent_distance``, ``in_domain``; then ``error`` (``errors``, default the featurization's
    reasons)."""
    by_mode = feats if isinstance(feats, dict) else {mode: feats for mode in plan.modes}
    errors = combined_errors(by_mode) if errors is None else errors
    dev = resolve_device(device)
    cols: dict[str, object] = {}
    for model, names, prefix, mode in zip(models, plan.tasks, plan.prefixes,
                                          plan.standardizations, strict=True):  # fmt: skip
        feats = by_mode[mode]
        failed = np.array([g is None for g in feats.graphs], dtype=bool)
        use_domain = plan.domain and model.domain is not None
        values, variances, emb, _ = member_outputs(model.members, feats, batch_size, dev,
                                                   embeddings=use_domain)  # fmt: skip
        mean, spread = combine(values, variances, model.task_types)
        for t, (name, kind) in enumerate(zip(names, model.task_types, strict=True)):
            cols[name] = mean[:, t]
            cols[f"{name}_std"] = spread[:, t]
            scores = model.conformal_scores(t)
            if kind == "regression":
                lo, hi = (regression_interval(mean[:, t], spread[:, t], scores, plan.confidence)
                          if scores else (np.full(len(mean), np.nan),) * 2)  # fmt: skip
                cols[f"{name}_lower"], cols[f"{name}_upper"] = lo, hi
            elif scores:
                cols[f"{name}_set"] = prediction_set(mean[:, t], scores, plan.confidence)
        if use_domain:
            sim = model.domain.similarity(feats.fingerprints)
            sim[failed] = np.nan
            cols[f"{prefix}domain_similarity"] = sim
            latent = np.full(len(sim), np.nan, dtype=np.float32)
            if emb is not None:
                latent = model.domain.latent(torch.from_numpy(np.nan_to_num(emb)))
                latent[failed] = np.nan
            cols[f"{prefix}latent_distance"] = latent
            in_domain = pd.array(sim >= model.domain.threshold, dtype="boolean")
            in_domain[failed] = pd.NA
            cols[f"{prefix}in_domain"] = in_domain
    cols["error"] = list(errors)
    return pd.DataFrame(cols)


def predict(
    models: MolpredModel | Sequence[MolpredModel],
    smiles: Sequence[object],
    *,
    model_names: Sequence[str] | None = None,
    batch_size: int = 128,
    workers: int | None = None,
    device: str = "cpu",
    confidence: float = 0.9,
    domain: bool = True,
) -> pd.DataFrame:
    """Score molecules with one model or a panel (featurized once); the CLI's file scoring and
    the web app call this same code.

    Returns
    -------
    pandas.DataFrame
        One row per input, in order: ``smiles`` (as given); per task its value (in the training
        data's units; calibrated probability for classification), ``<task>_std`` (predicted
        spread), conformal ``<task>_lower``/``<task>_upper`` bounds at ``confidence``
        (regression) or the prediction set ``<task>_set`` (classification); per model
        ``domain_similarity`` (max Tanimoto to the training set), ``latent_distance`` and
        ``in_domain`` when ``domain`` and the model carries its domain (prefixed
        ``<model name>.`` for a panel; task names too where they clash); and ``error`` (``""``
        when scored).
    """
    models = [models] if isinstance(models, MolpredModel) else list(models)
    smiles = list(smiles)
    plan = output_plan(models, model_names, confidence=confidence, domain=domain)
    feats = {mode: featurize_smiles(smiles, workers=workers, standardization=mode)
             for mode in plan.modes}  # fmt: skip
    frame = score_features(models, plan, feats, None, batch_size, device)
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
    batch_size: int = 128,
    workers: int | None = None,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    confidence: float = 0.9,
    domain: bool = True,
) -> PredictSummary:
    """Stream ``input_path`` through one or several models into ``output_path``.

    The output has the input columns, the columns of :func:`predict` for every model (task
    names prefixed with the model name where they clash, see :func:`prediction_columns`), and
    ``error``; its rows line up with the input's. Nothing is written to ``output_path`` until
    every row is done. ``workers``: featurization processes (default: all cores; ``1``
    featurizes in this process). ``domain=False`` skips the applicability-domain columns (and the
    fingerprints they need), which saves ~20% of the scoring time.

    Raises
    ------
    DataError
        Unreadable input, missing column, a ``resume`` that does not match the interrupted
        run, or no molecule could be scored (the output, with every row's reason, is still
        written in that last case).
    """
    start = time.perf_counter()
    workers = default_workers() if workers is None else workers
    models = [models] if isinstance(models, MolpredModel) else list(models)
    input_path, output_path = Path(input_path), Path(output_path)
    table_format(output_path)  # reject an unsupported output name before any work
    plan = output_plan(models, model_names, confidence=confidence, domain=domain)
    chunks = iter_table(input_path, chunk_size)
    first = next(chunks)
    col = _pick_column(list(first.columns), molblock_column, "molblock") if molblock_column \
        else _pick_column(list(first.columns), smiles_column, "SMILES")  # fmt: skip
    options = {"column": col, "molblock": molblock_column is not None, "chunk_size": chunk_size,
               "batch_size": batch_size, "columns": plan.tasks, "confidence": confidence,
               "domain": domain, "standardizations": plan.standardizations,
               "output": output_path.name}  # fmt: skip
    parts = _Parts(output_path, _identity(input_path, models, options), resume)
    needs_fps = domain and any(m.domain is not None for m in models)
    work = partial(featurize_for, replace(plan, domain=needs_fps),
                   molblock=molblock_column is not None)  # fmt: skip
    pool = worker_pool(workers) if workers > 1 else None
    # Featurization (~70% of the CPU per molecule) runs in the workers: with a worker per
    # core, this process scores on one thread instead of spinning threads against them.
    threads = torch.get_num_threads()
    if pool is not None:
        torch.set_num_threads(max(1, min(threads, default_workers() - workers)))
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
                out = _assemble(models, plan, df, feats, batch_size, device)
                counts = {"rows": len(df), "scored": int((out["error"] == "").sum())}
                parts.write(i, out, counts)
                del feats, out
                release_memory()
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
        torch.set_num_threads(threads)
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
    models: Sequence[MolpredModel], plan: OutputPlan, df: pd.DataFrame,
    feats: dict[str, Featurized], batch_size: int, device: str,
) -> pd.DataFrame:  # fmt: skip
    """Input columns (renamed ``input_<name>`` on a clash), prediction columns, ``error``."""
    errors = _merge_errors(df, combined_errors(feats))
    result = score_features(models, plan, feats, errors, batch_size, device)
    out = df.drop(columns=["error"], errors="ignore").reset_index(drop=True)
    out = out.rename(columns={c: f"input_{c}" for c in result.columns if c in out.columns})
    return pd.concat([out, result], axis=1)


def score_chunk(
    models: Sequence[MolpredModel], plan: OutputPlan, df: pd.DataFrame,
    column: str, molblock: bool = False, batch_size: int = 128, device: str = "cpu",
) -> pd.DataFrame:  # fmt: skip
    """Featurize and score one chunk of an input table in this process (the unit of work of
    the Ray engine); same output as a chunk of :func:`predict_file`."""
    feats = featurize_for(plan, df[column].tolist(), molblock=molblock)
    return _assemble(models, plan, df, feats, batch_size, device)


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def _merge_errors(df: pd.DataFrame, errors: Sequence[str]) -> list[str]:
    """A reader's error (broken SDF record) explains a row better than "empty SMILES"."""
    if "error" not in df.columns:
        return list(errors)
    return [r if r else e for r, e in zip(df["error"].astype(str), errors, strict=True)]
