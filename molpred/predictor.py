"""The one scoring path: a :class:`Predictor` owns a panel of loaded models, how each prepares
structures, and the output schema; it scores chunks of an input table.

A chunk is scored in two steps:

1. :class:`molpred.chunks.ChunkFeaturizer` (picklable, no models): parse, standardize and
   featurize the chunk once per standardization the panel uses, plus any per-molecule work of
   a :class:`molpred.chunks.ChunkHook` on the same molecules;
2. :meth:`Predictor.scored`: every model scores the featurized molecules: the prediction and
   trust columns of :mod:`molpred.schema`, the hook's columns, and ``error``;
   :meth:`Predictor.join` puts the chunk's input columns beside them.

:meth:`Predictor.stream` runs both over a stream of chunks, in this process or in a process
pool (:func:`molpred.parallel.map_ordered`). With fork (Linux) and the CPU, each worker does
both steps with the panel it inherited at fork, so the models never travel and every core
scores. With fork and a GPU (which a forked child cannot use), the workers featurize and run
the members' trees (:func:`molpred.trees.tree_outputs`), and this process runs the networks:
the trees are the largest per-molecule cost besides the network, and on one scoring process's
core they bounded GPU scoring (``benchmarks/RESULTS.md``, "GPU"). With spawn the workers
featurize and this process does the rest. Ray actors run :meth:`Predictor.score_frame`.
:func:`molpred.predict.predict`, :func:`molpred.predict.predict_file`, the Ray engine and the
page's :func:`molpred.screen.screen` are thin callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from molpred.artifact import MolpredModel, load_model
from molpred.chunks import (
    FORK,
    FORKED,
    STREAMS,
    ChunkFeaturizer,
    ChunkHook,
    ChunkScorer,
    ChunkTrees,
    Prepared,
)
from molpred.io import READ_ERROR
from molpred.models import member_outputs, resolve_device
from molpred.parallel import default_workers, map_ordered, release_memory, torch_section
from molpred.pretrained.approved import has_reference, percentile
from molpred.pretrained.endpoints import value_bounds
from molpred.schema import ERROR, ModelColumns, OutputSchema, input_names
from molpred.trust.columns import (
    Placement,
    bounded,
    held_inside,
    interval_columns,
    prediction_columns,
)
from molpred.trust.error_model import error_features, relative_error
from molpred.trust.uncertainty import combine

__all__ = ["Predictor"]


class Predictor:
    """A panel of models ready to score, with one output schema.

    Parameters
    ----------
    models
        One model, a sequence, or a mapping name -> model.
    names
        The models' names in the panel (default: the mapping's keys, else ``model0``...);
        they prefix task columns that clash and the domain columns of a panel.
    confidence
        Level of the conformal intervals and prediction sets.
    domain
        Add the applicability-domain columns (and compute the fingerprints they need).
    batch_size, device
        Molecules per forward pass; ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    percentiles
        Add each bundled model's ``<value>_pct_approved`` columns: where the prediction sits
        among approved drugs (:mod:`molpred.pretrained.approved`).
    reserved
        Column names the caller puts beside the predictions: a task called so is scored as
        ``<model>.<task>`` (:meth:`molpred.schema.OutputSchema.build`).
    """

    def __init__(
        self,
        models: MolpredModel | Sequence[MolpredModel] | Mapping[str, MolpredModel],
        names: Sequence[str] | None = None,
        *,
        confidence: float = 0.9,
        domain: bool = True,
        batch_size: int = 128,
        device: str = "cpu",
        percentiles: bool = False,
        reserved: Sequence[str] = (),
    ):
        _check_confidence(confidence)
        if isinstance(models, MolpredModel):
            models = [models]
        if isinstance(models, Mapping):
            names = list(models) if names is None else names
            models = list(models.values())
        self.models = list(models)
        if not self.models:
            raise ValueError("a Predictor needs at least one model")
        names = list(names) if names is not None else [f"model{i}" for i in range(len(models))]
        if len(names) != len(self.models):
            raise ValueError(f"{len(names)} model name(s) for {len(self.models)} model(s)")
        self.confidence, self.domain = confidence, domain
        self.batch_size, self.device = batch_size, str(resolve_device(device))
        self.schema = OutputSchema.build(
            names,
            [
                [
                    (t, k, m.conformal_scores(i) is not None)
                    for i, (t, k) in enumerate(zip(m.task_names, m.task_types, strict=True))
                ]
                for m in self.models
            ],
            [m.domain is not None for m in self.models],
            domain,
            [[percentiles and has_reference(m, t) for t in m.task_names] for m in self.models],
            reserved,
        )
        self.names = [m.name for m in self.schema.models]

    @classmethod
    def of(cls, models, names: Sequence[str] | None = None, **options) -> Predictor:
        """``models`` if it already is a Predictor (its own options stand), else one built
        from them."""
        return models if isinstance(models, Predictor) else cls(models, names, **options)

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], **options) -> Predictor:
        """Load model files; each is named after its file (``esol.pt`` -> ``esol``)."""
        names = [Path(p).name.split(".")[0] for p in paths]
        return cls([load_model(p) for p in paths], names, **options)

    def with_confidence(self, confidence: float) -> Predictor:
        """The same panel at another conformal level (no model is copied)."""
        _check_confidence(confidence)
        other = Predictor.__new__(Predictor)
        other.__dict__.update(self.__dict__)
        other.confidence = confidence
        return other

    def reinterval(self, table: pd.DataFrame, confidence: float) -> pd.DataFrame:
        """``table`` (scored by this panel) with its intervals and prediction sets at another
        confidence, from the stored values and spreads; no molecule is scored again."""
        _check_confidence(confidence)
        out = table.copy()
        for model, columns in zip(self.models, self.schema.models, strict=True):
            for t, task in enumerate(columns.tasks):
                mean, spread = out[task.value].to_numpy(), out[task.std].to_numpy()
                new = interval_columns(task, model.conformal_scores(t), mean, spread, confidence)
                new = bounded(new, columns, value_bounds(model))
                for name, values in new.items():  # prediction sets are text (StringDtype)
                    out[name] = pd.array(values, dtype=out[name].dtype)
        return out

    @property
    def standardizations(self) -> list[str]:
        """How each model prepares structures, in panel order."""
        return [m.standardization for m in self.models]

    def featurizer(
        self, molblock: bool = False, hook: ChunkHook | None = None, trim: bool = True
    ) -> ChunkFeaturizer:
        """The featurization the panel needs: once per distinct standardization (the parent
        first where a model uses it: the hook's properties and alerts are the parent's, as
        medicinal chemistry reads them); fingerprints only if a domain column will be written,
        an error model needs the similarity or a member has trees."""
        fps = any(
            columns.domain
            or (model.domain is not None and _modelled_tasks(model))
            or any(m.trees is not None for m in model.members)
            for model, columns in zip(self.models, self.schema.models, strict=True)
        )
        modes = sorted(dict.fromkeys(self.standardizations), key=lambda mode: mode != "parent")
        return ChunkFeaturizer(tuple(modes), fps, molblock, hook, trim)

    def score(self, prepared: Prepared, errors: Sequence[str] | None = None) -> pd.DataFrame:
        """The prediction and trust columns of every model, then ``error`` (default: the
        featurization's reasons); one row per molecule."""
        errors = prepared.errors() if errors is None else list(errors)
        with torch_section():
            cols = self._columns(prepared)
        cols = {c: cols[c] for c in self.schema.columns() if c in cols}
        cols[ERROR] = errors
        return pd.DataFrame(cols)

    def _columns(self, prepared: Prepared) -> dict[str, object]:
        cols: dict[str, object] = {}
        for i, (model, columns) in enumerate(zip(self.models, self.schema.models, strict=True)):
            feats = prepared.feats[model.standardization]
            failed = np.array([g is None for g in feats.graphs], dtype=bool)
            modelled = _modelled_tasks(model)
            placed = _placed(model, columns)
            trees = None if prepared.trees is None else prepared.trees[i]
            values, variances, emb, _ = member_outputs(
                model.members, feats, self.batch_size, self.device, placed, trees
            )
            mean, spread = combine(values, variances, model.task_types)
            place = None
            if placed:
                sim, latent = model.domain.place(feats.fingerprints, emb)
                spread, relative = expected_error(model, modelled, spread, sim, latent)
                place = Placement(sim, latent, model.domain.in_domain(sim, relative))
            conformal = [model.conformal_scores(t) for t in range(len(model.task_names))]
            bounds = value_bounds(model)
            mean = held_inside(mean, columns, bounds)
            new = prediction_columns(
                columns, conformal, mean, spread, place, failed, self.confidence
            )
            cols.update(bounded(new, columns, bounds))
            for task in columns.tasks:
                if task.pct:
                    cols[task.pct] = percentile(model, task.task, cols[task.value])
        return cols

    def finish(self, inputs: pd.DataFrame, prepared: Prepared) -> pd.DataFrame:
        """Input columns (renamed ``input_<name>`` where they clash with an output column),
        the predictions, the hook's notes, then ``error``."""
        return self.join(inputs, self.scored(prepared))

    def scored(self, prepared: Prepared) -> pd.DataFrame:
        """The predictions, the hook's notes, then ``error`` (the featurization's reasons)."""
        scored = self.score(prepared)
        return scored if prepared.notes is None else _with_notes(scored, prepared.notes)

    def join(self, inputs: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
        """A chunk's input columns beside its :meth:`scored` columns; a reader's reason for a
        row it could not read is taken as that row's error."""
        inputs = inputs.reset_index(drop=True)
        if READ_ERROR in inputs:  # a broken SDF record explains a row better than "empty"
            read = inputs.pop(READ_ERROR).astype(str).tolist()
            scored[ERROR] = [r or e for r, e in zip(read, scored[ERROR], strict=True)]
        # e.g. scoring an output again: error -> input_error (input_error_2 if that exists)
        clash = input_names(inputs.columns, scored.columns)
        return pd.concat([inputs.rename(columns=clash), scored], axis=1)

    def score_frame(
        self,
        inputs: pd.DataFrame,
        column: str,
        *,
        molblock: bool = False,
        hook: ChunkHook | None = None,
    ) -> pd.DataFrame:
        """Featurize and score one chunk in this process (the unit of work of Ray actors)."""
        prepared = self.featurizer(molblock, hook)(inputs[column].tolist())
        return self.finish(inputs, prepared)

    def stream(
        self,
        chunks: Iterable[pd.DataFrame],
        column: str,
        *,
        molblock: bool = False,
        hook: ChunkHook | None = None,
        workers: int = 1,
        skip: Callable[[int], bool] | None = None,
        trim: bool = True,
    ) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame | None]]:
        """``(index, input chunk, scored chunk)`` in input order; chunks are featurized in
        ``workers`` processes (``1``: here) a bounded number ahead, and on Linux on the CPU
        scored there too (see the module docstring). A chunk
        for which ``skip(index)`` is true is not scored (``None``; a resumed run). ``trim``
        gives freed heap back to the system after every chunk: it keeps a library run's memory
        flat, but costs ~8% of the time of many small chunks (the page's, measured)."""
        items = (_Items(df, column) for df in chunks)
        share = self._workers_share(workers)
        key = next(STREAMS)
        threads = max(1, default_workers() // workers)
        if share == "score":  # the workers score too, with the panel they inherit at fork
            for model, columns in zip(self.models, self.schema.models, strict=True):
                for member in model.members:  # the children only read the models: no copy
                    member.to(self.device).eval()  # on write
                if _placed(model, columns):  # prepared here once, not in every worker
                    with torch_section():
                        model.domain.reference()
            FORKED[key] = self
            work = ChunkScorer(key, self.featurizer(molblock, hook, False), threads, trim)
            finish = self.join  # a chunk's scored columns beside its inputs
        elif share == "trees":  # the workers featurize and run the trees; this process the rest
            FORKED[key] = self
            work = ChunkTrees(key, self.featurizer(molblock, hook, False), threads, trim)
            finish = self.finish
        else:  # the workers (if any) featurize; this process scores
            work, finish = self.featurizer(molblock, hook, trim), self.finish
        try:
            for i, chunk, result in map_ordered(work, items, workers, skip=skip):
                if result is None:
                    yield i, chunk.frame, None
                    continue
                scored = finish(chunk.frame, result)
                del result
                if trim:
                    release_memory()
                yield i, chunk.frame, scored
        finally:
            FORKED.pop(key, None)

    def _workers_share(self, workers: int) -> str:
        """What the worker processes of :meth:`stream` do besides featurizing: ``score``
        (fork and the CPU), ``trees`` (fork, and the networks on a GPU here, where a member
        has trees) or nothing (``featurize``: spawn, or no workers)."""
        if workers < 2 or not FORK:
            return "featurize"
        if self.device == "cpu":
            return "score"
        has_trees = any(m.trees is not None for model in self.models for m in model.members)
        return "trees" if has_trees else "featurize"


def _placed(model: MolpredModel, columns: ModelColumns) -> bool:
    """Whether scoring places molecules relative to the model's training set (its domain
    columns are shown, or its error model reads the similarity)."""
    return model.domain is not None and (columns.domain or bool(_modelled_tasks(model)))


def _modelled_tasks(model: MolpredModel) -> list[int]:
    return [t for t in range(len(model.task_names)) if model.error_model(t) is not None]


def expected_error(
    model: MolpredModel,
    tasks: Sequence[int],
    spread: np.ndarray,
    similarity: np.ndarray,
    latent: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The spread with each error-modelled task's column replaced by its expected error, and
    the molecules' expected error relative to validation molecules (None without a model)."""
    if not tasks:
        return spread, None
    spread = spread.copy()
    for t in tasks:
        x = error_features(spread[:, t], similarity, latent)
        spread[:, t] = model.error_model(t).sigma(x)
    relative = relative_error([spread[:, t] for t in tasks], [model.error_median(t) for t in tasks])
    return spread, relative


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


class _Items(list):
    """A chunk's structures (what the workers receive) with its frame kept in this process."""

    def __init__(self, frame: pd.DataFrame, column: str):
        super().__init__(frame[column].tolist())
        self.frame = frame

    def __reduce__(self):  # only the structures travel to a worker
        return (list, (list(self),))


def _with_notes(scored: pd.DataFrame, notes: pd.DataFrame) -> pd.DataFrame:
    error = scored.pop(ERROR)
    return pd.concat([scored, notes.reset_index(drop=True), error], axis=1)
