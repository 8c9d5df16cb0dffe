"""Personal-account ledger, 个人账户 (schemes.md §9, contract §3).

Per member and reconciled year: ``opening``, ``spent`` = Σ ``account_paid``,
``closing = opening − spent``, the credit for the next year, and
``next_opening = closing + credit``. The account carries over: the opening of
the base year B (the earliest benefit year of the settlements) is
``members.account_balance``, and every later year opens at the year before's
``next_opening``, years without claims included, exactly as the run settled.

The credit is the policy's ``[account.credit]`` (the policy the run used) in
force on 1 January of the next year, by :func:`adjudicate.account.credits`,
the definition settlement uses: retired
members get a flat amount; others a rate by age band of their
``prior_year_wage``, rounded half away from zero to the fen (no wage: no
credit). Age is in whole years on 1 January of the next year.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..account import BASES, credit_rule, credits
from ..inputs import Table
from ..policy import Policy
from ..schema import CATEGORIES
from .exact import decimal, group_sum
from .tables import Year, index_of


def ledger(st: Table, members: Table, years: Year, policy: Policy, base_year: int) -> tuple[pa.Table, dict, np.ndarray]:
    """ledger.parquet (every member × every reconciled year, ordered by year then member_id),
    its summary, and Σ opening per reconciled year (the account fund's opening, schemes.md §8).

    The balances are chained over every year from ``base_year`` to the last reconciled one on a
    members × years grid (one cumulative sum; the credits year by year, each vectorised over
    members, as the rule in force may change with the year).
    """
    nm, ny = members.rows, len(years.years)
    last = max(int(years.years.max()), base_year)
    grid = np.arange(base_year, last + 1, dtype=np.int64)
    ng = len(grid)
    gy = np.asarray(st["benefit_year"], dtype=np.int64) - base_year
    keep = (gy >= 0) & (gy < ng)
    midx = index_of(st, "member_id", members, "member_id", "members")
    spent = group_sum((midx * ng + gy)[keep], st["account_paid"][keep], nm * ng).reshape(nm, ng)
    credit = np.zeros((nm, ng), np.int64)
    rate = np.zeros((nm, ng), np.int64)
    basis = np.zeros((nm, ng), np.int8)
    age = np.zeros((nm, ng), np.int64)
    for j, year in enumerate(grid):
        credit[:, j], rate[:, j], basis[:, j], age[:, j] = credits(
            credit_rule(policy, int(year)),
            np.asarray(members["category"]),
            np.asarray(members["birth_date"]),
            np.asarray(members["prior_year_wage"]),
            np.asarray(members.nulls["prior_year_wage"]),
            int(year) + 1,
        )
    balance = np.asarray(members["account_balance"], dtype=np.int64)
    flow = np.cumsum(credit - spent, axis=1)
    opening = np.empty((nm, ng), np.int64)
    opening[:, 0] = balance
    opening[:, 1:] = balance[:, None] + flow[:, :-1]
    closing = opening - spent
    next_opening = closing + credit

    # the reconciled years (each within the grid: none is before the base year)
    gi = years.years.astype(np.int64) - base_year
    order_m = np.asarray(pc.sort_indices(members["member_id"].cast(pa.binary())))
    m = np.tile(order_m, ny)
    g = np.repeat(gi, nm)
    y = np.repeat(np.arange(ny), nm)
    category = np.asarray(members["category"])[m]
    table = pa.table(
        {
            "member_id": members["member_id"].take(pa.array(m)),
            "benefit_year": pa.array(years.years[y].astype(np.int16)),
            "category": pa.array(CATEGORIES).take(pa.array(category)),
            "age_next_january_1": pa.array(age[m, g].astype(np.int16)),
            "opening": decimal(opening[m, g]),
            "spent": decimal(spent[m, g]),
            "closing": decimal(closing[m, g]),
            "credit_basis": pa.array(BASES).take(pa.array(basis[m, g])),
            "credit_rate": decimal(rate[m, g], scale=4, precision=9, mask=basis[m, g] != 0),
            "credit": decimal(credit[m, g]),
            "next_opening": decimal(next_opening[m, g]),
        }
    )
    b = basis[m, g]
    summary = {
        "base_year": int(base_year),
        "rows": int(len(m)),
        "members": int(nm),
        "opening": int(opening[m, g].sum()),
        "spent": int(spent[m, g].sum()),
        "closing": int(closing[m, g].sum()),
        "credit": int(credit[m, g].sum()),
        "next_opening": int(next_opening[m, g].sum()),
        "by_basis": {name: int(np.count_nonzero(b == k)) for k, name in enumerate(BASES)},
        "overspent_members": int(np.count_nonzero(closing[m, g] < 0)),
        # every year opens at the year before's next_opening, from the base year on (contract §3)
        "chained": bool(
            np.array_equal(opening[:, 1:], next_opening[:, :-1]) and np.array_equal(opening[:, 0], balance)
        ),
    }
    return table, summary, opening[:, gi].sum(axis=0)
