"""The audit rules file: which rules run and their thresholds, in engine units.

The default, ``audit-rules.toml`` beside this module, cites the seed behind
each rule and marks every threshold the seeds do not give as an ASSUMPTION;
``--rules FILE`` replaces it. Every key is required and checked: a missing or
unknown key, or a value out of range, is a
:class:`~adjudicate.reconcile.rules.RulesError` naming the file, the key and
its line (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import dated
from ..reconcile.rules import RulesError
from ..schema import ITEM_KINDS, SETTINGS
from ..tomlfile import TableReader, read_toml

DEFAULT_RULES = Path(__file__).with_name("audit-rules.toml")

#: Rule names, in the order of their codes in the compiled pass (``_audit.pyx``).
RULES = (
    "readmission",
    "overlapping_stay",
    "duplicate_billing",
    "bed_blocking",
    "large_prescription",
    "pharmacy_non_drug",
    "pharmacy_frequency",
    "outpatient_to_inpatient",
)
#: Rules that need the catalogue's optional ``item_kind`` column.
NEEDS_KIND = ("bed_blocking", "pharmacy_non_drug")
SEVERITIES = ("high", "medium", "low")
#: Indicators with an absolute standard allowed in ``[indicators.standards]``, and their unit.
STANDARDS = {
    "inpatient_total_per_admission": "amount",
    "outpatient_total_per_visit": "amount",
    "drug_share": "ratio",
    "self_pay_share": "ratio",
    "admissions_per_100_visits": "number",
    "average_length_of_stay": "number",
    "readmission_rate": "ratio",
}

_KEYS = {
    "readmission": {"window_days", "same_diagnosis"},
    "overlapping_stay": {"inside_settings"},
    "duplicate_billing": set(),
    "bed_blocking": {"min_days", "min_facility_share"},
    "large_prescription": {"settings", "max_claim_amount", "max_line_quantity"},
    "pharmacy_non_drug": {"kinds"},
    "pharmacy_frequency": {"window_days", "max_purchases"},
    "outpatient_to_inpatient": {"window_days", "settings"},
}


@dataclass(frozen=True)
class Rule:
    name: str
    enabled: bool
    severity: str
    params: dict[str, Any]


@dataclass(frozen=True)
class AuditRules:
    name: str
    version: str
    title: str
    source: str
    path: Path
    rules: dict[str, Rule]
    peer_factor_bp: int
    min_peers: int
    min_claims: int
    #: indicator → standard (fen for amounts, bp for ratios, the number × 10 000 otherwise)
    standards: dict[str, int] = field(default_factory=dict)
    #: dotted key → reference, for the values written { value = …, reference = "…" }
    references: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "file": str(self.path)}


#: Keys whose value may carry a reference ({ value = …, reference = "…" }, adjudicate.dated): the numbers.
CITABLE = re.compile(
    r"^(?:[a-z_]+\.(?:window_days|min_days|min_facility_share|max_claim_amount|max_line_quantity"
    r"|max_purchases)|indicators\.(?:peer_factor|min_peers|min_claims|standards\.[a-z_0-9]+))$"
)


def load_audit_rules(path: str | Path | None = None) -> AuditRules:
    """Read and check an audit rules file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_RULES
    doc, text = read_toml(path, RulesError, "rules", parse_float=Decimal)
    reader = _Reader(path, text)
    series = dated.find(doc, reader.error, lambda k: bool(CITABLE.match(k)), "audit rules")
    for key, s in series.items():
        if s.dated:
            raise reader.error(
                key,
                "audit thresholds take one value for the whole run: cite it with "
                '{ value = …, reference = "…" }; dated values are not supported here',
            )
    rules = reader.read(dated.resolve(doc, series, None))
    return replace(rules, references={k: s.entries[0].reference for k, s in series.items() if s.entries[0].reference})


class _Reader(TableReader):
    def error(self, key: str, message: str) -> RulesError:
        return RulesError(message, self.path, key, self._line_of(key))

    def flag(self, t: dict, key: str, full: str) -> bool:
        v = self.require(t, key, full)
        if not isinstance(v, bool):
            raise self.error(full, f"must be true or false, got {v!r}")
        return v

    def whole(self, t: dict, key: str, full: str, lo: int = 0, hi: int = 100_000) -> int:
        v = self.require(t, key, full)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.error(full, f"must be a whole number {lo}..{hi}, got {v!r}")
        return v

    def scaled(self, v: Any, full: str, scale: int, what: str, hi: Decimal) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
            raise self.error(full, f"must be {what}, got {v!r}")
        x = Decimal(v) * scale
        if x != x.to_integral_value():
            raise self.error(full, f"{v} is finer than 1/{scale}")
        if not 0 <= Decimal(v) <= hi:
            raise self.error(full, f"{v} is outside 0..{hi}")
        return int(x)

    def settings(self, t: dict, key: str, full: str) -> tuple[int, ...]:
        v = self.require(t, key, full)
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.error(full, f"must be a list of settings ({', '.join(SETTINGS)})")
        bad = [s for s in v if s not in SETTINGS]
        if bad:
            raise self.error(full, f"unknown setting {bad[0]!r}; settings are {', '.join(SETTINGS)}")
        return tuple(sorted({SETTINGS.index(s) for s in v}))

    def kinds(self, t: dict, key: str, full: str) -> tuple[int, ...]:
        v = self.require(t, key, full)
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.error(full, f"must be a list of item kinds ({', '.join(ITEM_KINDS)})")
        bad = [s for s in v if s not in ITEM_KINDS]
        if bad:
            raise self.error(full, f"unknown item kind {bad[0]!r}; kinds are {', '.join(ITEM_KINDS)}")
        return tuple(sorted({ITEM_KINDS.index(s) for s in v}))

    def rule(self, doc: dict, name: str) -> Rule:
        t = self.table(doc, name)
        self.only(t, name, {"enabled", "severity"} | _KEYS[name])
        severity = self.text(t, "severity", f"{name}.severity")
        if severity not in SEVERITIES:
            raise self.error(f"{name}.severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        p: dict[str, Any] = {}
        for key in sorted(_KEYS[name]):
            full = f"{name}.{key}"
            if key in ("window_days", "min_days", "max_purchases"):
                p[key] = self.whole(t, key, full, 0, 3660)
            elif key == "max_line_quantity":
                p[key] = self.whole(t, key, full, 0, 10**9)
            elif key == "same_diagnosis":
                p[key] = self.flag(t, key, full)
            elif key == "kinds":
                p[key] = self.kinds(t, key, full)
            elif key in ("settings", "inside_settings"):
                p[key] = self.settings(t, key, full)
            elif key == "min_facility_share":
                p[key] = self.scaled(self.require(t, key, full), full, 10_000, "a fraction (0.80 = 80 %)", Decimal(1))
            elif key == "max_claim_amount":
                p[key] = self.scaled(self.require(t, key, full), full, 100, "an amount in yuan", Decimal(10**12))
        return Rule(name, self.flag(t, "enabled", f"{name}.enabled"), severity, p)

    def read(self, doc: dict) -> AuditRules:
        self.only(doc, "", {"rules", "indicators", *RULES})
        head = self.table(doc, "rules")
        self.only(head, "rules", {"name", "version", "title", "source", "notes"})
        rules = {name: self.rule(doc, name) for name in RULES}
        ind = self.table(doc, "indicators")
        self.only(ind, "indicators", {"peer_factor", "min_peers", "min_claims", "standards"})
        std_t = self.table(ind, "standards", "indicators.standards")
        self.only(std_t, "indicators.standards", set(STANDARDS))
        standards = {}
        for k, unit in STANDARDS.items():
            if k in std_t:
                full = f"indicators.standards.{k}"
                if unit == "amount":
                    standards[k] = self.scaled(std_t[k], full, 100, "an amount in yuan", Decimal(10**12))
                elif unit == "ratio":
                    standards[k] = self.scaled(std_t[k], full, 10_000, "a fraction (0.50 = 50 %)", Decimal(1))
                else:
                    standards[k] = self.scaled(std_t[k], full, 10_000, "a number", Decimal(10**9))
        factor = self.scaled(
            self.require(ind, "peer_factor", "indicators.peer_factor"),
            "indicators.peer_factor",
            10_000,
            "a factor (1.5 = 50 % above the median)",
            Decimal(1000),
        )
        if factor < 10_000:
            raise self.error("indicators.peer_factor", "must be at least 1 (a factor above the peer median)")
        return AuditRules(
            name=self.text(head, "name", "rules.name"),
            version=self.text(head, "version", "rules.version"),
            title=self.text(head, "title", "rules.title"),
            source=self.text(head, "source", "rules.source"),
            path=self.path,
            rules=rules,
            peer_factor_bp=factor,
            min_peers=self.whole(ind, "min_peers", "indicators.min_peers", 1, 10**6),
            min_claims=self.whole(ind, "min_claims", "indicators.min_claims", 0, 10**9),
            standards=standards,
        )
