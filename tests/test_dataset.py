"""Prepared datasets (issue 9 §3): ``adjudicate prepare`` and ``--dataset``.

Every command gives, column by column, what it gives from the input files; a
stale or foreign dataset is refused with exit 2; corrected members, providers
or catalogue re-join without the claims.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner

from adjudicate import cli

# Names of non-contract outputs as issue 12 renamed them (CHANGELOG, Changed (breaking)): members.parquet → member_changes.parquet, settled_under_b_only → by_change.new.

POLICIES = ("prefecture-employee", "city-employee", "zhenjiang-resident", "shenzhen-comprehensive")
TABLES = ("claims", "members", "providers", "catalogue")


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(paths):
    return [x for t in TABLES for x in (f"--{t}", paths[t])]


def same_folder(a, b, files):
    """Every parquet file equal column by column; summary.json equal but for timings and the provenance
    (which dataset, whether the comparison was incremental)."""
    for f in files:
        if f.endswith(".parquet"):
            ta, tb = pq.read_table(a / f), pq.read_table(b / f)
            assert ta.schema == tb.schema, f
            for c in ta.column_names:
                assert ta[c].equals(tb[c]), (f, c)
        else:
            sa, sb = json.loads((a / f).read_text()), json.loads((b / f).read_text())
            for s in (sa, sb):
                for k in ("timings_seconds", "dataset", "incremental"):
                    s.pop(k, None)
                    s.get("current", {}).pop(k, None)
                s.get("previous", {}).pop("summary_matches_settlements", None)
            assert sa == sb, f


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds") / "gen"
    r = invoke("generate", "--members", 300, "--year", 2024, "--seed", 5, "--out", folder, "-q")
    assert r.exit_code == 0, r.output
    return {t: folder / f"{t}.parquet" for t in TABLES}


@pytest.fixture(scope="module")
def dataset(gen, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "ds"
    r = invoke("prepare", *inputs_args(gen), "--out", out, "-q")
    assert r.exit_code == 0, r.output
    return out


def rejecting_case(tmp_path):
    """Claims of every kind of fate: settled, rejected by encode, rejected by one policy only."""
    case = Case().member("M1").member("M2").provider("H3").provider("FAR", designated=True, local=False)
    case.claim("C1", [("A1", "50000.00"), ("B1", "300.00")], admit="2024-02-01", discharge="2024-02-10")
    case.claim("C2", [("A1", "120.00")], member_id="M2", setting="outpatient", admit="2024-03-01")
    case.claim("C3", [("A1", "100.00"), ("B1", "-50.00")], provider_id="FAR")  # negative under some policies
    case.claim("C4", [("A1", "10.00")], member_id="NOBODY")  # unknown member
    return case.write(tmp_path / "case")


@pytest.mark.parametrize("policy", POLICIES)
def test_run_from_a_dataset_is_identical_to_the_plain_run(gen, dataset, tmp_path, policy):
    plain, prepared = tmp_path / "plain", tmp_path / "prepared"
    assert invoke("run", *inputs_args(gen), "--policy", policy, "--out", plain, "-q").exit_code == 0
    r = invoke("run", "--dataset", dataset, "--policy", policy, "--out", prepared, "-q")
    assert r.exit_code == 0, r.output
    same_folder(plain, prepared, ["settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json"])


def test_rejections_and_policy_dependent_rejections_survive_the_dataset(tmp_path):
    paths = rejecting_case(tmp_path)
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q").exit_code == 0
    for policy in ("prefecture-employee", "zhenjiang-resident"):  # C3 negative under one, settled under other
        a, b = tmp_path / f"a-{policy}", tmp_path / f"b-{policy}"
        assert invoke("run", *inputs_args(paths), "--policy", policy, "--out", a, "-q").exit_code == 0
        assert invoke("run", "--dataset", ds, "--policy", policy, "--out", b, "-q").exit_code == 0
        same_folder(a, b, ["settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json"])
    # the same dataset under both policies in one process (compare): the rejections do not leak
    a, b = tmp_path / "cmp-plain", tmp_path / "cmp-ds"
    args = ["--policy", "prefecture-employee", "--policy", "zhenjiang-resident", "-q"]
    assert invoke("compare", *inputs_args(paths), *args, "--out", a).exit_code == 0
    assert invoke("compare", "--dataset", ds, *args, "--out", b).exit_code == 0
    same_folder(a, b, ["compare.parquet", "member_changes.parquet", "summary.json"])
    s = json.loads((b / "summary.json").read_text())
    assert s["counts"]["by_change"]["new"] == 1 and s["rejected_claims"] == {"a": 2, "b": 1}


def test_compare_from_a_dataset_is_identical(gen, dataset, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--policy", "city-employee", "--set", "limits.fund_pool_annual.amount=50000", "-q"]
    assert invoke("compare", *inputs_args(gen), *args, "--out", a).exit_code == 0
    r = invoke("compare", "--dataset", dataset, *args, "--out", b)
    assert r.exit_code == 0, r.output
    same_folder(a, b, ["compare.parquet", "member_changes.parquet", "summary.json"])


@pytest.mark.parametrize("from_dataset", [False, True])
def test_prepared_without_the_claims_table_settles_alike(gen, dataset, from_dataset):
    """compare and sweep let the claims table go once encoded (load_prepared(claims_table=False)): the
    encoded claims and every settlement are the same, the table keeps its row count and digests."""
    from dataclasses import fields

    from adjudicate import engine
    from adjudicate import policy as P
    from adjudicate.dataset import load_prepared

    args = [[gen[t]] for t in TABLES]
    ds = dataset if from_dataset else None
    whole, light = load_prepared(*args, dataset=ds), load_prepared(*args, dataset=ds, claims_table=False)
    assert whole.inputs.claims.values and not light.inputs.claims.values and not light.inputs.claims.nulls
    assert light.inputs.claims.rows == whole.inputs.claims.rows and light.digests == whole.digests
    assert light.inputs.digests() == whole.inputs.digests()
    pol = P.load("city-employee")
    a, b = engine.settle(whole, pol, line_funds=False), engine.settle(light, pol, line_funds=False)
    for f in fields(a):
        if isinstance(getattr(a, f.name), np.ndarray):
            assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name
    assert a.enc.rejected == b.enc.rejected


def test_readjudicate_and_explain_from_a_dataset_are_identical(gen, dataset, tmp_path):
    night1 = tmp_path / "night1"
    assert invoke("run", *inputs_args(gen), "--policy", "prefecture-employee", "--out", night1, "-q").exit_code == 0
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--previous", night1, "--policy", "city-employee", "-q"]
    assert invoke("readjudicate", *inputs_args(gen), *args, "--out", a).exit_code == 0
    r = invoke("readjudicate", "--dataset", dataset, *args, "--out", b)
    assert r.exit_code == 0, r.output
    same_folder(a, b, ["adjustments.parquet", "line_adjustments.parquet", "summary.json"])
    same_folder(a / "current", b / "current", ["settlements.parquet", "lines.parquet", "rejected.parquet"])
    claim = pq.read_table(night1 / "settlements.parquet")["claim_id"][3].as_py()
    e1 = invoke("explain", claim, *inputs_args(gen), "--policy", "prefecture-employee", "--json")
    e2 = invoke("explain", claim, "--dataset", dataset, "--policy", "prefecture-employee", "--json")
    assert e1.exit_code == e2.exit_code == 0, e2.output
    assert json.loads(e1.output) == json.loads(e2.output)


def test_dataset_or_inputs_not_both_nor_neither(gen, dataset, tmp_path):
    for command in (
        ["run", "--policy", "prefecture-employee"],
        ["compare", "--policy", "a", "--policy", "b"],
        ["readjudicate", "--previous", tmp_path, "--policy", "prefecture-employee"],
        ["sweep", "--policy", "prefecture-employee", "--vary", "limits.fund_pool_annual.amount=1,2"],
    ):
        both = invoke(*command, "--dataset", dataset, "--claims", gen["claims"], "--out", tmp_path / "o")
        assert both.exit_code == 2 and "--dataset" in both.output and "Traceback" not in both.output, both.output
        neither = invoke(*command, "--out", tmp_path / "o")
        assert neither.exit_code == 2 and "--claims" in neither.output, neither.output
    r = invoke("explain", "C1", "--dataset", dataset, "--members", gen["members"], "--policy", "city-employee")
    assert r.exit_code == 2
    r = invoke("prepare", "--claims", gen["claims"], "--out", tmp_path / "p")
    assert r.exit_code == 2 and "--members" in r.output


def copy_inputs(gen, folder):
    folder.mkdir()
    out = {}
    for t, p in gen.items():
        out[t] = folder / p.name
        shutil.copy2(p, out[t])
    return out


def test_a_changed_source_makes_the_dataset_stale(gen, tmp_path):
    paths = copy_inputs(gen, tmp_path / "in")
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q").exit_code == 0
    run = ["run", "--dataset", ds, "--policy", "prefecture-employee", "--out", tmp_path / "o", "-q"]
    # touched, same contents: still good (the digest decides)
    os.utime(paths["members"], ns=(1, 1))
    assert invoke(*run).exit_code == 0
    # a provider row corrected
    t = pq.read_table(paths["providers"])
    level = t.column_names.index("level")
    t = t.set_column(level, "level", pa.array([3] * t.num_rows, t.schema.field("level").type))
    pq.write_table(t, paths["providers"])
    r = invoke(*run)
    assert r.exit_code == 2 and "stale" in r.output and "providers" in r.output and "Traceback" not in r.output


def test_a_missing_or_added_source_file_makes_it_stale(gen, tmp_path):
    folder = tmp_path / "claims"
    folder.mkdir()
    shutil.copy2(gen["claims"], folder / "part-0.parquet")
    paths = {**gen, "claims": folder}
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q").exit_code == 0
    run = ["run", "--dataset", ds, "--policy", "prefecture-employee", "--out", tmp_path / "o", "-q"]
    assert invoke(*run).exit_code == 0
    shutil.copy2(gen["claims"], folder / "part-1.parquet")
    r = invoke(*run)
    assert r.exit_code == 2 and "stale" in r.output and "folder" in r.output, r.output
    (folder / "part-1.parquet").unlink()
    (folder / "part-0.parquet").unlink()
    r = invoke(*run)
    assert r.exit_code == 2 and "no longer exists" in r.output, r.output


def test_a_foreign_dataset_is_refused(dataset, tmp_path):
    run = ["--policy", "prefecture-employee", "--out", tmp_path / "o", "-q"]
    r = invoke("run", "--dataset", tmp_path / "nothing", *run)
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "empty").mkdir()
    r = invoke("run", "--dataset", tmp_path / "empty", *run)
    assert r.exit_code == 2 and "not a prepared dataset" in r.output
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    m = json.loads((other / "manifest.json").read_text())
    m["engine_version"] = "0.0.1"
    (other / "manifest.json").write_text(json.dumps(m))
    r = invoke("run", "--dataset", other, *run)
    assert r.exit_code == 2 and "another version" in r.output and "Traceback" not in r.output
    m["engine_version"] = json.loads((dataset / "manifest.json").read_text())["engine_version"]
    m["encoded"].pop("amount")  # what a changed encoder would have written
    (other / "manifest.json").write_text(json.dumps(m))
    r = invoke("run", "--dataset", other, *run)
    assert r.exit_code == 2 and "another build" in r.output


def corrected(gen, folder):
    """Corrections of the three small tables: catalogue classes and ratios, member rows, provider levels."""
    folder.mkdir()
    cat = pq.read_table(gen["catalogue"])
    cls = cat["class"].to_pylist()
    cls = [{"A": "B", "B": "A"}.get(c, c) if i % 3 == 0 else c for i, c in enumerate(cls)]
    cat = cat.set_column(cat.column_names.index("class"), "class", pa.array(cls, cat.schema.field("class").type))
    pq.write_table(cat, folder / "catalogue.parquet")
    mem = pq.read_table(gen["members"])
    cat_col = mem["category"].to_pylist()
    cat_col = [("retired" if c == "in_service" else "in_service") if i % 4 == 0 else c for i, c in enumerate(cat_col)]
    mem = mem.set_column(
        mem.column_names.index("category"), "category", pa.array(cat_col, mem.schema.field("category").type)
    )
    mem = mem.take(pa.array(np.r_[np.arange(1, mem.num_rows)[::-1]]))  # a member gone, rows reordered
    pq.write_table(mem, folder / "members.parquet")
    prov = pq.read_table(gen["providers"])
    lv = prov["level"].to_pylist()
    lv = [(3 if v == 1 else 1) if v is not None and i % 2 == 0 else v for i, v in enumerate(lv)]
    prov = prov.set_column(prov.column_names.index("level"), "level", pa.array(lv, prov.schema.field("level").type))
    pq.write_table(prov, folder / "providers.parquet")
    return {t: folder / f"{t}.parquet" for t in ("catalogue", "members", "providers")}


@pytest.mark.parametrize(
    "tables", [("catalogue",), ("members",), ("providers",), ("members", "providers", "catalogue")]
)
def test_corrections_rejoin_without_the_claims_identically(gen, dataset, tmp_path, tables):
    fixed = corrected(gen, tmp_path / "fixed")
    new = {**gen, **{t: fixed[t] for t in tables}}
    ds2 = tmp_path / "ds2"
    r = invoke("prepare", "--dataset", dataset, *[x for t in tables for x in (f"--{t}", fixed[t])], "--out", ds2, "-q")
    assert r.exit_code == 0, r.output
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke("run", *inputs_args(new), "--policy", "prefecture-employee", "--out", a, "-q").exit_code == 0
    assert invoke("run", "--dataset", ds2, "--policy", "prefecture-employee", "--out", b, "-q").exit_code == 0
    same_folder(a, b, ["settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json"])
    if "members" in tables:  # the correction did change something
        assert json.loads((b / "summary.json").read_text())["counts"]["rejected_by_reason"]["unknown_member"] > 0
    # the new dataset is stale when the corrected file changes, not when the old one would have
    manifest = json.loads((ds2 / "manifest.json").read_text())
    assert {f["path"] for f in manifest["sources"][tables[0]]["files"]} == {str(fixed[tables[0]].resolve())}


def test_rejoin_usage(dataset, gen, tmp_path):
    r = invoke("prepare", "--dataset", dataset, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "corrected" in r.output
    r = invoke("prepare", "--dataset", dataset, "--claims", gen["claims"], "--out", tmp_path / "x")
    assert r.exit_code == 2


def test_the_dataset_holds_nothing_policy_dependent(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    assert not any("benefit" in k or "factor" in k or "ratio_of_class" in k for k in m["encoded"])
    assert m["format"] == "adjudicate-dataset" and set(m["sources"]) == set(TABLES)
    for t in TABLES:  # the digests are summary.json's
        for f in m["sources"][t]["files"]:
            assert m["digests"][f["name"]] == f["sha256"]


def test_a_bad_input_is_reported_by_prepare(gen, tmp_path):
    t = pq.read_table(gen["members"])
    t = t.set_column(
        t.column_names.index("member_id"),
        "member_id",
        pc.if_else(pc.equal(pa.array(np.arange(t.num_rows)), 3), t["member_id"][0], t["member_id"]),
    )
    pq.write_table(t, tmp_path / "members.parquet")
    r = invoke("prepare", *inputs_args({**gen, "members": tmp_path / "members.parquet"}), "--out", tmp_path / "ds")
    assert r.exit_code == 2 and "duplicate member_id" in r.output and not (tmp_path / "ds").exists()


def test_rejoin_refuses_a_dataset_whose_claims_changed(gen, tmp_path):
    paths = copy_inputs(gen, tmp_path / "in")
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q").exit_code == 0
    t = pq.read_table(paths["claims"])
    pq.write_table(t.slice(1), paths["claims"])  # a line gone
    r = invoke("prepare", "--dataset", ds, "--catalogue", paths["catalogue"], "--out", tmp_path / "ds2")
    assert r.exit_code == 2 and "stale" in r.output and "claims" in r.output
    assert not (tmp_path / "ds2").exists()


def test_the_lines_item_codes_are_stored_and_used_while_the_lines_are_those(dataset):
    """A dataset stores the lines' item codes in line order, so writing lines.parquet from it gathers
    nothing; once lines are cut out (a policy's rejections, readjudicate's members) they are gathered
    again, the same codes."""
    from adjudicate.dataset import open_dataset
    from adjudicate.outputs import ITEM_CODES, LINE_ITEM_CODES, line_item_codes

    enc = open_dataset(dataset).enc
    stored = enc.source[LINE_ITEM_CODES]
    assert stored.type == ITEM_CODES and len(stored) == len(enc.line_row)
    assert line_item_codes(enc) is stored
    gathered = enc.source["item_code"].take(pa.array(enc.line_row))
    assert text(stored).equals(text(gathered))
    cut = enc.without(np.arange(0, len(enc.member), 3))
    codes = line_item_codes(cut)
    assert codes is not stored and len(codes) == len(cut.line_row)
    want = enc.source["item_code"].take(pa.array(cut.line_row))
    assert text(codes).equals(text(want))


def text(a) -> pa.Array:
    a = pc.cast(a, pa.string())
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def test_stored_tables_are_the_tables_as_read(tmp_path):
    """Each table comes back from a dataset column for column as read (text, numbers, nulls); text read as
    a dictionary stays one on disk (its strings once per distinct value); a column without a null stores
    no null mask."""
    from adjudicate import dataset as D
    from adjudicate.engine import read_inputs

    gen = tmp_path / "gen"
    r = invoke("generate", "--members", 200, "--year", 2024, "--seed", 9, "--bad-rows", 0.05, "--out", gen, "-q")
    assert r.exit_code == 0, r.output
    paths = {t: gen / f"{t}.parquet" for t in TABLES}
    assert invoke("prepare", *inputs_args(paths), "--out", tmp_path / "ds", "-q").exit_code == 0
    read = read_inputs(*[[paths[t]] for t in TABLES])
    stored = D.open_dataset(tmp_path / "ds")
    manifest = D.read_manifest(tmp_path / "ds")
    for name in TABLES:
        a, b = getattr(read, name), getattr(stored.inputs, name)
        assert a.rows == b.rows and list(a.values) == list(b.values)
        for col in a.values:
            va, vb = a.values[col], b.values[col]
            if isinstance(va, np.ndarray):
                assert np.array_equal(va, vb), (name, col)
            else:
                assert pa.chunked_array([va]).to_pylist() == pa.chunked_array([vb]).to_pylist(), (name, col)
            assert np.array_equal(a.nulls[col], b.nulls[col]), (name, col)
            assert (col + ".null" in manifest["tables"][name]["columns"]) == bool(a.nulls[col].any()), (name, col)
    on_disk = pa.ipc.open_file(pa.memory_map(str(tmp_path / "ds" / "tables" / "claims.arrow"))).schema
    assert pa.types.is_dictionary(on_disk.field("claim_id").type)
    assert pa.types.is_dictionary(on_disk.field("item_code").type)
    assert any(read.claims.nulls[c].any() for c in read.claims.values)  # the defective rows have nulls


def test_the_lines_own_strings_are_not_stored_and_gathered_again_when_read(dataset):
    """Each line's claim_id and item code are not stored as strings (the two largest files, read by
    nothing a dataset serves): opened, the dataset gathers them again, the same strings."""
    from adjudicate.dataset import open_dataset

    stored = {p.name for p in (dataset / "encoded").iterdir()}
    assert "gathered.claim_id.arrow" in stored
    assert "gathered.line_claim_id.arrow" not in stored and "gathered.item_code.arrow" not in stored
    enc = open_dataset(dataset).enc
    assert enc.line_claim_id.equals(enc.claim_dict.take(pa.array(enc.claim_code[enc.line_claim])))
    assert text(enc.item_code).equals(text(enc.source["item_code"].take(pa.array(enc.line_row))))
