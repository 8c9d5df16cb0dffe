"""Fund statement, 基金收支 / 结余 / 备付能力 (schemes.md §8).

Per fund (``pool``, ``account``, ``supplementary``, ``subsidy``) and year:

- ``opening``: from the opening table; else the previous reconciled year's
  closing; else, for the account fund, Σ of the members' account openings of
  that year (the ledger's: ``members.account_balance`` in the base year, then
  carried over, contract §3); else 0. ``opening_source`` says which.
- income by item (contributions 征缴, interest 利息, prepayments 一次性预缴,
  fiscal_subsidy 财政补贴, other) from the optional income table;
- expenditure from the settlements: Σ fund_pool, account_paid,
  fund_supplementary, subsidy, by settle month (cash basis: what was settled);
- ``year_balance = income − expenditure`` (本年结余), ``closing = opening +
  year_balance`` (累计结余);
- ``months_of_reserve = closing ÷ mean monthly expenditure`` (备付能力) over the
  last ``window`` months up to the statement's last month (the latest month of
  the year with any settlement or income), never reaching back past the first
  reconciled January; computed exactly and rounded half away from zero to two
  decimals (null when the window's expenditure is not positive).

Everything is integer fen on a (fund, year, month) grid: no loop per claim.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..inputs import Table
from .exact import decimal, group_sum, round_div, to_int64
from .tables import FUND_COLUMNS, FUNDS, ITEMS, Year, check_unique, months_of

ACCOUNT = FUNDS.index("account")


def statement(
    st: Table,
    years: Year,
    income: Table | None,
    opening: Table | None,
    account_opening: np.ndarray,
    window: int,
    base_year: int | None = None,
) -> tuple[pa.Table, pa.Table, dict]:
    """(funds.parquet, funds_monthly.parquet, summary) for the reconciled years;
    ``account_opening[y]``: Σ of the members' account openings in reconciled year y."""
    F, Y, M, I = len(FUNDS), len(years.years), 12, len(ITEMS)
    yi, keep = years.index(st["benefit_year"])
    month = months_of(st["settle_date"])
    cell = (yi * M + month - 1)[keep]
    exp: np.ndarray = np.zeros((F, Y * M), np.int64)
    for f, col in enumerate(FUND_COLUMNS):
        exp[f] = group_sum(cell, st[col][keep], Y * M)
    has_data = np.bincount(cell, minlength=Y * M) > 0

    inc: np.ndarray = np.zeros((F, Y * M, I), np.int64)
    ignored_income = 0
    if income is not None:
        iy, ikeep = years.index(income["year"])
        ignored_income = int(np.count_nonzero(~ikeep))
        f = np.asarray(income["fund"], dtype=np.int64)[ikeep]
        c = (iy * M + np.asarray(income["month"]) - 1)[ikeep]
        it = np.asarray(income["item"], dtype=np.int64)[ikeep]
        flat = group_sum((f * Y * M + c) * I + it, income["amount"][ikeep], F * Y * M * I)
        inc = flat.reshape(F, Y * M, I)
        has_data |= np.bincount(c, minlength=Y * M) > 0
    exp = exp.reshape(F, Y, M)
    inc = inc.reshape(F, Y, M, I)
    has_data = has_data.reshape(Y, M)
    through = np.where(has_data.any(axis=1), M - np.argmax(has_data[:, ::-1], axis=1), M)  # last month, 1..12

    given = np.zeros((F, Y), bool)
    given_amount = np.zeros((F, Y), np.int64)
    ignored_opening = 0
    if opening is not None:
        check_unique(opening, ("fund", "year"))
        oy, okeep = years.index(opening["year"])
        ignored_opening = int(np.count_nonzero(~okeep))
        of = np.asarray(opening["fund"], dtype=np.int64)[okeep]
        given[of, oy[okeep]] = True
        given_amount[of, oy[okeep]] = opening["amount"][okeep]

    income_y = inc.sum(axis=2)  # (F, Y, I)
    income_total = income_y.sum(axis=2)  # (F, Y)
    exp_y = exp.sum(axis=2)
    year_balance = income_total - exp_y
    # openings chain over consecutive reconciled years: a short loop over years, not rows
    open_ = np.zeros((F, Y), np.int64)
    source = np.empty((F, Y), object)
    for y in range(Y):
        chained = y > 0 and years.years[y] == years.years[y - 1] + 1
        for f in range(F):
            if given[f, y]:
                open_[f, y], source[f, y] = given_amount[f, y], "opening file"
            elif chained:
                open_[f, y], source[f, y] = open_[f, y - 1] + year_balance[f, y - 1], "previous year"
            elif f == ACCOUNT:
                open_[f, y] = int(account_opening[y])
                source[f, y] = (
                    "members.account_balance"
                    if years.years[y] == base_year
                    else "members' account openings (carried over)"
                )
            else:
                open_[f, y], source[f, y] = 0, "none (0)"
    closing = open_ + year_balance

    # reserve window on a continuous month timeline (consecutive years join up)
    run_start = np.zeros(Y, np.int64)  # first year index of the consecutive run holding each year
    for y in range(1, Y):
        run_start[y] = run_start[y - 1] if years.years[y] == years.years[y - 1] + 1 else y
    t_end = np.arange(Y) * M + through  # exclusive end on the flat timeline (fund, y*12 + m)
    t_start = np.maximum(t_end - window, run_start * M)
    cum = np.concatenate([np.zeros((F, 1), np.int64), np.cumsum(exp.reshape(F, Y * M), axis=1)], axis=1)
    win_exp = cum[:, t_end] - cum[:, t_start]  # (F, Y)
    win_len = (t_end - t_start)[None, :].repeat(F, axis=0)
    positive = win_exp > 0
    ratio = to_int64(
        round_div(closing.astype(object) * win_len * 100, np.where(positive, win_exp, 1).astype(object)),
        "months of reserve",
    )
    mean = round_div(win_exp, win_len)

    fy = [(f, y) for y in range(Y) for f in range(F)]
    fi = np.array([f for f, _ in fy], np.int64)
    yi_ = np.array([y for _, y in fy], np.int64)
    cols = {
        "fund": pa.array([FUNDS[f] for f in fi], pa.string()),
        "benefit_year": pa.array(years.years[yi_].astype(np.int16)),
        "opening": decimal(open_[fi, yi_]),
        "opening_source": pa.array([source[f, y] for f, y in fy], pa.string()),
    }
    for k, item in enumerate(ITEMS):
        cols[item] = decimal(income_y[fi, yi_, k])
    cols.update(
        {
            "income": decimal(income_total[fi, yi_]),
            "expenditure": decimal(exp_y[fi, yi_]),
            "year_balance": decimal(year_balance[fi, yi_]),
            "closing": decimal(closing[fi, yi_]),
            "through_month": pa.array(through[yi_].astype(np.int8)),
            "reserve_window_months": pa.array(win_len[fi, yi_].astype(np.int16)),
            "mean_monthly_expenditure": decimal(mean[fi, yi_]),
            "months_of_reserve": decimal(ratio[fi, yi_], scale=2, mask=~positive[fi, yi_]),
        }
    )
    annual = pa.table(cols)

    # monthly: months 1..through of each year, every fund
    fym = [(f, y, m) for y in range(Y) for f in range(F) for m in range(int(through[y]))]
    mf = np.array([t[0] for t in fym], np.int64)
    my = np.array([t[1] for t in fym], np.int64)
    mm = np.array([t[2] for t in fym], np.int64)
    inc_m = inc.sum(axis=3)
    net = inc_m - exp
    running = open_[:, :, None] + np.cumsum(net, axis=2)
    mcols = {
        "fund": pa.array([FUNDS[f] for f in mf], pa.string()),
        "benefit_year": pa.array(years.years[my].astype(np.int16)),
        "month": pa.array((mm + 1).astype(np.int8)),
    }
    for k, item in enumerate(ITEMS):
        mcols[item] = decimal(inc[mf, my, mm, k])
    mcols.update(
        {
            "income": decimal(inc_m[mf, my, mm]),
            "expenditure": decimal(exp[mf, my, mm]),
            "month_balance": decimal(net[mf, my, mm]),
            "closing": decimal(running[mf, my, mm]),
        }
    )
    monthly = pa.table(mcols)
    summary = {
        "rows": [
            {
                "fund": FUNDS[f],
                "benefit_year": int(years.years[y]),
                "opening": int(open_[f, y]),
                "opening_source": source[f, y],
                "income": int(income_total[f, y]),
                "income_by_item": {it: int(income_y[f, y, k]) for k, it in enumerate(ITEMS)},
                "expenditure": int(exp_y[f, y]),
                "year_balance": int(year_balance[f, y]),
                "closing": int(closing[f, y]),
                "reserve_window_months": int(win_len[f, y]),
                "months_of_reserve": (int(ratio[f, y]) if positive[f, y] else None),
            }
            for f, y in fy
        ],
        "ignored_rows": {"income": ignored_income, "opening": ignored_opening},
        "identity_holds": bool(
            np.array_equal(closing, open_ + income_total - exp_y) and np.array_equal(running[:, :, -1], closing)
        ),
    }
    return annual, monthly, summary
