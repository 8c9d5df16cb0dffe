"""TOML files with errors that point at the line: shared by the policy loader,
the year-end settlement rules (``reconcile/rules.py``), the audit rules and the
case files."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: Path, error: Callable[..., Exception], what: str, parse_float=float) -> tuple[dict, str]:
    """Parse a UTF-8 TOML file; problems raise ``error(message, path, line=…)``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"not UTF-8 text (byte {e.start}); {what} files are UTF-8 TOML", path) from None
    except OSError as e:
        raise error(f"cannot be read: {e.strerror or e}", path) from None
    try:
        return tomllib.loads(text, parse_float=parse_float), text
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        lines = text.splitlines()
        line = int(m.group(1)) if m else (max(len(lines), 1) if "end of document" in str(e) else None)
        shown = f": {lines[line - 1].strip()[:80]!r}" if line and 0 < line <= len(lines) else ""
        raise error(f"not valid TOML: {e}{shown}", path, line=line) from None


class KeyLocator:
    """Finds the line of a dotted key (``blocks.inpatient.scale.bands[2].pool``) in
    the text of a TOML file, for error messages. Subclasses give ``error(key,
    message)``, which builds their own exception with that line."""

    def error(self, key: str, message: str) -> Exception:  # pragma: no cover - always overridden
        raise NotImplementedError

    def only(self, d: dict, key: str, allowed: set[str]) -> None:
        """Refuse any key of table ``d`` (at ``key``) outside ``allowed``."""
        extra = sorted(set(d) - allowed)
        if extra:
            raise self.error(
                f"{key}.{extra[0]}" if key else extra[0],
                f"unknown key {extra[0]!r}; allowed here: {', '.join(sorted(allowed))}",
            )

    def __init__(self, path: Path, text: str):
        self.path, self.source_text, self.lines = path, text, text.splitlines()
        self._starts = [0]
        for line in text.splitlines(keepends=True):
            self._starts.append(self._starts[-1] + len(line))

    def _line_at(self, pos: int) -> int:
        """1-based line of a character position."""
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def _headers(self) -> list[tuple[str, bool, int, int]]:
        """(dotted name, is array of tables, start of the header, start of its body) of each [table]."""
        out = []
        for m in re.finditer(r"(?m)^[ \t]*(\[\[?)[ \t]*([^\]\n#]+?)[ \t]*\]\]?[^\n]*$", self.source_text):
            name = ".".join(p.strip().strip("\"'") for p in m.group(2).split("."))
            out.append((name, m.group(1) == "[[", m.start(), m.end()))
        return out

    def _line_of(self, key: str) -> int | None:
        """Best-effort line of ``key`` (e.g. ``blocks.inpatient.scale.bands[2].pool``).

        The deepest part of the key that can be found decides: the key itself,
        else the inline table or array element holding it, else its [table].
        """
        tokens: list[str | int] = []
        for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
            tokens.append(int(index) if index else name)
        if not tokens:
            return None
        headers = self._headers()
        # the longest prefix of the key that is a [table] header (k-th one for [[arrays]])
        pos, end, used, found = 0, len(self.source_text), 0, None
        for n in range(len(tokens), 0, -1):
            prefix = tokens[:n]
            ints = [i for i, t in enumerate(prefix) if isinstance(t, int)]
            if ints:
                # a sub-table of an [[array]] element: [a.b] after the k-th [[a]] (one index only)
                if len(ints) != 1 or isinstance(prefix[-1], int):
                    continue
                i = ints[0]
                k = prefix[i]
                assert isinstance(k, int)  # ints holds the positions of the int tokens
                arrays = [h for h in headers if h[1] and h[0] == ".".join(map(str, prefix[:i]))]
                if k >= len(arrays):
                    continue
                lo = arrays[k][2]
                hi = arrays[k + 1][2] if k + 1 < len(arrays) else len(self.source_text)
                dotted = ".".join(str(t) for t in prefix if not isinstance(t, int))
                hits = [h for h in headers if h[0] == dotted and lo < h[2] < hi]
                if not hits or hits[0][1]:
                    continue
                h = hits[0]
                found, pos, used = self._line_at(h[2]), h[3], n
                later = [x[2] for x in headers if x[2] > h[2]]
                end = min(later) if later else len(self.source_text)
                break
            dotted = ".".join(map(str, prefix))
            hits = [h for h in headers if h[0] == dotted]
            if not hits:
                continue
            pick = 0
            after = tokens[n] if n < len(tokens) else None
            if hits[0][1] and isinstance(after, int):
                pick = after
                n += 1
            if pick >= len(hits):
                continue
            h = hits[pick]
            found, pos, used = self._line_at(h[2]), h[3], n
            later = [x[2] for x in headers if x[2] > h[2]]
            end = min(later) if later else len(self.source_text)
            break
        if found is None:  # top-level keys live before the first header
            end = min([h[2] for h in headers] or [len(self.source_text)])
        for tok in tokens[used:]:
            if isinstance(tok, int):
                span = self._element(pos, end, tok)
                if span is None:
                    break
                pos, end = span  # the rest of the key is inside this element
                found = self._line_at(pos)
            else:
                m = re.compile(rf"(?m)(^|[\s{{,])[\"']?{re.escape(tok)}[\"']?[ \t]*[=.]").search(
                    self.source_text, pos, end
                )
                if m is None:
                    break
                found = self._line_at(m.start() + len(m.group(1)))
                pos = m.end()
        return found

    def _element(self, pos: int, end: int, index: int) -> tuple[int, int] | None:
        """(start, end) of element ``index`` of the array whose '[' follows ``pos``."""
        text = self.source_text
        i = pos
        while i < end and text[i] in " \t":
            i += 1
        if i >= end or text[i] != "[":
            return None
        depth, count, start = 0, 0, None
        while i < end:
            ch = text[i]
            if ch == "#":
                nl = text.find("\n", i)
                i = end if nl < 0 else nl
                continue
            if ch in "\"'":
                close = text.find(ch, i + 1)
                if close < 0:
                    return None
                if start is None and depth == 1:
                    start = i
                i = close + 1
                continue
            if ch in "[{":
                depth += 1
                if depth == 2 and start is None:
                    start = i
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return (start, i) if count == index and start is not None else None
            elif ch == "," and depth == 1:
                if count == index and start is not None:
                    return start, i
                count += 1
                start = None
            elif not ch.isspace() and depth == 1 and start is None:
                start = i
            i += 1
        return None


class TableReader(KeyLocator):
    """Typed getters for rules files, where every key must be given (nothing
    falls back to a default); ``full`` is the dotted key named in errors."""

    def table(self, doc: dict, name: str, full: str | None = None) -> dict:
        full = full or name
        if name not in doc:
            raise self.error(full, f"missing table [{full}]")
        t = doc[name]
        if not isinstance(t, dict):
            raise self.error(full, f"must be a table [{full}]")
        return t

    def require(self, t: dict, key: str, full: str) -> Any:
        if key not in t:
            raise self.error(full, "missing (every key must be given; nothing falls back to a default)")
        return t[key]

    def text(self, t: dict, key: str, full: str) -> str:
        v = self.require(t, key, full)
        if not isinstance(v, str):
            raise self.error(full, f"must be text, got {v!r}")
        return v
