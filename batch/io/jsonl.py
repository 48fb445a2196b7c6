"""Reading JSON Lines (.jsonl, .ndjson): one JSON object per line, read a line at a time.

Why `json.loads` per line and not `pandas.read_json(lines=True, chunksize=...)`: pandas turns
a chunk into a DataFrame, where a line that is not valid JSON ends the whole file with an
error and values are converted before `dtype=str` applies (`1.50` becomes `1.5`); one line
at a time keeps each line's trouble a problem of its row and each value as written.

The columns are the keys of the first line that holds a JSON object (in their order). A
later object with a key the first one lacks fails its row, naming the key (add the key to the
first object, with null, to use it); a key it does not have is a blank cell. Values become
text as the file writes them: a string as is (`"0012"`, `"NA"` stay so), a number as its
digits (`parse_int=str`, `parse_float=str`: `1.50` stays `1.50`), true/false as `true` and
`false`, null as ''; an object or an array fails its row (a cell holds text).

Each line is one record: a blank line is a blank row (as CSV's empty line), a line that is
not valid JSON, not an object, not UTF-8 (RFC 8259: JSON text is UTF-8; a BOM at the start
is allowed), nested too deeply for the parser (Python's recursion limit), an object naming a
key twice (RFC 8259 §4: "names within an object SHOULD be unique"; which value wins is up to
the reader, so the row is refused rather than one value quietly kept) or longer than
`RECORD_CHARS` fails its row and the lines after it are read on. A `\\uD800`-style escape
of a lone surrogate (valid JSON, RFC 8259 §8.2, but no character: it cannot be sent to Graph
as UTF-8) fails its row too, its cell kept as the file wrote it (`\\ud800`), so results.csv
and retry.csv can be written.
Row numbers: `batch.io.tabular` (results.csv's `line` is the file's line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from batch.errors import InputFileError
from batch.io.columns import ColumnSet
from batch.io.opening import open_input
from batch.io.quoting import shown
from batch.io.records import RECORD_CHARS
from batch.io.tabular import Record, TabularSource, matched_header

_LIMIT = 4 * RECORD_CHARS  # bytes: a UTF-8 character takes at most four
_SURROGATE = re.compile("[\ud800-\udfff]")  # left by json.loads only for a lone one (a pair becomes one character)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # cheap test of a line: can json.loads leave one?


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook: the object, or `_DuplicateKeyError` naming a repeated key."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return value


def _escaped(text: str) -> str:
    """`text` with each lone surrogate written back as the JSON escape the file holds."""
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _object(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The object a line holds, or why it holds none (None, None: a blank line)."""
    if not line.strip():
        return None, None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"line is not valid UTF-8 (byte {exc.start + 1}); save the file as UTF-8"
    try:
        value = json.loads(text, parse_int=str, parse_float=str, parse_constant=str, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        return None, f"line is not valid JSON ({exc.msg} at character {exc.colno}); fix this line"
    except _DuplicateKeyError as exc:
        key = shown(_escaped(exc.key), 60)
        return None, f"the key '{key}' appears twice in this line's object; keep one of them"
    except RecursionError:
        return None, "line nests arrays or objects too deeply to be read (a cell holds text); fix this line"
    if not isinstance(value, dict):
        return None, f"line holds a JSON {_kind(value)}, not an object ({{\"column\": \"value\", ...}})"
    return value, None


def _kind(value: object) -> str:
    return {list: "array", str: "string", type(None): "null", bool: "true/false"}.get(type(value), "number")


def _text(value: object) -> str | None:
    """A JSON value as a cell's text; None for an object or an array."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return None


def _lines(raw: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Each line (without its line break) and whether it was too long to be read whole."""
    first = True
    while True:
        line = raw.readline(_LIMIT + 1)
        if not line:
            return
        oversized = len(line) > _LIMIT and not line.endswith(b"\n")
        if oversized:
            while True:  # the rest of the line, dropped a piece at a time
                rest = raw.readline(_LIMIT)
                if not rest or rest.endswith(b"\n"):
                    break
            line = b""
        if first and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        first = False
        yield line.rstrip(b"\r\n"), oversized


class JsonlSource(TabularSource):
    kind = "jsonl"

    def __init__(self, path: Path, headers: list[str], match: Any) -> None:
        super().__init__(path, headers, match, header_lines=0)
        self._position = {key: index for index, key in enumerate(headers)}

    def describe(self) -> str:
        return "JSON Lines"

    def _records(self) -> Iterator[Record]:
        width = len(self.headers)
        blank = [""] * width
        with open_input(self.path) as raw:
            for number, (line, oversized) in enumerate(_lines(raw), start=1):
                if oversized:
                    yield number, list(blank), (f"line is longer than {RECORD_CHARS:,} characters (a customer's "
                                                "properties take far less): it was skipped unread")
                    continue
                value, problem = _object(line)
                if value is None:
                    yield number, list(blank), problem
                else:
                    yield self._fields(number, value, line)

    def _fields(self, number: int, value: dict[str, Any], line: bytes) -> Record:
        fields = [""] * len(self.headers)
        problems = []
        surrogates = _SURROGATE_ESCAPE.search(line) is not None
        for key, item in value.items():
            if surrogates and _SURROGATE.search(key):
                key = _escaped(key)
                problems.append(f"key '{shown(key, 60)}' holds a lone surrogate escape (\\ud800-\\udfff), which is "
                                "no character; write the character itself or remove the escape")
            index = self._position.get(key.strip())
            if index is None:
                problems.append(f"key '{shown(key, 60)}' is not in the first line's object, whose keys are the "
                                "columns; add it there (with null) to use it")
                continue
            text = _text(item)
            if text is None:
                problems.append(f"'{shown(key, 60)}' holds a JSON {'object' if isinstance(item, dict) else 'array'}"
                                "; give its value as text")
            else:
                if surrogates and _SURROGATE.search(text):
                    text = _escaped(text)
                    problems.append(f"'{shown(key, 60)}' holds a lone surrogate escape (\\ud800-\\udfff), which is "
                                    "no character; write the character itself or remove the escape")
                fields[index] = text
        return number, fields, "; ".join(problems) or None


def open_jsonl(path: Path, columns: ColumnSet) -> JsonlSource:
    """Find the columns (the first object's keys) and match them (`InputFileError` otherwise)."""
    first: str | None = None  # why the first line that is not blank holds no object
    with open_input(path) as raw:
        if raw.read(4)[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise InputFileError(path, "is UTF-16 (its byte order mark says so); a JSON Lines file is UTF-8: save it "
                                       "again as UTF-8")
        raw.seek(0)
        for line, oversized in _lines(raw):
            value, why = (None, None) if oversized else _object(line)
            if value is not None:
                break
            first = first or why
        else:
            because = "" if not first else f": its first line {first[5:]}" if first.startswith("line ") else \
                f": in its first line, {first}"
            raise InputFileError(path, f"holds no JSON object{because}. A JSON Lines file has one object per line, "
                                       'such as {"displayName": "Chris Green", "email": "chris@contoso.com"}')
    headers = [_escaped(key.strip()) for key in value]  # as the file wrote it (a lone surrogate: module docstring)
    match = matched_header(path, headers, columns, where="the keys of the first object")
    return JsonlSource(path, headers, match)
