"""Terminal tables that never cut what a user must read or type.

Policy names and keys, ids, item codes, dates and money are kept whole at
any width and when piped: such columns never wrap (a value longer than the
whole screen folds onto the next line, it is never cut), and when the
terminal is narrower than the table's whole columns the table is printed
wider and the terminal wraps it. Columns of prose (titles, notes) wrap.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

#: A wrapping column keeps at least this many cells (or its longest word).
WRAP_MIN = 12


def show(console: Console, table: Table, wrap: Iterable[int] = ()) -> None:
    """Print ``table``: every column whole except those at the indexes in ``wrap``."""
    wrap = set(wrap)
    for i, col in enumerate(table.columns):
        cells = [str(c) for c in col.cells]
        longest = max([cell_len(str(col.header))] + [cell_len(c) for c in cells])
        if i in wrap:
            word = max([0] + [cell_len(w) for c in cells for w in c.split()])
            col.min_width = min(longest, max(WRAP_MIN, word))
        else:
            col.no_wrap, col.overflow, col.min_width = True, "fold", longest
    # each column's minimum, its padding (one cell each side) and the borders between
    need = sum(c.min_width or 0 for c in table.columns) + 3 * len(table.columns) + 1
    # piped: no screen to fit, so nothing wraps (lines stay whole for grep and diff)
    measured = Measurement.get(console, console.options.update_width(10_000), table)
    need = max(need, measured.maximum if not console.is_terminal else measured.minimum)
    width = console.width
    if need <= width:
        console.print(table)
        return
    console.width = need  # wider than the terminal: the terminal wraps the lines, nothing is cut
    try:
        console.print(table, crop=False)
    finally:
        console.width = width
