"""fingerprint.py's compiled passes give exactly the values of the plain NumPy formulation below: the
fingerprints are stored in prepared datasets and compared across them, so they must not change."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from adjudicate import _fingerprint, cli, fingerprint
from adjudicate.engine import prepare, read_inputs

# ---------------------------------------------------------------------------
# the reference: splitmix64's finaliser and wrapping sums, element-wise in NumPy
# ---------------------------------------------------------------------------
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix(x):
    x = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def combine(h, v):
    with np.errstate(over="ignore"):
        return mix(h * _GOLD + mix(v))


def strings(arr):
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    pos = np.arange(hi - lo, dtype=np.int64) - np.repeat(offsets[:-1] - lo, lengths)
    with np.errstate(over="ignore"):
        contrib = mix(data[lo:hi].astype(np.uint64) + (pos.astype(np.uint64) + np.uint64(1)) * _GOLD)
    cs = np.r_[np.uint64(0), np.cumsum(contrib, dtype=np.uint64)]
    with np.errstate(over="ignore"):
        h = mix(cs[offsets[1:] - lo] - cs[offsets[:-1] - lo] + lengths.astype(np.uint64))
    h[np.asarray(arr.is_null(), bool)] = np.uint64(0x5A5A5A5A)
    return h


def column(v):
    if isinstance(v, (pa.Array, pa.ChunkedArray)):
        return strings(v)
    v = np.asarray(v)
    if v.dtype == bool:
        v = v.view(np.uint8)
    return v.astype(np.int64).view(np.uint64) if v.dtype != np.uint64 else v


def table_rows(t):
    h = np.zeros(t.rows, np.uint64)
    for c in t.spec.columns:
        h = combine(h, column(t.values[c.name]))
        h = combine(h, t.nulls[c.name].view(np.uint8))
    return h


def claims(enc, members, providers):
    coded = enc.item_code.dictionary_encode()
    item_hash = strings(coded.dictionary)[np.asarray(pc.fill_null(coded.indices, 0), np.int64)]
    line = np.zeros(len(enc.line_no), np.uint64)
    for v in (enc.line_no, enc.amount, enc.quantity, enc.cls, enc.item_ratio, enc.max_price, item_hash):
        line = combine(line, column(v))
    line = combine(line, np.arange(len(line)) - enc.line_start[enc.line_claim])
    cs = np.r_[np.uint64(0), np.cumsum(line, dtype=np.uint64)]
    with np.errstate(over="ignore"):
        h = cs[enc.line_start[1:]] - cs[enc.line_start[:-1]]
    h = combine(h, strings(enc.claim_id))
    for v in (enc.setting, enc.referral, enc.settle_date, enc.year, enc.months, enc.level_row):
        h = combine(h, column(v))
    h = combine(h, table_rows(members)[enc.member])
    return combine(h, table_rows(providers)[enc.provider])


def members(enc, claim_hash):
    n = len(enc.member)
    starts = np.flatnonzero(np.r_[True, enc.member[1:] != enc.member[:-1]])
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    cs = np.r_[np.uint64(0), np.cumsum(combine(claim_hash, rank), dtype=np.uint64)]
    with np.errstate(over="ignore"):
        return enc.member[starts], mix(cs[np.r_[starts[1:], n]] - cs[starts])


# ---------------------------------------------------------------------------
# the compiled passes against it
# ---------------------------------------------------------------------------
texts = st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(0, 5), st.booleans())
def test_string_hashes_are_the_reference(values, cut, large):
    a = pa.array(values, pa.large_string() if large else pa.string())
    assert np.array_equal(fingerprint.strings(a), strings(a))
    s = a.slice(min(cut, len(a)))  # a slice: offsets that do not start at 0
    assert np.array_equal(fingerprint.strings(s), strings(s))
    d = a.dictionary_encode()  # each distinct value hashed once, nulls kept
    assert np.array_equal(fingerprint.strings(d), strings(a))
    chunked = pa.chunked_array([a[:cut], a[cut:]], a.type)
    assert np.array_equal(fingerprint.strings(chunked), strings(a))


def test_all_null_dictionary_and_non_text():
    d = pa.array([None, None], pa.string()).dictionary_encode()
    assert np.array_equal(fingerprint.strings(d), strings(pa.array([None, None], pa.string())))
    ints = pa.array([1, None, -3])  # a kept column of another type: hashed as its text
    assert np.array_equal(fingerprint.strings(ints), strings(ints))


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, bool]
)
def test_combine_is_the_reference(dtype):
    rng = np.random.default_rng(7)
    v = (
        rng.integers(0, 2, 1000).astype(bool)
        if dtype is bool
        else rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, 1000, dtype=dtype, endpoint=True)
    )
    h = rng.integers(0, 2**64 - 1, 1000, dtype=np.uint64)
    want = combine(h, column(v))
    fingerprint._combine(h, v)
    assert np.array_equal(h, want)
    with pytest.raises(ValueError):
        _fingerprint.combine(h, v[:-1].view(np.uint8) if dtype is bool else v[:-1])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fp")
    r = CliRunner().invoke(
        cli.main,
        [
            "generate",
            "--members",
            "300",
            "--year",
            "2024",
            "--seed",
            "3",
            "--bad-rows",
            "0.02",
            "--out",
            str(folder),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    inputs = read_inputs(*[[folder / f"{t}.parquet"] for t in ("claims", "members", "providers", "catalogue")])
    return prepare(inputs), inputs


def test_claim_and_member_fingerprints_are_the_reference(prepared):
    prep, inputs = prepared
    enc = prep.enc
    assert len(enc.member) > 1000
    got = fingerprint.claims(enc, inputs.members, inputs.providers)
    want = claims(enc, inputs.members, inputs.providers)
    assert np.array_equal(got, want)
    who, fp = fingerprint.members(enc, got)
    who_ref, fp_ref = members(enc, want)
    assert np.array_equal(who, who_ref) and np.array_equal(fp, fp_ref)
    assert len(set(fp.tolist())) == len(fp)  # different members, different fingerprints
