"""What bounds a missed target: written into RESULTS.md by ``run.py`` from the measurements, not by hand.

For each missed target the run whose figure missed it is taken apart: its
timed stages (summary.json ``timings_seconds``, whatever stages it reports)
and the time outside them, against the target's budget; the largest part is
the bound. The profile of ``adjudicate run`` (when measured) names the
functions of that stage that cost most, and ``LEVERS`` says what would move it.
"""

from __future__ import annotations

#: Stage (summary.json timer, or "outside" for wall − Σ stages) → profile entries that belong to it.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "read": ("adjudicate/inputs.py", "pyarrow/parquet/core.py", "(read)", "read_table"),
    "encode": ("adjudicate/encode.py", "argsort", "take", "_core.pyx"),
    "kernel": ("adjudicate/engine.py", "_core", "acquire"),
    "allocate": ("adjudicate/engine.py", "allocate"),
    "write": ("adjudicate/outputs.py", "write_table", "write_all"),
    "partition": ("adjudicate/stream.py",),
    "startup": ("<module>", "marshal.loads", "_imp.", "builtins.compile"),
    "report": ("adjudicate/report",),
    "finish": ("adjudicate/outdir.py", "digest", "summary"),
    "outside": ("<module>", "marshal.loads", "_imp.", "builtins.compile", "adjudicate/report", "digest"),
}

#: What would move each part, as the code stands (rewrite a sentence when its work is done); a stage not
#: listed gets a generic sentence. Every line-length array a stage allocates costs its first touch, which
#: on a virtual machine is often more than the arithmetic (benchmarks/first_touch.py).
LEVERS: dict[str, str] = {
    "read": "the Parquet decode on both cores is the floor's work (the claims' decimals read as their stored bytes, the common column forms converted straight into the file's arrays, the ids coded on their own thread, in blocks with their slots prefetched); beyond it: the claims file read through a memory map instead of one read (about 0.15-0.2 s of system time on the shuffled file), and the claim-id table's fresh pages on shuffled rows",
    "encode": "the checks, order, lookups and line layout are compiled passes, each cut in shares on both cores, the layout's pages touched ahead: what is left is the first touch of the per-line arrays (provider, item and diagnosis positions as int16), member_groups' single counting pass and the months of enrolment (about 100 ns a claim); or a prepared dataset (`--dataset`), which skips the stage",
    "kernel": "the compiled pass is fast when its outputs are warm: first touch of the output arrays (narrower "
    "per-line outputs, or lines written straight into the writer's buffers)",
    "allocate": "allocating the funds in the settle pass itself, with no second pass over the lines",
    "write": "the Parquet encoding itself: row groups are already encoded on both cores and joined (parquet_parts.py, the bytes of one write), beside the report on the same two cores; settlements.parquet has three row groups, which balance poorly on two threads (cutting parts by columns too); the amounts are views of the kernel's column-major matrices already",
    "partition": "the claims' Parquet decode is most of the pass now; overlapping the member sort with the first "
    "batch's read, and settling ranges early where files are split by member",
    "outside": "lazy imports, policy and digest work overlapped with reading, a cheaper report.html and summary "
    "(the timers `startup`, `report`, `finish` split this part when present)",
    "startup": "lazy imports: nothing of numpy, pyarrow or rich loaded before a command needs it",
    "report": "little of it is the page's own work (its figures take about 0.06 s alone on the run's arrays); the rest is waiting for a core while the writer's two encoders run, three threads on two cores: only less CPU in the write or the page takes it off the wall",
    "finish": "the summary, digests and the atomic rename overlapped with writing",
    "compare": "the second policy's kernel pass and compare.parquet's write; the decode is already shared",
    "adjustments": "the earlier dataset settled in place over the changed members' claim ranges (its memory-mapped "
    "arrays, no copies of them)",
    "read_previous": "reading only the previous night's rows of the changed member-years",
}


def parts(stages: dict[str, float], wall: float) -> list[tuple[str, float]]:
    """(stage, seconds) largest first, with the time outside the stages as 'outside'."""
    out = [(k, float(v)) for k, v in stages.items()]
    out.append(("outside", max(wall - sum(v for _, v in out), 0.0)))
    return sorted(out, key=lambda kv: -kv[1])


def profile_for(stage: str, profile: dict | None, top: int = 3) -> str:
    """The profile's costliest functions (own time) that belong to ``stage``."""
    if not profile or not profile.get("rows"):
        return ""
    keys = STAGE_CODE.get(stage, (stage,))
    hits = [r for r in profile["rows"] if any(k in r[3] for k in keys)]
    hits.sort(key=lambda r: -r[0])
    if not hits:
        return ""
    return "Profile (own s): " + ", ".join(f"`{w}` {tt:.2f}" for tt, _ct, _nc, w in hits[:top]) + "."


def lever(stage: str) -> str:
    return LEVERS.get(stage, f"less work in the `{stage}` stage")


def explain(
    what: str,
    stages: dict[str, float],
    wall: float,
    budget: float | None = None,
    floor: dict[str, float] | None = None,
    profile: dict | None = None,
    focus: str | None = None,
    cpu: dict | None = None,
) -> str:
    """One paragraph: the run's parts against ``budget`` (seconds the target allows, if it is a wall target),
    the bound (largest part, or largest excess over ``floor``'s part of the same name, or ``focus`` when the
    target is about that part's share), its profile and lever; with ``cpu`` (``cpu_sentence``) how much of
    the work was the system's."""
    ps = parts(stages, wall)
    if focus is not None:
        bound = focus
    elif floor:
        excess = sorted(((k, v - floor.get(k, 0.0)) for k, v in ps), key=lambda kv: -kv[1])
        bound = excess[0][0]
    else:
        bound = ps[0][0]
    desc = ", ".join(
        f"`{k}` {v:.2f} s" + (f" (floor {floor[k]:.2f})" if floor and k in floor else "") for k, v in ps if v >= 0.005
    )
    text = f"**{what}.** Wall {wall:.2f} s" + (f", the target allows {budget:.2f} s" if budget is not None else "")
    text += f". Parts, largest first: {desc}. Bound: **`{bound}`**"
    if floor:
        text += f" ({dict(ps)[bound] - floor.get(bound, 0.0):.2f} s above its floor part)"
    else:
        text += f" ({100 * dict(ps).get(bound, 0.0) / wall:.0f} % of the wall)" if wall > 0 else ""
    text += f". What would move it: {lever(bound)}."
    prof = profile_for(bound, profile)
    return text + (" " + prof if prof else "") + cpu_sentence(cpu)


def cpu_sentence(cpu: dict | None) -> str:
    """The run's CPU seconds, user and system, and those of what it is held against (``cpu["versus"]``:
    (label, {"user", "sys"})): system time on these machines is mostly the kernel zeroing pages the process
    touches for the first time."""
    if not cpu or cpu.get("sys") is None or cpu["sys"] != cpu["sys"]:
        return ""
    text = f" CPU: user {cpu['user']:.1f} s, system {cpu['sys']:.1f} s"
    label, other = cpu.get("versus") or ("", {})
    if other.get("sys") is not None and other["sys"] == other["sys"]:
        text += f" ({label}: user {other['user']:.1f} s, system {other['sys']:.1f} s)"
    return text + (
        "; system time is mostly first touch of fresh memory, which fewer and smaller arrays and a lower peak move."
        if cpu["sys"] > 0.25 * (cpu["user"] + cpu["sys"])
        else "."
    )


def kernel(mem: dict, goal: float = 50e6) -> str:
    """The kernel rate: the compiled pass with its outputs touched beforehand (``stages.time_kernel``:
    what the target judges), the first touch of fresh outputs apart, and the engine's `kernel` timer."""
    one = mem[1]
    w = mem.get("warm") or {}
    c = mem.get("compiled") or {}
    if 1 in w:
        x = w[1]
        text = (
            f"**kernel ≥ {goal / 1e6:.0f} M lines/s/core.** The kernel pass with its outputs touched beforehand "
            f"took {x['warm']:.3f} s on {w['lines']:,} lines, one thread ({x['per_core'] / 1e6:.1f} M lines/s; "
            f"its CPU time {x['warm_cpu']:.3f} s, {x['per_cpu_s'] / 1e6:.1f} M lines per CPU second). Into fresh "
            f"outputs it took {x['fresh']:.3f} s: {x['first_touch']:.3f} s first touch of "
            f"{w['output_bytes'] / 2**20:,.0f} MiB of output pages, which the engine's `kernel` timer "
            f"({one['kernel']:.3f} s) pays too. "
        )
        cpu_bound = x["warm_cpu"] >= 0.8 * x["warm"]
        text += (
            "Bound: **the compiled pass itself** (its wall time is its CPU time). What would move it: fewer "
            "bytes per line read and written (narrower per-line arrays in and out: the pass streams them "
            "through memory), and less work per line in the split."
            if cpu_bound
            else "Bound: **the machine**: the pass's CPU time is well below its wall time, so other processes "
            f"held the core; at its CPU time it would settle {x['per_cpu_s'] / 1e6:.1f} M lines/s."
        )
        return text
    text = (
        f"**kernel ≥ {goal / 1e6:.0f} M lines/s/core.** The `kernel` timer took {one['kernel']:.3f} s on "
        f"{mem['lines']:,} lines ({one['per_core'] / 1e6:.1f} M lines/s, one thread)"
    )
    if "kernel_cpu" in one and one["kernel_cpu"] == one["kernel_cpu"]:  # not nan
        text += f"; its CPU time {one['kernel_cpu']:.3f} s ({mem['lines'] / one['kernel_cpu'] / 1e6:.1f} M lines per CPU second)"
    if c and "settle_lines" in c:  # the engine's one kernel call, into fresh outputs (first touch included)
        text += (
            f"; the compiled call alone, into fresh outputs: `settle_lines` {c['settle_lines']:.3f} s. Not "
            "measured apart from the first touch of its outputs (a revision without `engine.kernel_args`)."
        )
    return text


def speedup(mem: dict, load: tuple[float, ...], goal: float = 1.8) -> str:
    """Thread speed-up of the kernel pass with outputs touched beforehand (else the engine's timer): the
    serial share it implies (Amdahl), the CPU time of both, and the machine's load."""
    w = mem.get("warm") or {}
    loadtext = " ".join(f"{x:.2f}" for x in load)
    if 1 in w and 2 in w:
        one, two = w[1], w[2]
        s = one["warm"] / two["warm"]
        serial = min(max(2 / s - 1, 0.0), 1.0) if s > 0 else 1.0
        extra = two["warm_cpu"] / one["warm_cpu"] if one["warm_cpu"] > 0 else float("nan")
        return (
            f"**kernel thread speed-up ≥ {goal}× on 2 threads.** The kernel pass with its outputs touched "
            f"beforehand: {one['warm']:.3f} s on 1 thread, {two['warm']:.3f} s on 2 ({s:.2f}×: as if "
            f"{100 * serial:.0f} % ran serially, Amdahl). CPU time {one['warm_cpu']:.3f} s and "
            f"{two['warm_cpu']:.3f} s ({extra:.2f}× the work on 2 threads). Into fresh outputs: "
            f"{one['fresh']:.3f} s and {two['fresh']:.3f} s. The load average at the end was {loadtext}: on 2 "
            "cores any other process takes the second thread's core. Bound: "
            + (
                "**the machine** (the second thread's CPU time was not given the wall time to run)."
                if extra < 1.2
                else "**more CPU work on 2 threads for the same lines**: contention for the caches or the cores "
                "(another process, the hypervisor); not memory bandwidth, which one kernel thread uses a fifth "
                "of (docs/kernel.md, 'Two threads')."
            )
            + " What would move it: a quiet machine; fewer bytes per line."
        )
    s = mem[1]["kernel"] / mem[2]["kernel"]
    serial = min(max(2 / s - 1, 0.0), 1.0) if s > 0 else 1.0
    return (
        f"**kernel thread speed-up ≥ {goal}× on 2 threads.** Measured {s:.2f}× by the engine's `kernel` timer "
        f"(first touch of fresh outputs included): as if {100 * serial:.0f} % of it ran serially (Amdahl). The "
        f"load average at the end was {loadtext}: on 2 cores any other process takes the second thread's core."
    )
