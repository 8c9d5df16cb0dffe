"""What a benchmark measured: a clean snapshot of the repository's HEAD (``--snapshot``), the
commit, and the machine.

A long benchmark runs the snapshot, not the working tree, so edits during the run cannot change
the code under test; RESULTS files name the commit and the machine they were measured on.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import bench_data
from procs import say

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    import numpy
    import pyarrow

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    versions = {"Python": platform.python_version(), "pyarrow": pyarrow.__version__, "numpy": numpy.__version__}
    for mod in ("duckdb", "polars"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "not installed"
    import adjudicate

    versions["adjudicate"] = adjudicate.__version__
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": cores,
        "logical": os.cpu_count(),
        "ram": mem,
        "os": platform.platform(),
        "versions": versions,
        "load": os.getloadavg(),
    }


def git_state() -> str:
    snap = os.environ.get("BENCH_SNAPSHOT")
    if snap:
        return f"commit {snap[:7]}, a clean snapshot of HEAD built under benchmarks/data/"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=HERE.parent, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"commit {head}" + (" with uncommitted changes in src/" if dirty else "") if head else "unknown"


def build_snapshot(repo: Path, dest: Path, rev: str = "HEAD") -> Path:
    """A clean, non-editable install of ``rev`` under ``dest``/site (returned), kernel compiled.

    ``pip install --target`` builds in an isolated environment with the build requirements of
    pyproject.toml (setuptools ≥ 77 reads its ``project.license``), whatever this venv's setuptools is.
    """
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "tree").mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=repo, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest / "tree")], input=archive, check=True)
    p = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(dest / "site")]
        + [str(dest / "tree")],
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise SystemExit(f"--snapshot: building {rev} failed:\n{p.stderr[-3000:]}")
    # bytecode as an installed package has it (pip may skip it when PYTHONDONTWRITEBYTECODE is set):
    # otherwise every measured process compiles the package from source first
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "site" / "adjudicate")], check=True)
    return dest / "site"


def use_snapshot(argv: list[str], script: Path) -> None:
    """Re-run ``script`` (the benchmark script running) with ``argv`` on a clean build of the repository's HEAD (``--snapshot``).

    The build (``git archive HEAD``, installed with pip under
    benchmarks/data/snapshot-<commit>/site) is put first on PYTHONPATH, so
    edits in the working tree during a long run cannot change the code under test.
    """
    repo = HERE.parent
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = bench_data.DATA / f"snapshot-{sha[:10]}"
    if not (dest / ".built").exists():
        say(f"building a snapshot of HEAD ({sha[:10]}) in {dest} (about a minute) ...")
        build_snapshot(repo, dest)
        (dest / ".built").write_text(sha + "\n")
    env = dict(
        os.environ,
        BENCH_SNAPSHOT=sha,
        PYTHONPATH=os.pathsep.join([str(dest / "site")] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    )
    os.execve(sys.executable, [sys.executable, str(script)] + argv, env)


def check_snapshot() -> None:
    import adjudicate

    snap = os.environ.get("BENCH_SNAPSHOT")
    if snap and f"snapshot-{snap[:10]}" not in adjudicate.__file__:
        raise SystemExit(f"--snapshot: adjudicate was imported from {adjudicate.__file__}, not the snapshot")
