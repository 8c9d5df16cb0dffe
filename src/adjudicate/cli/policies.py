"""``adjudicate policies``: the shipped policies; ``show`` one on a date, ``export`` a copy to edit."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import CLICK_SETTINGS, errors, json_option


@click.group(context_settings=CLICK_SETTINGS, invoke_without_command=True)
@json_option
@click.pass_context
def policies(ctx, as_json) -> None:
    """List the shipped policies (use a name, or a path to your own .toml, with --policy).

    \b
    Examples:
      adjudicate policies
      adjudicate policies show city-employee --on 2024-07-01
      adjudicate policies export city-employee --out my-city.toml
    """
    if ctx.invoked_subcommand is not None:
        return
    from .. import policy as P

    with errors():
        rows = []
        for _name, path in P.shipped().items():
            p = P.load(path)
            rows.append({"name": p.name, "version": p.version, "title": p.title, "source": p.source, "file": str(path)})
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        from .tables import show as show_table

        t = Table(title="shipped policies")
        for col in ("name", "version", "title", "source"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], r["version"], r["title"], r["source"])
        show_table(Console(), t, wrap=[2, 3])


@policies.command(context_settings=CLICK_SETTINGS)
@click.argument("name")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Show the values in force on this date (default: every value, with every dated change).",
)
@json_option
def show(name, on, as_json) -> None:
    """Print a policy key by key (whole keys, never cut), each value with its effective date and reference.

    NAME is a shipped policy name or a path to a .toml file.

    \b
    Examples:
      adjudicate policies show prefecture-employee
      adjudicate policies show my-policy.toml --on 2024-07-01 --json
    """
    from ..policyview import text, view

    with errors():
        v = view(name, on.date() if on else None)
        click.echo(json.dumps(v, ensure_ascii=False, indent=2) if as_json else text(v))


@policies.command(context_settings=CLICK_SETTINGS)
@click.argument("name")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: NAME.toml here). An existing file is never overwritten.",
)
def export(name, out) -> None:
    """Write a copy of a policy file, comments and references included, to start a new one from.

    \b
    Example:
      adjudicate policies export city-employee --out my-city.toml
      # edit [policy] name and version and the numbers, then: adjudicate run --policy my-city.toml …
    """
    from .. import policy as P

    with errors():
        p = P.load(name)
        target = out or Path(f"{p.name}.toml")
        try:
            with open(target, "xb") as f:
                f.write(p.path.read_bytes())
        except FileExistsError:
            click.echo(
                f"error: {target} exists already; policies export never overwrites a file (choose another --out)",
                err=True,
            )
            raise SystemExit(2) from None
        except OSError as e:
            click.echo(f"error: cannot write {target}: {e.strerror or e}", err=True)
            raise SystemExit(2) from None
        click.echo(
            f"wrote {target}: a copy of {p.label}; give it a new [policy] name and version, then use --policy {target}"
        )
