"""The engine: inputs → encode → kernel → result arrays.

The kernel is called once per chunk of claims, never per member: chunks are
cut at member boundaries so each member's year is settled, in order, by one
call, and chunks run on a thread pool (the kernel releases the GIL). The
result is the same for any number of threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

from . import _core
from .account import member_credits
from .encode import Encoded, benefit_factors, cut_runs, encode
from .inputs import QUANTITY_SCALE, Table, load
from .keep import source_row_values as kept_values
from .layout import ClaimSum, Settled
from .money import PRICE_SCALE, yuan
from .policy import Compiled, Policy, compile_policy
from .schema import CATALOGUE, CLAIMS, CLASSES, MEMBERS, PROVIDERS
from .threads import limit

#: Output columns of the claim kernel (``_core.settle_claims``; defined in ``_core.pxd``).
DEDUCTIBLE, POOL, SUPP = Settled.DEDUCTIBLE, Settled.FUND_POOL, Settled.FUND_SUPPLEMENTARY
SUBSIDY, ACCOUNT, ORDINAL = Settled.SUBSIDY, Settled.ACCOUNT_PAID, Settled.ADMISSION_ORDINAL
#: Units of max_unit_price (0.0001 yuan) × quantity (millionths) in one fen.
PRICE_QTY_PER_FEN = 10 ** (PRICE_SCALE + QUANTITY_SCALE - 2)
#: Columns of ``claim_sums`` (``_core.split_lines``; defined in ``_core.pxd``).
TOTAL, SELF_PAY, FIRST_SELF_PAY, ELIG_A = (
    ClaimSum.TOTAL,
    ClaimSum.SELF_PAY,
    ClaimSum.FIRST_SELF_PAY,
    ClaimSum.ELIGIBLE_A,
)
NSUMS, NOUT = len(ClaimSum), len(Settled)


@dataclass
class Inputs:
    claims: Table
    members: Table
    providers: Table
    catalogue: Table

    def digests(self) -> dict[str, str]:
        out = {}
        for t in (self.claims, self.members, self.providers, self.catalogue):
            out.update(t.digests)
        return out


def read_inputs(
    claims: Sequence[str | Path],
    members: Sequence[str | Path],
    providers: Sequence[str | Path],
    catalogue: Sequence[str | Path],
) -> Inputs:
    return Inputs(load(CLAIMS, claims), load(MEMBERS, members), load(PROVIDERS, providers), load(CATALOGUE, catalogue))


@dataclass
class Result:
    """Everything adjudicated, as arrays in settlement order."""

    policy: Policy
    enc: Encoded
    benefit: np.ndarray
    sums: np.ndarray  # claim_sums (total, self_pay, first_self_pay, eligible by class)
    settle: np.ndarray  # kernel output per claim
    # the lines' amounts: all None when adjudicate(line_funds=False), whose kernel writes nothing per line
    line_self_pay: np.ndarray | None
    line_fsp: np.ndarray | None
    line_eligible: np.ndarray | None
    line_pool: np.ndarray | None
    line_supp: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    #: The year on whose 1 January members.account_balance stands (contract §3); None: no claims settled
    base_year: int | None = None
    #: which claims of the prepared inputs were settled (None: all); the rest were rejected by this policy
    kept: np.ndarray | None = None
    #: CPU seconds of the compiled stages, every thread summed ("kernel", "allocate"): beside the wall
    #: times of ``timings``, what judges the kernel's speed on a loaded machine
    cpu: dict[str, float] = field(default_factory=dict)

    @cached_property
    def eligible(self) -> np.ndarray:  # read by every output table and the summary: summed once
        return self.sums[:, ELIG_A:].sum(axis=1)


class Timer:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t0


def chunks_by_member(member: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split claim positions [0, n) into about ``parts`` ranges that never cut a member."""
    n = len(member)
    if n == 0:
        return []
    cuts = [0]
    for k in range(1, parts):
        i = n * k // parts
        while i < n and i > 0 and member[i] == member[i - 1]:
            i += 1
        if cuts[-1] < i < n:
            cuts.append(i)
    cuts.append(n)
    return list(zip(cuts[:-1], cuts[1:]))


#: Ranges per thread of a parallel kernel stage: a thread slowed by other work on the machine
#: leaves its later ranges to the others instead of holding the stage up. The last range to
#: finish is what the others may wait for: at 9.7 M lines a range is about 5 ms of one core's
#: work (it was 20 ms at 4 a thread), and each costs about 13 µs of calls and hand-overs.
CHUNKS_PER_THREAD = 16


def thread_ranges(member: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """The member-aligned claim ranges a kernel stage runs on ``threads`` threads (one range on one)."""
    return chunks_by_member(member, threads * CHUNKS_PER_THREAD if threads > 1 else 1)


_POOLS: dict[int, ThreadPoolExecutor] = {}
T = TypeVar("T")


def _parallel(fn: Callable[[int, int], T], ranges: list[tuple[int, int]], threads: int) -> list[T]:
    """Run ``fn`` on each range, on ``threads`` threads (the kernel releases the GIL); its results in range order."""
    if threads <= 1 or len(ranges) <= 1:
        return [fn(a, b) for a, b in ranges]
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="adjudicate")
    return list(pool.map(lambda r: fn(*r), ranges))


def default_threads() -> int:
    """The kernel's threads when none are given: the run's setting (``threads.limited``), else every core."""
    return limit()


@dataclass
class Prepared:
    """Checked, encoded inputs: everything of a run that does not depend on the policy.

    Built by :func:`prepare` (from the inputs) or read from a prepared dataset
    (``adjudicate.dataset``); settled under any number of policies by :func:`settle`.
    """

    inputs: Inputs
    enc: Encoded
    digests: dict[str, str]  # the source files' digests, as summary.json reports them
    input_lines: int


def prepare(inputs: Inputs, timer: Timer | None = None) -> Prepared:
    """Encode ``inputs`` (joins, catalogue lookup, checks, settlement order): the policy-free half of a run."""
    timer = timer or Timer()
    with timer("encode"):
        enc = encode(inputs.claims, inputs.members, inputs.providers, inputs.catalogue)
    return Prepared(inputs, enc, inputs.digests(), inputs.claims.rows)


def adjudicate(
    inputs: Inputs,
    policy: Policy,
    threads: int | None = None,
    timer: Timer | None = None,
    progress: Callable[[str], None] | None = None,
    line_funds: bool = True,
    base_year: int | None = None,
) -> Result:
    """Adjudicate every claim of ``inputs`` under ``policy`` (:func:`prepare`, then :func:`settle`).

    ``line_funds=False`` skips every per-line amount (for runs that write no
    lines.parquet): the kernel sums each claim's lines without storing their split,
    and nothing is allocated to lines; ``Result.line_self_pay``, ``line_fsp``,
    ``line_eligible``, ``line_pool`` and ``line_supp`` are then None. ``base_year`` is the year on whose 1 January the members'
    ``account_balance`` stands (contract §3); by default the earliest benefit
    year of the claims settled here. A caller settling part of a run (one
    member range, one member) passes the whole run's.
    """
    timer = timer or Timer()
    (progress or (lambda s: None))("encode")
    return settle(
        prepare(inputs, timer),
        policy,
        threads=threads,
        timer=timer,
        progress=progress,
        line_funds=line_funds,
        base_year=base_year,
        owned=True,  # the preparation is this call's alone
    )


def settle(
    prep: Prepared,
    policy: Policy,
    threads: int | None = None,
    timer: Timer | None = None,
    progress: Callable[[str], None] | None = None,
    line_funds: bool = True,
    base_year: int | None = None,
    owned: bool = False,
    into: dict[str, np.ndarray] | None = None,
) -> Result:
    """Settle prepared inputs under ``policy``: the kernel passes, nothing decoded again.

    ``prep`` is not changed, so one preparation serves any number of policies
    (compare, sweep), unless ``owned``: the caller gives ``prep`` up, and the claims
    this policy rejects are cut out of its arrays in place. ``Result.kept`` says which
    of ``prep.enc``'s claims were settled (None: all of them). ``base_year`` as for
    :func:`adjudicate`.

    ``into``: kernel outputs to write into instead of fresh arrays (some of
    :func:`kernel_outputs` for ``prep``'s sizes, by name), e.g. those of an earlier
    result the caller reads no more: a policy after another then touches no new memory.
    The result's arrays are views of them, valid until they are written again.
    """
    timer = timer or Timer()
    threads = threads or default_threads()
    say = progress or (lambda s: None)
    inputs = prep.inputs
    # this policy's own rejections (negative_claim_total) go to a copy of the list
    enc = replace(prep.enc, rejected=list(prep.enc.rejected))
    enc.__dict__.update({k: v for k, v in vars(prep.enc).items() if k not in enc.__dict__})  # cached columns
    with timer("encode"):
        compiled = compile_policy(policy)
        period = policy.period_index(enc.settle_date)  # the policy period of each claim's settle_date
        benefit, factor = benefit_factors(policy, enc, inputs.providers, period)
    say("kernel")
    with timer("kernel"):
        k = _kernel(
            enc,
            benefit,
            factor,
            period,
            compiled,
            inputs.members,
            policy,
            threads,
            base_year,
            owned,
            into=into,
            lines=line_funds,
        )
    enc, keep, base_year = k.enc, k.keep, k.base_year
    benefit, factor, sums, paid = k.benefit, k.factor, k.sums, k.paid
    cpu = {"kernel": k.cpu}
    self_pay, fsp, elig = k.lines
    pool = supp = None  # without line_funds, the lines carry no amounts
    if line_funds:
        assert elig is not None
        say("allocate")
        with timer("allocate"):
            pool, supp, cpu["allocate"] = _allocate(enc, paid, elig, threads)
    return Result(
        policy=policy,
        enc=enc,
        benefit=benefit,
        sums=sums,
        settle=paid,
        line_self_pay=self_pay,
        line_fsp=fsp,
        line_eligible=elig,
        line_pool=pool,
        line_supp=supp,
        timings=timer.t,
        base_year=base_year,
        kept=keep,
        cpu=cpu,
    )


def _allocate(enc: Encoded, paid: np.ndarray, elig: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Each claim's fund_pool and fund_supplementary spread over its lines by eligible amount,
    and the CPU seconds it took (every thread)."""
    t0 = time.thread_time()
    # every line is written by the kernel: no zero-fill, no contiguous copy of the claim columns
    pool = np.empty(len(enc.amount), np.int64)
    supp = np.empty(len(enc.amount), np.int64)
    ranges = thread_ranges(enc.member, threads)

    def alloc(a: int, b: int) -> float:
        c0 = time.thread_time()
        _core.allocate(enc.line_start, paid[:, POOL], elig, pool, a, b, paid[:, SUPP], supp)
        return time.thread_time() - c0

    serial = time.thread_time() - t0
    return pool, supp, serial + sum(_parallel(alloc, ranges, threads))


def first_year(enc: Encoded) -> int | None:
    """The earliest benefit year of the claims of ``enc`` (None when there are none)."""
    return int(enc.year.min()) if len(enc.year) else None


def settled_base_year(inputs: Inputs, policy: Policy, threads: int | None = None) -> int | None:
    """The base year B of a run on ``inputs`` (contract §3): the earliest benefit year of the
    claims it settles, i.e. after every rejection (``negative_claim_total`` included). Encodes
    and splits the lines, settles nothing (for ``explain``, which settles one member)."""
    threads = threads or default_threads()
    enc = encode(inputs.claims, inputs.members, inputs.providers, inputs.catalogue)
    period = policy.period_index(enc.settle_date)
    benefit, factor = benefit_factors(policy, enc, inputs.providers, period)
    k = _kernel(
        enc,
        benefit,
        factor,
        period,
        compile_policy(policy),
        inputs.members,
        policy,
        threads,
        None,
        True,
        False,
        lines=False,
    )
    return k.base_year


def _line_rules(enc: Encoded, compiled: Compiled, period: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Class codes, first_self_pay ratios and the supplementary-catalogue switch for the kernel's
    line split. When these change between the policy's periods, each line gets its claim's
    period's rule in one vectorised pass: its class ratio written in where the item has none,
    and class supplementary read as excluded in a period without the supplementary catalogue
    (both are then all self_pay); lines.parquet still shows the catalogue class."""
    cr, sc = compiled.class_ratio, compiled.supplementary_catalogue
    if (cr == cr[0]).all() and (sc == sc[0]).all():
        return enc.cls, enc.item_ratio, bool(sc[0])
    lp = period[enc.line_claim]
    ratio = np.where(enc.item_ratio >= 0, enc.item_ratio, cr[lp, enc.cls])
    supp, excluded = CLASSES.index("supplementary"), CLASSES.index("excluded")
    cls = np.where((enc.cls == supp) & ~sc[lp], excluded, enc.cls).astype(np.int8)
    return cls, np.ascontiguousarray(ratio, dtype=np.int16), True  # bp, 0..10000 (as encode lays it out)


@dataclass
class _Kernel:
    """What the kernel pass gives :func:`settle`: the claims settled and their arrays."""

    enc: Encoded
    keep: np.ndarray | None  # which claims of the encoded input were settled (None: all)
    base_year: int | None
    benefit: np.ndarray
    factor: np.ndarray
    sums: np.ndarray
    paid: np.ndarray
    lines: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]  # self_pay, first_self_pay, eligible
    cpu: float  # CPU seconds of every thread of the pass


def _kernel(
    enc: Encoded,
    benefit: np.ndarray,
    factor: np.ndarray,
    period: np.ndarray,
    compiled: Compiled,
    members: Table,
    policy: Policy,
    threads: int,
    base_year: int | None,
    owned: bool,
    settle: bool = True,
    into: dict[str, np.ndarray] | None = None,
    lines: bool = True,
) -> _Kernel:
    """The line split, the negative-claim check and the claim settlement in one compiled pass
    per member-aligned chunk (``_core.settle_lines``), every output allocated once.

    A claim rejected as negative_claim_total (schemes.md §1) is skipped by the settlement
    as if absent, then cut out of every array (``Encoded.without``: in place when ``owned``,
    the arrays being this run's alone). Without ``lines`` the lines' split is summed by claim
    and not stored (``_Kernel.lines`` are None). The base year B (contract §3) is the earliest year
    of the claims settled: the pass assumes that of all claims, and in the rare case that the
    rejections remove that whole year the claims are settled again under the right B.
    ``into``: outputs given by the caller (:func:`settle`), the others allocated here."""
    t0 = time.thread_time()
    outs = {**kernel_outputs(len(enc.amount), len(enc.member), settle, lines), **(into or {})}  # empty: no pages yet
    base = base_year if base_year is not None else first_year(enc)
    kw = kernel_args(enc, benefit, factor, period, compiled, members, policy, base, outs)
    self_pay, fsp, elig = outs["self_pay"], outs["first_self_pay"], outs["eligible"]
    sums, paid, negative = outs["sums"], outs["out"], outs["negative"]

    def run(a: int, b: int) -> tuple[int, float]:
        c0 = time.thread_time()
        n = _core.settle_lines(**kw, settle=settle, start=a, stop=b)
        return n, time.thread_time() - c0

    serial = time.thread_time() - t0
    done = _parallel(run, thread_ranges(enc.member, threads), threads)
    t1 = time.thread_time()
    keep = None
    split: tuple[np.ndarray | None, ...] = (self_pay, fsp, elig) if lines else (None, None, None)
    if sum(n for n, _ in done):
        dropped = np.flatnonzero(negative)
        _reject_negative(enc, sums, dropped)
        keep = negative.view(bool) == 0
        lo, hi = enc.line_start[dropped], enc.line_start[dropped + 1]  # their lines, before line_start is cut
        enc = enc.without(dropped, in_place=owned)
        # the kernel's outputs and this call's per-claim arrays are its own: cut in place
        sums, benefit, factor, period = (
            cut_runs(x, dropped, dropped + 1, True) for x in (sums, benefit, factor, period)
        )
        if settle:
            paid = cut_runs(paid, dropped, dropped + 1, True)
        split = tuple(None if x is None else cut_runs(x, lo, hi, True) for x in split)
    if base_year is None:
        base_year = first_year(enc)
        if settle and base_year is not None and base_year != base:  # the rejections took a whole earliest year
            args = _settle_args(enc, benefit, factor, period, compiled, members, policy, base_year)
            _parallel(
                lambda a, b: _core.settle_claims(**args, sums=sums, out=paid, start=a, stop=b),
                thread_ranges(enc.member, threads),
                threads,
            )
    cpu = serial + sum(c for _, c in done) + time.thread_time() - t1
    return _Kernel(enc, keep, base_year, benefit, factor, sums, paid, (split[0], split[1], split[2]), cpu)


#: The per-line outputs of ``_core.settle_lines`` (:func:`kernel_outputs`' names).
LINE_OUTPUTS = ("self_pay", "first_self_pay", "eligible")


def kernel_outputs(nlines: int, nclaims: int, settle: bool = True, lines: bool = True) -> dict[str, np.ndarray]:
    """The output arrays of ``_core.settle_lines`` over ``nlines`` lines of ``nclaims`` claims, by
    argument name. Not zero-filled: the kernel writes every row (``out`` is empty without ``settle``;
    the per-line self_pay, first_self_pay and eligible are empty without ``lines``: never written,
    their pages never touched, 24 bytes a line less).
    The claim matrices are column-major: each amount column is one contiguous array, which
    ``outputs.claim_amounts`` hands to the writers as it is (a view, no copy)."""
    per_line = nlines if lines else 0
    return dict(
        self_pay=np.empty(per_line, np.int64),
        first_self_pay=np.empty(per_line, np.int64),
        eligible=np.empty(per_line, np.int64),
        sums=np.empty((nclaims, NSUMS), np.int64, order="F"),
        out=np.empty((nclaims if settle else 0, NOUT), np.int64, order="F"),
        negative=np.empty(nclaims, np.uint8),
    )


def kernel_args(
    enc: Encoded,
    benefit: np.ndarray,
    factor: np.ndarray,
    period: np.ndarray,
    compiled: Compiled,
    members: Table,
    policy: Policy,
    base_year: int | None,
    outputs: dict[str, np.ndarray],
) -> dict:
    """Every argument of ``_core.settle_lines`` but ``settle``, ``start`` and ``stop``, its outputs
    ``outputs`` (:func:`kernel_outputs`): the one place the kernel call is put together (the engine,
    and the benchmarks that time the compiled call alone)."""
    cls, item_ratio, supp_cat = _line_rules(enc, compiled, period)
    return dict(
        line_start=enc.line_start,
        line_claim=enc.line_claim,
        amount=enc.amount,
        quantity=enc.quantity,
        cls=cls,
        item_ratio=item_ratio,
        max_price=enc.max_price,
        class_ratio=np.ascontiguousarray(compiled.class_ratio[0]),
        supplementary_catalogue=supp_cat,
        per_fen=PRICE_QTY_PER_FEN,
        **outputs,
        **_settle_args(enc, benefit, factor, period, compiled, members, policy, base_year),
    )


def _reject_negative(enc: Encoded, sums: np.ndarray, dropped: np.ndarray) -> None:
    """Add the claims at ``dropped`` to ``enc.rejected`` as negative_claim_total, naming the sums
    that are negative (the strings gathered once for all of them, not one Arrow scalar at a time)."""
    s = sums[dropped]
    rows = enc.head_row[dropped]

    ids = enc.claim_dict.take(pa.array(enc.claim_code[dropped])).to_pylist()
    members = enc.ids("member", dropped).to_pylist()
    providers = enc.ids("provider", dropped).to_pylist()
    names = ("total", "self_pay", "first_self_pay") + tuple(
        f"eligible of class {k}" for k in ("A", "B", "special", "supplementary")
    )
    order = (TOTAL, SELF_PAY, FIRST_SELF_PAY, *range(ELIG_A, NSUMS))
    negative = (s[:, order] < 0).tolist()
    totals = s[:, TOTAL].tolist()
    for i, row in enumerate(rows.tolist()):
        what = ", ".join(n for n, neg in zip(names, negative[i]) if neg)
        enc.rejected.append(
            (
                ids[i],
                None,
                "negative_claim_total",
                f"negative {what} (a refund of something not billed)",
                members[i],
                providers[i],
                "total",
                str(yuan(totals[i])),
                *kept_values(enc.source, row),
            )
        )


def _settle_args(
    enc: Encoded,
    benefit: np.ndarray,
    factor: np.ndarray,
    period: np.ndarray,
    compiled: Compiled,
    members: Table,
    policy: Policy,
    base_year: int | None,
) -> dict:
    """The claim, member and policy arguments of ``_core.settle_lines`` (and ``settle_claims``, with
    ``sums``)."""
    # the credits of the years from B to this input's last, per member (contract §3)
    base = base_year if base_year is not None else 0
    last = max(int(enc.year.max()), base) if len(enc.year) else base
    c = compiled
    return dict(
        member_of_claim=enc.member,
        year=enc.year,
        period=period,
        setting=enc.setting,
        benefit=np.ascontiguousarray(benefit).view(np.uint8),
        factor=factor,
        level_row=enc.level_row,
        months=enc.months,
        category=np.ascontiguousarray(members["category"], dtype=np.int8),
        civil_servant=np.ascontiguousarray(members["civil_servant"]).view(np.uint8),
        balance=np.ascontiguousarray(members["account_balance"], dtype=np.int64),
        base_year=base,
        credit=member_credits(members, policy, base, last),
        block_of_setting=c.block_of_setting,
        B=c.B,
        band_from=c.band_from,
        band_pool=c.band_pool,
        band_supp=c.band_supp,
        band_flags=c.band_flags,
        ded=c.ded,
        acct_items=c.acct_items,
        direct=c.direct,
        lim_months=c.lim_months,
        lim_amount=c.lim_amount,
        lim_n=c.lim_n,
    )
