"""The one definition of molpred's output columns, used by scoring, evaluation, ``--top`` and
the page.

Every prediction is keyed by ``(model, task)``: the model's name in the panel and the task as
the model names it. Its value column is the bare task name when that is unique across the
panel, else ``<model>.<task>``; the trust columns add a suffix to it:

========================  ===================================================================
``<value>``               prediction in the training data's units (calibrated probability for
                          classification)
``<value>_std``           predicted spread
``<value>_lower/_upper``  conformal interval at the chosen confidence (regression)
``<value>_set``           conformal prediction set, ``0``, ``1``, ``0,1`` or empty
                          (calibrated classification)
``<value>_pct_approved``  percentile of the prediction among approved drugs (bundled models,
                          when asked for: :mod:`molpred.pretrained.approved`)
========================  ===================================================================

Per model with an applicability domain (prefixed ``<model>.`` in a panel of several):
``domain_similarity``, ``latent_distance``, ``in_domain``. Then ``error``: empty when the row
was scored, else the reason it was not.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ERROR",
    "TaskColumns",
    "ModelColumns",
    "OutputSchema",
    "input_names",
    "unique_names",
]

ERROR = "error"
STD, LOWER, UPPER, SET, PCT = "_std", "_lower", "_upper", "_set", "_pct_approved"
SIMILARITY, LATENT, IN_DOMAIN = "domain_similarity", "latent_distance", "in_domain"


@dataclass(frozen=True)
class TaskColumns:
    """The columns of one task of one model."""

    model: str
    task: str
    kind: str  # "regression" or "classification"
    value: str
    calibrated: bool  # holds conformal scores: intervals / prediction sets
    percentile: bool = False  # has an approved-drug reference and it was asked for

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.task)

    @property
    def std(self) -> str:
        return self.value + STD

    @property
    def lower(self) -> str:
        return self.value + LOWER

    @property
    def upper(self) -> str:
        return self.value + UPPER

    @property
    def set(self) -> str | None:
        """The prediction-set column (calibrated classification only)."""
        return self.value + SET if self.kind == "classification" and self.calibrated else None

    @property
    def pct(self) -> str | None:
        """The approved-drug percentile column (None where there is none)."""
        return self.value + PCT if self.percentile else None

    @property
    def trust(self) -> list[str]:
        """Spread, then interval bounds or prediction set, in output order."""
        if self.kind == "regression":
            return [self.std, self.lower, self.upper]
        return [self.std] + ([self.set] if self.set else [])


@dataclass(frozen=True)
class ModelColumns:
    """The columns one model of a panel contributes."""

    name: str
    tasks: tuple[TaskColumns, ...]
    prefix: str  # of the domain columns: "" alone, "<name>." in a panel
    domain: bool  # the model has an applicability domain and it was asked for

    @property
    def similarity(self) -> str:
        return self.prefix + SIMILARITY

    @property
    def latent(self) -> str:
        return self.prefix + LATENT

    @property
    def in_domain(self) -> str:
        return self.prefix + IN_DOMAIN

    @property
    def domain_columns(self) -> list[str]:
        return [self.similarity, self.latent, self.in_domain] if self.domain else []

    def columns(self) -> list[str]:
        out = [c for t in self.tasks for c in (t.value, *([t.pct] if t.pct else []), *t.trust)]
        return out + self.domain_columns


def input_names(columns: Iterable[Hashable], reserved: Iterable[Hashable]) -> dict:
    """New names for the input ``columns`` that clash with ``reserved`` (the names an output
    adds): ``input_<name>``, numbered ``input_<name>_2``... where that is taken too. Every
    caller that puts a user's columns beside its own renames them this way."""
    columns, reserved = list(columns), set(reserved)
    taken = {*columns, *reserved}
    renamed = {}
    for column in columns:
        if column in reserved:
            new, k = f"input_{column}", 2
            while new in taken:
                new, k = f"input_{column}_{k}", k + 1
            renamed[column] = new
            taken.add(new)
    return renamed


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made unique by numbering the repeats (``a``, ``b``, ``a`` -> ``a1``, ``b``,
    ``a2``), skipping numbers another name has (``a``, ``a``, ``a1`` -> ``a2``, ``a3``,
    ``a1``)."""
    taken = {n for n in names if names.count(n) == 1}
    out, last = [], dict.fromkeys(names, 0)
    for n in names:
        if names.count(n) > 1:
            last[n] += 1
            while f"{n}{last[n]}" in taken:
                last[n] += 1
            taken.add(f"{n}{last[n]}")
            n = f"{n}{last[n]}"
        out.append(n)
    return out


@dataclass(frozen=True)
class OutputSchema:
    """Every output column of scoring a panel of models, in order."""

    models: tuple[ModelColumns, ...]

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        tasks: Sequence[Sequence[tuple[str, str, bool]]],
        has_domain: Sequence[bool],
        domain: bool = True,
        percentiles: Sequence[Sequence[bool]] | None = None,
        reserved: Sequence[str] = (),
    ) -> OutputSchema:
        """``tasks[m]`` lists model ``m``'s ``(task name, kind, calibrated)``; ``names`` are
        the models' names in the panel (made unique here); ``percentiles[m][t]``: task ``t``
        of model ``m`` gets an approved-drug percentile column. Task names that two models
        share, or that are ``error`` or in ``reserved`` (columns a caller puts beside the
        predictions: the page's ``score``, ``rank``, ``TPSA``...), are named
        ``<model>.<task>``: a value never overwrites or duplicates another column."""
        names = unique_names(list(names))
        flat = [t for model in tasks for t, _, _ in model]
        taken = {ERROR, *reserved}
        clash = len(flat) != len(set(flat)) or bool(taken.intersection(flat))
        if percentiles is None:
            percentiles = [[False] * len(model) for model in tasks]
        for prefixed in (clash, True):  # a task called like another's trust column: prefixed
            models = []
            for name, model_tasks, has, pcts in zip(
                names, tasks, has_domain, percentiles, strict=True
            ):
                cols = tuple(
                    TaskColumns(name, t, kind, f"{name}.{t}" if prefixed else t, calibrated, pct)
                    for (t, kind, calibrated), pct in zip(model_tasks, pcts, strict=True)
                )
                prefix = "" if len(names) == 1 else f"{name}."
                models.append(ModelColumns(name, cols, prefix, domain and has))
            schema = cls(tuple(models))
            columns = schema.columns()
            if len(columns) == len(set(columns)) and not taken.intersection(columns[:-1]):
                return schema
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        raise ValueError(
            f"the models' task names give output columns that clash ({', '.join(repeated)}): "
            "a task named like another task's spread, bounds or domain column; retrain with "
            "the measured column renamed"
        )

    @property
    def tasks(self) -> list[TaskColumns]:
        return [t for m in self.models for t in m.tasks]

    def task(self, model: str, task: str) -> TaskColumns:
        for t in self.tasks:
            if t.key == (model, task):
                return t
        raise KeyError(f"no task {task!r} of model {model!r}")

    def find(self, name: str) -> TaskColumns:
        """The task whose value column is ``name``, or whose task name is ``name`` if only one
        model has it (how a user names what to rank by)."""
        by_column = [t for t in self.tasks if t.value == name]
        by_task = [t for t in self.tasks if t.task == name]
        found = by_column or by_task
        if len(found) != 1:
            raise KeyError(name)
        return found[0]

    @property
    def value_columns(self) -> list[str]:
        return [t.value for t in self.tasks]

    @property
    def detail_columns(self) -> list[str]:
        """Columns a short listing leaves out: bounds, sets and the domain's raw measures."""
        bounds = [c for t in self.tasks for c in t.trust if c != t.std]
        return bounds + [c for m in self.models if m.domain for c in (m.similarity, m.latent)]

    @property
    def in_domain_columns(self) -> list[str]:
        return [m.in_domain for m in self.models if m.domain]

    def columns(self) -> list[str]:
        """The prediction columns in output order, then ``error``."""
        return [c for m in self.models for c in m.columns()] + [ERROR]
