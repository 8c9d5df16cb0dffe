"""run --engine spark and adjudicate.spark: the same outputs as a local run, value for value.

One SparkSession (local[2,2]: two cores, a failed task is retried once) for
the module, on a small generated data set with bad rows. On a developer
machine without pyspark or Java these tests skip; in CI (CI=true) they fail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate import cli


def _missing() -> str | None:
    try:
        import pandas  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as e:
        return f"pyspark not installed ({e}): pip install '.[test,spark]'"
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (Spark needs Java 17+)"
    return None


if _missing():
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(f"CI must run the Spark tests: {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from adjudicate import policy as P  # noqa: E402
from adjudicate.spark import settle  # noqa: E402
from adjudicate.spark.bucket import FAIL_ONCE_ENV  # noqa: E402

KEYS = {
    "settlements": ["claim_id"],
    "lines": ["claim_id", "line_no"],
    "rejected": ["claim_id", "line_no", "reason", "detail"],
}
POLICY = "prefecture-employee"


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def fail_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fail-once")


@pytest.fixture(scope="module")
def spark(fail_dir):
    # Set before the JVM starts: its Python workers inherit this environment.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ[FAIL_ONCE_ENV] = str(fail_dir)
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2,2]")
        .appName("adjudicate-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("FATAL")
    yield s
    s.stop()
    os.environ.pop(FAIL_ONCE_ENV, None)


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gen") / "gen"
    r = invoke("generate", "--members", 150, "--year", 2024, "--seed", 11, "--bad-rows", 0.08, "--out", d, "-q")
    assert r.exit_code == 0, r.output
    return d


def inputs(d: Path, **replace) -> list[str]:
    args = []
    for name in ("claims", "members", "providers", "catalogue"):
        args += [f"--{name}", str(replace.get(name, d / f"{name}.parquet"))]
    return args + ["--policy", POLICY]


@pytest.fixture(scope="module")
def local(gen, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    r = invoke("run", *inputs(gen), "--out", out, "-q")
    assert r.exit_code == 0, r.output
    return out


def read(path: Path) -> pa.Table:
    return pq.read_table(path)  # a file, or a folder of part files read as one table


def assert_same(name: str, expected: pa.Table, got: pa.Table) -> None:
    """Equal column by column (schemas included), whatever the row order across part files."""
    assert got.schema.remove_metadata() == expected.schema.remove_metadata(), name
    assert got.num_rows == expected.num_rows, name
    order = [(k, "ascending") for k in KEYS[name]]
    a, b = expected.sort_by(order), got.sort_by(order)
    for c in expected.column_names:
        assert a[c].equals(b[c]), f"{name}.{c} differs"


def assert_outputs_equal(local: Path, other: Path) -> None:
    for name in KEYS:
        assert_same(name, read(local / f"{name}.parquet"), read(other / f"{name}.parquet"))
    a = json.loads((local / "summary.json").read_text())
    b = json.loads((other / "summary.json").read_text())
    for s in (a, b):
        s.pop("timings_seconds")
    assert b.pop("engine") == "spark"
    assert a == b


def test_run_engine_spark_equals_local(spark, gen, local, tmp_path):
    out = tmp_path / "spark-out"
    r = invoke("run", *inputs(gen), "--engine", "spark", "--spark-master", "local[2]", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["rejected_claims"] > 0  # the bad rows are there, and rejected as locally
    assert_outputs_equal(local, out)
    assert (out / "settlements.parquet").is_dir()
    assert not list(tmp_path.glob(".spark-out.*"))  # the temporary folder was renamed into place


def test_csv_claims_equal_local(spark, gen, tmp_path):
    """CSV is read as text by both engines, with the same conversions."""
    folder = tmp_path / "csv"
    folder.mkdir()
    claims = pq.read_table(gen / "claims.parquet")
    half = claims.num_rows // 2
    pacsv.write_csv(claims.slice(0, half), folder / "a.csv")
    pacsv.write_csv(claims.slice(half), folder / "b.csv")
    outs = []
    for engine in ("local", "spark"):
        outs.append(tmp_path / engine)
        r = invoke("run", *inputs(gen, claims=folder), "--engine", engine, "--out", outs[-1], "-q")
        assert r.exit_code == 0, r.output
    assert_outputs_equal(*outs)


@pytest.mark.parametrize("buckets, batch", [(1, 10_000), (5, 7), (64, 1)])
def test_api_any_buckets_and_batch_size(spark, gen, local, buckets, batch):
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
    try:
        frames = [
            spark.read.parquet(str(gen / f"{n}.parquet")) for n in ("claims", "members", "providers", "catalogue")
        ]
        result = settle(*frames, P.load(POLICY), buckets=buckets)
        try:
            for name in KEYS:
                assert_same(name, read(local / f"{name}.parquet"), getattr(result, name).toArrow())
            expected = json.loads((local / "summary.json").read_text())
            got = result.summary(expected["inputs"])
            for s in (expected, got):
                s.pop("timings_seconds")
            assert got == expected
        finally:
            result.unpersist()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")


def test_a_failed_task_is_retried_without_loss_or_duplicates(spark, gen, local, fail_dir):
    (fail_dir / "arm").write_text("")
    frames = [spark.read.parquet(str(gen / f"{n}.parquet")) for n in ("claims", "members", "providers", "catalogue")]
    result = settle(*frames, POLICY, buckets=6)
    try:
        assert (fail_dir / "fired").exists() and not (fail_dir / "arm").exists()  # one attempt did fail
        for name in KEYS:
            assert_same(name, read(local / f"{name}.parquet"), getattr(result, name).toArrow())
    finally:
        result.unpersist()


def _bad_copies(gen: Path, d: Path) -> dict[str, dict[str, Path]]:
    """Input sets with one error each: a bad claims value, a duplicated member, a duplicated provider."""
    claims = pq.read_table(gen / "claims.parquet")
    setting = claims["setting"].to_pylist()
    setting[37] = "hospital"
    pq.write_table(
        claims.set_column(claims.column_names.index("setting"), "setting", pa.array(setting)), d / "claims-bad.parquet"
    )
    members = pq.read_table(gen / "members.parquet")
    pq.write_table(pa.concat_tables([members, members.slice(20, 1)]), d / "members-dup.parquet")
    providers = pq.read_table(gen / "providers.parquet")
    pq.write_table(pa.concat_tables([providers, providers.slice(3, 1)]), d / "providers-dup.parquet")
    pacsv.write_csv(pq.read_table(d / "claims-bad.parquet"), d / "claims-bad.csv")
    return {
        "claims": {"claims": d / "claims-bad.parquet"},
        "csv": {"claims": d / "claims-bad.csv"},
        "members": {"members": d / "members-dup.parquet"},
        "providers": {"providers": d / "providers-dup.parquet"},
        # two errors: a local run reports the claims error first, so must Spark
        "both": {"claims": d / "claims-bad.parquet", "providers": d / "providers-dup.parquet"},
    }


def test_bad_input_exits_2_with_the_local_message(spark, gen, tmp_path):
    for what, replace in _bad_copies(gen, tmp_path).items():
        a = invoke("run", *inputs(gen, **replace), "--out", tmp_path / "a")
        b = invoke("run", *inputs(gen, **replace), "--engine", "spark", "--out", tmp_path / "b")
        assert a.exit_code == 2, (what, a.output)
        assert b.exit_code == 2, (what, b.output)
        assert a.output.strip().startswith("error: ") and "Traceback" not in b.output
        assert b.output.strip().splitlines()[-1] == a.output.strip().splitlines()[-1], what
        assert not (tmp_path / "b").exists()


def test_base_year_is_the_runs_across_buckets(spark, gen, tmp_path):
    """Claims of 2025 carry the account over from 2024 (contract §3), and claims of 2023 that are all
    rejected do not make 2023 the base year: every bucket settles from the run's B, as locally."""
    claims = pq.read_table(gen / "claims.parquet")
    ids = claims["claim_id"].to_pylist()
    later = claims.filter(pa.array([i is not None and i.endswith(("1", "2")) for i in ids]))  # a fifth

    def shifted(t: pa.Table, prefix: str, years: int) -> pa.Table:
        def move(d: dt.date | None) -> dt.date | None:
            return None if d is None else d.replace(year=d.year + years, day=min(d.day, 28 if d.month == 2 else 31))

        for name in ("admit_date", "discharge_date"):
            t = t.set_column(
                t.column_names.index(name), name, pa.array([move(d) for d in t[name].to_pylist()], pa.date32())
            )
        return t.set_column(0, "claim_id", pa.array([prefix + i for i in t["claim_id"].to_pylist()]))

    early = shifted(later.slice(0, 40), "E", -1)
    early = early.set_column(
        early.column_names.index("member_id"), "member_id", pa.array(["nobody"] * early.num_rows)
    )  # unknown member: rejected
    d = tmp_path / "years"
    d.mkdir()
    pq.write_table(pa.concat_tables([claims, shifted(later, "N", 1), early]), d / "claims.parquet")
    outs = []
    for engine in ("local", "spark"):
        outs.append(tmp_path / engine)
        r = invoke("run", *inputs(gen, claims=d / "claims.parquet"), "--engine", engine, "--out", outs[-1], "-q")
        assert r.exit_code == 0, r.output
    assert_outputs_equal(*outs)
    years = set(read(outs[1] / "settlements.parquet")["benefit_year"].to_pylist())
    assert min(years) == 2024 and 2025 in years


def test_api_bad_input_raises_the_local_error(spark, gen, tmp_path):
    from adjudicate.errors import InputError

    bad = _bad_copies(gen, tmp_path)
    local = invoke("run", *inputs(gen, **bad["claims"]), "--out", tmp_path / "a")
    expected = local.output.strip().splitlines()[-1].split(": ", 2)[-1]  # after "error: file …: "
    frames = [
        spark.read.parquet(str(bad["claims"].get(n, gen / f"{n}.parquet")))
        for n in ("claims", "members", "providers", "catalogue")
    ]
    with pytest.raises(InputError) as e:
        settle(*frames, POLICY, buckets=3)
    assert str(e.value) == f"file {bad['claims']['claims']}, column 'setting', row 37: {expected}"
    with pytest.raises(InputError, match="missing required column"):
        settle(frames[0].drop("member_id"), *frames[1:], POLICY)


def test_reconcile_and_compare_read_folders_of_part_files(spark, gen, local, tmp_path):
    out = tmp_path / "spark-out"
    assert invoke("run", *inputs(gen), "--engine", "spark", "--out", out, "-q").exit_code == 0
    rec = []
    for source in (local, out):
        r = invoke(
            "reconcile",
            "--settlements",
            source,
            "--providers",
            gen / "providers.parquet",
            "--members",
            gen / "members.parquet",
            "--out",
            tmp_path / f"rec-{len(rec)}",
            "-q",
        )
        assert r.exit_code == 0, r.output
        rec.append(tmp_path / f"rec-{len(rec)}")
    # issue 12 renamed reconcile's providers.parquet to provider_settlement.parquet (no output named after an input)
    for name in ("provider_settlement", "funds", "ledger"):
        assert read(rec[0] / f"{name}.parquet").equals(read(rec[1] / f"{name}.parquet")), name
    # Spark-written claims (a folder of part files with _SUCCESS and .crc files) are one claims table
    parts = tmp_path / "claims-parts"
    spark.read.parquet(str(gen / "claims.parquet")).repartition(3).write.parquet(str(parts))
    cmp = []
    for claims in (gen / "claims.parquet", parts):
        target = tmp_path / f"cmp-{len(cmp)}"
        r = invoke("compare", *inputs(gen, claims=claims), "--policy", "city-employee", "--out", target, "-q")
        assert r.exit_code == 0, r.output
        cmp.append(json.loads((target / "summary.json").read_text()))
    for s in cmp:
        s.pop("timings_seconds", None)
        s.pop("inputs", None)
    assert cmp[0] == cmp[1]
