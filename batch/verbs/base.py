"""What every verb shares: the session it works in and the shape of a rejected row."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from batch.outcome import Outcome, Status

if TYPE_CHECKING:
    from batch.graph import GraphClient
    from batch.io.columns import ColumnSet
    from batch.io.csvio import Row


@dataclass(frozen=True)
class Rejected:
    """A row that is not sent: invalid (with every problem found) or skipped (blank)."""

    row: int
    key: str
    problems: tuple[str, ...]
    status: Status = Status.INVALID

    def outcome(self) -> Outcome:
        return Outcome(self.row, self.key, self.status, error_code="InvalidRow" if self.status is Status.INVALID else "",
                       error_message="; ".join(self.problems))


@dataclass
class Executed:
    """What a verb did with a group of plans: final outcomes, and the generated passwords that
    must reach passwords.csv (row, sign-in name, object id, password) before they are final."""

    outcomes: list[Outcome] = field(default_factory=list)
    passwords: list[tuple[int, str, str, str]] = field(default_factory=list)
    # Rows whose fate could not be established (no answer, and the lookup failed too): they
    # stay `sent` for `resume` to reconcile; the run ends with exit 3.
    unresolved: list[int] = field(default_factory=list)
    # A run-level refusal (401/403 on a write): recorded rows are kept, then the run stops.
    stop: Exception | None = None
    # plan.csv lines of a dry run that reads the directory: (row, key, object id, property, before, after).
    plan: list[tuple[Any, ...]] = field(default_factory=list)

    def merge(self, other: "Executed") -> None:
        self.outcomes += other.outcomes
        self.passwords += other.passwords
        self.unresolved += other.unresolved
        self.stop = self.stop or other.stop


@dataclass
class Session:
    client: "GraphClient"
    clock: Callable[[], float] = time.time
    # Which of these rows already have their password in passwords.csv (for reconciling).
    passwords_on_file: Callable[[set[int]], set[int]] = lambda rows: set()


class Plan(Protocol):
    row: int
    key: str


class Verb(Protocol):
    """One operation. Plans are the verb's own type (each has `row` and `key`); the engine
    only carries them from `validate` to `execute` or `reconcile`."""

    name: str

    @property
    def columns(self) -> "ColumnSet": ...

    @property
    def permissions(self) -> Sequence[frozenset[str]]: ...

    def validate(self, row: "Row") -> Any: ...

    def sent_marker(self, plan: Any) -> bool:
        """Whether this plan carries a generated password (journaled as a flag, never the password)."""
        ...

    async def execute(self, plans: Any, session: Session) -> Executed: ...

    async def reconcile(self, items: Any, session: Session) -> Executed: ...
