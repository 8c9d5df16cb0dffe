"""``adjudicate demo``: the whole flow on the bundled sample, into a folder the user keeps."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import CLICK_SETTINGS, Progress, check_out, errors, quiet_option, with_lang, with_log_file

#: The policy each demo compares its policy with.
OTHER = {"city-employee": "prefecture-employee"}


@click.command(context_settings=CLICK_SETTINGS)
@click.option(
    "--policy",
    "policy_name",
    default="prefecture-employee",
    show_default=True,
    help="Shipped policy name or path to a .toml file.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="adjudicate-demo",
    show_default=True,
    help="The folder to write (replaced if it is an earlier demo).",
)
@quiet_option
@with_lang
@with_log_file
def demo(policy_name, out, quiet) -> None:
    """Run the whole flow on the small sample bundled with adjudicate: run, explain, compare, reconcile.

    Everything goes into one folder you keep (OUT/run, OUT/compare,
    OUT/reconcile, OUT/explain-CLAIM.txt), with OUT/report.html linking the
    reports; at the end it says what to open next.

    \b
    Example:
      adjudicate demo
      adjudicate demo --policy zhenjiang-resident --out demo-zj/ --lang zh
    """
    from ..explain import explain_claim, render, to_json
    from ..outputs import atomic_dir
    from ..reconcile.year_end import reconcile, write
    from ..report import write_report
    from ..sample import sample_dir
    from .run import _run, show_summary
    from .tables import show

    with errors():
        data = sample_dir()
        check_out(out, data)
        files = {n: [str(data / f"{n}.parquet")] for n in ("claims", "members", "providers", "catalogue")}
        other = OTHER.get(policy_name, "city-employee")
        target = Path(out)
        progress = Progress(quiet, "demo", ["run", "explain", "compare", "reconcile"])
        try:
            with atomic_dir(target) as tmp:
                progress("run")
                s = _run(
                    files["claims"],
                    files["members"],
                    files["providers"],
                    files["catalogue"],
                    policy_name=policy_name,
                    out=tmp / "run",
                    threads=None,
                    with_lines=True,
                    quiet=True,
                )
                progress("explain")
                claim = _interesting_claim(tmp / "run")
                report = explain_claim(
                    claim, files["claims"], files["members"], files["providers"], files["catalogue"], policy_name
                )
                (tmp / f"explain-{claim}.json").write_text(to_json(report) + "\n", encoding="utf-8")
                from rich.console import Console

                with open(tmp / f"explain-{claim}.txt", "w", encoding="utf-8") as f:
                    render(report, Console(file=f, width=160, color_system=None), show=show)
                progress("compare")
                from ..compare import run_compare

                cmp, _ = run_compare(
                    files["claims"],
                    files["members"],
                    files["providers"],
                    files["catalogue"],
                    policies=[policy_name, other],
                    overrides=[],
                    out=tmp / "compare",
                )
                progress("reconcile")
                rec = write(
                    reconcile(
                        [str(tmp / "run")],
                        files["providers"],
                        files["members"],
                        income=[str(data / "reconcile" / "income.csv")],
                        opening=[str(data / "reconcile" / "opening.csv")],
                    ),
                    tmp / "reconcile",
                )
                summary = {
                    "demo": {
                        "policy": s["policy"],
                        "compared_with": other,
                        "explained_claim": claim,
                        "sample": str(data),
                    },
                    "counts": s["counts"],
                    "totals": s["totals"],
                    "compare": {"members": {k: cmp["members"][k] for k in ("better_off", "worse_off", "unchanged")}},
                    "reconcile": {"years": rec["years"], "identities_hold": rec["identities_hold"]},
                }
                (tmp / "summary.json").write_text(
                    json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
                )
                write_report(tmp, "demo")
        finally:
            progress.close()
        if not quiet:
            click.echo(f"sample: {data}")
            show_summary(s)
        rows = [
            ("report.html", "start here: links to the reports below"),
            ("run/", "settlements, lines, rejected, summary.json, report.html"),
            (f"explain-{claim}.txt", f"how claim {claim} was paid, step by step (.json beside it)"),
            ("compare/", f"{policy_name} against {other}: per claim, per member, report.html"),
            ("reconcile/", "provider corridor, fund statement, account ledger, report.html"),
        ]
        width = max(len(name) for name, _ in rows) + 2
        click.echo(f"\nwritten to {target}/:")
        for name, what in rows:
            click.echo(f"  {name:<{width}}{what}")
        click.echo(
            "next:\n"
            f"  open {target / 'report.html'} in a browser\n"
            f"  adjudicate export {target / 'run'} --xlsx {target.name}-run.xlsx   # the run for Excel\n"
            f"  adjudicate run --inputs YOUR_FOLDER --policy {policy_name} --out result/"
        )


def _interesting_claim(run: Path) -> str:
    """The inpatient claim with the largest fund payment (a claim with bands, caps and deductibles)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(run / "settlements.parquet", columns=["claim_id", "setting", "fund_pool"])
    inpatient = t.filter(pc.equal(t.column("setting"), "inpatient"))
    t = inpatient if inpatient.num_rows else t
    return t.sort_by([("fund_pool", "descending"), ("claim_id", "ascending")]).column("claim_id")[0].as_py()
