"""Whole-process timing for the benchmarks: run a command and take its wall, CPU and peak RSS;
the ``adjudicate run`` command line on a benchmark data set; the stage timers of its summaries.

Shared by run.py and reuse.py (each measures commands the same way).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import bench_data

STAGES = ("read", "encode", "kernel", "allocate", "write")


def say(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


class Ran(NamedTuple):
    """One finished command: wall seconds, peak RSS in MiB, its stdout, and its CPU seconds
    (user, and system: on this kind of machine mostly the kernel zeroing fresh pages)."""

    wall: float
    rss: float
    stdout: str
    user: float
    sys: float


def run_cmd_rss(cmd: list[str], env: dict | None = None) -> Ran:
    """Run a command and measure it; fails loudly on a non-zero exit.

    Peak RSS and CPU seconds come from GNU time wrapped around the command: a
    child's ru_maxrss also counts the memory of the process that forked it, so
    they are taken from a small forker, not from this (large) Python process.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        full = [TIME, "-f", "%M %U %S", "-o", str(rss_file)] + cmd if TIME else cmd
        t0 = time.perf_counter()
        p = subprocess.run(full, capture_output=True, env=env)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"command failed ({p.returncode}): {shlex.join(cmd)}\n{p.stderr.decode()[-3000:]}")
        rss = user = system = float("nan")
        if TIME and rss_file.exists():
            try:
                kb, user, system = (float(x) for x in rss_file.read_text().split()[-3:])
                rss = kb / 1024.0
            except (ValueError, IndexError):
                pass
    return Ran(wall, rss, p.stdout.decode(), user, system)


#: The output files of `adjudicate run` that run.py reads, by table: a renamed output is one line here
#: (renamed columns: agree.ENGINE_NAMES).
OUTPUT_FILES = {"settlements": "settlements.parquet", "lines": "lines.parquet", "rejected": "rejected.parquet"}


def out_file(folder: Path, table: str) -> Path:
    """An output file of ``adjudicate run`` in ``folder`` (the floor writes its copies under the same names)."""
    return folder / OUTPUT_FILES[table]


def adjudicate_cmd() -> list[str]:
    if os.environ.get("BENCH_SNAPSHOT"):
        return [sys.executable, "-m", "adjudicate.cli"]
    exe = shutil.which("adjudicate")
    return [exe] if exe else [sys.executable, "-m", "adjudicate.cli"]


def engine_args(
    data: Path,
    out: Path,
    lines: bool,
    threads: int | None = None,
    extra: tuple[str, ...] = (),
    catalogue: Path | None = None,
) -> list[str]:
    f = bench_data.paths(data)
    if catalogue is not None:
        f["catalogue"] = catalogue
    a = adjudicate_cmd() + [
        "run",
        "--claims",
        str(f["claims"]),
        "--members",
        str(f["members"]),
        "--providers",
        str(f["providers"]),
        "--catalogue",
        str(f["catalogue"]),
        "--policy",
        "prefecture-employee",
        "--out",
        str(out),
        "-q",
    ]
    if not lines:
        a.append("--no-lines")
    if threads:
        a += ["--threads", str(threads)]
    return a + list(extra)


def run_help() -> str:
    return subprocess.run(adjudicate_cmd() + ["run", "--help"], capture_output=True, text=True).stdout


def stage_names(runs: list[dict]) -> list[str]:
    """The stage timers present in any summary, the usual five first."""
    names = [k for k in STAGES if any(k in r for r in runs)]
    for r in runs:
        names += [k for k in r if k not in names]
    return names


def warm(folder: Path) -> None:
    """Read every input file once, so every contender starts from the page cache."""
    for p in bench_data.paths(folder).values():
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass


def bench_engine(
    data: Path, outdir: Path, lines: bool, repeat: int, extra: tuple[str, ...] = (), label: str = ""
) -> dict:
    walls, rss, timings, cpu = [], [], [], []
    out = outdir / (("engine-full" if lines else "engine-nolines") + ("-" + "".join(extra).strip("-") if extra else ""))
    name = "adjudicate run" + ("" if lines else " --no-lines") + (" " + " ".join(extra) if extra else "")
    for i in range(repeat):
        ran = run_cmd_rss(engine_args(data, out, lines, extra=extra))
        w = ran.wall
        s = json.loads((out / "summary.json").read_text())
        walls.append(w)
        rss.append(ran.rss)
        cpu.append((ran.user, ran.sys))
        timings.append(s["timings_seconds"])
        say(f"  {name} #{i + 1}: {w:.2f} s " + " ".join(f"{k}={v:.2f}" for k, v in s["timings_seconds"].items()))
    names = stage_names(timings)
    return {
        "wall": median(walls),
        "walls": walls,
        "rss": max(rss),
        "user": median([u for u, _ in cpu]),
        "sys": median([x for _, x in cpu]),
        "out": out,
        "name": name,
        "partitions": s.get("partitions", 1),
        "stages": {k: median([t.get(k, 0.0) for t in timings]) for k in names},
        "summary": s,
    }
