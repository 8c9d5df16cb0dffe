"""Keep pyarrow from importing pandas while a command runs.

pyarrow imports pandas, when it is installed, on its first ``pa.array`` and
when ``pyarrow.dataset`` is loaded, only to ask whether its arguments are
pandas objects: 0.3–0.7 s of a command's start-up for a library the engine
never uses. Inside :func:`pandas_unused` that import fails, pyarrow answers
"no pandas object" and carries on; everything the engine calls works the
same. Only the command line uses it, for the length of one command (not with
``--engine spark``, whose driver may convert through pandas), and only when
pandas is not imported already: a library caller keeps pyarrow's defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _NoPandas:
    """An import finder under which ``import pandas`` fails (not even searched for)."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(
                "pandas is not loaded while an adjudicate command runs (adjudicate/lazy_pandas.py)", name=name
            )
        return None


@contextmanager
def pandas_unused() -> Iterator[bool]:
    """Inside the block ``import pandas`` fails, unless pandas was imported before; yields whether
    the import is blocked."""
    if "pandas" in sys.modules:
        yield False
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        yield True
    finally:
        sys.meta_path.remove(finder)
