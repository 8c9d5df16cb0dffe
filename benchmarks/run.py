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
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_data  # noqa: E402
import plan  # noqa: E402
import reuse  # noqa: E402
from agree import compare  # noqa: E402
from procs import (  # noqa: E402
    adjudicate_cmd,
    bench_engine,
    engine_args,
    figures,
    median,
    out_file,
    run_cmd_rss,
    run_help,
    say,
    stage_names,
    warm,
)
from provenance import check_snapshot, git_state, machine, use_snapshot  # noqa: E402
from results import (  # noqa: E402
    README,
    SPEED_BEGIN,
    SPEED_END,
    audit_section,
    kept_section,
    report,
    speed_block,
    write_audit_section,
    write_marked,
)

PEER_SCRIPT = HERE / "peers.py"
#: The fraction of claims made defective for the "defective claims" row: about that of the independent
#: data set the project was measured on from outside (0.9 %).
DEFECTS = 0.009


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------


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
    if hasattr(ns.engine, "kernel_args"):  # a revision before it: the engine timer alone
        res["warm"] = w = stages.time_kernel(ns, threads_list, repeat)
        for th in threads_list:
            say(
                f"  kernel pass, {th} thread(s), outputs touched beforehand: {w[th]['warm']:.3f} s "
                f"(CPU {w[th]['warm_cpu']:.3f} s, {w[th]['per_core'] / 1e6:.1f} M lines/s/core); into fresh "
                f"outputs {w[th]['fresh']:.3f} s, first touch {w[th]['first_touch']:.3f} s"
            )
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
    runs, inner = [], []
    for i in range(repeat):
        runs.append(run_cmd_rss([sys.executable, str(PEER_SCRIPT), name, "--data", str(data), "--out", str(out)]))
        inner.append(json.loads(runs[-1].stdout.strip().splitlines()[-1]))
        say(f"  {name} #{i + 1}: {runs[-1].wall:.2f} s")
    return {**figures(runs), "out": out, "inner": {k: median([x[k] for x in inner]) for k in inner[0]}}


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
# the command
# ---------------------------------------------------------------------------


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


def data_plan(args, orders: list[str], previous: dict) -> dict[str, float]:
    """Seconds to generate the data sets that are not cached yet (0 when all are), and the streamed run."""
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
        est["streamed run"] = plan.sized_estimate("streamed run", total, previous, plan.STREAM_PER_LINE)
    return est


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.snapshot and not os.environ.get("BENCH_SNAPSHOT"):
        use_snapshot(sys.argv[1:] if argv is None else list(argv), Path(__file__).resolve())
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
    previous = plan.previous_sections(args.results)
    generate = data_plan(args, orders, previous)
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
        section.lines["streamed run"] = total
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
