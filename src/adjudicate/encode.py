"""Encode: from checked input tables to the sorted integer arrays the kernel reads.

Every step is vectorised (NumPy / Arrow compute), never a Python loop per line:

- claim, member, provider and item codes are dictionary-encoded and joined
  with ``index_in``;
- the catalogue row valid on each line's date is found with one
  ``searchsorted`` over (item, valid_from) keys;
- claim-level checks give the rejections of contract §4 in priority order;
- claims are ordered by (member_id, settle_date, claim_id) as bytes and lines
  by (claim, line_no), so the result cannot depend on input row order or file
  split (contract §3).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _core, _encode
from .errors import InputError
from .inputs import Table, _background, _string_buffers, dictionary_lookup, find_positions, strings
from .keep import row_values, source_columns
from .policy import Policy
from .schema import CLAIM_HEADER, PROVIDER_KINDS, REFERRALS, REJECT_REASONS, SETTINGS, UNKNOWN_CLASS
from .threads import limit, thread_pool

INPATIENT = SETTINGS.index("inpatient")
REASON = {r: i for i, r in enumerate(REJECT_REASONS)}


@dataclass
class Encoded:
    """Accepted claims and their lines, in settlement order, plus the rejections.

    String columns are not copied while settling: each claim keeps its code in
    ``claim_dict`` and the row of its first line in the claims table, each line
    its row, and the strings are gathered once, when outputs ask for them.
    """

    # claims (accepted), sorted by member_id, settle_date, claim_id
    claim_dict: pa.Array
    claim_code: np.ndarray  # index into claim_dict
    head_row: np.ndarray  # row of the claim's first line in the claims table
    member: np.ndarray  # row in members
    provider: np.ndarray  # row in providers
    setting: np.ndarray
    referral: np.ndarray
    settle_date: np.ndarray
    year: np.ndarray
    months: np.ndarray  # whole months of continuous enrolment at settle_date
    level_row: np.ndarray
    # lines of accepted claims, sorted by claim then line_no
    line_claim: np.ndarray
    line_start: np.ndarray  # claim c's lines are line_start[c]:line_start[c+1]
    line_no: np.ndarray
    line_row: np.ndarray  # row of the line in the claims table
    cls: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray
    item_ratio: np.ndarray
    max_price: np.ndarray
    # rejections: (claim_id or None, line_no or None, reason code, detail,
    #              member_id, provider_id, offending column, its value as text)
    rejected: list[tuple]
    input_claims: int
    #: the claims table's member_id, provider_id, item_code (as read: maybe dictionary
    #: chunks), and the members' and providers' id columns ("members.member_id", …)
    source: dict[str, pa.Array]

    CLAIM_FIELDS = (
        "claim_code",
        "head_row",
        "member",
        "provider",
        "setting",
        "referral",
        "settle_date",
        "year",
        "months",
        "level_row",
    )
    LINE_FIELDS = ("line_no", "line_row", "cls", "amount", "quantity", "item_ratio", "max_price")

    @cached_property
    def claim_id(self) -> pa.Array:
        return self.claim_dict.take(pa.array(self.claim_code))

    @cached_property
    def member_id(self) -> pa.Array:
        return self.ids("member")

    @cached_property
    def provider_id(self) -> pa.Array:
        return self.ids("provider")

    def ids(self, who: str, claims: np.ndarray | None = None) -> pa.Array:
        """The member or provider id (``who``: "member", "provider") of the claims at positions
        ``claims`` (None: every claim); only those rows are gathered."""
        name = f"{who}_id"
        if name in self.__dict__:  # the whole column, built already
            col = self.__dict__[name]
            return col if claims is None else col.take(pa.array(claims))
        table = f"{who}s.{name}"  # the same strings, from the (small) members / providers table
        if table in self.source:
            rows = getattr(self, who)
            return self.source[table].take(pa.array(rows if claims is None else rows[claims]))
        heads = self.head_row if claims is None else self.head_row[claims]
        return strings(self.source[name].take(pa.array(heads)))

    @cached_property
    def line_claim_id(self) -> pa.Array:
        """Each line's claim_id."""
        return self.claim_dict.take(pa.array(self.claim_code[self.line_claim]))

    @cached_property
    def item_code(self) -> pa.Array:
        return strings(self.source["item_code"].take(pa.array(self.line_row)))

    def select(self, keep: np.ndarray) -> Encoded:
        """The same, with only the claims where ``keep`` is true (and their lines).

        When few claims are kept (readjudicate keeps a few members of a whole
        dataset) the lines are gathered by index, so the cost follows the claims
        kept; when most are, the few dropped are cut out (:meth:`without`)."""
        claims = np.flatnonzero(keep)
        if 2 * len(claims) > len(keep):
            return self.without(np.flatnonzero(~np.asarray(keep, bool)))
        sizes = np.diff(self.line_start)[claims]
        fields = {f: getattr(self, f)[claims] for f in self.CLAIM_FIELDS}
        rows = line_rows(self.line_start, claims)
        fields.update({f: getattr(self, f)[rows] for f in self.LINE_FIELDS})
        return Encoded(
            claim_dict=self.claim_dict,
            line_claim=np.repeat(np.arange(len(claims), dtype=self.line_claim.dtype), sizes),
            line_start=np.r_[0, np.cumsum(sizes)].astype(np.int64),
            rejected=self.rejected,
            input_claims=self.input_claims,
            source=self.source,
            **fields,
        )

    def without(self, claims: np.ndarray, in_place: bool = False) -> Encoded:
        """The same without the claims at positions ``claims`` (ascending) and their lines
        (:meth:`without_runs`, each claim a run of its own)."""
        claims = np.ascontiguousarray(claims, dtype=np.int64)
        return self.without_runs(claims, claims + 1, in_place)

    def without_runs(self, lo: np.ndarray, hi: np.ndarray, in_place: bool = False) -> Encoded:
        """The same without the claims in the runs [lo[k], hi[k]) (ascending, disjoint) and their lines.

        Each array is copied once, run by run between the runs dropped (no mask, no index
        array). With ``in_place`` the arrays the caller owns outright are compacted where
        they are (:func:`cut_runs`): a policy's few negative claims cut out of a run's
        arrays without fresh memory. This object is then no longer valid."""
        lo = np.ascontiguousarray(lo, dtype=np.int64)
        hi = np.ascontiguousarray(hi, dtype=np.int64)
        line_lo, line_hi = self.line_start[lo], self.line_start[hi]
        done: dict[int, np.ndarray] = {}  # by id: an array under two names is cut once

        def cut(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
            if id(a) not in done:
                done[id(a)] = cut_runs(a, lo, hi, in_place, shift)
            return done[id(a)]

        fields = {f: cut(getattr(self, f), lo, hi) for f in self.CLAIM_FIELDS}
        fields.update({f: cut(getattr(self, f), line_lo, line_hi) for f in self.LINE_FIELDS})
        # a line's claim position falls by the claims dropped before it; a claim's first line by their lines
        line_claim = cut(self.line_claim, line_lo, line_hi, np.r_[0, np.cumsum(hi - lo)].astype(np.int64))
        line_start = cut(self.line_start, lo, hi, np.r_[0, np.cumsum(line_hi - line_lo)].astype(np.int64))
        return Encoded(
            claim_dict=self.claim_dict,
            line_claim=line_claim,
            line_start=line_start,
            rejected=self.rejected,
            input_claims=self.input_claims,
            source=self.source,
            **fields,
        )


def cut_runs(
    a: np.ndarray, lo: np.ndarray, hi: np.ndarray, in_place: bool = False, shift: np.ndarray | None = None
) -> np.ndarray:
    """``a`` without its rows in the runs [lo[k], hi[k]) (ascending, disjoint), in one compiled
    pass (``_core.keep_runs``). ``shift``: rows of positions, less ``shift[k]`` after the k-th run.

    With ``in_place``, an array that owns its writable memory is compacted where it is and
    the result is a view of its front (no fresh pages); any other array is copied. A
    column-major matrix (the kernel's claim sums and results) is cut column by column and
    stays column-major, each column contiguous."""
    lo = np.ascontiguousarray(lo, dtype=np.int64)
    hi = np.ascontiguousarray(hi, dtype=np.int64)
    n = len(a) - int((hi - lo).sum())
    if a.ndim == 2 and a.shape[1] > 1 and a.strides[0] == a.itemsize and shift is None:
        own = in_place and _own_memory(a)
        out = a if own else np.empty((n, a.shape[1]), a.dtype, order="F")
        for k in range(a.shape[1]):
            _core.keep_runs(a[:, k].view(np.uint8), out[:, k].view(np.uint8), a.itemsize, lo, hi)
        return out[:n]
    a = np.ascontiguousarray(a)
    own = in_place and _own_memory(a)
    out = a if own else np.empty((n, *a.shape[1:]), a.dtype)
    if shift is not None:
        _core.keep_runs_shifted(a, out, lo, hi, shift)
    elif a.size:
        width = a.itemsize * (a.size // len(a))
        _core.keep_runs(a.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8), width, lo, hi)
    return out[:n]


def _own_memory(a: np.ndarray) -> bool:
    """Whether ``a`` may be compacted where it is: its memory is writable and NumPy's own, the
    array's or that of the array it is the front of (what an earlier in-place cut returned: the
    kernel cuts its negative claims out of arrays encode has already cut)."""
    base = a if a.flags.owndata else a.base
    return (
        a.flags.writeable
        and isinstance(base, np.ndarray)
        and base.flags.owndata
        and base.flags.writeable
        and a.__array_interface__["data"][0] == base.__array_interface__["data"][0]
    )


def line_rows(line_start: np.ndarray, claims: np.ndarray) -> np.ndarray:
    """The line positions of the claim positions ``claims`` (ascending), in order: one gather, no mask
    over every line."""
    sizes = np.diff(line_start)[claims]
    if not len(sizes):
        return np.zeros(0, np.int64)
    ends = np.cumsum(sizes)
    return np.repeat(line_start[claims] - (ends - sizes), sizes) + np.arange(ends[-1])


def _codes(arr: pa.Array | pa.ChunkedArray, dtype: type = np.int64) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes of a string array (-1 for null, of ``dtype``) and its dictionary.

    A dictionary-read column (``Table.coded``) is not hashed line by line: the
    chunks' dictionaries are encoded together and each chunk's codes mapped.
    """
    if isinstance(arr, pa.ChunkedArray) and pa.types.is_dictionary(arr.type):
        if arr.num_chunks == 0:
            return np.empty(0, dtype), pa.array([], arr.type.value_type)
        enc = pa.concat_arrays([c.dictionary for c in arr.chunks]).dictionary_encode()
        return dictionary_lookup(arr, enc.dictionary, dtype), enc.dictionary
    enc = arr.dictionary_encode()
    idx: np.ndarray = np.asarray(pc.fill_null(enc.indices, -1), dtype=dtype)
    return idx, enc.dictionary


def _who(claims: Table, row: int) -> tuple[str | None, str | None]:
    """member_id and provider_id of a claims row, for a rejection."""
    return claims.coded("member_id")[row].as_py(), claims.coded("provider_id")[row].as_py()


def shown_value(claims: Table, column: str | None, row: int) -> str | None:
    """A claims value as text for rejected.parquet: dates ISO, amounts in yuan, enums by name; None if null."""
    if column is None or claims.nulls[column][row]:
        return None
    col = claims.spec.column(column)
    if col.kind == "string":  # as read (dictionary chunks too): no column is decoded for one value
        return claims.coded(column)[row].as_py()
    v = claims[column][row]
    if col.kind == "enum":
        return col.enum[int(v)]
    if col.kind == "date":
        return str(np.datetime64(int(v), "D"))
    if col.kind == "amount":
        from .money import yuan

        return str(yuan(int(v)))
    return str(int(v))


def _byte_rank(dictionary: pa.Array) -> np.ndarray:
    """Rank of each dictionary value in byte order (UTF-8 order is byte order)."""
    order = np.asarray(pc.sort_indices(dictionary))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank


def claim_codes(ids: pa.Array | pa.ChunkedArray, dtype: type = np.int64) -> tuple[np.ndarray, pa.Array]:
    """``_codes`` of the claim ids (the same codes and dictionary), in one compiled pass
    over Arrow's buffers (``_core.string_codes``): ids are hashed once per run of equal
    consecutive ids (a claim's lines come together in real exports), and no per-line
    array is made but the codes (of ``dtype``: np.int32 halves it where the ids fit)."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    if not all(c.type == pa.string() for c in chunks):
        return _codes(strings(ids), dtype)
    arr = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
    validity, offsets, data = arr.buffers()
    code: np.ndarray = np.empty(len(arr), dtype)
    first = _core.string_codes(
        np.frombuffer(validity, np.uint8) if validity is not None and arr.null_count else np.empty(0, np.uint8),
        np.frombuffer(offsets, np.int32) if offsets is not None else np.zeros(1, np.int32),
        np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8),
        arr.offset,
        code,
    )
    return code, arr.take(pa.array(first))


def claim_codes_of(claims: Table, dtype: type = np.int64) -> tuple[np.ndarray, pa.Array]:
    """``claim_codes`` of the claims table's claim ids: the codes made while it was read
    (``Table.codes``) where there are, else hashed now."""
    if "claim_id" in claims.codes:
        code, dictionary = claims.codes["claim_id"]
        return (code if code.dtype == dtype else code.astype(dtype)), dictionary
    return claim_codes(claims.coded("claim_id"), dtype)


def lookup(values: pa.Array | pa.ChunkedArray, value_set: pa.Array, dtype: type = np.int64) -> np.ndarray:
    """Position of each value in ``value_set`` (-1 where absent or null), of ``dtype``."""
    if isinstance(values, pa.ChunkedArray) and pa.types.is_dictionary(values.type):
        return dictionary_lookup(values, value_set, dtype)
    if isinstance(values, pa.Array):
        return find_positions(values, value_set, dtype)
    return np.asarray(pc.fill_null(pc.index_in(values, value_set=value_set), -1), dtype=dtype)


def lookup_column(claims: Table, column: str, value_set: pa.Array) -> np.ndarray:
    """``lookup`` of a claims text column in ``value_set``, int32: through the codes made while
    the table was read (``Table.codes``) where there are, so only the distinct values are
    looked up and each line's position is a gather by its code (no string hashed per line)."""
    if column in claims.codes:
        code, dictionary = claims.codes[column]
        pos = np.append(lookup(dictionary, value_set, np.int32), np.int32(-1))
        return pos[code]  # code -1 (null) takes the last entry: -1
    return lookup(claims.coded(column), value_set, np.int32)


def catalogue_codes(cat: Table) -> pa.Array:
    """The catalogue's distinct item codes, numbered as ``catalogue_rows`` numbers them."""
    return _codes(cat["item_code"])[1]


def check_unique(t: Table, column: str) -> None:
    codes, dictionary = _codes(t[column])
    counts = np.bincount(codes, minlength=len(dictionary))
    if (counts > 1).any():
        dup = int(np.flatnonzero(counts > 1)[0])
        rows = np.flatnonzero(codes == dup)
        path, row = t.where(int(rows[1]))
        raise InputError(f"duplicate {column} {dictionary[dup].as_py()!r} (also on an earlier row)", path, column, row)


def _catalogue_index(cat: Table) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The catalogue checked and sorted by (item, valid_from): its item dictionary, and
    per item code its first sorted position and row count; per sorted position the
    validity start and end and the catalogue row. Overlapping validity for one item,
    or valid_to before valid_from, is an input error naming the row."""
    codes, dictionary = _codes(cat["item_code"])
    start = cat["valid_from"].astype(np.int64)
    end = np.where(cat.nulls["valid_to"], np.iinfo(np.int32).max, cat["valid_to"]).astype(np.int64)
    bad = end < start
    if bad.any():
        path, row = cat.where(int(np.flatnonzero(bad)[0]))
        raise InputError("valid_to is before valid_from", path, "valid_to", row)
    order = np.lexsort((start, codes))
    c, s, e = codes[order], start[order], end[order]
    same = c[1:] == c[:-1]
    overlap = same & (s[1:] <= e[:-1])
    if overlap.any():
        k = int(np.flatnonzero(overlap)[0])
        path, row = cat.where(int(order[k + 1]))
        raise InputError(
            f"validity of item {dictionary[int(c[k + 1])].as_py()!r} overlaps the row "
            f"valid from {np.datetime64(int(s[k]), 'D')}",
            path,
            "valid_from",
            row,
        )
    first = np.searchsorted(c, np.arange(len(dictionary))).astype(np.int64)
    count = np.diff(np.r_[first, len(c)]).astype(np.int64)
    return dictionary, first, count, np.ascontiguousarray(s), np.ascontiguousarray(e), order.astype(np.int64)


def catalogue_rows(
    cat: Table,
    item_codes: pa.Array | pa.ChunkedArray | None,
    dates: np.ndarray,
    take: np.ndarray | None = None,
    item: np.ndarray | None = None,
) -> np.ndarray:
    """Row of the catalogue valid on each date for each item code (-1 if none).

    Overlapping validity for one item, or valid_to before valid_from, is an
    input error naming the row. ``item_codes`` and ``dates`` are per source row;
    ``take`` lists the source rows wanted, in order (default: all). ``item``,
    when given, is ``lookup(item_codes, catalogue_codes(cat))`` computed already.
    """
    dictionary, first, count, s, e, order = _catalogue_index(cat)
    if item is None:
        item = lookup(item_codes, dictionary)
    if take is not None and len(take) == 0:
        return np.empty(0, np.int64)
    take = np.empty(0, np.int64) if take is None else np.ascontiguousarray(take, dtype=np.int64)
    crow = np.empty(len(take) if len(take) else len(item), np.int64)
    _core.match_catalogue(item, take, np.ascontiguousarray(dates, dtype=np.int32), first, count, s, e, order, crow)
    return crow


def _catalogue_values(catalogue: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per catalogue row: class code, first_self_pay ratio (bp, -1 null), max_unit_price (-1 null)."""
    return (
        np.ascontiguousarray(catalogue["class"], dtype=np.int8),
        np.where(catalogue.nulls["first_self_pay_ratio"], -1, catalogue["first_self_pay_ratio"]).astype(np.int64),
        np.where(catalogue.nulls["max_unit_price"], -1, catalogue["max_unit_price"]).astype(np.int64),
    )


def gather_catalogue_columns(crow: np.ndarray, catalogue: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line, from its catalogue row (-1: none): class code, first_self_pay ratio (bp, -1 null;
    int16, as ``encode`` lays it out), max_unit_price (fen, -1 null)."""
    cls = np.empty(len(crow), np.int8)
    item_ratio = np.empty(len(crow), np.int16)
    max_price = np.empty(len(crow), np.int64)
    _core.gather_catalogue(
        np.ascontiguousarray(crow, dtype=np.int64),
        *_catalogue_values(catalogue),
        UNKNOWN_CLASS,
        cls,
        item_ratio,
        max_price,
    )
    return cls, item_ratio, max_price


def enrolment_months(since: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Whole months from ``since`` to ``on`` (days since epoch), schemes.md §4."""
    out = np.empty(len(on), np.int64)
    _core.enrolment_months(np.ascontiguousarray(since, dtype=np.int32), np.ascontiguousarray(on, dtype=np.int32), out)
    return out


def _months_into(since: np.ndarray, on: np.ndarray, out: np.ndarray) -> None:
    """``enrolment_months`` of a share of the claims, written into ``out`` (a slice of the whole)."""
    _core.enrolment_months(np.ascontiguousarray(since, dtype=np.int32), np.ascontiguousarray(on, dtype=np.int32), out)


def years_of(days: np.ndarray) -> np.ndarray:
    """The calendar year (int32) of each date (days since epoch): a table of the years of the
    dates' span, gathered, where NumPy's datetime conversion costs several passes."""
    if not len(days):
        return np.empty(0, np.int32)
    lo, hi = int(days.min()), int(days.max())
    if hi - lo > 1 << 22:  # a span of millennia: the table would be larger than the dates
        return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int32) + 1970
    table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int32) + 1970
    return table[days - np.int32(lo) if days.dtype == np.int32 else days - lo]


def level_rows(kind_code: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Deductible-table row (0, 1, 2 for '1 or community', '2', '3'), schemes.md §2."""
    row = np.where(level >= 3, 2, np.where(level == 2, 1, 0))
    return np.where(kind_code == PROVIDER_KINDS.index("community"), 0, row).astype(np.int8)


#: Shares of the layout's second pass, run on two threads (``_encode.order_buckets``).
ORDER_SHARES = 8
#: Threads of encode's header passes and layout, and the shares each of the other passes is cut
#: into (claim codes, member groups, positions, buckets: each share writes records of its own).
ENCODE_THREADS = 2
ENCODE_SHARES = 2


def _cuts(n: int, shares: int) -> list[int]:
    """The bounds of ``shares`` near-equal parts of 0 .. n (shares + 1 values, 0 first, n last)."""
    return [n * k // shares for k in range(shares + 1)]


def _shared(pool: Executor, shares: list[Callable[[], object]]) -> None:
    """Every share (a call of a compiled pass on a part of its work) on ``pool``'s threads;
    returns when all are done (the first share's error raised, in share order)."""
    done = [pool.submit(share) for share in shares]
    for f in done:
        f.result()


def layout_outputs(nl: int, row_type: type) -> tuple[np.ndarray, ...]:
    """The per-line arrays ``_encode.layout_claims`` writes for ``nl`` lines: rows and claim
    positions (``row_type``), amount, quantity, max_price (int64), line_no (int32), the ratio
    (int16) and the class (int8)."""
    return (
        np.empty(nl, row_type),
        np.empty(nl, row_type),
        *(np.empty(nl, np.int64) for _ in range(3)),
        np.empty(nl, np.int32),
        np.empty(nl, np.int16),
        np.empty(nl, np.int8),
    )


def _touch_all(arrays: tuple[np.ndarray, ...]) -> None:
    for a in arrays:
        _encode.touch_pages(a.view(np.uint8))


def encode(claims: Table, members: Table, providers: Table, catalogue: Table) -> Encoded:
    with ExitStack() as stack:
        return _encode_with(stack, claims, members, providers, catalogue)


def _encode_with(stack: ExitStack, claims: Table, members: Table, providers: Table, catalogue: Table) -> Encoded:
    n = claims.rows
    nulls = claims.nulls
    # claim codes and the line order (row numbers) in int32 where the rows fit: half the
    # fresh pages, and half the bytes the header checks read seven times
    row_type = np.int32 if n < 2**31 else np.int64
    # The string hashing of the whole run: independent jobs that release the GIL, run side
    # by side, the longest first; the ids' uniqueness checked among them, its error first.
    with thread_pool(2, "adjudicate-hash") as pool:
        jobs: dict[str, Future[Any]] = {
            # per-line positions and codes as int32 (the small tables' rows and dictionaries
            # fit): half the fresh pages of int64
            "member": pool.submit(lookup_column, claims, "member_id", members["member_id"]),
            # the members' ids in byte order, for the settlement order: off the header passes' path
            "member_rank": pool.submit(_byte_rank, members["member_id"]),
            "diagnosis": pool.submit(_codes, claims.coded("diagnosis"), np.int32),
            "provider": pool.submit(lookup_column, claims, "provider_id", providers["provider_id"]),
            "item": pool.submit(lookup_column, claims, "item_code", catalogue_codes(catalogue)),
            "claim": pool.submit(claim_codes_of, claims, row_type),
            "unique members": pool.submit(check_unique, members, "member_id"),
            "unique providers": pool.submit(check_unique, providers, "provider_id"),
        }
        order = ["unique members", "unique providers", *jobs]
        hashed = {k: jobs[k].result() for k in order}
    claim_code, claim_dict = hashed["claim"]
    nclaims = len(claim_dict)
    # Lines without a claim_id cannot belong to any claim: each is rejected alone.
    # Per claim; all but ``reject`` and ``reject_line`` are written only where a claim is
    # rejected (np.empty: pages never written cost nothing), and the detail and column
    # are numbers of ``texts``, not arrays of Python objects.
    reject = np.full(nclaims, -1, np.int8)  # reason code per claim (-1: accepted)
    reject_line = np.full(nclaims, -1, np.int64)  # offending line row
    reject_detail = np.empty(nclaims, np.int16)  # texts[...]
    reject_row = np.empty(nclaims, np.int64)  # the line whose value is shown (per_line or not)
    reject_col = np.empty(nclaims, np.int16)  # the column of that value: texts[...]
    texts: list[str | None] = []

    def text(value: str | None) -> int:
        texts.append(value)
        return len(texts) - 1

    line_no = np.ascontiguousarray(claims["line_no"])  # int32 as read (int64 from an older dataset)
    member, provider, diagnosis = hashed["member"], hashed["provider"], hashed["diagnosis"][0]
    setting = np.ascontiguousarray(claims["setting"], dtype=np.int8)
    admit = np.ascontiguousarray(claims["admit_date"], dtype=np.int32)
    discharge = np.ascontiguousarray(claims["discharge_date"], dtype=np.int32)
    no_filter = np.empty(0, np.uint8)

    def mark(cl: np.ndarray, rows: np.ndarray, reason: str, detail: str, column: str, per_line: bool = True) -> None:
        """Reject claims ``cl`` with ``reason``, naming line ``rows`` (one per claim), unless already rejected."""
        fresh = reject[cl] < 0
        cl, rows = cl[fresh], rows[fresh]
        reject[cl] = REASON[reason]
        if per_line:
            reject_line[cl] = rows
        reject_detail[cl] = text(detail)
        reject_row[cl] = rows
        reject_col[cl] = text(column)

    # 1, 4–7: the line-level checks in one compiled pass over the lines in row order
    # (no mask over every line). Per claim it keeps the lowest-ranked defect on its first
    # line in line order, the header values of one of its lines, and whether its lines
    # may disagree on the header (3., found exactly below on those claims only).
    required = [c.name for c in claims.spec.columns if not c.nullable and c.name != "claim_id"]
    has_null = {col: bool(nulls[col].any()) for col in {*required, *CLAIM_HEADER}}
    null_ranks = [k for k, col in enumerate(required) if has_null[col]]
    late = (  # ranks len(required) + 0..3: (reason, detail, column)
        ("unknown_member", "member_id is not in the members table", "member_id"),
        ("unknown_provider", "provider_id is not in the providers table", "provider_id"),
        ("missing_discharge_date", "inpatient claim without discharge_date", "discharge_date"),
        ("discharge_before_admit", "discharge_date is before admit_date", "discharge_date"),
    )
    # The layout's outputs (below), one per line with a claim_id, made now: a helper thread
    # touches their pages while the header passes run on this one (the system zeroes fresh
    # pages on first touch, otherwise most of the layout's time)
    laid = layout_outputs(n - int(np.count_nonzero(nulls["claim_id"])), row_type)
    touching = _background(lambda: _touch_all(laid))
    head = np.zeros(nclaims, _encode.HEAD)
    cand_row = np.empty(nclaims, np.int64)  # written where a claim has a defect
    # The header passes and the layout on both cores (``pool``, to the end of the layout),
    # each pass in ENCODE_SHARES shares that write records of their own: by claim code (the
    # checks), member group (the order), position (the header columns), bucket (the layout)
    pool = stack.enter_context(thread_pool(ENCODE_THREADS, "adjudicate-layout"))
    shares = max(1, min(ENCODE_SHARES, limit()))  # one whole pass each under --threads 1
    check_args = (
        claim_code,
        line_no,
        [nulls[required[k]].view(np.uint8) for k in null_ranks],
        np.array(null_ranks, np.int16),
        member,
        provider,
        setting,
        np.ascontiguousarray(claims["referral"], dtype=np.int8),
        admit,
        discharge,
        diagnosis,
        [nulls[col].view(np.uint8) if has_null[col] else no_filter for col in CLAIM_HEADER],
        INPATIENT,
        len(required),
        head.view(np.uint8),
        cand_row,
    )

    cuts = _cuts(nclaims, shares)
    # each share the claims of codes lo .. hi - 1, on the rows that hold them
    spans = [(lo, hi, *_encode.code_span(claim_code, lo, hi)) for lo, hi in zip(cuts[:-1], cuts[1:])]
    _shared(pool, [partial(_encode.check_lines, *check_args, *span) for span in spans])
    found = np.flatnonzero(head["cand"])
    found_rank = head["cand"][found] - 1
    found_row = cand_row[found]
    del cand_row
    # 1. null in a required field
    for k in null_ranks:
        sel = found_rank == k
        mark(found[sel], found_row[sel], "null_required_field", f"{required[k]} is null", required[k])

    # Every claim in settlement order: member_id bytes, settle_date, claim_id bytes (the
    # header values of the pass's record; a rejected claim's place does not matter: it is
    # cut out at the end). ``corder``: the claim codes by position, ``rank`` its inverse.
    none = np.empty(0, np.int64)
    corder, rank = np.empty(nclaims, np.int64), np.empty(nclaims, row_type)
    ids = claim_dict if claim_dict.type == pa.string() else claim_dict.cast(pa.string())
    member_rank = hashed.pop("member_rank") if members.rows else np.zeros(1, np.int64)
    bounds = _encode.member_groups(head.view(np.uint8), member_rank, corder)
    # member groups cut where the claims before them reach each share's part of the claims
    g_cuts = np.searchsorted(bounds, _cuts(nclaims, shares))
    g_cuts[0], g_cuts[-1] = 0, len(member_rank)
    offsets, data = _string_buffers(ids)
    _shared(
        pool,
        [
            partial(
                _encode.order_groups,
                head.view(np.uint8),
                bounds,
                int(a),
                int(b),
                INPATIENT,
                offsets,
                data,
                corder,
                rank,
            )
            for a, b in zip(g_cuts[:-1], g_cuts[1:])
        ],
    )
    del bounds, offsets, data
    nc = len(corder)
    m, p = np.empty(nc, np.int64), np.empty(nc, np.int64)
    c_setting, c_referral = np.empty(nc, np.int8), np.empty(nc, np.int8)
    c_admit, settle = np.empty(nc, np.int32), np.empty(nc, np.int32)
    line_start = np.empty(nc + 1, np.int64)
    columns = (m, p, c_setting, c_referral, c_admit, settle, line_start)
    k_cuts = _cuts(nc, shares)
    header = (head.view(np.uint8), corder, INPATIENT, *columns)
    _shared(
        pool,
        [
            partial(_encode.header_columns, *header, k0=k0, k1=k1, counts=True)
            for k0, k1 in zip(k_cuts[:-1], k_cuts[1:])
        ],
    )
    del header
    np.cumsum(line_start, out=line_start)  # the line counts summed: each claim's first line
    nl = int(line_start[-1])
    # The lines of every claim, claim after claim in settlement order, each claim's in
    # (line_no, row) order (the reference line of a claim and the line named in a
    # rejection are the lowest line_no, whatever the file order), with the per-line values
    # and the catalogue's (looked up on the claim's admit_date): one compiled pass writing
    # the kernel's arrays, in buckets that stay in the cache (no gather at random).
    # Per line, as narrow as exact (the bytes per line are what the run pays in fresh pages):
    # rows and claim positions in int32 where the rows fit, line_no int32 (its checked range),
    # the ratio int16 (bp); amounts, quantities and prices stay int64 (the contract's range)
    touching.result()  # before the layout writes them
    if len(laid[0]) != nl:  # (never: the lines laid out are those with a claim_id)
        laid = layout_outputs(nl, row_type)
    lorder, line_claim, amount, quantity, max_price, line_no_s, item_ratio, cls = laid
    cat = (*_catalogue_index(catalogue)[1:], *_catalogue_values(catalogue), UNKNOWN_CLASS)
    outputs = (lorder, line_claim, line_no_s, amount, quantity, cls, item_ratio, max_price)
    # the first pass (rows to their buckets) in ENCODE_SHARES shares of the buckets, each
    # reading every row; the second (each bucket in order, with the catalogue) in
    # ORDER_SHARES shares taken in turn, so a thread the machine slows holds up one share
    per_row = (claim_code, rank, line_no, claims["amount"], claims["quantity"], hashed.pop("item"), c_admit)
    layout = (*per_row, line_start, *cat, *outputs)
    _shared(
        pool,
        [partial(_encode.layout_claims, *layout, order=False, part=k, parts=shares) for k in range(shares)],
    )
    del per_row, layout
    laid_args = (line_start, c_admit, *cat, *outputs)
    _shared(pool, [partial(_encode.order_buckets, *laid_args, k, ORDER_SHARES) for k in range(ORDER_SHARES)])
    del laid_args
    # 2. duplicate (claim_id, line_no): a line with the line_no of the line before it,
    #    not counting lines with a null
    anynull = np.zeros(n if null_ranks else 0, bool)
    for k in null_ranks:
        anynull |= nulls[required[k]]
    first_bad = np.empty(nc, np.int64)
    repeat = (line_start, line_no_s, lorder, anynull.view(np.uint8), first_bad)
    _shared(pool, [partial(_encode.first_repeat_laid, *repeat, k0, k1) for k0, k1 in zip(k_cuts[:-1], k_cuts[1:])])
    del repeat
    del anynull
    at = np.flatnonzero(first_bad >= 0)
    mark(corder[at], first_bad[at], "duplicate_line", "line_no appears twice in the claim", "line_no")
    del first_bad, at
    # 3. inconsistent claim header: all lines agree iff each agrees with the line before
    #    it in (claim, line_no) order; the claims the pass found suspect are checked
    #    column by column in the contract's order, on their lines gathered
    suspect = np.flatnonzero(head["state"] & _encode.SUSPECT)
    suspect = suspect[reject[suspect] < 0]
    if len(suspect):
        rows = lorder[line_rows(line_start, rank[suspect].astype(np.int64))].astype(np.int64)
        sub_start = np.r_[0, np.cumsum(np.diff(line_start)[rank[suspect]])].astype(np.int64)
        sub_order = np.arange(len(rows), dtype=np.int64)
        inpatient_rows = (setting[rows] == INPATIENT).view(np.uint8)
        for col in CLAIM_HEADER:
            null = np.ascontiguousarray(nulls[col][rows])
            if col in ("member_id", "provider_id"):  # the join's row number identifies the id; unknown
                v = (member if col == "member_id" else provider)[rows]  # ids get codes of their own
                unknown = np.flatnonzero((v < 0) & ~null)
                if len(unknown):
                    ids = strings(claims.coded(col).take(pa.array(rows[unknown])))
                    v[unknown] = -2 - _codes(ids, v.dtype)[0]
            elif col == "diagnosis":  # the only other text column of the header
                v = diagnosis[rows]
            else:
                v = np.ascontiguousarray(claims[col])[rows]
            at = np.empty(len(suspect), np.int64)
            only = inpatient_rows if col == "discharge_date" else no_filter
            _core.first_differing(sub_order, sub_start, v, null.view(np.uint8), only, at)
            hit = np.flatnonzero(at >= 0)
            mark(
                suspect[hit],
                rows[at[hit]],
                "inconsistent_claim_header",
                f"{col} differs between lines of the claim",
                col,
            )
    # 4–7. unknown member / provider, discharge date: found by the pass
    for k, (reason, detail, column) in enumerate(late):
        sel = found_rank == len(required) + k
        mark(found[sel], found_row[sel], reason, detail, column, per_line=False)

    rejected: list[tuple] = []
    orphans = n - nl  # lines without a claim_id, in row order
    for row in (np.flatnonzero(claim_code < 0) if orphans else none).tolist():
        rejected.append(
            (
                None,
                int(line_no[row]) if not nulls["line_no"][row] else None,
                "null_required_field",
                "claim_id is null",
                *_who(claims, row),
                "claim_id",
                None,
                *row_values(claims, row),  # --keep
            )
        )

    input_claims = nclaims + orphans
    del claim_code, member, provider, diagnosis, head, rank
    for job in ("claim", "member", "provider", "diagnosis"):
        del hashed[job]
    cf = lorder[line_start[:-1]].astype(np.int64)  # first line row of each claim

    for c in np.flatnonzero(reject >= 0):
        line = reject_line[c]
        row = int(reject_row[c])
        rejected.append(
            (
                claim_dict[int(c)].as_py(),
                int(line_no[line]) if line >= 0 and not nulls["line_no"][line] else None,
                REJECT_REASONS[reject[c]],
                texts[reject_detail[c]],
                *_who(claims, row),
                texts[reject_col[c]],
                shown_value(claims, texts[reject_col[c]], row),
                *row_values(claims, row),  # --keep
            )
        )
    enc = Encoded(
        claim_dict=claim_dict,
        claim_code=corder,
        head_row=cf,
        member=m,
        provider=p,
        setting=c_setting,
        referral=c_referral,
        settle_date=settle,
        year=settle,  # placeholders, of accepted claims below
        months=settle,
        level_row=c_setting,
        line_claim=line_claim,
        line_start=line_start,
        line_no=line_no_s,
        line_row=lorder,
        cls=cls,
        amount=amount,
        quantity=quantity,
        item_ratio=item_ratio,
        max_price=max_price,
        rejected=rejected,
        input_claims=input_claims,
        source={
            **{k: claims.coded(k) for k in ("member_id", "provider_id", "item_code")},
            "members.member_id": strings(members["member_id"]),
            "providers.provider_id": strings(providers["provider_id"]),
            **source_columns(claims),  # --keep
        },
    )
    dropped = np.flatnonzero(reject[corder] >= 0)
    if len(dropped):  # the rejected claims and their lines cut out where they are (no fresh pages)
        enc = enc.without(dropped, in_place=True)
    enc.year = years_of(enc.settle_date)
    # the months of enrolment in shares of the claims (each a slice of the arrays)
    since, on = members["enrolled_since"][enc.member], enc.settle_date
    months = enc.months = np.empty(len(on), np.int64)
    cut = _cuts(len(on), shares)
    _shared(pool, [partial(_months_into, since[a:b], on[a:b], months[a:b]) for a, b in zip(cut[:-1], cut[1:])])
    # per provider, then gathered: one pass over the claims, not five
    enc.level_row = level_rows(providers["kind"], providers["level"])[enc.provider]
    return enc


def benefit_factors(
    policy: Policy, enc: Encoded, providers: Table, period: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per claim: does it get benefit, and its factor in bp (the benefit rules of the
    policy period of its settle_date: ``period``, from ``Policy.period_index``)."""
    p = enc.provider
    designated = providers["designated"][p]
    local = providers["local"][p]
    kind = providers["kind"][p]
    level = providers["level"][p]
    referral = enc.referral  # -1 none
    benefit = np.zeros(len(p), bool)
    factor = np.zeros(len(p), np.int64)
    pols = policy.period_policies
    if period is None:
        period = policy.period_index(enc.settle_date)
    for k, pol in enumerate(pols):
        _rules_of_period(
            pol,
            enc,
            in_period=period == k if len(pols) > 1 else None,
            designated=designated,
            local=local,
            kind=kind,
            level=level,
            referral=referral,
            benefit=benefit,
            factor=factor,
        )
    return benefit, factor


def _rules_of_period(
    policy: Policy,
    enc: Encoded,
    *,
    in_period: np.ndarray | None,
    designated,
    local,
    kind,
    level,
    referral,
    benefit: np.ndarray,
    factor: np.ndarray,
) -> None:
    for block in policy.blocks:
        todo = np.isin(enc.setting, [SETTINGS.index(s) for s in block.settings])
        if in_period is not None:
            todo &= in_period
        for rule in block.benefit:
            hit = todo.copy()
            if rule.designated is not None:
                hit &= designated == rule.designated
            if rule.local is not None:
                hit &= local == rule.local
            if rule.kinds is not None:
                hit &= np.isin(kind, [PROVIDER_KINDS.index(k) for k in rule.kinds])
            if rule.levels is not None:
                hit &= np.isin(level, rule.levels)
            if rule.referrals is not None:
                codes = [REFERRALS.index(r) if r != "none" else -1 for r in rule.referrals]
                hit &= np.isin(referral, codes)
            if rule.factor_bp is not None:
                benefit[hit] = True
                factor[hit] = rule.factor_bp
            todo &= ~hit
