"""Parquet decimals read as their stored bytes (rawdecimal.py, inputs._raw_converted): the same
integers as Arrow's decimals, and the same errors, naming the same row."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adjudicate import inputs
from adjudicate.errors import InputError
from adjudicate.generate import generate_tables
from adjudicate.inputs import load
from adjudicate.rawdecimal import RawDecimal, raw_metadata, unscaled
from adjudicate.schema import CLAIMS


def parquet_bytes(table: pa.Table, **kw) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **kw)
    return sink.getvalue()


@pytest.mark.parametrize("precision", [2, 3, 4, 9, 12, 16, 18])
def test_every_width_and_sign_and_null(precision):
    """Widths 1 to 8 bytes: negatives sign-extended, nulls 0; read in several row groups."""
    top = 10**precision  # one more than the largest unscaled value
    values = [Decimal(v) / 100 for v in (0, 1, -1, top - 1, -(top - 1), top // 3, -(top // 7))] + [None]
    table = pa.table({"amount": pa.array(values * 5, pa.decimal128(precision, 2)), "other": pa.array(range(40))})
    data = parquet_bytes(table, row_group_size=6)
    got = raw_metadata(data, {"amount": 2})
    assert got is not None
    metadata, columns = got
    width = columns["amount"].width
    assert columns == {"amount": RawDecimal(width, 2)} and 1 <= width <= 8
    f = pq.ParquetFile(pa.BufferReader(data), metadata=metadata)
    assert f.schema_arrow.field("amount").type == pa.binary(width)
    assert f.schema_arrow.field("other").type == pa.int64()
    out = np.empty(len(table), np.int64)
    at = 0
    for k in range(f.metadata.num_row_groups):
        chunk = f.read_row_group(k).column("amount").combine_chunks()
        unscaled(chunk, width, out[at : at + len(chunk)])
        at += len(chunk)
    expected = [0 if v is None else int(v * 100) for v in values * 5]
    assert out.tolist() == expected
    assert f.read().column("other").to_pylist() == list(range(40))


def test_only_decimals_of_the_engines_scale_and_fixed_length():
    table = pa.table(
        {
            "amount": pa.array([Decimal("1.2345")], pa.decimal128(14, 4)),  # another scale: Arrow's read
            "unit_price": pa.array([Decimal("1.2345")], pa.decimal128(12, 4)),
            "wide": pa.array([Decimal("1.23")], pa.decimal128(30, 2)),  # more than 8 bytes
        }
    )
    _, columns = raw_metadata(parquet_bytes(table), {"amount": 2, "unit_price": 4, "wide": 2}) or (None, {})
    assert set(columns) == {"unit_price"}
    assert raw_metadata(parquet_bytes(table), {"amount": 2}) is None  # nothing to read raw
    integers = pa.table({"amount": pa.array([Decimal("1.23")], pa.decimal128(14, 2))})
    assert raw_metadata(parquet_bytes(integers, store_decimal_as_integer=True), {"amount": 2}) is None


@pytest.mark.parametrize("junk", [b"", b"PAR1", b"PAR1" + b"\xff" * 40 + b"PAR1", b"not parquet at all"])
def test_anything_unexpected_is_none(junk):
    assert raw_metadata(pa.py_buffer(junk), {"amount": 2}) is None


def test_a_truncated_footer_is_none():
    data = parquet_bytes(pa.table({"amount": pa.array([Decimal("1.00")], pa.decimal128(14, 2))})).to_pybytes()
    size = int.from_bytes(data[-8:-4], "little")
    assert raw_metadata(pa.py_buffer(data[:-8] + (size - 3).to_bytes(4, "little") + b"PAR1"), {"amount": 2}) is None


@pytest.fixture(scope="module")
def generated():
    return generate_tables(members=60, year=2024, seed=5, bad_rows=0.1, order="shuffled")["claims"]


def test_claims_read_raw_give_arrows_values(tmp_path, generated, monkeypatch):
    path = tmp_path / "claims.parquet"
    pq.write_table(generated, path, row_group_size=50)
    raw_reads = []
    convert = inputs._raw_converted
    monkeypatch.setattr(inputs, "_raw_converted", lambda *a: raw_reads.append(a[0].name) or convert(*a))
    got = load(CLAIMS, [path])
    assert set(raw_reads) == {"amount", "unit_price"}
    monkeypatch.setattr(inputs, "raw_metadata", lambda *a: None)
    plain = load(CLAIMS, [path])
    for name in ("amount", "unit_price", "quantity"):
        assert np.array_equal(got[name], plain[name]) and np.array_equal(got.nulls[name], plain.nulls[name])


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("amount", Decimal("2000000000000.00"), "2000000000000.00"),
        ("unit_price", Decimal("-2000000000000.0000"), "-2000000000000.0000"),
    ],
)
def test_a_value_out_of_range_names_its_row(tmp_path, generated, column, value, message):
    """A value the engine refuses, in a later row group: the file is read again the plain way,
    whose error names the row in the file and the value."""
    row = len(generated) - 5
    at = generated.schema.get_field_index(column)
    values = generated[column].to_pylist()
    values[row] = value
    scale = 2 if column == "amount" else 4
    t = generated.set_column(at, column, pa.array(values, pa.decimal128(18, scale)))  # 8 bytes: room for it
    path = tmp_path / "claims.parquet"
    pq.write_table(t, path, row_group_size=40)
    assert raw_metadata(pa.py_buffer(path.read_bytes()), {column: scale}) is not None
    with pytest.raises(InputError) as e:
        load(CLAIMS, [path])
    assert (e.value.file, e.value.column, e.value.row) == (path, column, row)
    assert message in e.value.message
