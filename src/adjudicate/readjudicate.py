"""``adjudicate readjudicate``: re-run, and write only the adjustments against an earlier run.

The earlier run is the output folder of ``adjudicate run`` (``settlements.parquet``,
optionally ``lines.parquet`` and ``summary.json``), or of an earlier
``readjudicate`` (its ``current/`` folder is used). The claims are matched by
``claim_id`` with one vectorised outer join; every amount stays in integer fen,
so for every amount column the Δ of the adjustments sums exactly to
(current total − previous total): unchanged claims contribute nothing, new
claims count from 0, claims no longer settled count down to 0.

Outputs (written atomically):

- ``adjustments.parquet``: one row per claim whose amounts changed
  (``changed``), that is settled now and was not (``new``), or that was
  settled and is not any more: ``now_rejected`` (in this run's rejections) or
  ``removed`` (absent from the inputs). Columns: ``claim_id, member_id,
  previous_member_id, settle_date, kind``, then ``<amount>_previous,
  <amount>_current, <amount>_delta`` for each amount column of contract §4;
- ``line_adjustments.parquet`` (when the earlier run has ``lines.parquet``):
  the lines of those claims that differ (amount, class or item), or that
  appeared or went: ``claim_id, line_no, kind, item_code, class_previous,
  class_current`` and the line amounts previous / current / delta. The line
  Δ of an adjusted claim sums exactly to its claim Δ (fund_pool,
  fund_supplementary, self_pay, first_self_pay, eligible);
- ``summary.json``: counts by kind, the Δ totals, both runs' policy, input
  digests and totals;
- ``current/``: the complete outputs of this run (use it as the next
  ``--previous``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .inputs import InputError
from .money import AmountError, to_fen
from .outputs import AMOUNTS

#: Amount columns of lines.parquet (contract §4).
LINE_AMOUNTS = ("self_pay", "first_self_pay", "eligible", "fund_pool", "fund_supplementary")
KINDS = ("changed", "new", "removed", "now_rejected")


# ---------------------------------------------------------------------------
# The earlier run
# ---------------------------------------------------------------------------

def previous_folder(d: Path) -> Path:
    """The folder holding the earlier run's settlements: ``d``, or ``d/current`` after a readjudicate."""
    d = Path(d)
    if (d / "settlements.parquet").is_file():
        return d
    if (d / "current" / "settlements.parquet").is_file():
        return d / "current"
    if not d.is_dir():
        raise InputError("the --previous folder does not exist", d)
    raise InputError("no settlements.parquet here (nor in current/): --previous takes the --out folder of an "
                     "earlier 'adjudicate run' or 'adjudicate readjudicate'", d)


def _read(path: Path, columns: Sequence[str], amounts: Sequence[str]) -> pa.Table:
    """An earlier output file's columns, amounts as int64 fen; errors name the file and column."""
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot be read: {str(e).splitlines()[0]}", path) from None
    for c in list(columns) + list(amounts):
        if c not in names:
            raise InputError("missing column (is this an output folder of 'adjudicate run'?)", path, c)
    try:
        t = pq.read_table(path, columns=list(columns) + list(amounts))
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot be read: {str(e).splitlines()[0]}", path) from None
    for c in amounts:
        try:
            fen = to_fen(t[c], c)
        except AmountError as e:
            raise InputError(str(e), path, c, e.row) from None
        t = t.set_column(t.column_names.index(c), c, pa.array(fen, pa.int64()))
    key = t["claim_id"] if "line_no" not in t.column_names else None
    if key is not None and t.num_rows and pc.count_distinct(key).as_py() != t.num_rows:
        raise InputError("a claim_id appears twice: not the settlements of one run", path, "claim_id")
    return t


def read_previous(folder: Path) -> tuple[pa.Table, pa.Table | None, dict | None, Path]:
    """(settlements in fen, lines in fen or None, summary.json or None, the folder read)."""
    f = previous_folder(folder)
    settlements = _read(f / "settlements.parquet", ["claim_id", "member_id", "settle_date"], AMOUNTS)
    lines = None
    if (f / "lines.parquet").is_file():
        lines = _read(f / "lines.parquet", ["claim_id", "line_no", "item_code", "class"], LINE_AMOUNTS)
    summary = None
    if (f / "summary.json").is_file():
        try:
            summary = json.loads((f / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot be read as JSON: {e}", f / "summary.json") from None
        if not isinstance(summary, dict):
            raise InputError("expected a JSON object", f / "summary.json")
    return settlements, lines, summary, f


def current_lines_fen(r) -> pa.Table:
    """This run's lines (as lines.parquet) with int64 fen amounts."""
    from .schema import LINE_CLASSES
    e = r.enc
    t = {
        "claim_id": e.claim_id.take(pa.array(e.line_claim)),
        "line_no": pa.array(e.line_no.astype(np.int32)),
        "item_code": e.item_code,
        "class": pa.DictionaryArray.from_arrays(pa.array(e.cls), pa.array(LINE_CLASSES)).cast(pa.string()),
    }
    for k, v in zip(LINE_AMOUNTS, (r.line_self_pay, r.line_fsp, r.line_eligible, r.line_pool, r.line_supp)):
        t[k] = pa.array(v, pa.int64())
    return pa.table(t)


# ---------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------

def claim_adjustments(previous: pa.Table, current: pa.Table, rejected_ids: pa.Array) -> tuple[pa.Table, dict]:
    """Adjustment rows in fen (settlement order) and the Δ totals in fen, including unchanged claims."""
    from .compare import either, fen_column, outer_join, settlement_order

    j, was, now = outer_join(previous, current, ["claim_id"])
    prev = {k: fen_column(j, f"a.{k}") for k in AMOUNTS}
    cur = {k: fen_column(j, f"b.{k}") for k in AMOUNTS}
    differs = np.zeros(j.num_rows, bool)
    for k in AMOUNTS:
        differs |= prev[k] != cur[k]
    rejected_now = np.asarray(pc.is_in(j["claim_id"], value_set=rejected_ids), dtype=bool) if j.num_rows \
        else np.zeros(0, bool)
    kind = np.full(j.num_rows, "", dtype=object)
    kind[was & now & differs] = "changed"
    kind[~was & now] = "new"
    kind[was & ~now] = "removed"
    kind[was & ~now & rejected_now] = "now_rejected"
    cols: dict[str, Any] = {
        "claim_id": j["claim_id"],
        "member_id": either(j, "member_id", "b"),
        "previous_member_id": j["a.member_id"],
        "settle_date": either(j, "settle_date", "b"),
        "kind": pa.array(kind, pa.string()),
    }
    for k in AMOUNTS:
        cols[f"{k}_previous"] = pa.array(prev[k], pa.int64())
        cols[f"{k}_current"] = pa.array(cur[k], pa.int64())
        cols[f"{k}_delta"] = pa.array(cur[k] - prev[k], pa.int64())
    t = pa.table(cols).filter(pa.array(kind != ""))
    t = settlement_order(t, "member_id", "settle_date", "claim_id")
    deltas = {k: int(cur[k].sum() - prev[k].sum()) for k in AMOUNTS}
    return t, deltas


def line_adjustments(previous: pa.Table, current: pa.Table, adjusted: pa.Table) -> pa.Table:
    """Lines of the adjusted claims that differ, appeared or went; in the adjustments' order, then line_no."""
    from .compare import either, fen_column, outer_join

    ids = adjusted["claim_id"]
    previous = previous.filter(pc.is_in(previous["claim_id"], value_set=ids))
    current = current.filter(pc.is_in(current["claim_id"], value_set=ids))
    j, was, now = outer_join(previous, current, ["claim_id", "line_no"])
    pos = pc.index_in(j["claim_id"], value_set=ids)  # every line here belongs to an adjusted claim
    prev = {k: fen_column(j, f"a.{k}") for k in LINE_AMOUNTS}
    cur = {k: fen_column(j, f"b.{k}") for k in LINE_AMOUNTS}
    differs = np.zeros(j.num_rows, bool)
    for k in LINE_AMOUNTS:
        differs |= prev[k] != cur[k]
    for c in ("class", "item_code"):
        differs |= np.asarray(pc.fill_null(pc.not_equal(j[f"a.{c}"], j[f"b.{c}"]), False), bool) \
            if j.num_rows else np.zeros(0, bool)
    claim_kind = np.asarray(adjusted["kind"].take(pos).to_numpy(zero_copy_only=False), dtype=object) \
        if j.num_rows else np.zeros(0, object)
    kind = np.where(claim_kind == "changed",
                    np.where(was & now, np.where(differs, "changed", ""), np.where(now, "new", "removed")),
                    claim_kind).astype(object)
    cols: dict[str, Any] = {
        "claim_id": j["claim_id"], "line_no": j["line_no"], "kind": pa.array(kind, pa.string()),
        "item_code": either(j, "item_code", "b"), "class_previous": j["a.class"], "class_current": j["b.class"],
    }
    for k in LINE_AMOUNTS:
        cols[f"{k}_previous"] = pa.array(prev[k], pa.int64())
        cols[f"{k}_current"] = pa.array(cur[k], pa.int64())
        cols[f"{k}_delta"] = pa.array(cur[k] - prev[k], pa.int64())
    cols["__pos"] = pos
    t = pa.table(cols).filter(pa.array(kind != ""))
    if t.num_rows:
        t = t.take(pc.sort_indices(t, sort_keys=[("__pos", "ascending"), ("line_no", "ascending")]))
    return t.drop_columns(["__pos"])


def _decimals(t: pa.Table, amounts: Sequence[str]) -> pa.Table:
    """The amount columns (previous, current, delta) as decimal128(18, 2) yuan."""
    from .compare import _to_decimal
    return _to_decimal(t, [f"{k}_{s}" for k in amounts for s in ("previous", "current", "delta")])


def _count(kinds: pa.ChunkedArray) -> dict[str, int]:
    counts = {k: 0 for k in KINDS}
    if len(kinds):
        vc = pc.value_counts(kinds.combine_chunks() if isinstance(kinds, pa.ChunkedArray) else kinds)
        for item in vc.to_pylist():
            counts[item["values"]] = item["counts"]
    return counts


def run_readjudicate(previous: Path, claims, members, providers, catalogue, policy_name: str, out: Path,
                     threads: int | None = None, progress=None) -> dict:
    """Re-run on the inputs and write the adjustments against ``previous``; returns the summary."""
    from . import policy as P
    from .compare import claim_fen_table, money
    from .engine import Timer, adjudicate, read_inputs
    from .outputs import atomic_dir, write_all
    from .report import write_report

    say = progress or (lambda s: None)
    policy = P.load(policy_name)
    timer = Timer()
    say("read previous")
    with timer("read_previous"):
        prev_claims, prev_lines, prev_summary, prev_folder = read_previous(Path(previous))
    say("read")
    with timer("read"):
        inputs = read_inputs(claims, members, providers, catalogue)
    say("adjudicate")
    r = adjudicate(inputs, policy, threads=threads, timer=Timer())
    timer.t["adjudicate"] = sum(r.timings.values())
    say("adjustments")
    with timer("adjustments"):
        rejected_ids = pa.array(sorted({t[0] for t in r.enc.rejected if t[0] is not None}), pa.string())
        cur_claims = claim_fen_table(r).select(prev_claims.column_names)
        adjusted, deltas = claim_adjustments(prev_claims, cur_claims, rejected_ids)
        lines = None
        if prev_lines is not None:
            lines = line_adjustments(prev_lines, current_lines_fen(r), adjusted)
        prev_totals = {k: int(pc.sum(prev_claims[k]).as_py() or 0) for k in AMOUNTS}
        cur_totals = {k: int(pc.sum(cur_claims[k]).as_py() or 0) for k in AMOUNTS}
        adjusted_deltas = {k: int(pc.sum(adjusted[f"{k}_delta"]).as_py() or 0) for k in AMOUNTS}
    say("write")
    t0 = time.perf_counter()
    summary: dict[str, Any] = {
        "adjudicate_version": __version__,
        "counts": {
            "previous_settled_claims": prev_claims.num_rows,
            "current_settled_claims": cur_claims.num_rows,
            "adjusted_claims": adjusted.num_rows,
            "by_kind": _count(adjusted["kind"]),
        },
        "deltas": {k: money(v) for k, v in adjusted_deltas.items()},
        # the adjustments' Δ is exactly the change of every total
        "reconciles": all(adjusted_deltas[k] == deltas[k] == cur_totals[k] - prev_totals[k] for k in AMOUNTS),
        "previous": {
            "folder": str(prev_folder),
            "policy": (prev_summary or {}).get("policy"),
            "inputs": (prev_summary or {}).get("inputs"),
            "totals": {k: money(v) for k, v in prev_totals.items()},
        },
    }
    if prev_summary is not None and isinstance(prev_summary.get("totals"), dict):
        summary["previous"]["summary_matches_settlements"] = prev_summary["totals"] == summary["previous"]["totals"]
    if lines is not None:
        summary["counts"]["adjusted_lines"] = lines.num_rows
        summary["counts"]["lines_by_kind"] = _count(lines["kind"])
        summary["line_deltas"] = {k: money(pc.sum(lines[f"{k}_delta"]).as_py() or 0) for k in LINE_AMOUNTS}
    with atomic_dir(Path(out)) as tmp:
        current = write_all(r, tmp / "current", inputs.digests(), inputs.claims.rows, with_lines=True)
        summary["current"] = {"folder": "current", "policy": current["policy"], "inputs": current["inputs"],
                              "totals": current["totals"], "counts": current["counts"]}
        pq.write_table(_decimals(adjusted, AMOUNTS), tmp / "adjustments.parquet")
        if lines is not None:
            pq.write_table(_decimals(lines, LINE_AMOUNTS), tmp / "line_adjustments.parquet")
        timer.t["write"] = time.perf_counter() - t0
        summary["timings_seconds"] = {k: round(v, 4) for k, v in timer.t.items()}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        write_report(tmp, "readjudicate")
    return summary
