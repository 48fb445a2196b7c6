"""`purge`: delete soft-deleted customers for good, `DELETE /directory/deletedItems/{id}`
(GRAPH.md §6). Irreversible, so the CLI always asks for --yes. A customer already gone is
`skipped`; a live one is `failed` (delete it first)."""

from __future__ import annotations

from batch.graph import GraphCall
from batch.io.columns import PORTAL_RESTORE_HEADER, PURGE_COLUMNS
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.answers import send
from batch.verbs.base import Executed, Session
from batch.verbs.existing import KeyPlan, OneKeyVerb
from batch.verbs.lag import first_not_found, until_seen
from batch.verbs.lookups import found_users, lookup_call
from batch.verbs.permissions import DELETE_RESTORE, READ, PermissionNeeds
from batch.verbs.plans import line_for
from batch.verbs.spec import Option, VerbSpec

NEEDS = PermissionNeeds(read=READ, write=(DELETE_RESTORE,))


class PurgeVerb(OneKeyVerb):
    name = "purge"
    doing = "Purging customers"
    needs = NEEDS

    def __init__(self, domain: str) -> None:
        super().__init__(domain, PURGE_COLUMNS)

    async def execute(self, plans: list[KeyPlan], session: Session) -> Executed:
        done = Executed()
        found, absent = await self.find(plans, session, done, deleted=True)
        targets = [(plan, str(user["id"])) for plan, user in found]
        # Each customer was just found in deleted items: a first-attempt 404 is taken for a replica
        # that does not show it yet (batch/verbs/lag.py); only a 404 that lasts means it is gone.
        results = await until_seen([GraphCall("DELETE", f"/directory/deletedItems/{object_id}")
                                    for _, object_id in targets], session, lambda _i, answer: first_not_found(answer))
        for (plan, object_id), result in zip(targets, results):
            if result.status in (204, 404):
                # 404: gone between the lookup and the purge (or a re-sent purge that had worked).
                done.outcomes.append(Outcome(plan.row, plan.key, Status.PURGED, object_id, result.status,
                                             attempts=result.attempts))
            elif result.status == 0 or result.ambiguous:
                done.unresolved.append(plan.row)
            else:
                self.refused(plan, result, done, "", object_id)
        if absent:
            live = await send([lookup_call(p.user, self.domain) for p in absent], session)
            for plan, lookup in zip(absent, live):
                users = found_users(lookup)
                if users is None:
                    self.refused(plan, lookup, done, "looking the customer up failed: ")
                elif users:
                    # Live, or deleted a moment ago and not yet shown so (batch/verbs/lag.py).
                    self.unless_lagging(plan, Outcome(plan.row, plan.key, Status.FAILED, str(users[0].get("id", "")),
                                                      error_code="NotDeleted",
                                                      error_message="the customer is live; delete it before purging it"),
                                        session, done)
                else:
                    self.unless_lagging(plan, Outcome(plan.row, plan.key, Status.SKIPPED,
                                                      error_message="not in deleted items: already purged, or never "
                                                                    "existed"), session, done)
        return done

    async def plan(self, plans: list[KeyPlan], session: Session) -> Executed:
        """A dry run: a customer in deleted items would be erased; a live one fails (delete it
        first) and a key in neither is skipped, as in a run."""
        done = Executed()
        found, absent = await self.find_for_plan(plans, session, done, deleted=True)
        for plan, user in found:
            done.would(line_for(plan.row, plan.key, "purge", user, "in deleted items; would be erased for good"))
        for plan, live in await self.plan_elsewhere(absent, session, done, deleted=False):
            if live is None:
                done.would(line_for(plan.row, plan.key, "skip", None,
                                    "not in deleted items: already purged, or never existed"))
            else:
                done.would(line_for(plan.row, plan.key, "fail", live,
                                    "the customer is live: delete it before purging it"))
        return done

    async def reconcile(self, items: list[tuple[KeyPlan, SentRow]], session: Session) -> Executed:
        """Still in deleted items → purge now; live again (restored meanwhile) → failed, as a
        first run would say; in neither → purged (by the interrupted run, or before)."""
        done = Executed()
        pending, gone = await self.locate([plan for plan, _ in items], session, done, deleted=True)
        live, purged = await self.locate(gone, session, done) if gone else ([], [])
        if purged:
            # In neither may be a customer deleted a moment ago that deleted items do not show
            # yet (batch/verbs/lag.py): looked for again there within the replication waits
            # before a purge is believed (one reported purged stayed restorable, unerased).
            shown, purged = await self.locate(purged, session, done, deleted=True, patient=True)
            pending += shown
        for plan, user in live:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, str(user.get("id", "")),
                                         error_code="NotDeleted",
                                         error_message="the customer is live; delete it before purging it"))
        for plan in purged:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.PURGED,
                                         error_message="gone (purged by the interrupted run, or before)"))
        if pending:
            done.merge(await self.execute([plan for plan, _ in pending], session))
        return done


EPILOG = """\
examples:
  entra-batch purge gone-for-good.csv --dry-run   what would be erased; nothing is sent
  entra-batch purge gone-for-good.csv --yes       erase for good (cannot be undone)

The file: one soft-deleted customer per row (objectId, userPrincipalName or signInName).
Purging cannot be undone, so it always needs --yes. A customer already gone is `skipped`; a
live one fails (delete it first). Exit status as for create: 0, 1, 2, 3, 130.
"""

SPEC = VerbSpec(
    name="purge",
    summary="permanently delete soft-deleted customers listed in a CSV file",
    description="Permanently delete one soft-deleted customer per CSV row. This cannot be undone.",
    epilog=EPILOG,
    columns=PURGE_COLUMNS,
    portal_header=PORTAL_RESTORE_HEADER,
    options=(Option("--yes", "yes", "confirm the permanent deletion (always required, except with --dry-run)",
                    store_true=True),),
    confirm="always",
    build=lambda settings: PurgeVerb(settings.domain or ""),
)
