"""``adjudicate validate``: check input files and list the problems found."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .encode import encode
from .inputs import SUFFIXES, InputError, load
from .schema import TABLES


def classify(paths: list[Path]) -> dict[str, list[Path]]:
    """Group files by table, from their names (claims*, members*, …); folders are expanded."""
    found: dict[str, list[Path]] = {}
    for p in paths:
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES) if p.is_dir() else [p]
        for f in files:
            name = next((t for t in TABLES if f.stem.lower().startswith(t)), None)
            if name is None:
                raise InputError(f"cannot tell which table this is; name it {', '.join(TABLES)}.*", f)
            found.setdefault(name, []).append(f)
    return found


def validate_paths(paths: list[Path]) -> list[str]:
    """Every problem found, one line each (empty when the inputs are fine)."""
    problems: list[str] = []
    loaded = {}
    for name, files in classify(paths).items():
        try:
            loaded[name] = load(TABLES[name], files)
        except InputError as e:
            problems.append(f"error: {e}")
    if all(t in loaded for t in TABLES):
        try:
            enc = encode(loaded["claims"], loaded["members"], loaded["providers"], loaded["catalogue"])
        except InputError as e:
            problems.append(f"error: {e}")
        else:
            counts = Counter(r[2] for r in enc.rejected)
            for reason, n in counts.most_common():
                example = next(r for r in enc.rejected if r[2] == reason)
                problems.append(f"reject: {n} claim(s) {reason} (e.g. claim {example[0]!r}: {example[3]})")
    return problems
