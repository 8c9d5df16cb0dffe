"""``adjudicate sweep``: K policy variants on one decode; the terminal table."""

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
    out_option,
    partitions_option,
    quiet_option,
    threads_option,
    with_lang,
    with_log_file,
)
from .compare import _signed


def show_sweep(s: dict, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    b = s["baseline"]
    t = Table(
        title=f"sweep · baseline {b['name']} {b['version']}"
        + (f" + {len(b['overrides'])} --set" if b["overrides"] else "")
    )
    t.add_column("#", justify="right", no_wrap=True, min_width=2)
    for c in ("Δ fund_pool", "Δ supplementary", "Δ cash_paid", "better off", "worse off"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in s["rows"]:
        t.add_row(
            str(r["variant"]),
            _signed(r["fund_pool_delta"]),
            _signed(r["fund_supplementary_delta"]),
            _signed(r["cash_paid_delta"]),
            f"{r['members_better_off']:,}",
            f"{r['members_worse_off']:,}",
        )
    console.print(t)
    console.print(
        f"  0: baseline, fund_pool {group_digits(s['rows'][0]['fund_pool'])} yuan (Δ in yuan; "
        "better / worse off out of pocket over all years)",
        highlight=False,
    )
    for r in s["rows"][1:]:
        console.print(f"  {r['variant']}: {r['label']}", highlight=False)
    if out is not None:
        extra = ", member_changes.parquet" if "deltas_for" in s else ""
        console.print(f"written to {out}/ (variants.parquet{extra}, summary.json)")


@click.command("sweep", context_settings=CLICK_SETTINGS)
@inputs_or_dataset_options
@click.option(
    "--policy",
    "policies",
    multiple=True,
    required=True,
    help="The base policy (shipped name or .toml path): variant 0, the baseline. Further --policy "
    "files are variants of their own.",
)
@click.option(
    "--vary",
    "vary",
    multiple=True,
    metavar="KEY=v1,v2,…",
    help="Values of one policy key to try (repeatable: the grid of all combinations), each applied "
    "to the base policy like compare --set. Commas inside [] or {} do not split.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one value of the base policy for every variant, the baseline included.",
)
@click.option(
    "--deltas",
    "deltas_for",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Also write member_changes.parquet: per member and year, variant N against the baseline.",
)
@out_option
@threads_option
@partitions_option
@quiet_option
@with_lang
@with_log_file
def sweep(
    policies,
    vary,
    overrides,
    deltas_for,
    out,
    threads,
    partitions,
    quiet,
    claims,
    members,
    providers,
    catalogue,
    dataset,
) -> None:
    """Settle the same claims under many policy variants, decoding them once: one row per variant.

    Writes variants.parquet (per variant: every total, its change against the
    baseline, members better off / worse off, percentiles of the members'
    change out of pocket) and summary.json. Each variant costs a kernel pass,
    not a run.

    \b
    Examples:
      # 4 × 3 = 12 variants of the annual cap and the retired rate
      adjudicate sweep --policy city-employee \\
          --vary limits.fund_pool_annual.amount=40000,50000,60000,80000 \\
          --vary 'blocks.inpatient.scale.bands[0].pool={ in_service = 0.85, retired = 0.90 },{ in_service = 0.9, retired = 0.95 },{ in_service = 0.95, retired = 0.97 }' \\
          --dataset ds/ --out sweep/
    \b
      # several policy files against the first
      adjudicate sweep --policy prefecture-employee --policy reform1.toml --policy reform2.toml \\
          --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet --out sweep/ --deltas 1
    """
    from ..sweep import run_sweep, variants

    with errors():
        if dataset is not None and partitions > 1:
            raise click.UsageError("--partitions applies to input files; a --dataset is memory-mapped whole")
        check_out(out, claims, members, providers, catalogue, dataset)
        if not vary and len(policies) < 2:
            raise click.UsageError("nothing to sweep: give --vary KEY=v1,v2,… and/or more --policy files")
        vs = variants(policies[0], vary, policies[1:], overrides)
        progress = Progress(quiet, "sweeping", ["read"] + [f"variant {i}" for i in range(len(vs))] + ["write"])
        try:
            s = run_sweep(
                claims,
                members,
                providers,
                catalogue,
                variants_=vs,
                out=Path(out),
                deltas_for=deltas_for,
                threads=threads,
                progress=progress,
                dataset=dataset,
                partitions=partitions,
            )
        finally:
            progress.close()
        if not quiet:
            show_sweep(s, Path(out))
