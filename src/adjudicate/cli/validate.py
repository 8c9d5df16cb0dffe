"""``adjudicate validate``: check input files and list every problem."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import (
    CLICK_SETTINGS,
    Progress,
    errors,
    log_event,
    quiet_option,
    threads_option,
    with_encoding,
    with_log_file,
)


@click.command(context_settings=CLICK_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--policy",
    "policy_name",
    default=None,
    help="Also split the claims under this policy, so that every rejection `run` would make is "
    "listed (negative_claim_total depends on the policy).",
)
@quiet_option
@threads_option
@with_encoding
@with_log_file
def validate(inputs, policy_name, quiet, threads) -> None:
    """Check input files against the contract and list every problem found.

    Each file's table is recognised by its name (claims, members, providers,
    catalogue); a folder means the four files inside it. Claims that would be
    rejected are listed by reason; with --policy, every rejection `run` would
    make under that policy. Checks that could not run are listed as skipped.
    --threads bounds the whole command, as for `run`.

    \b
    Example:
      adjudicate validate gen/ --policy prefecture-employee
      adjudicate validate gen/claims.parquet gen/members.parquet
    """
    from ..validate import validate_paths

    with errors():
        skipped: list[str] = []
        progress = Progress(
            quiet,
            "validating",
            [
                "read claims",
                "read members",
                "read providers",
                "read catalogue",
                "cross-table checks",
                "split under the policy",
            ],
        )
        try:
            problems = validate_paths([Path(p) for p in inputs], policy_name, progress, skipped)
        finally:
            progress.close()
        log_event("summary", problems=len(problems), skipped=skipped)
        for p in problems:
            click.echo(p)
        for s in skipped:
            click.echo(f"skipped: {s}")
        if problems:
            sys.exit(2)
        click.echo("ok: no problems found" + (" in the checks that ran" if skipped else ""))
