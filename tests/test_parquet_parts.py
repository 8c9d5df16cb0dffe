"""A Parquet file encoded in parts on a pool (parquet_parts.py) is byte for byte the file one
pq.write_table writes, for our real tables and options; what the join does not expect is written
the plain way; every reader reads the joined file."""

from __future__ import annotations

import decimal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import generated_inputs

import adjudicate.outputs as O
from adjudicate import compact_thrift, parquet_parts
from adjudicate import policy as P
from adjudicate.engine import adjudicate
from adjudicate.outputs import lines_table, parquet_options, rejected_table, settlements_table, write_all


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    inputs = generated_inputs(tmp_path_factory.mktemp("parts") / "in")
    return adjudicate(inputs, P.load("prefecture-employee"), threads=1)


@pytest.fixture(autouse=True)
def joins(monkeypatch) -> list[str]:
    """What each join of parts did: "joined", or "refused" (the table then written the plain way)."""
    done: list[str] = []
    real = parquet_parts._join

    def join(*args):
        try:
            real(*args)
        except compact_thrift.Malformed:
            done.append("refused")
            raise
        done.append("joined")

    monkeypatch.setattr(parquet_parts, "_join", join)
    return done


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(2) as p:
        yield parquet_parts.Encoders(p, 2)


def _both(table: pa.Table, tmp_path, row_group: int, pool, options: dict | None = None) -> tuple[bytes, bytes]:
    """The file of one pq.write_table, and the file joined from parts."""
    options = parquet_options(table.schema) if options is None else options
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=row_group, **options)
    parquet_parts.write_table(table, tmp_path / "parts.parquet", options, row_group, pool)
    return (tmp_path / "one.parquet").read_bytes(), (tmp_path / "parts.parquet").read_bytes()


def _row_groups(data: bytes) -> int:
    return pq.ParquetFile(pa.BufferReader(data)).metadata.num_row_groups


def _mixed(n: int) -> pa.Table:
    """Dictionary text, nulls, decimals stored as INT64, dates, plain text: every kind of our columns."""
    rng = np.random.default_rng(n)
    fen = rng.integers(-(10**12), 10**12, n)
    return pa.table(
        {
            "claim_id": pa.array([f"C{i:07d}" if i % 11 else None for i in range(n)], pa.string()),
            "member_id": pa.array([f"M{i // 3:05d}" for i in range(n)], pa.string()),
            "setting": O.label_array(rng.integers(0, 2, n).astype(np.int8), ("outpatient", "inpatient"), True),
            "settle_date": pa.array(rng.integers(19000, 20000, n).astype(np.int32), pa.int32()).cast(pa.date32()),
            "ordinal": pa.array(rng.integers(0, 5, n).astype(np.int32), mask=rng.random(n) < 0.3),
            "amount": O.decimals_for(True)(fen),
            "amount128": pa.array([decimal.Decimal(int(v)).scaleb(-2) for v in fen[:n]], pa.decimal128(18, 2)),
        }
    )


@pytest.mark.parametrize("name", ["settlements", "lines", "rejected"])
@pytest.mark.parametrize("row_group", [7, 100, 1000, 1 << 20])
def test_our_tables_joined_are_the_bytes_of_one_write(result, tmp_path, pool, joins, name, row_group):
    table = {
        "settlements": lambda: settlements_table(result, for_file=True),
        "lines": lambda: lines_table(result, for_file=True),
        "rejected": lambda: rejected_table(result),
    }[name]()
    one, parts = _both(table, tmp_path, row_group, pool)
    assert parts == one
    assert _row_groups(parts) == max(1, -(-len(table) // row_group))
    assert joins == (["joined"] if len(table) > row_group else [])


@pytest.mark.parametrize("rows", [0, 1, 9, 10, 11, 20, 29, 30, 95, 160, 171])
def test_row_group_counts_and_an_uneven_last_one(tmp_path, pool, joins, rows):
    """0 to 18 row groups of 10 rows (15 and more: the footer's list takes its long header)."""
    table = _mixed(rows)
    one, parts = _both(table, tmp_path, 10, pool)
    assert parts == one
    assert joins == (["joined"] if rows > 10 else [])
    back = pq.read_table(pa.BufferReader(parts))
    assert back.equals(pq.read_table(pa.BufferReader(one)))


def test_a_large_dictionary_cut_per_row_group(result, tmp_path, pool, joins, monkeypatch):
    """item_code with a dictionary larger than the page: one dictionary chunk per row group."""
    monkeypatch.setattr(O, "DICTIONARY_PAGE", 64)
    monkeypatch.setattr(O, "ROW_GROUP", 500)
    table = lines_table(result, for_file=True)
    assert table["item_code"].num_chunks > 2
    one, parts = _both(table, tmp_path, 500, pool)
    assert parts == one and joins == ["joined"]


def test_other_readers_read_the_joined_file(tmp_path, pool, joins):
    duckdb = pytest.importorskip("duckdb")
    polars = pytest.importorskip("polars")
    table = _mixed(95)
    _, parts = _both(table, tmp_path, 10, pool)
    path = tmp_path / "parts.parquet"
    assert _row_groups(parts) == 10 and joins == ["joined"]
    want = pq.read_table(path)
    assert want.cast(table.schema.remove(2).insert(2, pa.field("setting", pa.string()))).equals(
        table.set_column(2, "setting", table["setting"].cast(pa.string()))
    )
    got = duckdb.sql(f"select * from read_parquet('{path}')").arrow()
    got = got.read_all() if isinstance(got, pa.RecordBatchReader) else got
    assert got.to_pydict() == want.to_pydict()
    assert duckdb.sql(f"select count(*), sum(amount) from read_parquet('{path}')").fetchall() == [
        (95, sum(want["amount"].to_pylist()))
    ]
    pl = polars.read_parquet(path)
    assert pl.to_arrow().to_pydict() == want.to_pydict()


def test_what_the_join_does_not_expect_is_written_plain(tmp_path, pool, joins, monkeypatch):
    """Page indexes, bloom filters and encryption are refused before anything is encoded; a part that
    is not joinable anyway (here: page indexes) is written by the plain write, the same bytes."""
    table = _mixed(50)
    for options in ({"write_page_index": True}, {"bloom_filter_options": {"member_id": {}}}):
        assert not parquet_parts.joinable(options)
    assert parquet_parts.joinable(parquet_options(table.schema))
    indexed = {**parquet_options(table.schema), "write_page_index": True}
    one, parts = _both(table, tmp_path, 10, pool, indexed)
    assert parts == one
    # the join itself refuses the parts: page indexes are offsets it does not move
    assert joins == []
    monkeypatch.setattr(parquet_parts, "joinable", lambda options: True)
    one, parts = _both(table, tmp_path, 10, pool, indexed)
    assert joins == ["refused"] and parts == one
    bufs = [parquet_parts._encode(table.slice(i, 10), indexed, 10) for i in range(0, 50, 10)]
    with pytest.raises(compact_thrift.Malformed):
        parquet_parts._join(bufs, lambda b: None)


def test_parts_of_other_schemas_are_refused(tmp_path):
    options = parquet_options(_mixed(1).schema)
    a = parquet_parts._encode(_mixed(10), options, 10)
    b = parquet_parts._encode(_mixed(10).drop_columns(["amount128"]), options, 10)
    with pytest.raises(compact_thrift.Malformed):
        parquet_parts._join([a, b], lambda x: None)
    with pytest.raises(compact_thrift.Malformed):
        parquet_parts._join([], lambda x: None)


def test_each_part_is_written_as_soon_as_it_is_there():
    """The parts go to the file in order, each before the next is asked for: memory holds one part."""
    table = _mixed(40)
    options = parquet_options(table.schema)
    events: list[str] = []

    def parts():
        for k, i in enumerate(range(0, 40, 10)):
            events.append(f"part {k}")
            yield parquet_parts._encode(table.slice(i, 10), options, 10)

    out = bytearray()

    def write(b):
        events.append("write")
        out.extend(b)

    parquet_parts._join(parts(), write)
    assert events == ["write", "part 0", "write", "part 1", "write", "part 2", "write", "part 3", "write", "write"]
    one = pa.BufferOutputStream()
    pq.write_table(table, one, row_group_size=10, **options)
    assert bytes(out) == one.getvalue().to_pybytes()


def test_an_error_of_a_part_is_raised_and_the_rest_dropped(tmp_path, monkeypatch):
    table = _mixed(60)
    real = parquet_parts.Encoders._encode

    def encode(self, t, options, row_group):
        if t["member_id"][0].as_py() == "M00003":  # the second part
            raise OSError("disk full")
        return real(self, t, options, row_group)

    monkeypatch.setattr(parquet_parts.Encoders, "_encode", encode)
    with ThreadPoolExecutor(1) as one_thread:
        encoders = parquet_parts.Encoders(one_thread, 2)  # two parts queued: the second fails
        parts = parquet_parts.ParquetParts(table, parquet_options(table.schema), 10, encoders)
        futures = list(parts.futures or [])
        with pytest.raises(OSError, match="disk full"):
            parts.write(tmp_path / "x.parquet")
    assert futures[1].exception() is not None
    assert all(f.cancelled() or f.done() for f in futures)
    assert parts.futures is None


def test_buffers_are_reused_and_a_part_too_large_for_its_buffer_is_encoded_again(tmp_path, monkeypatch):
    """Parts are encoded into buffers given back once written (fresh memory costs), one part queued
    ahead of the one written per thread: six parts, one thread, two buffers at most. A part larger
    than its buffer is encoded into a growing one: the same bytes."""
    table = _mixed(60)
    allocated: list[int] = []
    real = pa.allocate_buffer

    def allocate(size, *args, **kwargs):
        allocated.append(size)
        return real(size, *args, **kwargs)

    monkeypatch.setattr(parquet_parts.pa, "allocate_buffer", allocate)
    with ThreadPoolExecutor(1) as one_thread:
        encoders = parquet_parts.Encoders(one_thread, 1)
        one, parts = _both(table, tmp_path, 10, encoders)
        assert parts == one
        assert 1 <= len(allocated) <= 2 and len(encoders._free) == len(allocated)
        monkeypatch.setattr(parquet_parts, "_capacity", lambda t: 100)
        grown: list[int] = []
        real_encode = parquet_parts._encode
        monkeypatch.setattr(parquet_parts, "_encode", lambda *a: grown.append(1) or real_encode(*a))
        one, parts = _both(table, tmp_path, 10, parquet_parts.Encoders(one_thread, 1))
        assert parts == one and len(grown) == 6


def test_small_tables_and_one_thread_take_the_plain_write(tmp_path, pool, monkeypatch):
    table = _mixed(10)
    assert parquet_parts.ParquetParts(table, parquet_options(table.schema), 10, pool).futures is None
    assert parquet_parts.ParquetParts(_mixed(11), parquet_options(table.schema), 10, None).futures is None
    assert len(parquet_parts.ParquetParts(_mixed(11), parquet_options(table.schema), 10, pool).futures or []) == 2
    # at most ``ahead`` parts queued before the first is written
    assert len(parquet_parts.ParquetParts(_mixed(95), parquet_options(table.schema), 10, pool).futures or []) == 2


def test_write_all_on_a_pool_writes_the_files_of_one_thread(result, tmp_path, joins, monkeypatch):
    """write_all with its tables in parts (small row groups: several per table) writes the same
    bytes as with one thread (each table by one pq.write_table)."""
    monkeypatch.setattr(O, "ROW_GROUP", 100)
    write_all(result, tmp_path / "one", {}, 0, threads=1)
    write_all(result, tmp_path / "two", {}, 0, threads=2)
    assert joins == ["joined", "joined"]
    for name in ("settlements", "lines", "rejected"):
        one = (tmp_path / "one" / f"{name}.parquet").read_bytes()
        assert (tmp_path / "two" / f"{name}.parquet").read_bytes() == one, name
        assert name == "rejected" or _row_groups(one) > 2
    write_all(result, tmp_path / "nolines", {}, 0, with_lines=False, threads=2)
    assert (tmp_path / "nolines" / "settlements.parquet").read_bytes() == (
        tmp_path / "one" / "settlements.parquet"
    ).read_bytes()
    assert not (tmp_path / "nolines" / "lines.parquet").exists()


def test_write_parquet_in_parts_is_the_plain_file(result, tmp_path, joins, monkeypatch):
    monkeypatch.setattr(O, "ROW_GROUP", 100)
    table = lines_table(result, for_file=True)
    O.write_parquet(table, tmp_path / "a.parquet", threads=1)
    O.write_parquet(table, tmp_path / "b.parquet", threads=2)
    assert joins == ["joined"]
    O.write_parquet(table, tmp_path / "c.parquet")  # every core
    a = (tmp_path / "a.parquet").read_bytes()
    assert (tmp_path / "b.parquet").read_bytes() == a == (tmp_path / "c.parquet").read_bytes()
