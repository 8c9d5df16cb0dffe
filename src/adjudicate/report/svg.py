"""Charts as inline SVG text: no script, no font or file fetched, so a report opens on any intranet.

Each chart is an ``<svg class="chart">`` with a ``<title>``; its marks carry a
class (``bar``, ``line``, ``mark``) so a browser test can count them. Values
are floats for drawing only: every figure printed is the exact decimal text
given by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: One series of a chart: a value per category (a list, or a numpy array of them).
Values = Union[Sequence[float], "NDArray[np.floating]"]

PALETTE = ("#2f6f9f", "#d98a2b", "#4f9a5a", "#a8514c", "#7a65a8", "#8a8a8a")
WIDTH = 760


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _num(v: float) -> str:
    """A coordinate: a whole layout number as it is, a computed one to 0.1 px."""
    return str(v) if isinstance(v, int) else _fmt(v)


def _line(cls: str, x1: float, x2: float, y1: float, y2: float) -> str:
    return f'<line class="{cls}" x1="{_num(x1)}" x2="{_num(x2)}" y1="{_num(y1)}" y2="{_num(y2)}"/>'


def _text(x: float, y: float, text: str, cls: str, anchor: str | None = None) -> str:
    align = f' text-anchor="{anchor}"' if anchor else ""
    return f'<text x="{_num(x)}" y="{_num(y)}"{align} class="{cls}">{escape(text)}</text>'


def _svg(title: str, height: int, body: list[str]) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" style="max-width:{WIDTH}px" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


@dataclass(frozen=True)
class _Frame:
    """The frame of a chart over categories (columns, lines): the plot area, the value axis and its
    ticks, the category ticks below and the legend. The chart draws its marks inside ``plot_h`` × ``plot_w``."""

    height: int
    left: int
    right: int
    count: int  # categories
    top: int = 12
    bottom: int = 40
    legend: int = 24

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom - self.legend

    @property
    def plot_w(self) -> int:
        return WIDTH - self.left - self.right

    @property
    def step(self) -> float:
        """The width of one category's slot."""
        return self.plot_w / max(1, self.count)

    def x(self, i: int) -> float:
        """The middle of category ``i``'s slot."""
        return self.left + (i + 0.5) * self.step

    def axis(self, y: float) -> str:
        return _line("axis", self.left, WIDTH - self.right, y, y)

    def value_tick(self, y: float, value: float, grid: bool = False) -> list[str]:
        """The value's label left of the plot at height ``y`` (and a grid line across it)."""
        out = [_text(self.left - 4, y + 4, _short(value), "tick", "end")]
        if grid:
            out.append(_line("grid", self.left, WIDTH - self.right, y, y))
        return out

    def category_ticks(self, categories: Sequence[str]) -> list[str]:
        """A label under each category; about twelve when there are more than 24."""
        n = max(1, len(categories))
        y = self.top + self.plot_h + 14
        return [
            _text(self.x(i), y, cat, "tick", "middle")
            for i, cat in enumerate(categories)
            if n <= 24 or i % max(1, n // 12) == 0
        ]

    def svg(self, title: str, body: list[str], names: list[str]) -> str:
        """The chart: ``body`` with the legend of the series ``names`` below."""
        return _svg(title, self.height, body + _legend(names, self.height - 10))


def bars(
    title: str,
    items: Sequence[tuple[str, float, str]],
    marks: Sequence[tuple[float, str]] = (),
    clip: float | None = None,
) -> str:
    """Horizontal bars, one per (label, value, text shown); negative values extend left of zero.

    ``marks`` are vertical reference lines (value, label), e.g. a corridor's edges;
    bars longer than ``clip`` are drawn to it (their text says the value).
    """
    if clip is not None:
        items = [(label, min(v, clip), text) for label, v, text in items]
    row, top, left, right = 22, 8, 230, 120
    height = top + row * max(1, len(items)) + (24 if marks else 8)
    values = [v for _, v, _ in items] + [m for m, _ in marks] + [0.0]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    plot = WIDTH - left - right
    bottom = top + row * len(items)

    def x(v: float) -> float:
        return left + (v - lo) / span * plot

    body = []
    for i, (label, v, text) in enumerate(items):
        y = top + i * row
        x0, x1 = sorted((x(0.0), x(v)))
        body.append(_text(left - 6, y + 15, label, "label", "end"))
        body.append(
            f'<rect class="bar{" neg" if v < 0 else ""}" x="{_fmt(x0)}" y="{y + 3}" '
            f'width="{_fmt(max(x1 - x0, 0.5))}" height="{row - 6}"><title>{escape(label)}: '
            f"{escape(text)}</title></rect>"
        )
        body.append(_text(x1 + 4, y + 15, text, "value"))
    if lo < 0 < hi:
        body.append(_line("axis", x(0), x(0), top, bottom))
    for m, label in marks:
        body.append(_line("mark", x(m), x(m), top, bottom + 4))
        body.append(_text(x(m), height - 6, label, "tick", "middle"))
    return _svg(title, height, body)


def columns(title: str, categories: Sequence[str], series: Mapping[str, Values]) -> str:
    """Stacked columns: one per category (e.g. a month), one coloured part per series (e.g. a fund)."""
    f = _Frame(height=300, left=70, right=10, count=len(categories))
    totals = [sum(max(s[i], 0.0) for s in series.values()) for i in range(len(categories))]
    hi = max(totals + [1.0])
    floor = f.top + f.plot_h
    body = [f.axis(floor)]
    for frac in (0.5, 1.0):
        body += f.value_tick(f.top + f.plot_h * (1 - frac), hi * frac, grid=True)
    for i, cat in enumerate(categories):
        base: float = floor
        for k, (name, vals) in enumerate(series.items()):
            h = max(vals[i], 0.0) / hi * f.plot_h
            base -= h
            colour = PALETTE[k % len(PALETTE)]
            body.append(
                f'<rect class="bar" style="fill:{colour}" x="{_fmt(f.left + i * f.step + f.step * 0.15)}" '
                f'y="{_fmt(base)}" width="{_fmt(f.step * 0.7)}" height="{_fmt(h)}">'
                f"<title>{escape(cat)} · {escape(name)}: {vals[i]:,.2f}</title></rect>"
            )
    body += f.category_ticks(categories)
    return f.svg(title, body, list(series))


def lines(title: str, categories: Sequence[str], series: Mapping[str, Values]) -> str:
    """One polyline per series over the categories (e.g. each fund's balance by month)."""
    f = _Frame(height=280, left=80, right=20, count=len(categories))
    vals = [v for s in series.values() for v in s] + [0.0]
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return f.top + f.plot_h * (1 - (v - lo) / span)

    body = [f.axis(y(0))]
    for v in (lo, hi):
        body += f.value_tick(y(v), v)
    for k, (name, s) in enumerate(series.items()):
        pts = " ".join(f"{_fmt(f.x(i))},{_fmt(y(v))}" for i, v in enumerate(s))
        body.append(
            f'<polyline class="line" fill="none" stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="2" '
            f'points="{pts}"><title>{escape(name)}</title></polyline>'
        )
    body += f.category_ticks(categories)
    return f.svg(title, body, list(series))


def _legend(names: list[str], y: int) -> list[str]:
    out, x = [], 70
    for k, name in enumerate(names):
        out.append(f'<rect class="key" x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{y}" class="tick">{escape(name)}</text>')
        x += 24 + 8 * len(name) + 6 * sum(ord(ch) > 0x2E80 for ch in name)
    return out


def _short(v: float) -> str:
    """An axis tick: 1.2M, 350k, 42."""
    a = abs(v)
    if a >= 1e8:
        return f"{v / 1e6:.0f}M"
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"
