"""`reset-password`: a new temporary password per customer, `PATCH /users/{id}` with a
generated `passwordProfile` that must be changed at next sign-in (GRAPH.md §4.1) — what the
admin center's "Reset password" does, for a whole file. The passwords go to passwords.csv
only, once Graph confirmed each reset.

Exactly once: a reset whose answer was lost is simply done again with a fresh password when
the run is resumed, unless its password already reached passwords.csv.
"""

from __future__ import annotations

from typing import Any

from batch.graph import GraphCall
from batch.io.columns import PORTAL_DELETE_HEADER, RESET_COLUMNS
from batch.outcome import Outcome, PasswordLine, SentRow, Status
from batch.passwords import generate_password
from batch.verbs.base import Executed, Session
from batch.verbs.existing import KeyPlan, OneKeyVerb
from batch.verbs.lag import not_found, until_seen
from batch.verbs.lookups import contact_of
from batch.verbs.permissions import PASSWORD, READ, PermissionNeeds
from batch.verbs.plans import line_for
from batch.verbs.spec import Option, VerbSpec

NEEDS = PermissionNeeds(read=READ, write=(PASSWORD,))


class ResetPasswordVerb(OneKeyVerb):
    name = "reset-password"
    doing = "Resetting passwords"
    needs = NEEDS

    def __init__(self, domain: str, *, force_change: bool = True) -> None:
        super().__init__(domain, RESET_COLUMNS)
        self.force_change = force_change
        # The row that resets each customer (object id): a customer named twice in the file, by
        # two keys (its objectId, its sign-in name), would get two passwords, one of them dead.
        self._customers: dict[str, int] = {}

    def _once(self, found: list[tuple[KeyPlan, dict[str, Any]]], done: Executed,
              plan_line: bool = False) -> list[tuple[KeyPlan, dict[str, Any]]]:
        """`found` less the rows whose customer an earlier row (or one done first) resets,
        which fail saying so."""
        kept = []
        for plan, user in found:
            object_id = str(user.get("id") or "")
            first = self._customers.setdefault(object_id, plan.row)
            if first == plan.row:
                kept.append((plan, user))
                continue
            why = f"the same customer as row {first} ({object_id}): one password reset per customer"
            if plan_line:
                done.would(line_for(plan.row, plan.key, "fail", user, why))
            else:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, object_id,
                                             error_code="DuplicateCustomer", error_message=why))
        return kept

    def sent_marker(self, plan: KeyPlan) -> bool:
        return True

    async def execute(self, plans: list[KeyPlan], session: Session, *, reconciling: bool = False) -> Executed:
        done = Executed()
        found, absent = await self.find(plans, session, done, reconciling=reconciling)
        found = self._once(found, done)
        targets = [(plan, str(user["id"])) for plan, user in found]
        to_whom = {plan.row: (str(user.get("displayName") or ""), contact_of(user)) for plan, user in found}
        for plan in absent:
            self.unless_lagging(plan, self.not_live(plan, " (a deleted one must be restored first)"), session, done)
        passwords = [generate_password() for _ in targets]
        # Each customer was just found: a 404 is a replica that does not show it yet (batch/verbs/lag.py).
        results = await until_seen([
            GraphCall("PATCH", f"/users/{object_id}", headers={"Content-Type": "application/json"},
                      body={"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": self.force_change}})
            for (_, object_id), password in zip(targets, passwords)], session, lambda _i, answer: not_found(answer))
        for (plan, object_id), password, result in zip(targets, passwords, results):
            if result.status == 204:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.PASSWORD_RESET, object_id, 204,
                                             attempts=result.attempts))
                done.passwords.append(PasswordLine(plan.row, plan.key, object_id, password, *to_whom[plan.row]))
            elif result.status == 0 or result.ambiguous:
                done.unresolved.append(plan.row)  # resume resets it again, with a fresh password
            else:
                self.refused(plan, result, done, "", object_id)
        return done

    async def plan(self, plans: list[KeyPlan], session: Session) -> Executed:
        """A dry run: a live customer would get a new temporary password; a key that names no
        live customer fails, as in a run. No password is generated."""
        done = Executed()
        found, absent = await self.find_for_plan(plans, session, done)
        found = self._once(found, done, plan_line=True)
        change = "to change at next sign-in" if self.force_change else "not to change at next sign-in"
        for plan, user in found:
            done.would(line_for(plan.row, plan.key, "reset", user,
                                f"found live; would get a generated password ({change}) in passwords.csv"))
        for plan in absent:
            done.would(line_for(plan.row, plan.key, "fail", None,
                                "no customer with this key; a deleted one must be restored first"))
        return done

    async def reconcile(self, items: list[tuple[KeyPlan, SentRow]], session: Session) -> Executed:
        """A reset whose password reached passwords.csv is done; any other is done again."""
        done = Executed()
        on_file = session.passwords_on_file({plan.row for plan, _ in items})
        again = []
        for plan, sent in items:
            if plan.row in on_file:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.PASSWORD_RESET, attempts=sent.attempts,
                                             error_message="reset before the interruption (password in passwords.csv)"))
            else:
                again.append(plan)
        if again:
            # A failed lookup leaves the row `sent`: its password may have changed, and is on no file.
            done.merge(await self.execute(again, session, reconciling=True))
        return done


EPILOG = """\
examples:
  entra-batch reset-password forgot.csv           new temporary passwords, changed at next sign-in
  entra-batch reset-password forgot.csv --no-force-change

The file: one customer per row, named by objectId, userPrincipalName or signInName. Each gets
a generated 16-character password, written to passwords.csv (mode 0600) once Graph confirmed
the reset, and nowhere else. The app needs User-PasswordProfile.ReadWrite.All (or
User.ReadWrite.All) and User.Read.All. Exit status as for create: 0, 1, 2, 3, 130.
"""

SPEC = VerbSpec(
    name="reset-password",
    summary="give customers new temporary passwords",
    description="Reset the password of one customer per CSV row to a generated temporary one.",
    epilog=EPILOG,
    columns=RESET_COLUMNS,
    portal_header=PORTAL_DELETE_HEADER,
    options=(Option("--no-force-change", "no_force_change",
                    "the new passwords need not be changed at next sign-in (default: they must)", store_true=True),
             Option("--yes", "yes", "do not ask for confirmation (asked above 100 rows against a tenant, on a "
                                    "terminal; needed there otherwise)", store_true=True)),
    confirm="never",
    build=lambda settings: ResetPasswordVerb(settings.domain or "", force_change=settings.force_change_generated),
)
