"""``adjudicate compare``: the same claims under two policies; the terminal report."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (
    CLICK_SETTINGS,
    Progress,
    check_out,
    errors,
    group_digits,
    inputs_or_dataset_options,
    log_event,
    out_option,
    partitions_option,
    quiet_option,
    threads_option,
    with_keep,
    with_lang,
    with_log_file,
)

if TYPE_CHECKING:
    import numpy as np


def _label(info: dict) -> str:
    n = len(info.get("overrides") or [])
    return f"{info['name']} {info['version']}" + (f" + {n} --set" if n else "")


def show_compare(s: dict, member_cash_delta: np.ndarray | None = None, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..compare import histogram
    from ..labels import column
    from ..labels import t as label
    from .tables import show

    console = Console()
    t = Table(title=f"{label('report_compare')} · A: {_label(s['policy_a'])}  vs  B: {_label(s['policy_b'])}")
    t.add_column(f"{label('amount')} ({label('yuan')})")
    for c in ("A", "B", "Δ = B − A", "Δ %"):
        t.add_column(c, justify="right")
    for k in ("total", "fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid"):
        v = s["totals"][k]
        a, d = Decimal(v["a"]), Decimal(v["delta"])
        pct = f"{d / a * 100:+.2f} %" if a else ("" if not d else "new")
        t.add_row(column(k), group_digits(v["a"]), group_digits(v["b"]), _signed(v["delta"]), pct)
    show(console, t)
    c, m = s["counts"], s["members"]
    console.print(
        f"claims: {c['claims']:,} compared, {c['claims_changed']:,} changed"
        + (f", {c['by_change']['now_rejected']:,} rejected under B only" if c["by_change"]["now_rejected"] else "")
        + (f", {c['by_change']['new']:,} rejected under A only" if c["by_change"]["new"] else "")
    )
    console.print(
        f"members: {m['better_off']:,} better off, {m['worse_off']:,} worse off, "
        f"{m['unchanged']:,} unchanged (out of pocket: cash + personal account)"
    )
    if member_cash_delta is not None:
        # the bars fit the terminal: a row never wraps (labels are about 20 characters, counts up to 10)
        for line in histogram(member_cash_delta, width=max(8, min(40, console.width - 32))):
            console.print(line, highlight=False)
    if out is not None:
        console.print(
            f"written to {out}/ (compare.parquet, member_changes.parquet, summary.json, report.html)", highlight=False
        )


def _signed(v: str) -> str:
    return ("+" if not v.startswith("-") and Decimal(v) != 0 else "") + group_digits(v)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


@click.command("compare", context_settings=CLICK_SETTINGS)
@inputs_or_dataset_options
@click.option(
    "--policy",
    "policies",
    multiple=True,
    required=True,
    help="Policy A, then policy B (shipped name or .toml path). With one --policy, B is A with the --set overrides.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one value of policy B (repeatable), e.g. limits.fund_pool_annual.amount=50000. "
    "VALUE is a TOML value; all overrides are validated together before anything runs.",
)
@out_option
@threads_option
@partitions_option
@quiet_option
@with_lang
@with_log_file
@with_keep
def compare(
    policies, overrides, out, threads, partitions, quiet, claims, members, providers, catalogue, dataset
) -> None:
    """Adjudicate the same claims under two policies and write exactly what changes.

    Writes compare.parquet (per claim: every amount under A, under B, and B − A),
    member_changes.parquet (per member and year: what the funds, the subsidy, the
    account and the member in cash pay under A and B) and summary.json (totals,
    members better off / worse off / unchanged, percentiles of the change).
    Every Δ is exact: the Δ column of a total is the sum of the claims' Δ.

    \b
    Examples:
      # two shipped schemes on the same claims
      adjudicate compare --policy prefecture-employee --policy city-employee \\
          --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet --out cmp/
    \b
      # a reform: raise the annual cap and the retired rate of the first band
      adjudicate compare --policy city-employee \\
          --set limits.fund_pool_annual.amount=50000 \\
          --set 'blocks.inpatient.scale.bands[0].pool={ in_service = 0.85, retired = 0.90 }' \\
          --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet --out reform/
    \b
      # from a prepared dataset (adjudicate prepare): decoded once, ever
      adjudicate compare --policy city-employee --set limits.fund_pool_annual.amount=50000 \\
          --dataset ds/ --out reform/
    """
    from ..compare import run_compare

    with errors():
        if dataset is not None and partitions > 1:
            raise click.UsageError("--partitions applies to input files; a --dataset is memory-mapped whole")
        if len(policies) > 2:
            raise click.UsageError("give one or two --policy (A, then B)")
        if len(policies) == 1 and not overrides:
            raise click.UsageError("give a second --policy, or --set overrides to compare the policy against")
        check_out(out, claims, members, providers, catalogue, dataset)
        progress = Progress(quiet, "comparing", ["read", "policy A", "policy B", "compare", "write"])
        try:
            s, d_cash = run_compare(
                claims,
                members,
                providers,
                catalogue,
                policies=policies,
                overrides=overrides,
                out=Path(out),
                threads=threads,
                progress=progress,
                dataset=dataset,
                partitions=partitions,
            )
        finally:
            progress.close()
        log_event(
            "summary",
            out=out,
            counts=s["counts"],
            members=s["members"],
            totals={k: v["delta"] for k, v in s["totals"].items()},
        )
        if not quiet:
            show_compare(s, d_cash, Path(out))
