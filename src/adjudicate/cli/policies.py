"""``adjudicate policies``: the shipped policies."""
from __future__ import annotations

import json

import click

from .common import CLICK_SETTINGS, errors


@click.command(context_settings=CLICK_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def policies(as_json) -> None:
    """List the shipped policies (use a name, or a path to your own .toml, with --policy).

    \b
    Example:
      adjudicate policies
    """
    from .. import policy as P

    with errors():
        rows = []
        for name, path in P.shipped().items():
            p = P.load(path)
            rows.append({"name": p.name, "version": p.version, "title": p.title, "source": p.source,
                         "file": str(path)})
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        from .tables import show
        t = Table(title="shipped policies")
        for col in ("name", "version", "title", "source"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], r["version"], r["title"], r["source"])
        show(Console(), t, wrap=[2, 3])
