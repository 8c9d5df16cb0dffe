"""``adjudicate audit``: flag claims worth an auditor's look and score the providers (稽核)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (
    CLICK_SETTINGS,
    Progress,
    audit_rules_option,
    check_out,
    errors,
    inputs_options,
    out_option,
    quiet_option,
    threads_option,
    with_keep,
    with_lang,
    with_log_file,
)

AUDIT_STAGES = ("read", "encode", "kernel", "audit", "write")


@click.command(context_settings=CLICK_SETTINGS)
@inputs_options
@click.option(
    "--policy",
    "policy_name",
    required=True,
    help="Shipped policy name or path to a .toml file (fund amounts of the indicators).",
)
@audit_rules_option
@out_option
@threads_option
@quiet_option
@with_lang
@with_log_file
@with_keep
def audit(claims, members, providers, catalogue, policy_name, rules_file, out, threads, quiet) -> None:
    """Flag suspicious claims (readmissions, overlapping stays, duplicate bills, …) and rank providers.

    Writes flags.parquet (one row per claim, rule and evidence claim),
    indicators.parquet (per provider, year and indicator, ranked against peers
    of the same kind and level) and summary.json. The rules and thresholds are
    a cited TOML file; see AUDIT-RULES.md beside the shipped one. This command
    works in memory; for inputs larger than memory use `run --audit --partitions N`.

    \b
    Example:
      adjudicate audit --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet \\
          --policy prefecture-employee --out audit/
      adjudicate audit … --rules my-audit-rules.toml --out audit/
    """
    with errors():
        check_out(out, claims, members, providers, catalogue, rules_file)
        s = run_audit_command(
            claims,
            members,
            providers,
            catalogue,
            policy_name=policy_name,
            rules_file=rules_file,
            out=Path(out),
            threads=threads,
            quiet=quiet,
        )
        if not quiet:
            show_audit(s["audit"], Path(out))


def run_audit_command(
    claims,
    members,
    providers,
    catalogue,
    *,
    policy_name: str,
    rules_file: str | None,
    out: Path,
    threads: int | None,
    quiet: bool,
) -> dict:
    from .. import policy as P
    from ..audit import load_audit_rules, run_audit, write_audit
    from ..engine import Timer, adjudicate, read_inputs
    from ..outputs import atomic_dir, summary
    from ..report import write_report

    policy = P.load(policy_name)
    rules = load_audit_rules(rules_file)
    progress = Progress(quiet, "auditing", AUDIT_STAGES)
    timer = Timer()
    try:
        progress("read")
        with timer("read"):
            inputs = read_inputs(claims, members, providers, catalogue)
        result = adjudicate(inputs, policy, threads=threads, timer=timer, progress=progress, line_funds=False)
        progress("audit")
        with timer("audit"):
            a = run_audit(result, inputs, rules, threads)
        progress("write")
        with atomic_dir(out, inputs.digests()) as tmp:
            s = summary(result, inputs.digests(), inputs.claims.rows)
            s["audit"] = write_audit(a, tmp)
            del s["totals"], s["invariants_hold"]  # no settlements are written here
            (tmp / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            write_report(tmp, "audit")
    finally:
        progress.close()
    return s


def show_audit(a: dict, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"audit · rules {a['rules']['name']} {a['rules']['version']}")
    t.add_column("rule")
    t.add_column("flags", justify="right")
    t.add_column("claims", justify="right")
    t.add_column("note")
    for name, c in a["by_rule"].items():
        why = a["skipped_rules"].get(name)
        t.add_row(
            name,
            "—" if why else f"{c['flags']:,}",
            "—" if why else f"{c['claims']:,}",
            f"skipped: {why}" if why else "",
        )
    console.print(t)
    console.print(
        f"flagged claims {a['flagged_claims']:,}; provider indicator rows {a['indicator_rows']:,}, "
        f"outliers {a['outliers']:,}"
    )
    if out is not None:
        console.print(
            f"written to {out}/ (flags.parquet, indicators.parquet, summary.json, report.html)", highlight=False
        )
