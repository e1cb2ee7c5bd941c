"""The chemist's screening table: predictions from a panel of models, computed properties, rule
checks and alerts, structure depictions, and SDF export. The web app renders what this returns.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from molpred.artifact import MolpredModel
from molpred.chem import InvalidMoleculeError, counterions, rdkit_log_silenced, standardize
from molpred.io import READ_ERROR, smiles_and_name
from molpred.medchem import MEDCHEM_COLUMNS, medchem_table, prepare_alerts
from molpred.predictor import Predictor
from molpred.schema import input_names

SALT = "salt"  # the column that names an input's counter-ions, when any input has one
# what screen() puts beside the predictions: a model's task of such a name is scored as
# <model>.<task> (a Predictor for screen() is built with reserved=SCREEN_COLUMNS)
SCREEN_COLUMNS = ("name", "smiles", "structure", "molecule", SALT, READ_ERROR, *MEDCHEM_COLUMNS)

__all__ = [
    "parse_pasted",
    "screen",
    "SCREEN_COLUMNS",
    "MedchemHook",
    "structure_svg",
    "mol_svg",
    "svg_data_uri",
    "to_sdf",
]


def parse_pasted(text: str) -> pd.DataFrame:
    """Pasted lines -> ``name``, ``smiles``: one molecule per line (CXSMILES too), an optional
    name after whitespace. Blank lines are skipped; anything else becomes a row (bad SMILES
    included)."""
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        smiles, name = smiles_and_name(line)
        if smiles:
            rows.append((name or f"line {i}", smiles))
    return pd.DataFrame(rows, columns=["name", "smiles"])


def screen(
    models: Mapping[str, MolpredModel] | Predictor,
    smiles: Sequence[object],
    names: Sequence[str] | None = None,
    *,
    read_errors: Sequence[str] | None = None,
    extra: pd.DataFrame | None = None,
    confidence: float = 0.9,
    depict: bool = False,
    workers: int = 1,
    chunk_size: int = 100,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Score and annotate candidates, one row per input in input order.

    Columns: ``name``, ``smiles``, ``structure`` (SVG data URI, with ``depict``), the prediction
    columns of :func:`molpred.predict.predict` for the whole panel, the properties/rules/alerts
    of :func:`molpred.medchem.medchem_table`, ``molecule`` (the standardized structure as
    RDKit's binary, for the SDF export) and ``error``.

    The page's path through :meth:`molpred.predictor.Predictor.stream`: each molecule is
    standardized once; properties, alerts and the depiction are computed on the same molecules
    as the features, in ``workers`` processes, chunk by chunk (100 molecules: 1,000 pasted
    molecules keep two workers busy to the end), and on Linux the chunk is scored there too
    (:meth:`molpred.predictor.Predictor.stream`).
    ``read_errors``: per input, why the file reader could not use it (``""``: it could); a
    reason there is the row's error. ``extra``: the user's own columns (IDs, measured values),
    one row per input, carried beside ``name`` and ``smiles`` (renamed ``input_<name>`` where
    they clash with an output column). ``progress(fraction)`` is called after every chunk.
    """
    smiles = list(smiles)
    names = list(names) if names is not None else [f"mol {i + 1}" for i in range(len(smiles))]
    if not smiles:
        return pd.DataFrame(columns=["name", "smiles", "error"])
    if not isinstance(models, Predictor):
        models = Predictor(models, confidence=confidence, reserved=SCREEN_COLUMNS)
    predictor = models
    taken = set(predictor.schema.value_columns) & set(SCREEN_COLUMNS)
    if taken:
        raise ValueError(
            f"a task is called like a column of screen() ({', '.join(sorted(taken))}): "
            "build the Predictor with reserved=SCREEN_COLUMNS"
        )
    table = pd.DataFrame({"name": names, "smiles": smiles})
    if extra is not None:
        if len(extra) != len(table):
            raise ValueError(f"extra has {len(extra)} rows for {len(table)} molecules")
        clash = input_names(extra.columns, (*table.columns, READ_ERROR, SALT))
        table = pd.concat([table, extra.reset_index(drop=True).rename(columns=clash)], axis=1)
    if read_errors is not None:
        table[READ_ERROR] = [str(e) if isinstance(e, str) else "" for e in read_errors]
    chunks = (table.iloc[i : i + chunk_size] for i in range(0, len(table), chunk_size))
    parts, done = [], 0
    hook = MedchemHook(depict)
    # at most 20,000 molecules in small chunks: trimming the heap after each costs more
    # than the memory it saves (~8% of the page's scoring time)
    stream = predictor.stream(chunks, "smiles", hook=hook, workers=workers, trim=False)
    for _, _, scored in stream:
        parts.append(scored)
        done += len(scored)
        if progress is not None:
            progress(done / len(smiles))
    out = pd.concat(parts, ignore_index=True)
    salts = [counterions(s) for s in smiles]
    if any(salts):  # say what else the input held and what each model scored
        out.insert(2, SALT, [salt_note(c, predictor) if c else "" for c in salts])
    if depict:  # the structure next to the name (one reindex: out has hundreds of columns)
        rest = [c for c in out.columns if c not in ("name", "smiles", "structure")]
        out = out[["name", "smiles", "structure", *rest]]
    return out


def salt_note(others: Sequence[str], predictor: Predictor) -> str:
    """What the panel did with an input's other components: models that score the parent
    structure stripped them, models that score structures as drawn kept them."""
    what = ", ".join(others)
    by_mode: dict[str, list[str]] = {}
    for model, mode in zip(predictor.schema.models, predictor.standardizations, strict=True):
        by_mode.setdefault(mode, []).append(model.name)
    if set(by_mode) == {"parent"}:
        return f"{what} stripped: the parent was scored"
    if set(by_mode) == {"none"}:
        return f"with {what}: scored as drawn (properties include it)"
    return (
        f"{what} stripped by {', '.join(by_mode['parent'])}; "
        f"kept (scored as drawn) by {', '.join(by_mode['none'])}"
    )


@dataclass(frozen=True)
class MedchemHook:
    """The page's per-molecule work, done where the molecules are featurized: computed
    properties, rules and alerts, the standardized molecule, and (``depict``) an SVG."""

    depict: bool = False

    def __post_init__(self) -> None:
        # the alert catalogs are built here, in the process that forks the scoring workers: they
        # inherit them, instead of each pool building its own at every Score (~0.2 CPU-s)
        prepare_alerts()

    def annotate(self, mols: Sequence[Chem.Mol | None]) -> pd.DataFrame:
        notes = medchem_table(mols)
        notes["molecule"] = [m.ToBinary() if m is not None else None for m in mols]
        if self.depict:
            notes["structure"] = [svg_data_uri(mol_svg(m)) if m is not None else None for m in mols]
        return notes


def structure_svg(smiles: str, size: tuple[int, int] = (220, 160)) -> str | None:
    """SVG depiction of the standardized molecule (None if it cannot be parsed)."""
    try:
        mol = standardize(smiles)
    except InvalidMoleculeError:
        return None
    return mol_svg(mol, size)


def mol_svg(mol: Chem.Mol, size: tuple[int, int] = (220, 160)) -> str:
    """SVG with labels as ``<text>`` (no FreeType glyph outlines), without the attributes and
    declarations that only repeat SVG defaults, and with consecutive bonds of one colour as one
    path: 4x cheaper than a Cairo PNG, a third of the bytes of RDKit's default SVG, and sharp
    at any zoom."""
    drawer = rdMolDraw2D.MolDraw2DSVG(*size, -1, -1, True)
    with rdkit_log_silenced():
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    svg = _SVG_HEADER.sub("", _SVG_CLASS.sub("", drawer.GetDrawingText()))
    for default in _SVG_DEFAULTS:
        svg = svg.replace(default, "")
    return _merged_paths(svg)


def _merged_paths(svg: str) -> str:
    """Consecutive ``<path>`` elements of one style as one path of several segments: the same
    drawing (strokes only, in the same order), a third fewer bytes for the page to send and the
    browser to decode."""
    out, pos, style, segments = [], 0, None, []
    for match in _SVG_PATH.finditer(svg):
        if match.start() != pos or match["style"] != style:
            if segments:
                out.append(f"<path d='{' '.join(segments)}' style='{style}' />\n")
            out.append(svg[pos : match.start()])
            style, segments = match["style"], []
        segments.append(match["d"])
        pos = match.end()
    if segments:
        out.append(f"<path d='{' '.join(segments)}' style='{style}' />\n")
    out.append(svg[pos:])
    return "".join(out)


_SVG_CLASS = re.compile(r" class='[^']*'")
_SVG_PATH = re.compile(r"<path d='(?P<d>[^']*)' style='(?P<style>[^']*)' />\n")
# the XML declaration, RDKit's marker comment and namespaces no element of it uses
_SVG_HEADER = re.compile(
    r"<\?xml[^>]*>\s*|<!-- END OF HEADER -->\n|\s+xmlns:(?:rdkit|xlink)='[^']*'"
)
_SVG_DEFAULTS = (
    " version='1.1' baseProfile='full'",
    ";fill-rule:evenodd",
    ";stroke-linecap:butt",
    ";stroke-linejoin:miter",
    ";stroke-opacity:1",
    ";font-style:normal",
    ";font-weight:normal",
    ";fill-opacity:1",
)


def svg_data_uri(svg: str | None) -> str | None:
    """A base64 ``data:`` URI for an SVG (images inline in the page: nothing is fetched; the
    data grid shows base64 SVG URIs but not ``utf8,`` ones)."""
    if svg is None:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def to_sdf(table: pd.DataFrame, smiles_column: str = "smiles", name_column: str = "name") -> bytes:
    """The table as an SD file: one record per row that has a valid structure, every other
    column as an SD property (rows without a structure are left out, as SDF needs one).

    The structures are the ``molecule`` column of :func:`screen` where there is one (no
    re-parsing), else the standardized SMILES."""
    import io

    buf = io.StringIO()
    writer = Chem.SDWriter(buf)
    skip = {smiles_column, name_column, "molecule", "structure"}
    for _, row in table.iterrows():
        binary = row.get("molecule")
        if isinstance(binary, bytes):
            mol = Chem.Mol(binary)
        else:
            try:
                mol = standardize(row[smiles_column])
            except InvalidMoleculeError:
                continue
        if name_column in row:
            mol.SetProp("_Name", str(row[name_column]))
        for col, value in row.items():
            if col in skip or pd.isna(value):
                continue
            mol.SetProp(str(col), f"{value:.6g}" if isinstance(value, float) else str(value))
        if "input_smiles" not in row:  # the user's own column of that name is kept
            mol.SetProp("input_smiles", str(row[smiles_column]))
        writer.write(mol)
    writer.close()
    return buf.getvalue().encode()
