"""The write stage: what write_all writes from memory equals what the files say.

report.html is drawn from the arrays in memory (not by reading settlements.parquet
back); the tables are written with file-only encodings (label columns as
dictionaries, claim ids plain). Both must give exactly what the plain path gives.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from builders import INPUT_NAMES, generated_inputs
from click.testing import CliRunner

from adjudicate import cli
from adjudicate import policy as P
from adjudicate.engine import adjudicate, read_inputs
from adjudicate.money import to_fen
from adjudicate.outputs import (
    invariant_violations,
    item_codes,
    line_claim_ids,
    lines_table,
    parquet_options,
    rejected_table,
    settlements_table,
    write_all,
)
from adjudicate.report import report_html
from adjudicate.report.builders import PAYERS, _settlement_figures, _sum_by, run_figures
from adjudicate.sample import sample_dir


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A generated data set spanning a year boundary, adjudicated and written by write_all."""
    root = tmp_path_factory.mktemp("write")
    inputs = generated_inputs(root / "in")
    r = adjudicate(inputs, P.load("prefecture-employee"), threads=1)
    s = write_all(r, root / "out", inputs.digests(), inputs.claims.rows)
    return r, root / "out", s


def test_report_from_memory_is_the_report_from_the_files(written):
    _, out, _ = written
    assert (out / "report.html").read_text(encoding="utf-8") == report_html(out, "run")


def test_tables_read_back_as_the_in_memory_tables(written):
    r, out, _ = written
    for name, table in (
        ("settlements", settlements_table(r)),
        ("lines", lines_table(r)),
        ("rejected", rejected_table(r)),
    ):
        back = pq.read_table(out / f"{name}.parquet")
        assert back.schema.equals(table.schema), name
        assert back.equals(table), name
    assert pq.read_schema(out / "lines.parquet").field("class").type == pa.string()
    assert pq.read_schema(out / "settlements.parquet").field("setting").type == pa.string()


def test_summary_json_is_the_returned_summary_with_the_stage_timings(written):
    _, out, s = written
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == s
    assert {"write", "finish", "report"} <= set(s["timings_seconds"])


def _arrow_figures(settlements: pa.Table) -> tuple[list, dict, list]:
    """The run page's figures by Arrow's exact int64 group sums: an independent formulation."""

    def fen_table(keys, amounts):
        cols = {k: settlements.column(k) for k in keys}
        for a in amounts:
            cols[a] = pa.array(to_fen(settlements.column(a), a), pa.int64())
        return pa.table(cols)

    day = settlements.column("settle_date")
    t = fen_table([], PAYERS).append_column("year", pc.year(day)).append_column("month", pc.month(day))
    g = (
        t.group_by(["year", "month"])
        .aggregate([(a, "sum") for a in PAYERS])
        .sort_by([("year", "ascending"), ("month", "ascending")])
    )
    months = list(zip(g.column("year").to_pylist(), g.column("month").to_pylist()))
    monthly = {k: g.column(f"{k}_sum").to_pylist() for k in PAYERS}
    t = fen_table(["member_id", "benefit_year"], ["cash_paid", "account_paid"])
    g = t.group_by(["member_id", "benefit_year"]).aggregate([("cash_paid", "sum"), ("account_paid", "sum")])
    oop = (g.column("cash_paid_sum").to_numpy() + g.column("account_paid_sum").to_numpy()).tolist()
    return months, monthly, oop


def test_figures_from_arrays_equal_arrow_group_sums(written):
    _, out, _ = written
    settlements = pq.read_table(out / "settlements.parquet")
    months, monthly, oop = _arrow_figures(settlements)
    days = settlements.column("settle_date").cast(pa.int32()).to_numpy()
    member_codes = pa.chunked_array(settlements.column("member_id")).dictionary_encode().combine_chunks().indices
    fen = {k: to_fen(settlements.column(k), k) for k in PAYERS}
    from_arrays = run_figures(days, member_codes.to_numpy(), settlements.column("benefit_year").to_numpy(), fen)
    assert from_arrays.months == months
    for k, v in monthly.items():
        assert from_arrays.monthly[k].tolist() == v
    assert sorted(from_arrays.out_of_pocket.tolist()) == sorted(oop)
    # and the report's reading of a written table (no arrays in hand) is the same
    from_file = _settlement_figures(settlements)
    assert from_file.months == months and sorted(from_file.out_of_pocket.tolist()) == sorted(oop)


def test_group_sums_stay_exact_beyond_float_precision():
    big = np.array([2**60, 1, 2**60, 3, -(2**59)], np.int64)
    key = np.array([0, 0, 1, 1, 1])
    assert _sum_by(key, 2, big).tolist() == [2**60 + 1, 2**60 + 3 - 2**59]
    small = np.array([5, -7, 11], np.int64)
    assert _sum_by(np.array([1, 1, 0]), 3, small).tolist() == [11, -2, 0]


def test_sparse_member_codes_are_grouped_too():
    fen = {k: np.array([100, 200, 300], np.int64) for k in ("fund_pool", "fund_supplementary", "subsidy")}
    fen.update(cash_paid=np.array([1, 2, 4], np.int64), account_paid=np.array([10, 20, 40], np.int64))
    f = run_figures(
        np.array([19723, 19754, 19723], np.int32),  # 2024-01-01, 2024-02-01, 2024-01-01
        np.array([10**12, 5, 10**12], np.int64),
        np.array([2024, 2024, 2024], np.int16),
        fen,
    )
    assert f.months == [(2024, 1), (2024, 2)]
    assert f.monthly["fund_pool"].tolist() == [400, 200]
    assert sorted(f.out_of_pocket.tolist()) == [22, 55]
    # days years apart (codes by np.unique rather than by offset)
    f = run_figures(np.array([31, 19723, 32], np.int32), np.array([1, 1, 2]), np.array([1970, 2024, 1970]), fen)
    assert f.months == [(1970, 2), (2024, 1)]
    assert f.monthly["cash_paid"].tolist() == [5, 2]
    assert sorted(f.out_of_pocket.tolist()) == [11, 22, 44]


def test_claim_ids_are_stored_without_a_dictionary():
    schema = pa.schema([("claim_id", pa.string()), ("item_code", pa.string()), ("class", pa.string())])
    assert parquet_options(schema)["use_dictionary"] == ["item_code", "class"]


def test_run_records_startup_and_every_stage_in_summary(tmp_path):
    r = CliRunner().invoke(
        cli.main,
        ["run", "--inputs", str(sample_dir()), "--policy", "prefecture-employee", "--out", str(tmp_path / "o")],
    )
    assert r.exit_code == 0, r.output
    t = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))["timings_seconds"]
    assert list(t)[0] == "startup" and list(t)[-3:] == ["write", "finish", "report"]
    assert {"read", "encode", "kernel", "allocate"} <= set(t)
    assert all(v >= 0 for v in t.values())


def test_numbers_are_delta_encoded(written):
    """Amounts, dates and integers: DELTA_BINARY_PACKED (half the writer's CPU of PLAIN + snappy, smaller
    files); strings keep their dictionaries or PLAIN. Read back: the in-memory tables (test above)."""
    _, out, _ = written
    meta = pq.ParquetFile(out / "settlements.parquet").metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    for name in ("total", "cash_paid", "settle_date", "benefit_year", "admission_ordinal"):
        assert "DELTA_BINARY_PACKED" in enc[name], name
    assert "DELTA_BINARY_PACKED" not in enc["claim_id"]
    assert "RLE_DICTIONARY" in enc["member_id"]


def test_statistics_only_where_a_reader_can_skip_by_them(written):
    """Row-group statistics on member_id (the rows are in member order) and the integer keys; none on
    claim_id or provider_id, whose every row group spans nearly all values (their string min/max was 5 %
    of lines.parquet's encoding)."""
    _, out, _ = written
    for name, with_stats in (
        ("settlements", {"member_id", "settle_date", "benefit_year"}),
        ("lines", {"line_no"}),
    ):
        meta = pq.ParquetFile(out / f"{name}.parquet").metadata.row_group(0)
        have = {
            meta.column(i).path_in_schema
            for i in range(meta.num_columns)
            if meta.column(i).is_stats_set and meta.column(i).statistics.has_min_max
        }
        assert have == with_stats, name


def test_item_codes_are_written_from_the_claims_dictionary(written):
    """lines.item_code for a file: the codes of the dictionary-read claims column, gathered (nothing for
    the writer to hash); the same strings as the gathered column."""
    r, _, _ = written
    assert pa.types.is_dictionary(r.enc.source["item_code"].type)
    codes = item_codes(r.enc, for_file=True)
    assert pa.types.is_dictionary(codes.type)
    assert codes.cast(pa.string()).equals(r.enc.item_code)
    assert item_codes(r.enc, for_file=False) is r.enc.item_code


def test_invariant_violations_counts_each_broken_row():
    """Each invariant of contract §4 counted on its own rows (the summary's invariants_hold)."""
    ok = {"total": 100, "self_pay": 10, "first_self_pay": 5, "eligible": 85, "deductible": 20, "fund_pool": 50}
    ok |= {"fund_supplementary": 5, "member_policy_share": 30, "subsidy": 10, "account_paid": 15, "cash_paid": 20}
    rows = [dict(ok) for _ in range(6)]
    rows[1]["total"] = 101  # breaks 1 and 3
    rows[2]["fund_pool"] = 51  # breaks 2 and 3
    rows[3]["deductible"] = 31  # above member_policy_share
    rows[4]["subsidy"] = -1  # below zero (and the sum of 3)
    rows[5]["cash_paid"] = -5  # cash_paid may be negative, the sum breaks 3
    a = {k: np.array([r[k] for r in rows], np.int64) for k in ok}
    assert list(invariant_violations(a).values()) == [1, 1, 4, 1, 1, 1]
    assert not any(invariant_violations({k: v[:1] for k, v in a.items()}).values())
    assert not any(invariant_violations({k: v[:0] for k, v in a.items()}).values())


def test_item_codes_of_a_large_dictionary_are_cut_per_row_group(written, tmp_path, monkeypatch):
    """A dictionary larger than the writer's page: each row group gets the entries it uses (the writer
    puts a column chunk's whole dictionary in the file); still a dictionary type, and the same strings."""
    import adjudicate.outputs as O

    r, _, _ = written
    monkeypatch.setattr(O, "DICTIONARY_PAGE", 64)
    monkeypatch.setattr(O, "ROW_GROUP", 1000)
    codes = item_codes(r.enc, for_file=True)
    assert isinstance(codes, pa.ChunkedArray) and pa.types.is_dictionary(codes.type)
    assert codes.num_chunks == -(-len(codes) // 1000)
    assert all(len(c.dictionary) <= len(np.unique(c.indices)) for c in codes.chunks)
    assert codes.cast(pa.string()).combine_chunks().equals(r.enc.item_code)
    t = pa.table({"item_code": codes})
    pq.write_table(t, tmp_path / "l.parquet", row_group_size=1000, **parquet_options(t.schema))
    back = pq.read_table(tmp_path / "l.parquet")["item_code"]  # (with its stored Arrow schema: no amounts)
    assert back.cast(pa.string()).combine_chunks().equals(r.enc.item_code)
    meta = pq.ParquetFile(tmp_path / "l.parquet").metadata
    assert all("RLE_DICTIONARY" in meta.row_group(i).column(0).encodings for i in range(meta.num_row_groups))


def test_item_codes_read_plain_are_encoded_to_the_same_type(written):
    """A range that read item_code as plain strings gives the file type of the others (a streamed run
    appends every range to one file)."""
    r, _, _ = written
    read_plain = r.enc.source["item_code"].cast(pa.string())
    plain = dataclasses.replace(r.enc, source={**r.enc.source, "item_code": read_plain})
    codes = item_codes(plain, for_file=True)
    assert codes.type == item_codes(r.enc, for_file=True).type == pa.dictionary(pa.int32(), pa.string())
    assert codes.cast(pa.string()).equals(r.enc.item_code)


def test_work_beside_the_lines_is_done_once_and_changes_nothing(written, tmp_path):
    """write_all(beside=...) runs the caller's work once the other files are written, while
    lines.parquet still may be (readjudicate's comparison); the files are the same, and an error
    of that work leaves no output folder."""
    r, out, _ = written
    calls: list[list[str]] = []
    s = write_all(
        r,
        tmp_path / "out",
        {},
        len(r.enc.line_row),
        beside=lambda: calls.append(sorted(p.name for p in (tmp_path).glob(".out.tmp-*/*"))),
    )
    assert len(calls) == 1 and {"settlements.parquet", "rejected.parquet"} <= set(calls[0])
    for name in ("settlements", "lines", "rejected"):
        assert pq.read_table(tmp_path / "out" / f"{name}.parquet").equals(pq.read_table(out / f"{name}.parquet"))
    assert s["totals"] == json.loads((out / "summary.json").read_text())["totals"]

    def fails() -> None:
        raise ValueError("the caller's work failed")

    with pytest.raises(ValueError, match="caller's work"):
        write_all(r, tmp_path / "failed", {}, len(r.enc.line_row), beside=fails)
    assert not (tmp_path / "failed").exists() and not list(tmp_path.glob(".failed*"))


def test_line_claim_ids_repeat_the_claims_ids_as_the_gather_does(written):
    """lines.claim_id repeats each claim's id over its lines (_core.repeat_strings): the same strings
    as gathering every line's from the claims' dictionary (Encoded.line_claim_id), also after
    claims were cut out and when the claims' ids are a slice of a larger array."""
    r, _, _ = written
    e = r.enc
    assert line_claim_ids(e).equals(e.line_claim_id)
    cut = e.without(np.array([0, 3, len(e.member) - 1]))
    assert line_claim_ids(cut).equals(cut.line_claim_id)
    sliced = dataclasses.replace(e, claim_dict=pa.concat_arrays([pa.array(["x"]), e.claim_dict]).slice(1))
    assert line_claim_ids(sliced).equals(e.line_claim_id)


def test_repeat_strings_copies_each_string_once_per_line():
    from adjudicate import _core

    ids = pa.array(["a", "", "ccc", "dd"]).slice(1)  # "", "ccc", "dd": an offset into the buffers
    starts = np.array([0, 2, 2, 5], np.int64)  # 2 lines, none, 3 lines
    offsets = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset : ids.offset + 4]
    data = np.frombuffer(ids.buffers()[2], np.uint8)
    out_off, out_data = np.empty(6, np.int32), np.empty(6, np.uint8)
    _core.repeat_strings(offsets, data, starts, out_off, out_data)
    got = pa.Array.from_buffers(pa.string(), 5, [None, pa.py_buffer(out_off), pa.py_buffer(out_data)])
    assert got.to_pylist() == ["", "", "dd", "dd", "dd"]
    with pytest.raises(ValueError, match="does not hold"):
        _core.repeat_strings(offsets, data, starts, out_off, np.empty(5, np.uint8))


def test_group_sum_refuses_a_key_out_of_range():
    from adjudicate import _core

    out = np.zeros(2, np.int64)
    _core.group_sum(np.array([1, 0, 1], np.int32), np.array([5, 7, -2], np.int64), out)
    assert out.tolist() == [7, 3]
    with pytest.raises(ValueError, match="outside"):
        _core.group_sum(np.array([0, 2]), np.array([1, 1], np.int64), out)


def test_settlements_without_lines_are_the_settlements_with_them(written, tmp_path):
    """run --no-lines: the kernel stores no line amounts and settlements.parquet is written on the
    writer's own thread; every file it writes is the full run's."""
    r, out, s = written
    inputs = read_inputs(*([out.parent / "in" / f"{n}.parquet"] for n in INPUT_NAMES))
    bare = adjudicate(inputs, P.load("prefecture-employee"), threads=2, line_funds=False)
    s2 = write_all(bare, tmp_path / "o", inputs.digests(), inputs.claims.rows, with_lines=False)
    assert not (tmp_path / "o" / "lines.parquet").exists()
    for name in ("settlements", "rejected"):
        assert pq.read_table(tmp_path / "o" / f"{name}.parquet").equals(pq.read_table(out / f"{name}.parquet"))
    assert {k: v for k, v in s2.items() if k != "timings_seconds"} == {
        k: v for k, v in s.items() if k != "timings_seconds"
    }
    assert (tmp_path / "o" / "report.html").read_text(encoding="utf-8") == report_html(tmp_path / "o", "run")
