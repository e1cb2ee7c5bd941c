"""Check and time the pattern-fingerprint screen in front of RDKit's PAINS/Brenk catalogs.

On HIV (first 15,000) and Tox21 molecules, which carry many PAINS matches, every molecule's
matches through :class:`molpred.medchem.ScreenedCatalog` must equal RDKit's
``FilterCatalog.GetMatches``; reports the time per molecule of both.

Usage::

    python benchmarks/alert_screen.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from rdkit import Chem
from report import save_result  # benchmarks/report.py, beside this script

from molpred.chem import rdkit_log_silenced
from molpred.medchem import ScreenedCatalog, _pattern_bits

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    smiles = (
        pd.read_csv(SHARED / "HIV.csv")["smiles"].head(15_000).tolist()
        + pd.read_csv(SHARED / "tox21.csv")["smiles"].tolist()
    )
    with rdkit_log_silenced():
        mols = [m for m in map(Chem.MolFromSmiles, smiles) if m is not None]
    result = {"date": time.strftime("%Y-%m-%d"), "molecules": len(mols)}
    for name in ("PAINS", "BRENK"):
        screened = ScreenedCatalog(name)
        start = time.perf_counter()
        full = [{e.GetDescription() for e in screened.catalog.GetMatches(m)} for m in mols]
        full_s = time.perf_counter() - start
        start = time.perf_counter()
        fast = [screened.descriptions(m, _pattern_bits(m)) for m in mols]
        fast_s = time.perf_counter() - start
        result[name] = {
            "entries": len(screened.entries),
            "molecules_with_matches": sum(bool(f) for f in full),
            "mismatches": sum(a != b for a, b in zip(full, fast, strict=True)),
            "rdkit_ms_per_molecule": round(full_s / len(mols) * 1e3, 3),
            "screened_ms_per_molecule": round(fast_s / len(mols) * 1e3, 3),
        }
    save_result(result, ROOT / "benchmarks" / "results" / "alert_screen.json")


if __name__ == "__main__":
    main()
