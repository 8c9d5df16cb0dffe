"""Incremental nights (issue 9 §5): readjudicate from a dataset compares only the members whose inputs
changed, and writes exactly what the full comparison writes (every column, on random corrections)."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from adjudicate import cli
from adjudicate.fingerprint import strings

TABLES = ("claims", "members", "providers", "catalogue")
POLICY = "city-employee"


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(paths):
    return [x for t in TABLES for x in (f"--{t}", paths[t])]


@pytest.fixture(scope="module")
def night1(tmp_path_factory):
    """Night 1: the generated inputs, their dataset, and the run from it."""
    root = tmp_path_factory.mktemp("inc")
    r = invoke("generate", "--members", 250, "--year", 2024, "--seed", 11, "--out", root / "gen", "-q")
    assert r.exit_code == 0, r.output
    gen = {t: root / "gen" / f"{t}.parquet" for t in TABLES}
    assert invoke("prepare", *inputs_args(gen), "--out", root / "ds1", "-q").exit_code == 0
    r = invoke("run", "--dataset", root / "ds1", "--policy", POLICY, "--out", root / "night1", "-q")
    assert r.exit_code == 0, r.output
    return gen, root / "ds1", root / "night1"


def correct(gen: dict, folder, seed: int) -> dict:
    """Random corrections of every kind a night brings, on copies of the inputs."""
    rng = random.Random(seed)
    folder.mkdir()
    out = {t: folder / f"{t}.parquet" for t in TABLES}
    claims = pq.read_table(gen["claims"])
    rows = claims.to_pylist()
    ids = sorted({r["claim_id"] for r in rows if r["claim_id"] is not None})
    members = [r["member_id"] for r in pq.read_table(gen["members"]).to_pylist()]
    items = sorted({r["item_code"] for r in rows if r["item_code"] is not None})
    picked = set(rng.sample(ids, max(3, len(ids) // 100)))  # about 1 % of the claims
    kinds = ["amount", "drop_line", "drop_claim", "move", "item", "reject", "date"]
    fate = {c: rng.choice(kinds) for c in sorted(picked)}
    moved_to = {c: rng.choice(members) for c in sorted(picked)}
    new_rows, dropped_line = [], set()
    for r in rows:
        k = fate.get(r["claim_id"])
        if k == "amount" and r["amount"] is not None and rng.random() < 0.7:
            r["amount"] = (r["amount"] * Decimal(rng.choice(["0.5", "1.5", "3"]))).quantize(Decimal("0.01"))
        elif k == "drop_line" and r["claim_id"] not in dropped_line and r["line_no"] != 1:
            dropped_line.add(r["claim_id"])
            continue
        elif k == "drop_claim":
            continue
        elif k == "move":
            r["member_id"] = moved_to[r["claim_id"]]
        elif k == "item":
            r["item_code"] = rng.choice(items)
        elif k == "reject" and r["line_no"] == 1:
            r["provider_id"] = "NO-SUCH-PROVIDER"  # inconsistent header or unknown provider
        elif k == "date" and r["admit_date"] is not None:
            r["admit_date"] = r["admit_date"] + dt.timedelta(days=1)
            if r["discharge_date"] is not None:
                r["discharge_date"] = r["discharge_date"] + dt.timedelta(days=1)
        new_rows.append(r)
    # a new claim: a copy of one, under a new id
    first = [dict(r) for r in rows if r["claim_id"] == ids[seed % len(ids)]]
    for r in first:
        r["claim_id"] = f"NEW{seed}"
    new_rows += first
    rng.shuffle(new_rows)  # the night's file order is not the first night's
    pq.write_table(pa.Table.from_pylist(new_rows, schema=claims.schema), out["claims"])
    # a member row, a provider row and catalogue rows corrected
    t = pq.read_table(gen["members"]).to_pylist()
    t[rng.randrange(len(t))]["account_balance"] = Decimal("1234.56")
    pq.write_table(pa.Table.from_pylist(t, schema=pq.read_schema(gen["members"])), out["members"])
    t = pq.read_table(gen["providers"]).to_pylist()
    p = t[rng.randrange(len(t))]
    p["level"] = 3 if p["level"] != 3 else 1
    pq.write_table(pa.Table.from_pylist(t, schema=pq.read_schema(gen["providers"])), out["providers"])
    t = pq.read_table(gen["catalogue"]).to_pylist()
    used = [i for i, r in enumerate(t) if r["item_code"] in set(items[:200])]
    for i in rng.sample(used, 3):
        t[i]["class"] = {"A": "B", "B": "excluded"}.get(t[i]["class"], "A")
    pq.write_table(pa.Table.from_pylist(t, schema=pq.read_schema(gen["catalogue"])), out["catalogue"])
    return out


def assert_same(full, inc):
    for f in (
        "adjustments.parquet",
        "line_adjustments.parquet",
        "current/settlements.parquet",
        "current/lines.parquet",
        "current/rejected.parquet",
    ):
        a, b = pq.read_table(full / f), pq.read_table(inc / f)
        assert a.schema == b.schema, f
        for c in a.column_names:
            assert a[c].equals(b[c]), (f, c)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (full, inc))
    for k in ("counts", "deltas", "reconciles", "line_deltas"):
        assert sa[k] == sb[k], k
    assert sb["reconciles"] is True
    assert sa["previous"]["totals"] == sb["previous"]["totals"]
    return sb


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_corrections_give_what_the_full_comparison_gives(night1, tmp_path, seed):
    gen, _, prev = night1
    fixed = correct(gen, tmp_path / "in", seed)
    ds2 = tmp_path / "ds2"
    assert invoke("prepare", *inputs_args(fixed), "--out", ds2, "-q").exit_code == 0
    full, inc = tmp_path / "full", tmp_path / "inc"
    r = invoke("readjudicate", *inputs_args(fixed), "--previous", prev, "--policy", POLICY, "--out", full, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("readjudicate", "--dataset", ds2, "--previous", prev, "--policy", POLICY, "--out", inc, "-q")
    assert r.exit_code == 0, r.output
    s = assert_same(full, inc)
    assert s["incremental"]["used"] is True, s["incremental"]
    assert 0 < s["incremental"]["members_compared"] < 250
    assert s["counts"]["adjusted_claims"] > 0
    assert json.loads((full / "summary.json").read_text())["incremental"]["used"] is False

    # the next night goes on from this one's current/ (it records its dataset), again incrementally
    fixed3 = correct(fixed, tmp_path / "in3", seed + 100)
    ds3 = tmp_path / "ds3"
    assert invoke("prepare", *inputs_args(fixed3), "--out", ds3, "-q").exit_code == 0
    full3, inc3 = tmp_path / "full3", tmp_path / "inc3"
    assert (
        invoke(
            "readjudicate", *inputs_args(fixed3), "--previous", inc, "--policy", POLICY, "--out", full3, "-q"
        ).exit_code
        == 0
    )
    assert (
        invoke("readjudicate", "--dataset", ds3, "--previous", inc, "--policy", POLICY, "--out", inc3, "-q").exit_code
        == 0
    )
    assert assert_same(full3, inc3)["incremental"]["used"] is True


def test_catalogue_rejoin_then_incremental(night1, tmp_path):
    gen, ds1, prev = night1
    fixed = correct(gen, tmp_path / "in", 7)
    ds2 = tmp_path / "ds2"
    r = invoke("prepare", "--dataset", ds1, "--catalogue", fixed["catalogue"], "--out", ds2, "-q")
    assert r.exit_code == 0, r.output
    full, inc = tmp_path / "full", tmp_path / "inc"
    new = {**gen, "catalogue": fixed["catalogue"]}
    assert (
        invoke("readjudicate", *inputs_args(new), "--previous", prev, "--policy", POLICY, "--out", full, "-q").exit_code
        == 0
    )
    assert (
        invoke("readjudicate", "--dataset", ds2, "--previous", prev, "--policy", POLICY, "--out", inc, "-q").exit_code
        == 0
    )
    assert assert_same(full, inc)["incremental"]["used"] is True


def test_nothing_changed_compares_nobody(night1, tmp_path):
    _, ds1, prev = night1
    out = tmp_path / "o"
    assert (
        invoke("readjudicate", "--dataset", ds1, "--previous", prev, "--policy", POLICY, "--out", out, "-q").exit_code
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["incremental"] == {"used": True, "members_compared": 0}
    assert s["counts"]["adjusted_claims"] == 0 and s["reconciles"] is True


def test_a_policy_change_compares_every_claim(night1, tmp_path):
    gen, ds1, prev = night1
    full, inc = tmp_path / "full", tmp_path / "inc"
    assert (
        invoke(
            "readjudicate",
            *inputs_args(gen),
            "--previous",
            prev,
            "--policy",
            "prefecture-employee",
            "--out",
            full,
            "-q",
        ).exit_code
        == 0
    )
    assert (
        invoke(
            "readjudicate", "--dataset", ds1, "--previous", prev, "--policy", "prefecture-employee", "--out", inc, "-q"
        ).exit_code
        == 0
    )
    s = assert_same(full, inc)
    assert s["incremental"]["used"] is False and "policy" in s["incremental"]["why_not"]


def test_a_previous_dataset_gone_or_doctored_outputs_fall_back_to_the_full_comparison(night1, tmp_path):
    gen, ds1, prev = night1
    # outputs doctored behind the engine's back: the totals check refuses the shortcut
    doctored = tmp_path / "doctored"
    shutil.copytree(prev, doctored)
    s = json.loads((doctored / "summary.json").read_text())
    s["totals"]["fund_pool"] = str(Decimal(s["totals"]["fund_pool"]) + 1)
    (doctored / "summary.json").write_text(json.dumps(s))
    out = tmp_path / "o"
    assert (
        invoke(
            "readjudicate", "--dataset", ds1, "--previous", doctored, "--policy", POLICY, "--out", out, "-q"
        ).exit_code
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["incremental"]["used"] is False and "reconcile" in s["incremental"]["why_not"]
    assert s["counts"]["adjusted_claims"] == 0
    # the dataset the previous run came from is gone
    ds_copy = tmp_path / "dscopy"
    shutil.copytree(ds1, ds_copy)
    night = tmp_path / "night"
    assert invoke("run", "--dataset", ds_copy, "--policy", POLICY, "--out", night, "-q").exit_code == 0
    shutil.rmtree(ds_copy)
    out2 = tmp_path / "o2"
    assert (
        invoke("readjudicate", "--dataset", ds1, "--previous", night, "--policy", POLICY, "--out", out2, "-q").exit_code
        == 0
    )
    s = json.loads((out2 / "summary.json").read_text())
    assert s["incremental"]["used"] is False and "gone" in s["incremental"]["why_not"]


def test_string_hashes_tell_strings_apart():
    a = pa.array(["", "a", "ab", "ba", None, "a" * 100, "中文", "b"])
    h = strings(a)
    assert len(set(h.tolist())) == len(a)
    assert (strings(a.slice(2, 3)) == h[2:5]).all()  # offsets of a slice
    assert (strings(pa.chunked_array([a[:3], a[3:]])) == h).all()
    assert np.array_equal(strings(pa.array(["x", "y"], pa.large_string())), strings(pa.array(["x", "y"])))


def early_claim(gen: dict, folder, member_index: int = -1) -> dict:
    """The inputs with one more claim, a year before every other, for one member (by member_id order)."""
    folder.mkdir()
    out = {t: folder / f"{t}.parquet" for t in TABLES}
    for t in TABLES:
        if t != "claims":
            shutil.copy2(gen[t], out[t])
    claims = pq.read_table(gen["claims"])
    rows = claims.to_pylist()
    member = sorted({r["member_id"] for r in rows if r["member_id"] is not None})[member_index]
    first = next(r for r in rows if r["member_id"] == member and r["setting"] == "outpatient")
    extra = dict(first, claim_id="EARLY", line_no=1, admit_date=dt.date(2023, 6, 1), discharge_date=None)
    pq.write_table(pa.Table.from_pylist(rows + [extra], schema=claims.schema), out["claims"])
    return out


def test_a_new_earlier_year_compares_every_claim(night1, tmp_path):
    # the accounts stand on 1 January of the run's earliest year: a claim of an earlier year moves it for all
    gen, _, prev = night1
    fixed = early_claim(gen, tmp_path / "in")
    ds2 = tmp_path / "ds2"
    assert invoke("prepare", *inputs_args(fixed), "--out", ds2, "-q").exit_code == 0
    full, inc = tmp_path / "full", tmp_path / "inc"
    assert (
        invoke(
            "readjudicate", *inputs_args(fixed), "--previous", prev, "--policy", POLICY, "--out", full, "-q"
        ).exit_code
        == 0
    )
    r = invoke("readjudicate", "--dataset", ds2, "--previous", prev, "--policy", POLICY, "--out", inc, "-q")
    assert r.exit_code == 0, r.output
    s = assert_same(full, inc)
    assert s["incremental"]["used"] is False and "base year" in s["incremental"]["why_not"]


# ---------------------------------------------------------------------------
# The pieces that keep the comparison proportional to what changed
# ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=40), st.data())
def test_select_by_index_keeps_what_a_mask_keeps(sizes, data):
    from adjudicate.encode import Encoded, line_rows

    n = len(sizes)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    line_start = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    line_claim = np.repeat(np.arange(n, dtype=np.int64), sizes)
    nl = int(line_start[-1])
    claims = np.flatnonzero(keep)
    assert line_rows(line_start, claims).tolist() == np.flatnonzero(keep[line_claim]).tolist()
    enc = Encoded(
        claim_dict=pa.array([f"c{i}" for i in range(n)], pa.string()),
        **{f: np.arange(n, dtype=np.int64) * 10 + 1 for f in Encoded.CLAIM_FIELDS},
        line_claim=line_claim,
        line_start=line_start,
        **{f: np.arange(nl, dtype=np.int64) * 7 + 3 for f in Encoded.LINE_FIELDS},
        rejected=[],
        input_claims=n,
        source={},
    )
    s = enc.select(keep)
    for f in Encoded.CLAIM_FIELDS:
        assert getattr(s, f).tolist() == getattr(enc, f)[keep].tolist(), f
    for f in Encoded.LINE_FIELDS:
        assert getattr(s, f).tolist() == getattr(enc, f)[keep[line_claim]].tolist(), f
    assert s.line_claim.tolist() == (np.cumsum(keep) - 1)[line_claim[keep[line_claim]]].tolist()
    assert s.line_start.tolist() == np.r_[0, np.cumsum(np.diff(line_start)[keep])].tolist()
    assert s.line_claim.dtype == enc.line_claim.dtype


def test_line_adjustments_order_any_line_no(tmp_path):
    # the lines are matched by (claim, line_no) packed in one integer: negative and large line numbers
    # keep their order and never collide with another claim's
    from adjudicate.readjudicate import LINE_AMOUNTS, line_adjustments

    def lines(rows):
        t = {
            "claim_id": pa.array([r[0] for r in rows], pa.string()),
            "line_no": pa.array([r[1] for r in rows], pa.int32()),
            "item_code": pa.array(["X"] * len(rows)),
            "class": pa.array(["A"] * len(rows)),
        }
        for k in LINE_AMOUNTS:
            t[k] = pa.array([r[2] for r in rows], pa.int64())
        return pa.table(t)

    big, low = 2**31 - 1, -(2**31)
    prev = lines([("b", low, 1), ("b", big, 1), ("a", 5, 1), ("a", 6, 1), ("z", 1, 9)])
    cur = lines([("a", 5, 2), ("b", big, 1), ("b", 0, 3), ("a", 7, 1), ("z", 1, 8)])
    # issue 12 renamed the column kind → change (CHANGELOG, Changed (breaking))
    adjusted = pa.table({"claim_id": pa.array(["b", "a"]), "change": pa.array(["changed", "changed"])})
    t = line_adjustments(prev, cur, adjusted)
    assert list(zip(t["claim_id"].to_pylist(), t["line_no"].to_pylist(), t["change"].to_pylist())) == [
        ("b", low, "removed"),
        ("b", 0, "new"),
        ("a", 5, "changed"),
        ("a", 6, "removed"),
        ("a", 7, "new"),
    ]
    assert t["self_pay_delta"].to_pylist() == [-1, 3, 1, -1, 1]


def test_chained_nights_into_the_previous_folder(night1, tmp_path):
    # a nightly job may write each night over the last one's folder (--out = --previous): the
    # incremental path reads it before the swap, and each night is the full comparison's result
    gen, ds1, prev = night1
    nightly = tmp_path / "nightly"
    shutil.copytree(prev, nightly)
    srcs = gen
    for k in (1, 2):
        srcs = correct(srcs, tmp_path / f"in{k}", 40 + k)
        ds = tmp_path / f"ds{k}"
        assert invoke("prepare", *inputs_args(srcs), "--out", ds, "-q").exit_code == 0
        full = tmp_path / f"full{k}"
        r = invoke("readjudicate", *inputs_args(srcs), "--previous", nightly, "--policy", POLICY, "--out", full, "-q")
        assert r.exit_code == 0, r.output
        r = invoke("readjudicate", "--dataset", ds, "--previous", nightly, "--policy", POLICY, "--out", nightly, "-q")
        assert r.exit_code == 0, r.output
        assert assert_same(full, nightly)["incremental"]["used"] is True
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".nightly.")]  # no leftovers


def test_the_same_policy_from_another_file_stays_incremental(night1, tmp_path):
    # the policy digest covers every value, not where the file lies (a reinstall or a copy moves it)
    from adjudicate import policy as P

    gen, ds1, prev = night1
    copy = tmp_path / "copy.toml"
    shutil.copy(P.load(POLICY).path, copy)
    fixed = correct(gen, tmp_path / "in", 7)
    ds2 = tmp_path / "ds2"
    assert invoke("prepare", *inputs_args(fixed), "--out", ds2, "-q").exit_code == 0
    full, inc = tmp_path / "full", tmp_path / "inc"
    r = invoke("readjudicate", *inputs_args(fixed), "--previous", prev, "--policy", copy, "--out", full, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("readjudicate", "--dataset", ds2, "--previous", prev, "--policy", copy, "--out", inc, "-q")
    assert r.exit_code == 0, r.output
    assert assert_same(full, inc)["incremental"]["used"] is True
    # one value changed in the copy: every claim is compared again
    text = copy.read_text(encoding="utf-8")
    changed = tmp_path / "changed.toml"
    changed.write_text(text.replace('version = "', 'version = "x', 1), encoding="utf-8")
    r = invoke("readjudicate", "--dataset", ds2, "--previous", prev, "--policy", changed, "--out", inc, "-q")
    assert r.exit_code == 0, r.output
    s = json.loads((inc / "summary.json").read_text())
    assert s["incremental"]["used"] is False and "policy" in s["incremental"]["why_not"]


def test_amounts_corrected_in_place_give_what_the_full_comparison_gives(night1, tmp_path):
    """Only amounts corrected (the benchmark's night): the same claims in the same order on both sides,
    which the incremental comparison pairs by position instead of by claim_id."""
    gen, _, prev = night1
    claims = pq.read_table(gen["claims"])
    ids = sorted(set(claims["claim_id"].to_pylist()) - {None})[::40]
    hit = pc.is_in(claims["claim_id"], value_set=pa.array(ids))
    doubled = pc.multiply(claims["amount"], pa.scalar(2, claims["amount"].type)).cast(claims["amount"].type)
    claims = claims.set_column(
        claims.column_names.index("amount"), "amount", pc.if_else(hit, doubled, claims["amount"])
    )
    (tmp_path / "in").mkdir()
    fixed = {**gen, "claims": tmp_path / "in" / "claims.parquet"}
    pq.write_table(claims, fixed["claims"])
    ds2, full, inc = tmp_path / "ds2", tmp_path / "full", tmp_path / "inc"
    assert invoke("prepare", *inputs_args(fixed), "--out", ds2, "-q").exit_code == 0
    r = invoke("readjudicate", *inputs_args(fixed), "--previous", prev, "--policy", POLICY, "--out", full, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("readjudicate", "--dataset", ds2, "--previous", prev, "--policy", POLICY, "--out", inc, "-q")
    assert r.exit_code == 0, r.output
    s = assert_same(full, inc)
    assert s["incremental"]["used"] is True and s["counts"]["by_change"]["changed"] > 0


@given(st.lists(st.integers(0, 249), max_size=60), st.booleans())
@settings(max_examples=40, deadline=None)
def test_select_claims_is_encoded_select(night1_dataset, member_rows, everyone):
    """readjudicate's run-wise selection of some members' claims gives Encoded.select's arrays."""
    from adjudicate.readjudicate import member_claims, select_claims

    enc, members = night1_dataset
    rows = np.arange(members) if everyone else np.asarray(member_rows + [-1], np.int64)
    claims = member_claims(enc.member, rows, members)
    want = np.isin(enc.member, rows[rows >= 0])
    assert claims.tolist() == np.flatnonzero(want).tolist()
    a, b = select_claims(enc, claims), enc.select(want)
    for f in (*enc.CLAIM_FIELDS, *enc.LINE_FIELDS, "line_claim", "line_start"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
        assert getattr(a, f).dtype == getattr(b, f).dtype, f


@pytest.fixture(scope="module")
def night1_dataset(night1):
    from adjudicate.dataset import open_dataset

    prep = open_dataset(night1[1])
    return prep.enc, prep.inputs.members.rows


@given(
    st.lists(st.integers(0, 30), unique=True, max_size=20),
    st.lists(st.integers(0, 30), unique=True, max_size=20),
    st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_claims_paired_by_code_as_by_claim_id(before, now, one_dictionary):
    """readjudicate pairs the earlier and the current claims by their codes when both datasets number
    the claim ids alike, by the strings otherwise: the same pairs either way."""
    from types import SimpleNamespace

    from adjudicate.readjudicate import _pairs

    names = pa.array([f"C{i:03d}" for i in range(31)])
    other = names if one_dictionary else pa.array([f"C{i:03d}" for i in reversed(range(31))])
    code = {n: i for i, n in enumerate(other.to_pylist())}
    e = SimpleNamespace(claim_dict=names, claim_code=np.array(before, np.int32))
    f_codes = np.array([code[f"C{i:03d}"] for i in now] + [0, 0], np.int32)  # two claims not among positions
    f = SimpleNamespace(claim_dict=other, claim_code=f_codes)
    positions = np.arange(len(now))
    got = _pairs(e, f, positions)
    want = np.array([now.index(i) if i in now else -1 for i in before], np.int64)
    if before == now:
        assert got is None
    else:
        assert got is not None and got.tolist() == want.tolist()


def test_paired_row_by_row_is_the_outer_join():
    """Rows holding the same keys in the same order are paired without the hash join, as compare.outer_join
    pairs them (row for row once both are in key order)."""
    from adjudicate.compare import outer_join
    from adjudicate.readjudicate import _paired

    left = pa.table({"k": ["c", "a", "b"], "x": [1, 2, 3], "s": ["p", "q", "r"]})
    right = pa.table({"k": ["c", "a", "b"], "x": [1, 5, 3], "s": ["p", "q", "t"]})
    j, was, now = _paired(left, right, ["k"])
    o, o_was, o_now = outer_join(left, right, ["k"])
    order = pc.sort_indices(o, sort_keys=[("k", "ascending")])
    assert j.take(pc.sort_indices(j, sort_keys=[("k", "ascending")])).equals(o.take(order))
    assert was.all() and now.all() and o_was.all() and o_now.all()
    # other keys, or another order: the outer join itself
    j2, was2, now2 = _paired(left, right.take([1, 0, 2]), ["k"])
    assert j2.num_rows == 3 and was2.all() and now2.all()
    j3, was3, now3 = _paired(left, right.slice(0, 2), ["k"])
    assert j3.num_rows == 3 and was3.sum() == 3 and now3.sum() == 2


def test_rows_differ_compares_every_column_of_the_gathered_rows():
    from adjudicate.readjudicate import _rows_differ

    b = np.asfortranarray(np.arange(20, dtype=np.int64).reshape(5, 4))
    rows = np.array([4, 1, 2])
    a = np.asfortranarray(b[rows].copy())
    a[1, 3] += 1
    assert _rows_differ(a, b, rows).tolist() == [False, True, False]
