"""Dated values with their references, in the manner of OpenFisca's parameters.

Any number of a policy file (and of the year-end settlement rules) may be
written three ways:

- plain, ``rate = 0.85``: in force always, no reference;
- cited, ``rate = { value = 0.85, reference = "seed 001 第八条" }``: in force
  always, with the document and article it comes from;
- dated, ``rate = { values = { 2024-01-01 = { value = 0.59, reference = "…" },
  2024-07-01 = { value = 0.72, reference = "…" } } }``: each value is in force
  from its date until the next one.

This module finds the cited and dated values of a parsed TOML document
(:func:`find`), cuts time into periods at every change date
(:func:`periods`) and gives the plain document in force in each period
(:func:`resolve`), which the strict loaders then read as if it had been
written plainly. Which keys may be dated is the loader's decision (a
``datable`` predicate on the dotted key): numbers and rates may change,
structure (how many bands, which settings a block settles) may not.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Entry:
    """One value of a series: in force from ``start`` (None: always) until the next entry."""

    start: dt.date | None
    value: Any
    reference: str | None


@dataclass(frozen=True)
class Series:
    """The values of one policy key over time (one undated entry for a cited value)."""

    key: str
    entries: tuple[Entry, ...]

    def at(self, day: dt.date) -> Entry | None:
        """The entry in force on ``day`` (None before the first date)."""
        found = None
        for e in self.entries:
            if e.start is None or e.start <= day:
                found = e
        return found

    @property
    def dated(self) -> bool:
        return self.entries[0].start is not None


def _is_series(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("values"), dict)


def _is_cited(v: Any) -> bool:
    return isinstance(v, dict) and "value" in v and set(v) <= {"value", "reference"}


def find(
    doc: dict, error: Callable[[str, str], Exception], datable: Callable[[str], bool], what: str = "policy"
) -> dict[str, Series]:
    """Every cited or dated value of ``doc``, by dotted key (``a.b[0].c``).

    ``error(key, message)`` builds the loader's exception (naming file, key
    and line); a series where ``datable(key)`` is false, a malformed date or
    entry, or a series inside a series is an error.
    """
    found: dict[str, Series] = {}

    def walk(node: Any, key: str) -> None:
        if _is_series(node) or _is_cited(node):
            if not key or not datable(key):
                raise error(
                    key or "values",
                    f"this {what} key cannot change over time or carry a reference "
                    "(it is structure, not a number); date or cite the numbers inside it",
                )
            found[key] = _series(node, key, error)
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")

    walk(doc, "")
    return found


def _reference(v: Any, key: str, error) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise error(key, 'a reference is text naming the document and article, e.g. "seed 003 第6篇"')
    return v


def _plain(v: Any, key: str, error) -> Any:
    if _is_series(v) or _is_cited(v):
        raise error(
            key, "a dated value holds plain values (a number, or a table of numbers), not another dated or cited value"
        )
    return v


def _series(node: dict, key: str, error) -> Series:
    if "value" in node and "values" not in node:
        return Series(
            key,
            (
                Entry(
                    None,
                    _plain(node["value"], f"{key}.value", error),
                    _reference(node.get("reference"), f"{key}.reference", error),
                ),
            ),
        )
    extra = sorted(set(node) - {"values"})
    if extra:
        raise error(
            f"{key}.{extra[0]}",
            f"unknown key {extra[0]!r}; a dated value is "
            '{ values = { YYYY-MM-DD = { value = …, reference = "…" }, … } }',
        )
    if not node["values"]:
        raise error(f"{key}.values", "no dated value: give at least one YYYY-MM-DD = { value = … }")
    entries = []
    for d, v in node["values"].items():
        k = f"{key}.values.{d}"
        try:
            start = dt.date.fromisoformat(d) if _DATE.match(str(d)) else None
        except ValueError:
            start = None
        if start is None:
            raise error(k, f"{d!r} is not a date; dated values are keyed by YYYY-MM-DD (e.g. 2024-07-01)")
        if isinstance(v, dict) and "value" in v:
            extra = sorted(set(v) - {"value", "reference"})
            if extra:
                raise error(f"{k}.{extra[0]}", f"unknown key {extra[0]!r}; allowed here: reference, value")
            entries.append(
                Entry(
                    start,
                    _plain(v["value"], f"{k}.value", error),
                    _reference(v.get("reference"), f"{k}.reference", error),
                )
            )
        else:
            # a plain value: a number, or a table of numbers such as { in_service = …, retired = … }
            # (the loader checks its shape as for any plain value)
            entries.append(Entry(start, _plain(v, k, error), None))
    entries.sort(key=entry_start)
    return Series(key, tuple(entries))


def entry_start(e: Entry) -> dt.date:
    """The start of an entry of a dated series (where every entry has one)."""
    assert e.start is not None
    return e.start


def periods(series: dict[str, Series]) -> tuple[dt.date | None, tuple[dt.date, ...]]:
    """(first day every value is defined, later change dates) of a document's series.

    Period 0 runs from the first day (None: no dated value, so always) to the
    first change date, period k from change k−1 to change k.
    """
    dated = [s for s in series.values() if s.dated]
    if not dated:
        return None, ()
    first = max(entry_start(s.entries[0]) for s in dated)
    changes = sorted({entry_start(e) for s in dated for e in s.entries if entry_start(e) > first})
    return first, tuple(changes)


def resolve(doc: dict, series: dict[str, Series], day: dt.date | None) -> dict:
    """The plain document in force on ``day`` (None: the undated document; every series is cited)."""
    out = copy.deepcopy(doc)
    for key, s in series.items():
        entry = s.entries[0] if day is None else s.at(day)
        assert entry is not None, (key, day)
        _set(out, key, copy.deepcopy(entry.value))
    return out


@dataclass(frozen=True)
class Loaded:
    """A document read period by period: ``first`` is the value of the first
    period (or of the whole document when nothing is dated)."""

    first: Any
    series: dict[str, Series]
    valid_from: dt.date | None = None
    changes: tuple[dt.date, ...] = ()
    periods: tuple[Any, ...] = ()


def load(doc: dict, locator, read: Callable[[dict], Any], datable: Callable[[str], bool], *what: str) -> Loaded:
    """Find the series of ``doc`` and ``read`` the plain document of each period.

    ``read`` raises the file's own error type (with ``message``, ``file``,
    ``key`` and ``line``); an error inside a dated period is raised again
    saying from which date those values apply, at the line of that entry.
    """
    series = find(doc, locator.error, datable, *what)
    first, changes = periods(series)
    if first is None:
        return Loaded(read(resolve(doc, series, None) if series else doc), series)
    out = []
    for day in (first,) + changes:
        try:
            out.append(read(resolve(doc, series, day)))
        except Exception as caught:
            # the file's own error type (PolicyError, RulesError …): message, file, key, line
            e: Any = caught
            key = getattr(e, "key", None)
            found = related(series, key) if key and hasattr(e, "message") else []
            if not found:
                raise
            raise type(e)(
                f"{e.message} (the values in force from {day})", e.file, key, entry_line(locator, found, day) or e.line
            ) from None
    return Loaded(out[0], series, first, changes, tuple(out))


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def tokens(key: str) -> list[str | int]:
    return [int(i) if i else n for n, i in _TOKEN.findall(key)]


def _set(doc: Any, key: str, value: Any) -> None:
    toks = tokens(key)
    node = doc
    for t in toks[:-1]:
        node = node[t]
    node[toks[-1]] = value


def related(series: dict[str, Series], key: str) -> list[Series]:
    """The series of ``key`` itself, of a key above it (``pool`` for ``pool.retired``) or below it
    (``bands[1].pool`` for ``bands[1]``)."""
    out = []
    for k, s in series.items():
        if (
            k == key
            or key.startswith(k + ".")
            or key.startswith(k + "[")
            or k.startswith(key + ".")
            or k.startswith(key + "[")
        ):
            out.append(s)
    return out


def entry_line(locator, found: list[Series], day: dt.date) -> int | None:
    """The line of the entry in force on ``day`` of the first dated series in ``found`` (for errors)."""
    for s in found:
        e = s.at(day)
        if e is not None and e.start is not None:
            return locator._line_of(f"{s.key}.values.{e.start.isoformat()}")
    return None


def in_force(series: dict[str, Series], key: str, day: dt.date) -> list[dict]:
    """For ``explain``: each value behind ``key`` on ``day``, with its effective date and reference."""
    out = []
    for s in related(series, key):
        e = s.at(day)
        if e is not None:
            out.append({"key": s.key, "from": e.start.isoformat() if e.start else None, "reference": e.reference})
    return out
