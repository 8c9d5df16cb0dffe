"""An output folder as an Excel workbook, for finance staff (``adjudicate export DIR --xlsx FILE``).

One sheet for summary.json (flattened to key / value rows), then one sheet
per Parquet table of the folder (and of its sub-folders, e.g. readjudicate's
``current/``), in name order. Amounts (``decimal(…, 2)``) are numbers shown
with two decimals and thousands separators; other decimals keep their
scale; dates are Excel dates. A decimal with two places becomes the nearest
double, which Excel shows back exactly to the fen (every amount the engine
writes has at most 15 significant digits).

A table longer than an Excel sheet (1,048,576 rows, one of them the header)
continues on sheets named ``lines (2)``, ``lines (3)``, …; with
``split=False`` it is refused instead. The workbook is written beside the
target and renamed into place, so a failed export leaves no half file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import InputError

#: Excel's rows per sheet, the header included.
EXCEL_ROWS = 1_048_576
SHEET_NAME_MAX = 31
_MONEY_TEXT = re.compile(r"^-?\d+\.\d{2}$")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


#: Sheets a reader looks at first come first; the others follow in name order.
FIRST = ("settlements", "compare", "adjustments", "provider_settlement", "funds", "funds_monthly", "ledger")


def tables_of(folder: Path) -> list[Path]:
    """The Parquet tables of an output folder and of its sub-folders, the main ones first."""
    found = [
        p
        for p in Path(folder).rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    rank = {name: i for i, name in enumerate(FIRST)}
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), rank.get(p.stem, len(rank)), str(p)))


def _flatten(value, key: str = "") -> Iterable[tuple[str, object]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{key}[{i}]")
    elif isinstance(value, list):
        yield key, ", ".join(map(str, value))
    else:
        yield key, value


def _sheet_name(stem: str, used: set[str]) -> str:
    base = _BAD_SHEET_CHARS.sub("_", stem)[:SHEET_NAME_MAX]
    name, k = base, 2
    while name.lower() in used:
        suffix = f" ({k})"
        name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
        k += 1
    used.add(name.lower())
    return name


def export_xlsx(
    folder: Path,
    target: Path,
    split: bool = True,
    tables: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
    rows_per_sheet: int | None = None,
) -> dict[str, int]:
    """Write ``folder`` as a workbook at ``target``; return the data rows written per sheet.

    ``tables`` limits the export to those table names (file stems, e.g.
    ``settlements``, or ``current/settlements``); empty means every table.
    ``rows_per_sheet`` is Excel's limit below the header by default.
    """
    import xlsxwriter

    folder = Path(folder)
    if not (folder / "summary.json").is_file():
        raise InputError("is not an output folder of adjudicate (no summary.json)", folder)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot be read as JSON: {e}", folder / "summary.json") from None
    found = {p.relative_to(folder).with_suffix("").as_posix(): p for p in tables_of(folder)}
    wanted = list(tables) or list(found)
    unknown = [t for t in wanted if t not in found]
    if unknown:
        raise InputError(f"no table {unknown[0]!r} in this output folder; it holds " + ", ".join(found), folder)
    limit = rows_per_sheet or EXCEL_ROWS - 1
    if not split:
        for name in wanted:
            n = pq.read_metadata(found[name]).num_rows
            if n > limit:
                raise InputError(
                    f"table {name} has {n:,} rows; an Excel sheet holds at most {limit:,} below its "
                    f"header. Export without --no-split to continue it on sheets '{name} (2)', …, "
                    "or leave the table out with --table",
                    found[name],
                )
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", suffix=".xlsx", dir=target.parent)
    os.close(fd)
    written: dict[str, int] = {}
    try:
        wb = xlsxwriter.Workbook(
            tmp_name,
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        wb.set_properties({"title": f"adjudicate output {folder.name}", "author": "adjudicate"})
        fmt = _Formats(wb)
        used: set[str] = set()
        _summary_sheet(wb, fmt, summary, _sheet_name("summary", used))
        written["summary"] = sum(1 for _ in _flatten(summary))
        for name in wanted:
            if progress:
                progress(name)
            table = pq.read_table(found[name])
            for sheet, rows in _table_sheets(wb, fmt, table, name, used, limit):
                written[sheet] = rows
        wb.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes it private; a workbook is an ordinary file
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return written


class _Formats:
    def __init__(self, wb):
        self.header = wb.add_format({"bold": True, "bg_color": "#F3F6F9", "bottom": 1})
        self.date = wb.add_format({"num_format": "yyyy-mm-dd"})
        self.text = wb.add_format({})
        self._decimals: dict[int, object] = {}
        self.wb = wb

    def decimals(self, scale: int):
        if scale not in self._decimals:
            pattern = "#,##0" + ("." + "0" * scale if scale > 0 else "")
            self._decimals[scale] = self.wb.add_format({"num_format": pattern})
        return self._decimals[scale]


def _summary_sheet(wb, fmt: _Formats, summary: dict, name: str) -> None:
    ws = wb.add_worksheet(name)
    ws.write_row(0, 0, ["key", "value"], fmt.header)
    ws.set_column(0, 0, 48)
    ws.set_column(1, 1, 22)
    for r, (k, v) in enumerate(_flatten(summary), start=1):
        ws.write_string(r, 0, k)
        if isinstance(v, bool):
            ws.write_boolean(r, 1, v)
        elif isinstance(v, (int, float)):
            ws.write_number(r, 1, v)
        elif isinstance(v, str) and _MONEY_TEXT.match(v):
            ws.write_number(r, 1, float(Decimal(v)), fmt.decimals(2))
        elif v is None:
            ws.write_blank(r, 1, None)
        else:
            ws.write_string(r, 1, str(v))


def _column(fmt: _Formats, arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, object, int]:
    """(values as Excel takes them, column format, width) for one column.

    Decimals become the nearest double (Excel's numbers; shown back exactly to
    their scale), dictionary and other types become text; converted in Arrow,
    whole columns at a time.
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if pa.types.is_decimal(t):
        return pc.cast(arr, pa.float64()), fmt.decimals(t.scale), 16
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return arr, None, 12
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return arr, fmt.date, 12
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        arr = pc.cast(arr, pa.string())
    return arr, None, 18


def _table_sheets(wb, fmt: _Formats, table: pa.Table, name: str, used: set[str], limit: int):
    """Write one table on as many sheets as it needs; yield (sheet name, data rows)."""
    names = table.column_names
    columns = [_column(fmt, table.column(i)) for i in range(table.num_columns)]
    table = pa.Table.from_arrays([c[0] for c in columns], names=[f"c{i}" for i in range(len(columns))])
    start, part = 0, 1
    while True:
        stop = min(start + limit, table.num_rows)
        sheet = _sheet_name(name.replace("/", ".") if part == 1 else f"{name.replace('/', '.')} ({part})", used)
        ws = wb.add_worksheet(sheet)
        ws.write_row(0, 0, names, fmt.header)
        ws.freeze_panes(1, 0)
        for c, (_, f, width) in enumerate(columns):
            # cells written without a format take their column's (XlsxWriter writes it on each cell)
            ws.set_column(c, c, max(width, len(names[c]) + 2), f)
        r = 1
        for batch in table.slice(start, stop - start).to_batches(max_chunksize=65_536):
            for row in zip(*(col.to_pylist() for col in batch.columns)):
                ws.write_row(r, 0, row)
                r += 1
        yield sheet, stop - start
        if stop >= table.num_rows:
            return
        start, part = stop, part + 1
