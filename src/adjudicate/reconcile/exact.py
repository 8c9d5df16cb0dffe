"""Exact integer helpers for reconciliation: grouped sums, rational rounding, decimals out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

INT64_MAX = np.iinfo(np.int64).max


def group_sum(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Σ values by group index (0..n-1), in int64, exactly (no float on the way)."""
    out = np.zeros(n, np.int64)
    if len(index):
        np.add.at(out, np.asarray(index, dtype=np.intp), np.asarray(values, dtype=np.int64))
    return out


def round_div(num, den) -> np.ndarray:
    """round(num / den) half away from zero, element-wise; ``den > 0``.

    Works on int64 arrays and on object arrays of Python ints (for products
    that may exceed 64 bits); the result has the input's dtype.
    """
    num = np.asarray(num)
    den = np.asarray(den)
    mag = np.abs(num)
    q, r = mag // den, mag % den  # np.divmod has no object loop
    q = q + np.asarray(2 * r >= den, dtype=bool).astype(np.int64)
    return np.where(num < 0, -q, q)


def to_int64(values: np.ndarray, what: str) -> np.ndarray:
    """Python-int (object) results back to int64; a value out of range is an internal error."""
    v = np.asarray(values)
    if v.dtype == object and v.size and (max(v.flat) > INT64_MAX or min(v.flat) < -INT64_MAX):
        raise OverflowError(f"{what} does not fit the engine's 64-bit fen")
    return v.astype(np.int64)


def decimal(units: np.ndarray, scale: int = 2, precision: int = 18, mask: np.ndarray | None = None) -> pa.Array:
    """int64 multiples of 10**-scale as Arrow ``decimal128(precision, scale)``, exactly."""
    units = np.ascontiguousarray(units, dtype=np.int64)
    words = np.empty((len(units), 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = units >> 63
    buffers = [None, pa.py_buffer(words)]
    if mask is not None and mask.any():
        buffers[0] = pa.py_buffer(np.packbits(~mask, bitorder="little"))
        return pa.Array.from_buffers(pa.decimal128(precision, scale), len(units), buffers, int(mask.sum()))
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(units), buffers)


def yuan_text(fen: int) -> str:
    """A fen amount as yuan text with two decimals, without float: -12345 -> '-123.45'."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(int(fen)), 100)
    return f"{sign}{q}.{r:02d}"
