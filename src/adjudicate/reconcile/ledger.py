"""Personal-account ledger, 个人账户 (schemes.md §9).

Per member and reconciled year: ``opening`` = ``members.account_balance``
(the balance the run settled from, contract §3), ``spent`` = Σ
``account_paid``, ``closing = opening − spent``, the credit for the next year,
and ``next_opening = closing + credit``.

The credit follows the rules file: retired members get a flat amount; members
in service get a rate by age band of their ``prior_year_wage``, rounded half
away from zero to the fen (no wage: no credit). Age is in whole years on
1 January of the next year (someone born on 1 January has had the birthday).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..inputs import Table
from ..schema import CATEGORIES
from .exact import decimal, group_sum, round_div
from .rules import Rules
from .tables import Year, index_of

RETIRED = CATEGORIES.index("retired")
BASES = ("wage_rate", "retired_flat", "no_wage")


def age_on_january_1(birth_days: np.ndarray, year: np.ndarray | int) -> np.ndarray:
    """Whole years of age on 1 January of ``year`` (births as days since 1970-01-01)."""
    b = np.asarray(birth_days, dtype=np.int64).astype("datetime64[D]")
    by = b.astype("datetime64[Y]")
    born_jan1 = by.astype("datetime64[D]") == b
    return np.asarray(year, dtype=np.int64) - (by.astype(np.int64) + 1970) - (~born_jan1).astype(np.int64)


def credits(category: np.ndarray, birth_days: np.ndarray, wage: np.ndarray, no_wage: np.ndarray,
            next_year: np.ndarray | int, rules: Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(credit fen, rate bp, basis code, age) for each member, for the year before ``next_year``,
    under the rules in force on 1 January of ``next_year`` (dated rules: year by year)."""
    if not rules.periods:
        return _credits(category, birth_days, wage, no_wage, next_year, rules)
    ny = np.broadcast_to(np.asarray(next_year, dtype=np.int64), np.shape(category))
    out = [np.zeros(len(ny), np.int64), np.zeros(len(ny), np.int64), np.zeros(len(ny), np.int8),
           np.zeros(len(ny), np.int64)]
    for year in np.unique(ny):
        sel = ny == year
        part = _credits(np.asarray(category)[sel], np.asarray(birth_days)[sel], np.asarray(wage)[sel],
                        np.asarray(no_wage)[sel], int(year), rules.for_credit(int(year)))
        for o, p in zip(out, part):
            o[sel] = p
    return tuple(out)  # type: ignore[return-value]


def _credits(category, birth_days, wage, no_wage, next_year, rules: Rules):
    age = age_on_january_1(birth_days, next_year)
    band = np.searchsorted(np.asarray(rules.age_from), np.maximum(age, 0), side="right") - 1
    rate = np.asarray(rules.age_rate_bp, dtype=np.int64)[band]
    retired = np.asarray(category) == RETIRED
    on_wage = round_div(np.asarray(wage, dtype=np.int64) * rate, 10_000)
    credit = np.where(retired, rules.retired_credit_fen, np.where(no_wage, 0, on_wage))
    basis = np.where(retired, 1, np.where(no_wage, 2, 0)).astype(np.int8)
    return credit.astype(np.int64), rate, basis, age


def ledger(st: Table, members: Table, years: Year, rules: Rules) -> tuple[pa.Table, dict]:
    """ledger.parquet: every member × every reconciled year, ordered by year then member_id."""
    nm, ny = members.rows, len(years.years)
    yi, keep = years.index(st["benefit_year"])
    midx = index_of(st, "member_id", members, "member_id", "members")
    spent = group_sum((midx * ny + yi)[keep], st["account_paid"][keep], nm * ny).reshape(nm, ny)
    # member-major grid, then reorder by (year, member_id bytes)
    order_m = np.asarray(pc.sort_indices(members["member_id"].cast(pa.binary())))
    m = np.tile(order_m, ny)
    y = np.repeat(np.arange(ny), nm)
    opening = np.asarray(members["account_balance"], dtype=np.int64)[m]
    spent_r = spent[m, y]
    closing = opening - spent_r
    category = np.asarray(members["category"])[m]
    credit, rate, basis, age = credits(category, np.asarray(members["birth_date"])[m],
                                       np.asarray(members["prior_year_wage"])[m],
                                       members.nulls["prior_year_wage"][m], years.years[y] + 1, rules)
    next_opening = closing + credit
    table = pa.table({
        "member_id": members["member_id"].take(pa.array(m)),
        "year": pa.array(years.years[y].astype(np.int16)),
        "category": pa.array(CATEGORIES).take(pa.array(category)),
        "age_next_january_1": pa.array(age.astype(np.int16)),
        "opening": decimal(opening),
        "spent": decimal(spent_r),
        "closing": decimal(closing),
        "credit_basis": pa.array(BASES).take(pa.array(basis)),
        "credit_rate": decimal(rate, scale=4, precision=9, mask=basis != 0),
        "credit": decimal(credit),
        "next_opening": decimal(next_opening),
    })
    summary = {
        "rows": int(len(m)),
        "members": int(nm),
        "opening": int(opening.sum()),
        "spent": int(spent_r.sum()),
        "closing": int(closing.sum()),
        "credit": int(credit.sum()),
        "next_opening": int(next_opening.sum()),
        "by_basis": {b: int(np.count_nonzero(basis == k)) for k, b in enumerate(BASES)},
        "overspent_members": int(np.count_nonzero(closing < 0)),
    }
    return table, summary
