"""`purge`: delete soft-deleted customers for good, `DELETE /directory/deletedItems/{id}`
(GRAPH.md §6). Irreversible, so the CLI always asks for --yes. A customer already gone is
`skipped`; a live one is `failed` (delete it first)."""

from __future__ import annotations

from batch.graph import GraphCall
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.base import Executed, Session
from batch.verbs.create import READ
from batch.verbs.delete import DELETE_RESTORE
from batch.verbs.keyed import KeyedVerb, KeyPlan
from batch.verbs.lookups import found_users, lookup_call


class PurgeVerb(KeyedVerb):
    name = "purge"
    doing = "Purging customers"
    permissions: tuple[frozenset[str], ...] = (DELETE_RESTORE, READ)

    async def execute(self, plans: list[KeyPlan], session: Session) -> Executed:
        done = Executed()
        found, absent = await self.find(plans, session, done, deleted=True)
        targets = [(plan, str(user["id"])) for plan, user in found]
        results = await self._send([GraphCall("DELETE", f"/directory/deletedItems/{object_id}")
                                    for _, object_id in targets], session)
        for (plan, object_id), result in zip(targets, results):
            if result.status in (204, 404):
                # 404: gone between the lookup and the purge (or a re-sent purge that had worked).
                done.outcomes.append(Outcome(plan.row, plan.key, Status.PURGED, object_id, result.status,
                                             attempts=result.attempts))
            elif result.status == 0 or result.ambiguous:
                done.unresolved.append(plan.row)
            else:
                self._refused(plan, result, done, "", object_id)
        if absent:
            live = await self._send([lookup_call(p.user, self.domain) for p in absent], session)
            for plan, lookup in zip(absent, live):
                users = found_users(lookup)
                if users is None:
                    self._refused(plan, lookup, done, "looking the customer up failed: ")
                elif users:
                    done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, str(users[0].get("id", "")),
                                                 error_code="NotDeleted",
                                                 error_message="the customer is live; delete it before purging it"))
                else:
                    done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED,
                                                 error_message="not in deleted items: already purged, or never existed"))
        return done

    async def reconcile(self, items: list[tuple[KeyPlan, SentRow]], session: Session) -> Executed:
        """Still in deleted items → purge now; gone → purged (by the interrupted run, or before)."""
        done = Executed()
        pending, gone = await self.locate([plan for plan, _ in items], session, done, deleted=True)
        for plan in gone:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.PURGED,
                                         error_message="gone (purged by the interrupted run, or before)"))
        if pending:
            done.merge(await self.execute([plan for plan, _ in pending], session))
        return done
