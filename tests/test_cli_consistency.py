"""One consistent command line (issue 12): whole values in narrow or piped tables, --lang,
--inputs DIR, validate lists every rejection run makes."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from adjudicate import cli
from adjudicate.money import group_digits
from adjudicate.sample import sample_dir

DATA = sample_dir()


def invoke(*args, env=None):
    return CliRunner().invoke(cli.main, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "run"
    r = invoke("run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("columns", ["24", "40", "200"])
def test_run_table_shows_money_whole_at_any_width(tmp_path, run_out, columns):
    r = invoke(
        "run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", tmp_path / "o", env={"COLUMNS": columns}
    )
    assert r.exit_code == 0, r.output
    s = json.loads((run_out / "summary.json").read_text())
    for k, v in s["totals"].items():
        assert re.search(rf"│ {re.escape(k)} +│ +{re.escape(group_digits(v))} │", r.output), (k, r.output)


def test_policies_names_and_explain_keys_are_whole_when_narrow():
    r = invoke("policies", env={"COLUMNS": "30"})
    assert r.exit_code == 0
    for name in ("prefecture-employee", "shenzhen-comprehensive", "city-employee", "zhenjiang-resident"):
        assert f" {name} " in r.output
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    claims = pq.read_table(DATA / "claims.parquet")
    claim = claims.filter(pc.equal(claims.column("setting"), "inpatient")).column("claim_id")[0].as_py()
    r = invoke("explain", claim, "--inputs", DATA, "--policy", "prefecture-employee", env={"COLUMNS": "40"})
    assert r.exit_code == 0, r.output
    keys = re.findall(r"blocks\.[\w.\[\]]+", r.output)
    assert keys and all(not k.endswith(".") for k in keys)
    assert "blocks.inpatient.scale.bands[0]" in r.output


def test_lang_zh_labels_the_terminal_tables(tmp_path):
    r = invoke("run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", tmp_path / "o", "--lang", "zh")
    assert r.exit_code == 0
    assert "统筹基金支付 fund_pool" in r.output and "已结算单数" in r.output and "合计 (元)" in r.output
    r = invoke("run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", tmp_path / "o", "--lang", "fr")
    assert r.exit_code == 2


def test_inputs_dir_is_the_four_options(tmp_path, run_out):
    r = invoke(
        "run",
        "--claims",
        DATA / "claims.parquet",
        "--members",
        DATA / "members.parquet",
        "--providers",
        DATA / "providers.parquet",
        "--catalogue",
        DATA / "catalogue.parquet",
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "o",
        "-q",
    )
    assert r.exit_code == 0
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "o" / "settlements.parquet").equals(pq.read_table(run_out / "settlements.parquet"))
    r = invoke("run", "--policy", "prefecture-employee", "--out", tmp_path / "o2")
    assert r.exit_code == 2 and "--inputs DIR" in r.output
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "claims.parquet").write_bytes((DATA / "claims.parquet").read_bytes())
    r = invoke("run", "--inputs", tmp_path / "half", "--policy", "prefecture-employee", "--out", tmp_path / "o3")
    assert r.exit_code == 2 and "--members" in r.output and "not found in --inputs" in r.output


def test_compare_histogram_fits_a_narrow_terminal(tmp_path):
    args = ["compare", "--inputs", DATA, "--policy", "prefecture-employee", "--policy", "city-employee"]
    r = invoke(*args, "--out", tmp_path / "o", env={"COLUMNS": "40"})
    assert r.exit_code == 0, r.output
    # every histogram row keeps its label, bar and count on one line, within the width
    rows = [line for line in r.output.splitlines() if re.match(r"^ *(\[|<|≥|0 \(unchanged\))", line)]
    assert any("0 (unchanged)" in line for line in rows) and len(rows) >= 3
    for line in rows:
        assert len(line) <= 40 and re.search(r"[▏█▶] [\d,]+$", line), line


def test_prepare_takes_inputs_dir_too(tmp_path, run_out):
    import pyarrow.parquet as pq

    r = invoke("prepare", "--inputs", DATA, "--out", tmp_path / "ds", "-q")
    assert r.exit_code == 0, r.output
    r = invoke("run", "--dataset", tmp_path / "ds", "--policy", "prefecture-employee", "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.output
    assert pq.read_table(tmp_path / "o" / "settlements.parquet").equals(pq.read_table(run_out / "settlements.parquet"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "claims.parquet").write_bytes((DATA / "claims.parquet").read_bytes())
    r = invoke("prepare", "--inputs", tmp_path / "half", "--out", tmp_path / "ds2")
    assert r.exit_code == 2 and "--members" in r.output and "not found in --inputs" in r.output
    r = invoke("prepare", "--inputs", DATA, "--dataset", tmp_path / "ds", "--out", tmp_path / "ds3")
    assert r.exit_code == 2 and "--inputs" in r.output and "--dataset" in r.output


def test_validate_with_a_policy_reports_every_rejection_run_makes(run_out):
    s = json.loads((run_out / "summary.json").read_text())
    r = invoke("validate", DATA, "--policy", "prefecture-employee")
    assert r.exit_code == 2
    listed = {m.group(2): int(m.group(1)) for m in re.finditer(r"^reject: (\d+) claim\(s\) (\w+)", r.output, re.M)}
    assert listed == {k: n for k, n in s["counts"]["rejected_by_reason"].items() if n}
    assert "negative_claim_total" in listed and "skipped" not in r.output


def test_validate_says_which_checks_it_skipped():
    r = invoke("validate", DATA)
    assert "skipped: negative_claim_total" in r.output and "--policy" in r.output
    r = invoke("validate", DATA / "claims.parquet")
    assert r.exit_code == 0
    assert "skipped: claim rejections" in r.output and "members, providers, catalogue" in r.output
    assert "ok: no problems found in the checks that ran" in r.output


def test_rejected_rows_carry_member_provider_and_the_offending_value(run_out):
    import pyarrow.parquet as pq

    rows = pq.read_table(run_out / "rejected.parquet").to_pylist()
    by = {r["reason"]: r for r in rows}
    assert by["unknown_member"]["value"] == by["unknown_member"]["member_id"]
    assert by["unknown_member"]["column"] == "member_id"
    assert by["unknown_provider"]["value"] == by["unknown_provider"]["provider_id"]
    assert by["negative_claim_total"]["column"] == "total" and by["negative_claim_total"]["value"].startswith("-")
    assert by["discharge_before_admit"]["column"] == "discharge_date"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", by["discharge_before_admit"]["value"])
    assert all(r["member_id"] for r in rows if r["reason"] != "null_required_field" or r["column"] != "member_id")


def test_log_file_has_one_json_line_per_stage_with_counts(tmp_path):
    log = tmp_path / "night.jsonl"
    r = invoke(
        "run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", tmp_path / "o", "-q", "--log-file", log
    )
    assert r.exit_code == 0
    r = invoke("validate", DATA, "--log-file", log)
    assert r.exit_code == 2
    records = [json.loads(line) for line in log.read_text().splitlines()]
    run = [x for x in records if x["command"] == "run"]
    assert [x["event"] for x in run][0] == "start" and run[-1] == {**run[-1], "event": "end", "exit_status": 0}
    assert [x["stage"] for x in run if x["event"] == "stage"] == ["read", "encode", "kernel", "allocate", "write"]
    assert all(x["seconds"] >= 0 for x in run if x["event"] == "stage")
    summary = next(x for x in run if x["event"] == "summary")
    c = summary["counts"]
    assert c["settled_claims"] + c["rejected_claims"] == c["input_claims"]
    val = [x for x in records if x["command"] == "validate"]
    assert val[-1]["event"] == "end" and val[-1]["exit_status"] == 2
    assert any(x["event"] == "stage" and x["stage"] == "read claims" for x in val)
    assert next(x for x in val if x["event"] == "summary")["problems"] > 0


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--members", 50, "--year", 2024, "--out", "{tmp}/g"],
        ["explain", "20240000000001", "--inputs", DATA, "--policy", "prefecture-employee"],
    ],
)
def test_generate_and_explain_report_their_stages(tmp_path, command):
    log = tmp_path / "log.jsonl"
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in command]
    assert invoke(*args, "--log-file", log).exit_code == 0
    stages = [json.loads(x)["stage"] for x in log.read_text().splitlines() if json.loads(x)["event"] == "stage"]
    assert stages == (["generate", "write"] if command[0] == "generate" else ["read", "reference", "kernel"])


def test_explain_json_labels_units_and_says_why_the_account_paid_nothing():
    r = invoke("explain", "20240000000001", "--inputs", DATA, "--policy", "prefecture-employee", "--json")
    report = json.loads(r.output)
    units = {s["unit"] for s in report["steps"]}
    assert "fen" not in units and "yuan" in units
    for s in report["steps"]:
        if s["unit"] == "yuan":
            assert re.fullmatch(r"-?\d+\.\d{2}", s["value"]), s
    assert report["amounts"]["account_paid"] == "0.00"
    assert report["account_paid_nothing_because"] == "the personal account was empty (balance 0.00 before this claim)"
    step = next(s for s in report["steps"] if s["name"] == "account_paid")
    assert step["note"] == report["account_paid_nothing_because"]


def test_demo_says_what_to_open_next(tmp_path):
    r = invoke("demo", "--out", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert "next:" in r.output and f"open {tmp_path / 'd' / 'report.html'}" in r.output
    assert f"adjudicate export {tmp_path / 'd' / 'run'} --xlsx" in r.output


def test_command_reference_lists_every_command_and_option():
    """docs/commands.md (python docs/make_commands.py) names every command and every option."""
    from pathlib import Path

    import click

    doc = (Path(__file__).resolve().parents[1] / "docs" / "commands.md").read_text(encoding="utf-8")
    ctx = click.Context(cli.main, info_name="adjudicate")
    for name in cli.main.list_commands(ctx):
        assert f"## `adjudicate {name}`" in doc, name
        cmd = cli.main.get_command(ctx, name)
        for p in cmd.params:
            if isinstance(p, click.Option) and "--help" not in p.opts:
                assert any(f"`{o}" in doc or f", {o}" in doc for o in p.opts), (name, p.opts)


def test_piped_tables_keep_every_row_on_one_line(tmp_path, run_out):
    """Piped (CliRunner is not a terminal) in Chinese, the fund statement's labels do not wrap."""
    from pathlib import Path

    rec = Path(__file__).resolve().parents[1] / "data" / "reconcile"
    r = invoke(
        "reconcile",
        "--settlements",
        run_out,
        "--providers",
        DATA / "providers.parquet",
        "--members",
        DATA / "members.parquet",
        "--income",
        rec / "income.csv",
        "--opening",
        rec / "opening.csv",
        "--year",
        2024,
        "--out",
        tmp_path / "rec",
        "--lang",
        "zh",
        env={"COLUMNS": "60"},
    )
    assert r.exit_code == 0, r.output
    assert re.search(r"│   收入: 一次性预缴收入 +│ +36,000\.00 │", r.output)
    assert re.search(r"│ 备付能力 \(月\) \(12 个月\) +│ +18\.79 │", r.output)


@pytest.mark.parametrize("command", ["export", "demo", "reconcile", "readjudicate", "compare", "explain", "validate"])
def test_every_command_help_has_an_example_and_the_shared_options(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0 and "Example" in r.output
    assert "--log-file" in r.output


def test_help_examples_keep_one_command_per_line():
    """An example line that ends in a single backslash inside a docstring is joined to the next by
    Python, so --help would show two example lines run together: every continued example line
    ends in a backslash, and no line holds two option runs joined by spaces."""
    from adjudicate.cli import main

    for name, command in main.commands.items():
        text = command.help or ""
        for line in text.splitlines():
            assert not re.search(r"\S {6,}--", line), (name, line)


def test_shared_options_are_declared_once():
    """--out, --threads, --partitions, --quiet, --json and --policy (one policy) read the same in every command:
    each is common.py's declaration (casetest's -q keeps the failures, so it says so in its own words)."""
    import click

    from adjudicate.cli import common

    shared = {
        "out": common.out_option,
        "threads": common.threads_option,
        "partitions": common.partitions_option,
        "quiet": common.quiet_option,
        "as_json": common.json_option,
        "policy_name": common.policy_option,
        "rules_file": common.audit_rules_option,
    }

    # options of the same name and another meaning, in their own words
    own = {
        ("test", "quiet"),  # keeps the failures and the summary
        ("demo", "out"),  # a default folder, replaced only if it is an earlier demo
        ("prepare", "out"),  # says it is the dataset folder
        ("export", "out"),  # policies export: one file, never overwritten
        ("audit", "policy_name"),  # only the indicators' fund amounts
        ("demo", "policy_name"),  # has a default
        ("validate", "policy_name"),  # optional
    }

    def declared(option) -> click.Option:
        return option(click.command()(lambda **kw: None)).params[0]

    expected = {name: declared(o) for name, o in shared.items()}
    ctx = click.Context(cli.main, info_name="adjudicate")
    seen = {name: 0 for name in shared}
    commands = [cli.main.get_command(ctx, n) for n in cli.main.list_commands(ctx)]
    commands += [c for g in commands if isinstance(g, click.Group) for c in g.commands.values()]
    for cmd in commands:
        for p in cmd.params:
            want = expected.get(p.name or "")
            if want is None or (cmd.name, p.name) in own:
                continue
            assert (p.opts, p.help, p.default, repr(p.type)) == (want.opts, want.help, want.default, repr(want.type)), (
                cmd.name,
                p.name,
            )
            seen[p.name or ""] += 1
    assert all(n >= 2 for n in seen.values()), seen
