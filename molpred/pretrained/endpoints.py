"""The endpoints of the ADMET panel: what each predicted column means and the data it is
learned from.

An :class:`Endpoint` is one predicted column as a chemist reads it (units, which direction is
desirable, a plain-language description, category, source, citation, licence).

The data are copies of public sets in ``data/`` (the MoleculeNet sets: ``data/README.md``) and
``data/admet/`` (``data/admet/README.md``: provenance, citations, licences);
:func:`endpoint_table` reads one as (SMILES, value) in the endpoint's units, with every row kept
(an unusable value becomes NaN and is reported by training); :func:`group_table` stacks the
endpoints of one model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORIES",
    "CYP_INHIBITION",
    "DATA",
    "Endpoint",
    "ENDPOINTS",
    "endpoint_table",
    "group_table",
    "TOX21",
]

DATA = Path(__file__).resolve().parents[2] / "data"

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
MOLECULENET = "Wu et al., MoleculeNet, Chem. Sci. 2018, 9, 513-530"
MOLECULENET_LICENCE = "MIT (the MoleculeNet mirror); data as its original source"
# unbound fractions below this (0.1%: 99.9% bound and above) are counted as this, at the
# resolution of plasma protein binding assays; 3% of PharmaBench's rows are 100% bound
MIN_UNBOUND = 1e-3


@dataclass(frozen=True)
class Endpoint:
    """One predicted property of the panel.

    ``column`` is the model's target name (and the output column); ``transform`` maps the
    source's values to ``units``: ``log10`` (values <= 0 become NaN: unusable), or
    ``log10_unbound`` (a bound fraction ``fb`` in 0-1 to ``log10(1 - fb)``, the unbound fraction
    floored at :data:`MIN_UNBOUND`; other values become NaN).
    """

    column: str
    label: str
    category: str
    task: str  # regression | classification
    units: str
    preferred: str  # higher | lower | "range lo hi" | "" (no sensible default)
    description: str
    source: str  # file under data/
    smiles_column: str
    value_column: str
    citation: str
    licence: str
    transform: str = ""
    # what a value can physically be (None: unbounded); predictions and intervals are held
    # inside (an unbound fraction above 100% is no prediction)
    bounds: tuple[float | None, float | None] = (None, None)


def _tdc(column, label, category, file, preferred, description, citation) -> Endpoint:
    return Endpoint(
        column,
        label,
        category,
        "classification",
        "probability",
        preferred,
        description,
        f"admet/tdc/{file}",
        "Drug",
        "Y",
        citation,
        TDC_LICENCE,
    )


def _pharmabench(
    column, label, category, task, file, units, preferred, description, transform="", bounds=None
):
    return Endpoint(
        column,
        label,
        category,
        task,
        units,
        preferred,
        description,
        f"admet/pharmabench/{file}",
        "Smiles_unify",
        "value",
        PHARMABENCH,
        "CC0 1.0",
        transform,
        bounds or (None, None),
    )


def _moleculenet(column, label, category, task, file, units, preferred, description, citation):
    return Endpoint(
        column,
        label,
        category,
        task,
        units,
        preferred,
        description,
        file,
        "smiles",
        column,
        f"{citation}; {MOLECULENET}",
        MOLECULENET_LICENCE,
    )


_CYPS = ("1A2", "2C19", "2C9", "2D6", "3A4")
CYP_INHIBITION = tuple(f"CYP{c}_inhibitor" for c in _CYPS)
TOX21 = {  # assay: what activity in it means
    "NR-AR": "androgen receptor agonism",
    "NR-AR-LBD": "androgen receptor (ligand-binding domain) agonism",
    "NR-AhR": "aryl hydrocarbon receptor activation",
    "NR-Aromatase": "aromatase inhibition",
    "NR-ER": "estrogen receptor alpha agonism",
    "NR-ER-LBD": "estrogen receptor alpha (ligand-binding domain) agonism",
    "NR-PPAR-gamma": "PPAR-gamma agonism",
    "SR-ARE": "oxidative stress (antioxidant response element)",
    "SR-ATAD5": "genotoxic stress (ATAD5)",
    "SR-HSE": "heat shock response",
    "SR-MMP": "mitochondrial membrane potential disruption",
    "SR-p53": "DNA damage response (p53)",
}

ENDPOINTS: dict[str, Endpoint] = {
    e.column: e
    for e in (
        _moleculenet(
            "measured log solubility in mols per litre",
            "logS (ESOL)",
            PHYS,
            "regression",
            "esol.csv",
            "log10(mol/L)",
            "higher",
            "Intrinsic aqueous solubility, log S, from 1,128 measurements (ESOL): mostly "
            "small, simple molecules. For drug-like candidates, prefer logS (AqSolDB), "
            "learned from ten times as many; where the two disagree, check each one's domain "
            "column.",
            "Delaney, J. Chem. Inf. Comput. Sci. 2004, 44, 1000-1005",
        ),
        _moleculenet(
            "exp",
            "logD7.4",
            PHYS,
            "regression",
            "lipophilicity.csv",
            "log10",
            "range 1 3",
            "Octanol/buffer distribution coefficient at pH 7.4.",
            "AstraZeneca ChEMBL deposition CHEMBL3301361, 2015",
        ),
        _moleculenet(
            "expt",
            "dG_hyd",
            PHYS,
            "regression",
            "freesolv.csv",
            "kcal/mol",
            "",
            "Experimental hydration free energy in water.",
            "Mobley & Guthrie, J. Comput.-Aided Mol. Des. 2014, 28, 711-720",
        ),
        _moleculenet(
            "p_np",
            "BBB_penetration",
            PHYS,
            "classification",
            "bbbp.csv",
            "probability",
            "",
            "Probability that the compound crosses the blood-brain barrier.",
            "Martins et al., J. Chem. Inf. Model. 2012, 52, 1686-1697",
        ),
        *(
            _moleculenet(
                assay,
                assay,
                TOX,
                "classification",
                "tox21.csv",
                "probability",
                "lower",
                f"Probability of activity in the Tox21 {assay} assay: {meaning}.",
                "Tox21 Data Challenge 2014 (NIH/NCATS/EPA)",
            )
            for assay, meaning in TOX21.items()
        ),
        _moleculenet(
            "FDA_APPROVED",
            "FDA_APPROVED",
            TOX,
            "classification",
            "clintox.csv",
            "probability",
            "higher",
            "Probability of looking like an FDA-approved drug (ClinTox).",
            "Gayvert et al., Cell Chem. Biol. 2016, 23, 1294-1301",
        ),
        _moleculenet(
            "CT_TOX",
            "CT_TOX",
            TOX,
            "classification",
            "clintox.csv",
            "probability",
            "lower",
            "Probability of failing clinical trials for toxicity (ClinTox).",
            "Gayvert et al., Cell Chem. Biol. 2016, 23, 1294-1301",
        ),
        Endpoint(
            "logS_AqSolDB",
            "logS (AqSolDB)",
            PHYS,
            "regression",
            "log10(mol/L)",
            "higher",
            "Aqueous solubility, log S, learned from ~10,000 curated measurements of varied "
            "chemistry (AqSolDB); the panel's solubility to rank drug-like candidates by.",
            "admet/aqsoldb/data_curated.csv",
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
            "log10_fu",
            "Unbound fraction in plasma",
            DIST,
            "regression",
            "ppb_reg_final_data.csv",
            "log10(fu)",
            "higher",
            "Fraction of drug not bound to plasma proteins, as log10 (-1: 90% bound, -2: 99% "
            "bound); only the unbound drug acts.",
            "log10_unbound",
            (float(np.log10(MIN_UNBOUND)), 0.0),  # 0.1% to 100% unbound, as learned
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


def endpoint_table(endpoint: Endpoint, data_dir: Path = DATA) -> pd.DataFrame:
    """The endpoint's data as columns ``smiles`` and ``endpoint.column`` (in its units), one row
    per source row."""
    raw = pd.read_csv(data_dir / endpoint.source)
    values = pd.to_numeric(raw[endpoint.value_column], errors="coerce").astype(float)
    if endpoint.transform == "log10":
        values = np.log10(values.where(values > 0))
    elif endpoint.transform == "log10_unbound":
        bound = values.where(values.between(0, 1))  # outside 0-1: not a fraction, unusable
        values = np.log10((1 - bound).clip(lower=MIN_UNBOUND))
    elif endpoint.transform:
        raise ValueError(f"unknown transform {endpoint.transform!r}")
    return pd.DataFrame({"smiles": raw[endpoint.smiles_column], endpoint.column: values})


def group_table(endpoints: tuple[str, ...], data_dir: Path = DATA) -> pd.DataFrame:
    """The rows of several endpoints' files stacked into one table: endpoints of one file share
    its rows; a row of another file carries NaN for them (training merges a molecule's rows)."""
    by_source: dict[str, list[Endpoint]] = {}
    for e in endpoints:
        by_source.setdefault(ENDPOINTS[e].source, []).append(ENDPOINTS[e])
    parts = []
    for ends in by_source.values():
        part = endpoint_table(ends[0], data_dir)
        for e in ends[1:]:
            part[e.column] = endpoint_table(e, data_dir)[e.column]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def value_bounds(model) -> dict[str, tuple[float | None, float | None]]:
    """Task -> the bounds its values can take, for a bundled model (found by its card); empty
    for any other model."""
    if not model.info.card:
        return {}
    return {
        t: ENDPOINTS[t].bounds
        for t in model.task_names
        if t in ENDPOINTS and ENDPOINTS[t].bounds != (None, None)
    }
