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
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine import Inputs, Result, default_threads
from .flags import flag, flags_table, line_facts
from .indicators import add_sums, indicator_sums, indicators_table, provider_indicators
from .rules import NEEDS_KIND, RULES, AuditRules, load_audit_rules

if TYPE_CHECKING:
    import pyarrow.parquet as pq

__all__ = ["Audit", "StreamingAudit", "run_audit", "write_audit", "load_audit_rules", "AuditRules", "RULES"]


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
                    f = self.flags.filter(pc.equal(self.flags["rule"], name))
                    parts.append(f.slice(0, top))
        flags = pa.concat_tables(parts) if parts else self.flags.slice(0, 0)
        outliers = self.indicators.filter(self.indicators["outlier"]) if self.indicators.num_rows else self.indicators
        return {"flags": flags, "outliers": outliers}

    def summary(self) -> dict:
        return _summary(self.rules, _rule_counts(self.flags), self.skipped, self.indicators, self.timings)


def _rule_counts(flags: pa.Table) -> dict[str, dict[str, int]]:
    """Flags and distinct flagged claims per rule, and the distinct flagged claims overall (key '')."""
    rule = flags.column("rule").to_numpy(zero_copy_only=False) if flags.num_rows else np.zeros(0, str)
    claims = flags.column("claim_id").to_numpy(zero_copy_only=False) if flags.num_rows else rule
    counts = {
        name: {"flags": int((rule == name).sum()), "claims": int(len(np.unique(claims[rule == name])))}
        for name in RULES
    }
    counts[""] = {"flags": int(flags.num_rows), "claims": int(len(np.unique(claims)))}
    return counts


def _summary(
    rules: AuditRules, counts: dict, skipped: dict[str, str], indicators: pa.Table, timings: dict[str, float]
) -> dict:
    outliers = int(pc.sum(indicators.column("outlier")).as_py() or 0) if indicators.num_rows else 0
    return {
        "rules": rules.describe(),
        "flags": counts[""]["flags"],
        "flagged_claims": counts[""]["claims"],
        "by_rule": {name: counts[name] for name in RULES},
        "skipped_rules": skipped,
        "indicator_rows": int(indicators.num_rows),
        "outliers": outliers,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
    }


def _skipped(rules: AuditRules, kind_known: bool) -> dict[str, str]:
    skipped = {n: "disabled in the rules file" for n in RULES if not rules.rules[n].enabled}
    if not kind_known:
        for n in NEEDS_KIND:
            skipped.setdefault(n, "the catalogue has no item_kind column")
    return skipped


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
    return Audit(
        rules, flags, indicators, _skipped(rules, facts.kind_known), {"audit_flags": t1 - t0, "audit_tables": t2 - t1}
    )


def write_audit(a: Audit, folder: Path) -> dict:
    """Write flags.parquet and indicators.parquet into ``folder``; return the summary part."""
    from ..outputs import write_parquet

    t0 = time.perf_counter()
    write_parquet(a.flags, Path(folder) / "flags.parquet")
    write_parquet(a.indicators, Path(folder) / "indicators.parquet")
    a.timings["audit_write"] = time.perf_counter() - t0
    return a.summary()


class StreamingAudit:
    """The audit of a streaming run (``stream.run_streaming``), one member range at a time.

    Members are independent and every rule looks only inside one member's
    claims, so each range's flags are final and are appended in settlement
    order; the indicator sums of the ranges add up, and the indicators are
    ranked once at the end. The outputs are the same as an in-memory audit.
    """

    def __init__(self, rules: AuditRules, threads: int | None = None):
        self.rules, self.threads = rules, threads or default_threads()
        self.writer: pq.ParquetWriter | None = None
        self.folder: Path | None = None
        self.sums: list = []
        self.counts = {name: {"flags": 0, "claims": 0} for name in (*RULES, "")}
        self.kind_known = False
        self.inputs: Inputs | None = None
        self.timings: dict[str, float] = {}

    def start(self, folder: Path) -> None:
        """Begin (or begin again: a streaming run may settle twice) writing into ``folder``."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.folder = Path(folder)
        (self.folder / "flags.parquet").unlink(missing_ok=True)
        self.sums = []
        self.counts = {name: {"flags": 0, "claims": 0} for name in (*RULES, "")}

    def add(self, r: Result, inputs: Inputs) -> None:
        from ..outputs import parquet_options

        assert self.folder is not None, "start() before add()"
        t0 = time.perf_counter()
        facts = line_facts(r.enc, inputs)
        raw = flag(r, inputs, self.rules, facts, self.threads)
        self.sums.append(indicator_sums(r, inputs, facts.kind, raw))
        flags = flags_table(r, self.rules, raw)
        if self.writer is None:
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.folder / "flags.parquet", flags.schema, **parquet_options(flags.schema))
        self.writer.write_table(flags.cast(self.writer.schema))
        for name, c in _rule_counts(flags).items():  # a member's claims are in one range only
            self.counts[name]["flags"] += c["flags"]
            self.counts[name]["claims"] += c["claims"]
        self.kind_known, self.inputs = facts.kind_known, inputs
        self.timings["audit"] = self.timings.get("audit", 0.0) + time.perf_counter() - t0

    def finish(self) -> dict:
        """Close flags.parquet, write indicators.parquet; return the audit summary."""
        from ..outputs import write_parquet

        if self.writer is not None:
            self.writer.close()
        assert self.inputs is not None and self.folder is not None, "start() and add() before finish()"
        indicators = indicators_table(*add_sums(self.sums), self.inputs, self.kind_known, self.rules)
        write_parquet(indicators, self.folder / "indicators.parquet")
        return _summary(self.rules, self.counts, _skipped(self.rules, self.kind_known), indicators, self.timings)
