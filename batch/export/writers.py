"""Export files, written a page at a time: CSV, JSON Lines, Excel (XLSX) and Parquet.

Every writer takes rows (strings in the writer's column order; a row may run on past them:
the columns only the summary counts) in batches and never holds more than one batch (Parquet: one row group) in memory. It writes to `<file>.partial` and
renames it to the file's name only on `finish()`, so a file under the asked name is always
complete; an interrupted export leaves the `.partial` file and says so.

Formula injection (PRODUCT.md, quality bars): in CSV a cell that starts with `=`, `+`, `-`,
`@`, tab or CR gets a leading `'` (`batch.io.quoting`: the input reader takes it off again, so
the file round-trips). In XLSX every cell is a text cell, never a formula, and such cells
also carry Excel's "quote prefix" style, so the value is shown as it is and stays text
when edited. `raw=True` (`--raw`) writes values untouched. JSON Lines and Parquet are not
opened by spreadsheets and are never altered.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from batch.errors import RunFolderUnsafe
from batch.io.quoting import neutralise
from batch.run.private import create_private

FORMATS = ("csv", "jsonl", "xlsx", "parquet")
STREAMABLE = ("csv", "jsonl")  # the formats `--out -` writes to standard output
_BOOLEAN_COLUMNS = frozenset({"accountEnabled"})
_FORMULA_FIRST = frozenset("'=+-@\t\r")  # a cell `neutralise` may change starts with one of these
XLSX_MAX_ROWS = 1_048_576  # a worksheet's rows, header included; more continue on a new sheet


class ExportWriter(Protocol):
    path: Path

    def write(self, rows: Sequence[Sequence[str]]) -> None: ...

    def finish(self) -> Path: ...

    def abandon(self) -> Path | None: ...


def format_for(path: Path, asked: str | None) -> str:
    """`--format`, or the output file's extension, or csv."""
    if asked:
        return asked
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "xls":
        raise ValueError(f"--out {path}: entra-batch writes Excel's .xlsx format; name the file .xlsx")
    return {"json": "jsonl", "ndjson": "jsonl", "pq": "parquet"}.get(suffix, suffix) \
        if suffix in (*FORMATS, "json", "ndjson", "pq") else "csv"


def open_writer(path: Path, fmt: str, columns: Sequence[str], *, raw: bool = False,
                stream: BinaryIO | None = None) -> ExportWriter:
    """A writer of `fmt` to `path` (through `<path>.partial`), or, given `stream` (`--out -`:
    standard output), straight to the stream (CSV and JSON Lines only)."""
    if stream is not None and fmt not in STREAMABLE:
        raise ValueError(f"--out - writes to standard output only as {' or '.join(STREAMABLE)}; "
                         f"write {fmt} to a file with --out FILE.{fmt}")
    if fmt == "csv":
        return CsvWriter(path, columns, raw=raw, stream=stream)
    if fmt == "jsonl":
        return JsonLinesWriter(path, columns, stream=stream)
    if fmt == "xlsx":
        return XlsxWriter(path, columns, raw=raw)
    if fmt == "parquet":
        return ParquetWriter(path, columns)
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


class _PartialFile:
    """A file written as `<path>.partial` (made with O_EXCL|O_NOFOLLOW and mode 0600: exports
    hold customer data), renamed to `path` once complete. A `.partial` file of ours left by an
    interrupted export is replaced; anything else under that name is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = _create_partial(self.partial)

    def _take_fd(self) -> int:
        fd = self._fd
        assert fd is not None
        self._fd = None
        return fd

    def _commit(self) -> Path:
        os.replace(self.partial, self.path)  # replaces a link at `path`; never writes through it
        return self.path

    def _leftover(self) -> Path | None:
        return self.partial if self.partial.exists() else None


def _create_partial(partial: Path) -> int:
    for _ in range(2):
        try:
            return create_private(partial)
        except FileExistsError:
            found = os.lstat(partial)
            if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid():
                raise RunFolderUnsafe(f"{partial} is there and is not a file of yours (a link, a folder or someone "
                                      "else's file); remove it, or choose another --out") from None
            os.unlink(partial)  # what an interrupted export of ours left
    raise FileExistsError(errno.EEXIST, "made again while being replaced", str(partial))


class _TextFile(_PartialFile):
    """A text `.partial` file, fsynced before it takes its name; or, with `stream`, standard
    output, written as it comes (an interrupted export leaves what was written)."""

    def __init__(self, path: Path, encoding: str, stream: BinaryIO | None) -> None:
        self._stream = stream
        if stream is None:
            super().__init__(path)
            raw: BinaryIO = open(self._take_fd(), "wb", closefd=True)
        else:
            self.path = path
            self.partial = path
            raw = stream
        self._handle = io.TextIOWrapper(raw, encoding=encoding, newline="")

    def finish(self) -> Path:
        self._handle.flush()
        if self._stream is not None:
            self._handle.detach()  # standard output stays open for the caller
            return self.path
        os.fsync(self._handle.fileno())
        self._handle.close()
        return self._commit()

    def abandon(self) -> Path | None:
        if self._stream is not None:
            try:
                self._handle.flush()
            finally:
                self._handle.detach()
            return None
        self._handle.close()
        return self._leftover()


class CsvWriter(_TextFile):
    """UTF-8 with a byte order mark (so that Excel shows accents), CRLF, a header line."""

    def __init__(self, path: Path, columns: Sequence[str], *, raw: bool = False, stream: BinaryIO | None = None) -> None:
        super().__init__(path, "utf-8-sig", stream)
        self.columns = list(columns)
        self.raw = raw
        self._csv = csv.writer(self._handle, lineterminator="\r\n")
        self._csv.writerow(self.columns)

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        width = len(self.columns)
        cut = [row if len(row) == width else row[:width] for row in rows]
        if self.raw:
            self._csv.writerows(cut)
            return
        first = _FORMULA_FIRST
        self._csv.writerows([[neutralise(cell) if cell[:1] in first else cell for cell in row] for row in cut])



class JsonLinesWriter(_TextFile):
    """One JSON object per customer: an empty value is null, accountEnabled a boolean."""

    def __init__(self, path: Path, columns: Sequence[str], *, stream: BinaryIO | None = None) -> None:
        super().__init__(path, "utf-8", stream)
        self.columns = list(columns)

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        out = io.StringIO()
        for row in rows:
            out.write(json.dumps(_typed(row, self.columns), ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
        self._handle.write(out.getvalue())



class XlsxWriter(_PartialFile):
    """xlsxwriter in constant-memory mode (rows are flushed as they are written): a bold,
    frozen, filterable header; text cells only; a new sheet every 1,048,575 customers."""

    def __init__(self, path: Path, columns: Sequence[str], *, raw: bool = False) -> None:
        import xlsxwriter

        super().__init__(path)
        self.columns = list(columns)
        self.raw = raw
        self._file = open(self._take_fd(), "w+b", closefd=True)
        self._book = xlsxwriter.Workbook(self._file, {"constant_memory": True, "strings_to_formulas": False,
                                                             "strings_to_numbers": False, "strings_to_urls": False})
        self._header = self._book.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        self._quoted = self._book.add_format({"quote_prefix": True})
        self._sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheets += 1
        self._sheet = self._book.add_worksheet("customers" if self._sheets == 1 else f"customers ({self._sheets})")
        for col, name in enumerate(self.columns):
            self._sheet.write_string(0, col, name, self._header)
            self._sheet.set_column(col, col, max(12, min(40, len(name) + 4)))
        self._sheet.freeze_panes(1, 0)
        self._row = 1

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        width = len(self.columns)
        for row in rows:
            if self._row >= XLSX_MAX_ROWS:
                self._close_sheet()
                self._new_sheet()
            for col in range(width):
                value = row[col]
                if not value:
                    continue
                if not self.raw and neutralise(value) != value:
                    self._sheet.write_string(self._row, col, value, self._quoted)
                else:
                    self._sheet.write_string(self._row, col, value)
            self._row += 1

    def _close_sheet(self) -> None:
        self._sheet.autofilter(0, 0, max(0, self._row - 1), len(self.columns) - 1)

    def finish(self) -> Path:
        self._close_sheet()
        self._book.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._commit()

    def abandon(self) -> Path | None:
        try:
            self._book.close()
        except Exception:  # an interrupted workbook may not close cleanly; the .partial says it is incomplete
            pass
        self._file.close()
        return self._leftover()


class ParquetWriter(_PartialFile):
    """pyarrow, one row group per 20,000 customers, built column by column; every column a
    string except accountEnabled (boolean); empty values are null."""

    GROUP_ROWS = 20_000

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path)
        self.columns = list(columns)
        self._pa = pa
        self._schema = pa.schema([(c, pa.bool_() if c in _BOOLEAN_COLUMNS else pa.string()) for c in self.columns])
        self._file = open(self._take_fd(), "wb", closefd=True)
        self._writer = pq.ParquetWriter(self._file, self._schema, compression="zstd")
        self._pending: dict[str, list[Any]] = {c: [] for c in self.columns}
        self._rows = 0

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        for col, (name, values) in enumerate(self._pending.items()):
            if name in _BOOLEAN_COLUMNS:
                values.extend(None if not r[col] else r[col] == "true" for r in rows)
            else:
                values.extend(r[col] or None for r in rows)
        self._rows += len(rows)
        if self._rows >= self.GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            arrays = [self._pa.array(self._pending[f.name], type=f.type) for f in self._schema]
            self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))
            self._pending = {c: [] for c in self.columns}
            self._rows = 0

    def finish(self) -> Path:
        self._flush()
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._commit()

    def abandon(self) -> Path | None:
        try:
            self._writer.close()
        except Exception:  # the file is incomplete either way; the .partial says so
            pass
        self._file.close()
        return self._leftover()


def _typed(row: Sequence[str], columns: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(columns, row):
        if name in _BOOLEAN_COLUMNS:
            out[name] = None if value == "" else value == "true"
        else:
            out[name] = value if value != "" else None
    return out


__all__ = ["FORMATS", "STREAMABLE", "ExportWriter", "format_for", "open_writer"]
