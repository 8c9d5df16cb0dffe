"""An independent maker of realistic exports, written apart from ``adjudicate generate``.

It makes what a fund office's export looks like rather than what the project's
generator makes: rows shuffled or in settlement-date order, four-decimal unit and
ceiling prices with half-fen ties, claim ids of varying length (so byte order and
length disagree), members with claims across two or three benefit years (gap
years, a first claim after the base year), refund lines, catalogue rows that
change validity mid-year, and a few defective claims.

``make(seed, members)`` returns plain Python rows (``Data``); ``Data.write(folder)``
writes the four Parquet inputs. The oracle in ``qa_oracle.py`` reads the rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from builders import CATALOGUE_TYPES, MEMBER_TYPES, PROVIDER_TYPES
from builders import CLAIM_TYPES as CASE_CLAIM_TYPES

D = Decimal
# The contract's input types (tests/builders.py), with four-decimal unit prices.
CLAIM_TYPES = {**CASE_CLAIM_TYPES, "unit_price": pa.decimal128(18, 4)}

PROVIDERS = [  # id, kind, level, designated, local, quota
    ("H3", "hospital", 3, True, True, D("9000")),
    ("H2", "hospital", 2, True, True, D("6000")),
    ("H1", "hospital", 1, True, True, None),
    ("CM", "community", 2, True, True, D("3000")),  # community uses row 1 whatever its level
    ("HX", "hospital", 3, False, True, None),  # not designated: benefit only when referred/emergency
    ("FAR", "hospital", 2, False, False, None),
    ("PH", "pharmacy", 0, True, True, None),
    ("OT", "other", 0, True, True, None),
]
Y0 = dt.date(2000, 1, 1)


def _table(rows: list[dict], types: dict) -> pa.Table:
    return pa.table({k: pa.array([r.get(k) for r in rows], t) for k, t in types.items()})


@dataclasses.dataclass
class Data:
    claims: list[dict]
    members: list[dict]
    providers: list[dict]
    catalogue: list[dict]

    def write(self, folder: Path, fmt: str = "parquet") -> dict[str, Path]:
        """``fmt``: parquet (decimal amounts), float (float64 yuan, as many exports have) or csv."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, rows, types in (
            ("claims", self.claims, CLAIM_TYPES),
            ("members", self.members, MEMBER_TYPES),
            ("providers", self.providers, PROVIDER_TYPES),
            ("catalogue", self.catalogue, CATALOGUE_TYPES),
        ):
            if fmt == "float":
                types = {k: pa.float64() if pa.types.is_decimal(t) else t for k, t in types.items()}
                rows = [{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows]
            table = _table(rows, types)
            if fmt == "csv":
                paths[name] = folder / f"{name}.csv"
                pacsv.write_csv(table, paths[name])
            else:
                paths[name] = folder / f"{name}.parquet"
                pq.write_table(table, paths[name])
        return paths


def _catalogue(rng: random.Random) -> list[dict]:
    rows = []

    def row(code, cls, ratio=None, price=None, frm=Y0, to=None):
        rows.append(
            {
                "item_code": code,
                "name": f"item {code}",
                "class": cls,
                "first_self_pay_ratio": None if ratio is None else D(ratio),
                "max_unit_price": None if price is None else D(price),
                "valid_from": frm,
                "valid_to": to,
            }
        )

    row("A01", "A")
    row("A02", "A", price="12.3450")  # ceiling on a four-decimal price
    row("A03", "A", price="0.0500")  # 0.05 × 0.3 = 0.015: a half-fen tie
    row("B01", "B")
    row("B02", "B", ratio="0.1000")
    row("B03", "B", price="3.1250")  # × odd quantity: half-fen ties
    row("B04", "B", ratio="0.0333", price="7.7777")
    row("S01", "special")
    row("S02", "special", ratio="0.0500", price="150.0050")
    row("P01", "supplementary")
    row("X01", "excluded")
    # Rows that change validity in the middle of a year (the row valid on admit_date applies).
    for year in (2023, 2024, 2025):
        mid = dt.date(year, 7, 1)
        row(f"V{year}", "B", price="20.0000", frm=dt.date(year - 1, 7, 1), to=mid - dt.timedelta(days=1))
        row(f"V{year}", "A", price="18.1235", frm=mid, to=dt.date(year, 12, 31))
    row("VQ", "A", frm=Y0, to=dt.date(2024, 3, 31))
    row("VQ", "special", price="99.9950", frm=dt.date(2024, 4, 1))
    row("VG", "B", frm=dt.date(2024, 1, 1), to=dt.date(2024, 5, 31))  # a gap: unknown after May 2024
    rng.shuffle(rows)
    return rows


ITEMS = ["A01", "A02", "A03", "B01", "B02", "B03", "B04", "S01", "S02", "P01", "X01", "VQ", "VG", "ZZ9"]


def _price(rng: random.Random) -> Decimal:
    return D(rng.randint(1, 2_000_000)) / 10000


def _line(rng: random.Random, item: str, scale: int) -> tuple[float, Decimal, Decimal]:
    """(quantity, unit_price, amount) with four-decimal prices; often exactly at or over a ceiling."""
    qty = rng.choice([1.0, 1.0, 2.0, 3.0, 0.5, 0.3, 7.0, 30.0, 1.5])
    if item in ("A02", "B03", "B04", "S02", "VQ") or item.startswith("V"):
        ceilings = {"A02": "12.3450", "B03": "3.1250", "B04": "7.7777", "S02": "150.0050", "VQ": "99.9950"}
        base = D(ceilings.get(item, "18.1235"))
        unit = base + rng.choice([D(0), D(0), D("0.0001"), D("0.0050"), D("1.2345"), -D("0.0001")])
    elif item == "A03":
        unit = D("0.0500") + rng.choice([D(0), D("0.0001")])
        qty = 0.3
    else:
        unit = _price(rng) * scale
    exact = unit * D(repr(qty))
    amount = exact.quantize(D("0.01"), rounding="ROUND_HALF_UP")
    if rng.random() < 0.05:
        amount += D("0.01")  # billed a fen over
    return qty, unit, amount


def _id(rng: random.Random, used: set[str]) -> str:
    while True:
        cid = rng.choice(["C", "c", "Z", "C0", "9", "Ä"]) + str(rng.randint(0, 10 ** rng.randint(1, 12)))
        if cid not in used:
            used.add(cid)
            return cid


def make(
    seed: int,
    members: int = 60,
    order: str = "shuffled",
    years: tuple[int, ...] = (2023, 2024, 2025),
    defects: bool = True,
    big: float = 0.25,
    whales: int = 4,
) -> Data:
    """A data set of ``members`` members with claims in ``years``; ``order``: shuffled or settle_date."""
    rng = random.Random(seed)
    mems = []
    for i in range(members):
        mems.append(
            {
                "member_id": f"M{i:04d}",
                "birth_date": dt.date(rng.randint(1940, 2002), rng.randint(1, 12), rng.choice([1, 1, 15, 28])),
                "category": "retired" if rng.random() < 0.3 else "in_service",
                "civil_servant": rng.random() < 0.3,
                "enrolled_since": dt.date(rng.randint(1995, 2024), 1, 1),
                "account_balance": D(rng.randint(0, 800_000)) / 100,
                "prior_year_wage": None if rng.random() < 0.1 else D(rng.randint(2_000_000, 20_000_000)) / 100,
            }
        )
    mems[0]["birth_date"] = dt.date(1989, 1, 1)  # 35 on 1 Jan 2024, 36 on 1 Jan 2025: band edges
    mems[1]["birth_date"] = dt.date(1978, 1, 2)
    provs = [dict(zip(PROVIDER_TYPES, p)) for p in PROVIDERS]
    used: set[str] = set()
    claims: list[dict] = []

    def claim(member: str, year: int, setting: str, *, inpatient_scale: int = 1, same_day: dt.date | None = None):
        cid = _id(rng, used)
        if setting == "inpatient":
            prov = rng.choice(["H3", "H3", "H2", "H1", "CM", "HX", "FAR"])
        elif setting == "pharmacy":
            prov = "PH"
        else:
            prov = rng.choice(["H3", "H2", "CM", "OT", "HX"])
        admit = same_day or dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        discharge = None
        if setting == "inpatient":
            discharge = admit + dt.timedelta(days=rng.randint(0, 40))
        referral = rng.choice([None, None, None, "referred", "emergency"])
        n = rng.randint(1, 7)
        items = [rng.choice(ITEMS) for _ in range(n)]
        if rng.random() < 0.2:
            items.append(f"V{admit.year}" if admit.year in (2023, 2024, 2025) else "A01")
        lines = []
        for item in items:
            scale = inpatient_scale if setting == "inpatient" else 1
            lines.append((item, *_line(rng, item, scale)))
        if rng.random() < 0.25:  # a refund line of something billed on the claim
            item, qty, unit, amount = rng.choice(lines)
            if amount > 0:
                lines.append((item, -1.0, unit, -(amount * D(rng.choice(["0.5", "1", "0.3333"]))).quantize(D("0.01"))))
        nos = rng.sample(range(1, 200), len(lines))
        diag = rng.choice(["I10", "E11.9", "C34.1", None])
        for no, (item, qty, unit, amount) in zip(nos, lines):
            claims.append(
                {
                    "claim_id": cid,
                    "line_no": no,
                    "member_id": member,
                    "provider_id": prov,
                    "setting": setting,
                    "referral": referral,
                    "admit_date": admit,
                    "discharge_date": discharge,
                    "item_code": item,
                    "quantity": qty,
                    "unit_price": unit,
                    "amount": amount,
                    "diagnosis": diag,
                }
            )
        return cid

    for m in mems:
        mid = m["member_id"]
        pattern = rng.choice(["all", "all", "gap", "late", "first", "one"])
        ys = {
            "all": list(years),
            "gap": [years[0], years[-1]],
            "late": [years[-1]],
            "first": [years[0]],
            "one": [rng.choice(years)],
        }[pattern]
        for year in ys:
            for _ in range(rng.randint(0, 3)):
                claim(mid, year, rng.choice(["outpatient", "pharmacy", "special_outpatient"]))
            for _ in range(rng.randint(0, 3)):
                claim(mid, year, "inpatient", inpatient_scale=rng.choice([1, 1, 30, 150]) if rng.random() < big else 1)
            if rng.random() < 0.3:  # January claims, two on the same day (claim_id decides)
                day = dt.date(year, 1, rng.randint(2, 9))
                claim(mid, year, "outpatient", same_day=day)
                claim(mid, year, "pharmacy", same_day=day)
    # a few members whose costs climb through every band, the cap and past 200 000 within a year
    for k, m in enumerate(mems[10 : 10 + whales]):
        m["civil_servant"] = k % 2 == 0
        m["category"] = "retired" if k % 4 >= 2 else "in_service"
        for year in rng.sample(list(years), min(2, len(years))):
            for _ in range(rng.randint(3, 6)):
                claim(m["member_id"], year, "inpatient", inpatient_scale=rng.choice([150, 300, 600]))
    # the base year is years[0]: make sure some member settles there
    claim(mems[0]["member_id"], years[0], "outpatient")
    if defects:
        claim("NOBODY", years[1], "outpatient")
        cid = claim(mems[2]["member_id"], years[1], "inpatient")
        for r in claims:
            if r["claim_id"] == cid:
                r["discharge_date"] = r["admit_date"] - dt.timedelta(days=3)
        cid = claim(mems[3]["member_id"], years[1], "inpatient")
        for r in claims:
            if r["claim_id"] == cid:
                r["discharge_date"] = None
        cid = claim(mems[4]["member_id"], years[1], "outpatient")  # a refund of something not billed
        for r in claims:
            if r["claim_id"] == cid:
                r["amount"] = -abs(r["amount"]) - D("0.01")
        cid = claim(mems[5]["member_id"], years[1], "outpatient")
        rows = [r for r in claims if r["claim_id"] == cid]
        claims.append(dict(rows[0]))  # a duplicate line
        cid = claim(mems[6]["member_id"], years[1], "inpatient")
        for r in claims:
            if r["claim_id"] == cid:
                r["provider_id"] = "NOWHERE"
    if order == "settle_date":
        claims.sort(
            key=lambda r: (
                r["discharge_date"] if r["setting"] == "inpatient" and r["discharge_date"] else r["admit_date"]
            )
        )
    else:
        rng.shuffle(claims)
    return Data(claims, mems, provs, _catalogue(rng))
