"""``report.html``: one self-contained page for every output folder (contract §5).

Every command that writes an output folder calls :func:`write_report` inside
its atomic folder, after its own files are written; the page is built from
those files (summary.json and the Parquet tables), so it shows exactly what
was written. A command adds its own page with :func:`register`::

    from adjudicate.report import Page, register

    @register("sweep")
    def sweep_page(folder: Path, summary: dict) -> Page: ...

and calls ``write_report(tmp, "sweep")``. Labels follow ``--lang``
(:mod:`adjudicate.labels`). The page fetches nothing: CSS is inline and the
charts are inline SVG (:mod:`adjudicate.report.svg`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .page import Page

REPORT_NAME = "report.html"
_BUILDERS: dict[str, Callable[..., Page]] = {}


def register(kind: str) -> Callable[[Callable[[Path, dict], Page]], Callable[[Path, dict], Page]]:
    """Register the page builder of one kind of output folder (run, compare, …)."""

    def add(f: Callable[[Path, dict], Page]) -> Callable[[Path, dict], Page]:
        _BUILDERS[kind] = f
        return f

    return add


def report_html(folder: Path, kind: str, summary: dict | None = None, **figures: Any) -> str:
    """The page of an output folder of ``kind``, as HTML.

    ``summary``: the folder's summary.json as a dict, when the caller holds it (else read from the
    folder); ``figures``: passed on to the page builder, which then need not read the folder's
    tables back (``run``: ``figures=builders.RunFigures``; ``compare``: ``member_paid_change``, each
    member's change in out of pocket)."""
    from . import builders  # noqa: F401 - registers the shipped pages

    folder = Path(folder)
    if summary is None:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return _BUILDERS[kind](folder, summary, **figures).html()


def write_report(folder: Path, kind: str, summary: dict | None = None, **figures: Any) -> Path:
    """Write ``folder/report.html`` for an output folder of ``kind`` (see :func:`report_html`); return its path."""
    path = Path(folder) / REPORT_NAME
    path.write_text(report_html(folder, kind, summary, **figures), encoding="utf-8")
    return path


__all__ = ["REPORT_NAME", "Page", "register", "report_html", "write_report"]
