"""The raw decimal read (rawdecimal.py) on claims files as other writers make them: pyarrow with
its options, DuckDB and Polars. Whatever the writer, the engine's read must equal Arrow's read
converted by the engine's own converter (the raw read switched off), column by column, and a
bad value must raise the same InputError (file, column, row, message) both ways."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adjudicate import compact_thrift, inputs, rawdecimal
from adjudicate.errors import InputError
from adjudicate.generate import generate_tables
from adjudicate.inputs import load, strings
from adjudicate.money import MAX_FEN, PRICE_SCALE
from adjudicate.schema import CLAIMS

ENGINE_SCALE = {"amount": 2, "unit_price": PRICE_SCALE}
LIMIT = {"amount": MAX_FEN, "unit_price": MAX_FEN * 10 ** (PRICE_SCALE - 2)}  # in engine units (contract §1)


@pytest.fixture(scope="module")
def base() -> pa.Table:
    return generate_tables(members=12, year=2024, seed=3, order="shuffled")["claims"]


@pytest.fixture(scope="module")
def big(base) -> pa.Table:
    """Claims enough for several of DuckDB's row groups (2048 rows at the least) in each file."""
    return pa.concat_tables([base] * 12)


def unscaled_values(n: int, name: str, precision: int, scale: int, seed: int) -> list[int | None]:
    """Unscaled integers of a decimal(precision, scale) column the engine accepts: zero, ±1 unit,
    the largest magnitudes the type or the engine's limit allows, nulls, and random values of
    both signs; whole engine units when the scale is finer than the engine's."""
    step = 10 ** max(scale - ENGINE_SCALE[name], 0)
    limit = (
        LIMIT[name] * 10 ** (scale - ENGINE_SCALE[name])
        if scale >= ENGINE_SCALE[name]
        else LIMIT[name] // 10 ** (ENGINE_SCALE[name] - scale)
    )
    top = min(10**precision - 1, limit) // step * step
    specials: list[int | None] = [0, step, -step, top, -top, top - step, -(top - step), None, top // 3 // step * step]
    rng = np.random.default_rng(seed)
    spread = min(10 ** min(precision, 15), top // step + 1)
    out: list[int | None] = []
    for i in range(n):
        if i % 4 == 0:
            out.append(specials[(i // 4) % len(specials)])
        else:
            out.append(int(rng.integers(-spread + 1, spread)) * step)
    return out


def decimals(values: list[int | None], precision: int, scale: int) -> pa.Array:
    return pa.array([None if v is None else Decimal(v).scaleb(-scale) for v in values], pa.decimal128(precision, scale))


def claims(
    base: pa.Table, amount: tuple[int, int], price: tuple[int, int], seed: int = 0, bad: dict | None = None
) -> pa.Table:
    """``base`` with amount as decimal(*amount) and unit_price as decimal(*price); ``bad`` sets
    single values: {(column, row): Decimal}."""
    t = base
    for name, (p, s) in (("amount", amount), ("unit_price", price)):
        values = unscaled_values(len(t), name, p, s, seed + s)
        arr = decimals(values, p, s)
        if bad:
            py = arr.to_pylist()
            for (col, row), v in bad.items():
                if col == name:
                    py[row] = v
            arr = pa.array(py, pa.decimal128(p, s))
        t = t.set_column(t.schema.get_field_index(name), name, arr)
    return t


def split(t: pa.Table) -> list[pa.Table]:
    """Two files of unequal size."""
    k = len(t) * 2 // 5
    return [t.slice(0, k), t.slice(k)]


def write_pyarrow(t: pa.Table, path: Path, **options) -> None:
    pq.write_table(t, path, row_group_size=max(len(t) // 5, 1), **options)


def write_duckdb(t: pa.Table, path: Path, amount: str, price: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.register("t", t)
    con.execute(
        f"COPY (SELECT * REPLACE (CAST(amount AS {amount}) AS amount, CAST(unit_price AS {price}) AS unit_price)"
        f" FROM t) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 2048)"
    )
    con.close()


def write_polars(t: pa.Table, path: Path, **options) -> None:
    pl = pytest.importorskip("polars")
    pl.from_arrow(t).write_parquet(path, row_group_size=max(len(t) // 4, 1), **options)


def outcome(paths: list[Path]):
    """What ``load`` gives: every column's values and nulls as Python lists, or the error."""
    try:
        got = load(CLAIMS, paths)
    except InputError as e:
        return ("error", e.file, e.column, e.row, e.message)
    out = {}
    for col in CLAIMS.columns:
        v = got[col.name]
        v = strings(v).to_pylist() if isinstance(v, (pa.Array, pa.ChunkedArray)) else np.asarray(v).tolist()
        out[col.name] = (v, np.asarray(got.nulls[col.name]).tolist())
    return out


def both_ways(paths: list[Path], monkeypatch) -> tuple[object, list[str]]:
    """The engine's read (and the columns it read raw), after asserting it equals the plain read."""
    raw_reads: list[str] = []
    convert = inputs._raw_converted
    with monkeypatch.context() as m:
        m.setattr(inputs, "_raw_converted", lambda *a: raw_reads.append(a[0].name) or convert(*a))
        got = outcome(paths)
    with monkeypatch.context() as m:
        m.setattr(inputs, "raw_metadata", lambda *a: None)
        plain = outcome(paths)
    if isinstance(got, dict) and isinstance(plain, dict):
        for name in got:
            assert got[name] == plain[name], name
    assert got == plain
    return got, sorted(set(raw_reads))


def expected_ints(t: pa.Table, name: str) -> list[int]:
    e = ENGINE_SCALE[name]
    return [0 if v is None else int(v.scaleb(e)) for v in t[name].to_pylist()]


def write_files(t: pa.Table, tmp_path: Path, writer, **options) -> list[Path]:
    paths = []
    for k, part in enumerate(split(t)):
        path = tmp_path / f"claims-{k}.parquet"
        writer(part, path, **options)
        paths.append(path)
    return paths


def check(t: pa.Table, paths: list[Path], monkeypatch, raw: set[str]) -> None:
    got, raw_reads = both_ways(paths, monkeypatch)
    assert isinstance(got, dict)
    assert set(raw_reads) == raw
    for name in ("amount", "unit_price"):
        assert got[name][0] == expected_ints(t, name)
        assert got[name][1] == [v is None for v in t[name].to_pylist()]


# -- pyarrow ------------------------------------------------------------------------------------

PYARROW_OPTIONS = [
    {},
    {"use_dictionary": False},
    {"data_page_version": "2.0"},
    {"data_page_version": "2.0", "use_dictionary": False, "compression": "zstd"},
    {"compression": "none", "write_statistics": False},
    {"compression": "snappy", "write_statistics": ["amount"]},
    {"compression": "zstd", "store_schema": False},
    {"version": "1.0"},
    {"version": "2.4", "write_page_index": True, "write_page_checksum": True},
    {"use_dictionary": False, "use_byte_stream_split": ["amount", "unit_price"]},
    {"use_dictionary": False, "column_encoding": {"amount": "DELTA_BYTE_ARRAY", "unit_price": "DELTA_BYTE_ARRAY"}},
    {"data_page_size": 64, "dictionary_pagesize_limit": 64},  # many pages, dictionary spills to plain
    {"store_decimal_as_integer": True},
    {"store_decimal_as_integer": True, "use_dictionary": False, "data_page_version": "2.0", "compression": "zstd"},
]


@pytest.mark.parametrize("precision", [9, 12, 18])
@pytest.mark.parametrize(
    "options", PYARROW_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_pyarrow_options(base, tmp_path, monkeypatch, precision, options):
    t = claims(base, (precision, 2), (precision, 4), seed=precision)
    paths = write_files(t, tmp_path, write_pyarrow, **options)
    as_integer = options.get("store_decimal_as_integer", False)
    check(t, paths, monkeypatch, set() if as_integer else {"amount", "unit_price"})


@pytest.mark.parametrize("precision", [19, 24, 38])
def test_pyarrow_wider_than_8_bytes(base, tmp_path, monkeypatch, precision):
    t = claims(base, (precision, 2), (precision, 4), seed=precision)
    check(t, write_files(t, tmp_path, write_pyarrow), monkeypatch, set())


def test_pyarrow_decimal256(base, tmp_path, monkeypatch):
    t = claims(base, (18, 2), (18, 4))
    for name in ("amount", "unit_price"):
        t = t.set_column(t.schema.get_field_index(name), name, t[name].cast(pa.decimal256(18, t[name].type.scale)))
    check(t, write_files(t, tmp_path, write_pyarrow), monkeypatch, {"amount", "unit_price"})


@pytest.mark.parametrize("price_scale", [2, 3, 6])
@pytest.mark.parametrize("amount_scale", [2, 3])
def test_scales_the_engine_does_not_use(base, tmp_path, monkeypatch, amount_scale, price_scale):
    """Only the engine's own scales are read raw; the others are converted from Arrow's decimals."""
    t = claims(base, (18, amount_scale), (18, price_scale), seed=7)
    raw = {"amount"} if amount_scale == 2 else set()
    check(t, write_files(t, tmp_path, write_pyarrow), monkeypatch, raw)


def test_mixed_writers_in_one_table(base, tmp_path, monkeypatch):
    """One file read raw, the other not: the columns join the same."""
    t = claims(base, (12, 2), (12, 4))
    a, b = split(t)
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    write_pyarrow(a, paths[0])
    write_pyarrow(b, paths[1], store_decimal_as_integer=True)
    check(t, paths, monkeypatch, {"amount", "unit_price"})


# -- DuckDB and Polars --------------------------------------------------------------------------


@pytest.mark.parametrize("precision", [4, 9, 12, 18, 38])
def test_duckdb(big, tmp_path, monkeypatch, precision):
    t = claims(big, (precision, 2), (max(precision, 5), 4), seed=precision)
    amount, price = f"DECIMAL({precision},2)", f"DECIMAL({max(precision, 5)},4)"
    paths = write_files(t, tmp_path, write_duckdb, amount=amount, price=price)
    assert all(pq.ParquetFile(p).metadata.num_row_groups > 1 for p in paths)
    check(t, paths, monkeypatch, set())


@pytest.mark.parametrize("compression", ["uncompressed", "snappy", "zstd"])
@pytest.mark.parametrize("precision", [9, 12, 18, 38])
def test_polars(base, tmp_path, monkeypatch, precision, compression):
    t = claims(base, (precision, 2), (precision, 4), seed=precision)
    paths = write_files(t, tmp_path, write_polars, compression=compression, statistics=compression != "zstd")
    check(t, paths, monkeypatch, set())


# -- bad values ---------------------------------------------------------------------------------

BAD = [
    # (amount type, price type, column, value, an InputError?): values the engine refuses, or must
    # read exactly all the same
    ((18, 2), (18, 4), "amount", Decimal(MAX_FEN + 1).scaleb(-2), True),
    ((18, 2), (18, 4), "amount", Decimal(-MAX_FEN - 1).scaleb(-2), True),
    ((18, 2), (18, 4), "amount", Decimal(10**18 - 1).scaleb(-2), True),
    ((18, 2), (18, 4), "unit_price", Decimal(LIMIT["unit_price"] + 1).scaleb(-4), True),
    ((18, 2), (18, 4), "unit_price", Decimal(-(10**18) + 1).scaleb(-4), True),
    ((18, 2), (18, 4), "amount", Decimal(MAX_FEN).scaleb(-2), False),  # the largest accepted
    ((18, 2), (18, 4), "unit_price", Decimal(-LIMIT["unit_price"]).scaleb(-4), False),
    ((18, 3), (18, 4), "amount", Decimal("1.005"), False),  # a part of a fen: amounts are not exact (SCALED)
    ((18, 2), (18, 6), "unit_price", Decimal("1.000001"), True),  # more decimals than 0.0001 yuan
    ((12, 2), (12, 4), "amount", None, False),  # a null amount: the claim is rejected later (nulls_reject)
    ((12, 2), (12, 4), "unit_price", None, False),
]


@pytest.mark.parametrize("writer", ["pyarrow", "pyarrow-integers", "duckdb", "polars"])
@pytest.mark.parametrize(("amount", "price", "column", "value", "error"), BAD)
def test_a_bad_value_gives_the_same_error(base, tmp_path, monkeypatch, writer, amount, price, column, value, error):
    if writer == "duckdb":
        base = pa.concat_tables([base] * 12)
    k = len(base) * 2 // 5
    row = len(base) - k - 3  # in the second file, in its last row group
    t = claims(base, amount, price, bad={(column, k + row): value})
    if writer == "pyarrow":
        paths = write_files(t, tmp_path, write_pyarrow)
    elif writer == "pyarrow-integers":
        paths = write_files(t, tmp_path, write_pyarrow, store_decimal_as_integer=True)
    elif writer == "duckdb":
        (pa_, sa), (pp, sp) = amount, price
        paths = write_files(t, tmp_path, write_duckdb, amount=f"DECIMAL({pa_},{sa})", price=f"DECIMAL({pp},{sp})")
    else:
        paths = write_files(t, tmp_path, write_polars)
    got, _ = both_ways(paths, monkeypatch)
    if error:
        assert isinstance(got, tuple) and got[:4] == ("error", paths[1], column, row)
    else:
        assert isinstance(got, dict)
        assert got[column][1][k + row] == (value is None)


# -- footers of other writers: the decimal annotation as Arrow reads it ---------------------------


def _zigzag(v: int) -> bytes:
    return compact_thrift.int_bytes(v)


def _i32(v: int) -> tuple[int, bytes]:
    return 5, _zigzag(v)


def _logical_decimal(scale: int, precision: int) -> tuple[int, bytes]:
    """LogicalType{DECIMAL: DecimalType{scale, precision}} in Thrift's compact protocol."""
    return 12, bytes([0x5C, 0x15]) + _zigzag(scale) + bytes([0x15]) + _zigzag(precision) + b"\x00\x00"


def rewrite_column(data: bytes, column: str, drop: set[int], add: dict[int, tuple[int, bytes]]) -> bytes:
    """``data`` (a Parquet file) with the SchemaElement of ``column`` without the fields ``drop``
    and with the fields ``add`` ({id: (compact type, value bytes)}, ids above the kept ones)."""
    b = memoryview(data)
    size = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - size
    top, end = compact_thrift.read_struct(b, start)
    schema = next(f for f in top if f[0] == 2)
    n, _, i = compact_thrift.list_header(b, schema[2])
    parts = [bytes(b[schema[2] : i])]
    for _ in range(n):
        fields, j = compact_thrift.read_struct(b, i)
        by_id = {f[0]: f for f in fields}
        name = bytes(b[by_id[4][2] : by_id[4][3]])
        if name[compact_thrift.varint(memoryview(name), 0)[1] :] == column.encode():
            keep = [f for f in fields if f[0] not in drop]
            body = bytearray(compact_thrift.write_struct(compact_thrift.spans(b, keep))[:-1])
            prev = keep[-1][0]
            for fid, (t, value) in sorted(add.items()):
                assert prev < fid <= prev + 15
                body += bytes([((fid - prev) << 4) | t]) + value
                prev = fid
            parts.append(bytes(body) + b"\x00")
        else:
            parts.append(bytes(b[i:j]))
        i = j
    footer = bytes(b[start : schema[2]]) + b"".join(parts) + bytes(b[schema[3] : end])
    return data[:start] + footer + len(footer).to_bytes(4, "little") + b"PAR1"


FOOTERS = {
    # name: (fields dropped, fields added, read raw? (None: Arrow refuses the file))
    "converted type only": ({10}, {}, True),
    "logical type only": ({6, 7, 8}, {}, True),
    "no decimal annotation": ({6, 10}, {}, False),  # Arrow's bytes: a type error both ways
    "logical scale 4 over converted scale 2": ({10}, {10: _logical_decimal(4, 9)}, False),  # Arrow's: 4
    "more digits than 4 bytes hold": ({8, 10}, {8: _i32(18), 10: _logical_decimal(2, 18)}, False),
    "fewer digits than the values": ({8, 10}, {8: _i32(3), 10: _logical_decimal(2, 3)}, True),
    "scale above the precision": ({8, 10}, {8: _i32(1), 10: _logical_decimal(2, 1)}, None),
}


@pytest.mark.parametrize("footer", FOOTERS)
def test_decimal_annotations_as_arrow_reads_them(base, tmp_path, monkeypatch, footer):
    """The raw read takes a column's scale where Arrow does (the logical type before the converted
    type's scale) and only when Arrow reads a decimal at all: otherwise the same values or error."""
    drop, add, raw = FOOTERS[footer]
    t = claims(base, (9, 2), (18, 4))
    paths = write_files(t, tmp_path, write_pyarrow)
    for path in paths:
        path.write_bytes(rewrite_column(path.read_bytes(), "amount", drop, add))
    got, raw_reads = both_ways(paths, monkeypatch)
    assert set(raw_reads) == ({"amount", "unit_price"} if raw else {"unit_price"} if raw is False else set())
    if raw is None:
        assert isinstance(got, tuple) and got[:4] == ("error", paths[0], None, None)
    elif footer == "no decimal annotation":
        assert isinstance(got, tuple) and got[:4] == ("error", paths[0], "amount", None)
    elif footer in ("converted type only", "logical type only", "fewer digits than the values"):
        assert isinstance(got, dict) and got["amount"][0] == expected_ints(t, "amount")


# -- the whole run ------------------------------------------------------------------------------


def test_run_gives_the_same_outputs_whoever_wrote_the_claims(tmp_path):
    """`run` on one claims table as pyarrow (read raw), pyarrow's integers, DuckDB and Polars write it."""
    from click.testing import CliRunner

    from adjudicate import cli

    g = tmp_path / "g"
    assert (
        CliRunner()
        .invoke(cli.main, ["generate", "--members", "150", "--year", "2024", "--seed", "4", "--out", str(g)])
        .exit_code
        == 0
    )
    t = pq.read_table(g / "claims.parquet")
    for name, p, s in (("amount", 18, 2), ("unit_price", 18, 4)):
        t = t.set_column(t.schema.get_field_index(name), name, t[name].cast(pa.decimal128(p, s)))
    writers = {
        "pyarrow": lambda path: write_pyarrow(t, path),
        "integers": lambda path: write_pyarrow(t, path, store_decimal_as_integer=True),
        "duckdb": lambda path: write_duckdb(t, path, "DECIMAL(18,2)", "DECIMAL(18,4)"),
        "polars": lambda path: write_polars(t, path),
    }
    outputs = {}
    for writer, write in writers.items():
        claims_file = tmp_path / writer / "claims.parquet"
        claims_file.parent.mkdir()
        write(claims_file)
        args = ["run", "--claims", claims_file] + [
            x for k in ("members", "providers", "catalogue") for x in (f"--{k}", g / f"{k}.parquet")
        ]
        r = CliRunner().invoke(
            cli.main,
            [str(a) for a in args + ["--policy", "prefecture-employee", "--out", tmp_path / writer / "o", "-q"]],
        )
        assert r.exit_code == 0, r.output
        outputs[writer] = {
            f: pq.read_table(tmp_path / writer / "o" / f)
            for f in ("settlements.parquet", "lines.parquet", "rejected.parquet")
        }
    assert len(outputs["pyarrow"]["settlements.parquet"]) > 100
    for writer in writers:
        for f, table in outputs[writer].items():
            assert table.equals(outputs["pyarrow"][f]), (writer, f)


@pytest.mark.parametrize("width", range(1, 9))
@pytest.mark.parametrize("more", [0, 1])
def test_the_most_digits_per_width_as_arrow(width, more):
    """Read raw exactly when Arrow reads a decimal: up to the digits the width holds, not one more."""
    digits = rawdecimal._MAX_PRECISION[width] + more
    precision = rawdecimal._MAX_PRECISION[width]  # pyarrow writes it in `width` bytes
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"amount": pa.array([Decimal("-0.01")], pa.decimal128(precision, 2))}), sink)
    assert pq.read_metadata(pa.BufferReader(sink.getvalue())).schema.column(0).length == width
    data = rewrite_column(
        sink.getvalue().to_pybytes(), "amount", {8, 10}, {8: _i32(digits), 10: _logical_decimal(2, digits)}
    )
    try:
        arrow_decimal = pa.types.is_decimal(pq.read_schema(pa.BufferReader(data)).field("amount").type)
    except pa.ArrowException:
        arrow_decimal = False
    assert (rawdecimal.raw_metadata(pa.py_buffer(data), {"amount": 2}) is not None) == arrow_decimal
    assert arrow_decimal == (not more)


def test_required_columns_and_a_file_of_nulls(base, tmp_path, monkeypatch):
    """Columns declared not null (REQUIRED: no definition levels, as Spark writes non-null columns),
    and a file whose amounts and prices are all null (the raw column's data may be all padding)."""
    t = claims(base, (12, 2), (12, 4))
    no_nulls = pa.array([0 if v is None else v for v in t["amount"].to_pylist()], t["amount"].type)
    no_null_prices = pa.array([0 if v is None else v for v in t["unit_price"].to_pylist()], t["unit_price"].type)
    t = t.set_column(t.schema.get_field_index("amount"), "amount", no_nulls)
    t = t.set_column(t.schema.get_field_index("unit_price"), "unit_price", no_null_prices)
    required = t.cast(
        pa.schema([f.with_nullable(False) if f.name in ("amount", "unit_price") else f for f in t.schema])
    )
    paths = write_files(required, tmp_path, write_pyarrow)
    assert pq.read_metadata(paths[0]).schema.column(required.schema.get_field_index("amount")).max_definition_level == 0
    check(required, paths, monkeypatch, {"amount", "unit_price"})
    nulls = t.set_column(t.schema.get_field_index("amount"), "amount", pa.nulls(len(t), t["amount"].type))
    nulls = nulls.set_column(
        t.schema.get_field_index("unit_price"), "unit_price", pa.nulls(len(t), t["unit_price"].type)
    )
    check(nulls, write_files(nulls, tmp_path, write_pyarrow), monkeypatch, {"amount", "unit_price"})
