"""`restore`: bring soft-deleted customers back, `POST /directory/deletedItems/{id}/restore`
(GRAPH.md §6). The key is looked up among deleted users. A customer that is live already is
`skipped`; one whose UPN or sign-in name was taken meanwhile is `failed` with the object id of
the live customer holding it."""

from __future__ import annotations

from typing import Any

from batch.graph import GraphCall, GraphResult
from batch.io.columns import PORTAL_RESTORE_HEADER, RESTORE_COLUMNS
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.answers import is_conflict, send
from batch.verbs.base import Executed, Session
from batch.verbs.existing import KeyPlan, OneKeyVerb
from batch.verbs.lag import found_nothing, until_seen
from batch.verbs.lookups import UserKey, found_users, lookup_call
from batch.verbs.permissions import DELETE_RESTORE, READ, PermissionNeeds
from batch.verbs.plans import LOCAL_SIGN_IN_TYPES, line_for
from batch.verbs.spec import Option, VerbSpec

NEEDS = PermissionNeeds(read=READ, write=(DELETE_RESTORE,))


class RestoreVerb(OneKeyVerb):
    name = "restore"
    doing = "Restoring customers"
    needs = NEEDS

    def __init__(self, domain: str) -> None:
        super().__init__(domain, RESTORE_COLUMNS)

    async def execute(self, plans: list[KeyPlan], session: Session, *, resends: int = 3) -> Executed:
        done = Executed()
        found, absent = await self.find(plans, session, done, deleted=True)
        targets = [(plan, str(user["id"])) for plan, user in found]
        results = await send([GraphCall("POST", f"/directory/deletedItems/{object_id}/restore")
                                    for _, object_id in targets], session)
        unseen: list[tuple[KeyPlan, str]] = []
        for (plan, object_id), result in zip(targets, results):
            if result.status == 200:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.RESTORED, object_id, 200,
                                             attempts=result.attempts))
            elif is_conflict(result):
                await self._conflict(plan, object_id, result, session, done)
            elif result.status == 0 or result.ambiguous or result.status == 404:
                unseen.append((plan, object_id))
            else:
                self.refused(plan, result, done, "", object_id)
        if unseen:
            await self._settle_unseen(unseen, session, done, resends=resends)
        if absent:
            await self._not_deleted(absent, session, done)
        return done

    async def plan(self, plans: list[KeyPlan], session: Session) -> Executed:
        """A dry run: a customer in deleted items would be restored, unless a live customer
        holds its sign-in name or UPN now (the restore would fail); a live one is skipped, as
        a run skips it; a key in neither fails."""
        done = Executed()
        found, absent = await self.find_for_plan(plans, session, done, deleted=True)
        taken = await self._taken([user for _, user in found], session)
        for (plan, user), holder in zip(found, taken):
            when = str(user.get("deletedDateTime") or "")
            if holder is None:
                done.would(line_for(plan.row, plan.key, "restore", user,
                                    "in deleted items" + (f" since {when}" if when else "")))
            else:
                what, other = holder
                done.would(line_for(plan.row, plan.key, "fail", user,
                                    f"exists: {what} is taken by the live customer {other}; free it, or restore "
                                    "with a new UPN"))
        for plan, live in await self.plan_elsewhere(absent, session, done, deleted=False):
            if live is None:
                done.would(line_for(plan.row, plan.key, "fail", None, _not_found(plan).error_message))
            else:
                done.would(line_for(plan.row, plan.key, "skip", live, "the customer is live; nothing to restore"))
        return done

    async def _taken(self, users: list[dict[str, Any]], session: Session) -> list[tuple[str, str] | None]:
        """For each deleted customer, a live customer that holds its email or user name identity
        or its UPN now: (what is taken, the holder's object id), or None. A lookup that fails
        says nothing (the real run's restore will tell)."""
        calls: list[GraphCall] = []
        asked: list[list[tuple[str, int]]] = []
        for user in users:
            mine = []
            for identity in user.get("identities") or []:
                name = str(identity.get("issuerAssignedId", ""))
                if str(identity.get("signInType", "")).lower() in LOCAL_SIGN_IN_TYPES and name:
                    mine.append((f"sign-in name {name}", len(calls)))
                    calls.append(lookup_call(UserKey("signin", name), str(identity.get("issuer") or self.domain)))
            upn = str(user.get("userPrincipalName") or "")
            if upn:
                mine.append((f"UPN {upn}", len(calls)))
                calls.append(lookup_call(UserKey("upn", upn), self.domain))
            asked.append(mine)
        answers = await send(calls, session)
        taken: list[tuple[str, str] | None] = []
        for user, mine in zip(users, asked):
            holders = [(what, str(u.get("id", ""))) for what, index in mine for u in found_users(answers[index]) or []]
            taken.append(next(((what, other) for what, other in holders if other != str(user.get("id", ""))), None))
        return taken

    async def reconcile(self, items: list[tuple[KeyPlan, SentRow]], session: Session) -> Executed:
        """Still in deleted items → restore now; live → restored (by the interrupted run, or
        live before it: the directory cannot tell, and either way the customer is back). A
        restore the interrupted run made moments ago may not show among live users yet: gone
        from deleted items and not live is asked again within the replication waits (the CI
        soak once failed such a row "not in deleted items")."""
        done = Executed()
        pending, gone = await self.locate([plan for plan, _ in items], session, done, deleted=True)
        live, unknown = await self.locate(gone, session, done, patient=True) if gone else ([], [])
        for plan, user in live:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.RESTORED, str(user.get("id", "")), 200,
                                         error_message="live again (restored by the interrupted run, or before)"))
        done.outcomes.extend(_not_found(plan) for plan in unknown)
        if pending:
            done.merge(await self.execute([plan for plan, _ in pending], session))
        return done

    async def _settle_unseen(self, items: list[tuple[KeyPlan, str]], session: Session, done: Executed, *,
                             resends: int) -> None:
        """A restore whose answer was lost: live with that object id means it worked; not live
        means it never arrived (a connection dropped before the request was read), and the
        row is tried again from the start (still in deleted items → restore). A restore just
        made may not be visible yet (batch/verbs/lag.py): "not live" is asked again first."""
        lookups = await until_seen([lookup_call(UserKey("id", object_id), self.domain) for _, object_id in items],
                                   session, lambda _i, answer: found_nothing(answer))
        again: list[KeyPlan] = []
        for (plan, object_id), lookup in zip(items, lookups):
            users = found_users(lookup)
            if users is None:
                done.unresolved.append(plan.row)
            elif users:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.RESTORED, object_id, 200))
            elif resends > 0:
                again.append(plan)
            else:
                done.unresolved.append(plan.row)
        if again:
            done.merge(await self.execute(again, session, resends=resends - 1))

    async def _not_deleted(self, plans: list[KeyPlan], session: Session, done: Executed) -> None:
        lookups = await send([lookup_call(p.user, self.domain) for p in plans], session)
        for plan, lookup in zip(plans, lookups):
            users = found_users(lookup)
            if users is None:
                self.refused(plan, lookup, done, "looking the customer up failed: ")
            elif users:
                # Live, or deleted a moment ago and not yet shown so (batch/verbs/lag.py).
                self.unless_lagging(plan, Outcome(plan.row, plan.key, Status.SKIPPED, str(users[0].get("id", "")),
                                                  error_message="the customer is live; nothing to restore"),
                                    session, done)
            else:
                self.unless_lagging(plan, _not_found(plan), session, done)

    async def _conflict(self, plan: KeyPlan, object_id: str, result: GraphResult, session: Session,
                        done: Executed) -> None:
        """Name the live customer that holds the UPN or sign-in name now."""
        holder = ""
        if plan.user.kind != "id":
            # The conflict says someone holds the key: a lookup that does not see them yet is asked again.
            [lookup] = await until_seen([lookup_call(plan.user, self.domain)], session,
                                        lambda _i, answer: found_nothing(answer))
            users = found_users(lookup)
            holder = str(users[0].get("id", "")) if users else ""
        which = f" by the live customer {holder}" if holder else " by a live customer"
        done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, object_id, result.status, "ObjectConflict",
                                     f"cannot restore: {result.error_message or 'its UPN or sign-in name is taken'} "
                                     f"(taken{which}); free it, or restore with a new UPN", result.attempts))


def _not_found(plan: KeyPlan) -> Outcome:
    return Outcome(plan.row, plan.key, Status.FAILED, http_status=404, error_code="Request_ResourceNotFound",
                   error_message="not in deleted items (deleted more than 30 days ago, purged, or never existed)")


EPILOG = """\
examples:
  entra-batch restore deleted-by-mistake.csv
  entra-batch restore export-deleted.csv --dry-run

The file: one customer per row, named by objectId (best), userPrincipalName or signInName,
looked up among deleted customers. The admin center's bulk-restore template (`Object ID
[objectId] Required`) works as downloaded. A customer that is live already is `skipped`; one
whose UPN or sign-in name was taken meanwhile fails with the holder's object id.
Restore only brings customers back, so it never asks for confirmation; --yes is accepted
(and changes nothing) so that one script line can serve delete, purge and restore.
Exit status as for create: 0, 1, 2, 3, 130.
"""

SPEC = VerbSpec(
    name="restore",
    summary="restore soft-deleted customer accounts listed in a CSV file",
    description="Restore one soft-deleted customer per CSV row.",
    epilog=EPILOG,
    columns=RESTORE_COLUMNS,
    portal_header=PORTAL_RESTORE_HEADER,
    options=(Option("--yes", "yes", "changes nothing: restore never asks for confirmation (it only brings customers "
                                    "back); accepted so that scripts can pass --yes to delete, purge and restore "
                                    "alike", store_true=True),),
    confirm="never",
    build=lambda settings: RestoreVerb(settings.domain or ""),
)
