"""Where a scored molecule's CPU time goes: each stage of ``molpred predict``, one core.

Per stage, CPU microseconds per molecule on the first ``--n`` molecules of the MOSES test
library (``time.process_time``, so a busy neighbour inflates it less than wall time), next to
RDKit's bare ``MolFromSmiles`` as the reference:

- worker side: parse + sanitize, graph, descriptors, Morgan fingerprint, sending the chunk back
  (pickle out and in);
- scoring side: the default model (hidden 200) and the previous default (hidden 300), batches
  of 128 and 512 molecules, on one thread; the applicability-domain similarity against a
  reference set the size of Lipophilicity's training set, as the sparse product molpred uses and
  as the dense product it replaced.

Usage::

    python benchmarks/scoring_breakdown.py [--n 10000] [--out results.json]
"""

from __future__ import annotations

import argparse
import pickle
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from report import save_result  # benchmarks/report.py, beside this script

from molpred.chem import rdkit_log_silenced, standardize
from molpred.features import collate, featurize_chunk
from molpred.featurize import descriptors, featurize_mol, fingerprint
from molpred.models import ModelConfig, build_model
from molpred.trust.domain import _bits, max_similarity

ROOT = Path(__file__).resolve().parent.parent
MOSES = ROOT.parent / "shared" / "data" / "moses_test.csv.gz"


def per_molecule(fn, n: int) -> float:
    """CPU microseconds per molecule of ``fn()`` (best of two runs)."""
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return round(best / n * 1e6, 1)


def dense_max_similarity(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The dense bit-matrix product molpred used before (same values)."""
    ref = _bits(reference)
    q = _bits(queries)
    inter = q @ ref.T
    union = q.sum(1, keepdim=True) + ref.sum(1)[None, :] - inter
    return (inter / union.clamp(min=1)).max(1).values.numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/scoring_breakdown.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    smiles = pd.read_csv(MOSES, nrows=args.n)["SMILES"].tolist()
    n = len(smiles)
    with rdkit_log_silenced():
        mols = [standardize(s) for s in smiles]
    stages = {
        "rdkit_MolFromSmiles": per_molecule(lambda: [Chem.MolFromSmiles(s) for s in smiles], n),
        "parse_and_sanitize": per_molecule(lambda: [standardize(s) for s in smiles], n),
        "graph": per_molecule(lambda: [featurize_mol(m) for m in mols], n),
        "descriptors": per_molecule(lambda: [descriptors(m) for m in mols], n),
        "fingerprint": per_molecule(lambda: [fingerprint(m) for m in mols], n),
        "featurize_chunk_total": per_molecule(lambda: featurize_chunk(smiles), n),
    }
    feats = featurize_chunk(smiles)
    stages["send_chunk_pickle_out_and_in"] = per_molecule(
        lambda: pickle.loads(pickle.dumps(feats, protocol=5)), n
    )

    model_us = {}
    for hidden in (200, 300):
        model = build_model(ModelConfig(hidden_size=hidden)).eval()
        for bs in (128, 512):
            batches = [
                collate(feats.graphs[i : i + bs], feats.descriptors[i : i + bs])
                for i in range(0, n, bs)
            ]

            def score(batches=batches, model=model) -> None:
                with torch.inference_mode():
                    for b in batches:
                        model.predict_full(b)

            model_us[f"hidden{hidden}_batch{bs}"] = per_molecule(score, n)

    # a reference set the size of Lipophilicity's training set (3,360 molecules)
    fps = feats.fingerprints
    ref, queries = fps[:3360], fps[3360:]
    sparse = max_similarity(queries, ref)
    assert np.array_equal(sparse, dense_max_similarity(queries, ref))
    domain_us = {
        "reference_molecules": len(ref),
        "sparse_product": per_molecule(lambda: max_similarity(queries, ref), len(queries)),
        "dense_product": per_molecule(lambda: dense_max_similarity(queries, ref), len(queries)),
    }
    result = {
        "date": date.today().isoformat(),
        "molecules": n,
        "threads": 1,
        "cpu_us_per_molecule": stages,
        "model_cpu_us_per_molecule": model_us,
        "domain_similarity_cpu_us_per_query": domain_us,
    }
    save_result(result, Path(args.out))


if __name__ == "__main__":
    main()
