"""Ctrl-C and SIGTERM (issue 8 §5–6): no hang, a message that says what is on disk, no claim data left behind.

The SIGINT test runs each command a few hundred times in one process, with SIGINT sent at a random moment
of each run, and checks after every run that --out is whole and that the message told the truth.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.sample import sample_dir

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or sys.platform == "win32", reason="POSIX signals")
TABLES = ("claims", "members", "providers", "catalogue")


def inputs_args(folder: Path) -> list[str]:
    return [str(a) for t in TABLES for a in (f"--{t}", folder / f"{t}.parquet")]


def test_outputs_imports_numpy_ma_eagerly():
    """A lazy import of numpy.ma in the lines writer thread could hang the join after Ctrl-C."""
    code = "import sys, adjudicate.outputs; assert 'numpy.ma' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


HARNESS = textwrap.dedent(r"""
    import _imp, contextlib, faulthandler, hashlib, io, json, os, random, signal, sys, threading, time
    from pathlib import Path
    import click
    from adjudicate.cli import main

    commands, out, n, seed = json.loads(sys.argv[1])
    out = Path(out)
    rnd = random.Random(seed)

    def content(p):
        if p.name == "report.html":
            return b""  # it shows the timings
        if p.name != "summary.json":
            return p.read_bytes()
        s = json.loads(p.read_text())
        s.pop("timings_seconds", None)  # the one thing that differs between two runs
        return json.dumps(s, sort_keys=True).encode()

    def state():
        if not out.exists():
            return None
        return hashlib.sha256(b"".join(p.name.encode() + content(p) for p in sorted(out.rglob("*"))
                                       if p.is_file())).hexdigest()

    def once(args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                main(args, standalone_mode=False)
                return 0, err.getvalue()
            except SystemExit as e:
                return e.code, err.getvalue()
            except click.exceptions.Abort:
                return "abort", err.getvalue()

    durations = []
    for args in commands:  # uninterrupted: how long a run takes once warm, and a first output
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert once(args)[0] == 0
            times.append(time.perf_counter() - t0)
        durations.append(min(times))
    for i in range(n):
        k = i % len(commands)
        before = state()
        timer = threading.Timer(rnd.uniform(0, 1.1 * durations[k]), os.kill, (os.getpid(), signal.SIGINT))
        stage = "start"
        faulthandler.dump_traceback_later(60, exit=True)  # a hang: every thread's stack, and a failed test
        try:
            timer.start()
            stage = "command"
            code, message = once(commands[k])
            stage = "after"
            timer.cancel()
            timer.join()
        except KeyboardInterrupt:  # it came before the command started, or after it had returned
            code, message = ("before" if stage == "start" else "late"), ""
        faulthandler.cancel_dump_traceback_later()
        print(json.dumps({"k": k, "code": code, "message": message, "before": before, "after": state()}),
              flush=True)
        if code != 0 and _imp.lock_held():
            # A KeyboardInterrupt inside importlib's own code can leave its global lock held by the main
            # thread (a CPython limitation): harmless for a command, which exits, but later imports on
            # other threads of this process would wait forever. Go on in a new process.
            sys.exit(3)
    for k, args in enumerate(commands):  # what each command writes when left alone
        assert once(args)[0] == 0
        print(json.dumps({"k": k, "code": "reference", "after": state()}), flush=True)
""")


def hammer(tmp_path: Path, commands: list[list[str]], out: Path, n: int) -> list[dict]:
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    records: list[dict] = []
    for attempt in range(5):
        done = sum(r["code"] != "reference" for r in records)
        proc = subprocess.run(
            [sys.executable, str(script), json.dumps([commands, str(out), n - done, 7 + attempt])],
            capture_output=True,
            text=True,
            timeout=240,
        )
        records += [json.loads(line) for line in proc.stdout.splitlines()]
        if proc.returncode != 3:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    return records


def check(records: list[dict], out: Path) -> None:
    reference = {r["k"]: r["after"] for r in records if r["code"] == "reference"}
    runs = [r for r in records if r["code"] != "reference"]
    seen = {"new": 0, "intact": 0, "nothing": 0, "done": 0}
    for r in runs:
        assert r["after"] in reference.values(), r  # always one whole output of some command
        if r["code"] == 0:
            assert r["after"] == reference[r["k"]], r
            seen["done"] += 1
            continue
        if r["code"] == "late":  # the command may have been interrupted or not: its message was not kept
            assert r["after"] in (r["before"], reference[r["k"]]), r
            continue
        if r["code"] in ("abort", "before"):  # before the command started: nothing happened
            assert r["after"] == r["before"], r
            continue
        assert r["code"] == 130, r
        assert "Traceback" not in r["message"] and r["message"].startswith("interrupted; "), r
        if "holds the new output, complete" in r["message"]:
            assert r["after"] == reference[r["k"]], r
            seen["new"] += 1
        elif "is intact" in r["message"]:
            assert r["after"] == r["before"], r
            seen["intact"] += 1
        else:
            assert "nothing was written" in r["message"], r
            assert r["after"] == r["before"], r
            seen["nothing"] += 1
    assert seen["intact"] + seen["nothing"] + seen["new"] >= len(runs) // 5, seen  # many landed inside the work
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == [], leftovers


def test_sigint_during_run_never_hangs_and_the_message_says_what_is_on_disk(tmp_path):
    data = sample_dir()
    out = tmp_path / "out"
    commands = [
        ["run", *inputs_args(data), "--policy", p, "--out", str(out), "-q"]
        for p in ("prefecture-employee", "city-employee")
    ]
    check(hammer(tmp_path, commands, out, 200), out)


def test_sigint_during_compare_readjudicate_reconcile(tmp_path):
    data = sample_dir()
    earlier = tmp_path / "earlier"
    r = CliRunner().invoke(
        cli.main, ["run", *inputs_args(data), "--policy", "city-employee", "--out", str(earlier), "-q"]
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    commands = [
        [
            "compare",
            "--policy",
            "prefecture-employee",
            "--policy",
            "city-employee",
            *inputs_args(data),
            "--out",
            str(out),
            "-q",
        ],
        [
            "readjudicate",
            "--previous",
            str(earlier),
            *inputs_args(data),
            "--policy",
            "prefecture-employee",
            "--out",
            str(out),
            "-q",
        ],
        [
            "reconcile",
            "--settlements",
            str(earlier),
            "--providers",
            str(data / "providers.parquet"),
            "--members",
            str(data / "members.parquet"),
            "--year",
            "2024",
            "--out",
            str(out),
            "-q",
        ],
    ]
    check(hammer(tmp_path, commands, out, 90), out)


# ---------------------------------------------------------------------------
# Streaming partitions: never in /tmp, removed on SIGTERM, cleaned after SIGKILL
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("interrupts") / "gen"
    r = CliRunner().invoke(
        cli.main, ["generate", "--members", "3000", "--year", "2024", "--seed", "5", "--out", str(folder), "-q"]
    )
    assert r.exit_code == 0, r.output
    return folder


def _start_streaming(big: Path, out: Path, tmpdir: Path) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmpdir))
    args = [
        sys.executable,
        "-m",
        "adjudicate.cli",
        "run",
        *inputs_args(big),
        "--policy",
        "prefecture-employee",
        "--partitions",
        "4",
        "--out",
        str(out),
        "-q",
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_partitions(proc: subprocess.Popen, out: Path) -> bool:
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(any(t.glob(".partitions/*")) for t in out.parent.glob(f".{out.name}.tmp-*")):
            return True
        time.sleep(0.005)
    return False


def test_sigterm_during_streaming_removes_the_partitions(big, tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = _start_streaming(big, out, tmpdir)
    try:
        assert _wait_for_partitions(proc, out), "the partitions are written in the output's temporary folder"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "nothing was written" in err and "Traceback" not in err
    assert list(tmp_path.glob(".out.*")) == [] and not out.exists()
    assert list(tmpdir.iterdir()) == []  # TMPDIR (where /tmp/adjudicate-partitions-* went) is not used


def test_sigkill_during_streaming_leaves_partitions_only_where_the_next_run_cleans_them(big, tmp_path):
    out, tmpdir = tmp_path / "out", tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = _start_streaming(big, out, tmpdir)
    try:
        assert _wait_for_partitions(proc, out)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(tmpdir.iterdir()) == []
    stale = list(tmp_path.glob(".out.tmp-*"))
    assert stale
    proc = _start_streaming(big, out, tmpdir)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert not (out / ".partitions").exists()
    shutil.rmtree(out)


def test_an_error_raised_while_an_interrupt_unwinds_is_reported_as_the_interrupt(monkeypatch, tmp_path):
    """A KeyboardInterrupt inside a lock or rmtree can surface as another error ('release unlocked lock',
    'Bad file descriptor'): it is still an interruption (exit 130), not 'a bug in adjudicate'."""
    from adjudicate import outputs

    def broken(table, path, *pool):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("release unlocked lock") from None

    monkeypatch.setattr(outputs, "write_parquet", broken)
    r = CliRunner().invoke(
        cli.main,
        ["run", *inputs_args(sample_dir()), "--policy", "prefecture-employee", "--out", str(tmp_path / "out"), "-q"],
    )
    assert r.exit_code == 130 and "interrupted; nothing was written" in r.output and "bug" not in r.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# No thread left running when the interpreter finalizes: a writer thread still inside Arrow then is
# killed as it takes the GIL back, and the process aborts (SIGABRT, exit -6/134: "terminate called
# without an active exception" or "PyGILState_Release … finalizing") instead of exiting 0/1/2/130.

SLOW_LINES = textwrap.dedent(r"""
    import sys, time
    from pathlib import Path
    from adjudicate import outputs
    from adjudicate.cli import main
    from adjudicate.errors import InputError

    flags, way = Path(sys.argv[1]), sys.argv[2]
    real = outputs.write_parquet

    def write_parquet(table, path, *pool):
        if path.name == "lines.parquet":  # the writer thread: held until the test releases it
            (flags / "started").touch()
            try:
                while not (flags / "release").exists():
                    time.sleep(0.01)
                real(table, path, *pool)
            finally:
                (flags / "finished").touch()
            return
        while not (flags / "started").exists():  # the main thread fails while the writer runs
            time.sleep(0.01)
        if path.name == "settlements.parquet" and way == "input error":
            raise InputError("planted", path)
        if path.name == "settlements.parquet" and way == "bug":
            raise RuntimeError("planted")
        real(table, path, *pool)

    real_result = outputs._Background.result

    def result(self):  # the main thread now waits for the writer
        (flags / "waiting").touch()
        return real_result(self)

    outputs.write_parquet = write_parquet
    outputs._Background.result = result
    main(sys.argv[3:], prog_name="adjudicate")
""")


@pytest.mark.parametrize(
    ("way", "code"),
    [("none", 0), ("input error", 2), ("bug", 1), ("two interrupts", 130), ("two interrupts while it waits", 130)],
)
def test_the_process_never_exits_while_its_lines_writer_runs(tmp_path, way, code):
    """Whichever way a run ends (success, exit 2, exit 1, a Ctrl-C and a second one during the wait for the
    writer), the lines.parquet writer has finished before the process exits, and nothing aborts."""
    flags, out = tmp_path / "flags", tmp_path / "out"
    flags.mkdir()
    script = tmp_path / "slow_lines.py"
    script.write_text(SLOW_LINES)
    run = ["run", *inputs_args(sample_dir()), "--policy", "prefecture-employee", "--out", str(out), "-q"]
    proc = subprocess.Popen(
        [sys.executable, str(script), str(flags), way, *run],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONFAULTHANDLER="1"),
    )
    try:
        deadline = time.monotonic() + 120
        while not (flags / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (flags / "started").exists(), proc.communicate(timeout=60)[1]
        if way.startswith("two interrupts"):
            if way.endswith("while it waits"):
                # the first Ctrl-C lands in the main thread's wait for the writer (the flaky case: a
                # KeyboardInterrupt inside Thread.join marks a running thread stopped in CPython 3.11)
                while not (flags / "waiting").exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)  # the first one's handler is waiting for the writer
        with pytest.raises(subprocess.TimeoutExpired):  # it waits for its writer, however it ends
            proc.wait(timeout=0.5)
        (flags / "release").touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert (flags / "finished").exists()
    assert "Fatal Python error" not in err and "terminate called" not in err
    assert out.exists() == (code == 0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
