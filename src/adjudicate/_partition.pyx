"""The compiled steps of the streaming partition pass (stream.Partitioner).

``Router`` holds, for the whole pass, a hash table of the members' ids (exact: probes compare the
bytes) and a table of the claims seen so far, keyed by a 48-bit hash of ``claim_id``, with the
range the claim's first line went to and whether a later line went elsewhere. Per batch it looks
each line's member up, counts and orders the lines by range (a stable counting sort) and notes the
claims; the loops run without the GIL, so the reading and writing threads go on meanwhile.

The claim table is a filter: a claim whose lines all went to one range is never flagged; a flagged
key is only a candidate (two claims may share a 48-bit hash), checked exactly against the ids by the
caller. Keys are 48 hash bits above 16 bits holding range + 1 (15 bits) and the "elsewhere" bit, so
at most 32,766 ranges plus the orphans.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memcmp

cdef extern from *:
    void prefetch "__builtin_prefetch" (const void*) nogil

#: Strings hashed ahead of their probe (``members``, ``note_claims``), their table slots prefetched:
#: the members' table and the claim table are far larger than the caches, so without it nearly every
#: probe waits for memory.
cdef enum:
    AHEAD = 32

ctypedef fused offset_t:
    int32_t
    int64_t

#: Ranges a Router can route to (plus the orphans): range + 1 is kept in 15 bits.
MAX_PARTS = 0x7FFF - 1

cdef uint64_t LOW = 0xFFFF
cdef uint64_t ELSEWHERE = 0x8000
cdef uint64_t NULL_KEY = 0x5BD1E9955BD10000ULL  # the key of a null claim id: all nulls are one claim
cdef uint64_t TAG = 0xFFFFFFFF00000000ULL  # the hash bits a member slot keeps beside the row


cdef inline uint64_t _hash(const uint8_t* p, int64_t n) noexcept nogil:
    """A 64-bit hash of n bytes: 8-byte words mixed by multiply-xorshift, finished by murmur3's fmix64."""
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL ^ (<uint64_t>n * 0xFF51AFD7ED558CCDULL)
    cdef uint64_t w
    while n >= 8:
        memcpy(&w, p, 8)
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL
        h ^= h >> 31
        p += 8
        n -= 8
    if n > 0:
        w = 0
        memcpy(&w, p, n)
        h = (h ^ w) * 0x94D049BB133111EBULL
        h ^= h >> 31
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


cdef inline uint64_t _key(const uint8_t* p, int64_t n) noexcept nogil:
    cdef uint64_t k = _hash(p, n) & ~LOW
    return k if k != 0 else (<uint64_t>1) << 16  # 0 marks an empty slot


cdef class Router:
    """Member lookup, range routing and claim notes of one partition pass (see the module)."""

    cdef const int64_t[:] m_off
    cdef const uint8_t[:] m_data
    cdef uint64_t[:] slots  # the hash's top 32 bits | member row + 1 (0: empty)
    cdef uint64_t mask
    cdef const int32_t[:] part_of_member
    cdef const int32_t[:] code_of_member
    cdef readonly int parts
    cdef uint64_t[:] claims
    cdef uint64_t cmask
    cdef int64_t cfill
    cdef set ranges  # the ranges holding lines of flagged claims

    def __init__(self, const int64_t[:] offsets, data, const int32_t[:] part_of_member,
                 const int32_t[:] code_of_member, int parts):
        """``offsets``/``data``: the members' ids as Arrow large-string buffers; ``part_of_member``
        and ``code_of_member``: each member's range and its code within that range."""
        cdef int64_t n = len(part_of_member), cap = 16, i, j
        if parts > MAX_PARTS:
            raise ValueError(f"at most {MAX_PARTS} partitions")
        self.m_off, self.m_data = offsets, _bytes(data)
        self.part_of_member, self.code_of_member, self.parts = part_of_member, code_of_member, parts
        while cap < 2 * n:
            cap *= 2
        self.slots = np.zeros(cap, np.uint64)
        self.mask = cap - 1
        cdef uint64_t ring[AHEAD]
        cdef uint64_t h
        with nogil:  # hashed ahead, their slots prefetched, as in ``members``
            for i in range(min(<int64_t>AHEAD, n)):
                ring[i] = _hash(&self.m_data[0] + offsets[i], offsets[i + 1] - offsets[i])
            for i in range(n):
                h = ring[i % AHEAD]
                j = i + AHEAD
                if j < n:
                    ring[i % AHEAD] = _hash(&self.m_data[0] + offsets[j], offsets[j + 1] - offsets[j])
                    prefetch(&self.slots[ring[i % AHEAD] & self.mask])
                self._insert_member(<int32_t>i, h)
        self.claims = np.zeros(1 << 16, np.uint64)
        self.cmask = (1 << 16) - 1
        self.cfill = 0
        self.ranges = set()

    cdef void _insert_member(self, int32_t row, uint64_t h) noexcept nogil:
        cdef int64_t a = self.m_off[row], b = self.m_off[row + 1]
        cdef uint64_t s = h & self.mask, tag = h & TAG, v
        while True:
            v = self.slots[s]
            if v == 0:
                self.slots[s] = tag | <uint64_t>(row + 1)
                return
            if (v & TAG) == tag and self._same(<int32_t>((v & ~TAG) - 1), &self.m_data[0] + a, b - a):
                return  # a repeated id: its first row, as pc.index_in finds it
            s = (s + 1) & self.mask

    cdef inline bint _same(self, int32_t row, const uint8_t* p, int64_t n) noexcept nogil:
        cdef int64_t a = self.m_off[row], b = self.m_off[row + 1]
        return b - a == n and (n == 0 or memcmp(&self.m_data[0] + a, p, n) == 0)

    cdef inline int32_t _find(self, uint64_t h, const uint8_t* p, int64_t n) noexcept nogil:
        cdef uint64_t s = h & self.mask, tag = h & TAG, v
        while True:
            v = self.slots[s]
            if v == 0:
                return -1
            if (v & TAG) == tag and self._same(<int32_t>((v & ~TAG) - 1), p, n):
                return <int32_t>((v & ~TAG) - 1)
            s = (s + 1) & self.mask

    def members(self, const offset_t[:] offsets, data, const uint8_t[:] valid):
        """Member row of each string (-1: unknown, or null where ``valid`` (1 per string, or empty:
        all valid) is 0), as int32."""
        cdef int64_t n = len(offsets) - 1, i, j
        cdef const uint8_t[:] d = _bytes(data)
        out = np.empty(max(n, 0), np.int32)
        cdef int32_t[:] o = out
        cdef bint all_valid = len(valid) == 0
        cdef uint64_t ring[AHEAD]
        cdef uint64_t v, h
        with nogil:
            for j in range(min(<int64_t>AHEAD, n)):
                ring[j] = _hash(&d[0] + offsets[j], offsets[j + 1] - offsets[j])
            for i in range(n):
                h = ring[i % AHEAD]
                j = i + AHEAD
                if j < n:  # hash ahead, fetch its slot
                    ring[j % AHEAD] = _hash(&d[0] + offsets[j], offsets[j + 1] - offsets[j])
                    prefetch(&self.slots[ring[j % AHEAD] & self.mask])
                j = i + AHEAD // 2
                if j < n:  # and, half way, the bytes of its candidate
                    v = self.slots[ring[j % AHEAD] & self.mask]
                    if v != 0:
                        prefetch(&self.m_data[0] + self.m_off[<int64_t>((v & ~TAG) - 1)])
                if all_valid or valid[i]:
                    o[i] = self._find(h, &d[0] + offsets[i], offsets[i + 1] - offsets[i])
                else:
                    o[i] = -1
        return out

    def route(self, const int32_t[:] member):
        """Order the lines of a batch by range (stably): (part of each line (the orphans, member -1,
        are ``parts``), the order, bounds[k]:bounds[k + 1] the rows of range k in that order, and the
        member's code within its range of each line in that order)."""
        cdef int64_t n = len(member), i, p
        cdef int P = self.parts
        part_a = np.empty(n, np.int32)
        order_a = np.empty(n, np.int64)
        codes_a = np.empty(n, np.int32)
        bounds_a = np.zeros(P + 2, np.int64)
        cdef int32_t[:] part = part_a, codes = codes_a
        cdef int64_t[:] order = order_a, bounds = bounds_a
        cdef int64_t[:] at = np.empty(P + 1, np.int64)
        with nogil:
            for i in range(n):
                p = self.part_of_member[member[i]] if member[i] >= 0 else P
                part[i] = <int32_t>p
                bounds[p + 1] += 1
            for p in range(P + 1):
                bounds[p + 1] += bounds[p]
                at[p] = bounds[p]
            for i in range(n):
                p = part[i]
                order[at[p]] = i
                codes[at[p]] = self.code_of_member[member[i]] if member[i] >= 0 else -1
                at[p] += 1
        return part_a, order_a, bounds_a, codes_a

    def note_claims(self, const offset_t[:] offsets, data, const uint8_t[:] valid, const int32_t[:] part):
        """Note the range of each line's claim (``valid`` as in ``members``)."""
        cdef int64_t n = len(part), i, j
        cdef const uint8_t[:] d = _bytes(data)
        cdef bint all_valid = len(valid) == 0
        cdef uint64_t key, last = 0
        cdef int32_t last_part = -1
        cdef uint64_t first
        cdef uint64_t ring[AHEAD]
        with nogil:
            for j in range(min(<int64_t>AHEAD, n)):
                ring[j] = _line_key(offsets, d, valid, all_valid, j)
            for i in range(n):
                key = ring[i % AHEAD]
                j = i + AHEAD
                if j < n:  # key ahead, fetch its slot (a hint: the table may grow meanwhile)
                    ring[j % AHEAD] = _line_key(offsets, d, valid, all_valid, j)
                    prefetch(&self.claims[(ring[j % AHEAD] >> 16) & self.cmask])
                if key == last and part[i] == last_part:
                    continue  # the next line of the same claim, usually
                last, last_part = key, part[i]
                first = self._note(key, <uint64_t>(part[i] + 1))
                if first:
                    with gil:  # rare: a claim in a second range, or two claims sharing a key
                        self.ranges.update((<int64_t>first - 1, part[i]))
                if 2 * self.cfill > <int64_t>self.cmask:
                    with gil:
                        self._grow()

    cdef inline uint64_t _note(self, uint64_t key, uint64_t part1) noexcept nogil:
        """Note a claim key in range part1 - 1; when the key was first noted in another range, flag it
        and return that range + 1 (else 0)."""
        cdef uint64_t s = (key >> 16) & self.cmask, v
        while True:
            v = self.claims[s]
            if v == 0:
                self.claims[s] = key | part1
                self.cfill += 1
                return 0
            if (v & ~LOW) == key:
                if (v & 0x7FFF) != part1:
                    self.claims[s] = v | ELSEWHERE
                    return v & 0x7FFF
                return 0
            s = (s + 1) & self.cmask

    cdef int _grow(self) except -1:
        return self._resize(2 * len(self.claims))

    def reserve(self, int64_t claims):
        """Size the claim table for about ``claims`` distinct claims now, at most half full: growing
        it step by step re-inserts every claim noted at each step and touches twice the memory."""
        cdef int64_t cap = len(self.claims)
        while cap < 2 * claims:
            cap *= 2
        if cap > len(self.claims):
            self._resize(cap)

    @property
    def noted(self):
        """Distinct claim keys noted so far."""
        return self.cfill

    @property
    def capacity(self):
        """Slots of the claim table."""
        return len(self.claims)

    cdef int _resize(self, int64_t cap) except -1:
        old = self.claims
        cdef uint64_t[:] o = old
        cdef int64_t i, n = len(old)
        cdef uint64_t s, v
        self.claims = np.zeros(cap, np.uint64)
        self.cmask = cap - 1
        with nogil:
            for i in range(n):
                v = o[i]
                if v != 0:
                    s = (v >> 16) & self.cmask
                    while self.claims[s] != 0:
                        s = (s + 1) & self.cmask
                    self.claims[s] = v
        return 0

    def flagged(self):
        """(the keys (hash bits) of the claims noted in more than one range: candidates to check, the
        ranges holding their lines, ascending). One pass over the table, no temporary of its size."""
        cdef const uint64_t[:] c = self.claims
        cdef int64_t i, n = len(self.claims), m = 0
        with nogil:
            for i in range(n):
                if c[i] & ELSEWHERE:
                    m += 1
        out = np.empty(m, np.uint64)
        cdef uint64_t[:] o = out
        m = 0
        with nogil:
            for i in range(n):
                if c[i] & ELSEWHERE:
                    o[m] = c[i] & ~LOW
                    m += 1
        return np.unique(out), sorted(self.ranges)

    def keys(self, const offset_t[:] offsets, data, const uint8_t[:] valid):
        """The key (hash bits) of each string, as ``note_claims`` keys them."""
        cdef int64_t n = len(offsets) - 1, i
        cdef const uint8_t[:] d = _bytes(data)
        cdef bint all_valid = len(valid) == 0
        out = np.empty(max(n, 0), np.uint64)
        cdef uint64_t[:] o = out
        with nogil:
            for i in range(n):
                o[i] = _key(&d[0] + offsets[i], offsets[i + 1] - offsets[i]) if all_valid or valid[i] else NULL_KEY
        return out

    def release(self):
        """Free the claim table (the pass is over)."""
        self.claims = np.zeros(1, np.uint64)
        self.cmask = 0
        self.cfill = 0
        self.ranges = set()


cdef inline uint64_t _line_key(const offset_t[:] offsets, const uint8_t[:] d, const uint8_t[:] valid,
                               bint all_valid, int64_t i) noexcept nogil:
    """The claim key of string i (``NULL_KEY`` where null)."""
    if all_valid or valid[i]:
        return _key(&d[0] + offsets[i], offsets[i + 1] - offsets[i])
    return NULL_KEY


cdef const uint8_t[:] _bytes(data):
    """A string array's data buffer as bytes (one zero byte when it has none: every string is empty)."""
    if data is None or len(data) == 0:
        return np.zeros(1, np.uint8)
    return np.frombuffer(data, np.uint8)


def decimal64(const int64_t[:] words, const uint8_t[:] valid, int64_t limit, int64_t[:] out):
    """The 128-bit decimals of Arrow's buffer (two 64-bit words each, low first) as 64-bit integers, when
    every valid one lies within ±``limit``: True and ``out`` filled (0 where null), else False.
    ``valid``: 1 per value, or empty when all are valid."""
    cdef int64_t n = len(out), i, low
    cdef bint all_valid = len(valid) == 0, fits = True
    if len(words) < 2 * n:
        raise ValueError("fewer words than values")
    with nogil:
        for i in range(n):
            if all_valid or valid[i]:
                low = words[2 * i]
                if words[2 * i + 1] != (-1 if low < 0 else 0) or low > limit or low < -limit:
                    fits = False
                    break
                out[i] = low
            else:
                out[i] = 0
    return fits
