"""Input files of every format behind one interface: `InputSource` (what a run and `validate`
need of an input), and `open_input_file`, which picks the reader by the file's suffix (any
case): `.xlsx` (`batch.io.xlsx`), `.jsonl` and `.ndjson` (`batch.io.jsonl`), `.parquet`
(`batch.io.parquet`), anything else CSV (`batch.io.csvio`, as always). All give the same
`Row`s, numbered the same way (`batch.io.tabular`), so validation, results.csv, retry.csv,
the journal and resume do not know which format was read.

`--encoding` says how a CSV file's text is encoded; the other formats carry their own
(an .xlsx is XML in UTF-8, JSON Lines is UTF-8, Parquet's strings UTF-8), so it is refused
with them (`ConfigError`, exit 2) rather than ignored: an administrator who gives it expects
it to matter. `--sheet` belongs to .xlsx and is refused with the others for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from batch.errors import ConfigError
from batch.io.columns import ColumnSet, HeaderMatch
from batch.io.csvio import Row, Scan, open_csv
from batch.io.dialect import OutputDialect

FORMATS = {".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class InputSource(Protocol):
    """An opened input file, checked (header matched) and ready to be streamed."""

    path: Path
    headers: list[str]
    match: HeaderMatch
    portal_template: bool

    def rows(self) -> Iterator[Row]: ...

    @property
    def dialect(self) -> OutputDialect: ...

    def raw_records(self, wanted: Iterable[int], *, sha256: str | None = None) -> Iterator[str]: ...

    def scan(self) -> Scan: ...


def input_format(path: Path) -> str:
    """'csv', 'xlsx', 'jsonl' or 'parquet', by the suffix (any case)."""
    return FORMATS.get(Path(path).suffix.lower(), "csv")


def open_input_file(path: Path, columns: ColumnSet, *, encoding: str | None = None,
                    sheet: str | None = None) -> InputSource:
    """Open `path` for `columns`' verb with the reader of its format (module docstring)."""
    path = Path(path)
    kind = input_format(path)
    if kind != "csv" and encoding:
        raise ConfigError(f"--encoding is for CSV files; {path.name} is {kind}, whose text is UTF-8: leave "
                          "--encoding out")
    if kind != "xlsx" and sheet:
        raise ConfigError(f"--sheet is for .xlsx workbooks; {path.name} is {kind}: leave --sheet out")
    if kind == "xlsx":
        from batch.io.xlsx import open_xlsx
        return open_xlsx(path, columns, sheet=sheet)
    if kind == "jsonl":
        from batch.io.jsonl import open_jsonl
        return open_jsonl(path, columns)
    if kind == "parquet":
        from batch.io.parquet import open_parquet
        return open_parquet(path, columns)
    return open_csv(path, columns, encoding=encoding)


def describe_source(source: InputSource) -> str:
    """How `validate`'s last line names the file's format and reading."""
    describe = getattr(source, "describe", None)
    if callable(describe):
        return str(describe())
    template = ", admin center template" if source.portal_template else ""
    return f"{getattr(source, 'encoding', '')}, delimiter {getattr(source, 'delimiter', ',')!r}{template}"


__all__ = ["FORMATS", "InputSource", "describe_source", "input_format", "open_input_file"]
