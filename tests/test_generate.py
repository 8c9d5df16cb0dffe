"""Tests of the synthetic data generator (adjudicate.generate), against contract.md §2 and §4."""

from __future__ import annotations

import collections
import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from adjudicate.generate import BAD_KINDS, bad_claims, generate_tables, write_dataset

YEAR = 2024
MEMBERS = 1500
SEED = 7

# contract.md §2, exact names, order and types
EXPECTED = {
    "claims": [
        ("claim_id", pa.string()),
        ("line_no", pa.int32()),
        ("member_id", pa.string()),
        ("provider_id", pa.string()),
        ("setting", pa.string()),
        ("referral", pa.string()),
        ("admit_date", pa.date32()),
        ("discharge_date", pa.date32()),
        ("item_code", pa.string()),
        ("quantity", pa.float64()),
        ("unit_price", pa.decimal128(12, 4)),  # contract §1 (updated): prices exact to 0.0001 yuan
        ("amount", pa.decimal128(14, 2)),
        ("diagnosis", pa.string()),
    ],
    "members": [
        ("member_id", pa.string()),
        ("birth_date", pa.date32()),
        ("category", pa.string()),
        ("civil_servant", pa.bool_()),
        ("enrolled_since", pa.date32()),
        ("account_balance", pa.decimal128(14, 2)),
        ("prior_year_wage", pa.decimal128(14, 2)),
    ],
    "providers": [
        ("provider_id", pa.string()),
        ("kind", pa.string()),
        ("level", pa.int8()),
        ("designated", pa.bool_()),
        ("local", pa.bool_()),
        ("quota_per_admission", pa.decimal128(14, 2)),
    ],
    "catalogue": [
        ("item_code", pa.string()),
        ("name", pa.string()),
        ("class", pa.string()),
        ("first_self_pay_ratio", pa.decimal128(6, 4)),
        ("max_unit_price", pa.decimal128(12, 4)),  # contract §1 (updated): prices exact to 0.0001 yuan
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
    ],
}
REQUIRED_CLAIM_COLUMNS = [
    "claim_id",
    "line_no",
    "member_id",
    "provider_id",
    "setting",
    "admit_date",
    "item_code",
    "quantity",
    "unit_price",
    "amount",
]
HEADER = ["member_id", "provider_id", "setting", "referral", "admit_date", "discharge_date", "diagnosis"]
SCHEME_RATIO_BP = {"A": 0, "B": 1500, "special": 2000, "supplementary": 0}


@pytest.fixture(scope="module")
def tables():
    return generate_tables(MEMBERS, YEAR, SEED)


@pytest.fixture(scope="module")
def bad_tables():
    return generate_tables(MEMBERS, YEAR, SEED, bad_rows=0.08)


# ---------------------------------------------------------------------------
# helpers: an independent, plain-Python reading of the contract
# ---------------------------------------------------------------------------
def fen(d: Decimal) -> int:
    q = d * 100
    assert q == q.to_integral_value(), d
    return int(q)


def price_units(d: Decimal) -> int:
    """A price in 0.0001 yuan, exactly (contract §1)."""
    q = d * 10000
    assert q == q.to_integral_value(), d
    return int(q)


def round_half_away(num: int, den: int) -> int:
    sign = -1 if num < 0 else 1
    return sign * ((2 * abs(num) + den) // (2 * den))


def catalogue_index(catalogue: pa.Table):
    rows = collections.defaultdict(list)
    for r in catalogue.to_pylist():
        rows[r["item_code"]].append(r)
    return rows


def catalogue_row(index, code, day):
    for r in index.get(code, ()):
        if r["valid_from"] <= day and (r["valid_to"] is None or day <= r["valid_to"]):
            return r
    return None


def line_split(row, cat_row):
    """(class, self_pay, first_self_pay, eligible) in fen by schemes.md §1 (provider gives benefit)."""
    amount = fen(row["amount"])
    if cat_row is None or cat_row["class"] == "excluded":
        return ("unknown" if cat_row is None else "excluded"), amount, 0, 0
    over = 0
    if cat_row["max_unit_price"] is not None and amount > 0:
        # contract §1 (updated): the ceiling is taken on the exact four-decimal price, rounded once
        cap = round_half_away(price_units(cat_row["max_unit_price"]) * int(round(row["quantity"] * 2)), 200)
        over = max(0, amount - cap)
    allowed = amount - over
    if cat_row["first_self_pay_ratio"] is not None:
        bp = int(cat_row["first_self_pay_ratio"] * 10000)
    else:
        bp = SCHEME_RATIO_BP[cat_row["class"]]
    first = round_half_away(allowed * bp, 10000)
    return cat_row["class"], over, first, allowed - first


def first_reason(lines, members, providers, index):
    """The first rejection reason of contract §4 that applies to one claim's lines, or None."""
    if any(line[c] is None for line in lines for c in REQUIRED_CLAIM_COLUMNS):
        return "null_required_field"
    nos = [line["line_no"] for line in lines]
    if len(set(nos)) != len(nos):
        return "duplicate_line"
    if any(len({line[c] for line in lines}) != 1 for c in HEADER):
        return "inconsistent_claim_header"
    h = lines[0]
    if h["member_id"] not in members:
        return "unknown_member"
    if h["provider_id"] not in providers:
        return "unknown_provider"
    if h["setting"] == "inpatient" and h["discharge_date"] is None:
        return "missing_discharge_date"
    if h["setting"] == "inpatient" and h["discharge_date"] < h["admit_date"]:
        return "discharge_before_admit"
    sums = collections.Counter()
    for line in lines:
        klass, self_pay, first, eligible = line_split(line, catalogue_row(index, line["item_code"], h["admit_date"]))
        sums["total"] += fen(line["amount"])
        sums["self_pay"] += self_pay
        sums["first_self_pay"] += first
        sums["eligible"] += eligible
        sums["eligible:" + klass] += eligible
    if any(v < 0 for v in sums.values()):
        return "negative_claim_total"
    return None


def reasons(tables) -> dict[str, str]:
    members = set(tables["members"]["member_id"].to_pylist())
    providers = set(tables["providers"]["provider_id"].to_pylist())
    index = catalogue_index(tables["catalogue"])
    by_claim = collections.defaultdict(list)
    for line in tables["claims"].to_pylist():
        by_claim[line["claim_id"]].append(line)
    out = {}
    for cid, lines in by_claim.items():
        r = first_reason(lines, members, providers, index)
        if r is not None:
            out[cid] = r
    return out


def claim_groups(claims: pa.Table, *aggs):
    return claims.group_by("claim_id").aggregate(list(aggs))


# ---------------------------------------------------------------------------
# determinism and schema
# ---------------------------------------------------------------------------
def test_deterministic_for_a_seed():
    a = generate_tables(400, YEAR, 11, bad_rows=0.05)
    b = generate_tables(400, YEAR, 11, bad_rows=0.05)
    for name in a:
        assert a[name].equals(b[name], check_metadata=True), name
    assert bad_claims(a) == bad_claims(b) and bad_claims(a)
    c = generate_tables(400, YEAR, 12, bad_rows=0.05)
    assert not a["claims"].equals(c["claims"])
    assert not a["members"].equals(c["members"])
    assert bad_claims(a) != bad_claims(c)


def test_schema_matches_contract(tables):
    assert set(tables) == {"claims", "members", "providers", "catalogue"}
    for name, fields in EXPECTED.items():
        schema = tables[name].schema
        assert [(f.name, f.type) for f in schema] == fields, name
        assert tables[name].num_rows > 0
        tables[name].validate(full=True)


def test_enums_and_reference_tables(tables):
    c, m, p, k = tables["claims"], tables["members"], tables["providers"], tables["catalogue"]
    assert set(pc.unique(c["setting"]).to_pylist()) == {"inpatient", "outpatient", "special_outpatient", "pharmacy"}
    assert set(pc.unique(c["referral"]).to_pylist()) == {None, "referred", "emergency"}
    assert set(pc.unique(m["category"]).to_pylist()) == {"in_service", "retired"}
    assert set(pc.unique(k["class"]).to_pylist()) == {"A", "B", "special", "supplementary", "excluded"}
    assert len(set(m["member_id"].to_pylist())) == m.num_rows
    assert len(set(p["provider_id"].to_pylist())) == p.num_rows
    for prov in p.to_pylist():
        assert prov["kind"] in {"community", "hospital", "pharmacy", "other"}
        if prov["kind"] == "hospital":
            assert prov["level"] in (1, 2, 3) and prov["quota_per_admission"] > 0
        else:
            assert prov["quota_per_admission"] is None
        if prov["kind"] == "community":
            assert prov["level"] == 1
        if prov["kind"] == "pharmacy":
            assert prov["level"] == 0
    assert 0.01 < 1 - pc.mean(p["designated"].cast(pa.float64())).as_py() < 0.15
    assert 0.01 < 1 - pc.mean(p["local"].cast(pa.float64())).as_py() < 0.15


def test_members_realistic(tables):
    m = tables["members"].to_pylist()
    jan1 = dt.date(YEAR, 1, 1)
    ages = [(jan1 - r["birth_date"]).days / 365.25 for r in m]
    assert min(ages) >= 0 and max(ages) < 96.5 and min(ages) < 5 and max(ages) > 85
    retired = [r["category"] == "retired" for r in m]
    assert 0.15 < sum(retired) / len(m) < 0.35
    assert 0.02 < sum(r["civil_servant"] for r in m) / len(m) < 0.09
    for r in m:
        assert dt.date(1995, 1, 1) <= r["enrolled_since"] <= dt.date(YEAR, 12, 31)
        assert r["enrolled_since"] >= r["birth_date"]
        assert r["account_balance"] >= 0
        if r["category"] == "retired":
            assert r["prior_year_wage"] is None
        assert len(r["member_id"]) == 18
    assert any(r["enrolled_since"] >= jan1 for r in m)  # enrolled during the year
    assert any(r["account_balance"] == 0 for r in m)


# ---------------------------------------------------------------------------
# claims structure
# ---------------------------------------------------------------------------
def test_line_no_unique_and_dense_within_claim(tables):
    g = claim_groups(
        tables["claims"], ("line_no", "count"), ("line_no", "count_distinct"), ("line_no", "min"), ("line_no", "max")
    )
    assert pc.all(pc.equal(g["line_no_count"], g["line_no_count_distinct"])).as_py()
    assert pc.all(pc.equal(g["line_no_min"], 1)).as_py()
    assert pc.all(pc.equal(g["line_no_max"].cast(pa.int64()), g["line_no_count"])).as_py()


def test_claims_grouped_and_ids_unique(tables):
    ids = tables["claims"]["claim_id"].to_pylist()
    starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
    distinct = [ids[i] for i in starts]
    assert len(distinct) == len(set(distinct))  # each claim's lines are contiguous
    # Issue 9: claim ids are the year, the provider's number and its own visit
    # counter, unpadded, so they vary in length like real exports (was: 14 characters).
    assert all(8 <= len(x) <= 20 and x.startswith(str(YEAR)) for x in distinct)
    assert len({len(x) for x in distinct}) >= 3


def test_header_consistent_within_claim(tables):
    g = claim_groups(tables["claims"], *[(c, "count_distinct", pc.CountOptions(mode="all")) for c in HEADER])
    for c in HEADER:
        assert pc.all(pc.equal(g[f"{c}_count_distinct"], 1)).as_py(), c


def test_dates_and_settings(tables):
    c, p = tables["claims"], tables["providers"]
    kind = dict(zip(p["provider_id"].to_pylist(), p["kind"].to_pylist()))
    jan1, dec31 = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
    members = {r["member_id"]: r for r in tables["members"].to_pylist()}
    stays = collections.defaultdict(list)
    seen = set()
    for r in c.select(["claim_id", "member_id", "provider_id", "setting", "admit_date", "discharge_date"]).to_pylist():
        if r["claim_id"] in seen:
            continue
        seen.add(r["claim_id"])
        assert jan1 <= r["admit_date"] <= dec31
        assert r["admit_date"] >= members[r["member_id"]]["enrolled_since"]
        k = kind[r["provider_id"]]
        if r["setting"] == "inpatient":
            los = (r["discharge_date"] - r["admit_date"]).days
            assert 1 <= los <= 30
            assert k in ("hospital", "community")
            stays[r["member_id"]].append((r["admit_date"], r["discharge_date"]))
        else:
            assert r["discharge_date"] is None
        if r["setting"] == "pharmacy":
            assert k == "pharmacy"
        else:
            assert k != "pharmacy"
        if r["setting"] == "special_outpatient":
            assert k in ("hospital", "community")
    for s in stays.values():  # one member's stays never overlap
        s.sort()
        assert all(a[1] < b[0] for a, b in zip(s, s[1:]))
    # volumes: ~50 lines per member, 10-15 % of members admitted, some several times
    assert 35 < c.num_rows / MEMBERS < 65
    admitted = len(stays) / MEMBERS
    assert 0.07 < admitted < 0.2
    assert any(len(s) >= 3 for s in stays.values())


def test_line_counts_per_setting(tables):
    g = tables["claims"].group_by(["claim_id", "setting"]).aggregate([("line_no", "count")])
    per = collections.defaultdict(list)
    for r in g.to_pylist():
        per[r["setting"]].append(r["line_no_count"])
    assert min(per["inpatient"]) >= 10 and max(per["inpatient"]) <= 80
    assert 25 < sum(per["inpatient"]) / len(per["inpatient"]) < 60
    assert max(per["outpatient"]) <= 8
    assert len(per["special_outpatient"]) > 0 and len(per["pharmacy"]) > 0


# ---------------------------------------------------------------------------
# catalogue
# ---------------------------------------------------------------------------
def test_catalogue_validity_never_overlaps(tables):
    k = tables["catalogue"]
    index = catalogue_index(k)
    assert 2000 <= len(index) <= 6000
    two = 0
    for code, rows in index.items():
        rows = sorted(rows, key=lambda r: r["valid_from"])
        for r in rows:
            assert r["valid_to"] is None or r["valid_to"] >= r["valid_from"]
        for a, b in zip(rows, rows[1:]):
            assert a["valid_to"] is not None and a["valid_to"] < b["valid_from"], code
        if len(rows) == 2:
            two += 1
            a, b = rows
            assert a["valid_to"].year == YEAR and b["valid_from"] == a["valid_to"] + dt.timedelta(days=1)
            assert (a["class"], a["max_unit_price"], a["first_self_pay_ratio"]) != (
                b["class"],
                b["max_unit_price"],
                b["first_self_pay_ratio"],
            )
    assert 0.01 < two / len(index) < 0.06


def test_catalogue_mix_and_codes(tables):
    k = tables["catalogue"].to_pylist()
    n = len(k)
    share = collections.Counter(r["class"] for r in k)
    for klass, want in {"A": 0.25, "B": 0.45, "special": 0.05, "supplementary": 0.05, "excluded": 0.20}.items():
        assert abs(share[klass] / n - want) < 0.05 + want * 0.2, klass
    ratios = [r["first_self_pay_ratio"] for r in k if r["first_self_pay_ratio"] is not None]
    assert 0.01 < len(ratios) / n < 0.1 and all(Decimal(0) < x < Decimal(1) for x in ratios)
    capped = sum(r["max_unit_price"] is not None for r in k)
    assert 0.12 < capped / n < 0.3
    codes = {r["item_code"] for r in k}
    assert any(c.startswith("X") and len(c) == 23 for c in codes)  # 西药
    assert any(c.startswith("Z") and len(c) == 20 for c in codes)  # 中成药
    assert any(c.isdigit() and len(c) == 15 for c in codes)  # 医疗服务项目
    assert any(c.startswith("C") and len(c) == 20 for c in codes)  # 医用耗材


def test_item_codes_mostly_in_catalogue_and_valid(tables):
    index = catalogue_index(tables["catalogue"])
    lines = tables["claims"].select(["item_code", "admit_date"]).to_pylist()
    found = sum(catalogue_row(index, r["item_code"], r["admit_date"]) is not None for r in lines)
    assert found < len(lines)  # a few codes the catalogue does not know
    assert found / len(lines) > 0.995


# ---------------------------------------------------------------------------
# money
# ---------------------------------------------------------------------------
def test_amounts_exact_to_the_fen(tables):
    c = tables["claims"]
    # contract §1 (updated): unit prices are exact to 0.0001 yuan, amounts to the fen
    assert c["unit_price"].type.scale == 4 and c["amount"].type.scale == 2
    exact = moled = 0
    for r in c.select(["quantity", "unit_price", "amount"]).to_pylist():
        price, amount = price_units(r["unit_price"]), fen(r["amount"])
        assert r["unit_price"].as_tuple().exponent == -4 and r["amount"].as_tuple().exponent == -2
        q2 = r["quantity"] * 2
        assert q2 == int(q2) and q2 != 0 and price > 0
        expected = round_half_away(int(q2) * price, 200)
        if amount == expected:
            exact += 1
        else:  # 抹零: the odd fen dropped
            assert 0 < expected - amount < 10 and amount % 10 == 0
            moled += 1
    assert exact / c.num_rows > 0.98 and moled > 0
    # exactness survives Arrow arithmetic: the sum of amounts equals the sum in integer fen
    total = pc.sum(c["amount"]).as_py()
    assert fen(total) == sum(fen(x) for x in c["amount"].to_pylist())


def test_refunds_never_make_a_sum_negative(tables):
    c = tables["claims"]
    neg = pc.sum(pc.less(c["amount"], pa.scalar(Decimal("0"), pa.decimal128(14, 2)))).as_py()
    assert neg > 0
    by_claim = collections.defaultdict(list)
    for r in c.select(["claim_id", "line_no", "item_code", "quantity", "unit_price", "amount"]).to_pylist():
        by_claim[r["claim_id"]].append(r)
    for lines in by_claim.values():
        for i, r in enumerate(lines):
            if r["amount"] < 0:
                assert r["quantity"] < 0
                earlier = [x for x in lines[:i] if x["item_code"] == r["item_code"] and x["amount"] > 0]
                assert earlier and -r["amount"] <= earlier[-1]["amount"]
                assert earlier[-1]["unit_price"] == r["unit_price"]


def test_costs_cross_the_bands():
    t = generate_tables(2000, YEAR, 1)
    index = catalogue_index(t["catalogue"])
    cum = collections.Counter()
    for r in t["claims"].to_pylist():
        if r["setting"] == "inpatient":
            cum[r["member_id"]] += line_split(r, catalogue_row(index, r["item_code"], r["admit_date"]))[3]
    assert sum(v > 10_000_000 for v in cum.values()) >= 3  # > 100 000 yuan eligible
    assert sum(v > 20_000_000 for v in cum.values()) >= 1  # > 200 000 yuan
    assert sum(v < 1_000_000 for v in cum.values()) > len(cum) / 2  # most are cheap


# ---------------------------------------------------------------------------
# bad claims
# ---------------------------------------------------------------------------
def test_clean_data_has_no_defect(tables):
    assert bad_claims(tables) == {}
    assert reasons(tables) == {}


def test_bad_rows_fraction_and_kinds(bad_tables):
    declared = bad_claims(bad_tables)
    n_claims = len(pc.unique(bad_tables["claims"]["claim_id"]))
    assert abs(len(declared) / n_claims - 0.08) < 0.005
    assert set(declared.values()) == set(BAD_KINDS)
    counts = collections.Counter(declared.values())
    # spread evenly; the inpatient-only kinds take at most 2 x the rate of inpatient claims
    inpatient_only = {"missing_discharge_date", "discharge_before_admit"}
    others = [v for k, v in counts.items() if k not in inpatient_only]
    assert max(others) - min(others) <= 1
    settings = dict(zip(bad_tables["claims"]["claim_id"].to_pylist(), bad_tables["claims"]["setting"].to_pylist()))
    n_inpatient = sum(s == "inpatient" for s in settings.values())
    assert 0 < counts["missing_discharge_date"] + counts["discharge_before_admit"] <= 0.16 * n_inpatient + 2
    # every declared claim fails with exactly the declared (first) reason, and nothing else fails
    assert reasons(bad_tables) == declared


def test_bad_rows_leave_the_rest_untouched(tables, bad_tables):
    bad_ids = pa.array(sorted(bad_claims(bad_tables)))

    def good(t):
        c = t["claims"]
        return c.filter(pc.invert(pc.is_in(c["claim_id"], value_set=bad_ids))).replace_schema_metadata(None)

    assert good(tables).equals(good(bad_tables))
    for name in ("members", "providers", "catalogue"):
        assert tables[name].equals(bad_tables[name])


@pytest.mark.parametrize("rate", [0.003, 0.5, 1.0])
def test_bad_rows_extreme_rates(rate):
    t = generate_tables(300, YEAR, 3, bad_rows=rate)
    declared = bad_claims(t)
    n_claims = len(pc.unique(t["claims"]["claim_id"]))
    assert len(declared) == round(rate * n_claims)
    assert reasons(t) == declared
    if rate >= 0.5:
        assert set(declared.values()) == set(BAD_KINDS)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        generate_tables(10, YEAR, 1, order="random")
    with pytest.raises(ValueError):
        generate_tables(0, YEAR, 1)
    with pytest.raises(ValueError):
        generate_tables(10, YEAR, 1, bad_rows=1.5)


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, ext", [("parquet", ".parquet"), ("feather", ".arrow"), ("csv", ".csv")])
def test_write_dataset_round_trip(tmp_path, fmt, ext):
    t = generate_tables(300, YEAR, 5, bad_rows=0.05)
    paths = write_dataset(t, tmp_path / "out", fmt=fmt)
    assert set(paths) == set(t)
    for name, path in paths.items():
        assert path == tmp_path / "out" / f"{name}{ext}" and path.exists()
        expected = t[name]
        if fmt == "parquet":
            back = pq.read_table(path)
        elif fmt == "feather":
            back = feather.read_table(path)
        else:
            opts = pcsv.ConvertOptions(column_types=expected.schema, strings_can_be_null=True)
            back = pcsv.read_csv(path, convert_options=opts)
        assert back.schema.names == expected.schema.names
        assert back.equals(expected.cast(back.schema)), name
        if fmt != "csv":
            assert back.schema == expected.schema
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    if fmt != "csv":
        assert bad_claims(
            pq.read_schema(paths["claims"]) if fmt == "parquet" else feather.read_table(paths["claims"]).schema
        ) == bad_claims(t)


def test_write_dataset_rejects_unknown_format(tmp_path, tables):
    with pytest.raises(ValueError):
        write_dataset(tables, tmp_path, fmt="xlsx")


@pytest.mark.parametrize("order", ["member", "shuffled"])
def test_orders_hold_the_same_rows(tables, order):
    """generate --order only reorders the claim lines (issue 9)."""
    other = generate_tables(MEMBERS, YEAR, SEED, order=order)
    for name in ("members", "providers", "catalogue"):
        assert other[name].equals(tables[name])
    keys = [("claim_id", "ascending"), ("line_no", "ascending")]
    a, b = tables["claims"], other["claims"]
    assert b.num_rows == a.num_rows and not b["claim_id"].equals(a["claim_id"])
    assert b.sort_by(keys).replace_schema_metadata(None).equals(a.sort_by(keys).replace_schema_metadata(None))
    if order == "member":  # each member's claims together, each claim's lines together
        runs = lambda col: sum(1 for i, v in enumerate(col) if i == 0 or v != col[i - 1])  # noqa: E731
        assert runs(b["member_id"].to_pylist()) == len(set(b["member_id"].to_pylist()))
        assert runs(b["claim_id"].to_pylist()) == len(set(b["claim_id"].to_pylist()))


def test_date_order_settles_in_date_order(tables):
    """The default order: claims by settlement date, members interleaved (issue 9)."""
    c = tables["claims"].to_pylist()
    settle = [r["discharge_date"] or r["admit_date"] for r in c]
    assert settle == sorted(settle)
    members = [r["member_id"] for r in c]
    assert sum(1 for i in range(1, len(c)) if members[i] != members[i - 1]) > len(set(members))
