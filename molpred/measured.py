"""The molecules a project has already made and measured, as :func:`molpred.suggest.suggest`
excludes them: read from the user's files and from the models' training sets, matched on the
neutral parent structure (:func:`molpred.chem.parent_key`), with their measured values (the
panel's predictions standing in where none was measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from molpred.chem import (
    InvalidMoleculeError,
    guess_smiles_column,
    is_own_parent,
    parent_key,
    standardize,
)
from molpred.data import label_values
from molpred.io import pick_column
from molpred.medchem import PROPERTY_UNITS, properties
from molpred.parallel import default_workers, map_ordered
from molpred.predict import score_table
from molpred.predictor import Predictor
from molpred.ranking import Objective

__all__ = [
    "measured_molecules",
    "measured_numbers",
    "keys_of",
    "parent_keys",
    "training_keys",
    "KEY",
    "MEASURED",
]

# how many of a measured molecule's objective values were measured (not predicted)
MEASURED = "n_measured"


def measured_molecules(
    predictor: Predictor,
    tables: Sequence[pd.DataFrame] = (),
    objectives: Sequence[Objective] = (),
    *,
    training: bool = False,
    fill: bool = True,
    smiles_column: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The molecules already measured, as :func:`suggest` reads them: ``smiles`` and each
    objective's column.

    ``tables``: a user's files of measured molecules (a SMILES column: ``smiles_column`` where a
    table has it, else found by name or content: :func:`molpred.chem.guess_smiles_column`; a
    column named like an objective, or like its task, holds measured values; so does one named
    like its alias in ``aliases``, e.g. the page's display name of the column, as its downloads
    write it; not where the table has the column's spread and interval beside it: that is
    molpred's prediction). ``training``: add every model's
    training molecules, with their measured values for a user's own model (its training set is
    the project's data); a bundled model's are public data, only left out (their best value is
    no incumbent for a project, and predicting the panel's 59,072 took minutes). ``fill``: where
    a molecule of the project has no measured value for an objective, and for classification
    objectives (a 0/1 label is not on the probability's scale), the panel's prediction stands
    in, so the ``ei`` incumbent is defined; only ``ei`` needs it, and it scores those molecules.
    """
    parts, public = [], []
    by_value = {task.value: task for task in predictor.schema.tasks}
    for table in tables:
        named = smiles_column if smiles_column in table.columns else guess_smiles_column(table)
        part = pd.DataFrame({"smiles": table[pick_column(list(table.columns), named, "SMILES")]})
        for o in objectives:
            task = by_value.get(o.column)
            names = (o.column, task.task if task else None, (aliases or {}).get(o.column))
            source = next((c for c in names if c is not None and c in table.columns), None)
            if source is not None and not _predicted(source, table.columns):
                part[o.column] = measured_numbers(table[source]).to_numpy()
        parts.append(part)
        public.append(np.zeros(len(part), dtype=bool))
    if training:
        for model, columns in zip(predictor.models, predictor.schema.models, strict=True):
            domain = model.domain
            if domain is None or not domain.smiles:
                continue
            part = pd.DataFrame({"smiles": domain.smiles, KEY: training_keys(domain)})
            bundled = bool(model.info.card)  # a panel model: public data
            public.append(np.full(len(part), bundled))
            if domain.targets is not None and not bundled:
                targets = domain.targets.float().numpy()
                for t, task in enumerate(columns.tasks):
                    if any(o.column == task.value for o in objectives):
                        part[task.value] = targets[:, t]
            parts.append(part)
    if not parts:
        return pd.DataFrame({"smiles": []})
    measured = pd.concat(parts, ignore_index=True)
    for o in objectives:  # probabilities are compared with probabilities, not with labels
        task = by_value.get(o.column)
        if task is not None and task.kind == "classification" and o.column in measured:
            measured[o.column] = np.nan
    # a molecule with no measured value is only not to be made again: its predictions
    # never become the incumbent (a list of made molecules is no measure of the best)
    values = [o.column for o in objectives if o.column in measured]
    measured[MEASURED] = measured[values].notna().sum(axis=1) if values else 0
    computed = [o.column for o in objectives if o.column in PROPERTY_UNITS]
    if computed and fill:  # a computed property (QED...): computed as for the candidates
        rows = (measured[MEASURED] > 0).to_numpy() & ~np.concatenate(public)
        # the structures the candidates' properties are computed on (the parent, where a
        # model of the panel scores it: Predictor.featurizer)
        mode = "parent" if "parent" in predictor.standardizations else "none"
        props = [_properties(s, mode) for s in measured.loc[rows, "smiles"]]
        for column in computed:
            measured[column] = np.nan
            measured.loc[rows, column] = [p.get(column, np.nan) for p in props]
    predicted = [o.column for o in objectives if o.column in by_value] if fill else []
    for column in predicted:
        if column not in measured:
            measured[column] = np.nan
    gaps = measured[predicted].isna().any(axis=1).to_numpy() & ~np.concatenate(public)
    if np.any(gaps):
        guess = score_table(predictor, measured.loc[gaps, ["smiles"]], "smiles")
        for column in predicted:
            filled = measured.loc[gaps, column].to_numpy()
            guessed = guess[column].to_numpy()
            measured.loc[gaps, column] = np.where(np.isnan(filled), guessed, filled)
    return measured


def _predicted(column: str, columns: pd.Index) -> bool:
    """Whether ``column`` of a table is molpred's own prediction: beside it, its spread and
    interval as ``molpred predict`` / ``suggest`` write them (``<column>_std``,
    ``<column>_lower``) or as the page's downloads do (``<label without units> sd``,
    ``... lower``). A last round's batch given as already made is no measurement; a lab's
    replicate spread alone (``logS_std``) leaves its values measured."""
    have = set(map(str, columns))
    short = column.rsplit(" (", 1)[0] if column.endswith(")") else column
    return any(
        {f"{stem}{sd}", f"{stem}{lower}"} <= have
        for stem in {column, short}
        for sd, lower in (("_std", "_lower"), (" sd", " lower"))
    )


def measured_numbers(raw: pd.Series) -> pd.Series:
    """Measured values as labels are read (:func:`molpred.data.label_values`); a qualified one
    (``>4.5``, ``<=0.1``, ``~3``) as its number: the bound is what was measured, and a
    best-measured comparison may use it."""
    text = raw.astype(str).str.strip().str.replace(r"^(?:[<>]=?|[≤≥~=])\s*", "", regex=True)
    return label_values(text.where(raw.notna()))


def _properties(smiles: object, standardization: str) -> dict[str, float]:
    """The computed properties of a measured molecule, as standardized for the candidates'
    (``{}`` where it cannot be read)."""
    try:
        return properties(standardize(smiles, standardization))  # type: ignore[arg-type]
    except InvalidMoleculeError:
        return {}


def keys_of(measured: pd.DataFrame | None) -> list[str | None]:
    """The measured molecules' parent keys (the ``parent_key`` column where known)."""
    if measured is None or measured.empty:
        return []
    if "smiles" not in measured:
        raise KeyError("the measured molecules need a 'smiles' column")
    known = measured[KEY] if KEY in measured else pd.Series(None, index=measured.index)
    todo = known.isna().to_numpy()
    keys = known.astype(object).to_numpy().copy()
    keys[todo] = parent_keys(measured["smiles"].to_numpy()[todo])
    return list(keys)


def parent_keys(smiles: Sequence[object]) -> list[str | None]:
    """:func:`molpred.chem.parent_key` of each structure, on every core for long lists."""
    if len(smiles) < _KEY_CHUNK:
        return [parent_key(s) for s in smiles]
    chunks = [list(smiles[i : i + _KEY_CHUNK]) for i in range(0, len(smiles), _KEY_CHUNK)]
    return [k for _, _, keys in map_ordered(_chunk_keys, chunks, default_workers()) for k in keys]


def _chunk_keys(smiles: list[object]) -> list[str | None]:
    return [parent_key(s) for s in smiles]


def training_keys(domain) -> list[str | None]:
    """The parent keys of a model's training molecules, computed once per loaded model.

    Training molecules are stored as canonical SMILES (:func:`molpred.data.prepare_dataset`),
    and one without a dot, a charged atom or a metal is its own parent: its key is the SMILES
    itself. Only the others (salts, zwitterions: 12% of the bundled panel's 59,072) are parsed.
    """
    entry = _TRAINING_KEYS.get(id(domain))
    if entry is None or entry[0] is not domain:
        if len(_TRAINING_KEYS) >= 64:  # models a long-running page has dropped
            _TRAINING_KEYS.pop(next(iter(_TRAINING_KEYS)))
        keys: list[str | None] = list(domain.smiles)
        todo = [i for i, s in enumerate(keys) if not is_own_parent(s)]
        for i, key in zip(todo, parent_keys([keys[i] for i in todo]), strict=True):
            keys[i] = key
        entry = _TRAINING_KEYS[id(domain)] = (domain, keys)
    return entry[1]


KEY = "parent_key"  # measured molecules: the column of their parent keys, where computed
_KEY_CHUNK = 1000
_TRAINING_KEYS: dict[int, tuple[object, list[str | None]]] = {}
