"""``adjudicate run`` and ``adjudicate demo``: adjudicate and show the summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import click

from . import started
from .common import (
    CLICK_SETTINGS,
    Progress,
    audit_rules_option,
    check_out,
    errors,
    group_digits,
    inputs_or_dataset_options,
    log_event,
    out_option,
    partitions_option,
    policy_option,
    quiet_option,
    threads_option,
    with_keep,
    with_lang,
    with_log_file,
)


@click.command(context_settings=CLICK_SETTINGS)
@inputs_or_dataset_options
@policy_option
@out_option
@threads_option
@click.option("--no-lines", is_flag=True, help="Skip lines.parquet (claim-level output only).")
@partitions_option
@click.option(
    "--audit",
    "with_audit",
    is_flag=True,
    help="Also write flags.parquet and indicators.parquet (as `adjudicate audit`, rules from --rules), in "
    "the same pass (streaming runs too, range by range).",
)
@audit_rules_option
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="local: this machine; spark: Apache Spark (pip install 'adjudicate[spark]'), same result.",
)
@click.option(
    "--spark-master",
    default=None,
    metavar="URL",
    help="Spark master for --engine spark (default: spark-submit's, else local[*]).",
)
@quiet_option
@with_lang
@with_log_file
@with_keep
def run(
    claims,
    members,
    providers,
    catalogue,
    dataset,
    policy_name,
    out,
    threads,
    no_lines,
    partitions,
    with_audit,
    rules_file,
    engine,
    spark_master,
    quiet,
) -> None:
    """Adjudicate claims under a policy and write settlements, lines, rejected and summary.json.

    \b
    Example:
      adjudicate run --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet \\
          --policy prefecture-employee --out result/
      adjudicate run … --audit --out result/      # plus flags.parquet, indicators.parquet
      adjudicate run … --keep 结算流水号 --keep 科室编码 --out result/   # your own claims columns through
    \b
      # from a prepared dataset (adjudicate prepare): no decoding
      adjudicate run --dataset ds/ --policy prefecture-employee --out result/
    \b
      # on Apache Spark (pip install "adjudicate[spark]")
      adjudicate run --engine spark --spark-master 'local[4]' --claims claims/ ... --out result/
    """
    if rules_file and not with_audit:
        raise click.UsageError("--rules is the audit rules file: give it with --audit")
    if with_audit and engine == "spark":
        raise click.UsageError("--audit runs with the local engine only (not yet with --engine spark)")
    with errors():
        if dataset is not None and partitions > 1:
            raise click.UsageError("--partitions applies to input files; a --dataset is memory-mapped whole")
        if dataset is not None and engine == "spark":
            raise click.UsageError(
                "--engine spark reads the input files (Spark distributes them); a --dataset is for the local engine"
            )
        check_out(out, claims, members, providers, catalogue, dataset)
        if engine == "spark":
            s = _run_spark(
                claims,
                members,
                providers,
                catalogue,
                policy_name=policy_name,
                out=Path(out),
                with_lines=not no_lines,
                quiet=quiet,
                master=spark_master,
            )
            if not quiet:
                show_summary(s, Path(out))
            return
        s = _run(
            claims,
            members,
            providers,
            catalogue,
            policy_name=policy_name,
            out=Path(out),
            threads=threads,
            with_lines=not no_lines,
            quiet=quiet,
            partitions=partitions,
            dataset=dataset,
            audit_rules=(rules_file or True) if with_audit else None,
        )
        if not quiet:
            show_summary(s, Path(out))
            if "audit" in s:
                from .audit import show_audit

                show_audit(s["audit"])


def _run(
    claims,
    members,
    providers,
    catalogue,
    *,
    policy_name: str,
    out: Path,
    threads: int | None,
    with_lines: bool,
    quiet: bool,
    partitions: int = 1,
    dataset: str | None = None,
    audit_rules: str | Literal[True] | None = None,
) -> dict:
    """``audit_rules``: None for no audit, True for the shipped rules, else a rules file."""
    from .. import policy as P
    from ..engine import Timer, adjudicate, read_inputs, settle
    from ..inputs import expand_paths
    from ..outputs import write_all
    from ..stream import auto_partitions, run_streaming

    policy = P.load(policy_name)
    rules = None
    if audit_rules is not None:
        from ..audit import load_audit_rules

        rules = load_audit_rules(None if audit_rules is True else audit_rules)
    if partitions == 0 and dataset is None:
        partitions = auto_partitions(expand_paths(claims, "claims"))
    if partitions > 1:
        progress = Progress(quiet, "adjudicating", [f"partition {k + 1}/{partitions}" for k in range(partitions)])
        try:
            audit = None
            if rules is not None:
                from ..audit import StreamingAudit

                audit = StreamingAudit(rules, threads)
            s = run_streaming(
                claims,
                members,
                providers,
                catalogue,
                policy,
                out,
                partitions,
                threads,
                with_lines,
                progress,
                audit=audit,
            )
        finally:
            progress.close()
        log_event("summary", out=str(out), counts=s["counts"], totals=s["totals"])
        return s
    progress = Progress(quiet, "adjudicating")
    timer = Timer()
    timer.t["startup"] = time.perf_counter() - started()  # imports, options, policy, --out checks
    try:
        progress("read")
        extra = {}
        if dataset is not None:
            from ..dataset import open_dataset, provenance

            with timer("read"):
                prep = open_dataset(Path(dataset))
            inputs = prep.inputs
            result = settle(prep, policy, threads=threads, timer=timer, progress=progress, line_funds=with_lines)
            digests, input_lines = prep.digests, prep.input_lines
            extra["dataset"] = lambda tmp: provenance(Path(dataset), policy)
        else:
            with timer("read"):
                inputs = read_inputs(claims, members, providers, catalogue)
            result = adjudicate(inputs, policy, threads=threads, timer=timer, progress=progress, line_funds=with_lines)
            digests, input_lines = inputs.digests(), inputs.claims.rows
        if rules is not None:
            from ..audit import run_audit, write_audit

            with timer("audit"):
                a = run_audit(result, inputs, rules, threads)
            extra["audit"] = lambda tmp: write_audit(a, tmp)
        progress("write")
        s = write_all(result, out, digests, input_lines, with_lines=with_lines, extra=extra, threads=threads)
    finally:
        progress.close()
    log_event("summary", out=str(out), counts=s["counts"], totals=s["totals"])
    return s


def _run_spark(
    claims,
    members,
    providers,
    catalogue,
    *,
    policy_name: str,
    out: Path,
    with_lines: bool,
    quiet: bool,
    master: str | None,
) -> dict:
    from .. import policy as P

    try:
        from ..spark.files import run_files
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("pyspark", "py4j"):
            raise
        raise click.UsageError(f"--engine spark needs pyspark: pip install 'adjudicate[spark]' ({e})") from None
    policy = P.load(policy_name)
    progress = Progress(quiet, "adjudicating on Spark", ["start", "read", "settle", "write"])
    try:
        return run_files(claims, members, providers, catalogue, policy, out, with_lines, master, progress=progress)
    finally:
        progress.close()


def show_summary(s: dict, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..labels import column, t
    from .tables import show

    console = Console()
    c = s["counts"]
    head = Table(title=f"adjudicate · {s['policy']['name']} {s['policy']['version']}", show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    for k in ("input_lines", "input_claims", "settled_claims", "rejected_claims"):
        head.add_row(t(k), f"{c[k]:,}")
    for reason, n in c["rejected_by_reason"].items():
        if n:
            head.add_row(f"  {column(reason)}", f"{n:,}")
    show(console, head, wrap=[0])
    money = Table(title=t("totals"))
    money.add_column(t("amount"))
    money.add_column(t("yuan"), justify="right")
    for k, v in s["totals"].items():
        money.add_row(column(k), group_digits(v))
    show(console, money)
    timings = s.get("timings_seconds", {})
    if timings:
        console.print("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    if out is not None:
        console.print(
            f"written to {out}/ (settlements.parquet, lines.parquet, rejected.parquet, summary.json, report.html)",
            highlight=False,
        )
