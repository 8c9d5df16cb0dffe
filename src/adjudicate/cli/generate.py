"""``adjudicate generate``: a realistic synthetic data set."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import CLICK_SETTINGS, Progress, check_out, errors, log_event, out_option, quiet_option, with_log_file


@click.command(context_settings=CLICK_SETTINGS)
@click.option("--members", "n_members", type=click.IntRange(1), required=True, help="Number of insured members.")
@click.option("--year", type=click.IntRange(1990, 2100), required=True, help="Benefit year of the claims.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same data).")
@out_option
@click.option(
    "--bad-rows",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of claims made invalid (they must be rejected).",
)
@click.option("--format", "fmt", type=click.Choice(["parquet", "feather", "csv"]), default="parquet", show_default=True)
@click.option(
    "--order",
    type=click.Choice(["date", "member", "shuffled"]),
    default="date",
    show_default=True,
    help="Row order of claims: date (claims in settlement-date order, each claim's lines together, "
    "as a settlement system exports them), member (each member's claims together) or shuffled "
    "(lines in random order). The rows are the same.",
)
@click.option(
    "--plant-audit",
    is_flag=True,
    help="Plant every audit pattern, with near misses (the truth is in the claims file's metadata "
    "and in audit-planted.json); adds the catalogue's item_kind column.",
)
@quiet_option
@with_log_file
def generate(n_members, year, seed, out, bad_rows, fmt, order, plant_audit, quiet) -> None:
    """Write a realistic synthetic data set: claims, members, providers, catalogue.

    \b
    Example:
      adjudicate generate --members 20000 --year 2024 --seed 7 --out gen/
      adjudicate generate --members 500 --year 2024 --seed 1 --bad-rows 0.02 --out bad/
      adjudicate generate --members 200000 --year 2024 --order shuffled --out big/
      adjudicate generate --members 2000 --year 2024 --seed 1 --plant-audit --out planted/
    """
    from ..generate import generate_tables, write_dataset
    from ..outputs import atomic_dir

    with errors():
        check_out(out)
        t0 = time.perf_counter()
        progress = Progress(quiet, "generating", ["generate", "write"])
        try:
            progress("generate")
            tables = generate_tables(n_members, year, seed, bad_rows=bad_rows, order=order)
            if plant_audit:
                from ..audit.plant import plant_audit as plant

                tables = plant(tables)
            progress("write")
            with atomic_dir(Path(out)) as tmp:
                write_dataset(tables, tmp, fmt)
                if plant_audit:  # the truth also as a file (CSV keeps no metadata)
                    import json

                    from ..audit.plant import planted_cases

                    (tmp / "audit-planted.json").write_text(
                        json.dumps(planted_cases(tables), indent=1) + "\n", encoding="utf-8"
                    )
        finally:
            progress.close()
        log_event("summary", out=out, rows={k: v.num_rows for k, v in tables.items()})
        if not quiet:
            click.echo(
                f"wrote {out}/: "
                + ", ".join(f"{k} {v.num_rows:,} rows" for k, v in tables.items())
                + f" in {time.perf_counter() - t0:.1f}s"
            )
