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

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs
from rdkit.Chem import QED, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

__all__ = [
    "PROPERTY_UNITS",
    "MEDCHEM_COLUMNS",
    "ScreenedCatalog",
    "properties",
    "alerts",
    "prepare_alerts",
    "medchem_table",
]

PROPERTY_UNITS = {
    "MW": "g/mol",
    "cLogP": "",
    "TPSA": "Å²",
    "HBD": "",
    "HBA": "",
    "RotB": "",
    "QED": "0–1",
}

# the columns of :func:`medchem_table`
MEDCHEM_COLUMNS = (*PROPERTY_UNITS, "Lipinski", "Veber", "PAINS", "Brenk")

_PICKLE_MAGIC = b"\xef\xbe\xad\xde"  # start of an RDKit binary molecule pickle
_SCREEN_BITS = 2048


class ScreenedCatalog:
    """An RDKit FilterCatalog matched through a pattern-fingerprint screen.

    An entry can only match a molecule if every bit of its query's pattern fingerprint is set in
    the molecule's, so only those candidate entries are run (~25 of PAINS' 480 on drug-like
    molecules). Same matches as ``FilterCatalog.GetMatches``, in a quarter of the time for PAINS;
    for Brenk's cheaper queries the screen does not pay (``benchmarks/alert_screen.py``). An
    entry whose query cannot be read back gets an empty fingerprint and so is always run.
    """

    def __init__(self, name: str):
        params = FilterCatalogParams()
        params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, name))
        self.catalog = FilterCatalog(params)
        n = self.catalog.GetNumEntries()
        self.entries = [self.catalog.GetEntryWithIdx(i) for i in range(n)]
        self.queries = np.stack([_pattern_bits(q) for q in map(_entry_query, self.entries)])

    def descriptions(self, mol: Chem.Mol, bits: np.ndarray | None = None) -> set[str]:
        """Descriptions of the entries that match ``mol`` (``bits``: its pattern fingerprint,
        if already computed)."""
        bits = _pattern_bits(mol) if bits is None else bits
        candidates = np.flatnonzero(((self.queries & ~bits) == 0).all(axis=1))
        return {
            self.entries[i].GetDescription()
            for i in candidates
            if self.entries[i].HasFilterMatch(mol)
        }


def _entry_query(entry) -> Chem.Mol | None:
    """The query molecule inside a catalog entry (its serialized form embeds the pickle)."""
    blob = entry.Serialize()
    start = blob.find(_PICKLE_MAGIC)
    size = re.search(rb"(\d+) $", blob[:start]) if start > 0 else None
    if size is None:
        return None
    try:
        return Chem.Mol(blob[start : start + int(size.group(1))])
    except RuntimeError:
        return None


def _pattern_bits(mol: Chem.Mol | None) -> np.ndarray:
    if mol is None:
        return np.zeros(_SCREEN_BITS // 8, dtype=np.uint8)
    fp = Chem.PatternFingerprint(mol, fpSize=_SCREEN_BITS)
    return np.frombuffer(DataStructs.BitVectToBinaryText(fp), dtype=np.uint8)


_CATALOGS: dict[str, ScreenedCatalog] = {}


def _catalog(name: str) -> ScreenedCatalog:
    if name not in _CATALOGS:
        _CATALOGS[name] = ScreenedCatalog(name)
    return _CATALOGS[name]


def properties(mol: Chem.Mol) -> dict[str, float]:
    """Computed properties of one molecule (see :data:`PROPERTY_UNITS`). MW is the average
    molecular weight (as in Lipinski's rule); MW, cLogP and TPSA are the values QED itself uses,
    computed once."""
    qed = QED.properties(mol)
    return {
        "MW": qed.MW,
        "cLogP": qed.ALOGP,
        "TPSA": qed.PSA,
        "HBD": float(rdMolDescriptors.CalcNumLipinskiHBD(mol)),
        "HBA": float(rdMolDescriptors.CalcNumLipinskiHBA(mol)),
        "RotB": float(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        "QED": QED.qed(mol, qedProperties=qed),
    }


def prepare_alerts() -> None:
    """Build the alert catalogs now (once per process; :func:`alerts` would on first use)."""
    _catalog("PAINS")
    _catalog("BRENK")


def alerts(mol: Chem.Mol) -> dict[str, str]:
    """Names of the PAINS and Brenk alerts a molecule matches (``"; "``-joined, empty if none)."""
    pains = _catalog("PAINS").descriptions(mol)  # 480 costly queries: screened
    brenk = {m.GetDescription() for m in _catalog("BRENK").catalog.GetMatches(mol)}  # 105 cheap
    return {"PAINS": "; ".join(sorted(pains)), "Brenk": "; ".join(sorted(brenk))}


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
    cols = list(MEDCHEM_COLUMNS)
    table = pd.DataFrame(rows, columns=cols)
    for c in PROPERTY_UNITS:
        table[c] = table[c].astype(np.float64)
    return table
