"""One self-contained HTML page: inline CSS, inline SVG, no script and nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from .. import __version__
from ..labels import LANG, t
from ..money import group_digits

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
 margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d2731;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d5dde5}
p.meta{color:#5a6875;margin-top:0}p.warn{background:#fff4e0;border-left:4px solid #d98a2b;padding:.5rem .8rem}
div.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.6rem 0}
th,td{padding:.25rem .7rem;border-bottom:1px solid #e4e9ee;text-align:left;white-space:nowrap}
th{background:#f3f6f9;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
svg.chart{display:block;margin:.6rem 0 1.2rem}svg text{font-size:12px;fill:#1d2731}
svg text.tick{font-size:11px;fill:#5a6875}svg rect.bar{fill:#2f6f9f}svg rect.bar.neg{fill:#a8514c}
svg line.axis{stroke:#1d2731;stroke-width:1}svg line.grid{stroke:#e4e9ee}
svg line.mark{stroke:#d98a2b;stroke-width:1.5;stroke-dasharray:4 3}
@media print{body{margin:0}h2{break-after:avoid}svg,table{break-inside:avoid}}
"""


@dataclass
class Page:
    """A report: a title, a line about what it was made from, then sections of tables and charts."""

    title: str
    meta: str = ""
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{escape(text)}</h2>")

    def note(self, text: str, warn: bool = False) -> None:
        cls = ' class="warn"' if warn else ""
        self.parts.append(f"<p{cls}>{escape(text)}</p>")

    def link_list(self, links: Sequence[tuple[str, str]]) -> None:
        """Links to files beside the report (relative paths: the folder can be moved or copied whole)."""
        items = "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>' for href, text in links)
        self.parts.append(f"<ul>{items}</ul>")

    def chart(self, svg: str) -> None:
        self.parts.append(svg)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> None:
        """A table; the columns at ``numeric`` are right-aligned (money is given as exact text)."""
        num = set(numeric)
        head = "".join(f"<th{' class=num' if i in num else ''}>{escape(str(h))}</th>" for i, h in enumerate(headers))
        body = "".join(
            "<tr>"
            + "".join(f"<td{' class=num' if i in num else ''}>{escape(str(v))}</td>" for i, v in enumerate(r))
            + "</tr>"
            for r in rows
        )
        self.parts.append(f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")

    def money_table(self, rows: Sequence[tuple[str, str]], value_header: str | None = None) -> None:
        """Label / amount rows, amounts as exact decimal text grouped by thousands."""
        self.table([t("amount"), value_header or t("yuan")], [(t(k), group_digits(v)) for k, v in rows], numeric=[1])

    def html(self) -> str:
        lang = "zh-CN" if LANG.get() == "zh" else "en"
        return (
            f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(self.title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(self.title)}</h1><p class=meta>{escape(self.meta)}</p>"
            + "\n".join(self.parts)
            + f"<p class=meta>{escape(t('generated_by'))} {escape(__version__)}</p></body></html>\n"
        )
