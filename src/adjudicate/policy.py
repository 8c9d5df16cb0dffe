"""Policy files: load, validate, and compile for the kernel.

A policy is a TOML file a policy analyst can read (see ``policies/README.md``
for the annotated format). Loading turns it into the dataclasses below, with
every amount in fen and every ratio in basis points, and checks it whole: an
unknown key, a missing key or a value out of range is a :class:`PolicyError`
naming the file, the key and its line. ``compile_policy`` then flattens the
rules into the small int64 tables the kernel reads (``_core.pyx``).

The engine has no scheme names or numbers: everything scheme-specific lives in
the files under ``policies/``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import numpy as np

from . import dated
from .errors import PolicyError
from .layout import FLAG_DEDUCTIBLE, FLAG_SUBSIDISED, FSP_BIT, AccountMode, BlockField
from .schema import CATEGORIES, PROVIDER_KINDS, REFERRALS, SETTINGS
from .tomlfile import KeyLocator, read_toml

POLICY_DIR = Path(__file__).parent / "policies"
FUND_CLASSES = ("A", "B", "special", "supplementary")  # classes with eligible amounts
#: Account modes by policy name (``pays``), as the kernel's F_ACCOUNT values.
ACCOUNT_MODES = {m.name.lower(): int(m) for m in AccountMode}
#: Column names of the block table ``B``, in column order (``_core.pxd``, BlockField).
FIELDS = tuple(f.name.lower() for f in BlockField)
MAX_COUNTERS = MAX_LIMITS = 16
EPOCH = dt.date(1970, 1, 1)

#: Keys whose value may be dated or cited (policies/README.md, "Dated values"): the
#: numbers and rates. Structure (settings, classes, counters, limits named, the
#: number of bands, benefit conditions, account order) stays the same over time.
DATABLE = re.compile(
    r"^(?:"
    + "|".join(
        [
            r"parameters\.[^.\[\]]+",
            r"lines\.first_self_pay\.[^.\[\]]+",
            r"lines\.supplementary_catalogue",
            r"(?:benefit\.rules|blocks\.[^.]+\.benefit)\[\d+\]\.factor",
            r"limits\.[^.]+\.amount(?:\.times)?",  # an amount, or the multiple of { times, of }
            r"limits\.[^.]+\.by_enrolment_months\[\d+\]\.amount(?:\.times)?",
            r"blocks\.[^.]+\.deductible\.by_level\.[123](?:\[\d+\](?:\.times)?)?",
            r"blocks\.[^.]+\.scale\.bands\[\d+\]\.(?:from(?:\.times)?|supplementary|pool(?:\.in_service|\.retired)?)",
            r"blocks\.[^.]+\.direct\.[^.\[\]]+",
            r"blocks\.[^.]+\.supplementary\.rate",
            r"blocks\.[^.]+\.subsidy\.civil_servant(?:\.in_service|\.retired)?",
            r"account\.credit\.retired_amount",
            r"account\.credit\.by_age\[\d+\]\.rate",
        ]
    )
    + r")$"
)


# ---------------------------------------------------------------------------
# The validated policy
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BenefitRule:
    """First matching rule decides a claim's benefit and its factor (bp)."""

    designated: bool | None = None
    local: bool | None = None
    kinds: tuple[str, ...] | None = None
    levels: tuple[int, ...] | None = None
    referrals: tuple[str, ...] | None = None  # 'referred', 'emergency', 'none'
    factor_bp: int | None = None  # None: no benefit
    key: str = ""


@dataclass(frozen=True)
class Band:
    start_fen: int
    pool_bp: tuple[int, int]  # in_service, retired
    supp_bp: int
    deductible: bool
    subsidised: bool
    key: str


@dataclass(frozen=True)
class Limit:
    """An annual amount, possibly by continuous-enrolment months."""

    name: str
    months: tuple[int, ...]  # bracket starts, ascending, first 0
    amounts_fen: tuple[int, ...]
    key: str

    def amount(self, months: int) -> int:
        amt = self.amounts_fen[0]
        for start, a in zip(self.months, self.amounts_fen):
            if months >= start:
                amt = a
        return amt


@dataclass(frozen=True)
class Block:
    """The settlement rules of one or more settings."""

    name: str
    settings: tuple[str, ...]
    benefit: tuple[BenefitRule, ...]
    inpatient: bool
    deductible_fen: dict[int, tuple[int, ...]] | None  # level row 1..3 -> by ordinal
    scale_classes: tuple[str, ...]
    counter: str | None
    bands: tuple[Band, ...]
    direct_bp: dict[str, int]
    cap: str | None
    overflow: str  # 'member' | 'supplementary'
    tier_bp: int
    tier_classes: tuple[str, ...]
    supp_limit: str | None
    subsidy_bp: tuple[int, int] | None
    account: str
    account_items: tuple[tuple[str, ...], ...]  # class names and/or 'first_self_pay'

    def single_rate(self) -> tuple[int, int]:
        """The one pool rate of the scale (for cap overflow): in_service, retired."""
        rates = {b.pool_bp for b in self.bands if not b.deductible and b.pool_bp != (0, 0)}
        return rates.pop() if len(rates) == 1 else (0, 0)


@dataclass(frozen=True)
class AccountCredit:
    """The personal account's yearly credit (划入), schemes.md §9: ``[account.credit]``."""

    retired_fen: int  # a fixed amount a year for retired members
    age_from: tuple[int, ...]  # age bands (whole years on 1 January of the next year), from 0, rising
    age_rate_bp: tuple[int, ...]  # share of prior_year_wage in each band
    key: str = "account.credit"


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    title: str
    source: str
    path: Path
    class_ratio_bp: dict[str, int]
    supplementary_catalogue: bool
    parameters: dict[str, Decimal]
    limits: dict[str, Limit]
    blocks: tuple[Block, ...]
    block_of_setting: dict[str, Block] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    account_credit: AccountCredit | None = None  # None: the policy credits nothing
    #: Every cited or dated value of the file, by key (dated.Series).
    series: dict[str, dated.Series] = field(default_factory=dict)
    #: The first day every dated value is defined (None: nothing is dated, in force always) ...
    valid_from: dt.date | None = None
    #: ... the later change dates, and one resolved policy per period (period 0 first;
    #: empty when nothing changes: this policy is its own only period).
    changes: tuple[dt.date, ...] = ()
    periods: tuple[Policy, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def period_policies(self) -> tuple[Policy, ...]:
        """One resolved policy per period, period 0 first."""
        return self.periods or (self,)

    def at(self, day: dt.date) -> Policy:
        """The policy in force on ``day``."""
        self.check_dates(day, "asked for the policy in force on")
        return self.period_policies[bisect.bisect_right(self.changes, day)]

    def period_index(self, days: np.ndarray) -> np.ndarray:
        """The period of each date (days since 1970-01-01), vectorised; checks every date is covered."""
        days = np.asarray(days)
        if len(days) and self.valid_from is not None:
            self.check_dates(EPOCH + dt.timedelta(days=int(days.min())))
        if not self.changes:
            return np.zeros(len(days), np.int64)
        edges = np.array([(d - EPOCH).days for d in self.changes], np.int64)
        return np.searchsorted(edges, days, side="right").astype(np.int64)

    def check_dates(self, earliest: dt.date, what: str = "a claim is settled on") -> None:
        """A date before the first value of every dated key is an error naming the key."""
        if self.valid_from is None or earliest >= self.valid_from:
            return
        late = [s for s in self.series.values() if s.dated and dated.entry_start(s.entries[0]) > earliest]
        key = late[0].key if late else None
        first = dated.entry_start(late[0].entries[0]) if late else self.valid_from
        raise PolicyError(
            f"{what} {earliest}, before this dated value's first date {first}: the policy "
            "says nothing about earlier dates (give the value in force then too)",
            self.path,
            key,
            self.series_line(key),
        )

    def series_line(self, key: str | None) -> int | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return None
        return _Reader(self.path, text)._line_of(key) if key else None

    def in_force(self, key: str, day: dt.date) -> list[dict]:
        """Effective date and reference of each value behind ``key`` on ``day`` (for explain)."""
        return dated.in_force(self.series, key, day)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def shipped() -> dict[str, Path]:
    """Shipped policy names and their files."""
    return {p.stem: p for p in sorted(POLICY_DIR.glob("*.toml"))}


def resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    ships = shipped()
    if str(name_or_path) in ships:
        return ships[str(name_or_path)]
    raise PolicyError(
        f"no shipped policy called {str(name_or_path)!r} and no such .toml file; shipped: {', '.join(ships)}"
    )


def load(name_or_path: str | Path) -> Policy:
    """Load and validate a policy by shipped name or path."""
    path = resolve(name_or_path)
    doc, text = read_toml(path, PolicyError, "policy")
    return load_document(doc, path, text)


def load_document(doc: dict, path: Path, text: str = "") -> Policy:
    """Validate an already parsed policy document (e.g. a file with overrides
    applied); errors name ``path`` and, where ``text`` is given, the key's line.

    Dated values are resolved period by period (:mod:`dated`): each period's
    plain document is read and checked whole, so an error names the key and
    the date its value takes effect."""
    reader = _Reader(path, text)
    got = dated.load(doc, reader, reader.policy, lambda k: bool(DATABLE.match(k)))
    if not got.series:
        return got.first
    return replace(got.first, series=got.series, valid_from=got.valid_from, changes=got.changes, periods=got.periods)


#: Largest amount a policy may give, in fen (the engine's limit, money.MAX_FEN).
MAX_POLICY_FEN = 10**14


class _Reader(KeyLocator):
    """Reads the TOML document with errors that name the key and its line.

    Every value is checked for its type before it is used, so a malformed file
    gives a :class:`PolicyError`, never another exception. A missing key is
    reported at the line of the table that should hold it.
    """

    def error(self, key: str, message: str) -> PolicyError:
        return PolicyError(message, self.path, key, self._line_of(key))

    # -- typed getters ------------------------------------------------------
    def table(self, d: Any, key: str) -> dict:
        if not isinstance(d, dict):
            raise self.error(key, f"expected a table, got {self._show(d)}")
        return d

    def require(self, d: dict, k: str, key: str) -> Any:
        """``d[k]``; ``key`` is the full key or the key of the table holding it."""
        if k not in d:
            full = key if key == k or key.endswith(f".{k}") else f"{key}.{k}"
            raise self.error(full, f"missing required key {k!r}")
        return d[k]

    @staticmethod
    def _show(v: Any) -> str:
        s = repr(v)
        return s if len(s) <= 60 else s[:57] + "..."

    def string(self, v: Any, key: str) -> str:
        if not isinstance(v, str):
            raise self.error(key, f"expected a string, got {self._show(v)}")
        return v

    def strings(self, v: Any, key: str, what: str = "strings") -> tuple[str, ...]:
        """A string or a list of strings."""
        if isinstance(v, str):
            return (v,)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.error(key, f"expected a string or a list of {what}, got {self._show(v)}")
        return tuple(v)

    def boolean(self, v: Any, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.error(key, f"expected true or false, got {self._show(v)}")
        return v

    def decimal(self, v: Any, key: str) -> Decimal:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise self.error(key, f"expected a number, got {self._show(v)}")
        try:
            d = Decimal(str(v).strip()) if not isinstance(v, float) else Decimal(repr(v))
        except InvalidOperation:
            raise self.error(key, f"expected a number, got {self._show(v)}") from None
        if not d.is_finite():
            raise self.error(key, f"expected a finite number, got {self._show(v)}")
        return d

    def rate(self, v: Any, key: str) -> int:
        """A ratio 0..1 as whole basis points."""
        d = self.decimal(v, key)
        if not 0 <= d <= 1:
            raise self.error(key, f"ratio {self._show(v)} must be within 0..1 (a fraction: 0.15 means 15 %)")
        bp = d * 10000
        if bp != bp.to_integral_value():
            raise self.error(key, f"ratio {self._show(v)} is not a whole number of basis points (0.0001)")
        return int(bp)

    def _fen(self, d: Decimal, v: Any, key: str) -> int:
        """Yuan to whole fen, within the engine's limit."""
        if d < 0:
            raise self.error(key, f"amount {self._show(v)} must not be negative")
        if d > Decimal(MAX_POLICY_FEN).scaleb(-2):
            raise self.error(
                key,
                f"amount {self._show(v)} is too large: at most "
                f"{Decimal(MAX_POLICY_FEN).scaleb(-2):,f} yuan (contract §1)",
            )
        return int(d * 100)

    def amount(self, v: Any, key: str, params: dict[str, Decimal]) -> int:
        """An amount in yuan, or {times = x, of = "parameter"}; returned in fen."""
        if isinstance(v, dict):
            self.only(v, key, {"times", "of"})
            of = self.string(self.require(v, "of", key), f"{key}.of")
            if of not in params:
                raise self.error(f"{key}.of", f"unknown parameter {of!r}; defined: {', '.join(params) or 'none'}")
            times = self.decimal(self.require(v, "times", key), f"{key}.times")
            with localcontext() as ctx:
                ctx.prec = 100
                value = times * params[of]
                if abs(value) > Decimal(MAX_POLICY_FEN).scaleb(-2):
                    return self._fen(value, f"{times} x {of}", key)
                q = (value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP).scaleb(-2)
            return self._fen(q, f"{times} x {of}", key)
        d = self.decimal(v, key)
        if d * 100 != (d * 100).to_integral_value():
            raise self.error(key, f"amount {self._show(v)} is not a whole number of fen (0.01 yuan)")
        return self._fen(d, v, key)

    def classes(self, v: Any, key: str, allowed: tuple[str, ...] = FUND_CLASSES) -> tuple[str, ...]:
        v = self.strings(v, key, "catalogue classes")
        for x in v:
            if x not in allowed:
                raise self.error(key, f"unknown class {x!r}; expected one of {', '.join(allowed)}")
        return v

    def by_category(self, v: Any, key: str) -> tuple[int, int]:
        if isinstance(v, dict):
            self.only(v, key, set(CATEGORIES))
            in_service, retired = (self.rate(self.require(v, c, key), f"{key}.{c}") for c in CATEGORIES)
            return in_service, retired
        r = self.rate(v, key)
        return (r, r)

    def limit_name(self, v: Any, key: str, limits: dict) -> str:
        name = self.string(v, key)
        if name not in limits:
            raise self.error(key, f"unknown limit {name!r}; defined: {', '.join(limits) or 'none'}")
        return name

    # -- sections -------------------------------------------------------------
    def policy(self, doc: dict) -> Policy:
        self.only(doc, "", {"policy", "parameters", "lines", "benefit", "limits", "blocks", "account"})
        meta = self.table(self.require(doc, "policy", "policy"), "policy")
        self.only(meta, "policy", {"name", "version", "title", "source", "notes"})
        for k in ("name", "version", "title", "source"):
            self.string(self.require(meta, k, f"policy.{k}"), f"policy.{k}")
        notes = meta.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
            raise self.error("policy.notes", "expected a list of strings")
        params = {}
        for k, v in self.table(doc.get("parameters", {}), "parameters").items():
            params[k] = self.decimal(v, f"parameters.{k}")
        lines = self.table(self.require(doc, "lines", "lines"), "lines")
        self.only(lines, "lines", {"first_self_pay", "supplementary_catalogue"})
        fsp = self.table(self.require(lines, "first_self_pay", "lines.first_self_pay"), "lines.first_self_pay")
        self.only(fsp, "lines.first_self_pay", set(FUND_CLASSES))
        class_ratio = {
            c: self.rate(self.require(fsp, c, "lines.first_self_pay"), f"lines.first_self_pay.{c}")
            for c in FUND_CLASSES
        }
        sup_cat = self.boolean(
            self.require(lines, "supplementary_catalogue", "lines.supplementary_catalogue"),
            "lines.supplementary_catalogue",
        )
        bdoc = self.table(self.require(doc, "benefit", "benefit"), "benefit")
        self.only(bdoc, "benefit", {"rules"})
        benefit = self.rules(self.require(bdoc, "rules", "benefit"), "benefit.rules")
        limits = {name: self.limit(name, v, params) for name, v in self.table(doc.get("limits", {}), "limits").items()}
        if len(limits) > MAX_LIMITS:
            raise self.error("limits", f"at most {MAX_LIMITS} limits")
        blocks_doc = self.table(self.require(doc, "blocks", "blocks"), "blocks")
        blocks = tuple(self.block(n, v, benefit, limits, params) for n, v in blocks_doc.items())
        by_setting: dict[str, Block] = {}
        for b in blocks:
            for s in b.settings:
                if s in by_setting:
                    raise self.error(
                        f"blocks.{b.name}.settings", f"setting {s!r} is already settled by block {by_setting[s].name!r}"
                    )
                by_setting[s] = b
        missing = [s for s in SETTINGS if s not in by_setting]
        if missing:
            raise self.error("blocks", f"no block settles setting(s) {', '.join(missing)}")
        counters = {b.counter for b in blocks if b.counter}
        if len(counters) > MAX_COUNTERS:
            raise self.error("blocks", f"at most {MAX_COUNTERS} counters")
        credit = self.account_credit(doc, blocks, params)
        return Policy(
            name=meta["name"],
            version=meta["version"],
            title=meta["title"],
            source=meta["source"],
            path=self.path,
            class_ratio_bp=class_ratio,
            supplementary_catalogue=sup_cat,
            parameters=params,
            limits=limits,
            blocks=blocks,
            block_of_setting=by_setting,
            notes=tuple(notes),
            account_credit=credit,
        )

    def account_credit(self, doc: dict, blocks: tuple[Block, ...], params) -> AccountCredit | None:
        """``[account.credit]``: required when a block pays from the personal account (the
        balance carries over the years, contract §3), optional otherwise."""
        pays = [b.name for b in blocks if b.account != "none"]
        if "account" not in doc:
            if pays:
                raise self.error(
                    "account.credit",
                    f"missing: block {pays[0]!r} pays from the personal account, "
                    "so the policy must say what is credited to it each year (schemes.md §9)",
                )
            return None
        acc = self.table(doc["account"], "account")
        self.only(acc, "account", {"credit"})
        c = self.table(self.require(acc, "credit", "account"), "account.credit")
        self.only(c, "account.credit", {"retired_amount", "by_age"})
        retired = self.amount(
            self.require(c, "retired_amount", "account.credit"), "account.credit.retired_amount", params
        )
        bands = self.require(c, "by_age", "account.credit")
        if not isinstance(bands, list) or not bands:
            raise self.error("account.credit.by_age", "expected a non-empty list of { from_age = …, rate = … }")
        ages: list[int] = []
        rates: list[int] = []
        for i, b in enumerate(bands):
            key = f"account.credit.by_age[{i}]"
            b = self.table(b, key)
            self.only(b, key, {"from_age", "rate"})
            age = self.require(b, "from_age", key)
            if isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 200:
                raise self.error(f"{key}.from_age", f"expected a whole age in years 0..200, got {self._show(age)}")
            if (i == 0 and age != 0) or (i > 0 and age <= ages[-1]):
                raise self.error(f"{key}.from_age", "age bands start at 0 and rise strictly")
            ages.append(age)
            rates.append(self.rate(self.require(b, "rate", key), f"{key}.rate"))
        return AccountCredit(retired_fen=retired, age_from=tuple(ages), age_rate_bp=tuple(rates))

    def rules(self, v: Any, key: str) -> tuple[BenefitRule, ...]:
        if not isinstance(v, list) or not v:
            raise self.error(key, "expected a non-empty list of rules, e.g. [{ designated = true, factor = 1.0 }]")
        out = []
        for i, r in enumerate(v):
            k = f"{key}[{i}]"
            r = self.table(r, k)
            self.only(r, k, {"designated", "local", "kind", "level", "referral", "factor", "benefit"})
            for b in ("designated", "local"):
                if b in r:
                    self.boolean(r[b], f"{k}.{b}")
            kinds = r.get("kind")
            if kinds is not None:
                kinds = self.strings(kinds, f"{k}.kind", "provider kinds")
                for x in kinds:
                    if x not in PROVIDER_KINDS:
                        raise self.error(
                            f"{k}.kind", f"unknown provider kind {x!r}; expected one of " + ", ".join(PROVIDER_KINDS)
                        )
            levels = r.get("level")
            if levels is not None:
                levels = levels if isinstance(levels, list) else [levels]
                if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 127 for x in levels):
                    raise self.error(
                        f"{k}.level", f"expected a provider level 0..3 or a list of them, got {self._show(r['level'])}"
                    )
                levels = tuple(levels)
            refs = r.get("referral")
            if refs is not None:
                refs = self.strings(refs, f"{k}.referral", "referrals")
                for x in refs:
                    if x not in REFERRALS + ("none",):
                        raise self.error(f"{k}.referral", f"unknown referral {x!r}; expected referred, emergency, none")
            if not self.boolean(r.get("benefit", True), f"{k}.benefit"):
                if "factor" in r:
                    raise self.error(k, "a rule gives either benefit = false or a factor, not both")
                factor = None
            else:
                factor = self.rate(self.require(r, "factor", k), f"{k}.factor")
            out.append(
                BenefitRule(
                    designated=r.get("designated"),
                    local=r.get("local"),
                    kinds=kinds,
                    levels=levels,
                    referrals=refs,
                    factor_bp=factor,
                    key=k,
                )
            )
        return tuple(out)

    def limit(self, name: str, v: Any, params: dict[str, Decimal]) -> Limit:
        key = f"limits.{name}"
        v = self.table(v, key)
        self.only(v, key, {"amount", "by_enrolment_months"})
        if ("amount" in v) == ("by_enrolment_months" in v):
            raise self.error(key, "give either 'amount' or 'by_enrolment_months'")
        if "amount" in v:
            return Limit(
                name=name, months=(0,), amounts_fen=(self.amount(v["amount"], f"{key}.amount", params),), key=key
            )
        rows = v["by_enrolment_months"]
        if not isinstance(rows, list) or not rows:
            raise self.error(f"{key}.by_enrolment_months", "expected a list of { from = months, amount = … }")
        months: list[int] = []
        amounts: list[int] = []
        for i, row in enumerate(rows):
            k = f"{key}.by_enrolment_months[{i}]"
            row = self.table(row, k)
            self.only(row, k, {"from", "amount"})
            m = self.require(row, "from", k)
            if not isinstance(m, int) or isinstance(m, bool) or m < 0 or m > 10**6 or (months and m <= months[-1]):
                raise self.error(f"{k}.from", "month brackets must be whole numbers, ascending")
            months.append(m)
            amounts.append(self.amount(self.require(row, "amount", k), f"{k}.amount", params))
        if months[0] != 0:
            raise self.error(f"{key}.by_enrolment_months", "the first bracket must start at 0 months")
        return Limit(name=name, months=tuple(months), amounts_fen=tuple(amounts), key=key)

    def block(self, name: str, v: Any, default_rules, limits: dict[str, Limit], params) -> Block:
        """``[blocks.NAME]``: one table per part, read in the order a claim is settled."""
        key = f"blocks.{name}"
        v = self.table(v, key)
        self.only(
            v,
            key,
            {
                "settings",
                "benefit",
                "admission",
                "deductible",
                "scale",
                "direct",
                "cap",
                "supplementary",
                "subsidy",
                "account",
            },
        )
        # in the order of the file's parts, so the first error reported is the first in the table
        settings = self.block_settings(v, key)
        rules = self.rules(v["benefit"], f"{key}.benefit") if "benefit" in v else default_rules
        inpatient = self.boolean(v.get("admission", False), f"{key}.admission")
        deductible = self.deductible(v, key, params)
        scale_classes, counter, bands = self.scale(v, key, params)
        direct = self.direct(v, key, scale_classes)
        cap, overflow = self.cap(v, key, limits, direct)
        tier_bp, tier_classes, supp_limit = self.tier(v, key, limits)
        subsidy = self.subsidy(v, key)
        account, items = self.account(v, key, scale_classes, tuple(direct), tier_classes)
        block = Block(
            name=name,
            settings=settings,
            benefit=rules,
            inpatient=inpatient,
            deductible_fen=deductible,
            scale_classes=scale_classes,
            counter=counter,
            bands=bands,
            direct_bp=direct,
            cap=cap,
            overflow=overflow,
            tier_bp=tier_bp,
            tier_classes=tier_classes,
            supp_limit=supp_limit,
            subsidy_bp=subsidy,
            account=account,
            account_items=items,
        )
        if overflow == "supplementary" and block.single_rate() == (0, 0):
            raise self.error(
                f"{key}.cap.overflow",
                "overflow to the supplementary tier needs a scale "
                "with one pool rate (the cut is found by dividing by it)",
            )
        return block

    def block_settings(self, v: dict, key: str) -> tuple[str, ...]:
        settings = self.strings(self.require(v, "settings", key), f"{key}.settings", "settings")
        for s in settings:
            if s not in SETTINGS:
                raise self.error(f"{key}.settings", f"unknown setting {s!r}; expected {', '.join(SETTINGS)}")
        return settings

    def deductible(self, v: dict, key: str, params) -> dict[int, tuple[int, ...]] | None:
        """``deductible.by_level``: per level row 1..3, an amount or a list by admission ordinal (step 4)."""
        if "deductible" not in v:
            return None
        dk = f"{key}.deductible"
        dd = self.table(v["deductible"], dk)
        self.only(dd, dk, {"by_level"})
        table = self.table(self.require(dd, "by_level", dk), f"{dk}.by_level")
        self.only(table, f"{dk}.by_level", {"1", "2", "3"})
        deductible = {}
        for row in ("1", "2", "3"):
            vals = self.require(table, row, f"{dk}.by_level")
            vals = vals if isinstance(vals, list) else [vals]
            if not vals:
                raise self.error(
                    f"{dk}.by_level.{row}",
                    "expected an amount, or a list of amounts by admission ordinal (1st, 2nd, 3rd and later)",
                )
            deductible[int(row)] = tuple(self.amount(x, f"{dk}.by_level.{row}", params) for x in vals)
        if len({len(x) for x in deductible.values()}) != 1:
            raise self.error(f"{dk}.by_level", "every level row needs the same number of ordinals")
        return deductible

    def scale(self, v: dict, key: str, params) -> tuple[tuple[str, ...], str | None, tuple[Band, ...]]:
        """``scale``: its classes, annual counter and bands (steps 4 and 5)."""
        if "scale" not in v:
            return (), None, ()
        sk = f"{key}.scale"
        sc = self.table(v["scale"], sk)
        self.only(sc, sk, {"classes", "counter", "bands"})
        scale_classes = self.classes(self.require(sc, "classes", sk), f"{sk}.classes")
        counter = sc.get("counter")
        if counter is not None and not isinstance(counter, str):
            raise self.error(f"{sk}.counter", "expected the name of an annual counter")
        raw = self.require(sc, "bands", sk)
        if not isinstance(raw, list) or not raw:
            raise self.error(f"{sk}.bands", "expected a list of bands")
        bands: list[Band] = []
        for i, band in enumerate(raw):
            bands.append(self.band(band, f"{sk}.bands[{i}]", bands[-1] if bands else None, params))
        return scale_classes, counter, tuple(bands)

    def band(self, v: Any, bk: str, previous: Band | None, params) -> Band:
        band = self.table(v, bk)
        self.only(band, bk, {"from", "pool", "supplementary", "deductible", "subsidised"})
        start = self.amount(self.require(band, "from", bk), f"{bk}.from", params)
        if (previous is None and start != 0) or (previous is not None and start <= previous.start_fen):
            raise self.error(f"{bk}.from", "bands start at 0 and ascend")
        pool = self.by_category(band.get("pool", 0), f"{bk}.pool")
        supp = self.rate(band.get("supplementary", 0), f"{bk}.supplementary")
        ded = self.boolean(band.get("deductible", False), f"{bk}.deductible")
        sub = self.boolean(band.get("subsidised", False), f"{bk}.subsidised")
        if ded and (pool != (0, 0) or supp):
            raise self.error(bk, "a deductible band pays nothing from the funds")
        if max(pool) + supp > 10000:
            raise self.error(bk, "pool and supplementary together exceed 100 %")
        return Band(start_fen=start, pool_bp=pool, supp_bp=supp, deductible=ded, subsidised=sub, key=bk)

    def direct(self, v: dict, key: str, scale_classes: tuple[str, ...]) -> dict[str, int]:
        """``direct``: classes the fund pays at a rate, outside the scale (step 3)."""
        if "direct" not in v:
            return {}
        dk = f"{key}.direct"
        dd = self.table(v["direct"], dk)
        self.only(dd, dk, set(FUND_CLASSES))
        direct = {c: self.rate(x, f"{dk}.{c}") for c, x in dd.items()}
        overlap = set(direct) & set(scale_classes)
        if overlap:
            raise self.error(dk, f"class {sorted(overlap)[0]!r} is both paid directly and on the scale")
        return direct

    def cap(self, v: dict, key: str, limits: dict[str, Limit], direct: dict[str, int]) -> tuple[str | None, str]:
        """``cap``: the limit on fund_pool and where what it cuts goes (step 6)."""
        if "cap" not in v:
            return None, "member"
        ck = f"{key}.cap"
        cc = self.table(v["cap"], ck)
        self.only(cc, ck, {"limit", "overflow"})
        cap = self.limit_name(self.require(cc, "limit", ck), f"{ck}.limit", limits)
        overflow = cc.get("overflow", "member")
        if overflow not in ("member", "supplementary"):
            raise self.error(f"{ck}.overflow", f"expected 'member' or 'supplementary', got {self._show(overflow)}")
        if direct:
            raise self.error(ck, "a block with 'direct' payments cannot also have a cap")
        return cap, overflow

    def tier(self, v: dict, key: str, limits: dict[str, Limit]) -> tuple[int, tuple[str, ...], str | None]:
        """``supplementary``: the tier's rate, classes and annual limit (step 7)."""
        if "supplementary" not in v:
            return 0, (), None
        tk = f"{key}.supplementary"
        tt = self.table(v["supplementary"], tk)
        self.only(tt, tk, {"rate", "classes", "limit"})
        tier_bp = self.rate(tt.get("rate", 0), f"{tk}.rate")
        tier_classes = self.classes(tt.get("classes", []), f"{tk}.classes")
        supp_limit = None
        if tt.get("limit") is not None:
            supp_limit = self.limit_name(tt["limit"], f"{tk}.limit", limits)
        return tier_bp, tier_classes, supp_limit

    def subsidy(self, v: dict, key: str) -> tuple[int, int] | None:
        """``subsidy.civil_servant``: rate by category (step 8)."""
        if "subsidy" not in v:
            return None
        sk = f"{key}.subsidy"
        ss = self.table(v["subsidy"], sk)
        self.only(ss, sk, {"civil_servant"})
        return self.by_category(self.require(ss, "civil_servant", sk), f"{sk}.civil_servant")

    def account(
        self,
        v: dict,
        key: str,
        scale_classes: tuple[str, ...],
        direct_classes: tuple[str, ...],
        tier_classes: tuple[str, ...],
    ) -> tuple[str, tuple[tuple[str, ...], ...]]:
        """``account``: what the personal account pays, before the fund (step 2) or after it (step 9)."""
        if "account" not in v:
            return "none", ()
        ak = f"{key}.account"
        aa = self.table(v["account"], ak)
        self.only(aa, ak, {"pays", "order"})
        account = self.string(self.require(aa, "pays", ak), f"{ak}.pays")
        if account not in ACCOUNT_MODES:
            raise self.error(f"{ak}.pays", f"expected one of {', '.join(ACCOUNT_MODES)}, got {account!r}")
        if account != "before_fund":
            if "order" in aa:
                raise self.error(f"{ak}.order", "'order' goes with pays = \"before_fund\"")
            return account, ()
        order = self.require(aa, "order", ak)
        if not isinstance(order, list) or not order or not all(isinstance(x, str) for x in order):
            raise self.error(f"{ak}.order", 'expected a list like ["A+B", "first_self_pay"]')
        items = tuple(tuple(p.strip() for p in x.split("+")) for x in order)
        for it in items:
            for p in it:
                if p not in FUND_CLASSES + ("first_self_pay",):
                    raise self.error(
                        f"{ak}.order",
                        f"unknown item {p!r}; expected classes "
                        f"{', '.join(FUND_CLASSES)} or first_self_pay, joined by +",
                    )
        _check_account_order(self, f"{ak}.order", items, scale_classes, direct_classes, tier_classes)
        return account, items


def _check_account_order(reader: _Reader, key: str, items, scale_classes, direct_classes, tier_classes) -> None:
    """An account that pays before the fund must never pay what a fund also pays.

    Each class (and first_self_pay) appears in one item at most; an item with a
    scale class holds only scale classes (what it pays leaves the scale base);
    classes the fund pays directly or through the tier are not the account's.
    """
    seen: set[str] = set()
    for item in items:
        twice = seen & set(item) or ({p for p in item if item.count(p) > 1})
        if twice:
            raise reader.error(key, f"{sorted(twice)[0]!r} is paid twice by the account; each class once")
        seen |= set(item)
        on_scale = [p for p in item if p in scale_classes]
        if on_scale and len(on_scale) != len(item):
            raise reader.error(
                key,
                f"item {'+'.join(item)!r} mixes scale classes with others: the account and "
                "the fund would pay the same cost; split it into separate items",
            )
        funded = [p for p in item if p in direct_classes or p in tier_classes]
        if funded:
            raise reader.error(key, f"class {funded[0]!r} is also paid by the fund (direct or supplementary tier)")


# ---------------------------------------------------------------------------
# Compiling for the kernel
# ---------------------------------------------------------------------------


@dataclass
class Compiled:
    """Flat tables the kernel reads; see ``_core.settle_claims``.

    A dated policy has one version of each table per period, stacked period
    by period: block i of period k is row ``k * nblocks + i`` of ``B`` and of
    every per-block table, limit j of period k is row ``k * nlimits + j`` of
    the limit tables (``B``'s cap_row / supp_row), while ``B``'s cap and
    supp_limit stay j, the index of what was already paid this year, which a
    change of period never resets. An undated policy has one period.
    """

    block_of_setting: np.ndarray  # (periods, settings): row of B settling each setting
    B: np.ndarray
    band_from: np.ndarray
    band_pool: np.ndarray
    band_supp: np.ndarray
    band_flags: np.ndarray
    ded: np.ndarray
    acct_items: np.ndarray
    direct: np.ndarray
    lim_months: np.ndarray
    lim_amount: np.ndarray
    lim_n: np.ndarray
    class_ratio: np.ndarray  # (periods, 6): bp by line class code (A, B, special, supplementary, excluded, unknown)
    supplementary_catalogue: np.ndarray  # (periods,) bool

    @property
    def periods(self) -> int:
        return len(self.block_of_setting)


def class_mask(classes) -> int:
    return sum(1 << FUND_CLASSES.index(c) for c in set(classes) if c in FUND_CLASSES)


def _block_row(b: Block, counters: list[str], lim_names: list[str], period_row: int) -> dict[str, int]:
    """One row of the block table ``B``, by column name (``FIELDS``); ``period_row`` is
    the first row of the block's period in the limit tables."""
    sub_in, sub_ret = b.subsidy_bp or (0, 0)
    p_in, p_ret = b.single_rate()
    return {
        "nbands": len(b.bands),
        "counter": counters.index(b.counter) if b.counter else -1,
        "scale_mask": class_mask(b.scale_classes),
        "nord": len(next(iter(b.deductible_fen.values()))) if b.deductible_fen else 0,
        "cap": lim_names.index(b.cap) if b.cap else -1,
        "overflow": int(b.overflow == "supplementary"),
        "tier_rate": b.tier_bp,
        "tier_mask": class_mask(b.tier_classes),
        "supp_limit": lim_names.index(b.supp_limit) if b.supp_limit else -1,
        "sub_in": sub_in,
        "sub_ret": sub_ret,
        "account": ACCOUNT_MODES[b.account],
        "nacct": len(b.account_items),
        "p_in": p_in,
        "p_ret": p_ret,
        "inpatient": int(b.inpatient),
        "cap_row": period_row + lim_names.index(b.cap) if b.cap else -1,
        "supp_row": period_row + lim_names.index(b.supp_limit) if b.supp_limit else -1,
    }


def compile_policy(policy: Policy) -> Compiled:
    pols = policy.period_policies
    first = pols[0]
    nb, nper = len(first.blocks), len(pols)
    blocks = [b for p in pols for b in p.blocks]
    limits = [x for p in pols for x in p.limits.values()]
    maxb = max([len(b.bands) for b in blocks] + [1])
    maxo = max([len(next(iter(b.deductible_fen.values()))) for b in blocks if b.deductible_fen] + [1])
    maxa = max([len(b.account_items) for b in blocks] + [1])
    lim_names = list(first.limits)
    nl = len(lim_names)
    counters = sorted({b.counter for b in first.blocks if b.counter})
    maxk = max([len(x.months) for x in limits] + [1])
    B = np.zeros((nb * nper, len(FIELDS)), np.int64)
    band_from = np.zeros((nb * nper, maxb), np.int64)
    band_pool = np.zeros((nb * nper, maxb, 2), np.int64)
    band_supp = np.zeros((nb * nper, maxb), np.int64)
    band_flags = np.zeros((nb * nper, maxb), np.int64)
    ded = np.zeros((nb * nper, 3, maxo), np.int64)
    acct = np.zeros((nb * nper, maxa), np.int64)
    direct = np.zeros((nb * nper, len(FUND_CLASSES)), np.int64)
    for i, b in enumerate(blocks):
        k = i // nb  # the period
        row = _block_row(b, counters, lim_names, period_row=k * nl)
        B[i] = [row[f] for f in FIELDS]  # a column left out is a KeyError, not a silent 0
        for j, band in enumerate(b.bands):
            band_from[i, j] = band.start_fen
            band_pool[i, j] = band.pool_bp
            band_supp[i, j] = band.supp_bp
            band_flags[i, j] = FLAG_DEDUCTIBLE * band.deductible + FLAG_SUBSIDISED * band.subsidised
        if b.deductible_fen:
            for r, vals in b.deductible_fen.items():
                ded[i, r - 1, : len(vals)] = vals
        for j, item in enumerate(b.account_items):
            acct[i, j] = class_mask(item) | (FSP_BIT if "first_self_pay" in item else 0)
        for c, bp in b.direct_bp.items():
            direct[i, FUND_CLASSES.index(c)] = bp
    lim_months = np.zeros((max(nl * nper, 1), maxk), np.int64)
    lim_amount = np.zeros_like(lim_months)
    lim_n = np.zeros(max(nl * nper, 1), np.int64)
    for j, lim in enumerate(limits):
        lim_n[j] = len(lim.months)
        lim_months[j, : len(lim.months)] = lim.months
        lim_amount[j, : len(lim.months)] = lim.amounts_fen
    block_of_setting = np.array(
        [[k * nb + p.blocks.index(p.block_of_setting[s]) for s in SETTINGS] for k, p in enumerate(pols)], np.int64
    )
    class_ratio = np.array([[p.class_ratio_bp[c] for c in FUND_CLASSES] + [0, 0] for p in pols], np.int64)
    supp_cat = np.array([p.supplementary_catalogue for p in pols], bool)
    return Compiled(
        block_of_setting=block_of_setting,
        B=B,
        band_from=band_from,
        band_pool=band_pool,
        band_supp=band_supp,
        band_flags=band_flags,
        ded=ded,
        acct_items=acct,
        direct=direct,
        lim_months=lim_months,
        lim_amount=lim_amount,
        lim_n=lim_n,
        class_ratio=class_ratio,
        supplementary_catalogue=supp_cat,
    )


def rule_matches(rule: BenefitRule, designated: bool, local: bool, kind: str, level: int, referral: str | None) -> bool:
    """Scalar form of a benefit rule, for the reference implementation and explain."""
    return (
        (rule.designated is None or rule.designated == designated)
        and (rule.local is None or rule.local == local)
        and (rule.kinds is None or kind in rule.kinds)
        and (rule.levels is None or level in rule.levels)
        and (rule.referrals is None or (referral or "none") in rule.referrals)
    )
