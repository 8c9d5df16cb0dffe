"""Exact money at the edges: Arrow amounts in, integer fen inside, decimal128 out.

Inside the engine every amount is an ``int64`` number of fen and every ratio an
``int64`` number of basis points. This module is the only place that converts,
and it does so exactly (contract §1):

- ``decimal128(p, s)``: the unscaled integer is rescaled with round half away
  from zero;
- ``int64`` yuan: multiplied by 100 with an overflow check;
- ``float64`` yuan: read as the shortest decimal that prints back to the same
  float (Python's ``repr``), then rounded half away from zero.  Most floats are
  settled by a vectorised fast path; the few whose value lies too close to a
  rounding tie for binary arithmetic to decide are settled with ``Decimal``.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Largest magnitude, in fen, of any amount the engine accepts: 10^14 fen is a
#: trillion yuan. It leaves room for sums over a member-year and for products
#: with ratios in basis points (10^14 * 10^4 * 10^4 fits in 128 bits, and sums
#: of 10^4 such amounts still fit in int64).
MAX_FEN = 10**14

OUTPUT_TYPE = pa.decimal128(18, 2)


class AmountError(ValueError):
    """An amount that cannot be represented exactly; ``row`` is the first bad row."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _decimal_unscaled(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Unscaled integers of a decimal128 array as int64 plus a 'does not fit' mask."""
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    words = words[2 * arr.offset : 2 * (arr.offset + len(arr))].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    fits = high == (low >> 63)  # the high word is only the sign extension
    return low, ~fits


def to_scaled(arr: pa.Array | pa.ChunkedArray, scale: int, what: str = "amount",
              exact: bool = False, limit: int = MAX_FEN) -> np.ndarray:
    """Convert a numeric Arrow array to int64 units of ``10**-scale``.

    Nulls must have been rejected by the caller (they become 0 here).
    ``exact=True`` makes any value that is not a whole number of units an
    error (used for ratios, which must be whole basis points).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_decimal(t):
        if t.scale > scale:
            if exact:
                rounded = pc.round(arr, ndigits=scale, round_mode="half_towards_infinity")
                unequal = pc.fill_null(pc.not_equal(rounded, arr), False).to_numpy(zero_copy_only=False)
                if unequal.any():
                    row = _first(unequal)
                    raise AmountError(f"{what} {arr[row].as_py()} is not a whole multiple of 1e-{scale}", row)
            arr = pc.round(arr, ndigits=scale, round_mode="half_towards_infinity")
        arr = arr.cast(pa.decimal128(38, scale))
        values, overflow = _decimal_unscaled(arr)
        values = values.copy()
    elif pa.types.is_integer(t):
        raw = arr.cast(pa.int64()).to_numpy(zero_copy_only=False)
        bound = limit // 10**scale
        overflow = np.abs(raw) > bound
        values = np.where(overflow, 0, raw) * 10**scale
    elif pa.types.is_floating(t):
        x = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        values, overflow = _floats_to_scaled(x, scale, exact, what)
    else:
        raise AmountError(f"{what} has type {t}, expected a decimal, integer or float")
    if arr.null_count:
        values[np.asarray(arr.is_null())] = 0
    overflow = overflow | (np.abs(values) > limit)
    if overflow.any():
        row = _first(overflow)
        raise AmountError(
            f"{what} {arr[row].as_py()} is too large for exact arithmetic "
            f"(the engine accepts magnitudes below {limit // 10**scale:,} at this scale)", row)
    return values.astype(np.int64, copy=False)


def _floats_to_scaled(x: np.ndarray, scale: int, exact: bool, what: str) -> tuple[np.ndarray, np.ndarray]:
    overflow = ~np.isfinite(x) | (np.abs(x) >= 2.0**62 / 10**scale)
    xs = np.where(overflow, 0.0, x)
    y = xs * 10**scale
    fl = np.floor(y)
    frac = y - fl
    # Too close to a tie (or, for exact ratios, to any non-integer) for binary
    # arithmetic to decide: settle these few with the decimal repr.
    tol = 1e-7 * np.maximum(1.0, np.abs(y))
    doubt = np.abs(frac - 0.5) < tol
    values = np.where(y >= 0, np.floor(y + 0.5), np.ceil(y - 0.5)).astype(np.int64)
    if exact:
        off = np.abs(y - np.round(y)) > tol
        doubt |= off
    for i in np.flatnonzero(doubt & ~overflow):
        d = Decimal(repr(float(x[i]))).scaleb(scale)
        q = d.quantize(Decimal(1), rounding=ROUND_HALF_UP)  # ROUND_HALF_UP is away from zero
        if exact and q != d:
            raise AmountError(f"{what} {x[i]!r} is not a whole multiple of 1e-{scale}", int(i))
        values[i] = int(q)
    return values, overflow


def to_fen(arr: pa.Array | pa.ChunkedArray, what: str = "amount") -> np.ndarray:
    """Amounts in yuan (decimal, int or float) to int64 fen, rounded half away from zero."""
    return to_scaled(arr, 2, what)


def fen_to_decimal(fen: np.ndarray) -> pa.Array:
    """int64 fen to Arrow ``decimal128(18, 2)`` yuan, exactly, without Python objects."""
    fen = np.ascontiguousarray(fen, dtype=np.int64)
    words = np.empty((len(fen), 2), dtype=np.int64)
    words[:, 0] = fen
    words[:, 1] = fen >> 63
    return pa.Array.from_buffers(OUTPUT_TYPE, len(fen), [None, pa.py_buffer(words)])


def round_half_away(numerator: int, denominator: int) -> int:
    """Exact rational rounding used by the reference code: round(n / d) half away from zero."""
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def yuan(fen: int) -> Decimal:
    """One fen amount as a Decimal in yuan, for display."""
    return Decimal(fen).scaleb(-2)
