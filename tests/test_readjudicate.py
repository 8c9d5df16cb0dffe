"""``adjudicate readjudicate`` (contract §5): re-run and write only the adjustments against an earlier run."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from builders import Case, numbers_not_delta_encoded
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.outdir import MARKER
from adjudicate.outputs import AMOUNTS
from adjudicate.readjudicate import LINE_AMOUNTS

# contract §5: every command that writes an output folder also writes report.html, and the marker that tells
# an earlier output of adjudicate from other folders
RUN_OUTPUTS = {"settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json", "report.html", MARKER}
OUTPUTS = {"adjustments.parquet", "line_adjustments.parquet", "summary.json", "current", "report.html", MARKER}


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(paths):
    return [x for t in ("claims", "members", "providers", "catalogue") for x in (f"--{t}", paths[t])]


def run(paths, out, policy="prefecture-employee", *extra):
    r = invoke("run", *inputs_args(paths), "--policy", policy, "--out", out, "-q", *extra)
    assert r.exit_code == 0, r.output
    return out


def readjudicate(previous, paths, out, policy="prefecture-employee", quiet=True):
    r = invoke(
        "readjudicate",
        "--previous",
        previous,
        *inputs_args(paths),
        "--policy",
        policy,
        "--out",
        out,
        *(["-q"] if quiet else []),
    )
    assert r.exit_code == 0, r.output
    return r


def adjustments(out):
    return {x["claim_id"]: x for x in pq.read_table(out / "adjustments.parquet").to_pylist()}


def summary(out):
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readj") / "gen"
    r = invoke("generate", "--members", 300, "--year", 2024, "--seed", 4, "--bad-rows", 0.02, "--out", folder, "-q")
    assert r.exit_code == 0, r.output
    return {t: folder / f"{t}.parquet" for t in ("claims", "members", "providers", "catalogue")}


def catalogue_case() -> Case:
    """Prefecture scheme, balance 0: item B2 is class B, on two claims only."""
    case = Case().member("M1").member("M2").provider("H3").provider("CL", kind="community", level=1)
    case.item("B2", "B")
    case.claim("C1", [("A1", "5000.00"), ("B2", "5000.00")], admit="2024-03-01", discharge="2024-03-10")
    case.claim("C2", [("A1", "2000.00")], admit="2024-06-01", discharge="2024-06-05")
    case.claim(
        "C3",
        [("B1", "300.00")],
        member_id="M2",
        provider_id="CL",
        setting="outpatient",
        admit="2024-04-02",
        discharge=None,
    )
    case.claim(
        "C4",
        [("B2", "1000.00"), ("A1", "50.00")],
        member_id="M2",
        provider_id="CL",
        setting="outpatient",
        admit="2024-05-02",
        discharge=None,
    )
    return case


def test_against_its_own_output_gives_zero_adjustments(gen, tmp_path):
    night1 = run(gen, tmp_path / "night1")
    night2 = tmp_path / "night2"
    readjudicate(night1, gen, night2)
    assert {p.name for p in night2.iterdir()} == OUTPUTS
    assert {p.name for p in (night2 / "current").iterdir()} == RUN_OUTPUTS
    assert pq.read_table(night2 / "adjustments.parquet").num_rows == 0
    assert pq.read_table(night2 / "line_adjustments.parquet").num_rows == 0
    s = summary(night2)
    assert s["counts"]["adjusted_claims"] == 0 and s["reconciles"]
    assert all(v == "0.00" for v in s["deltas"].values())
    assert s["previous"]["summary_matches_settlements"]
    assert s["previous"]["inputs"] == s["current"]["inputs"]
    assert s["previous"]["policy"] == s["current"]["policy"]
    # current/ is the same run, file for file
    assert pq.read_table(night2 / "current" / "settlements.parquet").equals(
        pq.read_table(night1 / "settlements.parquet")
    )
    # and the next night can chain on this folder (its current/ is used)
    night3 = tmp_path / "night3"
    readjudicate(night2, gen, night3)
    assert summary(night3)["counts"]["adjusted_claims"] == 0


# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): kind → change, by_kind → by_change.
def test_catalogue_class_change_adjusts_only_claims_with_that_item(tmp_path):
    case = catalogue_case()
    before = case.write(tmp_path / "before")
    night1 = run(before, tmp_path / "night1")
    next(r for r in case.catalogue if r["item_code"] == "B2")["class"] = "A"  # B → A
    after = case.write(tmp_path / "after")
    night2 = tmp_path / "night2"
    readjudicate(night1, after, night2)
    adj = adjustments(night2)
    assert set(adj) == {"C1", "C4"} and {a["change"] for a in adj.values()} == {"changed"}
    c1 = adj["C1"]
    # before: B2 first_self_pay 750, E 9 250, deductible 700, X 8 550, pool 91 % = 7 780.50
    # after: all class A, E 10 000, X 9 300, pool 8 463.00 (schemes.md §10 example 1)
    assert (c1["first_self_pay_previous"], c1["first_self_pay_current"]) == (Decimal("750.00"), Decimal("0.00"))
    assert (c1["fund_pool_previous"], c1["fund_pool_current"]) == (Decimal("7780.50"), Decimal("8463.00"))
    assert c1["fund_pool_delta"] == Decimal("682.50") and c1["cash_paid_delta"] == Decimal("-682.50")
    assert c1["eligible_delta"] == Decimal("750.00") and c1["member_policy_share_delta"] == Decimal("67.50")
    assert c1["total_delta"] == 0 and c1["deductible_delta"] == 0
    c4 = adj["C4"]  # outpatient: no pooled benefit, but the split moves 150 from first_self_pay to eligible
    assert c4["first_self_pay_delta"] == Decimal("-150.00") and c4["eligible_delta"] == Decimal("150.00")
    assert c4["fund_pool_delta"] == 0 and c4["member_id"] == "M2"
    lines = pq.read_table(night2 / "line_adjustments.parquet").to_pylist()
    b2 = [x for x in lines if x["item_code"] == "B2"]
    assert {(x["claim_id"], x["class_previous"], x["class_current"]) for x in b2} == {
        ("C1", "B", "A"),
        ("C4", "B", "A"),
    }
    assert {x["claim_id"] for x in lines} == {"C1", "C4"}
    assert [(x["claim_id"], x["line_no"]) for x in lines] == [("C1", 1), ("C1", 2), ("C4", 1)]  # C4's A1 unchanged
    s = summary(night2)
    assert s["counts"]["by_change"] == {"changed": 2, "new": 0, "removed": 0, "now_rejected": 0}
    assert s["deltas"]["fund_pool"] == "682.50" and s["reconciles"]


def test_deltas_sum_exactly_to_the_difference_of_totals(gen, tmp_path):
    night1 = run(gen, tmp_path / "night1", "prefecture-employee")
    night2 = tmp_path / "night2"
    readjudicate(night1, gen, night2, "city-employee")
    t = pq.read_table(night2 / "adjustments.parquet")
    lines = pq.read_table(night2 / "line_adjustments.parquet")
    s = summary(night2)
    old, new = summary(night1)["totals"], summary(night2 / "current")["totals"]
    assert s["counts"]["adjusted_claims"] == t.num_rows > 0 and s["reconciles"]
    for k in AMOUNTS:
        delta = pc.sum(t[f"{k}_delta"]).as_py() or Decimal(0)
        assert delta == Decimal(new[k]) - Decimal(old[k]) == Decimal(s["deltas"][k]), k
        assert pc.sum(t[f"{k}_current"]).as_py() - pc.sum(t[f"{k}_previous"]).as_py() == delta
    # each adjusted claim's line Δ sums exactly to its claim Δ
    by_claim: dict = defaultdict(lambda: defaultdict(Decimal))
    for x in lines.to_pylist():
        for k in LINE_AMOUNTS:
            by_claim[x["claim_id"]][k] += x[f"{k}_delta"]
    for a in t.to_pylist():
        for k in LINE_AMOUNTS:
            assert by_claim[a["claim_id"]][k] == a[f"{k}_delta"], (a["claim_id"], k)
    ids = t["claim_id"].to_pylist()
    assert len(set(ids)) == len(ids)
    # written with the writer options of every output (outputs.parquet_options)
    assert numbers_not_delta_encoded(night2 / "adjustments.parquet") == []
    assert numbers_not_delta_encoded(night2 / "line_adjustments.parquet") == []


@pytest.mark.parametrize("partitions", ["1", "3"])
def test_previous_may_be_a_spark_output_of_part_files(gen, tmp_path, partitions):
    # run --engine spark writes settlements.parquet and lines.parquet as folders of part files with
    # _SUCCESS and .crc files (docs/spark.md); such a folder is the same earlier run
    night1 = run(gen, tmp_path / "night1")
    spark = tmp_path / "spark"
    shutil.copytree(night1, spark)
    for name in ("settlements.parquet", "lines.parquet"):
        t = pq.read_table(night1 / name)
        (spark / name).unlink()
        (spark / name).mkdir()
        half = t.num_rows // 2
        for k, part in enumerate((t.slice(0, half), t.slice(half))):
            pq.write_table(part, spark / name / f"part-0000{k}-x.snappy.parquet")
            (spark / name / f".part-0000{k}-x.snappy.parquet.crc").write_bytes(b"\x00crc")
        (spark / name / "_SUCCESS").write_bytes(b"")
    from_file, from_parts = tmp_path / "a", tmp_path / "b"
    for prev, out in ((night1, from_file), (spark, from_parts)):
        r = invoke(
            "readjudicate", "--previous", prev, *inputs_args(gen), "--policy", "city-employee", "--out", out, "-q",
            "--partitions", partitions,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
    for name in ("adjustments.parquet", "line_adjustments.parquet"):
        a, b = pq.read_table(from_file / name), pq.read_table(from_parts / name)
        assert a.num_rows > 0 and a.equals(b), name
    assert summary(from_parts)["deltas"] == summary(from_file)["deltas"]


def test_new_removed_and_now_rejected(tmp_path):
    case = Case().member("M1").member("M2").provider("H3")
    case.claim("KEEP", [("A1", "1000.00")], admit="2024-01-02", discharge="2024-01-04")
    case.claim("GONE", [("A1", "2000.00")], member_id="M2", admit="2024-02-02", discharge="2024-02-04")
    case.claim("BAD", [("A1", "3000.00")], member_id="M2", admit="2024-03-02", discharge="2024-03-04")
    case.claim("FIXED", [("A1", "400.00")], member_id="M9", admit="2024-04-02", discharge="2024-04-04")
    case.claim("STILLBAD", [("A1", "500.00")], member_id="M9", admit="2024-05-02", discharge="2024-05-04")
    night1 = run(case.write(tmp_path / "before"), tmp_path / "night1")
    # the next night: GONE withdrawn, BAD's provider now unknown, FIXED's member corrected, NEW added
    case.claims = [c for c in case.claims if c["claim_id"] != "GONE"]
    for c in case.claims:
        if c["claim_id"] == "BAD":
            c["provider_id"] = "H404"
        if c["claim_id"] == "FIXED":
            c["member_id"] = "M1"
    case.claim("NEW", [("A1", "700.00")], admit="2024-06-02", discharge="2024-06-04")
    night2 = tmp_path / "night2"
    readjudicate(night1, case.write(tmp_path / "after"), night2)
    adj = adjustments(night2)
    assert {k: a["change"] for k, a in adj.items()} == {
        "GONE": "removed",
        "BAD": "now_rejected",
        "FIXED": "new",
        "NEW": "new",
    }
    for cid in ("GONE", "BAD"):
        a = adj[cid]
        assert all(a[f"{k}_current"] == 0 and a[f"{k}_delta"] == -a[f"{k}_previous"] for k in AMOUNTS)
        assert a["total_previous"] > 0 and a["member_id"] == "M2" == a["previous_member_id"]
    for cid in ("FIXED", "NEW"):
        a = adj[cid]
        assert all(a[f"{k}_previous"] == 0 and a[f"{k}_delta"] == a[f"{k}_current"] for k in AMOUNTS)
        assert a["previous_member_id"] is None and a["member_id"] == "M1"
    assert adj["NEW"]["total_current"] == Decimal("700.00")
    s = summary(night2)
    assert s["counts"]["by_change"] == {"changed": 0, "new": 2, "removed": 1, "now_rejected": 1}
    assert s["reconciles"]
    lines = pq.read_table(night2 / "line_adjustments.parquet").to_pylist()
    assert {(x["claim_id"], x["change"]) for x in lines} == {
        ("GONE", "removed"),
        ("BAD", "now_rejected"),
        ("FIXED", "new"),
        ("NEW", "new"),
    }


def test_previous_without_lines_writes_no_line_adjustments(tmp_path):
    paths = catalogue_case().write(tmp_path / "in")
    night1 = run(paths, tmp_path / "night1", "prefecture-employee", "--no-lines")
    night2 = tmp_path / "night2"
    r = readjudicate(night1, paths, night2, "city-employee", quiet=False)
    assert "adjusted claims" in r.output and "fund_pool" in r.output
    assert not (night2 / "line_adjustments.parquet").exists()
    assert (night2 / "current" / "lines.parquet").exists()  # the next night will have them
    assert "adjusted_lines" not in summary(night2)["counts"]


def test_errors_exit_2_and_leave_the_output_alone(tmp_path):
    paths = catalogue_case().write(tmp_path / "in")
    # contract §5: an --out that is not an earlier output is refused before anything else, so the errors
    # below are shown with an earlier output in --out (this test used to put stale.txt there)
    out = run(paths, tmp_path / "o")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = invoke(
        "readjudicate",
        "--previous",
        tmp_path / "nowhere",
        *inputs_args(paths),
        "--policy",
        "prefecture-employee",
        "--out",
        out,
    )
    assert r.exit_code == 2 and "nowhere" in r.output and "Traceback" not in r.output
    night1 = run(paths, tmp_path / "night1")
    table = pq.read_table(night1 / "settlements.parquet").drop_columns(["fund_pool"])
    pq.write_table(table, night1 / "settlements.parquet")
    r = invoke(
        "readjudicate", "--previous", night1, *inputs_args(paths), "--policy", "prefecture-employee", "--out", out
    )
    assert r.exit_code == 2 and "fund_pool" in r.output and "settlements.parquet" in r.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    shutil.rmtree(out)
    out.mkdir()
    (out / "stale.txt").write_text("from before")
    # contract §5: a folder that is not an earlier output of adjudicate is refused (exit 2), even when the
    # run would succeed (this test used to expect it replaced)
    r = invoke(
        "readjudicate",
        "--previous",
        run(paths, tmp_path / "night1b"),
        *inputs_args(paths),
        "--policy",
        "prefecture-employee",
        "--out",
        out,
    )
    assert r.exit_code == 2 and "not an output of adjudicate" in r.output
    assert [p.name for p in out.iterdir()] == ["stale.txt"]
    # success replaces an earlier output whole, leaving no temporary folder beside it
    (out / "stale.txt").unlink()
    for _ in range(2):
        readjudicate(tmp_path / "night1b", paths, out)
        assert {p.name for p in out.iterdir()} == OUTPUTS
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")] == []


def test_out_may_be_the_previous_folder(tmp_path):
    paths = catalogue_case().write(tmp_path / "in")
    night = run(paths, tmp_path / "night")
    readjudicate(night, paths, night, "city-employee")
    assert summary(night)["counts"]["adjusted_claims"] > 0
    readjudicate(night, paths, night, "city-employee")  # now from night/current/
    assert summary(night)["counts"]["adjusted_claims"] == 0


# ---------------------------------------------------------------------------
# the previous outputs are inputs too (issue 8 §7)
# ---------------------------------------------------------------------------


def _rewrite(path, column, array):
    t = pq.read_table(path)
    pq.write_table(t.set_column(t.column_names.index(column), column, array), path)


def test_a_null_amount_in_the_previous_settlements_is_an_input_error(tmp_path):
    paths = catalogue_case().write(tmp_path / "in")
    night1 = run(paths, tmp_path / "night1")
    t = pq.read_table(night1 / "settlements.parquet")
    pool = t["fund_pool"].to_pylist()
    pool[2] = None
    _rewrite(night1 / "settlements.parquet", "fund_pool", pa.array(pool, t["fund_pool"].type))
    r = invoke(
        "readjudicate",
        "--previous",
        night1,
        *inputs_args(paths),
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "o",
    )
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "settlements.parquet" in r.output and "'fund_pool'" in r.output and "row 2" in r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("table", ["settlements", "lines"])
def test_claim_ids_of_another_type_are_cast_when_lossless_and_refused_otherwise(table, tmp_path):
    paths = catalogue_case().write(tmp_path / "in")
    night1 = run(paths, tmp_path / "night1")
    readjudicate(night1, paths, tmp_path / "plain", "city-employee")
    expected = adjustments(tmp_path / "plain")
    path = night1 / f"{table}.parquet"
    ids = pq.read_table(path)["claim_id"]
    for i, lossless in enumerate((ids.cast(pa.large_string()), pc.dictionary_encode(ids))):
        _rewrite(path, "claim_id", lossless)
        out = tmp_path / f"o{i}"
        readjudicate(night1, paths, out, "city-employee")
        assert adjustments(out) == expected
    _rewrite(path, "claim_id", pa.array(range(len(ids)), pa.int64()))
    r = invoke(
        "readjudicate",
        "--previous",
        night1,
        *inputs_args(paths),
        "--policy",
        "city-employee",
        "--out",
        tmp_path / "bad",
    )
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"{table}.parquet" in r.output and "'claim_id'" in r.output and "int64" in r.output and "row 0" in r.output


def test_a_previous_run_of_other_data_is_warned_about_loudly(gen, tmp_path):
    other = tmp_path / "other"
    r = invoke("generate", "--members", 300, "--year", 2024, "--seed", 5, "--out", other, "-q")
    assert r.exit_code == 0, r.output
    other_paths = {t: other / f"{t}.parquet" for t in ("claims", "members", "providers", "catalogue")}
    night1 = run(other_paths, tmp_path / "night1")
    r = invoke(
        "readjudicate",
        "--previous",
        night1,
        *inputs_args(gen),
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "night2",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert "warning: the previous run" in r.output and "unrelated" in r.output
    s = summary(tmp_path / "night2")
    assert s["previous"]["relation"]["unrelated"] and s["warnings"]
    # the same data, re-run: no warning
    same = run(gen, tmp_path / "same")
    r = invoke(
        "readjudicate",
        "--previous",
        same,
        *inputs_args(gen),
        "--policy",
        "city-employee",
        "--out",
        tmp_path / "night3",
        "-q",
    )
    assert r.exit_code == 0 and "warning" not in r.output, r.output
    s = summary(tmp_path / "night3")
    assert not s["previous"]["relation"]["unrelated"] and s["warnings"] == []
    assert s["previous"]["relation"]["input_files_in_common"] == 4


def test_a_claim_id_twice_in_the_previous_settlements_is_an_input_error(tmp_path):
    paths = catalogue_case().write(tmp_path / "in")
    night1 = run(paths, tmp_path / "night1")
    ids = pq.read_table(night1 / "settlements.parquet")["claim_id"].to_pylist()
    _rewrite(night1 / "settlements.parquet", "claim_id", pa.array([ids[0], ids[0], *ids[2:]], pa.string()))
    r = invoke(
        "readjudicate", "--previous", night1, *inputs_args(paths), "--policy", "city-employee", "--out", tmp_path / "o"
    )
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "settlements.parquet" in r.output and "'claim_id'" in r.output and "twice" in r.output
    assert not (tmp_path / "o").exists()


def test_relation_counts_claims_found_again_under_another_member_or_rejected(tmp_path):
    """The claims of the earlier run found again (settled now, or rejected now) and those settled now under
    another member, with the claims in another order than before."""
    case = Case().member("M1").member("M2").provider("H3")
    for i, member in enumerate(("M1", "M2", "M1", "M2")):
        case.claim(
            f"C{i}",
            [("A1", f"{100 * (i + 1)}.00")],
            member_id=member,
            admit=f"2024-0{i + 1}-02",
            discharge=f"2024-0{i + 1}-05",
        )
    night1 = run(case.write(tmp_path / "before"), tmp_path / "night1")
    for c in case.claims:
        if c["claim_id"] == "C0":
            c["member_id"] = "M2"  # settled now under another member (and so in another place of the order)
        if c["claim_id"] == "C1":
            c["provider_id"] = "H404"  # rejected now
    case.claims = [c for c in case.claims if c["claim_id"] != "C3"]  # gone
    night2 = tmp_path / "night2"
    readjudicate(night1, case.write(tmp_path / "after"), night2)
    s = summary(night2)
    assert s["previous"]["relation"] == {
        "previous_claims": 4,
        "claims_in_common": 3,
        "claims_with_another_member": 1,
        "input_files_in_common": 3,
        "unrelated": False,
    }
    assert s["counts"]["by_change"] == {"changed": 0, "new": 0, "removed": 1, "now_rejected": 1}
    assert s["reconciles"]
