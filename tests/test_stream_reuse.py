"""compare, sweep and readjudicate one member range at a time (issue 9 §6): the same outputs as in memory."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.generate import generate_tables, write_dataset

# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): members.parquet → member_changes.parquet.

TABLES = ("claims", "members", "providers", "catalogue")


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(folder):
    return [x for t in TABLES for x in (f"--{t}", folder / f"{t}.parquet")]


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """Generated claims with bad rows (unknown members, inconsistent headers, negative claims …)."""
    folder = tmp_path_factory.mktemp("sr") / "gen"
    write_dataset(generate_tables(400, 2024, seed=4, bad_rows=0.05), folder)
    return folder


def same(a, b, files):
    for f in files:
        ta, tb = pq.read_table(a / f), pq.read_table(b / f)
        assert ta.schema == tb.schema, f
        for c in ta.column_names:
            assert ta[c].combine_chunks().equals(tb[c].combine_chunks()), (f, c)


def summary(folder):
    s = json.loads((folder / "summary.json").read_text())
    for k in ("timings_seconds", "partitions"):
        s.pop(k, None)
    return s


@pytest.mark.parametrize("parts", [2, 5])
def test_compare_in_member_ranges(gen, tmp_path, parts):
    args = ["compare", *inputs_args(gen), "--policy", "prefecture-employee", "--policy", "zhenjiang-resident", "-q"]
    one, many = tmp_path / "one", tmp_path / "many"
    assert invoke(*args, "--out", one).exit_code == 0
    r = invoke(*args, "--out", many, "--partitions", parts)
    assert r.exit_code == 0, r.output
    same(one, many, ["compare.parquet", "member_changes.parquet"])
    assert summary(one) == summary(many)
    assert json.loads((many / "summary.json").read_text())["partitions"] == parts


def test_sweep_in_member_ranges(gen, tmp_path):
    args = [
        "sweep",
        *inputs_args(gen),
        "--policy",
        "city-employee",
        "--deltas",
        2,
        "--vary",
        "limits.fund_pool_annual.amount=30000,60000",
        "--policy",
        "prefecture-employee",
        "-q",
    ]
    one, many = tmp_path / "one", tmp_path / "many"
    assert invoke(*args, "--out", one).exit_code == 0
    r = invoke(*args, "--out", many, "--partitions", 3)
    assert r.exit_code == 0, r.output
    same(one, many, ["variants.parquet", "member_changes.parquet"])
    assert summary(one) == summary(many)


def test_partitions_with_a_dataset_is_a_usage_error(gen, tmp_path):
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(gen), "--out", ds, "-q").exit_code == 0
    for cmd in (
        ["compare", "--policy", "city-employee", "--policy", "prefecture-employee"],
        ["sweep", "--policy", "city-employee", "--vary", "limits.fund_pool_annual.amount=1,2"],
    ):
        r = invoke(*cmd, "--dataset", ds, "--partitions", 3, "--out", tmp_path / "o")
        assert r.exit_code == 2 and "--partitions" in r.output


@pytest.mark.parametrize("seed", [1, 2])
def test_readjudicate_in_member_ranges(gen, tmp_path, seed):
    from test_incremental import correct

    paths = {t: gen / f"{t}.parquet" for t in TABLES}
    night1 = tmp_path / "night1"
    assert invoke("run", *inputs_args(gen), "--policy", "city-employee", "--out", night1, "-q").exit_code == 0
    fixed = correct(paths, tmp_path / "fixed", seed)
    args = [
        "readjudicate",
        *[x for t in TABLES for x in (f"--{t}", fixed[t])],
        "--previous",
        night1,
        "--policy",
        "city-employee",
        "-q",
    ]
    one, many = tmp_path / "one", tmp_path / "many"
    assert invoke(*args, "--out", one).exit_code == 0
    r = invoke(*args, "--out", many, "--partitions", 3)
    assert r.exit_code == 0, r.output
    same(
        one,
        many,
        [
            "adjustments.parquet",
            "line_adjustments.parquet",
            "current/settlements.parquet",
            "current/lines.parquet",
            "current/rejected.parquet",
        ],
    )
    a, b = summary(one), summary(many)
    for k in ("counts", "deltas", "reconciles", "line_deltas"):
        assert a[k] == b[k], k
    assert b["reconciles"] and b["counts"]["adjusted_claims"] > 0
    assert a["previous"]["totals"] == b["previous"]["totals"]
    assert a["current"]["totals"] == b["current"]["totals"]


def test_an_earlier_year_in_a_later_member_range(gen, tmp_path):
    # the run's base year is the earliest of all ranges (contract §3): found in the last range here
    from test_incremental import early_claim

    paths = {t: gen / f"{t}.parquet" for t in TABLES}
    fixed = early_claim(paths, tmp_path / "in", -1)
    folder = tmp_path / "in"
    for cmd, files in (
        (
            ["compare", "--policy", "prefecture-employee", "--policy", "city-employee"],
            ["compare.parquet", "member_changes.parquet"],
        ),
        (
            [
                "sweep",
                "--policy",
                "city-employee",
                "--vary",
                "limits.fund_pool_annual.amount=30000,60000",
                "--deltas",
                1,
            ],
            ["variants.parquet", "member_changes.parquet"],
        ),
    ):
        one, many = tmp_path / f"{cmd[0]}-one", tmp_path / f"{cmd[0]}-many"
        assert invoke(*cmd, *inputs_args(folder), "--out", one, "-q").exit_code == 0
        r = invoke(*cmd, *inputs_args(folder), "--out", many, "--partitions", 4, "-q")
        assert r.exit_code == 0, r.output
        same(one, many, files)
        assert summary(one) == summary(many)
    assert fixed["claims"].exists()
