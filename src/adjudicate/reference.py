"""The rules as plain Python: a readable reference for the compiled kernel.

This module settles claims one at a time with Python integers (fen, basis
points) and exact rational rounding (:func:`money.round_half_away`), reading
the policy *dataclasses* of :mod:`policy` directly, never the compiled tables.
It follows the kernel (``_core.pyx``) step for step, clamps included, so the
two must agree to the fen on every output column; the property tests in
``tests/test_reference.py`` check that on random data and random policies.

Each claim also carries a trace: every number with the policy key behind it
(``blocks.inpatient.scale.bands[1]``) and a note, which ``explain`` prints.

For one claim (schemes.md §1–§6): the benefit rule and factor; the lines
(catalogue class, price ceiling, first_self_pay ratio); then, with benefit,
the settlement steps, one function each, numbered as the kernel's ``step*``
helpers and the policy guide's "How a claim is settled":

1. the admission ordinal;
2. the account before the fund (``pays = "before_fund"``), item by item;
3. classes the fund pays directly;
4. base of the scale, deductible by level row and ordinal;
5. the band scale on ``[K, K + X)`` (K an annual counter, or 0 per claim);
6. the annual cap, and what it cuts overflowing to the supplementary tier;
7. the supplementary tier and its annual limit;
8. the civil-servant subsidy;
9. the account after the fund (``pays = "member_share"``); cash is the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .account import credit_rule, credits
from .inputs import QUANTITY_SCALE
from .layout import ClaimSum, Settled
from .money import PRICE_SCALE, round_half_away, yuan
from .policy import FUND_CLASSES, Block, Limit, Policy, rule_matches
from .schema import AMOUNTS, CATEGORIES, LINE_CLASSES, PROVIDER_KINDS, REFERRALS, SETTINGS

if TYPE_CHECKING:
    from .encode import Encoded

BP = 10_000
BP2 = BP * BP
#: max_unit_price (0.0001 yuan) × quantity (millionths) per fen
PRICE_QTY = 10 ** (PRICE_SCALE + QUANTITY_SCALE - 2)
EPOCH = dt.date(1970, 1, 1)


# ---------------------------------------------------------------------------
# Inputs, one object per member, provider, claim and line
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    member_id: str
    category: str  # 'in_service' | 'retired'
    civil_servant: bool
    enrolled_since: dt.date
    balance_fen: int  # account balance on 1 January of the run's base year (contract §3)
    birth_date: dt.date = dt.date(1970, 1, 1)
    prior_year_wage_fen: int | None = None  # basis of the yearly credit (schemes.md §9)


@dataclass(frozen=True)
class Provider:
    provider_id: str
    kind: str  # community | hospital | pharmacy | other
    level: int
    designated: bool
    local: bool


@dataclass(frozen=True)
class Line:
    """One billed line, with the catalogue row valid on the claim's admit_date already looked up."""

    line_no: int
    item_code: str
    cls: str  # A, B, special, supplementary, excluded, or 'unknown' (no catalogue row)
    amount_fen: int
    quantity: int  # millionths of a unit (inputs.QUANTITY_SCALE)
    ratio_bp: int | None = None  # the item's own first_self_pay_ratio
    max_price: int | None = None  # the item's max_unit_price, in 0.0001 yuan (exact, contract §1)


@dataclass(frozen=True)
class Claim:
    claim_id: str
    provider_id: str
    setting: str
    referral: str | None  # 'referred', 'emergency' or None
    settle_date: dt.date
    lines: tuple[Line, ...]


# ---------------------------------------------------------------------------
# Results and trace
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One number of the calculation: ``value`` in ``unit`` (fen, bp, months, count, flag)."""

    name: str
    value: int | None
    unit: str
    key: str
    note: str


@dataclass
class LineResult:
    line_no: int
    item_code: str
    cls: str
    amount: int
    ceiling: int | None = None  # round(max_unit_price × quantity), when it applies
    ratio_bp: int = 0
    ratio_key: str = ""
    why_self_pay: str = ""  # set when the whole amount is self_pay
    self_pay: int = 0
    first_self_pay: int = 0
    eligible: int = 0
    fund_pool: int = 0
    fund_supplementary: int = 0


@dataclass(frozen=True)
class Slice:
    """The part of ``[K, K + X)`` that falls in one band."""

    band: int
    key: str
    lo: int
    hi: int
    pool_bp: int
    supp_bp: int
    deductible: bool
    subsidised: bool
    factor_bp: int

    @property
    def piece(self) -> int:
        return self.hi - self.lo

    @property
    def pool_exact(self) -> Fraction:
        return Fraction(self.piece * self.pool_bp * self.factor_bp, BP2)

    @property
    def supp_exact(self) -> Fraction:
        return Fraction(self.piece * self.supp_bp * self.factor_bp, BP2)


@dataclass
class YearState:
    """A member's annual counters; restarted at the first claim of each benefit year.

    The account balance is not restarted: it opens at ``opening``, carried
    over from the year before (contract §3), and ``opening_note`` says how.
    """

    year: int
    balance: int
    admissions: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)  # paid against each limit
    opening: int = 0
    opening_note: str = ""

    def snapshot(self) -> dict:
        return {
            "year": self.year,
            "balance": self.balance,
            "admissions": self.admissions,
            "counters": dict(self.counters),
            "used": dict(self.used),
            "opening": self.opening,
            "opening_note": self.opening_note,
        }


@dataclass
class ClaimResult:
    claim_id: str
    member_id: str
    provider_id: str
    setting: str
    settle_date: dt.date
    lines: list[LineResult]
    benefit: bool = False
    factor_bp: int = 0
    benefit_key: str = ""
    block: str = ""
    months: int = 0
    level_row: int = 1
    ordinal: int | None = None
    rejected: tuple[str, str] | None = None  # (reason, detail)
    # claim sums of the line split
    total: int = 0
    self_pay: int = 0
    first_self_pay: int = 0
    eligible_by_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUND_CLASSES, 0))
    # settlement
    deductible: int = 0
    fund_pool: int = 0
    fund_supplementary: int = 0
    subsidy: int = 0
    account_paid: int = 0
    before: dict = field(default_factory=dict)  # the member's year before this claim
    after: dict = field(default_factory=dict)
    limits: list[dict] = field(default_factory=list)  # each limit met: amount in force, used, room
    slices: list[Slice] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def year(self) -> int:
        return self.settle_date.year

    @property
    def eligible(self) -> int:
        return sum(self.eligible_by_class.values())

    @property
    def member_policy_share(self) -> int:
        return self.eligible - self.fund_pool - self.fund_supplementary

    @property
    def cash_paid(self) -> int:
        return self.total - self.fund_pool - self.fund_supplementary - self.subsidy - self.account_paid

    def amounts(self) -> dict[str, int]:
        """The settlement's amount columns in fen (contract §4)."""
        return {k: getattr(self, k) for k in AMOUNTS}

    def step(self, name: str, value: int | None, key: str = "", note: str = "", unit: str = "fen") -> int | None:
        self.steps.append(Step(name, value, unit, key, note))
        return value


# ---------------------------------------------------------------------------
# Small rules
# ---------------------------------------------------------------------------


def enrolment_months(since: dt.date, on: dt.date) -> int:
    """Whole months of continuous enrolment (schemes.md §4); may be negative."""
    return 12 * (on.year - since.year) + (on.month - since.month) - (1 if on.day < since.day else 0)


def level_row(provider: Provider) -> int:
    """Row of the deductible table, 1..3 (schemes.md §2)."""
    if provider.kind == "community":
        return 1
    return 3 if provider.level >= 3 else (2 if provider.level == 2 else 1)


def limit_in_force(limit: Limit, months: int) -> tuple[int, str]:
    """The amount of an annual limit for ``months`` of enrolment, and its policy key."""
    k = 0
    for i, start in enumerate(limit.months):
        if months >= start:
            k = i
    key = f"{limit.key}.amount" if len(limit.months) == 1 else f"{limit.key}.by_enrolment_months[{k}]"
    return limit.amounts_fen[k], key


def benefit_of(block: Block, provider: Provider, referral: str | None):
    """The first matching benefit rule: (benefit, factor bp, key)."""
    for rule in block.benefit:
        if rule_matches(rule, provider.designated, provider.local, provider.kind, provider.level, referral):
            return rule.factor_bp is not None, rule.factor_bp or 0, rule.key
    return False, 0, ""


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder allocation of ``total`` in proportion to ``weights`` (contract §4, lines)."""
    W = sum(weights)
    if W == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // W for w in weights]  # floor toward minus infinity
    rems = [Fraction(total * w, W) - s for w, s in zip(weights, shares)]
    missing = total - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-rems[i], i))[:missing]:
        shares[i] += 1
    return shares


def split_line(policy: Policy, line: Line, benefit: bool) -> LineResult:
    """schemes.md §1: self_pay / first_self_pay / eligible of one line."""
    r = LineResult(line_no=line.line_no, item_code=line.item_code, cls=line.cls, amount=line.amount_fen)
    amt = line.amount_fen
    if not benefit:
        r.why_self_pay = "the provider gives no benefit for this claim"
    elif line.cls == "unknown":
        r.why_self_pay = "no catalogue row valid on the admit date"
    elif line.cls == "excluded":
        r.why_self_pay = "class excluded"
    elif line.cls == "supplementary" and not policy.supplementary_catalogue:
        r.why_self_pay = (
            "class supplementary in a scheme without a supplementary catalogue (lines.supplementary_catalogue = false)"
        )
    if r.why_self_pay:
        r.self_pay = amt
        return r
    over = 0
    if line.max_price is not None and amt > 0:
        r.ceiling = round_half_away(line.max_price * line.quantity, PRICE_QTY)  # exact product, rounded once
        over = max(0, amt - r.ceiling)
    allowed = amt - over
    if line.ratio_bp is not None:
        r.ratio_bp, r.ratio_key = line.ratio_bp, "catalogue.first_self_pay_ratio"
    else:
        r.ratio_bp, r.ratio_key = policy.class_ratio_bp[line.cls], f"lines.first_self_pay.{line.cls}"
    r.self_pay = over
    r.first_self_pay = round_half_away(allowed * r.ratio_bp, BP)
    r.eligible = allowed - r.first_self_pay
    return r


def negative_sums(res: ClaimResult) -> list[str]:
    """The claim sums that are negative (a refund of something not billed), schemes.md §1."""
    what = [
        n
        for n, v in (("total", res.total), ("self_pay", res.self_pay), ("first_self_pay", res.first_self_pay))
        if v < 0
    ]
    what += [f"eligible of class {c}" for c in FUND_CLASSES if res.eligible_by_class[c] < 0]
    if not what and res.eligible < 0:
        what.append("eligible")
    return what


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _pct(bp: int) -> str:
    return f"{bp / 100:g} %"


# ---------------------------------------------------------------------------
# Settlement
# ---------------------------------------------------------------------------


def year_credit(policy: Policy, member: Member, year: int) -> int:
    """What is credited to the member's account at the end of ``year`` (schemes.md §9), fen."""
    wage = member.prior_year_wage_fen
    days = (member.birth_date - EPOCH).days
    return int(
        credits(
            credit_rule(policy, year),
            np.array(CATEGORIES.index(member.category)),
            np.array(days),
            np.array(wage or 0),
            np.array(wage is None),
            year + 1,
        )[0]
    )


def settle_member(
    policy: Policy,
    member: Member,
    claims: Iterable[Claim],
    providers: Mapping[str, Provider],
    base_year: int | None = None,
) -> list[ClaimResult]:
    """Settle all of one member's claims, in order (settle_date, claim_id as bytes), year by year,
    each under the policy in force on its settle_date (``Policy.at``).

    Returns one result per claim in that order; a claim whose sums are
    negative comes back with ``rejected`` set and changes nothing.
    ``member.balance_fen`` stands on 1 January of ``base_year`` (default: the
    year of the member's first claim); each later year opens at the year
    before's closing plus its credit, years without claims included (contract §3).
    """
    ordered = sorted(claims, key=lambda c: (c.settle_date, c.claim_id.encode()))
    state: YearState | None = None
    out = []
    bal_year = base_year if base_year is not None else (ordered[0].settle_date.year if ordered else 0)
    bal = member.balance_fen  # the balance on 1 January of bal_year
    for claim in ordered:
        year = claim.settle_date.year
        if state is None or state.year != year:
            if state is not None and state.year == bal_year:
                bal = state.balance  # the closing of the year just ended
            parts = [
                f"members.account_balance {_yuan(member.balance_fen)} on 1 January {bal_year}"
                if state is None
                else f"closing of {bal_year} {_yuan(bal)}"
            ]
            while bal_year < year:
                credit = year_credit(policy, member, bal_year)
                parts.append(f"credit for {bal_year} {_yuan(credit)}")
                if bal_year + 1 < year:
                    parts.append(f"nothing spent in {bal_year + 1}")
                bal += credit
                bal_year += 1
            state = YearState(year, bal, opening=bal, opening_note=" + ".join(parts).replace(" + nothing", "; nothing"))
        # the rules in force on the settle date; the year's counters and limits carry on
        out.append(settle_claim(policy.at(claim.settle_date), member, claim, providers[claim.provider_id], state))
    return out


@dataclass
class Work:
    """One claim between the settlement steps: what each step reads and leaves for
    the next (the kernel's ``Claim`` struct, plus the trace and the member's year)."""

    policy: Policy
    block: Block
    member: Member
    res: ClaimResult
    state: YearState
    cat: int  # member category: 0 in service, 1 retired
    acct: int = 0  # paid by the personal account
    reduce: int = 0  # account paid on scale classes, off the scale's base
    d: int = 0  # per-admission deductible
    X: int = 0  # the slice of the scale this claim covers
    ded_band: int = 0  # pieces in deductible bands
    sub_base: int = 0  # pieces in subsidised bands
    O: int = 0  # cost the cap cuts, to the tier
    pool: int = 0
    supp: int = 0
    direct_pool: int = 0

    @property
    def bk(self) -> str:
        return f"blocks.{self.block.name}"

    @property
    def e(self) -> dict[str, int]:
        return self.res.eligible_by_class

    @property
    def f(self) -> int:
        return self.res.factor_bp


def settle_claim(policy: Policy, member: Member, claim: Claim, provider: Provider, state: YearState) -> ClaimResult:
    """Settle one claim against the member's year so far; ``state`` is updated in place.

    The lines first (schemes.md §1), then, for a claim with benefit, steps 1–9,
    numbered as the kernel's ``step*`` helpers and the policy guide's "How a
    claim is settled"."""
    block = policy.block_of_setting[claim.setting]
    bk = f"blocks.{block.name}"
    benefit, factor, rule_key = benefit_of(block, provider, claim.referral)
    res = ClaimResult(
        claim_id=claim.claim_id,
        member_id=member.member_id,
        provider_id=claim.provider_id,
        setting=claim.setting,
        settle_date=claim.settle_date,
        lines=[],
        benefit=benefit,
        factor_bp=factor,
        benefit_key=rule_key,
        block=block.name,
        months=enrolment_months(member.enrolled_since, claim.settle_date),
        level_row=level_row(provider),
    )
    res.before = state.snapshot()
    res.step(
        "benefit",
        int(benefit),
        rule_key or f"{bk}.benefit",
        (f"benefit at factor {_pct(factor)}" if benefit else "no benefit: everything is self_pay")
        + ("" if rule_key else " (no rule matched)"),
        "flag",
    )
    split_claim_lines(policy, claim, res)
    bad = negative_sums(res)
    if bad:
        res.rejected = ("negative_claim_total", f"negative {', '.join(bad)} (a refund of something not billed)")
        res.step("rejected", None, "", res.rejected[1], "")
        res.after = state.snapshot()
        return res
    if not benefit:
        res.after = state.snapshot()
        res.step("cash_paid", res.cash_paid, "", "a claim without benefit is paid in cash")
        return res
    w = Work(policy=policy, block=block, member=member, res=res, state=state, cat=CATEGORIES.index(member.category))
    for step in STEPS:
        step(w)
    res.account_paid = w.acct
    res.step("account_paid", w.acct, f"{bk}.account" if block.account != "none" else "", "")
    res.step("cash_paid", res.cash_paid, "", "total − fund_pool − fund_supplementary − subsidy − account_paid")
    # lines' share of the claim's funds (largest remainder)
    weights = [lr.eligible for lr in res.lines]
    for lr, p_, s_ in zip(res.lines, allocate(w.pool, weights), allocate(w.supp, weights)):
        lr.fund_pool, lr.fund_supplementary = p_, s_
    res.after = state.snapshot()
    return res


def split_claim_lines(policy: Policy, claim: Claim, res: ClaimResult) -> None:
    """Lines (schemes.md §1): each line's split, summed into the claim's sums."""
    for line in claim.lines:
        lr = split_line(policy, line, res.benefit)
        res.lines.append(lr)
        res.total += lr.amount
        res.self_pay += lr.self_pay
        res.first_self_pay += lr.first_self_pay
        if lr.cls in FUND_CLASSES:
            res.eligible_by_class[lr.cls] += lr.eligible
    res.step("total", res.total, "", "Σ line amounts")
    res.step("self_pay", res.self_pay, "", "excluded / unknown items, amounts over max_unit_price")
    res.step("first_self_pay", res.first_self_pay, "lines.first_self_pay", "Σ round(allowed × ratio) per line")
    res.step("eligible", res.eligible, "", "total − self_pay − first_self_pay")


def step1_ordinal(w: Work) -> None:
    """1. Admission ordinal: 1 + earlier admissions with benefit this year."""
    if w.block.inpatient:
        w.state.admissions += 1
        w.res.ordinal = w.state.admissions
        w.res.step(
            "admission_ordinal",
            w.res.ordinal,
            f"{w.bk}.admission",
            "1 + earlier admissions with benefit this year",
            "count",
        )


def step2_account_before(w: Work) -> None:
    """2. Account before the fund, item by item; what it pays on scale classes leaves the scale's base."""
    if w.block.account != "before_fund":
        return
    fsp, state = w.res.first_self_pay, w.state
    for i, item in enumerate(w.block.account_items):
        classes = [c for c in FUND_CLASSES if c in item]
        amt = (fsp if "first_self_pay" in item else 0) + sum(w.e[c] for c in classes)
        pay = max(0, min(state.balance, amt))
        state.balance -= pay
        w.acct += pay
        on_scale = "first_self_pay" not in item and all(c in w.block.scale_classes for c in classes)
        if on_scale:
            w.reduce += pay
        w.res.step(
            f"account[{'+'.join(item)}]",
            pay,
            f"{w.bk}.account.order[{i}]",
            f"min(balance, {_yuan(amt)}); balance now {_yuan(state.balance)}"
            + ("; taken off the scale's base" if on_scale else ""),
        )


def step3_direct(w: Work) -> None:
    """3. Classes the fund pays directly, outside the scale: round(e × rate × factor) each."""
    for c in FUND_CLASSES:
        bp = w.block.direct_bp.get(c, 0)
        if bp > 0:
            part = round_half_away(w.e[c] * bp * w.f, BP2)
            w.direct_pool += part
            w.res.step(
                f"direct[{c}]", part, f"{w.bk}.direct.{c}", f"round({_yuan(w.e[c])} × {_pct(bp)} × factor {_pct(w.f)})"
            )


def step4_base_deductible(w: Work) -> None:
    """4. Base of the scale and the per-admission deductible; X = base − deductible."""
    block, res = w.block, w.res
    base = max(0, sum(w.e[c] for c in FUND_CLASSES if c in block.scale_classes) - w.reduce)
    if block.scale_classes:
        res.step(
            "base",
            base,
            f"{w.bk}.scale.classes",
            f"eligible of {'+'.join(block.scale_classes)}" + (" minus the account paid on them" if w.reduce else ""),
        )
    if block.deductible_fen:
        vals = block.deductible_fen[res.level_row]
        idx = min(max(res.ordinal or 0, 1), len(vals)) - 1
        w.d = min(base, vals[idx])
        res.step(
            "deductible_per_admission",
            w.d,
            f"{w.bk}.deductible.by_level.{res.level_row}[{idx}]",
            f"min(base, {_yuan(vals[idx])}) at level row {res.level_row}, ordinal {res.ordinal or '-'}",
        )
    w.X = base - w.d


def step5_scale(w: Work) -> None:
    """5. The band scale on [K, K + X): each fund the exact sum of piece × rate × factor, rounded once."""
    block, res, X = w.block, w.res, w.X
    K = w.state.counters.get(block.counter, 0) if block.counter else 0
    if block.bands:
        res.step(
            "K",
            K,
            f"{w.bk}.scale.counter" if block.counter else "",
            f"annual counter '{block.counter}' before this claim" if block.counter else "per claim: K = 0",
        )
        res.step("X", X, "", "slice [K, K + X) cut by the bands")
    pool_acc = supp_acc = 0
    for k, band in enumerate(block.bands):
        lo = max(band.start_fen, K)
        hi = K + X
        if k + 1 < len(block.bands):
            hi = min(hi, block.bands[k + 1].start_fen)
        if hi - lo <= 0:
            continue
        s = Slice(
            band=k,
            key=band.key,
            lo=lo,
            hi=hi,
            pool_bp=band.pool_bp[w.cat],
            supp_bp=band.supp_bp,
            deductible=band.deductible,
            subsidised=band.subsidised,
            factor_bp=w.f,
        )
        res.slices.append(s)
        pool_acc += s.piece * s.pool_bp
        supp_acc += s.piece * s.supp_bp
        w.ded_band += s.piece if band.deductible else 0
        w.sub_base += s.piece if band.subsidised else 0
    if block.counter:
        w.state.counters[block.counter] = K + X
    w.pool = round_half_away(pool_acc * w.f, BP2)
    w.supp = round_half_away(supp_acc * w.f, BP2)
    if block.bands:
        res.step("pool_on_scale", w.pool, f"{w.bk}.scale.bands", "round(Σ piece × pool ratio × factor), once")
        if supp_acc:
            res.step(
                "supplementary_on_scale",
                w.supp,
                f"{w.bk}.scale.bands",
                "round(Σ piece × supplementary ratio × factor), once",
            )


def step6_cap(w: Work) -> None:
    """6. Annual cap on fund_pool; with overflow to the tier, the cost it cuts (O) goes on.
    Then the directly paid classes join fund_pool."""
    block, res, state = w.block, w.res, w.state
    if block.cap:
        cap_amt, cap_key = limit_in_force(w.policy.limits[block.cap], res.months)
        used = state.used.get(block.cap, 0)
        room = max(0, cap_amt - used)
        res.limits.append(
            {"limit": block.cap, "role": "cap", "amount": cap_amt, "used": used, "room": room, "key": cap_key}
        )
        res.step(
            "cap_room",
            room,
            cap_key,
            f"cap {_yuan(cap_amt)} at {res.months} months − {_yuan(used)} already paid against '{block.cap}' this year",
        )
        if w.pool > room:
            if block.overflow == "supplementary":
                p, f = block.single_rate()[w.cat], w.f
                w.O = max(0, w.X - w.ded_band - round_half_away(room * BP2, p * f)) if p * f > 0 else w.X - w.ded_band
                res.step(
                    "overflow",
                    w.O,
                    f"{w.bk}.cap.overflow",
                    f"X − deductible bands − round(room / ({_pct(p)} × {_pct(f)})): cost the cap cuts, to the tier",
                )
            w.pool = room
            res.step("pool_capped", w.pool, cap_key, "the fund pays up to the room under the cap")
        state.used[block.cap] = used + w.pool
    w.pool += w.direct_pool


def step7_tier(w: Work) -> None:
    """7. Supplementary tier on O and its classes, never above eligible − fund_pool,
    then within its annual limit; the deductible follows."""
    block, res, state, e = w.block, w.res, w.state, w.e
    if block.tier_bp > 0:
        tier = w.O + sum(e[c] for c in FUND_CLASSES if c in block.tier_classes)
        part = round_half_away(tier * block.tier_bp * w.f, BP2)
        w.supp += part
        res.step(
            "tier",
            part,
            f"{w.bk}.supplementary.rate",
            f"round(({_yuan(w.O)} overflow"
            + "".join(f" + {_yuan(e[c])} {c}" for c in FUND_CLASSES if c in block.tier_classes)
            + f") × {_pct(block.tier_bp)} × factor {_pct(w.f)})",
        )
    w.supp = max(0, min(w.supp, res.eligible - w.pool))  # before the limit is charged
    if block.supp_limit:
        lim_amt, lim_key = limit_in_force(w.policy.limits[block.supp_limit], res.months)
        used = state.used.get(block.supp_limit, 0)
        res.limits.append(
            {
                "limit": block.supp_limit,
                "role": "supplementary limit",
                "amount": lim_amt,
                "used": used,
                "room": max(0, lim_amt - used),
                "key": lim_key,
            }
        )
        w.supp = max(0, min(w.supp, lim_amt - used))
        state.used[block.supp_limit] = used + w.supp
        res.step(
            "supplementary_limited",
            w.supp,
            lim_key,
            f"limit {_yuan(lim_amt)} − {_yuan(used)} already paid against '{block.supp_limit}'",
        )
    res.fund_pool, res.fund_supplementary = w.pool, w.supp
    mps = res.member_policy_share
    res.step("fund_pool", w.pool, f"{w.bk}", "")
    res.step(
        "fund_supplementary",
        w.supp,
        f"{w.bk}.supplementary" if block.tier_bp else f"{w.bk}.scale.bands",
        "never above eligible − fund_pool",
    )
    res.step("member_policy_share", mps, "", "eligible − fund_pool − fund_supplementary")
    res.deductible = min(w.d + w.ded_band, mps)
    res.step(
        "deductible",
        res.deductible,
        f"{w.bk}.deductible" if block.deductible_fen else f"{w.bk}.scale.bands",
        f"per-admission {_yuan(w.d)} + deductible bands {_yuan(w.ded_band)}, at most the member's share",
    )


def step8_subsidy(w: Work) -> None:
    """8. Civil-servant subsidy on the member's share of the subsidised bands."""
    block, res = w.block, w.res
    if w.member.civil_servant and block.subsidy_bp and block.subsidy_bp[w.cat] > 0:
        rate = block.subsidy_bp[w.cat]
        sub = round_half_away(max(0, w.sub_base - w.pool - w.supp) * rate, BP)
        res.subsidy = min(sub, res.member_policy_share)
        res.step(
            "subsidy",
            res.subsidy,
            f"{w.bk}.subsidy.civil_servant.{CATEGORIES[w.cat]}",
            f"round(max(0, {_yuan(w.sub_base)} subsidised − fund_pool − fund_supplementary) × {_pct(rate)})",
        )


def step9_account_after(w: Work) -> None:
    """9. Account after the fund: the member's share less the subsidy, and first_self_pay.
    Cash is what remains of the total."""
    if w.block.account == "member_share":
        res, state = w.res, w.state
        want = res.member_policy_share - res.subsidy + res.first_self_pay
        pay = max(0, min(state.balance, want))
        state.balance -= pay
        w.acct += pay
        res.step(
            "account[member_share]",
            pay,
            f"{w.bk}.account.pays",
            f"min(balance, {_yuan(want)} = share − subsidy + first_self_pay); balance now {_yuan(state.balance)}",
        )


#: The settlement steps in order (policies/README.md, "How a claim is settled"; _core.pyx step1…step9).
STEPS = (
    step1_ordinal,
    step2_account_before,
    step3_direct,
    step4_base_deductible,
    step5_scale,
    step6_cap,
    step7_tier,
    step8_subsidy,
    step9_account_after,
)


# ---------------------------------------------------------------------------
# Whole runs: the engine's inputs, settled by the reference
# ---------------------------------------------------------------------------


def _date(days: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(days))


@dataclass
class ReferenceResult:
    """Reference settlements in the engine's order (accepted claims of ``encode``, negatives dropped)."""

    policy: Policy
    claims: list[ClaimResult]
    rejected: list[tuple]  # as Encoded.rejected: (claim_id, line_no, reason, detail)
    enc: Encoded | None = None

    def by_id(self) -> dict[str, ClaimResult]:
        return {c.claim_id: c for c in self.claims}

    @property
    def sums(self) -> np.ndarray:
        """Like engine.Result.sums, in the kernel's columns (``_core.ClaimSum``)."""
        out = np.zeros((len(self.claims), len(ClaimSum)), np.int64)
        for i, c in enumerate(self.claims):
            out[i, ClaimSum.TOTAL], out[i, ClaimSum.SELF_PAY] = c.total, c.self_pay
            out[i, ClaimSum.FIRST_SELF_PAY] = c.first_self_pay
            for k, cls in enumerate(FUND_CLASSES):
                out[i, ClaimSum.ELIGIBLE_A + k] = c.eligible_by_class[cls]
        return out

    @property
    def settle(self) -> np.ndarray:
        """Like engine.Result.settle, in the kernel's columns (``_core.Settled``)."""
        out = np.zeros((len(self.claims), len(Settled)), np.int64)
        for i, c in enumerate(self.claims):
            for col in Settled:  # the column names are the result's own (ADMISSION_ORDINAL: ordinal)
                name = "ordinal" if col is Settled.ADMISSION_ORDINAL else col.name.lower()
                out[i, col] = getattr(c, name) or 0
        return out

    def line_column(self, name: str) -> np.ndarray:
        return np.array([getattr(lr, name) for c in self.claims for lr in c.lines], np.int64)

    def amounts(self) -> dict[str, np.ndarray]:
        """Claim amounts by output column (as outputs.claim_amounts)."""
        return {k: np.array([c.amounts()[k] for c in self.claims], np.int64) for k in AMOUNTS}


def member_at(members, i: int) -> Member:
    """Row ``i`` of the members table (``inputs.Table``)."""
    m = members
    return Member(
        member_id=m["member_id"][i].as_py(),
        category=CATEGORIES[int(m["category"][i])],
        civil_servant=bool(m["civil_servant"][i]),
        enrolled_since=_date(m["enrolled_since"][i]),
        balance_fen=int(m["account_balance"][i]),
        birth_date=_date(m["birth_date"][i]),
        prior_year_wage_fen=None if m.nulls["prior_year_wage"][i] else int(m["prior_year_wage"][i]),
    )


def provider_at(providers, i: int) -> Provider:
    """Row ``i`` of the providers table (``inputs.Table``)."""
    p = providers
    return Provider(
        provider_id=p["provider_id"][i].as_py(),
        kind=PROVIDER_KINDS[int(p["kind"][i])],
        level=int(p["level"][i]),
        designated=bool(p["designated"][i]),
        local=bool(p["local"][i]),
    )


def claims_of(enc) -> list[tuple[int, Claim]]:
    """(member row, Claim) for every accepted claim of an ``encode.Encoded``, in its order."""
    claim_ids = enc.claim_id.to_pylist()
    provider_ids = enc.provider_id.to_pylist()
    items = enc.item_code.to_pylist()
    out = []
    for c in range(len(claim_ids)):
        a, z = int(enc.line_start[c]), int(enc.line_start[c + 1])
        lines = tuple(
            Line(
                line_no=int(enc.line_no[i]),
                item_code=items[i],
                cls=LINE_CLASSES[int(enc.cls[i])],
                amount_fen=int(enc.amount[i]),
                quantity=int(enc.quantity[i]),
                ratio_bp=int(enc.item_ratio[i]) if enc.item_ratio[i] >= 0 else None,
                max_price=int(enc.max_price[i]) if enc.max_price[i] >= 0 else None,
            )
            for i in range(a, z)
        )
        ref = int(enc.referral[c])
        out.append(
            (
                int(enc.member[c]),
                Claim(
                    claim_id=claim_ids[c],
                    provider_id=provider_ids[c],
                    setting=SETTINGS[int(enc.setting[c])],
                    referral=REFERRALS[ref] if ref >= 0 else None,
                    settle_date=_date(enc.settle_date[c]),
                    lines=lines,
                ),
            )
        )
    return out


def reference_run(inputs, policy: Policy, base_year: int | None = None) -> ReferenceResult:
    """Settle ``inputs`` (an ``engine.Inputs``) with the reference rules.

    ``encode.encode`` still does the shared work the kernel does not: input
    checks and rejections, catalogue lookup and the order of claims.
    Everything from the benefit rule on is decided here. ``base_year``: as
    for ``engine.adjudicate`` (default: the earliest year of the claims the
    reference settles here).
    """
    from .encode import encode

    enc = encode(inputs.claims, inputs.members, inputs.providers, inputs.catalogue)
    providers = {}
    for i in np.unique(enc.provider):
        p = provider_at(inputs.providers, int(i))
        providers[p.provider_id] = p
    by_member: dict[int, list[Claim]] = {}
    for m, claim in claims_of(enc):
        by_member.setdefault(m, []).append(claim)
    members = {m: member_at(inputs.members, m) for m in by_member}
    if base_year is None:
        # which claims settle does not depend on the account, so a first pass finds B
        years = [
            r.settle_date.year
            for m, claims in by_member.items()
            for r in settle_member(policy, members[m], claims, providers)
            if not r.rejected
        ]
        base_year = min(years) if years else None
    settled: dict[str, ClaimResult] = {}
    for m, claims in by_member.items():
        for r in settle_member(policy, members[m], claims, providers, base_year):
            settled[r.claim_id] = r
    rejected = list(enc.rejected)
    ordered = []
    for c, cid in enumerate(enc.claim_id.to_pylist()):
        r = settled[cid]
        if r.rejected:  # as rejected.parquet lists it: who, and the offending claim total
            rejected.append(
                (cid, None)
                + r.rejected
                + (enc.member_id[c].as_py(), enc.provider_id[c].as_py(), "total", str(yuan(r.total)))
            )
        else:
            ordered.append(r)
    return ReferenceResult(policy, ordered, rejected, enc)
