"""summary.json's input digests describe the bytes the run read (issue 8 §9)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from adjudicate import cli, stream
from adjudicate.sample import sample_dir

TABLES = ("claims", "members", "providers", "catalogue")


def inputs_args(folder: Path) -> list[str]:
    return [str(a) for t in TABLES for a in (f"--{t}", folder / f"{t}.parquet")]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_replaced_during_the_run_is_recorded_with_the_bytes_that_were_read(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(sample_dir(), data, ignore=shutil.ignore_patterns("reconcile"))
    claims = data / "claims.parquet"
    original = sha(claims)
    table = pq.read_table(claims)
    read_table = pq.read_table
    replaced = []

    def read_then_replace(*args, **kwargs):
        t = read_table(*args, **kwargs)
        if not replaced:  # the claims are read first: another process now replaces the file
            pq.write_table(table.slice(0, 10), claims.with_suffix(".new"))
            claims.with_suffix(".new").replace(claims)
            replaced.append(True)
        return t

    monkeypatch.setattr(pq, "read_table", read_then_replace)
    r = CliRunner().invoke(
        cli.main, ["run", *inputs_args(data), "--policy", "prefecture-employee", "--out", str(tmp_path / "out"), "-q"]
    )
    monkeypatch.undo()
    assert r.exit_code == 0, r.output
    assert replaced and sha(claims) != original
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["inputs"][str(claims)] == original
    assert s["counts"]["input_lines"] == table.num_rows  # the amounts are the old file's too


def test_streaming_refuses_a_file_replaced_while_it_is_partitioned(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(sample_dir(), data, ignore=shutil.ignore_patterns("reconcile"))
    claims = data / "claims.parquet"
    add_file = stream.Partitioner.add_file

    def add_then_replace(self, index, path):
        add_file(self, index, path)
        pq.write_table(pq.read_table(claims).slice(0, 10), claims.with_suffix(".new"))
        claims.with_suffix(".new").replace(claims)

    monkeypatch.setattr(stream.Partitioner, "add_file", add_then_replace)
    r = CliRunner().invoke(
        cli.main,
        [
            "run",
            *inputs_args(data),
            "--policy",
            "prefecture-employee",
            "--partitions",
            "2",
            "--out",
            str(tmp_path / "out"),
            "-q",
        ],
    )
    assert r.exit_code == 2 and "changed while it was being read" in r.output and "claims.parquet" in r.output
    assert not (tmp_path / "out").exists()


def test_streaming_records_the_digests_of_an_in_memory_run(tmp_path):
    data = sample_dir()
    for parts in ("1", "3"):
        r = CliRunner().invoke(
            cli.main,
            [
                "run",
                *inputs_args(data),
                "--policy",
                "prefecture-employee",
                "--partitions",
                parts,
                "--out",
                str(tmp_path / parts),
                "-q",
            ],
        )
        assert r.exit_code == 0, r.output
    one, three = (json.loads((tmp_path / p / "summary.json").read_text())["inputs"] for p in ("1", "3"))
    assert one == three and one[str(data / "claims.parquet")] == sha(data / "claims.parquet")
