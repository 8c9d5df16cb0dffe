"""``adjudicate compare`` (contract §5): two policies on the same claims, and exactly what changes."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.compare import AMOUNTS, MEMBER_AMOUNTS, histogram, parse_override, policy_with_overrides
from adjudicate.errors import PolicyError
from adjudicate.outdir import MARKER

# contract §5: every command that writes an output folder also writes report.html, and the marker that tells
# an earlier output of adjudicate from other folders
# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): members.parquet → member_changes.parquet, settled_under → change.
OUTPUTS = {"compare.parquet", "member_changes.parquet", "summary.json", "report.html", MARKER}


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(paths):
    return [x for t in ("claims", "members", "providers", "catalogue") for x in (f"--{t}", paths[t])]


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmp") / "gen"
    r = invoke("generate", "--members", 300, "--year", 2024, "--seed", 2, "--out", folder, "-q")
    assert r.exit_code == 0, r.output
    return {t: folder / f"{t}.parquet" for t in ("claims", "members", "providers", "catalogue")}


def capped_case(tmp_path):
    """One in-service member at a level-3 hospital whose two admissions pass city-employee's 40 000 cap."""
    case = Case().member("M1").member("M2").provider("H3")
    case.claim("C1", [("A1", "50000.00")], admit="2024-02-01", discharge="2024-02-10")
    case.claim("C2", [("A1", "20000.00")], admit="2024-05-01", discharge="2024-05-10")
    case.claim("C3", [("A1", "1000.00")], member_id="M2", admit="2024-03-01", discharge="2024-03-05")
    return case.write(tmp_path / "capped")


def test_same_policy_twice_gives_all_zero_deltas(gen, tmp_path):
    out = tmp_path / "same"
    r = invoke(
        "compare",
        "--policy",
        "prefecture-employee",
        "--policy",
        "prefecture-employee",
        *inputs_args(gen),
        "--out",
        out,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == OUTPUTS
    t = pq.read_table(out / "compare.parquet")
    settled = json.loads((out.parent / "same" / "summary.json").read_text())
    assert t.num_rows == settled["counts"]["claims"] == settled["counts"]["by_change"]["unchanged"] > 0
    for k in AMOUNTS:
        assert pc.all(pc.equal(t[f"{k}_delta"], Decimal(0))).as_py(), k
        assert t[f"{k}_a"].equals(t[f"{k}_b"])
    m = pq.read_table(out / "member_changes.parquet")
    for k in MEMBER_AMOUNTS:
        assert pc.all(pc.equal(m[f"{k}_delta"], Decimal(0))).as_py(), k
    assert settled["counts"]["claims_changed"] == 0
    assert settled["members"]["unchanged"] == settled["members"]["count"] > 0
    assert all(v["delta"] == "0.00" for v in settled["totals"].values())


def test_raised_cap_pays_more_from_the_pool_exactly(tmp_path):
    paths = capped_case(tmp_path)
    out = tmp_path / "cap"
    r = invoke(
        "compare",
        "--policy",
        "city-employee",
        "--set",
        "limits.fund_pool_annual.amount=50000",
        *inputs_args(paths),
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    assert "fund_pool" in r.output and "+10,000.00" in r.output  # the terminal table
    rows = {x["claim_id"]: x for x in pq.read_table(out / "compare.parquet").to_pylist()}
    # C1: E 50 000, deductible 600, X 49 400, full 41 990: capped at 40 000 under A, paid whole under B
    assert rows["C1"]["fund_pool_a"] == Decimal("40000.00") and rows["C1"]["fund_pool_b"] == Decimal("41990.00")
    # C2: no room left under A; 50 000 − 41 990 = 8 010 under B
    assert rows["C2"]["fund_pool_delta"] == Decimal("8010.00")
    assert rows["C3"]["fund_pool_delta"] == 0  # another member, far from the cap
    assert all(x["fund_pool_delta"] >= 0 for x in rows.values())
    assert all(x["total_delta"] == 0 for x in rows.values())
    s = json.loads((out / "summary.json").read_text())
    assert s["totals"]["fund_pool"] == {"a": "40340.00", "b": "50340.00", "delta": "10000.00"}
    assert s["policy_b"]["overrides"] == ["limits.fund_pool_annual.amount=50000"]
    assert s["members"]["better_off"] == 1 and s["members"]["unchanged"] == 1
    m = {(x["member_id"], x["benefit_year"]): x for x in pq.read_table(out / "member_changes.parquet").to_pylist()}
    assert m[("M1", 2024)]["fund_pool_delta"] == Decimal("10000.00") and m[("M1", 2024)]["claims"] == 2


def test_two_policies_deltas_sum_exactly_to_the_totals(gen, tmp_path):
    out = tmp_path / "two"
    r = invoke(
        "compare", "--policy", "prefecture-employee", "--policy", "city-employee", *inputs_args(gen), "--out", out, "-q"
    )
    assert r.exit_code == 0, r.output
    t = pq.read_table(out / "compare.parquet")
    m = pq.read_table(out / "member_changes.parquet")
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"]["claims_changed"] > 0
    runs = {}
    for name in ("prefecture-employee", "city-employee"):
        folder = tmp_path / name
        assert invoke("run", *inputs_args(gen), "--policy", name, "--out", folder, "-q").exit_code == 0
        runs[name] = json.loads((folder / "summary.json").read_text())["totals"]
    for k in AMOUNTS:
        a, b = Decimal(runs["prefecture-employee"][k]), Decimal(runs["city-employee"][k])
        assert Decimal(s["totals"][k]["a"]) == a and Decimal(s["totals"][k]["b"]) == b
        assert pc.sum(t[f"{k}_delta"]).as_py() == b - a == Decimal(s["totals"][k]["delta"]), k
        assert pc.sum(t[f"{k}_b"]).as_py() - pc.sum(t[f"{k}_a"]).as_py() == b - a
    for k in MEMBER_AMOUNTS:
        assert pc.sum(m[f"{k}_delta"]).as_py() == Decimal(s["totals"][k]["delta"]), k
    ms = s["members"]
    assert ms["better_off"] + ms["worse_off"] + ms["unchanged"] == ms["count"]
    d = ms["cash_paid_change"]
    assert Decimal(d["min"]) <= Decimal(d["p50"]) <= Decimal(d["max"])
    # rows in settlement order: member_id, settle_date, claim_id
    keys = list(zip(t["member_id"].to_pylist(), t["settle_date"].to_pylist(), t["claim_id"].to_pylist()))
    assert keys == sorted(keys)


def test_a_claim_settled_under_one_policy_only(tmp_path):
    # A refund of a class-B item on an admission at a non-local designated hospital: with benefit
    # (prefecture) class B's eligible is negative and the claim is rejected; without (zhenjiang,
    # no referral) all of it is self_pay and it settles.
    case = Case().member("M1").provider("FAR", designated=True, local=False)
    case.claim("C1", [("A1", "100.00"), ("B1", "-50.00")], provider_id="FAR")
    out = tmp_path / "o"
    r = invoke(
        "compare",
        "--policy",
        "prefecture-employee",
        "--policy",
        "zhenjiang-resident",
        *inputs_args(case.write(tmp_path / "in")),
        "--out",
        out,
        "-q",
    )
    assert r.exit_code == 0, r.output
    [row] = pq.read_table(out / "compare.parquet").to_pylist()
    assert row["change"] == "new" and row["total_a"] == 0 and row["total_b"] == Decimal("50.00")
    assert row["cash_paid_delta"] == Decimal("50.00")
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"]["by_change"]["new"] == 1 and s["rejected_claims"] == {"a": 1, "b": 0}


@pytest.mark.parametrize(
    "override, named",
    [
        ("limits.fund_pool_anual.amount=50000", "fund_pool_anual"),  # misspelt limit
        ("limits.fund_pool_annual.amount=-5", "limits.fund_pool_annual.amount"),  # invalid value
        ("limits.fund_pool_annual.amount=abc", "limits.fund_pool_annual.amount"),
        ("blocks.inpatient.scale.bands[0].pool=1.5", "blocks.inpatient.scale.bands[0].pool"),
        ("blocks.inpatient.scale.bands[3].pool=0.5", "blocks.inpatient.scale.bands"),  # no such band
        ("blocks.inpatient.scale.bands[0].pool.retired=0.9", "blocks.inpatient.scale.bands[0].pool"),  # a number
        ("blocks.inpatient.cap.overflow=sideways", "blocks.inpatient.cap.overflow"),
        ("blocks.inpatient.scale.colour=1", "blocks.inpatient.scale.colour"),  # unknown key, found by the loader
        ("parameters.avg_wage=1", "parameters.avg_wage"),  # a new name there does nothing
        ("no equals sign", "KEY=VALUE"),
    ],
)
def test_set_errors_exit_2_naming_the_key_before_reading_inputs(tmp_path, override, named):
    out = tmp_path / "o"
    missing = {t: tmp_path / f"missing-{t}.parquet" for t in ("claims", "members", "providers", "catalogue")}
    r = invoke("compare", "--policy", "city-employee", "--set", override, *inputs_args(missing), "--out", out)
    assert r.exit_code == 2, r.output
    assert named in r.output and "Traceback" not in r.output
    assert "missing-claims" not in r.output  # the policy is checked whole before any input is read
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path, gen):
    one = invoke("compare", "--policy", "city-employee", *inputs_args(gen), "--out", tmp_path / "o")
    three = invoke(
        "compare",
        "--policy",
        "city-employee",
        "--policy",
        "city-employee",
        "--policy",
        "city-employee",
        *inputs_args(gen),
        "--out",
        tmp_path / "o",
    )
    assert one.exit_code == 2 and "--set" in one.output
    assert three.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_policy_with_overrides():
    p = policy_with_overrides(
        "prefecture-employee",
        ["blocks.inpatient.scale.bands[0].pool.retired=0.95", "blocks.inpatient.deductible.by_level.3=[800, 500, 400]"],
    )
    b = p.block_of_setting["inpatient"]
    assert b.bands[0].pool_bp == (9100, 9500) and b.bands[1].pool_bp == (9200, 9400)
    assert b.deductible_fen[3] == (80000, 50000, 40000)
    # a new leaf key where the loader checks its name: a pool for the band above 20万
    p = policy_with_overrides("prefecture-employee", ["blocks.inpatient.scale.bands[4].pool=0.5"])
    assert p.block_of_setting["inpatient"].bands[4].pool_bp == (5000, 5000)
    # a whole inline table as the value; a bare word is a string
    p = policy_with_overrides(
        "city-employee",
        [
            "blocks.inpatient.scale.bands[0].pool={ in_service = 0.85, retired = 0.9 }",
            "blocks.inpatient.cap.overflow=member",
        ],
    )
    assert p.block_of_setting["inpatient"].bands[0].pool_bp == (8500, 9000)
    assert p.block_of_setting["inpatient"].overflow == "member"
    assert policy_with_overrides("city-employee", []) == policy_with_overrides(
        "city-employee", ["limits.fund_pool_annual.amount=40000"]
    )
    with pytest.raises(PolicyError) as e:
        policy_with_overrides("city-employee", ["limits.fund_pool_annual.amount=0.001"])
    assert e.value.key == "limits.fund_pool_annual.amount" and "--set" in str(e.value)
    assert parse_override("a.b[2].c = 'x y'") == ("a.b[2].c", ["a", "b", 2, "c"], "x y")
    for bad in ("a..b=1", "[0]=1", "a.b[x]=1", "a=", "=1"):
        with pytest.raises(PolicyError):
            parse_override(bad)


def test_output_is_atomic_and_replaces_the_folder_whole(tmp_path):
    paths = capped_case(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    (out / "stale.txt").write_text("from before")
    bad = invoke(
        "compare", "--policy", "city-employee", "--set", "limits.nope.amount=1", *inputs_args(paths), "--out", out, "-q"
    )
    assert bad.exit_code == 2 and (out / "stale.txt").read_text() == "from before"
    args = (
        "compare",
        "--policy",
        "city-employee",
        "--set",
        "limits.fund_pool_annual.amount=50000",
        *inputs_args(paths),
        "--out",
        out,
        "-q",
    )
    # contract §5: an --out that is not an earlier output of adjudicate is refused (exit 2) and left untouched
    # (this test used to expect stale.txt replaced); an earlier output is replaced whole
    refused = invoke(*args)
    assert refused.exit_code == 2 and "not an output of adjudicate" in refused.output
    assert [p.name for p in out.iterdir()] == ["stale.txt"]
    (out / "stale.txt").unlink()
    for _ in range(2):
        ok = invoke(*args)
        assert ok.exit_code == 0, ok.output
        assert {p.name for p in out.iterdir()} == OUTPUTS
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")] == []  # no temporary folder left


def test_histogram_shows_unchanged_members_apart():
    lines = histogram(np.array([0, 0, 0, -1000, -2500, 30000], np.int64))
    assert any(line.strip().startswith("0 (unchanged)") and line.endswith(" 3") for line in lines)
    assert sum(int(line.rsplit(" ", 1)[1].replace(",", "")) for line in lines[1:]) == 6
    assert "same cash" in histogram(np.zeros(4, np.int64))[-1]


@pytest.mark.parametrize("command", ["compare", "readjudicate"])
def test_help_has_examples(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0 and "Example" in r.output and "--claims" in r.output


def test_modules_import_in_any_order():
    # cli.py imports them to register the commands; each imports cli's helpers back
    for first in ("adjudicate.compare", "adjudicate.readjudicate"):
        code = (
            f"import {first}; from adjudicate.cli import main; "
            "assert {'compare', 'readjudicate'} <= set(main.commands)"
        )
        assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0, first
