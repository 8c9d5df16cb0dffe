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
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

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
