"""Write docs/commands.md from the commands' own --help: python docs/make_commands.py

The shared options and the introduction are written here; each command's
text, usage, options and examples come from its Click definition, so the
reference says what --help says.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import click

from adjudicate.cli import main

INTRO = """# Command reference

Every command of `adjudicate`, its options and its examples; `adjudicate COMMAND --help`
prints the same (this page is written from it by `python docs/make_commands.py`). Exit
status: 0 success, 2 usage or input error (one paragraph naming the file, column and row;
nothing written), 1 internal error (a bug: please report it with the traceback). Progress
bars appear only on a terminal.

## Options shared by the commands

| option | on | meaning |
|---|---|---|
| `--inputs DIR` | run, compare, readjudicate, explain | a folder holding the four tables (files named `claims*`, `members*`, `providers*`, `catalogue*`), in place of `--claims`, `--members`, `--providers`, `--catalogue`; an explicit option wins for its table |
| `--claims`, `--members`, `--providers`, `--catalogue` | run, compare, readjudicate, explain | a file or folder per table (repeatable; the files of a table are read as one) |
| `--encoding NAME` | every command that reads inputs | text encoding of CSV inputs: `auto` (UTF-8 with or without BOM; a file in another encoding is refused with a message naming it), `gb18030`, `gbk`, … (see [data-dictionary.md](data-dictionary.md)) |
| `--lang en\\|zh` | run, demo, compare, readjudicate, reconcile, explain | language of the terminal tables' labels and of `report.html` |
| `--log-file FILE` | every command that works on data | appends JSON lines: `start` (argv), one `stage` per stage with `seconds`, `summary` with the counts, `end` with `exit_status` and `seconds` |
| `--out DIR` | commands that write a folder | written atomically (a temporary folder renamed into place at the end); it always holds `summary.json` and `report.html` |
| `-q`, `--quiet` | | no progress and no tables |
| `--threads N` | run, compare, readjudicate, sweep, audit, prepare | threads the whole command may use (default: all cores): reading, encoding, kernel and writing, Arrow's pools included; `1` keeps it on one core; the result does not depend on it ([threads.md](threads.md)) |

Terminal tables never cut policy names, keys, ids, item codes, dates or money: at any width,
and when piped, those columns are kept whole (the table grows wider than the terminal if it
must); prose columns wrap. The tables and columns of every file are in
[data-dictionary.md](data-dictionary.md).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def command_section(name: str, cmd: click.Command, parent: click.Context) -> list[str]:
    ctx = click.Context(cmd, info_name=name, parent=parent)
    out = [f"## `adjudicate {name}`", ""]
    text, examples = [], []
    for para in inspect.cleandoc(cmd.help or "").split("\n\n"):
        lines = para.strip("\n").splitlines()
        if lines and lines[0].strip() == "\b":
            examples.append(textwrap.dedent("\n".join(lines[1:])))
        elif lines:
            text.append(" ".join(line.strip() for line in lines))
    for t in text:
        out += [t, ""]
    out += ["```", f"adjudicate {name} " + " ".join(cmd.collect_usage_pieces(ctx)), "```", ""]
    if isinstance(cmd, click.Group):
        for sub in cmd.list_commands(ctx):
            out.append(f"- `adjudicate {name} {sub}`: {cmd.get_command(ctx, sub).get_short_help_str(200)}")
        out.append("")
    rows = []
    for p in cmd.get_params(ctx):
        record = p.get_help_record(ctx)
        if not isinstance(p, click.Option) or record is None or "--help" in record[0]:
            continue
        opt, h = record
        rows.append(f"| `{_cell(opt)}` | {_cell(h)} |")
    if rows:
        out += ["| option | meaning |", "|---|---|", *rows, ""]
    if examples:
        out += ["```", *(e.rstrip() for e in examples), "```", ""]
    return out


def render() -> str:
    ctx = click.Context(main, info_name="adjudicate")
    out = [INTRO]
    for name in main.list_commands(ctx):
        out += command_section(name, main.get_command(ctx, name), ctx)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    (Path(__file__).parent / "commands.md").write_text(render(), encoding="utf-8")
