"""Case files (issue 7 §4): the shipped worked examples pass; differences, the summary and the
exit status of ``adjudicate test``; malformed case files name file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from adjudicate.cases import CaseError, case_files, load_case, run_case
from adjudicate.cli import main

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "adjudicate" / "cases"
FILES = case_files([SHIPPED])


def invoke(*args):
    return CliRunner().invoke(main, ["test", *map(str, args)])


def test_every_scheme_and_the_worked_examples_are_shipped():
    folders = {f.parent.name for f in FILES}
    assert folders >= {
        "prefecture-employee",
        "shenzhen-comprehensive",
        "city-employee",
        "zhenjiang-resident",
        "migrant-workers",
    }
    names = " ".join(f.name for f in FILES)
    for n in ("worked-example-1", "worked-example-2", "worked-example-3", "worked-example-4"):
        assert n in names
    assert all(f.name != "policy.toml" for f in FILES)  # a policy beside its cases is not a case


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_case_passes(path):
    outcome = run_case(load_case(path))
    assert outcome.passed, [d.__dict__ for d in outcome.differences]


def test_the_command_runs_a_folder(tmp_path):
    r = invoke(SHIPPED / "migrant-workers", SHIPPED / "city-employee" / "example-11.toml")
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == "2 case(s): 2 passed, 0 failed"


CASE = """
[case]
name = "a small case"
policy = "prefecture-employee"

[[claims]]
claim_id = "C1"
lines = [{ item_code = "A1", amount = "10000.00" }, { item_code = "B1", amount = 100 }]
expect = { deductible = "700.00", fund_pool = 8540.35, admission_ordinal = 1 }
"""


def test_a_failing_case_prints_each_difference(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(CASE, encoding="utf-8")
    assert invoke(good).exit_code == 0  # numbers or text, exact: 9 385 × 91 % = 8 540.35
    bad = tmp_path / "bad.toml"
    bad.write_text(
        CASE.replace("8540.35", '"8540.00"')
        .replace("admission_ordinal = 1", "admission_ordinal = 2")
        .replace("amount = 100 }", 'amount = 100, expect = { first_self_pay = "15.01" } }'),
        encoding="utf-8",
    )
    r = invoke(tmp_path)
    assert r.exit_code == 1, r.output
    assert f"FAIL {bad}: a small case" in r.output and f"ok   {good}" in r.output
    assert "claim C1: fund_pool expected 8540.00, got 8540.35 (+0.35)" in r.output
    assert "claim C1: admission_ordinal expected 2, got 1" in r.output
    assert "claim C1 line 2: first_self_pay expected 15.01, got 15.00 (-0.01)" in r.output
    assert r.output.strip().splitlines()[-1] == "2 case(s): 1 passed, 1 failed (3 difference(s))"
    r = invoke(tmp_path, "-q")
    assert "ok   " not in r.output and "FAIL" in r.output
    import json

    r = invoke(bad, "--json")
    assert r.exit_code == 1
    [rep] = json.loads(r.output)
    assert (
        rep["passed"] is False
        and {
            "claim_id": "C1",
            "line_no": None,
            "column": "fund_pool",
            "expected": "8540.00",
            "got": "8540.35",
            "delta": "+0.35",
        }
        in rep["differences"]
    )


def test_overrides_date_and_defaults(tmp_path):
    text = CASE.replace(
        'policy = "prefecture-employee"',
        'policy = "prefecture-employee"\ndate = 2025-02-01\n'
        'set = ["blocks.inpatient.deductible.by_level.3=[800, 450, 350]"]',
    )
    text = text.replace(
        'expect = { deductible = "700.00", fund_pool = 8540.35, admission_ordinal = 1 }',
        'expect = { deductible = "800.00", benefit_year = 2025 }',
    )
    f = tmp_path / "c.toml"
    f.write_text(text, encoding="utf-8")
    r = invoke(f)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "change, key, message",
    [
        (("amount = 100 }", 'amount = 100, colour = "red" }'), "claims[0].lines[1].colour", "unknown key 'colour'"),
        (("fund_pool = 8540.35", 'fund_pool = "lots"'), "claims[0].expect.fund_pool", "expected an amount"),
        (("fund_pool = 8540.35", "fund_paid = 1"), "claims[0].expect.fund_paid", "unknown key 'fund_paid'"),
        (('policy = "prefecture-employee"', 'policy = "nowhere"'), "case.policy", "no shipped policy"),
        (
            ('policy = "prefecture-employee"', 'policy = "prefecture-employee"\nset = ["limits.nope.amount=1"]'),
            "case.set",
            "no key 'limits'",
        ),
        (('claim_id = "C1"', 'claim_id = "C1"\nsetting = "inpatent"'), "claims[0].setting", "inpatent"),
        (('claim_id = "C1"', 'claim_id = "C1"\nadmit_date = "2024-02-30"'), "claims[0].admit_date", "2024-02-30"),
        (
            ("[[claims]]", '[[members]]\nmember_id = "M1"\ncategory = "retiree"\n\n[[claims]]'),
            "members[0].category",
            "retiree",
        ),
        (("amount = 100 }", 'amount = 100, quantity = "two" }'), "claims[0].lines[1].quantity", "expected"),
        # qa: a rejection put inside expect is named for what it is, not just "unknown key"
        (
            ("fund_pool = 8540.35", 'rejected = "negative_claim_total"'),
            "claims[0].expect.rejected",
            "on the claim itself",
        ),
    ],
)
def test_malformed_case_files_name_file_key_and_line(tmp_path, change, key, message):
    f = tmp_path / "m.toml"
    f.write_text(CASE.replace(*change), encoding="utf-8")
    with pytest.raises(CaseError) as e:
        run_case(load_case(f))
    assert e.value.key == key and message in str(e.value), str(e.value)
    assert e.value.line is not None and e.value.line > 1
    r = invoke(f)
    assert r.exit_code == 2 and str(f) in r.output and key in r.output and "Traceback" not in r.output


def test_not_toml_and_missing_paths(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text("[case\n", encoding="utf-8")
    r = invoke(f)
    assert r.exit_code == 2 and "not valid TOML" in r.output and "line 1" in r.output
    assert invoke(tmp_path / "nope.toml").exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke(empty).exit_code == 2


def test_a_malformed_file_is_reported_and_the_others_still_run(tmp_path):
    import json

    good = tmp_path / "a-good.toml"
    good.write_text(CASE, encoding="utf-8")
    bad = tmp_path / "b-bad.toml"
    bad.write_text(CASE.replace("amount = 100 }", 'amount = 100, quantity = "two" }'), encoding="utf-8")
    worse = tmp_path / "c-worse.toml"
    worse.write_text('[case]\nname = "unterminated\n', encoding="utf-8")  # a case file, but not TOML
    r = invoke(tmp_path)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"ok   {good}" in r.output  # the good file ran, although files around it are malformed
    assert str(bad) in r.output and "claims[0].lines[1].quantity" in r.output
    assert str(worse) in r.output and "not valid TOML" in r.output
    assert "1 case(s): 1 passed, 0 failed; 2 malformed case file(s) not run" in r.output
    r = CliRunner().invoke(main, ["test", "--json", str(tmp_path)])
    assert r.exit_code == 2
    rows = json.loads(r.stdout)
    assert [row.get("passed") for row in rows] == [True, None, None]
    assert [row["file"] for row in rows] == [str(good), str(bad), str(worse)]
    assert rows[1]["key"] == "claims[0].lines[1].quantity" and rows[2]["line"] == 2


def test_the_guide_example_is_a_passing_case(tmp_path):
    import re

    guide = (SHIPPED.parent / "policies" / "README.md").read_text(encoding="utf-8")
    text = re.search(r"```toml\n(.*?)```", guide[guide.index("## Case files") :], re.S).group(1)
    f = tmp_path / "guide.toml"
    f.write_text(text, encoding="utf-8")
    assert run_case(load_case(f)).passed
