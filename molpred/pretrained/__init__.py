"""Pretrained property models bundled with molpred, so the web app scores on first start.

Each model file was produced by ``python -m molpred.pretrained.build`` from the bundled data
(``data/``, see ``data/README.md`` and ``data/admet/README.md``) with scaffold splits and fixed
seeds; its metrics, split, date and molpred version are inside the file, and :data:`CARDS`
describes what it predicts, in which units, from which data. The MoleculeNet models come first;
the ADMET panel's (:mod:`molpred.pretrained.panel`) follow, one card per model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from molpred.pretrained.panel import CATEGORIES, ENDPOINTS, PANEL, PanelModel

__all__ = ["Card", "CARDS", "CATEGORIES", "model_path", "available"]

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Card:
    """Model card: what a bundled model predicts and where its data come from.

    A field given as a tuple holds one entry per target; a plain string holds for all of them.
    """

    name: str
    title: str
    data: str  # file in data/ ("" for the ADMET panel: see panel.ENDPOINTS)
    smiles_column: str
    targets: tuple[str, ...]
    task: str  # regression | classification
    units: str | tuple[str, ...]
    description: str | tuple[str, ...]
    source: str | tuple[str, ...]
    preferred: str | tuple[str, ...] = ""  # ranking hint: higher, lower, "range lo hi"; per target
    labels: tuple[str, ...] = ()  # display names of the targets (default: the target names)
    category: str | tuple[str, ...] = ""  # one of CATEGORIES

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


CARDS: dict[str, Card] = {
    c.name: c
    for c in (
        Card(
            "solubility",
            "Aqueous solubility (ESOL)",
            "esol.csv",
            "smiles",
            ("measured log solubility in mols per litre",),
            "regression",
            "log10(mol/L)",
            "Intrinsic aqueous solubility, log S.",
            "Delaney 2004 via MoleculeNet (1,128 compounds)",
            preferred="higher",
            labels=("logS",),
            category=CATEGORIES[0],
        ),
        Card(
            "lipophilicity",
            "Lipophilicity (logD 7.4)",
            "lipophilicity.csv",
            "smiles",
            ("exp",),
            "regression",
            "logD",
            "Octanol/buffer distribution coefficient at pH 7.4.",
            "AstraZeneca ChEMBL deposition via MoleculeNet (4,200 compounds)",
            preferred="range 1 3",
            labels=("logD7.4",),
            category=CATEGORIES[0],
        ),
        Card(
            "hydration",
            "Hydration free energy (FreeSolv)",
            "freesolv.csv",
            "smiles",
            ("expt",),
            "regression",
            "kcal/mol",
            "Experimental hydration free energy in water.",
            "Mobley & Guthrie 2014 via MoleculeNet (642 compounds)",
            labels=("dG_hyd",),
            category=CATEGORIES[0],
        ),
        Card(
            "bbb",
            "Blood-brain barrier penetration (BBBP)",
            "bbbp.csv",
            "smiles",
            ("p_np",),
            "classification",
            "probability",
            "Probability that the compound crosses the BBB.",
            "Martins et al. 2012 via MoleculeNet (2,050 compounds)",
            labels=("BBB_penetration",),
            category=CATEGORIES[0],
        ),
        Card(
            "tox21",
            "Tox21 (12 assays)",
            "tox21.csv",
            "smiles",
            (
                "NR-AR",
                "NR-AR-LBD",
                "NR-AhR",
                "NR-Aromatase",
                "NR-ER",
                "NR-ER-LBD",
                "NR-PPAR-gamma",
                "SR-ARE",
                "SR-ATAD5",
                "SR-HSE",
                "SR-MMP",
                "SR-p53",
            ),
            "classification",
            "probability",
            "Probability of activity in each Tox21 nuclear-receptor and stress-response assay.",
            "Tox21 Data Challenge 2014 via MoleculeNet (7,831 compounds)",
            preferred="lower",
            category=CATEGORIES[3],
        ),
        Card(
            "clintox",
            "Clinical toxicity (ClinTox)",
            "clintox.csv",
            "smiles",
            ("FDA_APPROVED", "CT_TOX"),
            "classification",
            "probability",
            "Probability of FDA approval and of failing clinical trials for toxicity.",
            "Gayvert et al. 2016 via MoleculeNet (1,484 compounds)",
            preferred=("higher", "lower"),
            category=CATEGORIES[3],
        ),
    )
}


def _panel_card(model: PanelModel) -> Card:
    ends = [ENDPOINTS[e] for e in model.endpoints]
    return Card(
        model.name,
        model.title,
        "",
        "smiles",
        model.endpoints,
        model.task,
        tuple(e.units for e in ends),
        tuple(e.description for e in ends),
        tuple(f"{e.citation} ({e.licence})" for e in ends),
        preferred=tuple(e.preferred for e in ends),
        labels=tuple(e.label for e in ends),
        category=tuple(e.category for e in ends),
    )


CARDS.update({name: _panel_card(model) for name, model in PANEL.items()})


def model_path(name: str) -> Path:
    return HERE / f"{name}.pt"


def available() -> list[str]:
    """Names of the bundled models whose files are present."""
    return [n for n in CARDS if model_path(n).is_file()]
