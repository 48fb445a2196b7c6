"""Reading input CSV files, streamed: encodings, dialects, the admin center's templates.

`open_csv(path, columns)` looks at the beginning of the file only: it picks the encoding,
the delimiter, skips the admin center's `version:v1.0` line, matches the header line against
the verb's `ColumnSet` and raises `InputFileError` when the file cannot be used. The
returned `CsvSource.rows()` then streams `Row`s, a block of records at a time, in bounded
memory. Its helpers: `batch.io.opening` (regular files only), `batch.io.encodings`,
`batch.io.header` (version line, delimiter, header), `batch.io.records` (records in bounded
memory, one by one) and `batch.io.blocks` (the blocks proven clean, read at C speed).

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
  skipped by a quote-aware scan (`RecordEnd`) that reads it in bounded pieces.
- A control character in a cell (C0 but tab, CR and LF; DEL; C1) fails its row, naming the
  column and the position. Tab and line breaks are CSV's own (Excel writes Alt+Enter as a
  quoted line break); the field rules decide where they may stand (batch/verbs/fields.py).
  Finding one is cheap: the raw bytes are checked a block at a time (`Inspecting`), and
  only a file where a suspicious byte shows up has its text searched.
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
one with a per-line callback) is several times slower. The `csv` module is C too and reports
each record's fields exactly. What it costs is our Python around it, per record; so the rules
above are checked over a block of about 16 Ki characters at once, with calls that run at C
speed, and only a block where a check finds something is read record by record
(`batch.io.blocks`; `rows_by_record` is that reader over the whole file, kept as the
reference). A million generated 10-column rows: 2.0 s of CPU against 3.5 one record at a time,
on a slow shared machine where the csv reader and the Rows with no check take 1.9
(benchmarks/read.py).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import operator
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from batch.errors import InputFileError
from batch.io.blocks import Block, Blocks
from batch.io.columns import ColumnSet, HeaderMatch, match_headers
from batch.io.dialect import OutputDialect
from batch.io.encodings import choose_encoding, decode_head, decode_problem
from batch.io.header import (
    DELIMITERS,
    after_first_line,
    effective_width,
    expected_columns,
    header_from_head,
    is_version_line,
    missing_message,
    read_header,
    sniff_delimiter,
)
from batch.io.opening import open_input
from batch.io.quoting import any_quoted, shown, unquote
from batch.io.records import (
    CELL_CHARS,
    CONTROL,
    CONTROL_CHARACTER,
    LONG_CELL,
    OVERSIZED,
    RECORD_CHARS,
    Feed,
    Inspecting,
    next_lenient,
    reread,
    text_after_closing_quote,
)

__all__ = ["CELL_CHARS", "RECORD_CHARS", "CsvSource", "Row", "Scan", "open_csv"]

HEAD_BYTES = 1 << 20  # how much of the file open_csv checks for encoding and binary content
_BLOCK = 1 << 20
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

        The file is read through a text decoder a block of about 16 Ki characters at a time
        (`batch.io.blocks`): a block proven clean is split into fields at C speed (by the `csv`
        reader, or `str.split` where it holds no quote) and turned into `Row`s by calls that
        run at C speed too (`_block_builder`); any other is read record by record, as
        `rows_by_record` reads the whole file. Memory stays bounded whatever the file's size.
        """
        width = effective_width(self.headers)
        make = _row_maker(self.match.by_index, width)
        build = _block_builder(self.match.by_index, width, make)
        with open_input(self.path) as raw:
            for first, _, records, problems, text in self._blocks(Inspecting(raw, self.encoding)):
                if problems is None:
                    yield from build(first, records, text)
                    continue
                for number, fields, problem in zip(itertools.count(first), records, problems):
                    yield make(number, fields) if problem is None else _with_problem(make(number, fields), problem)

    def rows_by_record(self) -> Iterator[Row]:
        """What `rows` gives, read one record at a time with every check on every record: the
        reader `rows` was before its blocks, kept as the reference that tests/test_csv_blocks.py
        and benchmarks/read.py hold `rows` to."""
        width = effective_width(self.headers)
        make = _row_maker(self.match.by_index, width)
        with open_input(self.path) as raw:
            for number, fields, problem in self._records(Inspecting(raw, self.encoding)):
                if problem is None:
                    yield make(number, fields)
                else:
                    yield _with_problem(make(number, fields), problem)

    @property
    def dialect(self) -> OutputDialect:
        """How the files a run writes for people should look to match this input (`batch.io.dialect`)."""
        return OutputDialect(self.delimiter, 2 if self.portal_template else 1)

    def raw_records(self, wanted: Iterable[int], *, sha256: str | None = None) -> Iterator[str]:
        """The text of the head (the version line, when there is one, and the header line),
        then of each record whose number is in `wanted` (ascending), exactly as the file has
        them: quotes, delimiters and quoted line breaks as written, each ending in a line
        break. A second streaming pass (retry.csv), in bounded memory: `wanted` is walked
        alongside the records. A record too long to be read (`RECORD_CHARS`) is given as the
        fields that were read of it. With `sha256` (the file's when the run read it) the whole
        file is read, and `InputFileError` raised at the end if it changed meanwhile."""
        head: list[str] = []
        feeds: list[Feed] = []
        numbers = iter(wanted)
        next_number = next(numbers, None)
        head_given = False
        digest = hashlib.sha256() if sha256 else None
        with open_input(self.path) as raw:
            for number, fields, _ in self._records(Inspecting(raw, self.encoding, digest), head=head, feeds=feeds):
                if not head_given:
                    head_given = True
                    yield _ended("".join(head))
                while next_number is not None and next_number < number:
                    next_number = next(numbers, None)
                if next_number is None and digest is None:
                    return
                if next_number == number:
                    feed = feeds[0]
                    text = "".join(feed.lines)
                    if OVERSIZED in feed.flags or not text:
                        text = _joined(fields, self.delimiter)
                    yield _ended(text)
            if digest is not None:
                for block in iter(lambda: raw.read(_BLOCK), b""):  # what the csv reader left unread
                    digest.update(block)
        if not head_given:
            yield _ended("".join(head))
        if digest is not None and digest.hexdigest() != sha256:
            raise InputFileError(self.path, "changed since the run read it")

    def scan(self) -> Scan:
        """Read the whole file once, before anything is acted on: its SHA-256 (a resumed run
        needs the very same rows), its number of data records (for progress and
        confirmations), and its first structural problem (an invalid byte), raised as
        `InputFileError`."""
        digest = hashlib.sha256()
        with open_input(self.path) as raw:
            records = sum(block.counted for block in self._blocks(Inspecting(raw, self.encoding, digest),
                                                                count_only=True))
            for block in iter(lambda: raw.read(_BLOCK), b""):  # what the csv reader left unread
                digest.update(block)
        return Scan(records=records, sha256=digest.hexdigest())

    def _blocks(self, inspecting: Inspecting, *, count_only: bool = False) -> Iterator[Block]:
        """The data records as `Block`s (`batch.io.blocks`); decoding trouble as `InputFileError`,
        after the records `rows_by_record` would have given before it (`_replayed`)."""
        text = io.TextIOWrapper(io.BufferedReader(inspecting, buffer_size=_BLOCK), encoding=self.encoding,
                                newline="")
        done = 0
        try:
            for block in Blocks(text, inspecting, self.delimiter, self._flagged, self._malformed).blocks(
                    2 if self.portal_template else 1, count_only=count_only):
                yield block
                done = block.first + block.counted - 1
            return
        except UnicodeDecodeError:
            pass
        finally:
            text.detach()  # the caller closes the file it opened
        yield from self._replayed(done)

    def _replayed(self, done: int) -> Iterator[Block]:
        """The records past `done` that the record-by-record reader gives before the bytes it
        cannot decode, then its `InputFileError`. The file is read again from its start, so that
        the records given and the message ("reading stopped after row N") are the ones that
        reader gives: where a decoding error surfaces depends on how the text was read."""
        records: list[list[str]] = []
        problems: list[str | None] = []
        with open_input(self.path) as raw:
            try:
                for number, fields, problem in self._records(Inspecting(raw, self.encoding)):
                    if number > done:
                        records.append(fields)
                        problems.append(problem)
            except InputFileError as exc:
                error = exc
            else:  # not expected: the same bytes, the same decoder
                error = InputFileError(self.path, f"cannot be decoded as {self.encoding}")
        if records:
            yield Block(done + 1, len(records), records, problems, "")
        raise error

    def _records(self, inspecting: Inspecting, *, head: list[str] | None = None,
                 feeds: list[Feed] | None = None) -> Iterator[tuple[int, list[str], str | None]]:
        """(number, fields, problem) of each data record; decoding trouble as `InputFileError`.
        `head` receives the raw lines of the version and header lines, `feeds` the `Feed`,
        whose `lines` hold the raw lines of the record just yielded (`raw_records`)."""
        number = 0
        text = io.TextIOWrapper(io.BufferedReader(inspecting, buffer_size=_BLOCK), encoding=self.encoding,
                                newline="")
        feed = Feed(text, inspecting, self.delimiter)
        if feeds is not None:
            feeds.append(feed)
        lines, flags, source = feed.lines, feed.flags, feed.lines_read()
        clear = lines.clear
        reader = csv.reader(source, delimiter=self.delimiter, strict=True)
        try:
            for _ in range(2 if self.portal_template else 1):  # checked by open_csv already
                next_lenient(reader, feed, source)
                if head is not None:
                    head += lines
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
                    fields = reread(feed, source)
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
        """What is wrong with a record that `Feed` flagged (too long, control characters)."""
        if OVERSIZED in flags:
            return (f"row is longer than {RECORD_CHARS:,} characters (a customer's properties take far less): it "
                    "was skipped unread; check that this is the right file, and for a quoted field that lacks its "
                    'closing quote (") in or before this row')
        problems = []
        if CONTROL_CHARACTER in flags:
            for index, field in enumerate(fields):
                found = CONTROL.search(field)
                if found:
                    problems.append(f"{self._label(index)} holds the control character {shown(found.group())} at "
                                    f"character {found.start() + 1}; remove it (control characters are never sent)")
        if LONG_CELL in flags:
            problems += [f"{self._label(index)} is {len(field):,} characters long, more than the {CELL_CHARS:,} a "
                         "cell may hold" for index, field in enumerate(fields) if len(field) > CELL_CHARS]
        return "; ".join(problems) or None

    def _malformed(self, error: str, fields: list[str], feed: Feed) -> str:
        """What is wrong with a record the strict reader stopped on (`reread` read it again)."""
        if "expected after" in error:
            stray = text_after_closing_quote("".join(feed.lines), self.delimiter)
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


def _ended(text: str) -> str:
    """`text` with a line break at its end (the last line of a file may lack one)."""
    return text if not text or text.endswith(("\n", "\r")) else text + "\r\n"


def _joined(fields: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(fields)
    return out.getvalue()


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
        raise InputFileError(path, f"is empty; expected a header line with the columns {expected_columns(columns)}")

    portal = is_version_line(re.split(r"[\r\n]", text, maxsplit=1)[0])
    header_text = after_first_line(text) if portal else text
    if portal and not header_text.strip("\r\n"):
        raise InputFileError(path, "has the admin center's version line but no header line under it")
    if portal and is_version_line(re.split(r"[\r\n]", header_text, maxsplit=1)[0]):
        raise InputFileError(path, "has two version lines (the first two lines); keep only the first: the header "
                                   "line must come right under it")
    chosen_delimiter = delimiter or sniff_delimiter(header_text)

    headers = header_from_head(path, text, chosen_delimiter, portal, complete=len(head) < HEAD_BYTES)
    if headers is None:  # a header line longer than the head: read it from the file
        with open_input(path) as raw, io.TextIOWrapper(raw, encoding=chosen, newline="") as stream:
            headers = read_header(path, chosen, stream, chosen_delimiter, portal, block_size=_BLOCK)

    headers = [h.strip() for h in headers]
    if not any(headers):
        where = "the line under the version line" if portal else "the first line"
        raise InputFileError(path, f"the header line ({where}) is empty; expected the columns {expected_columns(columns)}")
    match = match_headers(headers, columns)
    if match.missing:
        raise InputFileError(path, missing_message(match, headers, columns))
    return CsvSource(path=path, encoding=chosen, delimiter=chosen_delimiter, portal_template=portal,
                     headers=headers, match=match)


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
                return Row(number, pick(fields), example=":" in first and _is_example(first))
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


_NEUTRALISED = re.compile(r"'[=+\-@\t\r]")  # in a block's text wherever a cell of it starts so (batch.io.quoting)


def _block_builder(by_index: dict[int, str], width: int,
                   make: Callable[[int, list[str]], Row]) -> Callable[[int, list[list[str]], str], list[Row]]:
    """A function turning a clean block's records into `Row`s: what `make` gives for each,
    with the cells of every record taken by calls that run at C speed; `make` itself only for
    the records that need a look of their own (a field count other than the header's, a
    blank or example-looking first cell, a cell neutralised for Excel)."""
    items = sorted(by_index.items())
    indices = [i for i, _ in items]
    names = [n for _, n in items]
    get: Callable[[list[str]], Iterable[str]] | None = None
    if indices != list(range(width)):
        get = operator.itemgetter(slice(indices[0], indices[0] + 1)) if len(indices) == 1 else (
            operator.itemgetter(*indices) if indices else operator.itemgetter(slice(0, 0)))
    first_cell = operator.itemgetter(0)

    def build(first: int, records: list[list[str]], text: str) -> list[Row]:
        if set(map(len, records)) != {width}:
            return list(map(make, itertools.count(first), records))
        firsts = list(map(first_cell, records))
        own: set[int] = set()
        if not all(firsts) or ":" in "\x00".join(firsts):
            own.update(i for i, cell in enumerate(firsts) if not cell or ":" in cell)
        if "'" in text and _NEUTRALISED.search(text):
            own.update(i for i, fields in enumerate(records) if any_quoted(fields))
        fields_of = records if get is None else map(get, records)
        rows = _new_rows(first, list(map(dict, map(zip, itertools.repeat(names), fields_of))))
        for i in own:
            rows[i] = make(first + i, records[i])
        return rows

    return build


# A `Row` takes 0.65 µs to make through its frozen dataclass __init__ (five calls of
# object.__setattr__ from Python), half of it with the slots' own setters called from C over a
# block's rows: `object.__new__`, then each slot set column by column (`_new_rows`).
_SETTERS: dict[str, Callable[[Row, object], None]] = {f.name: vars(Row)[f.name].__set__ for f in dataclasses.fields(Row)}
_DEFAULTS = [(_SETTERS[f.name], f.default) for f in dataclasses.fields(Row) if f.name not in ("number", "cells")]
_drain: Callable[[Iterable[None]], None] = deque[None](maxlen=0).extend


def _new_rows(first: int, cells: list[dict[str, str]]) -> list[Row]:
    """`[Row(first, cells[0]), Row(first + 1, cells[1]), ...]`, made at C speed."""
    count = len(cells)
    rows: list[Row] = list(map(object.__new__, itertools.repeat(Row, count)))
    _drain(map(_SETTERS["number"], rows, itertools.count(first)))
    _drain(map(_SETTERS["cells"], rows, cells))
    for setter, default in _DEFAULTS:
        _drain(map(setter, rows, itertools.repeat(default, count)))
    return rows


def _is_example(first: str) -> bool:
    """A row left from the admin center's template example ("Example: Chris Green", ...)."""
    return first[:1] in "Ee \t\ufeff" and first.lstrip(" \t\ufeff")[:8].casefold() == "example:"


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"
