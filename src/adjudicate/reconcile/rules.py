"""The settlement-rules file: the scheme numbers of year-end reconciliation.

The corridor of provider quota settlement (schemes.md §7) differs by scheme,
so it lives in a small TOML file, never in code. (The personal account credit
of schemes.md §9 is the policy's ``[account.credit]``: settlement needs it,
as the account carries over the years, so it has one home there.) The
default, ``settlement-rules.toml`` beside this module, carries the seeds'
numbers with their citations; ``--rules FILE`` replaces it.
Every key is required and checked: a missing or unknown key, or a value out of
range, is an :class:`~adjudicate.inputs.InputError` naming the file, the key
and its line (exit 2).

Every number may be cited or dated as in a policy file (:mod:`adjudicate.dated`).
A benefit year's corridor (and its advances) follows the rules in force on
31 December of that year, when it is settled.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import dated
from ..errors import InputError
from ..tomlfile import TableReader, read_toml

#: Keys whose value may be dated or cited: every rate.
DATABLE = re.compile(r"^corridor\.[a-z_]+$")


DEFAULT_RULES = Path(__file__).with_name("settlement-rules.toml")


@dataclass(frozen=True)
class Rules:
    """Reconciliation rules in engine units: ratios in basis points, amounts in fen."""

    name: str
    version: str
    title: str
    source: str
    path: Path
    advance_bp: int
    lower_bp: int
    reward_bp: int
    upper_bp: int
    excess_share_bp: int
    ceiling_bp: int
    #: Dated rules: the first day every value is defined, the later change dates and one
    #: resolved Rules per period (empty when nothing is dated).
    valid_from: dt.date | None = None
    changes: tuple[dt.date, ...] = ()
    periods: tuple[Rules, ...] = ()
    series: dict = field(default_factory=dict)

    def with_reward(self, reward_bp: int | None) -> Rules:
        if reward_bp is None:
            return self
        return replace(self, reward_bp=reward_bp, periods=tuple(replace(p, reward_bp=reward_bp) for p in self.periods))

    def at(self, day: dt.date) -> Rules:
        """The rules in force on ``day``."""
        if not self.periods:
            return self
        if self.valid_from is not None and day < self.valid_from:
            late = next(s for s in self.series.values() if s.dated and dated.entry_start(s.entries[0]) > day)
            raise RulesError(
                f"reconciling needs the rules in force on {day}, before this dated value's first "
                f"date {dated.entry_start(late.entries[0])}: give the value in force then too",
                self.path,
                late.key,
            )
        return self.periods[bisect.bisect_right(self.changes, day)]

    def for_settlement(self, year: int) -> Rules:
        """The corridor of benefit year ``year``: the rules in force on its 31 December."""
        return self.at(dt.date(year, 12, 31))

    def describe(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "version": self.version, "file": str(self.path)}
        if self.periods and self.valid_from is not None:
            out["in_force_from"] = [d.isoformat() for d in (self.valid_from, *self.changes)]
        return out


class RulesError(InputError):
    """A malformed rules file: names the file, the key and its line."""

    def __init__(self, message: str, file: Path, key: str | None = None, line: int | None = None):
        where = [f"rules file {file}"]
        if line:
            where.append(f"line {line}")
        if key:
            where.append(f"key '{key}'")
        Exception.__init__(self, f"{', '.join(where)}: {message}")
        self.file, self.column, self.row, self.key, self.line = file, None, None, key, line
        self.message = message


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and check a rules file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_RULES
    doc, text = read_toml(path, RulesError, "rules", parse_float=Decimal)
    reader = _Reader(path, text)
    got = dated.load(doc, reader, reader.read, lambda k: bool(DATABLE.match(k)), "rules")
    return replace(got.first, valid_from=got.valid_from, changes=got.changes, periods=got.periods, series=got.series)


class _Reader(TableReader):
    def error(self, key: str, message: str) -> RulesError:
        return RulesError(message, self.path, key, self._line_of(key))

    def rate(self, t: dict, key: str, full: str, hi: int = 10_000) -> int:
        v = self.require(t, key, full)
        if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
            raise self.error(full, f"must be a ratio as a fraction (0.90 = 90 %), got {v!r}")
        exact = Decimal(v) * 10_000
        if exact != exact.to_integral_value():
            raise self.error(full, f"{v} is not a whole number of basis points (0.0001)")
        bp = int(exact)
        if not 0 <= bp <= hi:
            raise self.error(full, f"{v} is outside 0..{Decimal(hi) / 10_000}")
        return bp

    def read(self, doc: dict) -> Rules:
        if "account_credit" in doc:
            raise self.error(
                "account_credit",
                "the account credit is now the policy's [account.credit] table "
                "(settlement carries the account over the years with it, contract §3); "
                "move it there and give the policy with --policy",
            )
        self.only(doc, "", {"rules", "corridor"})
        head = self.table(doc, "rules")
        self.only(head, "rules", {"name", "version", "title", "source", "notes"})
        c = self.table(doc, "corridor")
        self.only(c, "corridor", {"advance_rate", "lower", "reward_rate", "upper", "excess_share", "ceiling"})
        lower = self.rate(c, "lower", "corridor.lower", hi=100_000)
        upper = self.rate(c, "upper", "corridor.upper", hi=100_000)
        ceiling = self.rate(c, "ceiling", "corridor.ceiling", hi=100_000)
        if not lower <= 10_000 <= upper:
            raise self.error("corridor.upper", "the corridor must hold the quota itself: lower ≤ 1 ≤ upper")
        if ceiling < upper:
            raise self.error("corridor.ceiling", "must not be below corridor.upper")
        return Rules(
            name=self.text(head, "name", "rules.name"),
            version=self.text(head, "version", "rules.version"),
            title=self.text(head, "title", "rules.title"),
            source=self.text(head, "source", "rules.source"),
            path=self.path,
            advance_bp=self.rate(c, "advance_rate", "corridor.advance_rate"),
            lower_bp=lower,
            reward_bp=self.rate(c, "reward_rate", "corridor.reward_rate"),
            upper_bp=upper,
            excess_share_bp=self.rate(c, "excess_share", "corridor.excess_share"),
            ceiling_bp=ceiling,
        )
