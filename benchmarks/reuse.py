"""Benchmark rows of issue 9 §3–5: work that does not decode twice.

Measured on the data set of ``run.py`` against its cold ``adjudicate run``
(full outputs, the same process-wall clock):

- ``adjudicate prepare`` (once), then ``run --dataset``;
- ``compare`` of two policies (from the files: one decode, two kernel passes);
- ``sweep`` of 20 variants (a 5 × 4 grid; the baseline is a 21st pass);
- ``readjudicate --dataset`` after 1 % of the claims were corrected (their
  amounts doubled), against the previous night's run from a dataset.

Also usable alone: ``python benchmarks/reuse.py --lines 2M --repeat 3 --snapshot`` writes
benchmarks/RESULTS-reuse.md (``run.py`` puts the same rows in RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_data  # noqa: E402
import provenance  # noqa: E402
from procs import adjudicate_cmd, bench_engine, engine_args, run_cmd_rss, say, warm  # noqa: E402

POLICY = "prefecture-employee"
SWEEP = [
    "--vary",
    "lines.first_self_pay.B=0.05,0.10,0.15,0.20,0.25",
    "--vary",
    "blocks.inpatient.subsidy.civil_servant={ in_service = 0.4, retired = 0.45 },"
    "{ in_service = 0.5, retired = 0.55 },{ in_service = 0.6, retired = 0.65 },"
    "{ in_service = 0.7, retired = 0.75 }",
]


def correct_claims(src: Path, dst: Path, fraction: float = 0.01, seed: int = 1) -> int:
    """A copy of the claims file with ``fraction`` of the claims corrected (amount and unit price doubled)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(src)
    ids = pc.unique(t["claim_id"])
    rng = np.random.default_rng(seed)
    picked = ids.take(pa.array(rng.choice(len(ids), max(1, int(len(ids) * fraction)), replace=False)))
    hit = pc.is_in(t["claim_id"], value_set=picked)
    for col in ("amount", "unit_price"):
        if col in t.column_names:
            doubled = pc.multiply(
                t[col], pa.scalar(2, t[col].type) if not pa.types.is_decimal(t[col].type) else pa.scalar(2)
            ).cast(t[col].type)
            t = t.set_column(t.column_names.index(col), col, pc.if_else(hit, doubled, t[col]))
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, dst)
    return len(picked)


def bench_reuse(data: Path, outdir: Path, repeat: int, cold: list[str] | None = None) -> dict:
    """Walls (medians of ``repeat``) of the commands above, whole processes (run_cmd_rss).

    With ``cold`` (the cold run's command) each run is paired with a cold run right after it and the
    ratio is taken pair by pair (``ratio``: their median), so that a shared machine's drifting load
    does not move it."""
    import statistics

    f = bench_data.paths(data)
    files = [x for t in bench_data.TABLES for x in (f"--{t}", str(f[t]))]
    ds, ds2 = outdir / "reuse-ds", outdir / "reuse-ds2"
    res: dict = {}

    def timed(name: str, cmd: list[str], n: int = repeat) -> dict:
        walls, rss, ratios = [], [], []
        for i in range(n):
            w, r = run_cmd_rss(adjudicate_cmd() + cmd)[:2]
            walls.append(w)
            rss.append(r)
            line = f"  {name} #{i + 1}: {w:.2f} s"
            if cold is not None and n > 1:
                c = run_cmd_rss(cold)[0]
                ratios.append(w / c)
                line += f" (cold run after it {c:.2f} s: {w / c:.2f}×)"
            say(line)
        res[name] = {"wall": statistics.median(walls), "walls": walls, "rss": max(rss)}
        summary = Path(cmd[cmd.index("--out") + 1]) / "summary.json" if "--out" in cmd else None
        if summary is not None and summary.exists():  # the last run's stages, for run.py's bounds
            res[name]["stages"] = json.loads(summary.read_text()).get("timings_seconds", {})
        if ratios:
            res[name]["ratio"] = statistics.median(ratios)
        return res[name]

    timed("prepare", ["prepare", *files, "--out", str(ds), "-q"], 1)
    timed("run --dataset", ["run", "--dataset", str(ds), "--policy", POLICY, "--out", str(outdir / "reuse-run"), "-q"])
    timed(
        "compare",
        ["compare", *files, "--policy", POLICY, "--policy", "city-employee", "--out", str(outdir / "reuse-cmp"), "-q"],
    )
    timed(
        "compare --dataset",
        [
            "compare",
            "--dataset",
            str(ds),
            "--policy",
            POLICY,
            "--policy",
            "city-employee",
            "--out",
            str(outdir / "reuse-cmp"),
            "-q",
        ],
    )
    timed("sweep (20 variants)", ["sweep", *files, "--policy", POLICY, *SWEEP, "--out", str(outdir / "reuse-sw"), "-q"])
    timed(
        "sweep --dataset (20 variants)",
        ["sweep", "--dataset", str(ds), "--policy", POLICY, *SWEEP, "--out", str(outdir / "reuse-sw"), "-q"],
    )
    # the nightly re-run: night 1 from the dataset, then 1 % of the claims corrected
    night1 = outdir / "reuse-run"
    fixed = outdir / "reuse-fixed" / "claims.parquet"
    res["corrected_claims"] = correct_claims(f["claims"], fixed)
    fixed_files = [x for t in bench_data.TABLES for x in (f"--{t}", str(fixed if t == "claims" else f[t]))]
    timed("prepare (corrected)", ["prepare", *fixed_files, "--out", str(ds2), "-q"], 1)
    timed(
        "readjudicate --dataset (1 % corrected)",
        [
            "readjudicate",
            "--dataset",
            str(ds2),
            "--previous",
            str(night1),
            "--policy",
            POLICY,
            "--out",
            str(outdir / "reuse-night2"),
            "-q",
        ],
    )
    s = json.loads((outdir / "reuse-night2" / "summary.json").read_text())
    res["readjudicate_summary"] = {
        "incremental": s.get("incremental"),
        "adjusted_claims": s["counts"]["adjusted_claims"],
        "reconciles": s["reconciles"],
    }
    timed(
        "readjudicate (1 % corrected, from the files)",
        [
            "readjudicate",
            *fixed_files,
            "--previous",
            str(night1),
            "--policy",
            POLICY,
            "--out",
            str(outdir / "reuse-night2f"),
            "-q",
        ],
    )
    return res


def rows(res: dict, cold: float) -> list[str]:
    """Markdown rows: command, wall, runs, ÷ the cold run (paired when measured so)."""
    out = ["| command | wall s (median) | runs | ÷ cold `adjudicate run` |", "|---|---:|---|---:|"]
    for name, v in res.items():
        if isinstance(v, dict) and "wall" in v:
            r = f"{v['ratio']:.2f}× (paired)" if "ratio" in v else f"{v['wall'] / cold:.2f}×"
            out.append(f"| {name} | {v['wall']:.2f} | {' '.join(f'{x:.2f}' for x in v['walls'])} | {r} |")
    return out


def targets(res: dict, cold: float) -> list[tuple[str, str, str]]:
    out = []
    for name, what, bound in (
        ("run --dataset", "`run --dataset` ≤ 0.3 × the cold run", 0.3),
        ("compare", "`compare` ≤ 1.3 × one run", 1.3),
        ("sweep (20 variants)", "`sweep` of 20 variants ≤ 3 × one run", 3.0),
        (
            "readjudicate --dataset (1 % corrected)",
            "`readjudicate`, 1 % of claims corrected, from a dataset ≤ 0.3 × a full run",
            0.3,
        ),
    ):
        if name in res:
            v = res[name]
            r = v.get("ratio", v["wall"] / cold)
            how = "median of paired ratios" if "ratio" in v else f"{v['wall']:.2f} s vs {cold:.2f} s"
            out.append((what, f"{r:.2f}× ({how})", "yes" if r <= bound else f"no ({r / bound:.2f}× over)"))
    return out


def main(argv=None) -> int:
    import os
    import platform
    import shlex
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", default="1M")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS-reuse.md")
    ap.add_argument("--snapshot", action="store_true", help="benchmark a clean build of git HEAD (see run.py)")
    args = ap.parse_args(argv)
    if args.snapshot and not os.environ.get("BENCH_SNAPSHOT"):
        provenance.use_snapshot(sys.argv[1:] if argv is None else list(argv), Path(__file__).resolve())
    provenance.check_snapshot()
    t0 = time.perf_counter()
    load = os.getloadavg()
    data, meta = bench_data.dataset_for_lines(bench_data.parse_count(args.lines), 2024, 1, say=say)
    outdir = bench_data.DATA / f"out-reuse-{data.name}"
    outdir.mkdir(parents=True, exist_ok=True)
    warm(data)
    cold = bench_engine(data, outdir, True, args.repeat)
    res = bench_reuse(
        data,
        outdir,
        args.repeat,
        cold=engine_args(data, outdir / "reuse-cold", True),
    )
    text = [
        "# Not decoding twice: benchmark rows of issue 9 §3–5",
        "",
        "Written by `python benchmarks/reuse.py " + shlex.join(sys.argv[1:] if argv is None else argv) + "` "
        f"({time.strftime('%Y-%m-%d %H:%M %Z')}, {time.perf_counter() - t0:.0f} s; {provenance.git_state()}); "
        "nothing edited by hand.",
        "",
        f"{meta['rows']['claims']:,} lines, {meta['claims']:,} claims, {meta['rows']['members']:,} members "
        f"(generated, member order); {platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} core(s); load average at start {' '.join(f'{x:.1f}' for x in load)}, "
        f"at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine: whole-process "
        f"walls, medians of {args.repeat}; each run is followed by a cold run and the ratios are taken "
        "pair by pair).",
        "",
        f"Cold `adjudicate run` (full outputs): {cold['wall']:.2f} s "
        f"({' '.join(f'{x:.2f}' for x in cold['walls'])}); stages: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in cold["stages"].items())
        + ".",
        "",
        f"readjudicate: {res['corrected_claims']:,} claims corrected (1 %, amounts doubled); "
        f"{json.dumps(res['readjudicate_summary'])}.",
        "",
    ]
    text += rows(res, cold["wall"]) + ["", "| target | measured | met? |", "|---|---|---|"]
    text += [f"| {t} | {v} | {ok} |" for t, v, ok in targets(res, cold["wall"])]
    args.results.write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))
    shutil.rmtree(outdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
