"""Contract §4 invariants on generated data, for every shipped policy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from adjudicate import policy as P
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.generate import generate_tables, write_dataset
from adjudicate.outputs import claim_amounts, invariant_violations, lines_table, settlements_table

POLICIES = sorted(P.shipped())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    paths = write_dataset(generate_tables(1500, 2024, seed=11, bad_rows=0.02), folder)
    return read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])


@pytest.fixture(scope="module", params=POLICIES)
def result(request, generated):
    return adjudicate(generated, P.load(request.param), threads=2)


def test_claim_invariants(result):
    a = claim_amounts(result)
    assert len(a["total"]) > 1000
    assert invariant_violations(a) == dict.fromkeys(invariant_violations(a), 0)


def test_invariant_check_catches_a_broken_row(result):
    a = {k: v.copy() for k, v in claim_amounts(result).items()}
    a["fund_pool"][0] += 1
    broken = invariant_violations(a)
    assert broken["eligible = fund_pool + fund_supplementary + member_policy_share"] == 1
    assert broken["total = fund_pool + fund_supplementary + subsidy + account_paid + cash_paid"] == 1


def test_the_schemes_pay_something(result):
    a = claim_amounts(result)
    assert a["fund_pool"].sum() > 0
    assert (a["self_pay"] > 0).any() and (a["first_self_pay"] > 0).any()


def test_output_amounts_are_exact_decimals(result):
    s = settlements_table(result)
    for name in claim_amounts(result):
        assert s.schema.field(name).type == pa.decimal128(18, 2)
    fen = claim_amounts(result)["fund_pool"]
    back = np.asarray(pc.multiply(s["fund_pool"], pa.scalar(100, pa.decimal128(5, 0))).cast(pa.int64()))
    assert (back == fen).all()


def test_lines_sum_to_claims(result):
    lines = lines_table(result)
    a = claim_amounts(result)
    e = result.enc
    for col, fen in (
        ("self_pay", result.line_self_pay),
        ("first_self_pay", result.line_fsp),
        ("eligible", result.line_eligible),
        ("fund_pool", result.line_pool),
        ("fund_supplementary", result.line_supp),
    ):
        per_claim = np.zeros(len(e.member), np.int64)
        np.add.at(per_claim, e.line_claim, fen)
        assert (per_claim == a[col]).all(), col
    assert lines.num_rows == len(e.amount)


def test_nothing_lost(result, generated):
    claims = generated.claims
    ids = set(pc.unique(claims["claim_id"]).drop_null().to_pylist())
    settled = set(result.enc.claim_id.to_pylist())
    rejected = {r[0] for r in result.enc.rejected if r[0] is not None}
    assert settled.isdisjoint(rejected)
    assert settled | rejected == ids
    assert rejected, "bad rows were generated, some claims must be rejected"
