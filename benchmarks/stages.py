"""The engine's compiled stages called directly, as ``engine.adjudicate`` calls them.

Shared by ``test_kernel_bench.py`` and ``run.py`` (the "compiled calls alone"
figures). ``settle_lines`` is the engine's kernel pass (``engine._kernel``: line
split, negative-claim check and settlement in one call); ``split_lines`` and
``settle_claims`` are its two halves as separate calls. The argument lists mirror
``engine._kernel`` / the allocation in ``engine.adjudicate``; keep them in step.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import bench_data
import numpy as np

from adjudicate.layout import ClaimSum, Settled


def prepare(folder: Path, inputs=None) -> SimpleNamespace:
    """Read (unless given) and encode one data set; run each stage once so later stages have inputs."""
    from adjudicate import _core, engine
    from adjudicate import policy as P
    from adjudicate.encode import benefit_factors, encode

    if inputs is None:
        f = bench_data.paths(folder)
        inputs = engine.read_inputs([f["claims"]], [f["members"]], [f["providers"]], [f["catalogue"]])
    pol = P.load("prefecture-employee")
    compiled = P.compile_policy(pol)
    enc = encode(inputs.claims, inputs.members, inputs.providers, inputs.catalogue)
    period = pol.period_index(enc.settle_date)  # as engine.adjudicate
    benefit, factor = benefit_factors(pol, enc, inputs.providers, period)
    cls, item_ratio, supp_cat = engine._line_rules(enc, compiled, period)
    ns = SimpleNamespace(
        core=_core,
        engine=engine,
        encode=encode,
        inputs=inputs,
        policy=pol,
        compiled=compiled,
        enc=enc,
        benefit=benefit,
        ben8=np.ascontiguousarray(benefit).view(np.uint8),
        factor=factor,
        lines=len(enc.amount),
        claims=len(enc.member),
        qty_scale=engine.PRICE_QTY_PER_FEN,
        period=period,
        cls=cls,
        item_ratio=item_ratio,
        supp_cat=supp_cat,
        class_ratio=np.ascontiguousarray(compiled.class_ratio[0]),
    )
    args = split_args(ns)
    _core.split_lines(*args)
    ns.sums, ns.elig = args[13], args[12]
    m = inputs.members
    ns.category = np.ascontiguousarray(m["category"], dtype=np.int8)
    ns.civil = np.ascontiguousarray(m["civil_servant"]).view(np.uint8)
    ns.balance = np.ascontiguousarray(m["account_balance"], dtype=np.int64)
    from adjudicate.account import member_credits

    ns.base_year = engine.first_year(enc) or 0
    last = max(int(enc.year.max()), ns.base_year) if ns.claims else ns.base_year
    ns.credit = member_credits(m, pol, ns.base_year, last)
    ns.settle = np.zeros((ns.claims, len(Settled)), np.int64)
    settle(ns)
    ns.pool = np.ascontiguousarray(ns.settle[:, engine.POOL])
    ns.share = np.zeros(ns.lines, np.int64)
    return ns


def split_args(ns) -> tuple:
    """Fresh arguments for one ``_core.split_lines`` call over every line (outputs zeroed)."""
    e = ns.enc
    nl, nc = ns.lines, ns.claims
    return (
        e.line_claim,
        e.amount,
        e.quantity,
        ns.cls,
        ns.item_ratio,
        e.max_price,
        ns.ben8,
        ns.class_ratio,
        ns.supp_cat,
        ns.qty_scale,
        np.empty(nl, np.int64),
        np.empty(nl, np.int64),
        np.empty(nl, np.int64),
        np.zeros((nc, len(ClaimSum)), np.int64),
        0,
        nl,
    )


def settle(ns) -> None:
    """One ``_core.settle_claims`` call over every claim."""
    e, c = ns.enc, ns.compiled
    ns.core.settle_claims(
        e.member,
        e.year,
        ns.period,
        e.setting,
        ns.ben8,
        ns.factor,
        e.level_row,
        e.months,
        ns.sums,
        ns.category,
        ns.civil,
        ns.balance,
        ns.base_year,
        ns.credit,
        c.block_of_setting,
        c.B,
        c.band_from,
        c.band_pool,
        c.band_supp,
        c.band_flags,
        c.ded,
        c.acct_items,
        c.direct,
        c.lim_months,
        c.lim_amount,
        c.lim_n,
        ns.settle,
        0,
        ns.claims,
    )


def kernel_kw(ns, outputs: dict) -> dict:
    """The engine's arguments of ``_core.settle_lines`` (``engine.kernel_args``) into ``outputs``."""
    e = ns.enc
    return ns.engine.kernel_args(
        e, ns.benefit, ns.factor, ns.period, ns.compiled, ns.inputs.members, ns.policy, ns.base_year, outputs
    )


def kernel_pass(ns, kw: dict, threads: int) -> tuple[float, float]:
    """One kernel pass over every claim as the engine runs it (``settle_lines`` on the engine's
    member-aligned ranges, ``threads`` threads): (wall seconds, CPU seconds of every thread)."""
    ranges = ns.engine.thread_ranges(ns.enc.member, threads)

    def run(a: int, b: int) -> float:
        c0 = time.thread_time()
        ns.core.settle_lines(**kw, settle=True, start=a, stop=b)
        return time.thread_time() - c0

    t0 = time.perf_counter()
    cpu = ns.engine._parallel(run, ranges, threads)
    return time.perf_counter() - t0, sum(cpu)


def output_bytes(outputs: dict) -> int:
    return sum(a.nbytes for a in outputs.values())


def time_kernel(ns, threads_list=(1, 2), repeat: int = 5) -> dict:
    """The kernel pass judged apart from the machine's first touch of fresh memory.

    Per thread count, the medians of ``repeat`` passes (at least 3): ``warm``, into outputs
    allocated and touched (written) beforehand, the same arrays every time: the compiled
    call's own speed; ``fresh``, into outputs allocated just before and never touched, as a run
    pays it. ``first_touch`` = fresh − warm: what the operating system charges for the output
    pages (``output_bytes`` of them). Thread counts alternate within each repeat, so a load
    that comes and goes weighs on both alike."""
    e = ns.enc
    warm_out = ns.engine.kernel_outputs(ns.lines, ns.claims)
    for a in warm_out.values():
        a.fill(0)  # touched: every page mapped before any timing
    warm_kw = kernel_kw(ns, warm_out)
    t: dict = {th: {"warm": [], "warm_cpu": [], "fresh": [], "fresh_cpu": []} for th in threads_list}
    kernel_pass(ns, warm_kw, 1)  # the inputs' pages read once, caches as after encode
    for _ in range(max(repeat, 3)):
        for th in threads_list:
            w, wc = kernel_pass(ns, warm_kw, th)
            fresh = ns.engine.kernel_outputs(ns.lines, ns.claims)
            f, fc = kernel_pass(ns, kernel_kw(ns, fresh), th)
            del fresh
            for k, v in (("warm", w), ("warm_cpu", wc), ("fresh", f), ("fresh_cpu", fc)):
                t[th][k].append(v)
    res: dict = {
        "output_bytes": output_bytes(warm_out),
        "lines": ns.lines,
        "claims": len(e.member),
        "repeat": max(repeat, 3),
    }
    for th in threads_list:
        med = {k: statistics.median(v) for k, v in t[th].items()}
        med["first_touch"] = max(med["fresh"] - med["warm"], 0.0)
        med["per_core"] = ns.lines / med["warm"] / th
        med["per_cpu_s"] = ns.lines / med["warm_cpu"]
        res[th] = med
    return res


def settle_lines(ns) -> None:
    """One ``_core.settle_lines`` call over every claim (the engine's kernel pass), into fresh outputs."""
    kw = kernel_kw(ns, ns.engine.kernel_outputs(ns.lines, ns.claims))
    t0 = time.perf_counter()
    ns.core.settle_lines(**kw, settle=True, start=0, stop=ns.claims)
    ns.last = time.perf_counter() - t0


def allocate(ns) -> None:
    """One ``_core.allocate`` call (fund_pool over every claim's lines)."""
    ns.core.allocate(ns.enc.line_start, ns.pool, ns.elig, ns.share, 0, ns.claims)


def time_compiled(ns, repeat: int) -> dict:
    """Median seconds of each compiled call alone, one thread, all claims in one call."""
    out = {}
    for name, fn in (
        ("settle_lines", lambda: settle_lines(ns)),
        ("split_lines", lambda: ns.core.split_lines(*split_args(ns))),
        ("settle_claims", lambda: settle(ns)),
        ("allocate", lambda: allocate(ns)),
    ):
        ts = []
        for _ in range(max(repeat, 3)):
            if name == "split_lines":
                args = split_args(ns)  # fresh outputs, not timed
                t0 = time.perf_counter()
                ns.core.split_lines(*args)
            elif name == "settle_lines":  # times itself, without making its arguments
                fn()
                ts.append(ns.last)
                continue
            else:
                t0 = time.perf_counter()
                fn()
            ts.append(time.perf_counter() - t0)
        out[name] = statistics.median(ts)
    return out
