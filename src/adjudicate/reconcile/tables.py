"""Input tables of ``adjudicate reconcile``: their specs and readers.

The settlements are the output of ``adjudicate run`` (contract §4); the
income, opening and advances tables are defined here and documented, with an
example, in ``data/reconcile/README.md``. All are read by
:func:`adjudicate.inputs.load`, so a bad value is an ``InputError`` naming the
file, the column and the row (exit 2), as for every other input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..inputs import SUFFIXES, Table, expand_paths, load
from ..schema import ENUM_ALIASES, SETTINGS, Column, TableSpec

#: The funds of a statement (schemes.md §8), each fed by one settlements column.
FUNDS = ("pool", "account", "supplementary", "subsidy")
FUND_COLUMNS = ("fund_pool", "account_paid", "fund_supplementary", "subsidy")
#: Income items (schemes.md §8): 征缴, 利息, 一次性预缴, 财政补贴, other.
ITEMS = ("contributions", "interest", "prepayments", "fiscal_subsidy", "other")

# Chinese names of the funds and income items (docs/data-dictionary.md)
ENUM_ALIASES[FUNDS] = {
    "统筹基金": "pool",
    "统筹": "pool",
    "个人账户": "account",
    "大额医疗补助": "supplementary",
    "大额": "supplementary",
    "补充医疗保险": "supplementary",
    "公务员医疗补助": "subsidy",
    "公务员补助": "subsidy",
}
ENUM_ALIASES[ITEMS] = {
    "征缴收入": "contributions",
    "征缴": "contributions",
    "利息收入": "interest",
    "利息": "interest",
    "一次性预缴收入": "prepayments",
    "一次性预缴": "prepayments",
    "财政补贴": "fiscal_subsidy",
    "其他": "other",
    "其他收入": "other",
}

YEARS = (1900, 9999)
MONTHS = (1, 12)

SETTLEMENTS = TableSpec(
    "settlements",
    (
        Column("claim_id", "string"),  # each claim once across all the files (the same run given twice)
        Column("member_id", "string"),
        Column("provider_id", "string"),
        Column("setting", "enum", enum=SETTINGS),
        Column("settle_date", "date"),
        Column("benefit_year", "int", int_range=YEARS),
        Column("admission_ordinal", "int", nullable=True, int_range=(1, 2**31 - 1)),
        *(Column(c, "amount") for c in FUND_COLUMNS),
    ),
)

INCOME = TableSpec(
    "income",
    (
        Column("fund", "enum", enum=FUNDS),
        Column("year", "int", int_range=YEARS),
        Column("month", "int", int_range=MONTHS),
        Column("item", "enum", enum=ITEMS),
        Column("amount", "amount"),
    ),
)

OPENING = TableSpec(
    "opening",
    (
        Column("fund", "enum", enum=FUNDS),
        Column("year", "int", int_range=YEARS),
        Column("amount", "amount"),
    ),
    key=("fund", "year"),
)

ADVANCES = TableSpec(
    "advances",
    (
        Column("provider_id", "string"),
        Column("year", "int", nullable=True, int_range=YEARS),
        Column("month", "int", int_range=MONTHS),
        Column("amount", "amount"),
    ),
)


def settlement_files(paths: Sequence[str | Path]) -> list[Path]:
    """``adjudicate run`` output folders mean their settlements file; other folders, every data file."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # a file, or a folder of part files (run --engine spark)
            named = [p / f"settlements{s}" for s in SUFFIXES if (p / f"settlements{s}").exists()]
            if named:
                out.extend(expand_paths(named[:1], "settlements"))
                continue
            if (p / "settlements").is_dir():
                p = p / "settlements"
        out.extend(expand_paths([p], "settlements"))
    return out


def read(spec: TableSpec, paths: Sequence[str | Path] | None) -> Table | None:
    if not paths:
        return None
    files = settlement_files(paths) if spec is SETTLEMENTS else list(paths)
    return load(spec, files)


def index_of(table: Table, column: str, keys: Table, key_column: str, what: str) -> np.ndarray:
    """Row of ``keys`` holding each value of ``table[column]``; an unknown value is an InputError."""
    idx = pc.index_in(table[column], value_set=keys[key_column])
    missing = np.asarray(idx.is_null(), dtype=bool) if idx.null_count else None
    if missing is not None and missing.any():
        row = int(np.flatnonzero(missing)[0])
        path, r = table.where(row)
        raise InputError(
            f"{column} {table[column][row].as_py()!r} is not in the {what} file "
            f"({', '.join(map(str, keys.files))}); reconcile with the {what} the run used",
            path,
            column,
            r,
        )
    return np.asarray(idx.fill_null(0), dtype=np.int64)


def check_unique(table: Table, columns: Sequence[str]) -> None:
    """Each combination of ``columns`` at most once (rows are named as the file shows them)."""
    if table.rows < 2:
        return
    cols = []
    for c in columns:
        v = table[c]
        cols.append(
            pc.dictionary_encode(v).indices.to_numpy(zero_copy_only=False).astype(np.int64)
            if isinstance(v, pa.Array)
            else np.asarray(v, dtype=np.int64)
        )
    order = np.lexsort(cols[::-1])
    same = np.ones(len(order) - 1, bool)
    for col in cols:
        s = col[order]
        same &= s[1:] == s[:-1]
    if same.any():
        k = int(np.flatnonzero(same)[0])
        first, again = sorted((int(order[k]), int(order[k + 1])))
        path, row = table.where(again)
        path0, row0 = table.where(first)
        raise InputError(
            f"repeats the {'/'.join(columns)} of row {row0}"
            + (f" of {path0}" if path0 != path else "")
            + "; give each at most once",
            path,
            columns[0],
            row,
        )


def check_settlements(st: Table) -> None:
    """What no run writes: a claim twice (across files too) or a negative fund amount (contract §4)."""
    check_unique(st, ("claim_id",))
    for c in FUND_COLUMNS:
        negative = np.asarray(st[c]) < 0
        if negative.any():
            path, row = st.where(int(np.flatnonzero(negative)[0]))
            raise InputError(
                "a fund amount is negative; settlements of 'adjudicate run' never are (contract §4)", path, c, row
            )


def impossible(ledger_summary: dict) -> dict[str, int]:
    """Counts of what cannot be in one true year (each makes the identities fail): members whose
    account closes below zero spent more than they had (the settlements or members of another run)."""
    return {"overspent_members": int(ledger_summary["overspent_members"])}


@dataclass
class Year:
    """Benefit years of a reconciliation: ``years`` ascending, and each claim's index into it."""

    years: np.ndarray

    def index(self, year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into years, whether the year is reconciled) for each value."""
        pos = np.searchsorted(self.years, year)
        pos = np.minimum(pos, len(self.years) - 1)
        return pos, self.years[pos] == year


def months_of(days: np.ndarray) -> np.ndarray:
    """Calendar month 1..12 of int32 days since 1970-01-01."""
    m = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return (m % 12 + 1).astype(np.int64)
