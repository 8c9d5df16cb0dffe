"""The engine against an independent implementation of all four schemes (qa_oracle.py), to the fen, on
data made apart from the project's generator (qa_data.py): every settlement and
line column, several seeds and row orders, in memory and in partitions, plain and
dated policies, across two or three benefit years with carried-over accounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from qa_data import make
from qa_oracle import adjudicate, city, pct, prefecture, shenzhen, zhenjiang

from adjudicate.cli import main as cli

MONEY = (
    "total",
    "self_pay",
    "first_self_pay",
    "eligible",
    "deductible",
    "fund_pool",
    "fund_supplementary",
    "member_policy_share",
    "subsidy",
    "account_paid",
    "cash_paid",
)
LINE_MONEY = ("self_pay", "first_self_pay", "eligible", "fund_pool", "fund_supplementary")


def _fen(v) -> int:
    return int(Decimal(v) * 100)


def run_engine(tmp: Path, data, policy: str, *extra: str, fmt: str = "parquet"):
    paths = data.write(tmp / "in", fmt)
    out = tmp / "out"
    args = [
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
        policy,
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    s = {r["claim_id"]: r for r in pq.read_table(out / "settlements.parquet").to_pylist()}
    l = {(r["claim_id"], r["line_no"]): r for r in pq.read_table(out / "lines.parquet").to_pylist()}
    rej = pq.read_table(out / "rejected.parquet").to_pylist()
    return s, l, rej


def compare(tmp: Path, data, policy: str, params, *extra: str, fmt: str = "parquet") -> list[str]:
    s, l, rej = run_engine(tmp, data, policy, *extra, fmt=fmt)
    os_, ol, orej = adjudicate(data, params)
    diffs = []
    rejected = {}
    for r in rej:
        rejected.setdefault(r["claim_id"], set()).add(r["reason"])
    if set(rejected) != set(orej):
        diffs.append(
            f"rejected: engine only {sorted(set(rejected) - set(orej))}, "
            f"oracle only {sorted(set(orej) - set(rejected))}"
        )
    for cid, why in orej.items():
        if cid in rejected and why not in rejected[cid]:
            diffs.append(f"{cid}: rejected for {rejected[cid]}, oracle says {why}")
    if set(s) != set(os_):
        diffs.append(
            f"settled: engine only {sorted(set(s) - set(os_))[:5]}, oracle only {sorted(set(os_) - set(s))[:5]}"
        )
    for cid, o in os_.items():
        e = s.get(cid)
        if e is None:
            continue
        for k in ("member_id", "provider_id", "setting", "settle_date", "benefit_year", "admission_ordinal"):
            if e[k] != o[k]:
                diffs.append(f"{cid} {k}: engine {e[k]} oracle {o[k]}")
        for k in MONEY:
            if _fen(e[k]) != o[k]:
                diffs.append(f"{cid} {k}: engine {_fen(e[k])} oracle {o[k]} ({o['setting']} {o['settle_date']})")
    if set(l) != set(ol):
        diffs.append(f"lines: engine only {sorted(set(l) - set(ol))[:5]}, oracle only {sorted(set(ol) - set(l))[:5]}")
    for key, o in ol.items():
        e = l.get(key)
        if e is None:
            continue
        if (e["item_code"], e["class"]) != (o["item_code"], o["class"]):
            diffs.append(f"{key} class: engine {e['class']} oracle {o['class']}")
        for k in LINE_MONEY:
            if _fen(e[k]) != o[k]:
                diffs.append(f"{key} {k}: engine {_fen(e[k])} oracle {o[k]}")
    return diffs


CASES = [  # (seed, members, order, partitions, input format)
    (1, 40, "shuffled", "1", "parquet"),
    (2, 60, "settle_date", "3", "parquet"),
    (3, 30, "shuffled", "3", "csv"),
    (4, 30, "settle_date", "1", "float"),
]


@pytest.mark.parametrize("seed,members,order,partitions,fmt", CASES)
@pytest.mark.parametrize(
    "policy,params",
    [
        ("prefecture-employee", lambda d: prefecture()),
        ("city-employee", lambda d: city()),
        ("zhenjiang-resident", lambda d: zhenjiang()),
        ("shenzhen-comprehensive", lambda d: shenzhen()),
    ],
)
def test_engine_agrees_with_an_independent_implementation(
    tmp_path, seed, members, order, partitions, fmt, policy, params
):
    data = make(seed, members, order=order)
    diffs = compare(tmp_path, data, policy, params, "--partitions", partitions, fmt=fmt)
    assert not diffs, "\n".join(diffs[:40])


SHIPPED = Path(__file__).resolve().parents[1] / "src" / "adjudicate" / "policies"
CHANGE = dt.date(2024, 7, 1)


def _dated(tmp: Path, name: str, edits: list[tuple[str, str]]) -> str:
    text = (SHIPPED / f"{name}.toml").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp / f"{name}-dated.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("rate,cap", [("0.90", 50000), ("0.80", 20000)])  # a raised and a lowered cap
def test_dated_city_employee_mid_year_rate_and_cap_change(tmp_path, rate, cap):
    """A band rate and the annual cap change on 2024-07-01, the retired credit on 2025-01-01: the
    value in force on settle_date applies, the room under the raised cap is the new cap less what
    was paid this year, and the credit for 2024 follows the values of 1 January 2025."""
    policy = _dated(
        tmp_path,
        "city-employee",
        [
            (
                "{ from = 0, pool = 0.85 },",
                f"{{ from = 0, pool = {{ values = {{ 2000-01-01 = 0.85, 2024-07-01 = {rate} }} }} }},",
            ),
            ("amount = 40000", f"amount = {{ values = {{ 2000-01-01 = 40000, 2024-07-01 = {cap} }} }}"),
            ("retired_amount = 400", "retired_amount = { values = { 2000-01-01 = 400, 2025-01-01 = 520 } }"),
        ],
    )

    def params(d):
        after = d >= CHANGE
        return city(
            rate=pct(rate) if after else pct("0.85"),
            cap=cap if after else 40000,
            retired_amount=520 if d >= dt.date(2025, 1, 1) else 400,
        )

    data = make(11, 60, big=0.6)
    diffs = compare(tmp_path, data, policy, params, "--partitions", "3")
    assert not diffs, "\n".join(diffs[:40])


def test_dated_prefecture_employee_band_deductible_and_supplementary(tmp_path):
    policy = _dated(
        tmp_path,
        "prefecture-employee",
        [
            (
                "{ from = 60000,  pool = { in_service = 0.92, retired = 0.94 }, subsidised = true },",
                "{ from = 60000,  pool = { values = { 2000-01-01 = { in_service = 0.92, retired = 0.94 }, "
                "2024-07-01 = { in_service = 0.95, retired = 0.97 } } }, subsidised = true },",
            ),
            (
                "{ from = 100000, supplementary = 0.80, subsidised = true },",
                "{ from = 100000, supplementary = { values = { 2000-01-01 = 0.80, 2024-07-01 = 0.85 } }, "
                "subsidised = true },",
            ),
        ],
    )

    def params(d):
        p = prefecture()
        if d >= CHANGE:
            bands = list(p["bands"])
            bands[1] = (60000, {"in_service": pct("0.95"), "retired": pct("0.97")}, None, True)
            bands[3] = (100000, None, pct("0.85"), True)
            p["bands"] = bands
        return p

    data = make(12, 60, big=0.6, order="settle_date")
    diffs = compare(tmp_path, data, policy, params)
    assert not diffs, "\n".join(diffs[:40])


def test_shenzhen_with_a_lower_wage_crosses_the_threshold_caps_and_limits(tmp_path):
    """With W = 20 000 the outpatient threshold (10 % of W), the basic caps (0.5–4 × W) and the
    supplementary limits are reached often: the engine and the oracle agree on every one."""
    policy = _dated(tmp_path, "shenzhen-comprehensive", [("avg_annual_wage = 120000", "avg_annual_wage = 20000")])
    data = make(5, 60, big=0.6)
    settled, _, _ = adjudicate(data, lambda d: shenzhen(W=20000))
    assert sum(1 for v in settled.values() if v["setting"] != "inpatient" and v["deductible"] > 0) > 5
    assert sum(1 for v in settled.values() if v["fund_supplementary"] > 0) > 5
    diffs = compare(tmp_path, data, policy, lambda d: shenzhen(W=20000), "--partitions", "2")
    assert not diffs, "\n".join(diffs[:40])
