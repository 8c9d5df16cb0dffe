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


# ---------------------------------------------------------------------------
# --threads N: one setting the whole run follows (threads.limited)
# ---------------------------------------------------------------------------


def test_one_thread_runs_every_job_on_the_caller_and_arrow_on_one_thread():
    import pyarrow as pa

    from adjudicate import threads

    cpu, io = pa.cpu_count(), pa.io_thread_count()
    assert not threads.serial()
    with threads.limited(1):
        assert threads.serial() and threads.limit() == 1
        assert (pa.cpu_count(), pa.io_thread_count()) == (1, 1)
        ran_on: list[str] = []
        with thread_pool(2, "probe") as pool:
            first = pool.submit(lambda: ran_on.append(threading.current_thread().name) or 1)
            failed = pool.submit(lambda: 1 // 0)
            assert first.done()  # run when submitted
            assert list(pool.map(lambda x: x * 2, [1, 2, 3])) == [2, 4, 6]
        assert ran_on == [threading.current_thread().name]
        assert first.result() == 1
        with pytest.raises(ZeroDivisionError):  # a job's error is its future's, as in a pool
            failed.result()
    assert not threads.serial()
    assert (pa.cpu_count(), pa.io_thread_count()) == (cpu, io)  # restored


def test_n_threads_bound_every_pool_and_the_kernel_default():
    from adjudicate import engine, threads

    with threads.limited(3):
        assert engine.default_threads() == 3
        with thread_pool(8, "probe") as pool:
            assert pool._max_workers == 3  # type: ignore[attr-defined]
        with thread_pool(2, "probe") as pool:
            assert pool._max_workers == 2  # type: ignore[attr-defined]
    with threads.limited(None):  # no setting: every core, the pools as asked
        assert engine.default_threads() == threads.cores()


def test_helpers_run_inline_under_one_thread():
    """The page-touching helper (inputs._background) and a writer's side thread (outputs.Background)."""
    from adjudicate import threads
    from adjudicate.inputs import _background
    from adjudicate.outputs import Background

    seen: list[str] = []
    with threads.limited(1):
        assert _background(lambda: threading.current_thread().name).result() == threading.current_thread().name
        side = Background(lambda: seen.append(threading.current_thread().name), "probe")
        side.start()
        assert seen == [threading.current_thread().name]
        side.result()
        failing = Background(lambda: 1 // 0, "probe")
        failing.start()  # its error waits for result(), as on a thread
        with pytest.raises(ZeroDivisionError):
            failing.result()


def _threads_started(monkeypatch) -> list[str]:
    """The names of the threads started and of the pools given a job from now on (until monkeypatch.undo)."""
    import concurrent.futures

    started: list[str] = []
    start, submit = threading.Thread.start, concurrent.futures.ThreadPoolExecutor.submit
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name) or start(self))
    monkeypatch.setattr(
        concurrent.futures.ThreadPoolExecutor,
        "submit",
        lambda self, *a, **k: started.append(self._thread_name_prefix) or submit(self, *a, **k),
    )
    return started


def _run_cli(args: list[str]) -> None:
    from click.testing import CliRunner

    from adjudicate.cli import main

    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "extra",
    [
        ["run"],
        ["run", "--no-lines"],
        ["run", "--partitions", "2"],
        ["run", "--audit"],
        ["compare", "--policy", "city-employee"],
        ["prepare"],
    ],
    ids=["run", "no-lines", "partitions", "audit", "compare", "prepare"],
)
def test_one_thread_starts_no_thread_and_writes_the_same(extra, tmp_path, monkeypatch):
    """`run --threads 1` (and compare, prepare): no thread started, no job given to a pool (the kernel's,
    the read's, encode's, the writers'), Arrow on one thread; every table the same as the default run's."""

    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_metamorphic import make_case, write

    paths = write(make_case(5, members=30, claims=140).tables(), tmp_path / "in")
    args = [a for n in ("claims", "members", "providers", "catalogue") for a in (f"--{n}", str(paths[n][0]))]
    args = [extra[0], *args, *([] if extra[0] == "prepare" else ["--policy", "prefecture-employee"]), "-q", *extra[1:]]
    _run_cli([*args, "--out", str(tmp_path / "all")])

    started = _threads_started(monkeypatch)
    cpu = pa.cpu_count()
    _run_cli([*args, "--out", str(tmp_path / "one"), "--threads", "1"])
    monkeypatch.undo()
    assert started == []
    assert pa.cpu_count() == cpu  # the setting ends with the command
    files = sorted(p.relative_to(tmp_path / "all") for p in (tmp_path / "all").rglob("*.parquet"))
    files += sorted(p.relative_to(tmp_path / "all") for p in (tmp_path / "all").rglob("*.arrow"))
    assert len(files) >= 2 and files == sorted(
        p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.parquet")
    ) + sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.arrow"))
    for name in files:
        read = pq.read_table if name.suffix == ".parquet" else (lambda p: pa.ipc.open_file(p).read_all())
        a, b = read(tmp_path / "all" / name), read(tmp_path / "one" / name)
        assert a.schema == b.schema and a.equals(b), name


@pytest.mark.parametrize("command", ["explain", "validate"])
def test_explain_and_validate_take_one_thread_and_print_the_same(command, tmp_path, monkeypatch):
    """`explain` and `validate` take --threads too: with 1 no thread is started and what they print is
    what they print on every core."""

    import pyarrow.parquet as pq
    from click.testing import CliRunner
    from test_metamorphic import make_case, write

    from adjudicate.cli import main

    paths = write(make_case(5, members=30, claims=140).tables(), tmp_path / "in")
    if command == "explain":
        claim = str(pq.read_table(paths["claims"][0], columns=["claim_id"]).column(0)[0])
        args = ["explain", claim, "--policy", "prefecture-employee"]
        args += [a for n in ("claims", "members", "providers", "catalogue") for a in (f"--{n}", str(paths[n][0]))]
    else:
        args = ["validate", *(str(paths[n][0]) for n in ("claims", "members", "providers", "catalogue"))]
        args += ["--policy", "prefecture-employee", "-q"]

    def printed(extra: list[str]) -> tuple[int, str]:
        r = CliRunner().invoke(main, [*args, *extra])
        assert r.exit_code in (0, 2), r.output  # 1 would be an internal error
        return r.exit_code, r.output  # validate exits 2 when it lists problems (this case has some)

    every_core = printed([])
    started = _threads_started(monkeypatch)
    one = printed(["--threads", "1"])
    monkeypatch.undo()
    assert started == []
    assert one == every_core and one[1].strip()
