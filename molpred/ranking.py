"""Rank candidates by what the project needs: desirability per property, combined by weight.

Each :class:`Objective` maps one column to a desirability in [0, 1]:

- ``higher`` / ``lower``: a logistic curve through 0.05 at the 5th and 0.95 at the 95th
  percentile of the candidates (steepest halfway between them): one outlier does not flatten
  everyone else, and the best candidates are still ordered among themselves (a clipped line
  tied the top 5% at 1, which left them in input order). Where those percentiles coincide
  (most candidates share one count), the curve spans the smallest and largest value instead;
  where every value is the same, each gets 0.5;
- ``range``: 1 inside ``[low, high]``, falling linearly to 0 over one range-width outside it.

The score is the weighted mean of the desirabilities (an MPO-style sum, as in CNS MPO): a
molecule missing a value (failed row) gets no score and ranks last. :func:`pareto_front` marks
the candidates no other candidate beats on every objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["Objective", "parse_objective", "desirability", "score", "pareto_front"]

DIRECTIONS = ("higher", "lower", "range")
_LOGIT_95 = float(np.log(0.95 / 0.05))


@dataclass(frozen=True)
class Objective:
    column: str
    direction: str = "higher"
    weight: float = 1.0
    low: float | None = None  # for "range"
    high: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not (self.weight >= 0 and math.isfinite(self.weight)):
            raise ValueError(f"weights must be finite and >= 0, got {self.weight}")
        if self.direction == "range":
            if self.low is None or self.high is None or self.low > self.high:
                raise ValueError(f"{self.column}: a range needs low <= high")
            if not (math.isfinite(self.low) and math.isfinite(self.high)):
                # an open end would make every desirability NaN and empty the ranking
                raise ValueError(
                    f"{self.column}: a range needs finite ends, got {self.low}..{self.high} "
                    "(for no upper limit, rank 'higher'; for no lower limit, 'lower')"
                )


def parse_objective(text: str) -> Objective:
    """An objective written on the command line: ``COLUMN=higher``, ``COLUMN=lower`` or
    ``COLUMN=LOW..HIGH`` (a range), optionally ``@WEIGHT`` (e.g. ``exp=1..3@2``)."""
    column, sep, rest = text.rpartition("=")
    if not sep or not column:
        raise ValueError(
            f"objective {text!r}: write COLUMN=higher, COLUMN=lower or COLUMN=LOW..HIGH"
        )
    goal, _, weight_text = rest.partition("@")
    try:
        weight = float(weight_text) if weight_text else 1.0
        if goal in ("higher", "lower"):
            return Objective(column, goal, weight)
        low, dots, high = goal.partition("..")
        if dots:
            if not low.strip() or not high.strip():
                raise ValueError("write both ends of the range, LOW..HIGH (e.g. 1..3)")
            return Objective(column, "range", weight, float(low), float(high))
    except ValueError as exc:
        raise ValueError(f"objective {text!r}: {exc}") from None
    raise ValueError(f"objective {text!r}: the goal must be higher, lower or LOW..HIGH")


def desirability(
    values: pd.Series | np.ndarray,
    objective: Objective,
    reference: pd.Series | np.ndarray | None = None,
) -> np.ndarray:
    """Desirability in [0, 1] (NaN where the value is missing).

    ``reference``: the values whose 5th and 95th percentiles scale ``higher``/``lower``
    (default: ``values`` themselves). A range is 1 inside and falls to 0 one range width
    outside; a single target value (``2..2``) falls to 0 half the reference's 5th-95th
    percentile spread away. :mod:`molpred.suggest` scores sampled and measured
    values on the candidates' scale with it. ``values`` may have any shape.
    """
    x = np.asarray(values, dtype=np.float64)
    if objective.direction == "range":
        lo, hi = float(objective.low), float(objective.high)  # type: ignore[arg-type]
        width = hi - lo
        if width <= 0:  # a target value (2..2): scored against half the values' spread
            ref = x if reference is None else np.asarray(reference, dtype=np.float64)
            finite = ref[np.isfinite(ref)]
            spread = np.subtract(*np.percentile(finite, [95, 5])) / 2 if finite.size else 0.0
            width = spread if spread > 1e-12 else 1e-12
        below, above = (lo - x) / width, (x - hi) / width
        return np.clip(1.0 - np.maximum(np.maximum(below, above), 0.0), 0.0, 1.0)
    ref = x if reference is None else np.asarray(reference, dtype=np.float64)
    finite = ref[np.isfinite(ref)]
    if finite.size == 0:
        return np.full_like(x, np.nan)
    lo, hi = np.percentile(finite, [5, 95])
    if hi - lo < 1e-12:  # most values alike (counts of close analogues): the whole range
        lo, hi = finite.min(), finite.max()
    if hi - lo < 1e-12:  # all alike: nothing to prefer, every value neutral
        d = np.where(np.isfinite(x), 0.5, np.nan)
    else:  # logistic: 0.05 at the 5th percentile, 0.95 at the 95th, ~linear between
        d = expit((x - (lo + hi) / 2) * (2 * _LOGIT_95 / (hi - lo)))
    return d if objective.direction == "higher" else 1.0 - d


def score(table: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """Weighted mean desirability per row (NaN if any objective's value is missing)."""
    active = [o for o in objectives if o.weight > 0]
    if not active:
        return np.full(len(table), np.nan)
    missing = [o.column for o in active if o.column not in table.columns]
    if missing:
        raise KeyError(f"no column(s) {missing} to rank by")
    total = sum(o.weight for o in active)
    parts = [o.weight * desirability(table[o.column], o) for o in active]
    return np.sum(parts, axis=0) / total


def pareto_front(table: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """Boolean mask of rows not dominated by any other row (rows with missing values: False).

    A row dominates another if it is at least as desirable on every objective and strictly more
    on one. Desirabilities, not raw values, are compared, so ``range`` objectives work too.
    """
    d = np.column_stack([desirability(table[o.column], o) for o in objectives])
    ok = np.isfinite(d).all(axis=1)
    front = np.zeros(len(table), dtype=bool)
    idx = np.flatnonzero(ok)
    pts = d[idx]
    for start in range(0, len(pts), _PARETO_BLOCK):  # a block of rows against all, at once
        block = pts[start : start + _PARETO_BLOCK]
        at_least = np.ones((len(block), len(pts)), dtype=bool)  # [b, n]: n as good as b on all
        better = np.zeros_like(at_least)  # ... and strictly better on one
        for j in range(pts.shape[1]):
            at_least &= pts[None, :, j] >= block[:, j, None]
            better |= pts[None, :, j] > block[:, j, None]
        front[idx[start : start + _PARETO_BLOCK]] = ~(at_least & better).any(axis=1)
    return front


# rows compared with all others at once by pareto_front: 256 x 20,000 x k booleans at most
_PARETO_BLOCK = 256
