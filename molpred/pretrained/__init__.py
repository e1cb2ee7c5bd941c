"""Pretrained property models bundled with molpred, so the web app scores on first start.

Each model file was produced by ``python -m molpred.pretrained.build`` from the bundled data
(``data/``, see ``data/README.md``) with a scaffold split and fixed seeds; its test metrics,
split, date and molpred version are inside the file, and :data:`CARDS` describes what it
predicts, in which units, from which data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Card", "CARDS", "model_path", "available"]

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Card:
    """Model card: what a bundled model predicts and where its data come from."""

    name: str
    title: str
    data: str  # file in data/
    smiles_column: str
    targets: tuple[str, ...]
    task: str  # regression | classification
    units: str
    description: str
    source: str
    preferred: str | tuple[str, ...] = ""  # ranking hint: higher, lower, "range lo hi"; per target
    labels: tuple[str, ...] = ()  # display names of the targets (default: the target names)

    def display(self, target: str) -> str:
        names = dict(zip(self.targets, self.labels or self.targets, strict=True))
        return names[target]

    def preference(self, target: str) -> str:
        """The ranking hint of one target ("" if there is no sensible default)."""
        if isinstance(self.preferred, str):
            return self.preferred
        return dict(zip(self.targets, self.preferred, strict=True))[target]


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
        ),
    )
}


def model_path(name: str) -> Path:
    return HERE / f"{name}.pt"


def available() -> list[str]:
    """Names of the bundled models whose files are present."""
    return [n for n in CARDS if model_path(n).is_file()]
