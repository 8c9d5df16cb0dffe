"""Micro-benchmarks of the engine's stages, for regressions (pytest-benchmark).

    python -m pytest benchmarks/ --benchmark-only

On a ~1M-line data set generated with the package's generator (cached in
benchmarks/data/), read once per session. Each compiled stage is called once
over every claim, on one thread, exactly as ``engine.adjudicate`` calls it; the
in-memory pipeline is also timed whole with 1 and 2 threads. Compare runs
with ``--benchmark-autosave`` and ``pytest-benchmark compare``.

These live outside tests/ so the project's test command never runs them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_data  # noqa: E402
import stages  # noqa: E402

MEMBERS = 20_000  # about 1M lines


@pytest.fixture(scope="session")
def prepared():
    folder, _ = bench_data.dataset(MEMBERS, say=lambda *a: None)
    return stages.prepare(folder)


def _rate(benchmark, n: int, what: str) -> None:
    benchmark.extra_info[what] = n
    mean = benchmark.stats.stats.mean if benchmark.stats else None
    if mean:
        benchmark.extra_info[f"{what}_per_second"] = round(n / mean)


def test_encode(benchmark, prepared):
    i = prepared.inputs
    benchmark.pedantic(
        prepared.encode, args=(i.claims, i.members, i.providers, i.catalogue), rounds=3, iterations=1, warmup_rounds=0
    )
    _rate(benchmark, prepared.lines, "lines")


def test_split_lines(benchmark, prepared):
    # claim_sums accumulate, so every round gets fresh output arrays (made in setup, not timed)
    benchmark.pedantic(
        prepared.core.split_lines, setup=lambda: (stages.split_args(prepared), {}), rounds=20, warmup_rounds=1
    )
    _rate(benchmark, prepared.lines, "lines")


def test_settle_lines(benchmark, prepared):
    """The engine's kernel call: split, negative-claim check and settlement of every claim (fresh outputs)."""
    benchmark.pedantic(stages.settle_lines, args=(prepared,), rounds=10, warmup_rounds=1)
    _rate(benchmark, prepared.lines, "lines")


def test_settle_claims(benchmark, prepared):
    benchmark.pedantic(stages.settle, args=(prepared,), rounds=30, warmup_rounds=1)
    _rate(benchmark, prepared.claims, "claims")


def test_allocate(benchmark, prepared):
    benchmark.pedantic(stages.allocate, args=(prepared,), rounds=20, warmup_rounds=1)
    _rate(benchmark, prepared.lines, "lines")


@pytest.mark.parametrize("threads", [1, 2])
def test_adjudicate_in_memory(benchmark, prepared, threads):
    """encode + kernel + allocate, as ``adjudicate run`` does between read and write."""
    result = benchmark.pedantic(
        prepared.engine.adjudicate,
        args=(prepared.inputs, prepared.policy),
        kwargs={"threads": threads},
        rounds=3,
        iterations=1,
    )
    assert len(result.enc.member) == prepared.claims
    _rate(benchmark, prepared.lines, "lines")
