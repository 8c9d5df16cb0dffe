# The byte and integer hashes the compiled modules share, defined once (inline: each module
# that cimports them compiles its own copy, so no module calls into another at run time).
#
# Hash values are never written to an output and never decide an amount: they place keys
# in open-addressing tables whose hits are confirmed byte for byte, and fingerprint claims
# whose candidates are compared exactly. Changing a constant changes speed, never a result.

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy


cdef inline uint64_t hash_bytes(const uint8_t* p, int64_t n) noexcept nogil:
    """A 64-bit hash of n bytes, eight at a time (multiply and xor-shift mixing)."""
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL ^ <uint64_t>n, w
    cdef int64_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL
        h ^= h >> 31
        i += 8
    if i < n:
        w = 0
        memcpy(&w, p + i, n - i)
        h = (h ^ w) * 0x94D049BB133111EBULL
        h ^= h >> 29
    h *= 0xBF58476D1CE4E5B9ULL
    h ^= h >> 32
    return h


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    """splitmix64's finaliser: every bit of x moves about half the bits of the result."""
    x ^= x >> 30
    x *= 0xbf58476d1ce4e5b9ULL
    x ^= x >> 27
    x *= 0x94d049bb133111ebULL
    x ^= x >> 31
    return x
