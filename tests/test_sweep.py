"""``adjudicate sweep`` (issue 9 §4): K policy variants on one decode, one row per variant."""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from builders import numbers_not_delta_encoded
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.compare import AMOUNTS
from adjudicate.errors import PolicyError
from adjudicate.sweep import split_values, variants

TABLES = ("claims", "members", "providers", "catalogue")


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(paths):
    return [x for t in TABLES for x in (f"--{t}", paths[t])]


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep") / "gen"
    r = invoke("generate", "--members", 300, "--year", 2024, "--seed", 3, "--out", folder, "-q")
    assert r.exit_code == 0, r.output
    return {t: folder / f"{t}.parquet" for t in TABLES}


CAP = "limits.fund_pool_annual.amount"
BAND = "blocks.inpatient.scale.bands[0].pool"


def test_each_variant_row_is_what_compare_says(gen, tmp_path):
    out = tmp_path / "sw"
    r = invoke(
        "sweep",
        "--policy",
        "city-employee",
        "--vary",
        f"{CAP}=30000,60000",
        "--vary",
        f"{BAND}={{ in_service = 0.85, retired = 0.9 }},{{ in_service = 0.9, retired = 0.95 }}",
        "--policy",
        "prefecture-employee",
        *inputs_args(gen),
        "--out",
        out,
        "--deltas",
        2,
        "-q",
    )
    assert r.exit_code == 0, r.output
    t = pq.read_table(out / "variants.parquet").to_pylist()
    # written with the writer options of every output (outputs.parquet_options)
    assert numbers_not_delta_encoded(out / "variants.parquet") == []
    assert numbers_not_delta_encoded(out / "member_changes.parquet") == []
    assert {p.name for p in out.iterdir()} >= {
        "variants.parquet",
        "member_changes.parquet",
        "summary.json",
        "report.html",
    }
    assert "limits.fund_pool_annual.amount=30000" in (out / "report.html").read_text(encoding="utf-8")
    assert [row["variant"] for row in t] == list(range(6))  # baseline, 2 × 2 grid, one more policy file
    assert all(row[f"{k}_delta"] == 0 for k in AMOUNTS for row in t[:1])
    s = json.loads((out / "summary.json").read_text())
    grid = [(v["label"], v["overrides"]) for v in s["variants"]]
    assert grid[2][1] == [f"{CAP}=30000", f"{BAND}={{ in_service = 0.9, retired = 0.95 }}"]
    assert grid[5][0].startswith("prefecture-employee")
    for i, (_label, overrides) in enumerate(grid[1:], start=1):
        c = tmp_path / f"cmp{i}"
        args = [x for o in overrides for x in ("--set", o)] if overrides else ["--policy", "prefecture-employee"]
        r = invoke("compare", "--policy", "city-employee", *args, *inputs_args(gen), "--out", c, "-q")
        assert r.exit_code == 0, r.output
        cs = json.loads((c / "summary.json").read_text())
        row = t[i]
        for k in AMOUNTS:
            assert row[k] == Decimal(cs["totals"][k]["b"]), (i, k)
            assert row[f"{k}_delta"] == Decimal(cs["totals"][k]["delta"]), (i, k)
        m = cs["members"]
        assert (row["members"], row["members_better_off"], row["members_worse_off"], row["members_unchanged"]) == (
            m["count"],
            m["better_off"],
            m["worse_off"],
            m["unchanged"],
        )
        for p in (1, 50, 99):
            assert row[f"member_paid_change_p{p}"] == Decimal(m["member_paid_change"][f"p{p}"])
        if i == 2:  # --deltas 2: compare's member_changes.parquet, exactly
            a, b = pq.read_table(c / "member_changes.parquet"), pq.read_table(out / "member_changes.parquet")
            assert a.equals(b)
    assert any(row["fund_pool_delta"] != 0 for row in t[1:])


def test_sweep_from_a_dataset_is_identical(gen, tmp_path):
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(gen), "--out", ds, "-q").exit_code == 0
    args = ["--policy", "city-employee", "--vary", f"{CAP}=20000,40000,80000", "-q"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke("sweep", *args, *inputs_args(gen), "--out", a).exit_code == 0
    assert invoke("sweep", *args, "--dataset", ds, "--out", b).exit_code == 0
    assert pq.read_table(a / "variants.parquet").equals(pq.read_table(b / "variants.parquet"))


def test_split_values_keeps_tables_and_lists_whole():
    assert split_values("a.b=1,2, 3") == ("a.b", ["1", "2", "3"])
    assert split_values("x={ a = 1, b = 2 },{ a = 3, b = 4 }") == ("x", ["{ a = 1, b = 2 }", "{ a = 3, b = 4 }"])
    assert split_values("x=[1, 2],'a,b'") == ("x", ["[1, 2]", "'a,b'"])
    for bad in ("x", "=1", "x=", "x=1,,2"):
        with pytest.raises(PolicyError):
            split_values(bad)


def test_every_variant_is_validated_before_anything_runs():
    with pytest.raises(PolicyError, match="fund_pool_anual"):
        variants("city-employee", ["limits.fund_pool_anual.amount=1,2"])
    with pytest.raises(PolicyError, match=r"fund_pool_annual.amount"):
        variants("city-employee", [f"{CAP}=1,-5"])
    assert len(variants("city-employee", [f"{CAP}=1,2,3"])) == 4  # the baseline and three
    assert len(variants("city-employee", [f"{CAP}=1,2,3", f"{BAND}=0.8,0.9"], ["prefecture-employee"])) == 8


def test_usage_errors_exit_2(gen, tmp_path):
    out = tmp_path / "o"
    r = invoke("sweep", "--policy", "city-employee", *inputs_args(gen), "--out", out)
    assert r.exit_code == 2 and "nothing to sweep" in r.output
    r = invoke(
        "sweep", "--policy", "city-employee", "--vary", "limits.nope.amount=1,2", *inputs_args(gen), "--out", out
    )
    assert r.exit_code == 2 and "nope" in r.output and "Traceback" not in r.output
    r = invoke(
        "sweep", "--policy", "city-employee", "--vary", f"{CAP}=1,2", "--deltas", 3, *inputs_args(gen), "--out", out
    )
    assert r.exit_code == 2 and "--deltas 3" in r.output
    assert not out.exists()


# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): members.parquet → member_changes.parquet.
def test_help_has_examples():
    r = invoke("sweep", "--help")
    assert r.exit_code == 0 and "Example" in r.output and "--vary" in r.output
    r = invoke("prepare", "--help")
    assert r.exit_code == 0 and "Example" in r.output
