"""Adjudicate on Apache Spark, value for value the same as a local run.

For your own PySpark job::

    from adjudicate.spark import settle
    result = settle(claims_df, members_df, providers_df, catalogue_df, "prefecture-employee")
    result.settlements.write.saveAsTable("mi.settlements_2024")
    result.lines.write.saveAsTable("mi.lines_2024")
    result.rejected.write.saveAsTable("mi.rejected_2024")
    summary = result.summary()
    result.unpersist()

``settle`` runs the job (each bucket of members is settled by the same engine
code as ``adjudicate run``), caches the result and raises
:class:`adjudicate.inputs.InputError` with the local run's message when the
input is bad; the returned DataFrames read the cache. Needs ``pip install
"adjudicate[spark]"`` (pyspark ≥ 4). ``adjudicate run --engine spark`` is the
same from the command line (``adjudicate.spark.files``).
"""

from __future__ import annotations

import warnings

from pyspark.sql import DataFrame

from ..inputs import Table, _check_columns
from ..policy import Policy
from ..policy import load as load_policy
from ..schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS, TableSpec
from .bucket import BucketError, to_table, unique_keys, validate_catalogue
from .job import Settled, Source, settle_sources, source

# Arrow UDFs make pyspark import pandas, which it checks and warns about; no pandas is used here.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def small_table(src: Source, spec: TableSpec) -> Table:
    """A small table (providers, catalogue) read on the driver and checked as a local run checks it."""
    return to_table(spec, src.frame.toArrow(), src.files, src.text, threads=2)


def check_small(providers: Table | BucketError, catalogue: Table | BucketError) -> list[BucketError]:
    """The driver's checks of the broadcast tables; their errors, in the local run's order."""
    if isinstance(providers, BucketError) or isinstance(catalogue, BucketError):
        return [t for t in (providers, catalogue) if isinstance(t, BucketError)]
    for check in (lambda: unique_keys(providers, "provider_id"), lambda: validate_catalogue(catalogue)):
        try:
            check()
        except BucketError as e:
            return [e]
    return []


def settle(
    claims: DataFrame,
    members: DataFrame,
    providers: DataFrame,
    catalogue: DataFrame,
    policy: Policy | str,
    *,
    buckets: int | None = None,
    with_lines: bool = True,
) -> Settled:
    """Adjudicate Spark DataFrames of the contract's four input tables (contract §2).

    ``buckets`` is the number of member buckets (default: two per core, at
    least one per million lines); any number gives the same result.
    ``with_lines=False`` skips the lines table (``Settled.lines`` is None).
    """
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    for df, spec in ((claims, CLAIMS), (members, MEMBERS), (providers, PROVIDERS), (catalogue, CATALOGUE)):
        _check_columns(spec, df.columns, f"{spec.name} (DataFrame)")
    small: list[Table | BucketError] = []
    for df, spec in ((providers, PROVIDERS), (catalogue, CATALOGUE)):
        try:
            small.append(small_table(source(df, spec), spec))
        except BucketError as e:
            small.append(e)
    errors = check_small(*small)
    tables = [t if isinstance(t, Table) else None for t in small]
    return settle_sources(
        source(claims, CLAIMS),
        source(members, MEMBERS),
        tables[0],
        tables[1],
        policy,
        buckets=buckets,
        with_lines=with_lines,
        driver_errors=errors,
    )


__all__ = ["settle", "Settled", "Source", "source", "settle_sources", "small_table", "check_small"]
