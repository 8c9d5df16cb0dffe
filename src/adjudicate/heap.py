"""The process's allocation policy: large arrays freed by one stage are reused by the next.

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and gives it
back with ``munmap`` when freed. A run allocates and frees gigabytes of such
arrays (read, encode, kernel outputs), so each one is zeroed again by the
operating system on first touch: on a virtual machine that costs 1.4–2 s per
GiB, about a third of a cold run's CPU. :func:`reuse_freed_memory` keeps freed
memory in the process heap instead, where the next stage's arrays find it
already mapped (docs/memory.md has the figures).

Nothing here is applied on import: the command line calls
:func:`reuse_freed_memory` once at start-up; a library caller decides for its
own process. Standard library only (``adjudicate --help`` loads no NumPy).
"""

from __future__ import annotations

import os

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
#: Environment variables by which a user sets glibc's allocator: when one is set, theirs stands.
USER_SETTINGS = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)
#: Set to 0 to keep glibc's defaults (docs/memory.md).
OPT_OUT = "ADJUDICATE_REUSE_MEMORY"
#: Heap growth asked of the kernel in one step (address space only: pages are touched when used).
TOP_PAD = 64 << 20


def glibc() -> bool:
    """Whether this process runs on glibc (the only allocator whose policy is set here)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name on this platform
        return False


def user_chose() -> bool:
    """Whether the environment already says how glibc allocates (or asks us not to)."""
    if os.environ.get(OPT_OUT, "").strip() in ("0", "false", "no", "off"):
        return True
    return any(v in os.environ for v in USER_SETTINGS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


def reuse_freed_memory() -> bool:
    """Keep freed memory in the heap for reuse, process-wide; True when the policy was set.

    Large allocations come from the heap rather than from their own mappings
    (``M_MMAP_MAX`` 0), and the heap is never shrunk (``M_TRIM_THRESHOLD``):
    a freed array's pages, already faulted in, serve the next allocation. The
    price is a higher resident peak where freed pieces do not fit later
    requests (about 10 % on a 10 M-line run) and memory the process keeps until
    it exits, which suits a command, not a long-lived server: only the CLI
    calls this. Does nothing (False) off glibc, when the environment already
    sets glibc's allocator, with ``ADJUDICATE_REUSE_MEMORY=0``, or when mallopt
    cannot be reached; never raises.
    """
    if not glibc() or user_chose():
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        return bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1) and mallopt(M_TOP_PAD, TOP_PAD) and mallopt(M_MMAP_MAX, 0))
    except (OSError, AttributeError, TypeError):  # no libc symbols reachable: keep the defaults
        return False
