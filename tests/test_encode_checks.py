"""encode's compiled line checks (_encode.check_lines and the exact header check on the claims
it finds suspect) against a plain formulation of contract §4's rejections, on small claims
tables with several defects per claim, in any row order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adjudicate.encode import catalogue_rows, encode, gather_catalogue_columns
from adjudicate.generate import generate_tables
from adjudicate.inputs import find_positions, from_arrow
from adjudicate.schema import CATALOGUE, CLAIM_HEADER, CLAIMS, MEMBERS, PROVIDERS

D1, D2, D0 = dt.date(2024, 3, 1), dt.date(2024, 3, 4), dt.date(2024, 2, 1)


@pytest.fixture(scope="module")
def small():
    t = generate_tables(5, 2024, seed=1)
    return {
        k: from_arrow(spec, [f"{k}.parquet"], [(t[k], False)], 1)
        for k, spec in (("members", MEMBERS), ("providers", PROVIDERS), ("catalogue", CATALOGUE))
    }, t


line = st.fixed_dictionaries(
    {
        "claim_id": st.sampled_from(["A", "B", "C", None]),
        "line_no": st.sampled_from([1, 2, 3, None]),
        "member": st.sampled_from([0, 0, 0, 1, "X", "Y", None]),
        "provider": st.sampled_from([0, 0, 0, 1, "X", None]),
        "setting": st.sampled_from(["inpatient", "inpatient", "outpatient", None]),
        "referral": st.sampled_from([None, None, "referred"]),
        "admit_date": st.sampled_from([D1, D1, D1, D2, None]),
        "discharge_date": st.sampled_from([D2, D2, D2, D1, D0, None]),
        "diagnosis": st.sampled_from(["J1", "J1", "J2", None]),
        "amount": st.sampled_from([Decimal("1.00"), Decimal("1.00"), None]),
    }
)


def claims_table(rows: list[dict], t: dict) -> pa.Table:
    members = t["members"].column("member_id").to_pylist()
    providers = t["providers"].column("provider_id").to_pylist()
    item = t["catalogue"].column("item_code")[0].as_py()

    def pick(v, ids):
        return ids[v] if isinstance(v, int) else (None if v is None else f"unknown-{v}")

    cols = {
        k: [r[k] for r in rows]
        for k in ("claim_id", "line_no", "setting", "referral", "admit_date", "discharge_date", "diagnosis", "amount")
    }
    cols["member_id"] = [pick(r["member"], members) for r in rows]
    cols["provider_id"] = [pick(r["provider"], providers) for r in rows]
    n = len(rows)
    cols.update(item_code=[item] * n, quantity=[1.0] * n, unit_price=[Decimal("1.0000")] * n)
    schema = pa.schema([(c.name, t["claims"].schema.field(c.name).type) for c in CLAIMS.columns])
    return pa.table({f.name: pa.array(cols[f.name], f.type) for f in schema}, schema=schema)


REQUIRED = [c.name for c in CLAIMS.columns if not c.nullable and c.name != "claim_id"]


def claim_rejection(ls: list[dict], members: set, providers: set) -> tuple | None:
    """One claim's lines in (line_no, row) order: (reason, column, line_no named or None)."""
    for col in REQUIRED:
        for r in ls:
            if r[col] is None:
                return "null_required_field", col, r["line_no"]
    for a, b in zip(ls, ls[1:]):
        if all(b[c] is not None for c in REQUIRED) and a["line_no"] == b["line_no"]:
            return "duplicate_line", "line_no", b["line_no"]
    for col in CLAIM_HEADER:
        for a, b in zip(ls, ls[1:]):
            if col == "discharge_date" and not (a["setting"] == b["setting"] == "inpatient"):
                continue
            if a[col] != b[col]:
                return "inconsistent_claim_header", col, b["line_no"]
    if any(r["member_id"] not in members for r in ls):
        return "unknown_member", "member_id", None
    if any(r["provider_id"] not in providers for r in ls):
        return "unknown_provider", "provider_id", None
    inpatient = [r for r in ls if r["setting"] == "inpatient"]
    if any(r["discharge_date"] is None for r in inpatient):
        return "missing_discharge_date", "discharge_date", None
    if any(r["discharge_date"] < r["admit_date"] for r in inpatient):
        return "discharge_before_admit", "discharge_date", None
    return None


def oracle(rows: list[dict], members: set, providers: set) -> dict:
    """Per claim_id: its rejection (``claim_rejection``), contract §4's order, plainly."""
    out = {}
    for cid in sorted({r["claim_id"] for r in rows if r["claim_id"] is not None}):
        mine = [(r["line_no"] or 0, i, r) for i, r in enumerate(rows) if r["claim_id"] == cid]
        got = claim_rejection([r for _, _, r in sorted(mine, key=lambda x: x[:2])], members, providers)
        if got is not None:
            out[cid] = got
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(line, min_size=1, max_size=14), st.randoms(use_true_random=False))
def test_rejections_as_contract_orders_them_in_any_row_order(small, rows, rnd):
    tables, t = small
    table = claims_table(rows, t)
    want = oracle(
        table.to_pylist(),
        set(t["members"].column("member_id").to_pylist()),
        set(t["providers"].column("provider_id").to_pylist()),
    )
    perm = list(range(len(rows)))
    rnd.shuffle(perm)
    for order in (list(range(len(rows))), perm):
        claims = from_arrow(CLAIMS, ["claims.parquet"], [(table.take(pa.array(order, pa.int64())), False)], 1)
        assert claims["line_no"].dtype == np.int32  # read as narrow as its range
        enc = encode(claims, tables["members"], tables["providers"], tables["catalogue"])
        got = {r[0]: (r[2], r[6], r[1]) for r in enc.rejected if r[0] is not None}
        assert got == want
    claims.values["line_no"] = claims["line_no"].astype(np.int64)  # as a dataset prepared before keeps it
    enc = encode(claims, tables["members"], tables["providers"], tables["catalogue"])
    assert {r[0]: (r[2], r[6], r[1]) for r in enc.rejected if r[0] is not None} == want


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["", "a", "b", "ab", "m1", "m20240001", "甲乙", "x" * 40]), max_size=40),
    st.lists(st.sampled_from(["", "a", "ab", "m1", "甲乙", "x" * 40, "q"]), max_size=12),
    st.integers(0, 3),
)
def test_find_positions_is_index_in(values, value_set, cut):
    v = pa.array(values + ["z"] * cut, pa.string()).slice(cut)
    s = pa.array(["w"] * cut + value_set, pa.string()).slice(cut)
    want = np.asarray(pc.fill_null(pc.index_in(v, value_set=s), -1), dtype=np.int32)
    assert find_positions(v, s, np.int32).tolist() == want.tolist()


@pytest.mark.parametrize("seed", [1, 2])
def test_layout_catalogue_columns_are_the_match_then_gather(seed):
    """The catalogue columns the line layout writes (looked up on the claim's admit_date)
    against the catalogue row valid on each laid-out line's own admit_date, gathered."""
    t = generate_tables(60, 2024, seed=seed, bad_rows=0.05)
    specs = (("claims", CLAIMS), ("members", MEMBERS), ("providers", PROVIDERS), ("catalogue", CATALOGUE))
    tables = {k: from_arrow(spec, [f"{k}.parquet"], [(t[k], False)], 1) for k, spec in specs}
    claims, catalogue = tables["claims"], tables["catalogue"]
    enc = encode(claims, tables["members"], tables["providers"], catalogue)
    assert len(enc.line_row) > 100
    crow = catalogue_rows(catalogue, claims.coded("item_code"), claims["admit_date"], take=enc.line_row)
    cls, ratio, price = gather_catalogue_columns(crow, catalogue)
    assert enc.cls.tolist() == cls.tolist()
    assert enc.item_ratio.tolist() == ratio.tolist()
    assert enc.max_price.tolist() == price.tolist()
