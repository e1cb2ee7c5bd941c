"""Reading molecule tables and writing results.

Formats, each optionally gzip-compressed: ``.csv`` (comma- or, as some spreadsheets save it,
semicolon-separated), ``.tsv``, ``.smi`` (SMILES, then an optional name after whitespace; a
first line starting "SMILES" is a header), ``.sdf`` (records become rows: ``smiles``, the title
as ``name``, and every SD property as a column: ``sd_smiles`` / ``sd_name`` for properties named
like those two), and ``.parquet``.

:func:`iter_table` streams a file in chunks of rows with every cell as text, so predictions can
pass input columns through unchanged; a row that cannot be read (a broken SDF record) is kept
with its reason in the :data:`READ_ERROR` column.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from rdkit import Chem

from molpred.chem import SMILES_NAMES, InvalidMoleculeError, mol_from_block

__all__ = [
    "DataError",
    "READ_ERROR",
    "read_table",
    "iter_table",
    "table_format",
    "TableWriter",
    "atomic_path",
    "InMemoryFile",
    "writable_format",
    "pick_column",
    "CSV_OPTIONS",
    "csv_separator",
    "decimal_points",
    "smiles_and_name",
]

FORMATS = ("csv", "tsv", "smi", "sdf", "parquet")
# The column in which a reader explains a row it could not read (a broken SDF record). Not a
# name a user's table would hold, so a user's own ``error`` column is never taken for it.
READ_ERROR = "_molpred_read_error"
WRITABLE = ("csv", "tsv", "parquet")


class DataError(ValueError):
    """A table cannot be used at all (missing column, no valid rows...). One-line message."""


CSV_OPTIONS = dict(encoding="utf-8-sig", encoding_errors="replace")


def pick_column(columns: Sequence[str], requested: str | None, what: str) -> str:
    """``requested`` if the table has it (else :class:`DataError`); without one, the SMILES
    column found by its name (``smiles``, ``SMILES``, ``canonical_smiles``...)."""
    if requested is not None:
        if requested not in columns:
            raise DataError(
                f"{what} column {requested!r} not found; available: {', '.join(map(str, columns))}"
            )
        return requested
    for col in columns:
        if str(col).strip().lower() in SMILES_NAMES:
            return col
    raise DataError(
        f"no SMILES column found (looked for 'smiles'); pass --smiles-column. "
        f"Available: {', '.join(map(str, columns))}"
    )


def table_format(path: str | Path) -> str:
    """``csv``, ``tsv``, ``smi``, ``sdf`` or ``parquet`` from the file name (``.gz`` ignored)."""
    name = str(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = name.rsplit(".", 1)[-1] if "." in Path(name).name else ""
    if suffix in ("txt", "smiles"):
        suffix = "smi"
    if suffix not in FORMATS:
        raise DataError(
            f"unsupported file type {Path(path).name!r}; use one of "
            ".csv .tsv .smi .sdf .parquet (optionally .gz)"
        )
    return suffix


def writable_format(path: str | Path) -> str:
    """The format of an output file name, or :class:`DataError` if molpred cannot write it."""
    fmt = table_format(path)
    if fmt not in WRITABLE:
        raise DataError(
            f"cannot write {fmt} output ({Path(path).name}); use .csv, .tsv or "
            ".parquet (optionally .gz)"
        )
    return fmt


class InMemoryFile:
    """An uploaded file that must never touch the disk: its name (for the format) and bytes.

    Every reader accepts one wherever it accepts a path.
    """

    def __init__(self, name: str, data: bytes):
        self.name, self.data = Path(name).name, data

    def __str__(self) -> str:
        return self.name

    def binary(self) -> io.BytesIO:
        data = gzip.decompress(self.data) if self.name.lower().endswith(".gz") else self.data
        return io.BytesIO(data)


def _check_file(path: str | Path | InMemoryFile) -> Path | InMemoryFile:
    if isinstance(path, InMemoryFile):
        if not path.data:
            raise DataError(f"file is empty: {path.name}")
        return path
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    if p.stat().st_size == 0:
        raise DataError(f"file is empty: {p}")
    return p


def _open_text(path: Path | InMemoryFile):
    if isinstance(path, InMemoryFile):
        return io.TextIOWrapper(path.binary(), encoding="utf-8-sig", errors="replace", newline="")
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="")


def _source(path: Path | InMemoryFile):
    """What pandas/pyarrow read: the path, or the (decompressed) bytes of an upload."""
    return path.binary() if isinstance(path, InMemoryFile) else path


def read_table(path: str | Path | InMemoryFile, *, as_text: bool = False) -> pd.DataFrame:
    """Read a whole table. ``as_text`` keeps every cell as a string (no type inference)."""
    chunks = list(iter_table(path, chunk_size=1 << 20, as_text=as_text))
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def iter_table(
    path: str | Path | InMemoryFile, chunk_size: int = 10_000, *, as_text: bool = True
) -> Iterator[pd.DataFrame]:
    """Yield the rows of ``path`` in chunks, in file order. Raises :class:`DataError` for an
    unreadable or empty file; yields at least one (possibly empty) chunk for a header-only file.
    """
    p = _check_file(path)
    fmt = table_format(p)
    try:
        if fmt in ("csv", "tsv"):
            text_opts = dict(dtype=str, keep_default_na=False) if as_text else {}
            sep = csv_separator(p) if fmt == "csv" else "\t"
            if sep == ";" and not as_text:
                text_opts = dict(decimal=",")
            reader = pd.read_csv(
                _source(p), sep=sep, chunksize=chunk_size, **text_opts, **CSV_OPTIONS
            )
            if sep == ";" and as_text:
                reader = (decimal_points(chunk) for chunk in reader)
            yield from _at_least_one(reader)
        elif fmt == "smi":
            yield from _at_least_one(_iter_smi(p, chunk_size))
        elif fmt == "sdf":
            yield from _at_least_one(_iter_sdf(p, chunk_size))
        else:
            yield from _at_least_one(_iter_parquet(p, chunk_size))
    except pd.errors.EmptyDataError:
        raise DataError(f"no columns found in {p}") from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DataError(f"cannot parse {p.name}: {first}") from None
    except (OSError, EOFError) as exc:  # e.g. a broken gzip or Parquet upload
        raise DataError(f"cannot read {p.name}: {exc}") from None


def _at_least_one(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    empty = True
    last = None
    for chunk in chunks:
        empty = False
        last = chunk
        yield chunk
    if empty or last is None:
        raise DataError("the file holds no rows")


# a number written with a decimal comma ("-0,77", "1,5e-3"): read as such in ';' files
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")


def csv_separator(path: Path | InMemoryFile, lines: int = 50) -> str:
    """``,``, or ``;`` for a spreadsheet saved as CSV where the comma is the decimal mark:
    when the first lines split into the same number (more than one) of fields on ``;`` and
    not on ``,`` (a header such as ``IC50 (uM, mean)`` holds a comma too)."""
    with _open_text(path) as fh:
        sample = [line for _, line in zip(range(lines), fh, strict=False) if line.strip()]

    def consistent(sep: str) -> bool:
        counts = {len(row) for row in csv.reader(sample, delimiter=sep)}
        return len(counts) == 1 and counts.pop() > 1

    if not consistent(";"):
        return ","
    if not consistent(","):
        return ";"
    # both split every line alike: ';' if its fields hold decimal-comma numbers
    cells = (cell for row in csv.reader(sample, delimiter=";") for cell in row)
    return ";" if any(_DECIMAL_COMMA.match(cell) for cell in cells) else ","


def decimal_points(chunk: pd.DataFrame) -> pd.DataFrame:
    """Text cells of a ``;``-separated file that are numbers with a decimal comma, with a
    point instead (``as_text`` reads keep every cell as text; labels are parsed later)."""
    for col in chunk.columns:
        values = chunk[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            numbers = values.astype(str).str.match(_DECIMAL_COMMA) & values.notna()
            if numbers.any():
                chunk[col] = values.where(~numbers, values.str.replace(",", ".", regex=False))
    return chunk


# a SMILES, then optionally a CXSMILES extension ("|...|" without spaces: ChemDraw's and
# Marvin's enhanced stereo, labels), then optionally a name ("|batch 3|" is a name)
_SMILES_LINE = re.compile(r"(\S+)(?:\s+(\|[^|\s]*\|))?(?:\s+(.*))?")


def smiles_and_name(line: str) -> tuple[str, str]:
    """A line of a SMILES list: its structure (a CXSMILES extension kept with it) and its name
    (the rest, ``""`` if none). A blank line gives ``("", "")``."""
    match = _SMILES_LINE.fullmatch(line.strip())
    if match is None:
        return "", ""
    smiles, extension, name = match.groups()
    return (f"{smiles} {extension}" if extension else smiles), (name or "").strip()


# the first word of a .smi header line (RDKit's SmilesWriter writes "SMILES Name")
_SMI_HEADERS = {"smiles", "smi", "canonical_smiles", "isomeric_smiles"}


def _iter_smi(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    rows: list[tuple[str, str]] = []
    with _open_text(path) as fh:
        for number, line in enumerate(fh):
            line = line.rstrip("\r\n")
            if not line.strip():
                rows.append(("", ""))  # kept, so output lines up with input lines
                continue
            smiles, name = smiles_and_name(line)
            if number == 0 and smiles.lower() in _SMI_HEADERS:
                continue  # a header, not a molecule
            rows.append((smiles, name))
            if len(rows) >= chunk_size:
                yield pd.DataFrame(rows, columns=["smiles", "name"])
                rows = []
    if rows:
        yield pd.DataFrame(rows, columns=["smiles", "name"])


def _sdf_records(path: Path) -> Iterator[str]:
    lines: list[str] = []
    with _open_text(path) as fh:
        for line in fh:
            if line.startswith("$$$$"):
                yield "".join(lines)
                lines = []
            else:
                lines.append(line)
    if any(line.strip() for line in lines):
        yield "".join(lines)  # a last record without its terminator


def _sd_properties(block: str) -> dict[str, str]:
    """The ``> <name>`` data items after ``M  END``: a header line, then value lines up to a
    blank line (joined by newlines; a value may itself start with ``>``, as ``>10`` does)."""
    props: dict[str, str] = {}
    _, sep, data = block.partition("M  END")
    if not sep:
        return props
    name, values = None, []
    for line in data.split("\n")[1:]:
        if name is None:
            start = line.find("<")
            end = line.find(">", start + 1)
            if line.startswith(">") and 0 <= start < end:
                name, values = line[start + 1 : end], []
        elif line.strip():
            values.append(line)
        else:  # a blank line ends the item
            props[name] = "\n".join(values).strip()
            name = None
    if name is not None:
        props[name] = "\n".join(values).strip()
    return props


def _sd_property_names(path: Path) -> list[str]:
    """Every data item's name in the file, in order of first appearance: each chunk of
    records gets all of them (blank where a record lacks one), so chunks line up."""
    names: dict[str, None] = {}
    for block in _sdf_records(path):
        names.update(dict.fromkeys(_sd_properties(block.replace("\r\n", "\n"))))
    return list(names)


def _iter_sdf(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    fixed = ["name", "smiles", READ_ERROR]
    columns = fixed + [f"sd_{k}" if k in fixed else k for k in _sd_property_names(path)]
    rows: list[dict[str, str]] = []
    for block in _sdf_records(path):
        block = block.replace("\r\n", "\n")
        row: dict[str, str] = {"name": block.split("\n", 1)[0].strip()}
        try:
            mol = mol_from_block(block)
            row["smiles"] = Chem.MolToSmiles(mol)
            row[READ_ERROR] = ""
        except InvalidMoleculeError as exc:
            row["smiles"] = ""
            row[READ_ERROR] = f"SDF record: {exc}"
        for key, value in _sd_properties(block).items():  # "smiles", "name": sd_smiles, sd_name
            row[f"sd_{key}" if key in row else key] = value
        rows.append(row)
        if len(rows) >= chunk_size:
            yield pd.DataFrame(rows, columns=columns).fillna("")
            rows = []
    if rows:
        yield pd.DataFrame(rows, columns=columns).fillna("")


def _iter_parquet(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Parquet keeps its own types (``as_text`` is for text formats, where it keeps IDs as
    written: in Parquet, the stored value is as written). A pandas index stored with the
    table (``df.set_index("compound_id").to_parquet(...)``) comes back as a column."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(_source(path)).iter_batches(batch_size=chunk_size):
        df = batch.to_pandas()
        if not isinstance(df.index, pd.RangeIndex) or any(df.index.names):
            df = df.reset_index()
        yield df.reset_index(drop=True)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds,
    so a crash never leaves a partial file that looks complete."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _has_carriage_return(df: pd.DataFrame) -> bool:
    return any(
        df[c].astype(str).str.contains("\r", regex=False).any()
        for c in df.columns
        if not pd.api.types.is_numeric_dtype(df[c])
    )


class TableWriter:
    """Append DataFrame chunks to a CSV/TSV (optionally .gz) or Parquet file, written atomically
    on :meth:`close`. Use as a context manager."""

    def __init__(self, path: str | Path, *, header: bool = True):
        self.path = Path(path)
        self.header = header
        self.format = writable_format(self.path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._fh = None
        self._raw = None
        self._parquet = None

    def write(self, df: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        header = self._fh is None and self.header
        if self._fh is None:
            if self.path.name.lower().endswith(".gz"):
                # no file name or time stamp in the header: the same rows give the same bytes
                raw = open(self._tmp, "wb")  # noqa: SIM115 - closed with the gzip stream
                gz = gzip.GzipFile(
                    fileobj=raw, mode="wb", filename="", mtime=0, compresslevel=6
                )  # zlib's default; 9 costs 2-3x the CPU
                self._raw = raw
                self._fh = io.TextIOWrapper(gz, encoding="utf-8", newline="")
            else:
                self._fh = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        # a bare carriage return in a text field (an SDF title, a quoted CSV cell) is not quoted
        # by QUOTE_MINIMAL with "\n" line ends, and a reader would split the row in two
        quoting = csv.QUOTE_NONNUMERIC if _has_carriage_return(df) else csv.QUOTE_MINIMAL
        df.to_csv(
            self._fh,
            sep="," if self.format == "csv" else "\t",
            index=False,
            header=header,
            lineterminator="\n",
            quoting=quoting,
        )

    def close(self) -> None:
        if self._parquet is None and self._fh is None:
            self._tmp.touch()  # nothing written: still produce the (empty) file
        if self._parquet is not None:
            self._parquet.close()
        for handle in (self._fh, self._raw):
            if handle is not None:
                handle.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        for h in (self._parquet, self._fh, self._raw):
            if h is not None:
                h.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
