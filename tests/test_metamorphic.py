"""Metamorphic tests: changes to the input that must, or provably cannot, change the output.

- Row order of every input, the split of the claims into files, and the
  number of threads change nothing (contract §3): the output Parquet tables
  are compared whole.
- Members are independent: a new claim for one member changes no other
  member's settlements, nor that member's claims settled before it or in
  another year.
- Raising an annual cap (a limit amount edited in a copy of a shipped
  policy file) never lowers a member-year's fund_pool. Why, and what is
  *not* a theorem, is written beside each test.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner

from adjudicate import policy as P
from adjudicate.cli import main
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.outputs import settlements_table, write_all

SHIPPED = sorted(P.shipped())
OUTPUTS = ("settlements", "lines", "rejected")


def yuan(fen: int) -> str:
    return str(Decimal(fen).scaleb(-2))


def make_case(seed: int, members: int = 24, claims: int = 110, steady: bool = False) -> Case:
    """A varied data set: several claims per member over two years, refunds, same-day ties, rejections.

    ``steady``: every member enrolled on 1 January of an earlier year, so the
    enrolment-month bracket never changes within a benefit year.
    """
    rnd = random.Random(seed)
    case = Case()
    for i in range(members):
        since = (
            dt.date(rnd.randint(2015, 2023), 1, 1)
            if steady
            else dt.date(2018, 1, 1) + dt.timedelta(days=rnd.randint(0, 2400))
        )
        case.member(
            f"M{i:02d}",
            category=rnd.choice(["in_service", "retired"]),
            civil_servant=rnd.random() < 0.3,
            balance=yuan(rnd.choice([0, 50_000, 300_000, 2_000_000])),
            enrolled_since=since.isoformat(),
        )
    kinds = [
        ("H3", "hospital", 3, True, True),
        ("H2", "hospital", 2, True, True),
        ("C1", "community", 1, True, True),
        ("N1", "hospital", 2, False, True),
        ("F3", "hospital", 3, True, False),
        ("D0", "pharmacy", 0, True, True),
    ]
    for pid, kind, level, designated, local in kinds:
        case.provider(pid, kind=kind, level=level, designated=designated, local=local)
    case.item("B5", "B", ratio="0.05", max_price="12.00")
    case.item("I1", "A", valid_to="2024-06-30").item("I1", "B", valid_from="2024-07-01", ratio="0.30")
    case.item("Q1", "supplementary", max_price="80.00")
    items = ["A1", "A1", "B1", "S1", "P1", "X1", "B5", "I1", "Q1", "ZZ"]
    for n in range(claims):
        member = f"M{rnd.randrange(members):02d}" if rnd.random() > 0.02 else "NOBODY"
        setting = rnd.choice(["inpatient", "inpatient", "outpatient", "special_outpatient", "pharmacy"])
        provider = "D0" if setting == "pharmacy" else rnd.choice([k[0] for k in kinds[:5]])
        admit = dt.date(2023, 1, 1) + dt.timedelta(days=rnd.randint(0, 700))
        discharge = admit + dt.timedelta(days=rnd.randint(0, 12))
        lines = []
        for _ in range(rnd.randint(1, 5)):
            big = rnd.random() < 0.25
            fen = rnd.randint(1_000_000, 30_000_000) if big else rnd.randint(0, 800_000)
            lines.append((rnd.choice(items), yuan(fen), rnd.choice([1.0, 2.0, 0.5, 4.0])))
        if rnd.random() < 0.15:  # a refund line
            item, amount, qty = lines[0]
            lines.append((item, yuan(-rnd.randint(0, int(Decimal(amount) * 100))), qty))
        if rnd.random() < 0.02:  # a refund of something not billed: negative_claim_total
            lines = [("A1", "-5.00")]
        case.claim(
            f"C{rnd.randint(0, 10**6):06d}-{n}",
            lines,
            member_id=member,
            provider_id=provider,
            setting=setting,
            admit=admit.isoformat(),
            discharge=discharge.isoformat(),
            referral=rnd.choice([None, None, None, "referred", "emergency"]),
        )
    # same member, same settle date: the order is claim_id as bytes
    case.claim("T-b", [("A1", "30000")], member_id="M00", admit="2024-03-01", discharge="2024-03-05")
    case.claim("T-a", [("A1", "30000")], member_id="M00", admit="2024-03-02", discharge="2024-03-05")
    return case


def write(
    tables: dict[str, pa.Table], folder: Path, parts: dict[str, int] | None = None, rnd: random.Random | None = None
) -> dict[str, list[Path]]:
    """Write each table, optionally split into ``parts[name]`` files of randomly chosen rows."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {}
    for name, t in tables.items():
        k = (parts or {}).get(name, 1)
        if k == 1:
            pq.write_table(t, folder / f"{name}.parquet")
            paths[name] = [folder / f"{name}.parquet"]
            continue
        assign = [rnd.randrange(k) for _ in range(t.num_rows)]
        paths[name] = []
        for j in range(k):
            rows = [i for i, a in enumerate(assign) if a == j]
            p = folder / f"{name}-{j}.parquet"
            pq.write_table(t.take(pa.array(rows, pa.int64())), p)
            paths[name].append(p)
    return paths


def run(paths: dict[str, list[Path]], policy, out: Path, threads: int = 1) -> dict[str, pa.Table]:
    inputs = read_inputs(paths["claims"], paths["members"], paths["providers"], paths["catalogue"])
    pol = policy if isinstance(policy, P.Policy) else P.load(policy)
    write_all(adjudicate(inputs, pol, threads=threads), out, inputs.digests(), inputs.claims.rows)
    return {n: pq.read_table(out / f"{n}.parquet") for n in OUTPUTS}


def assert_same(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    for n in OUTPUTS:
        assert a[n].schema == b[n].schema, n
        assert a[n].equals(b[n]), f"{n}.parquet differs"


def shuffled(t: pa.Table, rnd: random.Random) -> pa.Table:
    order = list(range(t.num_rows))
    rnd.shuffle(order)
    return t.take(pa.array(order, pa.int64()))


# ---------------------------------------------------------------------------
# Order, files, threads (contract §3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("policy", SHIPPED)
def test_row_order_and_file_split_change_nothing(policy, tmp_path):
    rnd = random.Random(7)
    tables = make_case(11).tables()
    base = run(write(tables, tmp_path / "in0"), policy, tmp_path / "out0")
    assert base["settlements"].num_rows > 50 and base["rejected"].num_rows > 0
    # every input shuffled
    mixed = {n: shuffled(t, rnd) for n, t in tables.items()}
    assert_same(base, run(write(mixed, tmp_path / "in1"), policy, tmp_path / "out1"))
    # claims in four files (a claim's lines may land in different files), members and catalogue in two
    paths = write(mixed, tmp_path / "in2", {"claims": 4, "members": 2, "catalogue": 2}, rnd)
    assert len(paths["claims"]) == 4
    assert_same(base, run(paths, policy, tmp_path / "out2"))


def test_threads_change_nothing(tmp_path):
    paths = write(make_case(3, members=40, claims=160).tables(), tmp_path / "in")
    args = [a for n in ("claims", "members", "providers", "catalogue") for a in (f"--{n}", str(paths[n][0]))]
    outs = []
    for policy in ("prefecture-employee", "shenzhen-comprehensive"):
        for threads in (1, 2, 3):
            out = tmp_path / f"out-{policy}-{threads}"
            r = CliRunner().invoke(
                main, ["run", *args, "--policy", policy, "--out", str(out), "--threads", str(threads), "-q"]
            )
            assert r.exit_code == 0, r.output
            outs.append({n: pq.read_table(out / f"{n}.parquet") for n in OUTPUTS})
        for other in outs[-2:]:
            assert_same(outs[-3], other)


# ---------------------------------------------------------------------------
# Members are independent; state only flows forward (within a member-year, and through the
# personal account into the member's later years, contract §3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("policy", SHIPPED)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_new_claim_changes_only_what_follows_it(policy, seed, tmp_path):
    rnd = random.Random(seed)
    case = make_case(seed + 20, members=12, claims=50)
    before = run(write(case.tables(), tmp_path / "a"), policy, tmp_path / "oa")["settlements"].to_pylist()
    member = f"M{rnd.randrange(12):02d}"
    admit = dt.date(2023, 3, 1) + dt.timedelta(days=rnd.randint(0, 600))
    case.claim(
        "NEW",
        [("A1", "25000.00"), ("B1", "800.00")],
        member_id=member,
        provider_id="H2",
        admit=admit.isoformat(),
        discharge=(admit + dt.timedelta(days=3)).isoformat(),
    )
    after = {
        r["claim_id"]: r
        for r in run(write(case.tables(), tmp_path / "b"), policy, tmp_path / "ob")["settlements"].to_pylist()
    }
    new = after.pop("NEW")
    key = (new["settle_date"], b"NEW")
    for row in before:
        if row["member_id"] != member:
            assert after[row["claim_id"]] == row, f"{row['claim_id']} of another member changed"
        elif (row["settle_date"], row["claim_id"].encode()) < key or row["benefit_year"] < new["benefit_year"]:
            assert after[row["claim_id"]] == row, f"{row['claim_id']} settles before the new claim, yet changed"
        elif row["benefit_year"] > new["benefit_year"]:
            # contract §3 (updated): the personal account carries over the years, so a later year's
            # account_paid (and cash_paid with it) may change; every annual counter restarts
            keep = {k: v for k, v in row.items() if k not in ("account_paid", "cash_paid")}
            assert {k: after[row["claim_id"]][k] for k in keep} == keep, f"{row['claim_id']} of a later year changed"
    assert len(after) == len(before)


# ---------------------------------------------------------------------------
# Raising a cap
# ---------------------------------------------------------------------------
# Why fund_pool per member-year cannot fall. Under a cap L the fund pays
# pool_n = min(full_n, max(0, L_n − used_{n−1})) and used_n = used_{n−1} + pool_n,
# i.e. used_n = max(used_{n−1}, min(used_{n−1} + full_n, L_n)): nondecreasing in
# used_{n−1} and in L_n. ``full_n`` (the band scale before the cap) does not
# depend on L in the shipped policies: no counter feeds on capped amounts, and
# the only account paid before the fund (shenzhen ambulatory) draws on a balance
# no capped block touches. So the year's capped total, and fund_pool, can only
# rise. Per claim it is a theorem only when L is constant over the year: with
# enrolment brackets a raised early bracket lets an early claim take room a
# later one would have had.
#
# What is not a theorem: fund_pool + fund_supplementary, exactly. Over the cap
# the tier pays round(t × (X − round(room / p))): one more fen of room can cut
# round(room / p) by two fen and the tier by two, so the total may drop by a fen
# (test below). Ideally the total is t·ΣX + (1 − t/p)·Σpool, nondecreasing when
# t ≤ p (true of the shipped policies), and each claim's rounding is under one
# fen, so the total falls by less than 2 fen per capped-block claim. With a
# supplementary limit this holds when the brackets stay constant in the year.


def edited(policy: str, tmp_path: Path, pattern: str, repl: str, name: str) -> P.Policy:
    text = P.shipped()[policy].read_text(encoding="utf-8")
    new, n = re.subn(pattern, repl, text, flags=re.M)
    assert n >= 1, pattern
    path = tmp_path / f"{name}.toml"
    path.write_text(new, encoding="utf-8")
    return P.load(path)


#: For each shipped policy with a cap: the limit's line(s) in the file, and a ladder of rising values.
CAP_EDITS = {
    "city-employee": (r"^amount = 40000\b", "amount = {v}", ["0", "1500", "4000.01", "12000", "40000"]),
    "zhenjiang-resident": (r"^amount = 150000\b", "amount = {v}", ["0", "2000", "8000", "30000", "150000"]),
    # every bracket of the basic cap scaled by v
    "shenzhen-comprehensive": (
        r"(\{ from = \d+, +amount = \{ times = )([\d.]+)",
        lambda v: lambda m: f"{m.group(1)}{Decimal(m.group(2)) * Decimal(v)}",
        ["0", "0.01", "0.05", "0.2", "1"],
    ),
}


def per_member_year(rows: list[dict], *cols: str) -> dict[tuple, int]:
    out: dict[tuple, int] = defaultdict(int)
    for r in rows:
        out[(r["member_id"], r["benefit_year"])] += sum(int(r[c] * 100) for c in cols)
    return out


def ladder(policy: str, tmp_path: Path, case: Case) -> list[list[dict]]:
    pattern, repl, values = CAP_EDITS[policy]
    inputs_dir = tmp_path / "in"
    paths = case.write(inputs_dir)
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    runs = []
    for i, v in enumerate(values):
        pol = edited(policy, tmp_path, pattern, repl.format(v=v) if isinstance(repl, str) else repl(v), f"cap{i}")
        runs.append(settlements_table(adjudicate(inputs, pol, threads=1)).to_pylist())
    return runs


@pytest.mark.parametrize("policy", sorted(CAP_EDITS))
def test_raising_the_cap_never_lowers_fund_pool(policy, tmp_path):
    runs = ladder(policy, tmp_path, make_case(5, members=16, claims=90))
    capped_somewhere = False
    for low, high in zip(runs, runs[1:]):
        a, b = per_member_year(low, "fund_pool"), per_member_year(high, "fund_pool")
        for k in a:
            assert b[k] >= a[k], f"{policy}: fund_pool of {k} fell from {a[k]} to {b[k]} as the cap rose"
        capped_somewhere |= any(b[k] > a[k] for k in a)
        if policy != "shenzhen-comprehensive":  # one cap amount all year: per claim too
            for x, y in zip(low, high):
                assert y["fund_pool"] >= x["fund_pool"], x["claim_id"]
    assert capped_somewhere  # the ladder is low enough to bind


@pytest.mark.parametrize("policy", ["city-employee", "shenzhen-comprehensive"])
def test_raising_the_cap_total_fund_payment_falls_by_rounding_only(policy, tmp_path):
    # steady brackets: each member's cap (and supplementary limit) is constant within a year
    runs = ladder(policy, tmp_path, make_case(9, members=16, claims=90, steady=True))
    moved = False
    for low, high in zip(runs, runs[1:]):
        a = per_member_year(low, "fund_pool", "fund_supplementary")
        b = per_member_year(high, "fund_pool", "fund_supplementary")
        n = defaultdict(int)
        for r in low:
            if r["setting"] == "inpatient":
                n[(r["member_id"], r["benefit_year"])] += 1
        for k in a:
            assert b[k] > a[k] - 2 * max(n[k], 1), f"{policy}: pool+supplementary of {k}: {a[k]} -> {b[k]}"
        moved |= any(b[k] != a[k] for k in a)
    assert moved


def test_total_fund_payment_is_not_exactly_monotone(tmp_path):
    """One fen more room under the cap, one fen less paid in all: the spec's two roundings, not a bug."""
    case = Case().member().provider("H3", level=3).claim("C1", [("A1", "1600")])
    paths = case.write(tmp_path / "in")
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    totals = []
    for cap in ("10.11", "10.12"):
        pol = edited("city-employee", tmp_path, r"^amount = 40000\b", f"amount = {cap}", f"c{cap}")
        row = settlements_table(adjudicate(inputs, pol, threads=1)).to_pylist()[0]
        totals.append((row["fund_pool"], row["fund_supplementary"]))
    # X = 1000 (1600 − deductible 600); O = X − round(room / 85 %): 988.11 then 988.09
    assert totals == [(Decimal("10.11"), Decimal("790.49")), (Decimal("10.12"), Decimal("790.47"))]
    assert sum(totals[1]) == sum(totals[0]) - Decimal("0.01")


def test_raising_the_supplementary_limit(tmp_path):
    """shenzhen: a higher 地方补充 limit leaves fund_pool alone and never lowers fund_supplementary."""
    case = make_case(13, members=16, claims=90)
    paths = case.write(tmp_path / "in")
    inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
    runs = []
    for i, v in enumerate(["0.01", "0.1", "1", "3"]):
        pol = edited(
            "shenzhen-comprehensive",
            tmp_path,
            r"(\{ from = \d+, +amount = )(\d+) \}",
            lambda m, v=v: f"{m.group(1)}{Decimal(m.group(2)) * Decimal(v)} }}",
            f"sup{i}",
        )
        runs.append(settlements_table(adjudicate(inputs, pol, threads=1)).to_pylist())
    moved = False
    for low, high in zip(runs, runs[1:]):
        assert [r["fund_pool"] for r in low] == [r["fund_pool"] for r in high]
        a, b = per_member_year(low, "fund_supplementary"), per_member_year(high, "fund_supplementary")
        assert all(b[k] >= a[k] for k in a)
        moved |= any(b[k] > a[k] for k in a)
    assert moved
