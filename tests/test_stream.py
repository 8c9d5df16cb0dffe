"""The streaming path gives the same outputs as one in-memory run (contract §3)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from builders import Case

from adjudicate import policy as P
from adjudicate.generate import generate_tables, write_dataset
from adjudicate.stream import run_streaming

NAMES = ("settlements", "lines", "rejected")


def both(folder, tmp_path, policy, parts, fmt_files=None):
    files = fmt_files or {k: [folder / f"{k}.parquet"] for k in ("claims", "members", "providers", "catalogue")}
    args = (files["claims"], files["members"], files["providers"], files["catalogue"], P.load(policy))
    run_streaming(*args, tmp_path / "one", parts=1)
    s = run_streaming(*args, tmp_path / "many", parts=parts)
    return s, {
        n: (pq.read_table(tmp_path / "one" / f"{n}.parquet"), pq.read_table(tmp_path / "many" / f"{n}.parquet"))
        for n in NAMES
    }


@pytest.mark.parametrize(
    "policy,parts", [("prefecture-employee", 3), ("shenzhen-comprehensive", 7), ("zhenjiang-resident", 2)]
)
def test_partitions_match_in_memory(tmp_path, policy, parts):
    folder = tmp_path / "gen"
    write_dataset(generate_tables(600, 2024, seed=9, bad_rows=0.05), folder)
    s, tables = both(folder, tmp_path, policy, parts)
    for name, (one, many) in tables.items():
        assert many.equals(one), name
    assert s["counts"]["reconciles"] and s["partitions"] == parts
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert one["totals"] == s["totals"]
    assert {k: v for k, v in one["counts"].items()} == s["counts"]


def test_claim_spanning_partitions_is_rejected_once(tmp_path):
    case = Case().provider()
    for m in range(20):
        case.member(f"M{m:02d}")
        case.claim(f"C{m:02d}", [("A1", "100.00")], member_id=f"M{m:02d}")
    case.claim("SPLIT", [("A1", "100.00"), ("A1", "50.00")], member_id="M00")
    case.claims[-1]["member_id"] = "M19"  # second line: another member, in another range
    case.claim("GHOST", [("A1", "10.00")], member_id="NOBODY")
    case.write(tmp_path / "in")
    s, tables = both(tmp_path / "in", tmp_path, "prefecture-employee", 4)
    for name, (one, many) in tables.items():
        assert many.equals(one), name
    rejected = {r["claim_id"]: r["reason"] for r in tables["rejected"][1].to_pylist()}
    assert rejected == {"SPLIT": "inconsistent_claim_header", "GHOST": "unknown_member"}
    assert s["counts"]["settled_claims"] == 20


def test_input_error_names_the_original_file_and_row(tmp_path):
    import pyarrow as pa

    from adjudicate.errors import InputError

    folder = tmp_path / "gen"
    write_dataset(generate_tables(50, 2024, seed=1), folder)
    claims = pq.read_table(folder / "claims.parquet")
    setting = claims["setting"].to_pylist()
    setting[123] = "teleconsultation"
    pq.write_table(
        claims.set_column(claims.schema.get_field_index("setting"), "setting", pa.array(setting, pa.string())),
        folder / "claims.parquet",
    )
    with pytest.raises(InputError) as e:
        both(folder, tmp_path, "prefecture-employee", 3)
    assert e.value.row == 123 and e.value.column == "setting" and e.value.file.name == "claims.parquet"


def test_csv_and_feather_inputs_stream_the_same(tmp_path):
    tables = generate_tables(300, 2024, seed=4, bad_rows=0.03)
    for fmt, suffix in (("csv", ".csv"), ("feather", ".arrow")):
        folder = tmp_path / fmt
        write_dataset(tables, folder, fmt)
        files = {k: [folder / f"{k}{suffix}"] for k in ("claims", "members", "providers", "catalogue")}
        _, out = both(folder, tmp_path / f"out-{fmt}", "city-employee", 3, files)
        for name, (one, many) in out.items():
            assert many.equals(one), (fmt, name)


def test_cli_partitions_option(tmp_path):
    from click.testing import CliRunner

    from adjudicate.cli import main

    folder = tmp_path / "gen"
    write_dataset(generate_tables(200, 2024, seed=2, bad_rows=0.02), folder)
    args = [
        "--claims",
        folder / "claims.parquet",
        "--members",
        folder / "members.parquet",
        "--providers",
        folder / "providers.parquet",
        "--catalogue",
        folder / "catalogue.parquet",
        "--policy",
        "prefecture-employee",
        "-q",
    ]
    for parts, out in ((1, "a"), (4, "b")):
        r = CliRunner().invoke(main, ["run", *map(str, args), "--partitions", str(parts), "--out", str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    for name in NAMES:
        assert pq.read_table(tmp_path / "b" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "a" / f"{name}.parquet")
        )


def test_bad_bytes_in_a_streamed_file_are_an_input_error(tmp_path):
    import pyarrow as pa

    from adjudicate.errors import InputError

    folder = tmp_path / "gen"
    write_dataset(generate_tables(50, 2024, seed=1), folder)
    claims = pq.read_table(folder / "claims.parquet")
    ids = claims["claim_id"].cast(pa.binary()).to_pylist()
    ids[7] = b"\xff\xfe"
    pq.write_table(claims.set_column(0, "claim_id", pa.array(ids, pa.binary())), folder / "claims.parquet")
    with pytest.raises(InputError) as e:
        both(folder, tmp_path, "prefecture-employee", 3)
    assert e.value.file.name == "claims.parquet"


def _write_split(tables, folder, files: int, row_group: int) -> list:
    """The claims in ``files`` Parquet files of small row groups (a new dictionary in every group)."""
    folder.mkdir(parents=True, exist_ok=True)
    claims = tables["claims"]
    cut = [len(claims) * i // files for i in range(files + 1)]
    paths = []
    for i in range(files):
        paths.append(folder / f"claims-{i}.parquet")
        pq.write_table(claims.slice(cut[i], cut[i + 1] - cut[i]), paths[-1], row_group_size=row_group)
    for name in ("members", "providers", "catalogue"):
        pq.write_table(tables[name], folder / f"{name}.parquet")
    return paths


@pytest.mark.parametrize(
    "order,parts,batch_rows,files",
    [("date", 2, 97, 1), ("member", 5, 1000, 2), ("shuffled", 3, 50, 3), ("shuffled", 9, 100_000, 1)],
)
def test_partition_pass_same_results_whatever_order_batches_and_files(
    tmp_path, monkeypatch, order, parts, batch_rows, files
):
    """Issue 9 §6: the partition pass reads in batches of BATCH_ROWS lines; the outputs are the
    in-memory run's whatever the row order, the batch size, the file split and the number of ranges
    (with bad rows: unknown members, claims whose lines disagree on the member)."""
    from adjudicate import stream

    monkeypatch.setattr(stream, "BATCH_ROWS", batch_rows)
    tables = generate_tables(300, 2024, seed=11, bad_rows=0.05, order=order)
    folder = tmp_path / "gen"
    claims = _write_split(tables, folder, files, row_group=max(batch_rows // 2, 10))
    files_of = {"claims": claims, **{k: [folder / f"{k}.parquet"] for k in ("members", "providers", "catalogue")}}
    s, out = both(folder, tmp_path, "prefecture-employee", parts, files_of)
    for name, (one, many) in out.items():
        assert many.equals(one), name
    assert s["counts"]["reconciles"] and s["partitions"] == parts


def test_claim_split_across_batches_and_ranges_is_rejected(tmp_path, monkeypatch):
    """A claim whose lines disagree on the member, far apart in the file (different batches of the
    partition pass), lands in no range: it is rejected as in memory."""
    from adjudicate import stream

    monkeypatch.setattr(stream, "BATCH_ROWS", 3)
    case = Case().provider()
    for m in range(12):
        case.member(f"M{m:02d}")
    case.claim("FAR", [("A1", "10.00")], member_id="M00")
    for m in range(12):
        case.claim(f"C{m:02d}", [("A1", "100.00"), ("A1", "1.00")], member_id=f"M{m:02d}")
    case.claim("FAR", [("A1", "20.00")], member_id="M11")
    case.claims[-1]["line_no"] = 2
    case.write(tmp_path / "in")
    s, tables = both(tmp_path / "in", tmp_path, "prefecture-employee", 3)
    for name, (one, many) in tables.items():
        assert many.equals(one), name
    rejected = {r["claim_id"]: r["reason"] for r in tables["rejected"][1].to_pylist()}
    assert rejected == {"FAR": "inconsistent_claim_header"}
    assert s["counts"]["settled_claims"] == 12


def _partitioned_sample(tmp_path, ranges: int):
    """A generated sample (5 % defective rows) whose claims file is partitioned into ``ranges``
    ranges of 500-line batches: (its folder, its members table, the Partitioner)."""
    from adjudicate.inputs import load
    from adjudicate.schema import MEMBERS
    from adjudicate.stream import Partitioner

    folder = tmp_path / "gen"
    write_dataset(generate_tables(200, 2024, seed=3, bad_rows=0.05), folder)
    members = load(MEMBERS, [folder / "members.parquet"])
    scratch = tmp_path / "parts"
    scratch.mkdir()
    part = Partitioner(members, ranges, scratch, batch_rows=500)
    part.add_file(0, folder / "claims.parquet")
    return folder, members, part


def test_partition_files_are_arrow_ipc_with_one_member_dictionary_per_range(tmp_path):
    """The settle pass memory-maps uncompressed Arrow IPC; a range's member_id is coded against
    that range's members only (written once), the orphans keep their text."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    folder, members, part = _partitioned_sample(tmp_path, 4)
    seen = []
    for k in range(4):
        (f,) = part.files[k]
        with pa.memory_map(str(f)) as src:
            t = ipc.open_stream(src).read_all()
        member = t["member_id"]
        assert pa.types.is_dictionary(member.type)
        assert all(c.dictionary.equals(part.members_of_part[k]) for c in member.chunks)
        seen.extend(member.to_pylist())
    ranges = [set(part.members_of_part[k].to_pylist()) for k in range(4)]
    assert sum(len(r) for r in ranges) == members.rows and set().union(*ranges) == set(members["member_id"].to_pylist())
    # every line is in exactly one file, with its original row number
    rows = []
    for k in range(5):
        for f in part.files[k]:
            with pa.memory_map(str(f)) as src:
                rows.extend(ipc.open_stream(src).read_all()["__row"].to_pylist())
    assert sorted(rows) == list(range(pq.ParquetFile(folder / "claims.parquet").metadata.num_rows))


def test_partition_pass_is_timed_apart(tmp_path):
    """summary.json times the partition pass as its own stage (docs/data-dictionary.md)."""
    folder = tmp_path / "gen"
    write_dataset(generate_tables(100, 2024, seed=5), folder)
    s, _ = both(folder, tmp_path, "prefecture-employee", 3)
    t = s["timings_seconds"]
    assert t["partition"] > 0 and {"read", "encode", "kernel", "write"} <= set(t)


def test_member_lookup_through_batch_dictionaries(tmp_path):
    """Each line's member is found through its batch's dictionary, repeated entries and unknown
    members included, and a dictionary seen again is not looked up again."""
    import numpy as np
    import pyarrow as pa

    from adjudicate.inputs import load
    from adjudicate.schema import MEMBERS
    from adjudicate.stream import Partitioner

    case = Case().provider()
    for m in ("M1", "M2", "M3"):
        case.member(m)
    case.write(tmp_path / "in")
    members = load(MEMBERS, [tmp_path / "in" / "members.parquet"])
    row = {m: i for i, m in enumerate(members["member_id"].to_pylist())}
    part = Partitioner(members, 2, tmp_path)
    dictionary = pa.array(["M2", "X", "M2", "M1", "M3", "M1"])
    ids = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 3, None, 4, 5], pa.int32()), dictionary)
    want = [row["M2"], -1, row["M2"], row["M1"], -1, row["M3"], row["M1"]]
    assert part._member_rows(ids).tolist() == want
    looked_up = []
    lookup = part._lookup
    part._lookup = lambda d: looked_up.append(len(d)) or lookup(d)
    assert np.array_equal(part._member_rows(ids), want) and looked_up == [0]  # seen: nothing new
    longer = pa.DictionaryArray.from_arrays(
        pa.array([6, 0], pa.int32()), pa.concat_arrays([dictionary, pa.array(["M3"])])
    )
    assert part._member_rows(longer).tolist() == [row["M3"], row["M2"]] and looked_up == [0, 1]
    assert part._member_rows(pa.array(["M3", None, "Q"])).tolist() == [row["M3"], -1, -1]


def test_flagged_claims_are_checked_exactly(tmp_path, monkeypatch):
    """The partition pass flags claims by a hash of their id; a flagged claim (two ids may share a
    hash) is only moved to the orphans when its lines really landed in more than one range."""
    import numpy as np

    from adjudicate import stream

    class EveryClaimFlagged(stream.Router):
        """Flags every claim noted, as if every key collided."""

        def note_claims(self, offsets, data, valid, part):
            self.seen = np.union1d(getattr(self, "seen", np.empty(0, np.uint64)), self.keys(offsets, data, valid))
            return super().note_claims(offsets, data, valid, part)

        def flagged(self):
            return self.seen, list(range(self.parts + 1))

    monkeypatch.setattr(stream, "Router", EveryClaimFlagged)
    monkeypatch.setattr(stream, "BATCH_ROWS", 3)
    case = Case().provider()
    for m in range(12):
        case.member(f"M{m:02d}")
        case.claim(f"C{m:02d}", [("A1", "100.00"), ("A1", "1.00")], member_id=f"M{m:02d}")
    case.claim("SPLIT", [("A1", "10.00"), ("A1", "20.00")], member_id="M00")
    case.claims[-1]["member_id"] = "M11"
    case.write(tmp_path / "in")
    s, tables = both(tmp_path / "in", tmp_path, "prefecture-employee", 3)
    for name, (one, many) in tables.items():
        assert many.equals(one), name
    rejected = {r["claim_id"]: r["reason"] for r in tables["rejected"][1].to_pylist()}
    assert rejected == {"SPLIT": "inconsistent_claim_header"}
    assert s["counts"]["settled_claims"] == 12


def test_router_member_lookup_is_exact():
    """The compiled member table finds each id by its bytes: repeated ids give their first row, empty
    and null ids and ids of any length work, text with 32- or 64-bit offsets alike."""
    import numpy as np
    import pyarrow as pa

    from adjudicate._partition import MAX_PARTS, Router
    from adjudicate.stream import _text_buffers

    ids = pa.array(["M1", "", "a much longer member id, more than 8 bytes", "M1", "M2"], pa.large_string())
    off, data, _ = _text_buffers(ids)
    router = Router(off, data, np.zeros(5, np.int32), np.arange(5, dtype=np.int32), 1)
    for kind in (pa.string(), pa.large_string()):
        lines = pa.array(["M2", None, "M1", "", "M3", "a much longer member id, more than 8 bytes", "M"], kind)
        assert router.members(*_text_buffers(lines.slice(1))).tolist() == [-1, 0, 1, -1, 2, -1]
    with pytest.raises(ValueError):
        Router(off, data, np.zeros(5, np.int32), np.arange(5, dtype=np.int32), MAX_PARTS + 1)


def test_router_orders_lines_by_range_stably():
    """route: each line's range (orphans last), the lines in range order keeping their order within
    a range, the bounds of each range and the member's code within its range."""
    import numpy as np
    import pyarrow as pa

    from adjudicate._partition import Router
    from adjudicate.stream import _text_buffers

    off, data, _ = _text_buffers(pa.array(["A", "B", "C"], pa.large_string()))
    router = Router(off, data, np.array([1, 0, 1], np.int32), np.array([0, 0, 1], np.int32), 2)
    part, order, bounds, codes = router.route(np.array([2, -1, 0, 1, 2, 1], np.int32))
    assert part.tolist() == [1, 2, 1, 0, 1, 0]
    assert order.tolist() == [3, 5, 0, 2, 4, 1] and bounds.tolist() == [0, 2, 5, 6]
    assert codes[:5].tolist() == [0, 0, 1, 0, 1]


def test_streamed_report_is_drawn_from_the_ranges(tmp_path, monkeypatch):
    """report.html of a streamed run is drawn from each range's arrays (settlements.parquet is not read
    back: at 50 M lines that was the run's peak memory) and is the page drawn from settlements.parquet."""
    from adjudicate.report import builders, report_html

    folder = tmp_path / "gen"
    write_dataset(generate_tables(300, 2024, seed=4, bad_rows=0.05), folder)
    args = [[folder / f"{k}.parquet"] for k in ("claims", "members", "providers", "catalogue")]
    read_back = builders._settlement_figures

    def no_read_back(table):
        raise AssertionError("settlements.parquet read back")

    monkeypatch.setattr(builders, "_settlement_figures", no_read_back)
    run_streaming(*args, P.load("prefecture-employee"), tmp_path / "many", parts=4)
    monkeypatch.setattr(builders, "_settlement_figures", read_back)
    page = (tmp_path / "many" / "report.html").read_text(encoding="utf-8")
    assert "expenditure by month" in page  # the page has its figures
    assert page == report_html(tmp_path / "many", "run")


def test_router_flags_claims_noted_in_two_ranges():
    """note_claims: a claim whose lines go to two ranges (here in different batches, a null id being
    one claim too) is flagged with both ranges; claims kept to one range are not."""
    import numpy as np
    import pyarrow as pa

    from adjudicate._partition import Router
    from adjudicate.stream import _text_buffers

    off, data, _ = _text_buffers(pa.array(["A"], pa.large_string()))
    router = Router(off, data, np.zeros(1, np.int32), np.zeros(1, np.int32), 4)
    router.note_claims(*_text_buffers(pa.array(["C1", "C1", "C2", None])), np.array([0, 0, 1, 2], np.int32))
    router.note_claims(*_text_buffers(pa.array(["C2", "C1", None, "C3"])), np.array([1, 3, 2, 4], np.int32))
    keys, ranges = router.flagged()
    assert keys.tolist() == router.keys(*_text_buffers(pa.array(["C1"]))).tolist() and ranges == [0, 3]
    router.note_claims(*_text_buffers(pa.array([None], pa.string())), np.array([1], np.int32))
    keys, ranges = router.flagged()
    assert len(keys) == 2 and ranges == [0, 1, 2, 3]


def test_router_reserve_sizes_the_claim_table_once_and_keeps_the_claims():
    """reserve: the claim table is sized at once for the claims to come (at most half full), the claims
    noted before are kept, and a smaller request never shrinks it."""
    import numpy as np
    import pyarrow as pa

    from adjudicate._partition import Router
    from adjudicate.stream import _text_buffers

    off, data, _ = _text_buffers(pa.array(["A"], pa.large_string()))
    router = Router(off, data, np.zeros(1, np.int32), np.zeros(1, np.int32), 4)
    router.note_claims(*_text_buffers(pa.array(["C1", "C2"])), np.array([0, 1], np.int32))
    assert router.noted == 2 and router.capacity == 1 << 16
    router.reserve(100_000)
    assert router.capacity == 1 << 18 and router.noted == 2
    router.reserve(10)
    assert router.capacity == 1 << 18
    router.note_claims(*_text_buffers(pa.array(["C1", "C3"])), np.array([2, 1], np.int32))
    keys, ranges = router.flagged()
    assert keys.tolist() == router.keys(*_text_buffers(pa.array(["C1"]))).tolist() and ranges == [0, 2]
    assert router.noted == 3


def test_partition_pass_sizes_the_claim_table_from_its_first_batch(tmp_path):
    """Given the lines to come, the pass sizes its claim table after the first batch (no step-by-step
    growth), never above one claim per 4 lines; row numbers of a Parquet file are written as int32."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from adjudicate.inputs import load
    from adjudicate.schema import MEMBERS
    from adjudicate.stream import Partitioner, count_lines

    folder = tmp_path / "gen"
    write_dataset(generate_tables(3000, 2024, seed=3), folder)
    members = load(MEMBERS, [folder / "members.parquet"])
    claims = folder / "claims.parquet"
    n = count_lines([claims])
    assert n is not None and n > 100_000  # more than 32 768 claims: the first table (65 536 slots) must grow

    def partition(lines: int | None) -> tuple[int, int, int]:
        """(the table's slots before sizing, after the pass, the claims noted)."""
        scratch = tmp_path / f"parts-{lines}"
        scratch.mkdir()
        part = Partitioner(members, 3, scratch, batch_rows=n // 10, lines=lines)
        before = []
        size = part._size_claim_table
        part._size_claim_table = lambda seen: before.append(part.router.capacity) or size(seen)  # type: ignore[method-assign]
        part.add_file(0, claims)
        out = (before[0], part.router.capacity, part.router.noted)
        assert len(part.split_claims()) == 0
        (f,) = part.files[0]
        with pa.memory_map(str(f)) as src:
            assert ipc.open_stream(src).read_all().schema.field("__row").type == pa.int32()
        return out

    sizes = {lines: partition(lines) for lines in (None, n, 4 * n)}
    claims_seen = sizes[None][2]
    assert sizes[None][1] == sizes[n][1] >= 2 * claims_seen  # same table, reached at once
    assert sizes[n][0] < sizes[n][1]  # reserved after the first batch
    assert sizes[4 * n][1] >= 2 * (4 * n * claims_seen // n)  # sized for the lines announced


def test_range_files_hold_narrow_codes_and_8_byte_decimals(tmp_path):
    """Issue 9 §6: fewer bytes a line in the range files (written and read back at about 1.5 s per
    GiB): the enums' codes in one byte, the other coded columns' in two, prices and amounts as
    decimal64 of the same scale; the range's lines load with the same values as the claims file's."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from adjudicate.inputs import load
    from adjudicate.schema import CLAIMS
    from adjudicate.stream import ROW

    folder, members, part = _partitioned_sample(tmp_path, 2)
    with pa.memory_map(str(part.files[0][0])) as src:
        schema = ipc.open_stream(src).read_all().schema
    assert {n: schema.field(n).type.index_type for n in ("setting", "referral", "provider_id", "item_code")} == {
        "setting": pa.int8(),
        "referral": pa.int8(),
        "provider_id": pa.int16(),
        "item_code": pa.int16(),
    }
    assert schema.field("unit_price").type == pa.decimal64(12, 4) and schema.field("amount").type == pa.decimal64(14, 2)
    whole = load(CLAIMS, [folder / "claims.parquet"])
    for k in range(3):
        got = part.load(k, [folder / "claims.parquet"])
        if got is None:
            continue
        rows = np.concatenate([part._read(f, k)[ROW].to_numpy() for f in part.files[k]])
        for name in ("unit_price", "amount", "quantity", "setting", "referral"):
            assert np.array_equal(got[name], np.asarray(whole[name])[rows]), name
        for name in ("provider_id", "item_code", "diagnosis"):
            assert got[name].to_pylist() == whole[name].take(pa.array(rows)).to_pylist(), name


def test_narrow_decimal_is_exact_or_declines():
    """A decimal128 column goes to 8 bytes only when every valid value fits in 18 digits, exactly."""
    from decimal import Decimal

    import pyarrow as pa

    from adjudicate.stream import _narrow_decimal

    a = pa.array([Decimal("1.2345"), None, Decimal("-99999999.9999"), Decimal("0")], pa.decimal128(12, 4))
    for x in (a, a.slice(1)):
        got = _narrow_decimal(x)
        assert got is not None and got.type == pa.decimal64(12, 4) and got.to_pylist() == x.to_pylist()
    big = pa.array([Decimal("1"), Decimal("1" + "0" * 18)], pa.decimal128(38, 0))
    assert _narrow_decimal(big) is None
    assert _narrow_decimal(big.slice(0, 1)).type == pa.decimal64(18, 0)  # type: ignore[union-attr]
    assert _narrow_decimal(pa.array([Decimal("-1" + "0" * 20)], pa.decimal128(38, 0))) is None


def test_codes_widened_and_decimals_kept_wide_during_the_pass_same_outputs(tmp_path, monkeypatch):
    """A batch whose codes need more bytes than the batches before, or whose decimals do not fit in 8,
    opens a new file for its range; the range's files are read back with one code type per column and
    the outputs are the in-memory run's."""
    import pyarrow as pa

    from adjudicate import stream

    monkeypatch.setattr(stream, "BATCH_ROWS", 50)
    monkeypatch.setattr(stream, "_NARROW_CODES", {k: pa.int8() for k in stream._NARROW_CODES})
    mixed = []
    common = stream._common_codes

    def spy(tables):
        mixed.append(len({t.schema.field("item_code").type for t in tables}) > 1)
        out = common(tables)
        assert len({t.schema.field("item_code").type for t in out}) == 1
        return out

    monkeypatch.setattr(stream, "_common_codes", spy)
    wide = []
    narrow_decimal = stream._narrow_decimal
    monkeypatch.setattr(  # every third batch's decimals "do not fit": kept as decimal128 from then on
        stream, "_narrow_decimal", lambda a: None if len(wide) > 2 else wide.append(1) or narrow_decimal(a)
    )
    tables = generate_tables(300, 2024, seed=11, bad_rows=0.05)
    folder = tmp_path / "gen"
    claims = _write_split(tables, folder, 2, row_group=5000)
    # the first file: a first row group of 40 lines (fewer than 128 item codes), then large ones
    first = pq.read_table(claims[0])
    with pq.ParquetWriter(claims[0], first.schema) as w:
        w.write_table(first.slice(0, 40))
        w.write_table(first.slice(40), row_group_size=5000)
    files_of = {"claims": claims, **{k: [folder / f"{k}.parquet"] for k in ("members", "providers", "catalogue")}}
    s, out = both(folder, tmp_path, "prefecture-employee", 3, files_of)
    for name, (one, many) in out.items():
        assert many.equals(one), name
    assert any(mixed) and s["counts"]["reconciles"]


def test_next_file_is_digested_while_one_is_partitioned(tmp_path, monkeypatch):
    """The SHA-256 of claims file i + 1 is read while file i is partitioned (not after it), and each
    file's digest is still taken before it is partitioned; summary.json lists every file's digest."""
    import hashlib
    import threading

    from adjudicate import stream

    tables = generate_tables(200, 2024, seed=5)
    folder = tmp_path / "gen"
    claims = _write_split(tables, folder, 3, row_group=1000)
    digest, add_file = stream.digest_while_reading, stream.Partitioner.add_file
    started = {p: threading.Event() for p in claims}
    events: list[tuple[str, int]] = []

    def spy_digest(path):
        events.append(("digest", claims.index(path)))
        started[path].set()
        return digest(path)

    def spy_add(self, index, path):
        events.append(("add", index))
        if index + 1 < len(claims):
            assert started[claims[index + 1]].wait(10), "the next file's digest runs beside this one's pass"
        add_file(self, index, path)

    monkeypatch.setattr(stream, "digest_while_reading", spy_digest)
    monkeypatch.setattr(stream.Partitioner, "add_file", spy_add)
    files_of = {"claims": claims, **{k: [folder / f"{k}.parquet"] for k in ("members", "providers", "catalogue")}}
    s, out = both(folder, tmp_path, "prefecture-employee", 2, files_of)
    for name, (one, many) in out.items():
        assert many.equals(one), name
    for i in range(3):
        assert events.index(("digest", i)) < events.index(("add", i))
        assert s["inputs"][str(claims[i])] == hashlib.sha256(claims[i].read_bytes()).hexdigest()


def test_partition_pass_reads_member_id_as_text_and_low_cardinality_columns_coded(tmp_path):
    """member_id (one value per member: its Parquet dictionary rarely fits a page) is read as text and
    looked up line by line by the router; the other text columns of DICTIONARY_COLUMNS as dictionaries."""
    import pyarrow as pa

    from adjudicate.stream import iter_batches

    folder = tmp_path / "gen"
    write_dataset(generate_tables(50, 2024, seed=2), folder)
    batch = next(iter_batches(folder / "claims.parquet", 100))
    assert batch.schema.field("member_id").type == pa.string()
    for name in ("provider_id", "setting", "referral", "item_code", "diagnosis"):
        assert pa.types.is_dictionary(batch.schema.field(name).type), name


def test_narrow_codes_leave_room_for_the_null_code():
    """A dictionary of 128 values takes two-byte codes: readers code a null as the dictionary's length
    (inputs.dictionary_lookup fills nulls with it), which must fit the index type too."""
    import pyarrow as pa

    from adjudicate.inputs import dictionary_lookup
    from adjudicate.stream import _index_type

    assert [_index_type(n) for n in (1, 127, 128, 32767, 32768)] == [
        pa.int8(),
        pa.int8(),
        pa.int16(),
        pa.int16(),
        pa.int32(),
    ]
    values = pa.array([f"v{i}" for i in range(128)])
    indices = pa.array([127, None, 0], pa.int32()).cast(_index_type(len(values)))
    coded = pa.chunked_array([pa.DictionaryArray.from_arrays(indices, values)])
    assert dictionary_lookup(coded, values).tolist() == [127, -1, 0]
