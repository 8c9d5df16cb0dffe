"""One Parquet file encoded on several threads, byte for byte the file ``pq.write_table`` writes.

pyarrow encodes a file on one thread (apache/arrow#50866). Here a table is cut at its row-group
boundaries, each part is encoded by ``pq.write_table`` into memory on a pool thread (Arrow releases
the GIL while it encodes), and the parts are joined into one file: ``PAR1``, each part's column
chunks in order, and one footer: the first part's ``FileMetaData`` with every part's row groups,
their offsets moved by where the part's bytes landed, their ordinals renumbered and their rows
summed. A column chunk depends only on its own rows and the writer's options, so the chunks are
the ones a single write makes, and so is the footer (tests/test_parquet_parts.py compares bytes).
Each part is written to the file as soon as it and those before it are done, and only as many
parts as there are threads are queued ahead of it: memory holds a few encoded row groups.

The join refuses what it does not expect (a footer field it does not know, page indexes, bloom
filters, encryption, column chunks in another file, parts whose schemas differ): the table is
then written the plain way, by one ``pq.write_table``.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import compact_thrift as ct
from .compact_thrift import I16, I64, LIST, STRUCT, Field, Malformed

#: Writer options the join cannot take: what they add to a file holds offsets it does not move.
_REFUSED_OPTIONS = ("write_page_index", "encryption_properties", "bloom_filter_options", "write_bloom_filter")

# Fields of parquet.thrift's structs (apache/parquet-format): which are kept as they are, which
# are offsets into the file (moved by the part's place), and which are refused. A field not named
# here (a later version of the format) is refused too: it might be an offset.
#: FileMetaData: version, schema, num_rows, row_groups, key_value_metadata, created_by, column_orders
#: (encryption_algorithm 8 and footer_signing_key_metadata 9 refused).
_FILE_NUM_ROWS, _FILE_ROW_GROUPS = 3, 4
_FILE_FIELDS = {1, 2, 3, 4, 5, 6, 7}
#: RowGroup: columns, total_byte_size, num_rows, sorting_columns, file_offset, total_compressed_size, ordinal.
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_RG_FIELDS = {1, 2, 3, 4, 5, 6, 7}
#: ColumnChunk: file_offset (deprecated: 0 kept, as Arrow writes it), meta_data; file_path 1, the offset
#: and column indexes 4-7 (the page index) and encryption 8-9 refused.
_CC_FILE_OFFSET, _CC_META = 2, 3
_CC_FIELDS = {2, 3}
#: ColumnMetaData: data_page_offset, index_page_offset, dictionary_page_offset are offsets; fields 1-8,
#: 12, 13, 16, 17 (type, encodings, path, codec, counts and sizes, key-value metadata, statistics,
#: encoding stats, size and geospatial statistics) hold none; bloom_filter_offset/length (14, 15) refused.
_CM_OFFSETS = {9, 10, 11}
_CM_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17}


def joinable(options: dict[str, Any]) -> bool:
    """Whether files written with ``options`` (pq.write_table's) can be joined: no page indexes,
    bloom filters or encryption asked for."""
    return not any(options.get(k) for k in _REFUSED_OPTIONS)


def part_rows(num_rows: int, row_group: int) -> list[tuple[int, int]]:
    """(offset, rows) of each part: one row group each, as ``pq.write_table`` cuts them."""
    return [(i, min(row_group, num_rows - i)) for i in range(0, num_rows, row_group)]


class Encoders:
    """Threads that encode parts (``pool``, of ``workers`` threads), and the memory they encode into.

    A part is encoded into a buffer of the table slice's Arrow size (an encoded part is far
    smaller; pages never touched cost nothing) taken from the buffers of parts already written,
    else allocated: reused pages, where fresh ones cost 1.4-2 s per GiB on the machines measured
    (docs/memory.md). A part larger than its buffer is encoded again into a growing one. The
    buffers are freed with this object."""

    def __init__(self, pool: Executor, workers: int):
        self.pool = pool
        #: Parts of a table queued or held at a time (not counting the one being written): one a worker.
        self.ahead = workers
        self._free: list[pa.Buffer] = []
        self._lock = threading.Lock()

    def submit(self, table: pa.Table, options: dict[str, Any], row_group: int) -> Future[tuple[pa.Buffer, int]]:
        return self.pool.submit(self._encode, table, options, row_group)

    def _encode(self, table: pa.Table, options: dict[str, Any], row_group: int) -> tuple[pa.Buffer, int]:
        """The encoded part: its buffer, and how many of its bytes are the part."""
        need = _capacity(table)
        with self._lock:
            fits = [b for b in self._free if b.size >= need]
            buf = min(fits, key=lambda b: b.size) if fits else None
            if buf is not None:
                self._free.remove(buf)
        if buf is None:
            buf = pa.allocate_buffer(need)
        sink = pa.FixedSizeBufferWriter(buf)
        try:
            pq.write_table(table, sink, row_group_size=row_group, **options)
            return buf, sink.tell()
        except OSError:  # "Write out of bounds": larger than the buffer
            self.release(buf)
        data = _encode(table, options, row_group)
        return data, data.size

    def release(self, buf: pa.Buffer) -> None:
        """``buf``'s part is written: the buffer encodes another."""
        with self._lock:
            self._free.append(buf)


class ParquetParts:
    """A table being written: its parts submitted to ``encoders`` now, joined into a file by :meth:`write`.

    Written the plain way (one ``pq.write_table``, by ``write``) when there are no encoders, fewer
    than two row groups, or ``options`` the join cannot take (:func:`joinable`). ``write`` must be
    called, or :meth:`cancel` on an error: the parts hold their encoded bytes until then."""

    def __init__(self, table: pa.Table, options: dict[str, Any], row_group: int, encoders: Encoders | None):
        self.table, self.options, self.row_group = table, options, row_group
        self.encoders = encoders
        self.futures: list[Future[tuple[pa.Buffer, int]]] | None = None
        self._next: Iterator[pa.Table] = iter(())
        if encoders is not None and len(table) > row_group and joinable(options):
            self._next = (table.slice(i, n) for i, n in part_rows(len(table), row_group))
            self.futures = []
            for _ in range(encoders.ahead):
                self._submit()

    def _submit(self) -> None:
        """The next part onto the pool, if any is left."""
        assert self.encoders is not None and self.futures is not None
        part = next(self._next, None)
        if part is not None:
            self.futures.append(self.encoders.submit(part, self.options, self.row_group))

    def write(self, path: Path) -> None:
        """The file at ``path``: the parts joined, each written as soon as it and those before it are
        encoded; or, when the join refuses them, the table written the plain way."""
        if self.futures is not None:
            try:
                with open(path, "wb") as f:
                    _join(self._parts(), f.write)
                return
            except Malformed:
                pass
            finally:
                self.cancel()
        pq.write_table(self.table, path, row_group_size=self.row_group, **self.options)

    def _parts(self) -> Iterator[pa.Buffer]:
        """The encoded parts in order, each buffer given back once the next part is asked for; a part
        is queued as each is taken (:attr:`Encoders.ahead` parts in the pool or in memory)."""
        assert self.encoders is not None and self.futures is not None
        k = 0
        while k < len(self.futures):
            buf, size = self.futures[k].result()
            self._submit()
            try:
                yield buf.slice(0, size)
            finally:
                self.encoders.release(buf)
            k += 1

    def cancel(self) -> None:
        """Drop the parts not yet encoded (those being encoded finish on the pool)."""
        for fut in self.futures or ():
            fut.cancel()
        self.futures = None
        self._next = iter(())


def write_table(
    table: pa.Table, path: Path, options: dict[str, Any], row_group: int, encoders: Encoders | None = None
) -> None:
    """``pq.write_table(table, path, row_group_size=row_group, **options)``, the row groups encoded
    by ``encoders`` when there are several (the same bytes)."""
    ParquetParts(table, options, row_group, encoders).write(path)


def _capacity(table: pa.Table) -> int:
    """The buffer a part is encoded into: its Arrow size and a MiB (headers, footer, a dictionary
    that falls back to plain)."""
    return table.nbytes + (1 << 20)


def _encode(table: pa.Table, options: dict[str, Any], row_group: int) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group, **options)
    return sink.getvalue()


def _join(parts: Iterable[pa.Buffer], write: Callable[[bytes | memoryview], object]) -> None:
    """Parquet files ``parts`` (of one schema and options) joined into one, passed to ``write`` in
    order: raises Malformed, before anything of a part is written, when a part is not joinable."""
    write(b"PAR1")
    at = 4  # where the next part's column chunks land
    head: list[tuple[int, int, bytes]] = []  # the first footer's fields, bar num_rows and row_groups (copied:
    # a part's buffer is reused once it is written)
    groups: list[bytes] = []
    rows = 0
    for data in parts:
        b = memoryview(data).cast("B")
        if bytes(b[:4]) != b"PAR1":
            raise Malformed
        top, start = ct.footer(b)
        if any(f[0] not in _FILE_FIELDS for f in top):
            raise Malformed
        rest = [(fid, t, bytes(b[s:e])) for fid, t, s, e in top if fid not in (_FILE_NUM_ROWS, _FILE_ROW_GROUPS)]
        if not head:
            head = rest
        elif rest != head:
            raise Malformed  # another schema, key-value metadata or writer
        by_id = {f[0]: f for f in top}
        if _FILE_NUM_ROWS not in by_id or _FILE_ROW_GROUPS not in by_id:
            raise Malformed
        rows += ct.int_value(b, by_id[_FILE_NUM_ROWS])
        groups += _moved_row_groups(b, by_id[_FILE_ROW_GROUPS], at - 4, len(groups), start)
        write(b[4:start])
        at += start - 4
    if not head:
        raise Malformed
    row_groups = ct.list_header_bytes(len(groups), STRUCT) + b"".join(groups)
    fields = head + [(_FILE_NUM_ROWS, I64, ct.int_bytes(rows)), (_FILE_ROW_GROUPS, LIST, row_groups)]
    meta = ct.write_struct(sorted(fields, key=lambda f: f[0]))
    write(meta + struct.pack("<i", len(meta)) + b"PAR1")


def _moved_row_groups(b: memoryview, field: Field, shift: int, ordinal: int, start: int) -> list[bytes]:
    """The row groups of a part's footer (``field``), their offsets moved by ``shift`` and numbered
    from ``ordinal``. Each offset must point into the part's column chunks (before ``start``)."""
    if field[1] != LIST:
        raise Malformed
    n, et, i = ct.list_header(b, field[2])
    if et != STRUCT:
        raise Malformed

    def moved(f: Field) -> bytes:
        v = ct.int_value(b, f)
        if not 4 <= v < start:
            raise Malformed
        return ct.int_bytes(v + shift)

    out = []
    for k in range(n):
        fields, i = ct.read_struct(b, i)
        group: list[tuple[int, int, bytes | memoryview]] = []
        for fid, t, s, e in fields:
            if fid not in _RG_FIELDS:
                raise Malformed
            if fid == _RG_COLUMNS:
                group.append((fid, t, _moved_columns(b, (fid, t, s, e), moved)))
            elif fid == _RG_FILE_OFFSET:
                group.append((fid, t, moved((fid, t, s, e))))
            elif fid == _RG_ORDINAL:
                if t != I16:
                    raise Malformed
                group.append((fid, t, ct.int_bytes(ordinal + k)))
            else:
                group.append((fid, t, b[s:e]))
        out.append(ct.write_struct(group))
    if i != field[3]:
        raise Malformed
    return out


def _moved_columns(b: memoryview, field: Field, moved: Callable[[Field], bytes]) -> bytes:
    """A row group's list of ColumnChunk, their offsets moved."""
    if field[1] != LIST:
        raise Malformed
    n, et, i = ct.list_header(b, field[2])
    if et != STRUCT:
        raise Malformed
    out: list[bytes | memoryview] = [b[field[2] : i]]
    for _ in range(n):
        fields, i = ct.read_struct(b, i)
        chunk: list[tuple[int, int, bytes | memoryview]] = []
        for fid, t, s, e in fields:
            if fid not in _CC_FIELDS:
                raise Malformed
            if fid == _CC_FILE_OFFSET:  # deprecated: 0 unless a ColumnMetaData was written outside the footer
                chunk.append((fid, t, b[s:e] if ct.int_value(b, (fid, t, s, e)) == 0 else moved((fid, t, s, e))))
            else:  # meta_data
                if t != STRUCT:
                    raise Malformed
                meta = []
                for g in ct.read_struct(b, s)[0]:
                    if g[0] not in _CM_FIELDS:
                        raise Malformed
                    meta.append((g[0], g[1], moved(g) if g[0] in _CM_OFFSETS else b[g[2] : g[3]]))
                chunk.append((fid, t, ct.write_struct(meta)))
        out.append(ct.write_struct(chunk))
    if i != field[3]:
        raise Malformed
    return b"".join(out)
