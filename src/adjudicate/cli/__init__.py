"""The ``adjudicate`` command line (contract §5).

One module per command; this package is the only place that imports click
and rich, so the library (``adjudicate.engine``, ``adjudicate.compare``, …)
is importable without them. Exit status: 0 success, 2 usage or input error
(one paragraph, no traceback), 1 internal error (``common.errors``).

Commands are imported on first use (:class:`LazyCommands`), and every module
here imports the library (numpy, pyarrow, …) inside the functions that need
it: ``adjudicate --version`` and ``--help`` load neither, and each command
loads only what it runs (tests/test_cli_startup.py keeps it so).
"""

from __future__ import annotations

import time

#: When the command line began to load: summary.json's ``startup`` counts from here (see started()).
STARTED = time.perf_counter()
_invoked: list[float] = []

import importlib  # noqa: E402 - after STARTED, which times the imports too
from collections.abc import Iterator, MutableMapping  # noqa: E402

import click  # noqa: E402

from .. import __version__  # noqa: E402
from .common import CLICK_SETTINGS  # noqa: E402

#: Command name → "module:attribute" of this package, imported when the command is first used.
COMMANDS = {
    "run": "run:run",
    "demo": "demo:demo",
    "generate": "generate:generate",
    "validate": "validate:validate",
    "policies": "policies:policies",
    "explain": "explain:explain",
    "compare": "compare:compare",
    "readjudicate": "readjudicate:readjudicate",
    "reconcile": "reconcile:reconcile",
    "test": "casetest:test",
    "audit": "audit:audit",
    "export": "export:export",
    "prepare": "prepare:prepare",
    "sweep": "sweep:sweep",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's command table that imports a command's module when the command is looked up;
    its names are known without importing anything."""

    def __init__(self, specs: dict[str, str]):
        self._items: dict[str, str | click.Command] = dict(specs)

    def __getitem__(self, name: str) -> click.Command:
        item = self._items[name]
        if isinstance(item, str):
            module, attr = item.split(":")
            item = self._items[name] = getattr(importlib.import_module(f".{module}", __name__), attr)
        return item

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._items[name] = command

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@click.group(context_settings=CLICK_SETTINGS, commands=LazyCommands(COMMANDS))
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
    _invoked.append(time.perf_counter())
    from ..heap import keep_arrow_memory, reuse_freed_memory

    reuse_freed_memory()  # a command's stages reuse each other's freed arrays (docs/memory.md)
    keep_arrow_memory()  # Arrow's freed pages too (before pyarrow loads; docs/memory.md)


def started() -> float:
    """When this command began: the first in a process from the import of this package; a later
    one (a test, a Python caller invoking ``main`` again) from its own invocation."""
    return STARTED if len(_invoked) <= 1 else _invoked[-1]


__all__ = ["main"]
