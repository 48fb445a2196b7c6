"""The dialect of the files a run writes for people (results.csv, passwords.csv, plan.csv,
retry.csv): the input file's delimiter, so that Excel in a semicolon locale opens them in
columns as it opened the input, and always UTF-8 with a byte order mark.

Why a BOM always, whatever the input's encoding: Excel reads a CSV file without one in the
machine's ANSI code page, so `helène` written as plain UTF-8 shows as `helÃ¨ne`; with the
mark it reads UTF-8 in every locale. Why not the input's own encoding (Windows-1252 through
`--encoding`, UTF-16): these files also carry what Graph says (error messages, display names
from the directory), which a single-byte code page cannot always hold, and passwords.csv and
plan.csv are appended while the run goes, before their whole text is known; and Excel opens a
UTF-16 file as tab-separated "Unicode text" whatever its delimiter. UTF-8 holds every
character, and entra-batch reads its own files back (a BOM wins over `--encoding`), so
retry.csv goes back in unchanged. Scripts read them with `utf-8-sig` (Python), or any reader
that skips a BOM (pandas, PowerShell's Import-Csv do).

`header_lines` is how many lines come before the first data record (the header, and the
admin center's `version:v1.0` line when the input has one): data row `row` is spreadsheet
line `row + header_lines` (results.csv's `line`), the row number Excel shows for it. A
quoted line break inside a cell does not count: Excel keeps such a cell in one row. An input
of another format (`batch.io.tabular`) gives a comma and `header_lines` 1 or 2 for an .xlsx
(`line` is the sheet's row), 0 for JSON Lines and Parquet (`line` is the line, the record).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

ENCODING = "utf-8-sig"  # written with its byte order mark
LINE_END = "\r\n"


@dataclass(frozen=True)
class OutputDialect:
    delimiter: str = ","
    header_lines: int = 1

    def writer(self, handle: TextIO) -> Any:
        """A csv writer for `handle` (opened with `newline=""`) in this dialect."""
        return csv.writer(handle, delimiter=self.delimiter, lineterminator=LINE_END)

    def line(self, row: int) -> int:
        """The spreadsheet line (Excel's row number) of data row `row`."""
        return row + self.header_lines

    def as_meta(self) -> dict[str, Any]:
        return {"delimiter": self.delimiter, "header_lines": self.header_lines}

    @classmethod
    def from_meta(cls, value: object) -> OutputDialect:
        """The dialect a journal remembers; the defaults (comma, one header line) for a run made
        by an earlier version or a value that is not one this version wrote."""
        if not isinstance(value, Mapping):
            return cls()
        delimiter, header_lines = value.get("delimiter"), value.get("header_lines")
        if delimiter not in (",", ";", "\t") or not isinstance(header_lines, int) or header_lines not in (0, 1, 2):
            return cls()
        return cls(delimiter, header_lines)


__all__ = ["ENCODING", "LINE_END", "OutputDialect"]
