"""encode's compiled passes cut into shares (encode.ENCODE_SHARES, each share on a thread of its
own): the line checks by claim code, the settlement order by member group, the header columns
by position and the layout's first pass by bucket give exactly what one whole pass gives, for
any cut, rows in any order, and lines without a claim."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_layout_claims import CATALOGUE, head_records

from adjudicate import _encode

line = st.tuples(
    st.integers(-1, 9),  # claim code (-1: no claim_id)
    st.integers(-1, 3),  # member row (-1: unknown)
    st.integers(-1, 2),  # provider row
    st.integers(0, 1),  # setting (0: inpatient)
    st.integers(-1, 1),  # referral
    st.integers(0, 3),  # admit_date
    st.integers(0, 3),  # discharge_date
    st.integers(0, 2),  # diagnosis
    st.integers(1, 3),  # line_no
    st.booleans(),  # discharge_date null
    st.booleans(),  # amount null (a required column)
)


def check(rows: list[tuple], nc: int, cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """check_lines on the claims of codes cuts[k] .. cuts[k + 1] - 1 (the last share first), each
    on the rows ``code_span`` gives; with cuts [0, nc] one whole pass."""
    a = np.array(rows, np.int64).reshape(-1, 11)
    i32 = [np.ascontiguousarray(a[:, k], np.int32) for k in range(11)]
    claim, member, provider = i32[0], i32[1], i32[2]
    setting, referral = a[:, 3].astype(np.int8), a[:, 4].astype(np.int8)
    admit, discharge, diagnosis, line_no = i32[5], i32[6], i32[7], i32[8]
    discharge_null, amount_null = a[:, 9].astype(np.uint8), a[:, 10].astype(np.uint8)
    empty = np.empty(0, np.uint8)
    header_nulls = [empty] * 5 + [discharge_null, empty]
    head = np.zeros(nc, _encode.HEAD)
    cand_row = np.full(nc, -1, np.int64)
    for lo, hi in reversed(list(zip(cuts[:-1], cuts[1:]))):
        first, end = _encode.code_span(claim, lo, hi)
        assert all(not lo <= c < hi for c in claim[:first].tolist() + claim[end:].tolist())
        _encode.check_lines(
            claim, line_no, [amount_null], np.array([3], np.int16), member, provider, setting, referral, admit,
            discharge, diagnosis, header_nulls, 0, 7, head.view(np.uint8), cand_row, lo, hi, first, end,
        )  # fmt: skip
    return head, np.where(head["cand"] > 0, cand_row, -1)


@settings(max_examples=300, deadline=None)
@given(st.lists(line, max_size=80), st.lists(st.integers(0, 10), max_size=3))
def test_check_lines_in_shares_of_codes_is_one_pass(rows, cuts):
    nc = 10
    whole = check(rows, nc, [0, nc])
    shares = check(rows, nc, [0, *sorted(cuts), nc])
    assert whole[0].tobytes() == shares[0].tobytes()
    assert whole[1].tolist() == shares[1].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 5), st.booleans(), st.integers(0, 3), st.integers(0, 3)), max_size=60),
    st.permutations(range(6)),
    st.lists(st.integers(0, 6), max_size=3),
    st.lists(st.integers(0, 60), max_size=3),
)
def test_settlement_order_by_member_groups_and_header_columns_by_positions(claims, member_rank, g_cuts, k_cuts):
    import pyarrow as pa

    from adjudicate.inputs import _string_buffers

    nc = len(claims)
    head = head_records(claims)
    head["lines"] = [1 + k % 3 for k in range(nc)]
    rank = np.array(member_rank, np.int64)
    ids = _string_buffers(pa.array([f"c{(k * 7) % 11}-{k}" for k in range(nc)], pa.string()))
    want, want_pos = np.empty(nc, np.int64), np.empty(nc, np.int32)
    _encode.settlement_order(head.view(np.uint8), rank, 0, *ids, want, want_pos)
    out, pos = np.empty(nc, np.int64), np.empty(nc, np.int32)
    bounds = _encode.member_groups(head.view(np.uint8), rank, out)
    assert bounds[0] == 0 and bounds[-1] == nc and (np.diff(bounds) >= 0).all()
    g = [0, *sorted(g_cuts), len(rank)]
    for g0, g1 in reversed(list(zip(g[:-1], g[1:]))):
        _encode.order_groups(head.view(np.uint8), bounds, g0, g1, 0, *ids, out, pos)
    assert out.tolist() == want.tolist() and pos.tolist() == want_pos.tolist()

    def columns():
        return (np.empty(nc, np.int64), np.empty(nc, np.int64), np.empty(nc, np.int8), np.empty(nc, np.int8))

    whole = (*columns(), np.empty(nc, np.int32), np.empty(nc, np.int32), np.empty(nc + 1, np.int64))
    _encode.header_columns(head.view(np.uint8), out, 0, *whole)
    parts = (*columns(), np.empty(nc, np.int32), np.empty(nc, np.int32), np.empty(nc + 1, np.int64))
    k = [0, *sorted(min(c, nc) for c in k_cuts), nc]
    for k0, k1 in reversed(list(zip(k[:-1], k[1:]))):
        _encode.header_columns(head.view(np.uint8), out, 0, *parts, k0=k0, k1=k1, counts=True)
    np.cumsum(parts[-1], out=parts[-1])
    assert [a.tolist() for a in whole] == [a.tolist() for a in parts]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 7), st.integers(1, 4), st.integers(-1, 2)), max_size=100),
    st.randoms(use_true_random=False),
    st.integers(1, 30),
    st.integers(2, 5),
)
def test_layout_first_pass_in_shares_of_buckets_is_one_pass(rows, rnd, bucket_lines, parts):
    a = np.array(rows, np.int64).reshape(-1, 3)
    claim, line_no, item = a[:, 0].astype(np.int32), a[:, 1].astype(np.int32), a[:, 2].astype(np.int32)
    perm = list(range(8))
    rnd.shuffle(perm)
    rank = np.array(perm, np.int32)
    counts = np.bincount(rank[claim[claim >= 0]], minlength=8)
    line_start = np.r_[0, np.cumsum(counts)].astype(np.int64)
    date = np.arange(8, dtype=np.int32) * 3
    amount, quantity = np.arange(len(a), dtype=np.int64) * 5, np.arange(len(a), dtype=np.int64)

    def lay(share_count: int) -> list[list[int]]:
        m = int(line_start[-1])
        out = [np.empty(m, np.int32), np.empty(m, np.int32), np.empty(m, np.int32), np.empty(m, np.int64)]
        out += [np.empty(m, np.int64), np.empty(m, np.int8), np.empty(m, np.int16), np.empty(m, np.int64)]
        args = (claim, rank, line_no, amount, quantity, item, date, line_start, *CATALOGUE, *out)
        for k in reversed(range(share_count)):
            _encode.layout_claims(*args, bucket_lines=bucket_lines, order=False, part=k, parts=share_count)
        _encode.order_buckets(line_start, date, *CATALOGUE, *out, 0, 1, bucket_lines=bucket_lines)
        return [x.tolist() for x in out]

    assert lay(parts) == lay(1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(1, 3), st.booleans()), max_size=5), max_size=30),
    st.lists(st.integers(0, 30), max_size=3),
)
def test_first_repeat_laid_by_positions_is_one_pass(claims, cuts):
    sizes = [len(c) for c in claims]
    line_start = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    line_no = np.array(sorted_lines := [n for c in claims for n, _ in sorted(c)], np.int32).reshape(-1)
    rows = np.arange(len(sorted_lines), dtype=np.int32)[::-1].copy()
    skip = np.array([s for c in claims for _, s in sorted(c)], np.uint8)[::-1].copy()
    nc = len(claims)
    whole, parts = np.empty(nc, np.int64), np.full(nc, -7, np.int64)
    _encode.first_repeat_laid(line_start, line_no, rows, skip, whole)
    k = [0, *sorted(min(c, nc) for c in cuts), nc]
    for k0, k1 in reversed(list(zip(k[:-1], k[1:]))):
        _encode.first_repeat_laid(line_start, line_no, rows, skip, parts, k0, k1)
    assert parts.tolist() == whole.tolist()
