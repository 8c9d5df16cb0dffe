"""``adjudicate reconcile``: year-end provider settlement, fund statement, account ledger.

The click command is defined here and registered in ``cli.py``; the shared
command-line helpers come from ``clitools``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import click

from ..clitools import Progress, errors

STAGES = ("read", "providers", "funds", "ledger", "write")
OUTPUTS = ("providers.parquet", "funds.parquet", "funds_monthly.parquet", "ledger.parquet", "summary.json")


@dataclass
class Reconciliation:
    providers: object
    funds: object
    funds_monthly: object
    ledger: object
    summary: dict


def reconcile(settlements, providers, members, advances=None, income=None, opening=None, rules=None,
              reward_rate: Decimal | None = None, reserve_window: int = 12, year: int | None = None,
              progress=None) -> Reconciliation:
    """Compute every output in memory (tables and summary); nothing is written."""
    import numpy as np

    from .. import __version__
    from ..inputs import InputError
    from ..schema import MEMBERS, PROVIDERS
    from . import tables as T
    from .funds import statement
    from .ledger import ledger
    from .provider import settle_providers
    from .rules import load_rules

    say = progress or (lambda s: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say("read")
    r = load_rules(rules)
    if reward_rate is not None:
        bp = Decimal(reward_rate) * 10_000
        if bp != bp.to_integral_value() or not 0 <= bp <= 10_000:
            raise InputError(f"--reward-rate {reward_rate} must be a fraction in 0..1 in whole basis points")
        r = r.with_reward(int(bp))
    st = T.read(T.SETTLEMENTS, settlements)
    pv = T.read(PROVIDERS, providers)
    mb = T.read(MEMBERS, members)
    T.check_unique(pv, ("provider_id",))
    T.check_unique(mb, ("member_id",))
    inc = T.read(T.INCOME, income)
    opn = T.read(T.OPENING, opening)
    adv = T.read(T.ADVANCES, advances)
    seen = np.unique(st["benefit_year"])
    if year is not None:
        years = np.array([year], np.int64)
    elif len(seen):
        years = seen.astype(np.int64)
    else:
        raise InputError("the settlements hold no claims, so the benefit year is unknown; give it with --year",
                         st.files[0])
    Y = T.Year(years)
    timings["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("providers")
    prov_table, prov_sum = settle_providers(st, pv, Y, r, adv, int(years[0]) if len(years) == 1 else None)
    timings["providers"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("funds")
    account_opening = int(np.asarray(mb["account_balance"], dtype=np.int64).sum())
    funds, monthly, fund_sum = statement(st, Y, inc, opn, account_opening, reserve_window)
    timings["funds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("ledger")
    led, led_sum = ledger(st, mb, Y, r)
    timings["ledger"] = time.perf_counter() - t0

    digests: dict[str, str] = {}
    for t in (st, pv, mb, inc, opn, adv):
        if t is not None:
            digests.update(t.digests)
    _, in_years = Y.index(st["benefit_year"])
    account = {f["year"]: f for f in fund_sum["rows"] if f["fund"] == "account"}
    summary = {
        "adjudicate_version": __version__,
        "rules": r.describe() | {"reward_rate": str(Decimal(r.reward_bp) / 10_000)},
        "years": [int(y) for y in years],
        "reserve_window_months": reserve_window,
        "counts": {"settlement_rows": st.rows, "settlement_rows_in_years": int(np.count_nonzero(in_years))},
        "providers": prov_sum,
        "funds": fund_sum,
        "ledger": led_sum,
        "identities_hold": bool(
            fund_sum["identity_holds"]
            and prov_sum["balance"] == prov_sum["due"] - prov_sum["advances"]
            and led_sum["closing"] == led_sum["opening"] - led_sum["spent"]
            and led_sum["spent"] == sum(a["expenditure"] for a in account.values())),
        "inputs": digests,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
    }
    return Reconciliation(prov_table, funds, monthly, led, summary)


def write(rec: Reconciliation, out: Path) -> dict:
    """Write every output into ``out`` atomically; returns the summary as written (yuan as text)."""
    import pyarrow.parquet as pq

    from ..outputs import atomic_dir

    s = as_yuan(rec.summary)
    with atomic_dir(out) as tmp:
        pq.write_table(rec.providers, tmp / "providers.parquet")
        pq.write_table(rec.funds, tmp / "funds.parquet")
        pq.write_table(rec.funds_monthly, tmp / "funds_monthly.parquet")
        pq.write_table(rec.ledger, tmp / "ledger.parquet")
        (tmp / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return s


#: Summary keys that hold fen (written as yuan text, exact).
_MONEY = {"quota_total", "fund_pool", "due", "advances", "balance", "over_ceiling", "borne_by_provider",
          "opening", "income", "expenditure", "year_balance", "closing", "spent", "credit", "next_opening",
          "contributions", "interest", "prepayments", "fiscal_subsidy", "other"}


def as_yuan(x, key: str | None = None):
    """The summary with money as exact yuan text ('1234.50') and months of reserve as '8.65'."""
    from .exact import yuan_text

    if isinstance(x, dict):
        return {k: as_yuan(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [as_yuan(v, key) for v in x]
    if isinstance(x, int) and not isinstance(x, bool) and key in _MONEY:
        return yuan_text(x)
    if key == "months_of_reserve" and x is not None:
        return yuan_text(x)  # hundredths, like fen
    return x


def render(s: dict, out: Path | None) -> None:
    """The terminal report: provider settlement, fund statement, ledger (from the written summary)."""
    from rich.console import Console
    from rich.table import Table

    from .tables import FUNDS, ITEMS

    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # piped: plain text, wide enough for a statement's columns
    p = s["providers"]
    t = Table(title="provider quota settlement (定额结算)")
    t.add_column("")
    t.add_column("yuan", justify="right")
    t.add_row("providers with a quota", f"{p['providers']:,}")
    t.add_row("admissions N", f"{p['admissions']:,}")
    for label, key in (("quota Q = q × N", "quota_total"), ("fund_pool A", "fund_pool"), ("due", "due"),
                       ("advances", "advances"), ("balance = due − advances", "balance"),
                       ("borne by providers above the ceiling", "over_ceiling")):
        t.add_row(label, _g(p[key]))
    console.print(t)
    bands = ", ".join(f"{b} {n}" for b, n in p["by_band"].items())
    n = p["admissions_without_quota"]
    console.print(f"providers by band: {bands}; advances: {p['advances_from']}; "
                  f"rules: {s['rules']['name']} {s['rules']['version']}"
                  + (f"; {n:,} admission{'s' if n != 1 else ''} at providers without a quota (not settled here)"
                     if n else ""))
    rows = s["funds"]["rows"]
    for year in s["years"]:
        by_fund = {r["fund"]: r for r in rows if r["year"] == year}
        f = Table(title=f"fund statement {year} (基金收支, yuan)")
        f.add_column("")
        for name in FUNDS:
            f.add_column(name, justify="right")
        f.add_column("total", justify="right")

        def line(label: str, get) -> None:
            vals = [get(by_fund[name]) for name in FUNDS]
            total = sum(int(v.replace(".", "")) for v in vals)
            f.add_row(label, *map(_g, vals), _g(_yuan(total)))

        line("opening", lambda r: r["opening"])
        for item in ITEMS:
            if any(by_fund[name]["income_by_item"][item] != "0.00" for name in FUNDS):
                line(f"  income: {item}", lambda r, item=item: r["income_by_item"][item])
        line("income", lambda r: r["income"])
        line("expenditure", lambda r: r["expenditure"])
        line("year balance (本年结余)", lambda r: r["year_balance"])
        line("closing (累计结余)", lambda r: r["closing"])
        window = {by_fund[name]["reserve_window_months"] for name in FUNDS}
        f.add_row(f"months of reserve ({'/'.join(map(str, sorted(window)))} mo)",
                  *(by_fund[name]["months_of_reserve"] or "—" for name in FUNDS), "")
        console.print(f)
    led = s["ledger"]
    lt = Table(title="account ledger (个人账户)")
    lt.add_column("")
    lt.add_column("yuan", justify="right")
    lt.add_row("member-years", f"{led['rows']:,}")
    for label, key in (("opening", "opening"), ("spent", "spent"), ("closing", "closing"),
                       ("credit for next year", "credit"), ("next opening", "next_opening")):
        lt.add_row(label, _g(led[key]))
    console.print(lt)
    ok = "hold" if s["identities_hold"] else "DO NOT HOLD"
    console.print(f"identities {ok}; time " + ", ".join(f"{k} {v:.2f}s" for k, v in s["timings_seconds"].items()))
    if out is not None:
        console.print(f"written to {out}/ ({', '.join(OUTPUTS)})")


def _yuan(fen: int) -> str:
    from .exact import yuan_text
    return yuan_text(fen)


def _g(v: str) -> str:
    sign, v = ("-", v[1:]) if v.startswith("-") else ("", v)
    whole, _, frac = v.partition(".")
    return f"{sign}{int(whole):,}.{frac or '00'}"


@click.command("reconcile")
@click.option("--settlements", multiple=True, required=True, type=click.Path(),
              help="Output folder of `adjudicate run` (its settlements.parquet), or settlements file(s).")
@click.option("--providers", multiple=True, required=True, type=click.Path(),
              help="Providers file or folder (the one the run used; quota_per_admission).")
@click.option("--members", multiple=True, required=True, type=click.Path(),
              help="Members file or folder (the one the run used; account_balance, wage, birth date).")
@click.option("--advances", multiple=True, type=click.Path(),
              help="Advances paid to providers: provider_id, year, month, amount "
                   "(default: admissions × round(advance_rate × quota)).")
@click.option("--income", multiple=True, type=click.Path(),
              help="Fund income: fund, year, month, item, amount (data/reconcile/README.md).")
@click.option("--opening", multiple=True, type=click.Path(),
              help="Fund opening balances: fund, year, amount (data/reconcile/README.md).")
@click.option("--rules", "rules", type=click.Path(dir_okay=False), default=None,
              help="Settlement rules TOML (corridor, account credit); default: the shipped seed rules.")
@click.option("--reward-rate", type=str, default=None,
              help="Reward below the corridor, a fraction of (lower edge × Q − A); overrides the rules "
                   "file (which says 0).")
@click.option("--reserve-window", type=click.IntRange(1, 1200), default=12, show_default=True,
              help="Months of expenditure averaged for months of reserve (备付能力).")
@click.option("--year", type=click.IntRange(1900, 9999), default=None,
              help="Reconcile this benefit year only (default: every year in the settlements).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder (replaced atomically).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no report.")
def reconcile_command(settlements, providers, members, advances, income, opening, rules, reward_rate,
                      reserve_window, year, out, quiet) -> None:
    """Year-end provider settlement, fund statement and account ledger (schemes.md §7–§9).

    Reads the settlements of `adjudicate run` and writes providers.parquet
    (定额结算 with the 90/110/120 % corridor), funds.parquet and
    funds_monthly.parquet (收支, 结余, 备付能力), ledger.parquet (个人账户) and
    summary.json to --out.

    \b
    Example:
      adjudicate run --claims data/claims.parquet --members data/members.parquet \\
          --providers data/providers.parquet --catalogue data/catalogue.parquet \\
          --policy prefecture-employee --out result/
      adjudicate reconcile --settlements result/ --providers data/providers.parquet \\
          --members data/members.parquet --income data/reconcile/income.csv \\
          --opening data/reconcile/opening.csv --year 2024 --out reconciled/
    """
    with errors():
        reward = None
        if reward_rate is not None:
            from decimal import InvalidOperation

            from ..inputs import InputError
            try:
                reward = Decimal(reward_rate)
            except InvalidOperation:
                raise InputError(f"--reward-rate {reward_rate!r} is not a number (a fraction: 0.1 = 10 %)") from None
            if not reward.is_finite():
                raise InputError(f"--reward-rate {reward_rate!r} is not a finite number")
        progress = Progress(quiet, "reconciling", STAGES)
        try:
            rec = reconcile(settlements, providers, members, advances, income, opening, rules, reward,
                            reserve_window, year, progress)
            progress("write")
            t0 = time.perf_counter()
            s = write(rec, Path(out))
        finally:
            progress.close()
        if not quiet:
            s["timings_seconds"]["write"] = round(time.perf_counter() - t0, 4)
            render(s, Path(out))
