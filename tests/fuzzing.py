"""Generators and checks for molpred's property-based tests (``tests/test_fuzz.py``) and for the
long campaign (``benchmarks/fuzz_campaign.py``), so both run exactly the same properties.

Properties:

- ``predict`` never raises on any list of inputs; every input is a row, in order, with either
  finite predictions and an empty ``error``, or NaN predictions and a reason;
- ``predict_file`` on any file either writes one output row per row the reader finds (each
  with a value or a reason) or stops with a one-line :class:`molpred.data.DataError`; nothing
  else escapes;
- ``train`` on any label column either trains or stops with a one-line ``DataError``, and every
  unusable label it skipped is listed with its row.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from rdkit import Chem

from molpred.chem import rdkit_log_silenced
from molpred.io import DataError, read_table
from molpred.predict import predict, predict_file

SEEDS = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "c1ccc2c(c1)cccc2O",
    "C[C@H](N)C(=O)O",
    "OC1=CC=CC=C1.[Na+].[Cl-]",
    "FC(F)(F)c1ccc(cc1)N",
    "C1CC1C#N",
    "O=S(=O)(N)c1ccc(Cl)cc1",
    "[NH3+]CC([O-])=O",
    "CCOC(=O)/C=C/c1ccccc1",
]
SMILES_CHARS = "CNOSPFIBrclnos()[]=#@+-123456789%/\\.H*:~"
ODD = [
    "[2H]C([2H])([2H])O",
    "[13CH4]",
    "[Og]",
    "[U]",
    "[Xe]",
    "[Tc]",
    "[Fe+3]",
    "[Pt]",
    "[*]C",
    "C" * 600,
    "c1ccccc1" * 80,
    "[C@@H](F)(Cl)Br",
    "C1" * 30,
    "[NH4+]",
    ".",
    "C..C",
    "[H][H]",
]


@st.composite
def mutated(draw) -> str:
    """A valid SMILES with a few random insertions, deletions and substitutions."""
    s = list(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(s)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        c = draw(st.sampled_from(SMILES_CHARS))
        if op == "insert" or not s:
            s.insert(i, c)
        elif op == "delete":
            del s[min(i, len(s) - 1)]
        else:
            s[min(i, len(s) - 1)] = c
    return "".join(s)


def smiles_inputs() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SEEDS),
        mutated(),
        st.sampled_from(ODD),
        st.text(alphabet=SMILES_CHARS, max_size=40),
        st.text(max_size=20),  # any unicode, control characters and whitespace included
    )


def check_predict(model, inputs: list[object]) -> None:
    out = predict(model, inputs, workers=1)
    assert len(out) == len(inputs)
    assert out["smiles"].tolist() == inputs
    value = out[model.task_names[0]].to_numpy(dtype=float)
    ok = (out["error"] == "").to_numpy()
    assert np.isfinite(value[ok]).all(), "a scored row has a non-finite value"
    assert np.isnan(value[~ok]).all(), "a failed row has a value"
    assert all(isinstance(e, str) for e in out["error"])


@st.composite
def table_files(draw) -> tuple[str, bytes]:
    """(file name, raw bytes): delimited text, SMILES or SD files with every defect the reader
    must survive (BOM, CRLF, bad bytes, wrong delimiter, ragged rows, broken records, gzip)."""
    kind = draw(st.sampled_from(["csv", "tsv", "smi", "sdf"]))
    smiles = draw(st.lists(smiles_inputs(), max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    if kind == "sdf":
        blocks = []
        for s in smiles:
            with rdkit_log_silenced():
                mol = Chem.MolFromSmiles(s) if s and len(s) < 200 else None
            block = Chem.MolToMolBlock(mol) if mol is not None else f"{s}\n  junk\n\nM  END\n"
            cut = draw(st.integers(0, len(block)))
            blocks.append(block[:cut] if draw(st.booleans()) and cut else block)
        text = "$$$$\n".join(blocks) + ("$$$$\n" if blocks and draw(st.booleans()) else "")
    elif kind == "smi":
        text = eol.join(f"{s} name{i}" for i, s in enumerate(smiles))
    else:
        sep = draw(st.sampled_from([",", "\t", ";", "|"]))  # may be the wrong one
        header = draw(st.sampled_from(["smiles", "SMILES", "smiles,id", "id,smiles", "x", ""]))
        rows = [header] + [
            f"{s}{sep}{i}" if draw(st.booleans()) else s for i, s in enumerate(smiles)
        ]
        text = eol.join(rows)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.booleans()) and data:
        i = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x00", b"\x80abc"]))
        data = data[:i] + bad + data[i:]
    name = f"input.{kind}"
    if draw(st.booleans()):
        data, name = gzip.compress(data, mtime=0), name + ".gz"
    return name, data


def check_file(model, directory: Path, name: str, data: bytes) -> str:
    """Runs ``predict_file``; returns "scored" or "refused" (a clear DataError)."""
    src = directory / name
    src.write_bytes(data)
    out = directory / "out.csv"
    out.unlink(missing_ok=True)
    try:
        predict_file(model, src, out, smiles_column=None, progress=False)
    except DataError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        if "no valid molecules" not in message:  # that case still writes every row's reason
            return "refused"
    expected = len(read_table(src, as_text=True))
    got = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert len(got) == expected, f"{len(got)} output rows for {expected} input rows"
    values = pd.to_numeric(got[model.task_names[0]], errors="coerce")
    assert ((got["error"] != "") | values.notna()).all(), "a row with neither value nor reason"
    return "scored"


def labels() -> st.SearchStrategy[object]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-5, 5),
        st.sampled_from(["abc", "", " ", "1e3", "NaN", "inf", "-", "1,5", None]),
        st.text(max_size=5),
    )


def check_train(values: list[object], train_fn) -> str:
    """``train_fn(df)`` on valid molecules with these labels: trains, or a one-line refusal."""
    df = pd.DataFrame(
        {"smiles": (SEEDS * (len(values) // len(SEEDS) + 1))[: len(values)], "y": values}
    )
    try:
        model = train_fn(df)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return "refused"
    usable = pd.to_numeric(df["y"], errors="coerce")
    usable = usable[np.abs(usable.to_numpy(dtype=float)) <= 1e30]  # float32 must hold it
    bad = set(range(len(df))) - set(usable.index)
    listed = set(model.problems["row"]) if model.problems is not None else set()
    assert bad <= listed, f"unusable labels in rows {sorted(bad - listed)} were not reported"
    member = model.members[0]
    assert bool(member.y_mean.isfinite().all() and member.y_scale.isfinite().all()), (
        "label scaling overflowed"
    )
    return "trained"
