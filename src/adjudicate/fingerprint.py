"""Fingerprints of what each member's settlement depends on, to find what a correction changed.

A member's claims are settled together (annual counters, and soon personal
accounts carried from one year to the next), so the unit of change is the
member: a change to any claim of a member, a line, the catalogue row a line
uses, the member's row or a provider row of its claims changes the member's
fingerprint, and the member is compared again from its first year on.

The hashes are 64-bit mixes (splitmix64's finaliser), combined column by
column and summed per claim and per member by compiled passes (_fingerprint.pyx);
strings are hashed byte by byte, once per distinct value where they come
dictionary-encoded. The values are stored in datasets and compared across
them: they do not change with the code that computes them. A collision (two different inputs with one fingerprint, about 2^-64)
would leave a change unseen; the readjudicate totals check would then fail
and the full comparison run instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import _fingerprint as _fp
from .encode import Encoded
from .inputs import Table
from .outputs import line_item_codes

_NULL_HASH = np.uint64(0x5A5A5A5A)  # a null string's hash (as _fingerprint.string_hashes gives it)


def strings(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 hash of each string (nulls hash alike, apart from every string)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):  # each distinct value hashed once
        if len(arr.dictionary) == 0:  # nothing but nulls
            return np.full(len(arr), _NULL_HASH, np.uint64)
        h = strings(arr.dictionary)[np.asarray(arr.indices.fill_null(0), np.int64)]
        if arr.null_count:
            h[np.asarray(arr.is_null(), bool)] = _NULL_HASH
        return h
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return _empty()
    _, off, data = arr.buffers()
    offsets = np.frombuffer(off, np.int64 if pa.types.is_large_string(arr.type) else np.int32)
    valid = np.asarray(arr.is_valid(), bool).view(np.uint8)
    empty = np.zeros(0, np.uint8)
    return _fp.string_hashes(
        offsets[arr.offset : arr.offset + n + 1], empty if data is None else np.frombuffer(data, np.uint8), valid
    )


def _empty() -> np.ndarray:
    return np.zeros(0, np.uint64)


def _combine(h: np.ndarray, v) -> None:
    """h = mix(h * GOLD + mix(v)) in place; text hashed first (strings), booleans as 0/1."""
    if isinstance(v, (pa.Array, pa.ChunkedArray)):
        v = strings(v)
    v = np.ascontiguousarray(v)
    _fp.combine(h, v.view(np.uint8) if v.dtype == bool else v)


def table_rows(t: Table) -> np.ndarray:
    """A hash of each row of a checked input table: every column, nulls included."""
    h = np.zeros(t.rows, np.uint64)
    for c in t.spec.columns:
        _combine(h, t.values[c.name])
        _combine(h, t.nulls[c.name])
    return h


def claims(enc: Encoded, members: Table, providers: Table) -> np.ndarray:
    """Per accepted claim (settlement order): a hash of the claim, its lines and the rows they use."""
    n = len(enc.member)
    if n == 0:
        return _empty()
    line = np.zeros(len(enc.line_no), np.uint64)
    for v in (enc.line_no, enc.amount, enc.quantity, enc.cls, enc.item_ratio, enc.max_price):
        _combine(line, v)
    _combine(line, line_item_codes(enc))
    # the claim: its lines summed, each with its place in the claim (order-sensitive)
    h = _fp.ranked_sums(line, np.ascontiguousarray(enc.line_start, np.int64))
    del line
    _combine(h, enc.claim_id)
    for v in (enc.setting, enc.referral, enc.settle_date, enc.year, enc.months, enc.level_row):
        _combine(h, v)
    _combine(h, table_rows(members)[enc.member])
    _combine(h, table_rows(providers)[enc.provider])
    return h


def members(enc: Encoded, claim_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(member rows with accepted claims, a hash of each one's claims in settlement order)."""
    n = len(enc.member)
    if n == 0:
        return np.zeros(0, np.int64), _empty()
    starts = np.flatnonzero(np.r_[True, enc.member[1:] != enc.member[:-1]])
    return enc.member[starts], _fp.mixed(_fp.ranked_sums(claim_hash, np.r_[starts, n].astype(np.int64)))
