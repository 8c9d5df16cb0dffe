"""Where a command may write (issue 8 §1–4, contract §5): nothing the engine did not write is ever deleted.

An --out that exists and is not an earlier output is refused with exit 2 and left as it is; so are the current
folder, a folder holding an input, and the root. A symbolic link is written through. Temporary folders of a
live run are never removed by another run (they are locked, not judged by process id); a killed run's are.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from adjudicate import cli, outputs
from adjudicate.outdir import MARKER
from adjudicate.sample import sample_dir

TABLES = ("claims", "members", "providers", "catalogue")
RUN_OUTPUTS = {"settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json", "report.html", MARKER}


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def inputs_args(folder: Path) -> list:
    return [a for t in TABLES for a in (f"--{t}", folder / f"{t}.parquet")]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with its digest."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(sample_dir(), folder, ignore=shutil.ignore_patterns("reconcile"))
    return folder


def run(data: Path, out, *extra):
    return invoke("run", *inputs_args(data), "--policy", "prefecture-employee", "--out", out, "-q", *extra)


def refused(r, *says: str) -> None:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "bug" not in r.output
    for s in says:
        assert s in r.output, r.output


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name or ".old-" in p.name)


# ---------------------------------------------------------------------------
# §1: foreign folders, input folders
# ---------------------------------------------------------------------------


def test_run_into_the_inputs_folder_is_refused_and_deletes_nothing(data, tmp_path):
    before = tree(tmp_path)
    refused(run(data, data), "holds the input")
    refused(run(data, tmp_path), "holds the input")  # a parent of the inputs
    nested = tmp_path / "project"
    shutil.copytree(data, nested / "data")
    refused(run(nested / "data", nested), "holds the input")
    assert tree(nested / "data") == tree(data)
    shutil.rmtree(nested)
    assert tree(tmp_path) == before


def test_an_earlier_output_that_holds_the_inputs_is_refused(tmp_path):
    g = tmp_path / "gen"
    assert invoke("generate", "--members", 30, "--year", 2024, "--seed", 1, "--out", g, "-q").exit_code == 0
    assert (g / MARKER).is_file()
    before = tree(g)
    refused(run(g, g), "holds the input")
    refused(
        invoke(
            "compare", "--policy", "prefecture-employee", "--policy", "city-employee", *inputs_args(g), "--out", g, "-q"
        ),
        "holds the input",
    )
    assert tree(g) == before


@pytest.mark.parametrize("command", ["run", "demo", "generate", "compare", "readjudicate", "reconcile", "audit"])
def test_every_command_refuses_a_foreign_folder(command, data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("four years of work")
    (out / "sub").mkdir()
    (out / "sub" / "notes.md").write_text("more")
    before = tree(out)
    earlier = tmp_path / "earlier"
    assert run(data, earlier).exit_code == 0
    args = {
        "run": ["run", *inputs_args(data), "--policy", "prefecture-employee"],
        "audit": ["audit", *inputs_args(data), "--policy", "prefecture-employee"],
        "demo": ["demo"],
        "generate": ["generate", "--members", 10, "--year", 2024],
        "compare": ["compare", "--policy", "prefecture-employee", "--policy", "city-employee", *inputs_args(data)],
        "readjudicate": ["readjudicate", "--previous", earlier, *inputs_args(data), "--policy", "city-employee"],
        "reconcile": [
            "reconcile",
            "--settlements",
            earlier,
            "--providers",
            data / "providers.parquet",
            "--members",
            data / "members.parquet",
            "--year",
            2024,
        ],
    }[command]
    refused(invoke(*args, "--out", out), "not an output of adjudicate", str(out))
    assert tree(out) == before
    assert leftovers(tmp_path) == []
    # an empty folder may be used, and the output then replaces it whole (and is marked)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = invoke(*args, "--out", empty)
    assert r.exit_code == 0, r.output
    marker = json.loads((empty / MARKER).read_text())
    assert marker["command"].endswith(command) and set(marker["files"]) == {p.name for p in empty.iterdir()} - {MARKER}
    # and an earlier output of the same command is replaced
    r = invoke(*args, "--out", empty)
    assert r.exit_code == 0, r.output


def test_an_earlier_output_with_a_file_added_by_someone_is_refused(data, tmp_path):
    out = tmp_path / "out"
    assert run(data, out).exit_code == 0
    (out / "my-notes.txt").write_text("keep me")
    refused(run(data, out), "my-notes.txt", "did not write")
    assert (out / "my-notes.txt").read_text() == "keep me"
    (out / "my-notes.txt").unlink()
    assert run(data, out).exit_code == 0
    assert {p.name for p in out.iterdir()} == RUN_OUTPUTS


def test_an_output_of_an_earlier_version_without_marker_is_replaced(data, tmp_path):
    out = tmp_path / "out"
    assert run(data, out).exit_code == 0
    (out / MARKER).unlink()  # as written before the marker existed
    assert run(data, out).exit_code == 0
    assert {p.name for p in out.iterdir()} == RUN_OUTPUTS


def test_readers_of_an_output_folder_skip_the_marker(data, tmp_path):
    out = tmp_path / "out"
    assert run(data, out).exit_code == 0
    rec = invoke(
        "reconcile",
        "--settlements",
        out,
        "--providers",
        data / "providers.parquet",
        "--members",
        data / "members.parquet",
        "--year",
        2024,
        "--out",
        tmp_path / "rec",
        "-q",
    )
    assert rec.exit_code == 0, rec.output
    again = invoke(
        "readjudicate",
        "--previous",
        out,
        *inputs_args(data),
        "--policy",
        "prefecture-employee",
        "--out",
        tmp_path / "night",
        "-q",
    )
    assert again.exit_code == 0, again.output
    g = tmp_path / "gen"
    assert invoke("generate", "--members", 20, "--year", 2024, "--seed", 2, "--out", g, "-q").exit_code == 0
    assert invoke("validate", g).exit_code == 0


# ---------------------------------------------------------------------------
# §2: '.', 'x/..'
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("out", [".", "x/..", "./", "sub/../.", ".."])
def test_out_naming_the_current_folder_is_refused(out, data, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "x").mkdir(parents=True)
    (work / "sub").mkdir()
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    refused(run(data, out), "current")
    assert tree(tmp_path) == before
    # the same folder by its name is an ordinary --out (here: not empty, so refused for that reason)
    refused(run(data, work), "current")


def test_out_with_dots_resolves_to_the_folder_it_names(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(data, "x/../result").exit_code == 0
    assert {p.name for p in (tmp_path / "result").iterdir()} == RUN_OUTPUTS
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    assert leftovers(tmp_path) == []


def test_root_is_refused(data):
    refused(run(data, "/"), "root")


# ---------------------------------------------------------------------------
# §3: symbolic links
# ---------------------------------------------------------------------------


def test_a_symlinked_out_is_written_through_and_nothing_is_left_behind(data, tmp_path):
    runs = tmp_path / "runs"
    target = runs / "2024-11"
    assert invoke("run", *inputs_args(data), "--policy", "city-employee", "--out", target, "-q").exit_code == 0
    link = tmp_path / "latest"
    link.symlink_to(target, target_is_directory=True)
    assert run(data, link).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads((target / "summary.json").read_text())["policy"]["name"] == "prefecture-employee"
    assert {p.name for p in target.iterdir()} == RUN_OUTPUTS
    assert leftovers(tmp_path) == [] and leftovers(runs) == []
    # a link to a folder that is not an output is refused like the folder
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    link2 = tmp_path / "link2"
    link2.symlink_to(other)
    refused(run(data, link2), "not an output of adjudicate")
    assert [p.name for p in other.iterdir()] == ["keep.txt"] and link2.is_symlink()
    # a dangling link: its target is created
    link3 = tmp_path / "link3"
    link3.symlink_to(tmp_path / "fresh")
    assert run(data, link3).exit_code == 0
    assert link3.is_symlink() and {p.name for p in (tmp_path / "fresh").iterdir()} == RUN_OUTPUTS


# ---------------------------------------------------------------------------
# §4: locks, not process ids
# ---------------------------------------------------------------------------


def test_a_live_temporary_folder_of_another_pid_namespace_is_kept(data, tmp_path):
    out = tmp_path / "out"
    # A run in another container: its process id means nothing here (no such process), but it holds the lock.
    live = tmp_path / ".out.tmp-999999-abcd"
    live.mkdir()
    (live / "settlements.parquet").write_bytes(b"being written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    stale = tmp_path / ".out.tmp-999998-dead"  # a killed run: nobody holds its lock
    stale.mkdir()
    (stale / "lines.parquet").write_bytes(b"half")
    try:
        assert run(data, out).exit_code == 0
        assert (live / "settlements.parquet").read_bytes() == b"being written"
        assert not stale.exists()
    finally:
        os.close(fd)
    assert run(data, out).exit_code == 0
    assert not live.exists()  # its writer is gone now


def test_concurrent_runs_into_one_out_both_succeed_and_leave_one_whole_output(data, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "adjudicate.cli", "run", *map(str, inputs_args(data)), "--out", str(out), "-q"]
    procs = [
        subprocess.Popen(cmd + ["--policy", p], stderr=subprocess.PIPE, text=True)
        for p in ("prefecture-employee", "city-employee", "zhenjiang-resident")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert {p.name for p in out.iterdir()} == RUN_OUTPUTS
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# §10: a full disk is the machine's problem, not a bug
# ---------------------------------------------------------------------------


def test_a_full_disk_exits_2_and_keeps_the_previous_output(data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run(data, out).exit_code == 0
    before = tree(out)

    def full(table, path, *pool):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(outputs, "write_parquet", full)
    r = run(data, out)
    refused(r, "No space left on device", "previous output", "intact")
    assert tree(out) == before and leftovers(tmp_path) == []

    def arrow_full(table, path, *pool):  # Arrow's own wording: the errno is in the text only
        raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(outputs, "write_parquet", arrow_full)
    refused(run(data, out), "No space left on device")
    assert tree(out) == before


def test_the_library_refuses_an_out_holding_the_inputs_too(tmp_path):
    """Commands built on the library (not only the CLI's early check) get the same refusal: the inputs are
    named by the digests every output records."""
    from adjudicate import policy as P
    from adjudicate.engine import adjudicate, read_inputs
    from adjudicate.errors import InputError
    from adjudicate.stream import run_streaming

    g = tmp_path / "gen"
    assert invoke("generate", "--members", 30, "--year", 2024, "--seed", 1, "--out", g, "-q").exit_code == 0
    before = tree(g)
    files = [[g / f"{t}.parquet"] for t in TABLES]
    inputs = read_inputs(*files)
    result = adjudicate(inputs, P.load("prefecture-employee"))
    with pytest.raises(InputError, match="holds the input"):
        outputs.write_all(result, g, inputs.digests(), inputs.claims.rows)
    with pytest.raises(InputError, match="holds the input"):
        run_streaming(*files, P.load("prefecture-employee"), g, parts=2)
    assert tree(g) == before
