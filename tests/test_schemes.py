"""Hand-computed cases for each shipped scheme (schemes.md §1–§6, §10).

Every expected figure below was worked out by hand from schemes.md; the
comments show the arithmetic so a policy analyst can check it.
"""

from __future__ import annotations

from builders import Case
from conftest import y


def amounts(row, *names):
    return tuple(row[n] for n in names)


# ---------------------------------------------------------------- §10 worked examples


def test_worked_example_1_prefecture_first_admission(run_case):
    out = run_case(Case().member().provider().claim("C1", [("A1", "10000.00")]))
    r = out["C1"]
    assert r["deductible"] == y(700) and r["fund_pool"] == y("8463.00")
    assert r["member_policy_share"] == y("1537.00") and r["admission_ordinal"] == 1


def test_worked_example_2_prefecture_retired_second_admission(run_case):
    # 1st admission at level 2: deductible 600, X = 58 000 -> K = 58 000.
    case = (
        Case()
        .member(category="retired")
        .provider("H2", level=2)
        .claim("C1", [("A1", "58600.00")], provider_id="H2", admit="2024-01-05", discharge="2024-01-20")
        .claim("C2", [("A1", "20000.00")], provider_id="H2", admit="2024-05-01", discharge="2024-05-10")
    )
    out = run_case(case)
    assert out["C1"]["fund_pool"] == y("53940.00")  # 58 000 x 93 %
    r = out["C2"]
    assert r["admission_ordinal"] == 2 and r["deductible"] == y(340)
    assert r["fund_pool"] == y("18460.40")  # 2 000 x 93 % + 17 660 x 94 %


def test_worked_example_3_zhenjiang_venues(run_case):
    case = (
        Case()
        .member()
        .provider("CC", kind="community", level=1)
        .provider("H2", level=2)
        .provider("FAR", level=3, designated=True, local=False)
        .claim("COMM", [("A1", "12000.00")], provider_id="CC")
        .claim("HOSP", [("A1", "12000.00")], provider_id="H2", admit="2024-04-01", discharge="2024-04-05")
        .claim(
            "AWAY",
            [("A1", "12000.00")],
            provider_id="FAR",
            referral="referred",
            admit="2024-05-01",
            discharge="2024-05-05",
        )
    )
    out = run_case(case, "zhenjiang-resident")
    assert out["COMM"]["fund_pool"] == y("6950.00") and out["COMM"]["deductible"] == y(300)
    assert out["HOSP"]["fund_pool"] == y("5560.00")  # x 0.8
    assert out["AWAY"]["fund_pool"] == y("3475.00")  # x 0.5 (referred out of the region)


def test_worked_example_4_price_ceiling(run_case):
    case = Case().member().provider().item("BX", "B", max_price="9.50").claim("C1", [("BX", "200.00", 20)])
    out = run_case(case)
    line = out.lines[0]
    assert line["self_pay"] == y("10.00") and line["first_self_pay"] == y("28.50")
    assert line["eligible"] == y("161.50")


# ---------------------------------------------------------------- prefecture-employee


def test_prefecture_band_into_supplementary_and_subsidy(run_case):
    # E 120 000, level 3, 1st: X = 119 300; pool 60 000x.91 + 30 000x.92 + 10 000x.93 = 91 500;
    # 大额 19 300 x .80 = 15 440; subsidy (119 300 - 91 500 - 15 440) x 50 % = 6 180.
    case = Case().member(civil_servant=True).provider().claim("C1", [("A1", "120000.00")])
    r = run_case(case)["C1"]
    assert amounts(r, "fund_pool", "fund_supplementary", "member_policy_share", "subsidy") == (
        y(91500),
        y(15440),
        y(13060),
        y(6180),
    )
    assert r["cash_paid"] == y(13060 - 6180)


def test_prefecture_above_200k_is_the_members(run_case):
    # E 250 000: pool 91 500, 大额 100 000 x 80 % = 80 000, 49 300 above 20万 uncovered.
    # Retired civil servant: subsidy base (200 000 - 93 500 - 80 000) x 55 %.
    case = (
        Case()
        .member("M1")
        .member("M2", category="retired", civil_servant=True)
        .provider()
        .claim("C1", [("A1", "250000.00")])
        .claim("C2", [("A1", "250000.00")], member_id="M2")
    )
    out = run_case(case)
    assert amounts(out["C1"], "fund_pool", "fund_supplementary", "member_policy_share") == (
        y(91500),
        y(80000),
        y(78500),
    )
    # retired: 60 000x.93 + 30 000x.94 + 10 000x.95 = 93 500
    assert out["C2"]["fund_pool"] == y(93500)
    assert out["C2"]["subsidy"] == y("14575.00")  # (200 000 - 93 500 - 80 000) x 55 %


def test_prefecture_ordinals_levels_and_year_change(run_case):
    case = (
        Case()
        .member()
        .provider("CC", kind="community", level=2)
        .provider("H1", level=1)
        .claim("C1", [("A1", "1000.00")], provider_id="H1", admit="2024-01-02", discharge="2024-01-03")
        .claim("C2", [("A1", "1000.00")], provider_id="H1", admit="2024-02-02", discharge="2024-02-03")
        .claim("C3", [("A1", "1000.00")], provider_id="CC", admit="2024-03-02", discharge="2024-03-03")
        .claim("C4", [("A1", "1000.00")], provider_id="CC", admit="2024-04-02", discharge="2024-04-03")
        .claim("C5", [("A1", "1000.00")], provider_id="H1", admit="2024-12-28", discharge="2025-01-02")
    )
    out = run_case(case)
    # community uses the '1 or community' row whatever its level: 500, 280, 220, 220
    assert [out[c]["deductible"] for c in ("C1", "C2", "C3", "C4")] == [y(500), y(280), y(220), y(220)]
    assert [out[c]["admission_ordinal"] for c in ("C1", "C2", "C3", "C4")] == [1, 2, 3, 4]
    # discharged in 2025: a new benefit year, ordinal 1 again
    assert out["C5"]["benefit_year"] == 2025 and out["C5"]["admission_ordinal"] == 1
    assert out["C5"]["deductible"] == y(500)


def test_prefecture_cumulative_band_resets_each_year(run_case):
    case = (
        Case()
        .member()
        .provider()
        .claim("C1", [("A1", "60700.00")], admit="2023-05-01", discharge="2023-05-10")
        .claim("C2", [("A1", "10700.00")], admit="2024-05-01", discharge="2024-05-10")
    )
    out = run_case(case)
    assert out["C1"]["fund_pool"] == y(54600)  # 60 000 x 91 %
    assert out["C2"]["fund_pool"] == y(9100)  # back in band 1 in 2024


def test_prefecture_account_runs_out_and_restarts_next_year(run_case):
    case = (
        Case()
        .member(balance="1000")
        .provider()
        .claim("C1", [("A1", "10000.00")], admit="2024-01-01", discharge="2024-01-05")
        .claim("C2", [("B1", "100.00")], setting="outpatient", admit="2024-02-01")
        .claim("C3", [("B1", "100.00")], setting="outpatient", admit="2025-02-01")
    )
    out = run_case(case)
    assert out["C1"]["account_paid"] == y(1000) and out["C1"]["cash_paid"] == y(537)
    assert out["C2"]["account_paid"] == y(0) and out["C2"]["cash_paid"] == y(100)
    # new year: the balance restarts from members.account_balance; pays eligible 85 + first_self_pay 15
    assert out["C3"]["account_paid"] == y(100) and out["C3"]["fund_pool"] == y(0)


def test_prefecture_non_designated_and_referral(run_case):
    case = (
        Case()
        .member(balance="5000")
        .provider("ND", designated=False)
        .claim("C1", [("A1", "3000.00")], provider_id="ND")
        .claim(
            "C2",
            [("A1", "3000.00")],
            provider_id="ND",
            referral="emergency",
            admit="2024-06-01",
            discharge="2024-06-02",
        )
    )
    out = run_case(case)
    r = out["C1"]
    assert r["self_pay"] == y(3000) and r["cash_paid"] == y(3000) and r["account_paid"] == y(0)
    assert r["admission_ordinal"] is None and r["fund_pool"] == y(0)
    # the emergency admission has benefit and is the member's first admission
    assert out["C2"]["admission_ordinal"] == 1 and out["C2"]["fund_pool"] == y("2093.00")  # (3000-700) x 91 %


def test_catalogue_validity_switches_on_admit_date(run_case):
    case = (
        Case()
        .member()
        .provider()
        .item("V1", "excluded", valid_to="2024-06-30")
        .item("V1", "A", valid_from="2024-07-01")
        .claim("C1", [("V1", "1000.00")], admit="2024-06-30", discharge="2024-07-05")
        .claim("C2", [("V1", "1000.00")], admit="2024-07-01", discharge="2024-07-05")
    )
    out = run_case(case)
    classes = {(line["claim_id"]): line["class"] for line in out.lines}
    assert classes == {"C1": "excluded", "C2": "A"}
    assert out["C1"]["self_pay"] == y(1000) and out["C2"]["eligible"] == y(1000)


def test_unknown_item_and_item_ratio_override(run_case):
    case = (
        Case()
        .member()
        .provider()
        .item("AR", "A", ratio="0.10")
        .claim("C1", [("NOPE", "50.00"), ("AR", "100.00"), ("X1", "20.00"), ("P1", "30.00")])
    )
    out = run_case(case)
    by_no = {line["line_no"]: line for line in out.lines}
    assert by_no[1]["class"] == "unknown" and by_no[1]["self_pay"] == y(50)
    assert by_no[2]["first_self_pay"] == y(10)  # the item's own 10 % wins over class A's 0 %
    assert by_no[3]["self_pay"] == y(20)  # excluded
    assert by_no[4]["self_pay"] == y(30)  # supplementary, but no supplementary catalogue here


def test_refund_lines(run_case):
    case = (
        Case()
        .member()
        .provider()
        .item("BX", "B", max_price="9.50")
        .claim("C1", [("BX", "200.00", 20), ("BX", "-95.00", -10)], setting="outpatient")
    )
    out = run_case(case)
    by_no = {line["line_no"]: line for line in out.lines}
    # a refund line carries no excess over the ceiling
    assert by_no[2]["self_pay"] == y(0) and by_no[2]["first_self_pay"] == y("-14.25")
    assert out["C1"]["eligible"] == y("161.50") - y("80.75")


# ---------------------------------------------------------------- shenzhen-comprehensive (W = 120 000)


def test_shenzhen_inpatient_within_cap(run_case):
    case = (
        Case()
        .member()
        .member("R", category="retired")
        .provider()
        .claim("C1", [("A1", "10000.00")])
        .claim("C2", [("A1", "10000.00")], member_id="R")
    )
    out = run_case(case, "shenzhen-comprehensive")
    assert out["C1"]["fund_pool"] == y(9000) and out["C1"]["deductible"] == y(0)
    assert out["C2"]["fund_pool"] == y(9500)


def test_shenzhen_cap_crossed_inside_a_claim(run_case):
    # enrolled 2024-01-15; discharge 2024-09-20 -> 8 months: cap 1 W = 120 000, limit 50 000
    case = (
        Case()
        .member(enrolled_since="2024-01-15")
        .provider()
        .claim("C1", [("A1", "100000.00")], admit="2024-09-01", discharge="2024-09-20")
        .claim("C2", [("A1", "100000.00")], admit="2024-10-01", discharge="2024-10-20")
    )
    out = run_case(case, "shenzhen-comprehensive")
    assert out["C1"]["fund_pool"] == y(90000)
    # room 30 000; O = 100 000 - round(30 000 / 0.9) = 66 666.67; 85 % = 56 666.67 > limit 50 000
    r = out["C2"]
    assert amounts(r, "fund_pool", "fund_supplementary", "member_policy_share") == (y(30000), y(50000), y(20000))


def test_shenzhen_enrolment_brackets(run_case):
    # enrolled 2024-01-15: discharge 07-14 is 5 months (< 6: cap 60 000, limit 0), 07-15 is 6 months
    case = (
        Case()
        .member("A", enrolled_since="2024-01-15")
        .member("B", enrolled_since="2024-01-15")
        .provider()
        .claim("CA", [("A1", "100000.00")], member_id="A", admit="2024-07-01", discharge="2024-07-14")
        .claim("CB", [("A1", "100000.00")], member_id="B", admit="2024-07-01", discharge="2024-07-15")
    )
    out = run_case(case, "shenzhen-comprehensive")
    assert amounts(out["CA"], "fund_pool", "fund_supplementary") == (y(60000), y(0))
    assert amounts(out["CB"], "fund_pool", "fund_supplementary") == (y(90000), y(0))
    for months, enrolled, cap in ((12, "2023-07-15", 240000), (24, "2022-07-15", 360000), (36, "2021-07-15", 480000)):
        c = (
            Case()
            .member(enrolled_since=enrolled)
            .provider()
            .claim("C", [("A1", "600000.00")], admit="2024-07-01", discharge="2024-07-15")
        )
        assert run_case(c, "shenzhen-comprehensive")["C"]["fund_pool"] == y(cap), months


def test_shenzhen_supplementary_catalogue_inpatient(run_case):
    case = Case().member().provider().claim("C1", [("A1", "1000.00"), ("P1", "1000.00")])
    r = run_case(case, "shenzhen-comprehensive")["C1"]
    assert amounts(r, "fund_pool", "fund_supplementary", "account_paid") == (y(900), y(850), y(0))


def test_shenzhen_outpatient_account_then_threshold(run_case):
    case = (
        Case()
        .member(balance="1000")
        .provider()
        .claim("O1", [("A1", "800.00"), ("S1", "1000.00")], setting="outpatient", admit="2024-02-01")
        .claim("O2", [("A1", "3000.00")], setting="outpatient", admit="2024-03-01")
        .claim("O3", [("A1", "10000.00")], setting="outpatient", admit="2024-04-01")
    )
    out = run_case(case, "shenzhen-comprehensive")
    # O1: account pays A 800 then first_self_pay 200 of the special item; the fund pays special eligible 800
    assert amounts(out["O1"], "account_paid", "fund_pool", "cash_paid") == (y(1000), y(800), y(0))
    # O2: account empty, U = 3 000 below T = 12 000
    assert amounts(out["O2"], "deductible", "fund_pool") == (y(3000), y(0))
    # O3: U 3 000 -> 13 000: 9 000 more below T, 1 000 above at 70 %
    assert amounts(out["O3"], "deductible", "fund_pool") == (y(9000), y(700))


# ---------------------------------------------------------------- city-employee


def test_city_example_11(run_case):
    case = (
        Case()
        .member()
        .provider("H2", level=2)
        .claim("C1", [("X1", "1000.00"), ("B1", "4000.00"), ("S1", "3000.00"), ("A1", "13000.00")], provider_id="H2")
    )
    r = run_case(case, "city-employee")["C1"]
    assert amounts(r, "self_pay", "first_self_pay", "eligible", "deductible") == (y(1000), y(1200), y(18800), y(500))
    assert r["fund_pool"] == y("15555.00")  # 18 300 x 85 %


def test_city_annual_cap_overflows_to_large_medical(run_case):
    case = (
        Case()
        .member()
        .provider()
        .claim("C1", [("A1", "50600.00")], admit="2024-01-01", discharge="2024-01-10")
        .claim("C2", [("A1", "10600.00")], admit="2024-02-01", discharge="2024-02-10")
    )
    out = run_case(case, "city-employee")
    # X 50 000: full 42 500 > 40 000; O = 50 000 - round(40 000 / .85) = 2 941.18; x 80 % = 2 352.94
    assert amounts(out["C1"], "fund_pool", "fund_supplementary") == (y(40000), y("2352.94"))
    # cap used up: all of X = 10 000 overflows at 80 %
    assert amounts(out["C2"], "fund_pool", "fund_supplementary") == (y(0), y(8000))


# ---------------------------------------------------------------- zhenjiang-resident


def test_zhenjiang_benefit_table(run_case):
    case = (
        Case()
        .member(balance="9999")
        .provider("LND", designated=False)
        .provider("FAR", designated=True, local=False)
        .provider("PH", kind="pharmacy", level=0)
        .claim("EMER", [("A1", "12000.00")], provider_id="LND", referral="emergency")
        .claim("NONE", [("A1", "12000.00")], provider_id="LND", admit="2024-04-01", discharge="2024-04-02")
        .claim("FARNR", [("A1", "12000.00")], provider_id="FAR", admit="2024-05-01", discharge="2024-05-02")
    )
    out = run_case(case, "zhenjiang-resident")
    assert out["EMER"]["fund_pool"] == y("5560.00")
    assert out["NONE"]["self_pay"] == y(12000) and out["NONE"]["admission_ordinal"] is None
    assert out["FARNR"]["fund_pool"] == y(0) and out["FARNR"]["self_pay"] == y(12000)
    assert all(r["account_paid"] == 0 for r in out.settlements.values())  # no personal account


def test_zhenjiang_outpatient_and_special(run_case):
    case = (
        Case()
        .member()
        .provider("CC", kind="community", level=1)
        .provider("H2", level=2)
        .provider("ND", designated=False)
        .claim("O1", [("A1", "200.00")], provider_id="CC", setting="outpatient")
        .claim("O2", [("A1", "200.00")], provider_id="H2", setting="outpatient", admit="2024-03-02")
        .claim("O3", [("A1", "200.00")], provider_id="ND", setting="outpatient", admit="2024-03-03")
        .claim("D1", [("A1", "1000.00")], provider_id="H2", setting="special_outpatient", admit="2024-03-04")
    )
    out = run_case(case, "zhenjiang-resident")
    assert out["O1"]["fund_pool"] == y(80)
    assert out["O2"]["fund_pool"] == y(0) and out["O2"]["eligible"] == y(200)  # benefit, rate 0
    assert out["O3"]["self_pay"] == y(200)  # no benefit at a non-designated provider
    assert out["D1"]["fund_pool"] == y(500)


def test_zhenjiang_annual_maximum(run_case):
    case = Case().member().provider("CC", kind="community", level=1)
    for k in range(4):
        case.claim(
            f"C{k}", [("A1", "50000.00")], provider_id="CC", admit=f"2024-0{k + 1}-01", discharge=f"2024-0{k + 1}-05"
        )
    out = run_case(case, "zhenjiang-resident")
    assert [out[f"C{k}"]["fund_pool"] for k in range(4)] == [y(39350)] * 3 + [y(31950)]
