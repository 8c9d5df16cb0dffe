"""The compiled passes of fingerprint.py: 64-bit mixes combined column by column, in place.

Each function computes exactly what fingerprint.py documents (splitmix64's finaliser, wrapping
uint64 arithmetic): the values are stored in prepared datasets and compared across them, so they
must not change; tests/test_fingerprint.py holds them against a plain NumPy formulation.
"""

import numpy as np

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from ._hashing cimport mix64

cdef uint64_t GOLD = 0x9E3779B97F4A7C15ULL
cdef uint64_t NULL_HASH = 0x5A5A5A5A

ctypedef fused column_t:
    int8_t
    uint8_t
    int16_t
    uint16_t
    int32_t
    uint32_t
    int64_t
    uint64_t

ctypedef fused offset_t:
    int32_t
    int64_t


def combine(uint64_t[::1] h, const column_t[::1] v) -> None:
    """h = mix(h * GOLD + mix(v)) element by element; v as int64 (sign-extended), then uint64."""
    cdef Py_ssize_t i, n = h.shape[0]
    if v.shape[0] != n:
        raise ValueError("combine: arrays of different lengths")
    with nogil:
        for i in range(n):
            h[i] = mix64(h[i] * GOLD + mix64(<uint64_t><int64_t>v[i]))


def string_hashes(const offset_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] valid):
    """Per string: mix(Σ_i mix(byte_i + (i + 1) * GOLD) + length); a null (valid 0) hashes to 0x5A5A5A5A."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, k
    cdef int64_t i, lo, hi
    cdef uint64_t s
    out = np.empty(max(n, 0), np.uint64)
    cdef uint64_t[::1] o = out
    with nogil:
        for k in range(n):
            if valid[k] == 0:
                o[k] = NULL_HASH
                continue
            lo, hi, s = offsets[k], offsets[k + 1], 0
            for i in range(lo, hi):
                s += mix64(<uint64_t>data[i] + <uint64_t>(i - lo + 1) * GOLD)
            o[k] = mix64(s + <uint64_t>(hi - lo))
    return out


def ranked_sums(const uint64_t[::1] h, const int64_t[::1] start):
    """Per range [start[j], start[j + 1]): Σ mix(h[i] * GOLD + mix(i - start[j])), wrapping: an
    order-sensitive sum of the range's hashes (a value's rank in its range counts)."""
    cdef Py_ssize_t j, m = start.shape[0] - 1
    cdef int64_t i
    cdef uint64_t s
    out = np.empty(max(m, 0), np.uint64)
    cdef uint64_t[::1] o = out
    with nogil:
        for j in range(m):
            s = 0
            for i in range(start[j], start[j + 1]):
                s += mix64(h[i] * GOLD + mix64(<uint64_t>(i - start[j])))
            o[j] = s
    return out


def mixed(const uint64_t[::1] h):
    """mix(h), element by element."""
    cdef Py_ssize_t i, n = h.shape[0]
    out = np.empty(n, np.uint64)
    cdef uint64_t[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = mix64(h[i])
    return out
