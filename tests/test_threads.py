"""threads.thread_pool: a Ctrl-C while the pool closes waits for the jobs already running.

In CPython 3.11 a KeyboardInterrupt inside Thread.join marks the still-running thread as stopped,
so a plain ThreadPoolExecutor's ``with`` exit returns at once and nothing waits for the job again.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from adjudicate.cli.common import _on_signal
from adjudicate.threads import thread_pool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _interrupted_while_closing(make_pool) -> tuple[bool, list[int]]:
    """Close a pool whose one job is running, with SIGINT sent meanwhile: (interrupted, jobs done by then).

    Not Thread.is_alive: after the bug it says False for the thread that still runs."""
    started, release = threading.Event(), threading.Event()
    done: list[int] = []

    def job() -> None:
        started.set()
        release.wait(10)
        time.sleep(0.2)
        done.append(1)

    def ctrl_c_then_release() -> None:
        started.wait(10)
        time.sleep(0.3)  # the main thread is in the pool's exit by now
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.1)
        release.set()

    previous = signal.signal(signal.SIGINT, _on_signal)
    sender = threading.Thread(target=ctrl_c_then_release)
    interrupted = False
    try:
        sender.start()
        try:
            with make_pool() as pool:
                pool.submit(job)
                started.wait(10)
        except KeyboardInterrupt:
            interrupted = True
        finished = list(done)
    finally:
        release.set()
        sender.join()
        signal.signal(signal.SIGINT, previous)
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:  # let a leaked job end before the next test
            time.sleep(0.05)
    return interrupted, finished


def test_a_ctrl_c_while_the_pool_closes_waits_for_its_running_job_then_is_raised():
    interrupted, finished = _interrupted_while_closing(lambda: thread_pool(1, "probe"))
    assert interrupted  # the Ctrl-C is not lost: raised once the job is done
    assert finished == [1]


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the join bug of CPython 3.11 that thread_pool avoids")
def test_the_plain_executor_does_not_wait_there():
    """The control: without thread_pool the exit returns while the job runs (what the test above guards)."""
    interrupted, finished = _interrupted_while_closing(lambda: ThreadPoolExecutor(1, thread_name_prefix="probe"))
    assert interrupted
    assert finished == []  # the exit returned while the job ran


def test_jobs_not_started_are_cancelled_when_the_block_fails():
    ran: list[int] = []
    gate = threading.Event()
    with pytest.raises(RuntimeError), thread_pool(1, "probe") as pool:
        pool.submit(gate.wait, 10)
        later = pool.submit(ran.append, 1)
        gate.set()
        raise RuntimeError("the caller failed")
    assert later.cancelled() or ran == [1]  # cancelled unless the worker took it before the exit


def test_every_job_submitted_runs_when_the_block_ends_normally():
    """Results may be read after the block (inputs' column conversion does): nothing is cancelled."""
    gate = threading.Event()
    with thread_pool(1, "probe") as pool:
        first = pool.submit(gate.wait, 10)
        queued = [pool.submit(lambda i=i: i * i) for i in range(5)]
        gate.set()
    assert first.result() is True
    assert [f.result() for f in queued] == [0, 1, 4, 9, 16]
