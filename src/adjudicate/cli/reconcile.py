"""``adjudicate reconcile``: year-end settlement; the terminal report."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import click

from ..errors import InputError
from .common import (
    CLICK_SETTINGS,
    Progress,
    check_out,
    errors,
    group_digits,
    log_event,
    out_option,
    quiet_option,
    with_encoding,
    with_lang,
    with_log_file,
)


def render(s: dict, out: Path | None) -> None:
    """The terminal report: provider settlement, fund statement, ledger (from the written summary)."""
    from rich.console import Console
    from rich.table import Table

    from ..labels import column
    from ..labels import t as tr
    from ..reconcile.exact import yuan_text
    from ..reconcile.tables import FUNDS, ITEMS
    from ..reconcile.year_end import OUTPUTS
    from .tables import show

    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # piped: plain text, wide enough for a statement's columns
    p = s["providers"]
    t = Table(title=tr("provider quota settlement (定额结算)"))
    t.add_column("")
    t.add_column(tr("yuan"), justify="right")
    t.add_row(tr("providers with a quota"), f"{p['providers']:,}")
    t.add_row(tr("admissions N"), f"{p['admissions']:,}")
    for label, key in (
        ("quota Q = q × N", "quota_total"),
        ("fund_pool A", "fund_pool"),
        ("due", "due"),
        ("advances", "advances"),
        ("balance = due − advances", "balance"),
        ("borne by providers above the ceiling", "over_ceiling"),
    ):
        t.add_row(tr(label), group_digits(p[key]))
    show(console, t, wrap=[0])
    bands = ", ".join(f"{b} {n}" for b, n in p["by_band"].items())
    n = p["admissions_without_quota"]
    console.print(
        f"providers by band: {bands}; advances: {p['advances_from']}; "
        f"rules: {s['rules']['name']} {s['rules']['version']}"
        + (f"; {n:,} admission{'s' if n != 1 else ''} at providers without a quota (not settled here)" if n else "")
    )
    rows = s["funds"]["rows"]
    for year in s["years"]:
        by_fund = {r["fund"]: r for r in rows if r["benefit_year"] == year}
        f = Table(title=tr("fund_statement_year").format(year=year))
        f.add_column("")
        for name in FUNDS:
            f.add_column(column(name), justify="right")
        f.add_column(tr("sum"), justify="right")

        def line(label: str, get, by_fund=by_fund, f=f) -> None:
            vals = [get(by_fund[name]) for name in FUNDS]
            total = sum(int(v.replace(".", "")) for v in vals)
            f.add_row(tr(label), *map(group_digits, vals), group_digits(yuan_text(total)))

        line("opening", lambda r: r["opening"])
        for item in ITEMS:
            if any(by_fund[name]["income_by_item"][item] != "0.00" for name in FUNDS):
                line(f"  {tr('income')}: {tr(item)}", lambda r, item=item: r["income_by_item"][item])
        line("income", lambda r: r["income"])
        line("expenditure", lambda r: r["expenditure"])
        line("year balance (本年结余)", lambda r: r["year_balance"])
        line("closing (累计结余)", lambda r: r["closing"])
        window = {by_fund[name]["reserve_window_months"] for name in FUNDS}
        f.add_row(
            f"{tr('months_of_reserve')} ({'/'.join(map(str, sorted(window)))} {tr('mo')})",
            *(by_fund[name]["months_of_reserve"] or "—" for name in FUNDS),
            "",
        )
        show(console, f, wrap=[0])
    led = s["ledger"]
    lt = Table(title=tr("account ledger (个人账户)"))
    lt.add_column("")
    lt.add_column(tr("yuan"), justify="right")
    lt.add_row(tr("member-years"), f"{led['rows']:,}")
    for label, key in (
        ("opening", "opening"),
        ("spent", "spent"),
        ("closing", "closing"),
        ("credit for next year", "credit"),
        ("next opening", "next_opening"),
    ):
        lt.add_row(tr(label), group_digits(led[key]))
    show(console, lt, wrap=[0])
    ok = "hold" if s["identities_hold"] else "DO NOT HOLD"
    bad = {k: v for k, v in s.get("impossible", {}).items() if v}
    if bad:
        console.print(
            "[bold red]impossible:[/bold red] "
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in bad.items())
            + " (settlements or members of another run?)"
        )
    console.print(f"identities {ok}; time " + ", ".join(f"{k} {v:.2f}s" for k, v in s["timings_seconds"].items()))
    if out is not None:
        console.print(f"written to {out}/ ({', '.join(OUTPUTS)}, report.html)", highlight=False)


@click.command("reconcile", context_settings=CLICK_SETTINGS)
@click.option(
    "--settlements",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Output folder of `adjudicate run` (its settlements.parquet), or settlements file(s).",
)
@click.option(
    "--providers",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Providers file or folder (the one the run used; quota_per_admission).",
)
@click.option(
    "--members",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Members file or folder (the one the run used; account_balance, wage, birth date).",
)
@click.option(
    "--advances",
    multiple=True,
    type=click.Path(),
    help="Advances paid to providers: provider_id, year, month, amount "
    "(default: admissions × round(advance_rate × quota)).",
)
@click.option(
    "--income",
    multiple=True,
    type=click.Path(),
    help="Fund income: fund, year, month, item, amount (data/reconcile/README.md).",
)
@click.option(
    "--opening",
    multiple=True,
    type=click.Path(),
    help="Fund opening balances: fund, year, amount (data/reconcile/README.md).",
)
@click.option(
    "--policy",
    default=None,
    help="The policy the run used (shipped name or .toml file); its [account.credit] gives the "
    "ledger's credits. Default: the policy named in the run's summary.json.",
)
@click.option(
    "--rules",
    "rules",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settlement rules TOML (the provider corridor); default: the shipped seed rules.",
)
@click.option(
    "--reward-rate",
    type=str,
    default=None,
    help="Reward below the corridor, a fraction of (lower edge × Q − A); overrides the rules file (which says 0).",
)
@click.option(
    "--reserve-window",
    type=click.IntRange(1, 1200),
    default=12,
    show_default=True,
    help="Months of expenditure averaged for months of reserve (备付能力).",
)
@click.option(
    "--year",
    type=click.IntRange(1900, 9999),
    default=None,
    help="Reconcile this benefit year only (default: every year in the settlements).",
)
@out_option
@quiet_option
@with_encoding
@with_lang
@with_log_file
def reconcile(
    settlements,
    providers,
    members,
    advances,
    income,
    opening,
    policy,
    rules,
    reward_rate,
    reserve_window,
    year,
    out,
    quiet,
) -> None:
    """Year-end provider settlement, fund statement and account ledger (schemes.md §7–§9).

    Reads the settlements of `adjudicate run` and writes provider_settlement.parquet
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
    from ..reconcile.year_end import STAGES, write
    from ..reconcile.year_end import reconcile as run_reconcile

    with errors():
        check_out(out, settlements, providers, members, advances, income, opening, rules)
        reward = None
        if reward_rate is not None:
            from decimal import InvalidOperation

            try:
                reward = Decimal(reward_rate)
            except InvalidOperation:
                raise InputError(f"--reward-rate {reward_rate!r} is not a number (a fraction: 0.1 = 10 %)") from None
            if not reward.is_finite():
                raise InputError(f"--reward-rate {reward_rate!r} is not a finite number")
        progress = Progress(quiet, "reconciling", STAGES)
        try:
            rec = run_reconcile(
                settlements,
                providers,
                members,
                advances=advances,
                income=income,
                opening=opening,
                rules=rules,
                reward_rate=reward,
                reserve_window=reserve_window,
                year=year,
                progress=progress,
                policy=policy,
            )
            progress("write")
            t0 = time.perf_counter()
            s = write(rec, Path(out))
        finally:
            progress.close()
        log_event("summary", out=out, counts=s["counts"], providers=s["providers"], warnings=s.get("warnings", []))
        for w in s.get("warnings", []):
            click.echo(f"warning: {w}", err=True)
        if not quiet:
            s["timings_seconds"]["write"] = round(time.perf_counter() - t0, 4)
            render(s, Path(out))
