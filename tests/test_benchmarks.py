"""benchmarks/run.py's pieces on tiny data: results agree, the README block is rewritten, bounds and the
estimate are written from the figures, and ``--snapshot`` builds. Correctness only, never timing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import agree  # noqa: E402
import bounds  # noqa: E402
import plan  # noqa: E402
import provenance  # noqa: E402
import results  # noqa: E402
import run  # noqa: E402


def test_write_marked_replaces_only_the_block(tmp_path):
    f = tmp_path / "README.md"
    f.write_text("# Title\n\n## Speed\n\nBEGIN\nold figures\nEND\n\n## Layout\n\nkept\n", encoding="utf-8")
    results.write_marked(f, "BEGIN", "END", ["new table", "| a | b |"])
    assert (
        f.read_text(encoding="utf-8")
        == "# Title\n\n## Speed\n\nBEGIN\nnew table\n| a | b |\nEND\n\n## Layout\n\nkept\n"
    )
    g = tmp_path / "other.md"
    g.write_text("# Other\n", encoding="utf-8")
    results.write_marked(g, "BEGIN", "END", ["x"])
    assert g.read_text(encoding="utf-8") == "# Other\n\nBEGIN\nx\nEND\n"


def test_the_readme_has_the_speed_markers():
    text = results.README.read_text(encoding="utf-8")
    assert text.count(results.SPEED_BEGIN) == 1 and text.count(results.SPEED_END) == 1
    assert text.index(results.SPEED_BEGIN) < text.index(results.SPEED_END)


def test_bound_is_the_largest_excess_over_the_floor():
    stages = {"read": 3.0, "encode": 4.0, "kernel": 0.5, "write": 2.0, "startup": 0.4}
    text = bounds.explain("cold run", stages, wall=11.0, budget=6.0, floor={"read": 2.5, "write": 1.5})
    assert "Bound: **`encode`**" in text and "the target allows 6.00 s" in text
    assert "`outside` 1.10 s" in text  # wall − Σ stages
    assert "`startup` 0.40 s" in text  # every timer, whatever its name
    assert bounds.LEVERS["encode"] in text
    # without a floor the largest part is the bound; ``focus`` names it when the target is about a share
    assert "Bound: **`read`**" in bounds.explain("x", {"read": 5.0, "write": 1.0}, wall=6.5)
    assert "Bound: **`partition`**" in bounds.explain("share", {"partition": 2.0, "read": 5.0}, 8.0, focus="partition")


def test_kernel_bounds_judge_the_pass_with_outputs_touched_beforehand():
    """The kernel sentences quote the warm pass (stages.time_kernel) and the first touch apart."""
    warm = {
        "lines": 1000,
        "output_bytes": 2**20,
        "repeat": 3,
        1: {"warm": 0.02, "warm_cpu": 0.02, "fresh": 0.05, "fresh_cpu": 0.05, "first_touch": 0.03,
            "per_core": 50e3, "per_cpu_s": 50e3},
        2: {"warm": 0.015, "warm_cpu": 0.03, "fresh": 0.03, "fresh_cpu": 0.05, "first_touch": 0.015,
            "per_core": 33e3, "per_cpu_s": 33e3},
    }  # fmt: skip
    mem = {"lines": 1000, 1: {"kernel": 0.06, "per_core": 16e3}, 2: {"kernel": 0.04}, "warm": warm}
    text = bounds.kernel(mem)
    assert "outputs touched beforehand took 0.020 s" in text and "0.030 s first touch" in text
    assert "`kernel` timer (0.060 s)" in text and "the compiled pass itself" in text
    warm[1]["warm_cpu"] = 0.005  # the core was held by others
    assert "Bound: **the machine**" in bounds.kernel(mem)
    warm[1]["warm_cpu"] = 0.02
    text = bounds.speedup(mem, (1.0, 1.0, 1.0))
    assert "0.020 s on 1 thread, 0.015 s on 2 (1.33×" in text and "1.50× the work" in text
    assert "Bound: **more CPU work on 2 threads" in text
    del mem["warm"]
    assert "Measured 1.50× by the engine's `kernel` timer" in bounds.speedup(mem, (1.0, 1.0, 1.0))


def test_bound_names_the_profiled_functions_of_its_stage():
    profile = {
        "rows": [
            (0.9, 1.0, 1, "adjudicate/encode.py:296(encode)"),
            (0.2, 0.3, 1, "adjudicate/encode.py:206(catalogue_rows)"),
            (2.0, 2.0, 5, "pyarrow/parquet/core.py:1540(read)"),
        ]
    }
    text = bounds.explain("x", {"encode": 5.0, "read": 2.0}, 7.0, profile=profile)
    assert "`adjudicate/encode.py:296(encode)` 0.90" in text and "core.py:1540(read)" not in text


def test_estimate_scales_the_previous_run_and_is_kept_for_the_next(tmp_path):
    secs = plan.Sections({}, {"adjudicate run, run --no-lines": 2}, say=lambda *a: None)
    secs.took["adjudicate run, run --no-lines"] = 2 * (plan.FIXED + 1.0)
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# r\n\n" + secs.record(1_000_000) + "\n", encoding="utf-8")
    prev = plan.previous_sections(results_md)
    assert prev["lines"] == 1_000_000
    est = plan.estimate({"adjudicate run, run --no-lines": 6, "I/O floor": 1}, 10_000_000, prev, {"gen": 3.0})
    assert est["adjudicate run, run --no-lines"] == pytest.approx(6 * (plan.FIXED + 10.0))
    assert est["I/O floor"] == pytest.approx(plan.FIXED + plan.PER_LINE * 10_000_000)  # not measured before
    assert est["gen"] == 3.0


def test_the_streamed_run_is_estimated_from_its_own_lines(tmp_path):
    secs = plan.Sections({}, {}, say=lambda *a: None)
    secs.took["streamed run"] = plan.FIXED + 40.0
    secs.lines["streamed run"] = 40_000_000
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text(secs.record(10_000_000) + "\n", encoding="utf-8")
    prev = plan.previous_sections(results_md)
    assert plan.sized_estimate("streamed run", 80_000_000, prev, 1.0) == pytest.approx(plan.FIXED + 80.0)
    # never measured: the model
    assert plan.sized_estimate("streamed run", 10, {}, 2.0) == pytest.approx(plan.FIXED + 20.0)


def test_quick_and_full_defaults():
    q = run.parse_args(["--quick", "--results", "/tmp/x.md"])
    assert (q.lines, q.repeat, q.orders, q.peers, q.profile, q.reuse, q.readme) == (
        "200k",
        1,
        "date",
        "duckdb",
        False,
        False,
        False,
    )
    f = run.parse_args([])
    assert (f.lines, f.repeat, f.repeat_other, f.orders, f.peers, f.profile, f.readme) == (
        "10M",
        3,
        1,
        "date,shuffled",
        "duckdb,polars",
        True,
        True,
    )
    assert run.parse_args(["--results", "/tmp/x.md"]).readme is False  # never README from a side file


def test_agree_reads_a_renamed_engine_column(tmp_path, monkeypatch):
    cols = ["claim_id", *agree.OTHER, *agree.AMOUNTS]
    dec = pa.array([1], pa.decimal128(18, 2))
    values = {c: dec for c in agree.AMOUNTS}
    values.update(claim_id=pa.array(["c1"]), settle_date=pa.array([1], pa.int32()), admission_ordinal=pa.array([0]))
    values.update({c: pa.array(["x"]) for c in ("member_id", "provider_id", "setting")})
    values["benefit_year"] = pa.array([2024])
    peer = pa.table({c: values[c] for c in cols})
    engine = peer.rename_columns(["year_of_benefit" if c == "benefit_year" else c for c in cols])
    pq.write_table(peer, tmp_path / "peer.parquet")
    pq.write_table(engine, tmp_path / "engine.parquet")
    monkeypatch.setitem(agree.ENGINE_NAMES, "benefit_year", "year_of_benefit")
    r = agree.compare(tmp_path / "engine.parquet", tmp_path / "peer.parquet")
    assert r["total_mismatches"] == 0 and r["claims"] == 1


def test_tiny_run_agrees_measures_every_row_and_rewrites_the_readme(tmp_path, monkeypatch):
    """One whole invocation on a tiny data set: peers and row orders agree with the engine, the streamed
    row has its partition share, the bounds section is written, the README block is rebuilt."""
    peers = "duckdb" if _has("duckdb") else ""
    readme = tmp_path / "README.md"
    text = run.README.read_text(encoding="utf-8")
    readme.write_text(text, encoding="utf-8")
    monkeypatch.setattr(run, "README", readme)
    results_md = tmp_path / "RESULTS.md"
    argv = ["--lines", "2k", "--repeat", "1", "--orders", "date,shuffled", "--peers", peers, "--results"]
    argv += [str(results_md), "--readme", "--stream-lines", "3k", "--stream-partitions", "2", "--no-audit"]
    assert run.main(argv + ["--no-profile"]) == 0
    out = results_md.read_text(encoding="utf-8")
    assert "**mismatches**" not in out and "DISAGREES" not in out
    assert "| shuffled |" in out and out.count("none (0 of") >= 3
    assert "streaming: partition pass ≤ 25 % of the wall" in out
    assert "`run --dataset` ≤ 0.3 × the cold run" in out
    assert "kernel ≥ 50 M lines/s/core (1 thread, outputs touched beforehand)" in out
    assert "| threads | warm s |" in out  # the kernel pass alone, first touch apart
    assert "## Bounds of the missed targets" in out  # at 2k lines start-up dominates: some target is missed
    assert plan.previous_sections(results_md)["sections"]  # kept for the next estimate
    new = readme.read_text(encoding="utf-8")
    block = new.split(results.SPEED_BEGIN, 1)[1].split(results.SPEED_END, 1)[0]
    assert "--lines 2k" in block and "| `adjudicate run`, all outputs |" in block
    assert "shuffled-order rows" in block and "streamed in 2 partitions" in block
    # everything outside the block is untouched
    assert new.split(results.SPEED_BEGIN)[0] == text.split(results.SPEED_BEGIN)[0]
    assert new.split(results.SPEED_END)[1] == text.split(results.SPEED_END)[1]


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_snapshot_builds(tmp_path):
    repo = BENCH.parent
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    site = provenance.build_snapshot(repo, tmp_path / "snap")
    env = dict(os.environ, PYTHONPATH=str(site))
    p = subprocess.run(
        [sys.executable, "-c", "import adjudicate, adjudicate._core; print(adjudicate.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert Path(p.stdout.strip()).is_relative_to(site)


def test_budget_lowers_repeats_or_stops_before_measuring(tmp_path, capsys):
    assert plan.parse_duration("20m") == 1200 and plan.parse_duration("90s") == 90 and plan.parse_duration("2") == 120
    base = ["--estimate-only", "--lines", "2k", "--results", str(tmp_path / "r.md"), "--no-reuse", "--no-audit"]
    assert run.main(base + ["--budget", "1000m"]) == 0
    assert "--repeat 3," in capsys.readouterr().err
    with pytest.raises(SystemExit, match="exceeds --budget"):
        run.main(base + ["--budget", "1s"])
    err = capsys.readouterr().err
    assert "estimated duration" in err and "adjudicate run, run --no-lines" in err
