"""Where the page's scoring time goes: CPU seconds per 1,000 MOSES molecules, one thread, for
each part of what a pool worker does with a chunk (issue #18's ≤ 5 s page).

Parts: the graph featurization; the page's per-molecule RDKit work (properties with QED,
PAINS/Brenk alerts, the depiction); scoring with the whole bundled panel, and inside it the
D-MPNN matrix products, the trees' predictions (LightGBM) and the Tanimoto nearest neighbour
and latent distance of the domain columns (cProfile), and how many trees the panel holds.
Also the panel's training fingerprints: their total, how many are distinct, and the memory of
their similarity references (sparse, as scoring holds them; dense float32 bits, as before).

Usage::

    python benchmarks/page_profile.py [--n 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from report import save_result  # benchmarks/report.py, beside this script

import molpred
from molpred.medchem import alerts, properties
from molpred.predictor import Predictor
from molpred.pretrained import available, model_path
from molpred.screen import mol_svg

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"
ADDMM = "<built-in method torch.addmm>"  # the message passing's products, as cProfile names them


def cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _reference_bytes(domain) -> int:
    bits = domain.reference().bits
    parts = (bits.values(), bits.col_indices(), bits.crow_indices(), domain.reference().counts)
    return sum(t.numel() * t.element_size() for t in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    smiles = pd.read_csv(LIBRARY, nrows=args.n).iloc[:, 0].tolist()
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    models = {n: molpred.load_model(model_path(n)) for n in available()}
    predictor = Predictor(models, percentiles=True)
    work = predictor.featurizer(trim=False)  # as the page's workers
    chunks = [smiles[i : i + 100] for i in range(0, len(smiles), 100)]
    prepared = [work(c) for c in chunks]  # warm-up, and the chunks to score
    [predictor.score(p) for p in prepared]
    alerts(mols[0])  # builds the alert catalogs once, as a worker's first chunk does
    per_1000 = 1000 / len(smiles)

    scoring = cpu(lambda: [predictor.score(p) for p in prepared])
    profile = cProfile.Profile()  # where the scoring goes (the profiler slows Python, not these)
    profile.enable()
    for p in prepared:
        predictor.score(p)
    profile.disable()
    stats = pstats.Stats(profile).stats

    def inside(name: str, file: str = "") -> float:  # cumulative seconds of such functions
        return sum(v[3] for k, v in stats.items() if k[2] == name and k[0].endswith(file))

    fingerprints = [np.asarray(m.domain.fingerprints) for m in models.values()]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "molecules": len(smiles),
        "models": len(models),
        "cpu_seconds_per_1000": {
            "featurize": round(cpu(lambda: [work(c) for c in chunks]) * per_1000, 2),
            "properties_with_qed": round(cpu(lambda: [properties(m) for m in mols]) * per_1000, 2),
            "alerts": round(cpu(lambda: [alerts(m) for m in mols]) * per_1000, 2),
            "depiction": round(cpu(lambda: [mol_svg(m) for m in mols]) * per_1000, 2),
            "scoring_whole_panel": round(scoring * per_1000, 2),
            "of_which_message_passing_products": round(inside(ADDMM) * per_1000, 2),
            "of_which_tanimoto_neighbour": round(inside("max_similarity") * per_1000, 2),
            "of_which_latent_distance": round(inside("knn_distance") * per_1000, 2),
            "of_which_trees": round(inside("raw", "molpred/trees.py") * per_1000, 2),
        },
        "trees": sum(
            b.num_trees()
            for m in models.values()
            for member in m.members
            if member.trees is not None
            for b in member.trees.boosters
            if b is not None
        ),
        "training_fingerprints": sum(len(f) for f in fingerprints),
        # the similarity references as scoring holds them, against dense float32 bits
        "domain_reference_mb": round(
            sum(_reference_bytes(m.domain) for m in models.values()) / 1e6
        ),
        "dense_reference_mb": round(sum(f.shape[0] * 2048 * 4 for f in fingerprints) / 1e6),
        "distinct_training_fingerprints": len(np.unique(np.concatenate(fingerprints), axis=0)),
    }
    save_result(result, ROOT / "benchmarks" / "results" / "page_profile.json")


if __name__ == "__main__":
    main()
