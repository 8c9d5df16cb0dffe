"""Provider indicators per provider and benefit year (domain.md §5.2), ranked against peers.

Every indicator is an exact ratio ``numerator / denominator`` of integer sums
(fen, days or counts), kept in the output beside its value, so a reader can
re-derive it. Peers are the providers of the same kind and level in the same
year; an indicator is an outlier above ``peer_factor`` × the peer median (with
at least ``min_peers`` judged peers) or above a seed standard
(``[indicators.standards]`` of the rules file). Indicators on fewer than
``min_claims`` claims are reported but neither ranked nor judged.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import _audit
from ..engine import POOL, SELF_PAY, SUPP, TOTAL, Inputs, Result
from ..schema import ITEM_KINDS, PROVIDER_KINDS, SETTINGS
from .rules import RULES, AuditRules

INPATIENT = SETTINGS.index("inpatient")
DRUG = ITEM_KINDS.index("drug")

#: name → unit of its value (yuan: numerator in fen; share: a fraction 0..1)
INDICATORS = {
    "admissions": "count",
    "outpatient_visits": "count",
    "inpatient_total_per_admission": "yuan",
    "inpatient_fund_per_admission": "yuan",
    "outpatient_total_per_visit": "yuan",
    "outpatient_fund_per_visit": "yuan",
    "average_length_of_stay": "days",
    "self_pay_share": "share",
    "drug_share": "share",
    "readmission_rate": "share",
    "admissions_per_100_visits": "number",
    "visits_per_member": "number",
}
#: Counts are reported and ranked but never called outliers (size is not a fault).
NOT_JUDGED = ("admissions", "outpatient_visits")


def provider_indicators(
    r: Result, inputs: Inputs, kind: np.ndarray, kind_known: bool, flags: np.ndarray, rules: AuditRules
) -> pa.Table:
    """indicators.parquet: one row per provider, year and indicator (long form)."""
    return indicators_table(*indicator_sums(r, inputs, kind, flags), inputs, kind_known, rules)


#: Columns of the sums (``_audit.provider_year_sums``).
SUMS = (
    "claims",
    "admissions",
    "outpatient_visits",
    "inpatient_total",
    "inpatient_fund",
    "outpatient_total",
    "outpatient_fund",
    "bed_days",
    "self_pay",
    "total",
    "inpatient_drug",
    "readmissions",
    "members",
)


def indicator_sums(
    r: Result, inputs: Inputs, kind: np.ndarray, flags: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(provider row, year, sums) per provider and year present, sums exact int64 in ``SUMS`` order.
    Sums of member ranges add up (a member lives in one range), so a streaming run adds them."""
    enc = r.enc
    nc = len(enc.member)
    setting = enc.setting
    inp = setting == INPATIENT
    total = np.ascontiguousarray(r.sums[:, TOTAL])
    fund = r.settle[:, POOL] + r.settle[:, SUPP]
    self_pay = np.ascontiguousarray(r.sums[:, SELF_PAY])
    admit = np.asarray(inputs.claims["admit_date"], dtype=np.int64)[enc.head_row]
    los = np.where(inp, enc.settle_date.astype(np.int64) - admit, 0)
    drug_line = np.where(kind == DRUG, enc.amount, 0)
    drug = np.add.reduceat(drug_line, enc.line_start[:-1]) if len(drug_line) else np.zeros(nc, np.int64)
    drug = np.where(np.diff(enc.line_start) > 0, drug, 0)
    readmit = np.zeros(nc, np.uint8)
    if len(flags):
        readmit[flags[flags[:, 1] == RULES.index("readmission"), 0]] = 1
    # groups: (provider, year), numbered densely
    y0 = int(enc.year.min()) if nc else 0
    years = int(enc.year.max()) - y0 + 1 if nc else 1
    dense = enc.provider.astype(np.int64) * years + (enc.year.astype(np.int64) - y0)
    present = np.flatnonzero(np.bincount(dense, minlength=1)) if nc else np.zeros(0, np.int64)
    remap = np.zeros(int(dense.max()) + 1 if nc else 1, np.int64)
    remap[present] = np.arange(len(present))
    group = remap[dense]
    sums = np.zeros((len(present), len(SUMS)), np.int64)
    _audit.provider_year_sums(
        group,
        np.ascontiguousarray(enc.member, dtype=np.int64),
        np.ascontiguousarray(setting, dtype=np.int8),
        total,
        np.ascontiguousarray(fund),
        self_pay,
        np.ascontiguousarray(los),
        np.ascontiguousarray(drug, dtype=np.int64),
        readmit,
        sums,
    )
    return present // years, (present % years + y0).astype(np.int64), sums


def add_sums(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sums of several member ranges, per provider and year."""
    prov = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    year = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    sums = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, len(SUMS)), np.int64)
    keys, inverse = (
        np.unique(np.stack([prov, year], axis=1), axis=0, return_inverse=True)
        if len(prov)
        else (np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    )
    out = np.zeros((len(keys), len(SUMS)), np.int64)
    np.add.at(out, inverse.reshape(-1), sums)
    return keys[:, 0].astype(np.int64), keys[:, 1].astype(np.int64), out


def indicators_table(
    prov: np.ndarray, year: np.ndarray, sums: np.ndarray, inputs: Inputs, kind_known: bool, rules: AuditRules
) -> pa.Table:
    """Ratios, peer ranks and outliers from the sums of ``indicator_sums``."""
    ng = len(prov)
    (
        n_claims,
        n_adm,
        n_out,
        ip_total,
        ip_fund,
        op_total,
        op_fund,
        bed_days,
        sp,
        all_total,
        ip_drug,
        n_readmit,
        members,
    ) = (np.ascontiguousarray(sums[:, k]) for k in range(len(SUMS)))
    none = np.zeros(ng, np.int64)
    table = {  # name → (numerator, denominator); fen numerators for yuan
        "admissions": (n_adm, np.ones(ng, np.int64)),
        "outpatient_visits": (n_out, np.ones(ng, np.int64)),
        "inpatient_total_per_admission": (ip_total, n_adm),
        "inpatient_fund_per_admission": (ip_fund, n_adm),
        "outpatient_total_per_visit": (op_total, n_out),
        "outpatient_fund_per_visit": (op_fund, n_out),
        "average_length_of_stay": (bed_days, n_adm),
        "self_pay_share": (sp, all_total),
        "drug_share": (ip_drug if kind_known else none, ip_total if kind_known else none),
        "readmission_rate": (n_readmit, n_adm),
        "admissions_per_100_visits": (n_adm * 100, n_out),
        "visits_per_member": (n_claims, members),
    }
    #: claims the indicator rests on (for min_claims)
    basis = {
        "inpatient_total_per_admission": n_adm,
        "inpatient_fund_per_admission": n_adm,
        "outpatient_total_per_visit": n_out,
        "outpatient_fund_per_visit": n_out,
        "average_length_of_stay": n_adm,
        "drug_share": n_adm,
        "readmission_rate": n_adm,
        "admissions_per_100_visits": n_out,
    }
    year = year.astype(np.int16)
    pkind = np.asarray(inputs.providers["kind"], dtype=np.int64)[prov]
    plevel = np.asarray(inputs.providers["level"], dtype=np.int64)[prov]
    peer_key = (year.astype(np.int64) * 16 + pkind) * 256 + plevel
    cols: dict[str, list] = {
        k: []
        for k in ("g", "indicator", "num", "den", "value", "peers", "median", "rank", "ratio", "outlier", "reason")
    }
    factor = rules.peer_factor_bp / 10_000
    for k, (name, unit) in enumerate(INDICATORS.items()):
        num, den = table[name]
        ok = den > 0
        value = np.where(ok, num / np.where(ok, den, 1), np.nan) / (100.0 if unit == "yuan" else 1.0)
        judged = ok & (basis.get(name, n_claims) >= rules.min_claims)
        peers = np.zeros(ng, np.int64)
        median = np.full(ng, np.nan)
        rank = np.zeros(ng, np.int64)
        for pk in np.unique(peer_key[judged]):
            members_ = np.flatnonzero(judged & (peer_key == pk))
            v = value[members_]
            peers[members_] = len(members_)
            median[members_] = np.median(v)
            rank[members_] = 1 + np.searchsorted(np.sort(-v), -v, side="left")  # 1 = highest, ties share
        ratio = np.where(judged & (median > 0), value / np.where(median > 0, median, 1), np.nan)
        by_peer = judged & (peers >= rules.min_peers) & (ratio > factor) & (name not in NOT_JUDGED)
        std = rules.standards.get(name)
        if std is not None:
            # exact: num / den > std, std in fen (yuan) or 1/10 000 (shares and numbers)
            scale = 1 if unit == "yuan" else 10_000
            by_std = judged & (num.astype(object) * scale > np.asarray(std, dtype=object) * den.astype(object))
            by_std = by_std.astype(bool)
        else:
            by_std = np.zeros(ng, bool)
        reason = np.where(
            by_peer & by_std,
            "peer median and standard",
            np.where(by_peer, "peer median", np.where(by_std, "standard", "")),
        )
        cols["g"].append(np.arange(ng))
        cols["indicator"].append(np.full(ng, k, np.int64))
        cols["num"].append(num)
        cols["den"].append(den)
        cols["value"].append(value)
        cols["peers"].append(peers)
        cols["median"].append(median)
        cols["rank"].append(rank)
        cols["ratio"].append(ratio)
        cols["outlier"].append(by_peer | by_std)
        cols["reason"].append(reason)
    c = {k: np.concatenate(v) for k, v in cols.items()}
    g = c["g"].astype(np.int64)
    order = np.lexsort((c["indicator"], year[g], _byte_rank_of(inputs, prov)[g]))
    g = g[order]
    pick = {k: v[order] for k, v in c.items()}
    ind = pa.array(pick["indicator"].astype(np.int32))

    def nan_mask(a: np.ndarray) -> pa.Array:
        return pa.array(a.astype(np.float64), mask=np.isnan(a.astype(np.float64)))

    return pa.table(
        {
            "provider_id": inputs.providers.values["provider_id"].take(pa.array(prov[g])),
            "benefit_year": pa.array(year[g], pa.int16()),
            "kind": pa.array(list(PROVIDER_KINDS)).take(pa.array(pkind[g].astype(np.int32))),
            "level": pa.array(plevel[g].astype(np.int8)),
            "indicator": pa.array(list(INDICATORS)).take(ind),
            "unit": pa.array(list(INDICATORS.values())).take(ind),
            "numerator": pa.array(pick["num"].astype(np.int64)),
            "denominator": pa.array(pick["den"].astype(np.int64)),
            "value": nan_mask(pick["value"]),
            "peers": pa.array(pick["peers"].astype(np.int32)),
            "peer_median": nan_mask(pick["median"]),
            "peer_rank": pa.array(pick["rank"].astype(np.int32), mask=pick["rank"] == 0),
            "ratio_to_median": nan_mask(pick["ratio"]),
            "outlier": pa.array(pick["outlier"].astype(bool)),
            "outlier_reason": pa.array(pick["reason"].astype(str).tolist(), pa.string(), mask=pick["reason"] == ""),
        }
    )


def _byte_rank_of(inputs: Inputs, prov: np.ndarray) -> np.ndarray:
    """Rank of each provider id in byte order (the output is sorted by provider_id, year, indicator)."""
    from ..encode import _byte_rank

    return _byte_rank(inputs.providers.values["provider_id"])[prov]
