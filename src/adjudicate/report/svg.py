"""Charts as inline SVG text: no script, no font or file fetched, so a report opens on any intranet.

Each chart is an ``<svg class="chart">`` with a ``<title>``; its marks carry a
class (``bar``, ``line``, ``mark``) so a browser test can count them. Values
are floats for drawing only: every figure printed is the exact decimal text
given by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2f6f9f", "#d98a2b", "#4f9a5a", "#a8514c", "#7a65a8", "#8a8a8a")
WIDTH = 760


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _svg(title: str, height: int, body: list[str]) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" style="max-width:{WIDTH}px" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


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
    x = lambda v: left + (v - lo) / span * plot  # noqa: E731
    body = []
    for i, (label, v, text) in enumerate(items):
        y = top + i * row
        x0, x1 = sorted((x(0.0), x(v)))
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="label">{escape(label)}</text>')
        body.append(
            f'<rect class="bar{" neg" if v < 0 else ""}" x="{_fmt(x0)}" y="{y + 3}" '
            f'width="{_fmt(max(x1 - x0, 0.5))}" height="{row - 6}"><title>{escape(label)}: '
            f"{escape(text)}</title></rect>"
        )
        body.append(f'<text x="{_fmt(x1 + 4)}" y="{y + 15}" class="value">{escape(text)}</text>')
    if lo < 0 < hi:
        body.append(
            f'<line class="axis" x1="{_fmt(x(0))}" x2="{_fmt(x(0))}" y1="{top}" y2="{top + row * len(items)}"/>'
        )
    for m, label in marks:
        body.append(
            f'<line class="mark" x1="{_fmt(x(m))}" x2="{_fmt(x(m))}" y1="{top}" y2="{top + row * len(items) + 4}"/>'
        )
        body.append(f'<text x="{_fmt(x(m))}" y="{height - 6}" text-anchor="middle" class="tick">{escape(label)}</text>')
    return _svg(title, height, body)


def columns(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Stacked columns: one per category (e.g. a month), one coloured part per series (e.g. a fund)."""
    top, bottom, left, legend = 12, 40, 70, 24
    height = 300
    plot_h = height - top - bottom - legend
    n = max(1, len(categories))
    plot_w = WIDTH - left - 10
    step = plot_w / n
    totals = [sum(max(s[i], 0.0) for s in series.values()) for i in range(len(categories))]
    hi = max(totals + [1.0])
    body = [f'<line class="axis" x1="{left}" x2="{WIDTH - 10}" y1="{top + plot_h}" y2="{top + plot_h}"/>']
    for frac in (0.5, 1.0):
        y = top + plot_h * (1 - frac)
        body.append(f'<text x="{left - 4}" y="{_fmt(y + 4)}" text-anchor="end" class="tick">{_short(hi * frac)}</text>')
        body.append(f'<line class="grid" x1="{left}" x2="{WIDTH - 10}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>')
    for i, cat in enumerate(categories):
        base = top + plot_h
        for k, (name, vals) in enumerate(series.items()):
            h = max(vals[i], 0.0) / hi * plot_h
            base -= h
            colour = PALETTE[k % len(PALETTE)]
            body.append(
                f'<rect class="bar" style="fill:{colour}" x="{_fmt(left + i * step + step * 0.15)}" '
                f'y="{_fmt(base)}" width="{_fmt(step * 0.7)}" height="{_fmt(h)}">'
                f"<title>{escape(cat)} · {escape(name)}: {vals[i]:,.2f}</title></rect>"
            )
        if n <= 24 or i % max(1, n // 12) == 0:
            body.append(
                f'<text x="{_fmt(left + (i + 0.5) * step)}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'class="tick">{escape(cat)}</text>'
            )
    body += _legend(list(series), height - 10)
    return _svg(title, height, body)


def lines(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """One polyline per series over the categories (e.g. each fund's balance by month)."""
    top, bottom, left, legend = 12, 40, 80, 24
    height = 280
    plot_h = height - top - bottom - legend
    n = max(1, len(categories))
    plot_w = WIDTH - left - 20
    vals = [v for s in series.values() for v in s] + [0.0]
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    x = lambda i: left + (i + 0.5) * plot_w / n  # noqa: E731
    y = lambda v: top + plot_h * (1 - (v - lo) / span)  # noqa: E731
    body = [f'<line class="axis" x1="{left}" x2="{WIDTH - 20}" y1="{_fmt(y(0))}" y2="{_fmt(y(0))}"/>']
    for v in (lo, hi):
        body.append(f'<text x="{left - 4}" y="{_fmt(y(v) + 4)}" text-anchor="end" class="tick">{_short(v)}</text>')
    for k, (name, s) in enumerate(series.items()):
        pts = " ".join(f"{_fmt(x(i))},{_fmt(y(v))}" for i, v in enumerate(s))
        body.append(
            f'<polyline class="line" fill="none" stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="2" '
            f'points="{pts}"><title>{escape(name)}</title></polyline>'
        )
    for i, cat in enumerate(categories):
        if n <= 24 or i % max(1, n // 12) == 0:
            body.append(
                f'<text x="{_fmt(x(i))}" y="{top + plot_h + 14}" text-anchor="middle" class="tick">{escape(cat)}</text>'
            )
    body += _legend(list(series), height - 10)
    return _svg(title, height, body)


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
