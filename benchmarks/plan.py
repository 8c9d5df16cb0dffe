"""How long a ``run.py`` invocation will take, said before it starts, and how long each section took.

The estimate counts the processes each section starts (``adjudicate run`` or its
like, at the data set's size) and prices one at ``FIXED + PER_LINE × lines``,
or, where the previous RESULTS.md recorded that section, at what it cost then,
scaled by lines and by the number of runs. The figures of each invocation are
kept in RESULTS.md as a comment (``SECTIONS_MARK``) for the next estimate.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: One whole ``adjudicate run`` on a quiet 2-core machine: start-up plus a cost per line
#: (about 5 s at 10 M lines, full outputs, d076da9). Loaded machines take longer.
FIXED, PER_LINE = 0.3, 0.5e-6
#: The streamed run per line, when no earlier run measured it: its partition pass reads and
#: writes every line once more (45 s at 48.8 M lines, d076da9).
STREAM_PER_LINE = 0.9e-6
#: Generating a data set that is not cached yet, per line (``generate_tables`` + Parquet).
GENERATE_PER_LINE = 4e-6
SECTIONS_MARK = "<!-- sections:"


def runs_per_section(args, orders: list[str], reuse: bool, audit: bool, partitions: bool) -> dict[str, float]:
    """Whole-run equivalents each section costs at --lines (a peer or the floor is a fraction of one)."""
    r, o = args.repeat, args.repeat_other
    peers = [p for p in args.peers.split(",") if p]
    weight = {"duckdb": 1.2, "polars": 1.8, "python": 2.0}
    plan = {"adjudicate run, run --no-lines": 2 * r}
    if getattr(args, "defects", 0):
        plan["defective claims"] = o
    if partitions:
        plan["run --partitions 1, --partitions 8"] = o + 1.5
    if reuse:  # reuse.py: 7 timed commands, each paired with a cold run when repeated, and two prepares
        plan["datasets, compare, sweep, readjudicate"] = 2.6 + 7 * o * (2 if o > 1 else 1)
    if audit:
        plan["run --audit"] = 2 * o
    plan["I/O floor"] = 0.3 * r
    plan["engine in memory"] = 0.5 + 0.6 * r  # one read, then 1 and 2 threads in-process
    plan["start-up"] = 0.0  # tiny inputs: fixed cost only (below)
    for p in peers:
        plan[f"peer {p}"] = weight.get(p, 1.5) * (1 if p == "python" else r)
    for order in orders[1:]:
        plan[f"layout {order}"] = 2.3 * r + (1.2 * r if "duckdb" in peers else 0)
    if args.profile:
        plan["profile"] = 1.3
    return plan


def previous_sections(results: Path) -> dict:
    """The section timings an earlier run.py wrote into RESULTS.md ({} if none)."""
    try:
        text = results.read_text(encoding="utf-8")
    except OSError:
        return {}
    m = re.search(re.escape(SECTIONS_MARK) + r"(.*?)-->", text, re.S)
    if not m:
        return {}
    try:
        return json.loads(m.group(1))
    except ValueError:
        return {}


def estimate(plan: dict[str, float], lines: int, previous: dict, extra: dict[str, float]) -> dict[str, float]:
    """Seconds per section: the previous run's cost of that section scaled, else the model above.
    ``extra``: sections priced by the caller (data generation, the streamed run)."""
    per_run = FIXED + PER_LINE * lines
    prev_lines = previous.get("lines") or 0
    prev = previous.get("sections", {})
    out = {}
    for name, runs in plan.items():
        p = prev.get(name)
        if p and prev_lines and p.get("runs"):
            seen = p["seconds"] / p["runs"]  # one run-equivalent then
            scaled = FIXED + max(seen - FIXED, 0.0) * lines / prev_lines
            out[name] = runs * scaled + (5.0 if name == "start-up" else 0.0)
        else:
            out[name] = runs * per_run + (5.0 if name == "start-up" else 0.0)
    out.update(extra)
    return out


def sized_estimate(name: str, lines: int, previous: dict, per_line: float) -> float:
    """Seconds for a section measured on data of its own size: the previous run's figure scaled by
    lines (``Sections.lines``), else ``FIXED + per_line × lines``."""
    p = previous.get("sized", {}).get(name)
    if p and p.get("lines"):
        return FIXED + max(p["seconds"] - FIXED, 0.0) * lines / p["lines"]
    return FIXED + per_line * lines


def say_estimate(est: dict[str, float], say, load: float = 0.0, cores: int = 0) -> None:
    """Say the estimate; on a machine busier than its cores, also how much longer to expect."""
    total = sum(est.values())
    busy = ""
    if cores and load > cores:
        busy = (
            f"; the load average is {load:.1f} on {cores} cores now, so expect up to {fmt(total * load / cores)} "
            "and noisier figures"
        )
    say(
        f"estimated duration on a quiet machine: about {fmt(total)} (finishing near "
        f"{time.strftime('%H:%M', time.localtime(time.time() + total))}){busy}; by section: "
        + ", ".join(f"{k} {fmt(v)}" for k, v in est.items())
    )


def parse_duration(text: str) -> float:
    """'20m' → 1200, '90s' → 90, '1.5h' → 5400, '20' → 1200 (minutes)."""
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600}.get(t[-1:])
    return float(t[:-1]) * mult if mult else float(t) * 60


def fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Sections:
    """Times each section of the invocation and says how long it took against its estimate."""

    def __init__(self, est: dict[str, float], runs: dict[str, float], say=lambda *a: print(*a, file=sys.stderr)):
        self.est, self.runs, self.say = est, runs, say
        self.took: dict[str, float] = {}
        #: sections measured on data of their own size (the streamed run): their line count, kept
        #: beside their seconds so that the next estimate scales them by their own lines
        self.lines: dict[str, int] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.say(f"{name} ..." + (f" (estimated {fmt(self.est[name])})" if name in self.est else ""))
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.took[name] = time.perf_counter() - t0
            self.say(f"  {name} took {fmt(self.took[name])}")

    def record(self, lines: int) -> str:
        """The comment RESULTS.md keeps for the next estimate."""
        data = {
            "lines": lines,
            "sections": {
                k: {"seconds": round(v, 2), "runs": self.runs.get(k)} for k, v in self.took.items() if self.runs.get(k)
            },
            "sized": {
                k: {"seconds": round(self.took[k], 2), "lines": n} for k, n in self.lines.items() if k in self.took
            },
        }
        return f"{SECTIONS_MARK} {json.dumps(data)} -->"
