"""Command-line plumbing shared by every command: exit codes, progress, input options.

Every command module of this package uses it; ``cli/__init__.py`` only
registers the commands.
Exit status (contract §5): 0 success, 2 usage or input error (one paragraph,
no traceback), 1 internal error.
"""
from __future__ import annotations

import errno
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from typing import Iterator, Sequence

import click

from .. import outdir
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
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EMFILE,
                      errno.ENFILE, errno.ENAMETOOLONG, errno.EBUSY}
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
    while e is not None and id(e) not in seen:
        if isinstance(e, (KeyboardInterrupt, Terminated)):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


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
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            click.echo(f"error: the system refused a read or write: {reason}{where}; {outdir.on_disk()}. "
                       "Free space or fix the permissions, then run again.", err=True)
            sys.exit(2)
        click.echo(f"internal error: {type(e).__name__}: {e}\n"
                   "This is a bug in adjudicate; please report it with the traceback below.", err=True)
        traceback.print_exc()
        sys.exit(1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def check_out(out, *inputs) -> None:
    """Refuse (exit 2) an --out the command may not replace, before anything is read (outdir.check_out).

    ``inputs`` are the command's input options (each a path or a tuple of paths, or None).
    """
    paths = []
    for group in inputs:
        if group is None:
            continue
        paths.extend([group] if isinstance(group, (str, bytes)) or hasattr(group, "__fspath__") else group)
    outdir.check_out(out, paths)


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


__all__ = ["CLICK_SETTINGS", "STAGES", "Progress", "check_out", "environment_error", "errors", "group_digits",
           "inputs_options"]
