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
  previous_member_id, provider_id, settle_date, change``, then ``<amount>_previous,
  <amount>_current, <amount>_delta`` for each amount column of contract §4;
- ``line_adjustments.parquet`` (when the earlier run has ``lines.parquet``):
  the lines of those claims that differ (amount, class or item), or that
  appeared or went: ``claim_id, line_no, change, item_code, class_previous,
  class_current``, the line amounts previous / current / delta, and the
  columns of ``--keep`` (the line's value now, else as it was). The line
  Δ of an adjusted claim sums exactly to its claim Δ (fund_pool,
  fund_supplementary, self_pay, first_self_pay, eligible);
- ``summary.json``: counts by change, the Δ totals, both runs' policy, input
  digests and totals;
- ``current/``: the complete outputs of this run (use it as the next
  ``--previous``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .engine import Timer
from .errors import InputError
from .inputs import _is_text, strings
from .money import AmountError, to_fen
from .schema import AMOUNTS

#: Amount columns of lines.parquet (contract §4).
LINE_AMOUNTS = ("self_pay", "first_self_pay", "eligible", "fund_pool", "fund_supplementary")
#: What happened to a claim from the earlier run to this one (compare.CHANGES uses the same words).
CHANGES = ("changed", "new", "removed", "now_rejected")


# ---------------------------------------------------------------------------
# The earlier run
# ---------------------------------------------------------------------------


def previous_folder(d: Path) -> Path:
    """The folder holding the earlier run's settlements: ``d``, or ``d/current`` after a readjudicate.
    Its settlements.parquet is a file, or a folder of part files (``run --engine spark``)."""
    d = Path(d)
    if (d / "settlements.parquet").exists():
        return d
    if (d / "current" / "settlements.parquet").exists():
        return d / "current"
    if not d.is_dir():
        raise InputError("the --previous folder does not exist", d)
    raise InputError(
        "no settlements.parquet here (nor in current/): --previous takes the --out folder of an "
        "earlier 'adjudicate run' or 'adjudicate readjudicate'",
        d,
    )


def _schema(path: Path) -> pa.Schema:
    """The schema of an earlier output: one Parquet file, or a folder of Parquet part files (as
    ``run --engine spark`` writes; its ``_SUCCESS`` and ``.crc`` files are skipped, as pyarrow skips
    names starting with ``_`` or ``.``)."""
    if path.is_dir():
        import pyarrow.dataset as ds

        return ds.dataset(path, format="parquet").schema
    return pq.read_schema(path)


def _names(path: Path) -> list[str]:
    """The column names of an earlier output (see :func:`_schema`)."""
    return _schema(path).names


def _read(path: Path, columns: Sequence[str], amounts: Sequence[str], filters=None, unique: bool = True) -> pa.Table:
    """An earlier output file's columns (the rows ``filters`` keeps, all by default), amounts as int64 fen;
    errors name the file and column. ``unique=False`` leaves the check that no claim_id of a settlements
    file appears twice to the caller (:func:`_check_unique`)."""
    try:
        schema = _schema(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot be read: {str(e).splitlines()[0]}", path) from None
    names = schema.names
    for c in list(columns) + list(amounts):
        if c not in names:
            raise InputError("missing column (is this an output folder of 'adjudicate run'?)", path, c)
    if filters is not None:
        typ = schema.field("claim_id").type
        if not _is_text(typ.value_type if pa.types.is_dictionary(typ) else typ):
            filters = None  # read whole, for _checked to name the column's type
    try:
        t = pq.read_table(path, columns=list(columns) + list(amounts), filters=filters)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot be read: {str(e).splitlines()[0]}", path) from None
    t = _checked(t, path)
    for c in amounts:
        try:
            fen = to_fen(t[c], c)
        except AmountError as e:
            raise InputError(str(e), path, c, e.row) from None
        t = t.set_column(t.column_names.index(c), c, pa.array(fen, pa.int64()))
    if unique and "line_no" not in t.column_names:
        _check_unique(t, t["claim_id"], path)
    return t


def _check_unique(t: pa.Table, ids: pa.Array | pa.ChunkedArray, path: Path | None = None) -> None:
    """No claim_id of an earlier run's settlements ``t`` (read from ``path``) appears twice."""
    if t.num_rows and pc.count_distinct(ids).as_py() != t.num_rows:
        raise InputError("a claim_id appears twice: not the settlements of one run", path, "claim_id")


#: The claim columns of an earlier run's settlements that the adjustments carry.
CLAIM_KEYS = ("claim_id", "member_id", "provider_id", "settle_date")


def _read_settlements(path: Path, unique: bool = True) -> pa.Table:
    """An earlier run's settlements (CLAIM_KEYS, amounts in fen), then the columns of --keep (``unique``:
    see :func:`_read`)."""
    return _with_kept(_read(path, CLAIM_KEYS, AMOUNTS, unique=unique), path)


#: The columns of an earlier run's lines that the line adjustments carry (amounts: LINE_AMOUNTS).
LINE_KEYS = ("claim_id", "line_no", "item_code", "class")


def _read_lines(path: Path, filters=None) -> pa.Table:
    """An earlier run's lines (LINE_KEYS, amounts in fen; the rows ``filters`` keeps), then the columns
    of --keep."""
    return _with_kept(_read(path, LINE_KEYS, LINE_AMOUNTS, filters), path, filters)


def _with_kept(t: pa.Table, path: Path, filters=None) -> pa.Table:
    """``t``, rows of an earlier output file read with ``filters``, with the columns of --keep appended:
    as the earlier run kept them (nulls allowed: they are the agency's values), null where it did not."""
    from . import keep

    names = keep.kept()
    if not names:
        return t
    have = set(_names(path))
    old = pq.read_table(path, columns=[n for n in names if n in have], filters=filters)
    for n in names:
        t = t.append_column(n, old[n] if n in have else pa.nulls(t.num_rows, pa.string()))
    return t


#: What the key columns of an earlier output hold (contract §4); amounts are read by to_fen.
_KINDS = {
    "claim_id": "text",
    "member_id": "text",
    "provider_id": "text",
    "item_code": "text",
    "class": "text",
    "settle_date": "date",
    "line_no": "int",
}


def _checked(t: pa.Table, path: Path) -> pa.Table:
    """An earlier output read as an input: no nulls, and each key column of its kind (lossless casts only:
    large_string and dictionary-encoded text are text, date64 is a date, any integer that fits is line_no)."""
    for c in t.column_names:
        col = t[c]
        if col.null_count:
            row = int(np.flatnonzero(np.asarray(col.is_null(), dtype=bool))[0])
            raise InputError(
                "is null: an output of 'adjudicate run' has a value in every row, so this is not "
                "one (a null amount would be read as 0.00 and make a false adjustment)",
                path,
                c,
                row,
            )
        kind, typ = _KINDS.get(c), col.type
        value_type = typ.value_type if pa.types.is_dictionary(typ) else typ
        if kind == "text" and _is_text(value_type):
            target = pa.string()
        elif kind == "date" and (pa.types.is_date32(value_type) or pa.types.is_date64(value_type)):
            target = pa.date32()
        elif kind == "int" and pa.types.is_integer(value_type):
            target = pa.int32()
        elif kind is None:
            continue
        else:
            what = {"text": "text (string)", "date": "a date (date32)", "int": "a whole number (int32)"}[kind]
            raise InputError(
                f"holds {typ}, not {what} as 'adjudicate run' writes it", path, c, 0 if t.num_rows else None
            )
        if col.type != target:
            try:
                col = col.cast(target)  # safe cast: fails rather than lose a value
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(f"cannot be read as {target}: {str(e).splitlines()[0]}", path, c) from None
            t = t.set_column(t.column_names.index(c), c, col)
    return t


def read_summary(f: Path) -> dict | None:
    """An earlier run's summary.json (None when it has none)."""
    summary = None
    if (f / "summary.json").is_file():
        try:
            summary = json.loads((f / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot be read as JSON: {e}", f / "summary.json") from None
        if not isinstance(summary, dict):
            raise InputError("expected a JSON object", f / "summary.json")
    return summary


def current_lines_fen(r, claims: np.ndarray | None = None) -> pa.Table:
    """This run's lines (as lines.parquet) with int64 fen amounts; only those of the claim positions
    ``claims`` (ascending) when given."""
    from . import keep
    from .encode import line_rows
    from .schema import LINE_CLASSES

    e = r.enc
    if claims is None:
        rows = None
        line_claim, item_code = e.line_claim, e.item_code
        claim_id = e.line_claim_id
    else:
        rows = line_rows(e.line_start, claims)
        line_claim = e.line_claim[rows]
        item_code = strings(e.source["item_code"].take(pa.array(e.line_row[rows])))
        claim_id = e.claim_dict.take(pa.array(e.claim_code[line_claim]))

    def pick(v: np.ndarray) -> np.ndarray:
        return v if rows is None else v[rows]

    t = {
        "claim_id": claim_id,
        "line_no": pa.array(pick(e.line_no).astype(np.int32)),
        "item_code": item_code,
        "class": pa.DictionaryArray.from_arrays(pa.array(pick(e.cls)), pa.array(LINE_CLASSES)).cast(pa.string()),
    }
    for k, v in zip(LINE_AMOUNTS, (r.line_self_pay, r.line_fsp, r.line_eligible, r.line_pool, r.line_supp)):
        t[k] = pa.array(pick(v), pa.int64())
    t.update(keep.line_columns(e, pick(e.line_row)))  # --keep, as lines.parquet has them
    return pa.table(t)


# ---------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------


def claim_adjustments(previous: pa.Table, current: pa.Table, rejected_ids: pa.Array) -> tuple[pa.Table, dict]:
    """Adjustment rows in fen (settlement order) and the Δ totals in fen, including unchanged claims."""
    from .compare import either, fen_column, settlement_order

    j, was, now = _paired(previous, current, ["claim_id"])
    prev = {k: fen_column(j, f"a.{k}") for k in AMOUNTS}
    cur = {k: fen_column(j, f"b.{k}") for k in AMOUNTS}
    differs = np.zeros(j.num_rows, bool)
    for k in AMOUNTS:
        differs |= prev[k] != cur[k]
    rejected_now = (
        np.asarray(pc.is_in(j["claim_id"], value_set=rejected_ids), dtype=bool) if j.num_rows else np.zeros(0, bool)
    )
    kind = np.full(j.num_rows, "", dtype=object)
    kind[was & now & differs] = "changed"
    kind[~was & now] = "new"
    kind[was & ~now] = "removed"
    kind[was & ~now & rejected_now] = "now_rejected"
    cols: dict[str, Any] = {
        "claim_id": j["claim_id"],
        "member_id": either(j, "member_id", "b"),
        "previous_member_id": j["a.member_id"],
        "provider_id": either(j, "provider_id", "b"),
        "settle_date": either(j, "settle_date", "b"),
        "change": pa.array(kind, pa.string()),
    }
    for k in AMOUNTS:
        cols[f"{k}_previous"] = pa.array(prev[k], pa.int64())
        cols[f"{k}_current"] = pa.array(cur[k], pa.int64())
        cols[f"{k}_delta"] = pa.array(cur[k] - prev[k], pa.int64())
    for k in previous.column_names:  # --keep: as settled now, else as settled before
        if k not in CLAIM_KEYS and k not in AMOUNTS:
            cur_k = j[f"b.{k}"]
            cols[k] = pc.if_else(pa.array(now), cur_k, j[f"a.{k}"].cast(cur_k.type)) if j.num_rows else cur_k
    t = pa.table(cols).filter(pa.array(kind != ""))
    t = settlement_order(t, "member_id", "settle_date", "claim_id")
    deltas = {k: int(cur[k].sum() - prev[k].sum()) for k in AMOUNTS}
    return t, deltas


def line_adjustments(previous: pa.Table, current: pa.Table, adjusted: pa.Table) -> pa.Table:
    """Lines of the adjusted claims that differ, appeared or went; in the adjustments' order, then line_no."""
    from .compare import either, fen_column

    ids = adjusted["claim_id"].combine_chunks()

    def keyed(t: pa.Table) -> pa.Table:
        """The lines of adjusted claims, keyed by (the claim's row in ``adjusted``, line_no) in one int64."""
        pos = pc.index_in(t["claim_id"], value_set=ids) if t.num_rows else pa.array([], pa.int32())
        t = t.filter(pc.is_valid(pos))
        pos = np.asarray(pos.drop_null(), dtype=np.int64)
        line_no = t["line_no"].to_numpy() if t.num_rows else np.zeros(0, np.int64)
        key = (pos << 32) + (line_no.astype(np.int64) + 2**31)  # any int32 line_no: 32 bits, ordered
        return t.append_column("__key", pa.array(key, pa.int64()))

    j, was, now = _paired(keyed(previous), keyed(current), ["__key"])
    key = np.asarray(j["__key"], dtype=np.int64) if j.num_rows else np.zeros(0, np.int64)
    pos = pa.array(key >> 32)  # every line here belongs to an adjusted claim
    prev = {k: fen_column(j, f"a.{k}") for k in LINE_AMOUNTS}
    cur = {k: fen_column(j, f"b.{k}") for k in LINE_AMOUNTS}
    differs = np.zeros(j.num_rows, bool)
    for k in LINE_AMOUNTS:
        differs |= prev[k] != cur[k]
    for c in ("class", "item_code"):
        differs |= (
            np.asarray(pc.fill_null(pc.not_equal(j[f"a.{c}"], j[f"b.{c}"]), False), bool)
            if j.num_rows
            else np.zeros(0, bool)
        )
    claim_kind = (
        np.asarray(adjusted["change"].take(pos).to_numpy(zero_copy_only=False), dtype=object)
        if j.num_rows
        else np.zeros(0, object)
    )
    kind = np.where(
        claim_kind == "changed",
        np.where(was & now, np.where(differs, "changed", ""), np.where(now, "new", "removed")),
        claim_kind,
    ).astype(object)
    cols: dict[str, Any] = {
        "claim_id": either(j, "claim_id", "b"),
        "line_no": either(j, "line_no", "b"),
        "change": pa.array(kind, pa.string()),
        "item_code": either(j, "item_code", "b"),
        "class_previous": j["a.class"],
        "class_current": j["b.class"],
    }
    for k in LINE_AMOUNTS:
        cols[f"{k}_previous"] = pa.array(prev[k], pa.int64())
        cols[f"{k}_current"] = pa.array(cur[k], pa.int64())
        cols[f"{k}_delta"] = pa.array(cur[k] - prev[k], pa.int64())
    for k in previous.column_names:  # --keep: the line's value now, else as it was
        if k not in LINE_KEYS and k not in LINE_AMOUNTS and k != "__key":
            cur_k = j[f"b.{k}"]
            cols[k] = pc.if_else(pa.array(now), cur_k, j[f"a.{k}"].cast(cur_k.type)) if j.num_rows else cur_k
    keep = np.flatnonzero(kind != "")
    return pa.table(cols).take(pa.array(keep[np.argsort(key[keep], kind="stable")]))


def _paired(left: pa.Table, right: pa.Table, keys: Sequence[str]) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """``compare.outer_join`` of two sets of rows, without the hash join when they hold the same keys in
    the same order (the claims or lines of a night of corrected amounts: row i pairs with row i)."""
    from .compare import outer_join

    if left.num_rows != right.num_rows or not all(left[k].equals(right[k]) for k in keys):
        return outer_join(left, right, keys)
    cols = {k: right[k] for k in keys}
    for p, t in (("a", left), ("b", right)):
        cols.update({f"{p}.{c}": t[c] for c in t.column_names if c not in keys})
    both = np.ones(left.num_rows, bool)
    return pa.table(cols), both, both.copy()


def _decimals(t: pa.Table, amounts: Sequence[str]) -> pa.Table:
    """The amount columns (previous, current, delta) as decimal128(18, 2) yuan."""
    from .compare import _to_decimal

    return _to_decimal(t, [f"{k}_{s}" for k in amounts for s in ("previous", "current", "delta")])


def relation(
    previous_claims: int,
    current_claims: int,
    common: int,
    other: int,
    rejected: int,
    previous_inputs: Any,
    current_inputs: dict[str, str],
) -> dict[str, Any]:
    """:func:`relation` from its counts: the earlier run's claims, this run's settled claims, the earlier
    claims found again (settled or rejected now), those of them settled under another member, the claims
    rejected now."""
    known = set(previous_inputs.values()) if isinstance(previous_inputs, dict) else set()
    same_files = len(known & set(current_inputs.values()))
    smaller = min(previous_claims, current_claims + rejected)
    return {
        "previous_claims": previous_claims,
        "claims_in_common": common,
        "claims_with_another_member": other,
        "input_files_in_common": same_files,
        "unrelated": bool(smaller and (2 * common < smaller or 2 * other > common)),
    }


def _count(kinds: pa.ChunkedArray) -> dict[str, int]:
    counts = {k: 0 for k in CHANGES}
    if len(kinds):
        vc = pc.value_counts(kinds.combine_chunks() if isinstance(kinds, pa.ChunkedArray) else kinds)
        for item in vc.to_pylist():
            counts[item["values"]] = item["counts"]
    return counts


# ---------------------------------------------------------------------------
# Full and incremental comparison with the earlier run
# ---------------------------------------------------------------------------


def _full(
    prev_folder: Path,
    prev_claims: pa.Table,
    r,
    rejected_ids: pa.Array,
    previous_inputs: Any,
    current_inputs: dict[str, str],
):
    """Every claim compared: ((adjusted, line adjustments or None, previous totals, Δ totals, previous
    count), how the earlier run relates to these inputs (:func:`relation`)).

    The claims are paired by claim_id once (no pairing at all when both runs hold the same claims in
    the same order, the usual night); only the claims that can be adjusted (on one side only, or
    with an amount that differs) become tables for :func:`claim_adjustments`, and only their lines
    are read from the earlier run's lines.parquet in ``prev_folder`` (when it has one) and taken from
    this run. ``prev_claims``: its settlements (:func:`_read_settlements`, uniqueness not checked)."""
    from .compare import claim_fen_table
    from .encode import lookup
    from .outputs import claim_amounts

    e = r.enc
    prev_ids = prev_claims["claim_id"].combine_chunks()
    cur_ids = e.claim_id
    same = len(prev_ids) == len(cur_ids) and prev_ids.equals(cur_ids)
    if not same:  # (the same ids as this run's, which are unique, need no check)
        _check_unique(prev_claims, prev_ids, prev_folder / "settlements.parquet")
    at = np.arange(len(prev_ids)) if same else lookup(prev_ids, cur_ids)  # each earlier claim's position now
    in_a = np.flatnonzero(at >= 0)
    in_b = at[in_a]
    fb = claim_amounts(r)
    differs = np.zeros(len(in_a), bool)
    for k in AMOUNTS:
        fa = prev_claims[k].to_numpy()
        differs |= (fa != fb[k]) if same else (fa[in_a] != fb[k][in_b])
    matched = np.zeros(len(cur_ids), bool)
    matched[in_b] = True
    was = np.union1d(np.flatnonzero(at < 0), in_a[differs]).astype(np.int64)
    now = np.union1d(np.flatnonzero(~matched), in_b[differs]).astype(np.int64)
    adjusted, deltas = claim_adjustments(
        prev_claims.take(pa.array(was)), claim_fen_table(r, now).select(prev_claims.column_names), rejected_ids
    )
    lines = None
    prev_lines = prev_folder / "lines.parquet"
    if prev_lines.exists():
        # every claim of ``was`` and ``now`` is adjusted, and line_adjustments keeps no other's lines
        ids = prev_ids.take(pa.array(was))
        lines = line_adjustments(
            _read_lines(prev_lines, filters=[("claim_id", "in", ids)]), current_lines_fen(r, now), adjusted
        )
    prev_totals = {k: int(pc.sum(prev_claims[k]).as_py() or 0) for k in AMOUNTS}
    # how the runs relate, from the pairing: claims in common (settled or rejected now), and of those
    # settled on both sides the ones under another member
    gone = np.flatnonzero(at < 0)
    rejected = (
        int(pc.sum(pc.is_in(prev_ids.take(pa.array(gone)), value_set=rejected_ids)).as_py() or 0) if len(gone) else 0
    )
    prev_member = prev_claims["member_id"] if same else prev_claims["member_id"].take(pa.array(in_a))
    other = int(pc.sum(pc.not_equal(prev_member, e.ids("member", None if same else in_b))).as_py() or 0)
    related = relation(
        prev_claims.num_rows,
        len(cur_ids),
        len(in_a) + rejected,
        other,
        len(rejected_ids),
        previous_inputs,
        current_inputs,
    )
    return (adjusted, lines, prev_totals, deltas, prev_claims.num_rows), related


def changed_members(prev_summary: dict | None, dataset: Path, policy) -> tuple[pa.Array | None, str]:
    """The member_ids whose settlement may differ from the earlier run's, or (None, why not known).

    Known when the earlier run was made from a dataset that still exists, by
    this engine version and under exactly this policy: then a member whose
    fingerprint (claims, lines, catalogue rows used, member and provider rows)
    is the same in both datasets has the same results, and only the others are
    compared. A policy change (or anything unknown) compares every claim.
    """
    from .dataset import DatasetError, member_fingerprints, policy_digest, read_manifest
    from .encode import lookup

    info = (prev_summary or {}).get("dataset")
    if not isinstance(info, dict):
        return None, "the previous run was not made from a dataset"
    if info.get("engine_version") != __version__:
        return None, "the previous run was made by another engine version"
    if info.get("policy_digest") != policy_digest(policy):
        return None, "the policy changed: every claim is compared"
    try:
        old = Path(str(info.get("path")))
        if read_manifest(old).get("id") != info.get("id"):
            return None, "the previous run's dataset was replaced since"
        prev_ids, prev_fp = member_fingerprints(old)
    except DatasetError:
        return None, "the previous run's dataset is gone"
    cur_ids, cur_fp = member_fingerprints(dataset)
    if cur_ids.equals(prev_ids):  # the same members in the same order (the usual night): no lookups
        differs, gone = prev_fp != cur_fp, np.zeros(len(prev_ids), bool)
    else:
        pos = lookup(cur_ids, prev_ids)
        differs = (pos < 0) | (prev_fp[np.maximum(pos, 0)] != cur_fp) if len(prev_fp) else np.ones(len(cur_fp), bool)
        gone = lookup(prev_ids, cur_ids) < 0
    changed = pa.concat_arrays([cur_ids.filter(pa.array(differs)), prev_ids.filter(pa.array(gone))])
    return changed, "incremental"


def _settle_previous(prev_summary: dict, changed: pa.Array, policy, threads: int | None) -> tuple | None:
    """(the earlier run's settle of the ``changed`` members' claims, its base year, its totals in fen
    and its count of settled claims as its summary gives them), or None when the earlier run's
    summary does not say what is needed (then every claim is compared).

    The earlier amounts of those members are settled again from the earlier
    run's own dataset, under the same policy by the same engine (which
    ``changed_members`` made sure of): the same numbers its outputs hold,
    without reading those files.
    """
    from .dataset import open_dataset
    from .encode import lookup
    from .engine import settle

    try:
        prev_totals = {k: int(to_fen(pa.array([Decimal(str(prev_summary["totals"][k]))]), k)[0]) for k in AMOUNTS}
        prev_count = int(prev_summary["counts"]["settled_claims"])
    except (KeyError, TypeError, ValueError, ArithmeticError, AmountError, pa.ArrowException):
        return None
    old = open_dataset(Path(prev_summary["dataset"]["path"]), check=())
    # the earlier run's base year (contract §3: the year its account balances stand on)
    base = (
        prev_summary["account_base_year"]
        if "account_base_year" in prev_summary
        else settle(old, policy, threads=threads, line_funds=False).base_year
    )
    old_rows = lookup(changed, old.inputs.members["member_id"])
    old.enc = select_claims(old.enc, member_claims(old.enc.member, old_rows, len(old.inputs.members["member_id"])))
    return settle(old, policy, threads=threads, timer=Timer(), base_year=base), base, prev_totals, prev_count


def _incremental(
    prev_folder: Path,
    r,
    member_ids: pa.Array,
    changed: pa.Array,
    rejected_ids: pa.Array,
    cur_totals: dict[str, int],
    previous: tuple,
):
    """Only the claims of the ``changed`` members compared (as ``_full`` returns), or None when the
    earlier run's totals plus the changes do not give this run's totals (then compare in full).
    ``previous``: the earlier side (:func:`_settle_previous`)."""
    from .compare import claim_fen_table
    from .encode import lookup

    before, base, prev_totals, prev_count = previous
    if base != r.base_year:  # every member's account may have moved: compare every claim
        return None
    member_rows = lookup(changed, member_ids)
    positions = member_claims(r.enc.member, member_rows, len(member_ids))
    # Only the claims that can be adjusted become tables on either side: those settled on one side
    # only, and those whose amounts differ. The others are unchanged (no row, Δ 0), as the full join finds.
    was, now = _differing(before, r, positions)
    prev_claims = claim_fen_table(before, was).select([*CLAIM_KEYS, *AMOUNTS])
    cur_claims = claim_fen_table(r, now).select(prev_claims.column_names)
    adjusted, deltas = claim_adjustments(prev_claims, cur_claims, rejected_ids)
    for k in AMOUNTS:  # the members not compared did not change: the totals must say so
        if prev_totals[k] + deltas[k] != cur_totals[k]:
            return None
    lines = None
    if (prev_folder / "lines.parquet").exists():
        # only the adjusted claims' lines are built on either side (line_adjustments keeps no others):
        # every claim of ``was`` and ``now`` is adjusted
        lines = line_adjustments(current_lines_fen(before, was), current_lines_fen(r, now), adjusted)
    return adjusted, lines, prev_totals, deltas, prev_count


def member_claims(member_of_claim: np.ndarray, member_rows: np.ndarray, members: int) -> np.ndarray:
    """The positions (ascending) of the claims whose member row is among ``member_rows`` (-1: none),
    out of ``members`` rows: one gather of a mask, no sort."""
    wanted = np.zeros(members, bool)
    wanted[member_rows[member_rows >= 0]] = True
    return np.flatnonzero(wanted[member_of_claim])


def select_claims(enc, claims: np.ndarray):
    """``enc`` with only the claims at positions ``claims`` (ascending) and their lines.

    The claims of a member lie together in settlement order, so a few members' claims are few runs:
    the runs between them are cut out (``Encoded.without_runs``), a copy of the rows kept, not a
    gather through an index of every line (what ``Encoded.select`` does)."""
    dropped = np.zeros(len(enc.member) + 2, np.int8)  # a 0 either side: every run has both edges
    dropped[1:-1] = 1
    dropped[1:-1][claims] = 0
    edges = np.diff(dropped)
    return enc.without_runs(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))  # the runs dropped


def _differing(before, r, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The claims of ``before`` (positions in it) and of ``r`` among ``positions`` that an adjustment can
    be about: settled on one side only (matched by claim_id), or with an amount that differs."""
    from .outputs import claim_amounts

    at = _pairs(before.enc, r.enc, positions)
    if at is None:  # the same claims in the same order (a usual night)
        # every amount is a sum or difference of the kernel matrices' columns: a claim whose columns are
        # all equal has equal amounts, and a claim whose amounts are equal after all (its eligible split
        # otherwise by class) is no adjustment to claim_adjustments and line_adjustments, which keep none
        differs = _rows_differ(before.sums, r.sums, positions)
        differs |= _rows_differ(before.settle, r.settle, positions)
        both = np.flatnonzero(differs)
        return both, positions[both]
    fa = claim_amounts(before)
    fb = claim_amounts(replace(r, sums=r.sums[positions], settle=r.settle[positions]))
    in_a = np.flatnonzero(at >= 0)
    in_b = at[in_a]
    differs = np.zeros(len(in_a), bool)
    for k in AMOUNTS:
        differs |= fa[k][in_a] != fb[k][in_b]
    same = np.zeros(len(positions), bool)
    same[in_b[~differs]] = True  # the rows of positions that are a claim of before, unchanged
    was = np.union1d(np.flatnonzero(at < 0), in_a[differs]).astype(np.int64)
    return was, positions[np.flatnonzero(~same)]


def _rows_differ(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Whether each row of the matrix ``a`` differs from the row ``rows[i]`` of ``b`` in some column:
    column by column (the kernel's matrices are column-major), only ``rows`` of ``b`` gathered."""
    differs = np.zeros(len(rows), bool)
    for c in range(a.shape[1]):
        differs |= a[:, c] != np.take(b[:, c], rows)
    return differs


def _pairs(e, f, positions: np.ndarray) -> np.ndarray | None:
    """For each claim of ``e``, its row among the claims of ``f`` at ``positions`` with the same claim_id
    (-1: none); None when they are the same claims in the same order.

    Two datasets of the same claim ids in the same first-seen order (a night of corrected amounts)
    number their claims alike: their codes are compared then, not their strings."""
    from .encode import lookup

    if e.claim_dict is f.claim_dict or e.claim_dict.equals(f.claim_dict):
        a, b = e.claim_code, f.claim_code[positions]
        if len(a) == len(b) and np.array_equal(a, b):
            return None
        row = np.full(len(f.claim_dict), -1, np.int64)  # each code's row among positions (a code is one claim)
        row[b] = np.arange(len(b))
        return row[a]
    ids_a = e.claim_dict.take(pa.array(e.claim_code))
    ids_b = f.claim_dict.take(pa.array(f.claim_code[positions]))
    if len(ids_a) == len(ids_b) and ids_a.equals(ids_b):
        return None
    return lookup(ids_a, ids_b)


def run_readjudicate(
    previous: Path,
    claims,
    members,
    providers,
    catalogue,
    *,
    policy_name: str,
    out: Path,
    threads: int | None = None,
    progress=None,
    dataset: Path | None = None,
    partitions: int = 1,
) -> dict:
    """Re-run on the inputs (or a prepared ``dataset``) and write the adjustments against ``previous``;
    returns the summary. ``partitions`` > 1 (0: chosen from the input size) settles the input files one
    member range at a time, with the same outputs."""
    from . import policy as P
    from .compare import money
    from .inputs import expand_paths
    from .outputs import atomic_dir, write_parquet
    from .report import write_report
    from .stream import auto_partitions, source_paths

    say = progress or (lambda s: None)
    policy = P.load(policy_name)
    timer = Timer()
    say("read previous")
    with timer("read_previous"):
        prev_folder = previous_folder(Path(previous))
        prev_summary = read_summary(prev_folder)
    if dataset is None and partitions == 0:
        partitions = auto_partitions(expand_paths(claims, "claims"))
    # --out may be --previous (read before the swap), never an input
    with atomic_dir(Path(out), source_paths(claims, members, providers, catalogue, dataset)) as tmp:
        if dataset is None and partitions > 1:
            found, current, incremental = _streamed(
                prev_folder,
                claims,
                members,
                providers,
                catalogue,
                policy=policy,
                current_dir=tmp / "current",
                parts=partitions,
                threads=threads,
                timer=timer,
                say=say,
            )
            related = None  # (claims are compared range by range; the relation is not gathered)
        else:
            found, current, incremental, related = _in_memory(
                prev_folder,
                prev_summary,
                claims,
                members,
                providers,
                catalogue,
                dataset=dataset,
                policy=policy,
                current_dir=tmp / "current",
                threads=threads,
                timer=timer,
                say=say,
            )
        adjusted, lines, prev_totals, deltas, prev_count = found
        warnings = []
        if related is not None and related["unrelated"]:
            warnings.append(
                f"the previous run in {prev_folder} looks unrelated to these inputs: "
                f"{related['claims_in_common']:,} of its {related['previous_claims']:,} claims are among them, "
                f"{related['claims_with_another_member']:,} of those under another member, and "
                f"{related['input_files_in_common']} of its input files are the same. Every difference is "
                "written as an adjustment: check --previous"
            )
        cur_totals = {k: int(to_fen(pa.array([Decimal(current["totals"][k])]), k)[0]) for k in AMOUNTS}
        adjusted_deltas = {k: int(pc.sum(adjusted[f"{k}_delta"]).as_py() or 0) for k in AMOUNTS}
        say("write")
        t0 = time.perf_counter()
        summary: dict[str, Any] = {
            "adjudicate_version": __version__,
            "counts": {
                "previous_settled_claims": prev_count,
                "current_settled_claims": current["counts"]["settled_claims"],
                "adjusted_claims": adjusted.num_rows,
                "by_change": _count(adjusted["change"]),
            },
            "deltas": {k: money(v) for k, v in adjusted_deltas.items()},
            # the adjustments' Δ is exactly the change of every total
            "reconciles": all(adjusted_deltas[k] == deltas[k] == cur_totals[k] - prev_totals[k] for k in AMOUNTS),
            "previous": {
                "folder": str(prev_folder),
                "policy": (prev_summary or {}).get("policy"),
                "inputs": (prev_summary or {}).get("inputs"),
                "totals": {k: money(v) for k, v in prev_totals.items()},
                **({"relation": related} if related is not None else {}),
            },
            "incremental": incremental,
            "warnings": warnings,
        }
        # (incrementally, the previous totals were checked against the changes instead)
        if not incremental["used"] and prev_summary is not None and isinstance(prev_summary.get("totals"), dict):
            summary["previous"]["summary_matches_settlements"] = prev_summary["totals"] == summary["previous"]["totals"]
        if lines is not None:
            summary["counts"]["adjusted_lines"] = lines.num_rows
            summary["counts"]["lines_by_change"] = _count(lines["change"])
            summary["line_deltas"] = {k: money(pc.sum(lines[f"{k}_delta"]).as_py() or 0) for k in LINE_AMOUNTS}
        summary["current"] = {
            "folder": "current",
            "policy": current["policy"],
            "inputs": current["inputs"],
            "totals": current["totals"],
            "counts": current["counts"],
        }
        write_parquet(_decimals(adjusted, AMOUNTS), tmp / "adjustments.parquet", threads)
        if lines is not None:
            write_parquet(_decimals(lines, LINE_AMOUNTS), tmp / "line_adjustments.parquet", threads)
        timer.t["write"] = timer.t.get("write", 0.0) + time.perf_counter() - t0
        summary["timings_seconds"] = {k: round(v, 4) for k, v in timer.t.items()}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_report(tmp, "readjudicate")
    return summary


def _in_memory(
    prev_folder: Path,
    prev_summary: dict | None,
    claims,
    members,
    providers,
    catalogue,
    *,
    dataset: Path | None,
    policy,
    current_dir: Path,
    threads,
    timer: Timer,
    say,
):
    """Settle everything at once; compare incrementally when it can (a dataset), else every claim."""
    from . import keep
    from .dataset import load_prepared, provenance
    from .engine import settle
    from .outputs import write_all

    # Compared claim by claim (input files, or --keep), the earlier settlements are read on a thread
    # beside the inputs' read, which waits on the disk and on serial steps; from a dataset they are
    # read only if the comparison cannot be incremental.
    early = _Early(prev_folder, timer) if dataset is None or keep.kept() else None
    try:
        say("read")
        # the claims table is read by nothing once encoded: its memory goes to the kernel passes and the writers
        prep = load_prepared(claims, members, providers, catalogue, dataset, timer, claims_table=False)
    except BaseException:
        if early is not None:
            early.join()  # its error, if any, is not the first one
        raise
    previous_claims = early.result if early is not None else lambda: _Early(prev_folder, timer).result()
    # From a dataset, the earlier run's side of an incremental comparison (the changed members, their
    # claims settled again from the earlier dataset) needs nothing of this run: it is done on a thread
    # of its own beside this run's settle, whose serial steps leave a core free.
    ahead = _Ahead(prev_summary, Path(dataset), policy, threads) if dataset is not None and not keep.kept() else None
    try:
        say("adjudicate")
        r = settle(prep, policy, threads=threads, timer=Timer())
        timer.t["adjudicate"] = sum(r.timings.values())
        say("adjustments")
        extra = {"dataset": lambda tmp: provenance(Path(dataset), policy)} if dataset is not None else None
        # The adjustments are found while current/lines.parquet, the longest part of current/, is written
        # on its own thread: after the rest of current/, not beside it too (three threads on two cores
        # would slow the lines, which bound the wall).
        done: list = []

        def beside() -> None:
            t = time.perf_counter()
            done.append(
                _adjustments(
                    prev_folder, prev_summary, prep, r, dataset, policy, threads, timer, previous_claims, ahead
                )
            )
            done.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        current = write_all(r, current_dir, prep.digests, prep.input_lines, True, extra, beside=beside, threads=threads)
        # what current/ added to the wall beyond the comparison
        timer.t["write"] = timer.t.get("write", 0.0) + (time.perf_counter() - t0) - done[1]
    finally:
        if early is not None:
            early.join()
        if ahead is not None:
            ahead.bg.join()
    found, incremental, related = done[0]
    return found, current, incremental, related


class _Early:
    """The earlier run's settlements (``_read_settlements(…, unique=False)``), read on a thread of its own
    from the start; ``result()`` waits for them (its error is raised there). Timed as ``read_previous``."""

    def __init__(self, prev_folder: Path, timer: Timer):
        from . import keep  # noqa: F401 - imported here, not lazily on the thread (see outputs._Background)
        from .outputs import _Background

        self.table: pa.Table | None = None
        self.timer = timer

        def read() -> None:
            t0 = time.perf_counter()
            self.table = _read_settlements(prev_folder / "settlements.parquet", unique=False)
            self.seconds = time.perf_counter() - t0

        self.bg = _Background(read, "adjudicate-previous")
        self.bg.start()

    def join(self) -> None:
        self.bg.join()

    def result(self) -> pa.Table:
        self.bg.result()
        self.timer.t["read_previous"] = self.timer.t.get("read_previous", 0.0) + self.seconds
        assert self.table is not None
        return self.table


class _Ahead:
    """The earlier run's side of an incremental comparison from a dataset, on a thread of its own from
    the start: ``result()`` waits for (changed members or None, why not, the earlier settle of their
    claims and its base year, or None: see :func:`_settle_previous`)."""

    def __init__(self, prev_summary: dict | None, dataset: Path, policy, threads: int | None):
        # imported here, not lazily on the thread
        from . import encode, engine  # noqa: F401
        from .dataset import open_dataset  # noqa: F401
        from .outputs import _Background

        self.value: tuple | None = None

        def work() -> None:
            changed, why = changed_members(prev_summary, dataset, policy)
            before = None
            if changed is not None and prev_summary is not None:  # changed is known only from a summary
                before = _settle_previous(prev_summary, changed, policy, threads)
            self.value = (changed, why, before)

        self.bg = _Background(work, "adjudicate-previous")
        self.bg.start()

    def result(self) -> tuple:
        self.bg.result()
        assert self.value is not None
        return self.value


def _adjustments(
    prev_folder: Path,
    prev_summary: dict | None,
    prep,
    r,
    dataset: Path | None,
    policy,
    threads,
    timer: Timer,
    previous_claims: Callable[[], pa.Table],
    ahead: _Ahead | None = None,
):
    """The comparison with the earlier run: incremental when it can be, else every claim; and how the
    earlier run relates to these inputs (None when incremental: the dataset's own digests vouch for it).
    ``previous_claims()``: the earlier run's settlements (``_read_settlements(…, unique=False)``);
    ``ahead``: the earlier side of an incremental comparison, started before (else done here)."""
    from . import keep
    from .compare import totals

    rejected_ids = pa.array(sorted({t[0] for t in r.enc.rejected if t[0] is not None}), pa.string())
    found = None
    if dataset is not None and keep.kept():
        # the adjustments carry the kept columns as the earlier run's files hold them
        why = "--keep: every claim is compared with the earlier run's files"
    elif dataset is not None:
        with timer("adjustments"):
            cur_totals = totals(r)  # from the kernel matrices' column sums: no claim-length arrays
            changed, why, before = (ahead or _Ahead(prev_summary, Path(dataset), policy, threads)).result()
            if changed is not None and prev_summary is not None and before is not None:
                found = _incremental(
                    prev_folder,
                    r,
                    prep.inputs.members["member_id"],
                    changed,
                    rejected_ids,
                    cur_totals,
                    before,
                )
                why = (
                    ""
                    if found is not None
                    else "the base year changed, or the previous totals and the changed members do not reconcile"
                )
    else:
        why = "the inputs are files, not a dataset"
    incremental = (
        {"used": True, "members_compared": len(changed)}
        if found is not None and changed is not None
        else {"used": False, "why_not": why}
    )
    related = None
    if found is None:
        prev_claims = previous_claims()  # (timed as read_previous by _Early)
        with timer("adjustments"):
            found, related = _full(
                prev_folder, prev_claims, r, rejected_ids, (prev_summary or {}).get("inputs"), prep.digests
            )
    return found, incremental, related


def _streamed(
    prev_folder: Path,
    claims,
    members,
    providers,
    catalogue,
    *,
    policy,
    current_dir: Path,
    parts: int,
    threads,
    timer: Timer,
    say,
):
    """One member range at a time: each range's claims are compared with their previous rows as it is
    settled (wherever the claim was before: matched by claim_id); the previous rows of claims settled in
    no range are compared last. Only the previous settlements (claim level) are held whole."""
    from .compare import claim_fen_table, settlement_order
    from .stream import run_streaming

    with timer("read_previous"):
        prev = _read_settlements(prev_folder / "settlements.parquet")
    has_lines = (prev_folder / "lines.parquet").exists()
    none = pa.array([], pa.string())
    st: dict[str, Any] = {}

    def each(r) -> None:
        if r is None:  # a pass over the ranges starts (again): forget an earlier pass
            st.update(
                used=np.zeros(prev.num_rows, bool), parts=[], lines=[], rejected=[], deltas={k: 0 for k in AMOUNTS}
            )
            return
        used, parts_adj, cur_lines, rejected, deltas = (
            st["used"],
            st["parts"],
            st["lines"],
            st["rejected"],
            st["deltas"],
        )
        cur = claim_fen_table(r).select(prev.column_names)
        hit = (
            np.asarray(pc.is_in(prev["claim_id"], value_set=cur["claim_id"].combine_chunks()), bool)
            if prev.num_rows
            else np.zeros(0, bool)
        )
        used[hit] = True
        adj, d = claim_adjustments(prev.filter(pa.array(hit)), cur, none)
        for k in AMOUNTS:
            deltas[k] += d[k]
        parts_adj.append(adj)
        rejected.extend(t[0] for t in r.enc.rejected if t[0] is not None)
        if has_lines and adj.num_rows:
            pos = np.asarray(pc.index_in(adj["claim_id"], value_set=cur["claim_id"]).fill_null(-1), np.int64)
            cur_lines.append(current_lines_fen(r, np.sort(pos[pos >= 0])))

    say("adjudicate")
    current = run_streaming(
        claims, members, providers, catalogue, policy, current_dir, parts, threads, True, say, each=each
    )
    timer.t["adjudicate"] = sum(current["timings_seconds"].values())
    used, parts_adj, cur_lines, rejected, deltas = st["used"], st["parts"], st["lines"], st["rejected"], st["deltas"]
    with timer("adjustments"):
        gone = prev.filter(pa.array(~used))
        adj, d = claim_adjustments(gone, prev.slice(0, 0), pa.array(sorted(set(rejected)), pa.string()))
        for k in AMOUNTS:
            deltas[k] += d[k]
        adjusted = settlement_order(pa.concat_tables(parts_adj + [adj]), "member_id", "settle_date", "claim_id")
        lines = None
        if has_lines:
            ids = adjusted["claim_id"].combine_chunks() if adjusted.num_rows else pa.array([""], pa.string())
            prev_lines = _read_lines(prev_folder / "lines.parquet", filters=[("claim_id", "in", ids)])
            cur = pa.concat_tables(cur_lines) if cur_lines else prev_lines.slice(0, 0)
            lines = line_adjustments(prev_lines, cur.select(prev_lines.column_names), adjusted)
        prev_totals = {k: int(pc.sum(prev[k]).as_py() or 0) for k in AMOUNTS}
    return (
        (adjusted, lines, prev_totals, deltas, prev.num_rows),
        current,
        {"used": False, "why_not": f"settled in {parts} member ranges"},
    )
