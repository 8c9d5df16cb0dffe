"""Outputs of contract §4: settlements, lines, rejected, summary.json, written atomically."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.ma  # noqa: F401 - numpy imports it lazily; a worker thread must not (a Ctrl-C could hang the join)
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, _core, keep, parquet_parts
from .encode import Encoded
from .engine import (
    ACCOUNT,
    DEDUCTIBLE,
    FIRST_SELF_PAY,
    ORDINAL,
    POOL,
    SELF_PAY,
    SUBSIDY,
    SUPP,
    TOTAL,
    Result,
    default_threads,
)
from .money import DECIMAL64, fen_to_decimal, fen_to_decimal64, yuan
from .outdir import atomic_dir, signals_held  # atomic_dir: the one way to write an output folder (outdir.py)
from .policy import Policy
from .report import REPORT_NAME, report_html
from .schema import AMOUNTS, LINE_CLASSES, REJECT_REASONS, SETTINGS
from .threads import serial, thread_pool


def claim_amounts(r: Result) -> dict[str, np.ndarray]:
    """Claim-level amounts in fen, by output column name (contract §4): views of the kernel's
    matrices (a writer copies them contiguous; a sum needs no copy), and two differences."""
    s, k = r.sums, r.settle
    eligible = r.eligible
    total = s[:, TOTAL]
    pool, supp, subsidy, account = k[:, POOL], k[:, SUPP], k[:, SUBSIDY], k[:, ACCOUNT]
    share = eligible - pool
    share -= supp
    cash = total - pool  # in place from here: one new array, not four
    cash -= supp
    cash -= subsidy
    cash -= account
    return {
        "total": total,
        "self_pay": s[:, SELF_PAY],
        "first_self_pay": s[:, FIRST_SELF_PAY],
        "eligible": eligible,
        "deductible": k[:, DEDUCTIBLE],
        "fund_pool": pool,
        "fund_supplementary": supp,
        "member_policy_share": share,
        "subsidy": subsidy,
        "account_paid": account,
        "cash_paid": cash,
    }


def invariant_violations(a: dict[str, np.ndarray]) -> dict[str, int]:
    """Rows breaking each invariant of contract §4 (amounts in fen); all zero on a correct run.
    Summed in place into one scratch array (this runs over every claim of every run)."""
    n = len(a["total"])
    acc = np.empty(n, np.int64)
    bad = np.empty(n, bool)

    def sum_differs(lhs: str, *terms: str) -> int:
        np.add(a[terms[0]], a[terms[1]], out=acc)
        for k in terms[2:]:
            np.add(acc, a[k], out=acc)
        return int(np.count_nonzero(np.not_equal(acc, a[lhs], out=bad)))

    def outside(k: str) -> int:  # not 0 <= a[k] <= member_policy_share
        np.greater(a[k], a["member_policy_share"], out=bad)
        np.logical_or(bad, a[k] < 0, out=bad)
        return int(np.count_nonzero(bad))

    negative = np.zeros(n, bool)
    for k in AMOUNTS:
        if k not in ("total", "self_pay", "cash_paid"):
            negative |= np.less(a[k], 0, out=bad)
    return {
        "total = self_pay + first_self_pay + eligible": sum_differs("total", "self_pay", "first_self_pay", "eligible"),
        "eligible = fund_pool + fund_supplementary + member_policy_share": sum_differs(
            "eligible", "fund_pool", "fund_supplementary", "member_policy_share"
        ),
        "total = fund_pool + fund_supplementary + subsidy + account_paid + cash_paid": sum_differs(
            "total", "fund_pool", "fund_supplementary", "subsidy", "account_paid", "cash_paid"
        ),
        "0 <= deductible <= member_policy_share": outside("deductible"),
        "0 <= subsidy <= member_policy_share": outside("subsidy"),
        "amounts >= 0": int(np.count_nonzero(negative)),
    }


#: Columns that get Parquet statistics (for readers that skip row groups by key): member_id (outputs are in
#: member order, so each row group holds a narrow range) and the integer keys, whose min/max cost nothing.
#: Not claim_id nor provider_id: in member order every row group spans nearly all of them, and a string
#: comparison per value is 5 % of lines.parquet's encoding.
STATISTICS = ["member_id", "settle_date", "benefit_year", "line_no"]
#: Text columns stored without a dictionary: claim ids are (nearly) one per claim, so a dictionary
#: of them outgrows its page and the writer falls back to plain after the cost of building it.
PLAIN_TEXT = ("claim_id",)


def parquet_options(schema: pa.Schema) -> dict:
    """Writer options for our outputs: decimals stored as INT64 (every amount fits
    decimal(18, 2)), dictionaries for strings only, statistics on the keys, numbers
    delta-encoded (:func:`_int_stored`). Under half the encoding time of the defaults, and
    the same Arrow table read back (claim ids plain, :data:`PLAIN_TEXT`)."""
    strings = [
        f.name
        for f in schema
        if (pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)) and f.name not in PLAIN_TEXT
    ]
    options: dict[str, Any] = {
        "use_dictionary": strings,
        "write_statistics": [n for n in STATISTICS if n in schema.names],
    }
    delta = [f.name for f in schema if _int_stored(f.type)]
    if delta:
        options["column_encoding"] = dict.fromkeys(delta, "DELTA_BINARY_PACKED")
    if _DECIMAL_AS_INT:
        options["store_decimal_as_integer"] = True
    if DECIMAL64 is not None and any(f.type == DECIMAL64 for f in schema):
        # no stored Arrow schema: readers map INT64 decimal(18, 2) to decimal128(18, 2)
        options["store_schema"] = False
    return options


def _int_stored(t: pa.DataType) -> bool:
    """Stored as Parquet INT32/INT64 without a dictionary: integers, dates, and the decimals the writer
    stores as INT64. These get DELTA_BINARY_PACKED (then snappy): mostly-zero or slowly varying amounts,
    line numbers and dates pack to a few bits a value, in about half the CPU of PLAIN + snappy and a
    smaller file (issue 9: lines.parquet 132 -> 115 MB). Every Parquet reader of the format's 2.x
    encodings reads it (pyarrow, DuckDB, Spark, polars)."""
    if pa.types.is_decimal(t):
        return _DECIMAL_AS_INT and t.precision <= 18
    return pa.types.is_integer(t) or pa.types.is_date(t)


def _supports_decimal_as_integer() -> bool:
    import io

    try:
        pq.write_table(
            pa.table({"x": pa.array([1], pa.decimal128(18, 2))}), io.BytesIO(), store_decimal_as_integer=True
        )
        return True
    except TypeError:  # an older pyarrow
        return False


_DECIMAL_AS_INT = _supports_decimal_as_integer()
#: Files get decimal64 amounts and no stored Arrow schema (parquet_options): what they store as a
#: dictionary reads back as plain strings.
_SCHEMA_FREE_FILES = _DECIMAL_AS_INT and DECIMAL64 is not None


def write_parquet(
    table: pa.Table, path: Path, threads: int | None = None, pool: parquet_parts.Encoders | None = None
) -> None:
    """``table`` into ``path`` with :func:`parquet_options`. A table of several row groups is encoded
    on ``pool`` (a caller's, shared by its tables: :func:`parquet_pool`), else on ``threads`` threads
    of its own (None: the run's ``--threads``, else every core; 1: one plain write). The file is the
    same bytes as one ``pq.write_table`` (parquet_parts.py)."""
    if pool is not None or len(table) <= ROW_GROUP:
        parquet_parts.write_table(table, path, parquet_options(table.schema), ROW_GROUP, pool)
        return
    with parquet_pool(threads) as own:
        parquet_parts.write_table(table, path, parquet_options(table.schema), ROW_GROUP, own)


@contextmanager
def parquet_pool(threads: int | None) -> Iterator[parquet_parts.Encoders | None]:
    """``threads`` threads (None: the run's ``--threads``, else every core: engine.default_threads)
    encoding Parquet row groups (parquet_parts.py); None for one thread: the tables are written the
    plain way."""
    n = default_threads() if threads is None else threads
    if n <= 1:
        yield None
        return
    with thread_pool(n, "adjudicate-parquet") as pool:
        yield parquet_parts.Encoders(pool, n)


def decimals_for(for_file: bool):
    """How fen become output decimals: decimal128 (contract §1) in memory; for a
    file, zero-copy decimal64 that Parquet stores and reads back as decimal128."""
    return fen_to_decimal64 if for_file and _SCHEMA_FREE_FILES else fen_to_decimal


def label_array(codes: np.ndarray, names: list[str] | tuple[str, ...], for_file: bool) -> pa.Array:
    """A text column of a few labels by code. For a file written without a stored Arrow schema (see
    :func:`parquet_options`) the dictionary array itself: Parquet stores its codes as they are, and
    reads them back as plain strings."""
    labels = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names, pa.string()))
    return labels if for_file and _SCHEMA_FREE_FILES else labels.cast(pa.string())


#: The writer's dictionary page limit (pyarrow's default): a larger dictionary falls back to plain.
DICTIONARY_PAGE = 1 << 20
#: Rows per row group: pyarrow's default (write_table's row_group_size=None). A column chunk takes
#: one dictionary; a dictionary array changing within a row group falls back to plain.
ROW_GROUP = 1 << 20


#: lines.item_code's type in a file's table: the same for every range of a streamed run.
ITEM_CODES = pa.dictionary(pa.int32(), pa.string())


#: Key in ``Encoded.source`` of the lines' item codes gathered in line order (:func:`line_item_codes`),
#: as a prepared dataset stores them: writing its lines.parquet then gathers nothing.
LINE_ITEM_CODES = "lines.item_code"


def line_item_codes(e: Encoded) -> pa.DictionaryArray:
    """The lines' item codes in line order, one :data:`ITEM_CODES` array: those ``e.source`` holds
    under :data:`LINE_ITEM_CODES` (a prepared dataset's), else the claims' dictionary-read item_code
    gathered by line (or the strings encoded)."""
    stored = e.source.get(LINE_ITEM_CODES)
    # lines are only ever cut out of an Encoded, never reordered or added: as many lines, the same lines
    if stored is not None and len(stored) == len(e.line_row):
        return stored
    src = e.source["item_code"]
    if pa.types.is_dictionary(src.type):
        codes = src.take(pa.array(e.line_row))
        if isinstance(codes, pa.ChunkedArray):  # chunks of one dictionary each, unified
            codes = codes.combine_chunks() if codes.num_chunks != 1 else codes.chunk(0)
    else:
        codes = e.item_code.dictionary_encode()
    if codes.type != ITEM_CODES:
        codes = pa.DictionaryArray.from_arrays(codes.indices.cast(pa.int32()), codes.dictionary.cast(pa.string()))
    return codes


def item_codes(e: Encoded, for_file: bool) -> pa.Array | pa.ChunkedArray:
    """lines.item_code. For a file, the codes of the claims' dictionary-read item_code gathered into
    a dictionary array, not its strings: nothing to hash for the writer's dictionary (a third of the
    column's cost) and no line-length strings built. Read back, the same strings.

    Always of type :data:`ITEM_CODES` (a streamed run appends every range's table to one file, and
    a range may have read its text plain: it is encoded here, as the writer would). A large
    dictionary is cut to the codes each row group uses (:func:`_used_codes`): the writer puts a
    column chunk's whole dictionary in the file."""
    if not (for_file and _SCHEMA_FREE_FILES):
        return e.item_code
    codes = line_item_codes(e)
    if codes.dictionary.nbytes <= DICTIONARY_PAGE:
        return codes
    return pa.chunked_array(
        [_used_codes(codes.slice(i, ROW_GROUP)) for i in range(0, len(codes), ROW_GROUP)], codes.type
    )


def _used_codes(codes: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same values with a dictionary of only the entries used, in their order (no hashing:
    a count per entry, then the codes renumbered)."""
    idx = np.asarray(codes.indices.fill_null(0), dtype=np.int64)
    used = np.bincount(idx, minlength=len(codes.dictionary)) > 0
    renumber = (np.cumsum(used) - 1).astype(codes.type.index_type.to_pandas_dtype())
    mask = np.asarray(codes.indices.is_null()) if codes.null_count else None
    indices = pa.array(renumber[idx], codes.type.index_type, mask=mask)
    return pa.DictionaryArray.from_arrays(indices, codes.dictionary.filter(pa.array(used)))


def line_claim_ids(e: Encoded) -> pa.Array:
    """Each line's claim_id: the claims' ids (``Encoded.claim_id``, which settlements.parquet writes
    too) repeated over their lines, a sequential copy (``_core.repeat_strings``) instead of a gather
    of every line's string from the claims' dictionary (a third of lines.parquet's work)."""
    ids = e.claim_id
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if ids.type != pa.string() or ids.null_count or e.line_start[0] != 0:
        return e.line_claim_id
    starts = np.ascontiguousarray(e.line_start, dtype=np.int64)
    offsets = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset : ids.offset + len(ids) + 1]
    total = int(np.dot(np.diff(offsets).astype(np.int64), np.diff(starts)))
    if total >= 1 << 31:  # past string's 32-bit offsets
        return e.line_claim_id
    nlines = int(starts[-1])
    # Arrow's own buffers: its allocator may hand back pages it freed (no first touch of fresh memory)
    out_offsets, out_data = pa.allocate_buffer(4 * (nlines + 1)), pa.allocate_buffer(total)
    data = ids.buffers()[2]
    _core.repeat_strings(
        np.ascontiguousarray(offsets),
        np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8),
        starts,
        np.frombuffer(out_offsets, np.int32),
        np.frombuffer(out_data, np.uint8),
    )
    return pa.Array.from_buffers(pa.string(), nlines, [None, out_offsets, out_data])


def settlements_table(r: Result, for_file: bool = False, amounts: dict[str, np.ndarray] | None = None) -> pa.Table:
    """``amounts``: :func:`claim_amounts` of ``r``, when the caller has them already."""
    e = r.enc
    ordinal = r.settle[:, ORDINAL]
    cols = {
        "claim_id": e.claim_id,
        "member_id": e.member_id,
        "provider_id": e.provider_id,
        "setting": label_array(e.setting.astype(np.int8, copy=False), SETTINGS, for_file),
        "settle_date": pa.array(e.settle_date, pa.int32()).cast(pa.date32()),
        "benefit_year": pa.array(e.year, pa.int16()),
        "admission_ordinal": pa.array(ordinal.astype(np.int32), mask=ordinal == 0),
    }
    dec = decimals_for(for_file)
    for name, fen in (claim_amounts(r) if amounts is None else amounts).items():
        cols[name] = dec(fen)
    cols.update(keep.claim_columns(e))  # --keep, after the contract's columns
    return pa.table(cols)


def lines_table(r: Result, for_file: bool = False) -> pa.Table:
    e = r.enc
    dec = decimals_for(for_file)
    return pa.table(
        {
            "claim_id": line_claim_ids(e),
            "line_no": pa.array(e.line_no.astype(np.int32, copy=False)),  # no copy once encode lays it out int32
            "item_code": item_codes(e, for_file),
            "class": label_array(e.cls, LINE_CLASSES, for_file),
            "self_pay": dec(r.line_self_pay),
            "first_self_pay": dec(r.line_fsp),
            "eligible": dec(r.line_eligible),
            "fund_pool": dec(r.line_pool),
            "fund_supplementary": dec(r.line_supp),
            **keep.line_columns(e),  # --keep
        }
    )


def rejected_table(r: Result) -> pa.Table:
    return rejected_rows_table(r.enc.rejected, keep.names_of(r.enc.source))


def rejected_rows_table(rejected: list[tuple], kept: list[str] | None = None) -> pa.Table:
    """Rejection rows, ordered by claim_id bytes then line_no: claim_id, line_no, reason, detail (contract
    §4), then member_id, provider_id, and the offending column and its value as text (``column``, ``value``)."""
    rows = sorted(rejected, key=lambda t: ((t[0] or "").encode(), t[0] is not None, t[1] or 0))
    extra = [t[4:8] if len(t) >= 8 else (None,) * 4 for t in rows]
    return pa.table(
        {
            "claim_id": pa.array([t[0] for t in rows], pa.string()),
            "line_no": pa.array([t[1] for t in rows], pa.int32()),
            "reason": pa.array([t[2] for t in rows], pa.string()),
            "detail": pa.array([t[3] for t in rows], pa.string()),
            "member_id": pa.array([e[0] for e in extra], pa.string()),
            "provider_id": pa.array([e[1] for e in extra], pa.string()),
            "column": pa.array([e[2] for e in extra], pa.string()),
            "value": pa.array([e[3] for e in extra], pa.string()),
            **keep.rejected_columns(rows, kept),  # --keep: the values on the row named
        }
    )


def count_rejected_claims(rejected: list[tuple]) -> int:
    """Rejected claims: one per claim_id, and one per line that has no claim_id."""
    return len({t[0] for t in rejected if t[0] is not None}) + sum(t[0] is None for t in rejected)


def policy_info(p: Policy) -> dict:
    """summary.json's ``policy``: which policy, and the dates its values take effect when dated."""
    return {
        "name": p.name,
        "version": p.version,
        "file": str(p.path),
        **({"in_force_from": [d.isoformat() for d in (p.valid_from,) + p.changes]} if p.valid_from else {}),
    }


def summary(r: Result, digests: dict[str, str], input_lines: int, amounts: dict[str, np.ndarray] | None = None) -> dict:
    """summary.json (contract §4). ``amounts``: :func:`claim_amounts` of ``r``, when the caller has them."""
    if amounts is None:
        amounts = claim_amounts(r)
    reasons = {k: 0 for k in REJECT_REASONS}
    for t in r.enc.rejected:
        reasons[t[2]] += 1
    rejected = count_rejected_claims(r.enc.rejected)
    settled = len(r.enc.member)
    return {
        "adjudicate_version": __version__,
        "policy": policy_info(r.policy),
        # members.account_balance is the balance on 1 January of this year (contract §3)
        "account_base_year": r.base_year,
        "counts": {
            "input_lines": input_lines,
            "input_claims": r.enc.input_claims,
            "settled_claims": settled,
            "rejected_claims": rejected,
            "rejected_by_reason": reasons,
            "settled_lines": len(r.enc.amount),
            "reconciles": settled + rejected == r.enc.input_claims,
        },
        "totals": {k: str(yuan(int(v.sum()))) for k, v in amounts.items()},
        "invariants_hold": not any(invariant_violations(amounts).values()),
        "inputs": digests,
        "timings_seconds": {k: round(v, 4) for k, v in r.timings.items()},
    }


class _Background:
    """A function run on its own thread, whose error is raised again in the caller.

    The thread must be finished before the interpreter finalizes, on every way out: a thread
    still inside Arrow then is killed as it takes the GIL back, and the process aborts (SIGABRT:
    "PyGILState_Release … finalizing", or "terminate called without an active exception" when
    the kill unwinds a C++ destructor) instead of exiting 0, 1, 2 or 130. So it is started and,
    after an error, joined with SIGINT and SIGTERM held back (outdir.signals_held): neither a
    Ctrl-C just after the start nor a second one during the join can leave it running, writing
    into a folder being removed. It is not a daemon either: whatever else exits, the interpreter
    waits for it before it finalizes. The write it does is bounded, and nothing it runs imports
    lazily (numpy.ma is imported at the top), so the join cannot hang."""

    def __init__(self, fn: Callable[[], None], name: str):
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name)

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by result()
            self.error = e
        finally:
            self.done.set()

    def start(self) -> None:
        if serial():  # --threads 1: run here and now; its error waits for result(), as on the thread
            self.thread.run()
            if self.error is not None and not isinstance(self.error, Exception):
                raise self.error  # but an interruption stops the caller at once
            return
        with signals_held():  # a Ctrl-C now is raised after the start, where the caller joins
            self.thread.start()

    def result(self) -> None:
        """Wait for the function (interruptibly); raise its error, if any."""
        # On the event, not Thread.join: a Ctrl-C inside join marks a thread that still runs as stopped
        # (CPython 3.11's fix of bpo-45274), and join() after the error would then not wait for it.
        self.done.wait()
        self.join()
        if self.error is not None:
            raise self.error

    def join(self) -> None:
        """Wait for the function, after an error of the caller (whose error wins): SIGINT and
        SIGTERM wait until it is done."""
        if self.thread.is_alive():
            with signals_held():
                self.thread.join()


#: A function run on its own thread, its error raised again in the caller (for the writers of other commands).
Background = _Background


def write_all(
    r: Result,
    out: Path,
    digests: dict[str, str],
    input_lines: int,
    with_lines: bool = True,
    extra: dict[str, Callable[[Path], dict]] | None = None,
    beside: Callable[[], object] | None = None,
    threads: int | None = None,
) -> dict:
    """Write every output of contract §4 into ``out`` atomically; return the summary.

    ``extra`` maps a summary key to a function that writes more files into the
    same temporary folder (``run --audit``) and returns that key's summary.
    ``beside``: the caller's own work, done on this thread once all but the largest table is
    written, while that one (the longest part) still is (readjudicate's comparison); not
    counted in the timings. ``threads``: how many threads encode Parquet (None: the run's
    ``--threads``, else every core).

    Timed into ``r.timings`` (summary.json ``timings_seconds``): ``write`` the three tables,
    ``finish`` the summary and ``extra``, ``report`` report.html's page. The largest table
    (lines.parquet, else settlements.parquet) is written on its own thread while the rest is
    written and the summary and the page are computed from the arrays in memory; their time
    is not counted again in ``write``. The tables' row groups are encoded on one pool of
    ``threads`` (parquet_parts.py), the settlements' and the lines' in one queue.
    """
    n = default_threads() if threads is None else threads
    with atomic_dir(out, digests) as tmp, parquet_pool(n) as pool:  # the inputs may not lie in ``out``
        t0 = time.perf_counter()
        amounts = claim_amounts(r)  # read by the settlements, the summary and the page: taken once

        def settlements() -> None:
            table = settlements_table(r, for_file=True, amounts=amounts)
            write_parquet(table, tmp / "settlements.parquet", n, pool)

        def lines() -> None:
            write_parquet(lines_table(r, for_file=True), tmp / "lines.parquet", n, pool)

        # the largest table beside the rest; both tables' row groups are encoded on one pool
        side = _Background(lines if with_lines else settlements, "adjudicate-write")
        try:
            side.start()
            if with_lines:
                settlements()
            else:
                # the side thread gathers the claim ids first; the next two columns' ids are gathered here
                # meanwhile, cached on the Encoded (the side thread takes them as they are)
                _ = (r.enc.member_id, r.enc.provider_id)
            write_parquet(rejected_table(r), tmp / "rejected.parquet", n, pool)
            t1 = time.perf_counter()
            s = summary(r, digests, input_lines, amounts)
            for key, write in (extra or {}).items():
                s[key] = write(tmp)
            t2 = time.perf_counter()
            html = _report_html(tmp, r, s, amounts)
            t3 = time.perf_counter()
            if beside is not None:
                beside()
            t4 = time.perf_counter()
            side.result()
        except BaseException:
            side.join()  # it must not outlive the folder, nor the interpreter (see _Background)
            raise
        r.timings["write"] = (t1 - t0) + (time.perf_counter() - t4)
        r.timings["finish"] = t2 - t1
        r.timings["report"] = t3 - t2
        s["timings_seconds"] = {k: round(v, 4) for k, v in r.timings.items()}
        (tmp / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / REPORT_NAME).write_text(html, encoding="utf-8")
    return s


def _report_html(tmp: Path, r: Result, s: dict, amounts: dict[str, np.ndarray]) -> str:
    """report.html of a run, drawn from the arrays in memory rather than the tables read back."""
    from .report.builders import run_figures

    e = r.enc
    return report_html(tmp, "run", s, figures=run_figures(e.settle_date, e.member, e.year, amounts))
