"""The next batch to make and test: from scored candidates, pick ``n`` that are likely good (the
ranking objective of :mod:`molpred.ranking`), informative (its uncertainty) and not all the same
chemotype.

1. :func:`objective_draws`: the objective of every candidate with its uncertainty. Each regression
   value takes ``samples`` stratified draws from ``Normal(value, <task>_std)`` (the expected
   error; the same quantiles for every candidate, so ties are not broken by noise) and
   pushed through the desirabilities, scaled on the candidates' predicted values, so a ``range``
   objective near its edge is uncertain and one deep inside it is not. Classification
   probabilities enter as they are: a probability already is the expectation over the label.
2. The acquisition (``strategy``): ``greedy`` ranks by the objective's mean; ``ucb`` by mean +
   ``beta`` x sd; ``ei`` by the expected improvement over the best measured objective (over the
   best predicted one when nothing measured is given); ``random`` is the control group.
3. :func:`suggest` walks the candidates by acquisition and takes one unless its Bemis-Murcko
   scaffold already has ``max_per_scaffold`` picks, or its Tanimoto similarity (Morgan, radius 2)
   to a pick exceeds ``max_similarity``, or it was measured (matched on the neutral parent
   structure), or it repeats a candidate already seen. Should the diversity limits exhaust the
   candidates, the batch is filled from the ones they skipped, in order, and says so.

Structures are parsed only for the candidates walked, so picking 48 from 20,000 costs little
more than sorting them (``benchmarks/suggest_speed.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from molpred.chem import InvalidMoleculeError, canonical_smiles, standardize
from molpred.featurize import fingerprint
from molpred.predict import pick_column, score_table
from molpred.predictor import Predictor
from molpred.ranking import Objective, desirability
from molpred.schema import ERROR, STD
from molpred.splits import scaffold

__all__ = [
    "STRATEGIES",
    "BatchOptions",
    "objective_draws",
    "acquisition",
    "suggest",
    "measured_molecules",
    "parent_key",
]

STRATEGIES = ("ucb", "greedy", "ei", "random")
BATCH_COLUMNS = [
    "pick",
    "acquisition",
    "objective",
    "objective_sd",
    "scaffold",
    "nearest_pick_similarity",
    "why",
]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch is chosen (defaults chosen by ``benchmarks/suggest_simulation.py``)."""

    n: int = 48
    strategy: str = "ucb"
    beta: float = 1.0
    max_per_scaffold: int | None = 2
    max_similarity: float | None = None
    samples: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.n < 1:
            raise ValueError(f"a batch needs at least one molecule, got n={self.n}")
        if self.beta < 0:
            raise ValueError("beta must be >= 0")
        if self.max_per_scaffold is not None and self.max_per_scaffold < 1:
            raise ValueError("max_per_scaffold must be at least 1 (or None: no limit)")
        if self.max_similarity is not None and not 0.0 < self.max_similarity <= 1.0:
            raise ValueError("max_similarity must be in (0, 1] (or None: no limit)")


def objective_draws(
    table: pd.DataFrame,
    objectives: Sequence[Objective],
    samples: int = 256,
    seed: int = 0,
    reference: pd.DataFrame | None = None,
) -> np.ndarray:
    """Draws of the weighted-mean desirability, ``[N, samples]`` (NaN rows: a value missing).

    ``reference``: the table whose predicted values scale ``higher``/``lower`` (default
    ``table``), so measured molecules are scored on the candidates' scale.
    """
    active = [o for o in objectives if o.weight > 0]
    if not active:
        raise ValueError("choose at least one objective with a weight above 0")
    missing = [o.column for o in active if o.column not in table.columns]
    if missing:
        raise KeyError(f"no column(s) {missing} to rank by")
    reference = table if reference is None else reference
    rng = np.random.default_rng(seed)
    quantiles = ndtri((np.arange(samples) + 0.5) / samples)
    total = sum(o.weight for o in active)
    out = np.zeros((len(table), samples))
    for o in active:
        value = pd.to_numeric(table[o.column], errors="coerce").to_numpy(np.float64)[:, None]
        sd_column = o.column + STD
        if sd_column in table and _is_regression(table, o.column):
            sd = np.nan_to_num(table[sd_column].to_numpy(np.float64), nan=0.0)[:, None]
            # stratified normal quantiles, the same for every candidate (independently
            # shuffled per objective): candidates are compared without sampling noise
            value = value + sd * quantiles[rng.permutation(samples)][None, :]
        ref = pd.to_numeric(reference[o.column], errors="coerce").to_numpy(np.float64)
        out += o.weight * desirability(np.broadcast_to(value, out.shape), o, ref)
    return out / total


def _is_regression(table: pd.DataFrame, column: str) -> bool:
    """A value column with interval bounds is a regression task's (classification tasks have
    a prediction set, computed properties no spread at all)."""
    return f"{column}_lower" in table.columns


def acquisition(
    draws: np.ndarray, strategy: str, beta: float = 1.0, best: float | None = None, seed: int = 0
) -> np.ndarray:
    """Acquisition value per candidate (higher is picked first; NaN: cannot be picked).

    ``best``: the incumbent of ``ei`` (default: the best mean objective among the draws).
    """
    with np.errstate(invalid="ignore"):
        mean, sd = draws.mean(axis=1), draws.std(axis=1)
    if strategy == "greedy":
        return mean
    if strategy == "ucb":
        return mean + beta * sd
    if strategy == "ei":
        incumbent = np.nanmax(mean) if best is None else best
        gain = np.maximum(draws - incumbent, 0.0).mean(axis=1)
        # candidates no draw of which beats the incumbent tie at 0: the mean orders them
        return gain + 1e-12 * mean
    if strategy == "random":
        order = np.random.default_rng(seed).random(len(draws))
        return np.where(np.isfinite(mean), order, np.nan)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def parent_key(smiles: object) -> str | None:
    """What "the same compound" means here: the canonical neutral parent (salts and charges
    drawn differently still match); None if the structure cannot be read."""
    try:
        return canonical_smiles(standardize(smiles, "parent"))  # type: ignore[arg-type]
    except InvalidMoleculeError:
        return None


def suggest(
    table: pd.DataFrame,
    objectives: Sequence[Objective],
    options: BatchOptions | None = None,
    *,
    measured: pd.DataFrame | None = None,
    exclude: Iterable[object] = (),
    smiles_column: str = "smiles",
) -> pd.DataFrame:
    """The batch: rows of ``table`` (index kept) in pick order, with ``BATCH_COLUMNS`` added.

    Parameters
    ----------
    table
        Scored candidates (the output of ``predict`` or the page's table): the objectives'
        columns, their ``_std`` columns, ``error`` (failed rows are never picked).
    objectives
        What a good molecule is (:class:`molpred.ranking.Objective`).
    measured
        Molecules already made and measured: ``smiles_column`` plus, where known, the
        objectives' columns (measured values). None is picked; rows with every objective
        column give ``ei`` its incumbent.
    exclude
        More structures not to pick (SMILES).
    """
    options = options or BatchOptions()
    draws = objective_draws(table, objectives, options.samples, options.seed)
    if ERROR in table:
        draws[(table[ERROR].fillna("") != "").to_numpy()] = np.nan
    best = _measured_best(measured, objectives, table, options)
    value = acquisition(draws, options.strategy, options.beta, best, options.seed)
    with np.errstate(invalid="ignore"):
        mean, sd = draws.mean(axis=1), draws.std(axis=1)
    skip = {k for k in map(parent_key, _smiles_of(measured, smiles_column)) if k}
    skip |= {k for k in map(parent_key, exclude) if k}
    picks = _walk(table[smiles_column].tolist(), value, skip, options)
    rows = [i for i, _ in picks]
    out = table.iloc[rows].copy()
    scaffolds = [p.scaffold for _, p in picks]
    nearest = _nearest_other([p.fingerprint for _, p in picks])
    out["pick"] = np.arange(1, len(rows) + 1)
    out["acquisition"] = value[rows]
    out["objective"], out["objective_sd"] = mean[rows], sd[rows]
    out["scaffold"] = scaffolds
    out["nearest_pick_similarity"] = nearest
    out["why"] = [
        _why(options, mean[i], sd[i], value[i], best, p, s)
        for (i, p), s in zip(picks, nearest, strict=True)
    ]
    return out


def measured_molecules(
    predictor: Predictor,
    tables: Sequence[pd.DataFrame] = (),
    objectives: Sequence[Objective] = (),
    *,
    training: bool = False,
) -> pd.DataFrame:
    """The molecules already measured, as :func:`suggest` reads them: ``smiles`` and each
    objective's column.

    ``tables``: a user's files of measured molecules (a SMILES column; a column named like an
    objective, or like its task, holds measured values). ``training``: add every model's
    training molecules with their measured values. Where a molecule has no measured value for
    an objective, the panel's prediction stands in (so the ``ei`` incumbent is defined).
    """
    parts = []
    by_value = {task.value: task for task in predictor.schema.tasks}
    for table in tables:
        part = pd.DataFrame({"smiles": table[pick_column(list(table.columns), None, "SMILES")]})
        for o in objectives:
            task = by_value.get(o.column)
            source = next(
                (c for c in (o.column, task.task if task else None) if c in table.columns), None
            )
            if source is not None:
                part[o.column] = pd.to_numeric(table[source], errors="coerce").to_numpy()
        parts.append(part)
    if training:
        for model, columns in zip(predictor.models, predictor.schema.models, strict=True):
            domain = model.domain
            if domain is None or not domain.smiles:
                continue
            part = pd.DataFrame({"smiles": domain.smiles})
            if domain.targets is not None:
                targets = domain.targets.float().numpy()
                for t, task in enumerate(columns.tasks):
                    if any(o.column == task.value for o in objectives):
                        part[task.value] = targets[:, t]
            parts.append(part)
    if not parts:
        return pd.DataFrame({"smiles": []})
    measured = pd.concat(parts, ignore_index=True)
    predicted = [o.column for o in objectives if o.column in by_value]
    for column in predicted:
        if column not in measured:
            measured[column] = np.nan
    gaps = measured[predicted].isna().any(axis=1).to_numpy() if predicted else []
    if np.any(gaps):
        guess = score_table(predictor, measured.loc[gaps, ["smiles"]], "smiles")
        for column in predicted:
            filled = measured.loc[gaps, column].to_numpy()
            guessed = guess[column].to_numpy()
            measured.loc[gaps, column] = np.where(np.isnan(filled), guessed, filled)
    return measured


def _smiles_of(measured: pd.DataFrame | None, column: str) -> list[object]:
    if measured is None or measured.empty:
        return []
    if column not in measured:
        raise KeyError(f"the measured molecules have no {column!r} column")
    return measured[column].tolist()


def _measured_best(
    measured: pd.DataFrame | None,
    objectives: Sequence[Objective],
    table: pd.DataFrame,
    options: BatchOptions,
) -> float | None:
    """The best objective among measured molecules with a value for every objective, scaled
    like the candidates (None if there is none)."""
    if measured is None or measured.empty:
        return None
    active = [o for o in objectives if o.weight > 0]
    if any(o.column not in measured for o in active):
        return None
    total = sum(o.weight for o in active)
    score = sum(
        o.weight
        * desirability(
            pd.to_numeric(measured[o.column], errors="coerce"),
            o,
            pd.to_numeric(table[o.column], errors="coerce"),
        )
        for o in active
    )
    score = np.asarray(score) / total
    return float(np.nanmax(score)) if np.isfinite(score).any() else None


@dataclass
class _Pick:
    fingerprint: np.ndarray
    scaffold: str
    nth_of_scaffold: int
    filled: bool = False


def _walk(
    smiles: list[object], value: np.ndarray, skip: set[str], options: BatchOptions
) -> list[tuple[int, _Pick]]:
    """Candidates by acquisition, best first, under the batch's limits; then, if the limits
    left the batch short, the skipped ones in the same order."""
    order = np.argsort(-np.nan_to_num(value, nan=-np.inf), kind="stable")
    order = order[np.isfinite(value[order])]
    picks: list[tuple[int, _Pick]] = []
    held: list[tuple[int, np.ndarray, str]] = []
    seen = set(skip)
    per_scaffold: dict[str, int] = {}
    fps = np.empty((0, 256), dtype=np.uint8)
    for i in order:
        if len(picks) == options.n:
            return picks
        try:
            mol = standardize(smiles[i])  # type: ignore[arg-type]
        except InvalidMoleculeError:
            continue
        key = parent_key(smiles[i])
        if key is None or key in seen:
            continue
        seen.add(key)
        fp, scaf = fingerprint(mol), scaffold(canonical_smiles(mol))
        too_many = (
            options.max_per_scaffold is not None
            and per_scaffold.get(scaf, 0) >= options.max_per_scaffold
        )
        too_close = (
            options.max_similarity is not None
            and len(fps)
            and _tanimoto(fp, fps).max() > options.max_similarity
        )
        if too_many or too_close:
            held.append((int(i), fp, scaf))
            continue
        per_scaffold[scaf] = per_scaffold.get(scaf, 0) + 1
        picks.append((int(i), _Pick(fp, scaf, per_scaffold[scaf])))
        fps = np.vstack([fps, fp])
    for i, fp, scaf in held[: options.n - len(picks)]:
        per_scaffold[scaf] = per_scaffold.get(scaf, 0) + 1
        picks.append((i, _Pick(fp, scaf, per_scaffold[scaf], filled=True)))
    return picks


def _tanimoto(fp: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Tanimoto similarity of one packed fingerprint ``[256]`` to each row of ``[K, 256]``."""
    inter = np.bitwise_count(fps & fp).sum(axis=1)
    union = np.bitwise_count(fps | fp).sum(axis=1)
    return inter / np.maximum(union, 1)


def _nearest_other(fps: list[np.ndarray]) -> np.ndarray:
    """Each pick's highest Tanimoto similarity to another pick (NaN for a batch of one)."""
    out = np.full(len(fps), np.nan)
    if len(fps) < 2:
        return out
    stacked = np.vstack(fps)
    for k, fp in enumerate(fps):
        sim = _tanimoto(fp, stacked)
        sim[k] = -1.0
        out[k] = sim.max()
    return out


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _why(
    options: BatchOptions,
    mean: float,
    sd: float,
    value: float,
    best: float | None,
    pick: _Pick,
    nearest: float,
) -> str:
    objective = f"objective {mean:.3f} ± {sd:.3f}"
    if options.strategy == "ucb":
        reason = f"UCB {value:.3f} = objective {mean:.3f} + {options.beta:g} x sd {sd:.3f}"
    elif options.strategy == "ei":
        over = f"best measured {best:.3f}" if best is not None else "best predicted"
        reason = f"expected improvement {value:.4f} over {over}; {objective}"
    elif options.strategy == "random":
        reason = f"random pick (control); {objective}"
    else:
        reason = objective
    scaf = pick.scaffold or "acyclic"
    parts = [reason, f"{_ordinal(pick.nth_of_scaffold)} pick of scaffold {scaf}"]
    if np.isfinite(nearest):
        parts.append(f"nearest other pick {nearest:.2f}")
    if pick.filled:
        parts.append("taken after the diversity limits ran out of candidates")
    return "; ".join(parts)
