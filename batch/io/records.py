"""Reading CSV records in bounded memory, whatever the line length: the raw bytes checked a
block at a time for what may decode to a control character (`Inspecting`), lines fed to the
csv module with each record's size watched (`Feed`), the end of an oversized record found
without reading it whole (`RecordEnd`), and a record the strict reader stopped on read again
leniently, so that the rows after it keep their numbers (`reread`). `batch.io.csvio` turns
what these find into row problems."""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

CELL_CHARS = 1 << 16    # the longest cell read (64 Ki characters; Graph's longest property takes ~1,000)
RECORD_CHARS = 1 << 20  # the longest record read (1 Mi characters); a longer one is skipped unread
_SKIP_CHARS = 1 << 20   # the piece size in which the rest of an oversized record is read and dropped

# The csv module refuses a field longer than its process-wide limit (128 Ki characters by
# default) with an error that would end the reading; the record limit above (enforced
# before the csv module sees the lines) is the one that counts, so raise the csv module's.
if csv.field_size_limit() < RECORD_CHARS + 2:
    csv.field_size_limit(RECORD_CHARS + 2)

# C0 but tab, LF, CR; DEL; C1: what no cell may hold.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
OVERSIZED, LONG_CELL, CONTROL_CHARACTER = "oversized", "long cell", "control"



class Inspecting(io.RawIOBase):
    """A read-only view of a binary file that feeds every byte read to a digest (if given)
    and notes whether any block holds a byte that may decode to a control character:
    `suspicious` (sticky) tells `Feed` to search its lines for them from then on. A codec
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
        return bytes(b for b in range(0x80) if CONTROL.match(chr(b)))
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
        if CONTROL.match(char):
            found.append(byte)
    return bytes(found)


class Feed:
    """The lines of a text stream for the `csv` reader, each read with a limit, so that no
    line or record larger than `RECORD_CHARS` is ever held.

    `lines` are the raw lines of the record being read (the caller clears it when the csv
    reader has returned a record), and `flags` what was noticed in them. A line boundary
    inside a record is always inside a quoted field (elsewhere a line break ends the
    record), which is how an oversized record is ended for the csv reader: its rest is
    skipped (`RecordEnd`) and `"\n` (or `\n` when it is one line) takes its place.
    """

    def __init__(self, text: Any, inspecting: Any, delimiter: str) -> None:
        self._text = text
        self._inspecting = inspecting
        self._delimiter = delimiter
        self.lines: list[str] = []
        self.flags: list[str] = []
        self.pending = ""  # what was read past the end of an oversized record: the next record's start

    def lines_read(self) -> Iterator[str]:
        readline = self._text.readline
        lines, flags, inspecting, search = self.lines, self.flags, self._inspecting, CONTROL.search
        append = lines.append
        size = 0
        while True:
            if not lines:
                size = 0
            if self.pending:
                line, self.pending = self.pending, ""
            else:
                line = readline(RECORD_CHARS + 1 - size)
            if not line:
                return
            size += len(line)
            if size > CELL_CHARS:
                if size > RECORD_CHARS:
                    self.pending = RecordEnd(self._delimiter, quoted=bool(lines)).skip(line, readline)
                    flags.append(OVERSIZED)
                    yield '"\n' if lines else "\n"
                    continue
                flags.append(LONG_CELL)
            if inspecting.suspicious and search(line):
                flags.append(CONTROL_CHARACTER)
            append(line)
            yield line


class RecordEnd:
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


def next_lenient(reader: Iterator[list[str]], feed: Feed, source: Iterator[str]) -> list[str]:
    """The next record of the strict `reader`, or, where it stops, as the lenient reader
    reads it (the header and version line: open_csv has judged them already)."""
    try:
        return next(reader, [])
    except csv.Error:
        return reread(feed, source)


def reread(feed: Feed, source: Iterator[str]) -> list[str]:
    """The record the strict reader stopped on, read again by a lenient reader from its raw
    lines (and, when it goes on past the line the strict reader stopped in, from `source`),
    so that it ends where it always did and the records after it keep their numbers."""
    lenient = csv.reader(itertools.chain(list(feed.lines), source), delimiter=feed._delimiter, strict=False)
    try:
        return next(lenient, [])
    except csv.Error:
        return []


def text_after_closing_quote(record: str, delimiter: str) -> int | None:
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


