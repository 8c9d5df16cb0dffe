"""``adjudicate explain CLAIM_ID``: the step-by-step calculation of one claim.

Only the claim's member is settled: the claims table is cut down to that
member's lines (the year so far matters, other members do not), encoded as in
a full run, and settled by :mod:`reference`, from the run's base year (the
earliest benefit year of all the claims read, contract §3, so the account
opens as in the run), whose trace names the policy key
behind every number. The kernel settles the same lines too, and the report
says whether the two agree (they must; a disagreement is a bug).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError
from .inputs import Table
from .money import price_text
from .policy import Policy
from .reference import AMOUNTS, BP, EPOCH, ClaimResult, Slice, member_at, provider_at, reference_run
from .schema import CLASSES, REFERRALS

# ---------------------------------------------------------------------------
# Building the report
# ---------------------------------------------------------------------------


def yuan(fen: int | None) -> str | None:
    """Exact yuan text of a fen amount: 123456 -> '1234.56'."""
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def ratio(bp: int | None) -> str | None:
    """Basis points as a fraction text: 9100 -> '0.91' (as written in a policy file)."""
    if bp is None:
        return None
    return f"{bp // BP}.{bp % BP:04d}".rstrip("0").rstrip(".") if bp % BP else str(bp // BP)


def exact(x) -> str:
    """An exact rational amount of fen in yuan, with as many decimals as it needs (at most 10)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 40
        d = (Decimal(x.numerator) / Decimal(x.denominator) / 100).quantize(Decimal("1e-10"))
    whole, frac = format(d, "f").split(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def _day(days: int) -> str:
    return (EPOCH + dt.timedelta(days=int(days))).isoformat()


def member_lines(claims: Table, claim_id: str) -> np.ndarray:
    """Mask of the claims-table rows of ``claim_id`` and of every other line of its member(s)."""
    this = np.asarray(pc.fill_null(pc.equal(claims["claim_id"], claim_id), False), dtype=bool)
    if not this.any():
        where = ", ".join(str(f) for f in claims.files)
        raise InputError(f"claim {claim_id!r} is not in the claims table ({claims.rows:,} lines read from {where})")
    owners = pc.unique(pc.drop_null(claims["member_id"].filter(pa.array(this))))
    if len(owners) == 0:
        return this
    theirs = np.asarray(pc.fill_null(pc.is_in(claims["member_id"], value_set=owners), False), dtype=bool)
    return this | theirs


def _catalogue_rows(inputs, claim_rows: np.ndarray) -> dict[int, dict[str, Any] | None]:
    """The catalogue row valid on the admit date of each claim line, by line_no."""
    from .encode import catalogue_rows

    cl, cat = inputs.claims, inputs.catalogue
    take = pa.array(claim_rows, pa.int64())
    rows = catalogue_rows(cat, cl["item_code"].take(take), cl["admit_date"][claim_rows])
    out: dict[int, dict[str, Any] | None] = {}
    for line_no, r in zip(cl["line_no"][claim_rows], rows):
        if r < 0:
            out[int(line_no)] = None
            continue
        r = int(r)
        out[int(line_no)] = {
            "row": r,
            "item_code": cat["item_code"][r].as_py(),
            "name": cat["name"][r].as_py(),
            "class": CLASSES[int(cat["class"][r])],
            "first_self_pay_ratio": None
            if cat.nulls["first_self_pay_ratio"][r]
            else ratio(int(cat["first_self_pay_ratio"][r])),
            "max_unit_price": None if cat.nulls["max_unit_price"][r] else price_text(int(cat["max_unit_price"][r])),
            "valid_from": _day(cat["valid_from"][r]),
            "valid_to": None if cat.nulls["valid_to"][r] else _day(cat["valid_to"][r]),
        }
    return out


def in_force(pol: Policy, key: str | None, day: dt.date) -> list[dict]:
    """Effective date and reference of each policy value behind ``key`` on ``day``.

    A cited or dated value gives its own; any other key holds a plain value,
    in force always (``from`` None), without a reference.
    """
    if not key or key.startswith("catalogue."):
        return []
    return pol.in_force(key, day) or [{"key": key, "from": None, "reference": None}]


def in_force_text(entries: list[dict]) -> str:
    """'from 2024-07-01 · seed 003 …' per value; 'always' for a plain undated value."""
    parts = []
    for e in entries:
        when = f"from {e['from']}" if e["from"] else "always"
        parts.append(f"{when} · {e['reference']}" if e["reference"] else when)
    return "; ".join(dict.fromkeys(parts))


def _slice(s: Slice, pol: Policy, day: dt.date) -> dict:
    return {
        "band": s.band,
        "key": s.key,
        "in_force": in_force(pol, s.key, day),
        "from": yuan(s.lo),
        "to": yuan(s.hi),
        "piece": yuan(s.piece),
        "pool_ratio": ratio(s.pool_bp),
        "pool_exact": exact(s.pool_exact),
        "supplementary_ratio": ratio(s.supp_bp),
        "supplementary_exact": exact(s.supp_exact),
        "factor": ratio(s.factor_bp),
        "deductible": s.deductible,
        "subsidised": s.subsidised,
    }


def _value(value, unit: str):
    if value is None:
        return None
    if unit == "fen":
        return yuan(value)
    if unit == "bp":
        return ratio(value)
    if unit == "flag":
        return bool(value)
    return value


#: The unit of each step's value as printed: money in yuan text, ratios as fractions (0.91 = 91 %).
UNITS = {"fen": "yuan", "bp": "fraction"}


def _why_no_account(res: ClaimResult, before: dict) -> str:
    """Why the personal account paid nothing on this claim, in words."""
    account_steps = [s for s in res.steps if s.name.startswith("account[")]
    if not account_steps:
        return f"the policy's blocks.{res.block} lets the personal account pay nothing on this claim"
    if not before.get("balance"):
        return "the personal account was empty (balance 0.00 before this claim)"
    return "nothing was left for the account to pay: the items it may pay came to 0.00"


def _note(step, res: ClaimResult, before: dict) -> str:
    if step.name == "account_paid" and res.account_paid == 0:
        return _why_no_account(res, before)
    return step.note


def _settled(
    res: ClaimResult,
    *,
    catalogue: dict[int, dict | None],
    inputs,
    member_row: int,
    provider_row: int,
    kernel: dict[str, Any],
    pol: Policy,
    base_year: int | None,
) -> dict:
    day = res.settle_date
    m = member_at(inputs.members, member_row)
    p = provider_at(inputs.providers, provider_row)
    before = res.before
    lines = []
    for lr in res.lines:
        lines.append(
            {
                "line_no": lr.line_no,
                "item_code": lr.item_code,
                "catalogue": catalogue.get(lr.line_no),
                "class": lr.cls,
                "amount": yuan(lr.amount),
                "ceiling": yuan(lr.ceiling),
                "first_self_pay_ratio": None if lr.why_self_pay else ratio(lr.ratio_bp),
                "first_self_pay_ratio_key": lr.ratio_key or None,
                "first_self_pay_ratio_in_force": in_force(pol, None if lr.why_self_pay else lr.ratio_key, day),
                "self_pay": yuan(lr.self_pay),
                "first_self_pay": yuan(lr.first_self_pay),
                "eligible": yuan(lr.eligible),
                "fund_pool": yuan(lr.fund_pool),
                "fund_supplementary": yuan(lr.fund_supplementary),
                "note": lr.why_self_pay or ("over the ceiling: self_pay" if lr.self_pay else ""),
            }
        )
    return {
        "status": "settled",
        "member": {
            "member_id": m.member_id,
            "category": m.category,
            "civil_servant": m.civil_servant,
            "enrolled_since": m.enrolled_since.isoformat(),
            "account_balance": yuan(m.balance_fen),
            "account_base_year": base_year,
        },
        "provider": {
            "provider_id": p.provider_id,
            "kind": p.kind,
            "level": p.level,
            "designated": p.designated,
            "local": p.local,
            "deductible_level_row": res.level_row,
        },
        "claim": {
            "setting": res.setting,
            "settle_date": res.settle_date.isoformat(),
            "benefit_year": res.year,
            "enrolment_months": res.months,
        },
        "benefit": {
            "benefit": res.benefit,
            "factor": ratio(res.factor_bp),
            "key": res.benefit_key or None,
            "in_force": in_force(pol, res.benefit_key, day),
            "block": f"blocks.{res.block}",
        },
        "lines": lines,
        "year_so_far": {
            "admissions_before": before.get("admissions", 0),
            "admission_ordinal": res.ordinal,
            "account_opening": yuan(before.get("opening")),
            "account_opening_how": before.get("opening_note"),
            # the latest credit in the opening was paid on 1 January of this year, by the values then in force
            "account_credit_in_force": in_force(pol, "account.credit", dt.date(res.year, 1, 1))
            if "credit" in (before.get("opening_note") or "")
            else [],
            "account_balance": yuan(before.get("balance")),
            "counters": {k: yuan(v) for k, v in before.get("counters", {}).items()},
            "limits": [
                {
                    **lim,
                    "amount": yuan(lim["amount"]),
                    "used": yuan(lim["used"]),
                    "room": yuan(lim["room"]),
                    "in_force": in_force(pol, lim["key"], day),
                }
                for lim in res.limits
            ],
            "account_balance_after": yuan(res.after.get("balance")),
        },
        "slices": [_slice(s, pol, day) for s in res.slices],
        "steps": [
            {
                "name": s.name,
                "value": _value(s.value, s.unit),
                "unit": UNITS.get(s.unit, s.unit),
                "key": s.key or None,
                "in_force": in_force(pol, s.key, day),
                "note": _note(s, res, before),
            }
            for s in res.steps
        ],
        "account_paid_nothing_because": _why_no_account(res, before) if res.account_paid == 0 else None,
        "amounts": {k: yuan(v) for k, v in res.amounts().items()},
        "admission_ordinal": res.ordinal,
        **kernel,
    }


def explain_claim(
    claim_id: str,
    claims: Sequence,
    members: Sequence,
    providers: Sequence,
    catalogue: Sequence,
    policy: str | Path | Policy,
    progress=None,
    dataset: Path | None = None,
) -> dict:
    """The report on one claim, as plain data (what ``--json`` prints); ``progress(stage)`` is told
    each stage (read, reference, kernel). The inputs may be a prepared ``dataset`` instead."""
    from . import policy as P
    from .dataset import open_dataset
    from .engine import Inputs, adjudicate, read_inputs, settle, settled_base_year
    from .outputs import claim_amounts

    say = progress or (lambda stage: None)
    pol = policy if isinstance(policy, Policy) else P.load(policy)
    say("read")
    if dataset is not None:
        prep = open_dataset(Path(dataset))
        full = prep.inputs
        # the account balance stands on 1 January of the run's base year: the kernel on the prepared claims
        base_year = settle(prep, pol, threads=1, line_funds=False).base_year
    else:
        full = read_inputs(claims, members, providers, catalogue)
        # the account balance stands on 1 January of the run's base year, found on every claim read
        base_year = settled_base_year(full, pol)
    mask = member_lines(full.claims, claim_id)
    inputs = Inputs(full.claims.take(np.flatnonzero(mask)), full.members, full.providers, full.catalogue)
    say("reference")
    ref = reference_run(inputs, pol, base_year)
    report: dict[str, Any] = {
        "claim_id": claim_id,
        "policy": {
            "name": pol.name,
            "version": pol.version,
            "file": str(pol.path),
            "in_force_from": [d.isoformat() for d in ((pol.valid_from,) + pol.changes if pol.valid_from else ())],
        },
    }
    rejections = [{"line_no": r[1], "reason": r[2], "detail": r[3]} for r in ref.rejected if r[0] == claim_id]
    if rejections:
        report.update(status="rejected", rejections=rejections)
        return report
    pos = next(i for i, c in enumerate(ref.claims) if c.claim_id == claim_id)
    res, enc = ref.claims[pos], ref.enc
    assert enc is not None  # reference_run keeps its encoding
    # the kernel on the same lines: it must agree with the reference
    say("kernel")
    result = adjudicate(inputs, pol, threads=1, base_year=base_year)
    kpos = result.enc.claim_id.to_pylist().index(claim_id)
    k_amounts = {k: int(v[kpos]) for k, v in claim_amounts(result).items()}
    k_ordinal = int(result.settle[kpos, 5]) or None
    agree = k_amounts == res.amounts() and k_ordinal == res.ordinal
    kernel: dict[str, Any] = {"kernel_agrees": agree}
    if not agree:
        kernel["kernel_amounts"] = {k: yuan(v) for k, v in k_amounts.items()}
    cl = inputs.claims
    claim_rows = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(cl["claim_id"], claim_id), False)))
    report.update(
        _settled(
            res,
            catalogue=_catalogue_rows(inputs, claim_rows),
            inputs=inputs,
            member_row=int(enc.member[pos]),
            provider_row=int(enc.provider[pos]),
            kernel=kernel,
            pol=pol,
            base_year=base_year,
        )
    )
    first = int(claim_rows[0])
    ref_code = int(cl["referral"][first])
    report["claim"].update(
        admit_date=_day(cl["admit_date"][first]),
        referral=REFERRALS[ref_code] if ref_code >= 0 else None,
        diagnosis=cl["diagnosis"][first].as_py(),
    )
    return report


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def to_json(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


def _pct(fraction_text: str | None) -> str:
    """'0.91' -> '91 %' for the terminal."""
    if fraction_text is None:
        return ""
    from decimal import Decimal

    return f"{(Decimal(fraction_text) * 100).normalize():f} %"


#: Line tables longer than this are shown as their first and last lines (``--json`` has them all):
#: a terminal table of 100 000 rows is unreadable, and rich takes minutes to lay it out.
MAX_LINES = 60
HEAD_LINES, TAIL_LINES = 40, 10


def shown_lines(lines: list[dict], limit: int = MAX_LINES) -> tuple[list[dict], list[dict], int]:
    """(first lines, last lines, how many are left out between them) of a claim's lines for the text report."""
    if len(lines) <= limit:
        return lines, [], 0
    return lines[:HEAD_LINES], lines[-TAIL_LINES:], len(lines) - HEAD_LINES - TAIL_LINES


#: Columns of prose in the explain tables: they wrap; every other column is kept whole.
_PROSE = {"catalogue row (valid)", "note", "what", "flags", "first_self_pay ratio"}


def render(report: dict, console=None, show=None) -> None:
    """Print the report with rich tables; ``show(console, table, wrap)`` prints one (default: as it is)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RTable

    con = console or Console()
    if console is None and not con.is_terminal:
        con = Console(width=160)  # piped: no terminal width to fit, keep rows on one line

    class Table(RTable):
        """A table of plain cells (ids and keys hold brackets, so cells are escaped); ``wrap``: its prose columns."""

        def __init__(self, title: str, *columns: str) -> None:
            super().__init__(title=title, title_justify="left")
            self.wrap = [i for i, col in enumerate(columns) if col.partition(":")[0] in _PROSE]
            for col in columns:
                name, _, just = col.partition(":")
                self.add_column(name, justify="right" if just == "r" else "left")

        def add_row(self, *cells: Any, **options: Any) -> None:
            super().add_row(*(escape(str(x)) for x in cells), **options)

    table = Table

    def say(text: str) -> None:
        con.print(text, markup=False, highlight=False)

    def out(t: Table) -> None:
        if show is None:
            con.print(t)
        else:
            show(con, t, t.wrap)

    pol = report["policy"]
    title = f"claim {report['claim_id']} · policy {pol['name']} {pol['version']}"
    con.print(f"[bold]{escape(title)}[/bold]")
    if report["status"] == "rejected":
        con.print("[bold red]rejected[/bold red]: the claim was not adjudicated.")
        for r in report["rejections"]:
            where = f" (line {r['line_no']})" if r["line_no"] is not None else ""
            say(f"  {r['reason']}{where}: {r['detail']}")
        return
    m, p, c, b = report["member"], report["provider"], report["claim"], report["benefit"]
    say(
        f"member {m['member_id']}: {m['category']}, civil servant {'yes' if m['civil_servant'] else 'no'}, "
        f"enrolled since {m['enrolled_since']} ({c['enrolment_months']} months at settlement), "
        f"account {m['account_balance']} on 1 January {m['account_base_year']} (the run's base year)"
    )
    say(
        f"provider {p['provider_id']}: {p['kind']}, level {p['level']} (deductible row "
        f"{p['deductible_level_row']}), {'designated' if p['designated'] else 'not designated'}, "
        f"{'local' if p['local'] else 'not local'}"
    )
    say(
        f"{c['setting']}, admitted {c['admit_date']}, settled {c['settle_date']} (benefit year "
        f"{c['benefit_year']}), referral {c['referral'] or 'none'}, diagnosis {c['diagnosis'] or '-'}"
    )
    say(
        f"benefit: {'yes, factor ' + _pct(b['factor']) if b['benefit'] else 'no'} "
        f"({b['key'] or 'no rule matched'}"
        + (f", in force {in_force_text(b['in_force'])}" if b["in_force"] else "")
        + f"; settled by {b['block']})"
    )

    head, tail, left_out = shown_lines(report["lines"])
    gap = f"… {left_out:,} more lines (adjudicate explain --json lists every line)"

    def each(t, cells) -> None:
        for ln in head:
            t.add_row(*cells(ln))
        if left_out:
            t.add_row("…", gap)
        for ln in tail:
            t.add_row(*cells(ln))

    def catalogue_cells(ln: dict) -> tuple:
        row = ln["catalogue"]
        desc = (
            "none valid on the admit date"
            if row is None
            else (f"#{row['row']} {row['name'] or ''} ({row['valid_from']} .. {row['valid_to'] or 'open'})")
        )
        ratio_txt = (
            ""
            if ln["first_self_pay_ratio"] is None
            else f"{_pct(ln['first_self_pay_ratio'])} ({ln['first_self_pay_ratio_key']})"
        )
        return (
            str(ln["line_no"]),
            ln["item_code"],
            desc,
            ln["class"],
            (row or {}).get("max_unit_price") or "",
            ln["ceiling"] or "",
            ratio_txt,
            in_force_text(ln["first_self_pay_ratio_in_force"]),
            ln["note"],
        )

    t = table(
        "lines: catalogue",
        "line:r",
        "item",
        "catalogue row (valid)",
        "class",
        "max price:r",
        "ceiling:r",
        "first_self_pay ratio",
        "in force",
        "note",
    )
    each(t, catalogue_cells)
    out(t)
    t = table(
        "lines: split (yuan)",
        "line:r",
        "amount:r",
        "self_pay:r",
        "first_self_pay:r",
        "eligible:r",
        "fund_pool:r",
        "fund_supplementary:r",
    )
    each(
        t,
        lambda ln: (
            str(ln["line_no"]),
            ln["amount"],
            ln["self_pay"],
            ln["first_self_pay"],
            ln["eligible"],
            ln["fund_pool"],
            ln["fund_supplementary"],
        ),
    )
    out(t)

    y = report["year_so_far"]
    t = table(f"member's year {c['benefit_year']} before this claim", "what", "value:r", "policy key", "in force")
    t.add_row("admissions with benefit so far", str(y["admissions_before"]), "", "")
    t.add_row("admission ordinal of this claim", str(y["admission_ordinal"] or "-"), "", "")
    for name, v in y["counters"].items():
        t.add_row(f"counter {name}", v, "", "")
    for lim in y["limits"]:
        t.add_row(f"{lim['role']} '{lim['limit']}' in force", lim["amount"], lim["key"], in_force_text(lim["in_force"]))
        t.add_row("  paid against it this year", lim["used"], "", "")
        t.add_row("  room", lim["room"], "", "")
    t.add_row(
        f"account opening on 1 January {c['benefit_year']}",
        y["account_opening"],
        "account.credit" if "credit" in (y["account_opening_how"] or "") else "",
        in_force_text(y.get("account_credit_in_force") or []),
    )
    t.add_row(f"  = {y['account_opening_how']}", "", "", "")
    t.add_row("account balance", y["account_balance"], "", "")
    out(t)

    if report["slices"]:
        t = table(
            "band slices of [K, K + X) (yuan)",
            "band",
            "from:r",
            "to:r",
            "piece:r",
            "pool ratio:r",
            "pool (exact):r",
            "supp ratio:r",
            "supp (exact):r",
            "flags",
            "in force",
        )
        for s in report["slices"]:
            flags = ", ".join(f for f, on in (("deductible", s["deductible"]), ("subsidised", s["subsidised"])) if on)
            factor = "" if s["factor"] == "1" else f" × {_pct(s['factor'])}"
            t.add_row(
                s["key"],
                s["from"],
                s["to"],
                s["piece"],
                _pct(s["pool_ratio"]) + factor,
                s["pool_exact"],
                _pct(s["supplementary_ratio"]) + factor,
                s["supplementary_exact"],
                flags,
                in_force_text(s["in_force"]),
            )
        out(t)

    t = table("steps", "step", "value:r", "policy key", "in force", "note")
    for s in report["steps"]:
        v = s["value"]
        v = _pct(v) if s["unit"] == "fraction" else ("" if v is None else str(v))
        t.add_row(s["name"], v, s["key"] or "", in_force_text(s["in_force"]), s["note"])
    out(t)

    t = table("settlement (yuan)", "amount", "yuan:r")
    for k in AMOUNTS:
        t.add_row(k, report["amounts"][k])
    out(t)
    if report["kernel_agrees"]:
        say("the kernel agrees with this calculation to the fen")
    else:
        con.print(
            "[bold red]the kernel disagrees with this calculation (a bug, please report):[/bold red] "
            + escape(", ".join(f"{k} {v}" for k, v in report["kernel_amounts"].items()))
        )
