"""What the verbs that act on existing customers share (update, reset-password, delete,
restore, purge): one user key per row, duplicates in the file refused, lookups in batches,
and a 401/403 that stops the run instead of failing rows.

(Once verbs/keyed.py: the name now says what the module is for, customers that exist.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from batch.errors import GraphRequestFailed
from batch.graph import GraphCall, GraphResult
from batch.io.columns import ColumnSet
from batch.io.csvio import Row
from batch.outcome import Outcome, Status
from batch.verbs.answers import send
from batch.verbs.base import Executed, PlanLine, Rejected, Session, Verb
from batch.verbs.lag import found_nothing, until_seen
from batch.verbs.lookups import UserKey, found_users, lookup_call, parse_key
from batch.verbs.plans import line_for
from batch.verbs.seen import SeenKeys

# A change found this long before the row was sent was not ours (clock skew allowance).
MARGIN_SECONDS = 30.0


@dataclass
class KeyPlan:
    """A row that names one customer by a user key."""

    row: int
    key: str
    user: UserKey
    # When this run first found the customer missing (this machine's clock), if it did.
    missed_at: float | None = field(default=None, kw_only=True)


KeyPlanT = TypeVar("KeyPlanT", bound=KeyPlan)


def parse_time(stamp: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        return None


class ExistingCustomerVerb(Verb[KeyPlanT]):
    """A verb whose rows name existing (live or soft-deleted) customers by a user key."""

    doing = ""  # "Deleting customers", for the message that stops a run

    def __init__(self, domain: str, columns: ColumnSet) -> None:
        self.domain = domain
        self.columns = columns
        self.seen = SeenKeys()

    def read_key(self, row: Row) -> KeyPlan | Rejected:
        """The row's user key, checked, and refused when an earlier row of the file has it."""
        if row.blank:
            return Rejected(row.number, "", ("blank row",), Status.SKIPPED)
        if row.problem:
            return Rejected(row.number, "", (row.problem,))
        if row.example:
            return Rejected(row.number, "", ("this is the example row of the admin center's template; delete it",))
        key = parse_key(row.cells)
        if isinstance(key, str):
            return Rejected(row.number, "", (key,))
        if key.kind == "signin" and not self.domain:
            return Rejected(row.number, key.value, ("a sign-in name needs the tenant's domain (--domain)",))
        first = self.seen.claim(key.kind, key.value, row.number)
        if first is not None:
            return Rejected(row.number, key.value, (f"{key.value} is already in row {first} of this file",))
        return KeyPlan(row.number, key.value, key)

    async def find(self, plans: list[KeyPlanT], session: Session, done: Executed, *, deleted: bool = False,
                   calls: list[GraphCall] | None = None,
                   reconciling: bool = False) -> tuple[list[tuple[KeyPlanT, dict[str, Any]]], list[KeyPlanT]]:
        """Look up each plan's customer among live (or deleted) users, in batches. A failed
        lookup and a key that matches several customers become row outcomes in `done`; the
        rest come back as (plan, customer) pairs found, and plans whose customer is absent.
        `reconciling`: rows an interrupted run may have sent, whose fate nothing decides
        without a lookup: a failed one leaves the row unresolved (`sent`, for a later resume),
        as `locate` does; a 401/403 still stops the run."""
        where = " in deleted items" if deleted else ""
        lookups = await send(calls or [lookup_call(p.user, self.domain, deleted=deleted) for p in plans], session)
        found: list[tuple[KeyPlanT, dict[str, Any]]] = []
        absent: list[KeyPlanT] = []
        for plan, lookup in zip(plans, lookups):
            users = found_users(lookup)
            if users is None and reconciling and lookup.status not in (401, 403):
                done.unresolved.append(plan.row)
            elif users is None:
                self.refused(plan, lookup, done, f"looking the customer up{where} failed: ")
            elif len(users) > 1:
                # Several customers answer to this UPN or sign-in name: only the object id can say which.
                done.outcomes.append(Outcome(
                    plan.row, plan.key, Status.FAILED, http_status=lookup.status, error_code="AmbiguousKey",
                    error_message=f"{len(users)} {'deleted ' if deleted else ''}customers match this key; give the "
                                  "objectId of the one meant: " + ", ".join(str(u.get("id")) for u in users)))
            elif users:
                found.append((plan, users[0]))
            else:
                absent.append(plan)
        return found, absent

    async def find_for_plan(self, plans: list[KeyPlanT], session: Session, done: Executed, *, deleted: bool = False,
                            calls: list[GraphCall] | None = None
                            ) -> tuple[list[tuple[KeyPlanT, dict[str, Any]]], list[KeyPlanT]]:
        """`find`, for a dry run: a failed lookup or an ambiguous key is the row's `fail` line
        (a 401/403 still stops the run)."""
        looked = Executed()
        found, absent = await self.find(plans, session, looked, deleted=deleted, calls=calls)
        done.unresolved += looked.unresolved
        done.stop = done.stop or looked.stop
        for outcome in looked.outcomes:
            reason = outcome.error_message
            if outcome.error_code == "AmbiguousKey":
                reason = "ambiguous key: " + reason
            done.would(PlanLine(outcome.row, outcome.key, "fail", reason=reason))
        return found, absent

    async def plan_elsewhere(self, plans: list[KeyPlanT], session: Session, done: Executed, *, deleted: bool
                             ) -> list[tuple[KeyPlanT, dict[str, Any] | None]]:
        """For a dry run, rows whose customer `find_for_plan` did not find: the customer among
        deleted (or live) users, or None. A failed lookup is the row's `fail` line."""
        where = " in deleted items" if deleted else ""
        lookups = await send([lookup_call(p.user, self.domain, deleted=deleted) for p in plans], session)
        answers: list[tuple[KeyPlanT, dict[str, Any] | None]] = []
        for plan, lookup in zip(plans, lookups):
            users = found_users(lookup)
            if users is None:
                looked = Executed()
                self.refused(plan, lookup, looked, f"looking the customer up{where} failed: ")
                done.unresolved += looked.unresolved
                done.stop = done.stop or looked.stop
                for outcome in looked.outcomes:
                    done.would(line_for(outcome.row, outcome.key, "fail", None, outcome.error_message))
            else:
                answers.append((plan, users[0] if users else None))
        return answers

    async def locate(self, plans: list[KeyPlanT], session: Session, done: Executed, *, deleted: bool = False,
                     patient: bool = False) -> tuple[list[tuple[KeyPlanT, dict[str, Any]]], list[KeyPlanT]]:
        """For rows an interrupted run may have sent: where each customer is now, among live
        (or deleted) users. A failed lookup leaves the row unresolved in `done` (kept `sent`
        for a later resume); the rest come back found (with the customer) or absent.
        `patient`: where the interrupted run's own write would have put the customer, an
        absent answer is asked again within the replication waits (batch/verbs/lag.py)."""
        calls = [lookup_call(p.user, self.domain, deleted=deleted) for p in plans]
        lookups = await until_seen(calls, session, lambda _i, answer: found_nothing(answer)) if patient \
            else await send(calls, session)
        found: list[tuple[KeyPlanT, dict[str, Any]]] = []
        absent: list[KeyPlanT] = []
        for plan, lookup in zip(plans, lookups):
            users = found_users(lookup)
            if users is None:
                done.unresolved.append(plan.row)
            elif users:
                found.append((plan, users[0]))
            else:
                absent.append(plan)
        return found, absent

    @staticmethod
    def unless_lagging(plan: KeyPlan, outcome: Outcome, session: Session, done: Executed) -> None:
        """`outcome` says the customer is not where the row wants it (not live, not deleted).
        A write moments ago (by an earlier run, an administrator, this file's own creation)
        may not have reached the replica that answered (batch/verbs/lag.py), so the first time
        the plan is handed back to the engine, which gives it to `execute` again once the
        replication window has passed; the second time the outcome is believed. Rows whose
        customer is where expected never wait; a missing key costs one more lookup, and the
        run at most one window at its end."""
        if plan.missed_at is None:
            plan.missed_at = session.clock()
            done.later.append(plan)
        else:
            done.outcomes.append(outcome)

    @staticmethod
    def not_live(plan: KeyPlan, hint: str = "") -> Outcome:
        return Outcome(plan.row, plan.key, Status.FAILED, http_status=404, error_code="Request_ResourceNotFound",
                       error_message="no live customer has this key" + hint)

    def refused(self, plan: KeyPlan, result: GraphResult, done: Executed, prefix: str = "",
                object_id: str = "") -> None:
        """A request Graph refused: 401/403 stops the run (the row stays `sent`), anything
        else fails the row with Graph's answer."""
        if result.status in (401, 403):
            done.unresolved.append(plan.row)
            done.stop = done.stop or GraphRequestFailed(self.doing, status=result.status, code=result.error_code,
                                                        detail=result.error_message)
            return
        done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, object_id, result.status or None,
                                     result.error_code or ("NoAnswer" if result.status == 0 else ""),
                                     prefix + (result.error_message or f"HTTP {result.status}"), result.attempts))


class OneKeyVerb(ExistingCustomerVerb[KeyPlan]):
    """A verb whose rows hold a user key and nothing else (reset-password, delete, restore, purge)."""

    def validate(self, row: Row) -> KeyPlan | Rejected:
        return self.read_key(row)
