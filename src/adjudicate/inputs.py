"""Read and check the input tables (contract §2).

``load(spec, paths)`` reads one logical table from one or more files (Parquet,
Arrow IPC/Feather or CSV; a directory means every such file inside it, in name
order), keeps the contract's columns, and converts each to its engine form:

- strings stay Arrow strings (they are dictionary-encoded later, in bulk);
  the claims' low-cardinality text columns (``DICTIONARY_COLUMNS``) are read
  from Parquet as dictionaries, so no string is materialised per line: the
  engine joins their small dictionaries (``Table.coded``), and ``values``
  decodes them to plain strings only for a caller that asks;
- enums become ``int8`` codes (``-1`` for null);
- dates become ``int32`` days since 1970-01-01;
- amounts become ``int64`` fen, prices (``unit_price``, ``max_unit_price``)
  ``int64`` units of 0.0001 yuan, exactly (contract §1), ratios ``int64``
  basis points, quantities ``int64`` millionths of a unit;
- every column also gets a null mask.

In a folder, files whose names start with '.' or '_' are skipped.

Anything the contract calls an input error raises :class:`InputError`, which
names the file, the column and the first offending row. Rows count from 0
within each file, as data tools show them; for CSV the line of the file is
given too (the header is line 1).
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from .errors import InputError
from .money import MAX_FEN, PRICE_SCALE, AmountError, to_scaled
from .rawdecimal import RawDecimal, raw_metadata, unscaled
from .schema import ENUM_ALIASES, FALSE_WORDS, TRUE_WORDS, TableSpec
from .threads import done, serial, thread_pool

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".arrow": "ipc", ".feather": "ipc", ".ipc": "ipc", ".csv": "csv"}
QUANTITY_SCALE = 6  # quantities are kept in millionths of a unit


#: Text columns of the claims coded while a Parquet file is read, row group by row group
#: (``Table.codes``), their strings kept once per distinct value, not once per line: the
#: claim ids, one per claim, and the member ids, too many for the writer's dictionary page
#: (past it the file holds plain values, which a dictionary read hashes line by line in
#: Arrow's general table; the coder compares a run of one claim's lines once).
CODED_WHILE_READ = {"claims": ("claim_id", "member_id")}

#: Text columns of the claims read from Parquet as dictionaries: a few thousand
#: distinct values repeated on millions of lines (reading them as strings costs
#: more than the rest of the file).
DICTIONARY_COLUMNS = {"claims": ("member_id", "provider_id", "setting", "referral", "item_code", "diagnosis")}


class Columns(dict):
    """Column values by name; a dictionary-read text column is decoded to plain
    strings the first time it is asked for (``Table.coded`` keeps the codes)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, pa.ChunkedArray] = {}
        self.order: list[str] = []  # the columns' order when iterated (table order), if set

    def __missing__(self, name: str):
        if name not in self.lazy:
            raise KeyError(name)
        value = self[name] = strings(self.lazy.pop(name))
        return value

    def _all(self) -> None:
        for name in list(self.lazy):
            self[name]
        if self.order and list(dict.keys(self)) != self.order and set(self.order) == set(dict.keys(self)):
            ordered = [(k, dict.__getitem__(self, k)) for k in self.order]
            self.clear()
            self.update(ordered)

    def __contains__(self, name) -> bool:
        return super().__contains__(name) or name in self.lazy

    def __iter__(self):
        self._all()
        return super().__iter__()

    def __len__(self) -> int:
        return super().__len__() + len(self.lazy)

    def keys(self):
        self._all()
        return super().keys()

    def items(self):
        self._all()
        return super().items()

    def values(self):
        self._all()
        return super().values()


def strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Plain string array of a text column (dictionary-encoded or chunked or not)."""
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


@dataclass
class Table:
    """One input table in engine form. ``rows`` are counted across all its files."""

    spec: TableSpec
    files: list[str | Path]  # str: a remote file read on Spark
    values: dict[str, Any]  # numpy arrays (numbers, dates) and pyarrow arrays (text)
    nulls: dict[str, np.ndarray]
    rows: int
    digests: dict[str, str] = field(default_factory=dict)
    #: For error messages: file index and row within that file of each row.
    file_of_row: np.ndarray | None = None
    #: Text columns coded while read (``CODED_WHILE_READ``): per row the code of its value
    #: (int32, -1 for null), and the distinct values in order of first appearance, the
    #: codes and dictionary ``dictionary_encode`` gives. Only for a table read whole from
    #: one file: anything that makes a table of other rows leaves it empty.
    codes: dict[str, tuple[np.ndarray, pa.Array]] = field(default_factory=dict)

    def __getitem__(self, name: str):
        return self.values[name]

    def coded(self, name: str) -> pa.Array | pa.ChunkedArray:
        """A text column as read: dictionary-encoded chunks where it was read so, else its strings."""
        lazy = getattr(self.values, "lazy", {})
        return lazy[name] if name in lazy else self.values[name]

    def take(self, rows: np.ndarray) -> Table:
        """The table of ``rows`` (positions, in that order), as read: nothing is checked again."""
        idx = pa.array(rows, pa.int64())
        values = {
            k: (v.take(idx) if isinstance(v, (pa.Array, pa.ChunkedArray)) else np.asarray(v)[rows])
            for k, v in self.values.items()
        }
        return replace(
            self,
            values=values,
            nulls={k: v[rows] for k, v in self.nulls.items()},
            rows=len(rows),
            file_of_row=None if self.file_of_row is None else self.file_of_row[rows],
            codes={},
        )

    def where(self, row: int) -> tuple[str | Path, int]:
        """(file, row within the file) of a row of the concatenated table."""
        if self.file_of_row is None or len(self.files) == 1:
            return self.files[0], row
        k = int(self.file_of_row[row])
        return self.files[k], row - int(np.searchsorted(self.file_of_row, k))


def expand_paths(paths: Iterable[str | Path], what: str) -> list[Path]:
    """Files named by the user: directories expand to the data files inside them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # hidden and '_' files (.crc, _SUCCESS, editors' and copiers' leftovers) are not data
            found = sorted(
                f
                for f in p.iterdir()
                if f.suffix.lower() in SUFFIXES and not f.name.startswith((".", "_")) and not f.is_dir()
            )
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


def read_hashed(path: Path) -> tuple[pa.Buffer, str]:
    """The file's bytes, read once, and their SHA-256: the digest in summary.json describes exactly the
    bytes the reader parsed, even if the file is replaced while the run goes on."""
    with open(path, "rb") as f:
        data = f.read()
    return pa.py_buffer(data), hashlib.sha256(data).hexdigest()


_POOL: list[ThreadPoolExecutor] = []
T = TypeVar("T")


os.register_at_fork(after_in_child=_POOL.clear)  # a forked child has no helper thread


def _background(job: Callable[[], T]) -> Future[T]:
    """Run ``job`` on the module's one helper thread (made when first needed); under ``--threads 1``
    on this one, now (threads.serial)."""
    if serial():
        return done(job)
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(1, thread_name_prefix="adjudicate-digest"))
    return _POOL[0].submit(job)


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes as they are now (the digest summary.json records)."""
    return digest_while_reading(path)[0]


def digest_while_reading(path: Path):
    """For files read piece by piece (streaming): the SHA-256 of the file as opened, and a check,
    to call when reading is done, that the path still holds those bytes (not replaced, not rewritten)."""
    f = open(path, "rb")
    try:
        before = os.fstat(f.fileno())
        h = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    finally:
        f.close()

    def unchanged() -> None:
        try:
            now = os.stat(path)
        except OSError:
            now = None
        if now is None or (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) != (
            before.st_ino,
            before.st_dev,
            before.st_size,
            before.st_mtime_ns,
        ):
            raise InputError(
                "the file changed while it was being read (replaced or rewritten during the run); "
                "run again when it is complete",
                path,
            )

    return h.hexdigest(), unchanged


#: Text encoding of CSV inputs. "auto" reads UTF-8 with or without a byte-order
#: mark and, when the bytes are not UTF-8, says which encoding they look like.
#: Set for a whole command by the command line's ``--encoding``.
CSV_ENCODING: ContextVar[str] = ContextVar("csv_encoding", default="auto")


@contextmanager
def csv_encoding(name: str | None) -> Iterator[None]:
    """Read CSV inputs in ``name`` (a Python codec name, or "auto") inside the block."""
    name = (name or "auto").strip().lower()
    if name != "auto":
        try:
            name = codecs.lookup(name).name
        except LookupError:
            raise InputError(f"unknown text encoding {name!r}; use e.g. utf-8, gb18030 or gbk") from None
    token = CSV_ENCODING.set(name)
    try:
        yield
    finally:
        CSV_ENCODING.reset(token)


def _guess_encoding(path: Path) -> str:
    """Why a CSV file is not UTF-8: its first bad line and the encoding that line decodes as."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, tail = 0, b""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                lines += block[: e.start].count(b"\n")
                data, at = tail + block, len(tail) + e.start
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                line = data[start : end if end >= 0 else len(data)].rstrip(b"\r")
                break
            lines += block.count(b"\n")
            tail = block[-4096:]
        else:
            return "no bad byte found on a second reading)"
    for enc, label in (("gb18030", "GB18030 (GBK)"), ("big5", "Big5")):
        try:
            text = line.decode(enc)
        except UnicodeDecodeError:
            continue
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            shown = text if len(text) <= 60 else text[:57] + "..."
            return f"line {lines + 1} decodes as {label}: {shown!r}): pass --encoding {enc}"
    return f"line {lines + 1}): pass --encoding with the file's encoding, e.g. gb18030"


#: Errors the Arrow readers raise on a file they cannot read (corrupt,
#: truncated, not the format its name says, not UTF-8, …).
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError, IndexError, KeyError, MemoryError)


def _read_file(path: Path, spec: TableSpec, digests: dict[str, str] | None = None) -> tuple[pa.Table | Converted, bool]:
    """One file's table with the contract's columns present in it; and whether it is text (CSV).

    The file is read into memory once; ``digests`` gets the SHA-256 of those bytes."""
    from .keep import check_file, claims_spec

    spec = claims_spec(spec)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError("unknown file type: expected .parquet, .arrow/.feather/.ipc or .csv", path)
    if path.is_dir() or not path.exists():
        raise InputError(f"the {spec.name} file does not exist", path)
    wanted = [c.name for c in spec.columns]
    what = {"parquet": "Parquet", "ipc": "Arrow IPC", "csv": "CSV"}[kind]
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = pa.py_buffer(raw)
        # the digest of the very bytes parsed, taken on a second thread while they are
        # parsed (hashlib releases the GIL): off the read's critical path
        hashing = _background(lambda: hashlib.sha256(raw).hexdigest())
        if data.size == 0:
            raise InputError(f"the file is empty (0 bytes); expected a {what} file with the {spec.name} columns", path)
        table: pa.Table | Converted | None = None
        if kind == "parquet":
            schema = pq.read_schema(pa.BufferReader(data))
            names = schema.names
            _check_columns(spec, names, path)
            coded = [
                c
                for c in DICTIONARY_COLUMNS.get(spec.name, ())
                if c in names and schema.field(c).type in (pa.string(), pa.large_string())
            ]
            columns = [c for c in wanted if c in names]
            if spec.name == "claims":  # the big table: row group by row group, straight to engine form
                table = _parquet_converted(
                    path, spec, data, columns, [c for c in coded if c not in CODED_WHILE_READ.get(spec.name, ())]
                )
            if table is None:
                table = pq.read_table(pa.BufferReader(data), columns=columns, read_dictionary=coded)
        elif kind == "ipc":
            table = _read_ipc(data)
        else:
            # CSV text is read as exactly what it says: every contract column as
            # text, converted below with the same checks as typed input.
            encoding = CSV_ENCODING.get()
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(encoding="utf8" if encoding in ("auto", "utf-8") else encoding),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in wanted},
                    strings_can_be_null=True,
                    null_values=[""],
                    quoted_strings_can_be_null=True,
                ),
            )
        names = table.column_names
        if spec.name == "claims":
            check_file(names, path)
    except InputError:
        raise
    except pa.ArrowInvalid as e:
        if kind == "csv" and "UTF8" in str(e) and CSV_ENCODING.get() in ("auto", "utf-8"):
            raise InputError(f"is not UTF-8 text ({_guess_encoding(path)}", path) from None
        raise InputError(f"cannot be read as {what} (corrupt, truncated or not {what}): {_clean(e)}", path) from None
    except UnicodeDecodeError as e:
        raise InputError(
            f"cannot be decoded as {CSV_ENCODING.get()} text ({e.reason} at byte {e.start}); check --encoding", path
        ) from None
    except _READ_ERRORS as e:
        raise InputError(f"cannot be read as {what} (corrupt, truncated or not {what}): {_clean(e)}", path) from None
    _check_columns(spec, names, path)
    if digests is not None:
        digests[str(path)] = hashing.result()
    if isinstance(table, Converted):
        return table, False
    return table.select([c for c in wanted if c in names]), kind == "csv"


@dataclass
class Converted:
    """One Parquet file's columns already in engine form: (value, null mask) by name, as
    ``_convert`` gives them for the whole file, and its row count."""

    columns: dict[str, tuple[Any, np.ndarray]]
    rows: int
    codes: dict[str, tuple[np.ndarray, pa.Array]] = field(default_factory=dict)  # as ``Table.codes``

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return self.rows


def _parquet_converted(
    path: Path, spec: TableSpec, data: pa.Buffer, columns: list[str], coded: list[str]
) -> Converted | None:
    """A Parquet file read row group by row group, each group's columns converted
    (``_convert``) into arrays of the whole file's length allocated once, and the
    group dropped before the next is decoded: no column of the file is ever held
    whole in Arrow form (16-byte decimals, 8-byte floats, a second copy of the
    claim ids), and the conversions' temporaries are a row group long, so their
    pages are reused. The next group is decoded on a helper thread while this one
    is converted (both release the GIL).

    None when anything is wrong with the file: the caller then reads it whole, the
    plain way, which raises the error (the same one, for the same row) or reads it.
    """
    try:
        # amounts and prices stored as fixed-length decimals of the engine's scale are read as
        # their bytes (rawdecimal.py): Arrow's 16-byte decimals cost half of the decode
        raw = raw_metadata(data, {c.name: RAW_SCALE[c.kind] for c in spec.columns if c.kind in RAW_SCALE})
        pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=coded, metadata=raw[0] if raw else None)
        raw_columns = raw[1] if raw else {}
        groups = pf.metadata.num_row_groups
        n = pf.metadata.num_rows
        if groups < 1 or n < 1:  # nothing to gain: read whole
            return None
        cols = [spec.column(c) for c in columns]
        values: dict[str, Any] = {}  # an ndarray or _Strings of the file's length, or a list of Arrow pieces
        coders = {c: _Coder(n) for c in CODED_WHILE_READ.get(spec.name, ()) if c in columns and n < 2**31}
        nulls: dict[str, np.ndarray] = {}  # made when a null is first seen (np.zeros: pages never written)

        def read(k: int) -> pa.Table:
            return pf.read_row_group(k, columns=columns, use_threads=True)

        coding: list[Future[None]] = []  # the coders' work, one group after another on their own thread
        with thread_pool(1, "adjudicate-read") as pool, thread_pool(1, "adjudicate-code") as coder:
            at = 0
            ahead = pool.submit(read, 0)
            for k in range(groups):
                group = ahead.result()
                if k + 1 < groups:
                    ahead = pool.submit(read, k + 1)
                m = len(group)
                if not m:  # an empty row group adds nothing (and its Arrow buffers may be absent)
                    continue
                for col in cols:
                    if col.name in raw_columns:  # straight into the file's array: no copy
                        if col.name not in values:
                            values[col.name] = np.empty(n, np.int64)
                        into = values[col.name][at : at + m]
                        v, null = _raw_converted(col, group.column(col.name), raw_columns[col.name], spec, into)
                    else:
                        v, null = _convert(path, col, group.column(col.name), False, spec)
                    if null.any():
                        nulls.setdefault(col.name, np.zeros(n, bool))[at : at + m] = null
                    out = values.get(col.name)
                    if col.name in coders and isinstance(v, pa.Array) and v.type == pa.string():
                        out = values[col.name] = coders[col.name]
                    elif out is None and isinstance(v, np.ndarray):
                        out = values[col.name] = np.empty(n, v.dtype)
                    elif out is None and col.kind == "string" and isinstance(v, pa.Array) and v.type == pa.string():
                        out = values[col.name] = _Strings(n)
                    if isinstance(out, np.ndarray):
                        if col.name not in raw_columns:  # (those are written in place)
                            out[at : at + m] = v
                    elif isinstance(out, _Coder):
                        # the ids are hashed while this thread converts the other columns (both
                        # release the GIL): in shuffled rows nearly every id is a miss in a big table
                        coding.append(coder.submit(out.add, v, n - at))
                    elif isinstance(out, _Strings):
                        out.add(v, n - at)
                    else:
                        values.setdefault(col.name, []).append(v)
                del group
                at += m
            for job in coding:
                job.result()  # in order: the first coder error, as before
        if at != n:
            return None
    except (InputError, *_READ_ERRORS):
        return None
    done: dict[str, tuple[Any, np.ndarray]] = {}
    codes: dict[str, tuple[np.ndarray, pa.Array]] = {}
    for col in cols:
        v = values[col.name]
        null = nulls[col.name] if col.name in nulls else np.zeros(n, bool)
        if isinstance(v, _Coder):
            codes[col.name] = v.codes, v.dictionary()
            v = pa.chunked_array([v.array(null, codes[col.name][1])])
        elif isinstance(v, _Strings):
            v = v.array(null)
        elif isinstance(v, list):
            if all(isinstance(piece, pa.ChunkedArray) for piece in v):  # dictionary-read: its chunks, as read
                v = pa.chunked_array([c for piece in v for c in piece.chunks], v[0].type)
            else:
                v = pa.concat_arrays([strings(piece) if col.kind == "string" else piece for piece in v])
        done[col.name] = (v, null)
    return Converted(done, n, codes)


#: Per kind of number: the scale of the engine's integers (units of 10**-scale), whether a value
#: must be a whole number of them, and the largest magnitude allowed (contract §1).
SCALED = {
    "amount": (2, False, MAX_FEN),
    "ratio": (4, True, 10**10),
    "price": (PRICE_SCALE, True, MAX_FEN * 10 ** (PRICE_SCALE - 2)),
    "quantity": (QUANTITY_SCALE, False, 10**16),
}
#: The kinds of column a Parquet decimal of the engine's scale is read raw for, and that scale.
RAW_SCALE = {kind: SCALED[kind][0] for kind in ("amount", "price")}


def _raw_converted(
    col, arr: pa.ChunkedArray, raw: RawDecimal, spec: TableSpec, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``_convert`` of a decimal column read as its stored bytes (``raw_metadata``), written into
    ``value`` (int64, one per value), for values it accepts: any value it would reject (too large,
    negative where it must not be, null where required) raises InputError, whereupon the file is
    read again as Arrow reads it, and ``_convert`` names the row and the value."""
    arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type != pa.binary(raw.width) or len(value) != len(arr):
        raise InputError("not the raw decimal read")
    unscaled(arr, raw.width, value)
    nulls = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else np.zeros(len(arr), bool)
    limit = SCALED[col.kind][2]
    if len(value) and (
        int(value.max()) > limit
        or int(value.min()) < (0 if col.nonnegative else -limit)
        or (not col.nullable and not spec.nulls_reject and arr.null_count)
    ):
        raise InputError("a value to name")
    return value, nulls


def grouped_estimate(code: np.ndarray, distinct: int, rows: int) -> int:
    """The distinct values of a column of ``rows`` values whose first piece has codes ``code``
    (``distinct`` of them, numbered from 0 in order of first appearance), if the rows come
    grouped: each value's rows together (a claim's lines, as exported in date or member
    order), the piece showing the column's rows per value. 0 when the rows do not look
    grouped (a shuffled file: there the first piece tells little of the whole)."""
    runs = 1 + int(np.count_nonzero(code[1:] != code[:-1]))
    if runs > distinct + distinct // 8 + 1:  # values met in several runs: not grouped
        return 0
    return distinct * rows // len(code)


class _Coder:
    """A string column of ``n`` values coded piece by piece as it is read
    (``_encode.StringCoder``): per value its code, and each distinct value once."""

    def __init__(self, n: int) -> None:
        from . import _encode

        self.coder = _encode.StringCoder(n)  # room for n distinct values: the table grows where it is
        self.codes = np.empty(n, np.int32)
        self.rows = 0

    def add(self, arr: pa.Array, left: int) -> None:
        """Code ``arr``, the next values (``left``: how many are still to come, ``arr``'s among them)."""
        validity, offsets, data = arr.buffers()
        code = self.codes[self.rows : self.rows + len(arr)]
        self.coder.add(
            np.frombuffer(validity, np.uint8) if validity is not None and arr.null_count else np.empty(0, np.uint8),
            arr.offset,
            np.frombuffer(offsets, np.int32) if offsets is not None else np.zeros(arr.offset + len(arr) + 1, np.int32),
            np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8),
            code,
        )
        if self.rows == 0 and left > len(arr) >= 1 << 16:
            self.coder.reserve(grouped_estimate(code, len(self.coder), left))
        self.rows += len(arr)

    def dictionary(self) -> pa.Array:
        """The distinct values, in order of first appearance."""
        offsets, data = self.coder.dictionary()
        return pa.Array.from_buffers(pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])

    def array(self, nulls: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
        """The column as a dictionary array (its codes are not copied)."""
        validity = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
        indices = pa.Array.from_buffers(
            pa.int32(), self.rows, [validity, pa.py_buffer(self.codes)], null_count=int(nulls.sum())
        )
        return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)


class _Strings:
    """A string column of ``n`` values built piece by piece in buffers of its own: what
    ``pa.concat_arrays`` of the pieces gives, without holding every piece until the end."""

    def __init__(self, n: int) -> None:
        self.offsets = np.empty(n + 1, np.int32)
        self.offsets[0] = 0
        self.data = np.empty(0, np.uint8)
        self.rows = 0

    def add(self, arr: pa.Array, left: int) -> None:
        """Append ``arr``; ``left`` values (``arr``'s among them) are still to come."""
        _, offsets, data = arr.buffers()
        off = np.frombuffer(offsets, np.int32)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
        start, end = int(off[0]), int(off[-1])
        used = int(self.offsets[self.rows])
        if used + end - start > np.iinfo(np.int32).max:
            raise ValueError("more than 2 GiB of text in one column")
        if used + end - start > len(self.data):
            # room for what is left at this piece's bytes per value, and some: pages never written cost nothing
            want = used + (end - start) * left // max(len(arr), 1) * 5 // 4 + (1 << 16)
            grown = np.empty(min(max(want, used + end - start), np.iinfo(np.int32).max), np.uint8)
            grown[:used] = self.data[:used]
            self.data = grown
        if end > start:
            self.data[used : used + end - start] = np.frombuffer(data, np.uint8)[start:end]
        self.offsets[self.rows + 1 : self.rows + 1 + len(arr)] = off[1:] + (used - start)
        self.rows += len(arr)

    def array(self, nulls: np.ndarray) -> pa.Array:
        validity = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
        used = int(self.offsets[self.rows])
        return pa.Array.from_buffers(
            pa.string(),
            self.rows,
            [validity, pa.py_buffer(self.offsets), pa.py_buffer(self.data[:used])],
            null_count=int(nulls.sum()),
        )


def _clean(e: BaseException) -> str:
    """The first line of a reader's message, printable and short (it may quote binary junk)."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    first = "".join(ch if ch.isprintable() else "?" for ch in first)
    return first if len(first) <= 160 else first[:157] + "..."


def _read_ipc(data: pa.Buffer) -> pa.Table:
    """Arrow IPC in the file (Feather v2) format, else the stream format, else Feather v1.

    IPC buffers are taken as they are on disk, so they are validated in full:
    a corrupt offset must be an error here, not a crash later.
    """
    try:
        table = feather.read_table(pa.BufferReader(data))
    except pa.ArrowInvalid as file_error:
        try:
            with pa.BufferReader(data) as f:
                table = pa.ipc.open_stream(f).read_all()
        except _READ_ERRORS:
            raise file_error from None
    table.validate(full=True)
    return table


def _check_columns(spec: TableSpec, names: Sequence[str], path: str | Path) -> None:
    seen = [n for n in names if n in {c.name for c in spec.columns}]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise InputError(f"column {twice[0]!r} appears more than once", path, twice[0])
    missing = [c.name for c in spec.columns if c.name not in names and not c.nullable]
    if missing:
        lower = {str(n).strip().lower(): n for n in names}
        hints = [f"{lower[m]!r} for {m!r}" for m in missing if m in lower]
        hint = f" (column names are case-sensitive: found {', '.join(hints)})" if hints else ""
        raise InputError(
            f"missing required column(s) {', '.join(repr(m) for m in missing)} "
            f"of the {spec.name} table (contract §2){hint}",
            path,
        )


def load(spec: TableSpec, paths: Iterable[str | Path], threads: int = 2) -> Table:
    """Read, check, convert and concatenate one logical table (all its files).

    Columns are converted on ``threads`` threads (Arrow and NumPy release the
    GIL). Should several columns be bad, the error raised is the first column's
    in contract order, whatever the threads did first.
    """
    from .keep import claims_spec

    spec = claims_spec(spec)  # with the columns of --keep
    files = expand_paths(paths, spec.name)
    digests: dict[str, str] = {}
    parts = [_read_file(path, spec, digests) for path in files]
    return from_arrow(spec, files, parts, threads, {str(f): digests[str(f)] for f in files})


def from_arrow(
    spec: TableSpec,
    files: Sequence[str | Path],
    parts: Sequence[tuple[pa.Table | Converted, bool]],
    threads: int = 2,
    digests: dict[str, str] | None = None,
) -> Table:
    """``load`` on tables already read: one (table, is_text) per file, in file order.

    The columns present must be the contract's (as ``_read_file`` leaves them);
    errors name ``files[k]`` and the row within ``parts[k]``.
    """
    from .keep import claims_spec

    spec = claims_spec(spec)
    files = list(files)
    sizes = [len(t) for t, _ in parts]
    # one file needs no map of rows to files (``Table.where``): no per-row array
    file_of_row = np.repeat(np.arange(len(files), dtype=np.int32), sizes) if len(files) > 1 else None
    values = Columns()
    table = Table(spec, files, values, {}, int(sum(sizes)), dict(digests or {}), file_of_row)

    def column(col) -> tuple[Any, np.ndarray]:
        values, nulls = [], []
        for path, (t, text) in zip(files, parts):
            if isinstance(t, Converted):  # converted while read
                v, n = (
                    t.columns[col.name] if col.name in t.columns else _convert(path, col, pa.nulls(len(t)), False, spec)
                )
            else:
                arr = t.column(col.name) if col.name in t.column_names else pa.nulls(len(t))
                v, n = _convert(path, col, arr, text, spec)
            values.append(v)
            nulls.append(n)
        if col.kind == "keep":  # an agency's own column (keep.py), as read
            value = _concat_kept(col.name, files, values)
        elif col.kind in ("string",):
            if all(isinstance(v, pa.ChunkedArray) and v.type == values[0].type for v in values):  # all coded
                value = pa.chunked_array([c for v in values for c in v.chunks], values[0].type)
            else:
                values = [strings(v) for v in values]
                value = pa.concat_arrays(values) if len(values) != 1 else values[0]
        else:
            value = _joined(values)
        return value, _joined(nulls)

    if threads > 1 and table.rows >= 100_000:
        with thread_pool(threads, "adjudicate-convert") as pool:
            futures = [pool.submit(column, col) for col in spec.columns]
            done = [f.exception() or f.result() for f in futures]  # inside: a Ctrl-C here is not held
    else:
        done = []
        for col in spec.columns:
            try:
                done.append(column(col))
            except InputError as e:
                done.append(e)
                break
    if len(parts) == 1 and isinstance(parts[0][0], Converted):
        table.codes = dict(parts[0][0].codes)
    values.order = [col.name for col in spec.columns]
    for col, got in zip(spec.columns, done):
        if isinstance(got, BaseException):
            raise got
        value, table.nulls[col.name] = got
        if isinstance(value, pa.ChunkedArray):
            values.lazy[col.name] = value
        else:
            table.values[col.name] = value
        if col.kind == "amount":
            _check_sum(table, col.name)
    return table


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The files' arrays end to end. One file's array is kept as it is (a copy of
    millions of values only costs time and fresh pages) unless it is a read-only view
    of Arrow's buffers: callers get arrays they may write, as before."""
    if len(parts) == 1 and parts[0].flags.writeable:
        return parts[0]
    return np.concatenate(parts)


#: Date columns must lie within these bounds (days since 1970-01-01).
DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(9999, 12, 31)
_EPOCH = dt.date(1970, 1, 1)
_DAY_MIN, _DAY_MAX = (DATE_MIN - _EPOCH).days, (DATE_MAX - _EPOCH).days

#: What each kind of column holds, for error messages.
EXPECTED = {
    "string": "text (string)",
    "enum": "text (string)",
    "date": "a date (date32, or text YYYY-MM-DD)",
    "bool": "true or false (bool)",
    "int": "a whole number (integer)",
    "amount": "an amount in yuan (decimal128, int64 or float64)",
    "price": "a price in yuan, exact to 0.0001 (decimal128, int64 or float64)",
    "ratio": "a ratio as a fraction, e.g. 0.15 (decimal or float64)",
    "quantity": "a quantity (float64, decimal or integer)",
}
_TRUE = set(TRUE_WORDS)
_FALSE = set(FALSE_WORDS)


def _concat_kept(name: str, files: Sequence[str | Path], values: list) -> pa.Array:
    """A kept column of several files as one array: the same type in every file (text counts as one)."""
    values = [v.cast(pa.string()) if _is_text(v.type) else v for v in values]
    for path, v in zip(files, values):
        if v.type != values[0].type and not pa.types.is_null(v.type) and not pa.types.is_null(values[0].type):
            raise InputError(
                f"holds {v.type}, but {values[0].type} in {files[0]}: a column of --keep has one type in every file",
                path,
                name,
            )
    typ = next((v.type for v in values if not pa.types.is_null(v.type)), pa.string())
    values = [v.cast(typ) for v in values]
    return pa.concat_arrays(values) if len(values) != 1 else values[0]


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _first_failing(arr: pa.Array, convert) -> int:
    """Row of the first value ``convert`` fails on, found by bisection (``convert`` fails on ``arr``)."""
    lo, hi = 0, len(arr)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(arr.slice(lo, mid - lo))
        except (pa.ArrowException, ValueError, OverflowError):
            hi = mid
        else:
            lo = mid
    return lo


def _value(arr: pa.Array, row: int) -> str:
    """One value for an error message: text quoted, anything else as Arrow prints it; short."""
    try:
        v = arr[row].as_py()
        s = repr(v) if isinstance(v, (str, bytes)) else str(v)
    except Exception:  # noqa: BLE001 - only for the message (e.g. a date Python cannot hold)
        s = str(arr.slice(row, 1).to_string(window=1)).replace("\n", " ").strip("[] ")
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return s if len(s) <= 60 else s[:57] + "..."


def _convert(
    path: str | Path, col, arr: pa.Array | pa.ChunkedArray, text: bool, spec: TableSpec
) -> tuple[Any, np.ndarray]:
    """One file's column in engine form, and its null mask; errors name this file's row."""
    if (
        col.kind in ("string", "enum")
        and isinstance(arr, pa.ChunkedArray)
        and pa.types.is_dictionary(arr.type)
        and _is_text(arr.type.value_type)
    ):
        return _convert_coded(path, col, arr, spec)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    n = len(arr)
    nulls = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else np.zeros(n, bool)
    if pa.types.is_null(t):
        nulls = np.ones(n, bool)
    if col.kind == "keep":
        return arr, nulls
    if not col.nullable and not spec.nulls_reject and nulls.any():
        raise InputError(
            f"is null but the column is required; expected {EXPECTED[col.kind]}",
            path,
            col.name,
            int(np.flatnonzero(nulls)[0]),
        )
    kind = col.kind
    if pa.types.is_null(t):
        empty = {
            "string": pa.nulls(n, pa.string()),
            "enum": np.full(n, -1, np.int8),
            "date": np.zeros(n, np.int32),
            "bool": np.zeros(n, bool),
        }
        return empty.get(kind, np.zeros(n, np.int64)), nulls

    def type_error() -> InputError:
        return InputError(f"has type {t}; expected {EXPECTED[kind]}", path, col.name)

    if kind in ("string", "enum"):
        if not (
            _is_text(t)
            or (kind == "string" and (pa.types.is_integer(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)))
        ):
            raise type_error()
        try:
            strings = pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            row = _first_failing(arr, lambda a: pc.cast(a, pa.string()))
            raise InputError(f"value {_value(arr, row)} is not valid UTF-8 text", path, col.name, row) from None
        if kind == "string":
            return strings, nulls
        names, code_of = _enum_names(col.enum)
        codes = np.asarray(pc.fill_null(pc.take(code_of, pc.index_in(strings, value_set=names)), -1), dtype=np.int8)
        bad = (codes < 0) & ~nulls
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            aliases = "/".join(ENUM_ALIASES.get(col.enum, {}))
            raise InputError(
                f"unknown value {_value(strings, row)}; expected one of "
                + ", ".join(col.enum)
                + " (case-sensitive)"
                + (f" or a Chinese alias ({aliases}; docs/data-dictionary.md)" if aliases else ""),
                path,
                col.name,
                row,
            )
        return codes, nulls
    if kind == "date":
        return _to_days(path, col, arr, nulls, type_error), nulls
    if kind == "bool":
        return _to_bool(path, col, arr, nulls, type_error), nulls
    if kind == "int":
        return _to_int(path, col, arr, nulls, text, type_error), nulls
    # amounts, ratios, quantities
    if not (pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or (text and _is_text(t))):
        raise type_error()
    scale, exact, limit = SCALED[kind]
    inexact = (
        ("{what} {value} has more than four decimals that are not zero; prices are exact to 0.0001 yuan (contract §1)")
        if kind == "price"
        else None
    )
    try:
        value = to_scaled(arr, scale, kind, exact=exact, limit=limit, from_text=text, inexact=inexact)
    except AmountError as e:
        raise InputError(str(e), path, col.name, e.row) from None
    if col.nonnegative:
        bad = (value < 0) & ~nulls
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{kind} {_value(arr, row)} is negative; {col.name} must be 0 or more", path, col.name, row
            )
    if kind == "ratio":
        bad = ((value < 0) | (value > 10_000)) & ~nulls
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"ratio {_value(arr, row)} is outside 0..1 (a fraction: 0.15 means 15 %)", path, col.name, row
            )
    return value, nulls


def _convert_coded(path: str | Path, col, arr: pa.ChunkedArray, spec: TableSpec) -> tuple[Any, np.ndarray]:
    """A dictionary-read text column: strings stay codes (one chunk each), enums
    become int8 codes through their dictionaries; same checks as ``_convert``."""
    n = len(arr)
    nulls = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else np.zeros(n, bool)
    if not col.nullable and not spec.nulls_reject and nulls.any():
        raise InputError(
            f"is null but the column is required; expected {EXPECTED[col.kind]}",
            path,
            col.name,
            int(np.flatnonzero(nulls)[0]),
        )
    if col.kind == "string":
        return arr, nulls
    names, code_of = _enum_names(col.enum)
    # each dictionary value's code, gathered straight into int8: no per-line position array
    codes = dictionary_lookup(arr, names, np.int8, np.asarray(code_of, dtype=np.int8))
    bad = (codes < 0) & ~nulls if len(codes) and int(codes.min()) < 0 else None  # -1: unknown or null
    if bad is not None and bad.any():
        row = int(np.flatnonzero(bad)[0])
        aliases = "/".join(ENUM_ALIASES.get(col.enum, {}))
        raise InputError(
            f"unknown value {_value(arr, row)}; expected one of "
            + ", ".join(col.enum)
            + " (case-sensitive)"
            + (f" or a Chinese alias ({aliases}; docs/data-dictionary.md)" if aliases else ""),
            path,
            col.name,
            row,
        )
    return codes, nulls


#: Dictionary values looked up in one ``index_in`` call at most (``dictionary_lookup``).
LOOKUP_BATCH = 1 << 22


def find_positions(values: pa.Array, value_set: pa.Array, dtype: type = np.int64) -> np.ndarray:
    """Position in ``value_set`` of each value (-1 where absent or null): ``pc.index_in``, or
    for plain strings without nulls a compiled lookup that fetches its probes ahead
    (``_encode.string_positions``: several times faster on a set as large as the members)."""
    if (
        values.type == pa.string()
        and value_set.type == pa.string()
        and not values.null_count
        and not value_set.null_count
        and len(value_set) < 2**31
    ):
        from . import _encode

        out = np.empty(len(values), np.int32)
        if len(values):
            set_offsets, set_data = _string_buffers(value_set)
            offsets, data = _string_buffers(values)
            _encode.string_positions(set_offsets, set_data, offsets, data, out)
        return out if dtype is np.int32 else out.astype(dtype)
    return np.asarray(pc.fill_null(pc.index_in(values, value_set=value_set), -1), dtype=dtype)


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (one more than its values) and data bytes, as NumPy views."""
    _, offsets, data = arr.buffers()
    if offsets is None:
        return np.zeros(1, np.int32), np.empty(0, np.uint8)
    off = np.frombuffer(offsets, np.int32)[arr.offset : arr.offset + len(arr) + 1]
    return off, np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)


def dictionary_lookup(
    arr: pa.ChunkedArray, value_set: pa.Array, dtype: type = np.int64, mapped: np.ndarray | None = None
) -> np.ndarray:
    """Position in ``value_set`` of each value of a dictionary-encoded column (-1 where
    absent or null): each chunk's small dictionary is looked up, then its codes
    are gathered, so no per-line string is hashed. ``dtype`` np.int32 halves the
    per-line array where the caller takes it (encode). With ``mapped`` (one value of
    ``dtype`` per value of ``value_set``), each line gets ``mapped`` at its position
    instead (-1 still where absent or null): mapped per dictionary value, not per line."""
    out: np.ndarray = np.empty(len(arr), dtype)
    # The batches of one Parquet row group share one dictionary (as large as the members
    # table, for member_id): it is looked up once, not once per batch. The distinct
    # dictionaries are looked up together, a few million values a call: ``index_in``
    # hashes the value set on every call, which costs more than the lookups.
    slot: dict[tuple, int] = {}
    dictionaries: list[pa.Array] = []
    which: list[int] = []
    for chunk in arr.chunks:
        d = chunk.dictionary
        key = (d.offset, len(d), *((b.address, b.size) if b is not None else None for b in d.buffers()))
        if key not in slot:
            slot[key] = len(dictionaries)
            dictionaries.append(d)
        which.append(slot[key])
    positions: list[np.ndarray] = []
    k = 0
    while k < len(dictionaries):
        batch = [dictionaries[k]]
        size = len(batch[0])
        while k + len(batch) < len(dictionaries) and size + len(dictionaries[k + len(batch)]) <= LOOKUP_BATCH:
            size += len(dictionaries[k + len(batch)])
            batch.append(dictionaries[k + len(batch)])
        pos = find_positions(batch[0] if len(batch) == 1 else pa.concat_arrays(batch), value_set, dtype)
        if mapped is not None:
            pos = np.where(pos >= 0, mapped[np.maximum(pos, 0)], -1).astype(dtype)
        at = 0
        for d in batch:
            positions.append(np.append(pos[at : at + len(d)], -1))  # -1: the code of a null
            at += len(d)
        k += len(batch)
    at = 0
    for chunk, i in zip(arr.chunks, which):
        pos = positions[i]
        ind = chunk.indices
        if ind.null_count == 0 and ind.type == pa.int32() and len(ind):  # its buffer as it is: no copy
            idx = np.frombuffer(ind.buffers()[1], np.int32)[ind.offset : ind.offset + len(ind)]
        else:
            idx = np.asarray(pc.fill_null(ind, len(pos) - 1), dtype=np.int32)
        np.take(pos, idx, out=out[at : at + len(chunk)])
        at += len(chunk)
    return out


def _enum_names(enum: tuple[str, ...]) -> tuple[pa.Array, pa.Array]:
    """Every accepted spelling of an enum (the codes, then their aliases) and the code of each."""
    aliases = ENUM_ALIASES.get(enum, {})
    names = list(enum) + list(aliases)
    codes = list(range(len(enum))) + [enum.index(v) for v in aliases.values()]
    return pa.array(names, pa.string()), pa.array(codes, pa.int8())


def _iso_dates(arr: pa.Array) -> pa.Array:
    """Dates written 2024/1/1, 2024.1.1, 2024-1-1 or 2024年1月1日, as zero-padded ISO text (vectorised)."""
    s = pc.replace_substring_regex(
        pc.utf8_trim_whitespace(arr), r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$", r"\1-\2-\3"
    )
    s = pc.replace_substring_regex(s, r"^(\d{4})-(\d)-", r"\1-0\2-")
    return pc.replace_substring_regex(s, r"^(\d{4}-\d{2})-(\d)$", r"\1-0\2")


def _text_to_date(arr: pa.Array) -> pa.Array:
    try:
        return pc.cast(arr, pa.date32())  # ISO text: the fast path
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pc.cast(_iso_dates(arr), pa.date32())


def _to_days(path: str | Path, col, arr: pa.Array, nulls: np.ndarray, type_error) -> np.ndarray:
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date64(t):

        def midnight(a: pa.Array) -> pa.Array:
            day = pc.cast(a, pa.date32())  # a timezone-aware timestamp gives its local date
            if not pc.all(pc.fill_null(pc.equal(pc.cast(day, t), a), True)).as_py():
                raise ValueError("not at midnight")
            return day

        try:
            day = midnight(arr)
        except (pa.ArrowException, ValueError):
            row = _first_failing(arr, midnight)
            raise InputError(
                f"value {_value(arr, row)} is not a date (a timestamp at midnight)", path, col.name, row
            ) from None
    elif pa.types.is_date32(t):
        day = arr
    elif _is_text(t):
        arr = pc.cast(arr, pa.string())
        try:
            day = _text_to_date(arr)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            row = _first_failing(arr, _text_to_date)
            raise InputError(
                f"value {_value(arr, row)} is not a date; expected YYYY-MM-DD (or 2024/1/1, 2024年1月1日)",
                path,
                col.name,
                row,
            ) from None
    else:
        raise type_error()
    days = np.asarray(pc.fill_null(day.cast(pa.int32()), 0), dtype=np.int32)
    if not len(days) or (_DAY_MIN <= int(days.min()) and int(days.max()) <= _DAY_MAX):
        return days  # every date in range (nulls are 0 already): no column-length temporaries
    out = ((days < _DAY_MIN) | (days > _DAY_MAX)) & ~nulls
    if out.any():
        row = int(np.flatnonzero(out)[0])
        raise InputError(
            f"date {np.datetime64(int(days[row]), 'D')} is out of range; expected a date from {DATE_MIN} to {DATE_MAX}",
            path,
            col.name,
            row,
        )
    return days


def _to_bool(path: str | Path, col, arr: pa.Array, nulls: np.ndarray, type_error) -> np.ndarray:
    t = arr.type
    if pa.types.is_boolean(t):
        return np.asarray(pc.fill_null(arr, False), dtype=bool)
    if pa.types.is_integer(t):
        v = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
        bad = (v != 0) & (v != 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"value {_value(arr, row)} is not true or false (1 or 0)", path, col.name, row)
        return v == 1
    if _is_text(t):
        low = pc.utf8_lower(pc.cast(arr, pa.string()))
        true = np.asarray(pc.fill_null(pc.is_in(low, value_set=pa.array(sorted(_TRUE))), False), dtype=bool)
        false = np.asarray(pc.fill_null(pc.is_in(low, value_set=pa.array(sorted(_FALSE))), False), dtype=bool)
        bad = ~true & ~false & ~nulls
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"value {_value(arr, row)} is not true or false", path, col.name, row)
        return true
    raise type_error()


def _to_int(path: str | Path, col, arr: pa.Array, nulls: np.ndarray, text: bool, type_error) -> np.ndarray:
    t = arr.type
    lo, hi = col.int_range or (-(2**62), 2**62)
    # int32 where the column's range fits (line_no): half the bytes per line of int64
    dtype = np.int32 if -(2**31) <= lo and hi < 2**31 else np.int64
    if pa.types.is_integer(t):
        raw = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
        if len(raw) and lo <= int(raw.min()) and int(raw.max()) <= hi:
            # every value in range (nulls are 0 already): one copy, no column-length temporaries
            return raw.astype(dtype)
        if raw.dtype.kind == "u":
            out = raw > np.uint64(hi)
        else:
            out = (raw < lo) | (raw > hi)
        whole = np.ones(len(arr), bool)
        v = np.where(out, 0, raw).astype(np.int64)
    elif pa.types.is_floating(t):
        x = np.asarray(pc.fill_null(arr, 0).cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        whole = np.isfinite(x) & (np.floor(x) == x)
        out = whole & ((x < lo) | (x > hi))
        v = np.where(whole & ~out, x, 0).astype(np.int64)
    elif pa.types.is_decimal(t) or (text and _is_text(t)):
        try:
            scaled = to_scaled(arr, 0, "value", exact=True, limit=max(abs(lo), abs(hi)), from_text=text)
        except AmountError as e:
            row = e.row if e.row is not None else 0
            raise InputError(
                f"value {_value(arr, row)} is not a whole number within {lo}..{hi}", path, col.name, row
            ) from None
        whole = np.ones(len(arr), bool)
        out = (scaled < lo) | (scaled > hi)
        v = scaled
    else:
        raise type_error()
    whole |= nulls
    out &= ~nulls
    if not whole.all():
        row = int(np.flatnonzero(~whole)[0])
        raise InputError(f"value {_value(arr, row)} is not a whole number", path, col.name, row)
    if out.any():
        row = int(np.flatnonzero(out)[0])
        raise InputError(f"value {_value(arr, row)} is outside {lo}..{hi}", path, col.name, row)
    return np.where(nulls, 0, v).astype(dtype)


def _check_sum(table: Table, name: str) -> None:
    """Sums of any of the column's amounts must fit the engine's int64 fen (contract §1)."""
    v = table.values[name]
    if len(v) * MAX_FEN < 2**62 or len(v) * max(-int(v.min()), int(v.max())) < 2**62:  # no temporary array
        return
    if float(np.abs(v).sum(dtype=np.float64)) <= 2.0**62:
        return
    running = np.cumsum(np.abs(v).astype(np.float64))
    over = running > 2.0**62
    if over.any():
        path, row = table.where(int(np.flatnonzero(over)[0]))
        raise InputError(
            "the magnitudes of this column's amounts add up to more than the engine's 64-bit "
            "fen can hold exactly (contract §1); adjudicate fewer claims per run",
            path,
            name,
            row,
        )
