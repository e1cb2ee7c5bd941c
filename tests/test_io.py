import gzip

import pandas as pd
import pytest
from rdkit import Chem

from molpred.io import DataError, TableWriter, atomic_path, iter_table, read_table, table_format


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.GZ", "csv"),
        ("a.tsv", "tsv"),
        ("a.smi", "smi"),
        ("a.txt", "smi"),
        ("a.sdf.gz", "sdf"),
        ("a.parquet", "parquet"),
    ],
)
def test_table_format(name, fmt):
    assert table_format(name) == fmt


def test_unsupported_format():
    with pytest.raises(DataError, match="unsupported"):
        table_format("a.xlsx")


def test_bom_crlf_and_non_utf8_bytes_are_read(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(b"\xef\xbb\xbfsmiles,name\r\nCCO,eth\xffanol\r\nc1ccccc1,benzene\r\n")
    df = read_table(p, as_text=True)
    assert list(df.columns) == ["smiles", "name"] and df["smiles"].tolist() == ["CCO", "c1ccccc1"]
    assert df["name"][0].startswith("eth")  # the bad byte is replaced, the row kept


def test_chunks_preserve_order_and_text(tmp_path):
    p = tmp_path / "x.tsv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("smiles\tid\n" + "".join(f"C{'C' * i}\t{i:04d}\n" for i in range(25)))
    chunks = list(iter_table(p, chunk_size=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert pd.concat(chunks)["id"].tolist() == [f"{i:04d}" for i in range(25)]  # zeros kept


def test_semicolon_csv_and_smi_header(tmp_path):
    """A spreadsheet's semicolon CSV (comma decimal marks) is read as columns, and a .smi
    header ("SMILES Name", as RDKit writes it) is not taken for a molecule."""
    (tmp_path / "eu.csv").write_text("SMILES;ID;pIC50\nCCO;1;5,1\nc1ccccc1;2;6,3\n")
    df = read_table(tmp_path / "eu.csv", as_text=True)
    assert list(df.columns) == ["SMILES", "ID", "pIC50"] and df["SMILES"].tolist()[1] == "c1ccccc1"
    assert df["pIC50"].tolist() == ["5.1", "6.3"]  # labels, not "unusable" text
    # a comma in a header's unit, integers among the values, exponents: still a ';' file
    text = "smiles;IC50 (uM, mean);note\nCCO;-0,77;a, b\nCCN;3;c\nCCC;1,5e-1;\n"
    (tmp_path / "eu2.csv").write_text(text)
    for as_text in (False, True):
        df = read_table(tmp_path / "eu2.csv", as_text=as_text)
        assert list(df.columns) == ["smiles", "IC50 (uM, mean)", "note"]
        values = pd.to_numeric(df["IC50 (uM, mean)"]).tolist()
        assert values == [-0.77, 3.0, 0.15] and df["note"].tolist()[0] == "a, b"
    (tmp_path / "us.csv").write_text("name,smiles\nfoo;bar,CCO\nx,CCN\n")  # ';' in a name
    assert read_table(tmp_path / "us.csv")["smiles"].tolist() == ["CCO", "CCN"]
    (tmp_path / "lib.smi").write_text("SMILES Name\nCCO ethanol\n\nc1ccccc1 benzene\n")
    df = read_table(tmp_path / "lib.smi")
    assert df["smiles"].tolist() == ["CCO", "", "c1ccccc1"]  # the blank line kept, in place
    (tmp_path / "plain.smi").write_text("CCO ethanol\nSMILES x\n")
    assert len(read_table(tmp_path / "plain.smi")) == 2  # only a first line is a header
    (tmp_path / "cx.smi").write_text("C[C@H](N)C(=O)O |&1:1| alanine\n")  # CXSMILES
    df = read_table(tmp_path / "cx.smi")
    assert df.loc[0, "smiles"] == "C[C@H](N)C(=O)O |&1:1|" and df.loc[0, "name"] == "alanine"


def test_missing_empty_and_malformed_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.smi").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.smi")
    (tmp_path / "bad.csv").write_text('smiles,a\n"CCO,1\n')
    with pytest.raises(DataError):
        read_table(tmp_path / "bad.csv")


def test_writer_is_atomic(tmp_path):
    out = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with TableWriter(out) as w:
            w.write(pd.DataFrame({"a": [1]}))
            raise RuntimeError("crash mid-run")
    assert not out.exists() and not list(tmp_path.iterdir())  # no partial file, no temp left
    with TableWriter(out) as w:
        w.write(pd.DataFrame({"a": [1]}))
        w.write(pd.DataFrame({"a": [2]}))
    assert out.read_text() == "a\n1\n2\n"


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert target.read_text() == "old"


def test_sd_properties_named_like_the_readers_columns_do_not_replace_them(tmp_path):
    """A record's structure is its molblock: an SD property "smiles" (stale, or salt-stripped)
    was scored instead."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles("c1ccccc1O")
    mol.SetProp("_Name", "phenol")
    mol.SetProp("smiles", "X")
    mol.SetProp("name", "from a property")
    with Chem.SDWriter(str(tmp_path / "p.sdf")) as writer:
        writer.write(mol)
    row = read_table(tmp_path / "p.sdf").iloc[0]
    assert (row["smiles"], row["name"]) == ("Oc1ccccc1", "phenol")
    assert (row["sd_smiles"], row["sd_name"]) == ("X", "from a property")


def test_sdf_chunks_share_every_records_properties(tmp_path):
    """Vendor SDFs carry optional fields: a chunk without one (or with them in another order)
    once put its cells under the wrong headers of the joined output."""

    def record(smiles, **props):
        block = Chem.MolToMolBlock(Chem.MolFromSmiles(smiles))
        items = "".join(f">  <{k}>\n{v}\n\n" for k, v in props.items())
        return f"{block}{items}$$$$\n"

    text = (
        record("CCO", ID="a1", Salt="HCl", pIC50="6.2")
        + record("CCN", pIC50="5.0", ID="a2")
        + record("CCC", ID="a3", vendor="x", pIC50=">10")  # a censored value, not a header
    )
    (tmp_path / "v.sdf").write_text(text)
    chunks = list(iter_table(tmp_path / "v.sdf", chunk_size=1))
    assert all(list(c.columns) == list(chunks[0].columns) for c in chunks)
    df = pd.concat(chunks, ignore_index=True)
    assert df["ID"].tolist() == ["a1", "a2", "a3"] and df["Salt"].tolist() == ["HCl", "", ""]
    assert df["pIC50"].tolist() == ["6.2", "5.0", ">10"] and df["vendor"].tolist() == ["", "", "x"]
