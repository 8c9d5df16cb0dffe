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


def settle_lines(ns) -> None:
    """One ``_core.settle_lines`` call over every claim (the engine's kernel pass), into fresh outputs."""
    e = ns.enc
    nl, nc = ns.lines, ns.claims
    args = ns.engine._settle_args(
        e, ns.benefit, ns.factor, ns.period, ns.compiled, ns.inputs.members, ns.policy, ns.base_year
    )
    fresh = [np.empty(nl, np.int64) for _ in range(3)]
    t0 = time.perf_counter()
    ns.core.settle_lines(
        e.line_start, e.amount, e.quantity, ns.cls, ns.item_ratio, e.max_price, ns.class_ratio, ns.supp_cat,
        ns.qty_scale, *fresh, np.empty((nc, len(ClaimSum)), np.int64), np.empty(nc, np.uint8),
        **args, out=np.empty((nc, len(Settled)), np.int64), settle=True, start=0, stop=nc,
    )  # fmt: skip
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
