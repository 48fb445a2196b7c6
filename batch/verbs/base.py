"""What every verb shares: the `Verb` interface the engine drives, the session it works in,
and the shapes of a rejected row and of what a group of plans came to."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from batch.outcome import Outcome, SentRow, Status

if TYPE_CHECKING:
    from batch.graph import GraphClient
    from batch.io.columns import ColumnSet
    from batch.io.csvio import Row
    from batch.verbs.permissions import PermissionNeeds


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
    # Plans whose customer was not where the row says, at a moment when Graph's replication
    # delay could explain it (batch/verbs/lag.py): the engine gives them to `execute` once
    # more when the replication window has passed since they were missed (`missed_at`).
    later: list[Any] = field(default_factory=list)

    def merge(self, other: Executed) -> None:
        self.outcomes += other.outcomes
        self.passwords += other.passwords
        self.unresolved += other.unresolved
        self.later += other.later
        self.stop = self.stop or other.stop


# Seconds to wait before each new try of a call whose object the replica answering it does
# not show yet (batch/verbs/lag.py): 15.5 s in all, a few times the "seconds" replication
# usually takes. A session holds its own schedule, so tests can shorten it.
REPLICATION_WAITS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Session:
    client: GraphClient
    clock: Callable[[], float] = time.time
    # Which of these rows already have their password in passwords.csv (for reconciling).
    passwords_on_file: Callable[[set[int]], set[int]] = lambda rows: set()
    # Which other run folder of the same input and target handed out the password of this
    # customer (object id, sign-in name), if any: reconciling never resets such a customer's
    # password, which would make that folder's passwords.csv lie (issue 12, finding 6).
    passwords_elsewhere: Callable[[str, str], Path | None] = lambda object_id, sign_in_name: None
    # Waiting out Graph's replication delay (batch/verbs/lag.py): the pauses before each new
    # try of a call whose object is not visible yet, and the sleep that makes them (tests
    # inject a fake one, as they do into the Graph client).
    replication_waits: tuple[float, ...] = REPLICATION_WAITS
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Calls sent again because of the replication delay (measured, not reported to users).
    replication_retries: int = 0


class Plan(Protocol):
    """What the engine reads of any verb's plan: its row number and key (for the journal)."""

    @property
    def row(self) -> int: ...

    @property
    def key(self) -> str: ...


PlanT = TypeVar("PlanT", bound=Plan)


class Verb(ABC, Generic[PlanT]):
    """One operation. `validate` turns a row into the verb's own plan type (or a rejection);
    the engine journals plans, then hands groups of them to `execute`, to `reconcile` (rows
    an interrupted run left `sent`), or in a dry run that reads the directory to `plan`."""

    name: str
    columns: ColumnSet
    needs: PermissionNeeds
    # Whether a dry run reads the directory (and writes plan.csv) instead of only validating.
    reads_in_dry_run: bool = False

    @abstractmethod
    def validate(self, row: Row) -> PlanT | Rejected: ...

    def sent_marker(self, plan: PlanT) -> bool:
        """Whether this plan carries a generated password (journaled as a flag, never the password)."""
        return False

    @abstractmethod
    async def execute(self, plans: list[PlanT], session: Session) -> Executed: ...

    @abstractmethod
    async def reconcile(self, items: list[tuple[PlanT, SentRow]], session: Session) -> Executed: ...

    async def plan(self, plans: list[PlanT], session: Session) -> Executed:
        """A dry run: what would happen to each plan. This default reads nothing and says the
        rows are valid; a verb with `reads_in_dry_run` reads the directory and fills
        `Executed.plan` with what would change."""
        return Executed(outcomes=[Outcome(p.row, p.key, Status.SKIPPED, error_message="dry run: valid, not sent")
                                  for p in plans])
