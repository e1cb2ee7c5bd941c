"""The ADMET panel: which endpoints the bundled models predict, what each means, and the data
each is learned from.

An :class:`Endpoint` is one predicted column as a chemist reads it (units, which direction is
desirable, a plain-language description, category, source, citation, licence). A
:class:`PanelModel` is one model file: the endpoints that share its encoder. Which endpoints
share one (multitask) and which stand alone was decided by scaffold cross-validation
(``python -m molpred.pretrained.build --compare``; table in ``benchmarks/RESULTS.md``).

The data are copies of public sets in ``data/admet/`` (``data/admet/README.md``: provenance,
citations, licences); :func:`endpoint_table` reads one as (SMILES, value) in the endpoint's
units, with every row kept (an unusable value becomes NaN and is reported by training).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORIES",
    "Endpoint",
    "ENDPOINTS",
    "PanelModel",
    "PANEL",
    "endpoint_table",
    "group_table",
]

DATA = Path(__file__).resolve().parents[2] / "data" / "admet"

CATEGORIES = (
    "Physicochemical & absorption",
    "Distribution",
    "Metabolism",
    "Toxicity",
)
PHYS, DIST, METAB, TOX = CATEGORIES

TDC = "Huang et al., Therapeutics Data Commons, NeurIPS Datasets & Benchmarks 2021"
TDC_LICENCE = "CC BY 4.0 (as TDC lists its data sets)"
PHARMABENCH = "Niu et al., PharmaBench, Sci. Data 2024, 11, 985"
VEITH = "Veith et al., Nat. Biotechnol. 2009, 27, 1050-1055; " + TDC
CARBON_MANGELS = "Carbon-Mangels & Hutter, Mol. Inform. 2011, 30, 885-895; " + TDC


@dataclass(frozen=True)
class Endpoint:
    """One predicted property of the panel.

    ``column`` is the model's target name (and the output column); ``transform`` maps the
    source's values to ``units``: ``log10`` (values <= 0 become NaN: unusable) or ``percent``
    (a fraction times 100).
    """

    column: str
    label: str
    category: str
    task: str  # regression | classification
    units: str
    preferred: str  # higher | lower | "range lo hi" | "" (no sensible default)
    description: str
    source: str  # file under data/admet/
    smiles_column: str
    value_column: str
    citation: str
    licence: str
    transform: str = ""


def _tdc(column, label, category, file, preferred, description, citation) -> Endpoint:
    return Endpoint(
        column,
        label,
        category,
        "classification",
        "probability",
        preferred,
        description,
        f"tdc/{file}",
        "Drug",
        "Y",
        citation,
        TDC_LICENCE,
    )


def _pharmabench(column, label, category, task, file, units, preferred, description, transform=""):
    return Endpoint(
        column,
        label,
        category,
        task,
        units,
        preferred,
        description,
        f"pharmabench/{file}",
        "Smiles_unify",
        "value",
        PHARMABENCH,
        "CC0 1.0",
        transform,
    )


_CYPS = ("1A2", "2C19", "2C9", "2D6", "3A4")

ENDPOINTS: dict[str, Endpoint] = {
    e.column: e
    for e in (
        Endpoint(
            "logS_AqSolDB",
            "Aqueous solubility",
            PHYS,
            "regression",
            "log10(mol/L)",
            "higher",
            "Aqueous solubility, log S, learned from ~10,000 curated measurements.",
            "aqsoldb/data_curated.csv",
            "SMILES",
            "Solubility",
            "Sorkun et al., AqSolDB, Sci. Data 2019, 6, 143",
            "CC0 1.0",
        ),
        _tdc(
            "Pgp_inhibitor",
            "P-gp inhibitor",
            PHYS,
            "pgp_broccatelli.csv",
            "lower",
            "Probability of inhibiting the P-glycoprotein efflux pump (drug-drug interactions).",
            "Broccatelli et al., J. Med. Chem. 2011, 54, 1740-1751; " + TDC,
        ),
        _tdc(
            "oral_bioavailability",
            "Oral bioavailability >= 20%",
            PHYS,
            "bioavailability_ma.csv",
            "higher",
            "Probability that oral bioavailability F is at least 20%.",
            "Ma et al., J. Pharm. Biomed. Anal. 2008, 47, 677-682; " + TDC,
        ),
        _pharmabench(
            "PPB",
            "Plasma protein binding",
            DIST,
            "regression",
            "ppb_reg_final_data.csv",
            "% bound",
            "lower",
            "Percentage of drug bound to plasma proteins; only the unbound fraction acts.",
            "percent",
        ),
        *(
            _tdc(
                f"CYP{c}_inhibitor",
                f"CYP{c} inhibitor",
                METAB,
                f"cyp{c.lower()}_veith.csv",
                "lower",
                f"Probability of inhibiting cytochrome P450 {c} (drug-drug interaction risk).",
                VEITH,
            )
            for c in _CYPS
        ),
        *(
            _tdc(
                f"CYP{c}_substrate",
                f"CYP{c} substrate",
                METAB,
                f"cyp{c.lower()}_substrate_carbonmangels.csv",
                "lower",
                f"Probability of being metabolized by cytochrome P450 {c}.",
                CARBON_MANGELS,
            )
            for c in ("2C9", "2D6", "3A4")
        ),
        *(
            _pharmabench(
                f"CYP{c}_IC50",
                f"CYP{c} IC50",
                METAB,
                "regression",
                f"cyp_{c.lower()}_reg_final_data.csv",
                "log10(uM)",
                "higher",
                f"Potency of cytochrome P450 {c} inhibition; higher means weaker inhibition.",
                "log10",
            )
            for c in ("2C9", "2D6", "3A4")
        ),
        *(
            _pharmabench(
                f"CLint_{species}",
                f"{species.capitalize()} microsomal clearance",
                METAB,
                "regression",
                f"{file}_mic_cl_reg_final_data.csv",
                "log10(uL/min/mg)",
                "lower",
                f"Intrinsic clearance in {species} liver microsomes; lower means more stable.",
            )
            for species, file in (("human", "hum"), ("mouse", "mou"), ("rat", "rat"))
        ),
        _pharmabench(
            "Ames",
            "Ames mutagenicity",
            TOX,
            "classification",
            "ames_cls_final_data.csv",
            "probability",
            "lower",
            "Probability of a positive Ames test (mutagenic).",
        ),
        _tdc(
            "carcinogen",
            "Carcinogenicity",
            TOX,
            "carcinogens_lagunin.csv",
            "lower",
            "Probability of being carcinogenic in rodent studies.",
            "Lagunin et al., QSAR Comb. Sci. 2009, 28, 806-810; " + TDC,
        ),
        _tdc(
            "skin_sensitizer",
            "Skin reaction",
            TOX,
            "skin_reaction.csv",
            "lower",
            "Probability of causing a skin sensitization reaction.",
            "Alves et al., Toxicol. Appl. Pharmacol. 2015, 284, 262-272; " + TDC,
        ),
    )
}


@dataclass(frozen=True)
class PanelModel:
    """One bundled model file of the panel and the endpoints its heads predict."""

    name: str
    title: str
    endpoints: tuple[str, ...]

    @property
    def task(self) -> str:
        kinds = {ENDPOINTS[e].task for e in self.endpoints}
        if len(kinds) > 1:
            raise ValueError(f"{self.name}: mixes regression and classification endpoints")
        return kinds.pop()


def endpoint_table(endpoint: Endpoint, data_dir: Path = DATA) -> pd.DataFrame:
    """The endpoint's data as columns ``smiles`` and ``endpoint.column`` (in its units), one row
    per source row."""
    raw = pd.read_csv(data_dir / endpoint.source)
    values = pd.to_numeric(raw[endpoint.value_column], errors="coerce").astype(float)
    if endpoint.transform == "log10":
        values = np.log10(values.where(values > 0))
    elif endpoint.transform == "percent":
        values = 100 * values
    elif endpoint.transform:
        raise ValueError(f"unknown transform {endpoint.transform!r}")
    return pd.DataFrame({"smiles": raw[endpoint.smiles_column], endpoint.column: values})


def group_table(endpoints: tuple[str, ...], data_dir: Path = DATA) -> pd.DataFrame:
    """The rows of several endpoints stacked into one table (sparse: a row carries only its own
    endpoint's value; training merges a molecule's rows)."""
    return pd.concat([endpoint_table(ENDPOINTS[e], data_dir) for e in endpoints], ignore_index=True)


# Chosen by scaffold cross-validation, multitask against single-task per endpoint
# (``python -m molpred.pretrained.build --compare GROUP``; RESULTS.md "The ADMET panel").
PANEL: dict[str, PanelModel] = {
    m.name: m
    for m in (
        PanelModel(
            "absorption",
            "Absorption: P-gp, oral bioavailability",
            ("Pgp_inhibitor", "oral_bioavailability"),
        ),
        PanelModel("ppb", "Plasma protein binding", ("PPB",)),
        *(
            PanelModel(f"cyp{c.lower()}_substrate", f"CYP{c} substrate", (f"CYP{c}_substrate",))
            for c in ("2C9", "2D6", "3A4")
        ),
        PanelModel("carcinogen", "Carcinogenicity", ("carcinogen",)),
        PanelModel("skin_reaction", "Skin reaction", ("skin_sensitizer",)),
    )
}
