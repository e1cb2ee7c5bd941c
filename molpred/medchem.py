"""What a medicinal chemist reads next to a prediction: computed properties, rule-of-thumb checks
and structural alerts, all from RDKit.

- properties: molecular weight, Crippen cLogP, TPSA, H-bond donors/acceptors (Lipinski's
  definitions), rotatable bonds, QED;
- rules: Lipinski's rule of five (at most one violation) and Veber (rotatable bonds <= 10, TPSA
  <= 140);
- alerts: substructure matches from RDKit's FilterCatalog (PAINS A/B/C and Brenk), named.

Shapes: one row per input molecule, aligned with the input (``None`` molecules give NaN/empty).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import QED, Crippen, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

__all__ = ["PROPERTY_UNITS", "properties", "alerts", "medchem_table"]

PROPERTY_UNITS = {
    "MW": "g/mol", "cLogP": "", "TPSA": "Å²", "HBD": "", "HBA": "", "RotB": "", "QED": "0–1",
}  # fmt: skip

_CATALOGS: dict[str, FilterCatalog] = {}


def _catalog(name: str) -> FilterCatalog:
    if name not in _CATALOGS:
        params = FilterCatalogParams()
        params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, name))
        _CATALOGS[name] = FilterCatalog(params)
    return _CATALOGS[name]


def properties(mol: Chem.Mol) -> dict[str, float]:
    """Computed properties of one molecule (see :data:`PROPERTY_UNITS`)."""
    return {
        "MW": rdMolDescriptors.CalcExactMolWt(mol),
        "cLogP": Crippen.MolLogP(mol),
        "TPSA": rdMolDescriptors.CalcTPSA(mol),
        "HBD": float(rdMolDescriptors.CalcNumLipinskiHBD(mol)),
        "HBA": float(rdMolDescriptors.CalcNumLipinskiHBA(mol)),
        "RotB": float(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        "QED": QED.qed(mol),
    }


def alerts(mol: Chem.Mol) -> dict[str, str]:
    """Names of the PAINS and Brenk alerts a molecule matches (``"; "``-joined, empty if none)."""
    out = {}
    for label, name in (("PAINS", "PAINS"), ("Brenk", "BRENK")):
        matches = _catalog(name).GetMatches(mol)
        out[label] = "; ".join(sorted({m.GetDescription() for m in matches}))
    return out


def medchem_table(mols: Sequence[Chem.Mol | None]) -> pd.DataFrame:
    """Properties, rule checks and alerts for every molecule, one row each."""
    rows = []
    for mol in mols:
        if mol is None:
            rows.append({})
            continue
        p = properties(mol)
        lipinski = sum([p["MW"] > 500, p["cLogP"] > 5, p["HBD"] > 5, p["HBA"] > 10])
        p["Lipinski"] = lipinski <= 1
        p["Veber"] = p["RotB"] <= 10 and p["TPSA"] <= 140
        p.update(alerts(mol))
        rows.append(p)
    cols = [*PROPERTY_UNITS, "Lipinski", "Veber", "PAINS", "Brenk"]
    table = pd.DataFrame(rows, columns=cols)
    for c in PROPERTY_UNITS:
        table[c] = table[c].astype(np.float64)
    return table
