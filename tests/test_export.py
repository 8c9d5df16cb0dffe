"""adjudicate export DIR --xlsx FILE: read back with openpyxl, exact to the fen (issue 12)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import openpyxl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate import export as X
from adjudicate.errors import InputError
from adjudicate.sample import sample_dir


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("x") / "run"
    r = invoke("run", "--inputs", sample_dir(), "--policy", "prefecture-employee", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    return out


def _fen(v) -> Decimal:
    return Decimal(repr(v)).quantize(Decimal("0.01"))


def test_workbook_holds_every_table_exact_to_the_fen(run_dir, tmp_path):
    target = tmp_path / "run.xlsx"
    r = invoke("export", run_dir, "--xlsx", target)
    assert r.exit_code == 0, r.output
    wb = openpyxl.load_workbook(target, read_only=True)
    assert wb.sheetnames == ["summary", "settlements", "lines", "rejected"]
    expected = pq.read_table(run_dir / "settlements.parquet")
    rows = list(wb["settlements"].iter_rows(values_only=True))
    assert list(rows[0]) == expected.column_names
    assert len(rows) - 1 == expected.num_rows
    for name in ("total", "fund_pool", "cash_paid", "account_paid"):
        col = rows[0].index(name)
        got = [_fen(r[col]) for r in rows[1:]]
        assert got == expected.column(name).to_pylist()
        assert sum(got) == sum(expected.column(name).to_pylist())
    day = rows[0].index("settle_date")
    assert [r[day].date() for r in rows[1:]] == expected.column("settle_date").to_pylist()


def test_amounts_are_numbers_with_two_decimals_and_dates_are_dates(run_dir, tmp_path):
    target = tmp_path / "f.xlsx"
    X.export_xlsx(run_dir, target, tables=["settlements"])
    ws = openpyxl.load_workbook(target)["settlements"]
    header = [c.value for c in ws[1]]
    cell = ws.cell(row=2, column=header.index("total") + 1)
    assert isinstance(cell.value, (int, float)) and cell.number_format == "#,##0.00"
    d = ws.cell(row=2, column=header.index("settle_date") + 1)
    assert isinstance(d.value, dt.datetime) and d.number_format == "yyyy-mm-dd"
    summary = {r[0]: r[1] for r in openpyxl.load_workbook(target)["summary"].iter_rows(min_row=2, values_only=True)}
    import json

    s = json.loads((run_dir / "summary.json").read_text())
    assert _fen(summary["totals.total"]) == Decimal(s["totals"]["total"])
    assert summary["counts.settled_claims"] == s["counts"]["settled_claims"]


def test_a_long_table_continues_on_more_sheets(run_dir, tmp_path):
    target = tmp_path / "split.xlsx"
    written = X.export_xlsx(run_dir, target, tables=["settlements"], rows_per_sheet=1000)
    n = pq.read_metadata(run_dir / "settlements.parquet").num_rows
    wb = openpyxl.load_workbook(target, read_only=True)
    parts = [s for s in wb.sheetnames if s.startswith("settlements")]
    assert parts == ["settlements", "settlements (2)", "settlements (3)", "settlements (4)"]
    assert sum(written[p] for p in parts) == n
    ids = [r[0] for p in parts for r in list(wb[p].iter_rows(values_only=True))[1:]]
    assert ids == pq.read_table(run_dir / "settlements.parquet").column("claim_id").to_pylist()


def test_no_split_refuses_at_the_row_limit_with_a_clear_message(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(X, "EXCEL_ROWS", 1001)
    r = invoke("export", run_dir, "--xlsx", tmp_path / "n.xlsx", "--no-split")
    assert r.exit_code == 2
    assert "holds at most 1,000 below its header" in r.output and "table settlements has 3,332 rows" in r.output
    assert not (tmp_path / "n.xlsx").exists() and not list(tmp_path.glob(".*"))


def test_export_refuses_what_is_not_an_output_folder_and_keeps_existing_files(run_dir, tmp_path):
    r = invoke("export", tmp_path, "--xlsx", tmp_path / "a.xlsx")
    assert r.exit_code == 2 and "not an output folder" in r.output
    (tmp_path / "mine.xlsx").write_bytes(b"a user's file")
    r = invoke("export", run_dir, "--xlsx", tmp_path / "mine.xlsx")
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert (tmp_path / "mine.xlsx").read_bytes() == b"a user's file"
    with pytest.raises(InputError, match="no table 'nope'"):
        X.export_xlsx(run_dir, tmp_path / "b.xlsx", tables=["nope"])


def test_every_output_folder_exports(tmp_path, run_dir):
    """compare, readjudicate (with current/) and reconcile folders export too."""
    data = sample_dir()
    assert (
        invoke(
            "readjudicate",
            "--inputs",
            data,
            "--previous",
            run_dir,
            "--policy",
            "city-employee",
            "--out",
            tmp_path / "re",
            "-q",
        ).exit_code
        == 0
    )
    assert invoke("export", tmp_path / "re", "--xlsx", tmp_path / "re.xlsx", "-q").exit_code == 0
    names = openpyxl.load_workbook(tmp_path / "re.xlsx", read_only=True).sheetnames
    assert names[:2] == ["summary", "adjustments"] and "current.settlements" in names
