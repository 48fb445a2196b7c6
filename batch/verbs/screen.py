"""Column checks over a chunk of rows: which rows are plainly clean, found a column at a time.

`batch/verbs/fields.py` checks one row at a time and says what is wrong; this module only
answers "is every cell of this column, in every row of the chunk, one that the row-at-a-time
rules accept without a word, in the simple form the fast plan builder expects?" The answer
for a whole column comes from C-speed list operations (`map(str.strip, ...)`, a joined
column searched once with a precompiled regex, `max(map(len, ...))`, set inclusion); only a
column that fails that test is looked at cell by cell, to find which rows it flags.

A screen may flag more than the rules refuse (a cell with spaces around it, `us` in lower
case, a phone number with a tab): a flagged row is read by the per-row path
(`CreateRows.read`), which says exactly what it always said. What a screen must never do is
pass a cell that the per-row path would refuse or read differently; each test here is the
conjunction of the rule it stands for and "stripped already" (tests/test_validate_chunks.py
compares both paths row by row).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

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
_NO_LIMIT = 1 << 30  # a column Graph gives no length: the reader's cell limit applies

Cells = Sequence[str]
_CELL_BY_CELL: set[Callable[[Cells], bool]] = set()
# (is every cell of the column clean?, is this cell clean?)
Screen = tuple[Callable[[Cells], bool], Callable[[str], bool]]


def _stripped(column: Cells) -> bool:
    return list(map(str.strip, column)) == list(column)


def _text(limit: int | None, forbidden: str | None, required: bool) -> Screen:
    """A text column: stripped, at most `limit` characters, none of `forbidden`, and (when
    `required`) not blank."""
    bad = re.compile(f"[{re.escape(forbidden)}]") if forbidden else None
    most = limit if limit is not None else _NO_LIMIT

    def column_ok(column: Cells) -> bool:
        if required and "" in column:
            return False
        return (max(map(len, column), default=0) <= most and (bad is None or bad.search("".join(column)) is None)
                and _stripped(column))

    def cell_ok(value: str) -> bool:
        return ((not required or value != "") and len(value) <= most and value == value.strip()
                and (bad is None or bad.search(value) is None))

    return column_ok, cell_ok


def _among(allowed: frozenset[str]) -> Screen:
    return (lambda column: allowed.issuperset(column)), allowed.__contains__


def _each(ok: Callable[[str], bool]) -> Screen:
    """A column whose filled cells each pass `ok` (blank cells pass): checked cell by cell."""
    def cell_ok(value: str) -> bool:
        return value == "" or ok(value)

    def column_ok(column: Cells) -> bool:
        return all(map(cell_ok, column))

    _CELL_BY_CELL.add(column_ok)
    return column_ok, cell_ok


def _password_ok(value: str) -> bool:
    return rules.password_problem(value) is None


# A column of sign-in names, joined by line breaks, in which every name is blank, a plain
# address (`plainly_valid_email`, but for the two checks `_sign_in_names_ok` adds) or a user
# name: one regex pass for the whole column. Which of the two a name must be is its row's
# sign-in type, which the plan builder compares with the '@' (the type guessed from it).
_PLAIN_ADDRESS = (r"(?=[^@\n]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                  r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
# Each name with its line break is an atomic group: a failing column fails at its first bad
# name, never backtracking into the names before it.
_SIGN_IN_NAMES = re.compile(rf"(?>(?:{_PLAIN_ADDRESS}|[A-Za-z0-9][A-Za-z0-9_-]*)?\n)*+")
_SPECIAL_USE_END = re.compile(r"\.(?:" + "|".join(map(re.escape, sorted(SPECIAL_USE_DOMAIN_NAMES)))
                              + r")(?:\n|\Z)", re.IGNORECASE)


def _sign_in_names_ok(column: Cells) -> bool:
    if max(map(len, column), default=0) > rules.ISSUER_ASSIGNED_ID_MAX_LENGTH:
        return False
    joined = "\n".join(column) + "\n"
    return ("--" not in joined and _SIGN_IN_NAMES.fullmatch(joined) is not None
            and _SPECIAL_USE_END.search(joined) is None)


def _sign_in_name_ok(value: str) -> bool:
    if len(value) > rules.ISSUER_ASSIGNED_ID_MAX_LENGTH:
        return False
    return value == "" or (plainly_valid_email(value) if "@" in value else rules.is_user_name(value))


def _screens() -> dict[str, Screen]:
    screens: dict[str, Screen] = {
        "displayName": _text(rules.PROPERTY_MAX_LENGTHS["displayName"], "\r\n\t<>", required=True),
        "businessPhone": _text(None, None, required=False),
        "usageLocation": _among(_USAGE_OK),
        "mail": _each(plainly_valid_email),
        "preferredLanguage": _each(lambda value: value == value.strip() and rules.is_language_tag(value)),
        "password": _each(_password_ok),
        "signInType": _among(SIGN_IN_SPELLINGS),
        "signInName": (_sign_in_names_ok, _sign_in_name_ok),
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
            _search(screen, cells, 0, found)
    return found


_FEW = 16  # below this many cells a failing part of a column is checked cell by cell


def _search(screen: Screen, cells: Cells, start: int, found: set[int]) -> None:
    """Add the indices (from `start`) of the cells the screen flags: a part of the column
    that fails as a whole is halved until the parts are small, so a chunk with a few bad
    rows is still checked mostly at C speed."""
    column_ok, cell_ok = screen
    if column_ok(cells):
        return
    if len(cells) <= _FEW or column_ok in _CELL_BY_CELL:  # halving would only repeat the cell checks
        found.update(start + i for i, value in enumerate(cells) if not cell_ok(value))
        return
    half = len(cells) // 2
    _search(screen, cells[:half], start, found)
    _search(screen, cells[half:], start + half, found)


__all__ = ["FLAG_WORDS", "SCREENS", "flagged"]
