"""Exact money at the edges: Arrow amounts in, integer fen inside, decimal128 out.

Inside the engine every amount is an ``int64`` number of fen and every ratio an
``int64`` number of basis points. This module is the only place that converts,
and it does so exactly (contract §1):

- ``decimal128(p, s)`` / ``decimal256(p, s)``: the unscaled integer is
  rescaled with round half away from zero, in integer arithmetic;
- integers (yuan, whole): multiplied by the scale with a range check;
- ``float64`` yuan: read as the shortest decimal that prints back to the same
  float (Python's ``repr``), then rounded half away from zero.  Most floats are
  settled by a vectorised fast path; the few whose value lies too close to a
  rounding tie for binary arithmetic to decide are settled with ``Decimal``.
  ``float32`` (and ``float16``) are read the same way, as the shortest decimal
  that prints back to the same ``float32``;
- text (CSV only): the decimal number it spells, exactly.

A value that is not a finite number, or whose scaled magnitude exceeds the
limit, raises :class:`AmountError` naming the first offending row.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _core

#: Largest magnitude, in fen, of any amount the engine accepts: 10^14 fen is a
#: trillion yuan. It leaves room for sums over a member-year and for products
#: with ratios in basis points (10^14 * 10^4 * 10^4 fits in 128 bits, and sums
#: of 10^4 such amounts still fit in int64).
MAX_FEN = 10**14

OUTPUT_TYPE = pa.decimal128(18, 2)

#: Prices (``unit_price``, ``max_unit_price``) are exact to 0.0001 yuan (contract §1):
#: inside, an int64 number of 1/10000 yuan.
PRICE_SCALE = 4

_INEXACT = "{what} {value} is not a whole multiple of one {unit}"

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class AmountError(ValueError):
    """An amount that cannot be represented exactly; ``row`` is the first bad row."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _null_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.zeros(len(arr), bool)
    return np.asarray(arr.is_null(), dtype=bool)


def _show(v) -> str:
    """A value for an error message: plain Python, never numpy's repr."""
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v) if isinstance(v, str) else str(v)


def to_scaled(
    arr: pa.Array | pa.ChunkedArray,
    scale: int,
    what: str = "amount",
    exact: bool = False,
    limit: int = MAX_FEN,
    from_text: bool = False,
    inexact: str | None = None,
) -> np.ndarray:
    """Convert a numeric Arrow array to int64 units of ``10**-scale``.

    Nulls become 0 (the caller keeps the null mask). ``exact=True`` makes any
    value that is not a whole number of units an error (used for ratios, which
    must be whole basis points). ``from_text=True`` also accepts strings that
    spell a decimal number (CSV input); otherwise a string column is a type
    error. Any magnitude above ``limit`` units is an error: the engine's
    integers could not hold it, or its products, exactly (contract §1).
    ``inexact`` words the error for a value that is not a whole number of units
    (``{what}`` and ``{value}`` are filled in).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    nulls = _null_mask(arr)
    if pa.types.is_null(t):
        return np.zeros(len(arr), np.int64)
    if pa.types.is_decimal(t):
        values, bad, why = _decimal_to_scaled(arr, scale, exact, nulls)
    elif pa.types.is_integer(t):
        values, bad, why = _integers_to_scaled(arr, scale, limit, nulls)
    elif pa.types.is_floating(t):
        if t != pa.float64():
            # The shortest decimal that prints back to the same float32 (Arrow
            # prints floats that way), read as a float64 whose repr is that decimal.
            arr = pc.cast(pc.cast(pc.cast(arr, pa.float32()), pa.string()), pa.float64())
        x = np.asarray(pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
        values, bad, why = _floats_to_scaled(x, scale, exact, nulls)
    elif from_text and (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
        values, bad, why = _text_to_scaled(arr.cast(pa.string()), scale, exact, nulls)
    else:
        raise AmountError(f"{what} has type {t}, expected a decimal, integer or float")
    if nulls.any():  # (no column-length temporary when there is no null)
        values = np.where(nulls, 0, values)
    values = values.astype(np.int64, copy=False)
    if not values.flags.writeable:  # callers get an array of their own, as always
        values = values.copy()
    bad = bad & ~nulls
    if bad.any():
        row = _first(bad)
        message = why.get(row)
        if not message:
            raise AmountError(_too_large(what, arr[row].as_py(), scale, limit), row)
        unit = "basis point (0.0001)" if scale == 4 else f"1e-{scale}"
        if inexact and message == _INEXACT:
            message = inexact
        raise AmountError(message.format(what=what, value=_show(arr[row].as_py()), unit=unit), row)
    over = ((values > limit) | (values < -limit)) & ~nulls
    if over.any():
        row = _first(over)
        raise AmountError(_too_large(what, arr[row].as_py(), scale, limit), row)
    return values


def _too_large(what: str, value, scale: int, limit: int) -> str:
    return (
        f"{what} {_show(value)} is too large for exact arithmetic in the engine's 64-bit integers "
        f"(contract §1); the largest accepted magnitude is {Decimal(limit).scaleb(-scale):,f}"
    )


def _decimal_words(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Low 64 bits of each unscaled decimal, and whether the value fits in them."""
    width = arr.type.byte_width // 8  # 2 for decimal128, 4 for decimal256
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    words = words[width * arr.offset : width * (arr.offset + len(arr))].reshape(-1, width)
    low = words[:, 0]
    fits = np.all(words[:, 1:] == (low >> 63)[:, None], axis=1)
    return low.copy(), fits


def _decimal_to_scaled(arr: pa.Array, scale: int, exact: bool, nulls: np.ndarray):
    """Rescale exactly in integers; values whose unscaled integer exceeds int64 go through Decimal.

    A rescaling by at most 10**18 is one compiled pass over Arrow's buffer
    (``_core.decimals_to_scaled``): no temporary array of the column's length but
    the result and a status byte each. Other scales take the NumPy formulation."""
    s = arr.type.scale
    if abs(scale - s) <= 18 and len(arr):
        return _decimal_compiled(arr, scale, exact, nulls)
    return _decimal_numpy(arr, scale, exact, nulls)


def _decimal_compiled(arr: pa.Array, scale: int, exact: bool, nulls: np.ndarray):
    width = arr.type.byte_width // 8  # 2 for decimal128, 4 for decimal256
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[width * arr.offset : width * (arr.offset + len(arr))]
    shift = scale - arr.type.scale
    values = np.empty(len(arr), np.int64)
    status = np.empty(len(arr), np.uint8)
    big = MAX_FEN * 10**4 // 10**shift if shift >= 0 else 0
    _core.decimals_to_scaled(words, width, nulls.view(np.uint8), shift, exact, big, values, status)
    bad = np.zeros(len(arr), bool)
    why: dict[int, str] = {}
    for i in np.flatnonzero(status).tolist():
        if status[i] == 1:  # beyond int64: exactly, through Decimal
            v, problem = _decimal_value(arr[i].as_py(), scale, exact)
            if problem is not None:
                bad[i] = True
                why[i] = problem
            else:
                values[i] = v
        else:
            bad[i] = True
            if status[i] == 2:
                why[i] = _INEXACT
    return values, bad, why


def _decimal_numpy(arr: pa.Array, scale: int, exact: bool, nulls: np.ndarray):
    s = arr.type.scale
    unscaled, fits = _decimal_words(arr)
    fits &= unscaled != np.iinfo(np.int64).min  # |min| has no int64 magnitude
    fits |= nulls
    unscaled = np.where(fits & ~nulls, unscaled, 0)
    bad = np.zeros(len(arr), bool)
    why: dict[int, str] = {}
    if s > scale and s - scale <= 18:
        div = np.int64(10 ** (s - scale))
        mag = np.abs(unscaled)
        q, r = np.divmod(mag, div)
        if exact:
            inexact = (r != 0) & fits
            if inexact.any():
                row = _first(inexact)
                bad[row] = True
                why[row] = _INEXACT
        q = q + (2 * r >= div)
        values = np.where(unscaled < 0, -q, q)
    elif s > scale:
        values = np.zeros(len(arr), np.int64)
        fits &= unscaled == 0  # anything else: settle with Decimal below
    elif scale - s <= 18:
        mul = 10 ** (scale - s)
        big = np.abs(unscaled) > MAX_FEN * 10**4 // mul  # far beyond any limit; avoids wrapping
        bad |= big & fits
        values = np.where(big, 0, unscaled) * np.int64(mul)
    else:
        values = np.zeros(len(arr), np.int64)
        bad |= (unscaled != 0) & fits
    for i in np.flatnonzero(~fits):
        v, problem = _decimal_value(arr[int(i)].as_py(), scale, exact)
        if problem is not None:
            bad[i] = True
            why[int(i)] = problem
        else:
            values[i] = v
    return values, bad, why


def _decimal_value(d: Decimal, scale: int, exact: bool) -> tuple[int, str | None]:
    """One Decimal to whole units of 1e-scale, half away from zero; (0, None-or-problem)."""
    if not d.is_finite():
        return 0, "{what} {value} is not a finite number"
    if d != 0 and d.adjusted() > 30:
        return 0, ""  # too large: the caller words it
    with localcontext() as ctx:
        ctx.prec = 200
        scaled = d.scaleb(scale)
        q = scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP)  # ROUND_HALF_UP is away from zero
        if exact and q != scaled:
            return 0, _INEXACT
        v = int(q)
    if abs(v) >= 2**62:
        return 0, ""
    return v, None


def _integers_to_scaled(arr: pa.Array, scale: int, limit: int, nulls: np.ndarray):
    raw = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
    bound = limit // 10**scale
    if raw.dtype.kind == "u":
        big = raw > np.uint64(bound)
    else:
        big = (raw > bound) | (raw < -bound)
    values = np.where(big, 0, raw).astype(np.int64) * np.int64(10**scale)
    return values, big, {}


def _floats_to_scaled(x: np.ndarray, scale: int, exact: bool, nulls: np.ndarray):
    # One compiled pass (_core.floats_to_scaled): y = x * 10**scale differs from
    # the exact scaled decimal by at most about |y| * 2**-52 (one rounding in the
    # product, half an ulp between x and its repr). Values that close to a tie,
    # and for exact ratios any value that is not integral in binary, are settled
    # here with the decimal repr.
    x = np.ascontiguousarray(x, dtype=np.float64)
    values = np.empty(len(x), np.int64)
    flags = np.empty(len(x), np.uint8)
    _core.floats_to_scaled(x, float(10**scale), 2.0**62 / 10**scale, exact, values, flags)
    overflow = flags == 1
    doubt = flags == 2
    if exact and doubt.any():
        # A float is a whole number of units when the nearest one reads back as the
        # same float (q / 10**scale is correctly rounded, as parsing its decimal is):
        # then its shortest repr has at most ``scale`` decimals. Settled here in one
        # vectorised pass, so a column of four-decimal prices never reaches Decimal.
        q = values.astype(np.float64)
        back = (np.abs(q) < 2.0**52) & (q / float(10**scale) == x)
        doubt &= ~back
    why: dict[int, str] = {}
    if overflow.any():
        not_finite = ~np.isfinite(x) & ~nulls
        if not_finite.any():
            why[_first(not_finite)] = "{what} {value} is not a finite number"
    bad = overflow.copy()
    for i in np.flatnonzero(doubt & ~overflow & ~nulls):
        v, problem = _decimal_value(Decimal(repr(float(x[i]))), scale, exact)
        if problem is not None:
            bad[i] = True
            if problem:
                why[int(i)] = problem
            if exact:
                break  # the first inexact ratio is enough to report
        else:
            values[i] = v
    return values, bad, why


def _text_to_scaled(arr: pa.Array, scale: int, exact: bool, nulls: np.ndarray):
    """Decimal numbers spelled as text (CSV): exact, via decimal128 when it holds them."""
    try:
        dec = pc.cast(arr, pa.decimal128(38, 12))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        return _decimal_to_scaled(dec, scale, exact, nulls)
    values = np.zeros(len(arr), np.int64)
    bad = np.zeros(len(arr), bool)
    why: dict[int, str] = {}
    for i, s in enumerate(arr.to_pylist()):
        if s is None:
            continue
        if not _NUMBER.fullmatch(s):
            bad[i] = True
            why[i] = "{what} {value} is not a decimal number"
            break
        try:
            v, problem = _decimal_value(Decimal(s), scale, exact)
        except InvalidOperation:
            v, problem = 0, "{what} {value} is not a decimal number"
        if problem is not None:
            bad[i] = True
            if problem:
                why[i] = problem
            break
        values[i] = v
    return values, bad, why


def to_fen(arr: pa.Array | pa.ChunkedArray, what: str = "amount") -> np.ndarray:
    """Amounts in yuan (decimal, int or float) to int64 fen, rounded half away from zero."""
    return to_scaled(arr, 2, what)


def to_basis_points(arr: pa.Array | pa.ChunkedArray, what: str = "ratio") -> np.ndarray:
    """Ratios (fractions: 0.15 is 15 %) to int64 basis points; each must be a whole basis point."""
    return to_scaled(arr, 4, what, exact=True, limit=10**10)


#: Arrow's 64-bit decimal, where this pyarrow has it: int64 fen *are* its values.
DECIMAL64 = pa.decimal64(18, 2) if hasattr(pa, "decimal64") else None


def fen_to_decimal64(fen: np.ndarray) -> pa.Array:
    """int64 fen as Arrow ``decimal64(18, 2)`` without copying (same bits), for
    writing Parquet: stored as INT64 decimal(18, 2), read back as decimal128."""
    fen = np.ascontiguousarray(fen, dtype=np.int64)
    return pa.Array.from_buffers(DECIMAL64, len(fen), [None, pa.py_buffer(fen)])


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


def price_text(units: int) -> str:
    """A price in 1/10000 yuan as exact yuan text, two decimals at least: 24185 -> '2.4185', 95000 -> '9.50'."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), 10**PRICE_SCALE)
    return f"{sign}{whole}.{f'{frac:0{PRICE_SCALE}d}'.rstrip('0').ljust(2, '0')}"


def group_digits(v: str) -> str:
    """Yuan text with thousands separators: '1234567.80' -> '1,234,567.80', without float."""
    sign, v = ("-", v[1:]) if v.startswith("-") else ("", v)
    whole, _, frac = v.partition(".")
    return f"{sign}{int(whole):,}.{frac or '00'}"
