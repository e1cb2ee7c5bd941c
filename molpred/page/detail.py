"""The page's molecule detail: the structure as the model sees it, atom contributions, and the
nearest training molecules with their measured values (a Streamlit view called by
``molpred.page.results``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from rdkit import Chem

import molpred
from molpred.chem import InvalidMoleculeError, standardize
from molpred.explain import atom_contributions, draw_contributions
from molpred.featurize import fingerprint
from molpred.page.labels import value_labels
from molpred.page.profile import show_profile
from molpred.predictor import Predictor
from molpred.pretrained.endpoints import value_bounds
from molpred.screen import mol_svg

__all__ = ["detail"]


@st.cache_data(max_entries=512, show_spinner="Explaining…")
def _explained(
    model_key: str, smiles: str, task: str, _model: molpred.MolpredModel, _mol: Chem.Mol
) -> bytes:
    """The atom-contribution picture of one molecule for one task, computed once per
    (model, molecule, task) across reruns."""
    return draw_contributions(_mol, atom_contributions(_model, _mol, task), 420)


def detail(table: pd.DataFrame, predictor: Predictor, columns: dict[str, str]) -> None:
    scored = table[table["error"] == ""]
    if scored.empty:
        return
    st.subheader("Molecule detail")
    pick = st.selectbox(
        "Molecule",
        scored.index,
        key="detail_pick",
        format_func=lambda i: f"#{scored.at[i, 'rank']} {scored.at[i, 'name']}",
    )
    smiles = scored.at[pick, "smiles"]
    left, right = st.columns(2)
    tasks = [task.key for task in predictor.schema.tasks]
    labels = {
        task.key: value_labels(predictor).get(task.value, task.task)
        for task in predictor.schema.tasks
    }
    name, task = right.selectbox(
        "Explain", tasks, key="detail_task", format_func=lambda p: f"{p[0]}: {labels[p]}"
    )
    model = predictor.models[predictor.names.index(name)]
    try:  # once, the way this model prepares structures
        mol = standardize(smiles, model.standardization)
    except InvalidMoleculeError:
        return
    left.image(mol_svg(mol, (420, 320)), width=420)
    left.code(smiles, language=None)  # literal text: never read as Markdown
    key = f"{name}:{model.info.data_fingerprint}:{model.info.created}"
    caption = "Atom contributions (green raises the prediction, red lowers it)"
    value = scored.at[pick, next(t.value for t in predictor.schema.tasks if t.key == (name, task))]
    if pd.notna(value) and float(value) in value_bounds(model).get(task, ()):
        caption += (  # the table shows the clipped value; the gradients see the raw output
            f". The prediction is held at this endpoint's physical limit ({float(value):g}): "
            "the contributions explain the model's output before that limit"
        )
    right.image(_explained(key, smiles, task, model, mol), caption=caption)
    # full width: in half the page its percentile, error and domain columns scrolled out of view
    show_profile(scored.loc[pick], predictor, columns)
    if model.domain is not None and model.domain.smiles:
        rows = []
        t = model.task_names.index(task)
        for idx, sim in model.domain.neighbors(fingerprint(mol), k=5, task=t):
            measured = model.domain.targets[idx, t] if model.domain.targets is not None else None
            rows.append(
                {
                    "similarity": round(sim, 3),
                    "smiles": model.domain.smiles[idx],
                    f"measured: {labels[(name, task)]}": "not measured"
                    if measured is None or np.isnan(float(measured))
                    else f"{float(measured):.3g}",
                }
            )
        st.markdown(
            f"**Nearest training molecules of `{name}` measured for {labels[(name, task)]}**"
        )
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="neighbors")
