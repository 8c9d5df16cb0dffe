"""``adjudicate validate``: check input files and list every problem."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import CLICK_SETTINGS, errors, with_encoding


@click.command(context_settings=CLICK_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@with_encoding
def validate(inputs) -> None:
    """Check input files against the contract and list every problem found.

    Each file's table is recognised by its name (claims, members, providers,
    catalogue); a folder means the four files inside it. Claims that would be
    rejected are listed by reason.

    \b
    Example:
      adjudicate validate gen/
      adjudicate validate gen/claims.parquet gen/members.parquet
    """
    from ..validate import validate_paths

    with errors():
        problems = validate_paths([Path(p) for p in inputs])
        for p in problems:
            click.echo(p)
        if problems:
            sys.exit(2)
        click.echo("ok: no problems found")
