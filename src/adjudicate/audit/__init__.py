"""Audit (稽核): flag the claims worth an auditor's look, and score the providers.

``run_audit`` takes an adjudicated run (``engine.adjudicate``) and its inputs,
runs every rule of the rules file in one compiled pass over the claims in
settlement order (``flags.py``, ``_audit.pyx``) and computes the provider
indicators (``indicators.py``). ``write_audit`` writes ``flags.parquet``,
``indicators.parquet`` and the audit part of ``summary.json`` into a folder
that the caller has opened with ``outputs.atomic_dir``.

The rules and thresholds are data: ``audit-rules.toml`` beside this module
(see ``AUDIT-RULES.md``), replaceable with ``--rules FILE``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute in report_tables)

from ..engine import Inputs, Result, default_threads
from .flags import flag, flags_table, line_facts
from .indicators import provider_indicators
from .rules import NEEDS_KIND, RULES, AuditRules, load_audit_rules

__all__ = ["Audit", "run_audit", "write_audit", "load_audit_rules", "AuditRules", "RULES"]


@dataclass
class Audit:
    rules: AuditRules
    flags: pa.Table
    indicators: pa.Table
    skipped: dict[str, str]  # rule → why it did not run
    timings: dict[str, float] = field(default_factory=dict)

    def report_tables(self, top: int = 20) -> dict[str, pa.Table]:
        """What a report shows of the audit (the hook for report.html): the flags, high
        severity first, at most ``top`` per rule, and the provider indicators that are outliers."""
        parts = []
        for sev in ("high", "medium", "low"):
            for name in RULES:
                if self.rules.rules[name].severity == sev:
                    f = self.flags.filter(pa.compute.equal(self.flags["rule"], name))
                    parts.append(f.slice(0, top))
        flags = pa.concat_tables(parts) if parts else self.flags.slice(0, 0)
        outliers = self.indicators.filter(self.indicators["outlier"]) if self.indicators.num_rows else self.indicators
        return {"flags": flags, "outliers": outliers}

    def summary(self) -> dict:
        rule = self.flags.column("rule").to_numpy(zero_copy_only=False) if self.flags.num_rows else np.zeros(0, str)
        claims = self.flags.column("claim_id").to_numpy(zero_copy_only=False) if self.flags.num_rows else rule
        counts = {}
        for name in RULES:
            hit = rule == name
            counts[name] = {"flags": int(hit.sum()), "claims": int(len(np.unique(claims[hit])))}
        outliers = self.indicators.filter(self.indicators.column("outlier")) if self.indicators.num_rows else None
        return {
            "rules": self.rules.describe(),
            "flags": int(self.flags.num_rows),
            "flagged_claims": int(len(np.unique(claims))),
            "by_rule": counts,
            "skipped_rules": self.skipped,
            "indicator_rows": int(self.indicators.num_rows),
            "outliers": int(outliers.num_rows) if outliers is not None else 0,
            "timings_seconds": {k: round(v, 4) for k, v in self.timings.items()},
        }


def run_audit(r: Result, inputs: Inputs, rules: AuditRules | None = None, threads: int | None = None) -> Audit:
    """Flags and provider indicators of an adjudicated run."""
    rules = rules or load_audit_rules()
    threads = threads or default_threads()
    t0 = time.perf_counter()
    facts = line_facts(r.enc, inputs)
    raw = flag(r, inputs, rules, facts, threads)
    t1 = time.perf_counter()
    indicators = provider_indicators(r, inputs, facts.kind, facts.kind_known, raw, rules)
    flags = flags_table(r, rules, raw)
    t2 = time.perf_counter()
    skipped = {n: "disabled in the rules file" for n in RULES if not rules.rules[n].enabled}
    if not facts.kind_known:
        for n in NEEDS_KIND:
            skipped.setdefault(n, "the catalogue has no item_kind column")
    return Audit(rules, flags, indicators, skipped, {"audit_flags": t1 - t0, "audit_tables": t2 - t1})


def write_audit(a: Audit, folder: Path) -> dict:
    """Write flags.parquet and indicators.parquet into ``folder``; return the summary part."""
    from ..outputs import write_parquet

    t0 = time.perf_counter()
    write_parquet(a.flags, Path(folder) / "flags.parquet")
    write_parquet(a.indicators, Path(folder) / "indicators.parquet")
    a.timings["audit_write"] = time.perf_counter() - t0
    return a.summary()
