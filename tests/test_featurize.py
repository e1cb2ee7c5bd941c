import numpy as np
import pytest
from rdkit import Chem

from molpred.chem import mol_from_block, standardize
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


def _reference_codes(mol):
    """The featurizer's specification, spelled out one atom and one bond at a time."""
    atom_values = [
        (
            a.GetAtomicNum(),
            a.GetTotalDegree(),
            a.GetFormalCharge(),
            a.GetChiralTag(),
            a.GetTotalNumHs(),
            a.GetHybridization(),
            a.GetIsAromatic(),
            a.IsInRing(),
        )
        for a in mol.GetAtoms()
    ]
    bond_values = [
        (b.GetBondType(), b.GetIsConjugated(), b.IsInRing(), b.GetStereo()) for b in mol.GetBonds()
    ]

    def code(field, value):
        return field.choices.index(value) if value in field.choices else field.unknown

    x = [[code(f, v) for f, v in zip(ATOM_FIELDS, row, strict=True)] for row in atom_values]
    e = [[code(f, v) for f, v in zip(BOND_FIELDS, row, strict=True)] for row in bond_values]
    return np.array(x).reshape(-1, len(ATOM_FIELDS)), np.array(e).reshape(-1, len(BOND_FIELDS))


STEREO_AND_ODD = [
    "C[C@H](N)C(=O)O",
    "C[C@@H](O)[C@H](N)C",
    "F/C=C/F",
    "F/C=C\\F",
    "C[S@](=O)c1ccccc1",
    "[NH4+].[Cl-]",
    "C[N+](C)(C)C",
    "[O-][N+](=O)c1ccccc1",
    "C#N",
    "c1ccc2c(c1)[nH]c1ccccc12",
    "[2H]C([2H])([2H])O",
    "C1CC2CCC1C2",
    "O=S(=O)(O)O",
    "[Na+].[O-]C(=O)C",
    "B1OC(C)(C)C(C)(C)O1",
    "C[Si](C)(C)C",
    "[Se]=C=[Se]",
    "CC(C)(C)[C@@]1(O)CC[C@H](C)CC1",
]


@pytest.mark.parametrize("smiles", STEREO_AND_ODD)
@pytest.mark.parametrize("mode", ["none", "parent"])
def test_featurizer_matches_its_per_atom_specification(smiles, mode):
    """Fast paths (e.g. skipping chiral tags when there are none) change nothing."""
    mol = standardize(smiles, mode)
    x, e = _reference_codes(mol)
    g = featurize_mol(mol)
    np.testing.assert_array_equal(g.x, x)
    np.testing.assert_array_equal(g.edge_attr[0::2], e)
    masses = [a.GetMass() / 100 for a in mol.GetAtoms()]
    np.testing.assert_allclose(g.atom_mass[:, 0], masses, rtol=1e-6)


def test_featurizer_matches_its_specification_on_molblocks_with_stereo():
    mol = mol_from_block(Chem.MolToMolBlock(Chem.MolFromSmiles("C/C=C/[C@H](N)C(=O)O")))
    x, e = _reference_codes(mol)
    g = featurize_mol(mol)
    np.testing.assert_array_equal(g.x, x)
    np.testing.assert_array_equal(g.edge_attr[0::2], e)
    assert (x[:, 3] != 0).any()  # the chiral tag survived and is featurized
