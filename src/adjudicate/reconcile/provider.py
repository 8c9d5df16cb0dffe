"""Year-end provider quota settlement, 定额结算 (schemes.md §7; seed 001 范文2 第七条).

Per provider with a ``quota_per_admission`` q and benefit year:
``N`` = its settled inpatient claims with an admission ordinal (admissions with
benefit), ``Q = q × N``, ``A`` = Σ ``fund_pool`` of those claims. The amount
due follows the corridor of the rules file (reading 1b, continuous at the
upper edge); with the default rules:

    A < 90 % Q            A + reward × (90 % Q − A)
    90 % Q ≤ A ≤ 110 % Q  Q
    110 % Q < A ≤ 120 % Q Q + 50 % × (A − 110 % Q)
    A > 120 % Q           Q + 50 % × 10 % Q        (the hospital bears the rest)

``due`` is computed as an exact rational and rounded once, half away from zero,
to the fen. Advances are ``N × round(90 % × q)`` unless an advances table
gives them; ``balance = due − advances`` (positive: owed to the provider).
Everything is vectorised over providers; products are taken in Python
integers (object arrays), so no intermediate can overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..inputs import Table
from ..schema import PROVIDER_KINDS
from .exact import decimal, group_sum, round_div, to_int64
from .rules import Rules
from .tables import Year, index_of

BP = 10_000
#: Corridor bands, in order (the ``band`` column).
BANDS = ("below", "corridor", "shared", "above")
BELOW, CORRIDOR, SHARED, ABOVE = range(4)


@dataclass
class Corridor:
    """The corridor applied to arrays of A and Q (fen): everything exact, in fen."""

    band: np.ndarray  # int8 code into BANDS
    due: np.ndarray
    over_ceiling: np.ndarray  # max(0, A − ceiling × Q): borne by the provider alone
    ratio_bp: np.ndarray  # A / Q in basis points (rounded); undefined where Q = 0
    has_ratio: np.ndarray


def corridor(A, Q, rules: Rules) -> Corridor:
    """Apply the corridor of ``rules`` to actual fund payments ``A`` against quotas ``Q`` (fen)."""
    A = np.asarray(A, dtype=np.int64).astype(object)
    Q = np.asarray(Q, dtype=np.int64).astype(object)
    a = A * BP  # A on the basis-point scale, to compare with rate × Q exactly
    low, up, ceil = Q * rules.lower_bp, Q * rules.upper_bp, Q * rules.ceiling_bp
    below = a < low
    above = a > ceil
    shared = (a > up) & ~above
    band = np.where(below, BELOW, np.where(above, ABOVE, np.where(shared, SHARED, CORRIDOR))).astype(np.int8)
    # numerators over BP²
    q2 = Q * BP * BP
    num = np.where(
        below,
        A * BP * BP + rules.reward_bp * (low - a),
        np.where(
            shared, q2 + rules.excess_share_bp * (a - up), np.where(above, q2 + rules.excess_share_bp * (ceil - up), q2)
        ),
    )
    due = to_int64(round_div(num, BP * BP), "the amount due")
    over = to_int64(round_div(np.where(above, a - ceil, 0), BP), "the amount above the ceiling")
    has_ratio = np.asarray(Q > 0, dtype=bool)
    ratio = to_int64(round_div(A * BP, np.where(has_ratio, Q, 1)), "A / Q")
    return Corridor(band, due, over, np.where(has_ratio, ratio, 0), has_ratio)


def _corridor_by_year(A: np.ndarray, Q: np.ndarray, yr: np.ndarray, years: Year, rules: Rules) -> Corridor:
    """The corridor of each row's benefit year (the rules in force on its 31 December)."""
    if not rules.periods:
        return corridor(A, Q, rules)
    out = Corridor(
        np.zeros(len(A), np.int8),
        np.zeros(len(A), np.int64),
        np.zeros(len(A), np.int64),
        np.zeros(len(A), np.int64),
        np.zeros(len(A), bool),
    )
    for k, year in enumerate(years.years):
        sel = yr == k
        part = corridor(A[sel], Q[sel], rules.for_settlement(int(year)))
        for name in ("band", "due", "over_ceiling", "ratio_bp", "has_ratio"):
            getattr(out, name)[sel] = getattr(part, name)
    return out


def settle_providers(
    st: Table, providers: Table, years: Year, rules: Rules, advances: Table | None, default_year: int | None
) -> tuple[pa.Table, dict]:
    """providers.parquet (one row per quota provider and benefit year) and its summary counts."""
    ny = len(years.years)
    quota = np.asarray(providers["quota_per_admission"], dtype=np.int64)
    has_quota = ~providers.nulls["quota_per_admission"]
    bad = has_quota & (quota <= 0)
    if bad.any():
        path, row = providers.where(int(np.flatnonzero(bad)[0]))
        raise InputError(
            "quota_per_admission must be positive (null: the provider has no quota)", path, "quota_per_admission", row
        )
    npv = providers.rows
    adm = ~st.nulls["admission_ordinal"]
    yi, keep = years.index(st["benefit_year"])
    sel = adm & keep
    pidx = index_of(st, "provider_id", providers, "provider_id", "providers")
    key = pidx[sel] * ny + yi[sel]
    N = np.bincount(key, minlength=npv * ny).astype(np.int64)
    A = group_sum(key, st["fund_pool"][sel], npv * ny)
    without_quota = int(np.count_nonzero(~has_quota[pidx[sel]]))

    q = np.repeat(np.where(has_quota, quota, 0), ny)
    if advances is None:
        # the advance rate of each benefit year (rules in force on its 31 December)
        advance_bp = np.array([rules.for_settlement(int(v)).advance_bp for v in years.years], dtype=object)
        adv_each = to_int64(round_div(q.astype(object) * np.tile(advance_bp, npv), BP), "the advance per admission")
        paid = to_int64(N.astype(object) * adv_each, "the advances")
        given = np.zeros(npv * ny, bool)
        ignored = 0
    else:
        aidx = index_of(advances, "provider_id", providers, "provider_id", "providers")
        no_q = ~has_quota[aidx]
        if no_q.any():
            path, row = advances.where(int(np.flatnonzero(no_q)[0]))
            raise InputError(
                "the provider has no quota_per_admission in the providers file; advances "
                "apply only to quota settlement",
                path,
                "provider_id",
                row,
            )
        ayear = np.asarray(advances["year"], dtype=np.int64)
        anull = advances.nulls["year"]
        if anull.any():
            if default_year is None:
                path, row = advances.where(int(np.flatnonzero(anull)[0]))
                raise InputError(
                    "is empty, but the settlements hold several benefit years: give the year "
                    "on every row, or choose one with --year",
                    path,
                    "year",
                    row,
                )
            ayear = np.where(anull, default_year, ayear)
        ayi, akeep = years.index(ayear)
        ignored = int(np.count_nonzero(~akeep))
        akey = aidx[akeep] * ny + ayi[akeep]
        paid = group_sum(akey, advances["amount"][akeep], npv * ny)
        given = np.bincount(akey, minlength=npv * ny) > 0

    rows = np.flatnonzero(np.repeat(has_quota, ny) & ((N > 0) | given))
    prov, yr = rows // ny, rows % ny
    # order: benefit year, then provider_id as bytes
    ids = providers["provider_id"].take(pa.array(prov))
    order = np.asarray(
        pc.sort_indices(
            pa.table({"y": yr, "id": ids.cast(pa.binary())}), sort_keys=[("y", "ascending"), ("id", "ascending")]
        )
    )
    rows, prov, yr, ids = rows[order], prov[order], yr[order], ids.take(pa.array(order))
    Nr, Ar, qr, paid_r = N[rows], A[rows], q[rows], paid[rows]
    Qr = to_int64(qr.astype(object) * Nr.astype(object), "the quota total")
    c = _corridor_by_year(Ar, Qr, yr, years, rules)
    balance = c.due - paid_r
    kind = np.asarray(providers["kind"])[prov]
    table = pa.table(
        {
            "provider_id": ids,
            "benefit_year": pa.array(years.years[yr].astype(np.int16)),
            "kind": pa.array(PROVIDER_KINDS).take(pa.array(kind)),
            "level": pa.array(np.asarray(providers["level"])[prov].astype(np.int8)),
            "quota_per_admission": decimal(qr),
            "admissions": pa.array(Nr),
            "quota_total": decimal(Qr),
            "fund_pool": decimal(Ar),
            "fund_pool_to_quota": decimal(c.ratio_bp, scale=4, mask=~c.has_ratio),
            "band": pa.array(list(BANDS)).take(pa.array(c.band)),
            "due": decimal(c.due),
            "advances": decimal(paid_r),
            "balance": decimal(balance),
            "over_ceiling": decimal(c.over_ceiling),
            "borne_by_provider": decimal(Ar - c.due),
        }
    )
    totals = {
        "providers": int(len(np.unique(prov))),
        "rows": int(len(rows)),
        "admissions": int(Nr.sum()),
        "quota_total": int(Qr.sum()),
        "fund_pool": int(Ar.sum()),
        "due": int(c.due.sum()),
        "advances": int(paid_r.sum()),
        "balance": int(balance.sum()),
        "over_ceiling": int(c.over_ceiling.sum()),
        "borne_by_provider": int((Ar - c.due).sum()),
        "by_band": {b: int(np.count_nonzero(c.band == i)) for i, b in enumerate(BANDS)},
        "admissions_without_quota": without_quota,
        "advances_from": "table" if advances is not None else "default",
        "advances_rows_ignored": ignored,  # rows of years not reconciled
    }
    return table, totals
