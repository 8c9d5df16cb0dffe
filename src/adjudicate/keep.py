"""``--keep COLUMN``: an agency's own columns of the claims table, passed through to the outputs.

A kept column (a settlement serial number 结算流水号, a department code 科室编码, …)
is read as it is (CSV as text, so leading zeros stay; Parquet and Arrow in
their own type) and never looked at by the engine. It goes, after the
contract's columns:

- to ``lines.parquet`` and ``line_adjustments.parquet``: each line's own value;
- to ``settlements.parquet`` (and compare, adjustments and audit flags): the
  claim's value when all its lines agree, null when they differ (the line
  values are in lines.parquet);
- to ``rejected.parquet``: the value on the row the rejection names.

The columns are set once for a whole command (:func:`keeping`), as the CSV
encoding is, and read by every reader of the claims table. A plain module
global, not a ContextVar: readers may run on worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError
from .schema import AMOUNTS, CLAIMS, Column, TableSpec

#: The claims columns kept for the command running now (set by :func:`keeping`).
_KEPT: tuple[str, ...] = ()
#: Prefix of a kept column's key in ``Encoded.source``.
SOURCE = "keep."


def kept() -> tuple[str, ...]:
    """The claims columns kept by the command running now."""
    return _KEPT


@contextmanager
def keeping(names: Sequence[str]) -> Iterator[None]:
    """Keep the claims columns ``names`` inside the block (checked by :func:`check_names`)."""
    global _KEPT
    names = tuple(dict.fromkeys(names))
    check_names(names)
    before, _KEPT = _KEPT, names
    try:
        yield
    finally:
        _KEPT = before


def _output_columns() -> set[str]:
    """Every column name a per-claim or per-line output writes (a kept column may take none of them;
    a test checks this list against every such output written)."""
    names = {
        "claim_id", "member_id", "provider_id", "setting", "settle_date", "benefit_year", "admission_ordinal",
        "line_no", "item_code", "class", "reason", "detail", "column", "value", "change",
        "previous_member_id", "class_previous", "class_current",
        "rule", "severity", "claim_total", "evidence_claim_id", "evidence_provider_id", "gap_days", "measure",
        "measure_unit", "evidence_amount", "evidence",
    }  # fmt: skip
    for a in AMOUNTS:
        names |= {a, f"{a}_a", f"{a}_b", f"{a}_delta", f"{a}_previous", f"{a}_current"}
    return names


def check_names(names: Sequence[str]) -> None:
    """InputError (exit 2) for a name that is a contract claims column or an output column."""
    contract = {c.name for c in CLAIMS.columns}
    outputs = _output_columns()
    for n in names:
        if not n or not n.strip():
            raise InputError("--keep needs a column name of the claims table")
        if n in contract:
            raise InputError(
                f"--keep {n}: {n!r} is a contract column of the claims table, read by the engine; "
                "--keep passes an agency's own extra columns through"
            )
        if n in outputs:
            raise InputError(
                f"--keep {n}: {n!r} is already a column of the outputs (settlements, lines, rejected, "
                "compare, adjustments or flags); rename it in the claims table"
            )


def claims_spec(spec: TableSpec = CLAIMS) -> TableSpec:
    """The claims spec with the kept columns (kind ``keep``: read as they are, nullable)."""
    have = {c.name for c in spec.columns}
    if spec.name != "claims" or all(n in have for n in _KEPT):
        return spec
    return replace(spec, columns=spec.columns + tuple(Column(n, "keep", nullable=True) for n in _KEPT if n not in have))


def check_file(names: Sequence[str], path) -> None:
    """InputError naming the file and the first kept column it lacks."""
    missing = [n for n in _KEPT if n not in names]
    if missing:
        raise InputError(f"has no column {missing[0]!r} named by --keep", path, missing[0])


def source_columns(claims) -> dict[str, pa.Array]:
    """The kept columns of a loaded claims Table, keyed for ``Encoded.source``."""
    return {SOURCE + n: claims.values[n] for n in kept_in(claims.values)}


def kept_in(values) -> list[str]:
    return [n for n in _KEPT if n in values]


def names_of(source: dict) -> list[str]:
    """The kept columns of an Encoded's ``source``, in --keep order."""
    return [k[len(SOURCE) :] for k in source if k.startswith(SOURCE)]


def row_values(claims, row: int) -> tuple:
    """What a rejection row adds for --keep: () when nothing is kept (rows stay as they were), else one
    element, the kept values on that row of the claims table."""
    names = kept_in(claims.values)
    return (tuple(claims.values[n][row] for n in names),) if names else ()


def source_row_values(source: dict, row: int) -> tuple:
    """:func:`row_values` from an Encoded's ``source`` (a rejection made after encoding)."""
    values = tuple(v[row] for k, v in source.items() if k.startswith(SOURCE))
    return (values,) if values else ()


def claim_columns(enc, rows: np.ndarray | None = None) -> dict[str, pa.Array]:
    """Per accepted claim (``rows``: positions, default all): each kept column's value, null where the
    claim's lines disagree."""
    names = names_of(enc.source)
    if not names:
        return {}
    head = enc.head_row if rows is None else enc.head_row[rows]
    starts = enc.line_start[:-1] if rows is None else enc.line_start[rows]
    ends = enc.line_start[1:] if rows is None else enc.line_start[rows + 1]
    out = {}
    for n in names:
        col = enc.source[SOURCE + n]
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        line_v = col.take(pa.array(enc.line_row))
        claim_v = col.take(pa.array(enc.head_row[enc.line_claim]))
        same = pc.fill_null(pc.equal(line_v, claim_v), False)
        both_null = pc.and_(pc.is_null(line_v), pc.is_null(claim_v))
        differs = ~np.asarray(pc.or_(same, both_null), dtype=bool)
        bad = np.r_[0, np.cumsum(differs)]  # lines that differ before each position
        varies = (bad[ends] - bad[starts]) > 0
        value = col.take(pa.array(head))
        out[n] = pc.if_else(pa.array(varies), pa.nulls(len(value), value.type), value) if varies.any() else value
    return out


def line_columns(enc, line_rows: np.ndarray | None = None) -> dict[str, pa.Array]:
    """Per line (rows of the claims table, default the accepted lines): each kept column's value."""
    rows = enc.line_row if line_rows is None else line_rows
    return {n: enc.source[SOURCE + n].take(pa.array(rows)) for n in names_of(enc.source)}


def rejected_columns(rejected: list[tuple], names: Sequence[str] | None = None) -> dict[str, pa.Array]:
    """The kept columns of rejection rows (element 8 of each row: the values; absent: null)."""
    names = kept() if names is None else names
    out = {}
    for i, n in enumerate(names):
        values = [t[8][i] if len(t) > 8 and len(t[8]) > i else None for t in rejected]
        typ = next((v.type for v in values if isinstance(v, pa.Scalar)), pa.string())
        out[n] = pa.array([v.as_py() if isinstance(v, pa.Scalar) else v for v in values], typ)
    return out


def refuse(what: str) -> InputError:
    """The error of a path that cannot keep columns (yet)."""
    return InputError(f"--keep {', '.join(_KEPT)}: {what}")
