"""The Spark side of a run: route claim lines to member buckets, settle each
bucket with the local engine, and split the result into the contract's tables.

Routing. Members are independent (contract §3), so a bucket is
``pmod(xxhash64(member_id), B)``: Spark's xxhash64 of the id's bytes, the same
in every process and on every run. A claim must reach one bucket whole, so a
claim whose lines do not all name the same, non-null ``member_id`` (it can
only be rejected: null_required_field or inconsistent_claim_header) goes to
the bucket of its ``claim_id`` instead; finding those claims is one
aggregation on (claim_id, member_id), joined back (a broadcast join when they
are few). Lines without a claim_id stay with their member's bucket.

Settling. ``groupBy(bucket).cogroup(members.groupBy(bucket)).applyInArrow``
hands each bucket's claim lines and member rows to ``bucket.settle_bucket``;
providers, catalogue and the policy travel once, as a broadcast. The output
of all buckets is cached, checked for input errors (reported as the local run
would report them) and split into settlements, lines and rejected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import unquote, urlparse

import pyarrow as pa
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.storagelevel import StorageLevel

from .. import __version__
from ..errors import InputError
from ..inputs import Table
from ..outputs import policy_info
from ..policy import Policy
from ..schema import REJECT_REASONS, TableSpec
from .bucket import (
    AMOUNTS,
    ERROR,
    FILE,
    KIND,
    LINE,
    LINE_COLUMNS,
    NUMBERS,
    OUTPUT,
    REJECTED,
    REJECTED_COLUMNS,
    ROW,
    SETTLEMENT,
    SETTLEMENT_COLUMNS,
    STATS,
    BucketError,
    Shared,
    settle_bucket,
)

BUCKET = "__bucket"
#: Lines per bucket aimed at when the number of buckets is chosen for you: a
#: bucket is settled in memory by one Python worker (about 0.8 KB per line).
LINES_PER_BUCKET = 1_000_000
#: Claims whose lines disagree on member_id, up to this many, are broadcast to the routing join.
SPLIT_BROADCAST = 200_000


@dataclass
class Source:
    """One input table as a DataFrame, with where its rows came from (for error messages).

    ``files`` names the files in the order a local run reads them; the
    DataFrame's FILE column indexes it and ROW is the row within that file
    (null where unknown). ``text`` is true for CSV (every column read as text).
    """

    frame: DataFrame
    files: list[str]
    text: bool = False


def source(
    df: DataFrame, spec: TableSpec, files: Sequence[tuple[str, str]] | None = None, text: bool = False
) -> Source:
    """A DataFrame of one input table as a Source.

    ``files`` is (URI as Spark names it, name to show) per file, in the local
    run's order; by default the DataFrame's own files, sorted. Rows are
    located where Spark can tell (a file source; the row only for Parquet),
    else errors name the table alone.
    """
    cols = [F.col(c.name) for c in spec.columns if c.name in df.columns]
    unknown_row = F.lit(None).cast("long").alias(ROW)
    try:
        if files is None:
            uris = sorted(df.inputFiles())
            files = [(u, unquote(urlparse(u).path) if u.startswith("file:") else u) for u in uris]
        path = F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "file:/")
        file = (F.array_position(F.array(*[F.lit(spark_uri(u)) for u, _ in files]), path) - 1).cast("int")
        df.select(file)
    except AnalysisException:  # not a file source: errors name the table
        return Source(df.select(*cols, F.lit(0).alias(FILE), unknown_row), [spec.name], text)
    shown = [name for _, name in files]
    try:
        return Source(df.select(*cols, file.alias(FILE), F.col("_metadata.row_index").alias(ROW)), shown, text)
    except AnalysisException:  # Spark numbers the rows of Parquet files only
        return Source(df.select(*cols, file.alias(FILE), unknown_row), shown, text)


def spark_uri(uri: str) -> str:
    """A file URI as Spark's ``_metadata.file_path`` spells it (file:/path, where inputFiles() has file:///path)."""
    return re.sub("^file:/+", "file:/", uri)


def _key(c: str) -> F.Column:
    """The routing key of an id column: its bytes (text stays text, numbers become their text)."""
    return F.xxhash64(F.col(c).cast("string"))


def route(claims: DataFrame, buckets: int) -> DataFrame:
    """Claim lines with the bucket of their claim (see the module's docstring)."""
    split = (
        claims.where(F.col("claim_id").isNotNull())
        .groupBy("claim_id")
        .agg(
            F.min("member_id").alias("lo"),
            F.max("member_id").alias("hi"),
            F.count("member_id").alias("known"),
            F.count(F.lit(1)).alias("n"),
        )
        .where((F.col("lo") != F.col("hi")) | (F.col("known") < F.col("n")))
        .select("claim_id", F.lit(True).alias("__split"))
    )
    # Usually few (bad input): found first, then broadcast, so the lines are shuffled once, by bucket.
    few = split.limit(SPLIT_BROADCAST + 1).collect()
    if len(few) <= SPLIT_BROADCAST:
        schema = split.schema
        split = F.broadcast(claims.sparkSession.createDataFrame(few, schema))
    routed = claims.join(split, on="claim_id", how="left")
    by_claim = F.pmod(_key("claim_id"), F.lit(buckets))
    by_member = F.pmod(_key("member_id"), F.lit(buckets))
    return routed.select(*claims.columns, F.when(F.col("__split"), by_claim).otherwise(by_member).alias(BUCKET))


def default_buckets(spark: SparkSession, lines: int) -> int:
    return max(2 * spark.sparkContext.defaultParallelism, math.ceil(lines / LINES_PER_BUCKET), 1)


def bucket_frame(claims: Source, members: Source, shared: Shared, buckets: int) -> DataFrame:
    """One row per output row of every bucket, in the union layout ``bucket.OUTPUT``."""
    spark = claims.frame.sparkSession
    shared_b = spark.sparkContext.broadcast(shared)

    def run(left: pa.Table, right: pa.Table) -> pa.Table:
        return settle_bucket(left, right, shared_b.value)

    c = route(claims.frame, buckets)
    m = members.frame.select("*", F.pmod(_key("member_id"), F.lit(buckets)).alias(BUCKET))
    return c.groupBy(BUCKET).cogroup(m.groupBy(BUCKET)).applyInArrow(run, schema=from_arrow_schema(OUTPUT))


def _first_error(rows: Sequence) -> InputError:
    """The error a local run reports first, among errors found in buckets or on the driver."""
    best = min(rows, key=lambda r: tuple(r[0]))
    error = InputError(best[1])
    error.key = tuple(best[0])  # type: ignore[attr-defined]  # the error's place in the local order, for sorting
    return error


@dataclass
class Settled:
    """The distributed result: the contract's three tables as DataFrames (read from a cached result),
    and the counts and totals for summary.json. Call ``unpersist()`` when done."""

    settlements: DataFrame
    lines: DataFrame | None
    rejected: DataFrame
    stats: dict
    policy: Policy
    _cache: DataFrame

    def unpersist(self) -> None:
        self._cache.unpersist()

    def summary(self, digests: dict[str, str] | None = None, timings: dict[str, float] | None = None) -> dict:
        """summary.json of contract §4, computed from the distributed result (same as a local run's)."""
        sums = self.settlements.agg(*[F.sum(a).alias(a) for a in AMOUNTS], F.count(F.lit(1)).alias("n")).collect()[0]
        by_reason = {
            r["reason"]: r["n"] for r in self.rejected.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        rej = self.rejected.agg(
            F.countDistinct("claim_id").alias("ids"),
            F.sum(F.when(F.col("claim_id").isNull(), 1).otherwise(0)).alias("nulls"),
        ).collect()[0]
        rejected = int(rej["ids"] or 0) + int(rej["nulls"] or 0)
        settled = int(sums["n"])
        st = self.stats
        return {
            "adjudicate_version": __version__,
            "policy": policy_info(self.policy),
            # members.account_balance is the balance on 1 January of this year (contract §3)
            "account_base_year": st["base_year"],
            "counts": {
                "input_lines": st["input_lines"],
                "input_claims": st["input_claims"],
                "settled_claims": settled,
                "rejected_claims": rejected,
                "rejected_by_reason": {k: int(by_reason.get(k, 0)) for k in REJECT_REASONS},
                "settled_lines": st["settled_lines"],
                "reconciles": settled + rejected == st["input_claims"],
            },
            "totals": {a: _yuan_text(sums[a]) for a in AMOUNTS},
            "invariants_hold": st["violations"] == 0,
            "inputs": dict(digests or {}),
            "timings_seconds": {k: round(v, 4) for k, v in (timings or {}).items()},
        }


def _yuan_text(v: Decimal | None) -> str:
    from ..money import yuan

    return str(yuan(int((v or Decimal(0)) * 100)))


def base_year_guess(claims: DataFrame) -> int | None:
    """The earliest benefit year among all claim lines: the run's base year B (contract §3) unless every
    claim of that year is rejected (``settle_sources`` checks it against what the buckets settled)."""
    day = F.col("admit_date")
    if "discharge_date" in claims.columns and "setting" in claims.columns:
        day = F.when(F.col("setting") == "inpatient", F.col("discharge_date")).otherwise(day)
    row = claims.select(F.min(F.year(F.try_to_date(day.cast("string")))).alias("y")).collect()[0]
    return None if row["y"] is None else int(row["y"])


def _bucket_rows(claims: Source, members: Source, shared: Shared, buckets: int) -> tuple[DataFrame, dict]:
    """All buckets' output, cached, and the totals of their STATS rows; the local run's error if any."""
    out = bucket_frame(claims, members, shared, buckets).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        tags = out.where(F.col(KIND).isin(STATS, ERROR)).select(KIND, "benefit_year", "detail", *NUMBERS).collect()
        errors = [(tuple(r[n] for n in NUMBERS[:4]), r["detail"]) for r in tags if r[KIND] == ERROR]
        if errors:
            raise _first_error(errors)
    except BaseException:
        out.unpersist()
        raise
    stats = [r for r in tags if r[KIND] == STATS]
    totals: dict = {
        k: sum(int(r[n] or 0) for r in stats)
        for k, n in zip(("input_lines", "input_claims", "settled_lines", "violations", "bucket_ns"), NUMBERS)
    }
    totals["buckets"] = [(int(r[NUMBERS[0]]), int(r[NUMBERS[4]])) for r in stats]  # (lines, ns) per bucket
    years = [r["benefit_year"] for r in stats if r["benefit_year"] is not None]
    totals["first_year"] = min(years) if years else None
    return out, totals


def settle_sources(
    claims: Source,
    members: Source,
    providers: Table | None,
    catalogue: Table | None,
    policy: Policy,
    buckets: int | None = None,
    with_lines: bool = True,
    driver_errors: Sequence[BucketError] = (),
) -> Settled:
    """Settle on Spark; raise the local run's InputError if the input is bad.

    ``driver_errors`` are the errors found in the small tables on the driver:
    the buckets then only check the claims and members, for an error a local
    run would report first.
    """
    spark = claims.frame.sparkSession
    if buckets is None:
        buckets = default_buckets(spark, claims.frame.count())
    shared = Shared(
        policy,
        providers,
        catalogue,
        claims.files,
        members.files,
        claims.text,
        members.text,
        with_lines=with_lines,
        validate_only=bool(driver_errors),
    )
    if driver_errors:
        out = bucket_frame(claims, members, shared, buckets)
        found = [(tuple(r[n] for n in NUMBERS[:4]), r["detail"]) for r in out.where(F.col(KIND) == ERROR).collect()]
        raise _first_error(found + [(e.key, str(e.error)) for e in driver_errors])
    # The run's base year B (contract §3), the same in every bucket: the earliest year of all lines,
    # unless every claim of that year is rejected (rare), which the buckets' settled years show.
    shared.base_year = base_year_guess(claims.frame)
    out, totals = _bucket_rows(claims, members, shared, buckets)
    if totals["first_year"] is not None and totals["first_year"] != shared.base_year:
        # every claim of the earliest year was rejected, so B is later: settle again from it (rare)
        out.unpersist()
        shared.base_year = totals["first_year"]
        out, totals = _bucket_rows(claims, members, shared, buckets)
    totals["base_year"] = totals["first_year"]

    def part(kind: int, columns: Sequence[str]) -> DataFrame:
        return out.where(F.col(KIND) == kind).select(*columns)

    return Settled(
        part(SETTLEMENT, SETTLEMENT_COLUMNS),
        part(LINE, LINE_COLUMNS) if with_lines else None,
        part(REJECTED, REJECTED_COLUMNS),
        totals,
        policy,
        out,
    )


__all__ = [
    "Source",
    "Settled",
    "source",
    "route",
    "bucket_frame",
    "settle_sources",
    "default_buckets",
    "BUCKET",
    "LINES_PER_BUCKET",
]
