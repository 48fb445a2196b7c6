"""A row's fate: the one record each input row ends as (results.csv, the journal)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple


class Status(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    PASSWORD_RESET = "password_reset"
    DELETED = "deleted"
    RESTORED = "restored"
    PURGED = "purged"
    SKIPPED = "skipped"
    INVALID = "invalid"
    FAILED = "failed"


# `line` (the spreadsheet line of the row, batch/io/dialect.py) came last, after the others,
# so that scripts reading by position keep working.
RESULT_COLUMNS = ("row", "key", "status", "object_id", "http_status", "error_code", "error_message", "attempts",
                  "line")
PASSWORD_COLUMNS = ("row", "sign_in_name", "object_id", "password", "display_name", "contact")
# What passwords.csv held before display_name and contact (a resumed run of an earlier version).
FIRST_PASSWORD_COLUMNS = PASSWORD_COLUMNS[:4]


class PasswordLine(NamedTuple):
    """A line of passwords.csv: a generated password, and whom to give it to (`contact`: the
    customer's mail, else an email sign-in name, else blank)."""

    row: int
    sign_in_name: str
    object_id: str
    password: str
    display_name: str = ""
    contact: str = ""


class Outcome(NamedTuple):
    """Immutable and cheap to make: a run of a million rows makes a million of them (a named
    tuple is made in a third of a frozen dataclass's time)."""

    row: int
    key: str
    status: Status
    object_id: str = ""
    http_status: int | None = None
    error_code: str = ""
    error_message: str = ""
    attempts: int = 0

    def as_record(self) -> tuple[object, ...]:
        return (self.row, self.key, self.status.value, self.object_id, self.http_status, self.error_code,
                self.error_message, self.attempts)


@dataclass(frozen=True)
class SentRow:
    row: int
    key: str
    sent_at: float
    generated_password: bool
    attempts: int
    # Graph's clock minus this machine's when the row left (from the `Date` header), so that
    # resume judges "created after we sent it" on Graph's clock even if ours jumped since.
    clock_offset: float | None = None
