"""Parquet decimals read as their stored bytes, converted to integers by the engine.

A Parquet decimal of up to 18 digits is usually stored as fixed-length big-endian
bytes (FIXED_LEN_BYTE_ARRAY, 6 bytes for the claims' amounts and prices). Arrow
turns each value into a 16-byte ``decimal128`` (half of the claims file's decode
time), which the engine then narrows to int64 again. :func:`raw_metadata` gives a
copy of the file's footer in which chosen decimal columns lose their decimal
annotation: a ``ParquetFile`` opened with it reads them as ``fixed_size_binary``
(the stored bytes, no conversion), and :func:`unscaled` makes them int64 in one
compiled pass. The data pages are not touched; only the footer (a few KiB of
Thrift's compact protocol) is rewritten, in memory.

Anything this module does not expect (a nested schema, another encoding of the
footer, an unknown Thrift type) gives None: the caller reads the file as Arrow does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .compact_thrift import (
    LIST,
    STRUCT,
    Field,
    Malformed,
    footer,
    int_value,
    list_header,
    read_struct,
    spans,
    varint,
    write_struct,
)

#: Parquet's physical type FIXED_LEN_BYTE_ARRAY, and the SchemaElement fields that make it a decimal:
#: converted_type, scale, precision, logicalType (parquet.thrift).
_FLBA = 7
_DECIMAL_FIELDS = (6, 7, 8, 10)
#: ConvertedType.DECIMAL, and LogicalType's union member DECIMAL (parquet.thrift).
_CONVERTED_DECIMAL = 5
_LOGICAL_DECIMAL = 5
#: The most decimal digits a fixed-length signed integer of 1..8 bytes holds (Arrow's limit per width).
_MAX_PRECISION = (0, 2, 4, 6, 9, 11, 14, 16, 18)


@dataclass(frozen=True)
class RawDecimal:
    """A decimal column read as stored: ``width`` big-endian bytes, unscaled by 10**``scale``."""

    width: int
    scale: int


def _decimal(b: memoryview, by_id: dict[int, Field]) -> tuple[int, int] | None:
    """(scale, precision) of a SchemaElement as Arrow reads it: the logical type when there is one,
    else the converted type DECIMAL's scale and precision; None when Arrow does not read a decimal."""
    if 10 in by_id:
        if by_id[10][1] != STRUCT:
            raise Malformed
        union = read_struct(b, by_id[10][2])[0]
        if len(union) != 1 or union[0][0] != _LOGICAL_DECIMAL or union[0][1] != STRUCT:
            return None
        dec = {f[0]: f for f in read_struct(b, union[0][2])[0]}
        if 1 not in dec or 2 not in dec:
            return None
        return int_value(b, dec[1]), int_value(b, dec[2])
    if 6 in by_id and int_value(b, by_id[6]) == _CONVERTED_DECIMAL and 7 in by_id and 8 in by_id:
        return int_value(b, by_id[7]), int_value(b, by_id[8])
    return None


def raw_metadata(data: pa.Buffer, scales: dict[str, int]) -> tuple[pq.FileMetaData, dict[str, RawDecimal]] | None:
    """The footer of the Parquet file ``data`` with the decimal columns named in ``scales``
    stored as fixed-length bytes of at most 8 and of the scale given there read as those
    bytes; and those columns. None when no column qualifies, or the footer is not the
    plain (unencrypted, flat-schema) kind read here."""
    try:
        return _raw_metadata(memoryview(data).cast("B"), scales)
    except (Malformed, IndexError, struct.error, UnicodeDecodeError, pa.ArrowException, OSError):
        return None


def _raw_metadata(b: memoryview, scales: dict[str, int]) -> tuple[pq.FileMetaData, dict[str, RawDecimal]] | None:
    top, start = footer(b)
    end = len(b) - 8
    found: dict[str, RawDecimal] = {}
    parts: list[bytes] = []
    for fid, t, s, e in top:
        if fid != 2 or t != LIST:  # FileMetaData.schema: list<SchemaElement>
            continue
        n, et, i = list_header(b, s)
        if et != STRUCT:
            return None
        head = bytes(b[s:i])
        for k in range(n):
            fields, j = read_struct(b, i)
            by_id = {f[0]: f for f in fields}
            if k > 0 and 5 in by_id:  # a nested column: not read here
                return None
            name = bytes(b[by_id[4][2] : by_id[4][3]]) if 4 in by_id else b""
            name = name[varint(memoryview(name), 0)[1] :] if name else b""
            col = name.decode() if k > 0 else ""
            # a decimal of the scale asked for, as Arrow reads it (an annotation Arrow does not apply,
            # such as more digits than the width holds, leaves Arrow's bytes: not read here either)
            dec = _decimal(b, by_id) if k > 0 and col in scales else None
            if (
                dec is not None
                and 1 in by_id
                and int_value(b, by_id[1]) == _FLBA
                and 2 in by_id
                and 1 <= int_value(b, by_id[2]) <= 8
                and dec[0] == scales[col]
                and dec[0] <= dec[1] <= _MAX_PRECISION[int_value(b, by_id[2])]
                and dec[1] >= 1
                and col not in found
            ):
                found[col] = RawDecimal(int_value(b, by_id[2]), scales[col])
                parts.append(write_struct(spans(b, (f for f in fields if f[0] not in _DECIMAL_FIELDS))))
            else:
                parts.append(bytes(b[i:j]))
            i = j
        if i != e:
            return None
        schema = head + b"".join(parts)
        break
    else:
        return None
    if not found:
        return None
    # the footer again, the schema's bytes replaced (field headers are relative: unchanged)
    first = next(f for f in top if f[0] == 2)
    meta = bytes(b[start : first[2]]) + schema + bytes(b[first[3] : end])
    fake = b"PAR1" + meta + struct.pack("<i", len(meta)) + b"PAR1"
    return pq.read_metadata(pa.BufferReader(fake)), found


def unscaled(arr: pa.Array, width: int, out: np.ndarray) -> None:
    """The values of a ``fixed_size_binary`` array of ``width``-byte decimals into ``out`` (int64),
    nulls as 0."""
    from . import _encode

    data = arr.buffers()[1]
    raw = (
        np.frombuffer(data, np.uint8)[arr.offset * width : (arr.offset + len(arr)) * width]
        if data is not None
        else np.empty(0, np.uint8)
    )
    _encode.big_endian_ints(raw, width, out)
    if arr.null_count:
        out[np.asarray(arr.is_null(), dtype=bool)] = 0
