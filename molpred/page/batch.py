"""The page's next-batch panel: choose how to pick, suggest the batch from the ranked and
filtered candidates (:mod:`molpred.suggest`), download it, and see where it lies in chemical
space (a Streamlit view called by ``molpred.page.results``)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from rdkit import Chem

from molpred.featurize import fingerprint
from molpred.io import DataError, InMemoryFile, read_table
from molpred.measured import measured_molecules
from molpred.page.labels import value_labels
from molpred.predictor import Predictor
from molpred.ranking import Objective
from molpred.screen import to_sdf
from molpred.space import chemical_space
from molpred.suggest import STRATEGIES, BatchOptions, expected_error, suggest

__all__ = ["batch_panel", "current_batch", "chemical_map", "batch_downloads", "BATCH"]

BATCH = "batch"  # the table's column: the molecule's pick number, blank if not picked
STRATEGY_NAMES = {
    "ucb": "balanced: good and informative (UCB)",
    "greedy": "best predicted (greedy)",
    "ei": "expected improvement over the best measured",
    "random": "random (a control group)",
}


def _keep_open() -> None:  # a changed setting reruns the page: the panel stays open
    st.session_state["batch_open"] = True


_TOUCHED = {"on_change": _keep_open}


def batch_panel(table: pd.DataFrame, predictor: Predictor, objectives: list[Objective]) -> None:
    """Controls and the Suggest button; the batch (rows of ``table``, index kept) is kept in
    ``st.session_state["batch"]`` until the candidates are scored again."""
    with st.expander(
        "Next batch: suggest what to make and test",
        expanded=st.session_state.get("batch_open", False),
    ):
        if not any(o.weight > 0 for o in objectives):
            st.info("Choose at least one property under **Ranking**: the batch is picked by it.")
            return
        if not (table["error"] == "").any():
            st.info("No scored candidate passes the filters.")
            return
        st.caption(
            "Picks from the ranked candidates that pass the filters, by the ranking objective "
            "and its uncertainty, at most a few per scaffold; each pick says why."
        )
        a, b, c, d = st.columns(4)
        scored = int((table["error"] == "").sum())  # rows with an error are never picked
        n = a.number_input("molecules", 1, scored, min(48, scored), key="b_n", **_TOUCHED)
        strategy = b.selectbox(
            "strategy", STRATEGIES, format_func=STRATEGY_NAMES.get, key="b_strategy", **_TOUCHED
        )
        per_scaffold = c.number_input(
            "at most per scaffold", 0, 1000, 2, key="b_scaffold", help="0: no limit", **_TOUCHED
        )
        max_similarity = d.slider(
            "max similarity between picks",
            0.3,
            1.0,
            1.0,
            0.05,
            key="b_similarity",
            **_TOUCHED,
            help="Tanimoto (Morgan, radius 2); 1: no limit",
        )
        explore = st.slider(
            "share of the batch picked to teach the model",
            0.0,
            1.0,
            BatchOptions().explore,
            0.05,
            key="b_explore",
            **_TOUCHED,
            help="These picks go where the model's expected error is largest: measuring them "
            "improves the next round's predictions most.",
        )
        cover = st.slider(
            "share of the batch spread over chemical space",
            0.0,
            1.0,
            BatchOptions().cover,
            0.05,
            key="b_cover",
            **_TOUCHED,
            help="Each of these picks is the best candidate of the cluster of chemical space "
            "furthest below its share of the pool, counting the measured molecules and earlier "
            "picks: the batch keeps the next model accurate beyond the best chemotype. With "
            "many measurements in one region, several may fall in the same cluster.",
        )
        measured_file = st.file_uploader(
            "Already measured (a table with a SMILES column; columns named like a ranked "
            "property are read as measured values)",
            type=["csv", "tsv", "smi", "txt", "sdf", "parquet", "gz"],
            key="measured_file",
            **_TOUCHED,
        )
        training = st.checkbox(
            "Leave out the models' training molecules", value=True, key="b_training", **_TOUCHED
        )
        if not st.button("Suggest batch", type="primary", key="b_go"):
            return
        st.session_state["batch_open"] = True
        options = BatchOptions(
            n=int(n),
            strategy=strategy,
            max_per_scaffold=int(per_scaffold) or None,
            max_similarity=None if max_similarity >= 1.0 else float(max_similarity),
            explore=float(explore),
            cover=float(cover) if cover <= 1.0 - explore + 1e-9 else 1.0 - float(explore),
        )
        if options.cover < cover - 1e-9:
            st.info(
                f"The cover share was lowered to {options.cover:.2f}: with {explore:.2f} of the "
                "batch exploring, that is what is left of it."
            )
        tables = []
        if measured_file is not None:
            try:
                data = InMemoryFile(measured_file.name, measured_file.getvalue())
                tables.append(read_table(data, as_text=True))
            except DataError as exc:
                st.error(f"Cannot read {measured_file.name}: {exc}")
                return
        try:
            measured = measured_molecules(
                predictor,
                tables,
                objectives,
                training=training,
                fill=strategy == "ei",
                aliases=value_labels(predictor),  # a file made from this page's download
            )
        except DataError as exc:
            st.error(f"{measured_file.name if measured_file else 'Measured molecules'}: {exc}")
            return
        with st.spinner("Choosing the batch…"):
            batch = suggest(table, objectives, options, measured=measured)
        if batch.empty:
            st.session_state.pop("batch", None)
            st.warning(
                "No candidate could be picked: every scored candidate that passes the filters "
                "is already measured ("
                + ("in a model's training set or " if training else "")
                + "in your file of measured molecules)."
                + (" Untick *Leave out the models' training molecules* to pick among them."
                   if training else "")
            )  # fmt: skip
            return
        if options.explore > 0 and not np.isfinite(expected_error(table, objectives)).any():
            st.info(
                "No pick could go to teaching the model: that needs a ranked regression "
                "prediction, whose expected error says where measuring teaches most. Every "
                "pick was chosen by the ranking."
            )
        st.session_state["batch"] = batch
        st.session_state["batch_objectives"] = tuple(objectives)
        st.session_state["batch_candidates"] = frozenset(table.index)


def current_batch(table: pd.DataFrame, objectives: list[Objective]) -> pd.DataFrame | None:
    """The suggested batch, if it was picked for the ranking now chosen from the candidates
    the filters now keep (``table``); else it is dropped, with a word, rather than shown with
    reasons that no longer hold or downloaded with picks the filters now remove."""
    batch = st.session_state.get("batch")
    if batch is None:
        return None
    changed = None
    if st.session_state.get("batch_objectives") != tuple(objectives):
        changed = "The ranking"
    elif st.session_state.get("batch_candidates") != frozenset(table.index):
        changed = "The filters"
    if changed:
        del st.session_state["batch"]
        st.info(f"{changed} changed since the batch was suggested: suggest it again.")
        return None
    return batch


def chemical_map(table: pd.DataFrame, batch: pd.DataFrame) -> None:
    """Where the batch lies among the candidates: the first two principal components of their
    Morgan fingerprints, the batch highlighted."""
    scored = table[table["error"] == ""]
    if len(scored) < 3:
        return
    xy = _projection(tuple(scored["smiles"]), tuple(scored["molecule"]))  # cached by smiles
    data = scored[["name", "smiles", "score"]].assign(x=xy[:, 0], y=xy[:, 1])
    data[BATCH] = scored.index.isin(batch.index)
    data["pick"] = batch["pick"].reindex(scored.index).to_numpy()
    st.subheader("Chemical space")
    base = alt.Chart(data).encode(
        x=alt.X("x:Q", title="PC 1 of fingerprints"),
        y=alt.Y("y:Q", title="PC 2"),
        tooltip=["name", "smiles", "score", "pick"],
    )
    others = base.transform_filter(f"!datum.{BATCH}").mark_circle(color="#bbbbbb", size=30)
    picked = base.transform_filter(f"datum.{BATCH}").mark_point(
        color="crimson", shape="diamond", size=120, filled=True
    )
    st.altair_chart(others + picked, width="stretch")
    st.caption(
        f"Red diamonds: the {len(batch)} suggested molecules; grey: the other candidates. "
        "Nearby points share substructures (Morgan fingerprints, principal components)."
    )


@st.cache_data(max_entries=4, show_spinner="Mapping chemical space…")
def _projection(smiles: tuple[str, ...], _molecules: tuple[bytes, ...]) -> np.ndarray:
    """``[N, 2]`` principal components of the molecules' fingerprint bits (``smiles`` keys
    the cache; the molecules are what the page standardized from them)."""
    return chemical_space(np.vstack([fingerprint(Chem.Mol(m)) for m in _molecules]))


def batch_downloads(batch: pd.DataFrame, rename: dict[str, str]) -> None:
    """The batch as CSV and SDF, its columns named as in the table's downloads (``rename``)."""
    plain = batch.drop(columns=[c for c in ("structure", "molecule") if c in batch])
    plain = plain.rename(columns=rename)
    a, b = st.columns(2)
    a.download_button(
        "Download batch CSV",
        plain.to_csv(index=False).encode(),
        "molpred_batch.csv",
        "text/csv",
        key="dl_batch_csv",
        on_click="ignore",
    )
    b.download_button(
        "Download batch SDF",
        lambda: to_sdf(batch.drop(columns="structure", errors="ignore").rename(columns=rename)),
        "molpred_batch.sdf",
        "chemical/x-mdl-sdfile",
        key="dl_batch_sdf",
        on_click="ignore",
    )
