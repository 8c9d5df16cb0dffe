"""Each rejection reason of contract §4, its priority, and nothing lost."""

from __future__ import annotations

import datetime as dt

from builders import Case


def base() -> Case:
    return Case().member().provider()


def test_each_reason(run_case):
    case = base().claim("OK", [("A1", "100.00")])
    case.claim("NULL", [("A1", "100.00")]).claims[-1]["item_code"] = None
    case.claim("DUP", [("A1", "100.00"), ("A1", "50.00")]).claims[-1]["line_no"] = 1
    case.claim("HDR", [("A1", "100.00"), ("A1", "50.00")]).claims[-1]["provider_id"] = "OTHER"
    case.claim("MEM", [("A1", "100.00")], member_id="NOBODY")
    case.claim("PRO", [("A1", "100.00")], provider_id="NOWHERE")
    case.claim("DIS", [("A1", "100.00")], discharge=None)
    case.claim("BEF", [("A1", "100.00")], admit="2024-03-10", discharge="2024-03-01")
    case.claim("NEG", [("A1", "100.00"), ("A1", "-150.00")])
    case.claim("NEGB", [("A1", "100.00"), ("B1", "-50.00")])  # class B refunded but never billed
    out = run_case(case)
    assert set(out.settlements) == {"OK"}
    assert {r["claim_id"]: r["reason"] for r in out.rejected} == {
        "NULL": "null_required_field",
        "DUP": "duplicate_line",
        "HDR": "inconsistent_claim_header",
        "MEM": "unknown_member",
        "PRO": "unknown_provider",
        "DIS": "missing_discharge_date",
        "BEF": "discharge_before_admit",
        "NEG": "negative_claim_total",
        "NEGB": "negative_claim_total",
    }
    lines = {r["claim_id"]: r["line_no"] for r in out.rejected}
    assert lines["NULL"] == 1 and lines["DUP"] == 1  # the line_no that appears twice


def test_priority_first_reason_wins(run_case):
    case = base()
    case.claim("BOTH", [("A1", "100.00")], member_id="NOBODY", discharge=None)
    case.claims[-1]["item_code"] = None
    out = run_case(case)
    assert out.reason("BOTH") == "null_required_field"


def test_discharge_date_ignored_outside_inpatient(run_case):
    case = base().claim("O1", [("A1", "10.00"), ("A1", "5.00")], setting="outpatient")
    case.claims[-1]["discharge_date"] = dt.date(2024, 1, 1)  # differs, but not an inpatient claim
    out = run_case(case)
    assert "O1" in out.settlements


def test_rejected_claim_does_not_touch_the_members_year(run_case):
    case = (
        base()
        .claim("C0", [("A1", "1000.00")], admit="2024-01-01", discharge="2024-01-02")
        .claim("C1", [("A1", "1000.00"), ("A1", "-2000.00")], admit="2024-02-01", discharge="2024-02-02")
        .claim("C2", [("A1", "1000.00")], admit="2024-03-01", discharge="2024-03-02")
    )
    out = run_case(case)
    assert out.reason("C1") == "negative_claim_total"
    assert out["C2"]["admission_ordinal"] == 2  # the rejected admission is not counted
