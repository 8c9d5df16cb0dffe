"""Output folders: where a command may write, and how an earlier output is replaced.

Every command that writes a folder goes through :func:`atomic_dir` (re-exported
by ``outputs``), so these rules hold for all of them (README "Output folders"):

- ``--out`` is resolved first (``.``, ``x/..``, symbolic links). A symbolic
  link is written *through*: its target is replaced and the link is kept, so
  a ``latest -> runs/2024-11`` layout keeps working.
- It may be absent, an empty folder, or an earlier output of ``adjudicate``:
  a folder holding the marker file :data:`MARKER` and nothing the marker does
  not list. Anything else is refused (``InputError``, exit 2) and left as it
  is; so is the root, the current folder or a folder holding it, and a folder
  that is or holds an input of the command (:func:`check_out`, called before
  anything is read).
- The output is built in a temporary folder beside it (``.NAME.tmp-…``) and
  swapped into place in one rename (``renameat2(RENAME_EXCHANGE)`` where the
  system has it). The writing process holds a lock (``flock``) on its
  temporary folder for its whole life, and takes a short lock on the parent
  folder to create it and to swap it in. A later run removes a temporary
  folder only when it can take its lock, that is when its writer is gone:
  no process ids are compared, so runs in other PID namespaces sharing a
  volume are safe, and concurrent runs into one ``--out`` serialize their
  swaps (the last one wins, each output whole).
- What is on disk after an interruption is recorded (:func:`on_disk`) so the
  command line can say it.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, temporary folders are kept
    fcntl = None  # type: ignore[assignment]  # the module or None: every use checks

from . import __version__
from .errors import InputError

#: The file that marks a folder as an output of adjudicate (hidden, so readers
#: of the folder's data files skip it; see inputs.expand_paths).
MARKER = ".adjudicate-output.json"
#: Outputs written before the marker existed: recognised by their summary.json
#: and these names only.
_LEGACY_NAMES = {
    "settlements.parquet",
    "lines.parquet",
    "rejected.parquet",
    "summary.json",
    "compare.parquet",
    "members.parquet",
    "member_changes.parquet",
    "adjustments.parquet",
    "line_adjustments.parquet",
    "current",
    "providers.parquet",
    "provider_settlement.parquet",
    "funds.parquet",
    "funds_monthly.parquet",
    "ledger.parquet",
    "report.html",
    "flags.parquet",
    "indicators.parquet",
}
#: Seconds to wait for another process's swap into the same parent folder.
LOCK_TIMEOUT = 60.0


# ---------------------------------------------------------------------------
# What a folder is
# ---------------------------------------------------------------------------


def resolve_out(out: str | Path) -> Path:
    """The folder ``out`` names: absolute, with '.', '..' and symbolic links resolved."""
    return Path(os.path.realpath(Path(out).expanduser()))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _marker(folder: Path) -> dict | None:
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("files"), list) else None


def _legacy_output(folder: Path, names: set[str]) -> bool:
    if "summary.json" not in names or not names <= _LEGACY_NAMES:
        return False
    try:
        doc = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "adjudicate_version" in doc


def _refuse(given: str | Path, why: str) -> InputError:
    return InputError(f"--out {given} {why}")


def _check_existing(target: Path, given: str | Path) -> bool:
    """Whether ``target`` holds an earlier output (False: absent or empty); InputError if it may not be replaced."""
    if not os.path.lexists(target):
        return False
    if not target.is_dir():
        raise _refuse(given, "exists and is not a folder")
    try:
        names = set(os.listdir(target))
    except OSError as e:
        raise _refuse(given, f"cannot be read: {e.strerror or e}") from None
    if not names:
        return False
    marker = _marker(target)
    if marker is not None:
        foreign = sorted(names - set(marker["files"]) - {MARKER})
        if foreign:
            raise _refuse(
                given,
                f"is an earlier output of adjudicate but also holds {', '.join(foreign[:5])}"
                f"{' …' if len(foreign) > 5 else ''}, which adjudicate did not write; replacing the "
                "folder would delete it. Move it away, or choose another --out",
            )
        return True
    if _legacy_output(target, names):
        return True
    raise _refuse(
        given,
        f"exists and is not an output of adjudicate (it is not empty and has no {MARKER}); "
        "it is left untouched. Choose a new or empty folder",
    )


def check_out(out: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """The resolved ``--out``, or InputError (exit 2) if a command may not replace it.

    Call it before reading anything; ``inputs`` are every file or folder the
    command reads (an output replaces its whole folder, so none may lie in it).
    """
    target = resolve_out(out)
    if target.parent == target:
        raise _refuse(out, "is the root folder; give a folder for the outputs, e.g. --out result/")
    cwd = resolve_out(os.getcwd())
    if _within(cwd, target):
        raise _refuse(
            out,
            f"is {'the current folder' if cwd == target else 'a folder holding the current one'} "
            f"({target}); an output replaces its whole folder: give a new folder, e.g. --out result/",
        )
    for p in inputs:
        if p is None:
            continue
        if _within(resolve_out(p), target):
            raise _refuse(
                out,
                f"holds the input {p}; an output replaces its whole folder, so choose an --out that holds no inputs",
            )
    _check_existing(target, out)
    return target


# ---------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------


def _open_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _try_lock(fd: int) -> bool | None:
    """Exclusive flock without waiting: True taken, False held by another, None if locks are unsupported."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        return False if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None


def _held_by_another(path: Path) -> bool:
    """Whether a live process holds the lock of ``path`` (when unknown: yes, so it is kept)."""
    try:
        fd = _open_dir(path)
    except OSError:
        return True
    try:
        return _try_lock(fd) is not True
    finally:
        os.close(fd)  # releases the probe's lock


_deferring = 0  # blocks holding signals back now (threads of a library user may each hold one)
_deferred: list[int] = []


def defer_signal(signum: int) -> bool:
    """For signal handlers (cli.common installs them): True if the signal must wait, and is noted.

    A flag, not a change of handlers: a signal can come at any moment, and a
    handler swapped at the wrong one would swallow every later Ctrl-C.
    """
    if _deferring:
        _deferred.append(signum)
    return _deferring > 0


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM (when their handlers ask defer_signal) wait until the block is done, then the
    first one that came is raised again: for the swap and its record, for removing a folder (shutil's
    rmtree, cut by KeyboardInterrupt, fails with a misleading 'Bad file descriptor'), and for starting
    and joining a writer thread (outputs._Background)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if _deferred and not _deferring:
            signum = _deferred[0]
            _deferred.clear()
            signal.raise_signal(signum)


def _remove(folder: Path) -> None:
    with signals_held():
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _parent_lock(parent: Path) -> Iterator[None]:
    """A short exclusive lock on the folder that holds the output (creating and swapping).

    While it is held, SIGINT and SIGTERM wait (when their handlers ask
    defer_signal): an interruption can neither leave the lock held nor split
    the swap from its record. A signal that came meanwhile is raised again
    when the lock is released.
    """
    try:
        fd = _open_dir(parent)
    except OSError as e:
        raise InputError(f"cannot open the folder of --out: {e.strerror or e}", parent) from None
    closed = False
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while _try_lock(fd) is False:  # waiting may be interrupted
            if time.monotonic() > deadline:
                raise InputError(
                    f"another process has held the lock on this folder for {LOCK_TIMEOUT:.0f} s "
                    "(an adjudicate run writing beside --out?); try again when it has finished",
                    parent,
                )
            time.sleep(0.01)
        with signals_held():
            try:
                yield
            finally:
                os.close(fd)  # released before a signal that came meanwhile is raised
                closed = True
    finally:
        if not closed:
            os.close(fd)


# ---------------------------------------------------------------------------
# What an interrupted command leaves on disk
# ---------------------------------------------------------------------------


@dataclass
class _Write:
    out: Path
    had_output: bool
    committed: bool = False


_journal: list[_Write] = []
_active: list[Path] = []  # temporary folders this process is writing


def begin_command() -> None:
    """Forget earlier writes (the command line calls it as each command starts)."""
    _journal.clear()


def on_disk() -> str:
    """What the outputs of this command are now, in words, for a message after an interruption or error."""
    if not _journal:
        return "nothing was written"
    parts = []
    for w in _journal:
        if w.committed:
            parts.append(f"{w.out} holds the new output, complete")
        elif w.had_output:
            parts.append(f"nothing was written: the previous output in {w.out} is intact")
        else:
            parts.append(f"nothing was written to {w.out}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def _clean_stale(target: Path) -> None:
    """Remove temporary folders beside ``target`` whose writer is gone (its lock is free).

    Runs under the parent lock, so no swap is half done by a live process: an
    ``.old-`` folder with ``target`` missing is a swap cut by a kill, repaired.
    """
    prefix = f".{target.name}."
    for p in target.parent.glob(f"{glob.escape(prefix)}*-*"):
        kind = p.name[len(prefix) :].split("-", 1)[0]
        if kind not in ("tmp", "old"):
            continue
        if p.is_symlink():  # left by earlier versions when --out was a link
            p.unlink(missing_ok=True)
            continue
        if not p.is_dir() or _held_by_another(p):
            continue
        if kind == "old" and not os.path.lexists(target):
            os.rename(p, target)
        else:
            _remove(p)


def _write_marker(folder: Path) -> None:
    names = sorted(n for n in os.listdir(folder) if n != MARKER)
    doc = {"adjudicate_output": 1, "adjudicate_version": __version__, "command": _command, "files": names}
    (folder / MARKER).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


_command = "adjudicate"


def set_command(name: str) -> None:
    """The command recorded in the marker of the folders written from now on."""
    global _command
    _command = name


@contextmanager
def atomic_dir(out: Path, inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` whole.

    ``out`` must be one a command may write (:func:`check_out`, also with
    ``inputs``); the folder gets the marker file. A crash or kill before the
    end leaves ``out`` as it was (or absent), never half-written. Inside the
    temporary folder of another ``atomic_dir`` (an output within an output)
    the folder is simply created: the outer swap makes it appear.
    """
    out = Path(out)
    if any(_within(resolve_out(out.parent), t) for t in _active):
        out.mkdir(exist_ok=True)
        yield out
        _write_marker(out)
        return
    target = check_out(out, inputs)
    record = _Write(target, had_output=False)
    tmp = live = None
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with _parent_lock(target.parent):
                record.had_output = _check_existing(target, out)
                _clean_stale(target)
                tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
                live = _open_dir(tmp)
                _try_lock(live)  # held until the end: a later run does not take this folder for stale
                _journal.append(record)
                del _journal[:-16]  # a long-lived library user never calls begin_command
                _active.append(tmp)
        except OSError as e:
            raise InputError(f"cannot create the output folder: {e.strerror or e}", out) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; outputs are ordinary folders
        yield tmp
        _write_marker(tmp)
        old = None
        with _parent_lock(target.parent):
            had = _check_existing(target, out)  # it may have changed while we worked
            if not os.path.lexists(target):
                os.rename(tmp, target)
            elif _rename_exchange(tmp, target):
                old = tmp  # now holds what was there
            else:
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                os.rename(target, old)
                try:
                    os.rename(tmp, target)
                except BaseException:
                    os.rename(old, target)
                    raise
            record.committed, record.had_output = True, had
        if old is not None:
            _remove(old)
    except BaseException:
        if tmp is not None and not record.committed:
            _remove(tmp)
        raise
    finally:
        if tmp in _active:
            _active.remove(tmp)
        if live is not None:
            os.close(live)


__all__ = ["MARKER", "atomic_dir", "begin_command", "check_out", "on_disk", "resolve_out", "set_command"]
