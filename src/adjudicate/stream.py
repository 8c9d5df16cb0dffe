"""Streaming: adjudicate claims larger than memory, one member range at a time.

Members are independent (contract §3), so the claims can be cut by member:

1. **Partition.** The claim files are read once, batch by batch; each line goes to
   the partition of its member's range (members sorted by ``member_id`` bytes,
   cut into equal ranges) and is appended to an uncompressed Arrow IPC stream file,
   with its original row number (see ``Partitioner``). Lines whose member is null or
   unknown go to a last, *orphan* partition, and so do all lines of a claim that
   lands in more than one partition (its lines disagree on ``member_id``).
2. **Settle.** Each partition is memory-mapped, checked and adjudicated exactly like
   an in-memory run, and its outputs are appended to the output files. The
   ranges follow the settlement order, so the concatenated outputs are the
   same, row for row, as one in-memory run. Orphan claims can only be
   rejected (their member is null, unknown or inconsistent).

Only one partition is in memory at a time, plus the members, providers and
catalogue tables.
"""

from __future__ import annotations

import contextvars
import json
import math
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ._partition import Router, decimal64
from .engine import Inputs, Prepared, Result, Timer, adjudicate, first_year, prepare
from .errors import InputError
from .inputs import (
    CSV_ENCODING,
    DICTIONARY_COLUMNS,
    SUFFIXES,
    Table,
    digest_while_reading,
    expand_paths,
    from_arrow,
    load,
    strings,
)
from .money import yuan
from .outdir import signals_held
from .outputs import (
    atomic_dir,
    claim_amounts,
    count_rejected_claims,
    lines_table,
    parquet_options,
    rejected_rows_table,
    settlements_table,
    summary,
    write_parquet,
)
from .policy import Policy
from .report import write_report
from .report.builders import RunFigures, merged_figures, run_figures
from .schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS
from .threads import serial, thread_pool

ROW = "__row"  # original row number, kept in the partition files for error messages
PARTITIONS = ".partitions"  # folder of the partition files, inside the output's temporary folder
#: Lines per partition when streaming is chosen automatically (about 2 GB each).
LINES_PER_PARTITION = 2_500_000
#: Peak memory of the in-memory path per input line, measured on generated data
#: (about 0.7 GB RSS for 1M lines, Python and libraries included), with margin.
BYTES_PER_LINE = 800


def count_lines(paths: Sequence[Path]) -> int | None:
    """Lines in the claim files, from Parquet/IPC metadata (None if unknown, e.g. CSV)."""
    total = 0
    for p in paths:
        kind = SUFFIXES.get(p.suffix.lower())
        try:
            if kind == "parquet":
                total += pq.ParquetFile(p).metadata.num_rows
            elif kind == "ipc":
                with pa.memory_map(str(p)) as src:
                    reader = ipc.open_file(src)
                    total += sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            else:
                return None
        except (pa.ArrowInvalid, OSError):
            return None  # let the normal reader report the problem
    return total


def available_memory() -> int | None:
    """Bytes of memory available now (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def auto_partitions(claim_paths: Sequence[Path]) -> int:
    """1 (all in memory) when the claims fit in half the available memory, else
    enough member ranges of about LINES_PER_PARTITION lines each."""
    n = count_lines(claim_paths)
    if n is None:
        return 1
    free = available_memory()
    if free is not None and n * BYTES_PER_LINE <= free // 2:
        return 1
    return max(1, math.ceil(n / LINES_PER_PARTITION))


#: Lines per batch of the partition pass: its memory is a few batches (see ``Partitioner``).
BATCH_ROWS = 500_000
#: Batches read ahead and batches waiting to be written, each side of the partition pass.
AHEAD = 2


def iter_batches(
    path: Path, batch_rows: int = BATCH_ROWS, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The record batches of one claims file, in row order: Parquet text columns of
    ``DICTIONARY_COLUMNS`` but member_id read as dictionaries (see ``_coded``), CSV as text."""
    kind = SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "parquet":
            f = pq.ParquetFile(path, read_dictionary=_coded(pq.read_schema(path)))
            yield from f.iter_batches(batch_size=batch_rows, columns=columns)
        elif kind == "ipc":
            with pa.memory_map(str(path)) as src:
                reader = ipc.open_file(src)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
        elif kind == "csv":
            # as inputs.load reads CSV: every contract column (and --keep column) as text
            from .keep import claims_spec

            encoding = CSV_ENCODING.get()
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(
                    encoding="utf8" if encoding in ("auto", "utf-8") else encoding, block_size=16 << 20
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={c.name: pa.string() for c in claims_spec(CLAIMS).columns},
                    strings_can_be_null=True,
                    null_values=[""],
                    quoted_strings_can_be_null=True,
                ),
            )
            yield from reader
        else:
            raise InputError("unknown file type (expected .parquet, .arrow/.feather or .csv)", path)
    except (pa.ArrowInvalid, OSError) as e:
        load(CLAIMS, [path])  # the one reader says what is wrong (e.g. which encoding the text looks like)
        raise InputError(f"cannot be read: {str(e).splitlines()[0]}", path) from None


def _coded(schema: pa.Schema) -> list[str]:
    """The claim columns read as dictionaries, as ``inputs.load`` reads them: low-cardinality text, but
    for ``member_id``. One entry per member rarely fits a Parquet dictionary page, and where it does not
    a dictionary read hashes every line into Arrow's table of values; the router looks each line up
    itself (hashed ahead, its slot prefetched), and the range files code it against the range's members
    whatever was read."""
    return [
        c
        for c in DICTIONARY_COLUMNS.get(CLAIMS.name, ())
        if c != "member_id" and c in schema.names and schema.field(c).type in (pa.string(), pa.large_string())
    ]


def _claim_columns() -> frozenset[str]:
    """The claims columns the partition pass carries: the contract's and the command's --keep columns."""
    from .keep import kept

    return frozenset(c.name for c in CLAIMS.columns) | frozenset(kept())


def _is_text(t: pa.DataType) -> bool:
    """Text, or text coded through a dictionary."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _spans(ids: pa.Array | pa.ChunkedArray, lo: np.ndarray, hi: np.ndarray) -> pa.Table:
    """(claim_id, lowest, highest range) of each distinct id, from rows of (id, low, high)."""
    coded = pc.dictionary_encode(ids, null_encoding="encode")  # a null id is one claim, as before
    if isinstance(coded, pa.ChunkedArray):
        coded = coded.combine_chunks() if coded.num_chunks != 1 else coded.chunk(0)
    idx = np.asarray(coded.indices, dtype=np.int64)
    low = np.full(len(coded.dictionary), np.iinfo(np.int32).max, np.int32)  # ranges: int32 keeps it small
    high = np.full(len(coded.dictionary), -1, np.int32)
    np.minimum.at(low, idx, lo.astype(np.int32))
    np.maximum.at(high, idx, hi.astype(np.int32))
    return pa.table({"claim_id": coded.dictionary, "lo": low, "hi": high})


def _plain(a: pa.Array) -> pa.Array:
    """Text as plain (not dictionary-coded) string or large_string."""
    if pa.types.is_dictionary(a.type):
        a = a.dictionary_decode()
    return a if pa.types.is_string(a.type) or pa.types.is_large_string(a.type) else a.cast(pa.string())


def _text_buffers(a: pa.Array) -> tuple[np.ndarray, pa.Buffer | None, np.ndarray]:
    """A plain text array as (offsets, data buffer, 1 per valid string, or empty when all are valid),
    for the compiled Router."""
    wide = pa.types.is_large_string(a.type)
    if len(a) == 0:
        return np.zeros(1, np.int64 if wide else np.int32), None, np.empty(0, np.uint8)
    _, offsets, data = a.buffers()
    off = np.frombuffer(offsets, np.int64 if wide else np.int32)[a.offset : a.offset + len(a) + 1]
    valid = np.asarray(a.is_valid()).view(np.uint8) if a.null_count else np.empty(0, np.uint8)
    return off, data, valid


#: Claim columns whose 16-byte decimals the range files keep in 8 (decimal64, same scale) when every
#: value of a batch fits in 18 digits: the files are written, and read back, at about 1.5 s per GiB.
_NARROW_DECIMALS = frozenset(c.name for c in CLAIMS.columns if c.kind in ("amount", "price", "quantity"))
#: Dictionary-read claim columns whose codes the range files keep as narrow as the dictionaries allow
#: (member_id is coded against its range's members instead), with the width they start at: the
#: enums' few values in one byte, the others in two (a wider code opens a new file, see ``_file``).
_NARROW_CODES = {
    c.name: (pa.int8() if c.kind == "enum" else pa.int16())
    for c in CLAIMS.columns
    if c.name in DICTIONARY_COLUMNS["claims"] and c.name != "member_id"
}
_INDEX_TYPES = (pa.int8(), pa.int16(), pa.int32(), pa.int64())


def _index_type(entries: int) -> pa.DataType:
    """The narrowest signed index type for a dictionary of ``entries`` values that also holds the code
    ``entries`` (readers give a null that code: ``inputs.dictionary_lookup``)."""
    return next(t for t in _INDEX_TYPES if entries <= 2 ** (t.bit_width - 1) - 1)


def _narrow_decimal(a: pa.Array) -> pa.Array | None:
    """A decimal128 array as decimal64 of the same scale (precision at most 18), exactly; None when a
    value does not fit."""
    t = a.type
    if not pa.types.is_decimal128(t):
        return None
    precision = min(t.precision, 18)
    words = np.frombuffer(a.buffers()[1], np.int64)[2 * a.offset : 2 * (a.offset + len(a))]
    valid = np.asarray(a.is_valid()).view(np.uint8) if a.null_count else np.empty(0, np.uint8)
    low = np.empty(len(a), np.int64)
    if not decimal64(words, valid, 10**precision - 1, low):
        return None
    mask = pa.py_buffer(np.packbits(valid, bitorder="little")) if a.null_count else None
    return pa.Array.from_buffers(pa.decimal64(precision, t.scale), len(a), [mask, pa.py_buffer(low)], a.null_count)


def _common_codes(tables: list[pa.Table]) -> list[pa.Table]:
    """A range's files with each dictionary column's codes of one type (the widest): a code widened
    during the pass opens a new file, and a column's chunks must share one type to stay coded."""
    if len(tables) < 2:
        return tables
    for name in tables[0].column_names:
        types = {t.schema.field(name).type for t in tables if name in t.column_names}
        if len(types) < 2 or not all(pa.types.is_dictionary(x) for x in types):
            continue
        if len({x.value_type for x in types}) != 1:
            continue
        widest = max((x.index_type for x in types), key=lambda x: x.bit_width)
        wide = pa.dictionary(widest, next(iter(types)).value_type)
        for i, t in enumerate(tables):
            if name in t.column_names and t.schema.field(name).type != wide:
                at = t.schema.get_field_index(name)
                chunks = [
                    pa.DictionaryArray.from_arrays(c.indices.cast(widest), c.dictionary) for c in t.column(name).chunks
                ]
                tables[i] = t.set_column(at, t.schema.field(name).with_type(wide), pa.chunked_array(chunks, wide))
    return tables


def _ahead(items: Iterator, depth: int = AHEAD) -> Iterator:
    """``items`` produced in a background thread, up to ``depth`` ahead (reading overlaps the
    partitioning; Arrow releases the GIL). Errors are raised here, in the caller's thread. Under
    ``--threads 1`` (threads.serial) produced here, when asked for."""
    if serial():
        yield from items
        return
    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((item, None))
        except BaseException as e:  # handed to the caller
            q.put((None, e))
            return
        q.put((done, None))

    ctx = contextvars.copy_context()  # the command's CSV encoding
    # not a daemon, and waited for with signals held: the process never exits while it is inside Arrow
    t = threading.Thread(target=ctx.run, args=(pump,), name="partition-read")
    t.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        with signals_held():
            while t.is_alive():  # unblock a pump waiting on a full queue
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
            t.join()


class _BackgroundWriters:
    """Arrow IPC stream files written in one background thread. ``write`` takes a function that gives
    (file, record batch) pairs: it runs in that thread too, at most AHEAD calls behind. Under
    ``--threads 1`` (threads.serial) each function runs when given, on the caller's thread."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue(AHEAD)
        self.error: BaseException | None = None
        self.writers: dict[Path, ipc.RecordBatchStreamWriter] = {}
        self.inline = serial()
        # not a daemon, joined with signals held (close): never left writing when the process exits
        self.thread = threading.Thread(target=self._run, name="partition-write")
        if not self.inline:
            self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.q.get()
            if job is None:
                break
            if self.error is None:  # else drain
                self._write(job)
        self._close_files()

    def _write(self, job: Callable[[], Iterable[tuple[Path, pa.RecordBatch]]]) -> None:
        try:
            for path, batch in job():
                if path not in self.writers:
                    self.writers[path] = ipc.new_stream(path, batch.schema)
                self.writers[path].write_batch(batch)
        except BaseException as e:
            self.error = e

    def _close_files(self) -> None:
        for w in self.writers.values():
            try:
                w.close()
            except BaseException as e:
                self.error = self.error or e
        self.writers = {}

    def write(self, job: Callable[[], Iterable[tuple[Path, pa.RecordBatch]]]) -> None:
        if self.error is not None:
            self.close()
        if self.inline:
            self._write(job)
            if self.error is not None and not isinstance(self.error, Exception):
                raise self.error  # an interruption stops the caller at once
        else:
            self.q.put(job)

    def close(self) -> None:
        """Wait for every batch to be written; raise the first write error."""
        if self.inline:
            self._close_files()
        elif self.thread.is_alive():
            with signals_held():
                self.q.put(None)
                self.thread.join()
        if self.error is not None:
            raise self.error


class Partitioner:
    """Pass 1: write each claim line to the file of its member range.

    Each batch is read once (Parquet text columns as dictionaries, as ``load`` reads them), its members
    are looked up through the batch's small ``member_id`` dictionary, and its rows are sorted by range
    with one take and appended, range by range, to uncompressed Arrow IPC stream files, which the settle
    pass memory-maps. In the files of a member range, ``member_id`` is coded against that range's own
    members (one dictionary per range, written once). Reading, partitioning and writing overlap in three
    threads; memory holds about 2 × AHEAD + 2 batches of BATCH_ROWS lines (docs/streaming.md)."""

    def __init__(
        self, members: Table, parts: int, folder: Path, batch_rows: int | None = None, lines: int | None = None
    ):
        """``lines``: the lines of all the claim files, when known (sizes the claim table early)."""
        self.folder, self.parts, self.batch_rows = folder, parts, batch_rows or BATCH_ROWS
        self.lines = lines
        ids = strings(members["member_id"])
        order = np.asarray(pc.sort_indices(ids), dtype=np.int64)
        # member row -> range; equal member counts per range, in byte order
        part_of_rank = (np.arange(len(order), dtype=np.int64) * parts // max(len(order), 1)).astype(np.int32)
        part_of_member = np.empty(len(order), np.int32)
        part_of_member[order] = part_of_rank
        # member row -> its code within its range; each range's members, in byte order
        starts = np.searchsorted(part_of_rank, np.arange(parts + 1))
        code_of_member = np.empty(len(order), np.int32)
        code_of_member[order] = (np.arange(len(order)) - starts[part_of_rank]).astype(np.int32)
        self.members_of_part = [ids.take(pa.array(order[starts[k] : starts[k + 1]])) for k in range(parts)]
        off, data, _ = _text_buffers(ids.cast(pa.large_string()))
        self.router = Router(off, data, part_of_member, code_of_member, parts)  # for the whole pass
        self.files: dict[int, list[Path]] = {k: [] for k in range(parts + 1)}
        self.text: dict[Path, bool] = {}  # partition file -> read as text (CSV)
        self._seen: tuple[pa.Array, np.ndarray] | None = None  # the last member dictionary looked up
        self._open: dict[tuple[int, int], tuple[pa.Schema, Path]] = {}  # (file, range) -> the file written
        self._codes = dict(_NARROW_CODES)  # each coded column's index type so far (it only widens)
        self._wide: set[str] = set()  # decimal columns a value did not fit in 18 digits (kept 16 bytes)

    def add_file(self, index: int, path: Path) -> None:
        try:
            self._add_file(index, path)
        except (pa.ArrowException, ValueError):
            # Let the one reader name the file, column and row of what is wrong.
            load(CLAIMS, [path])
            raise

    def _columns(self, path: Path) -> list[str] | None:
        """The contract's claim columns a Parquet file holds, in its order (None for other files)."""
        if SUFFIXES.get(path.suffix.lower()) != "parquet":
            return None
        try:
            names = pq.read_schema(path).names
        except (pa.ArrowException, OSError):
            load(CLAIMS, [path])  # names what is wrong
            raise
        wanted = _claim_columns()
        cols = [n for n in names if n in wanted]
        if len(set(cols)) != len(cols) or not {"claim_id", "member_id"} <= set(cols):
            self._columns_error(path)
        return cols

    def _add_file(self, index: int, path: Path) -> None:
        kind = SUFFIXES.get(path.suffix.lower())
        cols = self._columns(path)
        # row numbers as int32 when the file is known to be small enough: 4 bytes a line less to write
        rows = count_lines([path]) if kind != "csv" else None
        row_type = np.int32 if rows is not None and rows <= np.iinfo(np.int32).max else np.int64
        writers = _BackgroundWriters()
        offset = 0
        try:
            for batch in _ahead(iter_batches(path, self.batch_rows, cols if kind == "parquet" else None)):
                if kind != "parquet":
                    batch = self._select(batch, path)
                offset = self._add_batch(index, batch, offset, kind == "csv", writers, row_type)
        finally:
            writers.close()

    def _select(self, batch: pa.RecordBatch, path: Path) -> pa.RecordBatch:
        wanted = _claim_columns()
        keep = [n for n in batch.schema.names if n in wanted]
        if len(set(keep)) != len(keep) or not {"claim_id", "member_id"} <= set(keep):
            self._columns_error(path)
        return batch.select(keep)

    @staticmethod
    def _columns_error(path: Path) -> None:
        load(CLAIMS, [path])  # raises: a required column is missing or doubled
        raise InputError("cannot be partitioned", path)  # pragma: no cover - load raised

    def _add_batch(
        self,
        index: int,
        batch: pa.RecordBatch,
        offset: int,
        text: bool,
        writers: _BackgroundWriters,
        row_type: type = np.int64,
    ) -> int:
        """Find and order each line's range here (compiled, without the GIL); note the claims, take the
        batch once in range order and write its slices in the writer thread, while the next batch is
        read and looked up."""
        part, order, bounds, codes = self.router.route(self._member_rows(batch.column("member_id")))
        ranges = [int(k) for k in np.flatnonzero(np.diff(bounds))]

        def cut() -> Iterator[tuple[Path, pa.RecordBatch]]:
            self.router.note_claims(*_text_buffers(_plain(batch.column("claim_id"))), part)
            if offset == 0 and index == 0:
                self._size_claim_table(batch.num_rows)
            # order is a permutation of the batch's rows: no bounds to check
            whole = pc.take(self._narrow(batch), pa.array(order), boundscheck=False)
            rows: np.ndarray = order.astype(row_type)  # each line's row number, already in range order
            rows += offset
            whole = whole.append_column(ROW, pa.array(rows))
            for k, piece in zip(ranges, self._slices(whole, ranges, bounds, codes)):
                yield self._file(index, k, piece.schema, text), piece

        writers.write(cut)
        return offset + batch.num_rows

    def _file(self, index: int, k: int, schema: pa.Schema, text: bool) -> Path:
        """The file of range ``k``'s lines of claims file ``index`` with this schema: a batch whose
        columns were narrowed otherwise than the batches before (rare: a code or a decimal widened)
        opens a new one, after the others in the range's list (called in the writer thread, in order)."""
        held = self._open.get((index, k))
        if held is not None and held[0].equals(schema):
            return held[1]
        n = sum(1 for f in self.files[k] if f.name.startswith(f"{index:05d}-"))
        f = self.folder / (f"{index:05d}-{k:05d}" + (f".{n}" if n else "") + ".arrows")
        self._open[(index, k)] = (schema, f)
        self.text[f] = text
        self.files[k].append(f)
        return f

    def _narrow(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with fewer bytes a line, the same values: the coded columns' codes as narrow as
        their dictionaries allow (never narrower than earlier batches': fewer new files), the decimals
        in 8 bytes while they fit (``_NARROW_DECIMALS``)."""
        for at, f in enumerate(batch.schema):
            a = batch.column(at)
            if (
                f.name in self._codes
                and pa.types.is_dictionary(f.type)
                and pa.types.is_signed_integer(f.type.index_type)
            ):
                want = max(self._codes[f.name], _index_type(len(a.dictionary)), key=lambda t: t.bit_width)
                self._codes[f.name] = want
                if want.bit_width < f.type.index_type.bit_width:
                    a = pa.DictionaryArray.from_arrays(a.indices.cast(want), a.dictionary)
                    batch = batch.set_column(at, f.with_type(a.type), a)
            elif f.name in _NARROW_DECIMALS and f.name not in self._wide and pa.types.is_decimal128(f.type):
                narrow = _narrow_decimal(a)
                if narrow is None:
                    self._wide.add(f.name)
                else:
                    batch = batch.set_column(at, f.with_type(narrow.type), narrow)
        return batch

    def _size_claim_table(self, seen: int) -> None:
        """After the first batch: size the claim table for the claims the whole pass will note, at that
        batch's claims per line (at most one claim for every 4 lines: shuffled lines would make each look
        like a claim of its own; beyond it, the table grows as it fills)."""
        if self.lines is None or seen == 0:
            return
        expected = self.router.noted * self.lines // seen
        self.router.reserve(min(expected + expected // 4, self.lines // 4))

    def _slices(
        self, batch: pa.RecordBatch, ranges: list[int], bounds: np.ndarray, codes: np.ndarray
    ) -> Iterator[pa.RecordBatch]:
        """Each range's lines of a batch sorted by range (``codes``: each line's member code in its range)."""
        coded = _is_text(batch.schema.field("member_id").type)  # else load() reports the type
        at = batch.schema.get_field_index("member_id")
        for k in ranges:
            rows = batch.slice(bounds[k], bounds[k + 1] - bounds[k])
            if k < self.parts and coded:
                # member_id as codes into this range's members: one small dictionary per range file
                mine = pa.array(codes[bounds[k] : bounds[k + 1]])
                coded_ids = pa.DictionaryArray.from_arrays(mine, self.members_of_part[k], safe=False)  # valid codes
                rows = rows.set_column(at, "member_id", coded_ids)
            elif k == self.parts and pa.types.is_dictionary(rows.schema.field("member_id").type):
                # the few orphan lines: their members as text, not the batch's whole dictionary
                rows = rows.set_column(at, "member_id", rows.column(at).dictionary_decode())
            yield rows

    def _member_rows(self, ids: pa.Array) -> np.ndarray:
        """Row in the members table of each line's member (-1: null or unknown), as int32."""
        if pa.types.is_dictionary(ids.type):
            pos = np.append(self._dictionary_rows(ids.dictionary), np.int32(-1))  # the code of a null
            return pos[np.asarray(pc.fill_null(ids.indices, len(pos) - 1), dtype=np.intp)]
        return self._lookup(ids)

    def _dictionary_rows(self, dictionary: pa.Array) -> np.ndarray:
        """Member row of each entry of a batch's ``member_id`` dictionary (-1: unknown). Within a
        Parquet row group each batch's dictionary extends the one before: only the new entries are
        looked up."""
        known = 0
        if self._seen is not None:
            before, pos = self._seen
            n = len(before)
            if len(dictionary) >= n and dictionary.slice(0, n).equals(before):
                known = n
        new = self._lookup(dictionary.slice(known))
        pos = np.concatenate([pos[:known], new]) if known else new
        self._seen = (dictionary, pos)
        return pos

    def _lookup(self, d: pa.Array) -> np.ndarray:
        """Member row of each string (-1: null or unknown), through the pass's compiled member table."""
        return self.router.members(*_text_buffers(_plain(d)))

    def split_claims(self) -> pa.Array:
        """Claim ids whose lines landed in more than one partition. The router flags candidates (by a
        hash of the id) and the ranges holding their lines; only those ranges' claim ids are read back
        (memory-mapped) and the candidates' ids checked exactly."""
        flagged, ranges = self.router.flagged()
        self.router.release()
        if not len(flagged):
            return pa.array([], pa.string())
        ids, at = [], []
        for k in ranges:
            for f in self.files[k]:
                with pa.memory_map(str(f)) as src:
                    for chunk in ipc.open_stream(src).read_all()["claim_id"].chunks:
                        claim_id = _plain(chunk)
                        mine = np.flatnonzero(np.isin(self.router.keys(*_text_buffers(claim_id)), flagged))
                        ids.append(claim_id.take(pa.array(mine)).cast(pa.string()))
                        at.append(np.full(len(mine), k, np.int32))
        spans = _spans(pa.concat_arrays(ids), np.concatenate(at), np.concatenate(at))
        return spans.filter(pc.not_equal(spans["lo"], spans["hi"]))["claim_id"]

    def _read(self, f: Path, k: int) -> pa.Table:
        """One range file, memory-mapped. In a member range, ``member_id`` is one chunk: its batches
        share the range's dictionary, which is then looked up once, not once per batch."""
        with pa.memory_map(str(f)) as src:
            t = ipc.open_stream(src).read_all()
        member = t.column("member_id")
        if k < self.parts and pa.types.is_dictionary(member.type) and member.num_chunks > 1:
            one = pa.DictionaryArray.from_arrays(
                pa.concat_arrays([c.indices for c in member.chunks]), self.members_of_part[k]
            )
            t = t.set_column(t.schema.get_field_index("member_id"), "member_id", pa.chunked_array([one]))
        return t

    def load(self, k: int, claim_files: list[Path], threads: int = 2) -> Table | None:
        """Range ``k``'s lines (memory-mapped), checked like any input; errors name the original file
        and row."""
        files = self.files[k]
        if not files:
            return None
        tables = _common_codes([self._read(f, k) for f in files])
        try:
            return from_arrow(CLAIMS, files, [(t, self.text[f]) for f, t in zip(files, tables)], threads)
        except InputError as e:
            if e.file is None or Path(e.file) not in self.text:
                raise
            f = Path(e.file)
            original = claim_files[int(f.stem.split("-")[0])]
            row = None if e.row is None else int(tables[files.index(f)][ROW][e.row].as_py())
            raise InputError(e.message, original, e.column, row) from None


def run_streaming(
    claim_paths: Sequence[str | Path],
    member_paths,
    provider_paths,
    catalogue_paths,
    policy: Policy,
    out: Path,
    parts: int,
    threads: int | None = None,
    with_lines: bool = True,
    progress: Callable[[str], None] | None = None,
    audit=None,
    each: Callable[[Result | None], None] | None = None,
) -> dict:
    """Adjudicate in ``parts`` member ranges; outputs identical to the in-memory run.

    ``audit`` (an ``audit.StreamingAudit``) also writes flags and indicators, range by range.
    ``each`` is called with every range's result once it is written (readjudicate compares it
    then), and with None when a pass over the ranges starts again (see ``_settle_partitions``)."""
    say = progress or (lambda s: None)
    timer = Timer()
    claim_files = expand_paths(claim_paths, "claims")
    # The partition files (claim data: personal health information) live in the output's temporary
    # folder: removed with it on any error, Ctrl-C or SIGTERM, and by the next run into --out after a kill.
    sources = Sources(claim_files, member_paths, provider_paths, catalogue_paths)
    with atomic_dir(out, source_paths(claim_paths, member_paths, provider_paths, catalogue_paths)) as folder:
        cut = _partition(sources, parts, folder, timer, say)
        how = Settling(
            policy=policy,
            folder=folder,
            timer=timer,
            say=say,
            threads=threads,
            with_lines=with_lines,
            audit=audit,
            each=each,
        )
        s = _settle_partitions(cut, how)
        shutil.rmtree(folder / PARTITIONS)
    return s


@dataclass(frozen=True)
class Sources:
    """The input files of a streamed command: the claim files (expanded) and the small tables' paths."""

    claims: list[Path]
    members: Sequence[str | Path]
    providers: Sequence[str | Path]
    catalogue: Sequence[str | Path]


@dataclass(frozen=True)
class Cut:
    """What the partition pass leaves: the small tables (Inputs without claims), the input digests (of
    the bytes partitioned), the Partitioner with its range files and the claim ids split across ranges."""

    small: Inputs
    digests: dict[str, str]
    part: Partitioner
    split: pa.Array
    claim_files: list[Path]

    def ranges(self, timer: Timer) -> Iterator[tuple[int, Table]]:
        """(k, claims) of each range in settlement order, then the orphans (see iter_claim_partitions)."""
        return iter_claim_partitions(self.part, self.split, self.claim_files, timer)


@dataclass(frozen=True)
class Settling:
    """How the ranges are settled and where their outputs go (the output's temporary folder)."""

    policy: Policy
    folder: Path
    timer: Timer
    say: Callable[[str], None]
    threads: int | None = None
    with_lines: bool = True
    audit: Any = None  # an audit.StreamingAudit
    each: Callable[[Result | None], None] | None = None


def source_paths(claims, members, providers, catalogue, dataset: str | Path | None = None) -> list[Path]:
    """Every file or folder a command reads (an output folder may hold none of them: outdir.check_out)."""
    paths = [Path(p) for group in (claims, members, providers, catalogue) for p in (group or ())]
    return paths + ([Path(dataset)] if dataset is not None else [])


def _partition(sources: Sources, parts: int, folder: Path, timer: Timer, say: Callable[[str], None]) -> Cut:
    """Read the small tables and cut the claims into ``parts`` member ranges under ``folder``/PARTITIONS
    (the output's temporary folder). The cut is timed as ``partition``, apart from ``read``."""
    with timer("read"):
        members, providers = load(MEMBERS, sources.members), load(PROVIDERS, sources.providers)
        catalogue = load(CATALOGUE, sources.catalogue)
    digests: dict[str, str] = {}  # claims first, as an in-memory run lists them
    scratch = folder / PARTITIONS
    scratch.mkdir()
    say(f"partition into {parts}")
    with timer("partition"):
        files = sources.claims
        # each file is digested (opened and read) before it is partitioned, as the check needs: the first
        # while the members' table is built, the next while this one is partitioned
        with thread_pool(1, "digest") as pool:
            digest = pool.submit(digest_while_reading, files[0]) if files else None
            part = Partitioner(members, parts, scratch, lines=count_lines(files))
            for i, f in enumerate(files):
                digests[str(f)], unchanged = digest.result()  # type: ignore[union-attr]
                digest = pool.submit(digest_while_reading, files[i + 1]) if i + 1 < len(files) else None
                part.add_file(i, f)
                unchanged()  # the digest describes the bytes partitioned
        split = part.split_claims()
        pa.default_memory_pool().release_unused()  # the batches' pages, kept for reuse (heap.keep_arrow_memory)
    for table in (members, providers, catalogue):
        digests.update(table.digests)
    small = Inputs(claims=None, members=members, providers=providers, catalogue=catalogue)  # type: ignore[arg-type]
    return Cut(small, digests, part, split, sources.claims)


def _concat(tables: list[Table]) -> Table:
    first = tables[0]
    values = {}
    for k, v in first.values.items():
        parts = [t.values[k] for t in tables]
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            values[k] = pa.concat_arrays([p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts])
        else:
            values[k] = np.concatenate(parts)
    nulls = {k: np.concatenate([t.nulls[k] for t in tables]) for k in first.nulls}
    rows = sum(t.rows for t in tables)
    return Table(spec=first.spec, files=first.files, values=values, nulls=nulls, rows=rows, digests=first.digests)


def iter_claim_partitions(
    part: Partitioner, split: pa.Array, claim_files: list[Path], timer: Timer
) -> Iterator[tuple[int, Table]]:
    """(k, claims table) of each member range in settlement order, then (parts, the orphans: lines whose
    member is null, unknown or inconsistent, which can only be rejected)."""
    orphans: list[Table] = []
    for k in range(part.parts + 1):
        with timer("read"):
            claims = part.load(k, claim_files)
        if claims is None:
            continue
        if len(split):
            moved = np.asarray(pc.is_in(claims["claim_id"], value_set=split), dtype=bool)
            if moved.any():
                orphans.append(claims.take(np.flatnonzero(moved)))
                claims = claims.take(np.flatnonzero(~moved))
        if k == part.parts:
            orphans.append(claims)
            continue
        yield k, claims
        del claims  # before the next range is read
    if orphans:
        yield part.parts, _concat(orphans)


@contextmanager
def partitioned(
    claim_paths: Sequence[str | Path],
    member_paths,
    provider_paths,
    catalogue_paths,
    parts: int,
    folder: Path,
    timer: Timer,
    say: Callable[[str], None],
) -> Iterator[tuple[Inputs, dict, Callable[[], Iterator[Inputs]]]]:
    """Read the small tables and cut the claims into ``parts`` member ranges under ``folder`` (the
    output's temporary folder: claim data never lands in /tmp).

    Yields (the small tables as Inputs without claims, the input digests, a
    function giving an iterator of each range's Inputs in settlement order,
    orphans last, as often as asked; when there are no claims at all, the one
    empty claims table).
    """
    sources = Sources(expand_paths(claim_paths, "claims"), member_paths, provider_paths, catalogue_paths)
    cut = _partition(sources, parts, folder, timer, say)
    small = cut.small
    try:

        def each() -> Iterator[Inputs]:
            seen = False
            for k, claims in cut.ranges(timer):
                seen = True
                yield Inputs(claims, small.members, small.providers, small.catalogue)
                if k < parts:
                    say(f"partition {k + 1}/{parts}")
            if not seen:
                yield Inputs(load(CLAIMS, cut.claim_files), small.members, small.providers, small.catalogue)

        yield small, cut.digests, each
    finally:
        shutil.rmtree(folder / PARTITIONS, ignore_errors=True)


@contextmanager
def prepared_parts(
    claims,
    members,
    providers,
    catalogue,
    dataset: Path | None,
    partitions: int,
    timer: Timer,
    say: Callable[[str], None],
    folder: Path,
    claims_table: bool = True,
) -> Iterator[tuple[dict, Callable[[], Iterator[Prepared]], int]]:
    """The prepared inputs of a command, whole (a dataset, or ``partitions`` ≤ 1) or one member range at a
    time (``partitions`` > 1; 0 chooses from the input size; the ranges are cut under ``folder``, the
    output's temporary folder): (input digests, a function giving an
    iterator of Prepared in settlement order, as often as asked, the number of member ranges). Members
    are independent, so results computed part by part add up, given the run's base year (see
    :class:`BaseYears`). ``claims_table=False``: each part's claims table is let go once encoded
    (``dataset.load_prepared``)."""
    from .dataset import load_prepared, without_claims_table

    if dataset is None and partitions == 0:
        partitions = auto_partitions(expand_paths(claims, "claims"))
    if dataset is not None or partitions <= 1:
        prep = load_prepared(claims, members, providers, catalogue, dataset, timer, claims_table)
        yield prep.digests, lambda: iter([prep]), 1
        return

    def encoded(inputs: Inputs) -> Prepared:
        prep = prepare(inputs, timer)
        return prep if claims_table else without_claims_table(prep)

    with partitioned(claims, members, providers, catalogue, partitions, folder, timer, say) as (_, digests, parts):
        yield digests, lambda: (encoded(inputs) for inputs in parts()), partitions


class BaseYears:
    """The base year B of each of several policies settled range by range (contract §3: the earliest
    year of all the run's settled claims), as ``_settle_partitions`` finds it: each range settles with
    B as known so far (the first range's own at first); if a later range settles an earlier year, the
    pass is done again with the true B (``again``)."""

    def __init__(self, n: int):
        self.given: list[int | None] = [None] * n

    def start(self) -> None:
        self.used: list[int | None] = list(self.given)
        self.earliest: list[int | None] = [None] * len(self.given)

    def __getitem__(self, i: int) -> int | None:
        return self.used[i]

    def saw(self, i: int, r: Result) -> None:
        if self.used[i] is None:
            self.used[i] = r.base_year
        first, earliest = first_year(r.enc), self.earliest[i]
        if first is not None and (earliest is None or first < earliest):
            self.earliest[i] = first

    def again(self) -> bool:
        """Whether the pass must be done again (then with the true base years)."""
        wrong = any(e is not None and e != u for e, u in zip(self.earliest, self.used))
        if wrong:
            self.given = [e if e is not None else u for e, u in zip(self.earliest, self.used)]
        return wrong


def _settle_partitions(cut: Cut, how: Settling) -> dict:
    """Settle every range, write rejected.parquet, summary.json and report.html; the summary."""
    done = _settle_with_true_base_year(cut, how)
    write_parquet(rejected_rows_table(done.rejected), how.folder / "rejected.parquet")
    s = _summary(cut, how, done)
    (how.folder / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(how.folder, "run", figures=merged_figures(done.figures))  # not settlements.parquet read back
    return s


def _settle_with_true_base_year(cut: Cut, how: Settling) -> _Pass:
    # The personal account stands on 1 January of the run's base year B, the earliest year of all
    # its settled claims (contract §3). B is taken from the first partition with settled claims and
    # checked on every later one; in the rare case that a later partition settles an earlier year,
    # the outputs are written again with the true B (which claims settle does not depend on B).
    base = None
    while True:
        done = _settle_pass(cut, how, base)
        if done.earliest is None or done.earliest == done.base:
            return done
        base = done.earliest
        how.say(f"base year {base}: again")


def _summary(cut: Cut, how: Settling, done: _Pass) -> dict:
    """summary.json of the whole streamed run, as one in-memory run would write it."""
    counts, s = done.counts, done.last
    if s is None:  # pragma: no cover - a pass always settles something (the empty claims at least)
        raise RuntimeError("no range was settled")
    s["inputs"] = cut.digests
    s["counts"]["input_lines"] = counts["input_lines"]
    s["counts"].update({k: counts[k] for k in ("input_claims", "settled_claims", "settled_lines")})
    n_rejected = s["counts"]["rejected_claims"] = count_rejected_claims(done.rejected)
    reasons = {k: 0 for k in s["counts"]["rejected_by_reason"]}
    for t in done.rejected:
        reasons[t[2]] += 1
    s["counts"]["rejected_by_reason"] = reasons
    s["counts"]["reconciles"] = counts["settled_claims"] + n_rejected == counts["input_claims"]
    s["totals"] = {k: str(yuan(v)) for k, v in done.totals.items()}
    s["partitions"] = cut.part.parts
    if how.audit is not None:
        s["audit"] = how.audit.finish()
    s["timings_seconds"] = {k: round(v, 4) for k, v in how.timer.t.items()}
    return s


@dataclass
class _Pass:
    """One pass over the ranges: the open output writers and what adds up across ranges."""

    folder: Path
    base: int | None  # the base year used (None until the first range with settled claims)
    earliest: int | None = None  # the earliest year settled
    last: dict | None = None  # the summary of the last range settled (not its Result: memory)
    rejected: list = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"input_lines": 0, "input_claims": 0, "settled_claims": 0, "settled_lines": 0}
    )
    writers: dict[str, pq.ParquetWriter] = field(default_factory=dict)
    figures: list[RunFigures] = field(default_factory=list)  # each range's, for report.html

    def append(self, name: str, table: pa.Table) -> None:
        if name not in self.writers:
            path = self.folder / f"{name}.parquet"
            self.writers[name] = pq.ParquetWriter(path, table.schema, **parquet_options(table.schema))
        self.writers[name].write_table(table)

    def add(self, claims: Table, r: Result) -> None:
        """Count a settled range in."""
        self.rejected.extend(r.enc.rejected)
        amounts = claim_amounts(r)
        for k, v in amounts.items():
            self.totals[k] = self.totals.get(k, 0) + int(v.sum())
        self.last = summary(r, {}, claims.rows, amounts)
        e = r.enc
        self.figures.append(run_figures(e.settle_date, e.member, e.year, amounts))
        self.counts["input_lines"] += claims.rows
        self.counts["input_claims"] += r.enc.input_claims
        self.counts["settled_claims"] += len(r.enc.member)
        self.counts["settled_lines"] += len(r.enc.amount)
        if self.base is None:
            self.base = r.base_year
        first = first_year(r.enc)
        if first is not None and (self.earliest is None or first < self.earliest):
            self.earliest = first

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def _settle_pass(cut: Cut, how: Settling, base: int | None) -> _Pass:
    """Settle every partition with base year ``base`` (None: the first partition's), writing the
    outputs anew; returns the totals, the base used and the earliest year settled."""
    for name in ("settlements", "lines"):
        (how.folder / f"{name}.parquet").unlink(missing_ok=True)  # an earlier pass's, in our temporary folder
    if how.audit is not None:
        how.audit.start(how.folder)  # anew, like the outputs
    if how.each is not None:
        how.each(None)  # anew too
    done = _Pass(how.folder, base)
    parts = cut.part.parts
    try:
        for k, claims in cut.ranges(how.timer):
            if k == parts:  # the orphans
                before = done.counts["settled_claims"]
                _one(claims, cut, how, done)
                if done.counts["settled_claims"] != before:  # pragma: no cover - a broken invariant, not bad input
                    raise RuntimeError("a claim without a known, consistent member was settled")
                continue
            _one(claims, cut, how, done)
            del claims  # before the next range is read: one range in memory at a time
            how.say(f"partition {k + 1}/{parts}")
        if done.last is None:  # every claims file was empty: settle that, for outputs of the right shape
            _one(load(CLAIMS, cut.claim_files), cut, how, done)
    finally:
        done.close()
    return done


def _one(claims: Table, cut: Cut, how: Settling, done: _Pass) -> None:
    """Settle one range with the pass's base year, append its outputs and count it in."""
    small, timer = cut.small, how.timer
    inputs = Inputs(claims, small.members, small.providers, small.catalogue)
    r = adjudicate(inputs, how.policy, threads=how.threads, timer=timer, line_funds=how.with_lines, base_year=done.base)
    if how.audit is not None:
        with timer("audit"):
            how.audit.add(r, inputs)
    with timer("write"):
        done.append("settlements", settlements_table(r, for_file=True))
        if how.with_lines:
            done.append("lines", lines_table(r, for_file=True))
    done.add(claims, r)
    if how.each is not None:
        how.each(r)


__all__ = [
    "run_streaming",
    "auto_partitions",
    "count_lines",
    "partitioned",
    "prepared_parts",
    "BaseYears",
    "LINES_PER_PARTITION",
]
