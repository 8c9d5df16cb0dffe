"""Shared fixtures: run a hand-made Case through the engine and read the outputs back."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from adjudicate import policy as P  # noqa: E402
from adjudicate.engine import adjudicate, read_inputs  # noqa: E402
from adjudicate.outputs import lines_table, rejected_table, settlements_table  # noqa: E402


class Outcome:
    def __init__(self, result, out: Path | None = None):
        self.result = result
        self.settlements = {r["claim_id"]: r for r in settlements_table(result).to_pylist()}
        self.lines = lines_table(result).to_pylist()
        self.rejected = rejected_table(result).to_pylist()
        self.out = out

    def __getitem__(self, claim_id: str) -> dict:
        return self.settlements[claim_id]

    def reason(self, claim_id: str) -> str | None:
        return next((r["reason"] for r in self.rejected if r["claim_id"] == claim_id), None)


@pytest.fixture
def run_case(tmp_path):
    """run_case(case, policy) -> Outcome: adjudicate a builders.Case under a policy."""
    counter = iter(range(10**6))

    def run(case, policy: str | Path = "prefecture-employee", threads: int = 1) -> Outcome:
        folder = tmp_path / f"case{next(counter)}"
        paths = case.write(folder)
        inputs = read_inputs([paths["claims"]], [paths["members"]], [paths["providers"]], [paths["catalogue"]])
        return Outcome(adjudicate(inputs, P.load(policy), threads=threads))

    return run


def y(v) -> Decimal:
    return Decimal(str(v))
