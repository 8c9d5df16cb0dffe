"""``adjudicate run --engine spark``: read the input paths with Spark, settle, write the four outputs.

Local paths are expanded as a local run expands them (a folder means its
data files in name order, '.' and '_' files skipped), so errors name the same
file and row. Other URIs (``hdfs://``, ``s3a://``, …) are passed to Spark as
they are. Spark reads Parquet and CSV (CSV as text, like a local run); the
small tables (providers, catalogue) on local paths are read by the local
reader, so Arrow IPC works there too.

The outputs: ``settlements.parquet``, ``lines.parquet`` and
``rejected.parquet`` are folders of Parquet part files with the contract's
schemas (pyarrow, DuckDB, Polars and Spark read a folder as one table), and
``summary.json``; all written into ``outputs.atomic_dir``'s temporary folder,
which replaces ``--out`` whole at the end.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow.parquet as pq

from ..engine import Timer
from ..errors import InputError
from ..inputs import SUFFIXES, Table, _check_columns, expand_paths, file_digest, load
from ..outputs import atomic_dir
from ..policy import Policy
from ..schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS, TableSpec
from . import check_small, small_table
from .bucket import TABLE_NO, BucketError
from .job import Source, settle_sources, source

OUTPUT_NAMES = ("settlements", "lines", "rejected")


def is_uri(p: str | Path) -> bool:
    s = str(p)
    return "://" in s and not s.startswith("file://")


def session(master: str | None = None):
    """The active SparkSession, or a new one (``master`` default: spark-submit's, else local[*])."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this Python (and this adjudicate)
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = SparkConf()
    builder = SparkSession.builder.appName("adjudicate")
    if master or not conf.contains("spark.master"):
        builder = builder.master(master or "local[*]")
    if not conf.contains("spark.driver.extraJavaOptions"):  # a quiet driver log unless you chose one
        builder = builder.config(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j2.configurationFile={Path(__file__).with_name('log4j2.properties').as_uri()}",
        )
    if not conf.contains("spark.local.dir"):
        # shuffle files hold claim data: put them where TMPDIR says (Spark's default ignores it)
        builder = builder.config("spark.local.dir", tempfile.gettempdir())
    spark = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _kind(files: Sequence[str | Path], spec: TableSpec) -> str:
    kinds = {SUFFIXES.get(Path(str(f)).suffix.lower(), "parquet") for f in files}
    if "ipc" in kinds:
        f = next(f for f in files if SUFFIXES.get(Path(str(f)).suffix.lower()) == "ipc")
        raise InputError(
            f"Spark reads Parquet and CSV, not Arrow IPC: convert the {spec.name} files to Parquet "
            "(or use the local engine)",
            f,
        )
    if len(kinds) > 1:
        raise InputError(
            f"the {spec.name} files mix Parquet and CSV; with --engine spark one table is one format", files[0]
        )
    return kinds.pop()


def read_source(spark, spec: TableSpec, paths: Sequence[str]) -> tuple[Source, dict[str, str]]:
    """One input table as a Source, and the digests of its local files (as a local run records them)."""
    local = [p for p in paths if not is_uri(p)]
    files: list[str | Path] = list(expand_paths(local, spec.name)) if local else []
    files += [p for p in paths if is_uri(p)]
    kind = _kind(files, spec)
    for f in files:
        if isinstance(f, Path):
            if f.stat().st_size == 0:
                raise InputError(
                    f"the file is empty (0 bytes); expected a {kind.capitalize()} file with the {spec.name} columns", f
                )
            if kind == "parquet":
                try:
                    names = pq.read_schema(f).names
                except Exception as e:  # noqa: BLE001 - any reader failure is the file's fault
                    raise InputError(
                        f"cannot be read as Parquet (corrupt, truncated or not Parquet): "
                        f"{str(e).splitlines()[0][:160]}",
                        f,
                    ) from None
                _check_columns(spec, names, f)
    uris = [f.resolve().as_uri() if isinstance(f, Path) else f for f in files]
    reader = spark.read.option("header", True) if kind == "csv" else spark.read
    df = reader.csv(uris) if kind == "csv" else reader.parquet(*uris)
    if kind == "csv" or not all(isinstance(f, Path) for f in files):
        _check_columns(spec, df.columns, files[0])
    # Spark names local files file:/path; remote folders stand for the files inside them
    named = [(u, str(f)) for u, f in zip(uris, files) if isinstance(f, Path)]
    if len(named) != len(files):
        named = [(u, u) for u in sorted(df.inputFiles())]
    digests = {str(f): file_digest(f) for f in files if isinstance(f, Path)}
    return source(df, spec, named, text=kind == "csv"), digests


def _small(spark, spec: TableSpec, paths: Sequence[str]) -> tuple[Table | BucketError, dict[str, str]]:
    """Providers or catalogue on the driver: the local reader for local paths, else Spark."""
    try:
        if not any(is_uri(p) for p in paths):
            t = load(spec, paths)
            return t, t.digests
        src, digests = read_source(spark, spec, paths)
        return small_table(src, spec), digests
    except BucketError as e:
        return e, {}
    except InputError as e:
        files = (
            [str(f) for f in expand_paths([p for p in paths if not is_uri(p)], spec.name)]
            if not any(is_uri(p) for p in paths)
            else []
        )
        which = files.index(str(e.file)) if str(e.file) in files else 0
        column = next((i for i, c in enumerate(spec.columns) if c.name == e.column), -1)
        return BucketError((TABLE_NO[spec.name], column, which, e.row if e.row is not None else -1), e), {}


def _exact_csv_error(e: InputError, *tables: tuple[TableSpec, Source]) -> None:
    """Spark does not number CSV rows: re-read the one local CSV file named for the row (local run's message)."""
    key = getattr(e, "key", None)
    if key is None or key[3] >= 0 or key[0] >= len(tables):
        return
    spec, src = tables[key[0]]
    if src.text and key[2] < len(src.files) and not is_uri(src.files[key[2]]):
        load(spec, [src.files[key[2]]])  # raises the same error, with its row


def run_files(
    claims: Sequence[str],
    members: Sequence[str],
    providers: Sequence[str],
    catalogue: Sequence[str],
    policy: Policy,
    out: Path,
    with_lines: bool = True,
    master: str | None = None,
    buckets: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Settle on Spark and write the outputs of contract §4 into ``out``; return the summary."""
    say = progress or (lambda s: None)
    timer = Timer()
    say("start")
    with timer("start"):
        spark = session(master)
    say("read")
    with timer("read"):
        claims_src, digests = read_source(spark, CLAIMS, claims)
        members_src, d = read_source(spark, MEMBERS, members)
        digests.update(d)
        small = []
        for spec, paths in ((PROVIDERS, providers), (CATALOGUE, catalogue)):
            t, d = _small(spark, spec, paths)
            small.append(t)
            digests.update(d)
    errors = check_small(*small)
    tables = [t if isinstance(t, Table) else None for t in small]
    say("settle")
    with timer("settle"):
        try:
            result = settle_sources(
                claims_src,
                members_src,
                tables[0],
                tables[1],
                policy,
                buckets=buckets,
                with_lines=with_lines,
                driver_errors=errors,
            )
        except InputError as e:
            _exact_csv_error(e, (CLAIMS, claims_src), (MEMBERS, members_src))
            raise
    try:
        say("write")
        with atomic_dir(out) as tmp:
            t0 = time.perf_counter()
            for name, df in zip(OUTPUT_NAMES, (result.settlements, result.lines, result.rejected)):
                if df is not None:
                    df.write.parquet((tmp / f"{name}.parquet").resolve().as_uri())  # not the cluster's default FS
            timer.t["write"] = time.perf_counter() - t0
            s = result.summary(digests, timer.t)
            s["engine"] = "spark"
            (tmp / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    finally:
        result.unpersist()
    return s


__all__ = ["run_files", "read_source", "session", "is_uri", "OUTPUT_NAMES"]
