"""``adjudicate validate``: check input files and list the problems found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .encode import encode
from .errors import InputError
from .inputs import SUFFIXES, load
from .schema import REJECT_REASONS, TABLES


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
            files = sorted(
                f
                for f in p.iterdir()
                if f.suffix.lower() in SUFFIXES and not f.name.startswith((".", "_")) and not f.is_dir()
            )
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


def validate_paths(
    paths: list[Path],
    policy: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    skipped: list[str] | None = None,
) -> list[str]:
    """Every problem found, one line each (empty when the inputs are fine).

    Each table is read and checked on its own, so a problem in one does not
    hide those in another; the cross-table checks (unique ids, catalogue
    validity, claim rejections) run when all four tables could be read. With
    a ``policy`` the claims are also split as ``run`` splits them, so every
    rejection ``run`` makes is listed (``negative_claim_total`` depends on
    the policy's catalogue rules). The checks that could not run are
    appended to ``skipped``, one line each, with the reason.
    """
    say = progress or (lambda stage: None)
    skipped = skipped if skipped is not None else []
    problems: list[str] = []
    loaded = {}
    for name, files in classify(paths, problems).items():
        say(f"read {name}")
        try:
            loaded[name] = load(TABLES[name], files)
        except InputError as e:
            problems.append(f"error: {e}")
    missing = [t for t in TABLES if t not in loaded]
    if missing:
        many = len(missing) > 1
        skipped.append(
            f"claim rejections, unique ids and catalogue validity: the {', '.join(missing)} "
            f"table{'s' if many else ''} could not be read or {'were' if many else 'was'} not given"
        )
        return problems
    say("cross-table checks")
    try:
        if policy is None:
            rejected = encode(loaded["claims"], loaded["members"], loaded["providers"], loaded["catalogue"]).rejected
            skipped.append(
                "negative_claim_total: it depends on the policy's split of each line; "
                "pass --policy NAME to check it as run would"
            )
        else:
            from . import policy as P
            from .engine import Inputs, adjudicate

            say("split under the policy")
            rejected = adjudicate(
                Inputs(loaded["claims"], loaded["members"], loaded["providers"], loaded["catalogue"]),
                P.load(policy),
                line_funds=False,
            ).enc.rejected
    except InputError as e:
        problems.append(f"error: {e}")
        return problems
    counts = Counter(r[2] for r in rejected)
    for reason in REJECT_REASONS:
        if counts[reason]:
            example = next(r for r in rejected if r[2] == reason)
            problems.append(f"reject: {counts[reason]} claim(s) {reason} (e.g. claim {example[0]!r}: {example[3]})")
    return problems
