"""The pages of run, compare, readjudicate and reconcile, built from the files each wrote.

Sums are taken in integer fen (``money.to_fen``, Arrow's int64 group sums);
floats only place the marks of a chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import _core
from ..labels import t
from ..money import group_digits, to_fen
from . import register, svg
from .page import Page

#: Who pays a claim, the five parts of contract §4's invariant 3.
PAYERS = ("fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid")
#: Edges (yuan) of the out-of-pocket distribution; the last bin is open.
OOP_EDGES = (0, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
#: Edges (yuan) of a signed change; mirrored below zero, zero has its own row.
CHANGE_EDGES = (0.01, 10, 100, 1_000, 10_000)
#: Most bars in one chart (the table beside it lists every row).
CHART_ROWS = 60


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(int(fen)), 100)
    return f"{sign}{q}.{r:02d}"


def _money(fen: int) -> str:
    return group_digits(_yuan(fen))


def _signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + _money(fen)


def _read(folder: Path, name: str, columns: Sequence[str]) -> pa.Table | None:
    path = folder / name
    if not path.exists():
        return None
    present = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in columns if c in present])


def _fen_table(table: pa.Table, keys: Sequence[str], amounts: Sequence[str]) -> pa.Table:
    """``keys`` as they are and ``amounts`` as int64 fen, ready for exact group sums."""
    cols = {k: table.column(k) for k in keys}
    for a in amounts:
        cols[a] = pa.array(to_fen(table.column(a), a), pa.int64())
    return pa.table(cols)


def _group_sum(table: pa.Table, keys: Sequence[str], amounts: Sequence[str]) -> pa.Table:
    g = table.group_by(list(keys)).aggregate([(a, "sum") for a in amounts])
    return g.rename_columns([c.removesuffix("_sum") for c in g.column_names]).sort_by([(k, "ascending") for k in keys])


def _bins(values_fen: np.ndarray, edges_yuan: Sequence[float]) -> list[tuple[str, int]]:
    """Counts of values in [e_i, e_i+1) yuan, the last bin open; labels in grouped yuan."""
    edges = np.array([round(e * 100) for e in edges_yuan], dtype=np.int64)
    idx = np.searchsorted(edges, values_fen, side="right") - 1
    counts = np.bincount(idx[idx >= 0], minlength=len(edges))
    shown = [group_digits(str(e)) if float(e).is_integer() else str(e) for e in edges_yuan]
    return [
        (f"{shown[i]} – {shown[i + 1]}" if i + 1 < len(edges) else f"≥ {shown[i]}", int(n))
        for i, n in enumerate(counts)
    ]


def _signed_bins(delta_fen: np.ndarray) -> list[tuple[str, int]]:
    """A change's distribution: decreases, unchanged, increases, by orders of magnitude."""
    neg = _bins(-delta_fen[delta_fen < 0], CHANGE_EDGES)
    pos = _bins(delta_fen[delta_fen > 0], CHANGE_EDGES)
    rows = [(f"−({label})", n) for label, n in reversed(neg)]
    rows.append((f"0 ({t('unchanged')})", int(np.count_nonzero(delta_fen == 0))))
    rows += [(f"+({label})", n) for label, n in pos]
    return rows


def _count_chart(title: str, rows: list[tuple[str, int]]) -> str:
    return svg.bars(title, [(label, float(n), f"{n:,}") for label, n in rows])


def _month_label(year: int, month: int) -> str:
    return f"{year}-{month:02d}"


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------


@dataclass
class RunFigures:
    """What the run page draws from the settlements, in integer fen: each payer's sum by month of
    settle_date, and each member-year's out of pocket (cash_paid + account_paid). The writer computes
    them from the arrays it holds (:func:`run_figures`) instead of reading settlements.parquet back."""

    months: list[tuple[int, int]]  # (year, month) of every month with a settlement, ascending
    monthly: dict[str, np.ndarray]  # payer -> fen per month
    out_of_pocket: np.ndarray  # fen per member-year with a settlement


def _sum_by(key: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Exact int64 sums of ``values`` (fen) by ``key`` in [0, n): one compiled pass, no float copy."""
    out = np.zeros(n, np.int64)
    if key.dtype not in (np.int32, np.int64):
        key = key.astype(np.int64)
    _core.group_sum(np.ascontiguousarray(key), np.ascontiguousarray(values, dtype=np.int64), out)
    return out


def _dense(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes for the values of ``key`` (non-negative integers), and each code's value, ascending.
    Some codes may stand for values that occur nowhere: drop them with ``np.bincount(codes) > 0``."""
    if len(key) and key.min() >= 0 and key.max() < 4 * len(key) + 1024:
        return key, np.arange(int(key.max()) + 1)
    values, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1), values


def run_figures(days: np.ndarray, member: np.ndarray, year: np.ndarray, fen: dict[str, np.ndarray]) -> RunFigures:
    """The run page's figures from settlement columns: ``days`` settle_date as days since 1970-01-01,
    ``member`` one non-negative integer code per member (equal codes, equal member_id), ``year``
    benefit_year, ``fen`` each payer's amount in fen."""
    if not len(days):
        return RunFigures([], {k: np.zeros(0, np.int64) for k in PAYERS}, np.zeros(0, np.int64))
    # sums by day (a few hundred days), then the days' sums by month
    days = np.asarray(days, np.int64)
    codes, values = _dense(days - days.min())
    present = np.bincount(codes, minlength=len(values)) > 0
    month = (values[present] + days.min()).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first = np.flatnonzero(np.r_[True, month[1:] != month[:-1]])
    months = [(int(m // 12) + 1970, int(m % 12) + 1) for m in month[first]]
    monthly = {k: np.add.reduceat(_sum_by(codes, len(values), fen[k])[present], first) for k in PAYERS}
    year = np.asarray(year, np.int64)
    years = int(year.max() - year.min()) + 1
    codes, values = _dense(np.asarray(member, np.int64) * years + (year - year.min()))
    present = np.bincount(codes, minlength=len(values)) > 0
    n = len(values)
    oop = (_sum_by(codes, n, fen["cash_paid"]) + _sum_by(codes, n, fen["account_paid"]))[present]
    return RunFigures(months, monthly, oop)


def merged_figures(parts: list[RunFigures]) -> RunFigures:
    """The run page's figures of a whole streamed run from each member range's: the
    monthly sums add up; the member-years of different ranges are different (so are their members)."""
    parts = [f for f in parts if f.months]
    if not parts:
        return run_figures(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), {})
    months = sorted({m for f in parts for m in f.months})
    at = {m: i for i, m in enumerate(months)}
    monthly = {k: np.zeros(len(months), np.int64) for k in parts[0].monthly}
    for f in parts:
        where = np.array([at[m] for m in f.months], np.int64)  # distinct months
        for k, v in f.monthly.items():
            monthly[k][where] += v
    return RunFigures(months, monthly, np.concatenate([f.out_of_pocket for f in parts]))


def _settlement_figures(settlements: pa.Table) -> RunFigures:
    """:class:`RunFigures` of a settlements table as written (a run whose arrays are gone)."""
    days = settlements.column("settle_date").cast(pa.int32()).to_numpy()
    member = settlements.column("member_id").combine_chunks().dictionary_encode().indices.to_numpy()
    fen = {k: to_fen(settlements.column(k), k) for k in PAYERS}
    return run_figures(days, member, settlements.column("benefit_year").to_numpy(), fen)


@register("run")
def run_page(folder: Path, s: dict, figures: RunFigures | None = None) -> Page:
    """``figures``: computed by the caller from what it wrote; read from settlements.parquet when None."""
    pol = s.get("policy", {})
    page = Page(
        f"{t('report_run')} · {pol.get('name', '')} {pol.get('version', '')}",
        f"{t('policy')}: {Path(pol.get('file') or '').name}",
    )
    c = s["counts"]
    page.heading(t("counts"))
    page.table(
        [t("amount"), t("value")],
        [(t(k), f"{c[k]:,}") for k in ("input_lines", "input_claims", "settled_claims", "rejected_claims")],
        numeric=[1],
    )
    page.heading(t("totals"))
    page.money_table(list(s["totals"].items()))
    totals_fen = {k: int(Decimal(v) * 100) for k, v in s["totals"].items()}
    page.heading(t("fund_totals"))
    page.chart(svg.bars(t("fund_totals"), [(t(k), totals_fen[k] / 100, _money(totals_fen[k])) for k in PAYERS]))
    if figures is None:
        settlements = _read(folder, "settlements.parquet", ["member_id", "benefit_year", "settle_date", *PAYERS])
        if settlements is not None and settlements.num_rows:
            figures = _settlement_figures(settlements)
    if figures is not None and figures.months:
        _monthly(page, figures)
        _out_of_pocket(page, figures)
    _rejections(page, c.get("rejected_by_reason", {}))
    if "audit" in s:  # run --audit
        _audit_sections(page, folder, s["audit"])
    return page


def _monthly(page: Page, figures: RunFigures) -> None:
    months = [_month_label(y, m) for y, m in figures.months]
    fen = figures.monthly
    page.heading(t("monthly_expenditure"))
    page.chart(svg.columns(t("monthly_expenditure"), months, {t(k): fen[k] / 100 for k in PAYERS}))
    page.table(
        [t("month"), *map(t, PAYERS)],
        [(m, *(_money(fen[k][i]) for k in PAYERS)) for i, m in enumerate(months)],
        numeric=range(1, 1 + len(PAYERS)),
    )


def _out_of_pocket(page: Page, figures: RunFigures) -> None:
    rows = _bins(np.maximum(figures.out_of_pocket, 0), OOP_EDGES)
    page.heading(t("oop_distribution"))
    page.chart(_count_chart(t("oop_distribution"), rows))
    page.table([t("range"), t("members_count")], [(label, f"{n:,}") for label, n in rows], numeric=[1])


def _rejections(page: Page, by_reason: dict[str, int]) -> None:
    page.heading(t("rejections"))
    rows = [(reason, n) for reason, n in by_reason.items() if n]
    if not rows:
        page.note(t("no_rejections"))
        return
    page.chart(svg.bars(t("rejections"), [(t(r), float(n), f"{n:,}") for r, n in rows]))
    page.table([t("reason"), "code", t("claims")], [(t(r), r, f"{n:,}") for r, n in rows], numeric=[2])


# ---------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------


@register("compare")
def compare_page(folder: Path, s: dict, member_paid_change: np.ndarray | None = None) -> Page:
    """``member_paid_change``: each member's change in out of pocket (cash_paid + account_paid, fen, over
    all years), as the writer computed it; summed from member_changes.parquet read back when None."""
    a, b = s["policy_a"], s["policy_b"]
    label = lambda p: f"{p['name']} {p['version']}" + (f" + {len(p['overrides'])} --set" if p.get("overrides") else "")  # noqa: E731
    page = Page(f"{t('report_compare')} · A: {label(a)} · B: {label(b)}")
    page.heading(t("totals"))
    rows, bars = [], []
    for k, v in s["totals"].items():
        da, dd = Decimal(v["a"]), Decimal(v["delta"])
        pct = f"{dd / da * 100:+.2f} %" if da else ""
        rows.append((t(k), group_digits(v["a"]), group_digits(v["b"]), _signed(int(dd * 100)), pct))
        if k in PAYERS:
            bars.append((t(k), float(dd), _signed(int(dd * 100))))
    page.table([t("amount"), "A", "B", "Δ = B − A", "Δ %"], rows, numeric=[1, 2, 3, 4])
    page.heading(t("fund_change"))
    page.chart(svg.bars(t("fund_change"), bars))
    m = s["members"]
    page.heading(t("member_change"))
    page.table(
        [t("better_off"), t("worse_off"), t("unchanged")],
        [(f"{m['better_off']:,}", f"{m['worse_off']:,}", f"{m['unchanged']:,}")],
        numeric=[0, 1, 2],
    )
    if member_paid_change is None:
        member_paid_change = _member_paid_change(folder)
    if len(member_paid_change):
        bins = _signed_bins(member_paid_change)
        page.chart(_count_chart(t("member_change"), bins))
        page.table([t("range"), t("members_count")], [(label, f"{n:,}") for label, n in bins], numeric=[1])
    return page


def _member_paid_change(folder: Path) -> np.ndarray:
    """Each member's change in cash_paid + account_paid (fen), summed from member_changes.parquet."""
    members = _read(folder, "member_changes.parquet", ["member_id", "cash_paid_delta", "account_paid_delta"])
    if members is None or not members.num_rows:
        return np.zeros(0, np.int64)
    keyed = _fen_table(members, ["member_id"], ["cash_paid_delta", "account_paid_delta"])
    g = _group_sum(keyed, ["member_id"], ["cash_paid_delta", "account_paid_delta"])
    return g.column("cash_paid_delta").to_numpy() + g.column("account_paid_delta").to_numpy()


# ---------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------


@register("sweep")
def sweep_page(folder: Path, s: dict) -> Page:
    b = s["baseline"]
    page = Page(f"{t('report_sweep')} · {b['name']} {b['version']}")
    page.heading(t("variants"))
    keys = ("fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid")
    page.table(
        ["#", ""] + [f"Δ {t(k)}" for k in keys] + [t("better_off"), t("worse_off")],
        [
            (
                str(r["variant"]),
                r["label"],
                *(_signed(int(Decimal(r[f"{k}_delta"]) * 100)) for k in keys),
                f"{r['members_better_off']:,}",
                f"{r['members_worse_off']:,}",
            )
            for r in s["rows"]
        ],
        numeric=list(range(2, 2 + len(keys) + 2)),
    )
    page.chart(
        svg.bars(
            f"Δ {t('fund_pool')}",
            [
                (
                    str(r["variant"]),
                    float(Decimal(r["fund_pool_delta"])),
                    _signed(int(Decimal(r["fund_pool_delta"]) * 100)),
                )
                for r in s["rows"][1:]
            ],
        )
    )
    return page


# ---------------------------------------------------------------------------
# readjudicate
# ---------------------------------------------------------------------------


@register("readjudicate")
def readjudicate_page(folder: Path, s: dict) -> Page:
    cur = s["current"].get("policy") or {}
    page = Page(f"{t('report_readjudicate')} · {cur.get('name', '')} {cur.get('version', '')}")
    c = s["counts"]
    page.heading(t("adjustments_by_change"))
    page.chart(_count_chart(t("adjustments_by_change"), [(t(k), n) for k, n in c["by_change"].items()]))
    page.table([t("change"), t("claims")], [(t(k), f"{n:,}") for k, n in c["by_change"].items()], numeric=[1])
    page.heading(t("totals"))
    page.table(
        [t("amount"), t("before"), t("now"), "Δ"],
        [
            (
                t(k),
                group_digits(s["previous"]["totals"][k]),
                group_digits(s["current"]["totals"][k]),
                _signed(int(Decimal(s["deltas"][k]) * 100)),
            )
            for k in s["deltas"]
        ],
        numeric=[1, 2, 3],
    )
    page.chart(
        svg.bars(
            t("fund_change"),
            [(t(k), float(Decimal(s["deltas"][k])), _signed(int(Decimal(s["deltas"][k]) * 100))) for k in PAYERS],
        )
    )
    return page


# ---------------------------------------------------------------------------
# reconcile
# ---------------------------------------------------------------------------


@register("reconcile")
def reconcile_page(folder: Path, s: dict) -> Page:
    from ..reconcile.rules import load_rules

    page = Page(
        f"{t('report_reconcile')} · {', '.join(map(str, s.get('years', [])))}",
        f"rules {s['rules']['name']} {s['rules']['version']}",
    )
    for w in s.get("warnings", []):
        page.note(w, warn=True)
    p = s["providers"]
    page.heading(t("corridor"))
    page.money_table([(k, p[k]) for k in ("quota_total", "fund_pool", "due", "advances", "balance")])
    providers = _read(
        folder,
        "provider_settlement.parquet",
        ["provider_id", "benefit_year", "admissions", "quota_total", "fund_pool", "fund_pool_to_quota", "band", "due"],
    )
    if providers is not None and providers.num_rows:
        try:
            rules = load_rules(s["rules"].get("file"))
            marks = [
                (rules.lower_bp / 10_000, f"{rules.lower_bp / 100:g} %"),
                (rules.upper_bp / 10_000, f"{rules.upper_bp / 100:g} %"),
                (rules.ceiling_bp / 10_000, f"{rules.ceiling_bp / 100:g} %"),
            ]
        except Exception:  # noqa: BLE001 - the rules file moved since: draw without the corridor lines
            marks = []
        pv = providers.sort_by([("fund_pool_to_quota", "descending"), ("provider_id", "ascending")]).to_pylist()
        items = [
            (
                f"{r['provider_id']} {r['benefit_year']}",
                float(r["fund_pool_to_quota"] or 0),
                f"{(r['fund_pool_to_quota'] or 0) * 100:.1f} % ({r['band']})",
            )
            for r in pv
        ]
        if len(items) > CHART_ROWS:  # the table below has them all
            page.note(f"{CHART_ROWS} / {len(items)}: A/Q ↓")
        page.chart(svg.bars(t("corridor"), items[:CHART_ROWS], marks, clip=2.0))
        page.table(
            [t("provider"), "year", t("admissions"), t("quota_total"), t("fund_pool"), "A/Q", t("band"), t("due")],
            [
                (
                    r["provider_id"],
                    r["benefit_year"],
                    f"{r['admissions']:,}",
                    group_digits(str(r["quota_total"])),
                    group_digits(str(r["fund_pool"])),
                    f"{(r['fund_pool_to_quota'] or 0) * 100:.1f} %",
                    r["band"],
                    group_digits(str(r["due"])),
                )
                for r in pv
            ],
            numeric=[2, 3, 4, 5, 7],
        )
    funds = _read(
        folder,
        "funds.parquet",
        ["fund", "benefit_year", "opening", "income", "expenditure", "closing", "months_of_reserve"],
    )
    monthly = _read(folder, "funds_monthly.parquet", ["fund", "benefit_year", "month", "closing"])
    if funds is not None and funds.num_rows:
        page.heading(t("fund_statement"))
        page.table(
            [t("fund"), "year", t("opening"), t("income"), t("expenditure"), t("closing"), t("months_of_reserve")],
            [
                (
                    t(r["fund"]),
                    r["benefit_year"],
                    *(group_digits(str(r[k])) for k in ("opening", "income", "expenditure", "closing")),
                    "—" if r["months_of_reserve"] is None else str(r["months_of_reserve"]),
                )
                for r in funds.to_pylist()
            ],
            numeric=[2, 3, 4, 5, 6],
        )
    if monthly is not None and monthly.num_rows:
        rows = monthly.to_pylist()
        months = sorted({(r["benefit_year"], r["month"]) for r in rows})
        series: dict[str, list[float]] = {}
        for fund in dict.fromkeys(r["fund"] for r in rows):
            by = {(r["benefit_year"], r["month"]): float(r["closing"]) for r in rows if r["fund"] == fund}
            series[t(fund)] = [by.get(m, 0.0) for m in months]
        page.heading(t("monthly_closing"))
        page.chart(svg.lines(t("monthly_closing"), [_month_label(*m) for m in months], series))
    return page


# ---------------------------------------------------------------------------
# demo: an index of the flow's reports
# ---------------------------------------------------------------------------


@register("demo")
def demo_page(folder: Path, s: dict) -> Page:
    d = s["demo"]
    page = Page(
        f"adjudicate demo · {d['policy']['name']} {d['policy']['version']}",
        f"{t('policy')}: {d['policy']['name']} · B: {d['compared_with']}",
    )
    page.link_list(
        [
            ("run/report.html", t("report_run")),
            ("compare/report.html", f"{t('report_compare')}: {d['policy']['name']} / {d['compared_with']}"),
            ("reconcile/report.html", t("report_reconcile")),
            (f"explain-{d['explained_claim']}.txt", f"explain {d['explained_claim']}"),
        ]
    )
    page.heading(t("totals"))
    page.money_table([(k, v) for k, v in s["totals"].items()])
    return page


# ---------------------------------------------------------------------------
# audit (adjudicate audit, and run --audit): flags by rule, the flags to look at, provider outliers
# ---------------------------------------------------------------------------

#: Flags shown per rule in the report (flags.parquet has them all).
AUDIT_TOP = 20


@register("audit")
def audit_page(folder: Path, s: dict) -> Page:
    a = s["audit"]
    page = Page(
        f"{t('report_audit')} · rules {a['rules']['name']} {a['rules']['version']}",
        f"{t('policy')}: {s.get('policy', {}).get('name', '')}",
    )
    _audit_sections(page, folder, a)
    return page


def _audit_sections(page: Page, folder: Path, a: dict) -> None:
    page.heading(t("flags_by_rule"))
    rows = [(name, c["flags"], c["claims"], a["skipped_rules"].get(name, "")) for name, c in a["by_rule"].items()]
    page.chart(svg.bars(t("flags_by_rule"), [(name, float(n), f"{n:,}") for name, n, _, why in rows if not why]))
    page.table(
        ["rule", t("flags"), t("claims"), t("note")],
        [
            (name, "—" if why else f"{n:,}", "—" if why else f"{c:,}", f"skipped: {why}" if why else "")
            for name, n, c, why in rows
        ],
        numeric=[1, 2],
    )
    flags = _read(
        folder, "flags.parquet", ["claim_id", "member_id", "provider_id", "rule", "severity", "claim_total", "evidence"]
    )
    if flags is not None and flags.num_rows:
        rank = {"high": 0, "medium": 1, "low": 2}
        flagged = sorted(
            flags.to_pylist(),  # the flagged claims: a few thousand rows at most
            key=lambda r: (rank.get(r["severity"], 3), r["rule"], r["claim_id"]),
        )
        per_rule: dict[str, int] = {}
        top = []
        for r in flagged:
            per_rule[r["rule"]] = per_rule.get(r["rule"], 0) + 1
            if per_rule[r["rule"]] <= AUDIT_TOP:
                top.append(r)
        page.heading(t("flags_to_check"))
        page.table(
            ["severity", "rule", "claim_id", "member_id", "provider_id", t("total"), "evidence"],
            [
                (
                    r["severity"],
                    r["rule"],
                    r["claim_id"],
                    r["member_id"],
                    r["provider_id"],
                    group_digits(str(r["claim_total"])),
                    r["evidence"],
                )
                for r in top
            ],
            numeric=[5],
        )
    indicators = _read(
        folder,
        "indicators.parquet",
        [
            "provider_id",
            "benefit_year",
            "indicator",
            "value",
            "peer_median",
            "ratio_to_median",
            "outlier",
            "outlier_reason",
        ],
    )
    if indicators is not None and indicators.num_rows:
        out = indicators.filter(pc.fill_null(indicators.column("outlier"), False))
        page.heading(t("provider_outliers"))
        page.table(
            [t("provider"), "year", "indicator", t("value"), "peer median", "× median", "why"],
            [
                (
                    r["provider_id"],
                    r["benefit_year"],
                    r["indicator"],
                    str(r["value"]),
                    str(r["peer_median"]),
                    str(r["ratio_to_median"]),
                    r["outlier_reason"] or "",
                )
                for r in out.to_pylist()
            ],
            numeric=[3, 4, 5],
        )
