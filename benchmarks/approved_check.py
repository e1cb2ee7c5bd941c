"""Do approved drugs the panel never saw sit where approved drugs sit?

A percentile among approved drugs says "this prediction is higher than X% of approved drugs'".
For a drug approved after the reference population was assembled, and absent from every
training set, X should be unremarkable. This script scores a few such drugs (none of them in
ClinTox, the reference population, by parent structure) with every bundled model and reports
their percentiles two ways:

- ``in-sample``: against every approved drug predicted by the shipped model itself, the
  reference as it was built before 2026-12-03 (most of ClinTox's and Tox21's reference drugs
  were those models' own training molecules);
- ``shipped``: against ``approved.json`` as built now (each drug predicted by a model that did
  not train on it: :func:`molpred.pretrained.build.approved_reference`).

Usage::

    python benchmarks/approved_check.py     # -> results/approved_check.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import molpred
from molpred.chem import parent_key
from molpred.predict import predict
from molpred.predictor import Predictor
from molpred.pretrained import approved, available, model_path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "approved_check.json"

# approved by the FDA in 2006-2023, none of them in ClinTox (checked below)
DRUGS = {
    "nirmatrelvir": "CC1(C2C1C(N(C2)C(=O)C(C(C)(C)C)NC(=O)C(F)(F)F)C(=O)NC(CC3CCNC3=O)C#N)C",
    "baricitinib": "CCS(=O)(=O)N1CC(C1)(CC#N)N2C=C(C=N2)C3=C4C=CNC4=NC=N3",
    "tofacitinib": "CC1CCN(CC1N(C)C2=NC=NC3=C2C=CN3)C(=O)CC#N",
    "sitagliptin": "C1CN2C(=NN=C2C(F)(F)F)CN1C(=O)CC(CC3=CC(=C(C=C3F)F)F)N",
}


def main() -> None:
    clintox = pd.read_csv(ROOT / "data" / "clintox.csv")
    known = {parent_key(s) for s in clintox["smiles"]}
    assert not any(parent_key(s) in known for s in DRUGS.values()), "a drug is in ClinTox"
    population = clintox.loc[clintox["FDA_APPROVED"] == 1, "smiles"].tolist()
    rows = []
    for name in available():
        model = molpred.load_model(model_path(name))
        shipped = predict(Predictor({name: model}, percentiles=True), list(DRUGS.values()))
        everyone = predict(model, population)
        everyone = everyone[everyone["error"] == ""]
        for task in model.task_names:
            quantiles = np.percentile(everyone[task].to_numpy(dtype=float), approved.LEVELS)
            in_sample = np.interp(shipped[task].to_numpy(dtype=float), quantiles, approved.LEVELS)
            for drug, before, now in zip(
                DRUGS, in_sample, shipped[f"{task}_pct_approved"], strict=True
            ):
                rows.append(
                    {"model": name, "task": task, "drug": drug, "in_sample": before, "shipped": now}
                )
    table = pd.DataFrame(rows)
    table["in_sample_off_centre"] = (table["in_sample"] - 50).abs()
    table["shipped_off_centre"] = (table["shipped"] - 50).abs()
    summary = table.groupby("model")[["in_sample_off_centre", "shipped_off_centre"]].median()
    OUT.write_text(
        json.dumps(
            {"drugs": DRUGS, "rows": table.round(2).to_dict("records")}, indent=1, default=float
        )
        + "\n"
    )
    print(summary.round(1).to_string())
    focus = table[table["model"].isin(["clintox", "tox21"])]
    print(focus[["model", "task", "drug", "in_sample", "shipped"]].round(1).to_string(index=False))


if __name__ == "__main__":
    main()
