"""`delete`: soft-delete one customer per row, `DELETE /users/{id}` (GRAPH.md §6).

Each key is resolved to an object id first (batched lookups). A customer that is already in
deleted items is `skipped`, never `failed`: deleting twice is what re-running a file does.
A deleted customer can be restored for 30 days; each row says until when.

Exactly once: a delete is idempotent, so a row whose answer was lost, or that an interrupted
run left `sent`, is settled by looking at the directory: gone from the live users and found
in deleted items since the row was sent means we deleted it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from batch.graph import GraphCall
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.base import Executed, Session
from batch.verbs.create import READ
from batch.verbs.keyed import MARGIN_SECONDS, KeyedVerb, KeyPlan
from batch.verbs.keyed import parse_time as _parse
from batch.verbs.lookups import found_users, lookup_call

DELETE_RESTORE = frozenset({"User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
RETENTION = timedelta(days=30)


DeletePlan = KeyPlan


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class DeleteVerb(KeyedVerb):
    name = "delete"
    doing = "Deleting customers"
    permissions: tuple[frozenset[str], ...] = (DELETE_RESTORE, READ)

    async def execute(self, plans: list[DeletePlan], session: Session) -> Executed:
        done = Executed()
        offset = getattr(session.client, "server_clock_offset", None)
        sent_at = session.clock() + (offset or 0.0)  # on Graph's clock, as deletedDateTime is
        found, absent = await self.find(plans, session, done)  # absent: gone before we sent anything
        targets = [(plan, str(user["id"])) for plan, user in found]
        unseen: list[DeletePlan] = []  # our DELETE may have done it
        if targets:
            results = await self._send([GraphCall("DELETE", f"/users/{object_id}") for _, object_id in targets], session)
            for (plan, object_id), result in zip(targets, results):
                if result.status == 204:
                    until = datetime.now(timezone.utc) + RETENTION
                    done.outcomes.append(Outcome(plan.row, plan.key, Status.DELETED, object_id, 204,
                                                 error_message=f"restorable until {_when(until)}",
                                                 attempts=result.attempts))
                elif result.status in (404, 0) or result.ambiguous:
                    unseen.append(plan)  # gone meanwhile, or no answer: deleted items will tell
                else:
                    self._refused(plan, result, done, "", object_id)
        if absent:
            await self._settle(absent, None, session, done)
        if unseen:
            await self._settle(unseen, sent_at, session, done)
        return done

    async def reconcile(self, items: list[tuple[DeletePlan, SentRow]], session: Session) -> Executed:
        """Rows sent by an interrupted run: still live → delete now; in deleted items since the
        row was sent → our delete; otherwise as a fresh row would be."""
        done = Executed()
        plans = [plan for plan, _ in items]
        # When the rows left, on Graph's clock when it was known then (deletedDateTime is on it).
        earliest = min(sent.sent_at + (sent.clock_offset or 0.0) for _, sent in items)
        live, absent = await self.locate(plans, session, done)
        if absent:
            await self._settle(absent, earliest, session, done)
        if live:
            done.merge(await self.execute([plan for plan, _ in live], session))
        return done

    async def _settle(self, plans: list[DeletePlan], sent_at: float | None, session: Session, done: Executed) -> None:
        """Not among live users: in deleted items (by us, when a DELETE of ours sent at
        `sent_at` may have done it, or before), or unknown."""
        lookups = await self._send([lookup_call(p.user, self.domain, deleted=True) for p in plans], session)
        for plan, lookup in zip(plans, lookups):
            users = found_users(lookup)
            if users is None:
                done.unresolved.append(plan.row)
                continue
            if not users:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, http_status=404,
                                             error_code="Request_ResourceNotFound",
                                             error_message="no customer, live or deleted, has this key"))
                continue
            user = users[0]
            deleted = _parse(user.get("deletedDateTime"))
            until = f"restorable until {_when(deleted + RETENTION)}" if deleted else "in deleted items"
            if sent_at is not None and deleted is not None and deleted.timestamp() >= sent_at - MARGIN_SECONDS:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.DELETED, str(user.get("id", "")), 204,
                                             error_message=until))
            else:
                when = f" on {_when(deleted)}" if deleted else ""
                done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, str(user.get("id", "")),
                                             error_message=f"already deleted{when}; {until}"))
