"""The compiled passes of encode (encode.py) over every line of the claims table.

``check_lines`` reads the lines once, in row order (sequential whatever the layout of the
file), and keeps per claim a small record (``HEAD``): the claim-header values of the
claim's first line in row order, and the best line-level rejection found so far. The
record of a later line's claim is fetched ahead, so shuffled input costs about what
grouped input costs.
"""

import numpy as np

from libc.stdint cimport INT64_MAX, int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from adjudicate._hashing cimport hash_bytes, mix64
from libc.string cimport memcmp, memcpy, memset
from libc.stdlib cimport calloc, free, malloc, qsort, realloc

cdef extern from *:
    void prefetch "__builtin_prefetch" (const void*) nogil

ctypedef fused index_t:
    int32_t
    int64_t

ctypedef fused line_t:  # line_no as read: int32 (its checked range), int64 from older datasets
    int32_t
    int64_t


cdef struct Head:
    int32_t lines  # the claim's lines (rows of its code)
    int32_t member
    int32_t provider
    int32_t admit
    int32_t discharge
    int32_t diagnosis
    int16_t cand  # 1 + the rank of the best line-level rejection seen (0: none)
    int8_t setting
    int8_t referral
    uint8_t nulls  # bit k: header column k (encode.CLAIM_HEADER order) is null
    uint8_t state  # SEEN | SUSPECT


#: One record per claim, as ``check_lines`` writes it (the C struct ``Head``).
HEAD = np.dtype(
    [
        ("lines", "<i4"),
        ("member", "<i4"),
        ("provider", "<i4"),
        ("admit", "<i4"),
        ("discharge", "<i4"),
        ("diagnosis", "<i4"),
        ("cand", "<i2"),
        ("setting", "i1"),
        ("referral", "i1"),
        ("nulls", "u1"),
        ("state", "u1"),
    ],
    align=True,
)
assert HEAD.itemsize == sizeof(Head)

#: ``state`` bits: the claim has a line; its lines may disagree on the header (or name an
#: unknown member or provider, whose ids the codes do not tell apart): check it exactly.
cdef enum:
    F_SEEN = 1
    F_SUSPECT = 2
SEEN = F_SEEN
SUSPECT = F_SUSPECT

# header columns, in encode.CLAIM_HEADER order (bits of ``Head.nulls``)
cdef enum:
    H_MEMBER = 0
    H_PROVIDER = 1
    H_SETTING = 2
    H_REFERRAL = 3
    H_ADMIT = 4
    H_DISCHARGE = 5
    H_DIAGNOSIS = 6
    AHEAD = 16
    LOOKAHEAD = 32  # values hashed ahead of their probe (string_positions, StringCoder.place_all)


def check_lines(const index_t[::1] claim, const line_t[::1] line_no,
                list required_nulls, const int16_t[::1] required_rank,
                const int32_t[::1] member, const int32_t[::1] provider, const int8_t[::1] setting,
                const int8_t[::1] referral, const int32_t[::1] admit, const int32_t[::1] discharge,
                const int32_t[::1] diagnosis, list header_nulls,
                int8_t inpatient, int16_t first_rank, uint8_t[::1] head, int64_t[::1] cand_row,
                int64_t code_lo=0, int64_t code_hi=-1, Py_ssize_t row_lo=0, Py_ssize_t row_hi=-1):
    """One pass over the lines, in row order, for encode's line-level checks.

    Per line of a claim (``claim`` >= 0), its lowest-ranked defect: a null in a required
    column (``required_nulls[k]``, non-empty masks only, of rank ``required_rank[k]``),
    else an unknown member (rank ``first_rank``: member < 0 and not null), an unknown
    provider (+1), an inpatient line without discharge_date (+2) or discharging before
    admit_date (+3). Per claim the lowest rank wins, then the lowest (line_no, row): the
    line that comes first in the claim's line order (``layout_claims``). ``head`` (zeroed,
    ``HEAD`` records viewed as bytes) gets ``cand`` = rank + 1 and ``cand_row`` the line,
    and ``lines`` the claim's number of lines (``layout_claims`` lays them out by it).

    The first line of a claim met in row order writes its header values into ``head``;
    a later line whose values differ from them (nulls agree with nulls; discharge_date
    only where both lines are inpatient) marks the claim SUSPECT, as does an unknown
    member or provider. A claim whose lines disagree between any two lines is SUSPECT:
    the caller finds the exact line on those claims only. ``header_nulls`` are the null
    masks of the seven header columns, empty where the column has no null.

    With ``code_lo`` / ``code_hi`` (-1: no end) only the claims of those codes are checked, on
    the rows ``row_lo`` .. ``row_hi`` - 1 (-1: to the end; ``code_span`` gives the rows that
    hold them): disjoint code ranges write disjoint records, so each may run on a thread of
    its own (the GIL is released), with the result of one whole pass.
    """
    cdef Py_ssize_t r, n = claim.shape[0], K = len(required_nulls), k
    cdef int64_t c, c2, q
    cdef int rank
    cdef uint8_t nb, diff, mnull, pnull
    cdef bint in_r, has[7]
    cdef const uint8_t* hn[7]
    cdef const uint8_t[::1] mv
    if head.shape[0] and head.shape[0] % sizeof(Head):
        raise ValueError("head is not a whole number of HEAD records")
    if len(header_nulls) != 7:
        raise ValueError("header_nulls: one mask per header column")
    if code_hi < 0:
        code_hi = INT64_MAX
    if row_hi < 0 or row_hi > n:
        row_hi = n
    if row_lo < 0:
        row_lo = 0
    cdef Head* h = <Head*>&head[0] if head.shape[0] else NULL
    cdef const uint8_t** rn = <const uint8_t**>malloc((K + 1) * sizeof(uint8_t*))
    if rn == NULL:
        raise MemoryError()
    for k in range(K):
        mv = required_nulls[k]
        if mv.shape[0] != n:
            free(rn)
            raise ValueError("a null mask is not one value per line")
        rn[k] = &mv[0]
    for k in range(7):
        mv = header_nulls[k]
        has[k] = mv.shape[0] > 0
        if has[k] and mv.shape[0] != n:
            free(rn)
            raise ValueError("a null mask is not one value per line")
        hn[k] = &mv[0] if has[k] else NULL
    with nogil:
        for r in range(row_lo, row_hi):
            if r + AHEAD < row_hi:
                c2 = claim[r + AHEAD]
                if c2 >= code_lo and c2 < code_hi:
                    prefetch(&h[c2])
            c = claim[r]
            if c < code_lo or c >= code_hi:  # (a line without a claim: code -1)
                continue
            h[c].lines += 1
            nb = 0
            for k in range(7):
                if has[k] and hn[k][r]:
                    nb |= 1 << k
            mnull = (nb >> H_MEMBER) & 1
            pnull = (nb >> H_PROVIDER) & 1
            in_r = setting[r] == inpatient
            rank = -1
            for k in range(K):
                if rn[k][r]:
                    rank = required_rank[k]
                    break
            if rank < 0:
                if member[r] < 0 and not mnull:
                    rank = first_rank
                elif provider[r] < 0 and not pnull:
                    rank = first_rank + 1
                elif in_r and (nb >> H_DISCHARGE) & 1:
                    rank = first_rank + 2
                elif in_r and discharge[r] < admit[r]:
                    rank = first_rank + 3
            if rank >= 0:
                q = cand_row[c]
                if (h[c].cand == 0 or rank + 1 < h[c].cand
                        or (rank + 1 == h[c].cand and (line_no[r] < line_no[q] or (line_no[r] == line_no[q] and r < q)))):
                    h[c].cand = <int16_t>(rank + 1)
                    cand_row[c] = r
            if (member[r] < 0 and not mnull) or (provider[r] < 0 and not pnull):
                h[c].state |= F_SUSPECT
            if not (h[c].state & F_SEEN):
                h[c].member = member[r]
                h[c].provider = provider[r]
                h[c].admit = admit[r]
                h[c].discharge = discharge[r]
                h[c].diagnosis = diagnosis[r]
                h[c].setting = setting[r]
                h[c].referral = referral[r]
                h[c].nulls = nb
                h[c].state |= F_SEEN
                continue
            diff = nb ^ h[c].nulls
            if not (in_r and h[c].setting == inpatient):
                diff &= ~(1 << H_DISCHARGE)
                nb |= 1 << H_DISCHARGE  # not compared
            if (diff
                    or member[r] != h[c].member
                    or provider[r] != h[c].provider
                    or setting[r] != h[c].setting
                    or (not (nb >> H_REFERRAL) & 1 and referral[r] != h[c].referral)
                    or (not (nb >> H_ADMIT) & 1 and admit[r] != h[c].admit)
                    or (not (nb >> H_DISCHARGE) & 1 and discharge[r] != h[c].discharge)
                    or (not (nb >> H_DIAGNOSIS) & 1 and diagnosis[r] != h[c].diagnosis)):
                h[c].state |= F_SUSPECT
    free(rn)


def code_span(const index_t[::1] claim, int64_t lo, int64_t hi):
    """(first, end): the rows first .. end - 1 hold every row whose code is in lo .. hi - 1
    ((0, 0) if none). Found by a scan from each end, short where the codes come in row
    order (a claim's lines together, codes numbered by first appearance)."""
    cdef Py_ssize_t n = claim.shape[0], first = 0, end = n
    with nogil:
        while first < n and not (lo <= claim[first] < hi):
            first += 1
        while end > first and not (lo <= claim[end - 1] < hi):
            end -= 1
    if first >= end:
        first = end = 0
    return first, end


cdef struct DayClaim:
    int64_t day
    int64_t code


cdef inline int cmp_day_claim(const DayClaim* x, const DayClaim* y, const int32_t* off,
                              const uint8_t* data) noexcept nogil:
    """(settle day, claim id bytes) order; the ids of two codes differ."""
    cdef int64_t la, lb, n
    cdef int r
    if x.day != y.day:
        return -1 if x.day < y.day else 1
    la = off[x.code + 1] - off[x.code]
    lb = off[y.code + 1] - off[y.code]
    n = la if la < lb else lb
    r = memcmp(data + off[x.code], data + off[y.code], n) if n > 0 else 0
    if r != 0:
        return r
    return -1 if la < lb else (1 if la > lb else 0)


cdef void sort_day_claims(DayClaim* a, DayClaim* tmp, int64_t n, const int32_t* off,
                          const uint8_t* data) noexcept nogil:
    """Sort n records by ``cmp_day_claim``: insertion for a member's few claims, a bottom-up
    merge (n log n whatever the input) for many."""
    cdef int64_t i, k, w, lo, mid, hi, p, q, o
    cdef DayClaim x
    cdef DayClaim* src = a
    cdef DayClaim* dst = tmp
    cdef DayClaim* t
    if n <= 24:
        for i in range(1, n):
            x = a[i]
            k = i - 1
            while k >= 0 and cmp_day_claim(&a[k], &x, off, data) > 0:
                a[k + 1] = a[k]
                k -= 1
            a[k + 1] = x
        return
    w = 1
    while w < n:
        lo = 0
        while lo < n:
            mid = min(lo + w, n)
            hi = min(lo + 2 * w, n)
            p, q, o = lo, mid, lo
            while p < mid and q < hi:
                if cmp_day_claim(&src[q], &src[p], off, data) < 0:
                    dst[o] = src[q]
                    q += 1
                else:
                    dst[o] = src[p]
                    p += 1
                o += 1
            while p < mid:
                dst[o] = src[p]
                p += 1
                o += 1
            while q < hi:
                dst[o] = src[q]
                q += 1
                o += 1
            lo = hi
        t = src
        src = dst
        dst = t
        w *= 2
    if src != a:
        memcpy(a, src, n * sizeof(DayClaim))


def settlement_order(const uint8_t[::1] head, const int64_t[::1] member_rank, int8_t inpatient,
                     const int32_t[::1] id_offsets, const uint8_t[::1] id_data, int64_t[::1] out,
                     index_t[::1] position):
    """Every claim (code) in settlement order, from its ``check_lines`` record: by the rank of
    its member (``member_rank[member]``, per member row, 0 <= rank < len(member_rank); a claim
    without a known member takes row 0's), then its settle date (discharge_date for an inpatient
    claim, else admit_date), then its claim id's bytes (``id_offsets`` / ``id_data``: the claim
    dictionary's string buffers, code k's id at offsets k .. k + 1). A counting sort by member
    rank (``member_groups``), then each member's few claims sorted (``order_groups``): linear
    in the claims, no per-claim array between. ``out`` gets the codes by position,
    ``position`` (per code) its inverse."""
    bounds = member_groups(head, member_rank, out)
    order_groups(head, bounds, 0, member_rank.shape[0], inpatient, id_offsets, id_data, out, position)


def member_groups(const uint8_t[::1] head, const int64_t[::1] member_rank, int64_t[::1] out):
    """The first pass of ``settlement_order`` (the same arguments): ``out`` gets the claim codes
    grouped by their member's rank, in code order within a group; returns the groups' bounds
    (int64, one more than the ranks: group g is out[bounds[g]:bounds[g + 1]])."""
    cdef Py_ssize_t nc = out.shape[0], c
    cdef int64_t nm = member_rank.shape[0], g, mrow
    cdef const Head* h = <const Head*>&head[0] if head.shape[0] else NULL
    if <size_t>nc * sizeof(Head) != <size_t>head.shape[0]:
        raise ValueError("head is not one HEAD record per claim")
    if nc and nm == 0:
        raise ValueError("no member rank")
    for c in range(nm):
        if member_rank[c] < 0 or member_rank[c] >= nm:
            raise ValueError("member_rank out of range")
    for c in range(nc):
        if h[c].member >= nm:
            raise ValueError("a claim's member is beyond member_rank")
    bounds = np.zeros(nm + 1, np.int64)
    cdef int64_t[::1] start = bounds
    with nogil:
        for c in range(nc):
            mrow = h[c].member if h[c].member > 0 else 0
            start[member_rank[mrow] + 1] += 1
        for g in range(nm):
            start[g + 1] += start[g]
        for c in range(nc):  # start[g] ends as the end of group g: the start of group g + 1
            mrow = h[c].member if h[c].member > 0 else 0
            g = member_rank[mrow]
            out[start[g]] = c
            start[g] += 1
        g = nm
        while g > 0:
            start[g] = start[g - 1]
            g -= 1
        if nm:
            start[0] = 0
    return bounds


def order_groups(const uint8_t[::1] head, const int64_t[::1] bounds, int64_t g0, int64_t g1, int8_t inpatient,
                 const int32_t[::1] id_offsets, const uint8_t[::1] id_data, int64_t[::1] out,
                 index_t[::1] position):
    """The second pass of ``settlement_order`` on the member groups g0 .. g1 - 1 of
    ``member_groups`` (``bounds``): each group's claims sorted by (settle date, claim id bytes)
    where they are, and ``position`` written for them. Disjoint group ranges touch disjoint
    claims, so each may run on a thread of its own (the GIL is released)."""
    cdef Py_ssize_t nc = out.shape[0], c
    cdef int64_t g, a, z, j, cap = 64
    cdef const Head* h = <const Head*>&head[0] if head.shape[0] else NULL
    cdef const int32_t* off = &id_offsets[0] if id_offsets.shape[0] else NULL
    cdef const uint8_t* data = &id_data[0] if id_data.shape[0] else NULL
    cdef bint failed = 0
    cdef void* grown
    if <size_t>nc * sizeof(Head) != <size_t>head.shape[0]:
        raise ValueError("head is not one HEAD record per claim")
    if id_offsets.shape[0] != nc + 1:
        raise ValueError("id_offsets is not one more than the claims")
    if nc and (id_offsets[0] < 0 or id_offsets[nc] > id_data.shape[0]):
        raise ValueError("id_offsets outside id_data")
    for c in range(nc):
        if id_offsets[c + 1] < id_offsets[c]:
            raise ValueError("id_offsets decrease")
    if position.shape[0] != nc:
        raise ValueError("position is not one value per claim")
    if g0 < 0 or g1 < g0 or g1 >= bounds.shape[0]:
        raise ValueError("groups outside bounds")
    if bounds[g0] < 0 or bounds[g1] > nc:
        raise ValueError("bounds outside the claims")
    for g in range(g0, g1):
        if bounds[g + 1] < bounds[g]:
            raise ValueError("bounds decrease")
    for j in range(bounds[g0], bounds[g1]):
        if out[j] < 0 or out[j] >= nc:
            raise ValueError("a code outside the claims")
    cdef DayClaim* buf = <DayClaim*>malloc(2 * cap * sizeof(DayClaim))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        for g in range(g0, g1):
            a = bounds[g]
            z = bounds[g + 1]
            if z - a > 1:
                if z - a > cap:
                    cap = 2 * (z - a)
                    grown = realloc(buf, 2 * cap * sizeof(DayClaim))
                    if grown == NULL:
                        failed = 1
                        break
                    buf = <DayClaim*>grown
                for j in range(a, z):
                    c = out[j]
                    buf[j - a].day = h[c].discharge if h[c].setting == inpatient else h[c].admit
                    buf[j - a].code = c
                sort_day_claims(buf, buf + cap, z - a, off, data)
                for j in range(a, z):
                    out[j] = buf[j - a].code
        if not failed:
            for j in range(bounds[g0], bounds[g1]):
                position[out[j]] = <index_t>j
    free(buf)
    if failed:
        raise MemoryError()


def string_positions(const int32_t[::1] set_offsets, const uint8_t[::1] set_data,
                     const int32_t[::1] offsets, const uint8_t[::1] data, int32_t[::1] out):
    """``pc.index_in`` of a string array in a set of strings, for arrays without nulls (both
    Arrow ``string``, given by their data buffers and their values' offsets, one more than
    values): ``out[i]`` is the position of value i's first occurrence in the set, -1 if
    absent. The set is hashed once into an open-addressing table whose slots hold the
    hash's top half and the position; values are hashed ``LOOKAHEAD`` rows early and
    their slots and candidate bytes prefetched (the set is as large as the members
    table: without them nearly every probe waits for memory)."""
    cdef Py_ssize_t i, n = out.shape[0], m = set_offsets.shape[0] - 1
    cdef int64_t cap = 16, mask, s, e, a, b, j, k
    cdef uint64_t h, slot, tag
    cdef uint64_t ring[LOOKAHEAD]
    cdef const uint8_t* sd = &set_data[0] if set_data.shape[0] > 0 else NULL
    cdef const uint8_t* d = &data[0] if data.shape[0] > 0 else NULL
    cdef const int32_t* so = &set_offsets[0]
    cdef const int32_t* vo = &offsets[0]
    cdef uint64_t* slots
    if offsets.shape[0] != n + 1 or m < 0:
        raise ValueError("offsets shorter than the values")
    while cap < 2 * m:
        cap *= 2
    mask = cap - 1
    slots = <uint64_t*>calloc(cap, sizeof(uint64_t))
    if slots == NULL:
        raise MemoryError()
    with nogil:
        for k in range(m):
            a = so[k]
            b = so[k + 1]
            h = hash_bytes(sd + a if sd != NULL else NULL, b - a)
            tag = h & 0xFFFFFFFF00000000ULL
            s = h & mask
            while True:
                slot = slots[s]
                if slot == 0:
                    slots[s] = tag | <uint64_t>(k + 1)
                    break
                if (slot & 0xFFFFFFFF00000000ULL) == tag:
                    e = <int64_t>(slot & 0xFFFFFFFFULL) - 1
                    if so[e + 1] - so[e] == b - a and (a == b or memcmp(sd + a, sd + so[e], b - a) == 0):
                        break  # a repeated value keeps its first position
                s = (s + 1) & mask
        for j in range(min(<int64_t>LOOKAHEAD, n)):
            ring[j] = hash_bytes(d + vo[j] if d != NULL else NULL, vo[j + 1] - vo[j])
        for i in range(n):
            h = ring[i % LOOKAHEAD]
            j = i + LOOKAHEAD
            if j < n:
                ring[j % LOOKAHEAD] = hash_bytes(d + vo[j] if d != NULL else NULL, vo[j + 1] - vo[j])
                prefetch(&slots[ring[j % LOOKAHEAD] & mask])
            j = i + LOOKAHEAD // 2
            if j < n and sd != NULL:
                slot = slots[ring[j % LOOKAHEAD] & mask]
                if slot != 0:
                    prefetch(sd + so[<int64_t>(slot & 0xFFFFFFFFULL) - 1])
            a = vo[i]
            b = vo[i + 1]
            tag = h & 0xFFFFFFFF00000000ULL
            s = h & mask
            out[i] = -1
            while True:
                slot = slots[s]
                if slot == 0:
                    break
                if (slot & 0xFFFFFFFF00000000ULL) == tag:
                    e = <int64_t>(slot & 0xFFFFFFFFULL) - 1
                    if so[e + 1] - so[e] == b - a and (a == b or memcmp(d + a, sd + so[e], b - a) == 0):
                        out[i] = <int32_t>e
                        break
                s = (s + 1) & mask
    free(slots)


cdef struct NoIdx:
    int64_t no
    int64_t idx


cdef int cmp_noidx(const void* a, const void* b) noexcept nogil:
    cdef const NoIdx* x = <const NoIdx*>a
    cdef const NoIdx* y = <const NoIdx*>b
    if x.no != y.no:
        return -1 if x.no < y.no else 1
    return -1 if x.idx < y.idx else (1 if x.idx > y.idx else 0)


cdef enum:
    BUCKET_LINES = 8192  # lines a bucket of ``layout_claims`` aims at: its second pass stays in L2


def big_endian_ints(const uint8_t[::1] data, int width, int64_t[::1] out):
    """``out[i]``: the two's complement big-endian integer of ``width`` bytes (1 to 8) at
    ``data[i * width]``, the unscaled value of a Parquet decimal stored as fixed-length bytes
    (inputs.py reads such decimals raw: Arrow's own conversion widens every value to
    16 bytes first, the read's largest cost after decompression)."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef int k
    cdef uint64_t v, sign = (~(<uint64_t>0)) << (8 * width) if 0 < width < 8 else 0
    cdef const uint8_t* p
    if width < 1 or width > 8 or data.shape[0] < n * width:
        raise ValueError("fixed-length values shorter than their count, or wider than 8 bytes")
    if n == 0:
        return
    p = &data[0]
    with nogil:
        for i in range(n):
            v = 0
            for k in range(width):
                v = (v << 8) | p[k]
            if p[0] & 0x80:
                v |= sign
            out[i] = <int64_t>v
            p += width


def touch_pages(uint8_t[::1] a, Py_ssize_t step=4096):
    """Write a 0 every ``step`` bytes of ``a`` (fresh memory, whose content does not matter):
    the operating system zeroes each page on its first touch, here rather than in the pass
    that fills the array (encode has a thread touch the layout's outputs while the header
    passes run on the other core)."""
    cdef Py_ssize_t i = 0, n = a.shape[0]
    if step < 1:
        raise ValueError("step < 1")
    with nogil:
        while i < n:
            a[i] = 0
            i += step


cdef int bucket_shift(int64_t m, int64_t nc, int64_t bucket_lines) noexcept nogil:
    """log2 of the claim positions of one bucket of ``layout_claims``: about ``bucket_lines`` lines."""
    cdef int shift = 0
    while (<int64_t>1 << (shift + 1)) * m <= bucket_lines * nc and (<int64_t>1 << (shift + 1)) < nc:
        shift += 1
    return shift


cdef void _order_buckets(int64_t b0, int64_t b1, int shift, int64_t nc, const int64_t[::1] line_start,
                         const int32_t[::1] claim_date, const int64_t[::1] cat_first,
                         const int64_t[::1] cat_count, const int64_t[::1] cat_start, const int64_t[::1] cat_end,
                         const int64_t[::1] cat_order, const int8_t[::1] cat_cls, const int64_t[::1] cat_ratio,
                         const int64_t[::1] cat_price, int8_t unknown, index_t[::1] line_row,
                         index_t[::1] line_claim, int32_t[::1] line_no_out, int64_t[::1] amount_out,
                         int64_t[::1] quantity_out, int8_t[::1] cls_out, int16_t[::1] ratio_out,
                         int64_t[::1] price_out, int64_t* at, int64_t* t_row, int64_t* t_k, int64_t* t_amt,
                         int64_t* t_qty, int64_t* t_item, int32_t* t_no, int32_t* idx, NoIdx* buf) noexcept nogil:
    """The second pass of ``layout_claims`` on buckets b0 .. b1 - 1: each bucket's lines (as the
    first pass left them, the item parked in ``price_out``) ordered by (position, line_no, row)
    in the cache and written back with their catalogue values. The buffers hold a bucket's lines."""
    cdef int64_t b, k0, k1, a, z, L, j, k, s, e, t, q, pos, found, it, d
    for b in range(b0, b1):
        k0 = b << shift
        k1 = min(k0 + (<int64_t>1 << shift), nc)
        a = line_start[k0]
        z = line_start[k1]
        L = z - a
        for j in range(L):  # rows ascend within the bucket: index order is row order
            t_row[j] = line_row[a + j]
            t_k[j] = line_claim[a + j]
            t_no[j] = line_no_out[a + j]
            t_amt[j] = amount_out[a + j]
            t_qty[j] = quantity_out[a + j]
            t_item[j] = price_out[a + j]
        for k in range(k0, k1):
            at[k - k0] = line_start[k] - a
        for j in range(L):
            k = t_k[j] - k0
            idx[at[k]] = <int32_t>j
            at[k] += 1
        for k in range(k0, k1):
            s = line_start[k] - a
            e = line_start[k + 1] - a
            for j in range(s + 1, e):
                if t_no[idx[j]] < t_no[idx[j - 1]]:
                    break
            else:
                continue  # in line_no order already (ties keep row order)
            if e - s <= 32:
                for j in range(s + 1, e):
                    t = idx[j]
                    q = j - 1
                    while q >= s and (t_no[idx[q]] > t_no[t] or (t_no[idx[q]] == t_no[t] and idx[q] > t)):
                        idx[q + 1] = idx[q]
                        q -= 1
                    idx[q + 1] = <int32_t>t
            else:
                for j in range(s, e):
                    buf[j - s].no = t_no[idx[j]]
                    buf[j - s].idx = idx[j]
                qsort(buf, e - s, sizeof(NoIdx), cmp_noidx)
                for j in range(s, e):
                    idx[j] = <int32_t>buf[j - s].idx
        for j in range(L):
            t = idx[j]
            pos = a + j
            k = t_k[t]
            line_row[pos] = <index_t>t_row[t]
            line_claim[pos] = <index_t>k
            line_no_out[pos] = t_no[t]
            amount_out[pos] = t_amt[t]
            quantity_out[pos] = t_qty[t]
            found = -1
            it = t_item[t]
            if it >= 0:
                d = claim_date[k]
                for q in range(cat_first[it], cat_first[it] + cat_count[it]):
                    if cat_start[q] <= d and d <= cat_end[q]:
                        found = cat_order[q]
                        break
            if found < 0:
                cls_out[pos] = unknown
                ratio_out[pos] = -1
                price_out[pos] = -1
            else:
                cls_out[pos] = cat_cls[found]
                ratio_out[pos] = <int16_t>cat_ratio[found]
                price_out[pos] = cat_price[found]


def order_buckets(const int64_t[::1] line_start, const int32_t[::1] claim_date, const int64_t[::1] cat_first,
                  const int64_t[::1] cat_count, const int64_t[::1] cat_start, const int64_t[::1] cat_end,
                  const int64_t[::1] cat_order, const int8_t[::1] cat_cls, const int64_t[::1] cat_ratio,
                  const int64_t[::1] cat_price, int8_t unknown, index_t[::1] line_row, index_t[::1] line_claim,
                  int32_t[::1] line_no_out, int64_t[::1] amount_out, int64_t[::1] quantity_out,
                  int8_t[::1] cls_out, int16_t[::1] ratio_out, int64_t[::1] price_out, int part, int parts,
                  int64_t bucket_lines=BUCKET_LINES):
    """The second pass of ``layout_claims(..., order=False)`` (the same arguments) on share
    ``part`` of ``parts`` of its buckets: the shares are disjoint ranges of lines, so each may
    run on a thread of its own (the GIL is released)."""
    cdef int64_t nc = line_start.shape[0] - 1, m, nb, b0, b1, b, maxL = 0, k0, k1
    cdef int shift
    if nc < 1 or parts < 1 or not 0 <= part < parts or bucket_lines < 1:
        return
    m = line_start[nc]
    if claim_date.shape[0] != nc:
        raise ValueError("claim_date is not one value per position")
    for out_len in (line_row.shape[0], line_claim.shape[0], line_no_out.shape[0], amount_out.shape[0],
                    quantity_out.shape[0], cls_out.shape[0], ratio_out.shape[0], price_out.shape[0]):
        if out_len != m:
            raise ValueError("an output is not one value per line")
    shift = bucket_shift(m, nc, bucket_lines)
    nb = ((nc - 1) >> shift) + 1
    b0 = nb * part // parts
    b1 = nb * (part + 1) // parts
    for b in range(b0, b1):
        k0 = b << shift
        k1 = min(k0 + (<int64_t>1 << shift), nc)
        maxL = max(maxL, line_start[k1] - line_start[k0])
    cdef int64_t* at = <int64_t*>malloc((<int64_t>1 << shift) * sizeof(int64_t))
    cdef int64_t* t_row = <int64_t*>malloc((maxL + 1) * sizeof(int64_t))
    cdef int64_t* t_k = <int64_t*>malloc((maxL + 1) * sizeof(int64_t))
    cdef int64_t* t_amt = <int64_t*>malloc((maxL + 1) * sizeof(int64_t))
    cdef int64_t* t_qty = <int64_t*>malloc((maxL + 1) * sizeof(int64_t))
    cdef int64_t* t_item = <int64_t*>malloc((maxL + 1) * sizeof(int64_t))
    cdef int32_t* t_no = <int32_t*>malloc((maxL + 1) * sizeof(int32_t))
    cdef int32_t* idx = <int32_t*>malloc((maxL + 1) * sizeof(int32_t))
    cdef NoIdx* buf = <NoIdx*>malloc((maxL + 1) * sizeof(NoIdx))
    if (at == NULL or t_row == NULL or t_k == NULL or t_amt == NULL or t_qty == NULL or t_item == NULL
            or t_no == NULL or idx == NULL or buf == NULL):
        free(at); free(t_row); free(t_k); free(t_amt); free(t_qty); free(t_item); free(t_no); free(idx); free(buf)
        raise MemoryError()
    with nogil:
        _order_buckets(b0, b1, shift, nc, line_start, claim_date, cat_first, cat_count, cat_start, cat_end,
                       cat_order, cat_cls, cat_ratio, cat_price, unknown, line_row, line_claim, line_no_out,
                       amount_out, quantity_out, cls_out, ratio_out, price_out, at, t_row, t_k, t_amt, t_qty,
                       t_item, t_no, idx, buf)
    free(at); free(t_row); free(t_k); free(t_amt); free(t_qty); free(t_item); free(t_no); free(idx); free(buf)


def layout_claims(const index_t[::1] claim, const index_t[::1] rank, const line_t[::1] line_no,
                  const int64_t[::1] amount, const int64_t[::1] quantity, const int32_t[::1] item,
                  const int32_t[::1] claim_date, const int64_t[::1] line_start,
                  const int64_t[::1] cat_first, const int64_t[::1] cat_count, const int64_t[::1] cat_start,
                  const int64_t[::1] cat_end, const int64_t[::1] cat_order,
                  const int8_t[::1] cat_cls, const int64_t[::1] cat_ratio, const int64_t[::1] cat_price,
                  int8_t unknown, index_t[::1] line_row, index_t[::1] line_claim,
                  int32_t[::1] line_no_out, int64_t[::1] amount_out, int64_t[::1] quantity_out,
                  int8_t[::1] cls_out, int16_t[::1] ratio_out, int64_t[::1] price_out,
                  int64_t bucket_lines=BUCKET_LINES, bint order=True, int part=0, int parts=1):
    """Lay out every line of a claim (``claim`` >= 0, per row) at its claim's position
    ``rank[claim]``, claim after claim (``line_start``: position k's lines start at
    ``line_start[k]``, as many as its rows), each claim's lines in (line_no, row) order:
    their rows, positions and per-line values, and the class, first_self_pay ratio and
    max_unit_price of the catalogue row of the line's item valid on ``claim_date[k]``
    (unknown / -1 / -1 where none). The catalogue is sorted by (item, valid_from): item k's
    rows are cat_first[k] .. + cat_count[k] - 1, with their validity and ``cat_order`` their
    rows (``encode._catalogue_index``).

    The per-line outputs are as narrow as they are exact: rows and positions of ``claim``'s
    type (int32 when the rows fit), line_no int32 (the input check keeps it in int32's range),
    the ratio int16 (0..10000 bp, or -1: the input check keeps ratios in 0..1); the amounts,
    quantities and prices int64 (the contract allows amounts beyond int32).

    Two passes, neither a gather at random: the rows are read in order and each is written
    to the bucket of its position (a few thousand consecutive positions, about
    ``bucket_lines`` lines: one write stream per bucket); then each bucket, small enough for
    the cache, is ordered by position and line_no and written back in final order. The
    outputs are the only per-line memory (the first pass parks the item in ``price_out``).
    A line_no outside int32 or line counts that disagree with the rows raise ValueError.

    With ``order`` false only the first pass runs, and ``order_buckets`` does the second: a
    share of the buckets on each of several threads (a bucket is a range of lines of its own).
    With ``part`` / ``parts`` (``order`` false) the first pass places only the rows of share
    ``part`` of the buckets (``order_buckets``' shares): each share's rows go to lines of their
    own, so the shares may run on threads of their own, each reading every row."""
    cdef Py_ssize_t r, n = claim.shape[0], nc = rank.shape[0]
    cdef int64_t m, k, b, nb, pos, ln, b0, b1
    cdef int shift = 0
    cdef int err = 0
    if line_start.shape[0] != nc + 1 or claim_date.shape[0] != nc:
        raise ValueError("line_start or claim_date is not one value per position")
    if line_no.shape[0] != n or amount.shape[0] != n or quantity.shape[0] != n or item.shape[0] != n:
        raise ValueError("a per-row column is not one value per row")
    m = line_start[nc]
    for out_len in (line_row.shape[0], line_claim.shape[0], line_no_out.shape[0], amount_out.shape[0],
                    quantity_out.shape[0], cls_out.shape[0], ratio_out.shape[0], price_out.shape[0]):
        if out_len != m:
            raise ValueError("an output is not one value per line")
    if line_start[0] != 0:
        raise ValueError("line_start does not start at 0")
    for k in range(nc):
        if line_start[k + 1] < line_start[k]:
            raise ValueError("line_start decreases")
    if nc == 0:
        for r in range(n):
            if claim[r] >= 0:
                raise ValueError("a row names a claim beyond rank")
        return
    if bucket_lines < 1:
        raise ValueError("bucket_lines < 1")
    if parts < 1 or not 0 <= part < parts or (order and parts != 1):
        raise ValueError("part outside 0 .. parts - 1, or parts with order")
    shift = bucket_shift(m, nc, bucket_lines)
    nb = ((nc - 1) >> shift) + 1
    b0 = nb * part // parts
    b1 = nb * (part + 1) // parts
    cdef int64_t* fill = <int64_t*>malloc(nb * sizeof(int64_t))
    if fill == NULL:
        raise MemoryError()
    with nogil:
        for b in range(nb):
            fill[b] = line_start[b << shift]
        # pass 1: rows in order, each to the next free place of its position's bucket
        for r in range(n):
            if r + AHEAD < n and claim[r + AHEAD] >= 0:
                prefetch(&rank[claim[r + AHEAD]])  # shuffled rows: their claims' positions jump
            if claim[r] < 0:
                continue
            if claim[r] >= nc:
                err = 1
                break
            k = rank[claim[r]]
            if k < 0 or k >= nc:
                err = 1
                break
            b = k >> shift
            if b < b0 or b >= b1:
                continue  # another share's
            pos = fill[b]
            if pos >= line_start[min((b + 1) << shift, nc)]:
                err = 1  # more rows of the bucket's claims than their line counts
                break
            ln = line_no[r]
            if ln != <int32_t>ln:
                err = 2
                break
            fill[b] = pos + 1
            line_row[pos] = <index_t>r
            line_claim[pos] = <index_t>k
            line_no_out[pos] = <int32_t>ln
            amount_out[pos] = amount[r]
            quantity_out[pos] = quantity[r]
            price_out[pos] = item[r]
        if not err:
            for b in range(b0, b1):
                if fill[b] != line_start[min((b + 1) << shift, nc)]:
                    err = 1  # fewer rows than the line counts
                    break
    free(fill)
    if err == 1:
        raise ValueError("the rows of the claims disagree with their line counts")
    if err == 2:
        raise ValueError("a line_no outside int32")
    if order:  # pass 2, all buckets on this thread
        order_buckets(line_start, claim_date, cat_first, cat_count, cat_start, cat_end, cat_order, cat_cls,
                      cat_ratio, cat_price, unknown, line_row, line_claim, line_no_out, amount_out, quantity_out,
                      cls_out, ratio_out, price_out, 0, 1, bucket_lines)


def first_repeat_laid(const int64_t[::1] line_start, const int32_t[::1] line_no, const index_t[::1] line_row,
                      const uint8_t[::1] skip, int64_t[::1] out, Py_ssize_t k0=0, Py_ssize_t k1=-1):
    """The first repeated line_no of each claim, on lines laid out by ``layout_claims`` (position k's lines at
    line_start[k] .., in line_no order), read in order: per position, the row of its first
    line whose line_no repeats the line before it, not counting rows where ``skip`` (per row;
    empty: none) is set; -1 if none. Only positions k0 .. k1 - 1 (-1: to the end) are written:
    ranges that do not overlap may run on threads of their own (the GIL is released)."""
    cdef Py_ssize_t k, j, nc = out.shape[0]
    cdef bint has_skip = skip.shape[0] > 0
    if line_start.shape[0] != nc + 1 or (nc and line_start[nc] > line_no.shape[0]):
        raise ValueError("line_start is not one more than out")
    if line_row.shape[0] != line_no.shape[0]:
        raise ValueError("line_row and line_no differ in length")
    if k1 < 0 or k1 > nc:
        k1 = nc
    if k0 < 0 or k0 > k1:
        raise ValueError("k0 outside 0 .. k1")
    for k in range(k0, k1):
        if line_start[k] < 0 or line_start[k + 1] < line_start[k]:
            raise ValueError("line_start out of range")
    cdef int64_t r
    cdef bint bad = 0
    with nogil:
        for k in range(k0, k1):
            out[k] = -1
            for j in range(line_start[k] + 1, line_start[k + 1]):
                if line_no[j] == line_no[j - 1]:
                    r = line_row[j]
                    if has_skip and (r < 0 or r >= skip.shape[0]):
                        bad = 1
                        break
                    if not (has_skip and skip[r]):
                        out[k] = r
                        break
            if bad:
                break
    if bad:
        raise ValueError("a line's row is outside skip")


def header_columns(const uint8_t[::1] head, const int64_t[::1] claims, int8_t inpatient,
                   int64_t[::1] member, int64_t[::1] provider, int8_t[::1] setting, int8_t[::1] referral,
                   int32_t[::1] admit, int32_t[::1] settle, int64_t[::1] line_start=None,
                   Py_ssize_t k0=0, Py_ssize_t k1=-1, bint counts=False):
    """The header values of ``claims`` (codes) from their ``check_lines`` records, each
    column written straight in the dtype its reader takes: member and provider rows,
    setting and referral codes, admit_date and the settle date (discharge_date for an
    inpatient claim, else admit_date). An empty output is skipped. One read of each
    claim's record (fetched ahead: claims in settlement order jump around), and no
    gathered copy of the records. ``line_start`` (n + 1 values), when given, gets the
    offsets of the claims' lines laid out one claim after another (their ``lines``).

    With ``k0`` / ``k1`` (-1: to the end) only the claims at those places are written, and
    with ``counts`` ``line_start[k + 1]`` gets claim k's line count (line_start[0]: 0), for the
    caller to sum: ranges that do not overlap may then run on threads of their own."""
    cdef Py_ssize_t k, n = claims.shape[0]
    cdef bint want_l = line_start is not None
    cdef int64_t at = 0
    if want_l and line_start.shape[0] != n + 1:
        raise ValueError("line_start is not one more than the claims")
    if k1 < 0 or k1 > n:
        k1 = n
    if k0 < 0 or k0 > k1:
        raise ValueError("k0 outside 0 .. k1")
    if want_l and not counts and (k0 != 0 or k1 != n):
        raise ValueError("the offsets of a part of the claims: counts=True")
    cdef const Head* h = <const Head*>&head[0] if head.shape[0] else NULL
    cdef const Head* x
    cdef bint want_m = member.shape[0] > 0, want_p = provider.shape[0] > 0, want_s = setting.shape[0] > 0
    cdef bint want_r = referral.shape[0] > 0, want_a = admit.shape[0] > 0, want_d = settle.shape[0] > 0
    for k in range(k0, k1):
        if claims[k] < 0 or <size_t>(claims[k] + 1) * sizeof(Head) > <size_t>head.shape[0]:
            raise IndexError("claim out of range")
    with nogil:
        if want_l and counts and k0 == 0:
            line_start[0] = 0
        for k in range(k0, k1):
            if k + AHEAD < k1:
                prefetch(&h[claims[k + AHEAD]])
            x = &h[claims[k]]
            if want_m:
                member[k] = x.member
            if want_p:
                provider[k] = x.provider
            if want_s:
                setting[k] = x.setting
            if want_r:
                referral[k] = x.referral
            if want_a:
                admit[k] = x.admit
            if want_d:
                settle[k] = x.discharge if x.setting == inpatient else x.admit
            if want_l and counts:
                line_start[k + 1] = x.lines
            elif want_l:
                line_start[k] = at
                at += x.lines
        if want_l and not counts:
            line_start[n] = at



cdef extern from *:
    """
    #include <sys/mman.h>
    #ifndef MADV_HUGEPAGE  /* no transparent huge pages on this system (macOS): the advice is a no-op */
    #define MADV_HUGEPAGE MADV_NORMAL
    #endif
    #ifndef MAP_NORESERVE
    #define MAP_NORESERVE 0
    #endif
    """


cdef extern from "<sys/mman.h>" nogil:
    void* mmap(void* addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void* addr, size_t length)
    int madvise(void* addr, size_t length, int advice)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MADV_HUGEPAGE
    void* MAP_FAILED


cdef enum:
    HUGE = 1 << 21  # a transparent huge page


cdef struct Mapping:
    void* start  # what mmap gave
    size_t size


cdef void* zeroed_table(size_t nbytes, Mapping* m) noexcept nogil:
    """Zeroed memory for a large hash table, on huge pages where the system gives them:
    random probes into tens of MiB of 4 KiB pages miss the TLB nearly every time (on a
    virtual machine, a two-level walk), and each page is a fault of its own. Address
    space only until touched (MAP_NORESERVE: room never used costs nothing). NULL when
    out of memory; ``m`` gets what ``free_table`` releases."""
    cdef size_t size = (nbytes + HUGE - 1) // HUGE * HUGE + HUGE
    cdef void* raw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    cdef char* p
    if raw == MAP_FAILED:
        return NULL
    p = <char*>(((<size_t>raw) + HUGE - 1) // HUGE * HUGE)  # the first huge-page boundary
    madvise(p, size - HUGE, MADV_HUGEPAGE)  # advice only: a refusal leaves small pages
    m.start = raw
    m.size = size
    return p


cdef void free_table(Mapping* m) noexcept nogil:
    if m.start != NULL:
        munmap(m.start, m.size)
        m.start = NULL


cdef struct Slot:
    uint64_t w0  # the value's first 24 bytes, zero-padded
    uint64_t w1
    uint64_t w2
    uint64_t meta  # hash tag (24 bits) | min(length, 255) (8 bits) | code + 1 (32 bits); 0: empty


cdef enum:
    INLINE = 24  # values of up to this many bytes (18-digit member ids) are compared in the table's slots alone
    WORDS = 3  # INLINE / 8

import sys

cdef bint LITTLE = sys.byteorder == "little"


cdef inline uint64_t load64(const uint8_t* p) noexcept nogil:
    cdef uint64_t x
    memcpy(&x, p, 8)  # one unaligned load
    return x


cdef inline void words_of(const uint8_t* p, int64_t n, uint64_t* w) noexcept nogil:
    """The first 24 bytes at p of n, zero-padded, in w[0], w[1], w[2]."""
    cdef int64_t full, k, rest, m
    cdef const uint8_t* q
    if LITTLE and 8 <= n <= INLINE:
        # without a branch on the length (ids of varying length would mispredict nearly every
        # row): each word is the 8 bytes ending where it ends, shifted; no load leaves [p, p + n)
        m = n if n < 16 else 16
        w[0] = load64(p)
        w[1] = (load64(p + m - 8) >> ((8 * (16 - m)) & 63)) if m > 8 else 0
        q = p + n - 8 if n > 16 else p
        w[2] = (load64(q) >> ((8 * (INLINE - n)) & 63)) if n > 16 else 0
        return
    full = (n if n < INLINE else INLINE) // 8
    w[0] = 0
    w[1] = 0
    w[2] = 0
    for k in range(full):
        w[k] = load64(p + 8 * k)
    rest = (n if n < INLINE else INLINE) - 8 * full
    if rest:
        if LITTLE and n >= 8:  # the 8 bytes ending at p + n, less those already taken
            w[full] = load64(p + n - 8) >> (8 * (8 - rest))
        else:
            memcpy(&w[full], p + 8 * full, rest)


# ``code_block``'s hashes that are no hash (``hash_of`` never gives either)
cdef enum:
    REPEAT = 0  # the row repeats the value of the row before
    NUL = 1  # a null


cdef inline uint64_t hash_of(const uint8_t* p, int64_t n, const uint64_t* w) noexcept nogil:
    """The hash of n bytes at p whose first 24 are w (``words_of``); never REPEAT or NUL (below)."""
    cdef uint64_t h
    if n <= INLINE:  # three products side by side, then one mix: a short chain of multiplies
        h = mix64((w[0] * 0x9E3779B97F4A7C15ULL) ^ (w[1] * 0xC2B2AE3D27D4EB4FULL)
                  ^ (w[2] * 0x165667B19E3779F9ULL) ^ <uint64_t>n)
    else:
        h = hash_bytes(p, n)
    return h if h > NUL else NUL + 1


cdef inline uint64_t key_of(const uint8_t* p, int64_t n, uint64_t* w) noexcept nogil:
    """The hash of n bytes at p, and their first 16 bytes (zero-padded) in w[0], w[1]."""
    words_of(p, n, w)
    return hash_of(p, n, w)


cdef struct CodeState:  # what ``StringCoder.code_block`` carries from one block to the next
    int64_t bit  # the block's first row's bit in the validity bitmap
    int64_t code  # the code of the row before (-1: a null, or none)
    int64_t prev_n  # the length of the last value hashed (-1: none since a null)
    const uint8_t* prev_p  # its bytes
    uint64_t prev_w[3]  # its first 24 bytes (``words_of``)


cdef enum:
    CODE_BLOCK = 1024  # rows hashed before their probes: their hashes and words stay in the first-level cache
    PROBE_AHEAD = 16  # rows between a slot's prefetch and its probe

cdef inline uint64_t meta_key(uint64_t h, int64_t n) noexcept nogil:
    """The top half of a slot's ``meta`` for a value of hash h and length n."""
    return (h & 0xFFFFFF0000000000ULL) | (<uint64_t>(n if n < 255 else 255) << 32)


cdef class StringCoder:
    """Codes of string values fed piece by piece (a file's row groups, in row order):
    each distinct value numbered in order of first appearance, as Arrow's
    ``dictionary_encode`` numbers a whole column, and the distinct values kept once.

    Its open-addressing table holds each value's first 24 bytes beside its code, so a
    probe of a value of 24 bytes or fewer (claim ids, 18-digit member ids) reads one slot and no
    other memory; a longer value is confirmed against the kept bytes only when its
    first 24 bytes, length and hash tag all match. Rows are coded in blocks, each block's
    values hashed before any is probed and every slot prefetched ``PROBE_AHEAD`` rows
    before its probe: in shuffled input nearly every probe would otherwise wait for memory.

    ``most``: at most how many distinct values will come (the rows to code). The table is
    given address space for them at once and grows within it where it is, so growing
    touches no fresh pages but the last table's (each fresh page is zeroed by the system
    on first touch: 1.4–2 s per GiB on a virtual machine); ``reserve`` sizes it ahead
    from an estimate of the distinct values."""

    cdef Slot* slots
    cdef Mapping slots_map
    cdef int64_t cap, room, ndist, used, data_cap, off_cap
    cdef uint8_t* data  # the distinct values' bytes, end to end
    cdef int32_t* offsets  # ndist + 1 offsets into data

    def __cinit__(self, int64_t most=0):
        self.cap = 1 << 12
        self.room = self.cap
        while most > self.room * 5 // 8 and self.room < (<int64_t>1 << 32):
            self.room *= 2
        self.slots = <Slot*>zeroed_table(self.room * sizeof(Slot), &self.slots_map)
        if self.slots == NULL and self.room > self.cap:  # no address space for that room: grow as needed
            self.room = self.cap
            self.slots = <Slot*>zeroed_table(self.room * sizeof(Slot), &self.slots_map)
        self.data_cap = 1 << 16
        self.data = <uint8_t*>malloc(self.data_cap)
        self.off_cap = 1 << 12
        self.offsets = <int32_t*>malloc(self.off_cap * sizeof(int32_t))
        if self.slots == NULL or self.data == NULL or self.offsets == NULL:
            raise MemoryError()
        self.offsets[0] = 0

    def __dealloc__(self):
        free_table(&self.slots_map)
        free(self.data)
        free(self.offsets)

    def __len__(self) -> int:
        return self.ndist

    cdef int grow(self, int64_t cap) noexcept nogil:
        """Move to a table of ``cap`` slots (a power of two) and put every value back in;
        0 when out of memory. Within the room mapped at the start the table grows where it
        is: the old slots are cleared (pages touched already: cheap) and the new ones are the
        first touch of pages never used, so a series of growths zeroes the last table's
        pages once, not every table's."""
        cdef Mapping fresh_map
        cdef Slot* fresh
        if cap <= self.room:
            memset(self.slots, 0, self.cap * sizeof(Slot))
            self.place_all(self.slots, cap)
            self.cap = cap
            return 1
        fresh = <Slot*>zeroed_table(cap * sizeof(Slot), &fresh_map)
        if fresh == NULL:
            return 0
        self.place_all(fresh, cap)
        free_table(&self.slots_map)
        self.slots_map = fresh_map
        self.slots = fresh
        self.cap = self.room = cap
        return 1

    cdef void place_all(self, Slot* table, int64_t cap) noexcept nogil:
        """Put every value kept into ``table`` (``cap`` slots, a power of two, all empty)."""
        cdef int64_t mask = cap - 1, e, s, a, n, j, r
        cdef uint64_t h
        cdef uint64_t ring_h[LOOKAHEAD]
        cdef uint64_t ring_w[WORDS * LOOKAHEAD]
        # values hashed LOOKAHEAD ahead and their slots prefetched, as in ``add``: the
        # writes land all over the table
        for j in range(min(<int64_t>LOOKAHEAD, self.ndist)):
            a = self.offsets[j]
            ring_h[j] = key_of(self.data + a, self.offsets[j + 1] - a, &ring_w[WORDS * j])
        for e in range(self.ndist):
            r = e % LOOKAHEAD
            h = ring_h[r]
            n = self.offsets[e + 1] - self.offsets[e]
            s = h & mask
            while table[s].meta != 0:
                s = (s + 1) & mask
            table[s].w0 = ring_w[WORDS * r]
            table[s].w1 = ring_w[WORDS * r + 1]
            table[s].w2 = ring_w[WORDS * r + 2]
            table[s].meta = meta_key(h, n) | <uint64_t>(e + 1)
            j = e + LOOKAHEAD
            if j < self.ndist:
                a = self.offsets[j]
                ring_h[r] = key_of(self.data + a, self.offsets[j + 1] - a, &ring_w[WORDS * r])
                prefetch(&table[ring_h[r] & mask])  # a slot is one cache line's half

    cdef int64_t insert(self, const uint8_t* p, int64_t n, uint64_t h, const uint64_t* w, int64_t s) noexcept nogil:
        """Keep a new value (its slot s is empty) and return its code; -1 when out of memory
        or past what int32 offsets and codes can number."""
        cdef void* grown
        cdef int64_t c = self.ndist
        if self.used + n > 0x7FFFFFFF or c >= 0x7FFFFFFE:
            return -1
        if self.used + n > self.data_cap:
            while self.used + n > self.data_cap:
                self.data_cap *= 2
            grown = realloc(self.data, self.data_cap)
            if grown == NULL:
                return -1
            self.data = <uint8_t*>grown
        if c + 2 > self.off_cap:
            self.off_cap *= 2
            grown = realloc(self.offsets, self.off_cap * sizeof(int32_t))
            if grown == NULL:
                return -1
            self.offsets = <int32_t*>grown
        if n:
            memcpy(self.data + self.used, p, n)
        self.used += n
        self.offsets[c + 1] = <int32_t>self.used
        self.slots[s].w0 = w[0]
        self.slots[s].w1 = w[1]
        self.slots[s].w2 = w[2]
        self.slots[s].meta = meta_key(h, n) | <uint64_t>(c + 1)
        self.ndist += 1
        if self.ndist * 8 > self.cap * 5 and not self.grow(self.cap * 2):  # load above 5/8
            return -1
        return c

    def reserve(self, int64_t n):
        """Make room for ``n`` distinct values in all (an estimate: more still fit, the table
        then grows): one growth now, where a series of them would put every value back in
        again and again."""
        cdef int64_t cap = self.cap
        while n > cap * 5 // 8:
            cap *= 2
        if cap > self.cap and not self.grow(cap):
            raise MemoryError()

    cdef int code_block(self, const uint8_t* valid, const int32_t* offsets, const uint8_t* d,
                        int32_t* code, int64_t n, uint64_t* hs, uint64_t* ws, CodeState* st) noexcept nogil:
        """Code rows [0, n) of a block (``offsets`` and ``valid`` start at its first row, the
        bitmap at bit ``st.bit``): first every row hashed, in row order (``hs``: the hash, or
        REPEAT for a row repeating the value of the row before, NUL for a null; ``ws``: its
        first 24 bytes), then probed
        with the slot of the row ``PROBE_AHEAD`` later prefetched. Apart, each loop is short
        enough for the processor to run many rows' work at once: the hashing's arithmetic
        and the probes' waits for memory (in shuffled rows nearly every probe misses the
        caches) overlap. 0 when out of memory or codes."""
        cdef int64_t i, a, b, m, s, e, c = st.code, mask
        cdef uint64_t h, key, nxt
        cdef uint64_t* w
        cdef const uint8_t* p
        cdef Slot* slot
        # 1. hashes (a claim's lines usually come together: a value equal to the row
        #    before's costs a compare and no hash)
        for i in range(n):
            if valid != NULL and not (valid[(st.bit + i) >> 3] >> ((st.bit + i) & 7)) & 1:
                hs[i] = NUL
                st.prev_n = -1
                continue
            a = offsets[i]
            m = offsets[i + 1] - a
            p = d + a if d != NULL else NULL
            w = &ws[WORDS * i]
            words_of(p, m, w)
            if (m == st.prev_n and w[0] == st.prev_w[0] and w[1] == st.prev_w[1] and w[2] == st.prev_w[2]
                    and (m <= INLINE or memcmp(p, st.prev_p, m) == 0)):
                hs[i] = REPEAT
                continue
            hs[i] = hash_of(p, m, w)
            st.prev_n = m
            st.prev_p = p
            st.prev_w[0] = w[0]
            st.prev_w[1] = w[1]
            st.prev_w[2] = w[2]
            if i < PROBE_AHEAD:  # the first rows' slots, which the probes below fetch too late
                prefetch(&self.slots[hs[i] & (self.cap - 1)])
        # 2. probes
        mask = self.cap - 1
        for i in range(n):
            if i + PROBE_AHEAD < n:
                nxt = hs[i + PROBE_AHEAD]
                if nxt > NUL:
                    prefetch(&self.slots[nxt & mask])  # a slot is one cache line's half
            h = hs[i]
            if h == REPEAT:
                code[i] = <int32_t>c
                continue
            if h == NUL:
                code[i] = -1
                c = -1
                continue
            a = offsets[i]
            m = offsets[i + 1] - a
            p = d + a if d != NULL else NULL
            w = &ws[WORDS * i]
            key = meta_key(h, m)
            s = h & mask
            while True:
                slot = &self.slots[s]
                if slot.meta == 0:
                    c = self.insert(p, m, h, w, s)
                    mask = self.cap - 1
                    if c < 0:
                        st.code = c
                        return 0
                    break
                if (slot.meta & 0xFFFFFFFF00000000ULL) == key and slot.w0 == w[0] and slot.w1 == w[1] and slot.w2 == w[2]:
                    e = <int64_t>(slot.meta & 0xFFFFFFFFULL) - 1
                    if m <= INLINE or (self.offsets[e + 1] - self.offsets[e] == m
                                       and memcmp(p, self.data + self.offsets[e], m) == 0):
                        c = e
                        break
                s = (s + 1) & mask
            code[i] = <int32_t>c
        st.code = c
        return 1

    def add(self, const uint8_t[::1] valid, int64_t offset, const int32_t[::1] offsets,
            const uint8_t[::1] data, int32_t[::1] code):
        """Code the next ``len(code)`` values: a string array given by its validity bitmap
        (empty: no nulls), its offset into its buffers, its offsets and data bytes.
        ``code[i]`` gets value i's code, -1 for a null."""
        cdef Py_ssize_t n = code.shape[0]
        cdef int64_t at, k
        cdef bint ok = 1
        cdef const uint8_t* d = &data[0] if data.shape[0] > 0 else NULL
        cdef const uint8_t* v = &valid[0] if valid.shape[0] > 0 else NULL
        cdef uint64_t hs[CODE_BLOCK]
        cdef uint64_t ws[WORDS * CODE_BLOCK]
        cdef CodeState st
        if offset < 0 or offsets.shape[0] < offset + n + 1:
            raise ValueError("offsets shorter than the values")
        if n and (offsets[offset] < 0 or offsets[offset] > offsets[offset + n] or offsets[offset + n] > data.shape[0]):
            raise ValueError("offsets outside the data")
        if v != NULL and valid.shape[0] * 8 < offset + n:
            raise ValueError("validity bitmap shorter than the values")
        if n == 0:
            return
        st.prev_n = -1  # (each piece starts afresh: its first value is looked up)
        st.code = -1
        with nogil:
            at = 0
            while at < n and ok:
                k = min(<int64_t>CODE_BLOCK, n - at)
                st.bit = offset + at
                ok = self.code_block(v, &offsets[offset + at], d, &code[at], k, hs, ws, &st)
                at += k
        if not ok:
            raise MemoryError("too many distinct values, or out of memory")

    def dictionary(self):
        """The distinct values in code order, as (offsets int32, data uint8) copies: a string
        array's buffers."""
        off = np.empty(self.ndist + 1, np.int32)
        dat = np.empty(self.used, np.uint8)
        cdef int32_t[::1] o = off
        cdef uint8_t[::1] v = dat
        memcpy(&o[0], self.offsets, (self.ndist + 1) * sizeof(int32_t))
        if self.used:
            memcpy(&v[0], self.data, self.used)
        return off, dat
