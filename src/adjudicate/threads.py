"""The run's thread count, and thread pools that an interruption cannot leave running.

**One setting for the whole run.** ``--threads N`` is :func:`limited` around a command: every
thread the engine starts consults :func:`limit`. The kernel runs on ``N`` threads, every pool of
:func:`thread_pool` has at most ``N`` workers, and Arrow's own pools (Parquet decoding, compute
functions, CSV reading) are set to ``N`` threads. With ``N = 1`` the run is *serial*: the helper
threads that otherwise overlap the stages (the read-ahead of the next row group, the id coding,
the page touching, the writer of the largest table) do their work on the calling thread, in
turn (:func:`serial`: a pool of :func:`thread_pool` then runs each job when it is submitted), so
the whole run uses one core. Outside a :func:`limited` block (a library caller; the command line
without ``--threads``) every core is used, as before. Results never depend on the setting.

A plain module global, not a ContextVar: it is read on worker threads, which do not inherit the
caller's context.

**Pools that an interruption cannot leave running.** In CPython 3.11, a Ctrl-C that lands inside
``Thread.join`` marks the thread it waited for as stopped although it still runs (the fix of
bpo-45274 releases the thread's state lock), so no later join waits for it: the interpreter can
then finalize while that thread is inside Arrow or NumPy, and the process aborts instead of
exiting 130. ``ThreadPoolExecutor.shutdown(wait=True)`` is such a join. The pools here shut down
with SIGINT and SIGTERM held back (outdir.signals_held, honoured by the command line's handlers).
When the block fails, the jobs that have not started are cancelled first, so the wait is bounded
by the jobs already running; the signal is raised again once they are done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pyarrow as pa

from .outdir import signals_held

T = TypeVar("T")

#: The thread count of the command running now (:func:`limited`); None: every core.
_LIMIT: int | None = None


def cores() -> int:
    """The processors this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def limit() -> int:
    """The number of threads the run may keep busy: the ``--threads`` setting, else every core."""
    return _LIMIT if _LIMIT is not None else cores()


def serial() -> bool:
    """Whether the run is on one thread (``--threads 1``): helper threads then run nothing."""
    return _LIMIT == 1


@contextmanager
def limited(threads: int | None) -> Iterator[None]:
    """The whole block on at most ``threads`` threads (None: every core, nothing changed), Arrow's
    CPU and I/O pools included; the previous setting and Arrow's pool sizes are restored after."""
    global _LIMIT
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    before, cpu, io = _LIMIT, pa.cpu_count(), pa.io_thread_count()
    _LIMIT = threads
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    try:
        yield
    finally:
        _LIMIT = before
        pa.set_cpu_count(cpu)
        pa.set_io_thread_count(io)


def done(job: Callable[[], T]) -> Future[T]:
    """``job`` run now, on this thread, as a finished future: its result or its error (an
    interruption, KeyboardInterrupt or SystemExit, is raised at once, as on the thread it stops)."""
    f: Future[T] = Future()
    try:
        f.set_result(job())
    except Exception as e:  # noqa: BLE001 - raised again by f.result(), as a pool's future does
        f.set_exception(e)
    return f


class _Inline(Executor):
    """An executor that runs each job when it is submitted, on the submitting thread (:func:`serial`)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return done(lambda: fn(*args, **kwargs))


@contextmanager
def thread_pool(workers: int, name: str = "adjudicate") -> Iterator[Executor]:
    """A ``ThreadPoolExecutor`` of ``workers`` threads (at most ``--threads``) for a ``with`` block,
    whose exit always waits for its threads. Under :func:`serial`, an executor that runs each job
    on the caller's thread when it is submitted: the caller's helpers wait their turn."""
    if serial():
        yield _Inline()
        return
    pool = ThreadPoolExecutor(workers if _LIMIT is None else min(workers, _LIMIT), thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        with signals_held():  # the jobs not started are dropped: nobody will ask for their results
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    with signals_held():  # as the plain executor: every job submitted is run before the block ends
        pool.shutdown(wait=True)
