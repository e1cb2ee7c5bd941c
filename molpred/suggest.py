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
4. Two optional shares of the batch serve the next model rather than the objective. ``cover``
   keeps the measured molecules like the pool: the candidates are cut into ``n`` clusters
   (k-means on the principal components of their fingerprints), the measured molecules are
   counted in them, and each cover pick goes to the cluster furthest below its share of the
   pool (candidates and measured), as that cluster's best candidate by acquisition.
   ``explore`` goes where the expected error is largest. Picks chosen only for a high
   predicted value teach the model about one corner of the pool;
   ``benchmarks/suggest_simulation.py`` measures what each share costs and buys.

Structures are parsed only for the candidates walked, so picking 48 from 20,000 costs little
more than sorting them; a ``cover`` share parses every candidate once, for its fingerprint
(``benchmarks/suggest_speed.py`` times both).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from molpred.chem import InvalidMoleculeError, canonical_smiles, parent_key, standardize
from molpred.featurize import fingerprint
from molpred.measured import MEASURED, keys_of
from molpred.ranking import Objective, desirability
from molpred.schema import ERROR, STD, input_names
from molpred.space import clusters
from molpred.splits import scaffold

__all__ = [
    "STRATEGIES",
    "BATCH_COLUMNS",
    "BatchOptions",
    "objective_draws",
    "acquisition",
    "suggest",
    "expected_error",
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
    explore: float = 0.0  # fraction of the batch picked for the model's sake: largest error
    cover: float = 0.0  # fraction of the batch that keeps the measured set like the pool
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
        if not 0.0 <= self.explore <= 1.0:
            raise ValueError("explore must be a fraction of the batch, in [0, 1]")
        if not 0.0 <= self.cover <= 1.0 - self.explore + 1e-9:  # 0.8 + 0.2 is a whole batch
            raise ValueError("cover must be a fraction of the batch, in [0, 1 - explore]")


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
        Molecules already made and measured (:func:`molpred.measured.measured_molecules`):
        ``smiles`` plus, where known, the objectives' columns. None is picked; rows with every
        objective column give ``ei`` its incumbent.
    exclude
        More structures not to pick (SMILES).
    """
    options = options or BatchOptions()
    draws = objective_draws(table, objectives, options.samples, options.seed)
    if ERROR in table:
        draws[(table[ERROR].fillna("") != "").to_numpy()] = np.nan
    best, incumbent = _measured_best(measured, objectives, table, options)
    value = acquisition(draws, options.strategy, options.beta, best, options.seed)
    with np.errstate(invalid="ignore"):
        mean, sd = draws.mean(axis=1), draws.std(axis=1)
    known_keys = [k for k in keys_of(measured) if k]
    skip = set(known_keys)
    skip |= {k for k in map(parent_key, exclude) if k}
    error = expected_error(table, objectives)
    error[~np.isfinite(value)] = np.nan
    batch = _Batch(table[smiles_column].tolist(), skip, options)
    # a half rounds up (Python's round() goes to even); the cover takes what explore leaves
    n_explore = math.floor(options.explore * options.n + 0.5)
    n_cover = min(math.floor(options.cover * options.n + 0.5), options.n - n_explore)
    batch.walk(value, options.n - n_explore - n_cover, "exploit")
    if n_cover:
        smiles = table[smiles_column].tolist()
        groups, known = clusters(
            smiles, np.isfinite(value), options.n, known_keys, seed=options.seed
        )
        batch.cover(value, groups, known, options.n - n_explore)
    batch.walk(error, options.n, "explore")
    batch.walk(value, options.n, "exploit")  # explore found too few (no expected error)
    batch.fill()
    rows = [p.row for p in batch.picks]
    out = table.iloc[rows]
    # a candidate file's own column of the same name is kept, renamed, as predictions keep them
    out = out.rename(columns=input_names(out.columns, BATCH_COLUMNS))
    nearest = _nearest_other([p.fingerprint for p in batch.picks])
    out["pick"] = np.arange(1, len(rows) + 1)
    out["acquisition"] = value[rows]
    out["objective"], out["objective_sd"] = mean[rows], sd[rows]
    out["scaffold"] = [p.scaffold for p in batch.picks]
    out["nearest_pick_similarity"] = nearest
    out["why"] = [
        _why(options, mean[p.row], sd[p.row], value[p.row], error[p.row], incumbent, p, near)
        for p, near in zip(batch.picks, nearest, strict=True)
    ]
    # distinct measured molecules among the candidates ranked above the last pick
    out.attrs["passed_over_as_measured"] = len(batch.measured_met)
    return out


def expected_error(table: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """How much the model would learn from measuring each candidate: the expected error of
    its regression objectives, each relative to its median over the candidates, weighted
    like the objectives (NaN without any regression objective)."""
    parts, weights = [], []
    for o in objectives:
        if o.weight > 0 and o.column + STD in table and _is_regression(table, o.column):
            sd = table[o.column + STD].to_numpy(np.float64)
            median = np.nanmedian(sd) if np.isfinite(sd).any() else np.nan
            parts.append(o.weight * sd / max(median, 1e-12))
            weights.append(o.weight)
    if not parts:
        return np.full(len(table), np.nan)
    return np.sum(parts, axis=0) / sum(weights)


def _measured_best(
    measured: pd.DataFrame | None,
    objectives: Sequence[Objective],
    table: pd.DataFrame,
    options: BatchOptions,
) -> tuple[float | None, str]:
    """``ei``'s incumbent: the best objective among measured molecules (scaled like the
    candidates), and how the explanations name it. Only molecules with a measured value count
    (their other values predicted, or computed for a property such as QED); without any, or
    when they lack an objective's column, the best predicted candidate is the incumbent."""
    if measured is None or measured.empty:
        return None, "best predicted"
    active = [o for o in objectives if o.weight > 0]
    missing = [o.column for o in active if o.column not in measured]
    if missing:
        return None, f"best predicted (the measured molecules have no {', '.join(missing)})"
    counts = (  # measured values per molecule (a table of the user's: its values)
        measured[MEASURED]
        if MEASURED in measured
        else measured[[o.column for o in active]].notna().sum(axis=1)
    )
    rows = measured[counts > 0]
    if rows.empty:
        return None, "best predicted (no measured value given)"
    total = sum(o.weight for o in active)
    score = sum(
        o.weight
        * desirability(
            pd.to_numeric(rows[o.column], errors="coerce"),
            o,
            pd.to_numeric(table[o.column], errors="coerce"),
        )
        for o in active
    )
    score = np.asarray(score, dtype=np.float64) / total
    if not np.isfinite(score).any():
        return None, "best predicted"
    best = int(np.nanargmax(score))
    partly = counts[counts > 0].iloc[best] < len(active)
    name = "best measured" + (" (its other values predicted or computed)" if partly else "")
    return float(score[best]), f"{name} {score[best]:.3f}"


@dataclass
class _Pick:
    row: int
    fingerprint: np.ndarray
    scaffold: str
    nth_of_scaffold: int
    reason: str  # "exploit", "explore" or "fill"


class _Batch:
    """The batch as it grows: the limits (one pick per compound, measured ones never, at most
    ``max_per_scaffold`` per scaffold, no pick above ``max_similarity`` to another), and the
    candidates a limit held back, for :meth:`fill`."""

    def __init__(self, smiles: list[object], skip: set[str], options: BatchOptions):
        self.smiles, self.options = smiles, options
        self.picks: list[_Pick] = []
        self.seen = set(skip)  # parent keys of picks, held-back and measured molecules
        self.measured, self.measured_met = skip, set()  # measured ones the walk passed over
        self.held: list[tuple[int, np.ndarray, str]] = []
        self.per_scaffold: dict[str, int] = {}
        self.fps = np.empty((0, 256), dtype=np.uint8)

    def walk(self, value: np.ndarray, until: int, reason: str) -> None:
        """Take candidates by ``value``, highest first, until the batch has ``until``."""
        order = np.argsort(-np.nan_to_num(value, nan=-np.inf), kind="stable")
        for i in order[np.isfinite(value[order])]:
            if len(self.picks) >= until:
                return
            self._consider(int(i), reason)

    def cover(self, value: np.ndarray, groups: np.ndarray, measured: np.ndarray, until: int):
        """Spread picks over the clusters so that the measured molecules and the picks together
        follow the density of the whole pool (candidates and measured molecules): each pick
        goes to the cluster furthest below its share, and is its best candidate by ``value``."""
        k = len(measured)
        usable = np.isfinite(value) & (groups >= 0)
        pool = np.bincount(groups[usable], minlength=k) + measured
        share = pool / max(pool.sum(), 1e-12)
        have = measured + np.bincount([groups[p.row] for p in self.picks], minlength=k)
        order = np.argsort(-np.nan_to_num(value, nan=-np.inf), kind="stable")
        queues = [list(order[usable[order] & (groups[order] == c)]) for c in range(k)]
        while len(self.picks) < until:
            deficit = share * (have.sum() + 1) - have
            deficit[[not q for q in queues]] = -np.inf
            c = int(np.argmax(deficit))
            if not np.isfinite(deficit[c]):
                return
            before = len(self.picks)
            self._consider(int(queues[c].pop(0)), "cover")
            have[c] += len(self.picks) - before

    def fill(self) -> None:
        """Top up from the held-back candidates, in the order they were met."""
        for i, fp, scaf in self.held[: self.options.n - len(self.picks)]:
            self._add(i, fp, scaf, "fill")

    def _consider(self, i: int, reason: str) -> None:
        key = parent_key(self.smiles[i])
        if key is None or key in self.seen:
            if key in self.measured:
                self.measured_met.add(key)
            return
        self.seen.add(key)
        try:
            mol = standardize(self.smiles[i])  # type: ignore[arg-type]
        except InvalidMoleculeError:
            return
        fp, scaf = fingerprint(mol), scaffold(canonical_smiles(mol))
        limit = self.options.max_per_scaffold
        too_many = limit is not None and self.per_scaffold.get(scaf, 0) >= limit
        cap = self.options.max_similarity
        too_close = cap is not None and len(self.fps) and _tanimoto(fp, self.fps).max() > cap
        if too_many or too_close:
            self.held.append((i, fp, scaf))
        else:
            self._add(i, fp, scaf, reason)

    def _add(self, i: int, fp: np.ndarray, scaf: str, reason: str) -> None:
        self.per_scaffold[scaf] = self.per_scaffold.get(scaf, 0) + 1
        self.picks.append(_Pick(i, fp, scaf, self.per_scaffold[scaf], reason))
        self.fps = np.vstack([self.fps, fp])


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
    error: float,
    incumbent: str,
    pick: _Pick,
    nearest: float,
) -> str:
    objective = f"objective {mean:.3f} ± {sd:.3f}"
    if pick.reason == "explore":
        reason = f"explores: expected error {error:.2g}x the median; {objective}"
    elif options.strategy == "ucb":
        reason = f"UCB {value:.3f} = objective {mean:.3f} + {options.beta:g} x sd {sd:.3f}"
    elif options.strategy == "ei":
        reason = f"expected improvement {value:.4f} over {incumbent}; {objective}"
    elif options.strategy == "random":
        reason = f"random pick (control); {objective}"
    else:
        reason = objective
    scaf = pick.scaffold or "acyclic"
    parts = [reason, f"{_ordinal(pick.nth_of_scaffold)} pick of scaffold {scaf}"]
    if pick.reason == "cover":
        parts.insert(1, "covers chemical space: the best of the cluster furthest below its share")
    if np.isfinite(nearest):
        parts.append(f"nearest other pick {nearest:.2f}")
    if pick.reason == "fill":
        parts.append("taken after the diversity limits ran out of candidates")
    return "; ".join(parts)
