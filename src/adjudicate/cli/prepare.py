"""``adjudicate prepare``: read, check and encode the inputs once, into a dataset folder."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    CLICK_SETTINGS,
    Progress,
    check_out,
    errors,
    quiet_option,
    threads_option,
    with_encoding,
    with_keep,
    with_lang,
    with_log_file,
)


@click.command("prepare", context_settings=CLICK_SETTINGS)
@click.option(
    "--claims",
    "claims",
    multiple=True,
    type=click.Path(),
    help="Claims file or folder (repeatable; files are one table).",
)
@click.option("--members", "members", multiple=True, type=click.Path(), help="Members file or folder (repeatable).")
@click.option(
    "--providers", "providers", multiple=True, type=click.Path(), help="Providers file or folder (repeatable)."
)
@click.option(
    "--catalogue", "catalogue", multiple=True, type=click.Path(), help="Catalogue file or folder (repeatable)."
)
@click.option(
    "--inputs",
    "inputs_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="A folder holding the four tables (claims*, members*, providers*, catalogue*); in place of the four options.",
)
@click.option(
    "--dataset",
    "dataset",
    type=click.Path(file_okay=False),
    default=None,
    help="An earlier dataset to correct: give only the members, providers and/or catalogue that "
    "changed; its claims are not read again.",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Dataset folder (replaced atomically).")
@threads_option
@quiet_option
@with_keep
@with_lang
@with_log_file
@with_encoding
def prepare(claims, members, providers, catalogue, inputs_dir, dataset, out, threads, quiet) -> None:
    """Check and encode the inputs once; run, compare, sweep, readjudicate and explain then take --dataset.

    The dataset holds the checked tables and the encoded, policy-free arrays
    (Arrow IPC, memory-mapped when read) and the digests of its sources. It is
    refused (exit 2) once a source file changes, and by another engine version.

    \b
    Examples:
      adjudicate prepare --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet --out ds/
      adjudicate prepare --inputs data/ --out ds/       # a folder holding the four tables
      adjudicate run --dataset ds/ --policy prefecture-employee --out result/
      adjudicate prepare --inputs data/ --keep 结算流水号 --out ds/   # your own column kept
    \b
      # the catalogue was corrected: re-join the lines without reading the claims
      adjudicate prepare --dataset ds/ --catalogue catalogue-fixed.parquet --out ds2/
    """
    from ..dataset import prepare_dataset, rejoin, write_dataset
    from ..engine import Timer

    with errors():
        if inputs_dir is not None:  # as every command's --inputs (common.inputs_options)
            if dataset is not None:
                raise click.UsageError("--inputs prepares anew: give either --inputs or --dataset, not both")
            from ..validate import classify

            found = classify([Path(inputs_dir)])
            given = {"claims": claims, "members": members, "providers": providers, "catalogue": catalogue}
            claims, members, providers, catalogue = (
                given[n] or tuple(map(str, found.get(n, ()))) for n in ("claims", "members", "providers", "catalogue")
            )
        if dataset is not None:
            from ..keep import kept

            if kept():
                raise click.UsageError(
                    "--keep applies when preparing from the claim files; a corrected --dataset keeps the "
                    "columns the earlier one was prepared with"
                )
            if claims:
                raise click.UsageError(
                    "--dataset keeps its claims: give only the corrected --members, "
                    "--providers or --catalogue (or prepare from --claims anew)"
                )
            if not (members or providers or catalogue):
                raise click.UsageError(
                    "give the corrected --members, --providers and/or --catalogue to join to --dataset"
                )
        else:
            missing = [
                n
                for n, v in (
                    ("--claims", claims),
                    ("--members", members),
                    ("--providers", providers),
                    ("--catalogue", catalogue),
                )
                if not v
            ]
            if missing:
                where = f" (not found in --inputs {inputs_dir})" if inputs_dir else ""
                raise click.UsageError(
                    f"missing {', '.join(missing)}{where}; or give --dataset to correct an earlier one"
                )
        check_out(out, claims, members, providers, catalogue, dataset)
        progress = Progress(quiet, "preparing", ["read", "encode", "write"])
        timer = Timer()
        try:
            if dataset is None:
                manifest = prepare_dataset(claims, members, providers, catalogue, Path(out), timer, progress)
            else:
                progress("read")
                prep, sources = rejoin(Path(dataset), members, providers, catalogue, timer)
                progress("encode")
                progress("write")
                with timer("write"):
                    manifest = write_dataset(prep, Path(out), sources=sources)
        finally:
            progress.close()
        if not quiet:
            click.echo(
                f"prepared {manifest['input_lines']:,} input lines into {Path(out)}/ "
                f"(time: {', '.join(f'{k} {v:.2f}s' for k, v in timer.t.items())})"
            )
