"""What every verb shares: the `Verb` interface the engine drives, the session it works in,
and the shapes of a rejected row, of what a group of plans came to, and of a dry run's
plan.csv line."""

from __future__ import annotations

import asyncio
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from batch.outcome import Outcome, PasswordLine, SentRow, Status

if TYPE_CHECKING:
    from batch.graph import GraphClient
    from batch.io.columns import ColumnSet
    from batch.io.csvio import Row
    from batch.verbs.absence import DirectoryKeys
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


# What a dry run says would happen to a row (plan.csv's `action`).
ACTIONS = ("create", "update", "reset", "delete", "restore", "purge", "skip", "fail")
_ACTION_SET = frozenset(ACTIONS)
DRY_RUN_PREFIX = "dry run: would "


@dataclass(frozen=True)
class Change:
    """One property an update would change, in the input's terms: its column (the canonical
    name; plan.csv shows the file's own header for it) and the values as a user writes them
    ("No" → "Yes" for blockSignIn, never accountEnabled true → false)."""

    column: str
    before: str
    after: str


class PlanLine(NamedTuple):
    """One line of plan.csv: what a dry run found a row would do, why, and to which customer.
    A `fail` reason starts with its cause ("exists: ...", "no customer with this key"), which
    the summary counts by. Its `action` is one of ACTIONS (`Executed.would` checks). A named
    tuple: a dry run of a million rows makes a million of them."""

    row: int
    key: str
    action: str
    object_id: str = ""
    display_name: str = ""
    sign_in_name: str = ""
    reason: str = ""
    changes: tuple[Change, ...] = ()

    def outcome(self) -> Outcome:
        """results.csv of a dry run keeps its contract: the row is `skipped`, and its message
        says what would happen ("dry run: would fail (exists: ...)")."""
        return Outcome(self.row, self.key, Status.SKIPPED, self.object_id,
                       error_message=DRY_RUN_PREFIX + self.action + (f" ({self.reason})" if self.reason else ""))


def planned(message: str) -> tuple[str, str] | None:
    """(action, cause) of a dry run's outcome message, None for any other message. The cause
    is a `fail`'s reason up to its first ':', ';', ',' or '(' ("exists"); "" for other actions."""
    if not message.startswith(DRY_RUN_PREFIX):
        return None
    action, _, rest = message[len(DRY_RUN_PREFIX):].partition(" ")
    if action not in ACTIONS:
        return None
    cause = ""
    if action == "fail" and rest.startswith("("):
        cause = re.split(r"[:;,(]", rest[1:].removesuffix(")"), maxsplit=1)[0].strip()
    return action, cause


@dataclass
class Executed:
    """What a verb did with a group of plans: final outcomes, and the generated passwords that
    must reach passwords.csv (with whom to give them to) before they are final."""

    outcomes: list[Outcome] = field(default_factory=list)
    passwords: list[PasswordLine] = field(default_factory=list)
    # Rows whose fate could not be established (no answer, and the lookup failed too): they
    # stay `sent` for `resume` to reconcile; the run ends with exit 3.
    unresolved: list[int] = field(default_factory=list)
    # A run-level refusal (401/403 on a write): recorded rows are kept, then the run stops.
    stop: Exception | None = None
    # A dry run's plan.csv lines, one per row planned (each with its outcome, by `would`).
    plan: list[PlanLine] = field(default_factory=list)
    # Plans whose customer was not where the row says, at a moment when Graph's replication
    # delay could explain it (batch/verbs/lag.py): the engine gives them to `execute` once
    # more when the replication window has passed since they were missed (`missed_at`).
    later: list[Any] = field(default_factory=list)

    def merge(self, other: Executed) -> None:
        self.outcomes += other.outcomes
        self.passwords += other.passwords
        self.unresolved += other.unresolved
        self.later += other.later
        self.plan += other.plan
        self.stop = self.stop or other.stop

    def would(self, line: PlanLine) -> None:
        """A dry run's verdict on a row: its plan.csv line, and its results.csv outcome."""
        if line.action not in _ACTION_SET:
            raise ValueError(f"a plan's action is one of {', '.join(ACTIONS)}, not {line.action!r}")
        self.plan.append(line)
        self.outcomes.append(line.outcome())


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
    # A create dry run's digest index of the directory's keys (batch/verbs/absence.py): once
    # ready, a key it does not hold is "no customer" without a lookup. None: every key is asked.
    directory_keys: DirectoryKeys | None = None


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
    an interrupted run left `sent`), or in a dry run to `plan`."""

    name: str
    columns: ColumnSet
    needs: PermissionNeeds

    @abstractmethod
    def validate(self, row: Row) -> PlanT | Rejected: ...

    def validate_chunk(self, rows: Sequence[Row]) -> list[PlanT | Rejected]:
        """`validate` of consecutive rows, in order, one result per row: what the pipeline and
        the `validate` command call. A verb may check a chunk column by column (`create`
        does); the results must be those `validate` gives row by row."""
        return [self.validate(row) for row in rows]

    def rejections(self, rows: Sequence[Row]) -> list[Rejected]:
        """The rejections among `validate_chunk(rows)`, in order: what the `validate` command
        reports. A verb may skip making the plans of valid rows (`create` does)."""
        return [checked for checked in self.validate_chunk(rows) if isinstance(checked, Rejected)]

    def sent_marker(self, plan: PlanT) -> bool:
        """Whether this plan carries a generated password (journaled as a flag, never the password)."""
        return False

    @abstractmethod
    async def execute(self, plans: list[PlanT], session: Session) -> Executed: ...

    @abstractmethod
    async def reconcile(self, items: list[tuple[PlanT, SentRow]], session: Session) -> Executed: ...

    @abstractmethod
    async def plan(self, plans: list[PlanT], session: Session) -> Executed:
        """A dry run: read the directory as `execute` would, write nothing, and say what would
        happen to each plan (`Executed.would`: one plan.csv line and one `skipped` outcome
        per plan). Only reads are sent; a 401/403 stops the run as in `execute`."""
