"""Benchmark ``adjudicate run`` against an I/O floor, its own kernel, and peers.

    python benchmarks/run.py --snapshot [--stream-lines 50M]   # issue 9's comparison
    python benchmarks/run.py --quick                           # while developing

Generates (or reuses, cached in benchmarks/data/) a data set with the
package's generator (about 50 lines per member), then measures on the same
files, medians of --repeat runs:

- the I/O floor: pyarrow alone reading the input columns the engine reads and
  writing settlements.parquet and lines.parquet of the same shape (the
  engine's own output tables, loaded beforehand);
- ``adjudicate run`` end to end as a subprocess, with and without lines, and
  its stage timings (summary.json);
- the engine in memory (``engine.adjudicate`` on pre-read inputs) with 1 and
  2 threads: the kernel's lines per second per core;
- start-up of ``adjudicate run`` on a tiny input;
- the peers of ``peers.py`` (DuckDB SQL, Polars, plain Python on a member
  sample, extrapolated), each checked against the engine to the fen.

Prints an estimate of the whole invocation first and the time of each section as
it ends. Writes benchmarks/RESULTS.md (or --results), with the bound of every
missed target, and the speed block of README.md. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_data  # noqa: E402
import bounds  # noqa: E402
import plan  # noqa: E402
import reuse  # noqa: E402
from agree import AMOUNTS, compare  # noqa: E402

PEER_SCRIPT = HERE / "peers.py"
STAGES = ("read", "encode", "kernel", "allocate", "write")
#: The fraction of claims made defective for the "defective claims" row: about that of the independent
#: data set the project was measured on from outside (0.9 %).
DEFECTS = 0.009


def say(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------
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


AUDIT_BEGIN, AUDIT_END = "<!-- audit: benchmarks/run.py --audit-only -->", "<!-- /audit -->"


def bench_audit(data: Path, outdir: Path, repeat: int) -> dict:
    """``run`` and ``run --audit`` alternately on the same inputs, the catalogue with item_kind
    (so every rule runs); the added cost of the audit is the difference of the medians."""
    import pyarrow.parquet as pq

    from adjudicate.audit.plant import item_kinds

    cat = pq.read_table(bench_data.paths(data)["catalogue"])
    cat_file = outdir / "catalogue-with-item-kind.parquet"
    pq.write_table(cat.append_column("item_kind", item_kinds(cat["item_code"])), cat_file)
    res = {"plain": {"walls": [], "stages": []}, "audit": {"walls": [], "stages": []}}
    for i in range(repeat):
        for key, extra in (("plain", ()), ("audit", ("--audit",))):
            out = outdir / f"audit-{key}"
            w, rss = run_cmd_rss(engine_args(data, out, True, extra=extra, catalogue=cat_file))[:2]
            s = json.loads((out / "summary.json").read_text())
            res[key]["walls"].append(w)
            res[key]["stages"].append(s["timings_seconds"])
            res[key]["rss"] = max(res[key].get("rss", 0), rss)
            if key == "audit":
                res["summary"] = s["audit"]
            say(f"  run{' --audit' if extra else ''} #{i + 1}: {w:.2f} s")
    for key in ("plain", "audit"):
        r = res[key]
        r["wall"] = median(r["walls"])
        r["stage"] = {k: median([t.get(k, 0.0) for t in r["stages"]]) for k in stage_names(r["stages"])}
    res["added"] = res["audit"]["wall"] - res["plain"]["wall"]
    res["lines"] = json.loads((outdir / "audit-audit" / "summary.json").read_text())["counts"]["input_lines"]
    return res


def audit_section(A: dict, command: str) -> list[str]:
    p, a, s = A["plain"], A["audit"], A["summary"]
    pct = 100 * A["added"] / p["wall"]
    stage = a["stage"].get("audit", 0.0)
    plain_stages = sum(v for k, v in p["stage"].items())
    rows = [
        AUDIT_BEGIN,
        "## Audit (`run --audit`)",
        "",
        f"Measured with `{command}` on {A['lines']:,} lines (the catalogue given `item_kind`, so every rule "
        f"runs); `run` and `run --audit` alternate, {len(p['walls'])} run(s) each, medians. Load average at "
        f"the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
        "| command | wall s (median) | runs | audit stage s | peak RSS MiB |",
        "|---|---:|---|---:|---:|",
        f"| adjudicate run | {p['wall']:.2f} | {' '.join(f'{x:.2f}' for x in p['walls'])} | – | {p['rss']:.0f} |",
        f"| adjudicate run --audit | {a['wall']:.2f} | {' '.join(f'{x:.2f}' for x in a['walls'])} | "
        f"{a['stage'].get('audit', 0.0):.2f} | {a['rss']:.0f} |",
        "",
        f"Added by `--audit`: the audit stage (flags and indicators, in-process timer) takes **{stage:.2f} s, "
        f"{100 * stage / plain_stages:.1f} % of the plain run's stages** ({plain_stages:.2f} s); the difference "
        f"of the wall medians is {A['added']:+.2f} s ({pct:+.1f} %), which on a loaded machine is mostly noise "
        f"(target: under 20 %). "
        f"Flags: {s['flags']:,} on {s['flagged_claims']:,} claims ("
        + ", ".join(f"{k} {v['flags']:,}" for k, v in s["by_rule"].items())
        + "); "
        f"{s['indicator_rows']:,} indicator rows, {s['outliers']:,} outliers.",
        "",
        AUDIT_END,
    ]
    return rows


def write_marked(path: Path, begin: str, end: str, rows: list[str], heading: str = "") -> None:
    """Put ``rows`` between the ``begin`` and ``end`` markers of ``path``, replacing what was there (the rest
    of the file is left as it is); without markers, append them (after ``heading`` when given)."""
    text = path.read_text(encoding="utf-8") if path.exists() else heading or "# Benchmark results\n"
    block = "\n".join([begin, *rows, end])
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def write_audit_section(path: Path, rows: list[str]) -> None:
    """Put the audit section into RESULTS.md, replacing an earlier one (the rest is left as it is)."""
    write_marked(path, rows[0], rows[-1], rows[1:-1])


def bench_floor(data: Path, engine_out: Path, outdir: Path, repeat: int) -> dict:
    """pyarrow alone: read the engine's input columns, write outputs of the same shape."""
    import pyarrow.parquet as pq

    from adjudicate.schema import TABLES

    settlements = pq.read_table(out_file(engine_out, "settlements"))
    lines = pq.read_table(out_file(engine_out, "lines"))
    rejected = pq.read_table(out_file(engine_out, "rejected"))
    try:  # the engine's own Parquet writer options, so the files are alike in every respect
        from adjudicate.outputs import parquet_options
    except ImportError:

        def parquet_options(schema):
            return {}

    opts = {n: parquet_options(t.schema) for n, t in (("s", settlements), ("l", lines), ("r", rejected))}
    f = bench_data.paths(data)
    dst = outdir / "floor"
    dst.mkdir(parents=True, exist_ok=True)
    # the columns the engine reads: the contract's, where the file has them (some are optional)
    wanted = {name: [c.name for c in TABLES[name].columns if c.name in pq.read_schema(f[name]).names] for name in f}
    res = {"read": [], "write_settlements": [], "write_lines": []}
    cpu = []
    for i in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        tables = [pq.read_table(f[name], columns=wanted[name]) for name in f]
        t1 = time.perf_counter()
        pq.write_table(settlements, out_file(dst, "settlements"), **opts["s"])
        pq.write_table(rejected, out_file(dst, "rejected"), **opts["r"])
        t2 = time.perf_counter()
        pq.write_table(lines, out_file(dst, "lines"), **opts["l"])
        t3 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))
        del tables
        res["read"].append(t1 - t0)
        res["write_settlements"].append(t2 - t1)
        res["write_lines"].append(t3 - t2)
        say(f"  floor #{i + 1}: read {t1 - t0:.2f} s, write settlements {t2 - t1:.2f} s, lines {t3 - t2:.2f} s")
    full = [a + b + c for a, b, c in zip(res["read"], res["write_settlements"], res["write_lines"])]
    nol = [a + b for a, b in zip(res["read"], res["write_settlements"])]
    out = {k: median(v) for k, v in res.items()}
    out.update(
        full=median(full),
        nolines=median(nol),
        full_runs=full,
        nolines_runs=nol,
        options=opts["l"],
        user=median([u for u, _ in cpu]),
        sys=median([x for _, x in cpu]),
        rows_settlements=len(settlements),
        rows_lines=len(lines),
    )
    del settlements, lines
    gc.collect()
    return out


def bench_memory(data: Path, repeat: int, threads_list=(1, 2)) -> dict:
    """engine.adjudicate on pre-read inputs: encode / kernel / allocate timings per thread count.

    Measured as ``adjudicate run`` runs the engine: under the command line's allocation
    policy, whatever the environment makes it (heap.reuse_freed_memory, called here as the
    CLI calls it: off unless ADJUDICATE_REUSE_MEMORY=1), and not in a loop that keeps its
    outputs. Every call encodes again, as a run does; the medians of ``repeat`` calls are
    reported."""
    from adjudicate import engine
    from adjudicate import policy as P

    try:
        from adjudicate.heap import reuse_freed_memory
    except ImportError:  # a revision before the CLI set an allocation policy
        policy = False
    else:
        policy = reuse_freed_memory()
    f = bench_data.paths(data)
    inputs = engine.read_inputs([f["claims"]], [f["members"]], [f["providers"]], [f["catalogue"]])
    pol = P.load("prefecture-employee")
    lines = inputs.claims.rows
    res = {"lines": lines, "allocation_policy": policy}
    for th in threads_list:
        t = {"encode": [], "kernel": [], "allocate": [], "kernel_cpu": [], "allocate_cpu": []}
        for _i in range(repeat):
            r = engine.adjudicate(inputs, pol, threads=th)
            cpu = getattr(r, "cpu", {})  # CPU seconds of every thread (a revision before it: nan)
            for k in t:
                t[k].append(cpu.get(k[:-4], float("nan")) if k.endswith("_cpu") else r.timings.get(k, float("nan")))
            settled_lines = len(r.enc.amount)
            del r
            gc.collect()
        med = {k: median(v) for k, v in t.items()}
        med["kernel_lines_per_s"] = settled_lines / med["kernel"]
        med["per_core"] = med["kernel_lines_per_s"] / th
        med["per_cpu_s"] = settled_lines / med["kernel_cpu"]  # lines per CPU second: a loaded machine's rate
        res[th] = med
        say(
            f"  in memory, {th} thread(s): "
            + ", ".join(f"{k} {v:.3f} s" for k, v in med.items() if k in t)
            + f"; kernel {med['kernel_lines_per_s'] / 1e6:.1f} M lines/s, {med['per_cpu_s'] / 1e6:.1f} M per CPU second"
        )
    import stages

    ns = stages.prepare(data, inputs)
    res["compiled"] = stages.time_compiled(ns, repeat)
    res["compiled_lines"], res["compiled_claims"] = ns.lines, ns.claims
    say("  compiled calls alone, 1 thread: " + ", ".join(f"{k} {v:.3f} s" for k, v in res["compiled"].items()))
    del inputs, ns
    gc.collect()
    return res


def scale_data(total_lines: int, year: int, chunk_lines: int = 10_000_000) -> tuple[Path, int, int]:
    """The cached folder of the streamed data set (built or not), its chunks and members per chunk."""
    import math

    chunks = max(1, math.ceil(total_lines / chunk_lines))
    members = max(1, total_lines // chunks // 50)  # about 50 lines per member, as bench_data
    return bench_data.DATA / f"scale-{chunks}x{members}-y{year}", chunks, members


def scale_built(data: Path, chunks: int) -> bool:
    """Whether the streamed data set is complete (``.built``, or every chunk of an older build's files)."""
    if (data / ".built").exists():
        return True
    return (data / "catalogue.parquet").exists() and len(list((data / "claims").glob("*.parquet"))) == chunks


def bench_scale(total_lines: int, year: int, outdir: Path, partitions: int = 0, chunk_lines: int = 10_000_000) -> dict:
    """One `adjudicate run` with default options (or ``--partitions``, when given) on a data set larger than
    memory (built chunk by chunk by scale_out.py and cached): wall, peak RSS, partitions, stages."""
    import scale_out

    data, chunks, members = scale_data(total_lines, year, chunk_lines)
    if not scale_built(data, chunks):
        say(f"building {chunks} chunk(s) of {members:,} members into {data} ...")
        shutil.rmtree(data, ignore_errors=True)
        scale_out.build(chunks, members, year, data)
        (data / ".built").write_text("")
    out = outdir / "engine-scale"
    cmd = (
        adjudicate_cmd()
        + [
            "run",
            "--claims",
            str(data / "claims"),
            "--members",
            str(data / "members.parquet"),
            "--providers",
            str(data / "providers.parquet"),
            "--catalogue",
            str(data / "catalogue.parquet"),
            "--policy",
            "prefecture-employee",
            "--out",
            str(out),
            "-q",
        ]
        + (["--partitions", str(partitions)] if partitions else [])
    )
    wall, rss = run_cmd_rss(cmd)[:2]
    s = json.loads((out / "summary.json").read_text())
    part = s["timings_seconds"].get("partition")
    say(
        f"  {s['counts']['input_lines']:,} lines: {wall:.1f} s, peak RSS {rss:.0f} MiB, "
        f"{s.get('partitions', 1)} partition(s)" + (f", partition pass {part:.1f} s" if part is not None else "")
    )
    shutil.rmtree(out, ignore_errors=True)
    return {
        "wall": wall,
        "rss": rss,
        "lines": s["counts"]["input_lines"],
        "claims": s["counts"]["input_claims"],
        "partitions": s.get("partitions", 1),
        "reconciles": s["counts"]["reconciles"],
        "invariants": s.get("invariants_hold"),
        "stages": s["timings_seconds"],
        "partition": part,
        "chunks": chunks,
        "members": members,
        "forced_partitions": partitions,
    }


def layout_figures(R: dict) -> dict:
    """The end-to-end figures of the main layout, in the shape ``bench_layout`` returns."""
    return {"full": R["full"], "nolines": R["nolines"], "floor": R["floor"], "duckdb": R["peers"].get("duckdb")}


def bench_layout(order: str, args, outdir: Path, duckdb: bool) -> dict:
    """The same data in another row order: I/O floor, run, run --no-lines and DuckDB, each checked."""
    data, _ = bench_data.dataset_for_lines(
        bench_data.parse_count(args.lines), args.year, args.seed, say=say, order=order
    )
    warm(data)
    sub = outdir / order
    sub.mkdir(parents=True, exist_ok=True)
    res = {
        "data": data,
        "full": bench_engine(data, sub, True, args.repeat),
        "nolines": bench_engine(data, sub, False, args.repeat),
    }
    res["floor"] = bench_floor(data, res["full"]["out"], sub, args.repeat)
    res["duckdb"] = None
    if duckdb:
        p = bench_peer("duckdb", data, sub, args.repeat)
        p["agree"] = compare(out_file(res["nolines"]["out"], "settlements"), p["out"])
        res["duckdb"] = p
    return res


def bench_startup(repeat: int, outdir: Path) -> dict:
    tiny, meta = bench_data.dataset(20, say=say)
    walls, over, timings = [], [], []
    for _i in range(max(repeat, 5)):
        out = outdir / "engine-tiny"
        w = run_cmd_rss(engine_args(tiny, out, True)).wall
        s = json.loads((out / "summary.json").read_text())
        walls.append(w)
        over.append(w - sum(s["timings_seconds"].values()))
        timings.append(s["timings_seconds"])
    bare = run_cmd_rss([sys.executable, "-c", "pass"]).wall
    ver = run_cmd_rss(adjudicate_cmd() + ["--version"]).wall
    return {
        "lines": meta["rows"]["claims"],
        "wall": median(walls),
        "overhead": median(over),
        "stages": {k: median([t.get(k, 0.0) for t in timings]) for k in stage_names(timings)},
        "python": bare,
        "version": ver,
    }


def bench_peer(name: str, data: Path, outdir: Path, repeat: int) -> dict:
    out = outdir / f"peer-{name}.parquet"
    walls, rss, inner, cpu = [], [], [], []
    for i in range(repeat):
        ran = run_cmd_rss([sys.executable, str(PEER_SCRIPT), name, "--data", str(data), "--out", str(out)])
        w = ran.wall
        walls.append(w)
        rss.append(ran.rss)
        cpu.append((ran.user, ran.sys))
        inner.append(json.loads(ran.stdout.strip().splitlines()[-1]))
        say(f"  {name} #{i + 1}: {w:.2f} s")
    return {
        "wall": median(walls),
        "walls": walls,
        "rss": max(rss),
        "user": median([u for u, _ in cpu]),
        "sys": median([x for _, x in cpu]),
        "out": out,
        "inner": {k: median([x[k] for x in inner]) for k in inner[0]},
    }


def _short(file: str) -> str:
    parts = Path(file).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(anchor) :])
    return "/".join(parts[-2:])


def profile_engine(data: Path, outdir: Path, top: int = 25) -> dict:
    """cProfile of one ``adjudicate run`` (full outputs): top functions by own time."""
    import pstats

    prof = outdir / "engine.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "adjudicate.cli"] + engine_args(
        data, outdir / "engine-prof", True
    )[len(adjudicate_cmd()) :]
    w = run_cmd_rss(cmd).wall
    st = pstats.Stats(str(prof))
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():
        where = fn if file == "~" else f"{_short(file)}:{line}({fn})"
        rows.append((tt, ct, nc, where))
    by_own = sorted(rows, reverse=True)[:top]
    by_cum = sorted(
        ((ct, tt, nc, where) for tt, ct, nc, where in rows if where.startswith("adjudicate/")), reverse=True
    )[:top]
    return {"wall": w, "own": by_own, "cum": by_cum, "total": st.total_tt, "file": prof, "rows": rows}


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
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


def defects_paragraph(d: dict, clean: dict) -> str:
    """What defective claims cost: the stages of the run on the defective data against the clean run's."""
    diffs = sorted(
        (
            (k, d["stages"].get(k, 0.0) - clean["stages"].get(k, 0.0))
            for k in stage_names([d["stages"], clean["stages"]])
        ),
        key=lambda kv: -abs(kv[1]),
    )
    parts = ", ".join(f"`{k}` {v:+.2f} s" for k, v in diffs if abs(v) >= 0.05) or "no stage moved by 0.05 s or more"
    return (
        f"Defective claims: the same generator and seed with {100 * d['fraction']:g} % of claims made defective "
        f"(`generate --bad-rows {d['fraction']:g}`: every reason of contract §4, about as many as the independent "
        f"data set of the outside measurements), {d['rejected']:,} of {d['claims']:,} claims rejected. Real exports "
        f"have them, so the clean figures above would flatter a slow rejection path. Against the clean run: wall "
        f"{d['wall'] - clean['wall']:+.2f} s; by stage (medians) {parts}."
    )


def cpu_text(m: dict | None) -> str:
    """A measurement's median CPU seconds as "user + sys" ("–" when not measured)."""
    if not m or "user" not in m or m["user"] != m["user"]:  # absent, or nan (no GNU time)
        return "–"
    return f"{m['user']:.1f} + {m['sys']:.1f}"


def fmt_rate(lines: int, s: float) -> str:
    return f"{lines / s / 1e6:.2f} M" if s > 0 else "–"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "–"


#: The hand-written closing section of RESULTS.md (what the figures mean, what
#: would move a missed target); kept across runs, to be revised with them.
KEPT = "Reading the figures"


def kept_section(results: Path) -> str:
    """The closing section of the previous results file, to append to the new one."""
    try:
        old = results.read_text(encoding="utf-8")
    except OSError:
        return ""
    at = old.find(f"\n## {KEPT}")
    if at < 0:
        return ""
    ends = [e for e in (old.find("\n## ", at + 1), old.find("\n<!--", at + 1)) if e >= 0]
    return "\n\n" + old[at : min(ends, default=len(old))].strip("\n")


def report(args, m: dict, meta: dict, R: dict) -> str:
    lines, claims = meta["rows"]["claims"], meta["claims"]
    full, nol, fl = R["full"], R["nolines"], R["floor"]
    out = [
        "# Benchmark results",
        "",
        "Every figure below was measured by `benchmarks/run.py` in one invocation; nothing is edited by hand "
        f"except the closing section '{KEPT}', which the script keeps when it rewrites this file.",
        "",
        "Command:",
        "",
        "```",
        R["command"],
        "```",
        "",
        f"Measured {R['when']}, in {R['elapsed']:.0f} s (estimated beforehand: "
        f"{sum(R.get('estimate', {}).values()):.0f} s). Headline rows (run, run --no-lines, I/O floor, peers, "
        f"other row orders, engine in memory): medians of {args.repeat} run(s); the others (--partitions, datasets, "
        f"compare, sweep, readjudicate, --audit): {args.repeat_other}.",
        "",
        "| section | estimated s | took s |",
        "|---|---:|---:|",
        *(
            f"| {k} | {R.get('estimate', {}).get(k, float('nan')):.0f} | {v:.0f} |"
            for k, v in R.get("sections", {}).items()
        ),
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} core(s) available ({m['logical']} logical)",
        f"- RAM: {m['ram']}",
        f"- OS: {m['os']}",
        "- " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + f" ({m['git']})",
        f"- load average (1, 5, 15 min) at start: {' '.join(f'{x:.2f}' for x in m['load'])}, at the end: "
        f"{' '.join(f'{x:.2f}' for x in R['load_end'])} (the machine is shared with other work; "
        "figures are medians)",
        "",
        "## Data",
        "",
        f"`adjudicate.generate.generate_tables(members={meta['members']:,}, year={meta['year']}, "
        f"seed={meta['seed']}, order={meta.get('order', 'date')!r})` (generator digest `{meta['generator']}`; "
        f"claims in **{meta.get('order', 'date')} order**): **{lines:,} lines**, "
        f"{claims:,} claims, {meta['rows']['members']:,} members, {meta['rows']['providers']:,} providers, "
        f"{meta['rows']['catalogue']:,} catalogue rows; Parquet (zstd), "
        f"{sum(p.stat().st_size for p in bench_data.paths(R['data']).values()) / 2**20:.0f} MiB. "
        f"Policy `prefecture-employee`. All runs read the same files from a warm page cache; "
        f"medians of {args.repeat} run(s).",
        "",
    ]

    out += [
        "## End to end",
        "",
        "Wall time of a whole process (start-up, read, work, write), except the I/O floor, which is timed "
        "in-process. 'Same shape' = the outputs that contender writes: full = settlements + lines + "
        "rejected, settlements = settlements (+ rejected) only.",
        "",
        "| contender | outputs | wall s (median) | runs | lines/s | CPU s user + sys | peak RSS MiB "
        "| ÷ I/O floor (same shape) | ÷ adjudicate (same shape) | disagreements with the engine |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]

    def row(name, outputs, wall, runs, rss, floor, ours, agree, cpu=None):
        runs_s = " ".join(f"{x:.2f}" for x in runs) if runs else "–"
        out.append(
            f"| {name} | {outputs} | {wall:.2f} | {runs_s} | {fmt_rate(lines, wall)} | {cpu_text(cpu)} | "
            f"{rss if isinstance(rss, str) else f'{rss:.0f}'} | {ratio(wall, floor) if floor else '–'} | "
            f"{ratio(wall, ours) if ours else '–'} | {agree} |"
        )

    row("I/O floor (pyarrow read + write)", "full", fl["full"], fl["full_runs"], "–", None, None, "–", fl)
    row("I/O floor (pyarrow read + write)", "settlements", fl["nolines"], fl["nolines_runs"], "–", None, None, "–")
    row(
        f"**adjudicate run** (default: {full['partitions']} partition(s))",
        "full",
        full["wall"],
        full["walls"],
        full["rss"],
        fl["full"],
        None,
        "(reference)",
        full,
    )
    if R.get("defects"):
        d = R["defects"]
        row(
            f"adjudicate run, {100 * d['fraction']:g} % of claims defective ({d['rejected']:,} rejected; "
            f"{len(d['walls'])} run(s))",
            "full",
            d["wall"],
            d["walls"],
            d["rss"],
            fl["full"],
            full["wall"],
            "– (other data)",
            d,
        )
    if R.get("inmem"):
        im = R["inmem"]
        row(
            "adjudicate run --partitions 1 (all in memory)",
            "full",
            im["wall"],
            im["walls"],
            im["rss"],
            fl["full"],
            None,
            agree_text(im) + " vs the default run",
            im,
        )
    if R.get("stream"):
        st = R["stream"]
        row(
            "adjudicate run --partitions 8 (streaming; 1 run)",
            "full",
            st["wall"],
            st["walls"],
            st["rss"],
            fl["full"],
            None,
            agree_text(st) + " vs the default run",
            st,
        )
    row(
        f"**adjudicate run --no-lines** (default: {nol['partitions']} partition(s))",
        "settlements",
        nol["wall"],
        nol["walls"],
        nol["rss"],
        fl["nolines"],
        None,
        "(reference)",
        nol,
    )
    for name, label in (("duckdb", "DuckDB SQL"), ("polars", "Polars (lazy)")):
        if name in R["peers"]:
            p = R["peers"][name]
            row(label, "settlements", p["wall"], p["walls"], p["rss"], fl["nolines"], nol["wall"], agree_text(p), p)
    if "python" in R["peers"]:
        p = R["peers"]["python"]
        out.append(
            f"| plain Python loop (extrapolated from {p['sample_lines']:,} lines of every {p['every']}-th member) "
            f"| settlements | {p['wall']:.1f} | sample {p['sample_wall']:.2f} | {fmt_rate(lines, p['wall'])} | – | "
            f"{p['rss']:.0f} (sample) | {ratio(p['wall'], fl['nolines'])} | {ratio(p['wall'], nol['wall'])} | "
            f"{agree_text(p)} (on the sample) |"
        )
    out += [
        "",
        f"I/O floor parts (median): read inputs {fl['read']:.2f} s, write settlements "
        f"({fl['rows_settlements']:,} rows) {fl['write_settlements']:.2f} s, write lines "
        f"({fl['rows_lines']:,} rows) {fl['write_lines']:.2f} s. Writer options (the engine's "
        f"`outputs.parquet_options` where it has one), lines.parquet: `{fl['options'] or 'pyarrow defaults'}`. "
        "The floor reads and writes one file after another with pyarrow's own threading; the engine "
        "also writes lines.parquet beside settlements.parquet on a second thread, so on two cores it "
        "can come under the floor's write time.",
        "",
    ]
    if R.get("defects"):
        out += [defects_paragraph(R["defects"], full), ""]

    if len(R.get("layouts", {})) > 1:
        lnames = stage_names([L["full"]["stages"] for L in R["layouts"].values()])
        out += [
            "## Row orders of the same data",
            "",
            "The claims file's rows in the order of `adjudicate generate --order`: **date** (claims in "
            "settlement-date order, members interleaved, each claim's lines together: a settlement system's "
            "nightly export, and the generator's default), **shuffled** (lines in random order), **member** "
            "(each member's claims together, the layout that flatters the engine's sorts). Same rows, same "
            "results (checked claim by claim against the first order's settlements). Medians of "
            f"{args.repeat} run(s).",
            "",
            "| order | I/O floor full s | run s | ÷ floor | I/O floor settlements s | run --no-lines s | "
            "÷ floor | DuckDB s | DuckDB ÷ --no-lines | " + " | ".join(lnames) + " | agrees with the first order |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(lnames) + "---|",
        ]
        first = None
        for order, L in R["layouts"].items():
            f, nl, fl2, d = L["full"], L["nolines"], L["floor"], L["duckdb"]
            if first is None:
                first, agree = f, "(reference)"
            else:
                agree = agree_text(
                    {"agree": compare(out_file(first["out"], "settlements"), out_file(f["out"], "settlements"))}
                )
            st = f["stages"]
            out.append(
                f"| {order} | {fl2['full']:.2f} | {f['wall']:.2f} | {ratio(f['wall'], fl2['full'])} | "
                f"{fl2['nolines']:.2f} | {nl['wall']:.2f} | {ratio(nl['wall'], fl2['nolines'])} | "
                + (f"{d['wall']:.2f} | {ratio(d['wall'], nl['wall'])}" if d else "– | –")
                + " | "
                + " | ".join(f"{st.get(k, 0.0):.2f}" for k in lnames)
                + f" | {agree} |"
            )
        out.append("")

    engine_runs = [r for r in (full, nol, R.get("inmem"), R.get("stream")) if r]
    names = stage_names([r["stages"] for r in engine_runs])
    out += [
        "## Stages of `adjudicate run` (summary.json `timings_seconds`, median)",
        "",
        "Every timer the summaries report, whatever its name; wall − Σ is what no timer covers (start-up "
        "until the first timer, and whatever work has none).",
        "",
        "| run | partitions | " + " | ".join(names) + " | Σ stages | wall | wall − Σ (untimed) |",
        "|---|---:|" + "---:|" * (len(names) + 3),
    ]
    for r in engine_runs:
        st = r["stages"]
        tot = sum(st.values())
        out.append(
            f"| `{r['name']}` | {r['partitions']} | "
            + " | ".join(f"{st.get(k, 0.0):.2f}" for k in names)
            + f" | {tot:.2f} | {r['wall']:.2f} | {r['wall'] - tot:.2f} |"
        )
    out.append("")

    mem = R["memory"]
    out += [
        "## Engine in memory (`engine.adjudicate` on pre-read inputs)",
        "",
        f"{mem['lines']:,} lines. 'kernel' is the engine's own `kernel` timer (line split, negative-claim "
        "check, claim settlement); lines/s/core = lines ÷ kernel seconds ÷ threads. 'kernel CPU' is the CPU "
        "time of every thread of that stage (`Result.cpu`, summed over the threads): lines per CPU second "
        "is the per-core rate a loaded machine does not distort by waiting (it still pays for others' "
        "use of the caches). "
        + (
            "Measured with `ADJUDICATE_REUSE_MEMORY=1` (docs/memory.md): its arrays reuse memory freed "
            "before them, as in such a run after read and encode."
            if mem.get("allocation_policy")
            else "Measured with the C library's default allocation, as `adjudicate run` runs by default "
            "(docs/memory.md): big arrays are mapped afresh at each call."
        ),
        "",
        "| threads | encode s | kernel s | kernel CPU s | allocate s | allocate CPU s | kernel lines/s "
        "| kernel lines/s/core | kernel lines per CPU s | kernel speedup |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = mem[1]["kernel"] if 1 in mem else None
    for th in (1, 2):
        if th in mem:
            x = mem[th]
            out.append(
                f"| {th} | {x['encode']:.3f} | {x['kernel']:.3f} | {x.get('kernel_cpu', float('nan')):.3f} | "
                f"{x['allocate']:.3f} | {x.get('allocate_cpu', float('nan')):.3f} | "
                f"{x['kernel_lines_per_s'] / 1e6:.1f} M | {x['per_core'] / 1e6:.1f} M | "
                f"{x.get('per_cpu_s', float('nan')) / 1e6:.1f} M | {base / x['kernel']:.2f}× |"
            )
    c = mem.get("compiled")
    if c:
        ks = c["split_lines"] + c["settle_claims"]
        fused = (
            f"`settle_lines` (the engine's one kernel call: split, check and settlement) {c['settle_lines']:.3f} s "
            f"({mem['compiled_lines'] / c['settle_lines'] / 1e6:.1f} M lines/s, its outputs fresh as in a run); "
            if "settle_lines" in c
            else ""
        )
        out += [
            "",
            f"The compiled functions alone (one call each over all {mem['compiled_lines']:,} lines / "
            f"{mem['compiled_claims']:,} claims, 1 thread): {fused}its halves as separate calls, outputs "
            f"allocated beforehand: `split_lines` {c['split_lines']:.3f} s, `settle_claims` "
            f"{c['settle_claims']:.3f} s (together {mem['compiled_lines'] / ks / 1e6:.1f} M lines/s); `allocate` "
            f"(fund_pool alone) {c['allocate']:.3f} s. The difference from the `kernel` timer above is the work "
            "around the call (output arrays, chunking, thread pool).",
        ]
    out.append("")

    su = R["startup"]
    out += [
        "## Start-up",
        "",
        f"`adjudicate run` on a tiny input ({su['lines']:,} lines, full outputs): wall {su['wall']:.2f} s, of "
        f"which {su['overhead']:.2f} s is outside the timed stages. For scale: `python -c pass` "
        f"{su['python']:.2f} s, `adjudicate --version` {su['version']:.2f} s.",
        "",
    ]

    layouts = R.get("layouts", {})
    first_order = meta.get("order", "date")
    if R["peers"]:
        out += [
            "## Agreement of the peers with the engine (mismatching claims per column, to the fen)",
            "",
            "| peer | claims compared | missing | extra | " + " | ".join(AGREE_COLS) + " |",
            "|---|---:|---:|---:|" + "---:|" * len(AGREE_COLS),
        ]
        checked = [(f"{name}, {first_order} order", p) for name, p in R["peers"].items()]
        checked += [(f"duckdb, {o} order", L["duckdb"]) for o, L in list(layouts.items())[1:] if L.get("duckdb")]
        for name, p in checked:
            a = p["agree"]
            out.append(
                f"| {name} | {a['claims']:,} | {a['missing']} | {a['extra']} | "
                + " | ".join(str(a["mismatch"].get(c, "–")) for c in AGREE_COLS)
                + " |"
            )
        out.append("")

    if R.get("scale"):
        sc = R["scale"]
        out += [
            "## Streaming at scale",
            "",
            "`adjudicate run` with "
            + (f"`--partitions {sc['forced_partitions']}`" if sc.get("forced_partitions") else "default options")
            + f" on {sc['lines']:,} lines ({sc['claims']:,} claims; "
            f"{sc['chunks']} generated populations of {sc['members']:,} members with disjoint ids, built by "
            f"`benchmarks/scale_out.py`): {sc['partitions']} partition(s); wall {sc['wall']:.1f} s"
            + (
                f" (the partition pass {sc['partition']:.1f} s, {100 * sc['partition'] / sc['wall']:.0f} %)"
                if sc.get("partition") is not None
                else ""
            )
            + ", "
            f"peak RSS {sc['rss']:.0f} MiB; counts reconcile: {sc['reconciles']}; invariants hold: "
            f"{sc['invariants']}. Stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in sc["stages"].items()) + ".",
            "",
        ]

    if R.get("reuse"):
        rs = R["reuse"]
        out += [
            "## Not decoding twice: datasets, compare, sweep, incremental nights (issue 9 §3–5)",
            "",
            "Whole-process walls against the cold `adjudicate run` above (full outputs). `prepare` writes the "
            "checked, encoded inputs once; readjudicate corrects "
            f"{rs['corrected_claims']:,} claims (1 %; amounts doubled) after a night run from a dataset: "
            f"{json.dumps(rs['readjudicate_summary'])}.",
            "",
        ]
        out += reuse.rows(rs, full["wall"]) + [""]

    rows = targets(R, lines)
    out += ["## Targets (issues 4 and 9)", "", "| target | measured | met? |", "|---|---|---|"]
    for t, v, ok, _why in rows:
        out.append(f"| {t} | {v} | {ok} |")
    if lines < 9_000_000:
        out.append("")
        out.append(f"Note: the targets are stated for 10M lines; this run has {lines:,}.")
    out.append("")
    missed = [why for _t, _v, _ok, why in rows if why]
    if missed:
        out += [
            "## Bounds of the missed targets",
            "",
            "Written by `run.py` from this run's figures: the parts of the run that missed (its summary.json "
            "stages, and the wall outside them), the largest part (or the largest excess over the I/O floor's "
            "part of the same name) as the bound, the profile's costliest functions of it (when `--profile`), "
            "and what would move it (`benchmarks/bounds.py`).",
            "",
        ]
        for why in missed:
            out += [f"- {why}"]
        out.append("")

    if R.get("profile"):
        p = R["profile"]
        out += [
            "## Profile of `adjudicate run` (cProfile, one run, full outputs)",
            "",
            f"Wall under the profiler {p['wall']:.2f} s. Top functions by own time:",
            "",
            "| own s | cumulative s | calls | function |",
            "|---:|---:|---:|---|",
        ]
        for tt, ct, nc, where in p["own"]:
            out.append(f"| {tt:.2f} | {ct:.2f} | {nc} | `{where}` |")
        out += [
            "",
            "Package functions by cumulative time:",
            "",
            "| cumulative s | own s | calls | function |",
            "|---:|---:|---:|---|",
        ]
        for ct, tt, nc, where in p["cum"]:
            out.append(f"| {ct:.2f} | {tt:.2f} | {nc} | `{where}` |")
        out.append("")
    return "\n".join(out)


AGREE_COLS = (*AMOUNTS, "admission_ordinal", "settle_date", "benefit_year")


def agree_text(p: dict) -> str:
    a = p["agree"]
    n = a["total_mismatches"]
    return "none (0 of {:,} claims)".format(a["claims"]) if n == 0 else f"**{n} mismatches**"


README = HERE.parent / "README.md"
SPEED_BEGIN = "<!-- speed: written by benchmarks/run.py from its run; do not edit by hand -->"
SPEED_END = "<!-- /speed -->"


def speed_block(R: dict, meta: dict, m: dict, results: Path) -> list[str]:
    """The README's speed table and its few sentences, every figure from this run."""
    lines = meta["rows"]["claims"]
    full, nol, fl = R["full"], R["nolines"], R["floor"]
    load = (m["load"][0] + R["load_end"][0]) / 2
    try:
        link = results.resolve().relative_to(README.parent.resolve()).as_posix()
    except ValueError:  # results written outside the repository
        link = results.as_posix()
    out = [
        f"Measured by `{R['command']}` on {m['cores']} cores "
        f"(load average about {load:.1f}: {'quiet' if load < m['cores'] + 0.5 else 'shared with other work'}), "
        f"{R['when']}, {m['git']}, on **{meta.get('order', 'date')}-order** data (`generate --order "
        f"{meta.get('order', 'date')}`), {lines / 1e6:.2f} million lines, prefecture scheme, medians of "
        f"{R['repeat']}. Every table, the other row orders, the bounds of the missed targets and the profile are "
        f"in [{link}]({link}).",
        "",
        "| | wall | ÷ I/O floor |",
        "|---|---:|---:|",
        f"| pyarrow alone, in-process: read the inputs, write outputs of the same shape | {fl['full']:.2f} s | |",
        f"| `adjudicate run`, all outputs | {full['wall']:.2f} s | {ratio(full['wall'], fl['full'])} |",
    ]
    if R.get("inmem"):
        out.append(
            f"| `adjudicate run --partitions 1` (all in memory) | {R['inmem']['wall']:.2f} s | "
            f"{ratio(R['inmem']['wall'], fl['full'])} |"
        )
    if R.get("stream"):
        out.append(
            f"| `adjudicate run --partitions 8` (streaming) | {R['stream']['wall']:.2f} s | "
            f"{ratio(R['stream']['wall'], fl['full'])} |"
        )
    out += [
        f"| pyarrow alone, settlements only | {fl['nolines']:.2f} s | |",
        f"| `adjudicate run --no-lines`, settlements only | {nol['wall']:.2f} s | {ratio(nol['wall'], fl['nolines'])} |",
    ]
    for name, label in (("duckdb", "DuckDB SQL"), ("polars", "Polars")):
        p = R["peers"].get(name)
        if p:
            agrees = "agrees to the fen" if not p["agree"]["total_mismatches"] else "**disagrees**"
            out.append(
                f"| {label} formulation, settlements only ({agrees}) | {p['wall']:.2f} s | "
                f"{ratio(p['wall'], fl['nolines'])} |"
            )
    for order, L in list(R.get("layouts", {}).items())[1:]:
        out.append(
            f"| `adjudicate run`, all outputs, {order}-order rows | {L['full']['wall']:.2f} s | "
            f"{ratio(L['full']['wall'], L['floor']['full'])} |"
        )
        out.append(
            f"| `adjudicate run --no-lines`, {order}-order rows | {L['nolines']['wall']:.2f} s | "
            f"{ratio(L['nolines']['wall'], L['floor']['nolines'])} |"
        )
        if L.get("duckdb"):
            d = L["duckdb"]
            agrees = "agrees to the fen" if not d["agree"]["total_mismatches"] else "**disagrees**"
            out.append(
                f"| DuckDB SQL, {order}-order rows ({agrees}) | {d['wall']:.2f} s | "
                f"{ratio(d['wall'], L['floor']['nolines'])} |"
            )
    for name, v in (R.get("reuse") or {}).items():
        if isinstance(v, dict) and "wall" in v and name != "prepare (corrected)":
            r = v.get("ratio", v["wall"] / full["wall"])
            out.append(f"| `{name}` | {v['wall']:.2f} s | {r:.2f}× of a cold run |")
    if R.get("scale"):
        sc = R["scale"]
        part = f", partition pass {100 * sc['partition'] / sc['wall']:.0f} % of it" if sc.get("partition") else ""
        out.append(
            f"| `adjudicate run`, {sc['lines'] / 1e6:.1f} M lines streamed in {sc['partitions']} partitions "
            f"(peak RSS {sc['rss'] / 1024:.2f} GiB{part}) | {sc['wall']:.1f} s | |"
        )
    su, mem = R["startup"], R["memory"]
    rows = targets(R, lines)
    met = sum(1 for r in rows if r[2] == "yes")
    out += [
        "",
        f"Start-up: {su['overhead']:.2f} s of a {su['wall']:.2f} s run on a tiny input is outside the timed "
        f"stages (`adjudicate --version` alone {su['version']:.2f} s). The compiled kernel settles "
        f"{mem[1]['per_core'] / 1e6:.0f} M lines/s on one core (the engine's `kernel` timer). Targets of issue 9 "
        f"met: {met} of {len(rows)}; RESULTS.md names what bounds each missed one.",
    ]
    return out


def verdict(ok: bool, over: float, word: str = "over") -> str:
    return "yes" if ok else f"no ({over:.2f}× {word})"


def targets(R: dict, lines: int) -> list[tuple[str, str, str, str | None]]:
    """(target, measured, met?, the bound when missed: a paragraph written from the measurements)."""
    full, fl, nol, mem, su = R["full"], R["floor"], R["nolines"], R["memory"], R["startup"]
    prof = R.get("profile")
    res: list[tuple[str, str, str, str | None]] = []

    def floor_parts(f: dict) -> dict:
        return {"read": f["read"], "write": f["write_settlements"] + f["write_lines"]}

    def floor_cpu(f: dict) -> dict:
        return {"user": f.get("user"), "sys": f.get("sys")}

    def vs_floor(what: str, run: dict, floor: dict) -> None:
        r = run["wall"] / floor["full"]
        ok = r <= 1.5
        why = (
            None
            if ok
            else bounds.explain(
                what,
                run["stages"],
                run["wall"],
                1.5 * floor["full"],
                floor_parts(floor),
                prof,
                cpu={"user": run.get("user"), "sys": run.get("sys"), "versus": ("the floor", floor_cpu(floor))},
            )
        )
        res.append((what, f"{r:.2f}× ({run['wall']:.2f} s vs {floor['full']:.2f} s)", verdict(ok, r / 1.5), why))

    vs_floor("end to end ≤ 1.5 × I/O floor (full outputs, default run)", full, fl)
    if R.get("inmem"):
        vs_floor("… the same with `--partitions 1` (all in memory)", R["inmem"], fl)
    for order, L in R.get("layouts", {}).items():
        if order != next(iter(R["layouts"])):
            vs_floor(f"… the same on {order}-order rows", L["full"], L["floor"])
    layouts = R.get("layouts") or {"": {"nolines": nol, "duckdb": R["peers"].get("duckdb")}}
    for order, L in layouts.items():
        if L.get("duckdb"):
            d = L["duckdb"]["wall"] / L["nolines"]["wall"]
            what = "`run --no-lines` ≥ 2.5 × faster than DuckDB (settlements only, both)" + (
                f", {order} order" if order else ""
            )
            why = None
            if d < 2.5:
                n = L["nolines"]
                why = bounds.explain(
                    what,
                    n["stages"],
                    n["wall"],
                    L["duckdb"]["wall"] / 2.5,
                    profile=prof,
                    cpu={"user": n.get("user"), "sys": n.get("sys"), "versus": ("DuckDB", floor_cpu(L["duckdb"]))},
                )
            res.append(
                (
                    what,
                    f"{d:.2f}× ({L['duckdb']['wall']:.2f} s vs {L['nolines']['wall']:.2f} s)",
                    verdict(d >= 2.5, 2.5 / d, "short"),
                    why,
                )
            )
    if 1 in mem:
        pc1 = mem[1]["per_core"]
        ok = pc1 >= 50e6
        res.append(
            (
                "kernel ≥ 50 M lines/s/core (1 thread)",
                f"{pc1 / 1e6:.1f} M",
                verdict(ok, 50e6 / pc1, "short"),
                None if ok else bounds.kernel(mem),
            )
        )
    if 1 in mem and 2 in mem:
        sp = mem[1]["kernel"] / mem[2]["kernel"]
        ok = sp >= 1.8
        res.append(
            (
                "near-linear kernel thread speedup (read as ≥ 1.8× on 2 threads)",
                f"{sp:.2f}×",
                "yes" if ok else "no",
                None if ok else bounds.speedup(mem, R.get("load_end", os.getloadavg())),
            )
        )
    ok = su["overhead"] < 1
    res.append(
        (
            "start-up on a tiny input < 1 s beyond the work",
            f"{su['overhead']:.2f} s",
            "yes" if ok else "no",
            None if ok else bounds.explain("start-up", su.get("stages", {}), su["wall"], profile=prof),
        )
    )
    if R.get("reuse"):
        rs = R["reuse"]
        for name, v in rs.items():
            if not (isinstance(v, dict) and "wall" in v):
                continue
            for what, measured, met in reuse.targets({name: v}, full["wall"]):
                why = None
                if met != "yes":
                    m = re.search(r"≤ ([\d.]+) ×", what)
                    budget = float(m.group(1)) * full["wall"] if m else None
                    why = bounds.explain(what, v.get("stages", {}), v["wall"], budget, profile=None)
                res.append((what, measured, met, why))
    if R.get("scale"):
        sc = R["scale"]
        gib = sc["rss"] / 1024
        big = sc["lines"] >= 45e6
        how = f"{sc['lines'] / 1e6:.1f} M lines, {sc['partitions']} partitions" + (
            f" (`--partitions {sc['forced_partitions']}`)" if sc.get("forced_partitions") else ", chosen automatically"
        )
        ok = gib < 4 and big
        res.append(
            (
                f"streaming: 50 M lines under 4 GiB peak RSS ({how})",
                f"{gib:.2f} GiB, {sc['wall']:.0f} s",
                "yes" if ok else ("no" if big else "no (fewer than 50 M lines)"),
                None
                if ok or not big
                else bounds.explain("streaming under 4 GiB", sc["stages"], sc["wall"], profile=None)
                + f" Peak RSS {sc['rss']:.0f} MiB.",
            )
        )
        if sc.get("partition") is not None:
            share = sc["partition"] / sc["wall"]
            ok = share <= 0.25
            res.append(
                (
                    f"streaming: partition pass ≤ 25 % of the wall ({how})",
                    f"{100 * share:.0f} % ({sc['partition']:.1f} s of {sc['wall']:.1f} s)",
                    verdict(ok, share / 0.25),
                    None
                    if ok
                    else bounds.explain(
                        "partition pass ≤ 25 % of the streamed wall",
                        sc["stages"],
                        sc["wall"],
                        0.25 * sc["wall"],
                        focus="partition",
                    ),
                )
            )
        else:
            res.append(
                (
                    "streaming: partition pass ≤ 25 % of the wall",
                    "not timed (summary.json has no `partition` timer: the run did not partition)",
                    "–",
                    None,
                )
            )
    return res


# ---------------------------------------------------------------------------
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


def use_snapshot(argv: list[str], script: Path | None = None) -> None:
    """Re-run this script on a clean build of the repository's HEAD (``--snapshot``).

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
    os.execve(sys.executable, [sys.executable, str(script or Path(__file__).resolve())] + argv, env)


def check_snapshot() -> None:
    import adjudicate

    snap = os.environ.get("BENCH_SNAPSHOT")
    if snap and f"snapshot-{snap[:10]}" not in adjudicate.__file__:
        raise SystemExit(f"--snapshot: adjudicate was imported from {adjudicate.__file__}, not the snapshot")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    ap.add_argument(
        "--lines", default=None, help="about how many claim lines (e.g. 1M, 10M; default 10M, 200k with --quick)"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per headline measurement (run, run --no-lines, I/O floor, engine in memory, peers, other "
        "orders); medians "
        "are reported (default 3, 1 with --quick)",
    )
    ap.add_argument(
        "--repeat-other",
        type=int,
        default=1,
        help="runs per secondary measurement (--partitions 1, datasets/compare/sweep/readjudicate, --audit); "
        "above 1 the reuse rows are paired with a cold run each (default 1)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="for development: 200k lines, one run each, date order only, DuckDB only, no profile, no README",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument(
        "--python-sample",
        default="100k",
        help="lines in the member sample the plain-Python peer runs on (default 100k)",
    )
    ap.add_argument(
        "--peers",
        default=None,
        help="comma-separated peers to run (duckdb, polars, python; '' for none; default duckdb,polars)",
    )
    ap.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cProfile one adjudicate run; the bounds of missed targets name its functions (default on)",
    )
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite the speed block of README.md from this run (default: when writing benchmarks/RESULTS.md)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the output files under benchmarks/data/out-*")
    ap.add_argument(
        "--stream-lines",
        default="",
        help="also run the default command once on a data set this large (e.g. 50M), built chunk by "
        "chunk and cached, for the streaming targets (peak RSS, partition pass share)",
    )
    ap.add_argument(
        "--stream-partitions",
        type=int,
        default=0,
        help="--partitions for the streamed run (default: the engine chooses; set it to stream a small set)",
    )
    ap.add_argument(
        "--no-reuse",
        dest="reuse",
        action="store_false",
        help="skip the rows of benchmarks/reuse.py (prepare, run --dataset, compare, sweep, readjudicate)",
    )
    ap.add_argument("--no-audit", dest="audit", action="store_false", help="skip `run --audit` against `run` (issue 4)")
    ap.add_argument(
        "--defects",
        type=float,
        default=DEFECTS,
        help=f"also run on the same data with this fraction of claims defective (generate --bad-rows; default "
        f"{DEFECTS:g}, 0 to skip), {{--repeat-other}} run(s)",
    )
    ap.add_argument(
        "--orders",
        default=None,
        help="row orders of the claims file to measure (generate --order; default date,shuffled); the first "
        "gets every measurement, the others the end-to-end ones (I/O floor, run, run --no-lines, DuckDB)",
    )
    ap.add_argument(
        "--budget",
        default="",
        help="time budget (e.g. 20m, 900s): lower --repeat until the estimate fits, or stop before measuring",
    )
    ap.add_argument(
        "--estimate-only", action="store_true", help="print the estimated duration of each section and stop"
    )
    ap.add_argument(
        "--audit-only",
        action="store_true",
        help="measure only `run` against `run --audit` and update the audit section of the results",
    )
    ap.add_argument(
        "--snapshot",
        action="store_true",
        help="benchmark a clean build of git HEAD instead of the working tree (immune to concurrent edits)",
    )
    args = ap.parse_args(argv)
    quick = args.quick
    for name, full, dev in (
        ("lines", "10M", "200k"),
        ("repeat", 3, 1),
        ("peers", "duckdb,polars", "duckdb"),
        ("orders", "date,shuffled", "date"),
        ("profile", True, False),
    ):
        if getattr(args, name) is None:
            setattr(args, name, dev if quick else full)
    if quick:
        args.reuse = args.audit = False
        args.defects = 0.0
    if args.readme is None:
        args.readme = not quick and args.results.resolve() == (HERE / "RESULTS.md").resolve()
    return args


def data_plan(args, orders: list[str]) -> dict[str, float]:
    """Seconds to generate the data sets that are not cached yet (0 when all are)."""
    n = bench_data.parse_count(args.lines)
    est = {}
    for order in orders:
        folder = bench_data.dataset_folder(max(1, round(n / bench_data.LINES_PER_MEMBER)), args.year, args.seed, order)
        if not (folder / "meta.json").exists():
            est[f"generate {order}"] = plan.GENERATE_PER_LINE * n
    if args.defects:
        members = max(1, round(n / bench_data.LINES_PER_MEMBER))
        if not (
            bench_data.dataset_folder(members, args.year, args.seed, orders[0], args.defects) / "meta.json"
        ).exists():
            est["generate defective"] = plan.GENERATE_PER_LINE * n
    if args.stream_lines:
        total = bench_data.parse_count(args.stream_lines)
        data, chunks, _ = scale_data(total, args.year)
        if not scale_built(data, chunks):
            est["generate streamed"] = plan.GENERATE_PER_LINE * total
        est["streamed run"] = plan.FIXED + 4 * plan.PER_LINE * total  # partitioning reads and writes twice
    return est


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.snapshot and not os.environ.get("BENCH_SNAPSHOT"):
        use_snapshot(sys.argv[1:] if argv is None else list(argv))
    check_snapshot()

    t_start = time.perf_counter()
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    orders = [o for o in args.orders.split(",") if o]
    n_lines = bench_data.parse_count(args.lines)
    if args.audit_only:
        return audit_only(args, orders[0], command)
    has_partitions = "--partitions" in run_help()
    top_help = subprocess.run(adjudicate_cmd() + ["--help"], capture_output=True, text=True).stdout
    do_reuse = args.reuse and "prepare" in top_help
    do_audit = args.audit and "--audit" in run_help()
    previous, generate = plan.previous_sections(args.results), data_plan(args, orders)
    runs = plan.runs_per_section(args, orders, do_reuse, do_audit, has_partitions)
    est = plan.estimate(runs, n_lines, previous, generate)
    if args.budget:  # fewer headline runs until the estimate fits
        budget = plan.parse_duration(args.budget)
        while sum(est.values()) > budget and args.repeat > 1:
            args.repeat -= 1
            runs = plan.runs_per_section(args, orders, do_reuse, do_audit, has_partitions)
            est = plan.estimate(runs, n_lines, previous, generate)
        if sum(est.values()) > budget:
            plan.say_estimate(est, say)
            raise SystemExit(
                f"run.py: the estimate exceeds --budget {plan.fmt(budget)} even with --repeat 1; measure fewer "
                "lines (--lines), orders (--orders date) or rows (--no-reuse, --no-audit, --peers duckdb)"
            )
        say(f"--budget {plan.fmt(budget)}: --repeat {args.repeat}, --repeat-other {args.repeat_other}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    plan.say_estimate(est, say, os.getloadavg()[0], cores)
    if args.estimate_only:
        return 0
    section = plan.Sections(est, runs, say)
    R_est = est

    m = machine()
    m["git"] = git_state()
    with section(f"generate {orders[0]}"):
        data, meta = bench_data.dataset_for_lines(n_lines, args.year, args.seed, say=say, order=orders[0])
    outdir = bench_data.DATA / f"out-{data.name}"
    outdir.mkdir(parents=True, exist_ok=True)
    R: dict = {
        "command": command,
        "data": data,
        "peers": {},
        "when": time.strftime("%Y-%m-%d %H:%M %Z"),
        "repeat": args.repeat,
        "repeat_other": args.repeat_other,
        "estimate": R_est,
    }
    warm(data)
    with section("adjudicate run, run --no-lines"):
        R["full"] = bench_engine(data, outdir, True, args.repeat)
        R["nolines"] = bench_engine(data, outdir, False, args.repeat)
    if args.defects:
        with section("generate defective"):
            bad, bad_meta = bench_data.dataset_for_lines(
                n_lines, args.year, args.seed, say=say, order=orders[0], bad_rows=args.defects
            )
        with section("defective claims"):
            (outdir / "defects").mkdir(exist_ok=True)
            R["defects"] = bench_engine(bad, outdir / "defects", True, args.repeat_other)
            counts = R["defects"]["summary"]["counts"]
            R["defects"].update(
                fraction=args.defects, rejected=counts["rejected_claims"], claims=counts["input_claims"]
            )
    if has_partitions:
        with section("run --partitions 1, --partitions 8"):
            R["inmem"] = bench_engine(data, outdir, True, args.repeat_other, extra=("--partitions", "1"))
            R["inmem"]["agree"] = compare(
                out_file(R["full"]["out"], "settlements"), out_file(R["inmem"]["out"], "settlements")
            )
            R["stream"] = bench_engine(data, outdir, True, 1, extra=("--partitions", "8"))
            R["stream"]["agree"] = compare(
                out_file(R["full"]["out"], "settlements"), out_file(R["stream"]["out"], "settlements")
            )
    if do_reuse:
        with section("datasets, compare, sweep, readjudicate"):
            R["reuse"] = reuse.bench_reuse(
                data,
                outdir,
                args.repeat_other,
                run_cmd_rss,
                adjudicate_cmd,
                say,
                cold=engine_args(data, outdir / "reuse-cold", True),
            )
    if do_audit:
        with section("run --audit"):
            R["audit"] = bench_audit(data, outdir, args.repeat_other)
    with section("I/O floor"):
        R["floor"] = bench_floor(data, R["full"]["out"], outdir, args.repeat)
    with section("engine in memory"):
        R["memory"] = bench_memory(data, args.repeat)  # the kernel rows are targets: headline repeats
    with section("start-up"):
        R["startup"] = bench_startup(args.repeat, outdir)
    engine_settlements = out_file(R["nolines"]["out"], "settlements")
    for name in [p for p in args.peers.split(",") if p]:
        with section(f"peer {name}"):
            R["peers"][name] = run_peer(name, args, data, meta, outdir, engine_settlements)
    R["layouts"] = {orders[0]: layout_figures(R)}
    for order in orders[1:]:
        with section(f"generate {order}"):
            bench_data.dataset_for_lines(n_lines, args.year, args.seed, say=say, order=order)
        with section(f"layout {order}"):
            R["layouts"][order] = bench_layout(order, args, outdir, "duckdb" in args.peers.split(","))
    if args.profile:
        with section("profile"):
            R["profile"] = profile_engine(data, outdir)
    # Last: after the 48.8 M-line run the machine is slower for a while (the shuffled rows measured
    # after it took 16.3 s, and 10.9 s alone on the same build), so nothing on the 10 M lines follows it.
    if args.stream_lines:
        total = bench_data.parse_count(args.stream_lines)
        data_s, chunks, _ = scale_data(total, args.year)
        if not scale_built(data_s, chunks):
            with section("generate streamed"):
                bench_scale_data(total, args.year)
        with section("streamed run"):
            R["scale"] = bench_scale(total, args.year, outdir, args.stream_partitions)
    R["elapsed"] = time.perf_counter() - t_start
    R["load_end"] = os.getloadavg()
    R["sections"] = section.took
    text = report(args, m, meta, R)
    if R.get("audit"):
        text += "\n\n" + "\n".join(audit_section(R["audit"], command))
    text += kept_section(args.results)
    old = args.results.read_text(encoding="utf-8") if args.results.exists() else ""
    begin, end = "<!-- spark:begin -->", "<!-- spark:end -->"
    if begin in old and end in old:  # spark.py's section is measured apart: keep it (and no more)
        text += "\n\n" + old[old.index(begin) : old.index(end) + len(end)]
    text += "\n\n" + section.record(n_lines)
    args.results.write_text(text + "\n", encoding="utf-8")
    say(f"wrote {args.results}")
    if args.readme:
        write_marked(README, SPEED_BEGIN, SPEED_END, speed_block(R, meta, m, args.results))
        say(f"rewrote the speed block of {README}")
    print(text)
    if not args.keep:
        shutil.rmtree(outdir, ignore_errors=True)
    return 0


def bench_scale_data(total: int, year: int) -> None:
    """Build (and cache) the streamed data set alone, so its time is its own section."""
    import scale_out

    data, chunks, members = scale_data(total, year)
    say(f"building {chunks} chunk(s) of {members:,} members into {data} ...")
    shutil.rmtree(data, ignore_errors=True)
    scale_out.build(chunks, members, year, data)
    (data / ".built").write_text("")


def run_peer(name: str, args, data: Path, meta: dict, outdir: Path, engine_settlements: Path) -> dict:
    """One peer's runs, checked against the engine's settlements claim by claim."""
    if name == "python":
        sample, smeta = bench_data.member_sample(data, meta, bench_data.parse_count(args.python_sample), say=say)
        p = bench_peer("python", sample, outdir, 1)
        k = meta["rows"]["claims"] / smeta["rows"]["claims"]
        p.update(
            sample_lines=smeta["rows"]["claims"],
            every=smeta["every"],
            sample_wall=p["wall"],
            wall=p["inner"]["total"] * k,
        )
        p["agree"] = compare(engine_settlements, p["out"], subset=True)
    else:
        p = bench_peer(name, data, outdir, args.repeat)
        p["agree"] = compare(engine_settlements, p["out"])
    if p["agree"]["total_mismatches"]:
        say(f"  {name} DISAGREES with the engine: {json.dumps(p['agree'], default=str)}")
    else:
        say(f"  {name} agrees with the engine on all {p['agree']['claims']:,} claims")
    return p


def audit_only(args, order: str, command: str) -> int:
    data, _ = bench_data.dataset_for_lines(
        bench_data.parse_count(args.lines), args.year, args.seed, say=say, order=order
    )
    outdir = bench_data.DATA / f"out-{data.name}"
    outdir.mkdir(parents=True, exist_ok=True)
    warm(data)
    say("adjudicate run and run --audit ...")
    A = bench_audit(data, outdir, args.repeat)
    write_audit_section(args.results, audit_section(A, command))
    say(f"wrote the audit section of {args.results}")
    print("\n".join(audit_section(A, command)))
    if not args.keep:
        shutil.rmtree(outdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
