"""The kernel pass (engine._kernel, _core.settle_lines) and how a policy's rejected claims are cut out.

A claim rejected as negative_claim_total is cut out of every array run by run
(encode.cut_runs, Encoded.without), in place when the run owns its arrays: the
results must equal a plain copy by mask, whatever the path or thread count.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from adjudicate import engine
from adjudicate import policy as P
from adjudicate.encode import cut_runs, line_rows
from adjudicate.generate import generate_tables, write_dataset


def runs_of(n: int, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k random disjoint runs [lo, hi) in [0, n), ascending, some empty and some adjacent."""
    cuts = np.sort(rng.integers(0, n + 1, 2 * k))
    return cuts[0::2].copy(), cuts[1::2].copy()


def without(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    drop = np.zeros(len(a), bool)
    for a_, b_ in zip(lo, hi):
        drop[a_:b_] = True
    return a[~drop]


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.bool_, np.uint8])
@pytest.mark.parametrize("in_place", [False, True])
def test_cut_runs_equals_a_mask(dtype, in_place):
    rng = np.random.default_rng(3)
    for n, k in ((0, 0), (1, 1), (50, 0), (50, 3), (1000, 40), (1000, 1)):
        a = rng.integers(0, 2 if dtype is np.bool_ else 100, n).astype(dtype)
        lo, hi = runs_of(n, rng, k)
        expected = without(a, lo, hi)
        before = a.copy()
        got = cut_runs(a, lo, hi, in_place)
        assert got.dtype == a.dtype and np.array_equal(got, expected)
        if not in_place:
            assert np.array_equal(a, before)  # a copy leaves the array alone


def test_cut_runs_of_rows_and_positions():
    rng = np.random.default_rng(5)
    sums = rng.integers(-9, 9, (300, 7))
    lo, hi = runs_of(300, rng, 20)
    assert np.array_equal(cut_runs(sums.copy(), lo, hi, True), without(sums, lo, hi))
    for dtype in (np.int32, np.int64):
        pos = np.arange(300, dtype=dtype)
        shift = rng.integers(0, 50, len(lo) + 1)
        got = cut_runs(pos, lo, hi, False, shift)
        k = np.searchsorted(hi, np.arange(300), side="right")  # runs ending at or before each row
        assert got.dtype == dtype and np.array_equal(got, without(pos - shift[k], lo, hi))


def test_cut_runs_in_place_only_on_an_array_of_its_own():
    base = np.arange(10, dtype=np.int64)
    view = base[2:]  # not its own memory: copied, never changed
    got = cut_runs(view, np.array([0]), np.array([3]), in_place=True)
    assert np.array_equal(base, np.arange(10)) and np.array_equal(got, [5, 6, 7, 8, 9])
    ro = np.arange(10, dtype=np.int64)
    ro.flags.writeable = False
    assert np.array_equal(cut_runs(ro, np.array([1]), np.array([2]), True), [0, *range(2, 10)])
    assert np.array_equal(ro, np.arange(10))


def test_a_second_cut_in_place_stays_in_place():
    """What a cut in place returns (the front of the array's own memory) is cut in place again: the
    kernel's negative claims come out of arrays encode has cut already, with no fresh memory."""
    rng = np.random.default_rng(8)
    a = rng.integers(0, 100, 1000)
    m = np.asfortranarray(rng.integers(-9, 9, (1000, 7)))
    lo1, hi1 = runs_of(1000, rng, 10)
    once, once_m = cut_runs(a, lo1, hi1, True), cut_runs(m, lo1, hi1, True)
    assert not once.flags.owndata and np.shares_memory(once, a)
    lo2, hi2 = runs_of(len(once), rng, 10)
    expected, expected_m = without(once.copy(), lo2, hi2), without(once_m.copy(), lo2, hi2)
    twice, twice_m = cut_runs(once, lo2, hi2, True), cut_runs(once_m, lo2, hi2, True)
    assert np.array_equal(twice, expected) and np.array_equal(twice_m, expected_m)
    assert twice.ctypes.data == a.ctypes.data and twice_m.ctypes.data == m.ctypes.data  # where they were
    # the front of memory NumPy does not own (Arrow's) is copied, and left alone
    import pyarrow as pa

    arrow = pa.array(np.arange(10, dtype=np.int64)).to_numpy()[:8]
    assert np.array_equal(cut_runs(arrow, np.array([1]), np.array([2]), True), [0, *range(2, 8)])
    assert np.array_equal(arrow, np.arange(8))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    write_dataset(generate_tables(400, 2024, seed=11, bad_rows=0.08), folder)
    f = {k: [folder / f"{k}.parquet"] for k in ("claims", "members", "providers", "catalogue")}
    return engine.read_inputs(f["claims"], f["members"], f["providers"], f["catalogue"])


def test_encoded_without_equals_a_gather(bad_inputs):
    enc = engine.prepare(bad_inputs).enc
    rng = np.random.default_rng(1)
    dropped = np.sort(rng.choice(len(enc.member), 37, replace=False))
    keep = np.ones(len(enc.member), bool)
    keep[dropped] = False
    claims = np.flatnonzero(keep)
    rows = line_rows(enc.line_start, claims)
    for in_place in (False, True):
        src = engine.prepare(bad_inputs).enc if in_place else enc
        got = src.without(dropped, in_place=in_place)
        for f in enc.CLAIM_FIELDS:
            assert np.array_equal(getattr(got, f), getattr(enc, f)[claims]), f
        for f in enc.LINE_FIELDS:
            assert np.array_equal(getattr(got, f), getattr(enc, f)[rows]), f
        sizes = np.diff(enc.line_start)[claims]
        assert np.array_equal(got.line_start, np.r_[0, np.cumsum(sizes)])
        assert np.array_equal(got.line_claim, np.repeat(np.arange(len(claims)), sizes))
    assert np.array_equal(enc.select(keep).line_claim, enc.without(dropped).line_claim)


def result_arrays(r: engine.Result) -> dict[str, np.ndarray]:
    out = {f.name: getattr(r, f.name) for f in fields(r) if isinstance(getattr(r, f.name), np.ndarray)}
    out.update({f"enc.{k}": getattr(r.enc, k) for k in (*r.enc.CLAIM_FIELDS, *r.enc.LINE_FIELDS)})
    out.update({"enc.line_claim": r.enc.line_claim, "enc.line_start": r.enc.line_start})
    return out


@pytest.mark.parametrize("policy", ["prefecture-employee", "shenzhen-comprehensive"])
def test_negative_claims_cut_out_alike_owned_or_shared(bad_inputs, policy):
    pol = P.load(policy)
    prep = engine.prepare(bad_inputs)
    before = {k: v.copy() for k, v in result_arrays_of_enc(prep.enc).items()}
    shared = engine.settle(prep, pol, threads=1)
    assert shared.kept is not None and (~shared.kept).sum() > 0  # the data has negative claims
    assert all(np.array_equal(v, getattr(prep.enc, k)) for k, v in before.items())  # prep unchanged
    for threads in (1, 2, 3):
        owned = engine.adjudicate(bad_inputs, pol, threads=threads)
        assert np.array_equal(owned.kept, shared.kept)
        assert owned.enc.rejected == shared.enc.rejected
        a, b = result_arrays(shared), result_arrays(owned)
        assert a.keys() == b.keys()
        for k in a:
            assert np.array_equal(a[k], b[k]), (threads, k)
    assert shared.cpu["kernel"] > 0 and "allocate" in shared.cpu


@pytest.mark.parametrize("names", [engine.LINE_OUTPUTS, ("self_pay", "sums", "out", "negative")])
def test_settle_into_given_outputs_equals_fresh_ones(bad_inputs, names):
    """settle(into=...) writes the kernel's outputs into the caller's arrays (compare and sweep settle
    policy after policy into one set): the same results as fresh arrays, negative claims cut out of
    them in place, and the given arrays written again by the next policy."""
    prep = engine.prepare(bad_inputs)
    given = {k: v for k, v in engine.kernel_outputs(len(prep.enc.amount), len(prep.enc.member)).items() if k in names}
    for policy in ("prefecture-employee", "shenzhen-comprehensive", "prefecture-employee"):
        pol = P.load(policy)
        fresh = engine.settle(prep, pol, threads=2)
        into = engine.settle(prep, pol, threads=2, into=given)
        assert fresh.kept is not None  # the data has negative claims: the in-place cut ran
        a, b = result_arrays(fresh), result_arrays(into)
        assert a.keys() == b.keys()
        for k in a:
            assert np.array_equal(a[k], b[k]), (policy, k)
        assert np.shares_memory(into.line_self_pay, given["self_pay"])
        if "sums" in given:
            assert np.shares_memory(into.sums, given["sums"]) and np.shares_memory(into.settle, given["out"])


def result_arrays_of_enc(enc) -> dict[str, np.ndarray]:
    return {k: getattr(enc, k) for k in (*enc.CLAIM_FIELDS, *enc.LINE_FIELDS, "line_claim", "line_start")}


def test_fused_pass_equals_the_separate_calls(bad_inputs):
    """settle_lines = split_lines, then negative_claims, then settle_claims on the claims kept."""
    from adjudicate import _core
    from adjudicate.encode import benefit_factors

    pol = P.load("prefecture-employee")
    enc = engine.prepare(bad_inputs).enc
    compiled = P.compile_policy(pol)
    period = pol.period_index(enc.settle_date)
    benefit, factor = benefit_factors(pol, enc, bad_inputs.providers, period)
    nl, nc = len(enc.amount), len(enc.member)
    cls, ratio, supp_cat = engine._line_rules(enc, compiled, period)
    lines = [np.zeros(nl, np.int64) for _ in range(3)]
    sums = np.zeros((nc, engine.NSUMS), np.int64)
    _core.split_lines(
        enc.line_claim, enc.amount, enc.quantity, cls, ratio, enc.max_price, benefit.view(np.uint8),
        np.ascontiguousarray(compiled.class_ratio[0]), supp_cat, engine.PRICE_QTY_PER_FEN, *lines, sums, 0, nl,
    )  # fmt: skip
    negative = np.empty(nc, np.uint8)
    assert _core.negative_claims(sums, negative) > 0
    r = engine.adjudicate(bad_inputs, pol, threads=1)
    keep = negative == 0
    assert np.array_equal(r.kept, keep)
    assert np.array_equal(r.sums, sums[keep])
    keep_line = keep[enc.line_claim]
    for got, want in zip((r.line_self_pay, r.line_fsp, r.line_eligible), lines):
        assert np.array_equal(got, want[keep_line])
    kept = enc.select(keep)
    args = engine._settle_args(
        kept, benefit[keep], factor[keep], period[keep], compiled, bad_inputs.members, pol, r.base_year
    )
    out = np.empty((len(kept.member), engine.NOUT), np.int64)
    _core.settle_claims(**args, sums=sums[keep], out=out, start=0, stop=len(kept.member))
    assert np.array_equal(r.settle, out)


@pytest.mark.parametrize("in_place", [False, True])
def test_cut_runs_of_a_column_major_matrix(in_place):
    """The kernel's claim matrices are column-major: cut column by column, each column stays contiguous."""
    rng = np.random.default_rng(8)
    for n, k in ((0, 0), (300, 20), (300, 1), (5, 0)):
        m = np.asfortranarray(rng.integers(-9, 9, (n, 6)))
        lo, hi = runs_of(n, rng, k)
        want = without(m, lo, hi)
        got = cut_runs(m, lo, hi, in_place)
        assert np.array_equal(got, want)
        assert all(got[:, j].flags.c_contiguous for j in range(6))


def test_encoded_line_fields_are_narrow(bad_inputs):
    """Fewer bytes per line: rows and claim positions int32 (the rows fit), line_no int32, the ratio int16."""
    enc = engine.prepare(bad_inputs).enc
    assert enc.line_row.dtype == enc.line_claim.dtype == np.int32
    assert enc.line_no.dtype == np.int32 and enc.item_ratio.dtype == np.int16 and enc.cls.dtype == np.int8
    for name in ("amount", "quantity", "max_price"):  # the contract's range needs 64 bits
        assert getattr(enc, name).dtype == np.int64


def _kernel_pass(prep, pol, line_claim_dtype, order):
    """engine.kernel_args over every claim into outputs of ``order``, line_claim of ``line_claim_dtype``."""
    from dataclasses import replace

    from adjudicate import _core
    from adjudicate.encode import benefit_factors

    enc = replace(prep.enc, line_claim=prep.enc.line_claim.astype(line_claim_dtype))
    period = pol.period_index(enc.settle_date)
    benefit, factor = benefit_factors(pol, enc, prep.inputs.providers, period)
    outs = engine.kernel_outputs(len(enc.amount), len(enc.member))
    outs = {k: (np.empty(v.shape, v.dtype, order=order) if v.ndim == 2 else v) for k, v in outs.items()}
    kw = engine.kernel_args(
        enc, benefit, factor, period, P.compile_policy(pol), prep.inputs.members, pol, engine.first_year(enc), outs
    )
    for a, b in engine.thread_ranges(enc.member, 2):
        _core.settle_lines(**kw, settle=True, start=a, stop=b)
    return outs, kw


def test_kernel_takes_either_index_width_and_either_matrix_order(bad_inputs):
    """settle_lines on int64 claim positions (inputs beyond 2**31 rows) into row-major matrices gives
    what the engine's int32 positions into column-major matrices give; so does settle_claims."""
    from adjudicate import _core

    pol = P.load("prefecture-employee")
    prep = engine.prepare(bad_inputs)
    narrow, kw = _kernel_pass(prep, pol, np.int32, "F")
    wide, _ = _kernel_pass(prep, pol, np.int64, "C")
    assert narrow["sums"].flags.f_contiguous and wide["sums"].flags.c_contiguous
    for k in narrow:
        assert np.array_equal(narrow[k], wide[k]), k
    assert narrow["negative"].any()  # the data has rejected claims: their rows are zero
    assert not narrow["out"][narrow["negative"].view(bool)].any()
    # settle_claims reads sums and writes out in either order (on the claims kept)
    keep = narrow["negative"] == 0
    kept = prep.enc.select(keep)
    period = pol.period_index(kept.settle_date)
    from adjudicate.encode import benefit_factors

    benefit, factor = benefit_factors(pol, kept, prep.inputs.providers, period)
    args = engine._settle_args(
        kept, benefit, factor, period, P.compile_policy(pol), prep.inputs.members, pol, engine.first_year(prep.enc)
    )
    for order in ("C", "F"):
        sums = np.array(narrow["sums"][keep], order=order)
        out = np.empty((len(kept.member), engine.NOUT), np.int64, order=order)
        _core.settle_claims(**args, sums=sums, out=out, start=0, stop=len(kept.member))
        assert np.array_equal(out, narrow["out"][keep]), order


@pytest.mark.parametrize("policy", ["prefecture-employee", "shenzhen-comprehensive"])
def test_without_line_funds_the_claims_are_the_same_and_nothing_is_stored_per_line(bad_inputs, policy):
    """adjudicate(line_funds=False) (run --no-lines, compare, sweep) has the kernel sum each claim's lines
    without storing their split: every claim-level result equals the full pass's, rejections included."""
    pol = P.load(policy)
    for threads in (1, 2):
        full = engine.adjudicate(bad_inputs, pol, threads=threads)
        bare = engine.adjudicate(bad_inputs, pol, threads=threads, line_funds=False)
        assert bare.line_self_pay is bare.line_fsp is bare.line_eligible is bare.line_pool is bare.line_supp is None
        assert bare.enc.rejected == full.enc.rejected and np.array_equal(bare.kept, full.kept)
        for name in ("sums", "settle", "benefit"):
            assert np.array_equal(getattr(bare, name), getattr(full, name)), name
        assert bare.base_year == full.base_year
    from adjudicate import _core
    from adjudicate.encode import benefit_factors

    enc = full.enc
    period = pol.period_index(enc.settle_date)
    benefit, factor = benefit_factors(pol, enc, bad_inputs.providers, period)
    outs = engine.kernel_outputs(len(enc.amount), len(enc.member))
    outs["eligible"] = outs["eligible"][:1]  # per line, or empty: nothing in between
    kw = engine.kernel_args(enc, benefit, factor, period, P.compile_policy(pol), bad_inputs.members, pol, 0, outs)
    with pytest.raises(ValueError, match="differ in length"):
        _core.settle_lines(**kw, settle=True, start=0, stop=1)


def test_claim_amounts_are_contiguous_views_of_the_kernel_matrices(bad_inputs):
    """outputs.claim_amounts takes the kernel's column-major columns as they are: no copy for the writers."""
    from adjudicate.outputs import claim_amounts

    for threads in (1, 2):
        r = engine.adjudicate(bad_inputs, P.load("prefecture-employee"), threads=threads)
        assert r.kept is not None and not r.kept.all()  # cut in place, still column by column
        a = claim_amounts(r)
        for name in ("total", "self_pay", "first_self_pay"):
            assert a[name].flags.c_contiguous and np.shares_memory(a[name], r.sums), name
        for name in ("deductible", "fund_pool", "fund_supplementary", "subsidy", "account_paid"):
            assert a[name].flags.c_contiguous and np.shares_memory(a[name], r.settle), name


def test_line_ceiling_equals_the_plain_rounding():
    """A line's ceiling is round(price × qty / 10**8) half away from zero, on the exact product: the
    self_pay over it equals the plain formulation on edge cases (a ceiling equal to the amount, one fen
    either side, exact halves, negative and huge quantities)."""
    from adjudicate import _core
    from adjudicate.money import round_half_away

    per_fen = engine.PRICE_QTY_PER_FEN
    rng = np.random.default_rng(21)
    amt, price, qty = [], [], []
    for a in (1, 2, 99, 100, 101, 10**6, 10**14):
        for p in (0, 1, 3, 7, 10**4, 123457, 10**12):
            for q in (0, 1, 5 * 10**5, 10**6, 2 * 10**6, -(10**6), 10**16):
                amt.append(a), price.append(p), qty.append(q)
        # the ceiling at the amount, and half a fen either side of it
        for p, q in ((a * 100, 10**6), (a * 100 - 50, 10**6), (a * 100 + 50, 10**6), (a * 100 - 51, 10**6)):
            amt.append(a), price.append(p), qty.append(q)
    n = 500
    amt += rng.integers(1, 10**7, n).tolist()
    price += rng.integers(0, 10**7, n).tolist()
    qty += rng.integers(-(10**7), 10**8, n).tolist()
    nl = len(amt)
    sums = np.zeros((nl, engine.NSUMS), np.int64)
    self_pay, fsp, elig = (np.empty(nl, np.int64) for _ in range(3))
    _core.split_lines(
        np.arange(nl, dtype=np.int32), np.array(amt, np.int64), np.array(qty, np.int64), np.zeros(nl, np.int8),
        np.zeros(nl, np.int16), np.array(price, np.int64), np.ones(nl, np.uint8), np.zeros(6, np.int64), True,
        per_fen, self_pay, fsp, elig, sums, 0, nl,
    )  # fmt: skip
    for i in range(nl):
        cap = round_half_away(price[i] * qty[i], per_fen)
        assert self_pay[i] == max(amt[i] - cap, 0), (amt[i], price[i], qty[i])
    assert (self_pay > 0).any() and (self_pay == 0).any()


def test_lines_table_takes_line_no_without_a_copy(bad_inputs):
    """line_no is laid out int32, as lines.parquet has it: the table's column is the encoded array itself."""
    from adjudicate.outputs import lines_table

    r = engine.adjudicate(bad_inputs, P.load("prefecture-employee"), threads=1)
    col = lines_table(r, for_file=True).column("line_no")
    assert col.num_chunks == 1 and col.chunk(0).buffers()[1].address == r.enc.line_no.ctypes.data
