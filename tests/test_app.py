"""The Streamlit page through Streamlit's own AppTest: paste -> score -> rank, invalid input,
model selection, uploaded models, downloads and the detail view."""

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from molpred.page.profile import MANUAL
from molpred.page.training import PER_COLUMN

from .conftest import ESOL_TARGET, ROOT, train_small


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, esol):
    d = tmp_path_factory.mktemp("models")
    train_small(esol.head(200)).save(d / "tiny.pt")
    train_small(esol.iloc[200:400]).save(d / "other.pt")  # the same task: a clashing name
    return d


@pytest.fixture
def app(models_dir, monkeypatch):
    monkeypatch.setenv("MOLPRED_MODELS_DIR", str(models_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    at.sidebar.multiselect[0].set_value([])  # bundled models off: fast and independent of them
    at.sidebar.multiselect[1].set_value(["tiny.pt"])
    at.run()
    return at


def _table(at, column):
    """The dataframe on the page that has ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _score(at, text):
    at.text_area(key="pasted").input(text)
    at.button(key="score_paste").click()
    at.run()
    assert not at.exception, at.exception
    return at.session_state["results"]


def test_paste_score_rank(app):
    results = _score(app, "CCO ethanol\nC1CC broken\nc1ccccc1O phenol\nCCCCCCCCCCCC dodecane")
    assert results["name"].tolist() == ["ethanol", "broken", "phenol", "dodecane"]
    assert results["error"].ne("").tolist() == [False, True, False, False]
    assert "unparseable SMILES" in results.loc[1, "error"]
    app.selectbox(key="dir_QED").set_value("ignore")  # on by default
    app.selectbox(key=f"dir_{ESOL_TARGET}").set_value("higher")
    app.run()
    ranked = _table(app, "rank")
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    values = ranked[ESOL_TARGET].tolist()
    assert values[:3] == sorted(values[:3], reverse=True) and np.isnan(values[3])  # error last
    assert ranked["error"].iloc[-1] != ""
    app.selectbox(key=f"dir_{ESOL_TARGET}").set_value("lower")
    app.run()
    lowered = _table(app, "rank")[ESOL_TARGET].tolist()
    assert lowered[:3] == sorted(values[:3])
    assert len(app.get("download_button")) == 2
    assert any("Private by design" in m.value for m in app.sidebar.info)


def test_invalid_only_and_empty_input(app):
    results = _score(app, "not_a_smiles\nC1CC")
    assert (results["error"] != "").all()
    app.text_area(key="pasted").input("   \n")
    app.button(key="score_paste").click()
    app.run()
    assert any("Paste at least one SMILES" in w.value for w in app.warning)


def test_no_model_selected_is_explained(app):
    app.sidebar.multiselect[1].set_value([])
    app.run()
    app.text_area(key="pasted").input("CCO")
    app.button(key="score_paste").click()
    app.run()
    assert any("Choose at least one model" in e.value for e in app.error)


def test_detail_view_explains_and_shows_neighbours(app):
    _score(app, "CCO ethanol\nc1ccccc1O phenol")
    assert app.selectbox(key="detail_task").value == ("tiny", ESOL_TARGET)
    neighbours = _table(app, "similarity")
    assert len(neighbours) == 5 and neighbours["similarity"].is_monotonic_decreasing
    assert f"measured: {ESOL_TARGET}" in neighbours.columns


def test_upload_sdf_and_csv(app):
    from rdkit import Chem

    blocks = []
    for smi, name in [("CCO", "ethanol"), ("c1ccccc1N", "aniline")]:
        mol = Chem.MolFromSmiles(smi)
        mol.SetProp("_Name", name)
        blocks.append(Chem.MolToMolBlock(mol) + "$$$$\n")
    sdf = "".join(blocks) + "garbage record\n\n\n  9  9  0  0\n$$$$\n"
    app.file_uploader(key="candidates_file").set_value(("c.sdf", sdf.encode(), "chemical/x-mdl"))
    app.run()
    assert app.selectbox[0].value == "smiles"  # detected
    app.button(key="score_upload").click()
    app.run()
    results = app.session_state["results"]
    assert results["name"].tolist() == ["ethanol", "aniline", "garbage record"]
    assert results["error"].ne("").tolist() == [False, False, True]
    from molpred.io import READ_ERROR, InMemoryFile, read_table

    reason = read_table(InMemoryFile("c.sdf", sdf.encode()))[READ_ERROR].iloc[2]
    assert reason and results["error"].iloc[2] == reason  # the reader's reason, not "empty"
    csv = b"id,SMILES\n1,CCO\n2,xyz\n"
    app.file_uploader(key="candidates_file").set_value(("c.csv", csv, "text/csv"))
    app.run()
    app.button(key="score_upload").click()
    app.run()
    assert app.session_state["results"]["error"].ne("").tolist() == [False, True]
    # a SMILES column by another name is found by its content; the IDs name the rows
    csv = (
        b"Compound ID,Structure,pIC50,series,rank\n"
        b"CPD-1,CCO,5.1,A,1\nCPD-2,c1ccccc1N,,B,2\nCPD-3,CCN,6.3,,3\n"
    )
    app.file_uploader(key="candidates_file").set_value(("d.csv", csv, "text/csv"))
    app.run()
    assert app.selectbox[0].value == "Structure" and app.selectbox[1].value == "Compound ID"
    app.button(key="score_upload").click()
    app.run()
    results = app.session_state["results"]
    assert results["name"].tolist() == ["CPD-1", "CPD-2", "CPD-3"]
    assert (results["error"] == "").all()
    # the user's own columns travel with their rows: numbers as numbers, blanks as missing,
    # and a name the page uses itself ("rank") renamed
    assert results["pIC50"].tolist()[::2] == [5.1, 6.3] and pd.isna(results["pIC50"][1])
    assert results["series"].fillna("").tolist() == ["A", "B", ""]
    assert results["input_rank"].tolist() == [1, 2, 3]
    ranked = _table(app, "rank")
    assert ranked.set_index("name").loc["CPD-3", "pIC50"] == 6.3
    # the file's own numbers rank, filter and plot beside the predictions (text does not)
    assert app.selectbox(key="dir_pIC50").value == "ignore"  # no preferred direction
    assert not [w for w in app.selectbox if w.key == "dir_series"]
    assert "pIC50 (your data)" in app.selectbox(key="sx").options
    assert "pIC50 (your data)" in app.multiselect(key="f_cols").options
    app.selectbox(key="dir_QED").set_value("ignore")
    app.selectbox(key="dir_pIC50").set_value("higher")
    app.run()
    ranked = _table(app, "rank")
    assert ranked["name"].tolist()[:2] == ["CPD-3", "CPD-1"] and ranked["score"].isna().iloc[2]


def test_a_new_model_file_leaves_the_models_switched_off_off(models_dir, tmp_path, monkeypatch):
    """A model trained on the page adds a file: the list of your models started again from
    all files, switching back on the ones the user had switched off."""
    import shutil

    for name in ("tiny.pt", "other.pt"):
        shutil.copy(models_dir / name, tmp_path / name)
    monkeypatch.setenv("MOLPRED_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.multiselect[0].set_value([])
    at.sidebar.multiselect[1].set_value(["tiny.pt"])
    at.run()
    shutil.copy(models_dir / "tiny.pt", tmp_path / "new.pt")
    at.run()
    assert at.sidebar.multiselect[1].options == ["new.pt", "other.pt", "tiny.pt"]
    assert sorted(at.sidebar.multiselect[1].value) == ["new.pt", "tiny.pt"]


def test_uploaded_model_file_is_used(app, models_dir):
    app.sidebar.multiselect[1].set_value([])
    app.sidebar.file_uploader(key="model_file").set_value(
        ("mine.pt", (models_dir / "tiny.pt").read_bytes(), "application/octet-stream")
    )
    app.run()
    results = _score(app, "CCO")
    assert ESOL_TARGET in results and list(app.session_state["result_models"]) == ["mine"]
    app.sidebar.file_uploader(key="model_file").set_value(
        ("bad.pt", b"not a model", "application/octet-stream")
    )
    app.run()
    assert any("not a readable molpred model" in e.value for e in app.sidebar.error)


def test_models_that_share_a_task_name_all_rank(app):
    """Two models predicting the same task: both keep their columns, their own labels, and
    both drive the ranking (a clash once emptied it)."""
    app.sidebar.multiselect[1].set_value(["other.pt", "tiny.pt"])
    app.run()
    _score(app, "CCO ethanol\nc1ccccc1O phenol\nCCCCCCCCCCCC dodecane")
    first, second = f"other.{ESOL_TARGET}", f"tiny.{ESOL_TARGET}"
    labels = {s.key: s.label for s in app.selectbox if str(s.key).startswith("dir_")}
    assert labels[f"dir_{first}"] != labels[f"dir_{second}"]
    app.selectbox(key="dir_QED").set_value("ignore")
    for column, direction in ((first, "lower"), (second, "ignore")):
        app.selectbox(key=f"dir_{column}").set_value(direction)
    app.run()
    ranked = _table(app, "rank")
    assert ranked["score"].notna().all()
    assert ranked[first].tolist() == sorted(ranked[first])
    app.selectbox(key=f"dir_{first}").set_value("ignore")
    app.selectbox(key=f"dir_{second}").set_value("higher")
    app.run()
    ranked = _table(app, "rank")
    assert ranked[second].tolist() == sorted(ranked[second], reverse=True)


def test_confidence_slider_recomputes_intervals(app):
    before = _score(app, "CCO ethanol\nc1ccccc1O phenol")
    width = before[f"{ESOL_TARGET}_upper"] - before[f"{ESOL_TARGET}_lower"]
    app.sidebar.slider[0].set_value(0.6)
    app.run()
    after = app.session_state["results"]
    narrower = after[f"{ESOL_TARGET}_upper"] - after[f"{ESOL_TARGET}_lower"]
    assert (narrower < width).all()
    assert (after[ESOL_TARGET] == before[ESOL_TARGET]).all()  # values are not rescored
    shown = _table(app, "60% interval")  # the detail view's profile follows the slider
    bounds = zip(after[f"{ESOL_TARGET}_lower"], after[f"{ESOL_TARGET}_upper"], strict=True)
    assert shown["60% interval"].iloc[0] in {f"{low:.3g} to {high:.3g}" for low, high in bounds}


def test_new_candidates_open_the_detail_view_on_their_first(app):
    """The detail view kept the previous table's row number, and so showed whichever new
    molecule had it rather than the best one."""
    _score(app, "CCO a\nc1ccccc1O b\nCCCCCCCCCCCC c")
    app.selectbox(key="dir_QED").set_value("ignore")  # no ranking: the table in input order
    app.run()
    app.selectbox(key="detail_pick").set_value(2)
    app.run()
    _score(app, "CCN x\nCCCl y\nc1ccncc1 z")
    assert app.selectbox(key="detail_pick").value == 0  # x, the first row, not z


def test_detail_smiles_is_literal_text(app):
    smiles = "C[C@@H](O)c1ccccc1"
    _score(app, f"{smiles} phenylethanol")
    assert any(c.value == smiles for c in app.code)


def test_every_tab_is_drawn_after_scoring(app):
    """Pressing Score (or the empty-paste warning) once left Upload and Draw blank."""
    _score(app, "CCO ethanol")
    assert app.file_uploader(key="candidates_file") is not None
    assert app.toggle(key="draw_open") is not None
    app.text_area(key="pasted").input("  ")
    app.button(key="score_paste").click()
    app.run()
    assert app.file_uploader(key="candidates_file") is not None


def test_ranking_panel_stays_open_and_ranges_start_from_the_data(app):
    results = _score(app, "CCO ethanol\nc1ccccc1O phenol\nCCCCCCCCCCCC dodecane\nC1CC broken")
    panel = next(e for e in app.expander if e.label.startswith("Ranking"))
    assert not panel.proto.expanded
    app.selectbox(key="dir_MW").set_value("range")
    app.run()
    panel = next(e for e in app.expander if e.label.startswith("Ranking"))
    assert panel.proto.expanded  # a change keeps the panel open
    mw = results["MW"].dropna()
    assert app.number_input(key="lo_MW").value == pytest.approx(mw.quantile(0.25), abs=1e-3)
    assert app.number_input(key="hi_MW").value == pytest.approx(mw.quantile(0.75), abs=1e-3)


def test_alert_filter_drops_rows_without_a_structure(app):
    _score(app, "CCO ethanol\nC1CC broken")
    app.checkbox(key="f_alerts").check()
    app.run()
    assert _table(app, "rank")["name"].tolist() == ["ethanol"]
    assert any(s.value.startswith("1 candidate (") for s in app.subheader)


def test_bad_model_upload_is_named_by_its_file(app):
    app.sidebar.file_uploader(key="model_file").set_value(
        ("broken_model.pt", b"not a model", "application/octet-stream")
    )
    app.run()
    assert any("broken_model.pt" in e.value for e in app.sidebar.error)


def test_a_model_file_replaced_under_its_name_marks_the_table_out_of_date(app, models_dir):
    """Names alone did not tell: an upload of another file called like the first kept the old
    model's predictions on the page without a word."""
    app.sidebar.file_uploader(key="model_file").set_value(
        ("mine.pt", (models_dir / "tiny.pt").read_bytes(), "application/octet-stream")
    )
    app.run()
    _score(app, "CCO ethanol")
    assert not any("scored with" in i.value for i in app.info)
    app.sidebar.file_uploader(key="model_file").set_value(
        ("mine.pt", (models_dir / "other.pt").read_bytes(), "application/octet-stream")
    )
    app.run()
    assert any("scored with" in i.value and "`mine`" in i.value for i in app.info)


def test_a_model_card_with_odd_metadata_is_drawn(app, models_dir, tmp_path):
    """A file's metadata is checked for integrity, not for types: a metric that is not a
    number or an ``init`` without a name (an edited file) stopped the whole page."""
    import molpred

    model = molpred.load_model(models_dir / "tiny.pt")
    model.info.metrics["test"] = {"rmse": None, "mae": 0.5}
    model.info.provenance["init"] = {"weights": "x"}
    model.save(tmp_path / "odd.pt")
    app.sidebar.file_uploader(key="model_file").set_value(
        ("odd.pt", (tmp_path / "odd.pt").read_bytes(), "application/octet-stream")
    )
    app.run()
    assert not app.exception, app.exception
    assert any("test metrics: mae 0.5;" in c.value for c in app.sidebar.caption)


def test_default_ranking_counts_each_model_once(app):
    """Twelve Tox21 assays share one model's weight instead of outweighing the rest."""
    app.sidebar.multiselect[0].set_value(["tox21", "clintox"])
    app.run()
    _score(app, "CCO ethanol\nc1ccccc1O phenol")
    assert app.number_input(key="w_NR-AR").value == pytest.approx(1 / 12, abs=1e-3)
    assert app.selectbox(key="dir_CT_TOX").value == "lower"
    assert app.selectbox(key="dir_FDA_APPROVED").value == "higher"
    assert app.number_input(key="w_CT_TOX").value == pytest.approx(0.5)
    assert not any("scored with" in i.value for i in app.info)
    app.sidebar.multiselect[0].set_value(["tox21"])  # a model dropped after scoring: said
    app.run()
    assert any("scored with `tox21`, `clintox`" in i.value for i in app.info)


def test_what_a_chemist_reads(app):
    """Rank, structure, name, score and error lead; an unscored row shows blanks, not "None";
    the Explain menu and the model card use readable names, without internal keys."""
    _score(app, "CCO ethanol\nC1CC broken")
    ranked = _table(app, "rank")
    assert list(ranked.columns[:5]) == ["rank", "structure", "name", "score", "error"]
    broken = ranked[ranked["name"] == "broken"].iloc[0]
    assert broken["PAINS"] == "" and broken["Brenk"] == ""
    assert app.selectbox(key="detail_task").format_func(("tiny", ESOL_TARGET)) == (
        f"tiny: {ESOL_TARGET}"
    )
    cards = " ".join(c.value for c in app.sidebar.caption)
    assert "test metrics: mae " in cards and "loss" not in cards and "{" not in cards


def test_suggest_a_batch_marks_it_and_leaves_out_the_training_set(app, models_dir):
    import molpred

    trained = molpred.load_model(models_dir / "tiny.pt").domain.smiles[:3]
    new = [  # none of them in ESOL
        "CC(C)(C)c1ccc(cc1)S(N)(=O)=O",
        "O=C(NC1CC1)c1ccncc1",
        "CN1CCN(CC1)c1ncccn1",
        "FC(F)(F)c1ccc(OCC2CC2)cc1",
    ]
    lines = [f"{s} train{i}" for i, s in enumerate(trained)] + [
        f"{s} new{i}" for i, s in enumerate(new)
    ]
    _score(app, "\n".join([*lines, "C1CC broken"]))
    app.selectbox(key=f"dir_{ESOL_TARGET}").set_value("higher")
    app.number_input(key="b_n").set_value(6)
    app.button(key="b_go").click()
    app.run()
    assert not app.exception, app.exception
    batch = app.session_state["batch"]
    # training molecules and the broken row are never picked: 4 of the 6 asked for
    assert sorted(batch["name"]) == [f"new{i}" for i in range(4)]
    assert batch["pick"].tolist() == [1, 2, 3, 4] and batch["why"].str.contains("UCB").all()
    ranked = _table(app, "rank")
    assert ranked["batch"].notna().sum() == 4 and (ranked["why"] != "").sum() == 4
    # the rows not picked read blank, not "None" (Streamlit's default for a missing value)
    ranked_frame = next(d for d in app.dataframe if "rank" in d.value.columns)
    assert ranked_frame.proto.HasField("placeholder") and ranked_frame.proto.placeholder == ""
    assert any("Red diamonds" in c.value for c in app.caption)  # the chemical-space map
    labels = [b.label for b in app.get("download_button")]
    assert "Download batch CSV" in labels and "Download batch SDF" in labels
    app.toggle(key="only_batch").set_value(True)
    app.run()
    assert _table(app, "rank")["batch"].tolist() == [1, 2, 3, 4]
    app.checkbox(key="b_training").set_value(False)
    app.button(key="b_go").click()
    app.run()
    assert len(app.session_state["batch"]) == 6  # now the training molecules may be picked
    app.slider(key="b_cover").set_value(0.5)  # half the batch spread over chemical space
    app.button(key="b_go").click()
    app.run()
    covered = app.session_state["batch"]["why"].str.contains("covers chemical space")
    assert len(covered) == 6 and covered.tolist() == [False] * 3 + [True] * 3
    app.slider(key="b_explore").set_value(0.8)  # 0.8 + 0.2 is a whole batch, in floats too
    app.slider(key="b_cover").set_value(0.2)
    app.button(key="b_go").click()
    app.run()
    assert not app.exception and not any("lowered" in i.value for i in app.info)
    app.slider(key="b_explore").set_value(0.5)  # 0.5 + 0.5: the whole batch, nothing clipped
    app.slider(key="b_cover").set_value(0.5)
    app.button(key="b_go").click()
    app.run()
    assert not any("lowered" in i.value for i in app.info)
    app.slider(key="b_cover").set_value(0.8)  # more than explore leaves: lowered, and said
    app.button(key="b_go").click()
    app.run()
    assert any("cover share was lowered to 0.50" in i.value for i in app.info)
    assert app.session_state["batch"]["why"].str.contains("covers chemical space").sum() == 3
    app.slider(key="b_explore").set_value(0.0)
    app.slider(key="b_cover").set_value(0.0)
    app.checkbox(key="f_alerts").set_value(True)  # the broken row leaves the candidates
    app.run()
    assert "batch" not in app.session_state  # else its downloads would hold removed picks
    assert any("The filters changed" in i.value for i in app.info)
    _score(app, "CCO\nCCCO")  # new candidates: the old batch is gone
    assert "batch" not in app.session_state


def test_a_batch_of_measured_candidates_only_says_so(app, models_dir):
    """Every candidate is a training molecule: no batch, and the page says why (it showed an
    empty batch without a word); a changed setting keeps the panel open."""
    import molpred

    trained = molpred.load_model(models_dir / "tiny.pt").domain.smiles[:4]
    _score(app, "\n".join(trained))
    app.selectbox(key=f"dir_{ESOL_TARGET}").set_value("higher")
    app.number_input(key="b_n").set_value(3)
    app.run()
    assert app.session_state["batch_open"]  # the Suggest button stays in view
    app.button(key="b_go").click()
    app.run()
    assert not app.exception, app.exception
    assert "batch" not in app.session_state
    assert any("No candidate could be picked" in w.value for w in app.warning)


def test_train_in_the_page_then_score_with_the_new_model(esol, models_dir, tmp_path, monkeypatch):
    """Upload measured data -> train in the background with progress -> the model is saved,
    listed under "Your models" and scores; the page's run equals the `molpred train` line it
    shows; a second run can be cancelled and leaves the saved model alone."""
    import shlex
    import time

    import molpred
    from molpred.cli import main

    own = tmp_path / "models"
    own.mkdir()
    (own / "tiny.pt").write_bytes((models_dir / "tiny.pt").read_bytes())
    monkeypatch.setenv("MOLPRED_MODELS_DIR", str(own))
    data = esol.iloc[:100][["smiles", ESOL_TARGET]].rename(columns={ESOL_TARGET: "logS"})
    data = pd.concat([data, pd.DataFrame({"smiles": ["C1CC", "CCO"], "logS": [1.0, "n/a"]})])
    csv = tmp_path / "assay.csv"
    data.to_csv(csv, index=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.multiselect[0].set_value([])
    at.file_uploader(key="train_file").set_value(("assay.csv", csv.read_bytes(), "text/csv"))
    at.run()
    assert at.selectbox(key="t_smiles").value == "smiles"
    assert (
        at.multiselect(key="t_y").value == ["logS"] and at.radio(key="t_task").value == "regression"
    )
    at.number_input(key="t_epochs").set_value(5)
    at.run()
    command = next(c.value for c in at.code if c.value.startswith("molpred train"))
    at.button(key="t_go").click()
    at.run()
    job = at.session_state["training_job"]
    assert job.wait(300) and job.state == "done", job.error
    at.run()
    assert not at.exception, at.exception
    assert any("Saved" in s.value for s in at.success)
    assert (own / "assay.pt").is_file()
    assert "assay.pt" in at.sidebar.multiselect[1].value  # selected for scoring at once
    assert len(job.model.problems) == 2  # the broken SMILES and the text label, with reasons
    assert any("2 input rows left out" in w.value for w in at.warning)
    assert job.model_file == (own / "assay.pt").read_bytes()  # the download: this run's file
    caption = next(c.value for c in at.caption if c.value.startswith("Test metrics on "))
    n_test = job.metrics["members"][0]["n_test"]
    assert caption.startswith(f"Test metrics on {n_test} molecules") and "loss" not in caption
    assert job.metrics["init"] == "encoder" and "--init" not in command  # small: auto, as the CLI
    results = _score(at, "CCO\nc1ccccc1O")
    assert "logS" in results and results["logS"].notna().all()
    # the line the page shows is the same run
    args = shlex.split(command)[1:]
    args[args.index("--output") + 1] = str(tmp_path / "cli.pt")
    args[1] = str(csv)
    assert main(args) == 0
    cli = molpred.load_model(tmp_path / "cli.pt")
    assert cli.members[0].trees is not None  # the trees too are the same
    assert cli.weights_sha256() == job.model.weights_sha256()
    # a long second run, cancelled: nothing replaces the saved model
    saved = (own / "assay.pt").stat().st_mtime_ns
    at.file_uploader(key="train_file").set_value(("assay.csv", csv.read_bytes(), "text/csv"))
    at.run()
    at.number_input(key="t_epochs").set_value(500)
    at.run()
    at.button(key="t_go").click()
    at.run()
    second = at.session_state["training_job"]
    deadline = time.monotonic() + 120
    while second.progress is None and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()  # the progress view with its Cancel button, the form kept below it
    assert at.button(key="t_go").disabled  # one run at a time
    at.button(key="t_cancel").click()
    at.run()
    assert second.wait(120) and second.state == "cancelled"
    assert (own / "assay.pt").stat().st_mtime_ns == saved
    at.run()
    assert any("cancelled" in i.value for i in at.info)
    assert at.number_input(key="t_epochs").value == 500  # the choices outlive the run


def _ranking_state(app) -> dict:
    return {
        w.key: w.value
        for w in [*app.selectbox, *app.number_input]
        if w.key and w.key.startswith(("dir_", "w_", "lo_", "hi_"))
    }


def test_admet_panel_presets_columns_and_profile(app):
    """A preset sets the ranking for its goal; the column picker narrows the table (not the
    downloads); the detail view profiles the molecule with approved-drug percentiles."""
    app.sidebar.multiselect[0].set_value(["bbb", "lipophilicity", "absorption", "cyp_inhibition"])
    app.sidebar.multiselect[1].set_value([])
    app.run()
    _score(app, "CCO ethanol\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine\nC1CC broken")
    assert app.selectbox(key="dir_QED").value == "higher"  # the cards' defaults first
    defaults = _ranking_state(app)
    app.selectbox(key="preset").set_value("Oral CNS drug")
    app.run()
    assert app.selectbox(key="dir_p_np").value == "higher"
    assert app.selectbox(key="dir_exp").value == "range"
    assert (app.number_input(key="lo_exp").value, app.number_input(key="hi_exp").value) == (1, 3)
    assert app.selectbox(key="dir_TPSA").value == "range"
    assert app.selectbox(key="dir_QED").value == "ignore"  # not part of the goal
    assert app.selectbox(key="dir_Pgp_inhibitor").value == "ignore"  # inhibition is not efflux
    ranked = _table(app, "rank")
    assert ranked["score"].notna().sum() == 2
    app.selectbox(key="preset").set_value("Safety first")
    app.run()
    assert _ranking_state(app) != defaults
    app.selectbox(key="preset").set_value(MANUAL)  # back to the cards' defaults (it did nothing)
    app.run()
    assert _ranking_state(app) == defaults
    app.selectbox(key="preset").set_value("Oral CNS drug")
    app.run()

    picker = app.multiselect(key="shown_columns")
    assert set(picker.value) >= {"p_np", "exp", "Pgp_inhibitor"}
    assert "oral_bioavailability" not in picker.value  # one column per model by default...
    cyps = {c for c in picker.value if c.startswith("CYP")}
    assert cyps == {"CYP3A4_inhibitor", "CYP2D6_inhibitor"}  # ...or the card's headline ones
    picker.set_value(["p_np"])
    app.run()
    shown = next(d for d in app.dataframe if "rank" in d.value.columns)
    sent = list(shown.value.columns)  # only the chosen columns travel to the browser
    assert "p_np" in sent and "p_np_pct_approved" in sent and "p_np_std" in sent
    assert "exp" not in sent and "exp_pct_approved" not in sent and "MW" not in sent
    config = json.loads(shown.proto.columns)  # the domain flag reads as a tick, not 1/0
    flags = [c for c in sent if c.endswith("in_domain")]
    assert flags and all(config[c]["type_config"]["type"] == "checkbox" for c in flags)
    # the percentile says how many drugs it stands on (BBB's data held 420 of the 1,386)
    assert config["p_np_pct_approved"]["help"].endswith(
        "did not train on it: 90 means higher than 90% of approved drugs. (966 approved drugs.)"
    )

    profile = _table(app, "among approved drugs (percentile)")
    assert len(profile) == 9  # BBB, logD, P-gp, bioavailability, five CYPs
    assert profile["among approved drugs (percentile)"].between(0, 100).all()
    assert profile["category"].tolist()[0] == "Physicochemical & absorption"
    # an expected error for logD alone: a classifier's spread is sqrt(p(1-p)), not one
    assert profile["expected error"].notna().sum() == 1


def test_the_domain_filter_asks_only_the_ranked_models():
    """Seventeen bundled models rarely share a domain: filtering on all of them emptied the
    table for a chemist's approved drugs. The filter follows the ranking's models."""
    import molpred
    from molpred.page.results import ranked_domains
    from molpred.predictor import Predictor
    from molpred.pretrained import model_path
    from molpred.ranking import Objective

    predictor = Predictor({n: molpred.load_model(model_path(n)) for n in ("bbb", "ppb")})
    bbb, ppb = predictor.schema.models
    assert ranked_domains(predictor, [Objective("p_np", "higher", 1.0)]) == [bbb.in_domain]
    both = [Objective("p_np", "higher", 1.0), Objective("log10_fu", "higher", 0.5)]
    assert ranked_domains(predictor, both) == [bbb.in_domain, ppb.in_domain]
    assert ranked_domains(predictor, [Objective("p_np", "higher", 0.0)]) == []


def test_new_models_bring_their_columns_and_keep_the_users_choices(app):
    """Models added after a first Score: their columns are shown (the picker kept its first
    choice, and two models sharing a task renamed every column: the table lost them); a column
    the user hid stays hidden."""
    _score(app, "CCO\nc1ccccc1O")
    picker = app.multiselect(key="shown_columns")
    assert ESOL_TARGET in picker.value and "MW" in picker.value
    picker.set_value([c for c in picker.value if c != "MW"])
    app.run()
    app.sidebar.multiselect[1].set_value(["other.pt", "tiny.pt"])
    app.run()
    _score(app, "CCO\nc1ccccc1O")
    shown = app.multiselect(key="shown_columns").value
    assert {f"other.{ESOL_TARGET}", f"tiny.{ESOL_TARGET}"} <= set(shown) and "MW" not in shown
    sent = next(d for d in app.dataframe if "rank" in d.value.columns).value.columns
    assert f"other.{ESOL_TARGET}" in sent and f"tiny.{ESOL_TARGET}" in sent


def test_a_preset_follows_models_added_later(app):
    """Under a preset, a model added later ranks as the goal says: its properties outside the
    goal are ignored, and the goal's weights hold (not the card's defaults)."""
    app.sidebar.multiselect[0].set_value(["bbb", "lipophilicity"])
    app.sidebar.multiselect[1].set_value([])
    app.run()
    _score(app, "CCO ethanol\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine")
    app.selectbox(key="preset").set_value("Oral CNS drug")
    app.run()
    app.number_input(key="w_p_np").set_value(2.0)  # a tweak to the goal is kept
    app.run()
    app.sidebar.multiselect[0].set_value(["bbb", "lipophilicity", "clintox", "absorption"])
    app.run()
    _score(app, "CCO ethanol\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine")
    assert app.selectbox(key="dir_CT_TOX").value == "ignore"
    assert app.selectbox(key="dir_FDA_APPROVED").value == "ignore"
    assert app.selectbox(key="dir_oral_bioavailability").value == "higher"
    assert app.number_input(key="w_oral_bioavailability").value == pytest.approx(1.0)
    assert app.number_input(key="w_p_np").value == pytest.approx(2.0)
    assert "Pgp_inhibitor" in app.multiselect(key="shown_columns").value  # its headline


def test_your_model_named_like_a_bundled_one_scores_beside_it(tmp_path, models_dir, monkeypatch):
    own = tmp_path / "models"
    own.mkdir()
    (own / "solubility.pt").write_bytes((models_dir / "tiny.pt").read_bytes())
    monkeypatch.setenv("MOLPRED_MODELS_DIR", str(own))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.multiselect[0].set_value(["solubility"])
    at.run()
    results = _score(at, "CCO\nc1ccccc1O")
    assert list(at.session_state["result_models"]) == ["solubility", "solubility (yours)"]
    assert len(at.session_state["predictor"].models) == 2
    assert ESOL_TARGET in results or f"solubility (yours).{ESOL_TARGET}" in results


def test_uploaded_identifiers_stay_as_written(app):
    """Registry numbers with leading zeros and 17-digit vendor IDs read as numbers would be
    changed (1234.0; two IDs made equal); measured values still become numbers."""
    csv = (
        b"SMILES,reg_no,vendor_id,pIC50\n"
        b"CCO,0001234,12345678901234567,5.1\nCCN,0000007,12345678901234568,6\n"
    )
    app.file_uploader(key="candidates_file").set_value(("ids.csv", csv, "text/csv"))
    app.run()
    app.button(key="score_upload").click()
    app.run()
    results = app.session_state["results"]
    assert results["reg_no"].tolist() == ["0001234", "0000007"]
    assert results["vendor_id"].tolist() == ["12345678901234567", "12345678901234568"]
    assert results["pIC50"].tolist() == [5.1, 6.0]


def test_training_form_guesses_the_measured_column_and_follows_changes(app):
    """The measured column is guessed by name, not as the first number (an ID, a predicted
    column); the task is guessed again for other columns; a second file starts afresh."""
    table = pd.DataFrame(
        {
            "compound_id": range(1, 21),
            "smiles": ["C" * (i + 1) for i in range(20)],
            "ESOL predicted logS": np.linspace(-3, 0, 20),
            "measured logS": np.linspace(-4, 0, 20),
            "active": [0, 1] * 10,
            "call": ["inactive", "Active"] * 10,  # classes as words are offered too
        }
    )
    data = table.to_csv(index=False).encode()
    app.file_uploader(key="train_file").set_value(("assay.csv", data, "text/csv"))
    app.run()
    assert app.multiselect(key="t_y").value == ["measured logS"]
    assert app.radio(key="t_task").value == "regression"
    app.multiselect(key="t_y").set_value(["active"])
    app.run()
    assert app.radio(key="t_task").value == "classification"
    app.multiselect(key="t_y").set_value(["call"])
    app.run()
    assert app.radio(key="t_task").value == "classification"
    # a measured value and a class: each trained as what it holds, not both as one kind
    app.multiselect(key="t_y").set_value(["measured logS", "active"])
    app.run()
    assert app.radio(key="t_task").value == PER_COLUMN
    assert "--task" not in app.code[0].value
    assert app.text_input(key="t_name").value == "assay"
    other = pd.DataFrame({"SMILES": ["CCO", "CCN", "CCC"], "pIC50": [5.0, 6.0, 7.0]})
    data = other.to_csv(index=False).encode()
    app.file_uploader(key="train_file").set_value(("second.csv", data, "text/csv"))
    app.run()
    assert app.selectbox(key="t_smiles").value == "SMILES"
    assert app.multiselect(key="t_y").value == ["pIC50"]
    assert app.radio(key="t_task").value == "regression"
    assert app.text_input(key="t_name").value == "second"  # not the first file's model name


def test_download_names_are_unique_across_models():
    """Two solubility models: every column keeps its own name in the downloads (an SDF keeps
    one property per name, so ESOL's spread was lost under AqSolDB's)."""
    import molpred
    from molpred.page.labels import column_names, value_labels
    from molpred.predictor import Predictor
    from molpred.pretrained import model_path

    names = ("solubility", "aqueous_solubility")
    predictor = Predictor({n: molpred.load_model(model_path(n)) for n in names})
    columns = value_labels(predictor)
    named = column_names(predictor, columns)
    read = [named.get(c, c) for c in predictor.schema.columns()]
    assert len(read) == len(set(read)), sorted(r for r in read if read.count(r) > 1)


def test_batch_follows_the_slider_filters_keep_failed_rows_and_ties_share_a_rank(app):
    """The batch's intervals follow the confidence slider as the table's do (its downloads kept
    the old level); a range filter left at its full range removes nothing (it dropped the rows
    with errors, and so the batch); equal scores share a rank; an explore share that cannot
    explore says so."""
    lines = ["CCO a", "CCCO b", "CC(C)O c", "OCCO d", "c1ccccc1O e", "CC(=O)O f", "C1CC broken"]
    _score(app, "\n".join(lines))
    app.selectbox(key=f"dir_{ESOL_TARGET}").set_value("higher")
    app.selectbox(key="dir_QED").set_value("ignore")
    app.number_input(key="b_n").set_value(3)
    app.button(key="b_go").click()
    app.run()
    app.sidebar.slider[0].set_value(0.6)
    app.run()
    batch, results = app.session_state["batch"], app.session_state["results"]
    lower = f"{ESOL_TARGET}_lower"
    assert np.allclose(batch[lower], results.loc[batch.index, lower])
    app.multiselect(key="f_cols").set_value(["MW"])
    app.run()
    assert "batch" in app.session_state  # nothing filtered: the batch stands
    assert (_table(app, "rank")["error"] != "").sum() == 1  # the failed row is still listed
    app.selectbox(key=f"dir_{ESOL_TARGET}").set_value("ignore")
    app.selectbox(key="dir_HBD").set_value("lower")
    app.run()
    ranked = _table(app, "rank")
    hbd = ranked.set_index("name")["HBD"]
    assert (hbd[["a", "b", "c"]] == 1).all()  # one OH each: the same score, the same rank
    assert ranked.set_index("name")["rank"][["a", "b", "c"]].nunique() == 1
    app.slider(key="b_explore").set_value(0.5)
    app.button(key="b_go").click()
    app.run()
    assert any("No pick could go to teaching the model" in i.value for i in app.info)


def test_tasks_named_like_the_pages_columns_are_scored_under_the_models_name(
    esol, tmp_path, monkeypatch
):
    """An assay column called score, rank or TPSA: once the ranking's score overwrote the
    predictions, rank crashed the table, and TPSA appeared twice."""
    data = esol.head(60).assign(score=esol[ESOL_TARGET], rank=np.arange(60.0))
    data["TPSA"] = data["Polar Surface Area"]
    own = tmp_path / "models"
    own.mkdir()
    train_small(data, targets=("score", "rank", "TPSA")).save(own / "assay.pt")
    monkeypatch.setenv("MOLPRED_MODELS_DIR", str(own))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.multiselect[0].set_value([])
    at.sidebar.multiselect[1].set_value(["assay.pt"])
    at.run()
    results = _score(at, "CCO ethanol\nc1ccccc1O phenol\nCCCCCCCCCCCC dodecane")
    assert {"assay.score", "assay.rank", "assay.TPSA", "TPSA"} <= set(results.columns)
    assert results["assay.score"].notna().all() and results.columns.is_unique
    assert not np.allclose(results["assay.TPSA"], results["TPSA"])  # predicted vs computed
    at.selectbox(key="dir_assay.score").set_value("higher")
    at.run()
    assert not at.exception, at.exception
    ranked = _table(at, "rank")
    assert ranked["rank"].tolist() == [1, 2, 3] and ranked["score"].notna().all()
    assert ranked["assay.score"].notna().all()


def test_a_training_waiting_for_another_can_be_cancelled(esol, tmp_path):
    """Cancel once did nothing to a run queued behind another session's: it waited for the
    lock, then trained anyway."""
    from molpred.page import job as page_job

    request = page_job.TrainingRequest("smiles", (ESOL_TARGET,), "regression", epochs=5)
    with page_job._ONE_AT_A_TIME:  # another session's run holds the machine
        waiting = page_job.TrainingJob(esol.head(40), request, tmp_path / "m.pt").start()
        waiting.cancel()
        assert waiting.wait(5) and waiting.state == "cancelled" and waiting.queued
    assert not (tmp_path / "m.pt").exists()


def test_the_shown_command_passes_column_names_that_start_with_a_dash():
    import shlex

    from molpred.cli.parser import build_parser
    from molpred.page.job import TrainingRequest

    def parsed(targets: tuple[str, ...], task: str | None = "regression"):
        request = TrainingRequest("smiles", targets, task)
        return build_parser().parse_args(shlex.split(request.command("a b.csv", "m.pt"))[1:])

    args = parsed(("-logIC50",))
    assert args.target_columns == ["-logIC50"] and args.data == "a b.csv"
    args = parsed(("pIC50", "-logKi", "active"), None)  # several: the flag repeated
    assert args.target_columns == ["pIC50", "-logKi", "active"] and args.task is None


def test_a_parquet_upload_keeps_its_types_and_index(app):
    """Parquet keeps its own types now (numeric IDs and values, a stored index): the page
    takes them as they are."""
    import io

    table = pd.DataFrame({"id": [7, 9], "smiles": ["CCO", "c1ccccc1O"], "pIC50": [6.1, None]})
    buffer = io.BytesIO()
    table.set_index("id").to_parquet(buffer)
    app.file_uploader(key="candidates_file").set_value(("c.parquet", buffer.getvalue(), "x"))
    app.run()
    app.button(key="score_upload").click()
    app.run()
    assert not app.exception, app.exception
    results = app.session_state["results"]
    assert results["error"].tolist() == ["", ""] and results["name"].astype(str).tolist() == [
        "7",
        "9",
    ]
    assert _table(app, "rank")["rank"].notna().all()
