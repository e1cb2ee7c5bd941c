"""Train the bundled models (``python -m molpred.pretrained.build [NAME ...]``).

Every model of the panel (:mod:`molpred.pretrained.panel`; data: the MoleculeNet sets of ``data/``
and the ADMET sets of ``data/admet/``), the same way: first a scaffold
cross-validation of exactly what ships (:func:`default_folds`: 5 folds, 3 for a group of more
than 5,000 molecules, whose folds' test parts stay above 3,000 molecules at half the cost;
``--folds`` overrides; mean and sd over folds become the model card's metrics), then the
shipped model trains on every usable row (a scaffold 90/10 split: the 10% stop training early
and calibrate the spread, intervals and domain). Every build ends by rebuilding the
approved-drug percentiles (``--approved`` does only that). ``--compare GROUP``
cross-validates a candidate multitask group against each of its endpoints alone, which is how
:data:`panel.PANEL` was chosen. Cross-validation results are kept in
``benchmarks/results/panel_cv.json`` (re-used while data, folds and settings are the same);
build results land in ``benchmarks/results/pretrained.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from molpred._version import __version__
from molpred.artifact import data_fingerprint, load_model
from molpred.features import featurizer_spec
from molpred.fitting import TrainConfig
from molpred.measured import parent_keys, training_keys
from molpred.models import ModelConfig
from molpred.predict import predict
from molpred.pretrained import approved, available, model_path
from molpred.pretrained.endpoints import CYP_INHIBITION, ENDPOINTS, group_table
from molpred.pretrained.panel import PANEL
from molpred.splits import SPLIT_REVISION
from molpred.train import train

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
CV_FILE = RESULTS / "panel_cv.json"

# candidate multitask groups: related endpoints measured on overlapping chemistry
GROUPS: dict[str, tuple[str, ...]] = {
    "cyp_inhibition": CYP_INHIBITION,
    "cyp_substrate": ("CYP2C9_substrate", "CYP2D6_substrate", "CYP3A4_substrate"),
    "cyp_ic50": ("CYP2C9_IC50", "CYP2D6_IC50", "CYP3A4_IC50"),
    "clearance": ("CLint_human", "CLint_mouse", "CLint_rat"),
    "absorption": ("Pgp_inhibitor", "oral_bioavailability"),
    "toxicity": ("carcinogen", "skin_sensitizer"),
}


LARGE = 5000  # molecules; a larger group is cross-validated with 3 folds instead of 5


def default_folds(endpoints: tuple[str, ...], table: pd.DataFrame | None = None) -> int:
    """Scaffold cross-validation folds for a group: 5, or 3 above :data:`LARGE` molecules
    (counted in ``table``, default: the group's bundled data)."""
    table = group_table(endpoints) if table is None else table
    return 3 if table["smiles"].nunique() > LARGE else 5


def _key(endpoints: tuple[str, ...], folds: int, table: pd.DataFrame, standardization: str) -> str:
    """What a cross-validation result depends on: endpoints, folds, data, the featurization,
    how the folds are dealt and the defaults."""
    labels = table[list(endpoints)].to_numpy(dtype=np.float64)
    settings = json.dumps(
        [
            asdict(ModelConfig()),
            asdict(TrainConfig()),
            featurizer_spec(True, standardization),
            SPLIT_REVISION,
        ],
        sort_keys=True,
    )
    digest = hashlib.sha256(
        (data_fingerprint(table["smiles"].tolist(), labels) + settings).encode()
    ).hexdigest()[:16]
    return f"{'+'.join(endpoints)}|folds={folds}|{digest}"


def cross_validate(
    endpoints: tuple[str, ...],
    folds: int | None = None,
    data_dir: Path | None = None,
    standardization: str = "parent",
) -> dict:
    """Scaffold ``folds``-fold cross-validation of one model predicting ``endpoints``: per
    endpoint the primary metric of every fold, with mean and sd. Cached in ``panel_cv.json``."""
    table = group_table(endpoints, *([data_dir] if data_dir else []))
    folds = folds or default_folds(endpoints, table)
    key = _key(endpoints, folds, table, standardization)
    cache = json.loads(CV_FILE.read_text()) if CV_FILE.exists() else {}
    if key in cache:
        return cache[key]
    kinds = {ENDPOINTS[e].task for e in endpoints}
    start = time.perf_counter()
    _, metrics = train(
        table,
        "smiles",
        list(endpoints),
        task_types=kinds.pop(),
        split="scaffold-kfold",
        folds=folds,
        standardization=standardization,
        progress=False,
    )
    metric = metrics["primary_metric"]
    result = {
        "endpoints": list(endpoints),
        "folds": folds,
        "metric": metric,
        "per_endpoint": {},
        "n_molecules": int(
            sum(r["n_train"] + r["n_val"] + r["n_test"] for r in metrics["members"][:1])
        ),
        "n_problems": metrics["n_problems"],
        "best_epochs": [r["best_epoch"] for r in metrics["members"]],
        "seconds": round(time.perf_counter() - start, 1),
        "molpred": __version__,
        "date": time.strftime("%Y-%m-%d"),
        # what the run's model was: older runs (before 2026-12-03) have no such entry; they
        # trained on structures as drawn, without the trees
        "settings": {"standardization": standardization, "trees": TrainConfig().trees},
    }
    for e in endpoints:
        names = sorted(
            {
                k.split("/")[1]
                for r in metrics["members"]
                for k in r["test"]
                if k.startswith(f"{e}/") and not k.endswith("/loss")
            }
        )
        every = {m: _over_folds(metrics["members"], f"{e}/{m}") for m in names}
        result["per_endpoint"][e] = {
            **every[metric],
            "n": int(table[e].notna().sum()),
            "metrics": every,  # every metric, for comparisons that rank by another one
        }
    cache = json.loads(CV_FILE.read_text()) if CV_FILE.exists() else {}  # others may have run
    cache[key] = result
    CV_FILE.write_text(json.dumps(cache, indent=1) + "\n")
    return result


def _over_folds(members: list[dict], key: str) -> dict:
    values = [r["test"].get(key, float("nan")) for r in members]
    return {
        "folds": [round(v, 4) for v in values],
        "mean": round(float(np.nanmean(values)), 4),
        "sd": round(float(np.nanstd(values)), 4),
    }


def compare(group: str, folds: int | None = None) -> list[dict]:
    """Cross-validate ``group`` as one multitask model and each endpoint alone (all with the
    group's folds)."""
    endpoints = GROUPS[group]
    folds = folds or default_folds(endpoints)
    rows = []
    multi = cross_validate(endpoints, folds)
    for e in endpoints:
        single = cross_validate((e,), folds)
        m, s = multi["per_endpoint"][e], single["per_endpoint"][e]
        rows.append(
            {
                "group": group,
                "endpoint": e,
                "metric": multi["metric"],
                "multitask": f"{m['mean']:.3f} ± {m['sd']:.3f}",
                "single": f"{s['mean']:.3f} ± {s['sd']:.3f}",
            }
        )
    return rows


def _fit(name: str, table: pd.DataFrame, provenance: dict | None = None):
    """Model ``name`` of :data:`PANEL` trained on ``table`` as it ships: every usable row, a
    scaffold 90/10 cut to stop early and calibrate."""
    spec = PANEL[name]
    return train(
        table,
        "smiles",
        list(spec.endpoints),
        task_types=spec.task,
        split="scaffold",
        split_sizes=(0.9, 0.1, 0.0),
        standardization=spec.standardization,
        progress=False,
        provenance=provenance,
    )


def build_panel_model(name: str, folds: int | None = None) -> dict:
    """Cross-validate, then train on every usable row, one model of :data:`PANEL`."""
    spec = PANEL[name]
    cv = cross_validate(spec.endpoints, folds, standardization=spec.standardization)
    folds = cv["folds"]
    table = group_table(spec.endpoints)
    start = time.perf_counter()
    sources = sorted({ENDPOINTS[e].source for e in spec.endpoints})
    model, metrics = _fit(
        name,
        table,
        provenance={
            "card": name,
            "data": [f"data/{s}" for s in sources],
            "split": f"all rows (scaffold 90/10: training / early stopping and calibration); "
            f"metrics from scaffold {folds}-fold cross-validation",
        },
    )
    metric = cv["metric"]
    card_metrics = {
        "test": {
            metric: float(np.mean([v["mean"] for v in cv["per_endpoint"].values()])),
            **{f"{e}/{metric}": v["mean"] for e, v in cv["per_endpoint"].items()},
        },
        "test_std": {f"{e}/{metric}": v["sd"] for e, v in cv["per_endpoint"].items()},
        "cross_validation": cv,
        "final_fit": {"members": metrics["members"], "n_problems": metrics["n_problems"]},
        "primary_metric": metric,
        "init": metrics["init"],
    }
    model.info = replace(model.info, metrics=card_metrics, split=f"scaffold {folds}-fold CV")
    model.save(model_path(name))
    return {
        "model": name,
        "cv": {e: f"{v['mean']:.3f} ± {v['sd']:.3f}" for e, v in cv["per_endpoint"].items()},
        "metric": metric,
        "n_molecules": model.info.n_train_molecules,
        "n_problems": metrics["n_problems"],
        "seconds": round(time.perf_counter() - start, 1),
        "cv_seconds": cv["seconds"],
        "molpred": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }


REFERENCE_FOLDS = 5  # for a model that learned most approved drugs: see approved_reference


def approved_reference(names: Sequence[str] | None = None) -> dict:
    """Predict the approved drugs (ClinTox, ``FDA_APPROVED == 1``) with every bundled model (or
    only ``names``, the others' entries kept as they are) and write the 101 percentiles of each
    predicted column to ``approved.json`` (:mod:`molpred.pretrained.approved`).

    Every drug is predicted by a model that did not train on it (by parent structure): on its
    own training molecules a model predicts close to their labels, so drugs it learned from
    would make every new drug look unusual (the ClinTox model trained on 90% of them, and new
    approved drugs sat at its 1st-5th "approved" percentile). A model that learned fewer than
    half of the drugs is judged on the others; one that learned half or more (ClinTox's,
    Tox21's) has the drugs it learned predicted by :data:`REFERENCE_FOLDS` models trained as it
    was, each without a fifth of them (cross-validated), and the rest by itself."""
    table = pd.read_csv(ROOT / "data" / "clintox.csv")
    drugs = table.loc[table["FDA_APPROVED"] == 1, "smiles"].tolist()
    drug_keys = parent_keys(drugs)
    out = {
        "population": "FDA-approved molecules of ClinTox (data/clintox.csv, FDA_APPROVED == 1), "
        "each predicted by a model that did not train on it",
        "models": {},
    }
    kept = approved.reference()["models"] if names is not None else {}
    for name in available():
        if names is not None and name not in names and name in kept:
            out["models"][name] = kept[name]
            continue
        model = load_model(model_path(name))
        learned = set(training_keys(model.domain)) if model.domain is not None else set()
        seen = [bool(k) and k in learned for k in drug_keys]
        unseen = [d for d, k, s in zip(drugs, drug_keys, seen, strict=True) if k and not s]
        parts = [predict(model, unseen)]
        if sum(seen) >= len(drugs) / 2:
            learned_drugs = [(d, k) for d, k, s in zip(drugs, drug_keys, seen, strict=True) if s]
            parts.append(_held_out(name, *map(list, zip(*learned_drugs, strict=True))))
        scored = pd.concat(parts, ignore_index=True)
        ok = scored[scored["error"] == ""]
        out["models"][name] = {
            "identity": approved.identity(model),
            "n": len(ok),
            "learned": sum(seen),
            "cross_validated": len(parts) > 1,
            "tasks": {
                task: np.percentile(ok[task].to_numpy(dtype=float), approved.LEVELS)
                .round(5)
                .tolist()
                for task in model.task_names
            },
        }
    approved.REFERENCE.write_text(json.dumps(out) + "\n")
    approved._CACHE.clear()
    return out


def _held_out(name: str, drugs: list[str], drug_keys: list[str]) -> pd.DataFrame:
    """``drugs`` (training molecules of model ``name``, with their parent keys) each predicted
    by a model trained as ``name`` ships on its data less a fifth of the drugs, the fifth that
    model predicts."""
    table = group_table(PANEL[name].endpoints)
    table_keys = parent_keys(table["smiles"].tolist())
    order = np.random.default_rng(0).permutation(len(drugs))
    parts = []
    for fold in np.array_split(order, REFERENCE_FOLDS):
        held = {drug_keys[i] for i in fold}
        model, _ = _fit(name, table[[k not in held for k in table_keys]])
        parts.append(predict(model, [drugs[i] for i in fold]))
        print(f"{name}: {len(fold)} approved drugs predicted without them", flush=True)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="models to build (default: all)")
    ap.add_argument(
        "--folds", type=int, help="scaffold cross-validation folds (default: 5, 3 above 5,000)"
    )
    ap.add_argument("--compare", nargs="+", metavar="GROUP", choices=sorted(GROUPS))
    ap.add_argument(
        "--approved",
        action="store_true",
        help="only rebuild the approved-drug percentiles of the bundled models (of NAME ... "
        "if given)",
    )
    args = ap.parse_args()
    if args.approved:
        for name, entry in approved_reference(args.names or None)["models"].items():
            print(name, entry["n"], "approved drugs scored", flush=True)
        return
    if args.compare:
        for group in args.compare:
            for row in compare(group, args.folds):
                print(json.dumps(row), flush=True)
        return
    names = args.names or list(PANEL)
    results = []
    for n in names:
        r = build_panel_model(n, args.folds)
        print(json.dumps(r), flush=True)
        results.append(r)
    out = RESULTS / "pretrained.json"
    old = json.loads(out.read_text()) if out.exists() else []
    keep = [r for r in old if r["model"] not in names]
    out.write_text(json.dumps(keep + results, indent=2) + "\n")
    approved_reference(args.names or None)  # a rebuilt model's percentiles from this build


if __name__ == "__main__":
    main()
