"""The command line: exit codes, outputs, help (contract §5)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.outdir import MARKER
from adjudicate.sample import sample_dir


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(folder):
    return [
        "--claims",
        folder / "claims.parquet",
        "--members",
        folder / "members.parquet",
        "--providers",
        folder / "providers.parquet",
        "--catalogue",
        folder / "catalogue.parquet",
    ]


@pytest.mark.parametrize("command", ["run", "demo", "generate", "validate", "policies"])
def test_help_has_an_example(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0 and "Example" in r.output


def test_policies_lists_the_four_schemes():
    r = invoke("policies", "--json")
    assert r.exit_code == 0
    names = {p["name"] for p in json.loads(r.output)}
    assert names == {"prefecture-employee", "shenzhen-comprehensive", "city-employee", "zhenjiang-resident"}


def test_demo_runs_on_the_bundled_sample(tmp_path):
    r = invoke("demo", "--out", tmp_path / "demo")
    assert r.exit_code == 0, r.output
    assert "settled claims" in r.output
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert s["counts"]["reconciles"]


def test_generate_then_run_writes_every_output(tmp_path):
    assert invoke("generate", "--members", 200, "--year", 2024, "--seed", 3, "--out", tmp_path / "g").exit_code == 0
    r = invoke("run", *inputs_args(tmp_path / "g"), "--policy", "city-employee", "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.output
    names = {p.name for p in (tmp_path / "o").iterdir()}
    # contract §5: every command that writes an output folder also writes report.html, and the marker
    assert names == {"settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json", "report.html", MARKER}
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    c = s["counts"]
    assert c["input_claims"] == c["settled_claims"] + c["rejected_claims"]
    assert s["policy"]["name"] == "city-employee"
    assert pq.read_table(tmp_path / "o" / "settlements.parquet").num_rows == c["settled_claims"]
    # the same run with --no-lines and a policy given by path
    from adjudicate.policy import shipped

    r = invoke(
        "run",
        *inputs_args(tmp_path / "g"),
        "--policy",
        shipped()["city-employee"],
        "--out",
        tmp_path / "o2",
        "-q",
        "--no-lines",
    )
    assert r.exit_code == 0 and not (tmp_path / "o2" / "lines.parquet").exists()


def test_input_error_exits_2_and_writes_nothing(tmp_path):
    folder = sample_dir()
    args = inputs_args(folder)
    args[1] = tmp_path / "missing.parquet"
    r = invoke("run", *args, "--policy", "prefecture-employee", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "missing.parquet" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_unknown_policy_exits_2(tmp_path):
    r = invoke("run", *inputs_args(sample_dir()), "--policy", "atlantis", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "atlantis" in r.output


def test_internal_error_exits_1(tmp_path, monkeypatch):
    import adjudicate.engine as engine

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(engine, "adjudicate", boom)
    r = invoke("run", *inputs_args(sample_dir()), "--policy", "prefecture-employee", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "internal error" in r.output
    assert not (tmp_path / "o").exists()


def test_validate(tmp_path):
    assert invoke("generate", "--members", 100, "--year", 2024, "--seed", 1, "--out", tmp_path / "ok").exit_code == 0
    r = invoke("validate", tmp_path / "ok")
    assert r.exit_code == 0 and "no problems" in r.output
    r = invoke("validate", sample_dir())  # the sample has deliberately bad claims
    assert r.exit_code == 2 and "duplicate_line" in r.output


def test_written_outputs_read_back_exactly_as_the_contract_types(tmp_path):
    """Files are written with zero-copy decimals; they must read back as decimal128(18, 2) and
    equal the in-memory tables, value for value and type for type."""
    from adjudicate import policy as P
    from adjudicate.engine import adjudicate, read_inputs
    from adjudicate.outputs import lines_table, settlements_table

    d = sample_dir()
    r = invoke("run", *inputs_args(d), "--policy", "prefecture-employee", "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.output
    inputs = read_inputs(
        [d / "claims.parquet"], [d / "members.parquet"], [d / "providers.parquet"], [d / "catalogue.parquet"]
    )
    result = adjudicate(inputs, P.load("prefecture-employee"))
    for name, table in (("settlements", settlements_table(result)), ("lines", lines_table(result))):
        back = pq.read_table(tmp_path / "o" / f"{name}.parquet")
        assert back.schema.equals(table.schema), name
        assert back.equals(table), name


def test_generate_order_option(tmp_path):
    """generate --order: the same rows laid out another way; an unknown order is a usage error (exit 2)."""
    for order in ("date", "shuffled"):
        r = invoke(
            "generate", "--members", 60, "--year", 2024, "--seed", 2, "--order", order, "--out", tmp_path / order
        )
        assert r.exit_code == 0, r.output
    keys = [("claim_id", "ascending"), ("line_no", "ascending")]
    a, b = (pq.read_table(tmp_path / o / "claims.parquet").replace_schema_metadata(None) for o in ("date", "shuffled"))
    assert not a["claim_id"].equals(b["claim_id"]) and a.sort_by(keys).equals(b.sort_by(keys))
    assert (
        invoke("generate", "--members", 5, "--year", 2024, "--order", "random", "--out", tmp_path / "x").exit_code == 2
    )
