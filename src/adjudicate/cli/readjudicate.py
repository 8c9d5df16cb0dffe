"""``adjudicate readjudicate``: the nightly re-run that writes only the adjustments."""

from __future__ import annotations

from pathlib import Path

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
    policy_option,
    quiet_option,
    threads_option,
    with_keep,
    with_lang,
    with_log_file,
)
from .compare import _signed


def show_readjudicate(s: dict, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..labels import column, t
    from .tables import show

    console = Console()
    prev_policy = s["previous"].get("policy") or {}
    cur_policy = s["current"]["policy"]
    head = Table(title=t("report_readjudicate"), show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    c = s["counts"]
    head.add_row(t("policy before"), f"{prev_policy['name']} {prev_policy['version']}" if prev_policy else "?")
    head.add_row(t("policy now"), f"{cur_policy['name']} {cur_policy['version']}")
    head.add_row(t("settled before"), f"{c['previous_settled_claims']:,}")
    head.add_row(t("settled now"), f"{c['current_settled_claims']:,}")
    head.add_row(t("adjusted claims"), f"{c['adjusted_claims']:,}")
    for k, n in c["by_change"].items():
        head.add_row(f"  {t(k)}", f"{n:,}")
    if "adjusted_lines" in c:
        head.add_row(t("adjusted lines"), f"{c['adjusted_lines']:,}")
    show(console, head, wrap=[0])
    money = Table(title=f"{t('report_readjudicate')} ({t('yuan')})")
    money.add_column(t("amount"))
    for col in (t("before"), t("now"), "Δ"):
        money.add_column(col, justify="right")
    for k in ("total", "fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid"):
        money.add_row(
            column(k),
            group_digits(s["previous"]["totals"][k]),
            group_digits(s["current"]["totals"][k]),
            _signed(s["deltas"][k]),
        )
    show(console, money)
    if not s["reconciles"]:  # pragma: no cover - would be a bug
        console.print("[red]the adjustments do not sum to the change of the totals[/red]")
    if out is not None:
        console.print(
            f"written to {out}/ (adjustments.parquet"
            + (", line_adjustments.parquet" if "adjusted_lines" in c else "")
            + ", summary.json, report.html, current/)",
            highlight=False,
        )


@click.command("readjudicate", context_settings=CLICK_SETTINGS)
@inputs_or_dataset_options
@click.option(
    "--previous",
    type=click.Path(file_okay=False),
    required=True,
    help="Output folder of an earlier run (or of an earlier readjudicate: its current/ is used).",
)
@policy_option
@out_option
@threads_option
@partitions_option
@quiet_option
@with_lang
@with_log_file
@with_keep
def readjudicate(
    previous, policy_name, out, threads, partitions, quiet, claims, members, providers, catalogue, dataset
) -> None:
    """Re-run, and write only the adjustments against an earlier run's outputs.

    A claim is adjusted when any amount changed (changed), when it is settled
    now and was not (new), or when it was settled and now is rejected
    (now_rejected) or absent (removed). The Δ of each amount sums exactly to
    (current total − previous total). The full new run goes to OUT/current/,
    ready to be the next --previous. --partitions settles the input files in
    member ranges; the previous settlements are still held whole.

    \b
    Example:
      adjudicate run --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet \\
          --policy prefecture-employee --out night1/
      # the next night, after corrections to the claims or the catalogue:
      adjudicate readjudicate --previous night1/ --claims claims.parquet \\
          --members members.parquet --providers providers.parquet \\
          --catalogue catalogue.parquet --policy prefecture-employee --out night2/
    """
    from ..readjudicate import run_readjudicate

    with errors():
        if dataset is not None and partitions > 1:
            raise click.UsageError("--partitions applies to input files; a --dataset is memory-mapped whole")
        # --out may be the --previous folder (an earlier output, read whole before the swap; the new
        # output holds the run in current/ for the next night)
        check_out(out, claims, members, providers, catalogue, dataset)
        progress = Progress(quiet, "readjudicating", ["read previous", "read", "adjudicate", "adjustments", "write"])
        try:
            s = run_readjudicate(
                Path(previous),
                claims,
                members,
                providers,
                catalogue,
                policy_name=policy_name,
                out=Path(out),
                threads=threads,
                progress=progress,
                dataset=dataset,
                partitions=partitions,
            )
        finally:
            progress.close()
        for w in s.get("warnings", []):
            click.secho(f"warning: {w}", err=True, fg="red", bold=True)
        log_event("summary", out=out, counts=s["counts"], deltas=s["deltas"])
        if not quiet:
            show_readjudicate(s, Path(out))
