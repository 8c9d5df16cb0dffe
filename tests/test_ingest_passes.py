"""The compiled ingest passes against plain formulations (Arrow's own kernels)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adjudicate import money
from adjudicate.encode import (
    _codes,
    claim_codes,
)
from adjudicate.inputs import dictionary_lookup, load
from adjudicate.schema import CATALOGUE, CLAIMS, MEMBERS, PROVIDERS

SPECS = {"claims": CLAIMS, "members": MEMBERS, "providers": PROVIDERS, "catalogue": CATALOGUE}

#: a few short values (so rows repeat, in runs and apart), empty text and nulls
ids = st.lists(
    st.one_of(st.none(), st.sampled_from(["", "a", "b", "ab", "C20240001", "C20240002", "甲乙"])), max_size=60
)


def plain(values: pa.Array) -> tuple[list, list]:
    """Codes (-1 null) and dictionary by Arrow's dictionary_encode."""
    enc = values.dictionary_encode()
    return [-1 if i is None else i for i in enc.indices.to_pylist()], enc.dictionary.to_pylist()


@settings(max_examples=200, deadline=None)
@given(ids, st.integers(0, 5), st.integers(1, 7))
def test_claim_codes_are_arrows_dictionary_codes(values, skip, chunk):
    """Same codes and dictionary as dictionary_encode, for a sliced array (offset) and
    for the same rows split in chunks of any size (batches, files)."""
    whole = pa.array(["x"] * skip + values, pa.string()).slice(skip)
    code, dictionary = claim_codes(whole)
    assert (code.tolist(), dictionary.to_pylist()) == plain(whole)
    chunked = pa.chunked_array([whole.slice(k, chunk) for k in range(0, len(whole), chunk)] or [whole], pa.string())
    code, dictionary = claim_codes(chunked)
    assert (code.tolist(), dictionary.to_pylist()) == plain(whole)


@settings(max_examples=50, deadline=None)
@given(ids, st.randoms(use_true_random=False))
def test_claim_codes_name_the_same_value_whatever_the_row_order(values, rnd):
    order = list(range(len(values)))
    rnd.shuffle(order)
    a = pa.array(values, pa.string())
    b = a.take(pa.array(order, pa.int64()))
    ca, da = claim_codes(a)
    cb, db = claim_codes(b)
    named_a = [None if c < 0 else da[int(c)].as_py() for c in ca]
    named_b = [None if c < 0 else db[int(c)].as_py() for c in cb]
    assert [named_a[k] for k in order] == named_b == b.to_pylist()


def test_claim_codes_many_values_in_every_order():
    """Enough distinct ids to grow the hash table several times; runs, repeats far
    apart and shuffled rows, as date-ordered and shuffled exports have them."""
    rng = np.random.default_rng(7)
    distinct = np.array([f"C{k:0{int(rng.integers(1, 12))}d}" for k in range(60_000)], dtype=object)
    runs = np.repeat(distinct, rng.integers(1, 6, len(distinct)))
    for rows in (runs, runs[rng.permutation(len(runs))]):
        arr = pa.array(rows.tolist(), pa.string())
        code, dictionary = claim_codes(arr)
        want_code, want_dict = _codes(arr)
        assert np.array_equal(code, want_code)
        assert dictionary.equals(want_dict)


def test_large_string_ids_take_the_plain_path():
    arr = pa.array(["b", None, "a", "b"], pa.large_string())
    code, dictionary = claim_codes(arr)
    assert code.tolist() == [0, -1, 1, 0] and dictionary.to_pylist() == ["b", "a"]


def test_digest_is_of_the_bytes_read(tmp_path):
    """The digest, now taken on a helper thread while the file is parsed, is still the
    SHA-256 of the file's bytes."""
    path = tmp_path / "catalogue.parquet"
    pq.write_table(
        pa.table(
            {
                "item_code": ["X1"],
                "class": ["A"],
                "valid_from": pa.array([0], pa.date32()),
                "valid_to": pa.array([None], pa.date32()),
            }
        ),
        path,
    )
    table = load(CATALOGUE, [path])
    assert table.digests == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}


def test_one_file_columns_are_writable_arrays(tmp_path):
    """A single file's converted columns are not copied, but stay arrays callers may write."""
    path = tmp_path / "catalogue.parquet"
    pq.write_table(
        pa.table(
            {
                "item_code": ["X1", "X2"],
                "class": ["A", "B"],
                "valid_from": pa.array([0, 1], pa.date32()),
                "valid_to": pa.array([None, 5], pa.date32()),
            }
        ),
        path,
    )
    table = load(CATALOGUE, [path])
    for name in ("class", "valid_from", "valid_to"):
        assert table[name].flags.writeable and table.nulls[name].flags.writeable


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**70), 2**70), st.integers(-(10**9), 10**9)), max_size=40),
    st.integers(0, 8),
    st.integers(0, 8),
    st.booleans(),
    st.integers(0, 3),
    st.sampled_from([pa.decimal128, pa.decimal256]),
)
def test_decimal_pass_equals_numpy_formulation(unscaled, s, scale, exact, skip, kind):
    """The compiled decimal rescaling against the NumPy one it replaces: values, the
    rows found bad and why, for any scales, nulls, offsets, and values beyond int64."""
    t = kind(38 if kind is pa.decimal128 else 60, s)
    rows = [None if u is None else Decimal(u).scaleb(-s) for u in [0] * skip + unscaled]
    arr = pa.array(rows, t).slice(skip)
    nulls = np.asarray(arr.is_null(), dtype=bool) if arr.null_count else np.zeros(len(arr), bool)
    got = money._decimal_compiled(arr, scale, exact, nulls)
    want = money._decimal_numpy(arr, scale, exact, nulls)
    # to_scaled reports the first bad row (the NumPy one marks only the first inexact row)
    first = [int(np.flatnonzero(b)[0]) if b.any() else None for b in (got[1], want[1])]
    assert first[0] == first[1]
    if first[0] is not None:
        assert got[2].get(first[0]) == want[2].get(first[0])
    else:
        assert np.array_equal(got[0][~nulls], want[0][~nulls])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=8), max_size=6), st.booleans())
def test_dictionary_lookup_of_chunks_sharing_a_dictionary(chunks, share):
    """Chunks that share one dictionary (the batches of a Parquet row group) are looked
    up once; the positions are those of a plain lookup of the decoded strings."""
    names = pa.array(["m0", "m1", "m2", "m3", "m4", "m5"])
    shared = pa.array(["m3", "zz", "m1", "m0", "m5", "m4"])  # "zz" is not a member
    parts = []
    for k, rows in enumerate(chunks):
        dictionary = shared if share or k % 2 else pa.array(["m5", "m4", "m3", "m2", "m1", "zz"])
        parts.append(pa.DictionaryArray.from_arrays(pa.array(rows, pa.int32()), dictionary))
    arr = pa.chunked_array(parts, pa.dictionary(pa.int32(), pa.string()))
    plain_pos = [
        -1 if v is None else names.to_pylist().index(v) if v in names.to_pylist() else -1 for v in arr.to_pylist()
    ]
    for dtype in (np.int32, np.int64):
        got = dictionary_lookup(arr, names, dtype)
        assert got.dtype == dtype and got.tolist() == plain_pos


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=8), max_size=6),
    st.booleans(),
    st.lists(st.integers(-128, 127), min_size=6, max_size=6),
)
def test_dictionary_lookup_mapped_is_the_positions_mapped(chunks, share, mapped):
    """``mapped`` (enums: each accepted spelling's int8 code) gives each line the mapped
    value of its position, -1 where absent or null: what mapping the plain positions gives."""
    names = pa.array(["m0", "m1", "m2", "m3", "m4", "m5"])
    shared = pa.array(["m3", "zz", "m1", "m0", "m5", "m4"])
    parts = []
    for k, rows in enumerate(chunks):
        dictionary = shared if share or k % 2 else pa.array(["m5", "m4", "m3", "m2", "m1", "zz"])
        parts.append(pa.DictionaryArray.from_arrays(pa.array(rows, pa.int32()), dictionary))
    arr = pa.chunked_array(parts, pa.dictionary(pa.int32(), pa.string()))
    codes = np.asarray(mapped, np.int8)
    plain = dictionary_lookup(arr, names, np.int64)
    want = [-1 if p < 0 else int(codes[p]) for p in plain]
    got = dictionary_lookup(arr, names, np.int8, codes)
    assert got.dtype == np.int8 and got.tolist() == want


#: any text: long, non-ASCII, empty, sharing their first 16 or 24 bytes (what the coder's slots hold), and nulls
any_ids = st.lists(
    st.one_of(
        st.none(),
        st.text(max_size=40),
        st.sampled_from(
            ["", "0123456789abcdef", "0123456789abcdefX", "0123456789abcdefY", "甲乙丙丁戊己庚辛"]
            + ["330381198601078311", "33038119860107831X", "0123456789abcdefghijklm", "0123456789abcdefghijklmn"]
            + ["0123456789abcdefghijklmnA", "0123456789abcdefghijklmnB", "0123456789abcdefghijklmnAB"]
        ),
        st.integers(0, 30).map(lambda k: f"C2024{k:03d}"),
    ),
    max_size=80,
)


def coded_in_pieces(
    values: pa.Array, cuts: list[int], most: int = 0, reserve: tuple[int, int] | None = None
) -> tuple[list, list]:
    """_encode.StringCoder's codes and dictionary for ``values`` fed in pieces ending at ``cuts``;
    ``most``: the room asked at the start, ``reserve``: (after piece k, room for n values)."""
    from adjudicate import _encode

    coder = _encode.StringCoder(most)
    code = np.empty(len(values), np.int32)
    at = 0
    for k, end in enumerate([*sorted(c for c in cuts if c < len(values)), len(values)]):
        if reserve is not None and reserve[0] == k:
            coder.reserve(reserve[1])
        piece = values.slice(at, end - at)
        validity, offsets, data = piece.buffers()
        coder.add(
            np.frombuffer(validity, np.uint8) if validity is not None and piece.null_count else np.empty(0, np.uint8),
            piece.offset,
            np.frombuffer(offsets, np.int32)
            if offsets is not None
            else np.zeros(piece.offset + len(piece) + 1, np.int32),
            np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8),
            code[at:end],
        )
        at = end
    offsets, data = coder.dictionary()
    assert len(coder) == len(offsets) - 1
    dictionary = pa.Array.from_buffers(pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return code.tolist(), dictionary.to_pylist()


@settings(max_examples=300, deadline=None)
@given(any_ids, st.integers(0, 5), st.lists(st.integers(0, 80), max_size=6))
def test_string_coder_gives_arrows_dictionary_codes(values, skip, cuts):
    """Fed in pieces of any size (row groups), each a slice of its buffers (offset), the
    coder numbers values in order of first appearance as dictionary_encode does the whole."""
    whole = pa.array(["x"] * skip + values, pa.string()).slice(skip)
    assert coded_in_pieces(whole, cuts) == plain(whole)


@settings(max_examples=200, deadline=None)
@given(
    any_ids,
    st.lists(st.integers(0, 80), max_size=6),
    st.integers(0, 20_000),
    st.none() | st.tuples(st.integers(0, 6), st.integers(0, 20_000)),
)
def test_string_coder_of_any_room_and_reserve_gives_the_same_codes(values, cuts, most, reserve):
    """The room asked at the start (grown within, or beyond it into a fresh table) and a reserve
    between pieces (an estimate too small or too large) change nothing of the codes."""
    whole = pa.array(values, pa.string())
    assert coded_in_pieces(whole, cuts, most, reserve) == plain(whole)


@pytest.mark.parametrize(
    "most, reserve",
    [(0, None), (200_000, None), (30_000, None), (200_000, (1, 9_000)), (0, (2, 50_000)), (10, (0, 10**6))],
)
def test_string_coder_many_values_and_growth(most, reserve):
    """Thousands of distinct values (the table grows many times: where it is within the room asked
    at the start, into fresh tables beyond it), repeated apart and in runs, reserved or not."""
    rng = np.random.default_rng(3)
    base = [f"{k:0{rng.integers(1, 25)}d}" + ("é" * int(rng.integers(0, 3))) for k in range(20_000)]
    rows = [base[int(i)] for i in rng.integers(0, len(base), 60_000)]
    rows = [v for v in rows for _ in range(int(rng.integers(1, 3)))]
    arr = pa.array(rows, pa.string())
    assert coded_in_pieces(arr, [1, 999, 30_000], most, reserve) == plain(arr)


@pytest.mark.parametrize("offset", [0, 3])
def test_string_coder_across_its_blocks(offset):
    """Runs of a value, nulls and values of every length from 0 to 30 bytes (the words of 8 to 24
    bytes are read without a branch on the length) around the coder's blocks of rows (each hashed
    before it is probed): a run or a null that straddles a block keeps its codes."""
    rng = np.random.default_rng(5)
    pool = ["".join(chr(48 + int(c)) for c in rng.integers(0, 40, size=k)) for k in range(31) for _ in range(40)]
    pool += ["0123456789abcdefghijklmnA", "0123456789abcdefghijklmnB", "33038119860107831X", "330381198601078311"]
    rows: list[str | None] = []
    while len(rows) < 9000:
        pick = int(rng.integers(0, len(pool) + 1))
        rows += [None if pick == len(pool) else pool[pick]] * int(rng.integers(1, 4 if len(rows) % 1024 < 1000 else 40))
    whole = pa.array(["skipped"] * offset + rows, pa.string()).slice(offset)
    assert coded_in_pieces(whole, [1023, 1025, 3000, 5121]) == plain(whole)
    assert coded_in_pieces(whole, []) == plain(whole)


def test_grouped_estimate_of_the_distinct_values():
    """Grouped rows (each value's rows together): the first piece's distinct values scaled to the
    rows; rows whose values recur apart (shuffled): no estimate."""
    from adjudicate.inputs import grouped_estimate

    grouped = np.repeat(np.arange(1000, dtype=np.int32), 4)  # 1000 values of 4 rows in 4000 rows
    assert grouped_estimate(grouped, 1000, 40_000) == 10_000
    assert grouped_estimate(grouped[:-2], 1000, 39_980) == 10_000  # the piece cut a value's rows
    shuffled = np.random.default_rng(1).permutation(grouped)
    assert grouped_estimate(shuffled, 1000, 40_000) == 0
    assert grouped_estimate(np.array([0, 1, 0, 1], np.int32), 2, 100) == 0


def test_string_coder_rejects_bad_buffers():
    from adjudicate import _encode

    coder = _encode.StringCoder()
    with pytest.raises(ValueError):
        coder.add(np.empty(0, np.uint8), 0, np.array([0, 2], np.int32), np.zeros(1, np.uint8), np.empty(1, np.int32))
    with pytest.raises(ValueError):
        coder.add(np.empty(0, np.uint8), 0, np.array([0], np.int32), np.zeros(1, np.uint8), np.empty(1, np.int32))
