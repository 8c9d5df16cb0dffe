"""Thread pools that an interruption cannot leave running.

In CPython 3.11, a Ctrl-C that lands inside ``Thread.join`` marks the thread it waited for as
stopped although it still runs (the fix of bpo-45274 releases the thread's state lock), so no
later join waits for it: the interpreter can then finalize while that thread is inside Arrow or
NumPy, and the process aborts instead of exiting 130. ``ThreadPoolExecutor.shutdown(wait=True)``
is such a join. The pools here shut down with SIGINT and SIGTERM held back (outdir.signals_held,
honoured by the command line's handlers). When the block fails, the jobs that have not started are
cancelled first, so the wait is bounded by the jobs already running; the signal is raised again once
they are done.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from .outdir import signals_held


@contextmanager
def thread_pool(workers: int, name: str = "adjudicate") -> Iterator[ThreadPoolExecutor]:
    """A ``ThreadPoolExecutor`` for a ``with`` block, whose exit always waits for its threads."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        with signals_held():  # the jobs not started are dropped: nobody will ask for their results
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    with signals_held():  # as the plain executor: every job submitted is run before the block ends
        pool.shutdown(wait=True)
