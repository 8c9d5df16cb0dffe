"""Atomic output under SIGKILL (contract §4), and nothing lost on data with bad rows.

A real ``adjudicate run`` process is killed at several moments: before any
output exists, as its temporary folder appears, while each output file is
being written, and at times spread over the whole run. The --out folder must
then be absent or a complete output (the previous one, intact, or the new one,
whole), never a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from adjudicate.cli import main
from adjudicate.generate import bad_claims
from adjudicate.outdir import MARKER

# contract §5: every command that writes an output folder also writes report.html, and the marker that tells
# an earlier output of adjudicate from other folders
OUTPUTS = {"settlements.parquet", "lines.parquet", "rejected.parquet", "summary.json", "report.html", MARKER}
TABLES = ("claims", "members", "providers", "catalogue")
POLICY_A, POLICY_B = "prefecture-employee", "city-employee"
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A generated data set large enough for a run to take a second or two, 5 % bad claims."""
    folder = tmp_path_factory.mktemp("atomic") / "gen"
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--members",
            "6000",
            "--year",
            "2024",
            "--seed",
            "11",
            "--bad-rows",
            "0.05",
            "--out",
            str(folder),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return folder


def command(data: Path, out: Path, policy: str) -> list[str]:
    args = [sys.executable, "-m", "adjudicate.cli", "run"]
    for t in TABLES:
        args += [f"--{t}", str(data / f"{t}.parquet")]
    return args + ["--policy", policy, "--out", str(out), "--quiet"]


def run(data: Path, out: Path, policy: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(command(data, out, policy), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return time.perf_counter() - t0


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def temp_folders(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.tmp-*"))


def check_complete(out: Path, policy: str) -> None:
    """``out`` is one whole output of a run under ``policy``."""
    assert {p.name for p in out.iterdir()} == OUTPUTS
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["policy"]["name"] == policy
    c = s["counts"]
    assert pq.read_table(out / "settlements.parquet").num_rows == c["settled_claims"]
    assert pq.read_table(out / "lines.parquet").num_rows == c["settled_lines"]
    assert pq.read_table(out / "rejected.parquet").num_rows >= c["rejected_claims"]


def kill_at(data: Path, out: Path, policy: str, moment) -> None:
    """Start a run and SIGKILL it when ``moment`` says so: a delay in seconds, or a predicate
    polled every few milliseconds (the run is killed at once if it ends first)."""
    proc = subprocess.Popen(command(data, out, policy), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if isinstance(moment, (int, float)):
            try:
                proc.wait(timeout=moment)
            except subprocess.TimeoutExpired:
                pass
        else:
            deadline = time.monotonic() + 120
            while proc.poll() is None and not moment() and time.monotonic() < deadline:
                time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def tmp_has(out: Path, name: str | None = None):
    def seen() -> bool:
        for t in temp_folders(out):
            if name is None or (t / name).exists():
                return True
        return False

    return seen


def moments(out: Path, duration: float) -> list:
    return [
        0.3 * duration,
        tmp_has(out),
        tmp_has(out, "settlements.parquet"),
        tmp_has(out, "lines.parquet"),
        tmp_has(out, "rejected.parquet"),
        tmp_has(out, "summary.json"),
        0.6 * duration,
        0.85 * duration,
    ]


def test_sigkill_leaves_previous_output_intact_or_new_output_whole(data, tmp_path):
    out = tmp_path / "out"
    duration = run(data, out, POLICY_A)
    check_complete(out, POLICY_A)
    state = (POLICY_A, digests(out))
    outcomes = []
    for moment in moments(out, duration):
        kill_at(data, out, POLICY_B, moment)
        assert out.is_dir(), "the previous output disappeared"
        now = digests(out)
        if now == state[1]:
            outcomes.append("previous")
        else:  # the killed run finished its rename first: the new output, whole
            check_complete(out, POLICY_B)
            state = (POLICY_B, now)
            outcomes.append("new")
            duration = run(data, out, POLICY_A)  # back to A, so the next kill can tell the two apart
            state = (POLICY_A, digests(out))
    assert outcomes.count("previous") >= 4, outcomes  # most kills landed before the rename
    for t in temp_folders(out):
        assert t.name != out.name and t.name.startswith(f".{out.name}.tmp-")


def test_sigkill_of_a_first_run_leaves_nothing_or_everything(data, tmp_path):
    for i, moment in enumerate([0.5, "tmp", "lines", "summary", 1.5]):
        out = tmp_path / f"out{i}"
        when = {
            "tmp": tmp_has(out),
            "lines": tmp_has(out, "lines.parquet"),
            "summary": tmp_has(out, "summary.json"),
        }.get(moment, moment)
        kill_at(data, out, POLICY_A, when)
        if out.exists():
            check_complete(out, POLICY_A)


def test_next_run_after_a_kill_succeeds_and_cleans_stale_temporary_folders(data, tmp_path):
    out = tmp_path / "out"
    kill_at(data, out, POLICY_A, tmp_has(out, "lines.parquet"))
    assert not out.exists() or {p.name for p in out.iterdir()} == OUTPUTS
    stale = temp_folders(out)
    run(data, out, POLICY_A)
    check_complete(out, POLICY_A)
    assert not [t for t in stale if t.exists()], "stale temporary folders of the killed run are removed"


def test_counts_reconcile_and_nothing_is_lost(data, tmp_path):
    out = tmp_path / "out"
    run(data, out, POLICY_A)
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    c = s["counts"]
    assert c["input_claims"] == c["settled_claims"] + c["rejected_claims"]
    assert c["reconciles"] is True
    assert sum(c["rejected_by_reason"].values()) >= c["rejected_claims"]

    claims = pq.read_table(data / "claims.parquet", columns=["claim_id"])
    ids = claims.column("claim_id").to_pylist()
    assert c["input_lines"] == len(ids)
    settled = pq.read_table(out / "settlements.parquet").column("claim_id").to_pylist()
    rejected = pq.read_table(out / "rejected.parquet").column("claim_id").to_pylist()
    assert len(settled) == len(set(settled)) == c["settled_claims"]
    assert not set(settled) & set(rejected)
    distinct = {i for i in ids if i is not None}
    assert set(settled) | {r for r in rejected if r is not None} == distinct
    assert rejected.count(None) == ids.count(None)
    assert c["input_claims"] == len(distinct) + ids.count(None)
    # every lines.parquet row belongs to a settled claim, and every settled claim has its lines
    line_claims = set(pq.read_table(out / "lines.parquet", columns=["claim_id"]).column("claim_id").to_pylist())
    assert line_claims == set(settled)
    # the claims the generator made bad are all rejected
    bad = bad_claims(pq.read_schema(data / "claims.parquet"))
    assert bad and len(bad) >= 0.04 * len(distinct)
    assert not set(bad) & set(settled)
