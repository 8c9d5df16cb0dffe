"""Engine mechanisms that no shipped policy reaches, on small edited policies."""

from __future__ import annotations

import re

from builders import Case
from conftest import y

from adjudicate import policy as P


def edited(tmp_path, name: str, *subs: tuple[str, str]):
    text = P.shipped()[name].read_text(encoding="utf-8")
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text, flags=re.S)
        assert n, pattern
    f = tmp_path / f"{name}-edited.toml"
    f.write_text(text, encoding="utf-8")
    return f


def test_supplementary_limit_charges_only_what_is_paid(tmp_path, run_case):
    # Tier on A and supplementary, limit 1 000 a year. C1 (A 1 000): pool 900, the tier computes
    # 850 but only eligible − pool = 100 can be paid, so only 100 is charged against the limit.
    policy = edited(
        tmp_path,
        "shenzhen-comprehensive",
        (r'classes = \["supplementary"\]\nlimit', 'classes = ["A", "supplementary"]\nlimit'),
        (r"(\[limits\.supplementary_limit\].*?)by_enrolment_months = \[.*?\n\]", r"\1amount = 1000"),
    )
    case = (
        Case()
        .member()
        .provider()
        .claim("C1", [("A1", "1000.00")], admit="2024-02-01", discharge="2024-02-02")
        .claim("C2", [("P1", "1000.00")], admit="2024-03-01", discharge="2024-03-02")
    )
    out = run_case(case, policy)
    assert (out["C1"]["fund_pool"], out["C1"]["fund_supplementary"]) == (y(900), y(100))
    assert out["C2"]["fund_supplementary"] == y(850)  # 85 % of 1 000, within the 900 left


def test_overflow_excludes_deductible_bands(tmp_path, run_case):
    # City scheme with a deductible band [0, 1 000) instead of the per-admission table, cap 850:
    # X = 10 000 of which 1 000 is the member's deductible; the fund pays 85 % up to the cap, so
    # O = (10 000 − 1 000) − round(850 / 0.85) = 8 000, and the tier pays 80 % of it.
    policy = edited(
        tmp_path,
        "city-employee",
        (r"\[blocks\.inpatient\.deductible\]\n.*?by_level = \{[^}]*\}\n", ""),
        (r"\{ from = 0, pool = 0\.85 \},[^\n]*", "{ from = 0, deductible = true },\n  { from = 1000, pool = 0.85 },"),
        (r"amount = 40000", "amount = 850"),
    )
    case = Case().member().provider().claim("C1", [("A1", "10000.00")])
    r = run_case(case, policy)["C1"]
    assert (r["deductible"], r["fund_pool"], r["fund_supplementary"]) == (y(1000), y(850), y(6400))
