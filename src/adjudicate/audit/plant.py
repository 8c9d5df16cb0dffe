"""Plant every audit pattern into a generated data set, with near misses that must not fire.

``adjudicate generate --plant-audit`` calls :func:`plant_audit` on the tables
of ``generate.generate_tables``. Each case gets members of its own (ids
starting ``AUDM``), so cases never interact with each other or with the
background claims; the claims (ids starting ``AUDC``) use existing providers
and catalogue items. The catalogue gains the optional ``item_kind`` column
(drug for the national drug codes X…/Z…, facility for bed and nursing items
001102…, material for consumables C…, treatment otherwise) plus one non-drug goods item.

The truth travels in the claims table's schema metadata (Parquet and Feather
keep it): :func:`planted_cases` returns ``{"planted": [(claim_id, rule)…],
"near_miss": [(claim_id, rule)…]}``. A planted pair must be flagged with that
rule; a near-miss pair must not be. Thresholds are those of the shipped
``audit-rules.toml``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

PLANTED_KEY = b"adjudicate.audit_planted"
GOODS_CODE = "HP0000000000000001"


def item_kinds(codes: pa.Array) -> pa.Array:
    """The item kind of the generator's catalogue codes."""
    drug = pc.or_(pc.starts_with(codes, "X"), pc.starts_with(codes, "Z"))
    facility = pc.starts_with(codes, "001102")
    material = pc.starts_with(codes, "C")
    return pc.if_else(drug, "drug", pc.if_else(facility, "facility", pc.if_else(material, "material", "treatment")))


class _Builder:
    def __init__(self, year: int, schema: pa.Schema):
        self.year, self.schema = year, schema
        self.rows: list[dict] = []
        self.members: list[str] = []
        self.planted: list[tuple[str, str]] = []
        self.near: list[tuple[str, str]] = []
        self.n = 0

    def member(self) -> str:
        m = f"AUDM{len(self.members) + 1:06d}"
        self.members.append(m)
        return m

    def day(self, month: int, d: int) -> dt.date:
        return dt.date(self.year, month, 1) + dt.timedelta(days=d - 1)

    def claim(
        self,
        member: str,
        provider: str,
        setting: str,
        admit: dt.date,
        lines: list[tuple[str, str, str]],
        discharge: dt.date | None = None,
        claim_id: str | None = None,
    ) -> str:
        """lines: (item_code, quantity, unit_price) as decimal text; amount = quantity × price."""
        self.n += 1
        cid = claim_id or f"AUDC{self.year}{self.n:06d}"
        for k, (item, q, price) in enumerate(lines, 1):
            amount = (Decimal(q) * Decimal(price)).quantize(Decimal("0.01"))
            self.rows.append(
                {
                    "claim_id": cid,
                    "line_no": k,
                    "member_id": member,
                    "provider_id": provider,
                    "setting": setting,
                    "referral": None,
                    "admit_date": admit,
                    "discharge_date": discharge if setting == "inpatient" else None,
                    "item_code": item,
                    "quantity": float(q),
                    "unit_price": Decimal(price),
                    "amount": amount,
                    "diagnosis": "I10",
                }
            )
        return cid

    def table(self) -> pa.Table:
        cols = {f.name: [r[f.name] for r in self.rows] for f in self.schema}
        return pa.table({f.name: pa.array(cols[f.name], f.type) for f in self.schema}).cast(self.schema)


def _items(cat: pa.Table, kind: pa.Array, year: int) -> dict[str, list[str]]:
    """Catalogue items of each kind with one row valid all year, class A, no price ceiling."""
    start = dt.date(year, 1, 1)
    counts = pc.value_counts(cat["item_code"]).to_pylist()
    single = {c["values"] for c in counts if c["counts"] == 1}
    out: dict[str, list[str]] = {"drug": [], "treatment": [], "facility": []}
    for code, k, cls, vf, vt, mx in zip(
        cat["item_code"].to_pylist(),
        kind.to_pylist(),
        cat["class"].to_pylist(),
        cat["valid_from"].to_pylist(),
        cat["valid_to"].to_pylist(),
        cat["max_unit_price"].to_pylist(),
    ):
        if code in single and cls == "A" and vt is None and mx is None and vf <= start and k in out:
            out[k].append(code)
    for k, v in out.items():
        if len(v) < 3:
            raise ValueError(f"the catalogue has too few plain {k} items to plant audit cases")
    return out


def _providers(prov: pa.Table) -> dict[str, str]:
    rows = prov.to_pylist()
    hosp = [r["provider_id"] for r in rows if r["kind"] == "hospital" and r["designated"] and r["local"]]
    pharm = [r["provider_id"] for r in rows if r["kind"] == "pharmacy" and r["designated"] and r["local"]]
    if len(hosp) < 2 or not pharm:
        raise ValueError("the providers table has too few local designated hospitals or pharmacies")
    return {"H1": hosp[0], "H2": hosp[1], "PH": pharm[0], "PH2": pharm[-1]}


def plant_audit(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The tables with every audit pattern planted (and item_kind in the catalogue)."""
    claims, members, providers, cat = (tables[k] for k in ("claims", "members", "providers", "catalogue"))
    year = int(pc.min(claims["admit_date"]).as_py().year) if claims.num_rows else 2024
    kind = item_kinds(cat["item_code"])
    it = _items(cat, kind, year)
    D, T, F = it["drug"], it["treatment"], it["facility"]
    P = _providers(providers)
    b = _Builder(year, claims.schema.remove_metadata())
    day, claim = b.day, b.claim
    drug = [(D[0], "2", "10.00")]  # a small, harmless bill

    # readmission (window 15 days, same provider)
    m = b.member()
    claim(m, P["H1"], "inpatient", day(3, 1), drug, day(3, 10))
    b.planted.append((claim(m, P["H1"], "inpatient", day(3, 20), drug, day(3, 24)), "readmission"))
    m = b.member()  # exactly 15 days
    claim(m, P["H1"], "inpatient", day(4, 1), drug, day(4, 5))
    b.planted.append((claim(m, P["H1"], "inpatient", day(4, 20), drug, day(4, 22)), "readmission"))
    m = b.member()  # 16 days: near miss
    claim(m, P["H1"], "inpatient", day(5, 1), drug, day(5, 5))
    b.near.append((claim(m, P["H1"], "inpatient", day(5, 21), drug, day(5, 23)), "readmission"))
    m = b.member()  # 5 days but another provider: near miss
    claim(m, P["H1"], "inpatient", day(6, 1), drug, day(6, 5))
    b.near.append((claim(m, P["H2"], "inpatient", day(6, 10), drug, day(6, 12)), "readmission"))

    # overlapping_stay
    m = b.member()
    a1 = claim(m, P["H1"], "inpatient", day(3, 1), drug, day(3, 10))
    a2 = claim(m, P["H2"], "inpatient", day(3, 5), drug, day(3, 12))
    b.planted += [(a1, "overlapping_stay"), (a2, "overlapping_stay")]
    m = b.member()
    claim(m, P["H1"], "inpatient", day(7, 1), drug, day(7, 10))
    b.planted.append((claim(m, P["PH"], "pharmacy", day(7, 5), drug), "overlapping_stay"))
    b.near.append((claim(m, P["PH"], "pharmacy", day(7, 10), drug), "overlapping_stay"))  # discharge day
    b.near.append((claim(m, P["H1"], "outpatient", day(7, 6), drug), "overlapping_stay"))  # same provider
    m = b.member()  # transfer: discharged and admitted elsewhere the same day
    t1 = claim(m, P["H1"], "inpatient", day(8, 1), drug, day(8, 10))
    t2 = claim(m, P["H2"], "inpatient", day(8, 10), drug, day(8, 15))
    b.near += [(t1, "overlapping_stay"), (t2, "overlapping_stay")]

    # duplicate_billing: same lines in another order; the later claim_id is flagged
    m = b.member()
    lines = [(T[0], "1", "30.00"), (D[1], "3", "12.50"), (D[1], "1", "12.50")]
    claim(m, P["H1"], "outpatient", day(3, 3), lines, claim_id=f"AUDC{year}D00001")
    b.planted.append(
        (claim(m, P["H1"], "outpatient", day(3, 3), lines[::-1], claim_id=f"AUDC{year}D00002"), "duplicate_billing")
    )
    m = b.member()  # one quantity differs (same total): near miss
    claim(
        m, P["H1"], "outpatient", day(3, 3), [(D[1], "2", "10.00"), (D[2], "1", "10.00")], claim_id=f"AUDC{year}D00003"
    )
    b.near.append(
        (
            claim(
                m,
                P["H1"],
                "outpatient",
                day(3, 3),
                [(D[1], "1", "10.00"), (D[2], "2", "10.00")],
                claim_id=f"AUDC{year}D00004",
            ),
            "duplicate_billing",
        )
    )
    m = b.member()  # same lines, the next day: near miss
    claim(m, P["H1"], "outpatient", day(3, 3), lines, claim_id=f"AUDC{year}D00005")
    b.near.append(
        (claim(m, P["H1"], "outpatient", day(3, 4), lines, claim_id=f"AUDC{year}D00006"), "duplicate_billing")
    )

    # bed_blocking (≥ 3 days, facility ≥ 80 %)
    m = b.member()
    b.planted.append(
        (
            claim(
                m,
                P["H1"],
                "inpatient",
                day(9, 1),
                [(F[0], "10", "50.00"), (F[1], "10", "20.00"), (D[0], "5", "10.00")],
                day(9, 11),
            ),
            "bed_blocking",
        )
    )
    m = b.member()  # 60 % facility: near miss
    b.near.append(
        (
            claim(m, P["H1"], "inpatient", day(9, 1), [(F[0], "6", "50.00"), (D[0], "20", "10.00")], day(9, 11)),
            "bed_blocking",
        )
    )
    m = b.member()  # 2 days, all facility: near miss
    b.near.append((claim(m, P["H1"], "inpatient", day(9, 1), [(F[0], "2", "50.00")], day(9, 3)), "bed_blocking"))

    # large_prescription (> 2000 yuan a visit, > 200 units of a drug on a line)
    m = b.member()
    b.planted.append((claim(m, P["H1"], "outpatient", day(10, 1), [(D[0], "10", "250.00")]), "large_prescription"))
    b.planted.append((claim(m, P["PH"], "pharmacy", day(10, 20), [(D[1], "300", "1.00")]), "large_prescription"))
    m = b.member()
    b.near.append((claim(m, P["H1"], "outpatient", day(10, 1), [(D[0], "8", "250.00")]), "large_prescription"))
    b.near.append((claim(m, P["PH"], "pharmacy", day(10, 20), [(D[1], "200", "1.00")]), "large_prescription"))
    b.near.append((claim(m, P["H1"], "special_outpatient", day(11, 1), [(T[1], "10", "500.00")]), "large_prescription"))

    # pharmacy_non_drug
    m = b.member()
    b.planted.append(
        (
            claim(m, P["PH"], "pharmacy", day(5, 2), [(D[0], "1", "10.00"), (GOODS_CODE, "1", "88.00")]),
            "pharmacy_non_drug",
        )
    )
    b.planted.append((claim(m, P["PH"], "pharmacy", day(6, 2), [(T[0], "1", "30.00")]), "pharmacy_non_drug"))
    m = b.member()
    b.near.append(
        (claim(m, P["PH"], "pharmacy", day(5, 2), [(D[0], "1", "10.00"), (D[2], "1", "5.00")]), "pharmacy_non_drug")
    )
    b.near.append(
        (claim(m, P["H1"], "outpatient", day(5, 3), [(T[0], "1", "30.00"), (F[0], "1", "50.00")]), "pharmacy_non_drug")
    )

    # pharmacy_frequency (more than 3 purchases within 7 days)
    m = b.member()
    freq = [claim(m, P["PH" if k % 2 else "PH2"], "pharmacy", day(11, 1 + k), drug) for k in range(4)]
    b.planted.append((freq[3], "pharmacy_frequency"))
    b.near += [(c, "pharmacy_frequency") for c in freq[:3]]
    m = b.member()  # days 1, 3, 5, 8: never 4 in 7 days
    b.near += [(claim(m, P["PH"], "pharmacy", day(11, d), drug), "pharmacy_frequency") for d in (1, 3, 5, 8)]

    # outpatient_to_inpatient (an item of an outpatient claim ≤ 3 days before admission at the provider)
    exam = (T[2], "1", "80.00")
    m = b.member()
    claim(m, P["H1"], "outpatient", day(4, 8), [exam])
    b.planted.append(
        (
            claim(m, P["H1"], "inpatient", day(4, 10), [exam, (D[0], "2", "10.00")], day(4, 14)),
            "outpatient_to_inpatient",
        )
    )
    m = b.member()  # 5 days before: near miss
    claim(m, P["H1"], "outpatient", day(4, 5), [exam])
    b.near.append((claim(m, P["H1"], "inpatient", day(4, 10), [exam], day(4, 14)), "outpatient_to_inpatient"))
    m = b.member()  # no shared item, and a shared item at another provider: near miss
    claim(m, P["H1"], "outpatient", day(4, 9), [(T[1], "1", "20.00")])
    claim(m, P["H2"], "outpatient", day(4, 9), [exam])
    b.near.append((claim(m, P["H1"], "inpatient", day(4, 10), [exam], day(4, 14)), "outpatient_to_inpatient"))

    planted = b.table()
    meta = dict(claims.schema.metadata or {})
    meta[PLANTED_KEY] = json.dumps({"planted": b.planted, "near_miss": b.near}).encode()
    new_claims = pa.concat_tables([claims.replace_schema_metadata(None), planted]).replace_schema_metadata(meta)
    template = members.slice(0, 1).to_pylist()[0]
    new_members = pa.concat_tables(
        [members, pa.Table.from_pylist([{**template, "member_id": mid} for mid in b.members], schema=members.schema)]
    )
    goods = {
        "item_code": GOODS_CODE,
        "name": "保健品(非医保)",
        "class": "excluded",
        "first_self_pay_ratio": None,
        "max_unit_price": None,
        "valid_from": dt.date(2000, 1, 1),
        "valid_to": None,
    }
    cat = cat.append_column("item_kind", kind) if "item_kind" not in cat.column_names else cat
    goods_row = pa.Table.from_pylist([{**goods, "item_kind": "other"}], schema=cat.schema)
    return {**tables, "claims": new_claims, "members": new_members, "catalogue": pa.concat_tables([cat, goods_row])}


def planted_cases(tables) -> dict[str, list[tuple[str, str]]]:
    """The planted and near-miss (claim_id, rule) pairs of :func:`plant_audit` (from metadata)."""
    if isinstance(tables, dict):
        tables = tables["claims"]
    schema = tables if isinstance(tables, pa.Schema) else tables.schema
    raw = (schema.metadata or {}).get(PLANTED_KEY)
    if not raw:
        return {"planted": [], "near_miss": []}
    d = json.loads(raw)
    return {k: [tuple(x) for x in d[k]] for k in ("planted", "near_miss")}
