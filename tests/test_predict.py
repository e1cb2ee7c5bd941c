import gzip

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molpred.io import DataError
from molpred.predict import predict, predict_file
from molpred.train import train

from .conftest import ESOL_TARGET, FAST, SMALL, train_small


@pytest.fixture(scope="module")
def model(esol):
    m = train_small(esol.head(80))
    return m


def test_predict_returns_one_row_per_input_in_order(model):
    smiles = ["CCO", "C1CC", None, "c1ccccc1", "", "CCO"]
    out = predict(model, smiles)
    t = ESOL_TARGET
    assert list(out.columns) == [
        "smiles",
        t,
        f"{t}_std",
        f"{t}_lower",
        f"{t}_upper",
        "domain_similarity",
        "latent_distance",
        "in_domain",
        "error",
    ]
    ok = out["error"] == ""
    assert (out[f"{t}_lower"][ok] < out[t][ok]).all() and (out[t][ok] < out[f"{t}_upper"][ok]).all()
    assert (out[f"{t}_std"][ok] > 0).all() and out["in_domain"][~ok].isna().all()
    assert len(out) == 6 and out["smiles"][3] == "c1ccccc1" and out["smiles"][1] == "C1CC"
    assert out["error"].ne("").tolist() == [False, True, True, False, True, False]
    assert out[ESOL_TARGET].isna().tolist() == out["error"].ne("").tolist()
    assert out[ESOL_TARGET][0] == out[ESOL_TARGET][5]


def test_confidence_widens_intervals_and_domain_can_be_skipped(model):
    narrow = predict(model, ["CCO", "c1ccccc1N"], confidence=0.5)
    wide = predict(model, ["CCO", "c1ccccc1N"], confidence=0.95, domain=False)
    t = ESOL_TARGET
    width = {k: f[f"{t}_upper"] - f[f"{t}_lower"] for k, f in (("wide", wide), ("narrow", narrow))}
    assert (width["wide"] > width["narrow"]).all()
    assert "domain_similarity" not in wide and (wide[t] == narrow[t]).all()
    with pytest.raises(ValueError, match="confidence"):
        predict(model, ["CCO"], confidence=90)


def test_predict_file_csv_streams_and_aligns(model, tiny_csv, tmp_path):
    out_path = tmp_path / "out.csv"
    summary = predict_file(model, tiny_csv, out_path, chunk_size=4, progress=False)
    src = pd.read_csv(tiny_csv, dtype=str, keep_default_na=False)
    out = pd.read_csv(out_path, dtype=str, keep_default_na=False)
    assert summary.rows == 16 and summary.failed == 3
    assert out["id"].tolist() == src["id"].tolist()  # input columns passed through, in order
    assert out["active"].tolist() == src["active"].tolist()
    assert (out["error"] != "").sum() == 3


def test_workers_give_the_same_output(model, esol, tmp_path):
    src = tmp_path / "lib.csv.gz"
    esol[["smiles"]].head(500).to_csv(src, index=False)
    predict_file(model, src, tmp_path / "a.csv", chunk_size=64, workers=1, progress=False)
    predict_file(model, src, tmp_path / "b.csv", chunk_size=64, workers=2, progress=False)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_smi_sdf_parquet_inputs(model, tmp_path):
    smi = tmp_path / "x.smi.gz"
    with gzip.open(smi, "wt") as fh:
        fh.write("CCO ethanol\n\nC1CC broken\nc1ccccc1 benzene ring\n")
    out = predict_file(model, smi, tmp_path / "smi.parquet", progress=False)
    df = pd.read_parquet(tmp_path / "smi.parquet")
    assert out.rows == 4 and df["name"].tolist() == ["ethanol", "", "broken", "benzene ring"]
    assert df["error"].ne("").tolist() == [False, True, True, False]

    sdf = tmp_path / "x.sdf"
    w = Chem.SDWriter(str(sdf))
    for smi_, name in [("CCO", "a"), ("c1ccccc1", "b")]:
        mol = Chem.MolFromSmiles(smi_)
        mol.SetProp("_Name", name)
        mol.SetProp("vendor_id", f"V-{name}")
        w.write(mol)
    w.close()
    text = sdf.read_text()
    sdf.write_text(text + "broken record\n\n\n  9  9  0  0\n$$$$\n")
    predict_file(model, sdf, tmp_path / "sdf.csv", progress=False)
    df = pd.read_csv(tmp_path / "sdf.csv", keep_default_na=False)
    assert df["vendor_id"].tolist()[:2] == ["V-a", "V-b"] and len(df) == 3
    assert df["error"][2].startswith("SDF record")

    pq = tmp_path / "x.parquet"
    pd.DataFrame({"SMILES": ["CCO", "bad"], "id": [1, 2]}).to_parquet(pq)
    predict_file(model, pq, tmp_path / "pq.csv", progress=False)
    assert len(pd.read_csv(tmp_path / "pq.csv")) == 2
    # a compound ID stored as the pandas index comes back as a column; numbers stay numbers
    table = pd.DataFrame(
        {"compound_id": ["C-7", "C-9"], "smiles": ["CCO", "CCN"], "pIC50": [6.1, None]}
    )
    table.set_index("compound_id").to_parquet(pq)
    predict_file(model, pq, tmp_path / "pq.parquet", progress=False)
    out = pd.read_parquet(tmp_path / "pq.parquet")
    assert out["compound_id"].tolist() == ["C-7", "C-9"]
    assert out["pIC50"].dtype == float and out["pIC50"].isna().tolist() == [False, True]
    # a column empty in the first chunk and filled in a later one
    table.assign(note=[None, "salt"]).to_parquet(pq)
    predict_file(model, pq, tmp_path / "pq.parquet", progress=False, chunk_size=1)
    note = pd.read_parquet(tmp_path / "pq.parquet")["note"]
    assert note.isna().tolist() == [True, False] and note[1] == "salt"


def test_unusable_inputs(model, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        predict_file(model, tmp_path / "empty.csv", tmp_path / "o.csv", progress=False)
    (tmp_path / "header.csv").write_text("smiles,id\n")
    predict_file(model, tmp_path / "header.csv", tmp_path / "o.csv", progress=False)
    assert pd.read_csv(tmp_path / "o.csv").shape[0] == 0
    (tmp_path / "bad.csv").write_text("smiles\nC1CC\nxyz\n")
    with pytest.raises(DataError, match="no valid molecules"):
        predict_file(model, tmp_path / "bad.csv", tmp_path / "o2.csv", progress=False)
    assert len(pd.read_csv(tmp_path / "o2.csv")) == 2  # still written, with reasons
    (tmp_path / "nosmi.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no SMILES column"):
        predict_file(model, tmp_path / "nosmi.csv", tmp_path / "o.csv", progress=False)


def test_prediction_prepares_structures_as_the_model_was_trained(model, esol, tmp_path):
    """A 'parent' model scores a salt as its parent (after a save/load round trip); an
    as-drawn model sees the counter-ion; a panel mixing the two scores each model its way."""
    parent, _ = train(
        esol.head(80),
        "smiles",
        [ESOL_TARGET],
        model_config=SMALL,
        train_config=FAST,
        standardization="parent",
        progress=False,
        cache_dir=None,
    )
    from molpred import load_model

    parent = load_model(parent.save(tmp_path / "parent.pt"))
    assert parent.standardization == "parent" and model.standardization == "none"
    salt, free = predict(parent, ["CCN(CC)CC.Cl", "CCN(CC)CC"])[ESOL_TARGET]
    assert salt == pytest.approx(free, abs=1e-6)
    salt, free = predict(model, ["CCN(CC)CC.Cl", "CCN(CC)CC"])[ESOL_TARGET]
    assert salt != pytest.approx(free, abs=1e-6)
    panel = predict([model, parent], ["CCN(CC)CC.Cl", "C1CC"], model_names=["drawn", "parent"])
    alone = predict(parent, ["CCN(CC)CC.Cl"])
    assert panel.loc[0, f"parent.{ESOL_TARGET}"] == pytest.approx(alone.loc[0, ESOL_TARGET])
    assert panel.loc[0, f"drawn.{ESOL_TARGET}"] == pytest.approx(salt)
    assert panel.loc[0, "error"] == "" and "unparseable" in panel.loc[1, "error"]
    src = tmp_path / "salts.csv"
    src.write_text("smiles\nCCN(CC)CC.Cl\nC1CC\n")
    predict_file(
        [model, parent], src, tmp_path / "out.csv", model_names=["drawn", "parent"], progress=False
    )
    written = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert float(written.loc[0, f"parent.{ESOL_TARGET}"]) == pytest.approx(
        alone.loc[0, ESOL_TARGET], abs=1e-5
    )


def test_api_functions_keep_their_names_after_their_modules_are_imported():
    """``molpred.predict`` and ``molpred.train`` are functions, also once the modules of the
    same name have been imported (they used to become the modules)."""
    code = (
        "import molpred.predict, molpred.train\n"
        "import molpred\n"
        "from molpred import predict\n"
        "assert callable(molpred.predict) and callable(molpred.train) and callable(predict)\n"
        "from molpred.predict import predict_file\n"
        "assert callable(predict_file)\n"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code], check=True)


def test_scoring_an_output_again_keeps_every_input_column(model):
    """An earlier output holds ``error`` and ``input_error``: scoring it again renamed ``error``
    onto ``input_error`` and failed on the duplicate name."""
    from molpred.predict import score_table
    from molpred.predictor import Predictor

    table = pd.DataFrame(
        {"smiles": ["CCO", "C1CC"], "error": ["", "old reason"], "input_error": ["a", "b"]}
    )
    out = score_table(Predictor(model), table, "smiles", 1)
    assert out["input_error"].tolist() == ["a", "b"]
    assert out["input_error_2"].tolist() == ["", "old reason"]
    assert out["error"].iloc[0] == "" and "unparseable" in out["error"].iloc[1]
    assert out.columns.is_unique


def test_one_smiles_string_is_one_molecule_and_names_must_match_models(model):
    out = predict(model, "CCO")
    assert out["smiles"].tolist() == ["CCO"] and out["error"].tolist() == [""]
    with pytest.raises(ValueError, match="1 model name\\(s\\) for 2 model\\(s\\)"):
        predict([model, model], ["CCO"], model_names=["a"])


def test_evaluate_pairs_the_tasks_own_names_by_name(esol):
    """--target-columns naming the model's tasks in another order once scored the rat
    clearance labels as the human's."""
    from molpred.evaluate import evaluate_model

    data = esol.head(80)
    two = train_small(data, targets=(ESOL_TARGET, "Molecular Weight"))
    ordered = evaluate_model(two, data)["metrics"]
    swapped = evaluate_model(two, data, target_columns=["Molecular Weight", ESOL_TARGET])
    assert swapped["metrics"] == ordered


def test_evaluate_counts_only_labeled_molecules_in_and_out_of_domain(model, esol):
    """The domain tables' n counted molecules without a label, next to errors that rest on
    the labeled ones only."""
    from molpred.evaluate import evaluate_model

    data = esol.head(30).copy()
    data.loc[data.index[:7], ESOL_TARGET] = np.nan
    report = evaluate_model(model, data, "smiles", [ESOL_TARGET])
    assert report["in_domain"]["n"] + report["out_of_domain"]["n"] == 23
    assert sum(row["n"] for row in report["by_similarity"]) == 23
