import numpy as np
import pytest
from rdkit import Chem

from molpred.chem import standardize
from molpred.featurize import (
    ATOM_FIELDS,
    BOND_FIELDS,
    DESCRIPTOR_NAMES,
    atom_field_sizes,
    descriptors,
    featurize_mol,
    to_data,
)


def test_shapes_and_dtypes():
    g = featurize_mol(standardize("CC(=O)Oc1ccccc1C(=O)O"))  # aspirin: 13 atoms, 13 bonds
    assert g.x.shape == (13, len(ATOM_FIELDS)) and g.x.dtype == np.int16
    assert g.atom_mass.shape == (13, 1)
    assert g.edge_index.shape == (2, 26)
    assert g.edge_attr.shape == (26, len(BOND_FIELDS))


def test_directed_edges_come_in_reverse_pairs():
    g = featurize_mol(standardize("c1ccccc1CCN"))
    ei = g.edge_index
    np.testing.assert_array_equal(ei[0, 0::2], ei[1, 1::2])
    np.testing.assert_array_equal(ei[1, 0::2], ei[0, 1::2])
    np.testing.assert_array_equal(g.edge_attr[0::2], g.edge_attr[1::2])


def test_codes_are_within_field_sizes_and_unknown_slot_is_used():
    mol = Chem.MolFromSmiles("[*]C(=O)[Og]")  # dummy atom (Z=0) and Z=118: outside the table
    g = featurize_mol(mol)
    sizes = np.array(atom_field_sizes())
    assert (g.x >= 0).all() and (g.x < sizes).all()
    element_unknown = ATOM_FIELDS[0].unknown
    assert g.x[0, 0] == element_unknown and g.x[3, 0] == element_unknown
    assert g.x[1, 0] == 5  # carbon: Z=6 -> index 5


def test_known_values():
    g = featurize_mol(standardize("c1ccccc1"))
    arom = [f.name for f in ATOM_FIELDS].index("aromatic")
    assert (g.x[:, arom] == 1).all()
    bond_type = BOND_FIELDS[0].choices.index(Chem.rdchem.BondType.AROMATIC)
    assert (g.edge_attr[:, 0] == bond_type).all()


def test_single_atom_molecule_has_no_edges():
    g = featurize_mol(standardize("C"))
    assert g.x.shape[0] == 1 and g.edge_index.shape == (2, 0) and g.edge_attr.shape[0] == 0


def test_descriptors_are_finite_and_sensible():
    d = descriptors(standardize("CCO"))
    assert d.shape == (len(DESCRIPTOR_NAMES),) and np.isfinite(d).all()
    assert d[DESCRIPTOR_NAMES.index("ExactMolWt")] == pytest.approx(46.04, abs=0.01)
    assert d[DESCRIPTOR_NAMES.index("NumHBD")] == 1


def test_to_data_is_a_pyg_data():
    data = to_data(featurize_mol(standardize("CCO")))
    assert data.num_nodes == 3 and data.edge_index.shape == (2, 4)
