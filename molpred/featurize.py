"""Molecule -> graph.

Atoms and bonds are described by categorical fields, each with an ``unknown`` slot so an unseen
element or hybridization never raises. Rather than materializing wide one-hot vectors, the
featurizer stores one small integer *code* per field (``x[:, f]`` is the category index of field
``f``). The model embeds each field and sums the embeddings, which is exactly a linear layer
applied to the concatenated one-hot vector, at a fraction of the memory and copy cost.

Shapes (one molecule with ``N`` atoms and ``B`` bonds):

- ``x``: ``[N, n_atom_fields]`` int16 codes
- ``atom_mass``: ``[N, 1]`` float32, atomic mass / 100
- ``edge_index``: ``[2, 2B]`` int64, each bond as two directed edges; edge ``2k`` and ``2k + 1``
  are reverses of each other (the D-MPNN relies on this pairing)
- ``edge_attr``: ``[2B, n_bond_fields]`` int16 codes
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors, rdqueries
from torch_geometric.data import Data

__all__ = [
    "CategoricalField",
    "ATOM_FIELDS",
    "BOND_FIELDS",
    "FEATURIZER_VERSION",
    "MolGraph",
    "DESCRIPTOR_NAMES",
    "descriptors",
    "raw_descriptors",
    "FP_BITS",
    "fingerprint",
    "clean_descriptors",
    "featurize_mol",
    "to_data",
    "atom_field_sizes",
    "bond_field_sizes",
]

# Bumped whenever a field, its choices or their order change: stored in every model file and
# part of the feature-cache key.
FEATURIZER_VERSION = 1


@dataclass(frozen=True)
class CategoricalField:
    """A categorical feature: ``choices`` plus one trailing ``unknown`` slot.

    ``len(field)`` is the number of codes (``len(choices) + 1``); :meth:`codes` maps raw values
    to codes with one vectorized lookup.
    """

    name: str
    choices: tuple

    def __len__(self) -> int:
        return len(self.choices) + 1

    @property
    def unknown(self) -> int:
        return len(self.choices)

    def lookup(self) -> dict:
        return {value: i for i, value in enumerate(self.choices)}


_HYB = Chem.rdchem.HybridizationType
_CHI = Chem.rdchem.ChiralType
_BT = Chem.rdchem.BondType
_BS = Chem.rdchem.BondStereo

ATOM_FIELDS: tuple[CategoricalField, ...] = (
    CategoricalField("element", tuple(range(1, 101))),
    CategoricalField("degree", (0, 1, 2, 3, 4, 5, 6)),
    CategoricalField("formal_charge", (-2, -1, 0, 1, 2)),
    CategoricalField(
        "chirality",
        (_CHI.CHI_UNSPECIFIED, _CHI.CHI_TETRAHEDRAL_CW, _CHI.CHI_TETRAHEDRAL_CCW, _CHI.CHI_OTHER),
    ),
    CategoricalField("total_hs", (0, 1, 2, 3, 4)),
    CategoricalField(
        "hybridization",
        (_HYB.S, _HYB.SP, _HYB.SP2, _HYB.SP3, _HYB.SP3D, _HYB.SP3D2),
    ),
    CategoricalField("aromatic", (False, True)),
    CategoricalField("in_ring", (False, True)),
)

BOND_FIELDS: tuple[CategoricalField, ...] = (
    CategoricalField("bond_type", (_BT.SINGLE, _BT.DOUBLE, _BT.TRIPLE, _BT.AROMATIC)),
    CategoricalField("conjugated", (False, True)),
    CategoricalField("in_ring", (False, True)),
    CategoricalField(
        "stereo",
        (_BS.STEREONONE, _BS.STEREOANY, _BS.STEREOZ, _BS.STEREOE, _BS.STEREOCIS, _BS.STEREOTRANS),
    ),
)

# Getter per field, in field order. Module-level lists of unbound methods avoid attribute
# lookups in the hot loop.
_ATOM_GETTERS: tuple[Callable, ...] = (
    Chem.Atom.GetAtomicNum,
    Chem.Atom.GetTotalDegree,
    Chem.Atom.GetFormalCharge,
    Chem.Atom.GetChiralTag,
    Chem.Atom.GetTotalNumHs,
    Chem.Atom.GetHybridization,
    Chem.Atom.GetIsAromatic,
    Chem.Atom.IsInRing,
)
_BOND_GETTERS: tuple[Callable, ...] = (
    Chem.Bond.GetBondType,
    Chem.Bond.GetIsConjugated,
    Chem.Bond.IsInRing,
    Chem.Bond.GetStereo,
)
# Most library molecules have no chiral tag at all: one C++ query tells, and the per-atom
# GetChiralTag calls (an enum each, ~6% of featurization) are skipped for them.
_HAS_CHIRAL_TAG = rdqueries.HasChiralTagQueryAtom()
_CHIRAL_COLUMN = [f.name for f in ATOM_FIELDS].index("chirality")
_ACHIRAL_GETTERS = tuple(None if j == _CHIRAL_COLUMN else g for j, g in enumerate(_ATOM_GETTERS))


class _Codebook(dict):
    """Raw value -> code, with the field's ``unknown`` code for anything else (so lookups can
    run as ``map(book.__getitem__, values)``, without a Python frame per value)."""

    def __init__(self, field: CategoricalField):
        super().__init__(field.lookup())
        self.unknown = field.unknown

    def __missing__(self, key: object) -> int:
        return self.unknown


_ATOM_BOOKS = tuple(_Codebook(f) for f in ATOM_FIELDS)
_BOND_BOOKS = tuple(_Codebook(f) for f in BOND_FIELDS)


def atom_field_sizes() -> list[int]:
    """Number of codes of each atom field, in column order of ``x``."""
    return [len(f) for f in ATOM_FIELDS]


def bond_field_sizes() -> list[int]:
    """Number of codes of each bond field, in column order of ``edge_attr``."""
    return [len(f) for f in BOND_FIELDS]


@dataclass(frozen=True)
class MolGraph:
    """Compact numpy graph of one molecule (see the module docstring for shapes)."""

    x: np.ndarray
    atom_mass: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray

    @property
    def num_atoms(self) -> int:
        return self.x.shape[0]


def _codes(objs: Sequence, getters: Sequence[Callable | None], books) -> np.ndarray:
    """Code of every field of every object, ``[len(objs), len(getters)]``; a ``None`` getter
    means "the field's first choice for all" (``CHI_UNSPECIFIED`` when no atom has a tag)."""
    n = len(objs)
    zeros = [0] * n
    columns = [
        zeros if get is None else list(map(book.__getitem__, map(get, objs)))
        for get, book in zip(getters, books, strict=True)
    ]
    return np.array(columns, dtype=np.int16).reshape(len(getters), n).T.copy()


def featurize_mol(mol: Chem.Mol) -> MolGraph:
    """Featurize one standardized molecule into a :class:`MolGraph`."""
    # Wrapping each atom and bond for Python is a large part of the cost: do it once each,
    # without the Python-level iterator of mol.GetAtoms() (~20% faster).
    atoms = list(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms())))
    bonds = list(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))
    getters = _ATOM_GETTERS if mol.GetAtomsMatchingQuery(_HAS_CHIRAL_TAG) else _ACHIRAL_GETTERS
    x = _codes(atoms, getters, _ATOM_BOOKS)
    mass = np.fromiter(map(Chem.Atom.GetMass, atoms), dtype=np.float32, count=len(atoms))
    n_bonds = len(bonds)
    edge_index = np.empty((2, 2 * n_bonds), dtype=np.int64)
    if n_bonds:
        begin = np.fromiter(map(Chem.Bond.GetBeginAtomIdx, bonds), dtype=np.int64, count=n_bonds)
        end = np.fromiter(map(Chem.Bond.GetEndAtomIdx, bonds), dtype=np.int64, count=n_bonds)
        edge_index[0, 0::2], edge_index[1, 0::2] = begin, end
        edge_index[0, 1::2], edge_index[1, 1::2] = end, begin
        edge_attr = np.repeat(_codes(bonds, _BOND_GETTERS, _BOND_BOOKS), 2, axis=0)
    else:
        edge_attr = np.empty((0, len(BOND_FIELDS)), dtype=np.int16)
    return MolGraph(x, (mass * 0.01)[:, None], edge_index, edge_attr)


def to_data(graph: MolGraph, **extra: torch.Tensor) -> Data:
    """Wrap a :class:`MolGraph` as a ``torch_geometric.data.Data`` (plus any extra tensors)."""
    return Data(
        x=torch.from_numpy(graph.x),
        atom_mass=torch.from_numpy(graph.atom_mass),
        edge_index=torch.from_numpy(graph.edge_index),
        edge_attr=torch.from_numpy(graph.edge_attr),
        num_nodes=graph.num_atoms,
        **extra,
    )


# Molecule-level 2D descriptors, each a direct C++ call. Measured per molecule on MOSES: this set
# costs ~80 us, less than the graph itself. Left out on purpose: Crippen logP/MR (460 us, SMARTS
# matching; the GNN learns atom-additive logP itself), rotatable bonds (100 us), higher-order
# chi/kappa (70 us each), and the Python-side descriptors (QED, BertzCT; up to 1.7 ms).
_DESCRIPTOR_FUNCTIONS: dict[str, Callable[[Chem.Mol], float]] = {
    name: getattr(rdMolDescriptors, f"Calc{name}")
    for name in (
        "ExactMolWt",
        "NumLipinskiHBA",
        "NumLipinskiHBD",
        "NumHBD",
        "NumHeavyAtoms",
        "NumHeteroatoms",
        "NumAmideBonds",
        "FractionCSP3",
        "NumRings",
        "NumAromaticRings",
        "NumAliphaticRings",
        "NumSaturatedRings",
        "NumHeterocycles",
        "NumAromaticHeterocycles",
        "NumSpiroAtoms",
        "NumBridgeheadAtoms",
        "LabuteASA",
        "TPSA",
        "Chi0v",
        "Chi1v",
        "Chi0n",
        "Chi1n",
        "HallKierAlpha",
        "Kappa1",
    )
}
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(_DESCRIPTOR_FUNCTIONS)


def descriptors(mol: Chem.Mol) -> np.ndarray:
    """RDKit 2D descriptors of one molecule, shape ``[len(DESCRIPTOR_NAMES)]`` float32.

    Raw values; the model file carries the training-set mean and scale used to normalize them.
    """
    return clean_descriptors(np.array(raw_descriptors(mol), dtype=np.float32))


def raw_descriptors(mol: Chem.Mol) -> list[float]:
    """:func:`descriptors` before :func:`clean_descriptors` (which is cheaper on many rows)."""
    return [f(mol) for f in _DESCRIPTOR_FUNCTIONS.values()]


def clean_descriptors(values: np.ndarray) -> np.ndarray:
    """NaN and infinities (float32 overflow included) -> 0, in place."""
    return np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


# Morgan fingerprints (radius 2, 2048 bits), packed: what the applicability domain compares
FP_BITS = 2048
_GENERATOR = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FP_BITS)


def fingerprint(mol: Chem.Mol) -> np.ndarray:
    """Packed Morgan fingerprint of one molecule, ``[256]`` uint8."""
    return np.packbits(_GENERATOR.GetFingerprintAsNumPy(mol))  # 0/1 uint8: packs as is
