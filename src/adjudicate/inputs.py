"""Read and check the input tables (contract §2).

``load(spec, paths)`` reads one logical table from one or more files (Parquet,
Arrow IPC/Feather or CSV; a directory means every such file inside it, in name
order), keeps the contract's columns, and converts each to its engine form:

- strings stay Arrow strings (they are dictionary-encoded later, in bulk);
- enums become ``int8`` codes (``-1`` for null);
- dates become ``int32`` days since 1970-01-01;
- amounts become ``int64`` fen, ratios ``int64`` basis points, quantities
  ``int64`` millionths of a unit;
- every column also gets a null mask.

Anything the contract calls an input error raises :class:`InputError`, which
names the file, the column and the first offending row.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from .money import AmountError, to_scaled
from .schema import TableSpec

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".arrow": "ipc", ".feather": "ipc",
            ".ipc": "ipc", ".csv": "csv"}
QUANTITY_SCALE = 6  # quantities are kept in millionths of a unit


class InputError(Exception):
    """Bad input: always names the file and, where it applies, the column and row."""

    def __init__(self, message: str, file: str | Path | None = None,
                 column: str | None = None, row: int | None = None):
        self.file, self.column, self.row = file, column, row
        where = []
        if file is not None:
            where.append(f"file {file}")
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass
class Table:
    """One input table in engine form. ``rows`` are counted across all its files."""

    spec: TableSpec
    files: list[Path]
    values: dict[str, object]
    nulls: dict[str, np.ndarray]
    rows: int
    digests: dict[str, str] = field(default_factory=dict)
    #: For error messages: file index and row within that file of each row.
    file_of_row: np.ndarray | None = None

    def __getitem__(self, name: str):
        return self.values[name]

    def where(self, row: int) -> tuple[Path, int]:
        """(file, row within the file) of a row of the concatenated table."""
        if self.file_of_row is None or len(self.files) == 1:
            return self.files[0], row
        starts = np.flatnonzero(np.r_[True, np.diff(self.file_of_row) != 0])
        k = int(self.file_of_row[row])
        return self.files[k], row - int(starts[np.searchsorted(starts, row, side="right") - 1])


def expand_paths(paths: Iterable[str | Path], what: str) -> list[Path]:
    """Files named by the user: directories expand to the data files inside them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES)
            if not found:
                raise InputError(f"no .parquet, .arrow or .csv files in the {what} folder", p)
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"the {what} file does not exist", p)
    if not out:
        raise InputError(f"no {what} file given")
    return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_file(path: Path, spec: TableSpec) -> pa.Table:
    kind = SUFFIXES.get(path.suffix.lower())
    wanted = [c.name for c in spec.columns]
    try:
        if kind == "parquet":
            schema = pq.read_schema(path)
            present = [c for c in wanted if c in schema.names]
            _check_missing(spec, schema.names, path)
            return pq.read_table(path, columns=present)
        if kind == "ipc":
            table = feather.read_table(path)
        elif kind == "csv":
            types = {c.name: _csv_type(c.kind) for c in spec.columns if _csv_type(c.kind) is not None}
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True))
        else:
            raise InputError("unknown file type (expected .parquet, .arrow/.feather or .csv)", path)
    except InputError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise InputError(f"cannot be read as {kind or 'a table'}: {str(e).splitlines()[0]}", path) from None
    _check_missing(spec, table.column_names, path)
    return table.select([c for c in wanted if c in table.column_names])


def _csv_type(kind: str) -> pa.DataType | None:
    # CSV text is read as exactly what it says: ids as strings, money as decimals.
    return {"string": pa.string(), "enum": pa.string(), "amount": pa.decimal128(38, 6),
            "ratio": pa.decimal128(38, 8), "quantity": pa.decimal128(38, 8)}.get(kind)


def _check_missing(spec: TableSpec, names: Sequence[str], path: Path) -> None:
    missing = [c.name for c in spec.columns if c.name not in names and not c.nullable]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(repr(m) for m in missing)} "
                         f"of the {spec.name} table (contract §2)", path)


def load(spec: TableSpec, paths: Iterable[str | Path]) -> Table:
    """Read, concatenate and convert one logical table."""
    files = expand_paths(paths, spec.name)
    parts, sizes = [], []
    for path in files:
        t = _read_file(path, spec)
        for c in spec.columns:  # optional columns absent from this file: all null
            if c.name not in t.column_names:
                t = t.append_column(c.name, pa.nulls(len(t)))
        parts.append(t.select([c.name for c in spec.columns]))
        sizes.append(len(t))
    file_of_row = np.repeat(np.arange(len(files), dtype=np.int32), sizes)
    table = Table(spec, files, {}, {}, int(sum(sizes)), {str(f): _digest(f) for f in files}, file_of_row)
    for col in spec.columns:
        chunks = [p.column(col.name) for p in parts]
        _convert(table, col, chunks)
    return table


def _fail(table: Table, col: str, row: int, message: str) -> InputError:
    path, local = table.where(row)
    return InputError(message, path, col, local)


def _convert(table: Table, col, chunks: list[pa.ChunkedArray]) -> None:
    """Convert one column (all files) to engine form, with checks."""
    arrs = []
    for k, ch in enumerate(chunks):
        arr = ch.combine_chunks() if isinstance(ch, pa.ChunkedArray) else ch
        arrs.append(_cast(table, col, arr, k))
    arr = pa.concat_arrays(arrs) if len(arrs) > 1 else (arrs[0] if arrs else pa.array([], pa.string()))
    nulls = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else np.zeros(len(arr), bool)
    if not col.nullable and not table.spec.nulls_reject and nulls.any():
        raise _fail(table, col.name, int(np.flatnonzero(nulls)[0]), "is null but the column is required")
    table.nulls[col.name] = nulls
    kind = col.kind
    if kind == "string":
        value: object = arr
    elif kind == "enum":
        codes = np.asarray(pc.fill_null(pc.index_in(arr, value_set=pa.array(col.enum)), -1)).astype(np.int8)
        bad = (codes < 0) & ~nulls
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _fail(table, col.name, row, f"unknown value {arr[row].as_py()!r}; expected one of "
                        + ", ".join(col.enum))
        value = codes
    elif kind == "date":
        value = np.asarray(pc.fill_null(arr.cast(pa.int32()), 0), dtype=np.int32)
    elif kind == "bool":
        value = np.asarray(pc.fill_null(arr, False), dtype=bool)
    elif kind == "int":
        v = np.asarray(pc.fill_null(arr, 0).cast(pa.int64()), dtype=np.int64)
        lo, hi = col.int_range or (-(2**62), 2**62)
        bad = ((v < lo) | (v > hi)) & ~nulls
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _fail(table, col.name, row, f"value {v[row]} is outside {lo}..{hi}")
        value = v
    else:
        scale, exact, what = {"amount": (2, False, "amount"), "ratio": (4, True, "ratio"),
                              "quantity": (QUANTITY_SCALE, False, "quantity")}[kind]
        try:
            value = to_scaled(arr, scale, what, exact=exact,
                              limit=10**14 if kind != "quantity" else 10**16)
        except AmountError as e:
            raise _fail(table, col.name, e.row if e.row is not None else 0, str(e)) from None
        if kind == "ratio":
            bad = ((value < 0) | (value > 10_000)) & ~nulls
            if bad.any():
                raise _fail(table, col.name, int(np.flatnonzero(bad)[0]), "ratio must be within 0..1")
    table.values[col.name] = value


def _cast(table: Table, col, arr: pa.Array, file_index: int) -> pa.Array:
    """Cast one file's column to the contract type, losslessly, or fail naming the row."""
    t = arr.type
    path = table.files[file_index]
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), arr.type.value_type
    if pa.types.is_null(t):
        return arr
    kind = col.kind
    target = {"string": pa.string(), "enum": pa.string(), "date": pa.date32(), "bool": pa.bool_()}.get(kind)
    ok = {
        "string": pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t),
        "enum": pa.types.is_string(t) or pa.types.is_large_string(t),
        "date": pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_string(t),
        "bool": pa.types.is_boolean(t),
        "int": pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t),
        "amount": pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t),
        "ratio": pa.types.is_decimal(t) or pa.types.is_floating(t) or pa.types.is_integer(t),
        "quantity": pa.types.is_decimal(t) or pa.types.is_floating(t) or pa.types.is_integer(t),
    }[kind]
    if not ok:
        raise InputError(f"has type {t}; expected {target or kind}", path, col.name)
    if kind == "int" and not pa.types.is_integer(t):
        as_int = pc.cast(arr, pa.int64(), safe=False)
        unequal = np.asarray(pc.fill_null(pc.not_equal(as_int.cast(t, safe=False), arr), False))
        if unequal.any():
            row = int(np.flatnonzero(unequal)[0])
            raise InputError(f"value {arr[row].as_py()!r} is not a whole number", path, col.name, row)
        return as_int
    if target is None or t == target:
        return arr
    if kind == "date" and pa.types.is_timestamp(t):
        day = pc.cast(arr, pa.date32())
        back = pc.cast(day, t)
        unequal = np.asarray(pc.fill_null(pc.not_equal(back, arr), False))
        if unequal.any():
            row = int(np.flatnonzero(unequal)[0])
            raise InputError("timestamp is not midnight: expected a date", path, col.name, row)
        return day
    try:
        return pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Find the first value that does not cast, to name its row.
        for row in range(len(arr)):
            try:
                pc.cast(arr.slice(row, 1), target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputError(f"value {arr[row].as_py()!r} cannot be read as {target}",
                                 path, col.name, row) from None
        raise
