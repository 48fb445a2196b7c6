"""A row's fate: the one record each input row ends as (results.csv, the journal)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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


RESULT_COLUMNS = ("row", "key", "status", "object_id", "http_status", "error_code", "error_message", "attempts")


@dataclass(frozen=True)
class Outcome:
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
