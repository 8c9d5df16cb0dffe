"""An allocation policy a command may opt into: large arrays freed by one stage are reused by the next.

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and gives it
back with ``munmap`` when freed. A run allocates and frees gigabytes of such
arrays (read, encode, kernel outputs), so each one is zeroed again by the
operating system on first touch: on a virtual machine that costs 1.4–2 s per
GiB, about a third of a cold run's CPU. :func:`reuse_freed_memory` keeps freed
memory in the process heap instead, where the next stage's arrays find it
already mapped (docs/memory.md has the figures).

It is off unless ``ADJUDICATE_REUSE_MEMORY=1``: on cold runs at 9.7 M lines,
date order and shuffled, five paired runs each, it changed CPU by 0.99× and
1.02× and raised the peak by 11 % (docs/memory.md). Nothing
here is applied on import: the command line calls :func:`reuse_freed_memory`
once at start-up; a library caller decides for its own process. Standard
library only (``adjudicate --help`` loads no NumPy).

:func:`keep_arrow_memory` does the same for Arrow's own allocator (mimalloc):
on by default for a command, which keeps freed pages ten seconds for reuse.
"""

from __future__ import annotations

import os
import sys

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
#: Environment variables by which a user sets glibc's allocator: when one is set, theirs stands.
USER_SETTINGS = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)
#: Set to 1 to have the command line keep freed memory (docs/memory.md); glibc's defaults otherwise.
OPT_IN = "ADJUDICATE_REUSE_MEMORY"
#: Heap growth asked of the kernel in one step (address space only: pages are touched when used).
TOP_PAD = 64 << 20


#: mimalloc's setting (pyarrow's default pool is mimalloc): milliseconds before freed memory is given back.
ARROW_PURGE_DELAY = "MIMALLOC_PURGE_DELAY"
#: How long the command line has mimalloc keep freed pages (its default: 10 ms). 1 s saved nothing
#: measurable at 48.8 M lines streamed, 10 s as much as "for ever" (-1); unlike -1, it lets a pass
#: give its pages back when done (``release_unused``, which mimalloc ignores under -1).
ARROW_KEEP_MS = 10_000


def keep_arrow_memory() -> bool:
    """Have Arrow's allocator (mimalloc) keep the pages it frees for ARROW_KEEP_MS, for this process;
    True when set.

    mimalloc gives freed pages back to the system 10 ms after they are freed, and the system
    zeroes them again when they are next touched. A streamed run's partition pass frees and
    allocates the same few batches again and again: at 48.8 M lines that was about half of
    its system time (docs/memory.md). mimalloc reads the setting once, when pyarrow loads, so this
    only works before pyarrow is imported; it does nothing when pyarrow is already loaded or
    when the environment already sets ``MIMALLOC_PURGE_DELAY`` (the user's choice stands).
    Only the command line calls this (a process that exits soon); never raises."""
    if ARROW_PURGE_DELAY in os.environ or "pyarrow" in sys.modules:
        return False
    os.environ[ARROW_PURGE_DELAY] = str(ARROW_KEEP_MS)
    return True


def glibc() -> bool:
    """Whether this process runs on glibc (the only allocator whose policy is set here)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name on this platform
        return False


def user_chose() -> bool:
    """Whether the environment already says how glibc allocates."""
    return any(v in os.environ for v in USER_SETTINGS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


def reuse_freed_memory() -> bool:
    """Keep freed memory in the heap for reuse, process-wide; True when the policy was set.

    Large allocations come from the heap rather than from their own mappings
    (``M_MMAP_MAX`` 0), and the heap is never shrunk (``M_TRIM_THRESHOLD``):
    a freed array's pages, already faulted in, serve the next allocation. The
    price is a higher resident peak where freed pieces do not fit later
    requests (about 10 % on a 10 M-line run) and memory the process keeps until
    it exits, which suits a command, not a long-lived server: only the CLI
    calls this. Does nothing (False) unless ``ADJUDICATE_REUSE_MEMORY=1``, off
    glibc, when the environment already sets glibc's allocator, or when mallopt
    cannot be reached; never raises.
    """
    if os.environ.get(OPT_IN, "").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    if not glibc() or user_chose():
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        return bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1) and mallopt(M_TOP_PAD, TOP_PAD) and mallopt(M_MMAP_MAX, 0))
    except (OSError, AttributeError, TypeError):  # no libc symbols reachable: keep the defaults
        return False
