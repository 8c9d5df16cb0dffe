"""``adjudicate export``: an output folder as an Excel workbook."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from .common import CLICK_SETTINGS, Progress, errors, log_event, quiet_option, with_log_file


@click.command("export", context_settings=CLICK_SETTINGS)
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--xlsx", "target", type=click.Path(dir_okay=False), required=True, help="The workbook to write (.xlsx).")
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="NAME",
    help="Export only this table (repeatable), e.g. settlements or current/settlements.",
)
@click.option(
    "--split/--no-split",
    default=True,
    show_default=True,
    help="Continue a table longer than an Excel sheet (1,048,575 rows) on further sheets; "
    "with --no-split such a table is refused.",
)
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
@quiet_option
@with_log_file
def export(folder, target, tables, split, overwrite, quiet) -> None:
    """Write an output folder (of run, compare, readjudicate, reconcile, …) as an Excel workbook.

    One sheet for summary.json, then one per table. Amounts are numbers with
    two decimals (#,##0.00), dates are Excel dates, so finance staff can sum
    and filter them directly. A workbook is written cell by cell: for a large
    run pick the tables you need with --table (lines.parquet of millions of
    lines takes minutes and many sheets).

    \b
    Example:
      adjudicate run --inputs data/ --policy prefecture-employee --out result/
      adjudicate export result/ --xlsx result.xlsx
      adjudicate export result/ --xlsx claims.xlsx --table settlements
    """
    from ..export import export_xlsx, tables_of

    with errors():
        out = Path(target)
        if out.suffix.lower() != ".xlsx":
            raise click.BadParameter(f"{target!r} should end in .xlsx", param_hint="--xlsx")
        if out.exists() and not overwrite:
            raise InputError("exists; pass --overwrite to replace it", out)
        names = list(tables) or ["summary", *(p.stem for p in tables_of(Path(folder)))]
        progress = Progress(quiet, "exporting", [n for n in names if n != "summary"] or ["summary"])
        try:
            written = export_xlsx(Path(folder), out, split=split, tables=tables, progress=progress)
        finally:
            progress.close()
        log_event("summary", xlsx=str(out), rows=written)
        if not quiet:
            click.echo(f"wrote {out}: " + ", ".join(f"{k} {n:,} rows" for k, n in written.items()))
