"""Parquet footers read and written again in Thrift's compact protocol, field by field.

A footer (``FileMetaData``, parquet.thrift) is a Thrift struct. :func:`read_struct` lists a
struct's fields as spans of the buffer, without decoding their values; a caller rewrites the few
fields it changes and copies the others' bytes (:func:`write_struct`). Used to read decimal
columns as their stored bytes (rawdecimal.py) and to join Parquet files encoded in parts
(parquet_parts.py). Anything not well formed raises :class:`Malformed`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

#: Compact-protocol types (Thrift's TCompactProtocol): the booleans, i16, i64, binary, list, struct.
TRUE, FALSE, I16, I64, BINARY, LIST, STRUCT = 1, 2, 4, 6, 8, 9, 12

#: A struct's field as :func:`read_struct` gives it: id, compact type, where its value starts and ends.
Field = tuple[int, int, int, int]


class Malformed(Exception):
    """The bytes are not the compact-protocol struct expected."""


def varint(b: memoryview, i: int) -> tuple[int, int]:
    """The unsigned varint at ``i``, and where it ends."""
    r = s = 0
    while True:
        if i >= len(b) or s > 63:
            raise Malformed
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if not x & 0x80:
            return r, i


def zigzag(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def int_bytes(v: int) -> bytes:
    """An i16, i32 or i64 value as the compact protocol writes it (zigzag, then varint)."""
    return uvarint((v << 1) ^ (v >> 63))


def skip(b: memoryview, i: int, t: int) -> int:
    """The end of a compact-protocol value of type ``t`` that starts at ``i``."""
    if t in (TRUE, FALSE):  # a struct field's boolean is in its header
        return i
    if t == 3:
        return i + 1
    if t in (4, 5, 6):
        return varint(b, i)[1]
    if t == 7:
        return i + 8
    if t == BINARY:
        n, i = varint(b, i)
        return i + n
    if t in (LIST, 10):
        n, et, i = list_header(b, i)
        for _ in range(n):
            i = i + 1 if et in (TRUE, FALSE) else skip(b, i, et)
        return i
    if t == 11:
        n, i = varint(b, i)
        if n:
            kv = b[i]
            i += 1
            for _ in range(n):
                i = skip(b, skip(b, i, kv >> 4), kv & 15)
        return i
    if t == STRUCT:
        return read_struct(b, i)[1]
    raise Malformed


def list_header(b: memoryview, i: int) -> tuple[int, int, int]:
    """A list's length and element type, and where its first element starts."""
    if i >= len(b):
        raise Malformed
    h = b[i]
    n, et = h >> 4, h & 15
    i += 1
    if n == 15:
        n, i = varint(b, i)
    return n, et, i


def list_header_bytes(n: int, et: int) -> bytes:
    """The header of a list of ``n`` values of type ``et`` (the short form up to 14, as Thrift writes it)."""
    return bytes([(n << 4) | et]) if n < 15 else bytes([0xF0 | et]) + uvarint(n)


def read_struct(b: memoryview, i: int) -> tuple[list[Field], int]:
    """The fields of the struct at ``i``, and its end."""
    out: list[Field] = []
    fid = 0
    while True:
        if i >= len(b):
            raise Malformed
        h = b[i]
        i += 1
        if h == 0:
            return out, i
        delta, t = h >> 4, h & 15
        if delta:
            fid += delta
        else:
            z, i = varint(b, i)
            fid = zigzag(z)
        j = skip(b, i, t)
        out.append((fid, t, i, j))
        i = j


def write_struct(fields: Iterable[tuple[int, int, bytes | memoryview]]) -> bytes:
    """A struct of ``fields`` (id, compact type, value bytes; ascending ids), as Thrift writes it."""
    out = bytearray()
    prev = 0
    for fid, t, value in fields:
        delta = fid - prev
        out += bytes([(delta << 4) | t]) if 0 < delta <= 15 else bytes([t]) + int_bytes(fid)
        out += value
        prev = fid
    out.append(0)
    return bytes(out)


def spans(b: memoryview, fields: Iterable[Field]) -> Iterable[tuple[int, int, memoryview]]:
    """``fields`` with their values' bytes, for :func:`write_struct` (a struct copied as it is)."""
    return ((fid, t, b[s:e]) for fid, t, s, e in fields)


def int_value(b: memoryview, field: Field) -> int:
    """The value of an integer field."""
    if field[1] not in (4, 5, 6):
        raise Malformed
    return zigzag(varint(b, field[2])[0])


def footer(b: memoryview) -> tuple[list[Field], int]:
    """The fields of the footer (FileMetaData) of the Parquet file ``b``, and where the footer starts."""
    if len(b) < 12 or bytes(b[-4:]) != b"PAR1":
        raise Malformed
    size = struct.unpack("<i", bytes(b[-8:-4]))[0]
    start = len(b) - 8 - size
    if size <= 0 or start < 4:
        raise Malformed
    top, end = read_struct(b, start)
    if end != len(b) - 8:
        raise Malformed
    return top, start
