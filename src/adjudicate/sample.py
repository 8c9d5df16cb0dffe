"""Where the bundled sample data set lives (``data/`` in the source tree)."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

HERE = Path(__file__).resolve().parent


def sample_dir() -> Path:
    """The folder holding the sample's claims, members, providers and catalogue."""
    for d in (HERE / "data", HERE.parents[1] / "data"):  # installed package, then a source checkout
        if (d / "claims.parquet").exists():
            return d
    raise InputError("the bundled sample is missing from this installation", HERE / "data")
