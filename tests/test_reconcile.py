"""adjudicate reconcile: provider quota settlement, fund statement, account ledger (schemes.md §7–§9)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import MEMBER_TYPES, PROVIDER_TYPES, table
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.reconcile.provider import corridor
from adjudicate.reconcile.rules import load_rules

D = Decimal
DATA = Path(__file__).resolve().parents[1] / "data"
MONEY = pa.decimal128(18, 2)
SETTLEMENT_TYPES = {
    "claim_id": pa.string(),
    "member_id": pa.string(),
    "provider_id": pa.string(),
    "setting": pa.string(),
    "settle_date": pa.date32(),
    "benefit_year": pa.int16(),
    "admission_ordinal": pa.int32(),
    "fund_pool": MONEY,
    "fund_supplementary": MONEY,
    "subsidy": MONEY,
    "account_paid": MONEY,
}


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


class Books:
    """Hand-made settlements, providers and members, written as run output would be."""

    def __init__(self) -> None:
        self.claims: list[dict] = []
        self.providers: list[dict] = []
        self.members: list[dict] = []

    def provider(self, pid: str, quota: str | None = "5000", kind: str = "hospital", level: int = 2) -> Books:
        self.providers.append(
            dict(
                provider_id=pid,
                kind=kind,
                level=level,
                designated=True,
                local=True,
                quota_per_admission=D(quota) if quota is not None else None,
            )
        )
        return self

    def member(
        self,
        mid: str,
        birth: str = "1970-06-01",
        category: str = "in_service",
        balance: str = "0",
        wage: str | None = "60000",
    ) -> Books:
        self.members.append(
            dict(
                member_id=mid,
                birth_date=dt.date.fromisoformat(birth),
                category=category,
                civil_servant=False,
                enrolled_since=dt.date(2000, 1, 1),
                account_balance=D(balance),
                prior_year_wage=D(wage) if wage is not None else None,
            )
        )
        return self

    def claim(
        self,
        date: str,
        member: str = "M1",
        provider: str = "H1",
        ordinal: int | None = None,
        pool: str = "0",
        supp: str = "0",
        subsidy: str = "0",
        account: str = "0",
        setting: str | None = None,
    ) -> Books:
        d = dt.date.fromisoformat(date)
        self.claims.append(
            dict(
                claim_id=f"C{len(self.claims):06d}",
                member_id=member,
                provider_id=provider,
                setting=setting or ("inpatient" if ordinal else "outpatient"),
                settle_date=d,
                benefit_year=d.year,
                admission_ordinal=ordinal,
                fund_pool=D(pool),
                fund_supplementary=D(supp),
                subsidy=D(subsidy),
                account_paid=D(account),
            )
        )
        return self

    def admissions(self, provider: str, n: int, total_pool: str, year: int = 2024) -> Books:
        """``n`` admissions with benefit whose fund_pool adds up to ``total_pool`` exactly."""
        each = (D(total_pool) / n).quantize(D("0.01"), rounding="ROUND_DOWN")
        for k in range(n):
            pool = each if k else D(total_pool) - each * (n - 1)
            self.claim(f"{year}-{k % 12 + 1:02d}-15", provider=provider, ordinal=1, pool=str(pool))
        return self

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if not self.members:
            self.member("M1")
        pq.write_table(table(self.claims, SETTLEMENT_TYPES), folder / "settlements.parquet")
        pq.write_table(table(self.providers, PROVIDER_TYPES), folder / "providers.parquet")
        pq.write_table(table(self.members, MEMBER_TYPES), folder / "members.parquet")
        return folder


def reconcile(folder: Path, *extra) -> tuple[object, Path]:
    out = folder / "out"
    # hand-made settlements have no run summary.json naming the policy: give it (its [account.credit])
    r = invoke(
        "reconcile",
        "--settlements",
        folder,
        "--providers",
        folder / "providers.parquet",
        "--members",
        folder / "members.parquet",
        "--out",
        out,
        "-q",
        *(() if "--policy" in extra else ("--policy", "prefecture-employee")),
        *extra,
    )
    return r, out


# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): providers.parquet → provider_settlement.parquet, year → benefit_year.
def rows(out: Path, name: str, key: str | None = None):
    t = pq.read_table(out / f"{name}.parquet").to_pylist()
    return {r[key]: r for r in t} if key else t


def csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# provider quota settlement (schemes.md §7, domain.md Example 12)
# ---------------------------------------------------------------------------

RULES = load_rules()
Q = 600_000_00  # fen: quota 5 000 × 120 admissions


@pytest.mark.parametrize(
    "A, due, band, over",
    [
        ("510000", "510000", "below", "0"),  # Example 12: 85 %, pays A (reward 0)
        ("539999.99", "539999.99", "below", "0"),
        ("540000", "600000", "corridor", "0"),  # exactly 90 %: the quota
        ("630000", "600000", "corridor", "0"),  # Example 12: 105 %
        ("660000", "600000", "corridor", "0"),  # exactly 110 %: still the quota (continuous, reading 1b)
        ("660000.01", "600000.01", "shared", "0"),  # 600 000.005 rounds once, half away from zero
        ("700000", "620000", "shared", "0"),  # Example 12: 116.7 %
        ("720000", "630000", "shared", "0"),  # exactly 120 %: the maximum 1.05 Q
        ("720000.01", "630000", "above", "0.01"),
        ("780000", "630000", "above", "60000"),  # Example 12: 130 %; the hospital bears 150 000 in all
    ],
)
def test_corridor_example_12_and_boundaries(A, due, band, over):
    c = corridor([int(D(A) * 100)], [Q], RULES)
    assert D(int(c.due[0])) / 100 == D(due)
    assert ["below", "corridor", "shared", "above"][c.band[0]] == band
    assert D(int(c.over_ceiling[0])) / 100 == D(over)


def test_reward_below_the_corridor():
    c = corridor([510_000_00], [Q], RULES.with_reward(5000))
    assert int(c.due[0]) == 525_000_00  # 510 000 + 50 % × (540 000 − 510 000)


def test_example_12_through_the_command(tmp_path):
    b = Books()
    for pid, a in (("H1", "510000"), ("H2", "630000"), ("H3", "700000"), ("H4", "780000")):
        b.provider(pid).admissions(pid, 120, a)
    b.provider("C1", quota=None, kind="community", level=1).claim("2024-03-01", provider="C1", ordinal=1, pool="900")
    r, out = reconcile(b.write(tmp_path))
    assert r.exit_code == 0, r.output
    p = rows(out, "provider_settlement", "provider_id")
    assert set(p) == {"H1", "H2", "H3", "H4"}  # no quota, no quota settlement
    expect = {  # due, balance after 540 000 of advances (Example 12's last column), borne by the hospital
        "H1": ("510000", "-30000", "0"),
        "H2": ("600000", "60000", "30000"),
        "H3": ("620000", "80000", "80000"),
        "H4": ("630000", "90000", "150000"),
    }
    for pid, (due, balance, borne) in expect.items():
        row = p[pid]
        assert row["admissions"] == 120 and row["quota_total"] == D("600000")
        assert row["advances"] == D("540000")  # 120 × round(90 % × 5 000)
        assert (row["due"], row["balance"], row["borne_by_provider"]) == (D(due), D(balance), D(borne))
    assert p["H4"]["over_ceiling"] == D("60000") and p["H4"]["fund_pool_to_quota"] == D("1.3")
    s = json.loads((out / "summary.json").read_text())
    assert s["providers"]["admissions_without_quota"] == 1 and s["identities_hold"]
    r, out = reconcile(tmp_path, "--reward-rate", "0.5")
    assert rows(out, "provider_settlement", "provider_id")["H1"]["due"] == D("525000")


def test_advances_default_rounding_and_table(tmp_path):
    b = Books().provider("H1", quota="3333.33").provider("H2", quota="8000").provider("H3", quota="1000")
    b.admissions("H1", 3, "10000").admissions("H2", 2, "16000")
    r, out = reconcile(b.write(tmp_path))
    assert r.exit_code == 0, r.output
    p = rows(out, "provider_settlement", "provider_id")
    assert p["H1"]["advances"] == D("9000.00")  # 3 × round(2 999.997) = 3 × 3 000.00
    assert p["H1"]["due"] == D("9999.99")  # A = 10 000 is 100.0001 % of Q = 9 999.99: pays Q
    assert "H3" not in p  # a quota but no admissions and no advances
    adv = csv(
        tmp_path / "advances.csv",
        """
provider_id,year,month,amount
H1,2024,1,3000
H1,,2,2500.50
H2,2024,1,7200
H3,2024,5,900
""",
    )
    r, out = reconcile(tmp_path, "--advances", adv)
    assert r.exit_code == 0, r.output
    p = rows(out, "provider_settlement", "provider_id")
    assert p["H1"]["advances"] == D("5500.50") and p["H1"]["balance"] == D("4499.49")
    assert p["H2"]["advances"] == D("7200") and p["H2"]["balance"] == D("8800")
    assert p["H3"]["admissions"] == 0 and p["H3"]["due"] == 0 and p["H3"]["balance"] == D("-900")
    # an advance to a provider without a quota is an input error naming the row
    b.provider("C1", quota=None, kind="community", level=1).write(tmp_path)
    csv(adv, "provider_id,year,month,amount\nH1,2024,1,3000\nC1,2024,1,10\n")
    r, out = reconcile(tmp_path, "--advances", adv)
    assert r.exit_code == 2 and "advances.csv" in r.output and "column 'provider_id'" in r.output
    assert "row 1 (line 3)" in r.output
    assert rows(out, "provider_settlement", "provider_id")["H1"]["advances"] == D("5500.50")  # the last output stands


# ---------------------------------------------------------------------------
# personal-account ledger (schemes.md §9)
# ---------------------------------------------------------------------------


def test_ledger_credits_by_age_on_1_january(tmp_path):
    b = Books().provider("H1")
    # ages on 2025-01-01, for the 2024 ledger
    b.member("A35", birth="1989-01-02", wage="100000")  # 35: turns 36 on 2 January
    b.member("A36", birth="1989-01-01", wage="100000")  # 36 on the day itself
    b.member("A45", birth="1979-01-02", wage="100000")
    b.member("A46", birth="1979-01-01", wage="100000")
    b.member("R1", birth="1950-05-05", category="retired", wage="90000", balance="1000")
    b.member("NW", birth="2015-03-03", wage=None, balance="50")
    b.member("HALF", birth="2000-07-07", wage="101.00")  # 0.505 → 0.51, half away from zero
    b.claim("2024-03-01", member="R1", account="250.25").claim("2024-09-01", member="R1", account="100")
    b.claim("2025-01-10", member="A35", account="5")  # another year: not in the 2024 ledger
    r, out = reconcile(b.write(tmp_path), "--year", "2024")
    assert r.exit_code == 0, r.output
    led = rows(out, "ledger", "member_id")
    assert len(led) == 7 and {x["benefit_year"] for x in led.values()} == {2024}
    expect = {
        "A35": (35, "0.005", "500"),
        "A36": (36, "0.015", "1500"),
        "A45": (45, "0.015", "1500"),
        "A46": (46, "0.025", "2500"),
        "HALF": (24, "0.005", "0.51"),
    }
    for mid, (age, rate, credit) in expect.items():
        x = led[mid]
        assert (x["age_next_january_1"], x["credit_rate"], x["credit"]) == (age, D(rate), D(credit)), mid
        assert x["credit_basis"] == "wage_rate"
    r1 = led["R1"]
    assert (r1["credit_basis"], r1["credit_rate"], r1["credit"]) == ("retired_flat", None, D("400"))
    assert (r1["opening"], r1["spent"], r1["closing"], r1["next_opening"]) == (
        D("1000"),
        D("350.25"),
        D("649.75"),
        D("1049.75"),
    )
    assert (led["NW"]["credit_basis"], led["NW"]["credit"], led["NW"]["next_opening"]) == ("no_wage", 0, D("50"))
    assert led["A35"]["spent"] == 0


def test_rules_file_overrides_and_errors(tmp_path):
    from adjudicate import policy as P
    from adjudicate.reconcile.rules import DEFAULT_RULES

    b = Books().provider("H1")
    b.member("A40", birth="1984-06-01", wage="100000").member("R", category="retired")
    b.write(tmp_path)
    # The credit rule moved from the rules file to the policy's [account.credit] (contract §3: settlement
    # carries the account over with it, so it has one home); the same overrides, given in the policy.
    ptext = P.shipped()["prefecture-employee"].read_text(encoding="utf-8")
    own_policy = tmp_path / "policy.toml"
    own_policy.write_text(
        ptext.replace("retired_amount = 400", "retired_amount = 520").replace(
            "{ from_age = 36, rate = 0.015 }", "{ from_age = 36, rate = 0.02 }"
        ),
        encoding="utf-8",
    )
    r, out = reconcile(tmp_path, "--policy", own_policy, "--year", "2024")
    assert r.exit_code == 0, r.output
    led = rows(out, "ledger", "member_id")
    assert led["A40"]["credit"] == D("2000") and led["R"]["credit"] == D("520")
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    own = tmp_path / "rules.toml"
    own.write_text(text.replace("excess_share = 0.50", "excess_share = 0.5x"), encoding="utf-8")
    r, _ = reconcile(tmp_path, "--rules", own, "--year", "2024")
    assert r.exit_code == 2 and "not valid TOML" in r.output
    own.write_text(text.replace("ceiling = 1.20", "ceiling = 1.05"), encoding="utf-8")
    r, _ = reconcile(tmp_path, "--rules", own, "--year", "2024")
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if t.startswith("ceiling ="))
    assert r.exit_code == 2 and "key 'corridor.ceiling'" in r.output and f"line {line}," in r.output
    own_policy.write_text(ptext.replace("retired_amount = 400", "retired = 400"), encoding="utf-8")
    r, _ = reconcile(tmp_path, "--policy", own_policy, "--year", "2024")
    assert r.exit_code == 2 and "account.credit.retired" in r.output
    # an old rules file with its [account_credit] table: told where the table went
    own.write_text(text + "\n[account_credit]\nretired_amount = 400\n", encoding="utf-8")
    r, _ = reconcile(tmp_path, "--rules", own, "--year", "2024")
    assert r.exit_code == 2 and "[account.credit]" in r.output and "--policy" in r.output


# ---------------------------------------------------------------------------
# fund statement (schemes.md §8)
# ---------------------------------------------------------------------------


def test_fund_statement_identities_on_generated_data(tmp_path):
    g, res = tmp_path / "g", tmp_path / "res"
    assert invoke("generate", "--members", 400, "--year", 2024, "--seed", 5, "--out", g, "-q").exit_code == 0
    r = invoke(
        "run",
        "--claims",
        g / "claims.parquet",
        "--members",
        g / "members.parquet",
        "--providers",
        g / "providers.parquet",
        "--catalogue",
        g / "catalogue.parquet",
        "--policy",
        "prefecture-employee",
        "--out",
        res,
        "-q",
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "rec"
    r = invoke(
        "reconcile",
        "--settlements",
        res,
        "--providers",
        g / "providers.parquet",
        "--members",
        g / "members.parquet",
        "--income",
        DATA / "reconcile" / "income.csv",
        "--opening",
        DATA / "reconcile" / "opening.csv",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    assert "fund statement 2024" in r.output and "identities hold" in r.output
    st = pq.read_table(res / "settlements.parquet").to_pylist()
    funds = rows(out, "funds")
    monthly = rows(out, "funds_monthly")
    column = {
        "pool": "fund_pool",
        "account": "account_paid",
        "supplementary": "fund_supplementary",
        "subsidy": "subsidy",
    }
    items = ("contributions", "interest", "prepayments", "fiscal_subsidy", "other")
    for f in funds:
        assert f["income"] == sum(f[i] for i in items)
        assert f["year_balance"] == f["income"] - f["expenditure"]
        assert f["closing"] == f["opening"] + f["income"] - f["expenditure"]
        assert f["expenditure"] == sum(c[column[f["fund"]]] for c in st if c["benefit_year"] == f["benefit_year"])
        ms = [m for m in monthly if (m["fund"], m["benefit_year"]) == (f["fund"], f["benefit_year"])]
        assert len(ms) == f["through_month"]
        assert sum(m["expenditure"] for m in ms) == f["expenditure"] and sum(m["income"] for m in ms) == f["income"]
        assert ms[-1]["closing"] == f["closing"]
    by = {(f["fund"], f["benefit_year"]): f for f in funds}
    members = pq.read_table(g / "members.parquet")
    assert by["account", 2024]["opening_source"] == "members.account_balance"
    assert by["account", 2024]["opening"] == sum(members.column("account_balance").to_pylist())
    assert by["pool", 2024]["opening"] == D("650000") and by["pool", 2024]["income"] == D("566362.10")
    if ("pool", 2025) in by:  # discharges in January 2025 open a second year, chained
        assert by["pool", 2025]["opening"] == by["pool", 2024]["closing"]
        assert by["pool", 2025]["opening_source"] == "previous year"
    led = rows(out, "ledger")
    for y in {f["benefit_year"] for f in funds}:
        assert sum(x["spent"] for x in led if x["benefit_year"] == y) == by["account", y]["expenditure"]
    s = json.loads((out / "summary.json").read_text())
    assert s["identities_hold"]
    assert s["providers"]["balance"] == str(D(s["providers"]["due"]) - D(s["providers"]["advances"]))


def monthly_claims(b: Books, year: int, months: int, amounts: dict[str, str], provider: str = "H1") -> None:
    """Spread each fund's expenditure exactly over the first ``months`` months of ``year``."""
    split = {}
    for k, total in amounts.items():
        each = (D(total) / months).quantize(D("0.01"), rounding="ROUND_DOWN")
        split[k] = [each] * (months - 1) + [D(total) - each * (months - 1)]
    for m in range(months):
        b.claim(f"{year}-{m + 1:02d}-10", provider=provider, **{k: str(v[m]) for k, v in split.items()})


WAN = 10_000  # 万元


def test_months_of_reserve_against_the_seeds(tmp_path):
    # domain.md §4.2, 苍南县 2015: employee fund in 'pool', resident cooperative fund in 'supplementary'
    b = Books().provider("H1")
    monthly_claims(b, 2015, 12, {"pool": str(D("31461.5") * WAN), "supp": str(D("84124.77") * WAN)})
    b.write(tmp_path)
    income = csv(
        tmp_path / "income.csv",
        f"""
fund,year,month,item,amount
pool,2015,12,contributions,{D("40853.31") * WAN}
supplementary,2015,12,contributions,{D("73852.78") * WAN}
""",
    )
    opening = csv(
        tmp_path / "opening.csv",
        f"""
fund,year,amount
pool,2015,{D("64405.44") * WAN - D("9391.81") * WAN}
supplementary,2015,{D("19471.24") * WAN}
""",
    )
    r, out = reconcile(tmp_path, "--income", income, "--opening", opening)
    assert r.exit_code == 0, r.output
    f = rows(out, "funds", "fund")
    assert f["pool"]["year_balance"] == D("9391.81") * WAN and f["pool"]["closing"] == D("64405.44") * WAN
    assert f["pool"]["months_of_reserve"] == D("24.57")  # "24.6 months"
    assert f["supplementary"]["year_balance"] == D("-10271.99") * WAN
    assert f["supplementary"]["closing"] == D("9199.25") * WAN
    assert f["supplementary"]["months_of_reserve"] == D("1.31")
    assert f["account"]["months_of_reserve"] is None  # no expenditure: no ratio


def test_county_half_year_statement_and_the_seed_defect(tmp_path):
    # domain.md §4.5: basic medical Jan–May 2006, pooled and account funds (万元)
    b = Books().provider("H1")
    monthly_claims(b, 2006, 5, {"pool": str(239 * WAN), "account": str(290 * WAN), "supp": str(1211 * WAN)})
    b.write(tmp_path)
    income = csv(
        tmp_path / "income.csv",
        f"""
fund,year,month,item,amount
pool,2006,5,contributions,{356 * WAN}
account,2006,5,contributions,{195 * WAN}
supplementary,2006,5,contributions,{1621 * WAN}
""",
    )
    opening = csv(
        tmp_path / "opening.csv",
        f"""
fund,year,amount
pool,2006,{1996 * WAN}
account,2006,{282 * WAN}
supplementary,2006,{(2200 - 410) * WAN}
""",
    )
    r, out = reconcile(tmp_path, "--income", income, "--opening", opening)
    assert r.exit_code == 0, r.output
    f = rows(out, "funds", "fund")
    assert (f["pool"]["year_balance"], f["account"]["year_balance"]) == (117 * WAN, -95 * WAN)
    assert f["pool"]["closing"] + f["account"]["closing"] == 2300 * WAN  # 2 113 + 187
    assert f["pool"]["through_month"] == 5 and f["pool"]["reserve_window_months"] == 5
    assert f["pool"]["months_of_reserve"] == D("44.21")  # 2 113 ÷ (239 ÷ 5) = 44.205…; the seed says 44.2
    # domain.md §8.2: the enterprise pension fund's "10.43个月" does not follow from its own table
    assert f["supplementary"]["closing"] == 2200 * WAN
    assert f["supplementary"]["months_of_reserve"] == D("9.08") != D("10.43")
    r, out = reconcile(tmp_path, "--income", income, "--opening", opening, "--reserve-window", 2)
    assert rows(out, "funds", "fund")["pool"]["reserve_window_months"] == 2


def test_wenzhou_income_and_balance_foot(tmp_path):
    # domain.md §4.1: cumulative pooled fund 2000-10 → 2008-06, taken as one statement from a zero opening
    b = Books().provider("H1")
    monthly_claims(b, 2008, 6, {"pool": str(131775 * WAN)})
    b.write(tmp_path)
    income = csv(
        tmp_path / "income.csv",
        f"""
fund,year,month,item,amount
pool,2008,6,contributions,{113615 * WAN}
pool,2008,6,interest,{8603 * WAN}
pool,2008,6,prepayments,{164174 * WAN}
pool,2008,6,fiscal_subsidy,{1104 * WAN}
""",
    )
    r, out = reconcile(tmp_path, "--income", income)
    assert r.exit_code == 0, r.output
    pool = rows(out, "funds", "fund")["pool"]
    assert pool["income"] == 287496 * WAN and pool["closing"] == 155721 * WAN
    assert pool["opening_source"] == "none (0)"


# ---------------------------------------------------------------------------
# bad input and help
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, column, row",
    [
        ("pool,2024,1,contributions,10\npool,2024,2,interest,1\npool,2024,3,interests,2", "item", 2),
        ("pool,2024,1,contributions,10\npool,2024,13,interest,1", "month", 1),
        ("pool,2024,1,contributions,10\nfund_pool,2024,2,interest,1", "fund", 1),
        ("pool,2024,1,contributions,ten", "amount", 0),
    ],
)
def test_bad_income_file_is_exit_2_naming_file_column_row(tmp_path, body, column, row):
    Books().provider("H1").admissions("H1", 2, "9000").write(tmp_path)
    bad = csv(tmp_path / "income.csv", "fund,year,month,item,amount\n" + body)
    r, out = reconcile(tmp_path, "--income", bad)
    assert r.exit_code == 2, r.output
    assert str(bad) in r.output and f"column '{column}'" in r.output and f"row {row} (line {row + 2})" in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_other_bad_inputs_are_exit_2(tmp_path):
    b = Books().provider("H1").admissions("H1", 2, "9000")
    b.write(tmp_path)
    opening = csv(tmp_path / "opening.csv", "fund,year,amount\npool,2024,1\naccount,2024,2\npool,2024,3\n")
    r, _ = reconcile(tmp_path, "--opening", opening)
    assert r.exit_code == 2 and "opening.csv" in r.output and "row 2" in r.output and "fund/year" in r.output
    missing = csv(tmp_path / "opening2.csv", "fund,amount\npool,1\n")
    r, _ = reconcile(tmp_path, "--opening", missing)
    assert r.exit_code == 2 and "missing required column(s) 'year'" in r.output
    b.claim("2024-05-05", member="NOBODY", account="1").write(tmp_path)
    r, _ = reconcile(tmp_path)
    assert r.exit_code == 2 and "'NOBODY'" in r.output and "column 'member_id'" in r.output
    r, _ = reconcile(tmp_path, "--reward-rate", "lots")
    assert r.exit_code == 2 and "--reward-rate" in r.output


def test_help_has_an_example():
    r = invoke("reconcile", "--help")
    assert r.exit_code == 0 and "Example" in r.output and "adjudicate reconcile --settlements" in r.output


# ---------------------------------------------------------------------------
# nothing counted twice (issue 8 §8)
# ---------------------------------------------------------------------------


def test_the_same_settlements_twice_is_an_input_error(tmp_path):
    folder = (
        Books()
        .provider("H1")
        .member("M1", balance="500")
        .admissions("H1", 3, "9000.00")
        .claim("2024-03-01", account="400")
        .write(tmp_path / "books")
    )
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "settlements.parquet").write_bytes((folder / "settlements.parquet").read_bytes())
    for again in (folder, copy, folder / "settlements.parquet"):
        r = invoke(
            "reconcile",
            "--settlements",
            folder,
            "--settlements",
            again,
            "--providers",
            folder / "providers.parquet",
            "--members",
            folder / "members.parquet",
            "--out",
            tmp_path / "o",
            "--policy",
            "prefecture-employee",
        )
        assert r.exit_code == 2 and "claim_id" in r.output and "row 0" in r.output, r.output
        assert "Traceback" not in r.output and not (tmp_path / "o").exists()


def test_a_negative_fund_amount_in_settlements_is_an_input_error(tmp_path):
    folder = (
        Books()
        .provider("H1")
        .claim("2024-03-01", pool="10.00")
        .claim("2024-03-02", account="-1.00")
        .write(tmp_path / "books")
    )
    r, out = reconcile(folder)
    assert r.exit_code == 2 and "account_paid" in r.output and "row 1" in r.output, r.output


def test_negative_account_closings_break_the_identities(tmp_path):
    # members file with less on the account than the run paid from it: impossible for one true year
    folder = (
        Books()
        .provider("H1")
        .member("M1", balance="100")
        .member("M2", balance="50")
        .claim("2024-03-01", member="M1", account="300")
        .claim("2024-03-02", member="M2", account="20")
        .write(tmp_path / "books")
    )
    r, out = reconcile(folder, "--year", 2024)
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["impossible"]["overspent_members"] == 1 and not s["identities_hold"]
    r = invoke(
        "reconcile",
        "--settlements",
        folder,
        "--providers",
        folder / "providers.parquet",
        "--members",
        folder / "members.parquet",
        "--out",
        tmp_path / "o2",
        "--year",
        2024,
        "--policy",
        "prefecture-employee",
    )
    assert "DO NOT HOLD" in r.output and "overspent members 1" in r.output
