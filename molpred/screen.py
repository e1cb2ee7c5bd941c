"""The chemist's screening table: predictions from a panel of models, computed properties, rule
checks and alerts, structure depictions, and SDF export. The web app renders what this returns.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from molpred.artifact import MolpredModel
from molpred.chem import InvalidMoleculeError, rdkit_log_silenced, standardize
from molpred.medchem import medchem_table
from molpred.predict import predict

__all__ = ["parse_pasted", "screen", "structure_png", "png_data_uri", "to_sdf"]


def parse_pasted(text: str) -> pd.DataFrame:
    """Pasted lines -> ``name``, ``smiles``: one molecule per line, an optional name after
    whitespace. Blank lines are skipped; anything else becomes a row (bad SMILES included)."""
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        parts = line.strip().split(maxsplit=1)
        if parts:
            rows.append((parts[1] if len(parts) > 1 else f"line {i}", parts[0]))
    return pd.DataFrame(rows, columns=["name", "smiles"])


def screen(
    models: Mapping[str, MolpredModel],
    smiles: Sequence[object],
    names: Sequence[str] | None = None,
    *,
    confidence: float = 0.9,
    chunk_size: int = 1000,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Score and annotate candidates, one row per input in input order.

    Columns: ``name``, ``smiles``, the prediction columns of :func:`molpred.predict.predict` for
    the whole panel, the properties/rules/alerts of :func:`molpred.medchem.medchem_table`, and
    ``error``. ``progress(fraction)`` is called after every chunk.
    """
    smiles = list(smiles)
    names = list(names) if names is not None else [f"mol {i + 1}" for i in range(len(smiles))]
    parts = []
    for start in range(0, len(smiles), chunk_size):
        chunk = smiles[start : start + chunk_size]
        frame = predict(list(models.values()), chunk, model_names=list(models),
                        confidence=confidence, workers=1)  # fmt: skip
        mols = []
        for s in chunk:
            try:
                mols.append(standardize(s))  # type: ignore[arg-type]
            except InvalidMoleculeError:
                mols.append(None)
        med = medchem_table(mols)
        error = frame.pop("error")
        frame.insert(0, "name", names[start : start + chunk_size])
        parts.append(pd.concat([frame, med, error], axis=1))
        if progress is not None:
            progress(min(1.0, (start + len(chunk)) / max(1, len(smiles))))
    if not parts:
        return pd.DataFrame(columns=["name", "smiles", "error"])
    return pd.concat(parts, ignore_index=True)


def structure_png(smiles: str, size: tuple[int, int] = (220, 160)) -> bytes | None:
    """PNG depiction of the standardized molecule (None if it cannot be parsed)."""
    try:
        mol = standardize(smiles)
    except InvalidMoleculeError:
        return None
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    with rdkit_log_silenced():
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def png_data_uri(png: bytes | None) -> str | None:
    """A ``data:`` URI for a PNG (images inline in the page: nothing is fetched)."""
    if png is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode()


def to_sdf(table: pd.DataFrame, smiles_column: str = "smiles", name_column: str = "name") -> bytes:
    """The table as an SD file: one record per row that has a valid structure, every other
    column as an SD property (rows without a structure are left out, as SDF needs one)."""
    import io

    buf = io.StringIO()
    writer = Chem.SDWriter(buf)
    for _, row in table.iterrows():
        try:
            mol = standardize(row[smiles_column])
        except InvalidMoleculeError:
            continue
        if name_column in row:
            mol.SetProp("_Name", str(row[name_column]))
        for col, value in row.items():
            if col in (smiles_column, name_column) or pd.isna(value):
                continue
            mol.SetProp(str(col), f"{value:.6g}" if isinstance(value, float) else str(value))
        mol.SetProp("input_smiles", str(row[smiles_column]))
        writer.write(mol)
    writer.close()
    return buf.getvalue().encode()
