"""`delete`: soft-delete one customer per row, `DELETE /users/{id}` (GRAPH.md §6).

Each key is resolved to an object id first (batched lookups). A customer that is already in
deleted items is `skipped`, never `failed`: deleting twice is what re-running a file does.
A deleted customer can be restored for 30 days; each row says until when.

Exactly once: a delete is idempotent, so a row whose answer was lost, or that an interrupted
run left `sent`, is settled by looking at the directory: gone from the live users and found
in deleted items since the row was sent means we deleted it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from batch.graph import GraphCall
from batch.io.columns import DELETE_COLUMNS, PORTAL_DELETE_HEADER
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.base import Executed, Session
from batch.verbs.existing import MARGIN_SECONDS, KeyPlan, OneKeyVerb
from batch.verbs.existing import parse_time as _parse
from batch.verbs.lag import first_not_found, found_nothing, until_seen
from batch.verbs.lookups import found_users, lookup_call
from batch.verbs.permissions import DELETE_RESTORE, READ, PermissionNeeds
from batch.verbs.plans import line_for
from batch.verbs.spec import Option, VerbSpec

RETENTION = timedelta(days=30)
NEEDS = PermissionNeeds(read=READ, write=(DELETE_RESTORE,))

DeletePlan = KeyPlan


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class DeleteVerb(OneKeyVerb):
    name = "delete"
    doing = "Deleting customers"
    needs = NEEDS

    def __init__(self, domain: str) -> None:
        super().__init__(domain, DELETE_COLUMNS)

    async def execute(self, plans: list[DeletePlan], session: Session, *, since: float | None = None) -> Executed:
        """Delete each customer found live. `since`: when an interrupted run may already have
        sent these rows (on Graph's clock), for telling its deletes from older ones."""
        done = Executed()
        now = session.clock() + (session.client.server_clock_offset or 0.0)  # on Graph's clock, as deletedDateTime is
        sent_at = now if since is None else min(since, now)
        # absent: gone before we sent anything; `since`: rows being reconciled (a failed lookup decides nothing)
        found, absent = await self.find(plans, session, done, reconciling=since is not None)
        targets = [(plan, str(user["id"])) for plan, user in found]
        unseen: list[DeletePlan] = []  # our DELETE may have done it
        if targets:
            # Each customer was just found live: a first-attempt 404 is taken for a replica that
            # does not show it yet (batch/verbs/lag.py), and the DELETE is asked again within the waits.
            results = await until_seen([GraphCall("DELETE", f"/users/{object_id}") for _, object_id in targets],
                                       session, lambda _i, answer: first_not_found(answer))
            for (plan, object_id), result in zip(targets, results):
                if result.status == 204:
                    until = datetime.now(UTC) + RETENTION
                    done.outcomes.append(Outcome(plan.row, plan.key, Status.DELETED, object_id, 204,
                                                 error_message=f"restorable until {_when(until)}",
                                                 attempts=result.attempts))
                elif result.status in (404, 0) or result.ambiguous:
                    unseen.append(plan)  # gone meanwhile, or no answer: deleted items will tell
                else:
                    self.refused(plan, result, done, "", object_id)
        if absent:
            # Gone before we sent anything, unless an interrupted run of ours sent the row
            # (`since`): then its delete may be what removed it.
            await self._settle(absent, since, session, done)
        if unseen:
            await self._settle(unseen, sent_at, session, done)
        return done

    async def plan(self, plans: list[DeletePlan], session: Session) -> Executed:
        """A dry run: a live customer would be deleted; one in deleted items skipped, as a run
        skips it; a key that names nobody fails."""
        done = Executed()
        found, absent = await self.find_for_plan(plans, session, done)
        for plan, user in found:
            done.would(line_for(plan.row, plan.key, "delete", user,
                                f"found live; restorable for {RETENTION.days} days after the delete"))
        for plan, gone in await self.plan_elsewhere(absent, session, done, deleted=True):
            if gone is None:
                done.would(line_for(plan.row, plan.key, "fail", None,
                                    "no customer with this key, live or deleted"))
                continue
            deleted = _parse(gone.get("deletedDateTime"))
            when = f" on {_when(deleted)}" if deleted else ""
            done.would(line_for(plan.row, plan.key, "skip", gone, f"already deleted{when}"))
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
            # Live may only mean that the replica read has not seen the interrupted run's delete yet.
            done.merge(await self.execute([plan for plan, _ in live], session, since=earliest))
        return done

    async def _settle(self, plans: list[DeletePlan], sent_at: float | None, session: Session, done: Executed) -> None:
        """Not among live users: in deleted items (by us, when a DELETE of ours sent at
        `sent_at` may have done it, or before), or unknown. When ours may have done it, deleted
        items may not show it yet (batch/verbs/lag.py): an empty answer is asked again."""
        lookups = await until_seen([lookup_call(p.user, self.domain, deleted=True) for p in plans], session,
                                   lambda _i, answer: sent_at is not None and found_nothing(answer))
        for plan, lookup in zip(plans, lookups):
            users = found_users(lookup)
            if users is None:
                done.unresolved.append(plan.row)
                continue
            if not users:
                gone = Outcome(plan.row, plan.key, Status.FAILED, http_status=404, error_code="Request_ResourceNotFound",
                               error_message="no customer, live or deleted, has this key")
                # Not ours to explain, or deleted items waited for (until_seen above) in vain:
                # maybe created a moment ago, and the live lookup's replica does not show it yet.
                self.unless_lagging(plan, gone, session, done)
                continue
            # Several deleted customers may have had this key (a namesake deleted before): the
            # one deleted last is the one a delete of ours would have deleted.
            user = max(users, key=_deleted_at)
            deleted = _parse(user.get("deletedDateTime"))
            until = f"restorable until {_when(deleted + RETENTION)}" if deleted else "in deleted items"
            if sent_at is not None and deleted is not None and deleted.timestamp() >= sent_at - MARGIN_SECONDS:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.DELETED, str(user.get("id", "")), 204,
                                             error_message=until))
            else:
                when = f" on {_when(deleted)}" if deleted else ""
                done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, str(user.get("id", "")),
                                             error_message=f"already deleted{when}; {until}"))


def _deleted_at(user: dict[str, Any]) -> float:
    """When a customer in deleted items was deleted (0 when it does not say)."""
    deleted = _parse(user.get("deletedDateTime"))
    return deleted.timestamp() if deleted is not None else 0.0


EPILOG = """\
examples:
  entra-batch delete leavers.csv --dry-run      what would be deleted; nothing is sent
  entra-batch delete leavers.csv --yes          delete (soft: restorable for 30 days)

The file: one customer per row, named by objectId, userPrincipalName or signInName (the first
of these that the row fills). The admin center's bulk-delete template (`User name
[userPrincipalName] Required`) works as downloaded. A customer already deleted is `skipped`;
each deleted row says until when it can be restored. More than 100 rows ask for confirmation
on a terminal, and need --yes otherwise.
Exit status as for create: 0, 1 (some rows invalid or failed), 2, 3, 130.
"""

SPEC = VerbSpec(
    name="delete",
    summary="soft-delete customer accounts listed in a CSV file",
    description="Soft-delete one customer per CSV row (restorable for 30 days).",
    epilog=EPILOG,
    columns=DELETE_COLUMNS,
    portal_header=PORTAL_DELETE_HEADER,
    options=(Option("--yes", "yes", "do not ask for confirmation (needed above 100 rows when not on a terminal)",
                    store_true=True),),
    confirm="above_limit",
    build=lambda settings: DeleteVerb(settings.domain or ""),
)
