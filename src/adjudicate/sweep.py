"""``adjudicate sweep``: K policy variants on one decode, one row per variant.

The inputs are read and encoded once (or a prepared dataset is opened); each
variant is then only the kernel passes (benefit rules, line split, member
settlement), never a decode. Variants are a grid of ``--vary KEY=v1,v2,…``
values overlaid on the base policy (``compare.policy_with_overrides``: the
same keys, the same validation as ``compare --set``), and/or further policy
files. The base policy is variant 0, the baseline of every Δ.

Outputs (written atomically):

- ``variants.parquet``: one row per variant: ``variant, label, policy,
  settled_claims, rejected_claims``, every amount column's total and its Δ
  against the baseline (decimal yuan), ``members, members_better_off,
  members_worse_off, members_unchanged`` (out of pocket: cash + personal
  account, over all years, as in compare) and the nearest-rank percentiles of
  the members' change out of pocket;
- ``summary.json``: the base policy, each variant's overrides, input digests,
  the rows again (as text), timings;
- ``member_changes.parquet`` (with ``deltas_for``): per member and benefit year, the
  chosen variant against the baseline, as compare's member_changes.parquet.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from . import policy as P
from .compare import (
    PERCENTILES,
    _policy_info,
    aligned_amounts,
    compare_part,
    member_deltas,
    money,
    parse_override,
    policy_with_overrides,
    reused_outputs,
    summarise,
    who_is_better_off,
)
from .engine import LINE_OUTPUTS
from .money import OUTPUT_TYPE
from .schema import AMOUNTS

__all__ = ["Variant", "split_values", "variants", "run_sweep"]


class Variant:
    """One policy of a sweep: its label, the base it overlays and the overrides."""

    def __init__(self, label: str, policy: P.Policy, overrides: Sequence[str] = ()):
        self.label, self.policy, self.overrides = label, policy, list(overrides)


def split_values(text: str) -> tuple[str, list[str]]:
    """``KEY=v1,v2,…`` → (key, [v1, v2, …]); commas inside [], {} or quotes do not split."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip() or not raw.strip():
        raise P.PolicyError(f"--vary {text!r}: expected KEY=v1,v2,…, e.g. limits.fund_pool_annual.amount=40000,50000")
    values, depth, quote, cur = [], 0, "", ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(cur.strip())
            cur = ""
            continue
        cur += ch
    values.append(cur.strip())
    if any(not v for v in values):
        raise P.PolicyError(f"--vary {text!r}: an empty value between commas")
    return key.strip(), values


def variants(
    base: str, vary: Sequence[str], others: Sequence[str] = (), overrides: Sequence[str] = ()
) -> list[Variant]:
    """Variant 0 (the baseline: ``base`` + ``overrides``), then the grid of ``vary`` on it, then ``others``.

    Every variant is loaded and validated before anything runs; an error names
    the variant's overrides.
    """
    out = [Variant("baseline", policy_with_overrides(base, overrides), overrides)]
    axes = [split_values(v) for v in vary]
    for key, _ in axes:
        parse_override(f"{key}=0")  # the key's spelling, checked once
    for combo in itertools.product(*[[f"{k}={v}" for v in vals] for k, vals in axes]) if axes else []:
        out.append(
            Variant(
                "; ".join(combo),
                policy_with_overrides(base, list(overrides) + list(combo)),
                list(overrides) + list(combo),
            )
        )
    for other in others:
        p = P.load(other)
        out.append(Variant(f"{p.name} {p.version}", p))
    return out


def run_sweep(
    claims,
    members,
    providers,
    catalogue,
    *,
    variants_: list[Variant],
    out: Path,
    deltas_for: int | None = None,
    threads: int | None = None,
    progress=None,
    dataset: Path | None = None,
    partitions: int = 1,
) -> dict:
    """Read and encode once, settle every variant, write variants.parquet and summary.json; return the summary.

    ``partitions`` > 1 (0: chosen from the input size) goes one member range at a time, with the same outputs.
    """
    from .engine import Timer, settle
    from .outputs import atomic_dir, count_rejected_claims, parquet_options, write_parquet
    from .report import write_report
    from .stream import BaseYears, prepared_parts, source_paths

    say = progress or (lambda s: None)
    if deltas_for is not None and not 0 < deltas_for < len(variants_):
        raise P.PolicyError(f"--deltas {deltas_for}: there are variants 1 to {len(variants_) - 1} (0 is the baseline)")
    timer = Timer()
    say("read")
    k = len(variants_)
    sources = source_paths(claims, members, providers, catalogue, dataset)
    with (
        atomic_dir(Path(out), sources) as tmp,
        prepared_parts(
            claims,
            members,
            providers,
            catalogue,
            dataset=dataset,
            partitions=partitions,
            timer=timer,
            say=say,
            folder=tmp,
            claims_table=False,  # read by nothing here once encoded: its memory goes to the kernel passes
        ) as (
            digests,
            preps,
            ranges,
        ),
    ):
        bases = BaseYears(k)
        while True:  # once, unless a later member range settles an earlier year than the first (stream.py)
            bases.start()
            totals = [{a: 0 for a in AMOUNTS} for _ in range(k)]
            settled = [0] * k
            rejected: list[list[tuple]] = [[] for _ in range(k)]
            d_cash: list[list[np.ndarray]] = [[] for _ in range(k)]
            d_paid: list[list[np.ndarray]] = [[] for _ in range(k)]
            deltas_parts: list[dict] = []
            writer = None
            try:
                for prep in preps():
                    n = len(prep.enc.member)
                    base = base_kept = None
                    base_amounts: dict[str, np.ndarray] = {}
                    # every variant is settled into one set of arrays, read only until the next is settled;
                    # the baseline's claims, read to the end, into arrays of their own
                    shared = reused_outputs(prep, per_claim=True)
                    lines = {a: shared[a] for a in LINE_OUTPUTS}
                    for i, v in enumerate(variants_):
                        say(f"variant {i}")
                        r = settle(
                            prep,
                            v.policy,
                            threads=threads,
                            timer=timer,
                            line_funds=False,
                            base_year=bases[i],
                            into=lines if i == 0 else shared,
                        )
                        bases.saw(i, r)
                        with timer("compare"):
                            amounts, kept = aligned_amounts(n, r)
                            if base is None:
                                base, base_amounts, base_kept = r, amounts, kept
                            # members as compare counts them: of the claims settled under the baseline or the
                            # variant
                            u = np.flatnonzero(base_kept | kept)
                            dc, dp = member_deltas(
                                prep.enc.member[u],
                                {a: base_amounts[a][u] for a in ("cash_paid", "account_paid")},
                                {a: amounts[a][u] for a in ("cash_paid", "account_paid")},
                            )
                            d_cash[i].append(dc)
                            d_paid[i].append(dp)
                            for a in AMOUNTS:
                                totals[i][a] += int(amounts[a].sum())
                            settled[i] += len(r.enc.member)
                            rejected[i] += r.enc.rejected
                        if i == deltas_for:
                            with timer("write"):
                                p = compare_part(prep.enc, base, r)
                                if writer is None:
                                    schema = p["members"].schema
                                    writer = pq.ParquetWriter(
                                        tmp / "member_changes.parquet", schema, **parquet_options(schema)
                                    )
                                writer.write_table(p.pop("members"))
                                del p["claims"]
                                deltas_parts.append(p)
            finally:
                if writer is not None:
                    writer.close()
            if not bases.again():
                break
        say("write")
        rows: list[dict[str, Any]] = []
        for i, v in enumerate(variants_):
            who = who_is_better_off(np.concatenate(d_cash[i]), np.concatenate(d_paid[i]))
            row: dict[str, Any] = {
                "variant": i,
                "label": v.label,
                "policy": f"{v.policy.name} {v.policy.version}",
                "settled_claims": settled[i],
                "rejected_claims": count_rejected_claims(rejected[i]),
            }
            for a in AMOUNTS:
                row[a] = money(totals[i][a])
                row[f"{a}_delta"] = money(totals[i][a] - totals[0][a])
            row.update(
                members=who["count"],
                members_better_off=who["better_off"],
                members_worse_off=who["worse_off"],
                members_unchanged=who["unchanged"],
            )
            dist = who["member_paid_change"]
            for pct in PERCENTILES:
                row[f"member_paid_change_p{pct}"] = dist.get(f"p{pct}", "0.00")
            rows.append(row)
        summary: dict[str, Any] = {
            "adjudicate_version": __version__,
            "baseline": {**_policy_info(variants_[0].policy), "overrides": variants_[0].overrides},
            "variants": [
                {"variant": i, "label": v.label, **_policy_info(v.policy), "overrides": v.overrides}
                for i, v in enumerate(variants_)
            ],
            "inputs": digests,
            "rows": rows,
        }
        if ranges > 1:
            summary["partitions"] = ranges
        if deltas_parts and deltas_for is not None:  # parts are kept only for deltas_for
            part, _ = summarise(deltas_parts)
            summary["deltas_for"] = {
                "variant": deltas_for,
                "label": variants_[deltas_for].label,
                "counts": part["counts"],
                "members": part["members"],
            }
        with timer("write"):
            write_parquet(_variants_table(rows), tmp / "variants.parquet")
        summary["timings_seconds"] = {k: round(v, 4) for k, v in timer.t.items()}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_report(tmp, "sweep")
    return summary


def _variants_table(rows: list[dict[str, Any]]) -> pa.Table:
    cols: dict[str, Any] = {}
    for k in rows[0]:
        vals = [row[k] for row in rows]
        if k in AMOUNTS or k.endswith("_delta") or k.startswith("member_paid_change"):
            cols[k] = pa.array([Decimal(x) for x in vals], OUTPUT_TYPE)
        elif k in ("label", "policy"):
            cols[k] = pa.array(vals, pa.string())
        else:
            cols[k] = pa.array(vals, pa.int64())
    return pa.table(cols)
