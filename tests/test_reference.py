"""The kernel against the pure-Python reference (``reference.py``), and ``adjudicate explain``.

Random members, providers, catalogues and claims are settled by the engine and
by the reference, under every shipped policy and under randomly generated
valid policies (written as TOML text and loaded like a user's file). The two
must agree to the fen on every claim and line column, reject the same claims,
and every settled row must keep the four invariants of contract §4.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from builders import Case
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicate import policy as P
from adjudicate.cli import main
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.outputs import claim_amounts, invariant_violations
from adjudicate.reference import AMOUNTS, allocate, enrolment_months, reference_run
from adjudicate.schema import CATEGORIES, CLASSES, PROVIDER_KINDS, SETTINGS

FUND_CLASSES = P.FUND_CLASSES
SHIPPED = sorted(P.shipped())
#: More examples for a long hunt: REFERENCE_EXAMPLES=2000 python -m pytest tests/test_reference.py
SCALE = max(1, int(os.environ.get("REFERENCE_EXAMPLES", "0")) // 80)
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS_HYP = settings(max_examples=30 * SCALE, deadline=None, suppress_health_check=SLOW_OK)


# ---------------------------------------------------------------------------
# Random data sets
# ---------------------------------------------------------------------------


def yuan(fen: int) -> str:
    return str(Decimal(fen).scaleb(-2))


BASE_ITEMS = ["A1", "B1", "S1", "P1", "X1"]  # builders.Case's default catalogue
MY_ITEMS = ["I0", "I1", "I2"]
ITEMS = BASE_ITEMS + MY_ITEMS + ["ZZ"]  # ZZ: in no catalogue
amounts_fen = st.one_of(st.integers(0, 200_000), st.integers(100_000, 5_000_000), st.integers(1_000_000, 40_000_000))
ratios_bp = st.one_of(st.none(), st.sampled_from([0, 500, 1500, 2000, 10000]), st.integers(0, 10000))


@st.composite
def datasets(draw) -> Case:
    case = Case()
    members = [f"M{i}" for i in range(draw(st.integers(1, 3)))]
    for m in members:
        # claims run from 2023 into 2025, so members have several benefit years (and gap years): the
        # account carries over with each year's credit, by age on 1 January and wage (contract §3)
        case.member(
            m,
            category=draw(st.sampled_from(CATEGORIES)),
            civil_servant=draw(st.booleans()),
            balance=yuan(draw(st.one_of(st.just(0), st.integers(0, 1_000_000)))),
            enrolled_since=draw(st.dates(dt.date(2019, 1, 1), dt.date(2025, 1, 31))).isoformat(),
            birth=draw(st.dates(dt.date(1940, 1, 1), dt.date(2024, 12, 31))).isoformat(),
            wage=draw(st.one_of(st.none(), st.just("0"), st.builds(yuan, st.integers(0, 50_000_000)))),
        )
    providers = [f"P{i}" for i in range(draw(st.integers(1, 3)))]
    for p in providers:
        case.provider(
            p,
            kind=draw(st.sampled_from(PROVIDER_KINDS)),
            level=draw(st.integers(0, 3)),
            designated=draw(st.booleans()),
            local=draw(st.booleans()),
        )
    for item in MY_ITEMS:
        two = draw(st.booleans())
        split = draw(st.dates(dt.date(2023, 11, 1), dt.date(2025, 1, 1)))
        gap = draw(st.sampled_from([0, 0, 10]))
        periods = (
            [
                ("2000-01-01", (split - dt.timedelta(days=1)).isoformat()),
                ((split + dt.timedelta(days=gap)).isoformat(), None),
            ]
            if two
            else [("2000-01-01", None)]
        )
        for start, end in periods:
            # ceilings exact to 0.0001 yuan (contract §1), some on a half fen
            price = draw(st.one_of(st.none(), st.integers(1, 20_000_000), st.integers(1, 4000).map(lambda k: k * 50)))
            bp = draw(ratios_bp)
            case.item(
                item,
                draw(st.sampled_from(CLASSES)),
                valid_from=start,
                valid_to=end,
                ratio=None if bp is None else str(Decimal(bp).scaleb(-4)),
                max_price=None if price is None else str(Decimal(price).scaleb(-4)),
            )
    ids = draw(st.lists(st.integers(0, 999), min_size=1, max_size=9, unique=True))
    for cid in ids:
        member = draw(st.sampled_from(members + (["MX"] if draw(st.integers(0, 20)) == 0 else [])))
        setting = draw(st.sampled_from(SETTINGS))
        admit = draw(st.dates(dt.date(2023, 10, 1), dt.date(2025, 2, 28)))
        discharge = admit + dt.timedelta(days=draw(st.integers(0, 20)))
        lines = []
        for _ in range(draw(st.integers(1, 4))):
            billed = [x for x in lines if Decimal(x[1]) > 0]
            if billed and draw(st.integers(0, 4)) == 0:  # a refund of (part of) an earlier line
                item, amount, qty = billed[draw(st.integers(0, len(billed) - 1))]
                refund = -draw(st.integers(0, int(Decimal(amount) * 100)))
                lines.append((item, yuan(refund), qty))
                continue
            qty = draw(st.sampled_from([1.0, 1.0, 2.0, 0.5, 3.0, 10.0, 1.25]))
            lines.append((draw(st.sampled_from(ITEMS)), yuan(draw(amounts_fen)), qty))
        case.claim(
            f"C{cid}",
            lines,
            member_id=member,
            provider_id=draw(st.sampled_from(providers)),
            setting=setting,
            admit=admit.isoformat(),
            discharge=discharge.isoformat(),
            referral=draw(st.sampled_from([None, None, "referred", "emergency"])),
        )
    return case


# ---------------------------------------------------------------------------
# Random valid policies, written as TOML text
# ---------------------------------------------------------------------------


def toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def policy_text(doc: dict) -> str:
    out = []
    for section, body in doc.items():
        out.append(f"[{section}]")
        out += [f"{k} = {toml(v)}" for k, v in body.items()]
        out.append("")
    return "\n".join(out)


def ratio(bp: int) -> Decimal:
    return Decimal(bp).scaleb(-4)


def money(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


limit_fen = st.one_of(st.integers(0, 1_000_000), st.integers(0, 30_000_000))
bp_st = st.one_of(st.sampled_from([0, 5000, 8000, 8500, 9000, 10000]), st.integers(0, 10000))
pool_st = st.one_of(st.sampled_from([9000, 8500, 7000, 5000]), st.integers(0, 10000))
factor_st = st.one_of(st.just(10000), st.sampled_from([8000, 5000, 3333, 0]), st.integers(1, 10000))


@st.composite
def rule_lists(draw) -> list[dict]:
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        r: dict = {}
        if draw(st.booleans()):
            r["designated"] = draw(st.booleans())
        if draw(st.booleans()):
            r["local"] = draw(st.booleans())
        if draw(st.integers(0, 2)) == 0:
            r["kind"] = draw(st.lists(st.sampled_from(PROVIDER_KINDS), min_size=1, max_size=2, unique=True))
        if draw(st.integers(0, 2)) == 0:
            r["level"] = draw(st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True))
        if draw(st.integers(0, 2)) == 0:
            r["referral"] = draw(
                st.lists(st.sampled_from(["referred", "emergency", "none"]), min_size=1, max_size=2, unique=True)
            )
        if draw(st.integers(0, 3)) == 0:
            r["benefit"] = False
        else:
            r["factor"] = ratio(draw(factor_st))
        rules.append(r)
    last = draw(st.sampled_from(["none", "benefit", "factor"]))
    if last == "benefit":
        rules.append({"benefit": False})
    elif last == "factor" or not rules:
        rules.append({"factor": ratio(draw(factor_st))})
    return rules


@st.composite
def band_lists(draw) -> list[dict]:
    n = draw(st.integers(1, 4))
    starts = [0]
    for _ in range(n - 1):
        starts.append(starts[-1] + draw(st.one_of(st.integers(1, 200_000), st.integers(1, 8_000_000))))
    shared = draw(st.one_of(st.none(), st.tuples(pool_st, pool_st)))
    bands = []
    for s in starts:
        b: dict = {"from": money(s)}
        if draw(st.integers(0, 5)) == 0:
            b["deductible"] = True
        else:
            pin, pret = shared if shared else (draw(pool_st), draw(pool_st))
            if draw(st.integers(0, 4)) == 0:
                pin = pret = 0
            supp = draw(st.integers(0, 10000 - max(pin, pret)))
            if draw(st.booleans()):
                supp = 0
            if pin or pret:
                b["pool"] = ratio(pin) if pin == pret else {"in_service": ratio(pin), "retired": ratio(pret)}
            if supp:
                b["supplementary"] = ratio(supp)
        if draw(st.booleans()):
            b["subsidised"] = True
        bands.append(b)
    return bands


def single_rate(bands: list[dict]) -> bool:
    rates = set()
    for b in bands:
        if b.get("deductible") or "pool" not in b:
            continue
        rates.add(str(b["pool"]))
    return len(rates) == 1


@st.composite
def policy_docs(draw) -> dict:
    """A random valid policy as a document (section name -> its keys)."""
    classes_st = st.lists(st.sampled_from(FUND_CLASSES), min_size=1, max_size=4, unique=True)
    doc: dict = {
        "policy": {"name": "random", "version": "0", "title": "random policy", "source": "hypothesis"},
        "parameters": {"w": money(draw(st.integers(100_000, 20_000_000)))},
        "lines": {
            "first_self_pay": {c: ratio(draw(bp_st)) for c in FUND_CLASSES},
            "supplementary_catalogue": draw(st.booleans()),
        },
        "benefit": {"rules": draw(rule_lists())},
    }
    limits = []
    for i in range(draw(st.integers(0, 3))):
        name = f"L{i}"
        limits.append(name)
        if draw(st.booleans()):
            amount = (
                money(draw(limit_fen))
                if draw(st.integers(0, 3))
                else {"times": ratio(draw(st.integers(0, 40000))), "of": "w"}
            )
            doc[f"limits.{name}"] = {"amount": amount}
        else:
            months = sorted(set([0] + draw(st.lists(st.integers(1, 60), max_size=3))))
            doc[f"limits.{name}"] = {
                "by_enrolment_months": [{"from": m, "amount": money(draw(limit_fen))} for m in months]
            }
    group = draw(st.lists(st.integers(0, 2), min_size=len(SETTINGS), max_size=len(SETTINGS)))
    for g in sorted(set(group)):
        bk = f"blocks.b{g}"
        blk: dict = {"settings": [s for s, x in zip(SETTINGS, group) if x == g]}
        if draw(st.booleans()):
            blk["benefit"] = draw(rule_lists())
        blk["admission"] = draw(st.booleans())
        doc[bk] = blk
        if draw(st.booleans()):
            n = draw(st.integers(1, 3))
            doc[f"{bk}.deductible"] = {
                "by_level": {str(r): [money(draw(st.integers(0, 100_000))) for _ in range(n)] for r in (1, 2, 3)}
            }
        scale: list[str] = []
        bands: list[dict] = []
        if draw(st.integers(0, 3)):
            scale = draw(classes_st)
            bands = draw(band_lists())
            sc: dict = {"classes": scale, "bands": bands}
            if draw(st.booleans()):
                sc["counter"] = draw(st.sampled_from(["k1", "k2"]))
            doc[f"{bk}.scale"] = sc
        rest = [c for c in FUND_CLASSES if c not in scale]
        direct = bool(rest) and draw(st.integers(0, 3)) == 0
        if direct:
            chosen = draw(st.lists(st.sampled_from(rest), min_size=1, unique=True))
            doc[f"{bk}.direct"] = {c: ratio(draw(bp_st)) for c in chosen}
        if limits and not direct and draw(st.booleans()):
            cap: dict = {"limit": draw(st.sampled_from(limits))}
            if single_rate(bands) and draw(st.booleans()):
                cap["overflow"] = "supplementary"
            doc[f"{bk}.cap"] = cap
        tier_classes: list[str] = []
        if draw(st.booleans()):
            tier: dict = {"rate": ratio(draw(bp_st))}
            if draw(st.booleans()):
                tier["classes"] = tier_classes = draw(classes_st)
            if limits and draw(st.booleans()):
                tier["limit"] = draw(st.sampled_from(limits))
            doc[f"{bk}.supplementary"] = tier
        if draw(st.booleans()):
            doc[f"{bk}.subsidy"] = {"civil_servant": {"in_service": ratio(draw(bp_st)), "retired": ratio(draw(bp_st))}}
        mode = draw(st.sampled_from(["none", "member_share", "before_fund"]))
        if mode == "member_share":
            doc[f"{bk}.account"] = {"pays": "member_share"}
        elif mode == "before_fund":
            # valid orders only (the loader refuses double payment): each part once, never a
            # class the fund also pays, and an item with scale classes holds only those
            paid = set(doc.get(f"{bk}.direct", {})) | set(tier_classes)
            free = draw(st.permutations([c for c in FUND_CLASSES if c not in paid] + ["first_self_pay"]))
            free = free[: draw(st.integers(1, len(free)))]
            items = []
            for part in free:
                same = items and (items[-1][0] in scale) == (part in scale)
                if same and draw(st.booleans()):
                    items[-1].append(part)
                else:
                    items.append([part])
            doc[f"{bk}.account"] = {"pays": "before_fund", "order": ["+".join(i) for i in items]}
    pays = any(k.endswith(".account") for k in doc)
    if pays or draw(st.booleans()):  # required when an account pays (contract §3, schemes.md §9)
        ages = sorted(set([0] + draw(st.lists(st.integers(1, 120), max_size=3))))
        doc["account.credit"] = {
            "retired_amount": money(draw(st.integers(0, 2_000_000))),
            "by_age": [{"from_age": a, "rate": ratio(draw(bp_st))} for a in ages],
        }
    return doc


def policies() -> st.SearchStrategy[str]:
    """The TOML text of a random valid policy."""
    return policy_docs().map(policy_text)


@st.composite
def dated_policies(draw) -> str:
    """A random valid policy whose numbers change on a random date (issue 7 §3): rates, amounts,
    factors, deductibles and the supplementary catalogue switch, each maybe dated."""
    doc = draw(policy_docs())
    change = draw(st.dates(dt.date(2023, 11, 1), dt.date(2025, 2, 1))).isoformat()

    def dated(old, new):
        return {"values": {"2000-01-01": {"value": old, "reference": "before"}, change: {"value": new}}}

    def maybe(table: dict, key, new_value) -> None:
        if key in table and draw(st.booleans()):
            table[key] = dated(table[key], new_value)

    fsp = doc["lines"]["first_self_pay"]
    for c in FUND_CLASSES:
        maybe(fsp, c, ratio(draw(bp_st)))
    maybe(doc["lines"], "supplementary_catalogue", draw(st.booleans()))
    rule_lists = [doc["benefit"]["rules"]] + [
        v["benefit"] for k, v in doc.items() if "benefit" in v and k.startswith("blocks.")
    ]
    for rules in rule_lists:
        for r in rules:
            maybe(r, "factor", ratio(draw(factor_st)))
    for k, v in doc.items():
        if k.startswith("limits."):
            maybe(v, "amount", money(draw(limit_fen)))
            for row in v.get("by_enrolment_months", []):
                maybe(row, "amount", money(draw(limit_fen)))
        elif k.endswith(".deductible"):
            rows = v["by_level"]
            n = len(rows["1"])
            for r in rows:
                maybe(rows, r, [money(draw(st.integers(0, 100_000))) for _ in range(n)])
        elif k.endswith(".supplementary"):
            maybe(v, "rate", ratio(draw(bp_st)))
        elif k.endswith(".subsidy"):
            maybe(v, "civil_servant", {"in_service": ratio(draw(bp_st)), "retired": ratio(draw(bp_st))})
        elif k.endswith(".direct"):
            for c in list(v):
                maybe(v, c, ratio(draw(bp_st)))
        elif k == "account.credit":
            maybe(v, "retired_amount", money(draw(st.integers(0, 2_000_000))))
    return policy_text(doc)


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------


def check_invariants(a: dict[str, np.ndarray]) -> None:
    """Contract §4, on every settled row (amounts in fen)."""
    broken = {k: n for k, n in invariant_violations(a).items() if n}
    assert not broken, broken


def compare(inputs, policy) -> None:
    result = adjudicate(inputs, policy, threads=1)
    ref = reference_run(inputs, policy)
    ids = result.enc.claim_id.to_pylist()
    assert ids == [c.claim_id for c in ref.claims]
    for i, c in enumerate(ref.claims):  # claim by claim, so a failure names the claim and its trace
        kernel = {k: int(v[i]) for k, v in claim_amounts(result).items()}
        trace = "\n".join(f"  {s.name} = {s.value} [{s.key}] {s.note}" for s in c.steps)
        assert kernel == c.amounts(), f"claim {c.claim_id}: kernel {kernel}\nreference {c.amounts()}\n{trace}"
        assert int(result.settle[i, 5]) == (c.ordinal or 0), c.claim_id
    np.testing.assert_array_equal(result.sums, ref.sums)
    np.testing.assert_array_equal(result.settle, ref.settle)
    for name, arr in (
        ("self_pay", result.line_self_pay),
        ("first_self_pay", result.line_fsp),
        ("eligible", result.line_eligible),
        ("fund_pool", result.line_pool),
        ("fund_supplementary", result.line_supp),
    ):
        np.testing.assert_array_equal(arr, ref.line_column(name), err_msg=f"line column {name}")
    assert sorted(map(str, result.enc.rejected)) == sorted(map(str, ref.rejected))
    check_invariants(claim_amounts(result))
    check_invariants(ref.amounts())


def load_case(case: Case, folder: Path):
    p = case.write(folder)
    return read_inputs([p["claims"]], [p["members"]], [p["providers"]], [p["catalogue"]])


@pytest.mark.parametrize("name", SHIPPED)
@SETTINGS_HYP
@given(case=datasets())
def test_kernel_matches_reference_shipped(name, case):
    with tempfile.TemporaryDirectory() as d:
        compare(load_case(case, Path(d)), P.load(name))


@settings(max_examples=80 * SCALE, deadline=None, suppress_health_check=SLOW_OK)
@given(case=datasets(), text=policies())
def test_kernel_matches_reference_random_policy(case, text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "random.toml"
        path.write_text(text, encoding="utf-8")
        policy = P.load(path)  # the generator writes valid policies only: an error here is a test bug
        compare(load_case(case, Path(d)), policy)


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=SLOW_OK)
@given(case=datasets(), text=dated_policies())
def test_kernel_matches_reference_dated_policy(case, text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "dated.toml"
        path.write_text(text, encoding="utf-8")
        compare(load_case(case, Path(d)), P.load(path))


# ---------------------------------------------------------------------------
# Worked examples (schemes.md §10) and small rules
# ---------------------------------------------------------------------------


def settle(tmp_path, case, policy):
    ref = reference_run(load_case(case, tmp_path), P.load(policy))
    return ref.by_id()


def test_worked_example_1(tmp_path):
    case = Case().member().provider("H3", level=3).claim("C1", [("A1", "10000")])
    c = settle(tmp_path, case, "prefecture-employee")["C1"]
    assert (c.deductible, c.fund_pool, c.member_policy_share) == (70000, 846300, 153700)


def test_worked_example_2(tmp_path):
    case = (
        Case()
        .member(category="retired")
        .provider("H2", level=2)
        .claim("C1", [("A1", "58600")], provider_id="H2", admit="2024-01-20", discharge="2024-02-01")
        .claim("C2", [("A1", "20000")], provider_id="H2", discharge="2024-03-01")
    )
    c = settle(tmp_path, case, "prefecture-employee")["C2"]
    assert c.ordinal == 2 and c.deductible == 34000 and c.fund_pool == 1846040
    assert [(s.lo, s.hi) for s in c.slices] == [(5800000, 6000000), (6000000, 7766000)]


def test_worked_example_3(tmp_path):
    case = (
        Case()
        .member()
        .provider("C", kind="community", level=1)
        .provider("H", level=2)
        .claim("C1", [("A1", "12000")], provider_id="C")
        .claim("C2", [("A1", "12000")], provider_id="H")
    )
    got = settle(tmp_path, case, "zhenjiang-resident")
    assert got["C1"].fund_pool == 695000 and got["C2"].fund_pool == 556000


def test_worked_example_4(tmp_path):
    case = Case().member().provider().item("B9", "B", max_price="9.50").claim("C1", [("B9", "200", 20)])
    line = settle(tmp_path, case, "city-employee")["C1"].lines[0]
    assert (line.self_pay, line.first_self_pay, line.eligible) == (1000, 2850, 16150)


def test_enrolment_months():
    d = dt.date
    assert enrolment_months(d(2020, 1, 15), d(2020, 7, 15)) == 6
    assert enrolment_months(d(2020, 1, 15), d(2020, 7, 14)) == 5
    assert enrolment_months(d(2021, 1, 1), d(2020, 12, 31)) == -1


def test_allocate_largest_remainder():
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]  # ties to the lower line
    assert allocate(100, [3, -1]) == [150, -50]
    assert allocate(7, [0, 0]) == [0, 0]
    assert sum(allocate(12345, [7, 11, -3, 5])) == 12345


# ---------------------------------------------------------------------------
# adjudicate explain
# ---------------------------------------------------------------------------


@pytest.fixture
def explain_case(tmp_path):
    case = (
        Case()
        .member("M1", civil_servant=True, balance="800")
        .member("M2")
        .provider("H3", level=3)
        .item("B9", "B", max_price="9.50")
        .claim("C1", [("A1", "10000"), ("B9", "200", 20), ("X1", "15"), ("ZZ", "5")])
        .claim("C2", [("A1", "70000")], admit="2024-04-20", discharge="2024-05-01")
        .claim("C3", [("A1", "900")], member_id="M2")
        .claim("R1", [("A1", "-10")], admit="2024-05-20", discharge="2024-06-01")
    )
    p = case.write(tmp_path)
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


def test_explain_text(explain_case):
    r = CliRunner().invoke(main, ["explain", "C2", *explain_case, "--policy", "prefecture-employee"])
    assert r.exit_code == 0, r.output
    for text in (
        "blocks.inpatient.scale.bands[1]",
        "blocks.inpatient.deductible.by_level.3[1]",
        "inpatient_above_deductible",
        "blocks.inpatient.subsidy.civil_servant.in_service",
        "account[member_share]",
        "the kernel agrees",
    ):
        assert text in r.output, text


def test_explain_json_matches_run(explain_case, tmp_path):
    r = CliRunner().invoke(main, ["explain", "C1", *explain_case, "--policy", "prefecture-employee", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["status"] == "settled" and rep["kernel_agrees"] is True
    assert rep["amounts"]["deductible"] == "700.00" and rep["amounts"]["self_pay"] == "30.00"
    assert [ln["class"] for ln in rep["lines"]] == ["A", "B", "excluded", "unknown"]
    assert rep["lines"][1]["ceiling"] == "190.00" and rep["lines"][1]["catalogue"]["max_unit_price"] == "9.50"
    assert rep["lines"][3]["catalogue"] is None
    assert rep["year_so_far"]["admission_ordinal"] == 1
    assert rep["slices"][0]["key"] == "blocks.inpatient.scale.bands[0]"
    assert any(s["key"] == "blocks.inpatient.deductible.by_level.3[0]" for s in rep["steps"])
    # the same numbers as a full run
    out = tmp_path / "out"
    assert (
        CliRunner()
        .invoke(main, ["run", *explain_case, "--policy", "prefecture-employee", "--out", str(out), "-q"])
        .exit_code
        == 0
    )
    import pyarrow.parquet as pq

    row = next(x for x in pq.read_table(out / "settlements.parquet").to_pylist() if x["claim_id"] == "C1")
    assert {k: f"{row[k]:.2f}" for k in AMOUNTS} == rep["amounts"]


def test_explain_year_so_far(explain_case):
    r = CliRunner().invoke(main, ["explain", "C2", *explain_case, "--policy", "city-employee", "--json"])
    rep = json.loads(r.output)
    y = rep["year_so_far"]
    assert y["admissions_before"] == 1 and y["admission_ordinal"] == 2
    cap = y["limits"][0]
    assert cap["key"] == "limits.fund_pool_annual.amount" and cap["amount"] == "40000.00"
    assert Decimal(cap["used"]) + Decimal(cap["room"]) == Decimal("40000.00") and Decimal(cap["used"]) > 0
    assert Decimal(rep["amounts"]["fund_supplementary"]) > 0  # the cap cuts, 大额 pays 80 %
    assert any(s["key"] == "blocks.inpatient.cap.overflow" for s in rep["steps"])


def test_explain_rejected_and_unknown(explain_case):
    r = CliRunner().invoke(main, ["explain", "R1", *explain_case, "--policy", "prefecture-employee"])
    assert r.exit_code == 0 and "rejected" in r.output and "negative_claim_total" in r.output
    r = CliRunner().invoke(main, ["explain", "R1", *explain_case, "--policy", "prefecture-employee", "--json"])
    assert json.loads(r.output)["rejections"][0]["reason"] == "negative_claim_total"
    r = CliRunner().invoke(main, ["explain", "NOPE", *explain_case, "--policy", "prefecture-employee"])
    assert r.exit_code == 2 and "'NOPE' is not in the claims table" in r.output


def test_explain_settles_only_the_member(explain_case, monkeypatch):
    from adjudicate import explain as X

    seen = []
    real = X.reference_run
    monkeypatch.setattr(
        X, "reference_run", lambda inputs, pol, *a: seen.append(inputs.claims.rows) or real(inputs, pol, *a)
    )
    r = CliRunner().invoke(main, ["explain", "C3", *explain_case, "--policy", "prefecture-employee", "--json"])
    assert r.exit_code == 0, r.output
    assert seen == [1]  # M2 has one line; M1's seven are left out


def test_repeated_class_in_a_policy_list(tmp_path):
    """classes = ["A", "A"] means class A (policy.class_mask once summed the bits: A twice read as B)."""
    text = P.shipped()["city-employee"].read_text(encoding="utf-8")
    text = text.replace('classes = ["A", "B", "special"]', 'classes = ["A", "A"]')
    path = tmp_path / "dup.toml"
    path.write_text(text, encoding="utf-8")
    case = Case().member().provider().claim("C1", [("A1", "5000"), ("B1", "3000")])
    compare(load_case(case, tmp_path), P.load(path))


def test_explain_text_of_a_long_claim_shows_the_first_and_last_lines(tmp_path):
    """A claim of thousands of lines: the text report stays readable (and fast), --json keeps every line."""
    from adjudicate.explain import HEAD_LINES, TAIL_LINES

    n = 3000
    case = Case().member("M1").provider("H3", level=3).claim("BIG", [("A1", "1.00")] * n)
    p = case.write(tmp_path)
    args = [
        "--claims",
        str(p["claims"]),
        "--members",
        str(p["members"]),
        "--providers",
        str(p["providers"]),
        "--catalogue",
        str(p["catalogue"]),
        "--policy",
        "prefecture-employee",
    ]
    r = CliRunner().invoke(main, ["explain", "BIG", *args])
    assert r.exit_code == 0, r.output
    left_out = n - HEAD_LINES - TAIL_LINES
    assert r.output.count(f"{left_out:,} more lines") == 2 and "--json lists every line" in r.output
    rows = [ln for ln in r.output.splitlines() if ln.startswith("│") and "A1" in ln]
    assert len(rows) == HEAD_LINES + TAIL_LINES  # the catalogue table's rows: first and last lines only
    assert f"│ {n:>4} │" in r.output and "the kernel agrees" in r.output
    rep = json.loads(CliRunner().invoke(main, ["explain", "BIG", *args, "--json"]).output)
    assert len(rep["lines"]) == n
