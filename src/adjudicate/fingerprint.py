"""Fingerprints of what each member's settlement depends on, to find what a correction changed.

A member's claims are settled together (annual counters, and soon personal
accounts carried from one year to the next), so the unit of change is the
member: a change to any claim of a member, a line, the catalogue row a line
uses, the member's row or a provider row of its claims changes the member's
fingerprint, and the member is compared again from its first year on.

Everything is vectorised: 64-bit mixes (splitmix64's finaliser) summed per
claim and per member; strings are hashed byte by byte, once per distinct
value. A collision (two different inputs with one fingerprint, about 2^-64)
would leave a change unseen; the readjudicate totals check would then fail
and the full comparison run instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .encode import Encoded
from .inputs import Table

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise (uint64, wrapping)."""
    x = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def _combine(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return mix(h * _GOLD + mix(v))


def strings(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 hash of each string (nulls hash alike, apart from every string)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    pos = np.arange(hi - lo, dtype=np.int64) - np.repeat(offsets[:-1] - lo, lengths)
    with np.errstate(over="ignore"):
        contrib = mix(data[lo:hi].astype(np.uint64) + (pos.astype(np.uint64) + np.uint64(1)) * _GOLD)
    cs = np.r_[np.uint64(0), np.cumsum(contrib, dtype=np.uint64)]
    with np.errstate(over="ignore"):
        h = mix(cs[offsets[1:] - lo] - cs[offsets[:-1] - lo] + lengths.astype(np.uint64))
    nulls = np.asarray(arr.is_null(), bool)
    h[nulls] = np.uint64(0x5A5A5A5A)
    return h


def _column(v) -> np.ndarray:
    if isinstance(v, (pa.Array, pa.ChunkedArray)):
        return strings(v)
    v = np.asarray(v)
    if v.dtype == bool:
        v = v.view(np.uint8)
    return v.astype(np.int64).view(np.uint64) if v.dtype != np.uint64 else v


def table_rows(t: Table) -> np.ndarray:
    """A hash of each row of a checked input table: every column, nulls included."""
    h = np.zeros(t.rows, np.uint64)
    for c in t.spec.columns:
        h = _combine(h, _column(t.values[c.name]))
        h = _combine(h, t.nulls[c.name].view(np.uint8))
    return h


def claims(enc: Encoded, members: Table, providers: Table) -> np.ndarray:
    """Per accepted claim (settlement order): a hash of the claim, its lines and the rows they use."""
    n = len(enc.member)
    if n == 0:
        return np.zeros(0, np.uint64)
    item = enc.item_code
    if isinstance(item, pa.ChunkedArray):
        item = item.combine_chunks()
    coded = item.dictionary_encode()
    item_hash = strings(coded.dictionary)[np.asarray(pc.fill_null(coded.indices, 0), np.int64)]
    line = np.zeros(len(enc.line_no), np.uint64)
    for v in (enc.line_no, enc.amount, enc.quantity, enc.cls, enc.item_ratio, enc.max_price, item_hash):
        line = _combine(line, _column(v))
    # a line's place in its claim counts (order-sensitive sum)
    line = _combine(line, np.arange(len(line)) - enc.line_start[enc.line_claim])
    cs = np.r_[np.uint64(0), np.cumsum(line, dtype=np.uint64)]
    with np.errstate(over="ignore"):
        h = cs[enc.line_start[1:]] - cs[enc.line_start[:-1]]
    h = _combine(h, strings(enc.claim_id))
    for v in (enc.setting, enc.referral, enc.settle_date, enc.year, enc.months, enc.level_row):
        h = _combine(h, _column(v))
    h = _combine(h, table_rows(members)[enc.member])
    h = _combine(h, table_rows(providers)[enc.provider])
    return h


def members(enc: Encoded, claim_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(member rows with accepted claims, a hash of each one's claims in settlement order)."""
    n = len(enc.member)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    starts = np.flatnonzero(np.r_[True, enc.member[1:] != enc.member[:-1]])
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    part = _combine(claim_hash, rank)
    cs = np.r_[np.uint64(0), np.cumsum(part, dtype=np.uint64)]
    ends = np.r_[starts[1:], n]
    with np.errstate(over="ignore"):
        return enc.member[starts], mix(cs[ends] - cs[starts])
