"""Atom-level explanations: which atoms push a prediction up or down.

Integrated gradients over a per-atom gate: every atom's input embedding is multiplied by a gate
``w_i``; the prediction is followed along the straight path from all gates closed (``w = 0``:
the molecule's bonds and descriptors only) to all open (``w = 1``), and atom ``i``'s contribution
is ``integral of d prediction / d w_i``. Contributions sum to the prediction minus the closed-gate
baseline (completeness), and are in the task's units (probability for classification). A
member's trees (:mod:`molpred.trees`) see the whole molecule at every gate: they shift the
prediction and its baseline alike, and the network's part is weighted by its share.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from rdkit import Chem

from molpred.artifact import MolpredModel
from molpred.chem import standardize
from molpred.features import collate
from molpred.featurize import descriptors, featurize_mol, fingerprint
from molpred.models import float32_messages
from molpred.parallel import torch_section
from molpred.trees import tree_features

__all__ = ["atom_contributions", "draw_contributions"]


@float32_messages()  # gradients through bfloat16 messages would blur completeness
def atom_contributions(
    model: MolpredModel, smiles: str | Chem.Mol, task: int | str = 0, steps: int = 32
) -> np.ndarray:
    """Contribution of every atom of the molecule, as the model sees it, to one task's prediction.

    Parameters
    ----------
    model
        A trained model (ensembles are averaged over members).
    smiles
        One molecule; raises :class:`~molpred.chem.InvalidMoleculeError` if it cannot be used.
        An RDKit molecule is taken as already prepared the model's way (not standardized
        again).
    task
        Task index or name.
    steps
        Points of the Riemann (midpoint) approximation of the path integral.

    Returns
    -------
    numpy.ndarray
        ``[n_atoms]`` float, in the atom order of
        ``molpred.standardize(smiles, model.standardization)``.
    """
    t = model.task_names.index(task) if isinstance(task, str) else int(task)
    mol = smiles if isinstance(smiles, Chem.Mol) else standardize(smiles, model.standardization)
    graph = featurize_mol(mol)

    desc = descriptors(mol)[None]
    batch = collate([graph] * steps, np.repeat(desc, steps, axis=0))
    tree_x = tree_features(fingerprint(mol)[None], desc)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    n = graph.num_atoms
    total = np.zeros(n)
    with torch_section():
        for member in model.members:
            member.eval()
            gate = alphas.repeat_interleave(n)[:, None].clone().requires_grad_(True)
            batch.atom_gate = gate
            raw = member(batch)
            if member.trees is not None:  # the trees see the whole molecule at every gate
                raw = member.trees.blend(raw, np.repeat(tree_x, steps, axis=0))
            out = member.to_units(raw)[:, t]
            (grad,) = torch.autograd.grad(out.sum(), gate)
            total += grad.view(steps, n).mean(0).double().numpy()
    batch.atom_gate = None
    return total / len(model.members)


def draw_contributions(
    smiles: str | Chem.Mol, weights: np.ndarray, size: int = 400, standardization: str = "none"
) -> bytes:
    """PNG of the molecule with ``weights`` as a red (negative) / green (positive) heat map over
    its atoms (``standardization`` as the model's, so the atoms line up; an RDKit molecule is
    drawn as it is)."""
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    mol = smiles if isinstance(smiles, Chem.Mol) else standardize(smiles, standardization)
    if len(weights) != mol.GetNumAtoms():
        raise ValueError(f"{len(weights)} weights for {mol.GetNumAtoms()} atoms")
    drawer = rdMolDraw2D.MolDraw2DCairo(size, size)
    if mol.GetNumAtoms() < 2:  # RDKit's heat map needs two atoms: one atom is tinted instead
        tinted = {}
        if len(weights) and weights[0] != 0:
            tinted = {0: (0.8, 1.0, 0.8) if weights[0] > 0 else (1.0, 0.8, 0.8)}
        drawer.DrawMolecule(mol, highlightAtoms=list(tinted), highlightAtomColors=tinted)
    else:
        SimilarityMaps.GetSimilarityMapFromWeights(mol, [float(w) for w in weights], draw2d=drawer)
    drawer.FinishDrawing()
    return io.BytesIO(drawer.GetDrawingText()).getvalue()
