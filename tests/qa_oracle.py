"""An independent adjudicator for the four shipped schemes.

Written from the spec text only (contract.md §1–§4, schemes.md §1–§6, §9),
not from ``reference.py`` or the kernel: plain Python, money as integer fen,
every ratio a ``Fraction``. Used by ``test_qa_oracle.py`` to check the engine
to the fen on data made by ``qa_data.py``.

A scheme is a function ``params(settle_date) -> dict`` so a dated policy (values
that change on a date) is just a function that looks at the date.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction as F

HALF = F(1, 2)


def rnd(q: F) -> int:
    """Round half away from zero to an integer (fen)."""
    q = F(q)
    return (q + HALF).__floor__() if q >= 0 else -((-q + HALF).__floor__())


def fen(v: Decimal) -> int:
    return rnd(F(v) * 100)


def pct(s: str) -> F:
    return F(Decimal(s))


def prefecture(**over) -> dict:
    p = {
        "scheme": "prefecture",
        "ratio": {"A": F(0), "B": pct("0.15"), "special": pct("0.20")},
        "ded": {3: [700, 450, 350], 2: [600, 340, 300], 1: [500, 280, 220]},
        # (from yuan, pool by category, supplementary rate, subsidised)
        "bands": [
            (0, {"in_service": pct("0.91"), "retired": pct("0.93")}, None, True),
            (60000, {"in_service": pct("0.92"), "retired": pct("0.94")}, None, True),
            (90000, {"in_service": pct("0.93"), "retired": pct("0.95")}, None, True),
            (100000, None, pct("0.80"), True),
            (200000, None, None, False),
        ],
        "subsidy": {"in_service": pct("0.50"), "retired": pct("0.55")},
    }
    p.update(over)
    return p


def city(**over) -> dict:
    p = {
        "scheme": "city",
        "ratio": {"A": F(0), "B": pct("0.15"), "special": pct("0.20")},
        "ded": {1: [400], 2: [500], 3: [600]},
        "rate": pct("0.85"),
        "cap": 40000,
        "supp": pct("0.80"),
    }
    p.update(over)
    return p


def shenzhen(**over) -> dict:
    """schemes.md §4: caps and limits by whole months of enrolment, a supplementary catalogue."""
    p = {
        "scheme": "shenzhen",
        "ratio": {"A": F(0), "B": pct("0.15"), "special": pct("0.20"), "supplementary": F(0)},
        "supplementary_catalogue": True,
        "W": 120000,
        # (from months, basic cap × W, supplementary limit in yuan)
        "brackets": [(0, pct("0.5"), 0), (6, F(1), 50000), (12, F(2), 100000), (24, F(3), 150000), (36, F(4), 200000)],
        "pool": {"in_service": pct("0.90"), "retired": pct("0.95")},
        "supp": pct("0.85"),
        "threshold": pct("0.10"),
        "above": pct("0.70"),
    }
    p.update(over)
    return p


def months(since: dt.date, day: dt.date) -> int:
    """schemes.md §4: whole months of enrolment from ``since`` to ``day``."""
    return 12 * (day.year - since.year) + (day.month - since.month) - (1 if day.day < since.day else 0)


def zhenjiang(**over) -> dict:
    """schemes.md §6: no account, no subsidy; one annual cap over every setting."""
    p = {
        "scheme": "zhenjiang",
        "ratio": {"A": F(0), "B": pct("0.15"), "special": pct("0.20")},
        "cap": 150000,
        # inpatient, per claim on E itself: (from yuan, ratio); the first band is the deductible
        "bands": [(0, F(0)), (300, pct("0.50")), (5000, pct("0.60")), (10000, pct("0.80")), (30000, pct("0.90"))],
        "rate": {"outpatient": pct("0.40"), "special_outpatient": pct("0.50")},
    }
    p.update(over)
    return p


def zhenjiang_benefit(setting: str, referral: str | None, prov: dict) -> tuple[bool, F]:
    """schemes.md §6 and §2: whether a claim gets benefit, and its factor on the pooled ratios."""
    local, designated, kind = prov["local"], prov["designated"], prov["kind"]
    if setting == "inpatient":  # its own table: the first matching row
        if local and designated and kind == "community":
            return True, F(1)
        if local and designated and kind == "hospital":
            return True, pct("0.8")
        if local and referral == "emergency":
            return True, pct("0.8")
        if not local and referral in ("referred", "emergency"):
            return True, pct("0.5")
        return False, F(0)
    if not (designated or referral in ("referred", "emergency")):  # §2
        return False, F(0)
    if setting == "outpatient":  # general outpatient: only at a local designated community provider
        return True, F(1) if local and designated and kind == "community" else F(0)
    if setting == "special_outpatient":
        return True, F(1) if local and designated and kind in ("community", "hospital") else F(0)
    return True, F(0)  # pharmacy: no pooled benefit


def credit_fen(member: dict, next_jan: dt.date, p: dict) -> int:
    """schemes.md §9: the credit paid on 1 January ``next_jan`` (``p``: the values in force that day)."""
    if member["category"] == "retired":
        return p.get("retired_amount", 400) * 100
    wage = member["prior_year_wage"]
    if wage is None:
        return 0
    b = member["birth_date"]
    age = next_jan.year - b.year - ((next_jan.month, next_jan.day) < (b.month, b.day))
    rate = pct("0.005") if age <= 35 else pct("0.015") if age <= 45 else pct("0.025")
    return rnd(F(wage) * 100 * rate)


def _catalogue_row(catalogue: dict, code: str, day: dt.date) -> dict | None:
    for row in catalogue.get(code, []):
        if row["valid_from"] <= day and (row["valid_to"] is None or day <= row["valid_to"]):
            return row
    return None


def _largest_remainder(total: int, weights: list[tuple[int, int]]) -> dict[int, int]:
    """contract §4: ``weights`` are (line_no, w); floor toward −∞, the rest to the largest remainders."""
    W = sum(w for _, w in weights)
    if W == 0:
        return {no: 0 for no, _ in weights}
    shares, rema = {}, []
    for no, w in weights:
        q = F(total * w, W)
        fl = q.__floor__()
        shares[no] = fl
        rema.append((-(q - fl), no))
    missing = total - sum(shares.values())
    for _, no in sorted(rema)[:missing]:
        shares[no] += 1
    return shares


def adjudicate(data, params: Callable[[dt.date], dict]):
    """Returns (settlements by claim_id, lines by (claim_id, line_no), rejected {claim_id: reason})."""
    members = {m["member_id"]: m for m in data.members}
    providers = {p["provider_id"]: p for p in data.providers}
    catalogue: dict[str, list[dict]] = defaultdict(list)
    for row in data.catalogue:
        catalogue[row["item_code"]].append(row)
    by_claim: dict[str, list[dict]] = defaultdict(list)
    for r in data.claims:
        by_claim[r["claim_id"]].append(r)

    rejected: dict[str, str] = {}
    ready = []  # (member, settle_date, claim_id bytes, claim_id, header, split lines)
    for cid, rows in by_claim.items():
        h = rows[0]
        nos = [r["line_no"] for r in rows]
        header = ("member_id", "provider_id", "setting", "referral", "admit_date", "diagnosis")
        if len(set(nos)) != len(nos):
            rejected[cid] = "duplicate_line"
            continue
        if any(r[k] != h[k] for r in rows for k in header) or (
            h["setting"] == "inpatient" and any(r["discharge_date"] != h["discharge_date"] for r in rows)
        ):
            rejected[cid] = "inconsistent_claim_header"
            continue
        if h["member_id"] not in members:
            rejected[cid] = "unknown_member"
            continue
        if h["provider_id"] not in providers:
            rejected[cid] = "unknown_provider"
            continue
        if h["setting"] == "inpatient" and h["discharge_date"] is None:
            rejected[cid] = "missing_discharge_date"
            continue
        if h["setting"] == "inpatient" and h["discharge_date"] < h["admit_date"]:
            rejected[cid] = "discharge_before_admit"
            continue
        settle = h["discharge_date"] if h["setting"] == "inpatient" else h["admit_date"]
        p = params(settle)
        prov = providers[h["provider_id"]]
        benefit = prov["designated"] or h["referral"] in ("referred", "emergency")
        factor = F(1)
        if p["scheme"] == "zhenjiang":
            benefit, factor = zhenjiang_benefit(h["setting"], h["referral"], prov)
        lines = []
        for r in sorted(rows, key=lambda r: r["line_no"]):
            amount = fen(r["amount"])
            row = _catalogue_row(catalogue, r["item_code"], h["admit_date"])
            cls = row["class"] if row else "unknown"
            sp = fsp = el = 0
            no_catalogue = cls == "supplementary" and not p.get("supplementary_catalogue")
            if not benefit or cls in ("unknown", "excluded") or no_catalogue:
                sp = amount
            else:
                over = 0
                if row["max_unit_price"] is not None and amount > 0:
                    qty = F(Decimal(repr(r["quantity"])))
                    over = max(0, amount - rnd(F(row["max_unit_price"]) * qty * 100))
                allowed = amount - over
                ratio = F(row["first_self_pay_ratio"]) if row["first_self_pay_ratio"] is not None else p["ratio"][cls]
                fsp = rnd(allowed * ratio)
                sp, el = over, allowed - fsp
            lines.append(
                {
                    "claim_id": cid,
                    "line_no": r["line_no"],
                    "item_code": r["item_code"],
                    "class": cls,
                    "amount": amount,
                    "self_pay": sp,
                    "first_self_pay": fsp,
                    "eligible": el,
                }
            )
        sums = {k: sum(l[k] for l in lines) for k in ("amount", "self_pay", "first_self_pay", "eligible")}
        by_class: dict[str, int] = defaultdict(int)
        for l in lines:
            by_class[l["class"]] += l["eligible"]
        if min(sums.values()) < 0 or min(by_class.values()) < 0:
            rejected[cid] = "negative_claim_total"
            continue
        ready.append((h["member_id"], settle, cid.encode(), cid, h, lines, benefit, prov, p, factor))

    base_year = min((r[1].year for r in ready), default=None)
    ready.sort(key=lambda r: (r[0], r[1], r[2]))
    settlements, out_lines = {}, {}
    state: dict = {}
    for member_id, settle, _, cid, h, lines, benefit, prov, p, factor in ready:
        m = members[member_id]
        year = settle.year
        st = state.get(member_id)
        if st is None:
            st = state[member_id] = {"year": base_year, "bal": fen(m["account_balance"])}
            st.update(ord=0, K=0, paid=0, supp=0, U=0)
        while st["year"] < year:  # carry over, years without claims included
            st["bal"] += credit_fen(m, dt.date(st["year"] + 1, 1, 1), params(dt.date(st["year"] + 1, 1, 1)))
            st.update(year=st["year"] + 1, ord=0, K=0, paid=0, supp=0, U=0)
        total = sum(l["amount"] for l in lines)
        sp = sum(l["self_pay"] for l in lines)
        fsp = sum(l["first_self_pay"] for l in lines)
        E = sum(l["eligible"] for l in lines)
        ded = pool = supp = sub = 0
        ordinal = None
        cat = m["category"]
        by_class: dict[str, int] = defaultdict(int)
        for line in lines:
            by_class[line["class"]] += line["eligible"]
        account = None  # the generic rule below, unless the scheme says otherwise
        if p["scheme"] == "shenzhen" and benefit:
            m_ = months(m["enrolled_since"], settle)
            _, times, limit = [b for b in p["brackets"] if m_ >= b[0]][-1] if m_ >= 0 else p["brackets"][0]
            e_sup = by_class["supplementary"]
            if h["setting"] == "inpatient":  # no deductible, no subsidy, no account
                st["ord"] += 1
                ordinal = st["ord"]
                e_basic = by_class["A"] + by_class["B"] + by_class["special"]
                rate = p["pool"][cat]
                room = max(0, rnd(times * p["W"] * 100) - st["paid"])
                full = rnd(e_basic * rate)
                if full <= room:
                    pool, over_cap = full, 0
                else:
                    pool, over_cap = room, e_basic - rnd(room / rate)
                supp = max(0, min(rnd((over_cap + e_sup) * p["supp"]), limit * 100 - st["supp"]))
                st["paid"] += pool
                st["supp"] += supp
                account = 0
            else:  # the account first (A+B, then supplementary, then first_self_pay), then the fund
                e_gen = by_class["A"] + by_class["B"]
                bal = st["bal"]
                a1 = min(bal, e_gen)
                a2 = min(bal - a1, e_sup)
                a3 = min(bal - a1 - a2, fsp)
                account = max(a1, 0) + max(a2, 0) + max(a3, 0)
                t = rnd(p["threshold"] * p["W"] * 100)
                u_old, u_new = st["U"], st["U"] + e_gen - a1
                pool = by_class["special"] + rnd(p["above"] * (max(0, u_new - t) - max(0, u_old - t)))
                ded = min(u_new, t) - min(u_old, t)
                st["U"] = u_new
        elif p["scheme"] == "zhenjiang" and benefit:
            room = max(0, p["cap"] * 100 - st["paid"])
            if h["setting"] == "inpatient":
                st["ord"] += 1
                ordinal = st["ord"]
                ded = min(E, p["bands"][1][0] * 100)
                q = F(0)
                bands = p["bands"]
                for i, (lo, ratio) in enumerate(bands):
                    hi = bands[i + 1][0] * 100 if i + 1 < len(bands) else None
                    a, b = lo * 100, E if hi is None else min(E, hi)
                    if b > a:
                        q += (b - a) * ratio * factor
                pool = min(rnd(q), room)
            else:
                pool = min(rnd(E * p["rate"].get(h["setting"], F(0)) * factor), room)
            st["paid"] += pool
        elif h["setting"] == "inpatient" and benefit:
            st["ord"] += 1
            ordinal = st["ord"]
            row = 1 if prov["kind"] == "community" else (3 if prov["level"] == 3 else 2 if prov["level"] == 2 else 1)
            table = p["ded"][row]
            ded = min(E, table[min(ordinal, len(table)) - 1] * 100)
            X = E - ded
            if p["scheme"] == "prefecture":
                K = st["K"]
                pool_q = supp_q = F(0)
                sub_part = 0
                bands = p["bands"]
                for i, (lo, pools, srate, subsidised) in enumerate(bands):
                    lo = lo * 100
                    hi = bands[i + 1][0] * 100 if i + 1 < len(bands) else None
                    a, b = max(K, lo), K + X if hi is None else min(K + X, hi)
                    if b <= a:
                        continue
                    if pools:
                        pool_q += (b - a) * pools[cat]
                    if srate:
                        supp_q += (b - a) * srate
                    if subsidised:
                        sub_part += b - a
                pool, supp = rnd(pool_q), rnd(supp_q)
                if m["civil_servant"]:
                    sub = rnd((sub_part - pool - supp) * p["subsidy"][cat])
                st["K"] = K + X
            else:
                room = max(0, p["cap"] * 100 - st["paid"])
                full = rnd(X * p["rate"])
                if full <= room:
                    pool, O = full, 0
                else:
                    pool, O = room, X - rnd(room / p["rate"])
                supp = rnd(O * p["supp"])
                st["paid"] += pool
        mps = E - pool - supp
        if account is None:
            account = min(st["bal"], mps - sub + fsp) if benefit and p["scheme"] != "zhenjiang" else 0
        account = max(account, 0)
        st["bal"] -= account
        cash = total - pool - supp - sub - account
        settlements[cid] = {
            "claim_id": cid,
            "member_id": member_id,
            "provider_id": h["provider_id"],
            "setting": h["setting"],
            "settle_date": settle,
            "benefit_year": year,
            "admission_ordinal": ordinal,
            "total": total,
            "self_pay": sp,
            "first_self_pay": fsp,
            "eligible": E,
            "deductible": ded,
            "fund_pool": pool,
            "fund_supplementary": supp,
            "member_policy_share": mps,
            "subsidy": sub,
            "account_paid": account,
            "cash_paid": cash,
        }
        weights = [(l["line_no"], l["eligible"]) for l in lines]
        lp, ls = _largest_remainder(pool, weights), _largest_remainder(supp, weights)
        for l in lines:
            out_lines[(cid, l["line_no"])] = {
                k: l[k] for k in ("claim_id", "line_no", "item_code", "class", "self_pay", "first_self_pay", "eligible")
            } | {"fund_pool": lp[l["line_no"]], "fund_supplementary": ls[l["line_no"]]}
    return settlements, out_lines, rejected
