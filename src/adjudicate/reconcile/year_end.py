"""Year-end reconciliation as a library call: read, settle providers, funds and ledger, write.

The command and its terminal report are in ``cli/reconcile.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..errors import InputError

STAGES = ("read", "providers", "ledger", "funds", "write")
OUTPUTS = ("provider_settlement.parquet", "funds.parquet", "funds_monthly.parquet", "ledger.parquet", "summary.json")


@dataclass
class Reconciliation:
    providers: object
    funds: object
    funds_monthly: object
    ledger: object
    summary: dict


def run_policy(settlements, policy=None):
    """The policy of the run whose settlements are reconciled: ``policy`` (a name, a file or a
    ``Policy``), else the one named in the run's summary.json beside the settlements."""
    from .. import policy as P

    if isinstance(policy, P.Policy):
        return policy
    if policy is not None:
        return P.load(policy)
    for s in map(Path, settlements):
        summary = (s if s.is_dir() else s.parent) / "summary.json"
        try:
            recorded = json.loads(summary.read_text(encoding="utf-8"))["policy"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        path = Path(str(recorded.get("file", "")))
        found = (
            P.load(path)
            if path.suffix == ".toml" and path.is_file()
            else (P.load(recorded["name"]) if recorded.get("name") in P.shipped() else None)
        )
        if found is None or found.version != recorded.get("version"):
            raise InputError(
                f"the run used policy {recorded.get('name')!r} {recorded.get('version')!r}, which is "
                "not found as it was; give it with --policy (its [account.credit] gives the ledger's "
                "credits, as in settlement)",
                summary,
            )
        return found
    raise InputError(
        "no summary.json of a run beside the settlements tells which policy the run used; give it "
        "with --policy (its [account.credit] gives the ledger's credits, as in settlement)"
    )


def reconcile(
    settlements,
    providers,
    members,
    advances=None,
    income=None,
    opening=None,
    rules=None,
    reward_rate: Decimal | None = None,
    reserve_window: int = 12,
    year: int | None = None,
    progress=None,
    policy=None,
) -> Reconciliation:
    """Compute every output in memory (tables and summary); nothing is written.

    ``policy`` is the policy the run used (name, file or ``Policy``); by default
    the one its summary.json names."""
    import numpy as np

    from .. import __version__
    from ..schema import MEMBERS, PROVIDERS
    from . import tables as T
    from .funds import statement
    from .ledger import ledger
    from .provider import settle_providers
    from .rules import load_rules

    say = progress or (lambda s: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say("read")
    r = load_rules(rules)
    pol = run_policy(settlements, policy)
    if reward_rate is not None:
        bp = Decimal(reward_rate) * 10_000
        if bp != bp.to_integral_value() or not 0 <= bp <= 10_000:
            raise InputError(f"--reward-rate {reward_rate} must be a fraction in 0..1 in whole basis points")
        r = r.with_reward(int(bp))
    # settlements, providers and members are required by the command (so never None here)
    st = T.read(T.SETTLEMENTS, settlements)
    assert st is not None
    T.check_settlements(st)
    pv = T.read(PROVIDERS, providers)
    mb = T.read(MEMBERS, members)
    assert pv is not None and mb is not None
    T.check_unique(pv, ("provider_id",))
    T.check_unique(mb, ("member_id",))
    inc = T.read(T.INCOME, income)
    opn = T.read(T.OPENING, opening)
    adv = T.read(T.ADVANCES, advances)
    seen = np.unique(st["benefit_year"])
    if year is not None:
        years = np.array([year], np.int64)
    elif len(seen):
        years = seen.astype(np.int64)
    else:
        raise InputError(
            "the settlements hold no claims, so the benefit year is unknown; give it with --year", st.files[0]
        )
    Y = T.Year(years)
    # the account balances stand on 1 January of the base year B, the run's earliest benefit year
    base_year = int(seen.min()) if len(seen) else int(years[0])
    if years[0] < base_year:
        raise InputError(
            f"year {int(years[0])} is before {base_year}, the earliest benefit year of the settlements: "
            f"members.account_balance is the balance on 1 January {base_year} (contract §3)",
            st.files[0],
        )
    if year is not None and len(seen) and year not in seen:  # after the base-year check: that one says more
        raise InputError(
            f"--year {year}: the settlements hold no claim of benefit year {year} (they hold "
            + ", ".join(str(int(y)) for y in seen)
            + "); a statement of that year would be empty",
            st.files[0],
        )
    timings["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("providers")
    prov_table, prov_sum = settle_providers(st, pv, Y, r, adv, int(years[0]) if len(years) == 1 else None)
    timings["providers"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("ledger")
    led, led_sum, account_opening = ledger(st, mb, Y, pol, base_year)
    timings["ledger"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("funds")
    funds, monthly, fund_sum = statement(st, Y, inc, opn, account_opening, reserve_window, base_year)
    timings["funds"] = time.perf_counter() - t0

    digests: dict[str, str] = {}
    for t in (st, pv, mb, inc, opn, adv):
        if t is not None:
            digests.update(t.digests)
    impossible = T.impossible(led_sum)
    _, in_years = Y.index(st["benefit_year"])
    account = {f["benefit_year"]: f for f in fund_sum["rows"] if f["fund"] == "account"}
    warnings = []
    if inc is None:
        warnings.append(
            "no --income given: every fund's income is 0, so the year balance, the closing balance "
            "and the months of reserve show only what was spent"
        )
    if opn is None:
        warnings.append(
            "no --opening given: the pooled, supplementary and subsidy funds open at 0 (the personal "
            "accounts open at the members' balances), so closing balances and months of reserve are "
            "not the funds' real position"
        )
    summary = {
        "adjudicate_version": __version__,
        "warnings": warnings,
        "rules": r.describe() | {"reward_rate": str(Decimal(r.reward_bp) / 10_000)},
        "policy": {"name": pol.name, "version": pol.version, "file": str(pol.path)},
        "years": [int(y) for y in years],
        "reserve_window_months": reserve_window,
        "counts": {"settlement_rows": st.rows, "settlement_rows_in_years": int(np.count_nonzero(in_years))},
        "providers": prov_sum,
        "funds": fund_sum,
        "ledger": led_sum,
        "impossible": impossible,
        "identities_hold": bool(
            not any(impossible.values())
            and fund_sum["identity_holds"]
            and prov_sum["balance"] == prov_sum["due"] - prov_sum["advances"]
            and led_sum["closing"] == led_sum["opening"] - led_sum["spent"]
            and led_sum["chained"]
            and led_sum["spent"] == sum(a["expenditure"] for a in account.values())
        ),
        "inputs": digests,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
    }
    return Reconciliation(prov_table, funds, monthly, led, summary)


def write(rec: Reconciliation, out: Path) -> dict:
    """Write every output into ``out`` atomically; returns the summary as written (yuan as text)."""
    import pyarrow.parquet as pq

    from ..outputs import atomic_dir
    from ..report import write_report

    s = as_yuan(rec.summary)
    with atomic_dir(out, rec.summary["inputs"]) as tmp:
        pq.write_table(rec.providers, tmp / "provider_settlement.parquet")
        pq.write_table(rec.funds, tmp / "funds.parquet")
        pq.write_table(rec.funds_monthly, tmp / "funds_monthly.parquet")
        pq.write_table(rec.ledger, tmp / "ledger.parquet")
        (tmp / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_report(tmp, "reconcile")
    return s


#: Summary keys that hold fen (written as yuan text, exact).
_MONEY = {
    "quota_total",
    "fund_pool",
    "due",
    "advances",
    "balance",
    "over_ceiling",
    "borne_by_provider",
    "opening",
    "income",
    "expenditure",
    "year_balance",
    "closing",
    "spent",
    "credit",
    "next_opening",
    "contributions",
    "interest",
    "prepayments",
    "fiscal_subsidy",
    "other",
}


def as_yuan(x, key: str | None = None):
    """The summary with money as exact yuan text ('1234.50') and months of reserve as '8.65'."""
    from .exact import yuan_text

    if isinstance(x, dict):
        return {k: as_yuan(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [as_yuan(v, key) for v in x]
    if isinstance(x, int) and not isinstance(x, bool) and key in _MONEY:
        return yuan_text(x)
    if key == "months_of_reserve" and x is not None:
        return yuan_text(x)  # hundredths, like fen
    return x
