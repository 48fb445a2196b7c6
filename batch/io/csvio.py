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

Hostile or broken content fails its row, never the file, and is never repaired silently
(`Row.problem`, which every verb reports as `invalid` and never sends):

- A record longer than `RECORD_CHARS` (1 Mi characters) is skipped unread and a cell longer
  than `CELL_CHARS` (64 Ki characters) fails its row. Graph's longest string properties
  take about a thousand characters (streetAddress 1,024; displayName 256), so no real row
  comes near either limit, while memory stays bounded whatever a line's length: lines are
  read with a limit (`readline(n)`), never whole, and the rest of an oversized record is
  skipped by a quote-aware scan (`_RecordEnd`) that reads it in bounded pieces.
- A control character in a cell (C0 but tab, CR and LF; DEL; C1) fails its row, naming the
  column and the position. Tab and line breaks are CSV's own (Excel writes Alt+Enter as a
  quoted line break); the field rules decide where they may stand (batch/verbs/fields.py).
  Finding one is cheap: the raw bytes are checked a block at a time (`_Inspecting`), and
  only a file where a suspicious byte shows up has its lines searched one by one.
- Text after a closing quote (`"a@b.com"x`, which the `csv` module glues on as `a@b.comx`)
  and a quote still open at the end of the file fail their row. The reader is strict; when
  it stops on a record, that record is read again, from its raw lines, by a lenient reader
  that finds where it ends as before, so the numbering of the records after it does not
  change.

Run-level trouble raises `InputFileError` (the file cannot be used; the message says what
to do): not a regular file (a FIFO or a device is refused, never read), no header, missing
required columns, two version lines, not text, not valid in its encoding. Bytes that are
invalid in the encoding past the part `open_csv` checked surface from `rows()` as
`InputFileError`; `CsvSource.scan()` reads the whole file once first, so that a run learns
of them (and the file's hash and record count) before any row is acted on.

Why the `csv` module and not `pandas.read_csv`: pandas pads short records with empty
strings, so `a,b` and `a,b,` under a three-column header read the same and a short record
cannot be told apart; its C engine raises on a long record, and its Python engine (the only
one with a per-line callback) is several times slower. The `csv` module is C too, reports
each record's fields exactly, and reads a million 10-column rows in about two seconds.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.errors import InputFileError
from batch.io.columns import ColumnSet, HeaderMatch, match_headers
from batch.io.encodings import choose_encoding, decode_head, decode_problem
from batch.io.opening import open_input
from batch.io.quoting import any_quoted, shown, unquote

__all__ = ["CELL_CHARS", "RECORD_CHARS", "CsvSource", "Row", "Scan", "open_csv"]

DELIMITERS = (",", ";", "\t")
HEAD_BYTES = 1 << 20  # how much of the file open_csv checks for encoding and binary content
_BLOCK = 1 << 20
CELL_CHARS = 1 << 16    # the longest cell read (64 Ki characters; Graph's longest property takes ~1,000)
RECORD_CHARS = 1 << 20  # the longest record read (1 Mi characters); a longer one is skipped unread
_SKIP_CHARS = 1 << 20   # the piece size in which the rest of an oversized record is read and dropped

# The csv module refuses a field longer than its process-wide limit (128 Ki characters by
# default) with an error that would end the reading; the record limit above (enforced
# before the csv module sees the lines) is the one that counts, so raise the csv module's.
if csv.field_size_limit() < RECORD_CHARS + 2:
    csv.field_size_limit(RECORD_CHARS + 2)

# C0 but tab, LF, CR; DEL; C1: what no cell may hold.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_OVERSIZED, _LONG_CELL, _CONTROL_CHARACTER = "oversized", "long cell", "control"
_NO_CLOSING_QUOTE = 'a quoted field has no closing quote (") before the end of the file'


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

        The file is read through a text decoder, in lines of bounded length, and the C `csv`
        reader record by record, so memory stays bounded whatever the file's size.
        """
        width = _effective_width(self.headers)
        make = _row_maker(self.match.by_index, width)
        with open_input(self.path) as raw:
            for number, fields, problem in self._records(_Inspecting(raw, self.encoding)):
                if problem is None:
                    yield make(number, fields)
                else:
                    yield _with_problem(make(number, fields), problem)

    def scan(self) -> Scan:
        """Read the whole file once, before anything is acted on: its SHA-256 (a resumed run
        needs the very same rows), its number of data records (for progress and
        confirmations), and its first structural problem (an invalid byte), raised as
        `InputFileError`."""
        digest = hashlib.sha256()
        with open_input(self.path) as raw:
            records = sum(1 for _ in self._records(_Inspecting(raw, self.encoding, digest)))
            for block in iter(lambda: raw.read(_BLOCK), b""):  # what the csv reader left unread
                digest.update(block)
        return Scan(records=records, sha256=digest.hexdigest())

    def _records(self, inspecting: _Inspecting) -> Iterator[tuple[int, list[str], str | None]]:
        """(number, fields, problem) of each data record; decoding trouble as `InputFileError`."""
        number = 0
        text = io.TextIOWrapper(io.BufferedReader(inspecting, buffer_size=_BLOCK), encoding=self.encoding,
                                newline="")
        feed = _Feed(text, inspecting, self.delimiter)
        lines, flags, source = feed.lines, feed.flags, feed.lines_read()
        clear = lines.clear
        reader = csv.reader(source, delimiter=self.delimiter, strict=True)
        try:
            for _ in range(2 if self.portal_template else 1):  # checked by open_csv already
                _next_lenient(reader, feed, source)
                lines.clear()
                flags.clear()
            while True:
                try:
                    for fields in reader:
                        number += 1
                        if flags:
                            yield number, fields, self._flagged(fields, flags)
                            flags.clear()
                        else:
                            yield number, fields, None
                        clear()
                    return
                except csv.Error as exc:
                    number += 1
                    fields = _reread(feed, source)
                    yield number, fields, self._malformed(str(exc), fields, feed)
                    lines.clear()
                    flags.clear()
        except UnicodeDecodeError as exc:
            problem = decode_problem(self.path, self.encoding, rows_read=number, block_size=_BLOCK)
            raise InputFileError(self.path, problem or f"cannot be decoded as {self.encoding} ({exc})") from exc
        finally:
            text.detach()  # the caller closes the file it opened

    def _label(self, index: int) -> str:
        """How a message names the column of field `index`."""
        name = self.match.by_index.get(index) or (
            shown(self.headers[index], 60) if index < len(self.headers) else "")
        return f"{name} (column {index + 1})" if name else f"column {index + 1}"

    def _flagged(self, fields: list[str], flags: list[str]) -> str | None:
        """What is wrong with a record that `_Feed` flagged (too long, control characters)."""
        if _OVERSIZED in flags:
            return (f"row is longer than {RECORD_CHARS:,} characters (a customer's properties take far less): it "
                    "was skipped unread; check that this is the right file, and for a quoted field that lacks its "
                    'closing quote (") in or before this row')
        problems = []
        if _CONTROL_CHARACTER in flags:
            for index, field in enumerate(fields):
                found = _CONTROL.search(field)
                if found:
                    problems.append(f"{self._label(index)} holds the control character {shown(found.group())} at "
                                    f"character {found.start() + 1}; remove it (control characters are never sent)")
        if _LONG_CELL in flags:
            problems += [f"{self._label(index)} is {len(field):,} characters long, more than the {CELL_CHARS:,} a "
                         "cell may hold" for index, field in enumerate(fields) if len(field) > CELL_CHARS]
        return "; ".join(problems) or None

    def _malformed(self, error: str, fields: list[str], feed: _Feed) -> str:
        """What is wrong with a record the strict reader stopped on (`_reread` read it again)."""
        if "expected after" in error:
            stray = _text_after_closing_quote("".join(feed.lines), self.delimiter)
            where = self._label(stray) if stray is not None else "a field"
            problem = (f'{where} has text after its closing quote ("); put the whole value between the quotes and '
                       'double each quote that is part of it ("")')
        elif "unexpected end of data" in error:
            problem = _NO_CLOSING_QUOTE
        else:
            problem = f"cannot be read as CSV ({shown(error)})"
        flagged = self._flagged(fields, feed.flags) if feed.flags else None
        return f"{problem}; {flagged}" if flagged else problem


@dataclass(frozen=True)
class Scan:
    """What one pass over the whole input file learned (`CsvSource.scan`)."""

    records: int  # data records under the header, blank ones included
    sha256: str


# --- reading in bounded memory --------------------------------------------------------------

class _Inspecting(io.RawIOBase):
    """A read-only view of a binary file that feeds every byte read to a digest (if given)
    and notes whether any block holds a byte that may decode to a control character:
    `suspicious` (sticky) tells `_Feed` to search its lines for them from then on. A codec
    whose bytes cannot be judged one by one (UTF-16, say) is suspicious from the start."""

    def __init__(self, raw: Any, codec: str, digest: Any = None) -> None:
        self._raw = raw
        self._digest = digest
        self._bytes = _control_bytes(codec)
        self._utf8 = codec in ("utf-8", "utf-8-sig")
        self.suspicious = self._bytes is None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        if count:
            block = memoryview(buffer)[:count]
            if self._digest is not None:
                self._digest.update(block)
            if not self.suspicious:
                self._inspect(bytes(block))
        return count or 0

    def _inspect(self, block: bytes) -> None:
        assert self._bytes is not None
        if len(block.translate(None, self._bytes)) != len(block):
            self.suspicious = True
        elif self._utf8 and b"\xc2" in block and _C1_UTF8.search(block):
            self.suspicious = True
        elif self._utf8 and block.endswith(b"\xc2"):  # a C1 character may straddle two blocks
            self.suspicious = True


_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
_QUOTES = re.compile('"+')


@functools.lru_cache(maxsize=16)
def _control_bytes(codec: str) -> bytes | None:
    """The bytes that decode to a control character in `codec`, or None when the codec does
    not decode byte by byte. UTF-8's C1 characters are two bytes (`_C1_UTF8`)."""
    if codec in ("utf-8", "utf-8-sig"):
        return bytes(b for b in range(0x80) if _CONTROL.match(chr(b)))
    found = bytearray()
    for byte in range(256):
        decoder = codecs.getincrementaldecoder(codec)("strict")
        try:
            char = decoder.decode(bytes([byte]), final=False)
        except UnicodeDecodeError:
            continue
        except Exception:  # noqa: BLE001 - a codec with rules of its own: judge its lines instead
            return None
        if len(char) != 1:  # held back (a multi-byte codec) or more than one character
            return None
        if _CONTROL.match(char):
            found.append(byte)
    return bytes(found)


class _Feed:
    """The lines of a text stream for the `csv` reader, each read with a limit, so that no
    line or record larger than `RECORD_CHARS` is ever held.

    `lines` are the raw lines of the record being read (the caller clears it when the csv
    reader has returned a record), and `flags` what was noticed in them. A line boundary
    inside a record is always inside a quoted field (elsewhere a line break ends the
    record), which is how an oversized record is ended for the csv reader: its rest is
    skipped (`_RecordEnd`) and `"\n` (or `\n` when it is one line) takes its place.
    """

    def __init__(self, text: Any, inspecting: Any, delimiter: str) -> None:
        self._text = text
        self._inspecting = inspecting
        self._delimiter = delimiter
        self.lines: list[str] = []
        self.flags: list[str] = []

    def lines_read(self) -> Iterator[str]:
        readline = self._text.readline
        lines, flags, inspecting, search = self.lines, self.flags, self._inspecting, _CONTROL.search
        append = lines.append
        size = 0
        pending = ""
        while True:
            if not lines:
                size = 0
            if pending:
                line, pending = pending, ""
            else:
                line = readline(RECORD_CHARS + 1 - size)
            if not line:
                return
            size += len(line)
            if size > CELL_CHARS:
                if size > RECORD_CHARS:
                    pending = _RecordEnd(self._delimiter, quoted=bool(lines)).skip(line, readline)
                    flags.append(_OVERSIZED)
                    yield '"\n' if lines else "\n"
                    continue
                flags.append(_LONG_CELL)
            if inspecting.suspicious and search(line):
                flags.append(_CONTROL_CHARACTER)
            append(line)
            yield line


class _RecordEnd:
    """Finds where a record ends, as the csv module's lenient reading does, without holding
    it: quotes are followed with `str.find`, a piece of at most `_SKIP_CHARS` at a time."""

    START, UNQUOTED, QUOTED, QUOTE = range(4)  # at a field's start; in an unquoted field; in a
    # quoted field; just after a quote inside a quoted field (closing, or the first of "")

    def __init__(self, delimiter: str, *, quoted: bool) -> None:
        self.delimiter = delimiter
        self.state = self.QUOTED if quoted else self.START

    def skip(self, piece: str, readline: Callable[[int], str]) -> str:
        """Drop the record from `piece` on, reading on as needed; return what follows it in
        the last piece read (the start of the next record), or ''."""
        while piece:
            end = self._end(piece)
            if end >= 0:
                rest = piece[end:]
                if not rest and piece.endswith("\r"):  # the \n of a \r\n may be the next piece's
                    rest = readline(_SKIP_CHARS)
                    rest = rest[1:] if rest.startswith("\n") else rest
                return rest
            piece = readline(_SKIP_CHARS)
        return ""

    def _end(self, piece: str) -> int:
        """The index just past the line break that ends the record, or -1 (state kept)."""
        position, size, state, delimiter = 0, len(piece), self.state, self.delimiter
        line_break = -2
        while position < size:
            if state == self.QUOTED:
                quote = piece.find('"', position)
                if quote < 0:
                    break
                run = _QUOTES.match(piece, quote).end() - quote  # type: ignore[union-attr]
                position = quote + run
                state = self.QUOTED if run % 2 == 0 else self.QUOTE
                continue
            char = piece[position]
            if char in "\r\n" and state != self.UNQUOTED:
                return _past_line_break(piece, position)
            if state == self.START:
                state = self.QUOTED if char == '"' else self.UNQUOTED
                position += 1 if char == '"' else 0
                continue
            if state == self.QUOTE:
                state = self.QUOTED if char == '"' else self.UNQUOTED  # a character after a closing quote: glued
                position += 1 if char == '"' else 0
                continue
            # unquoted: only a line break, or a quote opening the next field, matters
            if line_break == -2 or 0 <= line_break < position:  # not looked for yet, or passed
                breaks = [i for i in (piece.find("\n", position), piece.find("\r", position)) if i >= 0]
                line_break = min(breaks) if breaks else -1
            opening = piece.find(delimiter + '"', position)
            if opening >= 0 and (line_break < 0 or opening < line_break):
                position, state = opening + 2, self.QUOTED
                continue
            if line_break >= 0:
                return _past_line_break(piece, line_break)
            state = self.START if piece.endswith(delimiter) else self.UNQUOTED
            break
        self.state = state
        return -1


def _past_line_break(piece: str, index: int) -> int:
    return index + 2 if piece.startswith("\r\n", index) else index + 1


def _next_lenient(reader: Iterator[list[str]], feed: _Feed, source: Iterator[str]) -> list[str]:
    """The next record of the strict `reader`, or, where it stops, as the lenient reader
    reads it (the header and version line: open_csv has judged them already)."""
    try:
        return next(reader, [])
    except csv.Error:
        return _reread(feed, source)


def _reread(feed: _Feed, source: Iterator[str]) -> list[str]:
    """The record the strict reader stopped on, read again by a lenient reader from its raw
    lines (and, when it goes on past the line the strict reader stopped in, from `source`),
    so that it ends where it always did and the records after it keep their numbers."""
    lenient = csv.reader(itertools.chain(list(feed.lines), source), delimiter=feed._delimiter, strict=False)
    try:
        return next(lenient, [])
    except csv.Error:
        return []


def _text_after_closing_quote(record: str, delimiter: str) -> int | None:
    """The index of the first field of `record` (raw text) with text after its closing quote."""
    field, state = 0, "start"
    for char in record:
        if state == "quoted":
            state = "quote" if char == '"' else "quoted"
        elif char in "\r\n":
            return None
        elif state == "quote" and char not in ('"', delimiter):
            return field
        elif char == delimiter:
            field, state = field + 1, "start"
        elif state == "start":
            state = "quoted" if char == '"' else "unquoted"
        elif state == "quote":
            state = "quoted"
    return None


def _with_problem(row: Row, problem: str) -> Row:
    """`row` failed by a problem the reader found (a field-count problem of its own is kept:
    it says more about a quote left open)."""
    if row.problem and problem == _NO_CLOSING_QUOTE:
        return row
    combined = f"{problem}; {row.problem}" if row.problem else problem
    return Row(row.number, row.cells, problem=combined, example=row.example, blank=False)


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
    with open_input(path) as raw:
        try:
            head = raw.read(HEAD_BYTES)
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None

    chosen = choose_encoding(path, head, encoding)
    text = decode_head(path, head, chosen, complete=len(head) < HEAD_BYTES)
    if not text.strip("\r\n"):
        raise InputFileError(path, f"is empty; expected a header line with the columns {_expected(columns)}")

    portal = _is_version_line(re.split(r"[\r\n]", text, maxsplit=1)[0])
    header_text = _after_first_line(text) if portal else text
    if portal and not header_text.strip("\r\n"):
        raise InputFileError(path, "has the admin center's version line but no header line under it")
    if portal and _is_version_line(re.split(r"[\r\n]", header_text, maxsplit=1)[0]):
        raise InputFileError(path, "has two version lines (the first two lines); keep only the first: the header "
                                   "line must come right under it")
    chosen_delimiter = delimiter or _sniff_delimiter(header_text)

    headers = _header_from_head(path, text, chosen_delimiter, portal, complete=len(head) < HEAD_BYTES)
    if headers is None:  # a header line longer than the head: read it from the file
        with open_input(path) as raw, io.TextIOWrapper(raw, encoding=chosen, newline="") as stream:
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


class _Trusting:
    """For `_Feed`: the header is not searched for control characters (its cells are only
    ever shown escaped, `batch.io.quoting.shown`)."""

    suspicious = False


def _read_header(path: Path, codec: str | None, stream: io.TextIOBase, delimiter: str, portal: bool) -> list[str]:
    feed = _Feed(stream, _Trusting(), delimiter)
    reader = csv.reader(feed.lines_read(), delimiter=delimiter, strict=False)
    try:
        if portal:
            next(reader)
            feed.lines.clear()
        headers = next(reader, [])
        if _OVERSIZED in feed.flags:
            raise InputFileError(path, f"the header line is longer than {RECORD_CHARS:,} characters; is this the "
                                       "right file? (a quote left open in the header line makes it run on)")
        return headers
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
        parts.append(f"{name} (the closest header is '{shown(closest)}')" if closest else name)
    noun = "column" if len(parts) == 1 else "columns"
    found = ", ".join(f"'{shown(h, 60)}'" for h in headers[:50] if h) + (", ..." if len(headers) > 50 else "")
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
