"""What fresh memory costs on this machine: the price of every new array the engine fills.

    python benchmarks/first_touch.py [--gib 1] [--idle 5]

Three figures, each the seconds to fill ``--gib`` GiB of NumPy int64 and the
system CPU seconds it took:

- *never touched*: the process's first array of that size, after ``--idle``
  seconds in which the machine had no reason to keep freed pages mapped (a
  virtual machine may hand them back to its host, and taking them again is
  the dearest fault there is);
- *freed and mapped again*: the same size allocated again after ``del`` (the C
  library unmaps big arrays on free and maps fresh zeroed pages on the next);
- *kept in the heap*: the same, in a child process that tells the C library to
  keep big blocks (``mallopt``: no mmap, no trim), so a freed array is reused as
  it is.

Where the first is far dearer than the others, a run's system time follows its
peak memory and the number of line-length arrays it allocates, not its
arithmetic: benchmarks/RESULTS.md reads the CPU columns with this in mind.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np


def fill(n: int) -> tuple[float, float]:
    """Seconds and system CPU seconds to allocate and fill ``n`` int64 values."""
    s0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    t0 = time.perf_counter()
    a = np.empty(n, np.int64)
    a[:] = 1
    wall = time.perf_counter() - t0
    sys_s = resource.getrusage(resource.RUSAGE_SELF).ru_stime - s0
    del a
    return wall, sys_s


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="size of each array in GiB (default 1)")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds to wait before the first array (default 5)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    n = int(args.gib * 2**30) // 8
    if args.child:  # the heap-keeping variant: mallopt before any big allocation
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: big blocks from the heap, not mmap
        libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD (an int): keep up to 2 GiB free at the top
        fill(n)
        wall, sys_s = fill(n)
        print(f"kept in the heap:        {wall / args.gib:6.3f} s/GiB  (system {sys_s / args.gib:.3f} s/GiB)")
        return
    time.sleep(args.idle)
    for label in ("never touched", "freed and mapped again"):
        wall, sys_s = fill(n)
        print(f"{label + ':':24} {wall / args.gib:6.3f} s/GiB  (system {sys_s / args.gib:.3f} s/GiB)")
    sys.stdout.flush()
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        subprocess.run([sys.executable, __file__, "--child", "--gib", str(args.gib)], check=True)


if __name__ == "__main__":
    main()
