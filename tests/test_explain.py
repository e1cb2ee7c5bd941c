"""Sanity check of the explanations: a model trained on a property that is a count of one
substructure must put its attributions on that substructure."""

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from molpred.chem import standardize
from molpred.explain import atom_contributions, draw_contributions
from molpred.features import collate
from molpred.featurize import descriptors, featurize_mol, fingerprint
from molpred.fitting import TrainConfig
from molpred.models import ModelConfig
from molpred.train import train
from molpred.trees import tree_features

HALOGEN = Chem.MolFromSmarts("[F,Cl,Br,I]")


@pytest.fixture(scope="module")
def halogen_model(esol):
    smiles = esol["smiles"].tolist()
    y = [len(standardize(s).GetSubstructMatches(HALOGEN)) for s in smiles]
    df = pd.DataFrame({"smiles": smiles, "halogens": y})
    # a count is extensive: sum pooling (the default mean needs the size descriptors to count)
    config = ModelConfig(
        hidden_size=64, head_hidden_size=64, depth=2, descriptors=False, pooling="sum"
    )
    model, metrics = train(
        df,
        "smiles",
        ["halogens"],
        model_config=config,
        train_config=TrainConfig(epochs=25, batch_size=32),
        progress=False,
        cache_dir=None,
    )
    assert metrics["test"]["rmse"] < 0.5  # it has learned the count
    return model


@pytest.mark.slow
def test_attributions_land_on_the_substructure(halogen_model, esol):
    hits = total = 0
    for smi in esol["smiles"]:
        mol = standardize(smi)
        halogens = {i for (i,) in mol.GetSubstructMatches(HALOGEN)}
        if not halogens or len(halogens) == mol.GetNumAtoms():
            continue
        contrib = atom_contributions(halogen_model, smi)
        top = set(np.argsort(-contrib)[: len(halogens)].tolist())
        hits += len(top & halogens) / len(halogens)
        total += 1
        if total == 40:
            break
    assert hits / total > 0.8


@pytest.mark.slow
def test_contributions_are_complete_and_drawable(halogen_model):
    smi = "Clc1ccc(Br)cc1CCO"
    contrib = atom_contributions(halogen_model, smi, steps=128)
    assert contrib.shape == (standardize(smi).GetNumAtoms(),)
    mol = standardize(smi)
    batch = collate([featurize_mol(mol)], descriptors(mol)[None])
    member = halogen_model.members[0]
    assert member.trees is not None  # the default blends trees: they are part of the sum
    x = tree_features(fingerprint(mol)[None], descriptors(mol)[None])

    def predict():
        with torch.no_grad():
            return float(member.to_units(member.trees.blend(member(batch), x))[0, 0])

    full = predict()
    batch.atom_gate = torch.zeros(mol.GetNumAtoms(), 1)
    baseline = predict()
    # completeness: contributions add up to prediction minus the all-gates-closed baseline
    assert contrib.sum() == pytest.approx(full - baseline, abs=0.02 * max(1.0, abs(full)))
    png = draw_contributions(smi, contrib)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        draw_contributions(smi, contrib[:-1])


@pytest.mark.parametrize("weight", [0.4, -0.2, 0.0])
def test_one_atom_molecules_are_drawn(weight):
    """Water, methane, a single-atom parent: RDKit's heat map raises "too few atoms" for them,
    which emptied the page's detail view (the top-ranked molecule could be one)."""
    for smi in ("O", "C", "[Na+].[Cl-]"):
        mol = standardize(smi, "parent")
        png = draw_contributions(mol, np.array([weight] * mol.GetNumAtoms()))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
