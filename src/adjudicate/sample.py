"""Where the bundled sample data set lives (``data/`` in the source tree)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_dir() -> Path:
    """The folder holding the sample's claims, members, providers and catalogue."""
    try:
        d = Path(str(resources.files("adjudicate.data")))
        if (d / "claims.parquet").exists():
            return d
    except ModuleNotFoundError:
        pass
    d = Path(__file__).resolve().parents[2] / "data"  # a source checkout
    if (d / "claims.parquet").exists():
        return d
    from .inputs import InputError
    raise InputError("the bundled sample is missing from this installation", d)
