"""The page's results: ranking controls, filters, the ranked table with its downloads, and the
property plot (Streamlit views called by ``app.py``)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from molpred.page.batch import BATCH, batch_downloads, batch_panel, chemical_map, current_batch
from molpred.page.detail import detail
from molpred.page.labels import TRUST_HELP, column_names, preferred
from molpred.page.profile import (
    COMPUTED,
    categories,
    column_picker,
    follow_panel,
    preset_picker,
)
from molpred.predictor import Predictor
from molpred.pretrained.approved import population
from molpred.ranking import DIRECTIONS, Objective, pareto_front, score
from molpred.screen import SALT, to_sdf

__all__ = ["ranking_controls", "filters", "results"]


def _readable(table: pd.DataFrame, predictor: Predictor) -> pd.DataFrame:
    """Blank instead of "None" in the text cells of rows that could not be scored, and an
    explicit word for an empty conformal set (no class is plausible), which otherwise looks
    like a missing value."""
    out = table.copy()
    scored = out["error"] == ""
    for task in predictor.schema.tasks:
        if task.set:
            out[task.set] = np.where(scored, out[task.set].replace("", "neither"), "")
    text = [
        c
        for c in out.columns
        if c != "structure" and pd.api.types.infer_dtype(out[c], skipna=True) == "string"
    ]
    for c in text:
        out[c] = out[c].astype(object).where(out[c].notna(), "")
    return out


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _keep_open(panel: str) -> None:
    st.session_state[f"{panel}_open"] = True


def ranking_controls(
    columns: dict[str, str], predictor: Predictor, table: pd.DataFrame
) -> list[Objective]:
    """Direction and weight per property. The defaults count each model once (a model's
    tasks share a weight of 1: twelve Tox21 assays do not outweigh everything else); a range
    starts at the card's preferred range, else the middle half of the scored values. Once
    touched, the panel stays open across reruns."""
    follow_panel(predictor, columns)
    defaults = preferred(predictor)
    share = {task.value: 1.0 / len(m.tasks) for m in predictor.schema.models for task in m.tasks}
    objectives = []
    touched = {"on_change": _keep_open, "args": ("ranking",)}
    with st.expander(
        "Ranking: direction and weight per property",
        expanded=st.session_state.get("ranking_open", False),
    ):
        preset_picker(predictor, columns)
        for col, label in columns.items():
            hint = defaults.get(col, "higher" if col == "QED" else "")
            a, b, c, d = st.columns([3, 2, 2, 3])
            choice = a.selectbox(
                label,
                ["ignore", *DIRECTIONS],
                key=f"dir_{col}",
                index=(["ignore", *DIRECTIONS].index(hint.split()[0]) if hint else 0),
                **touched,
            )
            if choice == "ignore":
                continue
            weight = b.number_input(
                "weight", 0.0, 10.0, round(share.get(col, 1.0), 3), 0.05, key=f"w_{col}", **touched
            )
            lo = hi = None
            if choice == "range":
                lo0, hi0 = _starting_range(hint, table[col])
                lo = c.number_input("from", value=lo0, key=f"lo_{col}", **touched)
                hi = d.number_input("to", value=hi0, key=f"hi_{col}", **touched)
            try:
                objectives.append(Objective(col, choice, weight, lo, hi))
            except ValueError as exc:
                st.warning(str(exc))
    return objectives


def _starting_range(hint: str, scored: pd.Series) -> tuple[float, float]:
    """A range objective's start: the card's preferred range, else the middle half of the
    scored values (0 to 1 when nothing scored)."""
    if hint.startswith("range"):
        lo, hi = map(float, hint.split()[1:3])
        return lo, hi
    values = pd.to_numeric(scored, errors="coerce").dropna()
    if values.empty:
        return 0.0, 1.0
    return round(float(values.quantile(0.25)), 3), round(float(values.quantile(0.75)), 3)


def filters(table: pd.DataFrame, columns: dict[str, str], objectives: list[Objective]) -> pd.Series:
    keep = pd.Series(True, index=table.index)
    with st.expander("Filters", expanded=False):
        a, b, c = st.columns(3)
        ranked = ranked_domains(st.session_state["predictor"], objectives)
        if a.checkbox(
            "in the domain of every ranked model",
            key="f_domain",
            help="Only molecules like the training molecules of each model whose predictions "
            "weigh in the ranking (a panel of 17 models rarely agrees on every molecule).",
        ):
            for col in ranked:
                keep &= table[col].fillna(False).astype(bool)
        if b.checkbox("no PAINS / Brenk alert", key="f_alerts"):
            keep &= (table["PAINS"].fillna("") == "") & (table["Brenk"].fillna("") == "")
            keep &= table["error"] == ""  # no structure, nothing checked: not "no alert"
        if c.checkbox("passes Lipinski and Veber", key="f_rules"):
            keep &= table["Lipinski"].fillna(False).astype(bool) & table["Veber"].fillna(
                False
            ).astype(bool)
        for col in st.multiselect(
            "Range filters", list(columns), format_func=columns.get, key="f_cols"
        ):
            values = table[col].dropna()
            if values.empty or values.min() == values.max():
                continue
            full = (float(values.min()), float(values.max()))
            lo, hi = st.slider(columns[col], *full, full, key=f"f_{col}")
            if (lo, hi) != full:  # untouched, it keeps every row (those without a value too)
                keep &= table[col].between(lo, hi)
    return keep


def ranked_domains(predictor: Predictor, objectives: list[Objective]) -> list[str]:
    """The in-domain columns of the models that have a task weighing in the ranking."""
    weighed = {o.column for o in objectives if o.weight > 0}
    return [
        m.in_domain
        for m in predictor.schema.models
        if m.domain and any(t.value in weighed for t in m.tasks)
    ]


def results(
    predictor: Predictor,
    objectives: list[Objective],
    keep: pd.Series,
    columns: dict[str, str],
    plotted: dict[str, str] | None = None,
) -> None:
    """The ranked table (``columns``: the models' and computed properties, which the column
    picker chooses among), its downloads, the batch, the property plot (of ``plotted``, default
    ``columns``: the page adds the numbers of the user's own file) and the detail view."""
    table = st.session_state["results"].copy()
    table["score"] = score(table, objectives) if objectives else np.nan
    table = table[keep.reindex(table.index, fill_value=True)]
    table = table.sort_values("score", ascending=False, na_position="last", kind="stable")
    # equal scores share a rank (1, 1, 3): input order does not make one molecule better
    ranks = table["score"].rank(ascending=False, method="min", na_option="bottom")
    table.insert(0, "rank", ranks.astype(int).to_numpy())
    batch_panel(table, predictor, objectives)
    batch = current_batch(table, objectives)
    lead = ["rank", "structure", "name", "score", "error", "smiles"]  # what a chemist reads first
    if SALT in table:
        lead.append(SALT)
    if batch is not None:  # the picks are marked in the table, with why each was chosen
        table.insert(1, BATCH, batch["pick"].reindex(table.index).astype("Int64"))
        table["why"] = batch["why"].reindex(table.index).fillna("")
        lead.insert(1, BATCH)
        candidates = table
        if st.toggle("Show only the batch", key="only_batch"):
            table = table[table[BATCH].notna()].sort_values(BATCH)
    table = table[lead + [c for c in table.columns if c not in lead]]
    failed = int((table["error"] != "").sum())
    st.subheader(
        f"{_plural(len(table), 'candidate')} ({len(table) - failed:,} scored, "
        f"{failed:,} with errors)"
        + (f", {len(batch)} in the suggested batch" if batch is not None else "")
    )
    names = column_names(predictor, columns)
    config = {
        "structure": st.column_config.ImageColumn("structure", width="medium"),
        "score": st.column_config.NumberColumn("score", format="%.3f"),
        "error": st.column_config.TextColumn("error", width="large"),
        BATCH: st.column_config.NumberColumn(
            "batch", help="Pick number in the suggested batch (blank: not picked)"
        ),
        "why": st.column_config.TextColumn("why picked", width="large"),
        SALT: st.column_config.TextColumn(
            "salt", help="Counter-ions or other components in the input, and what was scored"
        ),
    }
    spreads = {t.std for m in predictor.schema.models for t in m.tasks if t.kind != "regression"}
    drugs = {  # how many approved drugs each model's percentiles stand on
        t.pct: population(model)
        for model, columns in zip(predictor.models, predictor.schema.models, strict=True)
        for t in columns.tasks
        if t.pct
    }
    for col, label in names.items():
        if col in table:
            help_text = next((h for suffix, h in TRUST_HELP.items() if col.endswith(suffix)), None)
            if col in spreads:  # a classifier's std: no expected error
                help_text = TRUST_HELP["_spread"]
            if drugs.get(col):
                help_text = f"{help_text} ({drugs[col]:,} approved drugs.)"
            if pd.api.types.is_bool_dtype(table[col]):  # in domain: a tick, not 1/0
                config[col] = st.column_config.CheckboxColumn(label, help=help_text)
            elif table[col].dtype == object:
                config[col] = st.column_config.TextColumn(label, help=help_text)
            else:
                config[col] = st.column_config.NumberColumn(label, help=help_text, format="%.3g")
    shown = _readable(table.drop(columns="molecule"), predictor)
    visible = _visible(shown, predictor, columns, column_picker(predictor, columns))
    st.dataframe(  # only the chosen columns travel to the browser (the panel has ~300)
        shown[visible],
        column_config=config,
        hide_index=True,
        row_height=90,
        placeholder="",  # a missing value (not in the batch, not predicted) reads blank
        key="ranked",
    )
    machine = st.checkbox(
        "Machine column names in downloads",
        key="machine_names",
        help="Stable names for scripts (e.g. 'exp_lower'); by default the "
        "downloads use the names shown in the table",
    )
    rename = {} if machine else names
    plain = shown.drop(columns="structure").rename(columns=rename)
    a, b = st.columns(2)
    # on_click="ignore": no rerun on click, which could replace the file mid-download
    a.download_button(  # made when clicked, like the SDF (~0.2 s for 1,000 rows)
        "Download CSV",
        lambda: plain.to_csv(index=False).encode(),
        "molpred_ranked.csv",
        "text/csv",
        key="dl_csv",
        on_click="ignore",
    )
    # the SDF (~2 ms a molecule) is made when clicked, not on every rerun
    b.download_button(
        "Download SDF",
        lambda: to_sdf(table.drop(columns="structure").rename(columns=rename)),
        "molpred_ranked.sdf",
        "chemical/x-mdl-sdfile",
        key="dl_sdf",
        on_click="ignore",
    )
    if batch is not None:
        batch_downloads(batch, rename)
    scatter(table, plotted or columns, objectives)
    if batch is not None:
        chemical_map(candidates, batch)
    detail(table, predictor, columns)


def _visible(
    table: pd.DataFrame, predictor: Predictor, columns: dict[str, str], chosen: list[str]
) -> list[str]:
    """The table's columns in order, without the properties not chosen: a chosen prediction
    brings its percentile and spread, a model with one chosen brings its domain flag."""
    cats = categories(predictor)
    hidden = {c for c in columns if c not in chosen}
    for m in predictor.schema.models:
        picked = [t for t in m.tasks if t.value in chosen]
        for t in m.tasks:
            hidden.update([c for c in (t.pct, *t.trust) if c])
            if t in picked:
                hidden.difference_update([c for c in (t.pct, t.std) if c])
        hidden.update(m.domain_columns)
        if picked and m.domain:
            hidden.discard(m.in_domain)
    hidden.update(c for c in columns if cats.get(c) == COMPUTED and c not in chosen)
    return [c for c in table.columns if c not in hidden]


def scatter(table: pd.DataFrame, columns: dict[str, str], objectives: list[Objective]) -> None:
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
    # Pareto-optimal on the two plotted properties (with many objectives every molecule is)
    plotted = [o for o in objectives if o.column in (x, y)]
    table = table.assign(pareto=pareto_front(table, plotted) if len(plotted) == 2 else False)
    table = table.assign(picked=table[BATCH].notna() if BATCH in table else False)
    data = table[["name", "smiles", x, y, "score", "pareto", "picked"]].dropna(subset=[x, y])
    data = data.rename(columns={x: "x", y: "y"})
    chart = (
        alt.Chart(data)
        .mark_point(filled=True, opacity=0.8)
        .encode(
            x=alt.X("x:Q", title=columns[x]),
            y=alt.Y("y:Q", title=columns[y]),
            color=alt.Color("score:Q", scale=alt.Scale(scheme="viridis")),
            size=alt.condition("datum.pareto", alt.value(160), alt.value(40)),
            stroke=alt.condition("datum.pareto", alt.value("red"), alt.value(None)),
            shape=alt.condition("datum.picked", alt.value("diamond"), alt.value("circle")),
            tooltip=["name", "smiles", "x", "y", "score", "pareto", "picked"],
        )
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        "Red-ringed points are Pareto-optimal on the two plotted properties, in the "
        "directions chosen under Ranking (both must be ranked); diamonds are in the "
        "suggested batch."
    )
