"""Bad input (contract §2, §5): exit status 2, one short paragraph naming file, column and row, no
traceback, and nothing written. Also: the readers never fail with anything but InputError."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjudicate import policy as P
from adjudicate.cli import main
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.errors import InputError
from adjudicate.inputs import load
from adjudicate.outputs import write_all
from adjudicate.schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS

D = Decimal
TABLE_NAMES = ("claims", "members", "providers", "catalogue")


# ---- helpers ----------------------------------------------------------------


def small_case() -> Case:
    """Claims rows: 0 = C1 line 1, 1 = C1 line 2, 2 = C2 line 1 (outpatient)."""
    c = Case().member().member("M2", category="retired").provider().provider("P0", kind="pharmacy", level=0)
    c.claim("C1", [("A1", "100.00"), ("B1", "50.50")])
    c.claim("C2", [("A1", "10")], member_id="M2", setting="outpatient", discharge=None, provider_id="P0")
    return c


def write(folder: Path, case: Case | None = None, fmt: str = "parquet") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    tables = (case or small_case()).tables()
    paths = {}
    for name, t in tables.items():
        paths[name] = save(t, folder / f"{name}.{ {'parquet': 'parquet', 'ipc': 'arrow', 'csv': 'csv'}[fmt] }")
    return paths


def save(t: pa.Table, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".parquet":
        pq.write_table(t, path)
    elif suffix == ".arrow":
        feather.write_feather(t, path)
    elif suffix == ".csv":
        pacsv.write_csv(t, path)
    else:
        raise ValueError(suffix)
    return path


def set_column(t: pa.Table, name: str, arr) -> pa.Table:
    arr = arr if isinstance(arr, (pa.Array, pa.ChunkedArray)) else pa.array(arr)
    if name in t.column_names:
        return t.set_column(t.column_names.index(name), name, arr)
    return t.append_column(name, arr)


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def run_args(paths: dict[str, Path], out: Path, policy: str = "prefecture-employee") -> list[str]:
    return [
        "run",
        "--claims",
        str(paths["claims"]),
        "--members",
        str(paths["members"]),
        "--providers",
        str(paths["providers"]),
        "--catalogue",
        str(paths["catalogue"]),
        "--policy",
        policy,
        "--out",
        str(out),
        "--quiet",
    ]


def assert_input_error(
    result,
    out: Path | None,
    file: str | None = None,
    column: str | None = None,
    row: int | None = None,
    says: str | None = None,
) -> str:
    """Exit 2, a single short paragraph naming what it should, no traceback, nothing written."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    message = text.strip()
    assert message.startswith("error:"), message
    assert "\n\n" not in message and len(message) < 700, message
    if file is not None:
        assert file in message, message
    if column is not None:
        assert f"column '{column}'" in message, message
    if row is not None:
        assert f"row {row}" in message, message
    if says is not None:
        assert says in message, message
    if out is not None:
        assert not out.exists(), "output written despite an input error"
        assert not list(out.parent.glob(f".{out.name}.tmp-*")), "temporary output left behind"
    return message


def corrupt(paths, table: str, fn) -> dict[str, Path]:
    path = paths[table]
    t = pq.read_table(path)
    save(fn(t), path)
    return paths


# ---- typed files (Parquet): one defect each --------------------------------------

DATE = pa.date32()

CASES = [
    # id, table, mutation, column, row, words in the message
    (
        "missing column",
        "claims",
        lambda t: t.drop_columns(["amount"]),
        None,
        None,
        "missing required column(s) 'amount'",
    ),
    (
        "missing members column",
        "members",
        lambda t: t.drop_columns(["category", "birth_date"]),
        None,
        None,
        "'birth_date', 'category'",
    ),
    ("missing providers column", "providers", lambda t: t.drop_columns(["kind"]), None, None, "'kind'"),
    ("missing catalogue column", "catalogue", lambda t: t.drop_columns(["valid_from"]), None, None, "'valid_from'"),
    (
        "wrong case column",
        "claims",
        lambda t: t.rename_columns([c if c != "amount" else "Amount" for c in t.column_names]),
        None,
        None,
        "'Amount' for 'amount'",
    ),
    (
        "amount as string",
        "claims",
        lambda t: set_column(t, "amount", pa.array(["1.00", "2", "x"])),
        "amount",
        None,
        "has type string; expected an amount",
    ),
    (
        "amount as bool",
        "claims",
        lambda t: set_column(t, "amount", pa.array([True, False, True])),
        "amount",
        None,
        "has type bool",
    ),
    (
        "line_no with fraction",
        "claims",
        lambda t: set_column(t, "line_no", pa.array([1.0, 2.5, 1.0])),
        "line_no",
        1,
        "2.5 is not a whole number",
    ),
    (
        "line_no NaN",
        "claims",
        lambda t: set_column(t, "line_no", pa.array([1.0, 2.0, float("nan")])),
        "line_no",
        2,
        "not a whole number",
    ),
    (
        "line_no beyond int32",
        "claims",
        lambda t: set_column(t, "line_no", pa.array([1, 2**40, 1])),
        "line_no",
        1,
        "outside -2147483648..2147483647",
    ),
    (
        "line_no beyond int64",
        "claims",
        lambda t: set_column(t, "line_no", pa.array([1, 2**64 - 1, 1], pa.uint64())),
        "line_no",
        1,
        "outside",
    ),
    (
        "line_no decimal fraction",
        "claims",
        lambda t: set_column(t, "line_no", pa.array([D("1.0"), D("2.5"), D("1.0")], pa.decimal128(4, 1))),
        "line_no",
        1,
        "whole number",
    ),
    (
        "admit_date garbage",
        "claims",
        lambda t: set_column(t, "admit_date", pa.array(["2024-03-01", "2024-03-01", "soon"])),
        "admit_date",
        2,
        "'soon' is not a date",
    ),
    (
        "admit_date as int",
        "claims",
        lambda t: set_column(t, "admit_date", pa.array([1, 2, 3])),
        "admit_date",
        None,
        "expected a date",
    ),
    (
        "admit_date year 1",
        "claims",
        lambda t: set_column(t, "admit_date", pa.array([19783, 19783, -719162], pa.int32()).cast(DATE)),
        "admit_date",
        2,
        "out of range",
    ),
    (
        "discharge_date far future",
        "claims",
        lambda t: set_column(t, "discharge_date", pa.array([2**31 - 1, 19792, None], pa.int32()).cast(DATE)),
        "discharge_date",
        0,
        "out of range",
    ),
    (
        "timestamp not midnight",
        "claims",
        lambda t: set_column(t, "admit_date", pa.array([19783 * 86400 * 10**6 + 5] * 3, pa.timestamp("us"))),
        "admit_date",
        0,
        "not a date",
    ),
    (
        "birth_date garbage",
        "members",
        lambda t: set_column(t, "birth_date", pa.array(["1970-01-01", "1970-02-30"])),
        "birth_date",
        1,
        "'1970-02-30' is not a date",
    ),
    (
        "enrolled_since too early",
        "members",
        lambda t: set_column(t, "enrolled_since", pa.array([0, -30000], pa.int32()).cast(DATE)),
        "enrolled_since",
        1,
        "out of range",
    ),
    (
        "unknown setting",
        "claims",
        lambda t: set_column(t, "setting", pa.array(["inpatient", "inpatient", "Outpatient"])),
        "setting",
        2,
        "unknown value 'Outpatient'",
    ),
    (
        "unknown referral",
        "claims",
        lambda t: set_column(t, "referral", pa.array([None, "self", None], pa.string())),
        "referral",
        1,
        "unknown value 'self'",
    ),
    (
        "unknown category",
        "members",
        lambda t: set_column(t, "category", pa.array(["in_service", "pensioner"])),
        "category",
        1,
        "expected one of in_service, retired",
    ),
    (
        "unknown kind",
        "providers",
        lambda t: set_column(t, "kind", pa.array(["clinic", "pharmacy"])),
        "kind",
        0,
        "unknown value 'clinic'",
    ),
    (
        "unknown class",
        "catalogue",
        lambda t: set_column(t, "class", pa.array(["A", "B", "C", "supplementary", "excluded"])),
        "class",
        2,
        "unknown value 'C'",
    ),
    (
        "enum as integer",
        "claims",
        lambda t: set_column(t, "setting", pa.array([1, 1, 2])),
        "setting",
        None,
        "has type int64",
    ),
    (
        "null member category",
        "members",
        lambda t: set_column(t, "category", pa.array(["retired", None])),
        "category",
        1,
        "is null but the column is required",
    ),
    (
        "null member balance",
        "members",
        lambda t: set_column(t, "account_balance", pa.array([None, 1.0])),
        "account_balance",
        0,
        "is null",
    ),
    (
        "null provider flag",
        "providers",
        lambda t: set_column(t, "designated", pa.array([True, None])),
        "designated",
        1,
        "is null",
    ),
    (
        "null provider id",
        "providers",
        lambda t: set_column(t, "provider_id", pa.array([None, "P0"], pa.string())),
        "provider_id",
        0,
        "is null",
    ),
    (
        "null catalogue class",
        "catalogue",
        lambda t: set_column(t, "class", pa.array(["A", None, "special", "supplementary", "excluded"])),
        "class",
        1,
        "is null",
    ),
    (
        "null catalogue valid_from",
        "catalogue",
        lambda t: set_column(t, "valid_from", pa.array([0, 0, 0, 0, None], pa.int32()).cast(DATE)),
        "valid_from",
        4,
        "is null",
    ),
    (
        "bool as text",
        "members",
        lambda t: set_column(t, "civil_servant", pa.array(["no", "perhaps"])),
        "civil_servant",
        1,
        "'perhaps' is not true or false",
    ),
    ("bool as 2", "providers", lambda t: set_column(t, "local", pa.array([1, 2])), "local", 1, "not true or false"),
    (
        "level out of range",
        "providers",
        lambda t: set_column(t, "level", pa.array([3, 300], pa.int16())),
        "level",
        1,
        "outside 0..127",
    ),
    (
        "amount too large (decimal)",
        "claims",
        lambda t: set_column(t, "amount", pa.array([D(1), D(10) ** 13, D(1)], pa.decimal128(38, 0))),
        "amount",
        1,
        "too large for exact arithmetic",
    ),
    (
        "amount too large (float)",
        "claims",
        lambda t: set_column(t, "amount", pa.array([1.0, 2.0, 1e20])),
        "amount",
        2,
        "too large for exact arithmetic",
    ),
    (
        "amount too large (int64)",
        "claims",
        lambda t: set_column(t, "amount", pa.array([2**62, 1, 1])),
        "amount",
        0,
        "too large for exact arithmetic",
    ),
    (
        "amount too large (uint64)",
        "claims",
        lambda t: set_column(t, "amount", pa.array([1, 1, 2**64 - 1], pa.uint64())),
        "amount",
        2,
        "too large",
    ),
    (
        "amount infinite",
        "claims",
        lambda t: set_column(t, "amount", pa.array([1.0, float("inf"), 1.0])),
        "amount",
        1,
        "not a finite number",
    ),
    (
        "amount NaN",
        "claims",
        lambda t: set_column(t, "amount", pa.array([float("nan"), 1.0, 1.0])),
        "amount",
        0,
        "not a finite number",
    ),
    (
        "quantity too large",
        "claims",
        lambda t: set_column(t, "quantity", pa.array([1.0, 1e15, 1.0])),
        "quantity",
        1,
        "too large",
    ),
    (
        "balance too large",
        "members",
        lambda t: set_column(t, "account_balance", pa.array([D("1e12") + 1, D(0)], pa.decimal128(20, 2))),
        "account_balance",
        0,
        "too large",
    ),
    (
        "ratio above 1",
        "catalogue",
        lambda t: set_column(t, "first_self_pay_ratio", pa.array([None, 1.5, None, None, None])),
        "first_self_pay_ratio",
        1,
        "outside 0..1",
    ),
    (
        "ratio negative",
        "catalogue",
        lambda t: set_column(
            t, "first_self_pay_ratio", pa.array([None, D("-0.1"), None, None, None], pa.decimal128(4, 2))
        ),
        "first_self_pay_ratio",
        1,
        "outside 0..1",
    ),
    (
        "ratio not whole bp",
        "catalogue",
        lambda t: set_column(t, "first_self_pay_ratio", pa.array([None, None, 0.12345, None, None])),
        "first_self_pay_ratio",
        2,
        "basis point",
    ),
    (
        "duplicate member_id",
        "members",
        lambda t: set_column(t, "member_id", pa.array(["M1", "M1"])),
        "member_id",
        1,
        "duplicate member_id 'M1'",
    ),
    (
        "duplicate provider_id",
        "providers",
        lambda t: set_column(t, "provider_id", pa.array(["H3", "H3"])),
        "provider_id",
        1,
        "duplicate provider_id 'H3'",
    ),
    (
        "overlapping validity",
        "catalogue",
        lambda t: pa.concat_tables([t, t.slice(1, 1)]),
        "valid_from",
        5,
        "validity of item 'B1' overlaps",
    ),
    (
        "valid_to before valid_from",
        "catalogue",
        lambda t: set_column(t, "valid_to", pa.array([None, None, 0, None, None], pa.int32()).cast(DATE)),
        "valid_to",
        2,
        "valid_to is before valid_from",
    ),
    (
        "string id as binary junk",
        "claims",
        lambda t: set_column(t, "claim_id", pa.array([b"C1", b"\xff\xfe", b"C2"])),
        "claim_id",
        1,
        "not valid UTF-8",
    ),
    (
        "nested type",
        "claims",
        lambda t: set_column(t, "item_code", pa.array([["A1"], ["B1"], ["A1"]])),
        "item_code",
        None,
        "has type list",
    ),
    (
        "duplicate column",
        "members",
        lambda t: t.append_column("category", pa.array(["retired", "retired"])),
        "category",
        None,
        "appears more than once",
    ),
]


@pytest.mark.parametrize("name, table, mutate, column, row, says", CASES, ids=[c[0] for c in CASES])
def test_bad_parquet(tmp_path, name, table, mutate, column, row, says):
    paths = corrupt(write(tmp_path / "in"), table, mutate)
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, f"{table}.parquet", column, row, says)


@pytest.mark.parametrize("suffix", ["arrow", "csv"])
@pytest.mark.parametrize("name, table, mutate, column, row, says", CASES, ids=[c[0] for c in CASES])
def test_bad_ipc_and_csv(tmp_path, name, table, mutate, column, row, says, suffix):
    """The same defects in Arrow IPC (same message) and in CSV (where text may spell them differently)."""
    paths = write(tmp_path / "in")
    t = mutate(pq.read_table(paths[table]))
    path = tmp_path / "in" / f"{table}.{suffix}"
    try:
        save(t, path)
    except (pa.ArrowException, ValueError):
        pytest.skip("not representable in this format")
    paths[table] = path
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    if suffix == "arrow":
        assert_input_error(result, out, path.name, column, row, says)
    else:
        assert_input_error(result, out, path.name, column if row is not None else None, row)


def test_every_table_is_checked_before_anything_is_written(tmp_path):
    """An error in the last table read still leaves no output behind, even beside an older output."""
    paths = write(tmp_path / "in")
    out = tmp_path / "out"
    assert cli(*run_args(paths, out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    corrupt(paths, "catalogue", lambda t: set_column(t, "class", pa.array(["A", "B", "X", "A", "A"])))
    result = cli(*run_args(paths, out))
    assert_input_error(result, None, "catalogue.parquet", "class", 2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_amounts_whose_sum_could_overflow(tmp_path):
    """Each amount fits, but together they could not be summed exactly in int64 fen (contract §1)."""
    paths = write(tmp_path / "in")
    t = pq.read_table(paths["claims"])
    n = 50_000
    big = t.take(pa.array(np.zeros(n, np.int64)))
    big = set_column(big, "line_no", pa.array(np.arange(1, n + 1, dtype=np.int32)))
    big = set_column(big, "amount", pa.array(np.full(n, 999_999_999_999, np.int64)))
    pq.write_table(big, paths["claims"])
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "claims.parquet", "amount", 46_116, "add up to more")


# ---- nulls in claims are rejections, not input errors ------------------------


@pytest.mark.parametrize(
    "column, value",
    [
        ("amount", None),
        ("admit_date", None),
        ("setting", None),
        ("item_code", None),
        ("line_no", None),
        ("member_id", None),
    ],
)
def test_null_in_claims_rejects_the_claim(tmp_path, column, value):
    def null_row_1(t):
        col = t.column(column).to_pylist()
        col[1] = value
        return set_column(t, column, pa.array(col, t.schema.field(column).type))

    paths = corrupt(write(tmp_path / "in"), "claims", null_row_1)
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output
    rejected = pq.read_table(out / "rejected.parquet").to_pylist()
    assert [(r["claim_id"], r["reason"]) for r in rejected] == [("C1", "null_required_field")]
    assert pq.read_table(out / "settlements.parquet").column("claim_id").to_pylist() == ["C2"]


def test_all_null_column_in_claims_rejects_every_claim(tmp_path):
    paths = corrupt(write(tmp_path / "in"), "claims", lambda t: set_column(t, "amount", pa.nulls(3)))
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"]["rejected_by_reason"]["null_required_field"] == 2
    assert s["counts"]["settled_claims"] == 0


# ---- empty inputs ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["parquet", "arrow", "csv"])
@pytest.mark.parametrize("table", TABLE_NAMES)
def test_zero_byte_file(tmp_path, table, suffix):
    paths = write(tmp_path / "in")
    paths[table] = tmp_path / "in" / f"{table}.{suffix}"
    paths[table].write_bytes(b"")
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, f"{table}.{suffix}", says="empty (0 bytes)")


@pytest.mark.parametrize("fmt", ["parquet", "ipc", "csv"])
def test_zero_claims_is_a_valid_run(tmp_path, fmt):
    case = small_case()
    case.claims = []
    paths = write(tmp_path / "in", case, fmt)
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"]["input_lines"] == 0 and s["counts"]["input_claims"] == 0
    assert s["counts"]["settled_claims"] == 0 and s["counts"]["rejected_claims"] == 0
    assert s["counts"]["reconciles"] is True
    assert set(s["totals"].values()) == {"0.00"}
    for name in ("settlements", "lines", "rejected"):
        assert pq.read_table(out / f"{name}.parquet").num_rows == 0


def test_zero_rows_everywhere(tmp_path):
    case = small_case()
    case.claims, case.members, case.providers, case.catalogue = [], [], [], []
    paths = write(tmp_path / "in", case)
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output


def test_empty_members_providers_catalogue_reject_or_leave_unknown(tmp_path):
    case = small_case()
    case.members, case.providers, case.catalogue = [], [], []
    paths = write(tmp_path / "in", case)
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output
    rejected = pq.read_table(out / "rejected.parquet").to_pylist()
    assert sorted((r["claim_id"], r["reason"]) for r in rejected) == [
        ("C1", "unknown_member"),
        ("C2", "unknown_member"),
    ]


# ---- corrupt files -------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.95, -1])
@pytest.mark.parametrize("table", ["claims", "members"])
def test_truncated_parquet(tmp_path, table, keep):
    paths = write(tmp_path / "in")
    data = paths[table].read_bytes()
    paths[table].write_bytes(data[: int(len(data) * keep) if keep > 0 else len(data) - 1])
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, f"{table}.parquet", says="cannot be read as Parquet")


def test_truncated_generated_parquet(tmp_path):
    """A real, compressed file from `adjudicate generate`, cut in the middle of its data pages."""
    gen = tmp_path / "gen"
    assert (
        cli("generate", "--members", "30", "--year", "2024", "--seed", "4", "--out", str(gen), "--quiet").exit_code == 0
    )
    paths = {n: gen / f"{n}.parquet" for n in TABLE_NAMES}
    data = paths["claims"].read_bytes()
    out = tmp_path / "out"
    for cut in (len(data) // 3, len(data) - 8):
        paths["claims"].write_bytes(data[:cut])
        assert_input_error(cli(*run_args(paths, out)), out, "claims.parquet", says="cannot be read as Parquet")


def test_flipped_bytes_in_parquet(tmp_path):
    paths = write(tmp_path / "in")
    data = bytearray(paths["members"].read_bytes())
    for i in range(8, len(data) - 8, 7):
        data[i] ^= 0x5A
    paths["members"].write_bytes(bytes(data))
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert_input_error(result, out, "members.parquet")


def test_not_parquet_at_all(tmp_path):
    paths = write(tmp_path / "in")
    paths["providers"].write_text("provider_id,kind\nH3,hospital\n")
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "providers.parquet", says="cannot be read as Parquet")


# ---- CSV -----------------------------------------------------------------------------------


def csv_text(table: str, fmt_case: Case | None = None) -> str:
    buf = io.BytesIO()
    pacsv.write_csv((fmt_case or small_case()).tables()[table], buf)
    return buf.getvalue().decode()


def with_csv(tmp_path: Path, table: str, text: str | bytes) -> dict[str, Path]:
    paths = write(tmp_path / "in")
    paths[table] = tmp_path / "in" / f"{table}.csv"
    if isinstance(text, bytes):
        paths[table].write_bytes(text)
    else:
        paths[table].write_text(text, encoding="utf-8")
    return paths


def test_csv_inputs_give_the_same_result_as_parquet(tmp_path):
    ref = tmp_path / "ref"
    assert cli(*run_args(write(tmp_path / "a"), ref)).exit_code == 0
    out = tmp_path / "out"
    result = cli(*run_args(write(tmp_path / "b", fmt="csv"), out))
    assert result.exit_code == 0, result.output
    for name in ("settlements", "lines", "rejected"):
        assert pq.read_table(out / f"{name}.parquet").equals(pq.read_table(ref / f"{name}.parquet"))


def replace_field(text: str, row: int, column: str, value: str) -> str:
    lines = text.splitlines()
    header = [h.strip('"') for h in lines[0].split(",")]
    fields = lines[row + 1].split(",")
    fields[header.index(column)] = value
    lines[row + 1] = ",".join(fields)
    return "\n".join(lines) + "\n"


CSV_CASES = [
    ("claims", 1, "amount", "12,5", None),  # shifts the columns: the row has too many fields
    ("claims", 1, "amount", "12.5.1", "amount '12.5.1' is not a decimal number"),
    ("claims", 2, "amount", "1e20", "too large"),
    ("claims", 0, "amount", "NaN", "not a decimal number"),
    ("claims", 1, "line_no", "2.5", "not a whole number"),
    ("claims", 1, "line_no", "two", "not a whole number"),
    # issue 12 makes 2024/03/01 a valid spelling of a date (docs/data-dictionary.md);
    # an impossible date in that spelling is still an error
    ("claims", 2, "admit_date", "2024/02/30", "not a date"),
    ("claims", 0, "admit_date", "0999-01-01", "out of range"),
    ("claims", 2, "setting", '"INPATIENT"', "unknown value 'INPATIENT'"),
    ("members", 1, "civil_servant", "maybe", "not true or false"),
    ("members", 0, "category", "", "is null but the column is required"),
    ("members", 1, "account_balance", "-", "not a decimal number"),
    ("providers", 1, "level", "1.5", "not a whole number"),
    ("catalogue", 3, "first_self_pay_ratio", "0.123456", "basis point"),
    ("catalogue", 0, "valid_from", "yesterday", "not a date"),
]


@pytest.mark.parametrize("table, row, column, value, says", CSV_CASES, ids=[f"{c[0]}.{c[2]}={c[3]}" for c in CSV_CASES])
def test_bad_csv(tmp_path, table, row, column, value, says):
    paths = with_csv(tmp_path, table, replace_field(csv_text(table), row, column, value))
    out = tmp_path / "out"
    if says is None:  # a parse error from the CSV reader itself
        assert_input_error(cli(*run_args(paths, out)), out, f"{table}.csv", says="cannot be read as CSV")
    else:
        message = assert_input_error(cli(*run_args(paths, out)), out, f"{table}.csv", column, row, says)
        assert f"(line {row + 2})" in message


def test_csv_missing_column(tmp_path):
    text = csv_text("members")
    lines = [",".join(line.split(",")[:-2]) for line in text.splitlines()]
    paths = with_csv(tmp_path, "members", "\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "members.csv", says="'account_balance'")


def test_csv_ragged_row(tmp_path):
    paths = with_csv(tmp_path, "members", csv_text("members") + "M3,1970-01-01\n")
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "members.csv", says="cannot be read as CSV")


@pytest.mark.parametrize("junk", [b"\xb0\x01\xff\xfe" * 50, b"\x00" * 100, "成员,日期\n张三,昨天\n".encode("gb18030")])
def test_csv_binary_junk(tmp_path, junk):
    paths = with_csv(tmp_path, "members", junk)
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "members.csv")


def test_csv_header_only_claims_is_zero_claims(tmp_path):
    paths = with_csv(tmp_path, "claims", csv_text("claims").splitlines()[0] + "\n")
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["counts"]["input_claims"] == 0


def test_csv_with_bom_and_crlf(tmp_path):
    text = "\ufeff" + csv_text("members").replace("\n", "\r\n")
    paths = with_csv(tmp_path, "members", text)
    assert cli(*run_args(paths, tmp_path / "out")).exit_code == 0


# ---- Arrow IPC ---------------------------------------------------------------------------


def test_ipc_wrong_type(tmp_path):
    paths = write(tmp_path / "in", fmt="ipc")
    t = feather.read_table(paths["claims"])
    save(set_column(t, "amount", pa.array(["1", "2", "3"])), paths["claims"])
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "claims.arrow", "amount", says="has type string")


def test_ipc_bad_value(tmp_path):
    paths = write(tmp_path / "in", fmt="ipc")
    t = feather.read_table(paths["providers"])
    save(set_column(t, "kind", pa.array(["hospital", "shop"])), paths["providers"])
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "providers.arrow", "kind", 1, "unknown value 'shop'")


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_ipc_truncated(tmp_path, keep):
    paths = write(tmp_path / "in", fmt="ipc")
    data = paths["claims"].read_bytes()
    paths["claims"].write_bytes(data[: int(len(data) * keep)])
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "claims.arrow", says="cannot be read as Arrow IPC")


def test_ipc_stream_format_is_accepted(tmp_path):
    paths = write(tmp_path / "in", fmt="ipc")
    t = feather.read_table(paths["members"])
    with pa.OSFile(str(paths["members"]), "wb") as f, pa.ipc.new_stream(f, t.schema) as w:
        w.write_table(t)
    assert cli(*run_args(paths, tmp_path / "out")).exit_code == 0


def test_ipc_string_view_and_large_types_are_accepted(tmp_path):
    paths = write(tmp_path / "in", fmt="ipc")
    t = feather.read_table(paths["claims"])
    t = set_column(t, "claim_id", t.column("claim_id").cast(pa.string_view()))
    t = set_column(t, "item_code", t.column("item_code").cast(pa.large_string()))
    t = set_column(t, "setting", t.column("setting").dictionary_encode())
    save(t, paths["claims"])
    assert cli(*run_args(paths, tmp_path / "out")).exit_code == 0


# ---- files and folders ----------------------------------------------------------------------


def test_missing_file(tmp_path):
    paths = write(tmp_path / "in")
    paths["members"] = tmp_path / "in" / "nobody.parquet"
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "nobody.parquet", says="does not exist")


def test_folder_without_data_files(tmp_path):
    paths = write(tmp_path / "in")
    (tmp_path / "empty").mkdir()
    paths["catalogue"] = tmp_path / "empty"
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "empty", says="no .parquet")


def test_unknown_suffix(tmp_path):
    paths = write(tmp_path / "in")
    paths["claims"] = paths["claims"].rename(paths["claims"].with_suffix(".xlsx"))
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "claims.xlsx", says="unknown file type")


def test_error_in_second_file_names_that_file_and_its_own_row(tmp_path):
    """A table split over files: rows are counted within the file that has the problem."""
    paths = write(tmp_path / "in")
    folder = tmp_path / "claims"
    folder.mkdir()
    t = pq.read_table(paths["claims"])
    pq.write_table(t.slice(0, 2), folder / "part-0.parquet")
    pq.write_table(set_column(t.slice(2, 1), "setting", pa.array(["nowhere"])), folder / "part-1.parquet")
    paths["claims"] = folder
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "part-1.parquet", "setting", 0, "unknown value 'nowhere'")


def test_duplicate_member_across_files_names_second_file(tmp_path):
    paths = write(tmp_path / "in")
    folder = tmp_path / "members"
    folder.mkdir()
    t = pq.read_table(paths["members"])
    pq.write_table(t, folder / "a.parquet")
    pq.write_table(t.slice(1, 1), folder / "b.parquet")
    paths["members"] = folder
    out = tmp_path / "out"
    assert_input_error(cli(*run_args(paths, out)), out, "b.parquet", "member_id", 0, "duplicate member_id 'M2'")


def test_files_of_one_table_may_differ_in_type(tmp_path):
    """decimal amounts in one file, float in another, CSV in a third: one table, same result."""
    paths = write(tmp_path / "in")
    folder = tmp_path / "claims"
    folder.mkdir()
    t = pq.read_table(paths["claims"])
    pq.write_table(t.slice(0, 1), folder / "a.parquet")
    pq.write_table(set_column(t.slice(1, 1), "amount", pa.array([50.5])), folder / "b.parquet")
    pacsv.write_csv(t.slice(2, 1), folder / "c.csv")
    ref = tmp_path / "ref"
    assert cli(*run_args(paths, ref)).exit_code == 0
    paths["claims"] = folder
    out = tmp_path / "out"
    result = cli(*run_args(paths, out))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "settlements.parquet").equals(pq.read_table(ref / "settlements.parquet"))


# ---- validate, and the real console script ---------------------------------------------------


def test_out_that_cannot_be_created_is_a_usage_error(tmp_path):
    """--out under a regular file: exit 2 and one paragraph, like any other usage error (contract §5)."""
    (tmp_path / "afile").write_text("x")
    result = cli(*run_args(write(tmp_path / "in"), tmp_path / "afile" / "out"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "afile" in result.output


def test_validate_lists_problems_and_exits_2(tmp_path):
    paths = write(tmp_path / "in")
    corrupt(paths, "members", lambda t: set_column(t, "category", pa.array(["retired", "soldier"])))
    corrupt(paths, "providers", lambda t: set_column(t, "level", pa.array([3.5, 0.0])))
    result = cli("validate", str(tmp_path / "in"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "members.parquet, column 'category', row 1" in result.output
    assert "providers.parquet, column 'level', row 0" in result.output


def test_validate_keeps_going_past_unknown_and_missing_files(tmp_path):
    paths = write(tmp_path / "in")
    (tmp_path / "in" / "notes.csv").write_text("a,b\n1,2\n")
    corrupt(paths, "claims", lambda t: set_column(t, "admit_date", pa.array(["2024-03-01", "x", "2024-03-01"])))
    result = cli("validate", str(tmp_path / "in"), str(tmp_path / "gone.parquet"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "notes.csv: cannot tell which table" in result.output
    assert "gone.parquet: the file does not exist" in result.output
    assert "claims.parquet, column 'admit_date', row 1" in result.output


def test_hidden_files_in_a_folder_are_skipped(tmp_path):
    paths = write(tmp_path / "in")
    folder = tmp_path / "claims"
    folder.mkdir()
    paths["claims"].rename(folder / "part-0.parquet")
    (folder / "._part-0.parquet").write_bytes(b"\x00\x05junk")
    (folder / "_SUCCESS.parquet").write_bytes(b"")
    paths["claims"] = folder
    result = cli(*run_args(paths, tmp_path / "out"))
    assert result.exit_code == 0, result.output


def test_validate_clean_inputs(tmp_path):
    write(tmp_path / "in")
    result = cli("validate", str(tmp_path / "in"))
    assert result.exit_code == 0, result.output


def test_console_script_exit_status_and_message(tmp_path):
    """The installed command, not the in-process runner: status 2, stderr one paragraph, stdout empty."""
    paths = corrupt(write(tmp_path / "in"), "claims", lambda t: set_column(t, "line_no", pa.array([1.0, 1.5, 1.0])))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "adjudicate.cli", *run_args(paths, out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: file ")
    assert "claims.parquet, column 'line_no', row 1" in proc.stderr
    assert not out.exists()


# ---- fuzzing: the readers raise InputError or succeed, nothing else --------------------------

#: Modest by default (the suite shares two cores); ADJUDICATE_FUZZ=2000 for a long hunt.
EXAMPLES = int(os.environ.get("ADJUDICATE_FUZZ", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECS = {"claims": CLAIMS, "members": MEMBERS, "providers": PROVIDERS, "catalogue": CATALOGUE}


def _good_bytes(table: str, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return save(small_case().tables()[table], Path(d) / f"{table}.{suffix}").read_bytes()


GOOD = {(t, s): _good_bytes(t, s) for t in TABLE_NAMES for s in ("parquet", "arrow", "csv")}


def _load_bytes(table: str, suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{table}.{suffix}"
        p.write_bytes(data)
        try:
            load(SPECS[table], [p])
        except InputError as e:
            assert str(p) in str(e)


@FUZZ
@given(st.sampled_from(TABLE_NAMES), st.sampled_from(["parquet", "arrow", "csv"]), st.binary(max_size=2000))
def test_fuzz_random_bytes(table, suffix, data):
    _load_bytes(table, suffix, data)


@FUZZ
@given(
    st.sampled_from(TABLE_NAMES),
    st.sampled_from(["parquet", "arrow", "csv"]),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=12),
    st.one_of(st.none(), st.floats(0, 1)),
)
def test_fuzz_mutated_files(table, suffix, flips, cut):
    """Real files with bytes overwritten and/or cut short."""
    data = bytearray(GOOD[(table, suffix)])
    for where, byte in flips:
        data[int(where * len(data))] = byte
    if cut is not None:
        data = data[: int(cut * len(data))]
    _load_bytes(table, suffix, bytes(data))


def _values(draw, kind: str, n: int) -> pa.Array:
    """A column of ``n`` values of a randomly chosen Arrow type, not necessarily the right one."""
    choice = draw(
        st.sampled_from(
            [
                "int8",
                "int32",
                "int64",
                "uint64",
                "float32",
                "float64",
                "decimal",
                "decimal256",
                "string",
                "large_string",
                "bool",
                "date32",
                "date64",
                "timestamp",
                "null",
                "dictionary",
                "binary",
                "right",
            ]
        )
    )

    def some(strategy):
        return [draw(st.one_of(st.none(), strategy) if draw(st.booleans()) else strategy) for _ in range(n)]

    if choice == "right":
        choice = {
            "string": "string",
            "enum": "enum",
            "date": "date32",
            "bool": "bool",
            "int": "int32",
            "amount": "decimal",
            "price": "decimal",
            "ratio": "decimal",
            "quantity": "float64",
        }[kind]
    if choice in ("int8", "int32", "int64", "uint64"):
        t = getattr(pa, choice)()
        info = np.iinfo(t.to_pandas_dtype())
        return pa.array(some(st.integers(int(info.min), int(info.max)) | st.integers(max(int(info.min), -3), 3)), t)
    if choice in ("float32", "float64"):
        width = 32 if choice == "float32" else 64
        return pa.array(some(st.floats(width=width) | st.sampled_from([0.15, 1.005, 2.5, -1.0])), getattr(pa, choice)())
    if choice in ("decimal", "decimal256"):
        scale = draw(st.integers(0, 12))
        precision = draw(st.integers(max(scale, 1), 38 if choice == "decimal" else 60))
        t = (pa.decimal128 if choice == "decimal" else pa.decimal256)(precision, scale)
        ints = some(st.integers(-(10**precision - 1), 10**precision - 1))
        wide = pa.decimal256(76, scale)
        return pa.array([None if v is None else D(f"{v}E{-scale}") for v in ints], wide).cast(t)
    if choice in ("string", "large_string", "dictionary", "enum"):
        words = st.sampled_from(
            [
                "inpatient",
                "outpatient",
                "pharmacy",
                "retired",
                "in_service",
                "hospital",
                "A",
                "B",
                "excluded",
                "M1",
                "H3",
                "A1",
                "2024-03-01",
                "1.5",
                "true",
                "",
                "x",
                "1e400",
                "-0",
                "9999-12-31",
                "NaN",
            ]
        ) | st.text(max_size=6)
        arr = pa.array(some(words), pa.string())
        if choice == "large_string":
            return arr.cast(pa.large_string())
        return arr.dictionary_encode() if choice == "dictionary" else arr
    if choice == "binary":
        return pa.array(some(st.binary(max_size=4)), pa.binary())
    if choice == "bool":
        return pa.array(some(st.booleans()), pa.bool_())
    if choice == "date32":
        return pa.array(some(st.integers(-(2**31), 2**31 - 1) | st.integers(-30000, 40000)), pa.int32()).cast(
            pa.date32()
        )
    if choice == "date64":
        return pa.array(
            some(st.integers(-(10**14), 10**14) | st.integers(-3000, 3000).map(lambda d: d * 86400000)), pa.int64()
        ).cast(pa.date64())
    if choice == "timestamp":
        tz = draw(st.sampled_from([None, "UTC", "Asia/Shanghai"]))
        return pa.array(
            some(st.integers(-(2**62), 2**62) | st.integers(-3000, 3000).map(lambda d: d * 86400 * 10**6)), pa.int64()
        ).cast(pa.timestamp("us", tz=tz))
    return pa.nulls(n)


@st.composite
def random_tables(draw):
    name = draw(st.sampled_from(TABLE_NAMES))
    spec = SPECS[name]
    n = draw(st.integers(0, 5))
    cols = {}
    for c in spec.columns:
        if draw(st.integers(0, 9)) == 0:
            continue  # a missing column now and then
        cols[c.name] = _values(draw, c.kind, n)
    if draw(st.booleans()):
        cols["extra"] = _values(draw, "string", n)
    return name, pa.table(cols) if cols else pa.table({"x": pa.nulls(n)})


@FUZZ
@given(random_tables(), st.sampled_from(["parquet", "arrow", "csv"]))
def test_fuzz_random_column_types(named, suffix):
    name, table = named
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{name}.{suffix}"
        try:
            save(table, p)
        except (pa.ArrowException, ValueError):
            return  # not writable in this format (e.g. a type CSV cannot hold)
        try:
            load(SPECS[name], [p])
        except InputError as e:
            assert str(p) in str(e)


@settings(max_examples=max(EXAMPLES // 3, 10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_tables_through_the_whole_run(data):
    """Random column types in any table: the run succeeds or gives InputError, and when it
    succeeds every input claim is settled or rejected, exactly once."""
    with tempfile.TemporaryDirectory() as d:
        paths = write(Path(d) / "in")
        for name in data.draw(st.sets(st.sampled_from(TABLE_NAMES), min_size=1, max_size=2)):
            t = pq.read_table(paths[name])
            for c in SPECS[name].columns:
                if data.draw(st.integers(0, 3)) == 0:
                    t = set_column(t, c.name, _values(data.draw, c.kind, t.num_rows))
            pq.write_table(t, paths[name])
        out = Path(d) / "out"
        try:
            inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
            result = adjudicate(inputs, P.load("prefecture-employee"), threads=1)
            write_all(result, out, inputs.digests(), inputs.claims.rows)
        except InputError:
            assert not out.exists()
            return
        assert_nothing_lost(inputs.claims["claim_id"].to_pylist(), out)


def assert_nothing_lost(input_ids: list, out: Path) -> None:
    """Every claim id in exactly one of settlements and rejected; each line without an id rejected alone."""
    settled = pq.read_table(out / "settlements.parquet").column("claim_id").to_pylist()
    rejected = pq.read_table(out / "rejected.parquet").column("claim_id").to_pylist()
    assert len(settled) == len(set(settled))
    ids = {i for i in input_ids if i is not None}
    assert set(settled) | {r for r in rejected if r is not None} == ids
    assert not set(settled) & set(rejected)
    assert rejected.count(None) == input_ids.count(None)


def test_huge_quantity_times_max_unit_price_does_not_wrap(tmp_path):
    """quantity x max_unit_price beyond int64 fen: the cap is simply not reached (contract §1)."""
    case = Case().member().provider().item("Q", "A", max_price="900000000000")
    case.claim("C1", [("Q", "500", 2e9)])
    out = tmp_path / "out"
    result = cli(*run_args(write(tmp_path / "in", case), out))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "rejected.parquet").num_rows == 0
    s = pq.read_table(out / "settlements.parquet").to_pylist()[0]
    assert s["self_pay"] == 0 and s["eligible"] == D("500.00")


def test_lines_without_claim_id_each_count_as_a_rejected_claim(tmp_path):
    """Two lines without a claim_id and the same line_no are two rejected claims (nothing is lost)."""
    case = small_case()
    for line in case.claims:
        line["claim_id"] = None
        line["line_no"] = 1
    out = tmp_path / "out"
    result = cli(*run_args(write(tmp_path / "in", case), out))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "rejected.parquet").num_rows == 3
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert counts["input_claims"] == 3
    assert counts["rejected_claims"] == 3
    assert counts["reconciles"] is True
