"""Command-line plumbing shared by every command: exit codes, progress, input options.

Every command module of this package uses it; ``cli/__init__.py`` only
registers the commands.
Exit status (contract §5): 0 success, 2 usage or input error (one paragraph,
no traceback), 1 internal error.
"""

from __future__ import annotations

import codecs
import datetime as dt
import errno
import functools
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import click

from .. import outdir
from ..errors import InputError, PolicyError

CLICK_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
STAGES = ("read", "encode", "kernel", "allocate", "write")


class JsonLog:
    """``--log-file``: one JSON object per line for nightly jobs (start, each stage, counts, end)."""

    def __init__(self, path: Path, command: str):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the command's wrapper
        self.command = command
        self.t0 = time.perf_counter()

    def write(self, event: str, **fields) -> None:
        record = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "command": self.command,
            "pid": os.getpid(),
            "event": event,
            **fields,
        }
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
    """``--log-file FILE``: append JSON lines (one per stage, with timings and counts) to FILE.

    Every command that works on data has this option, so its wrapper is also where such a
    command runs without pyarrow importing pandas (lazy_pandas; not with --engine spark)."""

    @functools.wraps(f)
    def wrapper(*args, log_file: str | None = None, **kw):
        if kw.get("engine") == "spark":
            return _logged(f, log_file, args, kw)
        from ..lazy_pandas import pandas_unused

        with pandas_unused():
            return _logged(f, log_file, args, kw)

    option = click.option(
        "--log-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Append one JSON line per stage (timings, counts) to this file, for nightly jobs.",
    )
    return option(wrapper)


def _logged(f, log_file: str | None, args: tuple, kw: dict):
    """``f(*args, **kw)``, with its start, stages and end written to ``log_file`` (if any)."""
    if log_file is None:
        return f(*args, **kw)
    ctx = click.get_current_context()
    try:
        log = JsonLog(Path(log_file), ctx.command_path.split(" ", 1)[-1])
    except OSError as e:
        raise click.BadParameter(f"cannot open {log_file}: {e.strerror or e}", param_hint="--log-file") from None
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


class Progress:
    """Stage progress on a terminal; silent when piped or with --quiet. Each stage is also
    timed into the --log-file, if any (one record when the stage ends)."""

    def __init__(self, quiet: bool, label: str, stages: Sequence[str] = STAGES):
        self.enabled = not quiet and sys.stderr.isatty()
        self.stages = list(stages)
        self.bar = None
        self.current: tuple[str, float] | None = None
        if self.enabled:
            self.bar = click.progressbar(
                length=len(self.stages), label=label, file=sys.stderr, item_show_func=lambda s: s, show_eta=False
            )
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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so temporary folders are removed on the way out."""


def _on_signal(signum, frame) -> None:
    """SIGINT and SIGTERM: raised in the main thread, unless an output is being swapped into place
    (then the signal is raised again just after, so the message can say the output is there)."""
    if outdir.defer_signal(signum):
        return
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt


#: OSErrors of the machine, not of adjudicate: a message and exit 2, no traceback.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.EMFILE,
    errno.ENFILE,
    errno.ENAMETOOLONG,
    errno.EBUSY,
}
_ENVIRONMENT_TEXTS = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied")


def environment_error(e: BaseException) -> str | None:
    """The reason, when ``e`` is the machine's (full disk, no permission, …) rather than a bug."""
    if not isinstance(e, OSError):
        return None
    if e.errno in ENVIRONMENT_ERRNOS:
        return e.strerror or str(e)
    text = str(e)  # Arrow's IO errors carry the errno in their text only
    return next((t for t in _ENVIRONMENT_TEXTS if t in text), None)


def _interruption_behind(e: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or Terminated that ``e`` was raised while handling, if any."""
    seen = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            return cause
        seen.add(id(cause))
        cause = cause.__context__
    return None


def group_digits(v: str) -> str:
    """money.group_digits, imported when first used (money imports pyarrow)."""
    from ..money import group_digits

    return group_digits(v)


@contextmanager
def errors() -> Iterator[None]:
    """Map failures to the contract's exit codes, and say what is on disk after an interruption."""
    outdir.begin_command()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        outdir.set_command(ctx.command_path)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
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
        click.echo(f"interrupted; {outdir.on_disk()}", err=True)
        sys.exit(130)
    except Terminated:
        click.echo(f"terminated (SIGTERM); {outdir.on_disk()}", err=True)
        sys.exit(128 + signal.SIGTERM)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        signal_seen = _interruption_behind(e)
        if signal_seen is not None:  # the signal broke what it interrupted (a lock, a file descriptor)
            interrupted = isinstance(signal_seen, KeyboardInterrupt)
            click.echo(f"{'interrupted' if interrupted else 'terminated (SIGTERM)'}; {outdir.on_disk()}", err=True)
            sys.exit(130 if interrupted else 128 + signal.SIGTERM)
        reason = environment_error(e)
        if reason is not None:
            filename = getattr(e, "filename", None)
            where = f" ({filename})" if filename else ""
            click.echo(
                f"error: the system refused a read or write: {reason}{where}; {outdir.on_disk()}. "
                "Free space or fix the permissions, then run again.",
                err=True,
            )
            sys.exit(2)
        click.echo(
            f"internal error: {type(e).__name__}: {e}\n"
            "This is a bug in adjudicate; please report it with the traceback below.",
            err=True,
        )
        traceback.print_exc()
        sys.exit(1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def check_out(out, *inputs) -> None:
    """Refuse (exit 2) an --out the command may not replace, before anything is read (outdir.check_out).

    ``inputs`` are the command's input options (each a path or a tuple of paths, or None).
    """
    paths: list[Any] = []
    for group in inputs:
        if group is None:
            continue
        paths.extend([group] if isinstance(group, (str, bytes)) or hasattr(group, "__fspath__") else group)
    outdir.check_out(out, paths)


def _check_encoding(ctx, param, value: str | None) -> str | None:
    if value is not None and value.lower() != "auto":
        try:
            codecs.lookup(value)
        except LookupError:
            raise click.BadParameter(f"unknown text encoding {value!r}; use e.g. utf-8, gb18030 or gbk") from None
    return value


encoding_option = click.option(
    "--encoding",
    default="auto",
    show_default=True,
    callback=_check_encoding,
    metavar="NAME",
    help="Text encoding of CSV inputs: auto (UTF-8, with or without BOM), gb18030, gbk, utf-8, … "
    "Parquet and Arrow files are unaffected.",
)


def with_encoding(f):
    """``--encoding`` for a command that reads inputs: CSV files are read in it for the whole command."""

    @functools.wraps(f)
    def wrapper(*args, encoding: str = "auto", **kw):
        from ..inputs import csv_encoding

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

    return click.option(
        "--lang",
        type=click.Choice(LANGS),
        default="en",
        show_default=True,
        help="Language of the table labels and of report.html (zh: 中文).",
    )(wrapper)


def with_keep(f):
    """``--keep COLUMN`` (repeatable): an agency's own claims columns passed through to the per-claim
    and per-line outputs (keep.py). Refused, exit 2, with --engine spark; a --dataset must have been
    prepared with the same columns (dataset.open_dataset says so otherwise)."""

    @functools.wraps(f)
    def wrapper(*args, keep: tuple[str, ...] = (), **kw):
        if not keep:
            return f(*args, **kw)
        from ..keep import check_names, keeping

        flags = " ".join(f"--keep {k}" for k in keep)
        if kw.get("engine") == "spark":
            raise click.UsageError(f"{flags}: --engine spark does not pass columns through yet; use --engine local")
        try:
            check_names(keep)
        except InputError as e:
            raise click.UsageError(str(e)) from None
        with keeping(keep):
            return f(*args, **kw)

    return click.option(
        "--keep",
        "keep",
        multiple=True,
        metavar="COLUMN",
        help="An extra column of the claims table to pass through (repeatable), e.g. a settlement serial "
        "number: to lines.parquet per line, to the per-claim outputs (null when a claim's lines differ) "
        "and to rejected.parquet. With --dataset: a column it was prepared with (prepare --keep).",
    )(wrapper)


TABLE_OPTIONS = ("claims", "members", "providers", "catalogue")


def inputs_options(f, dataset: bool = False):
    """The four input options (claims, members, providers, catalogue), ``--inputs DIR`` and ``--encoding``.

    ``--inputs DIR`` names a folder holding the four tables, recognised by
    their file names (claims*, members*, providers*, catalogue*); an explicit
    ``--claims`` (etc.) takes precedence for its table. With ``dataset``, also
    ``--dataset DIR`` (a folder of ``adjudicate prepare``) in place of all of
    them; the command then receives ``dataset`` too (None without it).
    """

    @functools.wraps(f)
    def wrapper(*args, inputs_dir: str | None = None, **kw):
        if kw.get("dataset") is not None:
            given = [f"--{n}" for n in TABLE_OPTIONS if kw.get(n)] + (["--inputs"] if inputs_dir else [])
            if given:
                raise click.UsageError(
                    f"--dataset replaces the four inputs: give either --dataset or the inputs, "
                    f"not both (also given: {', '.join(given)})"
                )
            return f(*args, **kw)
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
            raise click.UsageError(
                f"missing {', '.join('--' + m for m in missing)}{where}; "
                "give each table, or --inputs DIR for a folder holding all four"
                + (", or --dataset DIR (adjudicate prepare)" if dataset else "")
            )
        return f(*args, **kw)

    opts = [
        click.option(
            "--catalogue", "catalogue", multiple=True, type=click.Path(), help="Catalogue file or folder (repeatable)."
        ),
        click.option(
            "--providers", "providers", multiple=True, type=click.Path(), help="Providers file or folder (repeatable)."
        ),
        click.option(
            "--members", "members", multiple=True, type=click.Path(), help="Members file or folder (repeatable)."
        ),
        click.option(
            "--claims",
            "claims",
            multiple=True,
            type=click.Path(),
            help="Claims file or folder (repeatable; files are one table).",
        ),
        click.option(
            "--inputs",
            "inputs_dir",
            type=click.Path(file_okay=False),
            default=None,
            help="A folder holding the four tables (claims*, members*, providers*, catalogue*); "
            "in place of the four options.",
        ),
    ]
    if dataset:
        opts.append(
            click.option(
                "--dataset",
                "dataset",
                type=click.Path(),
                default=None,
                help="A prepared dataset (adjudicate prepare) in place of the inputs.",
            )
        )
    g = wrapper
    for o in opts:
        g = o(g)
    return with_encoding(g)


#: ``--out`` of every command that writes an output folder (outdir.atomic_dir replaces it whole).
out_option = click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Output folder (replaced atomically)."
)


def _limit_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--threads N``: the whole command on at most N threads (threads.limited), until it ends."""
    if value is not None:
        from ..threads import limited

        ctx.with_resource(limited(value))
    return value


#: ``--threads`` of every command that runs the kernel: the whole command follows it (threads.py).
threads_option = click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    callback=_limit_threads,
    help="Threads the whole command may use (default: all cores): reading, encoding, the settlement "
    "kernel and writing, Arrow's own pools included. 1 runs everything on one thread, for one core of "
    "a shared server. The outputs are the same.",
)
#: ``--partitions`` of every command that can settle in member ranges (stream.py).
partitions_option = click.option(
    "--partitions",
    type=click.IntRange(0, 32766),  # the partition pass routes to at most 32,766 ranges (_partition.MAX_PARTS)
    default=0,
    show_default=True,
    help="Settle in N member ranges, one in memory at a time (for inputs larger than memory); "
    "0 chooses from the input size, 1 is all in memory. The outputs are the same.",
)
#: ``--rules`` of the commands that audit (audit, run --audit).
audit_rules_option = click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Audit rules file (default: the shipped, seed-cited audit-rules.toml).",
)
#: ``-q/--quiet`` of every command that shows progress and a summary.
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
#: ``--json`` of every command that prints a result a program may read.
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
#: ``--policy`` of the commands that settle under one policy.
policy_option = click.option(
    "--policy", "policy_name", required=True, help="Shipped policy name or path to a .toml file."
)


def inputs_or_dataset_options(f):
    """:func:`inputs_options` with ``--dataset DIR`` in place of the inputs (run, compare, sweep, …)."""
    return inputs_options(f, dataset=True)


__all__ = [
    "CLICK_SETTINGS",
    "STAGES",
    "Progress",
    "audit_rules_option",
    "check_out",
    "environment_error",
    "errors",
    "group_digits",
    "inputs_options",
    "inputs_or_dataset_options",
    "json_option",
    "log_event",
    "out_option",
    "partitions_option",
    "policy_option",
    "quiet_option",
    "threads_option",
    "with_encoding",
    "with_keep",
    "with_lang",
    "with_log_file",
]
