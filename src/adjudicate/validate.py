"""``adjudicate validate``: check input files and list the problems found."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .encode import encode
from .inputs import SUFFIXES, InputError, load
from .schema import TABLES


def classify(paths: list[Path], problems: list[str] | None = None) -> dict[str, list[Path]]:
    """Group files by table, from their names (claims*, members*, …); folders are expanded.

    A file whose table cannot be told, or a path that does not exist, is an
    error: raised, or appended to ``problems`` when a list is given.
    """
    found: dict[str, list[Path]] = {}

    def problem(e: InputError) -> None:
        if problems is None:
            raise e
        problems.append(f"error: {e}")

    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES
                           and not f.name.startswith((".", "_")) and not f.is_dir())
            if not files:
                problem(InputError("no .parquet, .arrow or .csv files in this folder", p))
        elif p.exists():
            files = [p]
        else:
            problem(InputError("the file does not exist", p))
            continue
        for f in files:
            name = next((t for t in TABLES if f.stem.lower().startswith(t)), None)
            if name is None:
                problem(InputError(f"cannot tell which table this is; name it {', '.join(TABLES)}.*", f))
                continue
            found.setdefault(name, []).append(f)
    return found


def validate_paths(paths: list[Path]) -> list[str]:
    """Every problem found, one line each (empty when the inputs are fine).

    Each table is read and checked on its own, so a problem in one does not
    hide those in another; the cross-table checks (unique ids, catalogue
    validity, claim rejections) run when all four tables could be read.
    """
    problems: list[str] = []
    loaded = {}
    for name, files in classify(paths, problems).items():
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
