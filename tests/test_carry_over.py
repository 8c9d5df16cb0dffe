"""Personal accounts carry over the years (contract §3, schemes.md §9, issue 7 §2).

``members.account_balance`` is the balance on 1 January of the base year B,
the earliest benefit year of the run's settled claims; each later year opens
at the year before's closing plus its credit, years without claims included.
The member below is in service, born 1970-06-01 (54 on 1 January 2025, 53 on
1 January 2024: band 46+, 2.5 %) with a prior-year wage of 60 000: credit
1 500.00 a year. A retired member's credit is 400.00 a year (prefecture-employee
``[account.credit]``, seed 003).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from builders import Case
from test_bad_input import cli, run_args, write
from test_reference import compare, load_case

from adjudicate import policy as P
from adjudicate.stream import run_streaming

# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): ledger and funds year → benefit_year.

D = Decimal


def out(case: Case, admit: str, amount: str, cid: str, member: str = "M1") -> Case:
    """An outpatient visit: the prefecture account pays eligible + first_self_pay (all class A here)."""
    return case.claim(cid, [("A1", amount)], member_id=member, setting="outpatient", admit=admit, discharge=None)


def base_case() -> Case:
    case = Case().member("M1", balance="1000").member("M2", category="retired", balance="300").provider()
    out(case, "2024-03-01", "800", "C2024")
    out(case, "2025-01-10", "2000", "C2025")  # January claims of a 2024 data set
    out(case, "2025-02-01", "1000", "R2025", member="M2")  # M2's only claim is in B + 1
    return case


def test_january_is_paid_from_what_2024_left_plus_the_credit(tmp_path, run_case):
    got = run_case(base_case())
    assert got["C2024"]["account_paid"] == D("800.00")  # 1000 − 800 = 200 left at the end of 2024
    # 2025 opens at 200 + 1 500 credit = 1 700 (not at 1 000 again)
    assert got["C2025"]["account_paid"] == D("1700.00") and got["C2025"]["cash_paid"] == D("300.00")
    # M2 has no claim in 2024, B is still 2024 (the run's): 300 + 400 retired credit = 700
    assert got["R2025"]["account_paid"] == D("700.00")
    assert got.result.base_year == 2024
    compare(load_case(base_case(), tmp_path / "ref"), P.load("prefecture-employee"))


def test_gap_year_is_credited_too(tmp_path, run_case):
    case = Case().member("M1", balance="1000").provider()
    out(case, "2023-05-01", "600", "C2023")
    out(case, "2025-03-01", "5000", "C2025")
    got = run_case(case)
    # 1000 − 600 = 400 at the end of 2023; + 1 500 (2023) + 1 500 (2024, no claims) = 3 400
    assert got["C2025"]["account_paid"] == D("3400.00")
    compare(load_case(case, tmp_path / "ref"), P.load("prefecture-employee"))


def test_a_rejected_claim_does_not_move_the_base_year(run_case):
    case = base_case()
    out(case, "2023-06-01", "50", "GHOST", member="NOBODY")  # unknown member: rejected, B stays 2024
    case.claim("NEG", [("A1", "-5")], member_id="M1", setting="outpatient", admit="2022-01-01", discharge=None)
    got = run_case(case)
    assert got.reason("GHOST") == "unknown_member" and got.reason("NEG") == "negative_claim_total"
    assert got.result.base_year == 2024 and got["C2025"]["account_paid"] == D("1700.00")


def test_a_policy_without_credit_carries_the_closing(tmp_path, run_case):
    text = P.shipped()["prefecture-employee"].read_text(encoding="utf-8")
    text = (
        text.replace("retired_amount = 400", "retired_amount = 0")
        .replace("rate = 0.005", "rate = 0")
        .replace("rate = 0.015", "rate = 0")
        .replace("rate = 0.025", "rate = 0")
    )
    path = tmp_path / "nocredit.toml"
    path.write_text(text, encoding="utf-8")
    got = run_case(base_case(), path)
    assert got["C2025"]["account_paid"] == D("200.00") and got["R2025"]["account_paid"] == D("300.00")


def test_policy_with_an_account_needs_a_credit_rule(tmp_path):
    text = P.shipped()["city-employee"].read_text(encoding="utf-8")
    path = tmp_path / "p.toml"
    path.write_text(text[: text.index("[account.credit]")], encoding="utf-8")
    with pytest.raises(P.PolicyError, match="account.credit"):
        P.load(path)


def paths_args(paths) -> list[str]:
    return [
        "--claims",
        str(paths["claims"]),
        "--members",
        str(paths["members"]),
        "--providers",
        str(paths["providers"]),
        "--catalogue",
        str(paths["catalogue"]),
    ]


def test_explain_agrees_with_run_across_years(tmp_path):
    paths = write(tmp_path / "in", base_case())
    r = cli("explain", "R2025", *paths_args(paths), "--policy", "prefecture-employee", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["kernel_agrees"] is True and rep["amounts"]["account_paid"] == "700.00"
    assert rep["member"]["account_base_year"] == 2024
    assert rep["year_so_far"]["account_opening"] == "700.00"
    assert "credit for 2024 400.00" in rep["year_so_far"]["account_opening_how"]
    r = cli("explain", "C2025", *paths_args(paths), "--policy", "prefecture-employee")
    assert r.exit_code == 0 and "account opening on 1 January 2025" in r.output and "1700.00" in r.output
    assert "closing of 2024 200.00" in r.output


def test_streaming_equals_in_memory_across_years(tmp_path):
    case = base_case()
    for k in range(12):  # members in several ranges; the earliest year lives in the last range
        out(case.member(f"K{k:02d}", balance="500"), "2024-07-01", "100", f"K{k:02d}-24", member=f"K{k:02d}")
        out(case, "2025-01-03", "900", f"K{k:02d}-25", member=f"K{k:02d}")
    out(case.member("ZZ", balance="50"), "2023-12-30", "20", "ZZ-23", member="ZZ")
    out(case, "2025-01-02", "900", "ZZ-25", member="ZZ")
    paths = case.write(tmp_path / "in")
    args = (
        [paths["claims"]],
        [paths["members"]],
        [paths["providers"]],
        [paths["catalogue"]],
        P.load("prefecture-employee"),
    )
    run_streaming(*args, tmp_path / "one", parts=1)
    run_streaming(*args, tmp_path / "many", parts=3)
    for name in ("settlements", "lines", "rejected"):
        assert pq.read_table(tmp_path / "many" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "one" / f"{name}.parquet")
        ), name
    r = cli(*run_args(paths, tmp_path / "cli"), "--partitions", "3")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "cli" / "summary.json").read_text())["account_base_year"] == 2023
    st = {x["claim_id"]: x for x in pq.read_table(tmp_path / "cli" / "settlements.parquet").to_pylist()}
    # B = 2023 (ZZ's claim): everybody's balance stands on 1 January 2023 and 2023's credit comes first
    assert st["ZZ-25"]["account_paid"] == D("900.00")  # 50 − 20 + 1 500 + 1 500
    assert st["C2025"]["account_paid"] == D("2000.00")  # 1000 + 1 500 (2023) − 800 + 1 500 (2024)


def test_reconcile_ledger_chains_the_years(tmp_path):
    paths = write(tmp_path / "in", base_case())
    res = tmp_path / "res"
    assert cli(*run_args(paths, res)).exit_code == 0
    rec = tmp_path / "rec"
    r = cli(
        "reconcile",
        "--settlements",
        str(res),
        "--providers",
        str(paths["providers"]),
        "--members",
        str(paths["members"]),
        "--out",
        str(rec),
        "-q",
    )  # the policy comes from the run's summary.json
    assert r.exit_code == 0, r.output
    led = {(x["member_id"], x["benefit_year"]): x for x in pq.read_table(rec / "ledger.parquet").to_pylist()}
    assert set(y for _, y in led) == {2024, 2025}
    m1 = led["M1", 2024], led["M1", 2025]
    assert (m1[0]["opening"], m1[0]["spent"], m1[0]["closing"], m1[0]["credit"], m1[0]["next_opening"]) == (
        D("1000"),
        D("800"),
        D("200"),
        D("1500"),
        D("1700"),
    )
    assert (m1[1]["opening"], m1[1]["spent"], m1[1]["closing"]) == (D("1700"), D("1700"), D("0"))
    for mid in ("M1", "M2"):
        assert led[mid, 2025]["opening"] == led[mid, 2024]["next_opening"]
        for y in (2024, 2025):
            x = led[mid, y]
            assert x["closing"] == x["opening"] - x["spent"] >= 0 and x["next_opening"] == x["closing"] + x["credit"]
    s = json.loads((rec / "summary.json").read_text())
    assert s["identities_hold"] and s["ledger"]["chained"] and s["ledger"]["base_year"] == 2024
    assert s["policy"]["name"] == "prefecture-employee"
    funds = {(f["fund"], f["benefit_year"]): f for f in pq.read_table(rec / "funds.parquet").to_pylist()}
    assert funds["account", 2024]["opening"] == D("1300")  # Σ account_balance in the base year
    # --year 2025 alone: its openings are still carried from 2024 (not account_balance again)
    r = cli(
        "reconcile",
        "--settlements",
        str(res),
        "--providers",
        str(paths["providers"]),
        "--members",
        str(paths["members"]),
        "--year",
        "2025",
        "--out",
        str(tmp_path / "rec25"),
        "-q",
    )
    assert r.exit_code == 0, r.output
    led25 = {x["member_id"]: x for x in pq.read_table(tmp_path / "rec25" / "ledger.parquet").to_pylist()}
    assert led25["M1"]["opening"] == D("1700") and led25["M2"]["opening"] == D("700")
    f25 = {f["fund"]: f for f in pq.read_table(tmp_path / "rec25" / "funds.parquet").to_pylist()}
    assert f25["account"]["opening"] == D("2400") and "carried" in f25["account"]["opening_source"]
    # a year before the base year has no known balance
    r = cli(
        "reconcile",
        "--settlements",
        str(res),
        "--providers",
        str(paths["providers"]),
        "--members",
        str(paths["members"]),
        "--year",
        "2023",
        "--out",
        str(tmp_path / "rec23"),
        "-q",
    )
    assert r.exit_code == 2 and "1 January 2024" in r.output


def test_reconcile_without_a_run_summary_needs_the_policy(tmp_path):
    paths = write(tmp_path / "in", base_case())
    res = tmp_path / "res"
    assert cli(*run_args(paths, res)).exit_code == 0
    (res / "summary.json").unlink()
    r = cli(
        "reconcile",
        "--settlements",
        str(res / "settlements.parquet"),
        "--providers",
        str(paths["providers"]),
        "--members",
        str(paths["members"]),
        "--out",
        str(tmp_path / "rec"),
        "-q",
    )
    assert r.exit_code == 2 and "--policy" in r.output


def test_age_on_january_1_is_the_calendar_age():
    """account.age_on_january_1 (integer arithmetic) against the calendar, births 1800-2199, leap days
    and 1 January included: whole years of age on 1 January of the year."""
    import datetime as dt

    import numpy as np

    from adjudicate.account import age_on_january_1

    epoch = dt.date(1970, 1, 1)
    births = [dt.date(1800, 1, 1) + dt.timedelta(days=d) for d in range(0, 146_097, 7)]
    births += [dt.date(y, m, d) for y in (1900, 1996, 2000, 2023, 2024) for m, d in ((1, 1), (2, 28), (12, 31))]
    births += [dt.date(y, 2, 29) for y in (1996, 2000, 2024)]
    days = np.array([(b - epoch).days for b in births], np.int64)
    for year in (1850, 2000, 2025, 2201):
        expected = [year - b.year - (b != dt.date(b.year, 1, 1)) for b in births]
        assert age_on_january_1(days, year).tolist() == expected
