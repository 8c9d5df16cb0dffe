"""The ``adjudicate`` command line (contract §5).

One module per command; this package is the only place that imports click
and rich, so the library (``adjudicate.engine``, ``adjudicate.compare``, …)
is importable without them. Exit status: 0 success, 2 usage or input error
(one paragraph, no traceback), 1 internal error (``common.errors``).
"""

from __future__ import annotations

import click

from .. import __version__
from .audit import audit
from .casetest import test
from .common import CLICK_SETTINGS
from .compare import compare
from .demo import demo
from .explain import explain
from .export import export
from .generate import generate
from .policies import policies
from .prepare import prepare
from .readjudicate import readjudicate
from .reconcile import reconcile
from .run import run
from .sweep import sweep
from .validate import validate


@click.group(context_settings=CLICK_SETTINGS)
@click.version_option(__version__, prog_name="adjudicate")
def main() -> None:
    """Fast, exact claims adjudication for basic medical insurance (基本医疗保险).

    \b
    Start here:
      adjudicate demo                      # the whole flow on the bundled sample
      adjudicate policies                  # the shipped benefit schemes
      adjudicate test my-cases/            # worked examples with expected amounts
      adjudicate generate --members 1000 --year 2024 --seed 1 --out gen/
      adjudicate run --claims gen/claims.parquet --members gen/members.parquet \\
          --providers gen/providers.parquet --catalogue gen/catalogue.parquet \\
          --policy prefecture-employee --out result/
    """


for _command in (
    run,
    demo,
    generate,
    validate,
    policies,
    explain,
    compare,
    readjudicate,
    reconcile,
    test,
    audit,
    export,
    prepare,
    sweep,
):
    main.add_command(_command)

__all__ = ["main"]
