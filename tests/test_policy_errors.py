"""Malformed policy files: a PolicyError naming the file, the key and its line; exit 2 from the CLI;
and, whatever the text, nothing but success or PolicyError."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from builders import Case
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicate import policy as P
from adjudicate.cli import main
from adjudicate.engine import adjudicate, read_inputs

SHIPPED = {name: path.read_text(encoding="utf-8") for name, path in P.shipped().items()}
PREFECTURE = SHIPPED["prefecture-employee"]
SHENZHEN = SHIPPED["shenzhen-comprehensive"]


def load_text(tmp_path: Path, text: str | bytes) -> P.Policy:
    p = tmp_path / "policy.toml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return P.load(p)


def error(tmp_path: Path, text: str | bytes) -> P.PolicyError:
    with pytest.raises(P.PolicyError) as e:
        load_text(tmp_path, text)
    assert str(tmp_path / "policy.toml") in str(e.value)
    assert "\n" not in str(e.value)
    return e.value


def line_of(text: str, needle: str, start: int = 0) -> int:
    """1-based line of the first line containing ``needle`` (after line ``start``)."""
    for i, line in enumerate(text.splitlines(), start=1):
        if i > start and needle in line:
            return i
    raise AssertionError(needle)


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_shipped_policies_load():
    for name in SHIPPED:
        p = P.load(name)
        assert p.name == name
        P.compile_policy(p)


# ---- TOML syntax ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, needle",
    [
        ("admission = true", "admission = tru", "admission = tru"),
        ("supplementary_catalogue = false", "supplementary_catalogue = ", "supplementary_catalogue = "),
        ('name = "prefecture-employee"', 'name = "prefecture-employee', 'name = "prefecture-employee'),
        ("[blocks.ambulatory]", "[blocks.ambulatory", "[blocks.ambulatory"),
        ("admission = true", "admission = true\nadmission = false", "admission = false"),  # duplicate key
    ],
)
def test_toml_syntax_error_names_its_line(tmp_path, old, new, needle):
    text = edit(PREFECTURE, old, new)
    e = error(tmp_path, text)
    assert e.line == line_of(text, needle), str(e)
    assert f"line {e.line}" in str(e) and "not valid TOML" in str(e)


def test_not_utf8(tmp_path):
    e = error(tmp_path, PREFECTURE.encode("utf-8").replace("州城镇".encode(), "州城镇".encode("gb18030")))
    assert "not UTF-8" in str(e)


def test_binary_and_empty(tmp_path):
    assert "not valid TOML" in str(error(tmp_path, b"\x00\x01\x02\xff"[:3]))
    e = error(tmp_path, "")
    assert e.key == "policy" and "missing required key 'policy'" in str(e)


def test_unknown_policy_name():
    with pytest.raises(P.PolicyError, match="no shipped policy called 'nowhere'"):
        P.load("nowhere")


# ---- unknown keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, key, needle",
    [
        ("admission = true", "admission = true\nadmision = true", "blocks.inpatient.admision", "admision = true"),
        ('version = "2026.1"', 'version = "2026.1"\nauthor = "me"', "policy.author", 'author = "me"'),
        ("{ from = 200000 }", "{ from = 200000, pol = 0.5 }", "blocks.inpatient.scale.bands[4].pol", "pol = 0.5"),
        (
            "{ designated = true, factor = 1.0 }",
            "{ designated = true, factr = 1.0 }",
            "benefit.rules[0].factr",
            "factr",
        ),
        (
            "[blocks.ambulatory]",
            "[blocks.ambulatory.extras]\nx = 1\n\n[blocks.ambulatory]",
            "blocks.ambulatory.extras",
            "[blocks.ambulatory.extras]",
        ),
        ("[lines]", "[line]\nx = 1\n[lines]", "line", "[line]"),
        ("first_self_pay = { A = 0.00,", "first_self_pay = { C = 0.1, A = 0.00,", "lines.first_self_pay.C", "C = 0.1"),
    ],
)
def test_unknown_key_names_key_and_line(tmp_path, old, new, key, needle):
    text = edit(PREFECTURE, old, new)
    e = error(tmp_path, text)
    assert e.key == key, str(e)
    assert e.line == line_of(text, needle), str(e)
    assert "unknown key" in str(e) and f"key '{key}'" in str(e) and f"line {e.line}" in str(e)


# ---- missing keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, key, needle",
    [
        ('name = "prefecture-employee"\n', "", "policy.name", "[policy]"),
        ("supplementary_catalogue = false", "", "lines.supplementary_catalogue", "[lines]"),
        (", special = 0.20,", ",", "lines.first_self_pay.special", "first_self_pay = {"),
        ('settings = ["inpatient"]\n', "", "blocks.inpatient.settings", "[blocks.inpatient]"),
        (
            "{ designated = true, factor = 1.0 }",
            "{ designated = true }",
            "benefit.rules[0].factor",
            "{ designated = true }",
        ),
        ("retired = 0.93 }", "retired_ = 0.93 }", None, None),  # an unknown key comes first
        ("  { from = 60000,", "  { ", "blocks.inpatient.scale.bands[1].from", "{   pool"),
    ],
)
def test_missing_key_names_key_and_the_line_of_its_table(tmp_path, old, new, key, needle):
    text = edit(PREFECTURE, old, new)
    e = error(tmp_path, text)
    if key is None:
        assert "unknown key" in str(e)
        return
    assert e.key == key, str(e)
    assert f"missing required key '{key.rsplit('.', 1)[-1].split(']')[-1]}'" in str(e)
    assert e.line == line_of(text, needle), str(e)


# ---- bad values ----------------------------------------------------------------------------

BAD_VALUES = [
    # (old, new, key, words)
    ("B = 0.15", "B = 1.5", "lines.first_self_pay.B", "within 0..1"),
    ("B = 0.15", "B = -0.15", "lines.first_self_pay.B", "within 0..1"),
    ("B = 0.15", "B = 0.12345", "lines.first_self_pay.B", "whole number of basis points"),
    ("B = 0.15", 'B = "15%"', "lines.first_self_pay.B", "expected a number"),
    ("B = 0.15", "B = nan", "lines.first_self_pay.B", "finite"),
    ("B = 0.15", "B = inf", "lines.first_self_pay.B", "finite"),
    ("B = 0.15", "B = true", "lines.first_self_pay.B", "expected a number"),
    ("3 = [700, 450, 350]", "3 = [700, -450, 350]", "blocks.inpatient.deductible.by_level.3", "negative"),
    ("3 = [700, 450, 350]", "3 = [700, 450.005, 350]", "blocks.inpatient.deductible.by_level.3", "whole number of fen"),
    ("3 = [700, 450, 350]", "3 = [700, 1e30, 350]", "blocks.inpatient.deductible.by_level.3", "too large"),
    ("3 = [700, 450, 350]", "3 = [700, inf, 350]", "blocks.inpatient.deductible.by_level.3", "finite"),
    ("3 = [700, 450, 350]", '3 = [700, "x", 350]', "blocks.inpatient.deductible.by_level.3", "expected a number"),
    (
        "3 = [700, 450, 350]",
        "3 = [700, 1979-05-27, 350]",
        "blocks.inpatient.deductible.by_level.3",
        "expected a number",
    ),
    ("3 = [700, 450, 350]", "3 = []", "blocks.inpatient.deductible.by_level.3", "expected an amount"),
    ("3 = [700, 450, 350]", "3 = [700, 450]", "blocks.inpatient.deductible.by_level", "same number of ordinals"),
    ('settings = ["inpatient"]', 'settings = ["hospital"]', "blocks.inpatient.settings", "unknown setting 'hospital'"),
    ('settings = ["inpatient"]', "settings = [1]", "blocks.inpatient.settings", "expected a string or a list"),
    ('settings = ["inpatient"]', "settings = { a = 1 }", "blocks.inpatient.settings", "expected a string or a list"),
    (
        'settings = ["inpatient"]',
        'settings = ["outpatient", "inpatient"]',
        "blocks.ambulatory.settings",
        "already settled by block 'inpatient'",
    ),
    ("admission = true", 'admission = "yes"', "blocks.inpatient.admission", "expected true or false"),
    (
        "supplementary_catalogue = false",
        "supplementary_catalogue = 0",
        "lines.supplementary_catalogue",
        "expected true or false",
    ),
    ('classes = ["A", "B", "special"]', 'classes = ["A", "C"]', "blocks.inpatient.scale.classes", "unknown class 'C'"),
    (
        'classes = ["A", "B", "special"]',
        "classes = [1]",
        "blocks.inpatient.scale.classes",
        "expected a string or a list",
    ),
    ('counter = "inpatient_above_deductible"', "counter = 3", "blocks.inpatient.scale.counter", "annual counter"),
    ("{ from = 60000, ", "{ from = 0.00, ", "blocks.inpatient.scale.bands[1].from", "start at 0 and ascend"),
    ("{ from = 60000, ", "{ from = [1], ", "blocks.inpatient.scale.bands[1].from", "expected a number"),
    (
        "pool = { in_service = 0.91, retired = 0.93 }",
        "pool = { in_service = 0.91, retired = 1.93 }",
        "blocks.inpatient.scale.bands[0].pool.retired",
        "within 0..1",
    ),
    (
        "{ from = 100000, supplementary = 0.80, subsidised = true }",
        "{ from = 100000, supplementary = 0.80, subsidised = 1 }",
        "blocks.inpatient.scale.bands[3].subsidised",
        "expected true or false",
    ),
    (
        "civil_servant = { in_service = 0.50, retired = 0.55 }",
        'civil_servant = "half"',
        "blocks.inpatient.subsidy.civil_servant",
        "expected a number",
    ),
    ('pays = "member_share"       #', "pays = 3       #", "blocks.inpatient.account.pays", "expected a string"),
    (
        'pays = "member_share"       #',
        'pays = ["member_share"]       #',
        "blocks.inpatient.account.pays",
        "expected a string",
    ),
    (
        'pays = "member_share"       #',
        'pays = "everything"       #',
        "blocks.inpatient.account.pays",
        "expected one of none, member_share, before_fund",
    ),
    (
        "{ designated = true, factor = 1.0 }",
        "{ designated = true, factor = 1.0, kind = 3 }",
        "benefit.rules[0].kind",
        "expected a string or a list of provider kinds",
    ),
    (
        "{ designated = true, factor = 1.0 }",
        '{ designated = true, factor = 1.0, kind = "clinic" }',
        "benefit.rules[0].kind",
        "unknown provider kind 'clinic'",
    ),
    (
        "{ designated = true, factor = 1.0 }",
        '{ designated = true, factor = 1.0, level = "3" }',
        "benefit.rules[0].level",
        "provider level",
    ),
    (
        "{ designated = true, factor = 1.0 }",
        "{ designated = true, factor = 1.0, level = [true] }",
        "benefit.rules[0].level",
        "provider level",
    ),
    (
        "{ designated = true, factor = 1.0 }",
        '{ designated = "yes", factor = 1.0 }',
        "benefit.rules[0].designated",
        "expected true or false",
    ),
    (
        "{ designated = true, factor = 1.0 }",
        "{ designated = true, factor = 1.2 }",
        "benefit.rules[0].factor",
        "within 0..1",
    ),
    ("{ benefit = false }", '{ benefit = "no" }', "benefit.rules[2].benefit", "expected true or false"),
    ("{ benefit = false }", "{ benefit = false, factor = 0.5 }", "benefit.rules[2]", "not both"),
    (
        '{ referral = ["referred", "emergency"], factor = 1.0 }',
        "{ referral = { a = 1 }, factor = 1.0 }",
        "benefit.rules[1].referral",
        "expected a string or a list of referrals",
    ),
    (
        '{ referral = ["referred", "emergency"], factor = 1.0 }',
        '{ referral = ["self"], factor = 1.0 }',
        "benefit.rules[1].referral",
        "unknown referral 'self'",
    ),
    ("rules = [", "rules = 5\nrulez = [", "benefit.rulez", "unknown key"),
    ("notes = [", 'notes = "just one"\nnote = [', "policy.note", "unknown key"),
    ('name = "prefecture-employee"', "name = 7", "policy.name", "expected a string"),
]


@pytest.mark.parametrize("old, new, key, words", BAD_VALUES, ids=[f"{b[2]}:{b[1][:30]}" for b in BAD_VALUES])
def test_bad_value_names_key_and_line(tmp_path, old, new, key, words):
    text = edit(PREFECTURE, old, new)
    e = error(tmp_path, text)
    assert e.key == key, str(e)
    assert words in str(e), str(e)
    first_new = new.splitlines()[0].strip() or new
    assert e.line is not None, str(e)
    if "\n" not in new and key != "blocks.ambulatory.settings":
        assert e.line == line_of(text, first_new.split("#")[0].strip()), str(e)


SHENZHEN_BAD = [
    ('limit = "basic_cap"', 'limit = "cap"', "blocks.inpatient.cap.limit", "unknown limit 'cap'"),
    ('limit = "basic_cap"', 'limit = ["basic_cap"]', "blocks.inpatient.cap.limit", "expected a string"),
    ('limit = "supplementary_limit"', "limit = 5", "blocks.inpatient.supplementary.limit", "expected a string"),
    ('overflow = "supplementary"', 'overflow = ["x"]', "blocks.inpatient.cap.overflow", "expected 'member'"),
    (
        '{ from = 6,  amount = { times = 1,   of = "avg_annual_wage" } }',
        '{ from = 6,  amount = { times = 1,   of = "wage" } }',
        "limits.basic_cap.by_enrolment_months[1].amount.of",
        "unknown parameter 'wage'",
    ),
    (
        '{ from = 6,  amount = { times = 1,   of = "avg_annual_wage" } }',
        '{ from = 6,  amount = { times = -1,   of = "avg_annual_wage" } }',
        "limits.basic_cap.by_enrolment_months[1].amount",
        "negative",
    ),
    (
        '{ from = 6,  amount = { times = 1,   of = "avg_annual_wage" } }',
        '{ from = 6,  amount = { times = 1e300,   of = "avg_annual_wage" } }',
        "limits.basic_cap.by_enrolment_months[1].amount",
        "too large",
    ),
    (
        '{ from = 6,  amount = { times = 1,   of = "avg_annual_wage" } }',
        '{ from = 6,  amount = { times = 1,   of = ["avg_annual_wage"] } }',
        "limits.basic_cap.by_enrolment_months[1].amount.of",
        "expected a string",
    ),
    (
        '{ from = 12, amount = { times = 2,   of = "avg_annual_wage" } }',
        '{ from = 6, amount = { times = 2,   of = "avg_annual_wage" } }',
        "limits.basic_cap.by_enrolment_months[2].from",
        "ascending",
    ),
    (
        '{ from = 12, amount = { times = 2,   of = "avg_annual_wage" } }',
        '{ from = true, amount = { times = 2,   of = "avg_annual_wage" } }',
        "limits.basic_cap.by_enrolment_months[2].from",
        "ascending",
    ),
    ("avg_annual_wage = 120000", "avg_annual_wage = nan", "parameters.avg_annual_wage", "finite"),
    ("avg_annual_wage = 120000", "avg_annual_wage = [1]", "parameters.avg_annual_wage", "expected a number"),
    (
        'order = ["A+B", "supplementary", "first_self_pay"]',
        'order = ["A+B", 3]',
        "blocks.ambulatory.account.order",
        "expected a list",
    ),
    (
        'order = ["A+B", "supplementary", "first_self_pay"]',
        'order = ["A+X"]',
        "blocks.ambulatory.account.order",
        "unknown item 'X'",
    ),
    ("special = 1.0 ", "B = 1.0 ", "blocks.ambulatory.direct", "both paid directly and on the scale"),
]


@pytest.mark.parametrize("old, new, key, words", SHENZHEN_BAD, ids=[f"{b[2]}:{b[1][:30]}" for b in SHENZHEN_BAD])
def test_bad_value_in_shenzhen(tmp_path, old, new, key, words):
    text = edit(SHENZHEN, old, new)
    e = error(tmp_path, text)
    assert e.key == key, str(e)
    assert words in str(e), str(e)
    assert e.line == line_of(text, new.split("#")[0].strip()) or key.endswith(".direct"), str(e)


# ---- through the command line -------------------------------------------------------------


def test_cli_bad_policy_exit_2_nothing_written(tmp_path):
    paths = Case().member().provider().claim("C1", [("A1", "10")]).write(tmp_path / "in")
    text = edit(PREFECTURE, "B = 0.15", "B = 15")
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--claims",
            str(paths["claims"]),
            "--members",
            str(paths["members"]),
            "--providers",
            str(paths["providers"]),
            "--catalogue",
            str(paths["catalogue"]),
            "--policy",
            str(tmp_path / "bad.toml"),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error: policy ") and "Traceback" not in message
    assert f"line {line_of(text, 'B = 15')}" in message and "key 'lines.first_self_pay.B'" in message
    assert not out.exists()


def test_cli_unknown_policy_name(tmp_path):
    paths = Case().member().provider().claim("C1", [("A1", "10")]).write(tmp_path / "in")
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--claims",
            str(paths["claims"]),
            "--members",
            str(paths["members"]),
            "--providers",
            str(paths["providers"]),
            "--catalogue",
            str(paths["catalogue"]),
            "--policy",
            "nowhere",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
    )
    assert result.exit_code == 2 and "no shipped policy called 'nowhere'" in result.output
    assert not (tmp_path / "out").exists()


# ---- fuzzing: random edits of the shipped files --------------------------------------------

EXAMPLES = int(os.environ.get("ADJUDICATE_FUZZ", "60"))
VALUES = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "0.5",
    "1.5",
    "0.12345",
    "1e300",
    "-0.0",
    "nan",
    "inf",
    '"x"',
    '""',
    '"inpatient"',
    '"member_share"',
    '"before_fund"',
    '"supplementary"',
    '"basic_cap"',
    "true",
    "false",
    "[]",
    "[1, 2]",
    '["A", "B"]',
    '["A+B"]',
    '["x"]',
    "{}",
    "{ a = 1 }",
    '{ times = 2, of = "avg_annual_wage" }',
    "1979-05-27",
    "100000",
    "[700]",
    "{ in_service = 0.5, retired = 2 }",
]
KEYS = [
    "from",
    "pool",
    "amount",
    "factor",
    "settings",
    "classes",
    "counter",
    "limit",
    "rate",
    "pays",
    "order",
    "by_level",
    "bands",
    "rules",
    "name",
    "x",
    "deductible",
    "subsidised",
    "overflow",
    "level",
    "kind",
]
ASSIGN = re.compile(r"(?<![\w-])([A-Za-z_0-9]+)\s*=\s*(\"[^\"\n]*\"|\[[^\[\]\n]*\]|\{[^{}\n]*\}|[^,\s{}\[\]#\n]+)")


@st.composite
def mutated_policy(draw):
    text = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["value", "value", "value", "key", "drop", "dup", "cut", "char", "swap"]))
        lines = text.splitlines(keepends=True)
        if op in ("value", "key"):
            spots = list(ASSIGN.finditer(text))
            if not spots:
                continue
            m = draw(st.sampled_from(spots))
            if op == "value":
                text = text[: m.start(2)] + draw(st.sampled_from(VALUES)) + text[m.end(2) :]
            else:
                text = text[: m.start(1)] + draw(st.sampled_from(KEYS)) + text[m.end(1) :]
        elif op == "drop" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:i] + lines[i + 1 :])
        elif op == "dup" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: i + 1] + lines[i:])
        elif op == "swap" and len(lines) > 1:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif op == "cut":
            text = text[: draw(st.integers(0, len(text)))]
        elif op == "char":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(list("[]{}=,\"'#.\n 0x"))) + text[i:]
    return text


def _tiny_inputs(folder: Path):
    c = (
        Case()
        .member()
        .member("M2", category="retired", civil_servant=True, balance="500", enrolled_since="2023-11-01")
        .provider()
        .provider("C1", kind="community", level=1)
        .provider("N", designated=False, local=False)
        .provider("P0", kind="pharmacy", level=0)
    )
    c.claim("I1", [("A1", "30000"), ("B1", "20000"), ("S1", "5000"), ("P1", "300"), ("X1", "100")])
    c.claim("I2", [("A1", "150000"), ("B1", "90000")], member_id="M2", admit="2024-05-01", discharge="2024-06-01")
    c.claim("I3", [("A1", "800")], provider_id="C1", admit="2024-07-01", discharge="2024-07-03")
    c.claim("I4", [("A1", "800")], provider_id="N", referral="emergency", admit="2024-08-01", discharge="2024-08-02")
    c.claim("O1", [("A1", "200"), ("B1", "100"), ("S1", "50"), ("P1", "20")], setting="outpatient", discharge=None)
    c.claim("O2", [("A1", "20000")], member_id="M2", setting="special_outpatient", discharge=None, admit="2024-02-01")
    c.claim("R1", [("B1", "90"), ("P1", "30")], provider_id="P0", setting="pharmacy", discharge=None)
    paths = c.write(folder)
    return read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])


with tempfile.TemporaryDirectory() as _d:
    TINY = _tiny_inputs(Path(_d))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_policy())
def test_fuzz_policy_text(text):
    """Any edit of a shipped file loads, or fails with PolicyError; a policy that loads also compiles
    and settles a small varied case without any other exception."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.toml"
        path.write_text(text, encoding="utf-8")
        try:
            policy = P.load(path)
        except P.PolicyError as e:
            assert str(path) in str(e)
            return
        P.compile_policy(policy)
        adjudicate(TINY, policy, threads=1)


def test_account_order_that_would_pay_twice_is_refused(tmp_path):
    """An account paying before the fund must not pay what it or a fund already pays."""
    import re

    from adjudicate import policy as P

    text = P.shipped()["shenzhen-comprehensive"].read_text(encoding="utf-8")
    for order, words in (
        ('["A+B", "A+B"]', "paid twice"),
        ('["A+supplementary"]', "mixes scale classes"),
        ('["special"]', "also paid by the fund"),
    ):
        f = tmp_path / "p.toml"
        f.write_text(re.sub(r"order = \[[^\]]*\]", f"order = {order}", text), encoding="utf-8")
        with pytest.raises(P.PolicyError, match=words):
            P.load(f)


# ---------------------------------------------------------------------------
# [account.credit] (schemes.md §9; required since the account carries over, contract §3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("retired_amount = 400", "retired_amount = -1", "account.credit.retired_amount"),
        ("retired_amount = 400", "retired_amount = 400.001", "account.credit.retired_amount"),
        ("{ from_age = 0,  rate = 0.005 }", "{ from_age = 1,  rate = 0.005 }", "account.credit.by_age[0].from_age"),
        ("{ from_age = 46, rate = 0.025 }", "{ from_age = 36, rate = 0.025 }", "account.credit.by_age[2].from_age"),
        ("{ from_age = 36, rate = 0.015 }", "{ from_age = 36, rate = 1.5 }", "account.credit.by_age[1].rate"),
        ("{ from_age = 36, rate = 0.015 }", "{ from_age = 36, rate = 0.015, cap = 1 }", "account.credit.by_age[1]"),
        ("retired_amount = 400", "retired = 400", "account.credit"),
    ],
)
def test_account_credit_errors_name_the_key_and_line(tmp_path, old, new, key):
    text = edit(PREFECTURE, old, new)
    e = error(tmp_path, text)
    assert f"key '{key}" in str(e), str(e)
    assert f"line {line_of(text, new)}" in str(e), str(e)


def test_account_credit_is_optional_without_an_account(tmp_path):
    z = SHIPPED["zhenjiang-resident"]
    assert load_text(tmp_path, z).account_credit is None
    text = PREFECTURE[PREFECTURE.index("[account.credit]") :]
    assert load_text(tmp_path, z + "\n" + text).account_credit.retired_fen == 40000
