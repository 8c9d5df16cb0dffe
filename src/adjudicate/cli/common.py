"""Command-line plumbing shared by every command: exit codes, progress, input options.

Every command module of this package uses it; ``cli/__init__.py`` only
registers the commands.
Exit status (contract §5): 0 success, 2 usage or input error (one paragraph,
no traceback), 1 internal error.
"""
from __future__ import annotations

import codecs
import datetime as dt
import functools
import json
import os
import sys
import time
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Sequence

import click

from ..inputs import InputError, csv_encoding
from ..money import group_digits
from ..policy import PolicyError

CLICK_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
STAGES = ("read", "encode", "kernel", "allocate", "write")


class JsonLog:
    """``--log-file``: one JSON object per line for nightly jobs (start, each stage, counts, end)."""

    def __init__(self, path: Path, command: str):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the command's wrapper
        self.command = command
        self.t0 = time.perf_counter()

    def write(self, event: str, **fields) -> None:
        record = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                  "command": self.command, "pid": os.getpid(), "event": event, **fields}
        self.file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.file.flush()

    def close(self, status: int) -> None:
        self.write("end", exit_status=status, seconds=round(time.perf_counter() - self.t0, 4))
        self.file.close()


LOG: ContextVar[JsonLog | None] = ContextVar("log", default=None)


def log_event(event: str, **fields) -> None:
    """Write a record to the --log-file of the running command, if there is one."""
    log = LOG.get()
    if log is not None:
        log.write(event, **fields)


def with_log_file(f):
    """``--log-file FILE``: append JSON lines (one per stage, with timings and counts) to FILE."""
    @functools.wraps(f)
    def wrapper(*args, log_file: str | None = None, **kw):
        if log_file is None:
            return f(*args, **kw)
        ctx = click.get_current_context()
        try:
            log = JsonLog(Path(log_file), ctx.command_path.split(" ", 1)[-1])
        except OSError as e:
            raise click.BadParameter(f"cannot open {log_file}: {e.strerror or e}", param_hint="--log-file")
        log.write("start", argv=sys.argv[1:])
        token = LOG.set(log)
        status = 0
        try:
            return f(*args, **kw)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
            raise
        except click.exceptions.Exit as e:
            status = e.exit_code
            raise
        except click.ClickException as e:
            status = e.exit_code
            raise
        except BaseException:
            status = 1
            raise
        finally:
            LOG.reset(token)
            log.close(status)
    option = click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                          help="Append one JSON line per stage (timings, counts) to this file, for nightly jobs.")
    return option(wrapper)


class Progress:
    """Stage progress on a terminal; silent when piped or with --quiet. Each stage is also
    timed into the --log-file, if any (one record when the stage ends)."""

    def __init__(self, quiet: bool, label: str, stages: Sequence[str] = STAGES):
        self.enabled = not quiet and sys.stderr.isatty()
        self.stages = list(stages)
        self.bar = None
        self.current: tuple[str, float] | None = None
        if self.enabled:
            self.bar = click.progressbar(length=len(self.stages), label=label, file=sys.stderr,
                                         item_show_func=lambda s: s, show_eta=False)
            self.bar.__enter__()

    def _end_stage(self) -> None:
        if self.current is not None:
            name, t0 = self.current
            log_event("stage", stage=name, seconds=round(time.perf_counter() - t0, 4))
            self.current = None

    def __call__(self, stage: str) -> None:
        self._end_stage()
        self.current = (stage, time.perf_counter())
        if self.bar is not None and stage in self.stages:
            self.bar.update(1, stage)

    def close(self) -> None:
        self._end_stage()
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


def _check_encoding(ctx, param, value: str | None) -> str | None:
    if value is not None and value.lower() != "auto":
        try:
            codecs.lookup(value)
        except LookupError:
            raise click.BadParameter(f"unknown text encoding {value!r}; use e.g. utf-8, gb18030 or gbk") from None
    return value


encoding_option = click.option(
    "--encoding", default="auto", show_default=True, callback=_check_encoding, metavar="NAME",
    help="Text encoding of CSV inputs: auto (UTF-8, with or without BOM), gb18030, gbk, utf-8, … "
         "Parquet and Arrow files are unaffected.")


def with_encoding(f):
    """``--encoding`` for a command that reads inputs: CSV files are read in it for the whole command."""
    @functools.wraps(f)
    def wrapper(*args, encoding: str = "auto", **kw):
        with csv_encoding(encoding):
            return f(*args, **kw)
    return encoding_option(wrapper)


def with_lang(f):
    """``--lang en|zh``: the language of the command's terminal tables and of its report.html."""
    from ..labels import LANGS, use_lang

    @functools.wraps(f)
    def wrapper(*args, lang: str = "en", **kw):
        with use_lang(lang):
            return f(*args, **kw)
    return click.option("--lang", type=click.Choice(LANGS), default="en", show_default=True,
                        help="Language of the table labels and of report.html (zh: 中文).")(wrapper)


TABLE_OPTIONS = ("claims", "members", "providers", "catalogue")


def inputs_options(f):
    """The four input options (claims, members, providers, catalogue), ``--inputs DIR`` and ``--encoding``.

    ``--inputs DIR`` names a folder holding the four tables, recognised by
    their file names (claims*, members*, providers*, catalogue*); an explicit
    ``--claims`` (etc.) takes precedence for its table.
    """
    @functools.wraps(f)
    def wrapper(*args, inputs_dir: str | None = None, **kw):
        if inputs_dir is not None:
            from ..validate import classify
            with errors():
                found = classify([Path(inputs_dir)])
            for name in TABLE_OPTIONS:
                if not kw.get(name) and name in found:
                    kw[name] = tuple(map(str, found[name]))
        missing = [name for name in TABLE_OPTIONS if not kw.get(name)]
        if missing:
            where = f" (not found in --inputs {inputs_dir})" if inputs_dir else ""
            raise click.UsageError(f"missing {', '.join('--' + m for m in missing)}{where}; "
                                   "give each table, or --inputs DIR for a folder holding all four")
        return f(*args, **kw)

    opts = [
        click.option("--catalogue", "catalogue", multiple=True, type=click.Path(),
                     help="Catalogue file or folder (repeatable)."),
        click.option("--providers", "providers", multiple=True, type=click.Path(),
                     help="Providers file or folder (repeatable)."),
        click.option("--members", "members", multiple=True, type=click.Path(),
                     help="Members file or folder (repeatable)."),
        click.option("--claims", "claims", multiple=True, type=click.Path(),
                     help="Claims file or folder (repeatable; files are one table)."),
        click.option("--inputs", "inputs_dir", type=click.Path(file_okay=False), default=None,
                     help="A folder holding the four tables (claims*, members*, providers*, catalogue*); "
                          "in place of the four options."),
    ]
    g = wrapper
    for o in opts:
        g = o(g)
    return with_encoding(g)


__all__ = ["CLICK_SETTINGS", "STAGES", "Progress", "errors", "group_digits", "inputs_options", "log_event",
           "with_encoding", "with_lang", "with_log_file"]
