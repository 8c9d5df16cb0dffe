"""Output names across commands (issue 12): one year column name, one word for what happened to a
claim, and no output file named after an input table."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.compare import CHANGES

DATA = Path(__file__).resolve().parents[1] / "data"
INPUT_TABLES = ("claims", "members", "providers", "catalogue", "income", "opening", "advances")
#: What happened to a claim, in compare (A → B) and readjudicate (before → now).
ADJUSTMENT_CHANGES = {"changed", "new", "removed", "now_rejected"}


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args():
    return [x for t in ("claims", "members", "providers", "catalogue") for x in (f"--{t}", DATA / f"{t}.parquet")]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """The output folder of every command that writes one, on the sample data."""
    tmp = tmp_path_factory.mktemp("outputs")
    o = {k: tmp / k for k in ("run", "compare", "readjudicate", "reconcile", "sweep", "audit")}
    commands = {
        "run": ["run", *inputs_args(), "--policy", "prefecture-employee"],
        "compare": ["compare", "--policy", "prefecture-employee", "--policy", "city-employee", *inputs_args()],
        "readjudicate": ["readjudicate", "--previous", o["run"], *inputs_args(), "--policy", "city-employee"],
        "reconcile": [
            "reconcile",
            "--settlements",
            o["run"],
            "--providers",
            DATA / "providers.parquet",
            "--members",
            DATA / "members.parquet",
            "--income",
            DATA / "reconcile" / "income.csv",
            "--opening",
            DATA / "reconcile" / "opening.csv",
        ],
        "sweep": [
            "sweep",
            "--policy",
            "city-employee",
            "--vary",
            "limits.fund_pool_annual.amount=30000,60000",
            "--deltas",
            "1",
            *inputs_args(),
        ],
        "audit": ["audit", *inputs_args(), "--policy", "prefecture-employee"],
    }
    for name, args in commands.items():
        r = invoke(*args, "--out", o[name], "-q")
        assert r.exit_code == 0, (name, r.output)
    return o


def _tables(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))


def test_no_output_file_is_named_after_an_input_table(outputs):
    for name, folder in outputs.items():
        for p in _tables(folder):
            assert p.stem not in INPUT_TABLES, (name, p)
    assert (outputs["compare"] / "member_changes.parquet").is_file()
    assert (outputs["sweep"] / "member_changes.parquet").is_file()
    assert (outputs["reconcile"] / "provider_settlement.parquet").is_file()


def test_every_year_column_is_benefit_year(outputs):
    seen = 0
    for name, folder in outputs.items():
        for p in _tables(folder):
            names = pq.read_schema(p).names
            assert "year" not in names, (name, p.name)
            seen += "benefit_year" in names
    assert (
        seen >= 8
    )  # settlements ×3 (run, current/, …), compare, member_changes, provider_settlement, funds, ledger, …
    rows = json.loads((outputs["reconcile"] / "summary.json").read_text())["funds"]["rows"]
    assert rows and all("benefit_year" in r and "year" not in r for r in rows)


def test_compare_and_readjudicate_say_what_happened_with_one_column_and_one_vocabulary(outputs):
    cmp = pq.read_table(outputs["compare"] / "compare.parquet")
    adj = pq.read_table(outputs["readjudicate"] / "adjustments.parquet")
    lines = pq.read_table(outputs["readjudicate"] / "line_adjustments.parquet")
    for t in (cmp, adj, lines):
        assert "change" in t.column_names
        assert not {"kind", "settled_under"} & set(t.column_names)
    assert set(cmp["change"].to_pylist()) <= set(CHANGES) and "changed" in cmp["change"].to_pylist()
    assert set(adj["change"].to_pylist()) <= ADJUSTMENT_CHANGES
    # the words they share mean the same: compare's are readjudicate's, plus "unchanged" (compare keeps every claim)
    assert set(CHANGES) - {"unchanged"} <= ADJUSTMENT_CHANGES
    s_cmp = json.loads((outputs["compare"] / "summary.json").read_text())["counts"]
    s_adj = json.loads((outputs["readjudicate"] / "summary.json").read_text())["counts"]
    assert sum(s_cmp["by_change"].values()) == s_cmp["claims"] == cmp.num_rows
    assert set(s_adj["by_change"]) == ADJUSTMENT_CHANGES and sum(s_adj["by_change"].values()) == adj.num_rows


def test_export_names_sheets_after_the_new_files(outputs, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = tmp_path / "rec.xlsx"
    r = invoke("export", outputs["reconcile"], "--xlsx", book)
    assert r.exit_code == 0, r.output
    names = openpyxl.load_workbook(book, read_only=True).sheetnames
    assert "provider_settlement" in names and "providers" not in names


def test_keep_refuses_every_column_name_a_per_claim_or_per_line_output_writes(outputs):
    from adjudicate.keep import _output_columns

    taken = _output_columns()
    files = {
        "run": ["settlements", "lines", "rejected"],
        "compare": ["compare"],
        "readjudicate": ["adjustments", "line_adjustments"],
        "audit": ["flags"],
    }
    for command, names in files.items():
        for name in names:
            columns = set(pq.read_schema(outputs[command] / f"{name}.parquet").names)
            assert columns <= taken, (name, columns - taken)
