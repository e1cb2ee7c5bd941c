"""molpred screening page: paste, upload or draw candidates, score them with property models,
rank by what the project needs, and inspect any molecule.

Run: ``streamlit run app.py`` (bundled models load on first start). UI only: scoring, chemistry
and ranking live in the ``molpred`` package (``molpred.screen``, ``molpred.ranking``,
``molpred.explain``), shared with the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

import molpred
from molpred.chem import guess_smiles_column
from molpred.io import READ_ERROR, DataError, InMemoryFile, read_table
from molpred.page.labels import card_of, value_labels
from molpred.page.profile import data_columns
from molpred.page.results import filters, ranking_controls, results
from molpred.page.training import training_panel
from molpred.parallel import default_workers
from molpred.predictor import Predictor
from molpred.pretrained import CARDS, available, model_path
from molpred.schema import input_names
from molpred.screen import SCREEN_COLUMNS, parse_pasted, screen

MAX_MOLECULES = 20_000
MODELS_DIR = Path(os.environ.get("MOLPRED_MODELS_DIR", "models"))
NAME_COLUMNS = ("name", "id", "compound id", "compound", "title", "_name", "mol_id")
# the page's own columns in the ranked table: an uploaded column of that name is renamed
PAGE_COLUMNS = ("name", "smiles", "rank", "score", "batch", "why", "pareto", "picked")
EXAMPLE = "CC(=O)Oc1ccccc1C(=O)O aspirin\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine\nC1CC broken"
PRIVACY = (
    "**Private by design.** Structures are scored on this machine only: nothing is sent "
    "anywhere, uploads for scoring stay in memory and are never written to disk, and usage "
    "statistics are switched off. A model you train here is saved in the models folder, with "
    "its training molecules and values (its domain columns need them): anyone using this "
    "page on this machine can use it."
)

st.set_page_config(page_title="molpred · screen candidates", page_icon="⚗️", layout="wide")


# ---------------------------------------------------------------------------------- models


@st.cache_resource(show_spinner="Loading model…")
def _bundled(name: str) -> molpred.MolpredModel:
    return molpred.load_model(model_path(name))


@st.cache_resource(show_spinner="Loading model…")
def _from_file(path: str, mtime: float) -> molpred.MolpredModel:
    return molpred.load_model(path)


@st.cache_resource(show_spinner="Loading model…")
def _from_upload(data: bytes, file_name: str) -> molpred.MolpredModel:
    return molpred.load_model(data, name=file_name)


def sidebar() -> tuple[dict[str, molpred.MolpredModel], float]:
    st.sidebar.header("Models")
    bundled = available()
    chosen = st.sidebar.multiselect(
        "Bundled models", bundled, default=bundled, format_func=lambda n: CARDS[n].title
    )
    own = sorted(MODELS_DIR.glob("*.pt")) if MODELS_DIR.is_dir() else []
    own_names = [p.name for p in own]
    # a file that appears (a model trained here) is switched on; the files the user switched
    # off stay off (a widget whose options change would start again from all of them)
    off = st.session_state.get("own_models_off", set())
    if st.session_state.get("own_models_options") != own_names:
        st.session_state["own_models_options"] = own_names
        st.session_state["own_models"] = [n for n in own_names if n not in off]
    own_chosen = st.sidebar.multiselect(
        f"Your models (`{MODELS_DIR}/`)", own_names, key="own_models"
    )
    st.session_state["own_models_off"] = (off - set(own_names)) | (set(own_names) - set(own_chosen))
    upload = st.sidebar.file_uploader("…or upload a model file", type=["pt"], key="model_file")
    models: dict[str, molpred.MolpredModel] = {n: _bundled(n) for n in chosen}
    for p in own:
        if p.name in own_chosen:
            try:
                models[_free_name(models, p.stem, "yours")] = _from_file(str(p), p.stat().st_mtime)
            except ValueError as exc:
                st.sidebar.error(str(exc))
    if upload is not None:
        try:
            model = _from_upload(upload.getvalue(), upload.name)
            models[_free_name(models, Path(upload.name).stem, "uploaded")] = model
        except ValueError as exc:
            st.sidebar.error(str(exc))
    confidence = st.sidebar.slider(
        "Confidence of intervals",
        0.5,
        0.99,
        0.9,
        0.01,
        help="Conformal prediction level of the intervals: in the detail view's profile and in "
        "the downloads (lower, upper, prediction sets)",
    )
    with st.sidebar.expander("Model cards"):
        for name, model in models.items():
            _modelcard_of(name, model)
    st.sidebar.info(PRIVACY)
    return models, confidence


def _free_name(models: dict[str, molpred.MolpredModel], name: str, whose: str) -> str:
    """``name``, or ``name (whose)`` if a model of the panel has it already: a file of your
    own called like a bundled model (``solubility.pt``) is scored beside it, not instead."""
    if name not in models:
        return name
    tagged = f"{name} ({whose})"
    return next(
        n
        for n in (tagged, *(f"{tagged} {i}" for i in range(2, len(models) + 2)))
        if n not in models
    )


def _modelcard_of(name: str, model: molpred.MolpredModel) -> None:
    info = model.info
    card = card_of(name, model)
    st.markdown(f"**{card.title if card else name}**")
    if card:  # each endpoint its own units, meaning and source
        st.caption(
            " ".join(
                f"{card.display(t)} ({card.unit(t)}): {card.describe(t)} Data: {card.cite(t)}."
                for t in card.targets
            )
        )
    # the ensemble's own score where there is one (what the model predicts), else the mean of
    # its members'; a value that is not a number (an edited file) is not shown
    metrics = info.metrics.get("test_ensemble") or info.metrics.get("test") or {}
    test = {
        k: round(v, 3)
        for k, v in (metrics.items() if isinstance(metrics, dict) else ())
        if "/" not in k and k != "loss" and isinstance(v, int | float)
    }
    shown = ", ".join(f"{k} {v}" for k, v in test.items()) or "none"
    init = info.provenance.get("init")
    init = init if isinstance(init, dict) and isinstance(init.get("name"), str) else None
    st.caption(
        f"Split: {info.split}; test metrics: {shown}; trained {info.created[:10] or '?'} "
        f"with molpred {info.molpred_version}; {info.n_train_molecules} molecules; data "
        f"fingerprint {info.data_fingerprint[:12]}…"
        + (f"; started from the encoder of {init['name']}" if init else "")
        + "."
    )


# ---------------------------------------------------------------------------------- input


def inputs() -> pd.DataFrame | None:
    """The candidates to score (name, smiles) once the user asks, else None. Every tab is
    drawn on every run (returning from the first one left the others blank)."""
    paste, upload, draw = st.tabs(["Paste", "Upload", "Draw"])
    asked = None
    with paste:
        text = st.text_area(
            "SMILES, one per line (optional name after a space)",
            height=180,
            key="pasted",
            placeholder=EXAMPLE,
        )
        if st.button("Score", type="primary", key="score_paste"):
            table = parse_pasted(text)
            if table.empty:
                st.warning("Paste at least one SMILES first.")
            else:
                asked = table
    with upload:
        uploaded = _uploaded()
    with draw:
        drawn = _drawn()
    return next((t for t in (asked, uploaded, drawn) if t is not None), None)


def _drawn() -> pd.DataFrame | None:
    """The structure editor loads when asked for: started hidden in a background tab, Ketcher
    threw "Cannot read properties of undefined (reading 'eventBus')" on every page load."""
    if not st.toggle("Open the structure editor", key="draw_open"):
        return None
    try:
        from streamlit_ketcher import st_ketcher
    except ImportError:  # pragma: no cover - a dependency, but keep the page usable
        st.info("Install streamlit-ketcher to draw molecules.")
        return None
    drawn = st_ketcher(key="ketcher", height=450)
    if not st.button("Score drawing", key="score_draw"):
        return None
    if not drawn:
        st.warning(
            "Press **Apply** under the drawing first: the editor hands its molecule to the "
            "page only then."
        )
        return None
    return pd.DataFrame({"name": ["drawn"], "smiles": [drawn]})


def _uploaded() -> pd.DataFrame | None:
    file = st.file_uploader(
        "CSV, TSV, SMI, SDF or Parquet (optionally .gz)",
        type=["csv", "tsv", "smi", "txt", "sdf", "parquet", "gz"],
        key="candidates_file",
    )
    if file is None:
        return None
    try:
        table = read_table(InMemoryFile(file.name, file.getvalue()), as_text=True)
    except DataError as exc:
        st.error(f"Cannot read {file.name}: {exc}")
        return None
    cols = [c for c in table.columns if c != READ_ERROR]
    guess = guess_smiles_column(table[cols]) or cols[0]
    smi_col = st.selectbox("SMILES column", cols, index=cols.index(guess))
    names = [c for c in cols if c != smi_col]
    name_guess = next((c for c in names if str(c).lower() in NAME_COLUMNS), None)
    name_col = st.selectbox(
        "Name column",
        ["(row number)", *names],
        index=names.index(name_guess) + 1 if name_guess else 0,
    )
    if not st.button("Score file", type="primary", key="score_upload"):
        return None
    out = pd.DataFrame(
        {
            "name": table[name_col].astype(str).to_numpy()
            if name_col in table
            else [f"row {i + 1}" for i in range(len(table))],
            "smiles": table[smi_col].to_numpy(),
        }
    )
    if READ_ERROR in table:  # a record the reader could not use keeps its reason
        out[READ_ERROR] = table[READ_ERROR].to_numpy()
    own = [c for c in cols if c not in (smi_col, name_col)]  # IDs, measured values: kept
    return pd.concat([out, _own_columns(table[own])], axis=1)


# text that reads as a number but is an identifier: a leading zero ("0001234"), or more
# digits than a float keeps (17-digit vendor IDs)
_IDENTIFIER = r"^[+-]?0\d|\d{16,}"


def _own_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The user's other columns as the table shows them: a column whose filled cells all read
    as numbers becomes numeric (the reader keeps text) unless a number would change an
    identifier, and a name the page uses for its own columns gets an ``input_`` prefix."""
    out = {}
    names = [str(col) for col in table.columns]
    renamed = input_names(names, PAGE_COLUMNS)
    for col, name in zip(table.columns, names, strict=True):
        values = table[col]
        text = values.astype("string").str.strip()
        filled = text[text.notna() & (text != "")]
        if (
            len(filled)
            and pd.to_numeric(filled, errors="coerce").notna().all()
            and not filled.str.contains(_IDENTIFIER).any()
        ):
            values = pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
        out[renamed.get(name, name)] = values.to_numpy()
    return pd.DataFrame(out, index=table.index).reset_index(drop=True)


def run_scoring(candidates: pd.DataFrame, models, confidence: float) -> None:
    if len(candidates) > MAX_MOLECULES:
        st.error(
            f"{len(candidates):,} molecules is more than this page scores at once "
            f"({MAX_MOLECULES:,}); use `molpred predict` for libraries."
        )
        return
    if not models:
        st.error("Choose at least one model in the sidebar.")
        return
    bar = st.progress(0.0, text=f"Scoring {len(candidates):,} molecules…")
    predictor = Predictor(
        models, confidence=confidence, percentiles=True, reserved=(*SCREEN_COLUMNS, *PAGE_COLUMNS)
    )
    table = screen(
        predictor,
        candidates["smiles"].tolist(),
        candidates["name"].tolist(),
        read_errors=candidates.get(READ_ERROR),
        extra=candidates.drop(columns=["name", "smiles", READ_ERROR], errors="ignore"),
        depict=True,
        workers=default_workers(),
        progress=lambda f: bar.progress(f),
    )
    bar.empty()
    st.session_state["results"] = table
    st.session_state.pop("batch", None)  # picked from the previous candidates
    st.session_state.pop("detail_pick", None)  # a row number of the previous table
    st.session_state["predictor"] = predictor
    # the objects, not only the names: a retrained or re-uploaded file keeps its name
    st.session_state["result_models"] = {name: id(m) for name, m in models.items()}


# ---------------------------------------------------------------------------------- results


def main() -> None:
    st.title("molpred · screen candidates")
    st.caption("Score, rank and inspect molecules with graph-neural-network property models.")
    models, confidence = sidebar()
    training_panel(MODELS_DIR)
    candidates = inputs()
    if candidates is not None:
        run_scoring(candidates, models, confidence)
    if "results" in st.session_state:
        predictor = st.session_state["predictor"]
        scored_with = st.session_state["result_models"]
        if scored_with != {name: id(m) for name, m in models.items()}:
            # the table keeps the models it was scored with (loaded models are cached: the
            # same file gives the same object; a changed one, a new object)
            st.info(
                "The table below was scored with "
                + (", ".join(f"`{n}`" for n in scored_with) or "no model")
                + ". The models chosen in the sidebar, or their files, have changed since: "
                "press **Score** again to score with them."
            )
        if predictor.confidence != confidence:  # intervals follow the slider, no rescoring
            for key in ("results", "batch"):  # the batch's rows carry intervals too
                if st.session_state.get(key) is not None:
                    st.session_state[key] = predictor.reinterval(st.session_state[key], confidence)
            st.session_state["predictor"] = predictor = predictor.with_confidence(confidence)
        columns = {
            c: label
            for c, label in value_labels(predictor).items()
            if c in st.session_state["results"]
        }
        data = data_columns(st.session_state["results"], predictor)  # from the user's file
        ranked = {**columns, **{c: f"{c} (your data)" for c in data}}
        objectives = ranking_controls(ranked, predictor, st.session_state["results"])
        keep = filters(st.session_state["results"], ranked, objectives)
        results(predictor, objectives, keep, columns, plotted=ranked)


main()
