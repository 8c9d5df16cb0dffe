"""Prices exact to 0.0001 yuan (contract §1, issue 7 §1), and the input checks on prices.

``max_unit_price`` and ``unit_price`` are read exactly to 0.0001 yuan; the
ceiling ``round(max_unit_price × quantity)`` is taken on the exact product and
rounded once, half away from zero. A price with more than four decimals that
are not zero, and a negative ``max_unit_price``, are input errors.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import Case
from test_bad_input import assert_input_error, cli, run_args, save, set_column, write
from test_reference import compare, load_case

from adjudicate import policy as P
from adjudicate.generate import generate_tables

D = Decimal


def ceiling_case(max_price: str, amount: str, qty: float) -> Case:
    return (
        Case()
        .member()
        .provider()
        .item("D1", "A", max_price=max_price)
        .claim("C1", [("D1", amount, qty), ("A1", "100")])
    )


def test_four_decimal_ceiling_end_to_end(tmp_path, run_case):
    # 2.4185 × 6 = 14.511 → 14.51 (a price rounded to 2.42 first would give 14.52)
    case = ceiling_case("2.4185", "20.00", 6)
    got = run_case(case, "city-employee")
    line = next(x for x in got.lines if x["claim_id"] == "C1" and x["line_no"] == 1)
    assert line["self_pay"] == D("5.49")
    assert got["C1"]["self_pay"] == D("5.49")
    compare(load_case(case, tmp_path / "ref"), P.load("city-employee"))
    # explain shows the exact price and the ceiling
    paths = case.write(tmp_path / "x")
    args = [
        "--claims",
        str(paths["claims"]),
        "--members",
        str(paths["members"]),
        "--providers",
        str(paths["providers"]),
        "--catalogue",
        str(paths["catalogue"]),
    ]
    r = cli("explain", "C1", *args, "--policy", "city-employee", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    first = rep["lines"][0]
    assert first["catalogue"]["max_unit_price"] == "2.4185" and first["ceiling"] == "14.51"
    assert rep["kernel_agrees"] is True
    r = cli("explain", "C1", *args, "--policy", "city-employee")
    assert "2.4185" in r.output and "14.51" in r.output


@pytest.mark.parametrize(
    "max_price, qty, amount, self_pay",
    [
        ("2.4175", 2, "9.00", "4.16"),  # 4.835 → 4.84, half away from zero
        ("2.4165", 2, "9.00", "4.17"),  # 4.833 → 4.83
        ("0.0025", 1, "1.00", "1.00"),  # 0.0025 → 0.00 (a quarter fen rounds down)
        ("0.0050", 1, "1.00", "0.99"),  # 0.005 → 0.01: a half fen rounds up
        ("1.0025", -2, "5.00", "7.01"),  # −2.005 → −2.01: a negative half fen rounds away from zero too
    ],
)
def test_half_fen_ties_both_signs(tmp_path, run_case, max_price, qty, amount, self_pay):
    case = ceiling_case(max_price, amount, qty)
    got = run_case(case, "prefecture-employee")
    line = next(x for x in got.lines if x["claim_id"] == "C1" and x["line_no"] == 1)
    assert line["self_pay"] == D(self_pay)
    compare(load_case(case, tmp_path / "ref"), P.load("prefecture-employee"))


def test_generator_emits_four_decimal_prices_and_half_fen_ties():
    t = generate_tables(300, 2024, 3)
    cat = t["catalogue"].column("max_unit_price").drop_null().to_pylist()
    units = [int(p * 10000) for p in cat]
    assert any(u % 100 for u in units)  # finer than the fen
    assert sum(u % 100 == 50 for u in units) > len(units) // 10  # half-fen ceilings
    prices = [int(p * 10000) for p in t["claims"].column("unit_price").to_pylist()]
    assert any(u % 100 for u in prices)
    # some billed line meets a ceiling exactly on a half fen
    index = {}
    for r in t["catalogue"].to_pylist():
        index.setdefault(r["item_code"], []).append(r)
    ties = 0
    for r in t["claims"].select(["item_code", "admit_date", "quantity", "amount"]).to_pylist():
        for c in index.get(r["item_code"], ()):
            if (
                c["max_unit_price"] is not None
                and c["valid_from"] <= r["admit_date"]
                and (c["valid_to"] is None or r["admit_date"] <= c["valid_to"])
            ):
                exact = c["max_unit_price"] * D(repr(r["quantity"]))
                ties += (exact * 100) % 1 == D("0.5") and r["amount"] > exact
    assert ties > 0


# ---- input errors -------------------------------------------------------------


def test_five_decimals_is_an_input_error_decimal(tmp_path):
    case = ceiling_case("2.4185", "20.00", 6)
    paths = write(tmp_path / "in", case)
    cat = pq.read_table(paths["catalogue"])
    prices = [None if v is None else v for v in cat.column("max_unit_price").to_pylist()]
    prices[-1] = D("2.41855")
    save(set_column(cat, "max_unit_price", pa.array(prices, pa.decimal128(14, 5))), paths["catalogue"])
    out = tmp_path / "out"
    r = cli(*run_args(paths, out))
    assert_input_error(r, out, "catalogue.parquet", "max_unit_price", len(prices) - 1, "2.41855")
    assert "four decimals" in r.output and "0.0001 yuan" in r.output
    # trailing zeros are not decimals that count
    prices[-1] = D("2.41850")
    save(set_column(cat, "max_unit_price", pa.array(prices, pa.decimal128(14, 5))), paths["catalogue"])
    assert cli(*run_args(paths, out)).exit_code == 0


def test_five_decimals_is_an_input_error_float(tmp_path):
    paths = write(tmp_path / "in", ceiling_case("2.4185", "20.00", 6))
    cl = pq.read_table(paths["claims"])
    prices = [float(v) for v in cl.column("unit_price").to_pylist()]
    save(set_column(cl, "unit_price", pa.array(prices, pa.float64())), paths["claims"])
    out = tmp_path / "out"
    assert cli(*run_args(paths, out)).exit_code == 0  # floats whose shortest decimal has ≤ 4 decimals
    prices[1] = 2.41851
    save(set_column(cl, "unit_price", pa.array(prices, pa.float64())), paths["claims"])
    r = cli(*run_args(paths, tmp_path / "out2"))
    assert_input_error(r, tmp_path / "out2", "claims.parquet", "unit_price", 1, "2.41851")


def test_five_decimals_is_an_input_error_csv(tmp_path):
    paths = write(tmp_path / "in", ceiling_case("2.4185", "20.00", 6), fmt="csv")
    text = paths["catalogue"].read_text(encoding="utf-8")
    assert "2.4185" in text
    paths["catalogue"].write_text(text.replace("2.4185", "2.41855"), encoding="utf-8")
    out = tmp_path / "out"
    r = cli(*run_args(paths, out))
    row = next(i for i, ln in enumerate(text.splitlines()[1:]) if "2.4185" in ln)
    assert_input_error(r, out, "catalogue.csv", "max_unit_price", row, "2.41855")
    assert f"line {row + 2}" in r.output


def test_negative_ceiling_is_an_input_error(tmp_path):
    paths = write(tmp_path / "in", ceiling_case("2.4185", "20.00", 6))
    cat = pq.read_table(paths["catalogue"])
    prices = cat.column("max_unit_price").to_pylist()
    prices[-1] = D("-1.5")
    save(set_column(cat, "max_unit_price", pa.array(prices, pa.decimal128(18, 4))), paths["catalogue"])
    out = tmp_path / "out"
    r = cli(*run_args(paths, out))
    assert_input_error(r, out, "catalogue.parquet", "max_unit_price", len(prices) - 1, "negative")
    r = cli("validate", *map(str, paths.values()))
    assert r.exit_code == 2 and "max_unit_price" in r.output and "negative" in r.output


def test_negative_unit_price_is_allowed_on_a_refund_line(tmp_path, run_case):
    # the engine reads `amount`; a refund line may carry its sign on the price (contract §2: amount may be
    # negative), so a negative unit_price is not an error
    case = Case().member().provider().claim("C1", [("A1", "100"), ("A1", "-20", 1)])
    case.claims[1]["unit_price"] = D("-20")
    got = run_case(case)
    assert got["C1"]["total"] == D("80.00")


def test_negative_account_balance_is_an_input_error(tmp_path):
    case = Case().member().member("M2", balance="-0.01").provider().claim("C1", [("A1", "100")])
    paths = write(tmp_path / "in", case)
    out = tmp_path / "out"
    r = cli(*run_args(paths, out))
    assert_input_error(r, out, "members.parquet", "account_balance", 1, "negative")


def test_negative_prior_year_wage_and_quota_are_input_errors(tmp_path):
    # found by qa: a negative wage gave a negative account credit (schemes.md §9), so a negative opening
    # carried into the next year; a negative quota a negative 定额 (§7). Both are input errors, as
    # a negative account_balance is.
    case = Case().member().member("M2", wage="-60000").provider().claim("C1", [("A1", "100")])
    paths = write(tmp_path / "in", case)
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "members.parquet", "prior_year_wage", 1, "negative")
    case = Case().member().provider().provider("H2", level=2, quota="-1").claim("C1", [("A1", "100")])
    paths = write(tmp_path / "in2", case)
    assert_input_error(cli(*run_args(paths, out)), out, "providers.parquet", "quota_per_admission", 1, "negative")
