"""What the readers of spreadsheet and data files (.xlsx, .jsonl, .parquet) share, so that a
row reads the same whatever the file's format: the header matched as CSV's
(`batch.io.columns.match_headers`, the same missing-column message), each record's cells
turned into a `Row` by the CSV reader's own row maker (blank rows, the admin center's
"Example:" row, cells neutralised for Excel), the same cell problems (a control character, a
cell longer than `CELL_CHARS`), the file's SHA-256 for resume, and retry.csv.

Numbering: `Row.number` is the 1-based number of the data record, every record counted
(blank ones too), exactly as for CSV, so the journal, results.csv's `row`, progress and
resume see the same contiguous numbers whatever the format. Where the user finds the row
is results.csv's `line` (`OutputDialect.line`): the spreadsheet's row for .xlsx (row + 1, or
+ 2 under the admin center's version row), the line for .jsonl and the record for .parquet
(`header_lines` 0: no line stands above the first record).

retry.csv of such an input is a CSV file (UTF-8 with a byte order mark, like results.csv):
the input's header, then the failing records' cells as they were read (text), which
entra-batch reads back like any CSV file, so fixing it and running it again finishes the job.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from batch.errors import InputFileError
from batch.io.columns import ColumnSet, HeaderMatch, match_headers
from batch.io.csvio import Row, Scan, _row_maker
from batch.io.dialect import OutputDialect
from batch.io.header import effective_width, expected_columns, missing_message
from batch.io.opening import open_input
from batch.io.quoting import neutralise, shown
from batch.io.records import CELL_CHARS, CONTROL

_BLOCK = 1 << 20
VERSION_CELL = "version:v1.0"  # the admin center's first row, as retry.csv writes it back

# (number, fields, problem) of one data record, as a format's reader yields them.
Record = tuple[int, list[str], str | None]


def matched_header(path: Path, headers: list[str], columns: ColumnSet, *, where: str) -> HeaderMatch:
    """The header matched against `columns`, or `InputFileError` as `open_csv` raises it."""
    if not any(h.strip() for h in headers):
        raise InputFileError(path, f"the header ({where}) is empty; expected the columns {expected_columns(columns)}")
    match = match_headers(headers, columns)
    if match.missing:
        raise InputFileError(path, missing_message(match, headers, columns))
    return match


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes (what resume and retry.csv check the file against)."""
    digest = hashlib.sha256()
    with open_input(path) as raw:
        for block in iter(lambda: raw.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class TabularSource:
    """An input file of a format other than CSV, with `CsvSource`'s interface
    (`batch.io.sources.InputSource`). A format's subclass gives `_records()`."""

    kind = "table"

    def __init__(self, path: Path, headers: list[str], match: HeaderMatch, *, header_lines: int,
                 portal_template: bool = False) -> None:
        self.path = path
        self.headers = headers
        self.match = match
        self.header_lines = header_lines
        self.portal_template = portal_template

    def _records(self) -> Iterator[Record]:
        raise NotImplementedError

    @property
    def dialect(self) -> OutputDialect:
        """Results in CSV with a comma; `line` = row + the lines above the first record."""
        return OutputDialect(",", self.header_lines)

    def describe(self) -> str:
        """How `validate`'s last line names the file's format."""
        return self.kind

    def rows(self) -> Iterator[Row]:
        """The data records as `Row`s, in file order (numbering: module docstring)."""
        width = effective_width(self.headers)
        make = _row_maker(self.match.by_index, width)
        for number, fields, problem in self._records():
            if len(fields) < width:  # a spreadsheet row stops at its last filled cell
                fields = fields + [""] * (width - len(fields))
            row = make(number, fields)
            problem = "; ".join(p for p in (problem, self._cell_problems(fields), row.problem) if p) or None
            if problem != row.problem:
                row = Row(row.number, row.cells, problem=problem, example=row.example, blank=False)
            yield row

    def scan(self) -> Scan:
        """The file's SHA-256 and its number of data records (read whole, once)."""
        sha256 = file_sha256(self.path)
        return Scan(records=sum(1 for _ in self._records()), sha256=sha256)

    def raw_records(self, wanted: Iterable[int], *, sha256: str | None = None) -> Iterator[str]:
        """retry.csv's text: the head (the version row when the input had one, the header),
        then the cells of each record whose number is in `wanted` (ascending), as CSV lines,
        neutralised for spreadsheets (`batch.io.quoting`).
        With `sha256`, `InputFileError` before anything is given if the file changed."""
        if sha256 is not None and file_sha256(self.path) != sha256:
            raise InputFileError(self.path, "changed since the run read it")
        if self.portal_template:
            yield _csv_line([VERSION_CELL])
        yield _csv_line(self.headers)
        numbers = iter(wanted)
        next_number = next(numbers, None)
        for number, fields, _ in self._records():
            while next_number is not None and next_number < number:
                next_number = next(numbers, None)
            if next_number is None:
                return
            if next_number == number:
                # A CSV file the administrator opens in Excel to fix: a formula-looking cell
                # gets one quote more, as in results.csv (the input reader takes it off again).
                yield _csv_line(map(neutralise, fields))

    def _label(self, index: int) -> str:
        name = self.match.by_index.get(index) or (
            shown(self.headers[index], 60) if index < len(self.headers) else "")
        return f"{name} (column {index + 1})" if name else f"column {index + 1}"

    def _cell_problems(self, fields: list[str]) -> str | None:
        """A control character or an over-long cell, named as the CSV reader names them. One
        search over the joined cells (tab is not a control character here) keeps it cheap."""
        joined = "\t".join(fields)
        if len(joined) <= CELL_CHARS and not CONTROL.search(joined):
            return None
        problems = []
        for index, field in enumerate(fields):
            found = CONTROL.search(field)
            if found:
                problems.append(f"{self._label(index)} holds the control character {shown(found.group())} at "
                                f"character {found.start() + 1}; remove it (control characters are never sent)")
        problems += [f"{self._label(index)} is {len(field):,} characters long, more than the {CELL_CHARS:,} a "
                     "cell may hold" for index, field in enumerate(fields) if len(field) > CELL_CHARS]
        return "; ".join(problems) or None


def _csv_line(fields: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(list(fields))
    return out.getvalue()
