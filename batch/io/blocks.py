"""Reading CSV records a block at a time (issue 16: a million rows in well under two seconds).

The per-record reader (`Feed` and the strict `csv` reader, `batch.io.records`) pays some
Python for every line and every record: a size count, a control-character search, the lines
kept for a re-read. Almost every block of a real file needs none of it, and a block can be
proven so with a few calls that run at C speed over the whole block. So `Blocks` reads lines
a batch at a time (`readline` with a limit, called from C: `iter(partial(...))`, `islice`),
joins them into a block of about `BLOCK_CHARS` characters that ends where a record ends
(an even number of quotes), and hands the block to the `csv` reader whole when:

- no line reached the line limit (`LINE_CHARS`), so every line is whole, as `Feed` reads it;
- the block is no longer than `RECORD_CHARS`, so none of its records is oversized;
- it holds no control character (searched only once `Inspecting` saw a byte that may be one);
- the strict `csv` reader reads it to its end without an error (no text after a closing quote,
  no quote left open at the block's end); a block without a quote is split by `str.split`
  instead, line by line, which gives the csv reader's fields where no quote can open one;
- no cell is longer than `CELL_CHARS` (looked at only when a record spans several lines:
  otherwise every record is a line shorter than `LINE_CHARS`).

Such a block's records are exactly what the per-record reader makes of the same text, with
no problem: it starts where a record starts, its lines are the lines `Feed` would read (no
limit bites in a record of at most `RECORD_CHARS`), and the `csv` reader's states depend on
the text alone. Any other block is read again by the per-record reader itself, from the
block's first line (`Resumed` puts the block's text back in front of the file), on until a
record ends at or past the block's end; then blocks go on. So a problem is found and worded
by the same code as before, and the records keep their numbers.

A scan (`CsvSource.scan`: hash, record count, decoding) needs no fields and no problems: a
block without a quote and without a line at the limit is as many records as lines (a line
break ends a record wherever no quote opened a field), so it is counted, not split.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from batch.io.records import CELL_CHARS, CONTROL, RECORD_CHARS, Feed, reread

BLOCK_CHARS = 1 << 14  # characters per block (about 180 rows of a create file): small enough to keep memory low
LINE_CHARS = 1 << 13   # longer lines are read by the per-record reader (real rows take a few hundred characters)
BATCH_LINES = 64       # lines read per call from C, between two looks at the block's size


class Block(NamedTuple):
    """Records `first` to `first + counted - 1` of the file. `problems` is None for a block
    proven clean (`text` is then its raw text), else what the per-record reader found, per
    record. `records` is empty in a block that was only counted (`Blocks.blocks(count_only=True)`)."""

    first: int
    counted: int
    records: list[list[str]]
    problems: list[str | None] | None
    text: str


class Resumed:
    """A text stream's `readline(limit)`, with some text put back in front of it (`push`):
    what it returns is what the stream's own `readline` would have returned had that text
    never been read, line ends (a lone CR, CR LF) and limits included."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self._buffer: io.StringIO | None = None
        self._size = 0

    @property
    def drained(self) -> bool:
        return self._buffer is None or self._buffer.tell() >= self._size

    def push(self, text: str) -> None:
        """Put `text` (read from the stream, in order) back; only once the last is drained."""
        assert self.drained
        self._buffer, self._size = (io.StringIO(text, newline=""), len(text)) if text else (None, 0)

    def readline(self, limit: int) -> str:
        if self._buffer is None:
            return self._text.readline(limit)
        line = self._buffer.readline(limit)
        if self._buffer.tell() < self._size:
            return line
        self._buffer = None  # the line reached the end of the text put back: it may go on in the stream
        if not line:
            return self._text.readline(limit)
        if len(line) >= limit or line.endswith("\n"):
            return line
        if line.endswith("\r"):  # a CR LF line end may straddle the two
            after = self._text.readline(1)
            if after == "\n":
                return line + after
            self.push(after)
            return line
        return line + self._text.readline(limit - len(line))


Flagged = Callable[[list[str], list[str]], "str | None"]
Malformed = Callable[[str, list[str], Feed], str]


class Blocks:
    """The data records of a text stream (`newline=""`) positioned at the start of the file,
    as `Block`s; `skip` records (the version line, the header) are read and dropped first.
    `flagged` and `malformed` word what the per-record reader finds (`CsvSource`)."""

    def __init__(self, text: io.TextIOBase, inspecting: Any, delimiter: str, flagged: Flagged, malformed: Malformed) -> None:
        self._text = text
        self._inspecting = inspecting
        self._delimiter = delimiter
        self._flagged = flagged
        self._malformed = malformed
        self._source = Resumed(text)

    def blocks(self, skip: int, *, count_only: bool = False) -> Iterator[Block]:
        """The blocks past the first `skip` records. With `count_only`, a block with no quote
        (each line a record) and no line at the line limit is counted, not split: what a
        scan needs (`CsvSource.scan`)."""
        records, problems, ended = self._per_record("", at_least=skip)
        number = len(records) - skip
        if number > 0:
            yield Block(1, number, records[skip:], problems[skip:], "")
        lines_of = iter(functools.partial(self._text.readline, LINE_CHARS), "")
        while not ended:
            lines, text, ended = self._block_lines(lines_of)
            if not lines:
                return
            if count_only and '"' not in text and max(map(len, lines)) < LINE_CHARS:
                yield Block(number + 1, len(lines), [], None, text)
                number += len(lines)
                continue
            clean = self._clean(lines, text)
            if clean is None:
                records, problems, ended = self._per_record(text, at_least=0)
                if records:
                    yield Block(number + 1, len(records), records, problems, text)
                number += len(records)
            elif clean:
                yield Block(number + 1, len(clean), clean, None, text)
                number += len(clean)

    def _block_lines(self, lines_of: Iterator[str]) -> tuple[list[str], str, bool]:
        """About `BLOCK_CHARS` of whole lines, more while the quotes in them are odd (a
        quoted field goes on); their text; and whether the file ended."""
        lines: list[str] = []
        size = 0
        while size < BLOCK_CHARS:
            batch = list(itertools.islice(lines_of, BATCH_LINES))
            lines += batch
            size += sum(map(len, batch))
            if len(batch) < BATCH_LINES:
                return lines, "".join(lines), True
        text = "".join(lines)
        odd = text.count('"') % 2
        if not odd:
            return lines, text, False
        ended = False
        while odd and size <= RECORD_CHARS:
            line = next(lines_of, "")
            if not line:
                ended = True
                break
            lines.append(line)
            size += len(line)
            odd ^= line.count('"') % 2
        return lines, "".join(lines), ended

    def _clean(self, lines: list[str], text: str) -> list[list[str]] | None:
        """The records of a block, if it is proven clean (module docstring), else None."""
        if len(text) > RECORD_CHARS or max(map(len, lines)) >= LINE_CHARS:
            return None
        if self._inspecting.suspicious and CONTROL.search(text):
            return None
        if '"' not in text:  # each line a record, split at the delimiters: the csv reader's fields, 0.6x its time
            stripped = list(map(str.rstrip, lines, itertools.repeat("\r\n")))
            split = list(map(str.split, stripped, itertools.repeat(self._delimiter)))
            if "" in stripped:  # an empty line is a record of no field
                split = [fields if line else [] for fields, line in zip(split, stripped)]
            return split
        reader = csv.reader(lines, delimiter=self._delimiter, strict=True)
        try:
            records = list(reader)
        except csv.Error:
            return None
        if reader.line_num != len(records) and len(text) > CELL_CHARS:  # a record over several lines
            if max(map(len, itertools.chain.from_iterable(records)), default=0) > CELL_CHARS:
                return None
        return records

    def _per_record(self, text: str, *, at_least: int) -> tuple[list[list[str]], list[str | None], bool]:
        """The records from `text` (put back in front of the stream) on, read by the per-record
        reader until one ends at or past the end of `text`, `at_least` of them; their problems;
        and whether the file ended."""
        source = self._source
        source.push(text)
        feed = Feed(source, self._inspecting, self._delimiter)
        lines, flags, feed_lines = feed.lines, feed.flags, feed.lines_read()
        reader = csv.reader(feed_lines, delimiter=self._delimiter, strict=True)
        records: list[list[str]] = []
        problems: list[str | None] = []
        while True:
            try:
                for fields in reader:
                    problems.append(self._flagged(fields, flags) if flags else None)
                    records.append(fields)
                    flags.clear()
                    lines.clear()
                    if len(records) >= at_least and source.drained and not feed.pending:
                        return records, problems, False
                return records, problems, True
            except csv.Error as exc:
                fields = reread(feed, feed_lines)
                records.append(fields)
                problems.append(self._malformed(str(exc), fields, feed))
                lines.clear()
                flags.clear()
                if len(records) >= at_least and source.drained and not feed.pending:
                    return records, problems, False


__all__ = ["BATCH_LINES", "BLOCK_CHARS", "LINE_CHARS", "Block", "Blocks", "Resumed"]
