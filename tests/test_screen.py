import gzip

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molpred.chem import standardize
from molpred.io import InMemoryFile, read_table
from molpred.medchem import ScreenedCatalog, medchem_table
from molpred.ranking import Objective, desirability, pareto_front, parse_objective, score
from molpred.screen import parse_pasted, screen, structure_svg, svg_data_uri, to_sdf

from .conftest import ESOL_TARGET, ROOT, train_small


@pytest.fixture(scope="module")
def model(esol):
    return train_small(esol.head(100))


def test_parse_pasted_keeps_bad_lines_and_names():
    t = parse_pasted("CCO ethanol\n\n  C1CC broken ring \nc1ccccc1\n")
    assert t["smiles"].tolist() == ["CCO", "C1CC", "c1ccccc1"]
    assert t["name"].tolist() == ["ethanol", "broken ring", "line 4"]
    assert parse_pasted("\n \n").empty


def test_a_pasted_cxsmiles_keeps_its_extension_out_of_the_name():
    """ChemDraw and Marvin copy CXSMILES: the enhanced stereo after the space became the name
    and the stereo group was lost."""
    text = "C[C@H](N)C(=O)O |&1:1| alanine\nCCO |$_AV:a;b;c$|\nCCN\tethylamine\nCC |batch 3|"
    t = parse_pasted(text + "\nCCCl |A|B")
    assert t["smiles"].tolist() == ["C[C@H](N)C(=O)O |&1:1|", "CCO |$_AV:a;b;c$|", "CCN", "CC"] + [
        "CCCl"
    ]
    assert t["name"].tolist() == ["alanine", "line 2", "ethylamine", "|batch 3|", "|A|B"]
    for smiles in t["smiles"][:3]:  # RDKit reads the extension: alanine's stereo group is kept
        assert standardize(smiles, "parent").GetNumAtoms() >= 3
    assert len(standardize(t["smiles"][0]).GetStereoGroups()) == 1


def test_medchem_properties_rules_and_alerts():
    mols = [
        Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"),
        None,
        Chem.MolFromSmiles("O=C(C=Cc1ccccc1)c1ccccc1O"),
    ]  # chalcone: a Brenk alert
    t = medchem_table(mols)
    assert t.loc[0, "MW"] == pytest.approx(180.159, abs=1e-3) and t.loc[0, "HBD"] == 1
    assert bool(t.loc[0, "Lipinski"]) and bool(t.loc[0, "Veber"]) and t.loc[0, "PAINS"] == ""
    assert np.isnan(t.loc[1, "MW"]) and len(t) == 3
    assert t.loc[2, "Brenk"] != "" and 0 < t.loc[2, "QED"] < 1


def test_desirability_directions_and_ranges():
    x = np.array([0.0, 5.0, 10.0, np.nan])
    up = desirability(x, Objective("a", "higher"))
    assert 0 < up[0] < 0.05 and up[1] == pytest.approx(0.5) and 0.95 < up[2] < 1
    assert np.isnan(up[3])
    np.testing.assert_allclose(desirability(x, Objective("a", "lower"))[:3], 1 - up[:3])
    rng = desirability(np.array([1.0, 2.0, 3.5, 6.0]), Objective("a", "range", low=1, high=3))
    np.testing.assert_allclose(rng, [1.0, 1.0, 0.75, 0.0])
    with pytest.raises(ValueError):
        Objective("a", "sideways")
    # an open end made every desirability NaN, and so emptied the ranking
    for text in ("MW=-inf..500", "MW=200..nan", "logP=inf..inf"):
        with pytest.raises(ValueError, match="finite"):
            parse_objective(text)


def test_desirability_orders_the_best_and_resists_outliers():
    """The top 5% are not tied (they were, at 1, and so kept their input order), and one
    huge value does not squash the others together."""
    x = np.arange(100.0)
    up = desirability(x, Objective("a", "higher"))
    assert np.all(np.diff(up) > 0)
    with_outlier = desirability(np.append(x, 1e6), Objective("a", "higher"))
    assert with_outlier[90] - with_outlier[10] > 0.7
    assert np.argsort(-score(pd.DataFrame({"a": x}), [Objective("a")]))[:3].tolist() == [99, 98, 97]


def test_desirability_when_most_values_are_alike():
    """Close analogues share most counts (HBD 1 for 19 of 21): the odd ones out are still
    rewarded or penalised (every value got 1 for "higher", 0 for "lower"), and one molecule
    alone, or values all alike, are neutral rather than best or worst."""
    hbd = np.array([1.0] * 19 + [0.0, 2.0])
    fewer = desirability(hbd, Objective("HBD", "lower"))
    assert fewer[19] > fewer[0] > fewer[20]
    assert fewer[0] == pytest.approx(0.5)
    np.testing.assert_allclose(desirability(np.array([3.0]), Objective("a", "lower")), [0.5])
    same = desirability(np.array([2.0, 2.0, np.nan]), Objective("a", "higher"))
    np.testing.assert_allclose(same[:2], [0.5, 0.5])
    assert np.isnan(same[2])


def test_score_and_pareto_front():
    t = pd.DataFrame({"a": [1.0, 2.0, 3.0, 2.0, np.nan], "b": [3.0, 2.0, 1.0, 1.0, 1.0]})
    objs = [Objective("a", "higher"), Objective("b", "higher")]
    s = score(t, objs)
    assert np.isnan(s[4]) and s[3] < s[1]  # (2, 1) is worse than (2, 2)
    assert pareto_front(t, objs).tolist() == [True, True, True, False, False]
    weighted = score(t, [Objective("a", "higher", 3.0), Objective("b", "higher", 1.0)])
    assert np.nanargmax(weighted) == 2
    with pytest.raises(KeyError):
        score(t, [Objective("zzz")])


def test_pareto_front_matches_pairwise_dominance_across_blocks():
    """The front is computed a block of rows at a time: it must equal the definition, pair by
    pair, with ties, a range objective and missing values, on more rows than one block."""
    rng = np.random.default_rng(3)
    n = 700
    t = pd.DataFrame(
        {"a": rng.integers(0, 6, n), "b": rng.normal(size=n), "c": rng.integers(0, 4, n)}
    ).astype(float)
    t.loc[rng.choice(n, 20, replace=False), "b"] = np.nan
    objs = [
        Objective("a", "higher"),
        Objective("b", "range", 1.0, -0.5, 0.5),
        Objective("c", "lower"),
    ]
    d = np.column_stack([desirability(t[o.column], o) for o in objs])
    ok = np.isfinite(d).all(axis=1)
    expected = [
        ok[i] and not any(ok[j] and (d[j] >= d[i]).all() and (d[j] > d[i]).any() for j in range(n))
        for i in range(n)
    ]
    front = pareto_front(t, objs)
    assert front.tolist() == expected
    assert 0 < front.sum() < ok.sum()


@pytest.mark.parametrize("workers", [1, 2])
def test_screen_aligns_rows_and_reports_errors(model, workers):
    out = screen(
        {"sol": model}, ["CCO", "C1CC", "c1ccccc1O"], ["a", "b", "c"], chunk_size=2, workers=workers
    )
    assert out["name"].tolist() == ["a", "b", "c"] and out.columns[-1] == "error"
    assert out["error"].ne("").tolist() == [False, True, False]
    assert {ESOL_TARGET, f"{ESOL_TARGET}_lower", "in_domain", "QED", "PAINS"} <= set(out.columns)
    assert np.isnan(out.loc[1, ESOL_TARGET]) and not np.isnan(out.loc[2, "MW"])


def test_depiction_and_sdf_export(model):
    assert structure_svg("C1CC") is None and svg_data_uri(None) is None
    assert "<svg" in structure_svg("CCO")
    assert svg_data_uri(structure_svg("CCO")).startswith("data:image/svg+xml;base64,")
    table = screen({"sol": model}, ["CCO", "bad", "c1ccccc1O"], ["e", "x", "p"], depict=True)
    assert table["structure"].isna().tolist() == [False, True, False]
    table = table.drop(columns="structure")
    supplier = Chem.SDMolSupplier()
    supplier.SetData(to_sdf(table).decode())
    mols = list(supplier)
    assert [m.GetProp("_Name") for m in mols] == ["e", "p"]  # the invalid row has no structure
    assert float(mols[0].GetProp(ESOL_TARGET)) == pytest.approx(table.loc[0, ESOL_TARGET], 1e-4)
    assert mols[1].GetProp("input_smiles") == "c1ccccc1O"


def test_uploads_are_read_in_memory():
    raw = b"\xef\xbb\xbfsmiles,id\r\nCCO,1\r\nC1CC,2\r\n"  # BOM, CRLF, gzip
    csv = InMemoryFile("cands.csv.gz", gzip.compress(raw))
    t = read_table(csv, as_text=True)
    assert t["smiles"].tolist() == ["CCO", "C1CC"] and t["id"].tolist() == ["1", "2"]
    smi = read_table(InMemoryFile("x.smi", b"CCO ethanol\nc1ccccc1\n"), as_text=True)
    assert smi["name"].tolist() == ["ethanol", ""]
    mol = Chem.MolFromSmiles("CCO")
    mol.SetProp("_Name", "eth")
    block = Chem.MolToMolBlock(mol) + "$$$$\n"
    sdf = read_table(InMemoryFile("x.sdf", block.encode()), as_text=True)
    assert sdf["name"].tolist() == ["eth"]
    from molpred.io import DataError

    with pytest.raises(DataError):
        read_table(InMemoryFile("x.csv", b""))
    with pytest.raises(DataError):
        read_table(InMemoryFile("x.csv.gz", b"not gzip"))


def test_screened_alert_catalogs_match_rdkit_filter_catalog():
    """The pattern-fingerprint screen must never hide a match RDKit's own catalog finds."""
    smiles = pd.read_csv(ROOT / "data" / "tox21.csv")["smiles"].head(700).tolist()
    mols = [m for m in map(Chem.MolFromSmiles, smiles) if m is not None]
    hits = 0
    for name in ("PAINS", "BRENK"):
        screened = ScreenedCatalog(name)
        for mol in mols:
            full = {e.GetDescription() for e in screened.catalog.GetMatches(mol)}
            assert screened.descriptions(mol) == full, Chem.MolToSmiles(mol)
            hits += bool(full)
    assert hits > 100  # the check saw real matches, not only empty sets


def test_the_page_hook_builds_the_alert_catalogs_before_workers_fork():
    from molpred import medchem
    from molpred.screen import MedchemHook

    medchem._CATALOGS.clear()
    MedchemHook()  # made in the process that forks the pool: the workers inherit the catalogs
    assert {"PAINS", "BRENK"} <= set(medchem._CATALOGS)


def test_salts_are_named_with_what_each_model_scored(model):
    import copy
    import dataclasses

    parent = copy.copy(model)
    parent.info = dataclasses.replace(model.info, standardization="parent")
    smiles = ["CC(=O)Oc1ccccc1C(=O)[O-].[Na+]", "CCN.Cl", "CC(=O)O[Na]", "CCO", "C1CC"]
    extra = pd.DataFrame({"ID": ["A", "B", "C", "D", "E"], "salt": ["x"] * 5})
    drawn = screen({"sol": model}, smiles, extra=extra)
    assert model.standardization == "none"
    assert drawn["salt"].tolist() == [
        "with [Na+]: scored as drawn (properties include it)",
        "with Cl: scored as drawn (properties include it)",
        "with [Na+]: scored as drawn (properties include it)",
        "",
        "",
    ]
    # the user's own columns travel with their rows; theirs named like ours is renamed
    assert drawn["ID"].tolist() == list("ABCDE") and drawn["input_salt"].eq("x").all()
    assert drawn["MW"][0] > 200  # the sodium is in the properties of the drawn salt
    both = screen({"drawn": model, "parent": parent}, smiles[:2])
    assert both["salt"].tolist() == [
        "[Na+] stripped by parent; kept (scored as drawn) by drawn",
        "Cl stripped by parent; kept (scored as drawn) by drawn",
    ]
    only_parent = screen({"parent": parent}, smiles[1:2])
    assert only_parent["salt"][0] == "Cl stripped: the parent was scored"
    assert "salt" not in screen({"sol": model}, ["CCO", "c1ccccc1O"]).columns  # no salt, no column


def test_sdf_keeps_a_users_own_input_smiles_column():
    import io

    table = pd.DataFrame(
        {"name": ["a"], "smiles": ["CCO"], "input_smiles": ["OCC mine"], "logS": [1.0]}
    )
    mol = next(Chem.ForwardSDMolSupplier(io.BytesIO(to_sdf(table))))
    assert mol.GetProp("input_smiles") == "OCC mine" and mol.GetProp("logS") == "1"
    del table["input_smiles"]
    mol = next(Chem.ForwardSDMolSupplier(io.BytesIO(to_sdf(table))))
    assert mol.GetProp("input_smiles") == "CCO"


def test_depictions_draw_every_bond_of_rdkits_drawing_in_fewer_bytes():
    import re
    import xml.etree.ElementTree as ET

    from rdkit.Chem.Draw import rdMolDraw2D

    from molpred.screen import mol_svg

    mol = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O.[Na+].[Cl-]")
    drawer = rdMolDraw2D.MolDraw2DSVG(220, 160, -1, -1, True)
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    rdkit, ours = drawer.GetDrawingText(), mol_svg(mol)
    root = ET.fromstring(ours)  # well-formed, an SVG document
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox") == "0 0 220 160"

    def strokes(svg):  # (colour, segment) in drawing order
        out = []
        for d, style in re.findall(r"<path[^>]* d='([^']*)'[^>]* style='([^']*)'", svg):
            colour = re.search(r"stroke:(#\w+)", style)[1]
            out += [(colour, "M " + seg.strip()) for seg in d.split("M ") if seg.strip()]
        return out

    assert strokes(ours) == strokes(rdkit)
    labels = lambda svg: re.findall(r">([^<>\s]+)</text>", svg)  # noqa: E731
    assert labels(ours) == labels(rdkit) and len(ours) < 0.8 * len(rdkit)
