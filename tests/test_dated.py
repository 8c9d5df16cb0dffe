"""Dated policy values (issue 7 §3): syntax and errors, the value in force on the
settle date, counters and caps across a change, and the required properties."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from builders import Case
from conftest import y
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reference import SLOW_OK, compare, datasets, load_case

from adjudicate import policy as P
from adjudicate.engine import adjudicate
from adjudicate.outputs import claim_amounts

# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): providers.parquet → provider_settlement.parquet, ledger year → benefit_year.

CITY = P.shipped()["city-employee"].read_text(encoding="utf-8")

#: (text in city-employee.toml, the key's old value, its new value): every kind of datable number.
CHANGES = [
    ("amount = 40000", "40000", "60000"),
    ("{ from = 0, pool = 0.85 }", "0.85", "0.90"),
    ("B = 0.15", "0.15", "0.10"),
    ("supplementary_catalogue = false", "false", "true"),
    ("3 = [600]", "[600]", "[800]"),
    ("rate = 0.80", "0.80", "0.70"),
    ('{ referral = ["referred", "emergency"], factor = 1.0 }', "1.0", "0.5"),
]


def _write(tmp: Path, name: str, text: str) -> P.Policy:
    path = tmp / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return P.load(path)


def city(tmp: Path, change: str | None) -> P.Policy:
    """city-employee with every number of CHANGES changed on ``change`` (None: the new values, undated)."""
    text = CITY
    for where, old, new in CHANGES:
        assert where in text, where
        if change is None:
            value = new
        else:
            value = (
                f'{{ values = {{ 2000-01-01 = {{ value = {old}, reference = "the old rule" }}, '
                f'{change} = {{ value = {new}, reference = "the new rule" }} }} }}'
            )
        text = text.replace(where, where.replace(old, value, 1) if old != new else where)
    return _write(tmp, f"city-{change}", text)


def run(inputs, policy):
    r = adjudicate(inputs, policy, threads=1)
    return r, claim_amounts(r)


def same_run(a, b) -> None:
    ra, aa = a
    rb, ab = b
    assert ra.enc.claim_id.to_pylist() == rb.enc.claim_id.to_pylist()
    for k in aa:
        np.testing.assert_array_equal(aa[k], ab[k], err_msg=k)
    np.testing.assert_array_equal(ra.settle, rb.settle)
    for name in ("line_self_pay", "line_fsp", "line_eligible", "line_pool", "line_supp"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name), err_msg=name)
    assert sorted(map(str, ra.enc.rejected)) == sorted(map(str, rb.enc.rejected))


HYP = settings(max_examples=25, deadline=None, suppress_health_check=SLOW_OK)


# ---------------------------------------------------------------------------
# The required properties
# ---------------------------------------------------------------------------


@HYP
@given(case=datasets())
def test_a_change_after_every_claim_changes_nothing(case):
    with tempfile.TemporaryDirectory() as d:
        inputs = load_case(case, Path(d))
        same_run(run(inputs, P.load("city-employee")), run(inputs, city(Path(d), "2099-01-01")))


@HYP
@given(case=datasets())
def test_a_change_before_every_claim_equals_the_new_values(case):
    with tempfile.TemporaryDirectory() as d:
        inputs = load_case(case, Path(d))
        same_run(run(inputs, city(Path(d), None)), run(inputs, city(Path(d), "2001-01-01")))


@HYP
@given(case=datasets(), change=st.dates(dt.date(2023, 11, 1), dt.date(2025, 2, 1)))
def test_claims_before_a_mid_year_change_are_settled_as_under_the_old_policy(case, change):
    with tempfile.TemporaryDirectory() as d:
        inputs = load_case(case, Path(d))
        old, old_amounts = run(inputs, P.load("city-employee"))
        new, new_amounts = run(inputs, city(Path(d), change.isoformat()))
        before = {
            cid: i
            for i, (cid, day) in enumerate(zip(new.enc.claim_id.to_pylist(), new.enc.settle_date))
            if day < (change - dt.date(1970, 1, 1)).days
        }
        old_pos = {cid: i for i, cid in enumerate(old.enc.claim_id.to_pylist())}
        for cid, i in before.items():
            j = old_pos[cid]
            assert {k: int(v[i]) for k, v in new_amounts.items()} == {k: int(v[j]) for k, v in old_amounts.items()}
            assert list(new.settle[i]) == list(old.settle[j]), cid


@HYP
@given(case=datasets(), change=st.dates(dt.date(2023, 11, 1), dt.date(2025, 2, 1)))
def test_kernel_matches_reference_with_a_change_date(case, change):
    with tempfile.TemporaryDirectory() as d:
        compare(load_case(case, Path(d)), city(Path(d), change.isoformat()))


def test_a_raised_cap_gives_the_new_cap_less_what_was_paid(tmp_path, run_case):
    # city-employee: cap 40 000 until 2024-06-30, 60 000 from 2024-07-01 (CHANGES)
    policy = city(tmp_path, "2024-07-01")
    case = (
        Case()
        .member()
        .provider()
        .claim("C1", [("A1", "50600.00")], admit="2024-03-01", discharge="2024-03-10")
        .claim("C2", [("A1", "10800.00")], admit="2024-08-01", discharge="2024-08-10")
        .claim("C3", [("A1", "20800.00")], admit="2024-09-01", discharge="2024-09-10")
    )
    out = run_case(case, policy.path)
    # before: X 50 000 × 85 % = 42 500 > 40 000: the cap pays 40 000, 2 352.94 to the tier at 80 %
    assert (out["C1"]["fund_pool"], out["C1"]["fund_supplementary"]) == (y(40000), y("2352.94"))
    # after: deductible 800, 90 %; room = 60 000 − 40 000 already paid: X 10 000 × 90 % = 9 000 fits
    assert out["C2"]["fund_pool"] == y(9000) and out["C2"]["fund_supplementary"] == y(0)
    # room 11 000 left: X 20 000 × 90 % = 18 000 → 11 000; O = 20 000 − round(11 000 / 0.9) at 70 %
    assert out["C3"]["fund_pool"] == y(11000)
    assert out["C3"]["fund_supplementary"] == y("5444.45")  # (20 000 − 12 222.22) × 70 % = 5 444.446
    assert out["C2"]["deductible"] == y(800)


def test_counters_carry_across_a_change(tmp_path, run_case):
    # prefecture-employee with the first band's in-service rate 91 % → 95 % on 2024-07-01: the
    # cumulative counter K keeps running, so the second claim starts at K = 58 000.
    text = (
        P.shipped()["prefecture-employee"]
        .read_text(encoding="utf-8")
        .replace(
            "{ from = 0,      pool = { in_service = 0.91, retired = 0.93 }",
            "{ from = 0,      pool = { values = { 2000-01-01 = { value = { in_service = 0.91, retired = 0.93 } }, "
            '2024-07-01 = { value = { in_service = 0.95, retired = 0.93 }, reference = "test" } } }',
        )
    )
    policy = _write(tmp_path, "pref", text)
    case = (
        Case()
        .member()
        .provider("H2", level=2)
        .claim("C1", [("A1", "58600.00")], provider_id="H2", admit="2024-01-05", discharge="2024-01-20")
        .claim("C2", [("A1", "20000.00")], provider_id="H2", admit="2024-08-01", discharge="2024-08-10")
    )
    out = run_case(case, policy.path)
    assert out["C1"]["fund_pool"] == y(52780)  # 58 000 × 91 %
    assert out["C2"]["fund_pool"] == y("18147.20")  # 2 000 × 95 % + 17 660 × 92 %


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def test_plain_cited_and_dated_values(tmp_path):
    p = city(tmp_path, "2024-07-01")
    assert p.valid_from == dt.date(2000, 1, 1) and p.changes == (dt.date(2024, 7, 1),)
    assert len(p.periods) == 2
    assert p.at(dt.date(2024, 6, 30)).limits["fund_pool_annual"].amounts_fen == (4_000_000,)
    assert p.at(dt.date(2024, 7, 1)).limits["fund_pool_annual"].amounts_fen == (6_000_000,)
    assert p.at(dt.date(2024, 7, 1)).supplementary_catalogue is True
    info = p.in_force("limits.fund_pool_annual.amount", dt.date(2024, 8, 1))
    assert info == [{"key": "limits.fund_pool_annual.amount", "from": "2024-07-01", "reference": "the new rule"}]
    # a dated parameter moves every amount written as a multiple of it; a multiple may be dated too
    sz = (
        P.shipped()["shenzhen-comprehensive"]
        .read_text(encoding="utf-8")
        .replace(
            "avg_annual_wage = 120000", "avg_annual_wage = { values = { 2000-01-01 = 120000, 2024-07-01 = 150000 } }"
        )
    )
    sz = sz.replace(
        '{ from = 6,  amount = { times = 1,   of = "avg_annual_wage" } }',
        '{ from = 6,  amount = { times = { values = { 2000-01-01 = 1, 2025-01-01 = 1.5 } }, of = "avg_annual_wage" } }',
    )
    w = _write(tmp_path, "sz", sz)
    assert w.changes == (dt.date(2024, 7, 1), dt.date(2025, 1, 1))
    caps = [w.at(dt.date(d, m, 1)).limits["basic_cap"].amounts_fen[:2] for d, m in ((2024, 1), (2024, 7), (2025, 1))]
    assert caps == [(6_000_000, 12_000_000), (7_500_000, 15_000_000), (7_500_000, 22_500_000)]
    band = w.at(dt.date(2024, 7, 1)).block_of_setting["outpatient"].bands[1]
    assert band.start_fen == 1_500_000  # 10 % of the new W
    # a cited value: in force always, with its reference; no periods
    text = CITY.replace("rate = 0.80", 'rate = { value = 0.80, reference = "ASSUMPTION AMB-14" }')
    q = _write(tmp_path, "cited", text)
    assert q.periods == () and q.valid_from is None and q.blocks[0].tier_bp == 8000
    assert q.in_force("blocks.inpatient.supplementary.rate", dt.date(2024, 1, 1))[0]["reference"] == "ASSUMPTION AMB-14"


@pytest.mark.parametrize(
    "replace, key, message",
    [
        ("amount = { values = { 2024-13-01 = 1 } }", "limits.fund_pool_annual.amount.values.2024-13-01", "not a date"),
        ("amount = { values = {} }", "limits.fund_pool_annual.amount.values", "no dated value"),
        (
            "amount = { values = { 2024-01-01 = { value = 1, ref = 2 } } }",
            "limits.fund_pool_annual.amount.values.2024-01-01.ref",
            "unknown key 'ref'",
        ),
        (
            "amount = { values = { 2024-01-01 = { value = -5 } } }",
            "limits.fund_pool_annual.amount",
            "must not be negative (the values in force from 2024-01-01)",
        ),
        ("amount = { value = 5, reference = 7 }", "limits.fund_pool_annual.amount.reference", "a reference is text"),
    ],
)
def test_malformed_dated_values(tmp_path, replace, key, message):
    path = tmp_path / "bad.toml"
    path.write_text(CITY.replace("amount = 40000", replace), encoding="utf-8")
    with pytest.raises(P.PolicyError) as e:
        P.load(path)
    assert e.value.key == key and message in str(e.value)
    assert e.value.line == CITY[: CITY.index("amount = 40000")].count("\n") + 1


def test_structure_cannot_be_dated(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        CITY.replace('settings = ["inpatient"]', 'settings = { values = { 2024-01-01 = ["inpatient"] } }'),
        encoding="utf-8",
    )
    with pytest.raises(P.PolicyError) as e:
        P.load(path)
    assert e.value.key == "blocks.inpatient.settings" and "cannot change over time" in str(e.value)


def test_a_claim_before_the_first_date_is_an_error(tmp_path, run_case):
    path = tmp_path / "late.toml"
    path.write_text(CITY.replace("amount = 40000", "amount = { values = { 2024-07-01 = 60000 } }"), encoding="utf-8")
    case = Case().member().provider().claim("C1", [("A1", "100.00")])  # settled 2024-03-10
    with pytest.raises(P.PolicyError) as e:
        run_case(case, path)
    assert e.value.key == "limits.fund_pool_annual.amount" and "2024-03-10" in str(e.value)


# ---------------------------------------------------------------------------
# explain, compare --set, streaming
# ---------------------------------------------------------------------------


def _cap_case(tmp_path):
    case = (
        Case()
        .member()
        .provider()
        .claim("C1", [("A1", "50600.00")], admit="2024-03-01", discharge="2024-03-10")
        .claim("C2", [("A1", "10800.00")], admit="2024-08-01", discharge="2024-08-10")
    )
    p = case.write(tmp_path / "data")
    return [
        "--claims",
        str(p["claims"]),
        "--members",
        str(p["members"]),
        "--providers",
        str(p["providers"]),
        "--catalogue",
        str(p["catalogue"]),
    ]


def test_explain_shows_effective_date_and_reference(tmp_path):
    import json

    from click.testing import CliRunner

    from adjudicate.cli import main

    policy = city(tmp_path, "2024-07-01")
    args = _cap_case(tmp_path)
    r = CliRunner().invoke(main, ["explain", "C2", *args, "--policy", str(policy.path), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    cap = rep["year_so_far"]["limits"][0]
    assert cap["amount"] == "60000.00" and cap["used"] == "40000.00"
    assert rep["policy"]["in_force_from"] == ["2000-01-01", "2024-07-01"]
    assert cap["in_force"] == [
        {"key": "limits.fund_pool_annual.amount", "from": "2024-07-01", "reference": "the new rule"}
    ]
    step = next(s for s in rep["steps"] if s["name"] == "deductible_per_admission")
    assert step["in_force"][0]["from"] == "2024-07-01" and step["in_force"][0]["reference"] == "the new rule"
    assert rep["slices"][0]["in_force"][0]["reference"] == "the new rule"
    r = CliRunner().invoke(main, ["explain", "C1", *args, "--policy", str(policy.path)])
    assert r.exit_code == 0, r.output
    assert "from 2000-01-01 · the old rule" in r.output and "the new rule" not in r.output
    # an undated shipped policy: every key is in force always
    r = CliRunner().invoke(main, ["explain", "C1", *args, "--policy", "city-employee", "--json"])
    assert json.loads(r.output)["year_so_far"]["limits"][0]["in_force"][0]["from"] is None


def test_compare_set_on_a_dated_key(tmp_path):
    from adjudicate.compare import policy_with_overrides

    base = city(tmp_path, "2024-07-01")
    p = policy_with_overrides(base.path, ["limits.fund_pool_annual.amount.values.2024-07-01.value=70000"])
    assert p.at(dt.date(2024, 8, 1)).limits["fund_pool_annual"].amounts_fen == (7_000_000,)
    assert p.at(dt.date(2024, 1, 1)).limits["fund_pool_annual"].amounts_fen == (4_000_000,)
    # a plain value replaces the whole series: in force always
    p = policy_with_overrides(base.path, ["limits.fund_pool_annual.amount=50000"])
    assert {x.limits["fund_pool_annual"].amounts_fen for x in p.period_policies} == {(5_000_000,)}
    # a new dated series given whole
    p = policy_with_overrides(
        "city-employee", ["blocks.inpatient.supplementary.rate={ values = { 2000-01-01 = 0.8, 2024-07-01 = 0.9 } }"]
    )
    assert p.at(dt.date(2024, 7, 1)).blocks[0].tier_bp == 9000
    with pytest.raises(P.PolicyError) as e:
        policy_with_overrides(base.path, ["limits.fund_pool_annual.amount.values.2024-07-01.value=-1"])
    assert "2024-07-01" in str(e.value) and "negative" in str(e.value)


def test_streaming_a_dated_policy_equals_in_memory(tmp_path):
    import pyarrow.parquet as pq

    from adjudicate.engine import read_inputs
    from adjudicate.outputs import settlements_table
    from adjudicate.stream import run_streaming

    policy = city(tmp_path, "2024-07-01")
    case = Case().member("M1").member("M2").member("M3").provider()
    for m in ("M1", "M2", "M3"):
        for k, month in enumerate(("03", "08", "11")):
            case.claim(
                f"{m}C{k}",
                [("A1", "30800.00"), ("P1", "100.00")],
                member_id=m,
                admit=f"2024-{month}-01",
                discharge=f"2024-{month}-05",
            )
    paths = case.write(tmp_path / "in")
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    memory = settlements_table(adjudicate(inputs, policy, threads=1), for_file=True)
    run_streaming(
        [paths["claims"]],
        [paths["members"]],
        [paths["providers"]],
        [paths["catalogue"]],
        policy,
        tmp_path / "out",
        parts=2,
    )
    assert pq.read_table(tmp_path / "out" / "settlements.parquet").to_pylist() == memory.to_pylist()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["policy"]["in_force_from"] == ["2000-01-01", "2024-07-01"]


# ---------------------------------------------------------------------------
# adjudicate policies show / export
# ---------------------------------------------------------------------------


def _cli(*args):
    from click.testing import CliRunner

    from adjudicate.cli import main

    return CliRunner().invoke(main, list(args))


def test_policies_show_on_a_date(tmp_path):
    import json

    policy = city(tmp_path, "2024-07-01")
    r = _cli("policies", "show", str(policy.path), "--on", "2024-08-01")
    assert r.exit_code == 0, r.output
    assert "limits.fund_pool_annual.amount = 60000  # from 2024-07-01 · the new rule" in r.output
    assert "blocks.inpatient.deductible.by_level.3 = [800]  # from 2024-07-01 · the new rule" in r.output
    assert "blocks.inpatient.scale.bands[0].pool = 0.9  # from 2024-07-01 · the new rule" in r.output
    r = _cli("policies", "show", str(policy.path))  # every value of every series
    assert "limits.fund_pool_annual.amount = 40000  # from 2000-01-01 · the old rule" in r.output
    assert "limits.fund_pool_annual.amount = 60000  # from 2024-07-01 · the new rule" in r.output
    v = json.loads(_cli("policies", "show", str(policy.path), "--on", "2024-01-01", "--json").output)
    row = next(x for x in v["values"] if x["key"] == "limits.fund_pool_annual.amount")
    assert row == {
        "key": "limits.fund_pool_annual.amount",
        "value": "40000",
        "from": "2000-01-01",
        "reference": "the old rule",
    }
    # keys are whole, however long (never cut to a terminal's width)
    r = _cli("policies", "show", "shenzhen-comprehensive", "--on", "2024-01-01")
    assert 'limits.basic_cap.by_enrolment_months[4].amount.of = "avg_annual_wage"' in r.output
    r = _cli("policies", "show", str(policy.path), "--on", "1999-12-31")
    assert r.exit_code == 2 and "1999-12-31" in r.output
    assert _cli("policies", "show", "nope").exit_code == 2


def test_policies_export_never_overwrites(tmp_path):
    out = tmp_path / "mine.toml"
    r = _cli("policies", "export", "zhenjiang-resident", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == P.shipped()["zhenjiang-resident"].read_bytes()
    assert P.load(out).name == "zhenjiang-resident"
    out.write_text("mine", encoding="utf-8")
    r = _cli("policies", "export", "zhenjiang-resident", "--out", str(out))
    assert r.exit_code == 2 and "exists" in r.output
    assert out.read_text(encoding="utf-8") == "mine"
    assert _cli("policies", "--json").exit_code == 0  # the list still works without a subcommand


# ---------------------------------------------------------------------------
# reconcile: dated settlement rules, by year
# ---------------------------------------------------------------------------


def test_reconcile_follows_dated_rules_year_by_year(tmp_path):
    from decimal import Decimal as D

    from test_reconcile import Books, reconcile, rows

    from adjudicate.reconcile.rules import DEFAULT_RULES, load_rules

    b = Books().provider("H1").member("M1", category="retired")
    b.admissions("H1", 120, "700000", year=2024).admissions("H1", 120, "700000", year=2025)
    b.write(tmp_path)
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    own = tmp_path / "rules.toml"
    own.write_text(
        text.replace(
            "excess_share = 0.50",
            "excess_share = { values = { 2000-01-01 = 0.50, 2025-06-01 = { value = 0.60, "
            'reference = "a 2025 notice" } } }',
        ),
        encoding="utf-8",
    )
    # the account credit is the policy's [account.credit] now (contract §3: settlement carries the
    # account over with it), dated like any policy value; the ledger follows it year by year
    ptext = P.shipped()["prefecture-employee"].read_text(encoding="utf-8")
    own_policy = tmp_path / "policy.toml"
    own_policy.write_text(
        ptext.replace("retired_amount = 400", "retired_amount = { values = { 2000-01-01 = 400, 2025-06-01 = 500 } }"),
        encoding="utf-8",
    )
    rules = load_rules(own)
    assert rules.for_settlement(2024).excess_share_bp == 5000 and rules.for_settlement(2025).excess_share_bp == 6000
    r, out = reconcile(tmp_path, "--rules", own, "--policy", own_policy)
    assert r.exit_code == 0, r.output
    due = {x["benefit_year"]: x["due"] for x in rows(out, "provider_settlement")}
    # 116.7 % of the quota: Q + share × (A − 110 % Q); the 2025 corridor is settled on 2025-12-31
    assert due == {2024: D("620000"), 2025: D("624000")}
    credit = {x["benefit_year"]: x["credit"] for x in rows(out, "ledger")}
    assert credit == {2024: D("400"), 2025: D("500")}  # paid on 1 January 2025 and 2026
    s = json.loads((out / "summary.json").read_text())
    assert s["rules"]["in_force_from"] == ["2000-01-01", "2025-06-01"]
    # structure cannot be dated; a bad value names its date
    own_policy.write_text(
        ptext.replace(
            "{ from_age = 36, rate = 0.015 }", "{ from_age = { values = { 2000-01-01 = 36 } }, rate = 0.015 }"
        ),
        encoding="utf-8",
    )
    r, _ = reconcile(tmp_path, "--policy", own_policy)
    assert r.exit_code == 2 and "account.credit.by_age[1].from_age" in r.output
    own.write_text(
        text.replace("ceiling = 1.20", "ceiling = { values = { 2000-01-01 = 1.20, 2025-01-01 = 1.0 } }"),
        encoding="utf-8",
    )
    r, _ = reconcile(tmp_path, "--rules", own)
    assert r.exit_code == 2 and "corridor.ceiling" in r.output and "2025-01-01" in r.output


def test_errors_in_a_values_table_name_the_entry_line(tmp_path):
    example = Path(P.__file__).parent / "cases" / "migrant-workers" / "policy.toml"
    text = example.read_text(encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if t.startswith("2024-07-01 ="))
    for old, new, key in (
        ("value = 0.72", "value = 1.72", "blocks.inpatient.scale.bands[0].pool"),
        ("2024-07-01 = {", "2024-07-32 = {", "blocks.inpatient.scale.bands[0].pool.values.2024-07-32"),
    ):
        path = tmp_path / "p.toml"
        path.write_text(text.replace(old, new), encoding="utf-8")
        with pytest.raises(P.PolicyError) as e:
            P.load(path)
        assert e.value.key == key and e.value.line == line, str(e.value)


def test_a_dated_entry_may_be_a_plain_table(tmp_path):
    """The README's inline form: an entry is a plain value, and a value may be a table such as
    { in_service = …, retired = … } (found by the qa oracle: such an entry was refused)."""
    pref = P.shipped()["prefecture-employee"].read_text(encoding="utf-8")
    old = "{ from = 60000,  pool = { in_service = 0.92, retired = 0.94 }, subsidised = true },"
    assert old in pref
    new = (
        "{ from = 60000,  pool = { values = { 2000-01-01 = { in_service = 0.92, retired = 0.94 }, "
        '2024-07-01 = { value = { in_service = 0.95, retired = 0.97 }, reference = "r" } } }, '
        "subsidised = true },"
    )
    p = _write(tmp_path, "pref", pref.replace(old, new))
    assert p.changes == (dt.date(2024, 7, 1),)
    assert p.at(dt.date(2024, 6, 30)) != p.at(dt.date(2024, 7, 1))
    assert p.in_force("blocks.inpatient.scale.bands[1].pool", dt.date(2024, 8, 1))[0]["from"] == "2024-07-01"
    # a misspelt key inside such a table is still an error naming it
    path = tmp_path / "bad.toml"
    path.write_text(pref.replace(old, new.replace("{ in_service = 0.95", "{ in_servce = 0.95")), encoding="utf-8")
    with pytest.raises(P.PolicyError) as e:
        P.load(path)
    assert e.value.key == "blocks.inpatient.scale.bands[1].pool.in_servce"


def test_explain_shows_when_the_credit_in_an_opening_was_set(tmp_path):
    # qa: the account opening of a later year names account.credit; with a dated credit it shows the
    # values in force on 1 January of the claim's year, when the latest credit was paid.
    import json

    from click.testing import CliRunner

    from adjudicate.cli import main

    text = CITY.replace(
        "retired_amount = 400",
        'retired_amount = { values = { 2000-01-01 = 400, 2025-01-01 = { value = 520, reference = "raised" } } }',
    )
    path = tmp_path / "credit.toml"
    path.write_text(text, encoding="utf-8")
    case = (
        Case()
        .member(category="retired", balance="100")
        .provider()
        .claim("C1", [("A1", "10")], setting="outpatient", admit="2024-03-01", discharge=None)
        .claim("C2", [("A1", "10")], setting="outpatient", admit="2025-03-01", discharge=None)
    )
    paths = case.write(tmp_path / "in")
    args = [a for k, v in paths.items() for a in (f"--{k}", str(v))]
    r = CliRunner().invoke(main, ["explain", "C2", *args, "--policy", str(path), "--json"])
    assert r.exit_code == 0, r.output
    y = json.loads(r.output)["year_so_far"]
    assert y["account_opening"] == "610.00"  # 100 − 10 + 520
    assert y["account_credit_in_force"][0]["from"] == "2025-01-01"
    assert y["account_credit_in_force"][0]["reference"] == "raised"
    r = CliRunner().invoke(main, ["explain", "C1", *args, "--policy", str(path), "--json"])
    assert json.loads(r.output)["year_so_far"]["account_credit_in_force"] == []
