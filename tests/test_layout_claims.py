"""encode's radix-partitioned line layout (_encode.layout_claims) and the duplicate-line check on
its output (_encode.first_repeat_laid) against plain formulations: a lexicographic sort of the
rows by (claim position, line_no, row), the catalogue row valid on the claim's date found by a
loop, and the first repeated line_no of each claim found by a loop. Any row order, ties of
line_no, negative amounts and line numbers, rows without a claim, claims of many lines, and
buckets of any size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adjudicate import _encode

UNKNOWN = 9
# two items: item 0 valid on days 0..9 (row 1) and 10..19 (row 0), item 1 on 5..30 (row 2); item 2 never
CAT_FIRST = np.array([0, 2, 3], np.int64)
CAT_COUNT = np.array([2, 1, 0], np.int64)
CAT_START = np.array([0, 10, 5], np.int64)
CAT_END = np.array([9, 19, 30], np.int64)
CAT_ORDER = np.array([1, 0, 2], np.int64)
CAT_CLS = np.array([0, 1, 2], np.int8)
CAT_RATIO = np.array([1000, -1, 500], np.int64)
CAT_PRICE = np.array([-1, 300, 7], np.int64)
#: the catalogue arguments of layout_claims and order_buckets, in their order
CATALOGUE = (CAT_FIRST, CAT_COUNT, CAT_START, CAT_END, CAT_ORDER, CAT_CLS, CAT_RATIO, CAT_PRICE, UNKNOWN)


def head_records(claims: list[tuple[int, bool, int, int]]) -> np.ndarray:
    """check_lines' records (_encode.HEAD) of claims given as (member, inpatient, admit, discharge)."""
    head = np.zeros(len(claims), _encode.HEAD)
    head["member"] = [c[0] for c in claims]
    head["setting"] = [0 if c[1] else 1 for c in claims]
    head["admit"] = [c[2] for c in claims]
    head["discharge"] = [c[3] for c in claims]
    return head


def catalogue_row(item: int, day: int) -> int:
    if item < 0:
        return -1
    for q in range(CAT_FIRST[item], CAT_FIRST[item] + CAT_COUNT[item]):
        if CAT_START[q] <= day <= CAT_END[q]:
            return int(CAT_ORDER[q])
    return -1


def lay_out(claim, rank, line_no, amount, quantity, item, claim_date, dtype=np.int32, bucket_lines=None, parts=None):
    """``layout_claims``; with ``parts``, its second pass by ``order_buckets``, a share at a time
    (last share first: the shares are independent)."""
    nc = len(rank)
    counts = np.bincount(rank[claim[claim >= 0]], minlength=nc) if nc else np.zeros(0, np.int64)
    line_start = np.r_[0, np.cumsum(counts)].astype(np.int64)
    m = int(line_start[-1])
    out = {
        "row": np.empty(m, dtype),
        "claim": np.empty(m, dtype),
        "line_no": np.empty(m, np.int32),
        "amount": np.empty(m, np.int64),
        "quantity": np.empty(m, np.int64),
        "cls": np.empty(m, np.int8),
        "ratio": np.empty(m, np.int16),
        "price": np.empty(m, np.int64),
    }
    extra = {} if bucket_lines is None else {"bucket_lines": bucket_lines}
    _encode.layout_claims(
        claim.astype(dtype),
        rank.astype(dtype),
        line_no,
        amount,
        quantity,
        item,
        claim_date,
        line_start,
        *CATALOGUE,
        *out.values(),
        **extra,
        order=parts is None,
    )
    for part in reversed(range(parts or 0)):
        _encode.order_buckets(
            line_start,
            claim_date,
            *CATALOGUE,
            *out.values(),
            part,
            parts,
            **extra,
        )
    return line_start, out


def plain(claim, rank, line_no, amount, quantity, item, claim_date):
    rows = np.flatnonzero(claim >= 0)
    pos = rank[claim[rows]]
    rows = rows[np.lexsort((rows, line_no[rows], pos))]
    crow = [catalogue_row(int(item[r]), int(claim_date[rank[claim[r]]])) for r in rows]
    return {
        "row": rows.tolist(),
        "claim": rank[claim[rows]].tolist(),
        "line_no": line_no[rows].tolist(),
        "amount": amount[rows].tolist(),
        "quantity": quantity[rows].tolist(),
        "cls": [UNKNOWN if c < 0 else int(CAT_CLS[c]) for c in crow],
        "ratio": [-1 if c < 0 else int(CAT_RATIO[c]) for c in crow],
        "price": [-1 if c < 0 else int(CAT_PRICE[c]) for c in crow],
    }


rows_strategy = st.lists(
    st.tuples(
        st.integers(-1, 7),  # claim code (-1: no claim_id)
        st.integers(-3, 4),  # line_no: ties and negatives
        st.integers(-500, 500),  # amount: refunds too
        st.integers(-2, 3),  # quantity
        st.integers(-1, 2),  # item (-1: not in the catalogue)
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    rows_strategy,
    st.randoms(use_true_random=False),
    st.integers(1, 40),
    st.sampled_from([np.int32, np.int64]),
    st.sampled_from([np.int32, np.int64]),
    st.sampled_from([None, 1, 2, 3, 7]),
)
def test_layout_claims_is_the_sort_and_the_lookup(rows, rnd, bucket_lines, dtype, line_dtype, parts):
    """Claim codes and rows of either width; line_no int32 as read, or int64 (an older dataset);
    the second pass in one go or in shares (``order_buckets``)."""
    claim = np.array([r[0] for r in rows], np.int64)
    present = sorted(set(claim[claim >= 0].tolist()))
    # claim codes numbered 0..nc-1 as encode numbers them (every code has a row)
    code = {c: k for k, c in enumerate(present)}
    claim = np.array([code.get(int(c), -1) for c in claim], np.int64)
    nc = len(present)
    perm = list(range(nc))
    rnd.shuffle(perm)
    rank = np.array(perm, np.int64)
    line_no = np.array([r[1] for r in rows], line_dtype)
    amount = np.array([r[2] for r in rows], np.int64)
    quantity = np.array([r[3] for r in rows], np.int64)
    item = np.array([r[4] for r in rows], np.int32)
    claim_date = np.array([rnd.randrange(-2, 33) for _ in range(nc)], np.int32)  # by position
    line_start, got = lay_out(claim, rank, line_no, amount, quantity, item, claim_date, dtype, bucket_lines, parts)
    want = plain(claim, rank, line_no, amount, quantity, item, claim_date)
    assert {k: v.tolist() for k, v in got.items()} == want
    assert line_start.tolist() == np.r_[0, np.cumsum(np.bincount(want["claim"], minlength=nc))].tolist()


def test_layout_claims_of_many_buckets_and_long_claims():
    """Thousands of claims in shuffled rows, some of a hundred lines (sorted by qsort, not by
    insertion), in the default buckets and in small ones."""
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 8, 20000)
    sizes[rng.integers(0, 20000, 30)] = rng.integers(33, 150, 30)
    claim = np.repeat(np.arange(20000), sizes)
    claim[rng.integers(0, len(claim), 50)] = -1
    kept = np.unique(claim[claim >= 0])
    claim = np.where(claim >= 0, np.searchsorted(kept, claim), -1)
    rows = rng.permutation(len(claim))
    claim = claim[rows]
    n, nc = len(claim), len(kept)
    line_no = rng.integers(-5, 200, n)
    amount = rng.integers(-(10**12), 10**12, n)
    quantity = rng.integers(0, 10**6, n)
    item = rng.integers(-1, 3, n).astype(np.int32)
    rank = rng.permutation(nc)
    claim_date = rng.integers(-2, 33, nc).astype(np.int32)
    want = plain(claim, rank, line_no, amount, quantity, item, claim_date)
    for bucket_lines, parts in ((None, None), (1, None), (100, None), (None, 2), (100, 5)):
        _, got = lay_out(
            claim, rank, line_no, amount, quantity, item, claim_date, bucket_lines=bucket_lines, parts=parts
        )
        assert {k: v.tolist() for k, v in got.items()} == want


def test_layout_claims_refuses_bad_counts_and_wide_line_numbers():
    claim = np.array([0, 1, 0], np.int32)
    rank = np.array([1, 0], np.int32)
    values = (np.array([1, 2, 3], np.int64), np.zeros(3, np.int64), np.zeros(3, np.int64), np.zeros(3, np.int32))
    date = np.zeros(2, np.int32)
    cat = (CAT_FIRST, CAT_COUNT, CAT_START, CAT_END, CAT_ORDER, CAT_CLS, CAT_RATIO, CAT_PRICE, UNKNOWN)

    def outputs(m):
        return (np.empty(m, np.int32), np.empty(m, np.int32), np.empty(m, np.int32), np.empty(m, np.int64),
                np.empty(m, np.int64), np.empty(m, np.int8), np.empty(m, np.int16), np.empty(m, np.int64))  # fmt: skip

    good = np.array([0, 1, 3], np.int64)  # position 0 (claim 1): one line, position 1 (claim 0): two
    _encode.layout_claims(claim, rank, *values, date, good, *cat, *outputs(3))
    for wrong in ([0, 2, 3], [0, 1, 2]):  # counts that disagree with the rows
        start = np.array(wrong, np.int64)
        with pytest.raises(ValueError):
            _encode.layout_claims(claim, rank, *values, date, start, *cat, *outputs(int(start[-1])))
    wide = (np.array([1, 2**31, 3], np.int64), *values[1:])
    with pytest.raises(ValueError):
        _encode.layout_claims(claim, rank, *wide, date, good, *cat, *outputs(3))
    with pytest.raises(ValueError):  # a claim code beyond the positions
        _encode.layout_claims(np.array([0, 2, 0], np.int32), rank, *values, date, good, *cat, *outputs(3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(-2, 3), st.booleans()), max_size=8), max_size=12))
def test_first_repeat_laid_is_the_first_repeat_of_each_claim(claims):
    """Per claim (its lines in line_no order), the row of its first line whose line_no repeats
    the line before it, skipping rows marked: written plainly."""
    lines = [sorted(c, key=lambda t: t[0]) for c in claims]
    line_start = np.r_[0, np.cumsum([len(c) for c in lines])].astype(np.int64)
    flat = [t for c in lines for t in c]
    n = len(flat)
    row = np.random.default_rng(n).permutation(n).astype(np.int32)  # rows anywhere in the table
    line_no = np.array([t[0] for t in flat], np.int32)
    skip = np.zeros(n, np.uint8)
    skip[row] = [t[1] for t in flat]
    want = []
    for k, c in enumerate(lines):
        hit = -1
        for j in range(1, len(c)):
            at = int(line_start[k]) + j
            if c[j][0] == c[j - 1][0] and not c[j][1]:
                hit = int(row[at])
                break
        want.append(hit)
    out = np.empty(len(lines), np.int64)
    _encode.first_repeat_laid(line_start, line_no, row, skip, out)
    assert out.tolist() == want
    none_skipped = [-1 if not any(c[j][0] == c[j - 1][0] for j in range(1, len(c))) else 0 for c in lines]
    out2 = np.empty(len(lines), np.int64)
    _encode.first_repeat_laid(line_start, line_no, row, np.empty(0, np.uint8), out2)
    assert [(-1 if v < 0 else 0) for v in out2.tolist()] == none_skipped


@pytest.mark.parametrize("group", [7, 1000])
def test_lookup_column_through_the_read_codes_is_the_lookup_of_every_value(tmp_path, group):
    """A claims column coded while read (member_id) is looked up through its codes: the same
    positions as looking up every line's string, nulls and unknown ids included."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adjudicate.encode import lookup, lookup_column
    from adjudicate.generate import generate_tables
    from adjudicate.inputs import load
    from adjudicate.schema import CLAIMS

    t = generate_tables(40, 2024, seed=4, bad_rows=0.05)
    claims = t["claims"]
    ids = claims.column("member_id").to_pylist()
    ids[3], ids[5] = "not-a-member", None
    claims = claims.set_column(claims.schema.get_field_index("member_id"), "member_id", pa.array(ids, pa.string()))
    path = tmp_path / "claims.parquet"
    pq.write_table(claims, path, row_group_size=group)
    table = load(CLAIMS, [path])
    assert "member_id" in table.codes  # the path under test
    members = t["members"].column("member_id").combine_chunks()
    got = lookup_column(table, "member_id", members)
    want = lookup(pa.array(ids, pa.string()), members, np.int32)
    assert got.dtype == np.int32
    assert got.tolist() == want.tolist()
    assert got[3] == -1 and got[5] == -1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-800_000, 2_900_000), max_size=30), st.booleans())
def test_years_of_is_numpy_calendar_year(days, wide):
    """Years through the table of the span against NumPy's calendar, dates before 1970 and a
    span too wide for the table included."""
    from adjudicate.encode import years_of

    d = np.array(days + ([-(2**30), 2**30] if wide else []), np.int32)
    want = d.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    got = years_of(d)
    assert got.dtype == np.int32
    assert got.tolist() == want.tolist()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-1, 4),  # member row (-1: unknown or null: row 0's rank)
            st.booleans(),  # inpatient
            st.integers(-3, 3),  # admit_date
            st.integers(-3, 3),  # discharge_date
        ),
        max_size=60,
    ),
    st.lists(st.text("ab甲", max_size=4), min_size=60, max_size=60, unique=True),
    st.permutations(range(5)),
    st.integers(0, 30),
)
def test_settlement_order_is_member_rank_then_date_then_id_bytes(claims, ids, member_rank, many):
    """Claims by (member rank, settle date, claim id bytes) against a lexicographic sort; one
    member's many claims on one day too (the merge sort, not the insertion)."""
    import pyarrow as pa

    from adjudicate.encode import _byte_rank
    from adjudicate.inputs import _string_buffers

    claims = claims + [(2, False, 1, 0)] * many
    ids = ids[: len(claims)] + [f"z{k}" for k in range(len(claims) - len(ids))]
    nc = len(claims)
    head = head_records(claims)
    rank = np.array(member_rank, np.int64)
    dictionary = pa.array(ids[:nc], pa.string())
    out = np.empty(nc, np.int64)
    position = np.empty(nc, np.int32)
    _encode.settlement_order(head.view(np.uint8), rank, 0, *_string_buffers(dictionary), out, position)
    settle = np.where(head["setting"] == 0, head["discharge"], head["admit"])
    want = np.lexsort((_byte_rank(dictionary), settle, rank[np.maximum(head["member"], 0)]))
    assert out.tolist() == want.tolist()
    assert position[out].tolist() == list(range(nc))
