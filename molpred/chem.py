"""SMILES in, sanitized RDKit molecule out.

Every structure that enters molpred passes through :func:`standardize`:

1. parse without sanitization (so a syntax error and a chemistry error give different reasons),
2. sanitize, keeping RDKit's own message as the reason when it fails,
3. only with ``standardization="parent"``: disconnect covalently drawn metals, keep the largest
   organic fragment (strips counter-ions, salts and solvents) and neutralize charges where a
   neutral form exists.

The default, ``"none"``, keeps the structure as drawn, as chemprop does: salts and charges can
carry signal (on ClinTox, reducing to the parent cost 0.3 ROC-AUC). A model records which one
it was trained with, and prediction uses the same.

A single bad molecule raises :class:`InvalidMoleculeError`; table-level functions turn that
exception into a per-row reason instead of failing the whole table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from rdkit import Chem, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize

__all__ = [
    "STANDARDIZATIONS",
    "InvalidMoleculeError",
    "rdkit_log_silenced",
    "standardize",
    "standardize_many",
    "canonical_smiles",
    "parent_key",
    "counterions",
    "mol_from_block",
    "guess_smiles_column",
    "SMILES_NAMES",
]


STANDARDIZATIONS = ("none", "parent")


class InvalidMoleculeError(ValueError):
    """Raised when one input structure cannot be turned into a usable molecule.

    The message is a short, human-readable reason, suitable for an ``error`` column.
    """


@contextmanager
def rdkit_log_silenced() -> Iterator[None]:
    """Silence RDKit's C++ logger inside the block only (it is restored on exit).

    molpred reports its own reasons for rejected molecules, so RDKit's duplicate warnings on
    stderr are blocked while parsing; anywhere else RDKit logs as usual.
    """
    blocker = rdBase.BlockLogs()
    try:
        yield
    finally:
        del blocker


# Built once: the RDKit standardizers are C++ objects that are safe to reuse.
_FRAGMENT_CHOOSER = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
_UNCHARGER = rdMolStandardize.Uncharger(canonicalOrder=True)
_METAL_DISCONNECTOR = rdMolStandardize.MetalDisconnector()
# Substructure checks run in C++, far cheaper than a Python loop over atoms on the hot path.
_CHARGED = Chem.MolFromSmarts("[!+0]")
_METALS = "Li Na K Rb Cs Be Mg Ca Sr Ba Al Zn Fe Cu Co Ni Mn Cr Ag Au Pt Pd Hg Sn".split()
_METAL = Chem.MolFromSmarts(f"[{','.join(_METALS)}]")
# metals whose bonds to an organic molecule are a salt drawn covalently (C(=O)O[Na]): even
# "as drawn" reads them as the ionic salt they are; other metals' bonds are left as drawn
_SALT_METALS = "Li Na K Rb Cs Mg Ca Sr Ba".split()
_SALT_METAL = Chem.MolFromSmarts(f"[{','.join(_SALT_METALS)}]")
_OTHER_METAL = Chem.MolFromSmarts(f"[{','.join(m for m in _METALS if m not in _SALT_METALS)}]")
# what standardize() returns changed (feature caches keyed by it): 2 = salts drawn covalently
# read as ionic under "none" too; 3 = a rebuilt molecule sanitized again
STANDARDIZE_REVISION = 3
# a metal in a SMILES is always bracketed: the text says when a salt may be drawn covalently
_CHARGED_TEXT = re.compile(r"\[[^\]]*[+-][^\]]*\]")  # a bracket atom with a charge
# (not \b: it never ends "Na" in [NaH] or "Al" in [AlH2]; a lowercase letter would: [Kr])
_METAL_TEXT = re.compile(rf"\[\d*(?:{'|'.join(_METALS)})(?![a-z])")


def _check_text(smiles: object) -> str:
    if smiles is None or (isinstance(smiles, float) and math.isnan(smiles)):
        raise InvalidMoleculeError("missing SMILES")
    if not isinstance(smiles, str):
        raise InvalidMoleculeError(f"SMILES must be text, got {type(smiles).__name__}")
    text = smiles.strip()
    if not text:
        raise InvalidMoleculeError("empty SMILES")
    return text


def _finish(mol: Chem.Mol, multi_fragment: bool, standardization: str) -> Chem.Mol:
    """Sanitize (and reduce to the parent structure); raise with a reason."""
    if standardization not in STANDARDIZATIONS:
        raise ValueError(
            f"standardization must be one of {STANDARDIZATIONS}, got {standardization!r}"
        )
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several unrelated types (valence, kekulize...)
        raise InvalidMoleculeError(f"invalid chemistry: {exc}".strip()) from None
    if mol.GetNumAtoms() == 0:
        raise InvalidMoleculeError("molecule has no atoms")
    if standardization == "none":
        if mol.HasSubstructMatch(_SALT_METAL) and not mol.HasSubstructMatch(_OTHER_METAL):
            mol = _METAL_DISCONNECTOR.Disconnect(mol)  # C(=O)O[Na] -> C(=O)[O-].[Na+]
            return _sanitized(mol)
        return mol
    changed = False
    if mol.HasSubstructMatch(_METAL):  # covalently drawn salts: C(=O)O[Na] -> C(=O)[O-].[Na+]
        mol = _METAL_DISCONNECTOR.Disconnect(mol)
        multi_fragment = changed = True
    if multi_fragment:
        mol = _FRAGMENT_CHOOSER.choose(mol)
    if mol.HasSubstructMatch(_CHARGED):
        mol = _UNCHARGER.uncharge(mol)
        changed = True
    return _sanitized(mol) if changed else mol


def _sanitized(mol: Chem.Mol) -> Chem.Mol:
    """A molecule the standardizer rebuilt, checked again: the metal disconnector leaves its
    ring information unset (fingerprints of it raised), and neutralizing can leave an atom
    over-valent ([SbH6+3] -> [SbH9])."""
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several unrelated types
        raise InvalidMoleculeError(f"invalid chemistry after standardization: {exc}") from None
    return mol


def standardize(smiles: str, standardization: str = "none") -> Chem.Mol:
    """Parse, sanitize and optionally standardize one SMILES string.

    Parameters
    ----------
    smiles
        A SMILES string; surrounding whitespace is ignored.
    standardization
        ``"none"`` (as drawn; a salt drawn with a covalent alkali or alkaline-earth metal
        bond, ``C(=O)O[Na]``, reads as the ionic salt ``C(=O)[O-].[Na+]``) or ``"parent"``
        (largest organic fragment, neutralized).

    Returns
    -------
    rdkit.Chem.Mol
        Sanitized molecule.

    Raises
    ------
    InvalidMoleculeError
        With the reason (syntax error, valence error, empty input, ...).
    """
    text = _check_text(smiles)
    with rdkit_log_silenced():
        mol = Chem.MolFromSmiles(text, sanitize=False)
        if mol is None:
            raise InvalidMoleculeError(f"unparseable SMILES: {text[:80]!r}")
        return _finish(mol, "." in text, standardization)


def mol_from_block(molblock: str, standardization: str = "none") -> Chem.Mol:
    """Parse and sanitize one MDL molfile block (an SDF record without ``$$$$``); see
    :func:`standardize`."""
    if not isinstance(molblock, str) or not molblock.strip():
        raise InvalidMoleculeError("empty molblock")
    with rdkit_log_silenced():
        mol = Chem.MolFromMolBlock(molblock, sanitize=False, removeHs=False)
        if mol is None:
            raise InvalidMoleculeError("unparseable molblock")
        try:
            mol = Chem.RemoveHs(mol, sanitize=False)
        except Exception as exc:
            raise InvalidMoleculeError(f"invalid molblock: {exc}") from None
        return _finish(mol, len(Chem.GetMolFrags(mol)) > 1, standardization)


def canonical_smiles(mol: Chem.Mol) -> str:
    """RDKit canonical isomeric SMILES of an (already standardized) molecule."""
    return Chem.MolToSmiles(mol)


def standardize_many(
    smiles: Iterable[object], standardization: str = "none"
) -> tuple[list[Chem.Mol | None], list[str]]:
    """Standardize a sequence, never raising for a bad entry.

    Returns
    -------
    mols, errors
        Two lists aligned with the input: a molecule or ``None``, and ``""`` or the reason.
    """
    mols: list[Chem.Mol | None] = []
    errors: list[str] = []
    for item in smiles:
        try:
            mols.append(standardize(item, standardization))  # type: ignore[arg-type]
            errors.append("")
        except InvalidMoleculeError as exc:
            mols.append(None)
            errors.append(str(exc))
    return mols, errors


def parent_key(smiles: object) -> str | None:
    """What "the same compound" means here: the canonical neutral parent (salts and charges
    drawn differently still match); None if the structure cannot be read."""
    try:
        return canonical_smiles(standardize(smiles, "parent"))  # type: ignore[arg-type]
    except InvalidMoleculeError:
        return None


def is_own_parent(smiles: str) -> bool:
    """Whether a SMILES is already its parent structure: one component, no charged atom, no
    metal. Every standardization gives such a SMILES the same molecule, and a canonical one
    (RDKit's) is its own :func:`parent_key` (both checked by ``tests/test_chem.py``)."""
    return "." not in smiles and not _CHARGED_TEXT.search(smiles) and not _METAL_TEXT.search(smiles)


def counterions(smiles: object) -> list[str]:
    """The components of a SMILES that its parent structure leaves out (counter-ions, solvent,
    a covalently drawn metal), as SMILES; ``[]`` for one component or unreadable input.

    Cheap for the common case: a SMILES without ``.`` or a metal is not parsed."""
    if not isinstance(smiles, str) or ("." not in smiles and not _METAL_TEXT.search(smiles)):
        return []
    try:
        mol = standardize(smiles)
    except InvalidMoleculeError:
        return []
    if mol.HasSubstructMatch(_METAL):
        mol = _METAL_DISCONNECTOR.Disconnect(mol)
    fragments = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(fragments) < 2:
        return []
    parent = Chem.MolToSmiles(_FRAGMENT_CHOOSER.choose(mol))
    others = [Chem.MolToSmiles(f) for f in fragments]
    others.remove(parent)  # once: a dimer's second copy is listed
    return others


def guess_smiles_column(table) -> str | None:
    """The column of ``table`` (a DataFrame) that holds structures: one named like SMILES, else
    the first whose first non-empty values mostly parse as SMILES (not plain numbers); None if
    no column does."""
    named = [c for c in table.columns if str(c).strip().lower() in SMILES_NAMES]
    if named:
        return named[0]
    for column in table.columns:
        values = [str(v).strip() for v in table[column].dropna().head(20) if str(v).strip()]
        if not values or all(_is_number(v) for v in values):
            continue
        with rdkit_log_silenced():
            parsed = sum(Chem.MolFromSmiles(v) is not None for v in values)
        if parsed >= 0.8 * len(values):
            return column
    return None


SMILES_NAMES = ("smiles", "canonical_smiles", "smi")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
