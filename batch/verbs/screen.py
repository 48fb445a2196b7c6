"""Column checks over a chunk of rows: which rows are plainly clean, found a column at a time.

`batch/verbs/fields.py` checks one row at a time and says what is wrong; this module only
answers "which cells of this column, in the rows of the chunk, are not ones that the
row-at-a-time rules accept without a word, in the simple form the fast plan builder
expects?" Each screen takes a column (a list of cells) and gives the indices of the cells it
flags, in one pass of C-speed list operations: a whole-column test first (`"" in column`,
`max(map(len, column))`, a joined column searched once with a precompiled regex, set
inclusion), and for a column that fails it, the same test cell by cell through `map` over
C functions (`str.strip`, a precompiled regex's `match`, `len`), the flagged indices picked
with `itertools.compress`. No Python function runs per cell.

A screen may flag more than the rules refuse (a cell with spaces around it, `us` in lower
case, a phone number with a tab): a flagged row is read by the per-row path
(`CreateRows.read`), which says exactly what it always said. What a screen must never do is
pass a cell that the per-row path would refuse or read differently; each test here is the
conjunction of the rule it stands for and "stripped already" (tests/test_validate_chunks.py
compares both paths row by row, and each screen's edges one at a time).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, count, repeat

from email_validator import SPECIAL_USE_DOMAIN_NAMES

from batch import rules
from batch.verbs.fields import FALSE_WORDS, MULTI_LINE_COLUMNS, PROFILE_COLUMNS, TRUE_WORDS, plainly_valid_email

# Yes/No cells as spreadsheets write them → their value; any other spelling goes to the per-row path.
FLAG_WORDS: dict[str, bool] = {
    spelling: word in TRUE_WORDS
    for word in TRUE_WORDS | FALSE_WORDS
    for spelling in (word, word.upper(), word.capitalize())
}
SIGN_IN_SPELLINGS = frozenset({"", "emailAddress", "userName", "email", "username", "EmailAddress", "UserName",
                               "Email", "Username", "emailaddress"})
_USAGE_OK = frozenset(rules.USAGE_LOCATIONS | {""})
_FLAG_OK = frozenset(FLAG_WORDS) | {""}

Cells = Sequence[str]
# A column → the indices of the cells it flags, in increasing order.
Screen = Callable[[Cells], list[int]]


def failing(passes: Iterable[object]) -> list[int]:
    """The positions of the falsy items of `passes` (one per cell), at C speed."""
    return list(compress(count(), map(operator.not_, passes)))


def _longer(column: Cells, limit: int) -> list[int]:
    """The cells longer than `limit` (the whole column measured once before any is picked)."""
    if max(map(len, column), default=0) <= limit:
        return []
    return list(compress(count(), map(limit.__lt__, map(len, column))))


def _unstripped(column: Cells) -> list[int]:
    """The cells with white space around them (what the per-row path would strip)."""
    stripped = list(map(str.strip, column))
    if stripped == column:
        return []
    return failing(map(operator.eq, column, stripped))


def _text(limit: int | None, forbidden: str | None, required: bool) -> Screen:
    """A text column: stripped, at most `limit` characters, none of `forbidden`, and (when
    `required`) not blank."""
    bad = re.compile(f"[{re.escape(forbidden)}]") if forbidden else None

    def screen(column: Cells) -> list[int]:
        found: set[int] = set()
        if required and "" in column:
            found.update(failing(column))
        if limit is not None:
            found.update(_longer(column, limit))
        if bad is not None and bad.search("".join(column)) is not None:
            found.update(compress(count(), map(bad.search, column)))
        found.update(_unstripped(column))
        return sorted(found)

    return screen


def _among(allowed: frozenset[str]) -> Screen:
    """A column whose every cell is one of `allowed`."""
    def screen(column: Cells) -> list[int]:
        return [] if allowed.issuperset(column) else failing(map(allowed.__contains__, column))

    return screen


def _matching(cell: re.Pattern[str]) -> Screen:
    """A column whose every cell `cell` matches whole (a blank one too, if the pattern allows it)."""
    def screen(column: Cells) -> list[int]:
        return failing(map(cell.fullmatch, column))

    return screen


def _each(ok: Callable[[str], bool]) -> Screen:
    """A column whose filled cells each pass `ok` (blank cells pass): checked cell by cell in
    Python, but only the filled cells (a column of blanks costs one `any`)."""
    def screen(column: Cells) -> list[int]:
        if not any(column):
            return []
        return [i for i in compress(count(), column) if not ok(column[i])]

    return screen


# Passwords (rules.password_problem, GRAPH.md §2.1): a blank cell is generated one.
_DIGITS = re.compile("[0-9]")
_LENGTHS = range(rules.PASSWORD_MIN_LENGTH, rules.PASSWORD_MAX_LENGTH + 1)


def _passwords(column: Cells) -> list[int]:
    """Passwords Entra accepts (rules.password_problem), or blank cells: with str methods
    over the filled cells, each test on the whole column first: lengths; printable ASCII
    (which is what PASSWORD_ALLOWED is: tested); then the classes, one pass each (a case
    change tells a lower or an upper case letter; a character that is not alphanumeric is a
    symbol), and only the cells that miss one are counted."""
    if not any(column):
        return []
    at = list(compress(count(), column))
    filled = [column[i] for i in at]
    bad: set[int] = set()
    lengths = list(map(len, filled))
    if min(lengths) not in _LENGTHS or max(lengths) not in _LENGTHS:
        bad.update(failing(map(_LENGTHS.__contains__, lengths)))
    joined = "".join(filled)
    if not (joined.isascii() and joined.isprintable()):
        bad.update(failing(map(str.isascii, filled)))
        bad.update(failing(map(str.isprintable, filled)))
    classes = [list(map(operator.ne, filled, map(str.upper, filled))),  # a lower-case letter
               list(map(operator.ne, filled, map(str.lower, filled))),  # an upper-case letter
               list(map(bool, map(_DIGITS.search, filled))),
               list(map(operator.not_, map(str.isalnum, filled)))]     # a symbol
    for i in {i for passes in classes if not all(passes) for i in failing(passes)}:
        if sum(passes[i] for passes in classes) < 3:
            bad.add(i)
    return [at[i] for i in sorted(bad)]


# A language tag such as en-US (rules.is_language_tag), or a blank cell.
_LANGUAGE_CELL = re.compile(r"(?:[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})?)?")

# A column of sign-in names, joined by line breaks, in which every name is blank, a plain
# address (`plainly_valid_email`, but for the check for '--' that `_sign_in_names` adds) or a
# user name: one regex pass for the whole column. Which of the two a name must be is its
# row's sign-in type, which the plan builder compares with the '@' (the type guessed from it).
_SPECIAL_USE_TLD = "|".join(map(re.escape, sorted(SPECIAL_USE_DOMAIN_NAMES)))
# Possessive quantifiers: no part of a name can be matched another way, so nothing is given
# back. No length limits inside: a name longer than 64 characters is flagged by its length,
# and within 64 a local part (at most 62) and a label (at most 61) are within theirs.
_PLAIN_ADDRESS = (r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]++(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]++)*+"
                  r"@(?:[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+\.)++"
                  rf"(?!(?i:{_SPECIAL_USE_TLD})(?:\n|\Z))[A-Za-z]{{2,63}}+")
_SIGN_IN_NAME = rf"(?:{_PLAIN_ADDRESS}|[A-Za-z0-9][A-Za-z0-9_-]*+)?"
# Each name with its line break is an atomic group: matching stops at the start of the first
# bad name, never backtracking into the names before it.
_SIGN_IN_NAMES = re.compile(rf"(?>{_SIGN_IN_NAME}\n)*+")
_SIGN_IN_NAME_CELL = re.compile(_SIGN_IN_NAME)


def _sign_in_names(column: Cells) -> list[int]:
    """Sign-in names: each blank, or a plain address or user name of at most 64 characters,
    without '--' (a Punycode label, which email-validator decides) or a special-use domain.
    The joined column is matched once; a bad name stops the match at its line, which is
    flagged, and matching resumes at the next line."""
    found = set(_longer(column, rules.ISSUER_ASSIGNED_ID_MAX_LENGTH))
    joined = "\n".join(column) + "\n"
    if joined.count("\n") != len(column):  # a cell holds a line break: lines are not cells
        found.update(failing(map(_SIGN_IN_NAME_CELL.fullmatch, column)))
        found.update(compress(count(), map(operator.contains, column, repeat("--"))))
        return sorted(found)
    start = line = 0
    while (end := _SIGN_IN_NAMES.match(joined, start).end()) < len(joined):  # type: ignore[union-attr]
        line += joined.count("\n", start, end)
        found.add(line)
        start, line = joined.index("\n", end) + 1, line + 1
    start = joined.find("--")
    while start >= 0:
        found.add(joined.count("\n", 0, start))
        start = joined.find("--", joined.index("\n", start))
    return sorted(found)


def _screens() -> dict[str, Screen]:
    screens: dict[str, Screen] = {
        "displayName": _text(rules.PROPERTY_MAX_LENGTHS["displayName"], "\r\n\t<>", required=True),
        "businessPhone": _text(None, None, required=False),
        "usageLocation": _among(_USAGE_OK),
        "mail": _each(plainly_valid_email),
        "preferredLanguage": _matching(_LANGUAGE_CELL),
        "password": _passwords,
        "signInType": _among(SIGN_IN_SPELLINGS),
        "signInName": _sign_in_names,
        "userPrincipalName": _text(None, None, required=False),
    }
    for column in PROFILE_COLUMNS:
        forbidden = None if column in MULTI_LINE_COLUMNS else "\r\n\t"
        screens[column] = _text(rules.PROPERTY_MAX_LENGTHS.get(column), forbidden, required=False)
    for column in ("blockSignIn", "accountEnabled", "forceChangePasswordNextSignIn"):
        screens[column] = _among(_FLAG_OK)
    return screens


SCREENS = _screens()


def flagged(columns: dict[str, list[str]]) -> set[int]:
    """The indices of the rows (positions in each column list) that some column's screen flags.
    A column without a screen (a custom attribute) is left to the plan builder."""
    found: set[int] = set()
    for name, cells in columns.items():
        screen = SCREENS.get(name)
        if screen is not None:
            found.update(screen(cells))
    return found


__all__ = ["FLAG_WORDS", "SCREENS", "SIGN_IN_SPELLINGS", "failing", "flagged"]
