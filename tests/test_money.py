"""Exact money conversion at the edges (contract §1): decimal, int, float and text in, int64 fen out."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adjudicate.money import MAX_FEN, AmountError, fen_to_decimal, round_half_away, to_basis_points, to_fen, to_scaled

D = Decimal
FUZZ = settings(max_examples=150, deadline=None)


def expected_fen(x) -> int:
    """The contract's reading of one value: its decimal (a float's repr), rounded half away to the fen."""
    d = D(repr(x)) if isinstance(x, float) else D(x)
    return int((d * 100).quantize(D(1), rounding=ROUND_HALF_UP))


def fen(values, type=None, **kw) -> list[int]:
    return to_scaled(pa.array(values, type), 2, **kw).tolist()


# ---- floats: read as their repr, then rounded half away from zero ----------


@pytest.mark.parametrize(
    "x, want",
    [
        (1.005, 101),
        (2.675, 268),
        (-1.005, -101),
        (0.125, 13),
        (-0.125, -13),
        (-2.675, -268),
        (0.005, 1),
        (-0.005, -1),
        (0.015, 2),
        (1.115, 112),
        (8.345, 835),
        (1234567.885, 123456789),
        (0.0, 0),
        (-0.0, 0),
        (0.004999, 0),
        (1e-300, 0),
        (100.0, 10000),
        (0.1 + 0.2, 30),
    ],
)
def test_float_ties_use_the_decimal_repr(x, want):
    assert fen([x]) == [want]
    assert expected_fen(x) == want


def test_float_nulls_are_zero_and_do_not_fail():
    assert fen([1.005, None]) == [101, 0]
    assert fen([None, None], pa.float64()) == [0, 0]
    assert to_basis_points(pa.array([None, 0.15])).tolist() == [0, 1500]


@FUZZ
@given(st.floats(min_value=-1e11, max_value=1e11, allow_nan=False, allow_infinity=False))
@example(1.005)
@example(2.675)
@example(-1.005)
@example(0.125)
@example(5e-324)
@example(999999999.995)
def test_float_matches_decimal_repr(x):
    assert fen([x]) == [expected_fen(x)]


@FUZZ
@given(
    st.integers(min_value=-(10**11), max_value=10**11), st.sampled_from([1, 5, 25, 125]), st.sampled_from([-1, 0, 1])
)
def test_float_ties_and_their_neighbours(whole_fen, tail, ulps):
    """Values with a 5 just past the fen (x.xx5, x.xx25, …) and the floats right beside them."""
    x = float(D(whole_fen).scaleb(-2) + D(tail).scaleb(-2 - len(str(tail))))
    for _ in range(abs(ulps)):
        x = math.nextafter(x, math.copysign(math.inf, ulps))
    assert fen([x]) == [expected_fen(x)]


@FUZZ
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32) | st.none(), max_size=20))
def test_float32_is_read_as_its_own_shortest_decimal(xs):
    got = fen(xs, pa.float32())
    want = [0 if x is None else expected_fen(str(np.float32(x))) for x in xs]
    assert got == want


def test_float32_examples():
    assert fen([2.675, 1.005, 0.125], pa.float32()) == [268, 101, 13]


@pytest.mark.parametrize("x", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_errors(x):
    with pytest.raises(AmountError, match="not a finite number") as e:
        fen([1.0, x])
    assert e.value.row == 1


# ---- decimals of any scale ---------------------------------------------------


@pytest.mark.parametrize(
    "value, type, want",
    [
        ("1.005", pa.decimal128(10, 3), 101),
        ("-1.005", pa.decimal128(10, 3), -101),
        ("2.675", pa.decimal128(6, 3), 268),
        ("0.125", pa.decimal128(4, 3), 13),
        ("-0.004", pa.decimal128(4, 3), 0),
        ("12.34", pa.decimal128(14, 2), 1234),
        ("7", pa.decimal128(5, 0), 700),
        ("1.5", pa.decimal128(38, 30), 150),
        ("-2.5", pa.decimal128(38, 30), -250),
        ("1.23456789012345678905", pa.decimal128(38, 20), 123),
        ("0.00500000000000000000000000001", pa.decimal128(38, 29), 1),
        ("1.005", pa.decimal256(60, 3), 101),
        ("1.5E+3", pa.decimal128(10, -2), 150000),
        ("99.995", pa.decimal128(5, 3), 10000),
    ],
)
def test_decimal_scales(value, type, want):
    assert fen([D(value), None], type) == [want, 0]


@FUZZ
@given(st.integers(min_value=-(10**16), max_value=10**16), st.integers(min_value=0, max_value=24), st.booleans())
def test_decimal_matches_exact_rounding(unscaled, scale, wide):
    d = D(unscaled).scaleb(-scale)
    precision = max(len(str(abs(unscaled))), scale, 1)
    t = pa.decimal256(max(precision, 40), scale) if wide else pa.decimal128(min(max(precision, scale), 38), scale)
    want = expected_fen(d)
    if abs(want) > MAX_FEN:
        with pytest.raises(AmountError, match="too large"):
            fen([d], t)
    else:
        assert fen([d], t) == [want]


def test_decimal_too_large_names_the_row():
    with pytest.raises(AmountError, match="too large for exact arithmetic") as e:
        fen([D(1), D(10) ** 13, D(1)], pa.decimal128(38, 0))
    assert e.value.row == 1
    with pytest.raises(AmountError, match="too large"):
        fen([D(10) ** 37], pa.decimal128(38, 0))
    with pytest.raises(AmountError, match="too large"):
        fen([D(10) ** 60], pa.decimal256(76, 0))


# ---- whole yuan as integers --------------------------------------------------


@pytest.mark.parametrize("type", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()])
def test_integer_yuan(type):
    assert fen([0, 1, 100, None], type) == [0, 100, 10000, 0]


@FUZZ
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_yuan_exact_or_too_large(y):
    if abs(y) * 100 > MAX_FEN:
        with pytest.raises(AmountError, match="too large"):
            fen([y], pa.int64())
    else:
        assert fen([y], pa.int64()) == [y * 100]


def test_uint64_beyond_int64_is_too_large_not_a_crash():
    with pytest.raises(AmountError, match="too large") as e:
        fen([1, 2**64 - 1], pa.uint64())
    assert e.value.row == 1


def test_limit_is_inclusive():
    top = MAX_FEN // 100
    assert fen([top, -top], pa.int64()) == [MAX_FEN, -MAX_FEN]
    assert fen([D(MAX_FEN).scaleb(-2)], pa.decimal128(20, 2)) == [MAX_FEN]
    with pytest.raises(AmountError):
        fen([D(MAX_FEN + 1).scaleb(-2)], pa.decimal128(20, 2))


# ---- text (CSV) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, want",
    [
        ("1.005", 101),
        ("-1.005", -101),
        ("2.675", 268),
        ("0.125", 13),
        ("12", 1200),
        ("+3.5", 350),
        ("1e3", 100000),
        (".5", 50),
        ("0.00499999999999999999999", 0),
        ("0.005000000000000000000001", 1),
    ],
)
def test_text_is_read_exactly(text, want):
    assert fen([text, None], pa.string(), from_text=True) == [want, 0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("abc", "not a decimal number"),
        ("nan", "not a decimal number"),
        ("1,5", "not a decimal number"),
        (" 1", "not a decimal number"),
        ("1" + "0" * 40, "too large"),
    ],
)
def test_bad_text(text, match):
    with pytest.raises(AmountError, match=match) as e:
        fen(["1", text], pa.string(), from_text=True)
    assert e.value.row == 1


def test_text_only_when_asked():
    with pytest.raises(AmountError, match="has type string"):
        fen(["1.00"], pa.string())


# ---- ratios: whole basis points -----------------------------------------------


@pytest.mark.parametrize(
    "values, type, want",
    [
        ([0.15, 0.2, 0.0001, 1.0, 0.0], pa.float64(), [1500, 2000, 1, 10000, 0]),
        ([0.07, 0.35, 0.1234], pa.float64(), [700, 3500, 1234]),
        ([D("0.15"), D("0.1234")], pa.decimal128(6, 4), [1500, 1234]),
        ([D("0.150000")], pa.decimal128(10, 6), [1500]),
        ([0, 1], pa.int64(), [0, 10000]),
        ([0.15], pa.float32(), [1500]),
    ],
)
def test_ratios_in_basis_points(values, type, want):
    assert to_basis_points(pa.array(values, type)).tolist() == want


@FUZZ
@given(st.integers(min_value=0, max_value=10000))
def test_every_whole_basis_point_float_is_exact(bp):
    x = float(D(bp).scaleb(-4))
    assert to_basis_points(pa.array([x])).tolist() == [bp]


@pytest.mark.parametrize(
    "values, type",
    [
        ([0.15, 0.12345], pa.float64()),
        ([0.15000000000000002], pa.float64()),
        ([D("0.12345")], pa.decimal128(6, 5)),
        ([1 / 3], pa.float64()),
    ],
)
def test_ratios_that_are_not_whole_basis_points(values, type):
    with pytest.raises(AmountError, match="basis point"):
        to_basis_points(pa.array(values, type))


# ---- the way out, and the reference rounding -------------------------------


@FUZZ
@given(st.lists(st.integers(min_value=-MAX_FEN, max_value=MAX_FEN), max_size=20))
def test_fen_to_decimal_round_trip(values):
    out = fen_to_decimal(np.array(values, dtype=np.int64))
    assert out.type == pa.decimal128(18, 2)
    assert out.to_pylist() == [D(v).scaleb(-2) for v in values]
    assert to_fen(out).tolist() == values


@FUZZ
@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=1, max_value=10**12), st.booleans())
def test_round_half_away(n, d, negate_d):
    if negate_d:
        n, d = -n, -d
    with localcontext() as ctx:
        ctx.prec = 100
        want = int((D(n) / D(d)).quantize(D(1), rounding=ROUND_HALF_UP))
    assert round_half_away(n, d) == want
