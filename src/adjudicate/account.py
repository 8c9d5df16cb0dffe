"""The personal account across benefit years (contract §3, schemes.md §9).

``members.account_balance`` is the balance on 1 January of the run's base
year B, the earliest benefit year of its settled claims. Every later year opens
at the previous year's closing plus that year's credit (划入), years without
claims included: ``next_opening = closing + credit``.

The credit rule is the policy's ``[account.credit]`` table
(:class:`policy.AccountCredit`), as in force on 1 January of the year it opens
(when it is paid; its values may be dated like any policy number): retired members get a fixed amount a year;
others a share of ``prior_year_wage`` by age in whole years on 1 January of
the next year, rounded half away from zero to the fen (no wage: no credit).
:func:`credits` is its one definition, used by the kernel's settlement (through
:func:`credit_table`), by the reference and ``explain``, and by ``reconcile``'s
ledger.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .policy import AccountCredit, Policy
from .schema import CATEGORIES

RETIRED = CATEGORIES.index("retired")
#: How a credit was found (ledger.parquet ``credit_basis``).
BASES = ("wage_rate", "retired_flat", "no_wage", "no_credit")


def age_on_january_1(birth_days: np.ndarray, year: np.ndarray | int) -> np.ndarray:
    """Whole years of age on 1 January of ``year`` (births as days since 1970-01-01; broadcasts)."""
    # the civil year of each day in integer arithmetic (H. Hinnant's days_from_civil inverted), a
    # few passes over the members where NumPy's calendar conversions take several times as long:
    # years counted from 1 March, so that 1 January is day 306 of the year before
    z = np.asarray(birth_days, dtype=np.int64) + 719_468  # days since 0000-03-01
    era = z // 146_097  # 400-year cycles (floor: births before 1970 too)
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # 0 = 1 March
    born = yoe + era * 400 + (doy >= 306)  # January and February belong to the next civil year
    return np.asarray(year, dtype=np.int64) - born - (doy != 306)  # not born on 1 January: a year less


def _round_div(num: np.ndarray, den: int) -> np.ndarray:
    """round(num / den) half away from zero, on int64 (den > 0)."""
    mag = np.abs(num)
    q = mag // den + (2 * (mag % den) >= den)
    return np.where(num < 0, -q, q)


def credits(
    rule: AccountCredit | None,
    category: np.ndarray,
    birth_days: np.ndarray,
    wage: np.ndarray,
    no_wage: np.ndarray,
    next_year: np.ndarray | int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(credit fen, rate bp, basis code, age) for the year before ``next_year``; arrays broadcast.

    ``wage`` is ``prior_year_wage`` in fen (``no_wage`` where it is null). A
    policy without an ``[account.credit]`` table (``rule`` None) credits nothing.
    """
    age = age_on_january_1(birth_days, next_year)
    shape = np.broadcast(np.asarray(category), age, np.asarray(wage)).shape
    age = np.broadcast_to(age, shape)
    if rule is None:
        zero = np.zeros(shape, np.int64)
        return zero, zero, np.full(shape, BASES.index("no_credit"), np.int8), age
    band = np.searchsorted(np.asarray(rule.age_from), np.maximum(age, 0), side="right") - 1
    rate = np.asarray(rule.age_rate_bp, dtype=np.int64)[band]
    retired = np.broadcast_to(np.asarray(category) == RETIRED, shape)
    no_wage = np.broadcast_to(np.asarray(no_wage, dtype=bool), shape)
    on_wage = _round_div(np.asarray(wage, dtype=np.int64) * rate, 10_000)
    credit = np.where(retired, rule.retired_fen, np.where(no_wage, 0, on_wage))
    basis = np.where(
        retired, BASES.index("retired_flat"), np.where(no_wage, BASES.index("no_wage"), BASES.index("wage_rate"))
    ).astype(np.int8)
    return np.broadcast_to(credit, shape).astype(np.int64), np.broadcast_to(rate, shape), basis, age


def credit_rule(policy: Policy, year: int) -> AccountCredit | None:
    """The credit rule for the end of ``year``: the policy's in force on 1 January of year + 1."""
    return policy.at(dt.date(year + 1, 1, 1)).account_credit


def member_credits(members, policy: Policy, first_year: int, last_year: int) -> np.ndarray:
    """Credits of every member (an ``inputs.Table``) for years ``first_year`` ..
    ``last_year − 1``: column k is the credit at the end of ``first_year + k``, into the next year.

    Shape (members, max(1, last_year − first_year)), zeros where nothing is credited; one
    vectorised pass over members × years.
    """
    k = max(int(last_year) - int(first_year), 0)
    out = np.zeros((members.rows, max(k, 1)), np.int64)
    if not members.rows:
        return out
    wage, no_wage = np.asarray(members["prior_year_wage"]), np.asarray(members.nulls["prior_year_wage"])
    for j in range(k):  # a loop over years (the rule may change with them), vectorised over members
        year = int(first_year) + j
        out[:, j] = credits(
            credit_rule(policy, year),
            np.asarray(members["category"]),
            np.asarray(members["birth_date"]),
            wage,
            no_wage,
            year + 1,
        )[0]
    return out
