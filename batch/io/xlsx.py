"""Reading an Excel workbook (.xlsx): one worksheet, streamed row by row.

openpyxl in read-only mode (what `pandas.read_excel` uses underneath; `read_excel` itself
builds the whole sheet as a DataFrame, so a 100,000-row sheet would sit in memory) parses the
sheet's XML as it goes; `data_only` gives a formula's last computed value, as Excel shows
it, never the formula's text. The first worksheet, or the one `--sheet` names.

Every cell becomes text as Excel shows it, as far as the value and its number format tell
(`cell_text`): text exactly as typed (`0012`, `NA`, `null` stay so), a whole number without
`.0` (`12`), other numbers in their shortest form (`1.5`), TRUE/FALSE, a date as `2024-01-31`
and a date and time as `2024-01-31 13:45:00` (with milliseconds when not zero,
`2024-01-31 13:45:00.500`: Excel keeps no finer; a date cell at midnight is taken for a date),
an empty cell as ''. A number whose format is made of zeros, with decimals and a percent sign
or not (`00000`, `0.00`, `0%`, `0.0%`), reads as Excel shows it: 12 under `00000` is `00012`
(a postal code), 0.25 under `0%` is `25%`, 1.5 under `0.00` is `1.50` (rounded half away from
zero, as Excel does). Other formats (`#,##0`, currencies, sections with `;`) are not applied:
the number reads in its shortest form. A number typed into a General cell loses its leading
zeros in Excel itself; format such columns as Text.

The header is row 1, or row 2 under the admin center's `version:v1.0` row (its bulk template
saved as .xlsx). Row numbers: `batch.io.tabular` (results.csv's `line` is the sheet's row).

Run-level trouble is `InputFileError` with one line: not a workbook (or a damaged one), a
password-protected workbook (saved encrypted, it is not a zip file but an OLE container), an
old .xls, an unknown `--sheet`, an empty sheet, a missing column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batch.errors import InputFileError
from batch.io.columns import ColumnSet
from batch.io.header import is_version_line
from batch.io.opening import open_input
from batch.io.tabular import Record, TabularSource, matched_header

_ZEROS_FORMAT = re.compile(r"(0+)(?:\.(0+))?(%?)")  # 00000, 0.00, 0%, 0.0% (module docstring)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted workbook, or an .xls of Excel 97-2003


def cell_text(value: Any, number_format: str | None = None) -> str:
    """A cell's value as the text Excel shows for it (module docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and number_format:
        shown_as = _zeros_format(value, number_format)
        if shown_as is not None:
            return shown_as
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        moment = _to_milliseconds(value)
        if moment.time() == dt.time(0):
            return moment.date().isoformat()
        return moment.isoformat(sep=" ", timespec="milliseconds" if moment.microsecond else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        time = _to_milliseconds(dt.datetime.combine(dt.date(2000, 1, 1), value)).time()
        return time.isoformat(timespec="milliseconds" if time.microsecond else "seconds")
    return str(value)  # a timedelta (a duration cell), an error value such as #N/A


def _zeros_format(value: int | float, number_format: str) -> str | None:
    """`value` as a format of zeros shows it (`00000`, `0.00`, `0%`), None for other formats."""
    found = _ZEROS_FORMAT.fullmatch(number_format)
    if found is None or not math.isfinite(value):
        return None
    digits, decimals, percent = found.group(1), found.group(2) or "", found.group(3)
    number = decimal.Decimal(repr(value) if isinstance(value, float) else value) * (100 if percent else 1)
    number = number.quantize(decimal.Decimal(1).scaleb(-len(decimals)), rounding=decimal.ROUND_HALF_UP)
    whole, _, fraction = f"{abs(number):f}".partition(".")
    sign = "-" if number < 0 else ""
    return f"{sign}{whole.zfill(len(digits))}{'.' + fraction if decimals else ''}{percent}"


def _to_milliseconds(value: dt.datetime) -> dt.datetime:
    """Rounded to the millisecond, Excel's precision (a serial's float leaves microsecond noise)."""
    if value.microsecond % 1000 == 0:
        return value
    rounded = value + dt.timedelta(microseconds=500)
    return rounded.replace(microsecond=rounded.microsecond // 1000 * 1000)


class XlsxSource(TabularSource):
    kind = "xlsx"

    def __init__(self, path: Path, headers: list[str], match: Any, *, sheet: str, portal: bool) -> None:
        super().__init__(path, headers, match, header_lines=2 if portal else 1, portal_template=portal)
        self.sheet = sheet

    def describe(self) -> str:
        template = ", admin center template" if self.portal_template else ""
        return f"xlsx, sheet {self.sheet!r}{template}"

    def where(self, row: int) -> str:
        """Where `validate` says data row `row` is: the sheet's row, as Excel numbers it."""
        return f" (sheet row {self.dialect.line(row)})"

    def _records(self) -> Iterator[Record]:
        with _workbook(self.path) as (workbook, _):
            rows = _sheet_rows(self.path, workbook, self.sheet)
            for _ in range(self.header_lines):
                next(rows, None)
            try:
                for number, cells in enumerate(rows, start=1):
                    yield number, [_shown(cell) for cell in cells], self._errors(cells)
            except Exception as exc:  # noqa: BLE001 - the XML of a damaged sheet, past its head
                raise _damaged(self.path, exc) from exc


    def _errors(self, cells: tuple[Any, ...]) -> str | None:
        """An error value in a cell (#N/A, #REF!, #VALUE!...: what a formula that failed shows)
        is not the row's data: the row is invalid, naming the cell, rather than sent as text."""
        found = [f"{self._label(index)} holds the Excel error {cell.value}; fix the formula or the value in Excel"
                 for index, cell in enumerate(cells) if getattr(cell, "data_type", None) == "e"]
        return "; ".join(found) or None


def open_xlsx(path: Path, columns: ColumnSet, *, sheet: str | None = None) -> XlsxSource:
    """Open the workbook, pick the sheet and match its header (`InputFileError` otherwise)."""
    with _workbook(path) as (workbook, names):
        if sheet is None:
            if not names:
                raise InputFileError(path, "has no worksheet")
            chosen = names[0]
        elif sheet in names:
            chosen = sheet
        else:
            raise InputFileError(path, f"has no sheet {sheet!r}; its sheets: {', '.join(repr(n) for n in names)} "
                                       "(--sheet takes one of these names, exactly)")
        rows = _sheet_rows(path, workbook, chosen)
        try:
            first = [_shown(cell) for cell in next(rows, ())]
            portal = bool(first) and is_version_line(first[0]) and not any(c.strip() for c in first[1:])
            header = [_shown(cell) for cell in next(rows, ())] if portal else first
        except Exception as exc:  # noqa: BLE001 - a damaged sheet
            raise _damaged(path, exc) from exc
    if not any(c.strip() for c in first):
        raise InputFileError(path, f"sheet {chosen!r} is empty (its first row is blank); the header must be row 1 "
                                   f"(or row 2, under the admin center's version row)")
    headers = [h.strip() for h in header]
    while headers and not headers[-1]:
        headers.pop()
    match = matched_header(path, headers, columns, where=f"row {2 if portal else 1} of sheet {chosen!r}")
    return XlsxSource(path, headers, match, sheet=chosen, portal=portal)


class _workbook:  # noqa: N801 - used as a context manager, like open()
    """The workbook opened read-only from the checked regular file, closed on leaving."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> tuple[Any, list[str]]:
        import openpyxl  # only when an .xlsx is read: it takes a while to import

        self._raw = open_input(self.path)
        try:
            magic = self._raw.read(8)
            self._raw.seek(0)
            if magic == _OLE_MAGIC:
                raise InputFileError(self.path, "is a password-protected workbook or an old .xls file; open it in "
                                                "Excel and save it as .xlsx without a password (File > Info > "
                                                "Protect Workbook > Encrypt with Password: clear it)")
            try:
                self._book = openpyxl.load_workbook(self._raw, read_only=True, data_only=True)
            except zipfile.BadZipFile as exc:
                raise InputFileError(self.path, "is not an Excel workbook (.xlsx) or is damaged (not a zip "
                                                f"file: {exc}); save it again from Excel as .xlsx") from None
            except Exception as exc:  # noqa: BLE001 - openpyxl's many ways to find a bad workbook
                raise _damaged(self.path, exc) from None
        except BaseException:
            self._raw.close()
            raise
        return self._book, list(self._book.sheetnames)

    def __exit__(self, *_: object) -> None:
        try:
            self._book.close()
        finally:
            self._raw.close()


def _shown(cell: Any) -> str:
    """A read-only cell's text; the number format is looked up only for a styled number (cheap)."""
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool) and getattr(cell, "has_style", False):
        return cell_text(value, cell.number_format)
    return cell_text(value)


def _sheet_rows(path: Path, workbook: Any, name: str) -> Iterator[tuple[Any, ...]]:
    sheet = workbook[name]
    if not hasattr(sheet, "reset_dimensions"):  # a chartsheet
        raise InputFileError(path, f"sheet {name!r} is a chart, not a worksheet; give --sheet with a worksheet")
    sheet.reset_dimensions()  # read to the real end: some writers record a wrong size (as pandas does)
    rows: Iterator[tuple[Any, ...]] = sheet.iter_rows()  # cells, for their number format (`_shown`)
    return rows


def _damaged(path: Path, exc: BaseException) -> InputFileError:
    what = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return InputFileError(path, f"cannot be read as an Excel workbook ({what}); open it in Excel and save it again "
                                "as .xlsx")
