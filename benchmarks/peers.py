"""Peers of ``adjudicate run`` for the benchmark: the prefecture-employee scheme
written three other ways, each from schemes.md §1–§3 and contract.md, not from
the engine's code or its policy file.

- ``duckdb``: one SQL statement (window functions), read Parquet → COPY TO Parquet;
- ``polars``: the same formulation with the lazy Polars API;
- ``python``: a plain-Python loop per line and per claim (run on a sample of
  members by ``run.py`` and extrapolated linearly).

Each reads the four input files and writes the claim-level settlements table
(contract §4 columns, amounts ``decimal128(18, 2)``). Money is integer fen,
ratios basis points, and every rounding is half away from zero on the exact
integer quotient (contract §1), in the peers too.

What the peers leave out, and the engine does not: the input checks and
rejections of contract §2/§4 other than ``negative_claim_total`` (the
benchmark data is clean), lines.parquet, rejected.parquet and summary.json.

Sequential state as cumulative sums (per member and benefit year, claims in
``(settle_date, claim_id)`` order):

- admission ordinal = running count of inpatient claims with benefit;
- ``K`` (cumulative cost above the deductible) = running sum of earlier ``X``;
- the personal account pays every claim's ``need`` in full until it runs out, so
  ``paid_i = min(need_i, max(0, open_y − Σ_{j<i} need_j))`` (all needs ≥ 0);
- the account carries over (contract §3): ``account_balance`` stands on
  1 January of B, the earliest settled year; a member-year k opens at
  ``O_k = max(0, O_{k−1} − N_{k−1}) + C_k`` (N: the year's needs, C: the credits
  of the years since, schemes.md §9), which unrolls to window functions:
  ``O_k = P_k + max_{j≤k} Q_j`` with ``P_k = Σ_{1≤i≤k} (C_i − N_{i−1})``,
  ``Q_0 = O_0``, ``Q_j = C_j − P_j``.

Run one peer by hand:
    python benchmarks/peers.py duckdb --data DIR --out settlements.parquet
It prints one JSON line with its in-process timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

# ---------------------------------------------------------------------------
# prefecture-employee, transcribed from schemes.md §1–§3 (fen and bp)
# ---------------------------------------------------------------------------
#: 先行自付 by class (§1.4); supplementary and excluded are self_pay in this
#: scheme (no supplementary catalogue), as is an item without a catalogue row.
CLASS_RATIO_BP = {"A": 0, "B": 1500, "special": 2000}
COVERED = tuple(CLASS_RATIO_BP)
#: deductible per admission by level row and ordinal 1, 2, 3+ (§3)
DEDUCTIBLE_FEN = {3: (70000, 45000, 35000), 2: (60000, 34000, 30000), 1: (50000, 28000, 22000)}
#: fund_pool bands on the cumulative K: [lo, hi), in service bp, retired bp
POOL_BANDS = ((0, 6_000_000, 9100, 9300), (6_000_000, 9_000_000, 9200, 9400), (9_000_000, 10_000_000, 9300, 9500))
#: 大额 band: 80 % of [100 000, 200 000)
SUPP_BAND = (10_000_000, 20_000_000, 8000)
#: civil-servant subsidy: in service, retired; on the slice below 200 000
SUBSIDY_BP = (5000, 5500)
SUBSIDY_TOP = 20_000_000
BENEFIT_REFERRALS = ("referred", "emergency")
#: account credit at the end of each year (§9): retired 400 a year; else a share of
#: prior_year_wage by age on 1 January of the next year: (from age, bp)
CREDIT_RETIRED_FEN = 40_000
CREDIT_BANDS = ((0, 50), (36, 150), (46, 250))

AMOUNTS = (
    "total",
    "self_pay",
    "first_self_pay",
    "eligible",
    "deductible",
    "fund_pool",
    "fund_supplementary",
    "member_policy_share",
    "subsidy",
    "account_paid",
    "cash_paid",
)
HEADER = ("claim_id", "member_id", "provider_id", "setting", "settle_date", "benefit_year", "admission_ordinal")

CLAIM_COLS = (
    "claim_id",
    "line_no",
    "member_id",
    "provider_id",
    "setting",
    "referral",
    "admit_date",
    "discharge_date",
    "item_code",
    "quantity",
    "amount",
)


def files(data: Path) -> dict[str, Path]:
    return {n: Path(data) / f"{n}.parquet" for n in ("claims", "members", "providers", "catalogue")}


# ---------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------
def _sql_case_ratio() -> str:
    whens = " ".join(f"WHEN '{k}' THEN {v}" for k, v in CLASS_RATIO_BP.items())
    return f"CASE class {whens} ELSE 0 END"


def _sql_deductible() -> str:
    rows = []
    for row, vals in sorted(DEDUCTIBLE_FEN.items(), reverse=True):
        rows.append(
            f"WHEN {row} THEN CASE WHEN ordinal = 1 THEN {vals[0]} WHEN ordinal = 2 THEN {vals[1]} ELSE {vals[2]} END"
        )
    return "CASE level_row " + " ".join(rows) + " END"


def _sql_credit() -> str:
    """The credit at the end of year t (§9), for the member-year rows of ``yrs``."""
    age = "(t + 1 - year(birth) - CASE WHEN month(birth) = 1 AND day(birth) = 1 THEN 0 ELSE 1 END)"
    rate = (
        "CASE "
        + " ".join(f"WHEN {age} >= {a} THEN {bp}" for a, bp in reversed(CREDIT_BANDS))
        + f" ELSE {CREDIT_BANDS[0][1]} END"
    )
    return f"CASE WHEN retired THEN {CREDIT_RETIRED_FEN} WHEN wage IS NULL THEN 0 ELSE rha(wage * ({rate}), 10000) END"


def duckdb_sql(f: dict[str, Path]) -> str:
    covered = ", ".join(f"'{c}'" for c in COVERED)
    refs = ", ".join(f"'{r}'" for r in BENEFIT_REFERRALS)
    piece = "greatest(0, least(K + X, {hi}) - greatest(K, {lo}))"
    pieces = ",\n           ".join(
        piece.format(lo=lo, hi=hi) + f" AS p{i}" for i, (lo, hi, _, _) in enumerate(POOL_BANDS)
    )
    pool_num = " + ".join(
        f"p{i} * CASE WHEN retired THEN {ret} ELSE {ins} END" for i, (_, _, ins, ret) in enumerate(POOL_BANDS)
    )
    slo, shi, srate = SUPP_BAND
    psum = " + ".join(f"p{i}" for i in range(len(POOL_BANDS)))
    w = "PARTITION BY member_id, benefit_year ORDER BY settle_date, claim_id"
    class_sums = ", ".join(
        f"coalesce(CAST(sum(el) FILTER (WHERE class = '{c}') AS BIGINT), 0) AS e_{c}" for c in COVERED
    )
    class_ok = " AND ".join(f"e_{c} >= 0" for c in COVERED)
    return f"""
WITH
prov AS (
  SELECT provider_id, kind, level, designated FROM read_parquet('{f["providers"]}')
),
mem AS (
  SELECT member_id, category = 'retired' AS retired, civil_servant, fen(account_balance) AS balance,
         birth_date AS birth, fen(prior_year_wage) AS wage
  FROM read_parquet('{f["members"]}')
),
cat AS (
  SELECT item_code, class, CAST(first_self_pay_ratio * 10000 AS BIGINT) AS ratio_bp,
         CAST(max_unit_price * 10000 AS BIGINT) AS maxp, valid_from, valid_to
  FROM read_parquet('{f["catalogue"]}')
),
l0 AS (
  SELECT c.claim_id, c.member_id, c.provider_id, c.setting, c.admit_date, c.discharge_date,
         fen(c.amount) AS amt, c.quantity, k.class, k.ratio_bp, k.maxp,
         (p.designated OR coalesce(c.referral IN ({refs}), false)) AS ben,
         CASE WHEN p.kind = 'community' THEN 1 WHEN p.level >= 3 THEN 3 WHEN p.level = 2 THEN 2 ELSE 1 END AS level_row
  FROM read_parquet('{f["claims"]}') c
  JOIN prov p ON p.provider_id = c.provider_id
  LEFT JOIN cat k ON k.item_code = c.item_code AND c.admit_date >= k.valid_from
                 AND (k.valid_to IS NULL OR c.admit_date <= k.valid_to)
),
l1 AS (
  SELECT *, ben AND coalesce(class IN ({covered}), false) AS covered,
         CASE WHEN ben AND coalesce(class IN ({covered}), false) AND maxp IS NOT NULL AND amt > 0
              THEN greatest(0, amt - rha(CAST(maxp AS HUGEINT) * rha_f(quantity * 1000000), 100000000))
              ELSE 0 END AS over,
         coalesce(ratio_bp, {_sql_case_ratio()}) AS r
  FROM l0
),
l2 AS (
  SELECT *, CASE WHEN covered THEN rha((amt - over) * r, 10000) ELSE 0 END AS fsp FROM l1
),
l3 AS (
  SELECT *, CASE WHEN covered THEN over ELSE amt END AS sp,
         CASE WHEN covered THEN amt - over - fsp ELSE 0 END AS el
  FROM l2
),
cl AS (
  SELECT claim_id, any_value(member_id) AS member_id, any_value(provider_id) AS provider_id,
         any_value(setting) AS setting, any_value(admit_date) AS admit_date,
         any_value(discharge_date) AS discharge_date, bool_or(ben) AS ben, any_value(level_row) AS level_row,
         CAST(sum(amt) AS BIGINT) AS total, CAST(sum(sp) AS BIGINT) AS self_pay,
         CAST(sum(fsp) AS BIGINT) AS fsp, CAST(sum(el) AS BIGINT) AS E,
         {class_sums}
  FROM l3
  GROUP BY claim_id
  HAVING total >= 0 AND self_pay >= 0 AND fsp >= 0 AND E >= 0 AND {class_ok}
),
c1 AS (
  SELECT cl.*, m.retired, m.civil_servant, m.balance, m.birth, m.wage,
         CASE WHEN setting = 'inpatient' THEN discharge_date ELSE admit_date END AS settle_date,
         setting = 'inpatient' AND ben AS ip
  FROM cl JOIN mem m ON m.member_id = cl.member_id
),
c2 AS (
  SELECT *, CAST(year(settle_date) AS SMALLINT) AS benefit_year FROM c1
),
c3 AS (
  SELECT *, CASE WHEN ip THEN CAST(sum(CAST(ip AS INTEGER)) OVER ({w} ROWS UNBOUNDED PRECEDING) AS INTEGER) END
                AS ordinal
  FROM c2
),
c4 AS (
  SELECT *, CASE WHEN ip THEN least(E, {_sql_deductible()}) ELSE 0 END AS d FROM c3
),
c5 AS (
  SELECT *, CASE WHEN ip THEN E - d ELSE 0 END AS X FROM c4
),
c6 AS (
  SELECT *, coalesce(CAST(sum(X) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS BIGINT), 0) AS K
  FROM c5
),
c7 AS (
  SELECT *, {pieces},
         greatest(0, least(K + X, {shi}) - greatest(K, {slo})) AS ps
  FROM c6
),
c8 AS (
  SELECT *, rha({pool_num}, 10000) AS pool, rha(ps * {srate}, 10000) AS supp FROM c7
),
c9 AS (
  SELECT *, E - pool - supp AS mps,
         CASE WHEN ip AND civil_servant
              THEN least(E - pool - supp,
                         rha(greatest(0, {psum} + ps - pool - supp)
                             * CASE WHEN retired THEN {SUBSIDY_BP[1]} ELSE {SUBSIDY_BP[0]} END, 10000))
              ELSE 0 END AS subsidy
  FROM c8
),
c10 AS (
  SELECT *, CASE WHEN ip THEN mps - subsidy + fsp WHEN ben THEN E + fsp ELSE 0 END AS need FROM c9
),
my AS (
  SELECT member_id, benefit_year, any_value(retired) AS retired, any_value(birth) AS birth,
         any_value(wage) AS wage, any_value(balance) AS balance, CAST(sum(need) AS BIGINT) AS N
  FROM c10 GROUP BY member_id, benefit_year
),
my1 AS (
  SELECT *, lag(benefit_year) OVER (PARTITION BY member_id ORDER BY benefit_year) AS prev_year,
         lag(N) OVER (PARTITION BY member_id ORDER BY benefit_year) AS prev_N,
         row_number() OVER (PARTITION BY member_id ORDER BY benefit_year) - 1 AS k
  FROM my
),
yrs AS (
  SELECT member_id, benefit_year, retired, birth, wage,
         unnest(range(coalesce(prev_year, (SELECT min(benefit_year) FROM c10)), benefit_year)) AS t
  FROM my1
),
cr AS (
  SELECT member_id, benefit_year, CAST(sum({_sql_credit()}) AS BIGINT) AS C FROM yrs GROUP BY ALL
),
my2 AS (
  SELECT my1.*, coalesce(cr.C, 0) AS C FROM my1 LEFT JOIN cr USING (member_id, benefit_year)
),
my3 AS (
  SELECT *, CAST(sum(CASE WHEN k = 0 THEN 0 ELSE C - prev_N END)
                 OVER (PARTITION BY member_id ORDER BY benefit_year ROWS UNBOUNDED PRECEDING) AS BIGINT) AS P
  FROM my2
),
my4 AS (
  SELECT member_id, benefit_year,
         P + max(CASE WHEN k = 0 THEN balance + C ELSE C - P END)
             OVER (PARTITION BY member_id ORDER BY benefit_year ROWS UNBOUNDED PRECEDING) AS open_y
  FROM my3
),
c11 AS (
  SELECT c10.*, least(need, greatest(0, my4.open_y - coalesce(CAST(
           sum(need) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS BIGINT), 0))) AS account
  FROM c10 JOIN my4 USING (member_id, benefit_year)
)
SELECT claim_id, member_id, provider_id, setting, settle_date, benefit_year, ordinal AS admission_ordinal,
       yuan(total) AS total, yuan(self_pay) AS self_pay, yuan(fsp) AS first_self_pay, yuan(E) AS eligible,
       yuan(d) AS deductible, yuan(pool) AS fund_pool, yuan(supp) AS fund_supplementary,
       yuan(mps) AS member_policy_share, yuan(subsidy) AS subsidy, yuan(account) AS account_paid,
       yuan(total - pool - supp - subsidy - account) AS cash_paid
FROM c11
"""


DUCKDB_MACROS = """
CREATE OR REPLACE MACRO rha(n, d) AS
  CASE WHEN n >= 0 THEN (2 * n + d) // (2 * d) ELSE -((2 * (-n) + d) // (2 * d)) END;
CREATE OR REPLACE MACRO rha_f(x) AS
  CAST(CASE WHEN x >= 0 THEN floor(x + 0.5) ELSE ceil(x - 0.5) END AS BIGINT);
CREATE OR REPLACE MACRO fen(x) AS CAST(x * 100 AS BIGINT);
CREATE OR REPLACE MACRO yuan(f) AS CAST(CAST(f AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(18, 2));
"""


def run_duckdb(data: Path, out: Path, threads: int | None = None) -> dict:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(DUCKDB_MACROS)
    sql = duckdb_sql(files(data))
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION snappy)")
    con.close()
    return {"total": time.perf_counter() - t0}


# ---------------------------------------------------------------------------
# Polars
# ---------------------------------------------------------------------------
def run_polars(data: Path, out: Path, threads: int | None = None) -> dict:
    import os

    if threads:
        os.environ["POLARS_MAX_THREADS"] = str(int(threads))
    import polars as pl

    f = files(data)
    t0 = time.perf_counter()

    def rha(n: pl.Expr, d: int) -> pl.Expr:
        q = (2 * n.abs() + d) // (2 * d)
        return pl.when(n >= 0).then(q).otherwise(-q)

    def half_away(x: pl.Expr) -> pl.Expr:
        return pl.when(x >= 0).then((x + 0.5).floor()).otherwise((x - 0.5).ceil()).cast(pl.Int64)

    def fen(c: str) -> pl.Expr:
        return (pl.col(c) * 100).cast(pl.Int64)

    prov = pl.scan_parquet(f["providers"]).select(
        "provider_id",
        "designated",
        level_row=pl.when(pl.col("kind") == "community")
        .then(1)
        .when(pl.col("level") >= 3)
        .then(3)
        .when(pl.col("level") == 2)
        .then(2)
        .otherwise(1),
    )
    mem = pl.scan_parquet(f["members"]).select(
        "member_id",
        "civil_servant",
        retired=pl.col("category") == "retired",
        balance=fen("account_balance"),
        birth=pl.col("birth_date"),
        wage=fen("prior_year_wage"),
    )
    cat = pl.scan_parquet(f["catalogue"]).select(
        "item_code",
        "class",
        "valid_from",
        "valid_to",
        ratio_bp=(pl.col("first_self_pay_ratio") * 10000).cast(pl.Int64),
        maxp=(pl.col("max_unit_price") * 10000).cast(pl.Int64),
    )
    lines = pl.scan_parquet(f["claims"]).select(list(CLAIM_COLS)).with_row_index("li")
    # the catalogue row valid on admit_date: inner join + validity, then back onto every line
    hit = (
        lines.select("li", "item_code", "admit_date")
        .join(cat, on="item_code", how="inner")
        .filter(
            (pl.col("admit_date") >= pl.col("valid_from"))
            & (pl.col("valid_to").is_null() | (pl.col("admit_date") <= pl.col("valid_to")))
        )
        .select("li", "class", "ratio_bp", "maxp")
    )
    ratio_of_class = pl.col("class").replace_strict(CLASS_RATIO_BP, default=0, return_dtype=pl.Int64)
    lines = (
        lines.join(hit, on="li", how="left")
        .join(prov, on="provider_id", how="inner")
        .with_columns(
            amt=fen("amount"), ben=pl.col("designated") | pl.col("referral").is_in(BENEFIT_REFERRALS).fill_null(False)
        )
        .with_columns(covered=pl.col("ben") & pl.col("class").is_in(COVERED).fill_null(False))
        .with_columns(
            over=pl.when(pl.col("covered") & pl.col("maxp").is_not_null() & (pl.col("amt") > 0))
            .then(
                pl.max_horizontal(
                    0, pl.col("amt") - rha(pl.col("maxp") * half_away(pl.col("quantity") * 1e6), 100_000_000)
                )
            )
            .otherwise(0),
            r=pl.coalesce(pl.col("ratio_bp"), ratio_of_class),
        )
        .with_columns(
            fsp=pl.when(pl.col("covered")).then(rha((pl.col("amt") - pl.col("over")) * pl.col("r"), 10000)).otherwise(0)
        )
        .with_columns(
            sp=pl.when(pl.col("covered")).then(pl.col("over")).otherwise(pl.col("amt")),
            el=pl.when(pl.col("covered")).then(pl.col("amt") - pl.col("over") - pl.col("fsp")).otherwise(0),
        )
    )
    cls_el = [pl.col("el").filter(pl.col("class") == c).sum().alias(f"e_{c}") for c in COVERED]
    claims = (
        lines.group_by("claim_id")
        .agg(
            pl.col("member_id", "provider_id", "setting", "admit_date", "discharge_date", "level_row").first(),
            pl.col("ben").any(),
            *cls_el,
            total=pl.col("amt").sum(),
            self_pay=pl.col("sp").sum(),
            fsp=pl.col("fsp").sum(),
            E=pl.col("el").sum(),
        )
        .filter(
            (pl.col("total") >= 0)
            & (pl.col("self_pay") >= 0)
            & (pl.col("fsp") >= 0)
            & (pl.col("E") >= 0)
            & pl.all_horizontal([pl.col(f"e_{c}") >= 0 for c in COVERED])
        )
        .join(mem, on="member_id", how="inner")
        .with_columns(
            settle_date=pl.when(pl.col("setting") == "inpatient")
            .then(pl.col("discharge_date"))
            .otherwise(pl.col("admit_date")),
            ip=(pl.col("setting") == "inpatient") & pl.col("ben"),
        )
        .with_columns(benefit_year=pl.col("settle_date").dt.year().cast(pl.Int16))
        .sort("member_id", "settle_date", "claim_id")
    )
    grp = ["member_id", "benefit_year"]
    ded = pl.lit(0, pl.Int64)
    for row, vals in DEDUCTIBLE_FEN.items():
        by_ord = (
            pl.when(pl.col("ordinal") == 1).then(vals[0]).when(pl.col("ordinal") == 2).then(vals[1]).otherwise(vals[2])
        )
        ded = pl.when(pl.col("level_row") == row).then(by_ord).otherwise(ded)
    k_hi = pl.col("K") + pl.col("X")

    def piece(lo: int, hi: int) -> pl.Expr:
        return pl.max_horizontal(0, pl.min_horizontal(k_hi, hi) - pl.max_horizontal(pl.col("K"), lo))

    pool_num = sum(
        piece(lo, hi) * pl.when(pl.col("retired")).then(ret).otherwise(ins) for lo, hi, ins, ret in POOL_BANDS
    )
    below_top = sum(piece(lo, hi) for lo, hi, _, _ in POOL_BANDS) + piece(SUPP_BAND[0], SUPP_BAND[1])
    settled = (
        claims.with_columns(ordinal=pl.when(pl.col("ip")).then(pl.col("ip").cast(pl.Int32).cum_sum().over(grp)))
        .with_columns(d=pl.when(pl.col("ip")).then(pl.min_horizontal(pl.col("E"), ded)).otherwise(0))
        .with_columns(X=pl.when(pl.col("ip")).then(pl.col("E") - pl.col("d")).otherwise(0))
        .with_columns(K=pl.col("X").cum_sum().over(grp) - pl.col("X"))
        .with_columns(
            pool=rha(pool_num, 10000),
            supp=rha(piece(SUPP_BAND[0], SUPP_BAND[1]) * SUPP_BAND[2], 10000),
            below=below_top,
        )
        .with_columns(mps=pl.col("E") - pl.col("pool") - pl.col("supp"))
        .with_columns(
            subsidy=pl.when(pl.col("ip") & pl.col("civil_servant"))
            .then(
                pl.min_horizontal(
                    pl.col("mps"),
                    rha(
                        pl.max_horizontal(0, pl.col("below") - pl.col("pool") - pl.col("supp"))
                        * pl.when(pl.col("retired")).then(SUBSIDY_BP[1]).otherwise(SUBSIDY_BP[0]),
                        10000,
                    ),
                )
            )
            .otherwise(0)
        )
        .with_columns(
            need=pl.when(pl.col("ip"))
            .then(pl.col("mps") - pl.col("subsidy") + pl.col("fsp"))
            .when(pl.col("ben"))
            .then(pl.col("E") + pl.col("fsp"))
            .otherwise(0)
        )
    )
    # the account carries over: each member-year's opening (see the module docstring)
    base = settled.select(pl.col("benefit_year").min().cast(pl.Int64)).collect().item()
    age = (
        pl.col("t")
        + 1
        - pl.col("birth").dt.year()
        - pl.when((pl.col("birth").dt.month() == 1) & (pl.col("birth").dt.day() == 1)).then(0).otherwise(1)
    )
    rate = pl.lit(CREDIT_BANDS[0][1])
    for a, bp in CREDIT_BANDS[1:]:
        rate = pl.when(age >= a).then(bp).otherwise(rate)
    credit = (
        pl.when(pl.col("retired"))
        .then(CREDIT_RETIRED_FEN)
        .when(pl.col("wage").is_null())
        .then(0)
        .otherwise(rha(pl.col("wage") * rate, 10000))
    )
    my = (
        settled.group_by(grp)
        .agg(pl.col("retired", "birth", "wage", "balance").first(), N=pl.col("need").sum())
        .sort(grp)
        .with_columns(
            prev_year=pl.col("benefit_year").shift(1).over("member_id"),
            prev_N=pl.col("N").shift(1).over("member_id"),
            k=pl.int_range(pl.len()).over("member_id"),
        )
    )
    cr = (
        my.with_columns(
            t=pl.int_ranges(pl.col("prev_year").fill_null(base).cast(pl.Int64), pl.col("benefit_year").cast(pl.Int64))
        )
        .explode("t")
        .filter(pl.col("t").is_not_null())
        .group_by(grp)
        .agg(C=credit.sum())
    )
    my = (
        my.join(cr, on=grp, how="left")
        .with_columns(pl.col("C").fill_null(0))
        .sort(grp)
        .with_columns(
            P=pl.when(pl.col("k") == 0).then(0).otherwise(pl.col("C") - pl.col("prev_N")).cum_sum().over("member_id")
        )
        .with_columns(
            Q=pl.when(pl.col("k") == 0).then(pl.col("balance") + pl.col("C")).otherwise(pl.col("C") - pl.col("P"))
        )
        .with_columns(open_y=pl.col("P") + pl.col("Q").cum_max().over("member_id"))
        .select(*grp, "open_y")
    )
    settled = (
        settled.join(my, on=grp, how="left")
        .sort("member_id", "settle_date", "claim_id")
        .with_columns(prior=pl.col("need").cum_sum().over(grp) - pl.col("need"))
        .with_columns(
            account=pl.min_horizontal(pl.col("need"), pl.max_horizontal(0, pl.col("open_y") - pl.col("prior")))
        )
    )

    def yuan(e: pl.Expr) -> pl.Expr:
        return (e.cast(pl.Decimal(18, 0)) * pl.lit(Decimal("0.01"), dtype=pl.Decimal(3, 2))).cast(pl.Decimal(18, 2))

    result = settled.select(
        "claim_id",
        "member_id",
        "provider_id",
        "setting",
        "settle_date",
        "benefit_year",
        pl.col("ordinal").alias("admission_ordinal"),
        total=yuan(pl.col("total")),
        self_pay=yuan(pl.col("self_pay")),
        first_self_pay=yuan(pl.col("fsp")),
        eligible=yuan(pl.col("E")),
        deductible=yuan(pl.col("d")),
        fund_pool=yuan(pl.col("pool")),
        fund_supplementary=yuan(pl.col("supp")),
        member_policy_share=yuan(pl.col("mps")),
        subsidy=yuan(pl.col("subsidy")),
        account_paid=yuan(pl.col("account")),
        cash_paid=yuan(pl.col("total") - pl.col("pool") - pl.col("supp") - pl.col("subsidy") - pl.col("account")),
    )
    result.sink_parquet(out, compression="snappy")
    return {"total": time.perf_counter() - t0}


# ---------------------------------------------------------------------------
# plain Python
# ---------------------------------------------------------------------------
def _rha(n: int, d: int) -> int:
    q = (2 * abs(n) + d) // (2 * d)
    return q if n >= 0 else -q


def _fen(x: Decimal) -> int:
    return int(x.scaleb(2))


def _micro(q: float) -> int:
    """A float quantity in millionths: its shortest decimal, rounded half away from zero."""
    return int(Decimal(repr(q)).scaleb(6).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def settle_python(claims: dict, members: dict, providers: dict, catalogue: dict) -> dict[str, list]:
    """The whole scheme per line and per claim, in plain Python (ints in fen)."""
    # catalogue: item -> [(valid_from, valid_to or None, class, ratio_bp or None, max price in 0.0001 yuan or None)]
    cat: dict[str, list] = {}
    for code, cls, ratio, maxp, vf, vt in zip(
        catalogue["item_code"],
        catalogue["class"],
        catalogue["first_self_pay_ratio"],
        catalogue["max_unit_price"],
        catalogue["valid_from"],
        catalogue["valid_to"],
    ):
        cat.setdefault(code, []).append(
            (
                vf,
                vt,
                cls,
                None if ratio is None else int(ratio.scaleb(4)),
                None if maxp is None else int(maxp.scaleb(4)),
            )
        )
    prov = {
        pid: (desig, 1 if kind == "community" else 3 if level >= 3 else 2 if level == 2 else 1)
        for pid, kind, level, desig in zip(
            providers["provider_id"], providers["kind"], providers["level"], providers["designated"]
        )
    }
    mem = {
        mid: (cat_ == "retired", civil, _fen(bal), birth, None if wage is None else _fen(wage))
        for mid, cat_, civil, bal, birth, wage in zip(
            members["member_id"],
            members["category"],
            members["civil_servant"],
            members["account_balance"],
            members["birth_date"],
            members["prior_year_wage"],
        )
    }

    def credit(retired: bool, birth, wage: int | None, year: int) -> int:
        """Credited at the end of ``year`` (§9): by age in whole years on 1 January of year + 1."""
        if retired:
            return CREDIT_RETIRED_FEN
        if wage is None:
            return 0
        age = year + 1 - birth.year - (0 if (birth.month, birth.day) == (1, 1) else 1)
        rate = [bp for a, bp in CREDIT_BANDS if age >= a or a == 0][-1]
        return _rha(wage * rate, 10000)

    # 1. lines -> claims
    acc: dict[str, list] = {}
    for cid, mid, pid, setting, ref, admit, dis, item, qty, amount in zip(
        claims["claim_id"],
        claims["member_id"],
        claims["provider_id"],
        claims["setting"],
        claims["referral"],
        claims["admit_date"],
        claims["discharge_date"],
        claims["item_code"],
        claims["quantity"],
        claims["amount"],
    ):
        c = acc.get(cid)
        if c is None:
            desig, level_row = prov[pid]
            ben = desig or ref in BENEFIT_REFERRALS
            # header, ben, level_row, total, self_pay, fsp, E, eligible by class
            c = acc[cid] = [mid, pid, setting, admit, dis, ben, level_row, 0, 0, 0, 0, {}]
        amt = _fen(amount)
        c[7] += amt
        row = None
        for vf, vt, cls, ratio, maxp in cat.get(item, ()):
            if vf <= admit and (vt is None or admit <= vt):
                row = (cls, ratio, maxp)
                break
        if not c[5] or row is None or row[0] not in CLASS_RATIO_BP:
            c[8] += amt
            continue
        cls, ratio, maxp = row
        over = 0
        if maxp is not None and amt > 0:
            over = max(0, amt - _rha(maxp * _micro(qty), 100_000_000))  # price in 0.0001 yuan
        allowed = amt - over
        r = ratio if ratio is not None else CLASS_RATIO_BP[cls]
        fsp = _rha(allowed * r, 10000)
        c[8] += over
        c[9] += fsp
        c[10] += allowed - fsp
        c[11][cls] = c[11].get(cls, 0) + allowed - fsp

    # 2. claims per member, in (settle_date, claim_id) order
    by_member: dict[str, list] = {}
    for cid, c in acc.items():
        if c[7] < 0 or c[8] < 0 or c[9] < 0 or c[10] < 0 or any(v < 0 for v in c[11].values()):
            continue  # negative_claim_total
        settle = c[4] if c[2] == "inpatient" else c[3]
        by_member.setdefault(c[0], []).append((settle, cid.encode(), cid, c))
    out: dict[str, list] = {k: [] for k in HEADER + AMOUNTS}
    first_year = min((t[0].year for rows in by_member.values() for t in rows), default=0)
    for mid, rows in by_member.items():
        retired, civil, balance, birth, wage = mem[mid]
        rows.sort(key=lambda t: (t[0], t[1]))
        year, bal, bal_year = None, balance, first_year  # the account carries over from 1 January of B
        for settle, _, cid, c in rows:
            if settle.year != year:
                year, n_adm, K = settle.year, 0, 0
                while bal_year < year:
                    bal += credit(retired, birth, wage, bal_year)
                    bal_year += 1
            _, pid, setting, _, _, ben, level_row, total, self_pay, fsp, E, _ = c
            ip = setting == "inpatient" and ben
            d = pool = supp = subsidy = 0
            ordinal = None
            if ip:
                n_adm += 1
                ordinal = n_adm
                d = min(E, DEDUCTIBLE_FEN[level_row][min(n_adm, 3) - 1])
                X = E - d
                pool_num = below = 0
                for lo, hi, ins, ret in POOL_BANDS:
                    p = max(0, min(K + X, hi) - max(K, lo))
                    pool_num += p * (ret if retired else ins)
                    below += p
                ps = max(0, min(K + X, SUPP_BAND[1]) - max(K, SUPP_BAND[0]))
                below += ps
                pool = _rha(pool_num, 10000)
                supp = _rha(ps * SUPP_BAND[2], 10000)
                K += X
                if civil:
                    base = max(0, below - pool - supp)
                    subsidy = min(E - pool - supp, _rha(base * SUBSIDY_BP[1 if retired else 0], 10000))
                need = E - pool - supp - subsidy + fsp
            elif ben:
                need = E + fsp
            else:
                need = 0
            account = min(bal, need)
            bal -= account
            for k, v in (
                ("claim_id", cid),
                ("member_id", mid),
                ("provider_id", pid),
                ("setting", setting),
                ("settle_date", settle),
                ("benefit_year", year),
                ("admission_ordinal", ordinal),
                ("total", total),
                ("self_pay", self_pay),
                ("first_self_pay", fsp),
                ("eligible", E),
                ("deductible", d),
                ("fund_pool", pool),
                ("fund_supplementary", supp),
                ("member_policy_share", E - pool - supp),
                ("subsidy", subsidy),
                ("account_paid", account),
                ("cash_paid", total - pool - supp - subsidy - account),
            ):
                out[k].append(v)
    return out


def run_python(data: Path, out: Path, threads: int | None = None) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = files(data)
    t0 = time.perf_counter()
    claims = pq.read_table(f["claims"], columns=list(CLAIM_COLS)).to_pydict()
    members = pq.read_table(
        f["members"],
        columns=["member_id", "category", "civil_servant", "account_balance", "birth_date", "prior_year_wage"],
    ).to_pydict()
    providers = pq.read_table(f["providers"], columns=["provider_id", "kind", "level", "designated"]).to_pydict()
    catalogue = pq.read_table(
        f["catalogue"],
        columns=["item_code", "class", "first_self_pay_ratio", "max_unit_price", "valid_from", "valid_to"],
    ).to_pydict()
    t1 = time.perf_counter()
    res = settle_python(claims, members, providers, catalogue)
    t2 = time.perf_counter()
    cols = {
        "claim_id": pa.array(res["claim_id"], pa.string()),
        "member_id": pa.array(res["member_id"], pa.string()),
        "provider_id": pa.array(res["provider_id"], pa.string()),
        "setting": pa.array(res["setting"], pa.string()),
        "settle_date": pa.array(res["settle_date"], pa.date32()),
        "benefit_year": pa.array(res["benefit_year"], pa.int16()),
        "admission_ordinal": pa.array(res["admission_ordinal"], pa.int32()),
    }
    for k in AMOUNTS:
        cols[k] = pa.array([Decimal(v).scaleb(-2) for v in res[k]], pa.decimal128(18, 2))
    pq.write_table(pa.table(cols), out)
    t3 = time.perf_counter()
    return {"total": t3 - t0, "read": t1 - t0, "compute": t2 - t1, "write": t3 - t2, "lines": len(claims["claim_id"])}


PEERS = {"duckdb": run_duckdb, "polars": run_polars, "python": run_python}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("peer", choices=sorted(PEERS))
    ap.add_argument("--data", type=Path, required=True, help="folder with claims/members/providers/catalogue.parquet")
    ap.add_argument("--out", type=Path, required=True, help="settlements .parquet to write")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    t = PEERS[a.peer](a.data, a.out, a.threads)
    print(json.dumps(t))


if __name__ == "__main__":
    sys.exit(main())
