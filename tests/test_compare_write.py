"""compare's write path: compare.parquet written row group by row group from the aligned arrays, and
report.html drawn from memory, give exactly the tables and the page of the plain formulation."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import Case
from click.testing import CliRunner

from adjudicate import cli, keep
from adjudicate import compare as C
from adjudicate import policy as P
from adjudicate.dataset import load_prepared
from adjudicate.engine import Timer, settle
from adjudicate.report import report_html

NAMES = ("claims", "members", "providers", "catalogue")
SERIAL = "serial_no"


def stay(month: str) -> dict:
    return {"admit": f"{month}-03", "discharge": f"{month}-08"}


def mixed_case(folder):
    """Claims of four members, two of them settled under one policy only: a class-B refund at a
    non-local designated hospital is rejected with benefit (prefecture-employee) and settled without
    (zhenjiang-resident; see test_compare.test_a_claim_settled_under_one_policy_only). A kept column."""
    case = Case().provider("H3").provider("FAR", designated=True, local=False)
    for m in ("M1", "M2", "M3", "M4"):
        case.member(m, balance="300")
    for i, m in enumerate(("M1", "M1", "M2", "M2", "M2", "M3", "M4", "M4")):
        case.claim(f"C{i}", [("A1", f"{900 + 450 * i}.00"), ("B1", "120.00")], member_id=m, **stay(f"2024-0{i + 1}"))
    case.claim("R1", [("A1", "100.00"), ("B1", "-50.00")], member_id="M2", provider_id="FAR", **stay("2024-05"))
    case.claim("R2", [("A1", "70.00"), ("B1", "-40.00")], member_id="M4", provider_id="FAR", **stay("2024-02"))
    paths = case.write(folder)
    t = pq.read_table(paths["claims"])
    t = t.append_column(SERIAL, pa.array([f"00{c}" for c in t["claim_id"].to_pylist()]))
    pq.write_table(t, paths["claims"])
    return paths


def plain_tables(paths, a: str, b: str) -> dict:
    """The comparison as compare_part builds it in memory, whole (decimal128, string labels)."""
    prep = load_prepared(*([paths[n]] for n in NAMES), None, Timer())
    ra = settle(prep, P.load(a), threads=1, line_funds=False)
    rb = settle(prep, P.load(b), threads=1, line_funds=False)
    return C.compare_part(prep.enc, ra, rb)


@pytest.mark.parametrize(
    "a, b", [("prefecture-employee", "zhenjiang-resident"), ("zhenjiang-resident", "prefecture-employee")]
)
@pytest.mark.parametrize("group_rows", [3, 1 << 17])
def test_row_groups_read_back_as_the_whole_table(tmp_path, monkeypatch, a, b, group_rows):
    paths = mixed_case(tmp_path / "in")
    monkeypatch.setattr(C, "GROUP_ROWS", group_rows)
    out = tmp_path / "out"
    args = [x for n in NAMES for x in (f"--{n}", str(paths[n]))]
    r = CliRunner().invoke(
        cli.main, ["compare", *args, "--policy", a, "--policy", b, "--keep", SERIAL, "--out", str(out), "-q"]
    )
    assert r.exit_code == 0, r.output
    with keep.keeping([SERIAL]):
        p = plain_tables(paths, a, b)
    assert p["counts"]["by_change"]["new" if a == "prefecture-employee" else "now_rejected"] == 2
    claims = pq.read_table(out / "compare.parquet")
    assert claims.num_rows == 10 and claims.column_names[-1] == SERIAL
    assert pq.ParquetFile(out / "compare.parquet").num_row_groups == (4 if group_rows == 3 else 1)
    for name, table in (("claims", claims), ("members", pq.read_table(out / "member_changes.parquet"))):
        assert table.schema.equals(p[name].schema), name
        assert table.equals(p[name]), name


def test_report_from_memory_is_the_report_from_the_files(tmp_path):
    paths = mixed_case(tmp_path / "in")
    out = tmp_path / "out"
    args = [x for n in NAMES for x in (f"--{n}", str(paths[n]))]
    r = CliRunner().invoke(
        cli.main,
        ["compare", *args, "--policy", "prefecture-employee", "--policy", "zhenjiang-resident", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page == report_html(out, "compare")  # member_changes.parquet read back
    assert page.count('<svg class="chart"') == 2  # the funds' change, and the members' change


def test_totals_from_the_column_sums_are_the_amounts_summed(tmp_path):
    from adjudicate.outputs import claim_amounts

    paths = mixed_case(tmp_path / "in")
    prep = load_prepared(*([paths[n]] for n in NAMES), None, Timer())
    for name in ("prefecture-employee", "zhenjiang-resident"):
        r = settle(prep, P.load(name), threads=1, line_funds=False)
        assert C.totals(r) == {k: int(v.sum()) for k, v in claim_amounts(r).items()}
        assert C.totals(r)["total"] > 0


def test_compare_parquet_is_written_on_its_own_thread(tmp_path, monkeypatch):
    """compare.parquet's rows go to a thread of their own while the members table and the summary are
    built; the outputs are those of the plain formulation (above)."""
    paths = mixed_case(tmp_path / "in")
    seen = []
    real = C.ClaimRows.write

    def write(self, writer):
        seen.append(threading.current_thread().name)
        real(self, writer)

    monkeypatch.setattr(C.ClaimRows, "write", write)
    out = tmp_path / "out"
    args = [x for n in NAMES for x in (f"--{n}", str(paths[n]))]
    r = CliRunner().invoke(
        cli.main,
        [
            "compare",
            *args,
            "--policy",
            "prefecture-employee",
            "--policy",
            "zhenjiang-resident",
            "--out",
            str(out),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    assert seen == ["adjudicate-compare"]
    p = plain_tables(paths, "prefecture-employee", "zhenjiang-resident")
    assert pq.read_table(out / "compare.parquet").equals(p["claims"])


def test_an_error_writing_compare_parquet_is_raised_and_leaves_no_output(tmp_path, monkeypatch):
    paths = mixed_case(tmp_path / "in")

    def write(self, writer):
        raise OSError("disk full")

    monkeypatch.setattr(C.ClaimRows, "write", write)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        C.run_compare(
            *([paths[n]] for n in NAMES),
            policies=["prefecture-employee", "zhenjiang-resident"],
            overrides=[],
            out=out,
            threads=1,
        )
    assert not out.exists()
    assert not [t for t in threading.enumerate() if t.name == "adjudicate-compare"]
