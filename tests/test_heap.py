"""The allocation policy a command may opt into (heap.py): only with ADJUDICATE_REUSE_MEMORY=1, on
glibc, by the CLI only, never a failure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from adjudicate import heap
from adjudicate.cli import main

needs_glibc = pytest.mark.skipif(not heap.glibc(), reason="the policy is set on glibc only")

#: Allocates 64 MiB with malloc (above glibc's largest mmap threshold) and says whether it lies in the heap.
IN_HEAP = """
import ctypes, sys
from adjudicate import heap
set_ = heap.reuse_freed_memory() if sys.argv[1] == "policy" else False
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(64 << 20)
lo, hi = next(
    [int(x, 16) for x in line.split()[0].split("-")] for line in open("/proc/self/maps") if line.rstrip().endswith("[heap]")
)
print(set_, lo <= p < hi)
"""


def _in_heap(mode: str, opt_in: str | None = "1") -> str:
    env = {k: v for k, v in os.environ.items() if k != "ADJUDICATE_REUSE_MEMORY"}
    if opt_in is not None:
        env["ADJUDICATE_REUSE_MEMORY"] = opt_in
    r = subprocess.run([sys.executable, "-c", IN_HEAP, mode], capture_output=True, text=True, check=True, env=env)
    return r.stdout.strip()


@needs_glibc
def test_policy_puts_large_arrays_in_the_heap():
    assert _in_heap("policy") == "True True"
    assert _in_heap("default") == "False False"  # glibc's default maps them apart (and unmaps them when freed)


@needs_glibc
@pytest.mark.parametrize("opt_in", [None, "0", "", "no"])
def test_off_unless_asked_for(opt_in):
    # one cold run saved no CPU and peaked 15 % higher with it (docs/memory.md): glibc's defaults stand
    assert _in_heap("policy", opt_in) == "False False"


@needs_glibc
@pytest.mark.parametrize(
    "name,value",
    [
        ("MALLOC_MMAP_MAX_", "65536"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072"),
    ],
)
def test_a_users_own_setting_stands(monkeypatch, name, value):
    monkeypatch.setenv("ADJUDICATE_REUSE_MEMORY", "1")
    monkeypatch.setenv(name, value)
    assert heap.user_chose()
    assert heap.reuse_freed_memory() is False


def test_never_fails_without_mallopt(monkeypatch):
    import ctypes

    def no_libc(*a, **k):
        raise OSError("no C library")

    monkeypatch.setenv("ADJUDICATE_REUSE_MEMORY", "1")
    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert heap.reuse_freed_memory() is False


def test_off_glibc_nothing_is_set(monkeypatch):
    import os

    monkeypatch.setenv("ADJUDICATE_REUSE_MEMORY", "1")
    monkeypatch.setattr(os, "confstr", lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert heap.glibc() is False
    assert heap.reuse_freed_memory() is False


def test_the_command_line_sets_it_a_library_import_does_not(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "reuse_freed_memory", lambda: calls.append(1) or True)
    import adjudicate.engine  # noqa: F401 - importing the library sets nothing

    assert calls == []
    assert CliRunner().invoke(main, ["policies"]).exit_code == 0
    assert calls == [1]
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0  # --version runs no command
    assert calls == [1]


#: Runs a command in a fresh interpreter and prints Arrow's allocator setting as pyarrow then saw it.
ARROW_SETTING = """
import os, sys
from adjudicate.cli import main
try:
    main(["policies"], standalone_mode=False)
finally:
    import pyarrow  # loaded after the command started, as a command loads it
    print(os.environ.get("MIMALLOC_PURGE_DELAY"), pyarrow.default_memory_pool().backend_name)
"""


def _arrow_setting(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != heap.ARROW_PURGE_DELAY}
    if env_value is not None:
        env[heap.ARROW_PURGE_DELAY] = env_value
    r = subprocess.run([sys.executable, "-c", ARROW_SETTING], capture_output=True, text=True, check=True, env=env)
    return r.stdout.strip().splitlines()[-1]


def test_a_command_keeps_arrows_freed_memory_before_pyarrow_loads():
    """keep_arrow_memory: set by the command line before pyarrow loads (mimalloc reads it then);
    a user's own MIMALLOC_PURGE_DELAY stands."""
    assert _arrow_setting(None).split()[0] == str(heap.ARROW_KEEP_MS)
    assert _arrow_setting("10").split()[0] == "10"


def test_keep_arrow_memory_does_nothing_once_pyarrow_is_loaded(monkeypatch):
    import pyarrow  # noqa: F401 - loaded: too late for mimalloc to read a setting

    monkeypatch.delenv(heap.ARROW_PURGE_DELAY, raising=False)
    assert heap.keep_arrow_memory() is False
    assert heap.ARROW_PURGE_DELAY not in os.environ
    monkeypatch.delitem(sys.modules, "pyarrow")  # as if not loaded yet (restored after the test)
    assert heap.keep_arrow_memory() is True and os.environ[heap.ARROW_PURGE_DELAY] == str(heap.ARROW_KEEP_MS)
