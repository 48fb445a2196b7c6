"""Formula injection, both ways.

A spreadsheet reads a cell that starts with `=`, `+`, `-`, `@`, tab or CR as a formula
(OWASP, "CSV Injection"). Files we write for people to open (results.csv, exports) put a
single quote before such a cell, which Excel shows and never evaluates: `=HYPERLINK(…)`
is written `'=HYPERLINK(…)`.

So that an exported file can be fed back unchanged, the rule is a bijection: a cell that
already starts with quotes followed by one of those characters gets one more quote, and
every input file is read with one such quote taken off again (`'+1 555 0100` is read as
`+1 555 0100`, as Excel users mean it when they type the quote themselves). Other cells,
`'tis` or `O'Brien` among them, are written and read exactly as they are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

SHOWN_CHARS = 200  # how much of a cell value a message quotes

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DANGEROUS = re.compile(r"'*[=+\-@\t\r]")
_QUOTED = re.compile(r"'+[=+\-@\t\r]")


def neutralise(value: object) -> str:
    """The cell as written for a spreadsheet: one quote more before a formula-looking start."""
    text = "" if value is None else str(value)
    return "'" + text if _DANGEROUS.match(text) else text


# A chunk's text cells joined by a separator that no cell start can hide behind: each cell
# starts right after one, so a formula-looking start is one of these two-character needles.
_SEPARATOR = "\x1f"
_BLOCK_ROWS = 128
_RISKY_FIRST = frozenset(("'", *FORMULA_STARTS))
_RISKY_STARTS = tuple(_SEPARATOR + start for start in ("'", *FORMULA_STARTS))


def neutralise_rows(rows: list[list[Any]], text: Sequence[int]) -> list[list[Any]]:
    """`rows` as written for a spreadsheet: `neutralise` applied to the cells at `text` (which
    must be strings), a chunk at a time. The usual chunk has no cell that starts with a quote
    or a formula character, which a handful of substring searches over its joined cells shows
    in well under a microsecond a row; a block of rows that has one is neutralised cell by
    cell (blocks of `_BLOCK_ROWS`, so that one such cell costs little)."""
    out: list[list[Any]] = []
    at = frozenset(text)
    for first in range(0, len(rows), _BLOCK_ROWS):
        block = rows[first:first + _BLOCK_ROWS]
        joined = _SEPARATOR + _SEPARATOR.join([row[i] for row in block for i in text])
        if any(start in joined for start in _RISKY_STARTS):
            block = [[neutralise(cell) if i in at and cell[:1] in _RISKY_FIRST else cell for i, cell in enumerate(row)]
                     for row in block]
        out += block
    return out


def neutralised_in_sql(column: str) -> str:
    """An SQLite expression of `column`'s text as `neutralise` writes it: one quote more when,
    past any quotes it starts with, its first character is a formula start. For files written
    straight from a query (results.csv, from the journal); tests hold it equal to `neutralise`.
    The text is trimmed of its quotes only when it starts with a quote or a formula start: the
    usual cell starts with neither (1.8 -> 1.3 s for results.csv's query of 1,000,000 rows)."""
    starts = ", ".join(f"char({ord(c)})" for c in FORMULA_STARTS)
    quote = "char(39)"
    return (f"CASE WHEN substr({column}, 1, 1) IN ({starts}, {quote})"
            f" AND substr(ltrim({column}, {quote}), 1, 1) IN ({starts})"
            f" THEN {quote} || {column} ELSE {column} END")


def any_quoted(cells: list[str]) -> bool:
    """Does any cell carry a quote that `neutralise` (or a person in Excel) put there? Fast
    for the usual row, which has no quote at all: the input reader asks this of every row."""
    return "'" in "".join(cells) and any(map(_QUOTED.match, cells))


def unquote(text: str) -> str:
    """The value a neutralised cell stands for (the inverse of `neutralise`)."""
    return text[1:] if _QUOTED.match(text) else text


def shown(value: str, limit: int | None = SHOWN_CHARS) -> str:
    """`value` as a message may quote it, on a terminal or in a file: at most `limit`
    characters (then an ellipsis and the full length), and every character that is not
    printable (C0 and C1 controls, DEL, line breaks, tabs, bidirectional overrides...)
    written as a Python escape (`\\x1b`, `\\n`, `\\u202e`), so that a cell cannot move the
    cursor, clear the screen or reorder the text around it. `limit=None` escapes only."""
    cut = limit is not None and len(value) > limit
    text = value[:limit] if cut else value
    if not text.isprintable():
        text = "".join(char if char.isprintable() else _escape(char) for char in text)
    return f"{text}… ({len(value):,} characters)" if cut else text


def _escape(char: str) -> str:
    return repr(char)[1:-1]


__all__ = ["FORMULA_STARTS", "SHOWN_CHARS", "any_quoted", "neutralise", "neutralise_rows", "neutralised_in_sql", "shown", "unquote"]
