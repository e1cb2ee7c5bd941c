import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

import molpred
from molpred.chem import standardize
from molpred.featurize import fingerprint
from molpred.predict import predict
from molpred.trust.domain import choose_threshold, knn_distance, max_similarity

from .conftest import train_small


def test_max_similarity_equals_rdkit_bulk_tanimoto(esol):
    mols = [standardize(s) for s in esol["smiles"][:300]]
    ref, queries = mols[:250], mols[250:] + [Chem.MolFromSmiles("[Na+]")]  # no bits set
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    ref_bv = [gen.GetFingerprint(m) for m in ref]
    expected = [
        max(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(q), ref_bv)) for q in queries
    ]
    got = max_similarity(
        np.stack([fingerprint(m) for m in queries]), np.stack([fingerprint(m) for m in ref])
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (
        got[:5].max() <= 1.0
        and max_similarity(np.stack([fingerprint(ref[0])]), np.stack([fingerprint(ref[0])]))[0]
        == 1.0
    )


def test_chunked_queries_and_nearest_neighbours_equal_rdkit(esol, monkeypatch):
    """Queries in many small chunks (the bound on the similarity matrix) give the same
    maxima, and a model's nearest training molecules are RDKit's, best first."""
    from molpred.trust import domain

    mols = [standardize(s) for s in esol["smiles"][:260]]
    ref, queries = mols[:250], mols[250:]
    fps = np.stack([fingerprint(m) for m in ref])
    whole = max_similarity(np.stack([fingerprint(m) for m in queries]), fps)
    monkeypatch.setattr(domain, "_ENTRIES", 3 * len(ref))  # 3 queries at a time
    chunked = max_similarity(np.stack([fingerprint(m) for m in queries]), fps)
    np.testing.assert_array_equal(chunked, whole)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    expected = DataStructs.BulkTanimotoSimilarity(
        gen.GetFingerprint(queries[0]), [gen.GetFingerprint(m) for m in ref]
    )
    place = domain.Domain(torch.from_numpy(fps), torch.zeros(1, 4), 1.0, 0.5)
    top = place.neighbors(fingerprint(queries[0]), k=5)
    assert [round(v, 6) for _, v in top] == [round(v, 6) for v in sorted(expected)[::-1][:5]]
    assert all(abs(expected[i] - v) < 1e-6 for i, v in top)
    # among the molecules measured for a task: the best measured ones, never an unmeasured one
    targets = torch.full((len(ref), 1), float("nan"))
    measured = [i for i, _ in top[1:]] + list(range(0, len(ref), 7))
    targets[measured, 0] = 1.0
    sparse = domain.Domain(torch.from_numpy(fps), torch.zeros(1, 4), 1.0, 0.5, targets=targets)
    picked = sparse.neighbors(fingerprint(queries[0]), k=5, task=0)
    assert [i for i, _ in picked][:4] == [i for i, _ in top[1:]]
    assert all(not torch.isnan(targets[i, 0]) for i, _ in picked) and len(picked) == 5
    few = torch.full((len(ref), 1), float("nan"))
    few[[3, 9], 0] = 2.0
    only = domain.Domain(torch.from_numpy(fps), torch.zeros(1, 4), 1.0, 0.5, targets=few)
    assert sorted(i for i, _ in only.neighbors(fingerprint(queries[0]), k=5, task=0)) == [3, 9]
    # a model with a prepared reference still copies and pickles (without the cache)
    for twin in (copy.deepcopy(place), pickle.loads(pickle.dumps(place))):
        assert twin._reference is None and twin.neighbors(fingerprint(queries[0]), k=5) == top


def test_knn_distance():
    ref = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    d = knn_distance(torch.tensor([[0.0, 0.0]]), ref, k=2)
    assert d[0] == pytest.approx(2.5)  # (0 + 5) / 2


def test_threshold_follows_validation_error():
    rng = np.random.default_rng(0)
    sim = rng.uniform(0.1, 0.9, size=400)
    err = np.where(sim < 0.3, 2.0, 0.5) + rng.uniform(0, 0.1, size=400)
    choice = choose_threshold(sim, err)
    assert choice["rule"] == "validation error" and 0.2 < choice["threshold"] < 0.35
    flat = choose_threshold(sim, rng.uniform(size=400))
    assert flat["rule"].startswith("5th percentile")
    assert flat["threshold"] == pytest.approx(np.percentile(sim, 5))


def test_default_model_reports_domain_and_flags_strangers(esol):
    model = train_small(esol.head(300))
    train_smiles = esol["smiles"][:5].tolist()
    strangers = ["[Si](C)(C)(C)O[Si](C)(C)C", "FC(F)(F)S(=O)(=O)N[Se]C#N", "B1OB(O)OB(O)O1"]
    out = predict(model, train_smiles + strangers + ["not a smiles"])
    assert list(out.columns[-4:]) == ["domain_similarity", "latent_distance", "in_domain", "error"]
    seen = out.iloc[:5]
    assert (seen["domain_similarity"] >= 0.99).sum() >= 4  # (duplicates are merged in training)
    # unlike the training set, or an unusually high expected error: out
    assert seen["in_domain"].sum() >= 4 and not out.iloc[5:8]["in_domain"].any()
    task = "measured log solubility in mols per litre_std"
    assert out[task].iloc[5:8].min() > out[task].iloc[:5].median()
    assert pd.isna(out.iloc[8]["in_domain"]) and np.isnan(out.iloc[8]["domain_similarity"])
    latent = out["latent_distance"]
    assert (latent[:8] >= 0).all() and np.isnan(latent[8])


def test_a_cross_validation_ensemble_keeps_new_molecules_in_its_domain(esol):
    """Each member's validation molecules are the others' training molecules: measured against
    all training rows they sat at similarity 1, the threshold became 1 and every new molecule
    was out of domain (a 100-molecule assay trained with the default 5 members)."""
    from .conftest import train_small

    model = train_small(esol.head(100), cv_members=5)
    assert len(model.members) == 5
    assert model.domain.threshold < 0.9
    new = molpred.predict(model, esol["smiles"].iloc[100:160].tolist())
    assert new["in_domain"].any()


def test_two_cross_validation_members_calibrate_finite_intervals(esol):
    """With two members, the second's validation rows are the first's training rows: the latent
    reference, sampled from the first member's training rows only, was then empty for them,
    their latent distances NaN, and so their conformal scores (NaN sorts anywhere)."""
    from .conftest import train_small

    model = train_small(esol.head(100), cv_members=2)
    scores = list(model.conformal_scores(0))
    assert len(scores) >= 80 and np.isfinite(scores).all()
    assert scores == sorted(scores)
    out = molpred.predict(model, esol["smiles"].iloc[100:140].tolist())
    lower, upper = out.filter(like="_lower").iloc[:, 0], out.filter(like="_upper").iloc[:, 0]
    assert np.isfinite(lower).all() and (upper > lower).all()
    assert np.isfinite(out["latent_distance"]).all()
