"""The head of an input file: the admin center's version line, the delimiter, the header
line and what its columns say (which are missing, which are unknown)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from batch.errors import InputFileError
from batch.io.columns import ColumnSet, HeaderMatch
from batch.io.encodings import BLOCK, decode_problem
from batch.io.quoting import shown
from batch.io.records import OVERSIZED, RECORD_CHARS, Feed

DELIMITERS = (",", ";", "\t")


_VERSION_LINE = re.compile(r'"?version:\s*v?\d+(\.\d+)*"?', re.IGNORECASE)


def header_from_head(path: Path, text: str, delimiter: str, portal: bool, *, complete: bool) -> list[str] | None:
    """The header record parsed from the decoded head, or None when the head may end inside it."""
    stream = io.StringIO(text, newline="")
    headers = read_header(path, None, stream, delimiter, portal)
    return headers if complete or stream.tell() < len(text) else None


class _Trusting:
    """For `Feed`: the header is not searched for control characters (its cells are only
    ever shown escaped, `batch.io.quoting.shown`)."""

    suspicious = False


def read_header(path: Path, codec: str | None, stream: io.TextIOBase, delimiter: str, portal: bool, *,
                block_size: int = BLOCK) -> list[str]:
    feed = Feed(stream, _Trusting(), delimiter)
    reader = csv.reader(feed.lines_read(), delimiter=delimiter, strict=False)
    try:
        if portal:
            next(reader)
            feed.lines.clear()
        headers = next(reader, [])
        if OVERSIZED in feed.flags:
            raise InputFileError(path, f"the header line is longer than {RECORD_CHARS:,} characters; is this the "
                                       "right file? (a quote left open in the header line makes it run on)")
        return headers
    except csv.Error as exc:
        raise InputFileError(path, f"the header line cannot be read ({exc}); check its quotes") from exc
    except UnicodeDecodeError as exc:  # only past HEAD_BYTES, in a header longer than that
        assert codec is not None
        raise InputFileError(path, decode_problem(path, codec, block_size=block_size) or f"cannot be decoded ({exc})") from exc


def is_version_line(line: str) -> bool:
    """The admin center's first line, also as Excel saves it (`version:v1.0,,,,`)."""
    return bool(_VERSION_LINE.fullmatch(line.strip().rstrip(",;\t").strip()))


def after_first_line(text: str) -> str:
    for index, char in enumerate(text):
        if char in "\r\n":
            rest = text[index + 1:]
            return rest[1:] if char == "\r" and rest.startswith("\n") else rest
    return ""


def sniff_delimiter(text: str) -> str:
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


def effective_width(headers: list[str]) -> int:
    """The header's width without the blank cells Excel leaves at its end."""
    return max((i + 1 for i, h in enumerate(headers) if h.strip()), default=0)


def expected_columns(columns: ColumnSet) -> str:
    return ", ".join(columns.template or columns.names)


def missing_message(match: HeaderMatch, headers: list[str], columns: ColumnSet) -> str:
    parts = []
    for name in match.missing:
        closest = match.suggestions.get(name)
        parts.append(f"{name} (the closest header is '{shown(closest)}')" if closest else name)
    noun = "column" if len(parts) == 1 else "columns"
    found = ", ".join(f"'{shown(h, 60)}'" for h in headers[:50] if h) + (", ..." if len(headers) > 50 else "")
    return f"missing {noun} {'; '.join(parts)}; expected columns: {expected_columns(columns)}; the header line has: {found}"


