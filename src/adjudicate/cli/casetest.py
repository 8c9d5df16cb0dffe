"""``adjudicate test``: run case files (worked examples with expected amounts) through the engine."""

from __future__ import annotations

import json
import sys

import click

from .common import CLICK_SETTINGS, errors, json_option


@click.command("test", context_settings=CLICK_SETTINGS)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option
# not common.quiet_option: here -q keeps the failures and the summary, which are the result
@click.option("-q", "--quiet", is_flag=True, help="Print only the failures and the summary.")
def test(paths, as_json, quiet) -> None:
    """Run case files: each case's claims under its policy, every expected amount compared exactly.

    PATHS are case files or folders of them (*.toml files with a [case] table, searched
    recursively). A malformed case file is reported (named with its key and line) and
    the other files still run. Exit status: 0 when every case passes, 1 when any fails,
    2 when a case file is malformed or a path names no case file.

    \b
    Examples:
      adjudicate test my-cases/
      adjudicate test src/adjudicate/cases/prefecture-employee/worked-example-1.toml
    """
    from ..cases import CaseError, run_paths

    with errors():
        try:
            outcomes, broken = run_paths(paths)
        except CaseError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        failed = [o for o in outcomes if not o.passed]
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {
                            "file": str(o.case.path),
                            "case": o.case.name,
                            "passed": o.passed,
                            "differences": [d.__dict__ for d in o.differences],
                        }
                        for o in outcomes
                    ]
                    + [{"file": str(e.file), "error": str(e), "key": e.key, "line": e.line} for e in broken],
                    ensure_ascii=False,
                    indent=2,
                )
            )
        else:
            for o in outcomes:
                if o.passed and quiet:
                    continue
                click.echo(f"{'ok  ' if o.passed else 'FAIL'} {o.case.path}: {o.case.name}")
                for d in o.differences:
                    where = f"claim {d.claim_id}" + (f" line {d.line_no}" if d.line_no is not None else "")
                    delta = f" ({d.delta})" if d.delta else ""
                    click.echo(f"     {where}: {d.column} expected {d.expected}, got {d.got}{delta}")
            for b in broken:
                click.echo(f"error: {b}", err=True)
            n = sum(len(o.differences) for o in failed)
            click.echo(
                f"{len(outcomes)} case(s): {len(outcomes) - len(failed)} passed, {len(failed)} failed"
                + (f" ({n} difference(s))" if failed else "")
                + (f"; {len(broken)} malformed case file(s) not run" if broken else "")
            )
        sys.exit(2 if broken else 1 if failed else 0)
