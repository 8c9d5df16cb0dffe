"""The claims read row group by row group (``inputs._parquet_converted``) against the
whole-file read: the same columns, and errors naming the row in the file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from adjudicate import inputs
from adjudicate.errors import InputError
from adjudicate.generate import generate_tables
from adjudicate.inputs import DICTIONARY_COLUMNS, Converted, _read_file, dictionary_lookup, from_arrow, load
from adjudicate.keep import keeping
from adjudicate.schema import CLAIMS


def whole(path) -> object:
    """The claims of one file read the plain way: the whole file, then converted."""
    names = pq.read_schema(path).names
    coded = [c for c in DICTIONARY_COLUMNS["claims"] if c in names]
    table = pq.read_table(path, columns=[c.name for c in CLAIMS.columns if c.name in names], read_dictionary=coded)
    return from_arrow(CLAIMS, [path], [(table, False)], threads=1)


def same_tables(a, b) -> None:
    assert a.rows == b.rows
    for name in ("member_id", "provider_id", "item_code", "diagnosis"):  # still dictionary-read
        assert pa.types.is_dictionary(a.coded(name).type) and b.coded(name).type == a.coded(name).type
    assert list(a.values) == list(b.values)
    for name in a.values:
        x, y = a.values[name], b.values[name]
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
            assert x.flags.writeable, name
        else:
            assert x.type == y.type and x.to_pylist() == y.to_pylist(), name
        assert np.array_equal(a.nulls[name], b.nulls[name]), name


@pytest.fixture(scope="module")
def generated():
    return generate_tables(members=60, year=2024, seed=5, bad_rows=0.1, order="shuffled")["claims"]


@pytest.mark.parametrize("group", [1, 7, 100, 1_000_000])
def test_row_groups_give_the_whole_files_columns(tmp_path, generated, group):
    path = tmp_path / "claims.parquet"
    pq.write_table(generated, path, row_group_size=group)
    part, _ = _read_file(path, CLAIMS)
    assert isinstance(part, Converted)  # read row group by row group
    same_tables(load(CLAIMS, [path]), whole(path))


@pytest.mark.parametrize("group", [7, 100])
def test_columns_written_in_place_as_the_plain_read_has_them(tmp_path, generated, group):
    """Enums, line numbers (int64 in the file) and float quantities are converted straight into
    the file's arrays where a group allows, else the plain way: quantities at a rounding tie of
    their millionths (settled by their decimals), nulls, and referral nulls, group by group."""
    n = len(generated)
    qty = [
        [0.0000005, 2.5e-06, 1 / 3, None, 1.0, 12.345678][i % 6] if (i // 20) % 3 == 1 else 1.0 + i % 4
        for i in range(n)
    ]
    t = generated.set_column(generated.schema.get_field_index("quantity"), "quantity", pa.array(qty, pa.float64()))
    ln = generated.schema.get_field_index("line_no")
    t = t.set_column(ln, "line_no", pc.cast(t["line_no"], pa.int64()))
    path = tmp_path / "claims.parquet"
    pq.write_table(t, path, row_group_size=group)
    part, _ = _read_file(path, CLAIMS)
    assert isinstance(part, Converted)
    got = load(CLAIMS, [path])
    same_tables(got, whole(path))
    assert got["quantity"][np.array(qty, dtype=object) == 0.0000005].tolist() == [1] * qty.count(0.0000005)


def test_claim_ids_longer_in_later_row_groups(tmp_path, generated):
    """The claim ids' buffer grows when later groups' ids are longer than the first's; nulls kept."""
    ids = generated["claim_id"].to_pylist()
    ids = [None if i % 11 == 3 else (v or "") + "-" + "x" * (i // 50) for i, v in enumerate(ids)]
    t = generated.set_column(0, "claim_id", pa.array(ids, pa.string()))
    path = tmp_path / "claims.parquet"
    pq.write_table(t, path, row_group_size=64)
    got = load(CLAIMS, [path])
    assert got["claim_id"].to_pylist() == ids
    same_tables(got, whole(path))


def test_kept_columns_and_several_files(tmp_path, generated):
    t = generated.append_column("serial", pc.cast(pa.array(np.arange(len(generated))), pa.string()))
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    cut = len(t) // 3
    pq.write_table(t.slice(0, cut), paths[0], row_group_size=50)
    pq.write_table(t.slice(cut), paths[1], row_group_size=80)
    with keeping(["serial"]):
        got = load(CLAIMS, paths)
        assert got["serial"].to_pylist() == [str(i) for i in range(len(t))]
        plain = pq.read_table(paths[0]), pq.read_table(paths[1])
        expected = from_arrow(CLAIMS, paths, [(plain[0], False), (plain[1], False)], threads=1)
    assert np.array_equal(got["amount"], expected["amount"])
    assert got["claim_id"].to_pylist() == expected["claim_id"].to_pylist()


@pytest.mark.parametrize(
    ("column", "value", "typ", "message"),
    [
        ("setting", "bogus", pa.string(), "unknown value 'bogus'"),
        ("quantity", float("inf"), pa.float64(), "quantity inf"),
        ("admit_date", -80_000, pa.int32(), "out of range"),
    ],
)
def test_an_error_in_a_later_row_group_names_the_row_in_the_file(tmp_path, generated, column, value, typ, message):
    row = len(generated) - 5
    at = generated.schema.get_field_index(column)
    values = pc.cast(generated[column], typ).to_pylist()
    values[row] = value
    t = generated.set_column(at, column, pc.cast(pa.array(values, typ), generated.schema.field(column).type))
    path = tmp_path / "claims.parquet"
    pq.write_table(t, path, row_group_size=40)
    with pytest.raises(InputError) as e:
        load(CLAIMS, [path])
    assert (e.value.file, e.value.column, e.value.row) == (path, column, row)
    assert message in e.value.message


@pytest.mark.parametrize("batch", [1, 7, 13, 1 << 22])
def test_dictionaries_looked_up_together_in_batches(monkeypatch, batch):
    """Distinct chunk dictionaries are looked up a batch at a time; positions as a plain lookup."""
    monkeypatch.setattr(inputs, "LOOKUP_BATCH", batch)
    names = pa.array(["m0", "m1", "m2", "m3", "m4", "m5"])
    dictionaries = [
        pa.array(["m3", "zz", "m1"]),
        pa.array(["m5", "m4", "m3", "m2", "m1", "zz", "m0"]),
        pa.array([], pa.string()),
    ]
    parts = [
        pa.DictionaryArray.from_arrays(pa.array(rows, pa.int32()), dictionaries[k % 3])
        for k, rows in enumerate([[0, 1, None, 2], [6, 0, 5, 3], [], [2, 2, 0], [None, 4], []])
    ]
    arr = pa.chunked_array(parts, pa.dictionary(pa.int32(), pa.string()))
    expected = [-1 if v is None or v not in names.to_pylist() else names.to_pylist().index(v) for v in arr.to_pylist()]
    assert dictionary_lookup(arr, names, np.int32).tolist() == expected


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_claim_codes_of_either_width(generated, dtype):
    """encode's int32 claim codes (rows that fit) are its int64 ones. (The line order they once fed,
    _core.group_lines, gave way to _encode.layout_claims: tests/test_layout_claims.py.)"""
    from adjudicate.encode import claim_codes

    ids = generated["claim_id"]
    code, dictionary = claim_codes(ids, dtype)
    wide, same = claim_codes(ids)
    assert code.dtype == dtype and code.tolist() == wide.tolist() and dictionary.equals(same)


def test_empty_row_groups_and_an_empty_file(tmp_path, generated):
    """Row groups without rows are skipped; a file without rows is read as before."""
    path = tmp_path / "claims.parquet"
    with pq.ParquetWriter(path, generated.schema) as w:
        w.write_table(generated.slice(0, 0))
        w.write_table(generated.slice(0, 30))
        w.write_table(generated.slice(30, 0))
        w.write_table(generated.slice(30))
    got = load(CLAIMS, [path])
    assert got.rows == len(generated)
    same_tables(got, whole(path))
    pq.write_table(generated.slice(0, 0), path)
    assert load(CLAIMS, [path]).rows == 0


@pytest.mark.parametrize("group", [1, 7, 1_000_000])
def test_claim_ids_coded_while_read(tmp_path, generated, group):
    """The codes made while the file is read are dictionary_encode's of the whole column
    (nulls -1), and encode takes them; a table of other rows (take) or of several files
    has none, and codes its ids when encoded, to the same effect."""
    from adjudicate.encode import claim_codes, claim_codes_of

    ids = generated["claim_id"].to_pylist()
    ids = [None if i % 13 == 5 else v + "长" * (i % 3) for i, v in enumerate(ids)]
    t = generated.set_column(0, "claim_id", pa.array(ids, pa.string()))
    path = tmp_path / "claims.parquet"
    pq.write_table(t, path, row_group_size=group)
    table = load(CLAIMS, [path])
    code, dictionary = table.codes["claim_id"]
    enc = pa.array(ids, pa.string()).dictionary_encode()
    assert code.dtype == np.int32
    assert code.tolist() == pc.fill_null(enc.indices, -1).to_pylist()
    assert dictionary.to_pylist() == enc.dictionary.to_pylist()
    got, same = claim_codes_of(table, np.int32)
    assert got is code and same is dictionary
    assert table["claim_id"].to_pylist() == ids  # the strings, decoded when asked for
    members = generated["member_id"]
    code, dictionary = table.codes["member_id"]  # member ids too: the same codes as dictionary_encode's
    enc = members.combine_chunks().dictionary_encode()
    assert code.tolist() == pc.fill_null(enc.indices, -1).to_pylist()
    assert dictionary.to_pylist() == enc.dictionary.to_pylist()
    assert table.coded("member_id").to_pylist() == members.to_pylist()
    assert table.take(np.arange(3)).codes == {}
    two = load(CLAIMS, [path, path])
    assert two.codes == {}
    c2, d2 = claim_codes_of(two, np.int32)
    c1, d1 = claim_codes(pa.array(ids + ids, pa.string()), np.int32)
    assert c2.tolist() == c1.tolist() and d2.to_pylist() == d1.to_pylist()


def test_a_coder_failing_on_its_thread_falls_back_to_the_plain_read(tmp_path, generated, monkeypatch):
    """The ids are coded on a thread of their own, beside the other columns' conversion: a
    coder that fails there (out of memory) is seen, and the file is read the plain way, to
    the same values (without codes made while read)."""
    path = tmp_path / "claims.parquet"
    pq.write_table(generated, path, row_group_size=7)
    want = load(CLAIMS, [path])
    calls = []
    add = inputs._Coder.add

    def failing(self, arr, left):
        calls.append(len(arr))
        if len(calls) == 3:
            raise MemoryError("too many distinct values, or out of memory")
        add(self, arr, left)

    monkeypatch.setattr(inputs._Coder, "add", failing)
    got = load(CLAIMS, [path])
    assert len(calls) >= 3 and got.codes == {} and want.codes != {}
    for name in ("claim_id", "member_id"):
        assert inputs.strings(got.coded(name)).to_pylist() == inputs.strings(want.coded(name)).to_pylist()
    for name in ("line_no", "amount", "setting"):
        assert np.array_equal(got[name], want[name])
