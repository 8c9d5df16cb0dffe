"""``_core.allocate``: a strided amount column, uninitialised output, two amounts in one pass —
each the same as the reference's largest-remainder allocation (contract §4, lines.parquet)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adjudicate import _core
from adjudicate.reference import allocate as reference_allocate

BIG = 2**40  # beyond 2**31: the kernel's 128-bit branch
amounts = st.integers(-BIG, BIG) | st.integers(-100, 1000)
claims = st.lists(
    st.tuples(st.lists(st.integers(-BIG, BIG) | st.integers(-50, 500), min_size=1, max_size=40), amounts, amounts),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(claims)
def test_two_amounts_in_one_pass_from_strided_columns(data):
    for ws, p, s in data:  # shares fit int64, as they do for amounts in range (inputs.py bounds them)
        assume(not sum(ws) or max(abs(p), abs(s)) * max(map(abs, ws)) // abs(sum(ws)) < 2**62)
    weights = [w for ws, _, _ in data for w in ws]
    line_start = np.cumsum([0] + [len(ws) for ws, _, _ in data]).astype(np.int64)
    paid = np.array([[7, p, s, 9] for _, p, s in data], np.int64)  # amounts as columns of a wider table
    weight = np.array(weights, np.int64)
    pool = np.full(len(weights), -12345, np.int64)  # stands for np.empty: every line must be written
    supp = np.full(len(weights), -12345, np.int64)
    _core.allocate(line_start, paid[:, 1], weight, pool, 0, len(data), paid[:, 2], supp)
    alone = np.full(len(weights), -12345, np.int64)
    _core.allocate(line_start, paid[:, 2], weight, alone, 0, len(data))
    assert alone.tolist() == supp.tolist()  # the second amount as its own call would spread it
    for c, (ws, p, s) in enumerate(data):
        a, z = line_start[c], line_start[c + 1]
        want_p = reference_allocate(p, ws) if sum(ws) and p else [0] * len(ws)
        want_s = reference_allocate(s, ws) if sum(ws) and s else [0] * len(ws)
        assert pool[a:z].tolist() == want_p
        assert supp[a:z].tolist() == want_s


def test_second_amount_needs_its_output():
    one = np.ones(1, np.int64)
    with pytest.raises(ValueError, match="share2"):
        _core.allocate(np.array([0, 1], np.int64), one, one, np.zeros(1, np.int64), 0, 1, one, None)
