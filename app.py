"""molpred screening page: paste, upload or draw candidates, score them with property models,
rank by what the project needs, and inspect any molecule.

Run: ``streamlit run app.py`` (bundled models load on first start). UI only: scoring, chemistry
and ranking live in the ``molpred`` package (``molpred.screen``, ``molpred.ranking``,
``molpred.explain``), shared with the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

import molpred
from molpred.chem import InvalidMoleculeError, standardize
from molpred.explain import atom_contributions, draw_contributions
from molpred.featurize import fingerprint
from molpred.io import READ_ERROR, DataError, InMemoryFile, read_table
from molpred.medchem import PROPERTY_UNITS
from molpred.parallel import default_workers
from molpred.predictor import Predictor
from molpred.pretrained import CARDS, available, model_path
from molpred.ranking import DIRECTIONS, Objective, pareto_front, score
from molpred.screen import mol_svg, parse_pasted, screen, to_sdf

MAX_MOLECULES = 20_000
MODELS_DIR = Path(os.environ.get("MOLPRED_MODELS_DIR", "models"))
EXAMPLE = "CC(=O)Oc1ccccc1C(=O)O aspirin\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine\nC1CC broken"
PRIVACY = ("**Private by design.** Structures are scored on this machine only: nothing is sent "
           "anywhere, uploads stay in memory and are never written to disk, and usage statistics "
           "are switched off.")  # fmt: skip

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


def _card(name: str, model: molpred.MolpredModel):
    """The bundled model card of ``model`` (None for a user's model, even one that shares a
    bundled model's name)."""
    card = CARDS.get(name)
    return card if card is not None and model.info.card == name else None


def sidebar() -> tuple[dict[str, molpred.MolpredModel], float]:
    st.sidebar.header("Models")
    bundled = available()
    chosen = st.sidebar.multiselect("Bundled models", bundled, default=bundled,
                                    format_func=lambda n: CARDS[n].title)  # fmt: skip
    own = sorted(MODELS_DIR.glob("*.pt")) if MODELS_DIR.is_dir() else []
    own_names = [p.name for p in own]
    own_chosen = st.sidebar.multiselect(f"Your models (`{MODELS_DIR}/`)", own_names,
                                        default=own_names if not bundled else [])  # fmt: skip
    upload = st.sidebar.file_uploader("…or upload a model file", type=["pt"], key="model_file")
    models: dict[str, molpred.MolpredModel] = {n: _bundled(n) for n in chosen}
    for p in own:
        if p.name in own_chosen:
            try:
                models[p.stem] = _from_file(str(p), p.stat().st_mtime)
            except ValueError as exc:
                st.sidebar.error(str(exc))
    if upload is not None:
        try:
            models[Path(upload.name).stem] = _from_upload(upload.getvalue(), upload.name)
        except ValueError as exc:
            st.sidebar.error(str(exc))
    confidence = st.sidebar.slider("Confidence of intervals", 0.5, 0.99, 0.9, 0.01,
                                   help="conformal prediction level")  # fmt: skip
    with st.sidebar.expander("Model cards"):
        for name, model in models.items():
            _model_card(name, model)
    st.sidebar.info(PRIVACY)
    return models, confidence


def _model_card(name: str, model: molpred.MolpredModel) -> None:
    info = model.info
    card = _card(name, model)
    st.markdown(f"**{card.title if card else name}**")
    if card:
        st.caption(f"{card.description} Units: {card.units}. Data: {card.source}.")
    test = {k: round(v, 3) for k, v in info.metrics.get("test", {}).items()
            if "/" not in k and k != "loss"}  # fmt: skip
    shown = ", ".join(f"{k} {v}" for k, v in test.items()) or "none"
    st.caption(f"Split: {info.split}; test metrics: {shown}; trained {info.created[:10] or '?'} "
               f"with molpred {info.molpred_version}; {info.n_train_molecules} molecules.")


# ---------------------------------------------------------------------------------- input


def inputs() -> pd.DataFrame | None:
    """The candidates to score (name, smiles) once the user asks, else None."""
    paste, upload, draw = st.tabs(["Paste", "Upload", "Draw"])
    with paste:
        text = st.text_area("SMILES, one per line (optional name after a space)", height=180,
                            key="pasted", placeholder=EXAMPLE)  # fmt: skip
        if st.button("Score", type="primary", key="score_paste"):
            table = parse_pasted(text)
            if table.empty:
                st.warning("Paste at least one SMILES first.")
                return None
            return table
    with upload:
        file = st.file_uploader("CSV, TSV, SMI, SDF or Parquet (optionally .gz)",
                                type=["csv", "tsv", "smi", "txt", "sdf", "parquet", "gz"],
                                key="candidates_file")  # fmt: skip
        if file is not None:
            try:
                table = read_table(InMemoryFile(file.name, file.getvalue()), as_text=True)
            except DataError as exc:
                st.error(f"Cannot read {file.name}: {exc}")
                return None
            cols = [c for c in table.columns if c != READ_ERROR]
            guess = next((c for c in cols if str(c).lower() in ("smiles", "canonical_smiles")),
                         cols[0])  # fmt: skip
            smi_col = st.selectbox("SMILES column", cols, index=cols.index(guess))
            name_col = st.selectbox("Name column", ["(row number)", *cols],
                                    index=cols.index("name") + 1 if "name" in cols else 0)
            if st.button("Score file", type="primary", key="score_upload"):
                names = (table[name_col].astype(str) if name_col in table
                         else pd.Series([f"row {i + 1}" for i in range(len(table))]))
                return pd.DataFrame({"name": names.to_numpy(),
                                     "smiles": table[smi_col].to_numpy()})  # fmt: skip
    with draw:
        try:
            from streamlit_ketcher import st_ketcher
        except ImportError:  # pragma: no cover - a dependency, but keep the page usable
            st.info("Install streamlit-ketcher to draw molecules.")
            return None
        drawn = st_ketcher(key="ketcher", height=450)
        if st.button("Score drawing", key="score_draw") and drawn:
            return pd.DataFrame({"name": ["drawn"], "smiles": [drawn]})
    return None


def run_scoring(candidates: pd.DataFrame, models, confidence: float) -> None:
    if len(candidates) > MAX_MOLECULES:
        st.error(f"{len(candidates):,} molecules is more than this page scores at once "
                 f"({MAX_MOLECULES:,}); use `molpred predict` for libraries.")  # fmt: skip
        return
    if not models:
        st.error("Choose at least one model in the sidebar.")
        return
    bar = st.progress(0.0, text=f"Scoring {len(candidates):,} molecules…")
    predictor = Predictor(models, confidence=confidence)
    table = screen(predictor, candidates["smiles"].tolist(), candidates["name"].tolist(),
                   depict=True, workers=default_workers(),
                   progress=lambda f: bar.progress(f))  # fmt: skip
    bar.empty()
    st.session_state["results"] = table
    st.session_state["predictor"] = predictor
    st.session_state["result_models"] = list(models)


# ---------------------------------------------------------------------------------- results


def _value_columns(predictor: Predictor) -> dict[str, str]:
    """Prediction value column -> display label with units, for every (model, task) of the
    panel (a label two models share names its model), then the computed properties."""
    found = {}
    for model, columns in zip(predictor.models, predictor.schema.models, strict=True):
        card = _card(columns.name, model)
        for task in columns.tasks:
            label = card.display(task.task) if card else task.task
            unit = f" ({card.units})" if card and card.units else ""
            found[task.value] = (columns.name, label, unit)
    labels = [label for _, label, _ in found.values()]
    out = {col: (f"{label} · {name}" if labels.count(label) > 1 else label) + unit
           for col, (name, label, unit) in found.items()}  # fmt: skip
    for prop, unit in PROPERTY_UNITS.items():
        out[prop] = f"{prop} ({unit})" if unit else prop
    return out


def _preferred(predictor: Predictor) -> dict[str, str]:
    """Value column -> ranking hint of its bundled model card."""
    return {task.value: card.preferred
            for model, columns in zip(predictor.models, predictor.schema.models, strict=True)
            if (card := _card(columns.name, model)) and card.preferred
            for task in columns.tasks}  # fmt: skip


def ranking_controls(columns: dict[str, str], predictor: Predictor) -> list[Objective]:
    defaults = _preferred(predictor)
    objectives = []
    with st.expander("Ranking: direction and weight per property", expanded=False):
        for col, label in columns.items():
            hint = defaults.get(col, "higher" if col == "QED" else "")
            a, b, c, d = st.columns([3, 2, 2, 3])
            choice = a.selectbox(label, ["ignore", *DIRECTIONS], key=f"dir_{col}",
                                 index=(["ignore", *DIRECTIONS].index(hint.split()[0])
                                        if hint else 0))  # fmt: skip
            if choice == "ignore":
                continue
            weight = b.number_input("weight", 0.0, 10.0, 1.0, 0.5, key=f"w_{col}")
            lo = hi = None
            if choice == "range":
                lo0, hi0 = (map(float, hint.split()[1:3]) if hint.startswith("range")
                            else (0.0, 1.0))  # fmt: skip
                lo = c.number_input("from", value=lo0, key=f"lo_{col}")
                hi = d.number_input("to", value=hi0, key=f"hi_{col}")
            try:
                objectives.append(Objective(col, choice, weight, lo, hi))
            except ValueError as exc:
                st.warning(str(exc))
    return objectives


def filters(table: pd.DataFrame, columns: dict[str, str]) -> pd.Series:
    keep = pd.Series(True, index=table.index)
    with st.expander("Filters", expanded=False):
        a, b, c = st.columns(3)
        if a.checkbox("in every model's domain", key="f_domain"):
            for col in st.session_state["predictor"].schema.in_domain_columns:
                keep &= table[col].fillna(False).astype(bool)
        if b.checkbox("no PAINS / Brenk alert", key="f_alerts"):
            keep &= (table["PAINS"].fillna("") == "") & (table["Brenk"].fillna("") == "")
        if c.checkbox("passes Lipinski and Veber", key="f_rules"):
            keep &= table["Lipinski"].fillna(False).astype(bool) & table["Veber"].fillna(
                False).astype(bool)  # fmt: skip
        for col in st.multiselect("Range filters", list(columns), format_func=columns.get,
                                  key="f_cols"):  # fmt: skip
            values = table[col].dropna()
            if values.empty or values.min() == values.max():
                continue
            lo, hi = st.slider(columns[col], float(values.min()), float(values.max()),
                               (float(values.min()), float(values.max())), key=f"f_{col}")
            keep &= table[col].between(lo, hi)
    return keep


def results(predictor: Predictor, objectives: list[Objective], keep: pd.Series,
            columns: dict[str, str]) -> None:  # fmt: skip
    table = st.session_state["results"].copy()
    table["score"] = score(table, objectives) if objectives else np.nan
    table["pareto"] = pareto_front(table, objectives) if len(objectives) >= 2 else False
    table = table[keep.reindex(table.index, fill_value=True)]
    table = table.sort_values("score", ascending=False, na_position="last", kind="stable")
    table.insert(0, "structure", table.pop("structure"))
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    failed = int((table["error"] != "").sum())
    st.subheader(f"{len(table):,} candidates ({len(table) - failed:,} scored, {failed:,} "
                 "with errors)")  # fmt: skip
    config = {"structure": st.column_config.ImageColumn("structure", width="medium"),
              "score": st.column_config.NumberColumn("score", format="%.3f"),
              "error": st.column_config.TextColumn("error", width="large")}  # fmt: skip
    for col, label in columns.items():
        if col in table:
            config[col] = st.column_config.NumberColumn(label, format="%.3g")
    for task in predictor.schema.tasks:
        short = columns[task.value].split(" (")[0]
        config[task.std] = st.column_config.NumberColumn(f"{short} sd", format="%.3g")
        if task.kind == "regression":
            config[task.lower] = st.column_config.NumberColumn(f"{short} lower", format="%.3g")
            config[task.upper] = st.column_config.NumberColumn(f"{short} upper", format="%.3g")
        elif task.set:
            config[task.set] = st.column_config.TextColumn(f"{short} set")
    shown = table.drop(columns="molecule")
    st.dataframe(shown, column_config=config, hide_index=True, row_height=90, key="ranked")
    plain = shown.drop(columns="structure")
    a, b = st.columns(2)
    # on_click="ignore": no rerun on click, which could replace the file mid-download
    a.download_button("Download CSV", plain.to_csv(index=False).encode(), "molpred_ranked.csv",
                      "text/csv", key="dl_csv", on_click="ignore")  # fmt: skip
    # the SDF (~2 ms a molecule) is made when clicked, not on every rerun
    b.download_button("Download SDF", lambda: to_sdf(table.drop(columns="structure")),
                      "molpred_ranked.sdf",
                      "chemical/x-mdl-sdfile", key="dl_sdf", on_click="ignore")  # fmt: skip
    scatter(table, columns)
    detail(table, predictor)


def scatter(table: pd.DataFrame, columns: dict[str, str]) -> None:
    numeric = [c for c in columns if c in table and table[c].notna().any()]
    if len(numeric) < 2:
        return
    st.subheader("Property plot")
    a, b = st.columns(2)
    x = a.selectbox("x", numeric, index=0, format_func=columns.get, key="sx")
    y = b.selectbox("y", numeric, index=1, format_func=columns.get, key="sy")
    if x == y:
        st.info("Choose two different properties to plot.")
        return
    data = table[["name", "smiles", x, y, "score", "pareto"]].dropna(subset=[x, y])
    data = data.rename(columns={x: "x", y: "y"})
    chart = alt.Chart(data).mark_circle().encode(
        x=alt.X("x:Q", title=columns[x]), y=alt.Y("y:Q", title=columns[y]),
        color=alt.Color("score:Q", scale=alt.Scale(scheme="viridis")),
        size=alt.condition("datum.pareto", alt.value(160), alt.value(40)),
        stroke=alt.condition("datum.pareto", alt.value("red"), alt.value(None)),
        tooltip=["name", "smiles", "x", "y", "score", "pareto"],
    )  # fmt: skip
    st.altair_chart(chart, width="stretch")
    st.caption("Red-ringed points are Pareto-optimal on the active ranking objectives.")


@st.cache_data(max_entries=512, show_spinner="Explaining…")
def _explained(model_key: str, smiles: str, task: str, _model: molpred.MolpredModel) -> bytes:
    """The atom-contribution picture of one molecule for one task, computed once per
    (model, molecule, task) across reruns."""
    mol = standardize(smiles, _model.standardization)
    return draw_contributions(mol, atom_contributions(_model, mol, task), 420)


def detail(table: pd.DataFrame, predictor: Predictor) -> None:
    scored = table[table["error"] == ""]
    if scored.empty:
        return
    st.subheader("Molecule detail")
    pick = st.selectbox("Molecule", scored.index, key="detail_pick",
                        format_func=lambda i: f"#{scored.at[i, 'rank']} {scored.at[i, 'name']}")
    smiles = scored.at[pick, "smiles"]
    left, right = st.columns(2)
    tasks = [task.key for task in predictor.schema.tasks]
    name, task = right.selectbox("Explain", tasks, key="detail_task",
                                 format_func=lambda p: f"{p[0]}: {p[1]}")  # fmt: skip
    model = predictor.models[predictor.names.index(name)]
    try:  # once, the way this model prepares structures
        mol = standardize(smiles, model.standardization)
    except InvalidMoleculeError:
        return
    left.image(mol_svg(mol, (420, 320)), width=420)
    left.code(smiles, language=None)  # literal text: never read as Markdown
    key = f"{name}:{model.info.data_fingerprint}:{model.info.created}"
    right.image(_explained(key, smiles, task, model),
                caption="Atom contributions (green raises the prediction, red lowers it)")
    if model.domain is not None and model.domain.smiles:
        rows = []
        t = model.task_names.index(task)
        for idx, sim in model.domain.neighbors(fingerprint(mol), k=5):
            measured = model.domain.targets[idx, t] if model.domain.targets is not None else None
            rows.append({"similarity": round(sim, 3), "smiles": model.domain.smiles[idx],
                         f"measured {task}": None if measured is None or np.isnan(float(measured))
                         else float(measured)})  # fmt: skip
        st.markdown(f"**Nearest training molecules of `{name}`**")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="neighbors")


def main() -> None:
    st.title("molpred · screen candidates")
    st.caption("Score, rank and inspect molecules with graph-neural-network property models.")
    models, confidence = sidebar()
    candidates = inputs()
    if candidates is not None:
        run_scoring(candidates, models, confidence)
    if "results" in st.session_state:
        predictor = st.session_state["predictor"]
        if predictor.confidence != confidence:  # intervals follow the slider, no rescoring
            st.session_state["results"] = predictor.reinterval(st.session_state["results"],
                                                               confidence)  # fmt: skip
            st.session_state["predictor"] = predictor = predictor.with_confidence(confidence)
        columns = {c: label for c, label in _value_columns(predictor).items()
                   if c in st.session_state["results"]}  # fmt: skip
        objectives = ranking_controls(columns, predictor)
        keep = filters(st.session_state["results"], columns)
        results(predictor, objectives, keep, columns)


main()
