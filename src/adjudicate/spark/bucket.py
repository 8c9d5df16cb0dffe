"""One bucket of members, settled on a Spark executor by the local engine.

No Spark here: a bucket is two Arrow tables (its claim lines and its member
rows) and the shared, broadcast part of the run (policy, providers,
catalogue). ``settle_bucket`` turns them into engine tables with the same
conversion and checks as ``inputs.load``, adjudicates them with
``engine.adjudicate`` (the very code of a local run), and returns one Arrow
table in the union layout ``OUTPUT``: a ``__kind`` column says whether a row
is a settlement, a line, a rejection, the bucket's counts, or an input error.

Input errors are returned, not raised: an executor's exception would reach
the user as a stack trace. Each error carries the key of its place in the
order a local run checks things (table, column, file, row), so the driver
reports the same error the local run would.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..encode import _codes, catalogue_rows, check_unique
from ..engine import Inputs, Result, adjudicate
from ..errors import InputError
from ..inputs import Table, from_arrow
from ..money import OUTPUT_TYPE
from ..outputs import claim_amounts, invariant_violations, lines_table, rejected_table, settlements_table
from ..policy import Policy
from ..schema import AMOUNTS, CLAIMS, MEMBERS, TableSpec

#: Columns added to the inputs: the index of the row's file (in the run's file
#: order) and its row within that file (null where the reader cannot tell).
FILE, ROW = "__file", "__row"
KIND = "__kind"
SETTLEMENT, LINE, REJECTED, STATS, ERROR = range(5)
#: Where each table's checks fall in a local run's order (inputs are read
#: claims, members, providers, catalogue; encode then checks unique keys, then
#: catalogue validity).
TABLE_NO = {"claims": 0, "members": 1, "providers": 2, "catalogue": 3}
UNIQUE_STAGE, CATALOGUE_STAGE = 10, 20
#: Test hook: a folder; when it holds a file named ``arm``, the first bucket
#: to see it renames it to ``fired`` and fails, once (a task Spark retries).
FAIL_ONCE_ENV = "ADJUDICATE_SPARK_FAIL_ONCE"

SETTLEMENT_COLUMNS = (
    "claim_id",
    "member_id",
    "provider_id",
    "setting",
    "settle_date",
    "benefit_year",
    "admission_ordinal",
) + AMOUNTS
LINE_COLUMNS = (
    "claim_id",
    "line_no",
    "item_code",
    "class",
    "self_pay",
    "first_self_pay",
    "eligible",
    "fund_pool",
    "fund_supplementary",
)
REJECTED_COLUMNS = ("claim_id", "line_no", "reason", "detail", "member_id", "provider_id", "column", "value")
#: Counts of a STATS row (input lines, input claims, settled lines, rows
#: breaking an invariant, CPU nanoseconds the bucket took) and the sort key of an
#: ERROR row (the first four).
NUMBERS = ("__n1", "__n2", "__n3", "__n4", "__n5")

_TYPES = {
    "claim_id": pa.string(),
    "member_id": pa.string(),
    "provider_id": pa.string(),
    "setting": pa.string(),
    "settle_date": pa.date32(),
    "benefit_year": pa.int16(),
    "admission_ordinal": pa.int32(),
    "line_no": pa.int32(),
    "item_code": pa.string(),
    "class": pa.string(),
    "reason": pa.string(),
    "detail": pa.string(),
    "column": pa.string(),
    "value": pa.string(),
    **{a: OUTPUT_TYPE for a in AMOUNTS},
}
#: The union layout of a bucket's output (contract §4 columns, plus the tags).
OUTPUT = pa.schema(
    [(KIND, pa.int8())]
    + [(c, _TYPES[c]) for c in dict.fromkeys(SETTLEMENT_COLUMNS + LINE_COLUMNS + REJECTED_COLUMNS)]
    + [(n, pa.int64()) for n in NUMBERS]
)


@dataclass
class Shared:
    """What every bucket needs besides its own rows; broadcast once."""

    policy: Policy
    #: None where the driver found the table bad (``driver_errors``): the buckets then only validate.
    providers: Table | None
    catalogue: Table | None
    claim_files: list[str]
    member_files: list[str]
    claims_text: bool = False
    members_text: bool = False
    with_lines: bool = True
    validate_only: bool = False
    #: The run's base year B (contract §3): every bucket settles the accounts from it.
    base_year: int | None = None


class BucketError(Exception):
    """An input error, with its place in the local run's order of checks."""

    def __init__(self, key: tuple[int, int, int, int], error: InputError):
        super().__init__(str(error))
        self.key, self.error = key, error


def to_table(spec: TableSpec, t: pa.Table, files: list[str], text: bool, threads: int = 1) -> Table:
    """``inputs.load`` on rows of several files: the same checks, errors naming the original file and row.

    ``t`` holds the contract's columns present plus FILE and ROW; rows are
    checked in (file, row) order, as a local run reads them.
    """
    table_no = TABLE_NO[spec.name]
    file = np.asarray(t[FILE].fill_null(0), dtype=np.int64) if FILE in t.column_names else np.zeros(len(t), np.int64)
    row = np.asarray(t[ROW].fill_null(-1), dtype=np.int64) if ROW in t.column_names else np.full(len(t), -1, np.int64)
    order = np.lexsort((row, file))
    names = [c.name for c in spec.columns if c.name in t.column_names]
    data = t.select(names).take(pa.array(order))
    file, row = file[order], row[order]
    cuts = np.flatnonzero(np.r_[True, file[1:] != file[:-1]]) if len(file) else np.array([0])
    bounds = list(zip(cuts, list(cuts[1:]) + [len(file)]))
    which = [int(file[a]) if len(file) else 0 for a, _ in bounds]
    shown = [files[k] if k < len(files) else spec.name for k in which]
    parts = [(data.slice(a, b - a), text) for a, b in bounds]
    try:
        out = from_arrow(spec, shown, parts, threads)
    except InputError as e:
        k = next((i for i, f in enumerate(shown) if f is e.file), 0)
        original = None
        if e.row is not None and int(row[bounds[k][0] + e.row]) >= 0:
            original = int(row[bounds[k][0] + e.row])
        column = next((i for i, c in enumerate(spec.columns) if c.name == e.column), -1)
        raise BucketError(
            (table_no, column, which[k], -1 if original is None else original),
            InputError(e.message, shown[k], e.column, original),
        ) from None
    out.file_of_row = np.repeat(np.arange(len(bounds), dtype=np.int32), [b - a for a, b in bounds])
    out.original = (np.asarray(which, np.int64), row)  # type: ignore[attr-defined]  # read back by getattr only
    return out


def unique_keys(t: Table, column: str) -> None:
    """``encode.check_unique``, keyed by the first occurrence of the duplicated value (the local choice)."""
    try:
        check_unique(t, column)
    except InputError as e:
        stage = UNIQUE_STAGE + TABLE_NO[t.spec.name]
        original = getattr(t, "original", None)
        if original is None:  # read by inputs.load: its message is the local one already
            raise BucketError((stage, 0, 0, 0), e) from None
        codes, dictionary = _codes(t[column])
        counts = np.bincount(codes[codes >= 0], minlength=len(dictionary))
        first, second = np.flatnonzero(codes == int(np.flatnonzero(counts > 1)[0]))[:2]
        which, rows = original
        assert t.file_of_row is not None  # set by to_table, with original
        k1, k2 = int(t.file_of_row[first]), int(t.file_of_row[second])
        err = InputError(e.message, t.files[k2], column, int(rows[second]) if rows[second] >= 0 else None)
        raise BucketError((stage, 0, int(which[k1]), int(rows[first])), err) from None


def relocate(t: Table, e: InputError) -> InputError:
    """An error ``encode`` raised on a table built by ``to_table``, naming the original file row."""
    original = getattr(t, "original", None)
    if original is None or e.row is None or t.file_of_row is None:
        return e
    k = next((i for i, f in enumerate(t.files) if f is e.file), None)
    if k is None:
        return e
    row = int(original[1][int(np.searchsorted(t.file_of_row, k)) + e.row])
    return InputError(e.message, e.file, e.column, row if row >= 0 else None)


def validate_catalogue(cat: Table) -> None:
    """The catalogue's own checks that encode makes (valid_to after valid_from, no overlap)."""
    try:
        catalogue_rows(
            cat,
            pa.array([], pa.string()),
            np.empty(0, np.int32),
            take=np.empty(0, np.int64),
            item=np.empty(0, np.int64),
        )
    except InputError as e:
        raise BucketError((CATALOGUE_STAGE, 0, 0, 0), relocate(cat, e)) from None


def _fail_once() -> None:
    folder = os.environ.get(FAIL_ONCE_ENV)
    if not folder:
        return
    try:
        os.rename(Path(folder) / "arm", Path(folder) / "fired")
    except OSError:
        return
    raise RuntimeError("injected failure of one task attempt (test hook)")


def settle_bucket(claims: pa.Table, members: pa.Table, shared: Shared) -> pa.Table:
    """Settle one bucket; the rows of the union layout ``OUTPUT``."""
    _fail_once()
    t0 = time.process_time_ns()  # CPU time: a fair measure on a shared machine
    try:
        claims_t = to_table(CLAIMS, claims, shared.claim_files, shared.claims_text)
        members_t = to_table(MEMBERS, members, shared.member_files, shared.members_text)
        unique_keys(members_t, "member_id")
    except BucketError as e:
        return error_rows([e])
    if shared.validate_only or claims_t.rows == 0:
        return stats_rows(claims_t.rows, 0, 0, 0, None, 0) if not shared.validate_only else _empty()
    assert shared.providers is not None and shared.catalogue is not None  # else validate_only
    r = adjudicate(
        Inputs(claims_t, members_t, shared.providers, shared.catalogue),
        shared.policy,
        threads=1,
        line_funds=shared.with_lines,
        base_year=shared.base_year,
    )
    return result_rows(r, claims_t.rows, shared.with_lines, t0)


def result_rows(r: Result, input_lines: int, with_lines: bool, t0: int) -> pa.Table:
    parts = [_tagged(settlements_table(r), SETTLEMENT)]
    if with_lines:
        parts.append(_tagged(lines_table(r), LINE))
    parts.append(_tagged(rejected_table(r), REJECTED))
    violations = sum(invariant_violations(claim_amounts(r)).values())
    year = int(r.enc.year.min()) if len(r.enc.year) else None
    out = pa.concat_tables(parts)
    stats = stats_rows(
        input_lines, r.enc.input_claims, len(r.enc.amount), violations, year, time.process_time_ns() - t0
    )
    return pa.concat_tables([out, stats])


def stats_rows(
    input_lines: int, input_claims: int, settled_lines: int, violations: int, first_year: int | None, nanoseconds: int
) -> pa.Table:
    numbers = (input_lines, input_claims, settled_lines, violations, nanoseconds)
    return _tagged(
        pa.table(
            {
                "benefit_year": pa.array([first_year], pa.int16()),
                **{n: pa.array([v], pa.int64()) for n, v in zip(NUMBERS, numbers)},
            }
        ),
        STATS,
    )


def error_rows(errors: list[BucketError]) -> pa.Table:
    keys = np.array([e.key for e in errors], np.int64).reshape(-1, 4)
    return _tagged(
        pa.table(
            {
                "detail": pa.array([str(e.error) for e in errors], pa.string()),
                **{n: pa.array(keys[:, i]) for i, n in enumerate(NUMBERS[:4])},
            }
        ),
        ERROR,
    )


def _empty() -> pa.Table:
    return OUTPUT.empty_table()


def _tagged(t: pa.Table, kind: int) -> pa.Table:
    """``t`` in the union layout: its columns where they belong, nulls elsewhere."""
    n = len(t)
    cols = []
    for f in OUTPUT:
        if f.name == KIND:
            cols.append(pa.array(np.full(n, kind, np.int8)))
        elif f.name in t.column_names:
            c = t[f.name]
            cols.append(c.cast(f.type) if c.type != f.type else c)
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(cols, schema=OUTPUT)


__all__ = [
    "Shared",
    "BucketError",
    "settle_bucket",
    "to_table",
    "unique_keys",
    "validate_catalogue",
    "OUTPUT",
    "FILE",
    "ROW",
    "KIND",
    "SETTLEMENT",
    "LINE",
    "REJECTED",
    "STATS",
    "ERROR",
    "AMOUNTS",
    "SETTLEMENT_COLUMNS",
    "LINE_COLUMNS",
    "REJECTED_COLUMNS",
    "NUMBERS",
    "FAIL_ONCE_ENV",
]
