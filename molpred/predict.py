"""The one scoring entry point, shared by the CLI, the Python API and the web app.

:func:`predict` scores a list of SMILES and returns one row per input, in input order, with an
``error`` column that is empty when scoring succeeded. :func:`predict_file` streams a file of any
size through the same code: chunks are featurized in worker processes (a bounded number ahead of
the model, so memory does not grow with the file) while the model scores the current chunk.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from molpred.artifact import MolpredModel
from molpred.data import DataError, Featurized, _featurize_chunk, _pool, collate, featurize_smiles
from molpred.io import TableWriter, iter_table, table_format
from molpred.train import resolve_device

__all__ = ["predict", "predict_file", "score_featurized", "PredictSummary"]


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


def _columns(model: MolpredModel, scores: np.ndarray, errors: Sequence[str]) -> pd.DataFrame:
    cols: dict[str, np.ndarray | list[str]] = {}
    mean = scores.mean(axis=-1)
    for t, name in enumerate(model.task_names):
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
    frame = _columns(model, score_featurized(model, feats, batch_size, device), feats.errors)
    frame.insert(0, "smiles", smiles)
    return frame


@dataclass
class PredictSummary:
    rows: int
    scored: int
    failed: int
    seconds: float

    def __str__(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else float("nan")
        return (f"{self.rows} rows: {self.scored} scored, {self.failed} failed "
                f"({self.seconds:.1f} s, {rate:.0f} molecules/s)")  # fmt: skip


def _pick_smiles_column(columns: Sequence[str], requested: str | None) -> str:
    if requested is not None:
        if requested not in columns:
            raise DataError(f"SMILES column {requested!r} not found; available: "
                            f"{', '.join(map(str, columns))}")  # fmt: skip
        return requested
    for col in columns:
        if str(col).strip().lower() in ("smiles", "canonical_smiles", "smi"):
            return col
    raise DataError(f"no SMILES column found (looked for 'smiles'); pass --smiles-column. "
                    f"Available: {', '.join(map(str, columns))}")  # fmt: skip


def predict_file(
    model: MolpredModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    smiles_column: str | None = None,
    chunk_size: int = 10_000,
    batch_size: int = 512,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = True,
) -> PredictSummary:
    """Stream ``input_path`` through the model into ``output_path`` (CSV/TSV/Parquet by suffix).

    The output has the input columns, one column per task, and ``error``; its rows line up with
    the input's. It is written atomically: an interrupted run leaves no partial output.

    Raises
    ------
    DataError
        Unreadable input, missing SMILES column, or no molecule could be scored (the output,
        with every row's reason, is still written in that last case).
    """
    start = time.perf_counter()
    table_format(output_path)  # reject an unsupported output name before any work
    chunks = iter_table(input_path, chunk_size)
    first = next(chunks)
    col = _pick_smiles_column(list(first.columns), smiles_column)
    n_rows = scored = 0
    bar = tqdm(desc="predict", unit="mol", disable=not progress, dynamic_ncols=True, smoothing=0.1)
    pool = _pool(workers) if workers > 1 else None
    pending: deque = deque()

    def submit(df: pd.DataFrame) -> None:
        job = (df[col].tolist(), False)
        pending.append((df, pool.apply_async(_featurize_chunk, (job,)) if pool else job))

    try:
        with TableWriter(output_path) as writer:
            source = _chain(first, chunks)
            for df in source:  # keep up to 2 chunks per worker in flight, never more
                submit(df)
                if len(pending) >= 2 * max(1, workers):
                    break
            while pending:
                df, job = pending.popleft()
                feats = job.get() if pool else _featurize_chunk(job)
                nxt = next(source, None)
                if nxt is not None:
                    submit(nxt)
                result = _columns(model, score_featurized(model, feats, batch_size, device),
                                  _merge_errors(df, feats.errors))  # fmt: skip
                out = df.drop(columns=["error"], errors="ignore").reset_index(drop=True)
                clash = [c for c in result.columns if c in out.columns]
                out = out.rename(columns={c: f"input_{c}" for c in clash})
                out = pd.concat([out, result], axis=1)
                writer.write(out)
                n_rows += len(df)
                scored += int((result["error"] == "").sum())
                bar.update(len(df))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    summary = PredictSummary(n_rows, scored, n_rows - scored, time.perf_counter() - start)
    if n_rows and scored == 0:
        raise DataError(f"no valid molecules in {Path(input_path).name} (output written with "
                        "the reason for every row)")  # fmt: skip
    return summary


def _chain(first: pd.DataFrame, rest):
    yield first
    yield from rest


def _merge_errors(df: pd.DataFrame, errors: Sequence[str]) -> list[str]:
    """A reader's error (broken SDF record) explains a row better than "empty SMILES"."""
    if "error" not in df.columns:
        return list(errors)
    return [r if r else e for r, e in zip(df["error"].astype(str), errors, strict=True)]
