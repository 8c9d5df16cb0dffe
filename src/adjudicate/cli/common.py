"""Command-line plumbing shared by every command: exit codes, progress, input options.

Every command module of this package uses it; ``cli/__init__.py`` only
registers the commands.
Exit status (contract §5): 0 success, 2 usage or input error (one paragraph,
no traceback), 1 internal error.
"""
from __future__ import annotations

import sys
import traceback
from contextlib import contextmanager
from typing import Iterator, Sequence

import click

from ..inputs import InputError
from ..money import group_digits
from ..policy import PolicyError

CLICK_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
STAGES = ("read", "encode", "kernel", "allocate", "write")


class Progress:
    """Stage progress on a terminal; silent when piped or with --quiet."""

    def __init__(self, quiet: bool, label: str, stages: Sequence[str] = STAGES):
        self.enabled = not quiet and sys.stderr.isatty()
        self.stages = list(stages)
        self.bar = None
        if self.enabled:
            self.bar = click.progressbar(length=len(self.stages), label=label, file=sys.stderr,
                                         item_show_func=lambda s: s, show_eta=False)
            self.bar.__enter__()

    def __call__(self, stage: str) -> None:
        if self.bar is not None and stage in self.stages:
            self.bar.update(1, stage)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def errors() -> Iterator[None]:
    """Map failures to the contract's exit codes."""
    try:
        yield
    except (InputError, PolicyError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Exit:
        raise
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted; no output was written", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        click.echo(f"internal error: {type(e).__name__}: {e}\n"
                   "This is a bug in adjudicate; please report it with the traceback below.", err=True)
        traceback.print_exc()
        sys.exit(1)


def inputs_options(f):
    """The four input options of ``run`` (claims, members, providers, catalogue)."""
    opts = [
        click.option("--catalogue", "catalogue", multiple=True, required=True, type=click.Path(),
                     help="Catalogue file or folder (repeatable)."),
        click.option("--providers", "providers", multiple=True, required=True, type=click.Path(),
                     help="Providers file or folder (repeatable)."),
        click.option("--members", "members", multiple=True, required=True, type=click.Path(),
                     help="Members file or folder (repeatable)."),
        click.option("--claims", "claims", multiple=True, required=True, type=click.Path(),
                     help="Claims file or folder (repeatable; files are one table)."),
    ]
    for o in opts:
        f = o(f)
    return f


def inputs_or_dataset_options(f):
    """The four input options, or ``--dataset`` (a folder of ``adjudicate prepare``) in their place.

    The command receives ``claims, members, providers, catalogue, dataset`` and
    calls :func:`check_inputs` first.
    """
    opts = [
        click.option("--dataset", "dataset", type=click.Path(), default=None,
                     help="A prepared dataset (adjudicate prepare) in place of the four inputs."),
        click.option("--catalogue", "catalogue", multiple=True, type=click.Path(),
                     help="Catalogue file or folder (repeatable)."),
        click.option("--providers", "providers", multiple=True, type=click.Path(),
                     help="Providers file or folder (repeatable)."),
        click.option("--members", "members", multiple=True, type=click.Path(),
                     help="Members file or folder (repeatable)."),
        click.option("--claims", "claims", multiple=True, type=click.Path(),
                     help="Claims file or folder (repeatable; files are one table)."),
    ]
    for o in opts:
        f = o(f)
    return f


def check_inputs(claims, members, providers, catalogue, dataset) -> None:
    """Either ``--dataset`` or all four inputs: a usage error (exit 2) otherwise."""
    given = [name for name, v in (("--claims", claims), ("--members", members), ("--providers", providers),
                                  ("--catalogue", catalogue)) if v]
    if dataset is not None and given:
        raise click.UsageError(f"--dataset replaces the four inputs: give either --dataset or "
                               f"--claims/--members/--providers/--catalogue, not both (also given: {', '.join(given)})")
    if dataset is None and len(given) < 4:
        missing = [n for n in ("--claims", "--members", "--providers", "--catalogue") if n not in given]
        raise click.UsageError(f"missing {', '.join(missing)} (or give --dataset, a folder of adjudicate prepare)")


__all__ = ["CLICK_SETTINGS", "STAGES", "Progress", "check_inputs", "errors", "group_digits", "inputs_options",
           "inputs_or_dataset_options"]
