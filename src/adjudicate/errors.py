"""The errors a user can mend: bad input files and bad policy files, exit status 2 (cli.common.errors).

Their own module, free of pyarrow, so that any module can raise them and the CLI can catch
them without loading the reading machinery."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: always names the file and, where it applies, the column and row."""

    def __init__(self, message: str, file: str | Path | None = None, column: str | None = None, row: int | None = None):
        self.message, self.file, self.column, self.row = message, file, column, row
        where = []
        if file is not None:
            where.append(f"file {file}")
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}" + (f" (line {row + 2})" if str(file).lower().endswith(".csv") else ""))
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class PolicyError(Exception):
    """A malformed policy file: names the file, the key and (where found) its line."""

    def __init__(self, message: str, file: str | Path | None = None, key: str | None = None, line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = [str(file)] if file else []
        if line:
            where.append(f"line {line}")
        if key:
            where.append(f"key '{key}'")
        super().__init__(f"policy {', '.join(where)}: {message}" if where else message)
