"""The page's training panel: upload measured data, choose the columns, train in the
background with live progress, and find the model among "Your models" when it is done (a
Streamlit view called by ``app.py``; the run itself is :class:`molpred.page.job.TrainingJob`)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import streamlit as st

from molpred.chem import guess_smiles_column
from molpred.data import infer_task_types, label_values
from molpred.io import READ_ERROR, DataError, InMemoryFile, read_table
from molpred.page.job import TrainingJob, TrainingRequest
from molpred.pretrained import CARDS, available, model_path
from molpred.transfer import SMALL_DATA

__all__ = ["training_panel"]

AUTO, FROM_SCRATCH = "auto", "none"  # as ``molpred train --init``
PER_COLUMN = "per column"  # the task choice that leaves each column as its values say


@st.cache_data(max_entries=4, show_spinner="Reading…")
def _read(name: str, data: bytes) -> pd.DataFrame:
    return read_table(InMemoryFile(name, data))


def training_panel(models_dir: Path) -> None:
    job: TrainingJob | None = st.session_state.get("training_job")
    # open while a run lasts and after it, with its outcome: an expander whose `expanded`
    # turns False is collapsed by the browser, hiding "Saved" (seen in a CI run)
    with st.expander("Train a model on your own data", expanded=job is not None):
        running = job is not None and job.state == "running"
        if running:
            _progress(job)
        elif job is not None:
            _outcome(job)
        _form(models_dir, running)  # drawn during a run too: its choices outlive the run


def _form(models_dir: Path, running: bool = False) -> None:
    file = st.file_uploader(
        "Measured data: CSV, TSV, SDF or Parquet (optionally .gz), read in memory",
        type=["csv", "tsv", "smi", "txt", "sdf", "parquet", "gz"],
        key="train_file",
        on_change=_forget,  # a new file: its own columns, guessed afresh
        args=("t_smiles", "t_y", "t_task", "t_name"),  # the name too: the new file's
    )
    if file is None:
        return
    try:
        table = _read(file.name, file.getvalue())
    except DataError as exc:
        st.error(f"Cannot read {file.name}: {exc}")
        return
    columns = [c for c in table.columns if c != READ_ERROR]
    guess = guess_smiles_column(table[columns])  # by name, else by what the column holds
    a, b = st.columns(2)
    smiles_column = a.selectbox(
        "SMILES column", columns, index=columns.index(guess) if guess else 0, key="t_smiles"
    )
    numeric = [  # numbers, or class words (active/inactive...) read as 1/0
        c for c in columns if c != smiles_column and label_values(table[c]).notna().any()
    ]
    targets = b.multiselect(
        "Measured value column(s)",
        numeric,
        default=_measured_guess(table, numeric)[:1],
        key="t_y",
        on_change=_forget,  # other values: the task is guessed again from them
        args=("t_task",),
    )
    if not targets:
        st.info(
            "Choose the column(s) with the measured values: numbers, or classes written as "
            "0/1, active/inactive, yes/no or true/false."
            if numeric
            else "No column holds measured values: numbers, or classes written as 0/1, "
            "active/inactive, yes/no or true/false."
        )
        return
    labels = table[targets].apply(label_values)
    kinds = infer_task_types(labels)
    choices = ["regression", "classification"]
    if len(set(kinds)) > 1:  # some columns 0/1, some not: each trained as what it holds
        choices.insert(0, PER_COLUMN)
    c, d, e = st.columns(3)
    task = c.radio(
        "Task",
        choices,
        index=1 if set(kinds) == {"classification"} else 0,
        key="t_task",
        format_func=lambda t: (
            "each column as its values say: "
            + ", ".join(f"{col} {kind}" for col, kind in zip(targets, kinds, strict=True))
            if t == PER_COLUMN
            else t
        ),
        help="Guessed from the values (0/1 only: classification); change it if it is wrong.",
    )
    split = d.radio("Validation split", ["random", "scaffold"], key="t_split")
    epochs = e.number_input("Maximum epochs", 5, 500, 60, 5, key="t_epochs")
    init = st.selectbox(
        "Start from",
        [AUTO, FROM_SCRATCH, *available_encoders()],
        format_func=_start_label,
        key="t_init",
        help="A pretrained encoder helps most with small data (a few hundred molecules).",
    )
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(file.name).name.split(".")[0]).strip("_")
    name = st.text_input("Model name", value=stem or "my_assay", key="t_name")
    output = models_dir / f"{re.sub(r'[^A-Za-z0-9_-]+', '_', name) or 'my_assay'}.pt"
    request = TrainingRequest(
        smiles_column=smiles_column,
        target_columns=tuple(targets),
        task=None if task == PER_COLUMN else task,
        split=split,
        epochs=int(epochs),
        init=init,
    )
    st.caption("The same run from a terminal:")
    st.code(request.command(file.name, str(output)), language="bash")
    if output.exists():
        st.warning(f"`{output}` exists: training will replace it.")
    if output.stem in available():
        st.info(
            f"A bundled model is called `{output.stem}` too: yours will be listed as "
            f"`{output.stem} (yours)` beside it."
        )
    if st.button(
        "Train",
        type="primary",
        key="t_go",
        disabled=running,
        help="One training at a time: this one starts once the run above ends."
        if running
        else None,
    ):
        models_dir.mkdir(parents=True, exist_ok=True)
        st.session_state["training_job"] = TrainingJob(table, request, output).start()
        st.rerun()


def _forget(*keys: str) -> None:
    for key in keys:
        st.session_state.pop(key, None)


# column names that say "measured" and ones that say "not a measurement"
_MEASURED = re.compile(
    r"measured|observed|exp|activity|value|label|target|^y$|ic50|ki$|logd|logs", re.I
)
_NOT_MEASURED = re.compile(r"predict|calc|estimat|(^|_|\b)(id|no|number|index|idx|row)$", re.I)


def _measured_guess(table: pd.DataFrame, numeric: list[str]) -> list[str]:
    """The numeric columns, the likeliest measured values first: a name that says measured
    first; last, names that say predicted or calculated, and identifiers (a name like ``id``,
    or whole numbers, all different, in a column of more than a handful of rows)."""

    def identifier(column: str) -> bool:
        values = pd.to_numeric(table[column], errors="coerce").dropna()
        whole = bool(len(values) > 5 and (values == values.round()).all())
        return bool(_NOT_MEASURED.search(str(column))) or (whole and values.is_unique)

    def rank(column: str) -> int:
        if identifier(column):
            return 2
        return 0 if _MEASURED.search(str(column)) else 1

    return sorted(numeric, key=rank)  # stable: file order within a rank


def available_encoders() -> list[str]:
    """Bundled models whose encoder a new model can start from (the pretrained one first)."""
    names = ["encoder"] if model_path("encoder").is_file() else []
    return names + available()


def _start_label(name: str) -> str:
    if name == AUTO:
        return f"automatic: the pretrained encoder up to {SMALL_DATA} molecules to learn from"
    if name == FROM_SCRATCH:
        return "nothing (random weights)"
    if name == "encoder":
        return "the pretrained encoder (RDKit descriptors of ~60k molecules)"
    return f"the encoder of {CARDS[name].title}"


@st.fragment(run_every=1.0)
def _progress(job: TrainingJob) -> None:
    """Redrawn every second while the run lasts; the rest of the page stays usable."""
    if job.state != "running":
        st.rerun()  # the whole page: the new model appears under "Your models"
    p = job.progress
    if job.queued:
        st.progress(0.0, text="Waiting for another training on this machine to finish…")
    elif p is None:
        st.progress(0.0, text="Reading and featurizing the molecules…")
    else:
        done = (p.member * p.epochs + p.epoch) / (p.members * p.epochs)
        value = "–" if p.value is None else f"{p.value:.3f}"
        left = job.seconds_left()
        text = (
            f"Model {p.member + 1} of {p.members}, epoch {p.epoch} of at most {p.epochs}: "
            f"validation {p.metric} {value}"
            + (f" · at most {left:.0f} s left" if left is not None else "")
        )
        st.progress(min(done, 1.0), text=text)
    if st.button("Cancel training", key="t_cancel"):
        job.cancel()


def _outcome(job: TrainingJob) -> None:
    if job.state == "cancelled":
        st.info("Training was cancelled; nothing was saved.")
    elif job.state == "failed":
        st.error(f"Training failed: {job.error}")
    elif job.state == "done" and job.model is not None:
        model = job.model
        st.success(
            f"Saved `{job.output}` ({model.info.n_train_molecules} molecules, "
            f"{job.seconds:.0f} s): it is now under **Your models** in the sidebar."
        )
        st.caption(_test_caption(job) + f"; data fingerprint {model.info.data_fingerprint[:12]}…")
        if len(model.problems):
            rows = model.problems["row"].nunique()
            st.warning(
                f"{rows} input row{'' if rows == 1 else 's'} left out, with a label left out, "
                "or measured again with another value (row 1 is the first row under the "
                "header):"
            )
            shown = model.problems.assign(row=model.problems["row"] + 1)
            st.dataframe(shown, hide_index=True, key="t_problems")
        st.download_button(
            "Download the model file",
            job.model_file,
            job.output.name,
            "application/octet-stream",
            key="t_download",
            on_click="ignore",
        )


def _test_caption(job: TrainingJob) -> str:
    """The model's test score (its members' mean prediction), with how many molecules it
    rests on: from a handful, a number says little."""
    scores = job.metrics.get("test_ensemble") or job.metrics.get("test", {})
    test = {k: round(v, 3) for k, v in scores.items() if "/" not in k and k != "loss"}
    members = job.metrics.get("members") or [{}]
    n_test = members[0].get("n_test", 0)
    if not test or not n_test:
        return f"No test score ({job.request.split} split: no test molecules)"
    text = (
        f"Test metrics on {n_test} molecule{'' if n_test == 1 else 's'} ({job.request.split} "
        "split, the members' mean prediction): " + ", ".join(f"{k} {v}" for k, v in test.items())
    )
    few = " — too few test molecules for these numbers to mean much" if n_test < 20 else ""
    return text + few
