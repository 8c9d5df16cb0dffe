"""``adjudicate compare``: the same claims under two policies, and exactly what changes.

A reform is data, in the manner of OpenFisca's reforms: ``--set KEY=VALUE``
overlays values onto the parsed policy document (policy B, or policy A when
only one ``--policy`` is given, so that B = A + overlay), and the whole
document is validated again by the policy loader before anything runs.

The inputs are read once and adjudicated twice. Both results are aligned on
the same prepared claims, in settlement order, so a claim's two settlements
sit at the same position: no join, no sort, no string key (a claim can be
settled under one policy and rejected under the other: its line split, and
so the ``negative_claim_total`` check, depends on the policy). Every amount
is kept in integer fen until it is written, so each Δ column sums exactly to
(total under B − total under A). compare.parquet is written one row group at
a time from those arrays, and report.html is drawn from them, not read back.

Outputs (written atomically):

- ``compare.parquet``: one row per claim settled under A or B: ``claim_id,
  member_id, setting, settle_date, benefit_year, change`` (``unchanged``,
  ``changed``, ``new``: settled under B only, ``now_rejected``: settled under A
  only; readjudicate's words, A being before and B now), then ``<amount>_a, <amount>_b, <amount>_delta`` for
  each amount column of contract §4 (an amount is 0 under a policy that did
  not settle the claim);
- ``member_changes.parquet``: one row per member and benefit year: the totals of
  ``fund_pool, fund_supplementary, subsidy, account_paid, cash_paid`` under A
  and B and their difference;
- ``summary.json``: both policies (and the overrides), input digests, counts,
  totals A / B / Δ, members better off / worse off / unchanged and the
  distribution of the members' change in cash.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__, keep
from . import policy as P
from .money import fen_to_decimal, fen_to_decimal64, round_half_away, yuan
from .outputs import claim_amounts, decimals_for, label_array, parquet_options
from .schema import AMOUNTS, SETTINGS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Member-level amounts: who pays (the funds, the subsidy, the member's account, the member in cash).
MEMBER_AMOUNTS = ("fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid")
#: Percentiles reported for the members' changes (nearest rank: exact fen values).
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
#: What happened to a claim from A to B, as readjudicate says it from before to now.
CHANGES = ("unchanged", "changed", "new", "now_rejected")
#: The file each table of a compare part is written to (never an input table's name).
OUTPUT_FILES = {"claims": "compare.parquet", "members": "member_changes.parquet"}


# ---------------------------------------------------------------------------
# Policy overlays (--set)
# ---------------------------------------------------------------------------

_TOKEN = re.compile(r"([A-Za-z0-9_\-]+)|\[(\d+)\]")
#: Tables whose keys are names chosen by the policy author: a new key there
#: would be accepted by the loader and silently change nothing (a typo).
_NAMED_TABLES = {("parameters",), ("limits",), ("blocks",)}


def parse_override(text: str) -> tuple[str, list[str | int], Any]:
    """``KEY=VALUE`` → (key, path tokens, value). VALUE is a TOML value; a bare word is a string."""
    key, eq, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not eq or not key:
        raise P.PolicyError(f"--set {text!r}: expected KEY=VALUE, e.g. limits.fund_pool_annual.amount=50000")
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(key):
        index = m.group(2) is not None
        # a name follows a '.' (but the first has nothing before it); an [index] follows directly
        if key[pos : m.start()] != ("" if index or not tokens else "."):
            break
        tokens.append(int(m.group(2)) if index else m.group(1))
        pos = m.end()
    if pos != len(key) or not tokens or isinstance(tokens[0], int):
        raise P.PolicyError(
            f"--set {text!r}: {key!r} is not a policy key; write it like blocks.inpatient.scale.bands[0].pool.retired",
            key=key,
        )
    if not raw:
        raise P.PolicyError(f"--set {text!r}: no value after '='", key=key)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: the loader says whether a string fits here
    return key, tokens, value


def _show_path(tokens: Sequence[str | int]) -> str:
    out = ""
    for t in tokens:
        out += f"[{t}]" if isinstance(t, int) else (f".{t}" if out else t)
    return out


def apply_override(doc: dict, key: str, tokens: list[str | int], value: Any, file: Path) -> None:
    """Set one value in the parsed document; the path must lead through existing tables and arrays."""
    node: Any = doc
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        here = _show_path(tokens[:i]) or "the top level"
        if isinstance(tok, int):
            if not isinstance(node, list):
                raise P.PolicyError(f"--set: {here!r} is not a list, so it has no element [{tok}]", file, key)
            if tok >= len(node):
                raise P.PolicyError(f"--set: {here!r} has {len(node)} element(s); [{tok}] does not exist", file, key)
        else:
            if not isinstance(node, dict):
                hint = (
                    f"{here}={{ in_service = 0.90, retired = 0.95 }}"
                    if tok in ("in_service", "retired")
                    else f"{here}=VALUE"
                )
                raise P.PolicyError(
                    f"--set: {here!r} is {_kind(node)}, not a table, so it has no key {tok!r}; "
                    f"set it whole instead, e.g. --set '{hint}'",
                    file,
                    key,
                )
            if tok not in node and (not last or tuple(tokens[:i]) in _NAMED_TABLES or i == 0):
                there = ", ".join(map(str, node)) or "nothing"
                raise P.PolicyError(f"--set: no key {tok!r} in {here!r} of the policy file; there: {there}", file, key)
        if last:
            node[tok] = value
        else:
            node = node[tok]


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return f"a boolean ({v})"
    if isinstance(v, (int, float)):
        return f"a number ({v})"
    if isinstance(v, str):
        return f"a string ({v!r})"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def policy_with_overrides(name_or_path: str | Path, overrides: Sequence[str]) -> P.Policy:
    """The policy ``name_or_path`` with ``KEY=VALUE`` overrides applied, validated whole.

    The base file must itself be valid. Every key must name an existing table
    path (a new leaf key is allowed only where the loader checks its name, so
    a misspelt parameter, limit or block is an error, not a silent no-op).
    Errors are :class:`PolicyError` naming the key.
    """
    base = P.load(name_or_path)  # the base file's own errors first, with its own lines
    if not overrides:
        return base
    path = base.path
    text = path.read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    for o in overrides:
        key, tokens, value = parse_override(o)
        apply_override(doc, key, tokens, value, path)
    try:
        # The loader's document reader (policy.load minus the file): errors name
        # the key, at its line in the base file.
        return P.load_document(doc, path, text)
    except P.PolicyError as e:
        err = P.PolicyError(f"{e} (after --set {' --set '.join(overrides)})")
        err.file, err.key, err.line = e.file, e.key, e.line
        raise err from None


# ---------------------------------------------------------------------------
# Matching two sets of claim rows (shared with readjudicate)
# ---------------------------------------------------------------------------


def outer_join(left: pa.Table, right: pa.Table, keys: Sequence[str]) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Full outer join on ``keys``; other columns are renamed ``a.<name>`` (left) and ``b.<name>`` (right).

    Returns the joined table (a side's columns are null where it has no row)
    and boolean masks: row present on the left, on the right. Only the keys
    and row numbers go through the hash join; the columns are gathered after.
    """

    def rows(t: pa.Table, p: str) -> pa.Table:
        return t.select(list(keys)).append_column(f"{p}.__row", pa.array(np.arange(t.num_rows), pa.int64()))

    j = rows(left, "a").join(rows(right, "b"), keys=list(keys), join_type="full outer", coalesce_keys=True)
    cols = {k: j[k] for k in keys}
    for p, t in (("a", left), ("b", right)):
        idx = j[f"{p}.__row"]
        for c in t.column_names:
            if c not in keys:
                cols[f"{p}.{c}"] = t[c].take(idx)
    out = pa.table(cols)
    return out, _valid(j["a.__row"]), _valid(j["b.__row"])


def _valid(col: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.is_valid(col), dtype=bool) if len(col) else np.zeros(0, bool)


def fen_column(j: pa.Table, name: str) -> np.ndarray:
    """An int64 fen column of a joined table, 0 where the side is absent."""
    col = j[name]
    return np.asarray(pc.fill_null(col, 0).to_numpy(), dtype=np.int64) if j.num_rows else np.zeros(0, np.int64)


def either(j: pa.Table, name: str, prefer: str = "b") -> pa.ChunkedArray:
    """A column from the preferred side, else the other (e.g. member_id of a claim on either side)."""
    other = "a" if prefer == "b" else "b"
    return pc.coalesce(j[f"{prefer}.{name}"], j[f"{other}.{name}"])


def settlement_order(t: pa.Table, member: str, date: str, claim: str, *then: str) -> pa.Table:
    """Rows in the order of contract §3: member_id, settle_date, claim_id (strings as bytes)."""
    if t.num_rows == 0:
        return t
    keys = [(member, "ascending"), (date, "ascending"), (claim, "ascending")] + [(c, "ascending") for c in then]
    return t.take(pc.sort_indices(t, sort_keys=keys))


def claim_fen_table(r, rows: np.ndarray | None = None) -> pa.Table:
    """A run's settled claims with int64 fen amounts (the join payload); only the claim positions
    ``rows`` (ascending) when given."""
    e = r.enc

    def pick(v: np.ndarray) -> np.ndarray:
        return v if rows is None else v[rows]

    cols: dict[str, Any] = {
        "claim_id": e.claim_id if rows is None else e.claim_dict.take(pa.array(e.claim_code[rows])),
        "member_id": e.ids("member", rows),
        "setting": pa.DictionaryArray.from_arrays(pa.array(pick(e.setting).astype(np.int8)), pa.array(SETTINGS)).cast(
            pa.string()
        ),
        "settle_date": pa.array(pick(e.settle_date), pa.int32()).cast(pa.date32()),
        "benefit_year": pa.array(pick(e.year), pa.int16()),
        "provider_id": e.ids("provider", rows),
    }
    # the amounts of the picked claims only: the claim-level arrays of a result cut to them
    src = r if rows is None else replace(r, sums=r.sums[rows], settle=r.settle[rows])
    cols.update({k: pa.array(v, pa.int64()) for k, v in claim_amounts(src).items()})
    cols.update(keep.claim_columns(e, rows))  # --keep
    return pa.table(cols)


def money(fen: int) -> str:
    return str(yuan(int(fen)))


def distribution(fen: np.ndarray) -> dict[str, str | int]:
    """Exact summary of fen values: count, min, nearest-rank percentiles, max, mean (rounded to the fen)."""
    n = len(fen)
    if n == 0:
        return {"count": 0}
    s = np.sort(fen)
    out: dict[str, str | int] = {"count": n, "min": money(s[0])}
    for p in PERCENTILES:
        out[f"p{p}"] = money(s[max(0, math.ceil(p * n / 100) - 1)])
    out["max"] = money(s[-1])
    out["mean"] = money(round_half_away(int(s.sum()), n))
    return out


# ---------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------


def aligned_amounts(n: int, r) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A result's claim amounts in fen at the positions of the ``n`` prepared claims it settled
    (0 where this policy rejected the claim), and the mask of those it settled."""
    amounts = claim_amounts(r)
    if r.kept is None:
        return amounts, np.ones(n, bool)
    out = {}
    for k, v in amounts.items():
        full = np.zeros(n, np.int64)
        full[r.kept] = v
        out[k] = full
    return out, np.asarray(r.kept, bool)


def totals(r) -> dict[str, int]:
    """A result's total of each amount (fen): the amounts are linear in the kernel's columns, so
    claim_amounts of the columns' sums (one pass over each matrix, not one per amount)."""
    sums = replace(r, sums=r.sums.sum(axis=0, keepdims=True), settle=r.settle.sum(axis=0, keepdims=True))
    return {k: int(v[0]) for k, v in claim_amounts(sums).items()}


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start of each run of equal keys (rows sorted so that equal keys are together)."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.zeros(n, bool)
    new[0] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(new)


def member_deltas(
    member: np.ndarray, fa: dict[str, np.ndarray], fb: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per member (rows grouped by member, as in settlement order): Δcash and Δpaid (cash + account) in fen."""
    starts = _runs(member)
    if not len(starts):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d_cash = np.add.reduceat(fb["cash_paid"] - fa["cash_paid"], starts)
    d_paid = d_cash + np.add.reduceat(fb["account_paid"] - fa["account_paid"], starts)
    return d_cash, d_paid


def who_is_better_off(d_cash: np.ndarray, d_paid: np.ndarray) -> dict:
    """The summary's members part, from each member's Δcash and Δpaid."""
    return {
        "definition": "per member over all benefit years of the input; better off = pays less under B "
        "out of pocket (cash_paid + account_paid)",
        "count": len(d_paid),
        "better_off": int(np.count_nonzero(d_paid < 0)),
        "worse_off": int(np.count_nonzero(d_paid > 0)),
        "unchanged": int(np.count_nonzero(d_paid == 0)),
        "cash_paid_change": distribution(d_cash),
        "member_paid_change": distribution(d_paid),
    }


def compare_part(
    base,
    ra,
    rb,
    for_file: bool = False,
    claims: bool = True,
    rows_ready: Callable[[ClaimRows], None] | None = None,
) -> dict:
    """Of two results settled from the same prepared claims ``base`` (an Encoded), one part of a
    comparison: the compare rows (``rows``, a :class:`ClaimRows`; and as a table, ``claims``, unless
    ``claims`` is false), the members table, counts, totals under A and B (fen), and each member's
    Δcash and Δpaid. Parts of disjoint member ranges add up (:func:`summarise`).

    Both results are aligned on the prepared claims, already in settlement
    order (contract §3): no join and no sort. ``for_file``: the tables as
    files store them (zero-copy decimal64 amounts, labels as dictionaries; see
    :func:`outputs.parquet_options`). ``rows_ready`` is given the compare rows as soon as they are
    known, before the members table and the rest are built (``run_compare`` writes them meanwhile).
    """
    n = len(base.member)
    fa, in_a = aligned_amounts(n, ra)
    fb, in_b = aligned_amounts(n, rb)
    both = ra.kept is None and rb.kept is None  # every claim settled under both: nothing to gather
    u = None if both else np.flatnonzero(in_a | in_b)
    if u is not None:
        in_a, in_b = in_a[u], in_b[u]
        fa = {k: v[u] for k, v in fa.items()}
        fb = {k: v[u] for k, v in fb.items()}
    member = base.member if u is None else base.member[u]
    year = base.year if u is None else base.year[u]
    size = n if u is None else len(u)
    changed = np.zeros(size, bool)
    for k in AMOUNTS:
        changed |= fb[k] != fa[k]
    # the same words as readjudicate's adjustments (A = before, B = now); a claim settled under A
    # only was rejected under B (both policies read the same claims). Codes index CHANGES.
    change = changed.view(np.int8)  # 0 unchanged, 1 changed
    if not both:
        change = np.where(in_a & in_b, change, np.where(in_a, np.int8(3), np.int8(2))).astype(np.int8)
    by_change = np.bincount(change, minlength=len(CHANGES))
    rows = ClaimRows(base, u, fa, fb, change)
    if rows_ready is not None:
        rows_ready(rows)

    # members: per member and benefit year (runs of the settlement order)
    starts = _runs(member, year)
    dec = decimals_for(for_file)
    mcols: dict[str, Any] = {
        "member_id": rows.member_id.take(pa.array(starts)),
        "benefit_year": pa.array(year[starts], pa.int16()),
        "claims": pa.array(np.diff(np.r_[starts, size]), pa.int64()),
    }
    for k in MEMBER_AMOUNTS:
        a = np.add.reduceat(fa[k], starts) if len(starts) else np.zeros(0, np.int64)
        b = np.add.reduceat(fb[k], starts) if len(starts) else np.zeros(0, np.int64)
        mcols[f"{k}_a"], mcols[f"{k}_b"], mcols[f"{k}_delta"] = map(dec, (a, b, b - a))
    d_cash, d_paid = member_deltas(member, fa, fb)
    out = {
        "rows": rows,
        "members": pa.table(mcols),
        "counts": {
            "claims": size,
            "claims_changed": int(np.count_nonzero(changed)),
            "by_change": {w: int(c) for w, c in zip(CHANGES, by_change)},
            "member_years": len(starts),
        },
        "a": totals(ra),
        "b": totals(rb),
        "d_cash": d_cash,
        "d_paid": d_paid,
    }
    if claims:
        out["claims"] = rows.table(for_file)
    return out


#: Rows per row group of compare.parquet: its amounts are built for one group at a time, in buffers
#: used again for the next (a whole column at once would be fresh memory for every amount).
GROUP_ROWS = 1 << 17


class ClaimRows:
    """compare.parquet's rows of one part: the claims at positions ``u`` of ``base`` (None: all), their
    amounts under A and B (fen, aligned on those rows) and their ``change`` (codes of CHANGES).

    :meth:`write` builds the file's row groups one at a time; :meth:`table` the whole table."""

    def __init__(
        self, base, u: np.ndarray | None, fa: dict[str, np.ndarray], fb: dict[str, np.ndarray], change: np.ndarray
    ) -> None:
        self.base, self.u, self.fa, self.fb, self.change = base, u, fa, fb, change

    def __len__(self) -> int:
        return len(self.change)

    @cached_property
    def member_id(self) -> pa.Array:
        return self.base.member_id if self.u is None else self.base.member_id.take(pa.array(self.u))

    def _keys(self, for_file: bool) -> tuple[dict[str, Any], dict[str, pa.Array]]:
        """The columns before the amounts, and the --keep columns (after them), whole: the strings
        are gathered here, once."""
        b, u = self.base, self.u

        def at(v: np.ndarray) -> np.ndarray:
            return v if u is None else v[u]

        return {
            "claim_id": b.claim_id if u is None else b.claim_dict.take(pa.array(b.claim_code[u])),
            "member_id": self.member_id,
            "setting": label_array(at(b.setting).astype(np.int8), SETTINGS, for_file),
            "settle_date": pa.array(at(b.settle_date), pa.int32()).cast(pa.date32()),
            "benefit_year": pa.array(at(b.year), pa.int16()),
            "change": label_array(self.change, CHANGES, for_file),
        }, keep.claim_columns(b, u)

    def table(self, for_file: bool = False) -> pa.Table:
        cols, kept = self._keys(for_file)
        dec = decimals_for(for_file)
        for k in AMOUNTS:
            cols[f"{k}_a"] = dec(self.fa[k])
            cols[f"{k}_b"] = dec(self.fb[k])
            cols[f"{k}_delta"] = dec(self.fb[k] - self.fa[k])
        return pa.table({**cols, **kept})  # --keep, after the comparison's columns

    def write(self, writer: Callable[[pa.Table], None]) -> None:
        """Give ``writer`` the file's table (as :meth:`table` with ``for_file``) in slices of
        :data:`GROUP_ROWS` rows; a slice's amounts live in buffers that the next slice overwrites, so
        ``writer`` must be done with it when it returns (a Parquet writer encodes it)."""
        if decimals_for(True) is not fen_to_decimal64:  # an older pyarrow: decimal128 copies, whole
            writer(self.table(for_file=True))
            return
        keys, kept = self._keys(True)
        n, group_rows = len(self), GROUP_ROWS
        buf = np.empty((len(AMOUNTS), 3, min(n, group_rows)), np.int64)
        for i in range(0, n, group_rows):
            j = min(n, i + group_rows)
            cols = {name: col.slice(i, j - i) for name, col in keys.items()}
            for x, k in enumerate(AMOUNTS):
                a, b, d = buf[x, 0, : j - i], buf[x, 1, : j - i], buf[x, 2, : j - i]
                np.copyto(a, self.fa[k][i:j])
                np.copyto(b, self.fb[k][i:j])
                np.subtract(b, a, out=d)
                cols[f"{k}_a"], cols[f"{k}_b"], cols[f"{k}_delta"] = map(fen_to_decimal64, (a, b, d))
            cols.update({name: col.slice(i, j - i) for name, col in kept.items()})
            writer(pa.table(cols))


def reused_outputs(prep, per_claim: bool = False) -> dict[str, np.ndarray]:
    """Kernel outputs for ``prep`` (``engine.kernel_outputs``) to settle policy after policy into
    (``settle(into=...)``), so that a policy after the first touches no new memory: the per-line
    ones, which compare and sweep never read (empty: settled with ``line_funds=False`` the kernel
    only sums each claim's lines), and with ``per_claim`` all of them, for results read no more
    once the next policy is settled."""
    from .engine import LINE_OUTPUTS, kernel_outputs

    outs = kernel_outputs(len(prep.enc.amount), len(prep.enc.member), lines=False)
    return outs if per_claim else {k: outs[k] for k in LINE_OUTPUTS}


def _add(values: list) -> Any:
    """The sum of counts, or of dicts of counts key by key."""
    if isinstance(values[0], dict):
        return {k: sum(v[k] for v in values) for k in values[0]}
    return sum(values)


def summarise(parts: Sequence[dict]) -> tuple[dict, np.ndarray]:
    """The summary's counts / totals / members part of a comparison made in parts, and every member's Δcash."""
    counts = {k: _add([p["counts"][k] for p in parts]) for k in parts[0]["counts"]}
    a = {k: sum(p["a"][k] for p in parts) for k in AMOUNTS}
    b = {k: sum(p["b"][k] for p in parts) for k in AMOUNTS}
    d_cash = np.concatenate([p["d_cash"] for p in parts])
    d_paid = np.concatenate([p["d_paid"] for p in parts])
    totals = {k: {"a": money(a[k]), "b": money(b[k]), "delta": money(b[k] - a[k])} for k in AMOUNTS}
    return {"counts": counts, "totals": totals, "members": who_is_better_off(d_cash, d_paid)}, d_cash


def _np(col) -> np.ndarray:
    return np.asarray(pc.fill_null(col, 0).to_numpy(), dtype=np.int64) if len(col) else np.zeros(0, np.int64)


def _to_decimal(t: pa.Table, names: Sequence[str]) -> pa.Table:
    """The named int64 fen columns as decimal128(18, 2) yuan, exactly."""
    for name in names:
        i = t.column_names.index(name)
        t = t.set_column(i, name, fen_to_decimal(_np(t[name])))
    return t


def run_compare(
    claims,
    members,
    providers,
    catalogue,
    *,
    policies: Sequence[str],
    overrides: Sequence[str],
    out: Path,
    threads: int | None = None,
    progress=None,
    dataset: Path | None = None,
    partitions: int = 1,
) -> tuple[dict, np.ndarray]:
    """Load and validate both policies, read and encode the inputs once (or open ``dataset``),
    settle them twice, write the outputs. ``partitions`` > 1 (0: chosen from the input size) does it
    one member range at a time, for inputs larger than memory, with the same outputs.

    Returns the summary (as written to summary.json) and each member's Δcash in fen.
    """
    from .engine import Timer, settle
    from .outputs import atomic_dir, count_rejected_claims
    from .report import REPORT_NAME, report_html
    from .stream import BaseYears, prepared_parts, source_paths

    say = progress or (lambda s: None)
    # both policies, overrides included, are validated before any input is read
    policy_a = P.load(policies[0])
    policy_b = policy_with_overrides(policies[-1], overrides)
    timer = Timer()
    say("read")
    sources = source_paths(claims, members, providers, catalogue, dataset)
    with (
        atomic_dir(out, sources) as tmp,
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
        bases = BaseYears(2)
        writers: dict[str, pq.ParquetWriter] = {}
        # compare.parquet, most of the writing, is written on a thread of its own while the members
        # table, the summary and the report are built (Arrow releases the GIL while it encodes)
        rows_writing = _RowsWriting(partial(_append, writers, tmp, "claims"))
        try:
            while True:  # once, unless a later member range settles an earlier year than the first (stream.py)
                bases.start()
                parts, rejected_a, rejected_b = [], [], []
                for prep in preps():
                    # the comparison reads the claims' amounts only: B's line split is written over A's
                    lines = reused_outputs(prep)
                    say("policy A")
                    ra = settle(
                        prep, policy_a, threads=threads, timer=timer, line_funds=False, base_year=bases[0], into=lines
                    )
                    bases.saw(0, ra)
                    say("policy B")
                    rb = settle(
                        prep, policy_b, threads=threads, timer=timer, line_funds=False, base_year=bases[1], into=lines
                    )
                    bases.saw(1, rb)
                    say("compare")
                    with timer("compare"):
                        p = compare_part(prep.enc, ra, rb, for_file=True, claims=False, rows_ready=rows_writing.start)
                    with timer("write"):
                        _append(writers, tmp, "members", p.pop("members"))
                    p.pop("rows")
                    parts.append(p)
                    rejected_a += ra.enc.rejected
                    rejected_b += rb.enc.rejected
                    del ra, rb, p, lines
                if not bases.again():
                    break
                with timer("write"):  # the pass again, into new files
                    rows_writing.wait()
                for w in writers.values():
                    w.close()
                writers.clear()
            say("write")
            part, d_cash = summarise(parts)
            d_paid = np.concatenate([p["d_paid"] for p in parts])
            summary = {
                "adjudicate_version": __version__,
                "policy_a": _policy_info(policy_a),
                "policy_b": {**_policy_info(policy_b), "overrides": list(overrides)},
                "inputs": digests,
                **part,
                "rejected_claims": {"a": count_rejected_claims(rejected_a), "b": count_rejected_claims(rejected_b)},
            }
            if ranges > 1:
                summary["partitions"] = ranges
            with timer("report"):  # its figures from the arrays in memory, not member_changes.parquet read back
                html = report_html(tmp, "compare", summary, member_paid_change=d_paid)
            with timer("write"):
                rows_writing.wait()
        except BaseException:
            rows_writing.stop()  # it must not outlive the folder, nor the interpreter (outputs.Background)
            raise
        finally:
            for w in writers.values():
                w.close()
        summary["timings_seconds"] = {k: round(v, 4) for k, v in timer.t.items()}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / REPORT_NAME).write_text(html, encoding="utf-8")
    return summary, d_cash


class _RowsWriting:
    """compare.parquet's rows of one part at a time, written on a thread of their own (``write``: what
    takes each row group) while the caller builds the rest; a part's rows wait for the last part's."""

    def __init__(self, write: Callable[[pa.Table], None]) -> None:
        self.write = write
        self.thread: Any = None

    def start(self, rows: ClaimRows) -> None:
        from .outputs import Background

        self.wait()
        self.thread = Background(partial(rows.write, self.write), "adjudicate-compare")
        self.thread.start()

    def wait(self) -> None:
        """Until the rows given last are written; raises the writer's error. Interrupted (Ctrl-C), the
        thread is still known, so that :meth:`stop` waits for it before the files are closed."""
        if self.thread is not None:
            self.thread.result()
            self.thread = None

    def stop(self) -> None:
        """After an error of the caller: wait for the thread, whatever it raised."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None


def _append(writers: dict[str, pq.ParquetWriter], folder: Path, name: str, table: pa.Table) -> None:
    """Write ``table`` to the output file of table ``name`` in ``folder``, opened at its first table
    with the writer options of every output (outputs.parquet_options)."""
    if name not in writers:
        writers[name] = pq.ParquetWriter(folder / OUTPUT_FILES[name], table.schema, **parquet_options(table.schema))
    writers[name].write_table(table)


def _policy_info(p: P.Policy) -> dict:
    return {"name": p.name, "version": p.version, "file": str(p.path)}


# ---------------------------------------------------------------------------
# Text histogram (no terminal library)
# ---------------------------------------------------------------------------


def _nice(fen: int) -> int:
    """The smallest 1, 2 or 5 × 10^k yuan bin width (in fen) of at least ``fen``."""
    w = 100
    while True:
        for m in (1, 2, 5):
            if w * m >= fen:
                return w * m
        w *= 10


def histogram(delta_fen: np.ndarray, bins: int = 8, width: int = 40) -> list[str]:
    """A text histogram of members' Δcash (yuan), for looking rather than reading.

    Unchanged members have their own row. The bins are equal, of a round
    width (1, 2 or 5 × 10^k yuan), with 0 on an edge; they span the 1st to
    99th percentile of the non-zero changes, and what lies beyond goes to an
    open row at either end, so a few outliers do not squash the picture.
    """
    n = len(delta_fen)
    if n == 0:
        return ["no members"]
    zero = int(np.count_nonzero(delta_fen == 0))
    nz = np.sort(delta_fen[delta_fen != 0])
    lines = ["members by change in cash paid (B − A, yuan):"]
    if len(nz) == 0:
        return lines + [f"  every member ({n:,}) pays the same cash"]
    lo = min(int(nz[len(nz) // 100]), 0)
    hi = max(int(nz[max(0, math.ceil(len(nz) * 99 / 100) - 1)]), 0)
    w = _nice(max(1, -(-(hi - lo) // bins)))
    first = (lo // w) * w
    last = -(-hi // w) * w + (w if hi > 0 and hi % w == 0 else 0)  # hi itself falls in the last bin
    edges = list(range(first, last + 1, w))

    def count(a: int | None, b: int | None) -> int:
        i = 0 if a is None else int(np.searchsorted(nz, a, "left"))
        j = len(nz) if b is None else int(np.searchsorted(nz, b, "left"))
        return j - i

    rows: list[tuple[str, int]] = []
    if count(None, first):
        rows.append((f"< {_short(first)}", count(None, first)))
    for a, b in zip(edges[:-1], edges[1:]):
        if a == 0:
            rows.append(("0 (unchanged)", zero))
        rows.append((f"[{_short(a)}, {_short(b)})", count(a, b)))
    if last == 0:
        rows.append(("0 (unchanged)", zero))
    if count(last, None):
        rows.append((f"≥ {_short(last)}", count(last, None)))
    # bars are scaled to the largest row of members whose cash changed; the
    # unchanged row, usually far larger, is cut at the full width (marked ▶)
    top = max([k for label, k in rows if not label.startswith("0 (")] + [1])
    pad = max(len(label) for label, _ in rows)
    for label, k in rows:
        n_bar = round(k * width / top)
        bar = "█" * min(n_bar, width) + ("▶" if n_bar > width else "")
        if k and not bar:
            bar = "▏"
        lines.append(f"  {label:>{pad}} {bar} {k:,}")
    return lines


def _short(fen: int) -> str:
    v = yuan(fen)
    return f"{v:,.0f}" if v == v.to_integral_value() else f"{v:,}"
