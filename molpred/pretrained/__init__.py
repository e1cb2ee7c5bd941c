"""Pretrained property models bundled with molpred, so the web app scores on first start.

Each model file was produced by ``python -m molpred.pretrained.build`` from the bundled data
(``data/``, see ``data/README.md`` and ``data/admet/README.md``) with scaffold splits and fixed
seeds; its metrics, split, date and molpred version are inside the file, and :data:`CARDS`
describes what it predicts, in which units, from which data: one card per model of the panel
(:mod:`molpred.pretrained.panel`), the MoleculeNet models first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from molpred.pretrained.endpoints import CATEGORIES, ENDPOINTS
from molpred.pretrained.panel import PANEL, PanelModel

__all__ = ["Card", "CARDS", "CATEGORIES", "model_path", "available"]

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Card:
    """Model card: what a bundled model predicts and where its data come from.

    A field given as a tuple holds one entry per target; a plain string holds for all of them.
    """

    name: str
    title: str
    targets: tuple[str, ...]
    task: str  # regression | classification
    units: str | tuple[str, ...]
    description: str | tuple[str, ...]
    source: str | tuple[str, ...]
    preferred: str | tuple[str, ...] = ""  # ranking hint: higher, lower, "range lo hi"; per target
    labels: tuple[str, ...] = ()  # display names of the targets (default: the target names)
    category: str | tuple[str, ...] = ""  # one of CATEGORIES
    shown: tuple[str, ...] = ()  # the targets the page's table shows at first

    def _of(self, field: str | tuple[str, ...], target: str) -> str:
        if isinstance(field, str):
            return field
        return dict(zip(self.targets, field, strict=True))[target]

    def display(self, target: str) -> str:
        names = dict(zip(self.targets, self.labels or self.targets, strict=True))
        return names[target]

    def preference(self, target: str) -> str:
        """The ranking hint of one target ("" if there is no sensible default)."""
        return self._of(self.preferred, target)

    def unit(self, target: str) -> str:
        return self._of(self.units, target)

    def describe(self, target: str) -> str:
        return self._of(self.description, target)

    def category_of(self, target: str) -> str:
        return self._of(self.category, target)

    def cite(self, target: str) -> str:
        return self._of(self.source, target)


def _panel_card(model: PanelModel) -> Card:
    ends = [ENDPOINTS[e] for e in model.endpoints]
    return Card(
        model.name,
        model.title,
        model.endpoints,
        model.task,
        tuple(e.units for e in ends),
        tuple(e.description for e in ends),
        tuple(f"{e.citation} ({e.licence})" for e in ends),
        preferred=tuple(e.preferred for e in ends),
        labels=tuple(e.label for e in ends),
        category=tuple(e.category for e in ends),
        shown=model.headline,
    )


CARDS: dict[str, Card] = {name: _panel_card(model) for name, model in PANEL.items()}


def model_path(name: str) -> Path:
    return HERE / f"{name}.pt"


def available() -> list[str]:
    """Names of the bundled models whose files are present."""
    return [n for n in CARDS if model_path(n).is_file()]
