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
    r = invoke("run", "--inputs", DATA, "--policy", "prefecture-employee", "--out", tmp_path / "o",
               env={"COLUMNS": columns})
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
    r = invoke("run", "--claims", DATA / "claims.parquet", "--members", DATA / "members.parquet",
               "--providers", DATA / "providers.parquet", "--catalogue", DATA / "catalogue.parquet",
               "--policy", "prefecture-employee", "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "o" / "settlements.parquet").equals(pq.read_table(run_out / "settlements.parquet"))
    r = invoke("run", "--policy", "prefecture-employee", "--out", tmp_path / "o2")
    assert r.exit_code == 2 and "--inputs DIR" in r.output
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "claims.parquet").write_bytes((DATA / "claims.parquet").read_bytes())
    r = invoke("run", "--inputs", tmp_path / "half", "--policy", "prefecture-employee", "--out", tmp_path / "o3")
    assert r.exit_code == 2 and "--members" in r.output and "not found in --inputs" in r.output
