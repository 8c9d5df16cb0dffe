"""The ``adjudicate`` command line (contract §5).

Exit status: 0 success, 2 usage or input error (one paragraph, no traceback),
1 internal error.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import click

from . import __version__
from .clitools import CLICK_SETTINGS, Progress, errors, group_digits, inputs_options
from .compare import compare_command
from .readjudicate import readjudicate_command
from .reconcile import reconcile_command

@click.group(context_settings=CLICK_SETTINGS)
@click.version_option(__version__, prog_name="adjudicate")
def main() -> None:
    """Fast, exact claims adjudication for basic medical insurance (基本医疗保险).

    \b
    Start here:
      adjudicate demo                      # the whole flow on the bundled sample
      adjudicate policies                  # the shipped benefit schemes
      adjudicate generate --members 1000 --year 2024 --seed 1 --out gen/
      adjudicate run --claims gen/claims.parquet --members gen/members.parquet \\
          --providers gen/providers.parquet --catalogue gen/catalogue.parquet \\
          --policy prefecture-employee --out result/
    """


@main.command()
@inputs_options
@click.option("--policy", "policy_name", required=True, help="Shipped policy name or path to a .toml file.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder (replaced atomically).")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Worker threads (default: all cores).")
@click.option("--no-lines", is_flag=True, help="Skip lines.parquet (claim-level output only).")
@click.option("--partitions", type=click.IntRange(0), default=0, show_default=True,
              help="Settle in N member ranges, one in memory at a time (for inputs larger than memory); "
                   "0 chooses from the input size, 1 is all in memory. The result is the same.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary table.")
def run(claims, members, providers, catalogue, policy_name, out, threads, no_lines, partitions, quiet) -> None:
    """Adjudicate claims under a policy and write settlements, lines, rejected and summary.json.

    \b
    Example:
      adjudicate run --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet \\
          --policy prefecture-employee --out result/
    """
    with errors():
        s = _run(claims, members, providers, catalogue, policy_name, Path(out), threads, not no_lines, quiet,
                 partitions)
        if not quiet:
            show_summary(s, Path(out))


def _run(claims, members, providers, catalogue, policy_name, out: Path, threads, with_lines: bool,
         quiet: bool, partitions: int = 1) -> dict:
    from . import policy as P
    from .engine import Timer, adjudicate, read_inputs
    from .inputs import expand_paths
    from .outputs import write_all
    from .stream import auto_partitions, run_streaming

    policy = P.load(policy_name)
    if partitions == 0:
        partitions = auto_partitions(expand_paths(claims, "claims"))
    if partitions > 1:
        progress = Progress(quiet, "adjudicating", [f"partition {k + 1}/{partitions}" for k in range(partitions)])
        try:
            return run_streaming(claims, members, providers, catalogue, policy, out, partitions, threads,
                                 with_lines, progress)
        finally:
            progress.close()
    progress = Progress(quiet, "adjudicating")
    timer = Timer()
    try:
        progress("read")
        with timer("read"):
            inputs = read_inputs(claims, members, providers, catalogue)
        result = adjudicate(inputs, policy, threads=threads, timer=timer, progress=progress, line_funds=with_lines)
        progress("write")
        s = write_all(result, out, inputs.digests(), inputs.claims.rows, with_lines=with_lines)
    finally:
        progress.close()
    return s


def show_summary(s: dict, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    c = s["counts"]
    head = Table(title=f"adjudicate · {s['policy']['name']} {s['policy']['version']}", show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("input lines", f"{c['input_lines']:,}")
    head.add_row("input claims", f"{c['input_claims']:,}")
    head.add_row("settled claims", f"{c['settled_claims']:,}")
    head.add_row("rejected claims", f"{c['rejected_claims']:,}")
    for reason, n in c["rejected_by_reason"].items():
        if n:
            head.add_row(f"  {reason}", f"{n:,}")
    console.print(head)
    money = Table(title="totals (yuan)")
    money.add_column("amount")
    money.add_column("yuan", justify="right")
    for k, v in s["totals"].items():
        money.add_row(k, group_digits(v))
    console.print(money)
    t = s.get("timings_seconds", {})
    if t:
        console.print("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    if out is not None:
        console.print(f"written to {out}/ (settlements.parquet, lines.parquet, rejected.parquet, summary.json)")


@main.command()
@click.option("--policy", "policy_name", default="prefecture-employee", show_default=True,
              help="Shipped policy name or path to a .toml file.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Keep the outputs here (default: a temporary folder).")
def demo(policy_name, out) -> None:
    """Run the whole flow on the small sample bundled with adjudicate, and print a summary.

    \b
    Example:
      adjudicate demo
      adjudicate demo --policy zhenjiang-resident --out demo-out/
    """
    from .sample import sample_dir

    with errors():
        d = sample_dir()
        files = {n: [str(d / f"{n}.parquet")] for n in ("claims", "members", "providers", "catalogue")}
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(out) if out else Path(tmp) / "out"
            s = _run(files["claims"], files["members"], files["providers"], files["catalogue"], policy_name,
                     target, None, True, False)
            click.echo(f"sample: {d}")
            show_summary(s, Path(out) if out else None)


@main.command()
@click.option("--members", "n_members", type=click.IntRange(1), required=True, help="Number of insured members.")
@click.option("--year", type=click.IntRange(1990, 2100), required=True, help="Benefit year of the claims.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same data).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--bad-rows", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of claims made invalid (they must be rejected).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "feather", "csv"]), default="parquet",
              show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def generate(n_members, year, seed, out, bad_rows, fmt, quiet) -> None:
    """Write a realistic synthetic data set: claims, members, providers, catalogue.

    \b
    Example:
      adjudicate generate --members 20000 --year 2024 --seed 7 --out gen/
      adjudicate generate --members 500 --year 2024 --seed 1 --bad-rows 0.02 --out bad/
    """
    from .generate import generate_tables, write_dataset
    from .outputs import atomic_dir

    with errors():
        t0 = time.perf_counter()
        tables = generate_tables(n_members, year, seed, bad_rows=bad_rows)
        with atomic_dir(Path(out)) as tmp:
            write_dataset(tables, tmp, fmt)
        if not quiet:
            click.echo(f"wrote {out}/: " + ", ".join(f"{k} {v.num_rows:,} rows" for k, v in tables.items())
                       + f" in {time.perf_counter() - t0:.1f}s")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
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
    from .validate import validate_paths

    with errors():
        problems = validate_paths([Path(p) for p in inputs])
        for p in problems:
            click.echo(p)
        if problems:
            sys.exit(2)
        click.echo("ok: no problems found")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def policies(as_json) -> None:
    """List the shipped policies (use a name, or a path to your own .toml, with --policy).

    \b
    Example:
      adjudicate policies
    """
    from . import policy as P

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
        t = Table(title="shipped policies")
        for col in ("name", "version", "title", "source"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], r["version"], r["title"], r["source"])
        Console().print(t)


@main.command()
@click.argument("claim_id")
@inputs_options
@click.option("--policy", "policy_name", required=True, help="Shipped policy name or path to a .toml file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain(claim_id, claims, members, providers, catalogue, policy_name, as_json) -> None:
    """Print the step-by-step calculation of one claim, with the policy key behind each number.

    Only the claim's member is settled (its year so far counts; other members do not).

    \b
    Example:
      adjudicate explain C0000042 --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet --policy prefecture-employee
    """
    from .explain import explain_claim, render, to_json

    with errors():
        report = explain_claim(claim_id, claims, members, providers, catalogue, policy_name)
        if as_json:
            click.echo(to_json(report))
        else:
            render(report)


main.add_command(compare_command, "compare")
main.add_command(readjudicate_command, "readjudicate")
main.add_command(reconcile_command, "reconcile")


if __name__ == "__main__":  # pragma: no cover
    main()
