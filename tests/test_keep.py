"""``--keep COLUMN`` (issue 12): an agency's own claims columns passed through to the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.schema import AMOUNTS

SERIAL, DEPT = "结算流水号", "dept"
SETTLEMENT_COLUMNS = [
    "claim_id",
    "member_id",
    "provider_id",
    "setting",
    "settle_date",
    "benefit_year",
    "admission_ordinal",
    *AMOUNTS,
]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(paths):
    return [x for t in ("claims", "members", "providers", "catalogue") for x in (f"--{t}", paths[t])]


def keep_args():
    return ["--keep", SERIAL, "--keep", DEPT]


def case_with_keys(tmp_path: Path, csv: bool = False, drop: str | None = None) -> dict[str, Path]:
    """Three claims of two members and one rejected claim; the serial number is constant within a claim
    (with leading zeros), the department varies within C2."""
    case = Case().member("M1").member("M2").provider("H3")
    case.claim("C1", [("A1", "1000.00"), ("B1", "500.00")], admit="2024-01-02", discharge="2024-01-04")
    case.claim("C2", [("A1", "300.00"), ("A1", "200.00")], member_id="M2", admit="2024-02-02", discharge="2024-02-04")
    case.claim("C3", [("A1", "80.00")], setting="outpatient", admit="2024-03-02")
    case.claim("BAD", [("A1", "90.00")], provider_id="H404", admit="2024-04-02", discharge="2024-04-04")
    paths = case.write(tmp_path / "in")
    t = pq.read_table(paths["claims"])
    ids, nos = t["claim_id"].to_pylist(), t["line_no"].to_pylist()
    serial = [f"000{c}" for c in ids]
    dept = ["D9" if (c, n) == ("C2", 2) else f"D-{c}" for c, n in zip(ids, nos)]
    t = t.append_column(SERIAL, pa.array(serial)).append_column(DEPT, pa.array(dept))
    if drop:
        t = t.drop_columns([drop])
    if csv:
        paths["claims"] = paths["claims"].with_suffix(".csv")
        pacsv.write_csv(t, paths["claims"])
    else:
        pq.write_table(t, paths["claims"])
    return paths


def rows(folder: Path, name: str, key: str = "claim_id") -> dict:
    return {r[key]: r for r in pq.read_table(folder / f"{name}.parquet").to_pylist()}


@pytest.mark.parametrize("csv", [False, True], ids=["parquet", "csv"])
def test_run_passes_kept_columns_through(tmp_path, csv):
    paths = case_with_keys(tmp_path, csv=csv)
    out = tmp_path / "out"
    r = invoke("run", *inputs_args(paths), "--policy", "prefecture-employee", "--out", out, "-q", *keep_args())
    assert r.exit_code == 0, r.output
    st = pq.read_table(out / "settlements.parquet")
    # contract columns keep their names and places; the kept ones follow them
    assert st.column_names == [*SETTLEMENT_COLUMNS, SERIAL, DEPT]
    s = rows(out, "settlements")
    assert s["C1"][SERIAL] == "000C1" and s["C1"][DEPT] == "D-C1"  # text as billed: leading zeros kept (CSV too)
    assert s["C2"][SERIAL] == "000C2" and s["C2"][DEPT] is None  # C2's lines disagree: null here, per line below
    lines = pq.read_table(out / "lines.parquet")
    assert lines.column_names[-2:] == [SERIAL, DEPT]
    per_line = {(x["claim_id"], x["line_no"]): x[DEPT] for x in lines.to_pylist()}
    assert per_line[("C2", 1)] == "D-C2" and per_line[("C2", 2)] == "D9"
    rej = pq.read_table(out / "rejected.parquet")
    assert rej.column_names[:8] == [
        "claim_id",
        "line_no",
        "reason",
        "detail",
        "member_id",
        "provider_id",
        "column",
        "value",
    ]
    [bad] = rej.to_pylist()
    assert bad["claim_id"] == "BAD" and bad[SERIAL] == "000BAD" and bad[DEPT] == "D-BAD"


def test_streamed_run_keeps_the_same_columns(tmp_path):
    paths = case_with_keys(tmp_path, csv=True)
    one, many = tmp_path / "one", tmp_path / "many"
    for out, parts in ((one, "1"), (many, "3")):
        r = invoke(
            "run",
            *inputs_args(paths),
            "--policy",
            "prefecture-employee",
            "--out",
            out,
            "-q",
            "--partitions",
            parts,
            *keep_args(),
        )
        assert r.exit_code == 0, r.output
    for name in ("settlements", "lines", "rejected"):
        a, b = pq.read_table(one / f"{name}.parquet"), pq.read_table(many / f"{name}.parquet")
        assert a.equals(b), name
        assert a.column_names[-2:] == [SERIAL, DEPT]


def test_compare_keeps_columns(tmp_path):
    paths = case_with_keys(tmp_path)
    out = tmp_path / "cmp"
    r = invoke(
        "compare",
        "--policy",
        "prefecture-employee",
        "--policy",
        "city-employee",
        *inputs_args(paths),
        "--out",
        out,
        "-q",
        *keep_args(),
    )
    assert r.exit_code == 0, r.output
    t = pq.read_table(out / "compare.parquet")
    assert t.column_names[-2:] == [SERIAL, DEPT]
    c = rows(out, "compare")
    assert c["C1"][SERIAL] == "000C1" and c["C2"][DEPT] is None


@pytest.mark.parametrize("partitions", ["1", "3"])
def test_readjudicate_adjustments_keep_columns_and_provider_id(tmp_path, partitions):
    paths = case_with_keys(tmp_path)
    night1 = tmp_path / "night1"
    r = invoke("run", *inputs_args(paths), "--policy", "prefecture-employee", "--out", night1, "-q", *keep_args())
    assert r.exit_code == 0, r.output
    # the next night: C3 is withdrawn, C1's second line moved to department D7; every other claim is
    # settled under another policy
    t = pq.read_table(paths["claims"])
    t = t.filter(pc.not_equal(t["claim_id"], "C3"))
    moved = pc.and_(pc.equal(t["claim_id"], "C1"), pc.equal(t["line_no"], 2))
    t = t.set_column(t.column_names.index(DEPT), DEPT, pc.if_else(moved, "D7", t[DEPT]))
    pq.write_table(t, paths["claims"])
    night2 = tmp_path / "night2"
    r = invoke(
        "readjudicate",
        "--previous",
        night1,
        *inputs_args(paths),
        "--policy",
        "city-employee",
        "--out",
        night2,
        "-q",
        "--partitions",
        partitions,
        *keep_args(),
    )
    assert r.exit_code == 0, r.output
    adj = pq.read_table(night2 / "adjustments.parquet")
    assert adj.column_names[:6] == [
        "claim_id",
        "member_id",
        "previous_member_id",
        "provider_id",
        "settle_date",
        "change",
    ]
    assert adj.column_names[-2:] == [SERIAL, DEPT]
    a = {x["claim_id"]: x for x in adj.to_pylist()}
    assert a["C3"]["change"] == "removed" and a["C3"]["provider_id"] == "H3"
    assert a["C3"][SERIAL] == "000C3"  # no longer settled: as the earlier run kept it
    assert all(x["provider_id"] == "H3" for x in a.values())
    assert pq.read_table(night2 / "current" / "settlements.parquet").column_names[-2:] == [SERIAL, DEPT]
    assert a["C1"][DEPT] is None  # C1's lines now differ in DEPT
    # line adjustments: each line's own value as it is now, a removed line's as it was
    la = pq.read_table(night2 / "line_adjustments.parquet")
    assert la.column_names[-2:] == [SERIAL, DEPT]
    lines = {(x["claim_id"], x["line_no"]): x for x in la.to_pylist()}
    assert lines[("C3", 1)]["change"] == "removed" and lines[("C3", 1)][DEPT] == "D-C3"
    assert {n: x[DEPT] for (c, n), x in lines.items() if c == "C1"} == {1: "D-C1", 2: "D7"}
    assert all(x[SERIAL] == "000" + c for (c, _), x in lines.items())


def test_adjustments_carry_provider_id_without_keep(tmp_path):
    paths = case_with_keys(tmp_path)
    night1, night2 = tmp_path / "n1", tmp_path / "n2"
    assert invoke("run", *inputs_args(paths), "--policy", "prefecture-employee", "--out", night1, "-q").exit_code == 0
    r = invoke(
        "readjudicate", "--previous", night1, *inputs_args(paths), "--policy", "city-employee", "--out", night2, "-q"
    )
    assert r.exit_code == 0, r.output
    adj = pq.read_table(night2 / "adjustments.parquet")
    assert "provider_id" in adj.column_names and adj.num_rows > 0
    assert set(adj["provider_id"].to_pylist()) == {"H3"}
    assert SERIAL not in adj.column_names  # nothing kept unless asked


@pytest.mark.parametrize("csv", [False, True], ids=["parquet", "csv"])
def test_a_missing_kept_column_is_an_input_error_naming_file_and_column(tmp_path, csv):
    paths = case_with_keys(tmp_path, csv=csv, drop=DEPT)
    out = tmp_path / "out"
    r = invoke("run", *inputs_args(paths), "--policy", "prefecture-employee", "--out", out, "-q", *keep_args())
    assert r.exit_code == 2, r.output
    assert paths["claims"].name in r.output and f"'{DEPT}'" in r.output and "--keep" in r.output
    assert "Traceback" not in r.output and not out.exists()


@pytest.mark.parametrize(
    "name, says",
    [
        ("cash_paid", "already a column of the outputs"),  # settlements
        ("change", "already a column of the outputs"),  # compare, adjustments
        ("fund_pool_delta", "already a column of the outputs"),
        ("reason", "already a column of the outputs"),  # rejected
        ("diagnosis", "contract column of the claims table"),
    ],
)
@pytest.mark.parametrize("command", ["run", "compare", "readjudicate"])
def test_a_kept_name_that_collides_exits_2_naming_it(tmp_path, name, says, command):
    paths = case_with_keys(tmp_path)
    extra = {"run": [], "compare": ["--policy", "city-employee"], "readjudicate": ["--previous", tmp_path]}[command]
    r = invoke(
        command,
        *inputs_args(paths),
        "--policy",
        "prefecture-employee",
        *extra,
        "--out",
        tmp_path / "out",
        "-q",
        "--keep",
        name,
    )
    assert r.exit_code == 2, r.output
    assert f"--keep {name}" in r.output and says in r.output


def test_keep_on_spark_is_refused_saying_how(tmp_path):
    paths = case_with_keys(tmp_path)
    r = invoke(
        "run",
        *inputs_args(paths),
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "o",
        "--engine",
        "spark",
        "--keep",
        DEPT,
    )
    assert r.exit_code == 2 and "--engine spark" in r.output and "--engine local" in r.output


def same_folder_tables(a: Path, b: Path, names) -> None:
    for name in names:
        ta, tb = pq.read_table(a / name), pq.read_table(b / name)
        assert ta.equals(tb), (name, ta.to_pylist(), tb.to_pylist())


@pytest.mark.parametrize("csv", [False, True], ids=["parquet", "csv"])
def test_a_dataset_prepared_with_keep_gives_what_the_files_give(tmp_path, csv):
    # prepare --keep stores the kept columns; run --dataset --keep writes the same outputs as a run on the files
    paths = case_with_keys(tmp_path, csv=csv)
    ds = tmp_path / "ds"
    r = invoke("prepare", *inputs_args(paths), "--out", ds, "-q", *keep_args())
    assert r.exit_code == 0, r.output
    files, from_ds = tmp_path / "files", tmp_path / "from-ds"
    r = invoke("run", *inputs_args(paths), "--policy", "prefecture-employee", "--out", files, "-q", *keep_args())
    assert r.exit_code == 0, r.output
    r = invoke("run", "--dataset", ds, "--policy", "prefecture-employee", "--out", from_ds, "-q", *keep_args())
    assert r.exit_code == 0, r.output
    same_folder_tables(files, from_ds, ("settlements.parquet", "lines.parquet", "rejected.parquet"))
    # the kept columns the command asks for, in its order; none when it asks for none
    one, none = tmp_path / "one", tmp_path / "none"
    r = invoke("run", "--dataset", ds, "--policy", "prefecture-employee", "--out", one, "-q", "--keep", DEPT)
    assert r.exit_code == 0, r.output
    assert pq.read_table(one / "lines.parquet").column_names[-1] == DEPT
    assert SERIAL not in pq.read_table(one / "settlements.parquet").column_names
    [bad] = pq.read_table(one / "rejected.parquet").to_pylist()
    assert bad[DEPT] == "D-BAD" and SERIAL not in bad
    r = invoke("run", "--dataset", ds, "--policy", "prefecture-employee", "--out", none, "-q")
    assert r.exit_code == 0, r.output
    for name in ("settlements.parquet", "lines.parquet", "rejected.parquet"):
        assert not {SERIAL, DEPT} & set(pq.read_table(none / name).column_names), name


def test_a_corrected_dataset_keeps_what_the_earlier_one_kept(tmp_path):
    paths = case_with_keys(tmp_path)
    ds, ds2 = tmp_path / "ds", tmp_path / "ds2"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q", *keep_args()).exit_code == 0
    r = invoke("prepare", "--dataset", ds, "--members", paths["members"], "--out", ds2, "-q")
    assert r.exit_code == 0, r.output
    a, b = tmp_path / "a", tmp_path / "b"
    for d, out in ((ds, a), (ds2, b)):
        r = invoke("run", "--dataset", d, "--policy", "prefecture-employee", "--out", out, "-q", *keep_args())
        assert r.exit_code == 0, r.output
    same_folder_tables(a, b, ("settlements.parquet", "lines.parquet", "rejected.parquet"))
    r = invoke("prepare", "--dataset", ds, "--members", paths["members"], "--out", tmp_path / "x", "--keep", DEPT)
    assert r.exit_code == 2 and "--keep applies when preparing from the claim files" in r.output


def test_keep_of_a_column_the_dataset_was_prepared_without_exits_2_saying_how(tmp_path):
    paths = case_with_keys(tmp_path)
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q", "--keep", SERIAL).exit_code == 0
    out = tmp_path / "o"
    r = invoke("run", "--dataset", ds, "--policy", "prefecture-employee", "--out", out, "-q", *keep_args())
    assert r.exit_code == 2 and "Traceback" not in r.output and not out.exists()
    assert f"--keep {DEPT}" in r.output and f"prepared with --keep {SERIAL}" in r.output and "again" in r.output


def test_readjudicate_from_a_dataset_with_keep_compares_every_claim(tmp_path):
    # the kept columns of the adjustments come from the earlier run's files: the incremental comparison
    # (which reads the earlier dataset) is not used, and the outputs are those of the files
    paths = case_with_keys(tmp_path)
    ds = tmp_path / "ds"
    assert invoke("prepare", *inputs_args(paths), "--out", ds, "-q", *keep_args()).exit_code == 0
    night1 = tmp_path / "night1"
    r = invoke("run", "--dataset", ds, "--policy", "prefecture-employee", "--out", night1, "-q", *keep_args())
    assert r.exit_code == 0, r.output
    a, b = tmp_path / "a", tmp_path / "b"
    for src, out in ((["--dataset", ds], a), (inputs_args(paths), b)):
        r = invoke(
            "readjudicate", "--previous", night1, *src, "--policy", "city-employee", "--out", out, "-q", *keep_args()
        )
        assert r.exit_code == 0, r.output
    same_folder_tables(a, b, ("adjustments.parquet", "line_adjustments.parquet"))
    assert pq.read_table(a / "adjustments.parquet").column_names[-2:] == [SERIAL, DEPT]
    s = json.loads((a / "summary.json").read_text())
    assert s["incremental"]["used"] is False and "--keep" in s["incremental"]["why_not"]


def test_help_of_each_command_shows_keep():
    for command in ("run", "compare", "readjudicate", "prepare"):
        r = invoke(command, "--help")
        assert r.exit_code == 0 and "--keep COLUMN" in r.output, command


def test_audit_flags_keep_the_flagged_claims_columns(tmp_path):
    # C1 and C4: a readmission at the same provider 3 days after discharge (flags.parquet, one row per flag)
    case = Case().member("M1").provider("H3")
    case.claim("C1", [("A1", "1000.00")], admit="2024-01-02", discharge="2024-01-04")
    case.claim("C4", [("A1", "1000.00")], admit="2024-01-07", discharge="2024-01-09")
    paths = case.write(tmp_path / "in")
    t = pq.read_table(paths["claims"])
    pq.write_table(t.append_column(SERIAL, pa.array([f"000{c}" for c in t["claim_id"].to_pylist()])), paths["claims"])
    outs = {}
    for name, args in {
        "audit": ["audit", *inputs_args(paths), "--policy", "prefecture-employee"],
        "run": ["run", *inputs_args(paths), "--policy", "prefecture-employee", "--audit"],
        "streamed": ["run", *inputs_args(paths), "--policy", "prefecture-employee", "--audit", "--partitions", "2"],
    }.items():
        outs[name] = tmp_path / name
        r = invoke(*args, "--out", outs[name], "-q", "--keep", SERIAL)
        assert r.exit_code == 0, r.output
    flags = pq.read_table(outs["audit"] / "flags.parquet")
    assert flags.num_rows > 0 and flags.column_names[-1] == SERIAL
    assert all(f[SERIAL] == "000" + f["claim_id"] for f in flags.to_pylist())
    for name in ("run", "streamed"):
        assert pq.read_table(outs[name] / "flags.parquet").equals(flags), name
