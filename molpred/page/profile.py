"""The page's ADMET profile: columns grouped by category with a picker, ranking presets for
common goals, and one molecule's profile across every endpoint with its approved-drug
percentile and the model's confidence (Streamlit views called by ``molpred.page.results``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from molpred.medchem import PROPERTY_UNITS
from molpred.page.labels import card_of
from molpred.predictor import Predictor
from molpred.pretrained import CARDS, CATEGORIES

__all__ = [
    "categories",
    "PRESETS",
    "apply_preset",
    "preset_picker",
    "follow_panel",
    "default_columns",
    "data_columns",
    "column_picker",
    "profile",
]

OWN = "Your models"
COMPUTED = "Computed properties"

# goal -> (task or property, direction, weight, low, high); a goal's terms whose model is not
# in the panel are left out. Medicinal-chemistry rules of thumb, not fitted to anything:
# CNS drugs sit at logD 1-3 and TPSA 40-90 (Wager et al., ACS Chem. Neurosci. 2010). What
# keeps drugs out of the brain is being a P-gp substrate (efflux); the panel predicts P-gp
# inhibition (an interaction risk), which says nothing about it, so no CNS goal uses it.
PRESETS: dict[str, list[tuple[str, str, float, float | None, float | None]]] = {
    "Oral CNS drug": [
        ("p_np", "higher", 1.0, None, None),
        ("exp", "range", 1.0, 1.0, 3.0),
        ("TPSA", "range", 1.0, 40.0, 90.0),
        ("oral_bioavailability", "higher", 1.0, None, None),
        ("CLint_human", "lower", 0.5, None, None),
        ("logS_AqSolDB", "higher", 0.5, None, None),
    ],
    "Oral drug, good exposure": [
        ("oral_bioavailability", "higher", 1.0, None, None),
        ("logS_AqSolDB", "higher", 1.0, None, None),
        ("exp", "range", 1.0, 1.0, 3.0),
        ("CLint_human", "lower", 1.0, None, None),
        ("log10_fu", "higher", 0.5, None, None),
        ("QED", "higher", 0.5, None, None),
    ],
    "Low CYP liability": [
        *(
            (f"CYP{c}_inhibitor", "lower", 1.0, None, None)
            for c in ("1A2", "2C19", "2C9", "2D6", "3A4")
        ),
        *((f"CYP{c}_IC50", "higher", 0.5, None, None) for c in ("2C9", "2D6", "3A4")),
        *((f"CYP{c}_substrate", "lower", 0.3, None, None) for c in ("2C9", "2D6", "3A4")),
    ],
    "Safety first": [
        ("Ames", "lower", 1.0, None, None),
        ("carcinogen", "lower", 1.0, None, None),
        ("CT_TOX", "lower", 1.0, None, None),
        ("skin_sensitizer", "lower", 0.5, None, None),
        *((t, "lower", 1 / 12, None, None) for t in CARDS["tox21"].targets),
    ],
}
MANUAL = "Manual (the cards' preferred directions)"


def categories(predictor: Predictor) -> dict[str, str]:
    """Value column -> its category (the bundled cards' categories, then the user's models,
    then the computed properties)."""
    out = {}
    for model, columns in zip(predictor.models, predictor.schema.models, strict=True):
        card = card_of(columns.name, model)
        for task in columns.tasks:
            out[task.value] = (card.category_of(task.task) if card else "") or OWN
    out.update({prop: COMPUTED for prop in PROPERTY_UNITS})
    return out


def _columns_of(predictor: Predictor) -> dict[str, str]:
    """Task name or property -> value column (task names of bundled panels are unique)."""
    found: dict[str, str] = {prop: prop for prop in PROPERTY_UNITS}
    for task in predictor.schema.tasks:
        found.setdefault(task.task, task.value)
    return found


def apply_preset(
    goal: str, predictor: Predictor, columns: dict[str, str], only: set[str] | None = None
) -> None:
    """Set the ranking widgets' state to ``goal``'s terms; every other property is ignored
    (``only``: set just these columns' widgets)."""
    terms = {
        _columns_of(predictor)[term[0]]: term
        for term in PRESETS[goal]
        if term[0] in _columns_of(predictor)
    }
    for col in columns if only is None else [c for c in columns if c in only]:
        term = terms.get(col)
        st.session_state[f"dir_{col}"] = term[1] if term else "ignore"
        if term:
            st.session_state[f"w_{col}"] = float(term[2])
            if term[1] == "range":
                st.session_state[f"lo_{col}"], st.session_state[f"hi_{col}"] = term[3], term[4]
    st.session_state["ranking_open"] = True


def preset_picker(predictor: Predictor, columns: dict[str, str]) -> None:
    """A goal to rank by; choosing one sets the directions and weights below it."""

    def chosen() -> None:
        goal = st.session_state["preset"]
        if goal in PRESETS:
            apply_preset(goal, predictor, columns)
        else:  # back to the cards' directions and weights: the widgets start afresh
            for col in columns:
                for key in ("dir", "w", "lo", "hi"):
                    st.session_state.pop(f"{key}_{col}", None)
            st.session_state["ranking_open"] = True

    st.selectbox(
        "Ranking preset",
        [MANUAL, *PRESETS],
        key="preset",
        on_change=chosen,
        help="Sets the directions and weights below for a common goal; change any of them "
        "afterwards. Properties of models not chosen in the sidebar are left out.",
    )


def follow_panel(predictor: Predictor, columns: dict[str, str]) -> None:
    """Carry the table's and the ranking's choices over to a new set of models (ticked or
    unticked in the sidebar, trained or uploaded): a new model's headline columns are shown,
    and under a preset its properties follow the goal (else they would keep the cards'
    directions and weights, and the preset's name would no longer describe the ranking).
    Choices about columns still there are kept. Call before the ranking and column widgets."""
    before = st.session_state.get("panel_columns")
    st.session_state["panel_columns"] = list(columns)
    if before is None or before == list(columns):
        return
    new = set(columns) - set(before)
    if "shown_columns" in st.session_state:
        kept = [c for c in st.session_state["shown_columns"] if c in columns]
        added = [c for c in default_columns(predictor, columns) if c in new]
        st.session_state["shown_columns"] = kept + added
    goal = st.session_state.get("preset")
    if goal in PRESETS and new:
        apply_preset(goal, predictor, columns, only=new)


def data_columns(table: pd.DataFrame, predictor: Predictor) -> list[str]:
    """The numbers the user's own file brought (measured values, costs...): every numeric
    column of the scored table that neither the models nor the computed properties made.
    They can be ranked, filtered and plotted against the predictions."""
    made = {*predictor.schema.columns(), *PROPERTY_UNITS}
    return [
        c
        for c in table.columns
        if c not in made
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
        and table[c].notna().any()
    ]


def default_columns(predictor: Predictor, columns: dict[str, str]) -> list[str]:
    """The columns shown at first: each bundled model's headline endpoints, the first of a
    user's model, and the computed properties."""
    cats = categories(predictor)
    first = set()
    for model, m in zip(predictor.models, predictor.schema.models, strict=True):
        card = card_of(m.name, model)
        headline = set(card.shown or card.targets[:1]) if card else {t.task for t in m.tasks[:1]}
        first.update(t.value for t in m.tasks if t.task in headline)
    return [c for c in columns if c in first or cats.get(c) == COMPUTED]


def column_picker(predictor: Predictor, columns: dict[str, str]) -> list[str]:
    """The property columns the table shows, chosen by category (default:
    :func:`default_columns`); ranking, filters and downloads keep every column."""
    cats = categories(predictor)
    order = {c: i for i, c in enumerate([*CATEGORIES, OWN, COMPUTED])}
    options = sorted(columns, key=lambda c: order.get(cats.get(c, OWN), len(order)))
    chosen = "shown_columns" in st.session_state  # the user's (or follow_panel's) choice
    return st.multiselect(
        "Columns",
        options,
        default=None if chosen else default_columns(predictor, columns),
        format_func=lambda c: f"{cats.get(c, OWN)} · {columns[c]}",
        key="shown_columns",
        help="What the table shows. Each property brings its spread and approved-drug "
        "percentile; downloads hold every column.",
    )


def profile(row: pd.Series, predictor: Predictor, columns: dict[str, str]) -> pd.DataFrame:
    """One molecule across every endpoint: category, property, prediction, percentile among
    approved drugs, expected error, the conformal interval (or set of plausible classes) at
    the sidebar's confidence, and whether it is in the model's domain."""
    cats = categories(predictor)
    rows = []
    for m in predictor.schema.models:
        for task in m.tasks:
            pct = row.get(task.pct) if task.pct else None
            rows.append(
                {
                    "category": cats.get(task.value, OWN),
                    "property": columns.get(task.value, task.value),
                    "prediction": row.get(task.value),
                    "among approved drugs (percentile)": pct,
                    # a classifier's spread follows its probability (sqrt(p(1-p)) for one
                    # member): not an error learned from held-out molecules
                    "expected error": row.get(task.std) if task.kind == "regression" else None,
                    f"{predictor.confidence:.0%} interval": _interval(row, task),
                    "in domain": row.get(m.in_domain) if m.domain else None,
                }
            )
    order = {c: i for i, c in enumerate([*CATEGORIES, OWN])}
    table = pd.DataFrame(rows)
    return table.sort_values("category", key=lambda s: s.map(order), kind="stable")


def _interval(row: pd.Series, task) -> str:
    """``low to high`` for a regression task, the plausible classes for a classification one
    ("0,1": the model cannot tell; "neither": no class is plausible)."""
    if task.kind == "regression" and task.lower:
        low, high = row.get(task.lower), row.get(task.upper)
        return f"{low:.3g} to {high:.3g}" if pd.notna(low) and pd.notna(high) else ""
    if task.set:
        found = row.get(task.set)
        return ("neither" if found == "" else str(found)) if isinstance(found, str) else ""
    return ""


def show_profile(row: pd.Series, predictor: Predictor, columns: dict[str, str]) -> None:
    st.markdown("**Profile across the panel**")
    st.dataframe(
        profile(row, predictor, columns),
        hide_index=True,
        key="profile",
        column_config={
            "prediction": st.column_config.NumberColumn(format="%.3g"),
            "among approved drugs (percentile)": st.column_config.ProgressColumn(
                min_value=0,
                max_value=100,
                format="%.0f",
                help="Share of FDA-approved drugs (ClinTox) predicted lower by the same model",
            ),
            "expected error": st.column_config.NumberColumn(format="%.3g"),
        },
    )
