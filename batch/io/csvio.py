"""Reading input CSV files, streamed: encodings, dialects, the admin center's templates.

`open_csv(path, columns)` looks at the beginning of the file only: it picks the encoding,
the delimiter, skips the admin center's `version:v1.0` line, matches the header line against
the verb's `ColumnSet` and raises `InputFileError` when the file cannot be used. The
returned `CsvSource.rows()` then streams `Row`s, one record at a time, in bounded memory.

What the reader accepts (PRODUCT.md, "Input files"):

- Encodings: a byte order mark decides (UTF-8, UTF-16 LE/BE, UTF-32); without one, the
  `encoding` asked for (`--encoding cp1252`), else UTF-8. A BOM wins over `encoding`.
- Delimiters: comma, semicolon or tab, whichever occurs most often outside quotes in the
  header line (comma on a tie or when the header has a single column).
- Excel's CSV: CRLF, quoted fields holding newlines, delimiters and doubled quotes;
  trailing all-empty rows (",,,,"); the admin center's version row padded with delimiters.

Numbering: `Row.number` is 1 for the first record under the header, and every record after
it takes the next number, whatever it holds, so the numbers match the file's records one to
one: an empty line is a record (numbered, `blank=True`), a record spanning several lines
through a quoted newline is one number. The version row and the header are not counted.

Row-level trouble never stops the stream: a record whose field count does not fit the
header becomes a `Row` with `problem` set and the records after it keep their numbers.
Trailing empty fields beyond the header are tolerated (Excel pads rows to the widest one),
and so are missing fields under trailing blank header cells.

A cell neutralised for Excel (`'=…`, `'+1 555 …`, written so by `export` and results.csv)
is read with that one quote taken off (`batch.io.quoting.unquote`), so exports round-trip; a
password cell is taken exactly as written.

Run-level trouble raises `InputFileError` (the file cannot be used; the message says what
to do): no header, missing required columns, not text, not valid in its encoding. Bytes
that are invalid in the encoding past the part `open_csv` checked, and a quote that never
closes, surface from `rows()` as `InputFileError`; `CsvSource.scan()` reads the whole file
once first, so that a run learns of them (and the file's hash and record count) before any
row is acted on.

Why the `csv` module and not `pandas.read_csv`: pandas pads short records with empty
strings, so `a,b` and `a,b,` under a three-column header read the same and a short record
cannot be told apart; its C engine raises on a long record, and its Python engine (the only
one with a per-line callback) is several times slower. The `csv` module is C too, reports
each record's fields exactly, and reads a million 10-column rows in about two seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.errors import InputFileError
from batch.io.columns import ColumnSet, HeaderMatch, match_headers
from batch.io.encodings import choose_encoding, decode_head, decode_problem
from batch.io.quoting import any_quoted, unquote

__all__ = ["CsvSource", "Row", "Scan", "open_csv"]

DELIMITERS = (",", ";", "\t")
HEAD_BYTES = 1 << 20  # how much of the file open_csv checks for encoding and binary content
_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Row:
    """One data record of the input file.

    `cells` maps each recognised column (canonical name, or a custom attribute's header
    text) to its value exactly as written; a missing or blank value is ''. When `problem`
    is set the record did not split into the header's fields and `cells` is a best effort
    (fields in order, '' where absent).
    """

    number: int
    cells: dict[str, str]
    problem: str | None = None
    example: bool = False
    blank: bool = False


@dataclass
class CsvSource:
    """An input file, opened and checked by `open_csv`; `rows()` streams its records."""

    path: Path
    encoding: str
    delimiter: str
    portal_template: bool
    headers: list[str]
    match: HeaderMatch

    def rows(self) -> Iterator[Row]:
        """Stream the data records as `Row`s, in file order (numbering: module docstring).

        The file is read through a text decoder and the C `csv` reader record by record, so
        memory stays bounded whatever the file's size.
        """
        width = _effective_width(self.headers)
        make = _row_maker(self.match.by_index, width)
        with self.path.open("rb") as raw:
            for number, fields in self._records(raw):
                yield make(number, fields)

    def scan(self) -> Scan:
        """Read the whole file once, before anything is acted on: its SHA-256 (a resumed run
        needs the very same rows), its number of data records (for progress and
        confirmations), and its first structural problem (an invalid byte, a quote that
        never closes), raised as `InputFileError`."""
        digest = hashlib.sha256()
        with self.path.open("rb") as raw:
            hashing = io.BufferedReader(_HashingReader(raw, digest), buffer_size=_BLOCK)
            records = sum(1 for _ in self._records(hashing))
            for block in iter(lambda: raw.read(_BLOCK), b""):  # what the csv reader left unread
                digest.update(block)
        return Scan(records=records, sha256=digest.hexdigest())

    def _records(self, raw: io.BufferedReader[Any]) -> Iterator[tuple[int, list[str]]]:
        """(number, fields) of each data record; decoding and quoting trouble as `InputFileError`."""
        number = 0
        text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
        try:
            reader = csv.reader(text, delimiter=self.delimiter, strict=False)
            for _ in range(2 if self.portal_template else 1):
                next(reader)
            for number, fields in enumerate(reader, start=1):
                yield number, fields
        except UnicodeDecodeError as exc:
            problem = decode_problem(self.path, self.encoding, rows_read=number, block_size=_BLOCK)
            raise InputFileError(self.path, problem or f"cannot be decoded as {self.encoding} ({exc})") from exc
        except csv.Error as exc:
            raise InputFileError(self.path, f"row {number + 1}: {exc}; a quoted field probably lacks its "
                                            "closing quote (\") in or before this row") from exc
        finally:
            text.detach()  # the caller closes the file it opened


@dataclass(frozen=True)
class Scan:
    """What one pass over the whole input file learned (`CsvSource.scan`)."""

    records: int  # data records under the header, blank ones included
    sha256: str


class _HashingReader(io.RawIOBase):
    """A read-only view of a binary file that feeds every byte read to a digest."""

    def __init__(self, raw: io.BufferedReader[Any], digest: Any) -> None:
        self._raw = raw
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return count or 0


def open_csv(path: Path, columns: ColumnSet, *, encoding: str | None = None,
             delimiter: str | None = None) -> CsvSource:
    """Open `path` for `columns`' verb: detect its format and match its header line.

    Reads only the beginning of the file. `encoding` is used when the file has no byte
    order mark; `delimiter` forces one of ',', ';', tab instead of sniffing it (a
    single-column file gives nothing to sniff from). Raises `InputFileError` when the file
    is empty, is not text, is not valid in its encoding (within the first MiB), has no
    header line or lacks a required column.
    """
    path = Path(path)
    if delimiter is not None and delimiter not in DELIMITERS:
        raise InputFileError(path, f"delimiter {delimiter!r} is not one of comma, semicolon or tab")
    try:
        with path.open("rb") as raw:
            head = raw.read(HEAD_BYTES)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from exc

    chosen = choose_encoding(path, head, encoding)
    text = decode_head(path, head, chosen, complete=len(head) < HEAD_BYTES)
    if not text.strip("\r\n"):
        raise InputFileError(path, f"is empty; expected a header line with the columns {_expected(columns)}")

    portal = _is_version_line(re.split(r"[\r\n]", text, maxsplit=1)[0])
    header_text = _after_first_line(text) if portal else text
    if portal and not header_text.strip("\r\n"):
        raise InputFileError(path, "has the admin center's version line but no header line under it")
    chosen_delimiter = delimiter or _sniff_delimiter(header_text)

    headers = _header_from_head(path, text, chosen_delimiter, portal, complete=len(head) < HEAD_BYTES)
    if headers is None:  # a header line longer than the head: read it from the file
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=chosen, newline="") as stream:
            headers = _read_header(path, chosen, stream, chosen_delimiter, portal)

    headers = [h.strip() for h in headers]
    if not any(headers):
        where = "the line under the version line" if portal else "the first line"
        raise InputFileError(path, f"the header line ({where}) is empty; expected the columns {_expected(columns)}")
    match = match_headers(headers, columns)
    if match.missing:
        raise InputFileError(path, _missing_message(match, headers, columns))
    return CsvSource(path=path, encoding=chosen, delimiter=chosen_delimiter, portal_template=portal,
                     headers=headers, match=match)


# --- dialect and header --------------------------------------------------------------------

_VERSION_LINE = re.compile(r'"?version:\s*v?\d+(\.\d+)*"?', re.IGNORECASE)


def _header_from_head(path: Path, text: str, delimiter: str, portal: bool, *, complete: bool) -> list[str] | None:
    """The header record parsed from the decoded head, or None when the head may end inside it."""
    stream = io.StringIO(text, newline="")
    headers = _read_header(path, None, stream, delimiter, portal)
    return headers if complete or stream.tell() < len(text) else None


def _read_header(path: Path, codec: str | None, stream: io.TextIOBase, delimiter: str, portal: bool) -> list[str]:
    reader = csv.reader(stream, delimiter=delimiter, strict=False)
    try:
        if portal:
            next(reader)
        return next(reader, [])
    except csv.Error as exc:
        raise InputFileError(path, f"the header line cannot be read ({exc}); check its quotes") from exc
    except UnicodeDecodeError as exc:  # only past HEAD_BYTES, in a header longer than that
        assert codec is not None
        raise InputFileError(path, decode_problem(path, codec, block_size=_BLOCK) or f"cannot be decoded ({exc})") from exc


def _is_version_line(line: str) -> bool:
    """The admin center's first line, also as Excel saves it (`version:v1.0,,,,`)."""
    return bool(_VERSION_LINE.fullmatch(line.strip().rstrip(",;\t").strip()))


def _after_first_line(text: str) -> str:
    for index, char in enumerate(text):
        if char in "\r\n":
            rest = text[index + 1:]
            return rest[1:] if char == "\r" and rest.startswith("\n") else rest
    return ""


def _sniff_delimiter(text: str) -> str:
    """The delimiter used most often outside quotes in the first record of `text`."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "\r\n":
            break
        elif char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first on a tie: comma
    return best if counts[best] else ","


def _effective_width(headers: list[str]) -> int:
    """The header's width without the blank cells Excel leaves at its end."""
    return max((i + 1 for i, h in enumerate(headers) if h.strip()), default=0)


def _expected(columns: ColumnSet) -> str:
    return ", ".join(columns.template or columns.names)


def _missing_message(match: HeaderMatch, headers: list[str], columns: ColumnSet) -> str:
    parts = []
    for name in match.missing:
        closest = match.suggestions.get(name)
        parts.append(f"{name} (the closest header is {closest!r})" if closest else name)
    noun = "column" if len(parts) == 1 else "columns"
    found = ", ".join(repr(h) for h in headers if h)
    return f"missing {noun} {'; '.join(parts)}; expected columns: {_expected(columns)}; the header line has: {found}"


# --- rows ----------------------------------------------------------------------------------

def _picker(indices: list[int], names: list[str], width: int) -> Callable[[list[str]], dict[str, str]]:
    """The fastest way to take the recognised columns' cells out of a record's fields."""
    if indices == list(range(len(indices))) and len(indices) == width:
        return lambda fields: dict(zip(names, fields))
    if len(indices) == 1:
        only, name = indices[0], names[0]
        return lambda fields: {name: fields[only]}
    if indices:
        getter = operator.itemgetter(*indices)
        return lambda fields: dict(zip(names, getter(fields)))
    return lambda fields: {}


def _row_maker(by_index: dict[int, str], width: int) -> Callable[[int, list[str]], Row]:
    """A function turning one record's fields into a `Row`, specialised for speed."""
    items = sorted(by_index.items())
    indices = [i for i, _ in items]
    names = [n for _, n in items]
    empty = dict.fromkeys(names, "")
    pick = _picker(indices, names, width)

    def partial(fields: list[str]) -> dict[str, str]:
        return {name: fields[i] if i < len(fields) else "" for i, name in zip(indices, names)}

    secret = {i for i, name in by_index.items() if name == "password"}  # a password is taken as written

    def make(number: int, fields: list[str]) -> Row:
        if any_quoted(fields):  # '=…: a cell neutralised for Excel (batch.io.quoting)
            fields = [f if i in secret else unquote(f) for i, f in enumerate(fields)]
        count = len(fields)
        if count == width:
            first = fields[0] if count else ""
            if first:
                return Row(number, pick(fields), example=_is_example(first))
            if any(fields):
                return Row(number, pick(fields))
            return Row(number, dict(empty), blank=True)
        if not any(fields):
            return Row(number, dict(empty), blank=True)
        if count > width and not any(fields[width:]):
            return Row(number, pick(fields), example=_is_example(fields[0]))
        problem = f"row has {_fields(count)} but the header has {width}"
        if any("\n" in f or "\r" in f for f in fields):
            problem += "; a quoted field spans several lines, check for a missing closing quote (\")"
        return Row(number, partial(fields), problem=problem, example=_is_example(fields[0]))

    return make


def _is_example(first: str) -> bool:
    """A row left from the admin center's template example ("Example: Chris Green", ...)."""
    return first[:1] in "Ee \t\ufeff" and first.lstrip(" \t\ufeff")[:8].casefold() == "example:"


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"
