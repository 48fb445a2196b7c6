"""`update`: change customers' profiles, `PATCH /users/{id}` (GRAPH.md §5).

Only the columns a row fills change: a blank cell leaves the value as it is, and the marker
`#clear` empties a property that can be empty. `blockSignIn` (or `accountEnabled`) blocks or
unblocks sign-in; `newSignInName` replaces the customer's email or user name identity and
keeps its other identities (Graph replaces the collection whole); `federatedIssuer` +
`federatedId` (numbered for more, batch/verbs/identities.py) and the export's
`signIn.federated` ADD the federated identities the customer does not hold yet, and leave
one it holds as it is (nothing is removed: a federated identity is taken away in the admin
center). One identity given on two rows of the file is refused on the second, as create
does: the two PATCHes would race for it. The customer's current
values are read first: a row whose values already match is `skipped`, and only the
properties that differ are sent.

Exactly once: a PATCH is idempotent; a row whose answer was lost is read again and, if its
values are in place, counted as updated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batch.graph import GraphCall
from batch.io.columns import PORTAL_DELETE_HEADER, UPDATE_COLUMNS
from batch.io.csvio import Row
from batch.io.quoting import shown as quoted
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.answers import send
from batch.verbs.attributes import AttributeCatalog
from batch.verbs.base import Change, Executed, Rejected, Session
from batch.verbs.existing import ExistingCustomerVerb, KeyPlan
from batch.verbs.fields import (
    FIELD_RULES,
    FLAG_COLUMNS,
    Extensions,
    account_enabled,
    check_field,
    is_extension_column,
    sign_in_name_problem,
)
from batch.verbs.identities import EXPORT_FEDERATED, FEDERATED_COLUMNS, Identity, check_identities, extra_identities
from batch.verbs.lag import not_found, until_seen
from batch.verbs.lookups import UserKey, found_users, lookup_call
from batch.verbs.permissions import ENABLE, IDENTITIES, READ, UPDATE, PermissionNeeds
from batch.verbs.plans import LOCAL_SIGN_IN_TYPES, changes_of, counted, line_for, property_columns, shown
from batch.verbs.spec import VerbSpec

CLEAR = "#clear"
ADDING_COLUMNS = (*FEDERATED_COLUMNS, EXPORT_FEDERATED)  # the columns that add federated identities
NOT_CLEARABLE = {"displayName", "usageLocation", "blockSignIn", "accountEnabled", "newSignInName", *ADDING_COLUMNS}
KEY_COLUMN_NAMES = ("objectId", "userPrincipalName", "signInName")
# What a file's columns add (GRAPH.md §5, §10): sign-in blocking and identities have their own permissions.
# PATCH identities needs User.ManageIdentities.All (GRAPH.md §1.5): every column that adds an
# identity counts as federatedIssuer, so that a file of only federatedIssuer2 (or only
# signIn.federated) is checked before anything is sent rather than refused 403 mid-run.
NEEDS = PermissionNeeds(read=READ, write=(UPDATE,), by_column={"blockSignIn": (ENABLE,), "accountEnabled": (ENABLE,),
                                                               "newSignInName": (IDENTITIES,),
                                                               "federatedIssuer": (IDENTITIES,)},
                        same_as={column: "federatedIssuer" for column in ADDING_COLUMNS})


@dataclass
class UpdatePlan(KeyPlan):
    changes: dict[str, Any] = field(default_factory=dict)  # Graph property → wanted value (None: clear)
    new_sign_in: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # Graph property → the row's column, where they differ
    federated: tuple[Identity, ...] = ()  # federated identities to add when missing


class UpdateVerb(ExistingCustomerVerb[UpdatePlan]):
    name = "update"
    doing = "Updating customers"
    needs = NEEDS

    def __init__(self, domain: str, extensions_app_id: str | None = None,
                 attributes: AttributeCatalog | None = None) -> None:
        super().__init__(domain, UPDATE_COLUMNS)
        self.extensions = Extensions(extensions_app_id, attributes)

    def validate(self, row: Row) -> UpdatePlan | Rejected:
        keyed = self.read_key(row)
        if isinstance(keyed, Rejected):
            return keyed
        problems: list[str] = []
        changes = self._changes(row.cells, problems)
        new_sign_in = row.cells.get("newSignInName", "").strip() or None
        if new_sign_in and new_sign_in.lower() != CLEAR:
            self._check_new_sign_in(new_sign_in, problems)
            # Two rows giving one new sign-in name would race: the second PATCH refused, which
            # one depending on the run (found by a review). Sign-in names are unique whatever
            # their case.
            first = self.seen.claim("signin-new", new_sign_in.lower(), row.number)
            if first is not None:
                problems.append(f"newSignInName '{quoted(new_sign_in)}' is already used by row {first} of this file")
        federated = tuple(check_identities(extra_identities(
            {c: v for c, v in row.cells.items() if c in ADDING_COLUMNS and v.strip().lower() != CLEAR}, problems),
            self.domain, problems))
        self._claim(federated, row.number, problems)
        if problems:
            return Rejected(row.number, keyed.key, tuple(problems))
        if not changes and not new_sign_in and not federated:
            return Rejected(row.number, keyed.key, ("nothing to change: every column besides the key is blank",),
                            Status.SKIPPED)
        return UpdatePlan(keyed.row, keyed.key, keyed.user, changes, new_sign_in,
                          property_columns(row.cells, self.extensions), federated)

    def _claim(self, federated: tuple[Identity, ...], row: int, problems: list[str]) -> None:
        """Each federated identity claimed in the file, as create_rows.py claims them: issuer
        and id are unique in the tenant (objectidentity.md), so two rows adding one identity
        would race, the second PATCH refused with a conflict, or worse, in either order."""
        for identity in federated:
            first = self.seen.claim("federated", f"{identity.issuer}\0{identity.assigned_id}", row)
            if first is not None:
                problems.append(f"federated identity '{quoted(identity.key())}' is already used by row {first} "
                                "of this file")

    def _changes(self, cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
        """What the row's filled columns change, by the field rules that create uses too."""
        changes: dict[str, Any] = {}
        for column, value in cells.items():
            value = value.strip()
            if not value or column in KEY_COLUMN_NAMES:
                continue
            if value.lower() == CLEAR:
                self._clear(column, changes, problems)
            elif column in FIELD_RULES:
                prop, wanted = check_field(column, value, problems)
                changes[prop] = wanted
            elif is_extension_column(column):
                checked = self.extensions.check(column, value, problems)
                if checked is not None:
                    changes[checked[0]] = checked[1]
        flags = {c: cells.get(c, "") for c in FLAG_COLUMNS if cells.get(c, "").strip().lower() != CLEAR}
        enabled = account_enabled(flags, problems)
        if enabled is not None:
            changes["accountEnabled"] = enabled
        return changes

    def _clear(self, column: str, changes: dict[str, Any], problems: list[str]) -> None:
        if column in NOT_CLEARABLE:
            problems.append(f"{column} cannot be cleared")
        elif column == "businessPhone":
            changes["businessPhones"] = []
        elif is_extension_column(column):
            prop = self.extensions.property_name(column, problems)
            if prop is not None:
                changes[prop] = None
        else:
            changes[column] = None

    def _check_new_sign_in(self, value: str, problems: list[str]) -> None:
        problem = sign_in_name_problem("newSignInName", value, "emailAddress" if "@" in value else "userName")
        if problem:
            problems.append(problem)
        elif not self.domain:
            problems.append("newSignInName needs the tenant's domain (--domain)")

    def _lookup(self, plan: UpdatePlan, key: UserKey | None = None) -> GraphCall:
        call = lookup_call(key or plan.user, self.domain)
        wanted = sorted(set(plan.changes) | {"identities"})
        return GraphCall("GET", call.url + "," + ",".join(wanted))

    async def _renamed(self, plans: list[UpdatePlan], session: Session, done: Executed
                       ) -> tuple[list[tuple[UpdatePlan, dict[str, Any]]], list[UpdatePlan]]:
        """Rows being reconciled whose customer no longer has the row's sign-in name: the
        interrupted run's PATCH may have given it the row's newSignInName, so it is looked up
        by that (a rename that had landed was reported failed, "no live customer")."""
        movable = [p for p in plans if p.new_sign_in and p.user.kind == "signin"]
        if not movable:
            return [], plans
        found, missing = await self.find(movable, session, done, reconciling=True, calls=[
            self._lookup(p, UserKey("signin", p.new_sign_in or "")) for p in movable])
        moved = {id(p) for p in movable}
        return found, [p for p in plans if id(p) not in moved] + missing

    def _patch(self, plan: UpdatePlan, current: dict[str, Any]) -> dict[str, Any]:
        """Only the properties whose value differs from the customer's current one."""
        body = {k: v for k, v in plan.changes.items() if _differs(current.get(k), v)}
        identities = [dict(i) for i in current.get("identities") or []]
        held = {(str(i.get("issuer", "")).lower(), str(i.get("issuerAssignedId", "")).lower()) for i in identities}
        added = [i.json() for i in plan.federated if (i.issuer.lower(), i.assigned_id.lower()) not in held]
        if added:
            # PATCH replaces the collection whole, so it carries every identity the customer
            # has, the userPrincipalName one included (GRAPH.md §1.5, user-update.md).
            body["identities"] = identities + added
            identities = body["identities"]
        if plan.new_sign_in:
            new_type = "emailAddress" if "@" in plan.new_sign_in else "userName"
            local = [i for i in identities if str(i.get("signInType", "")).lower().startswith(("emailaddress", "username"))]
            target = next((i for i in local if plan.user.kind == "signin"
                           and str(i.get("issuerAssignedId", "")).lower() == plan.user.value.lower()), None)
            target = target or next((i for i in local if i.get("signInType") == new_type), None) or \
                (local[0] if local else None)
            if target is None:
                identities.append({"signInType": new_type, "issuer": self.domain, "issuerAssignedId": plan.new_sign_in})
            elif str(target.get("issuerAssignedId", "")) != plan.new_sign_in:
                # Found whatever its case; changed when it differs at all (a case-only change
                # was "already up to date", the directory keeping the old spelling).
                target.update(signInType=new_type, issuer=self.domain, issuerAssignedId=plan.new_sign_in)
            else:
                return body
            body["identities"] = identities
        return body

    @staticmethod
    def _added(plan: UpdatePlan, current: dict[str, Any], body: dict[str, Any]) -> tuple[Change, ...]:
        """plan.csv's words for the federated identities the PATCH would add."""
        held = {(str(i.get("issuer", "")).lower(), str(i.get("issuerAssignedId", "")).lower())
                for i in current.get("identities") or []}
        if "identities" not in body:
            return ()
        return tuple(Change("federated", shown("federated", None), shown("federated", i.key())) for i in plan.federated
                     if (i.issuer.lower(), i.assigned_id.lower()) not in held)

    async def execute(self, plans: list[UpdatePlan], session: Session, *, resent: bool = False) -> Executed:
        done = Executed()
        found, absent = await self.find(plans, session, done, calls=[self._lookup(p) for p in plans], reconciling=resent)
        if resent and absent:
            renamed, absent = await self._renamed(absent, session, done)
            found += renamed
        for plan in absent:
            self.unless_lagging(plan, self.not_live(plan), session, done)
        refusals = await self._refusals(found, session)
        targets: list[tuple[UpdatePlan, str, dict[str, Any]]] = []
        for plan, current in found:
            body = self._patch(plan, current)
            object_id = str(current.get("id", ""))
            if plan.row in refusals and body:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, object_id,
                                             error_code="NewSignInNameRefused", error_message=refusals[plan.row]))
            elif body:
                targets.append((plan, object_id, body))
            elif resent:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.UPDATED, object_id, 204,
                                             error_message="updated before the interruption"))
            else:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, object_id,
                                             error_message="already up to date"))
        # Each customer was just found: a 404 is a replica that does not show it yet (batch/verbs/lag.py).
        results = await until_seen([GraphCall("PATCH", f"/users/{object_id}", body=body,
                                              headers={"Content-Type": "application/json"})
                                    for _, object_id, body in targets], session, lambda _i, answer: not_found(answer))
        for (plan, object_id, body), result in zip(targets, results):
            if result.status == 204:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.UPDATED, object_id, 204,
                                             error_message="changed: " + ", ".join(sorted(body)),
                                             attempts=result.attempts))
            elif result.status == 0 or result.ambiguous:
                done.unresolved.append(plan.row)
            else:
                self.refused(plan, result, done, "", object_id)
        return done

    async def plan(self, plans: list[UpdatePlan], session: Session) -> Executed:
        """A dry run: read each customer and say, property by property and in the row's own
        columns, what would change."""
        done = Executed()
        found, absent = await self.find_for_plan(plans, session, done, calls=[self._lookup(p) for p in plans])
        for plan in absent:
            done.would(line_for(plan.row, plan.key, "fail", None, "no customer with this key"))
        refusals = await self._refusals(found, session)
        for plan, current in found:
            body = self._patch(plan, current)
            if plan.row in refusals and body:
                done.would(line_for(plan.row, plan.key, "fail", current, refusals[plan.row]))
                continue
            changes = changes_of(body, current, plan.columns) + self._added(plan, current, body)
            if "identities" in body and plan.new_sign_in:
                changes = tuple(sorted((*changes, Change("newSignInName", shown("newSignInName", _replaced(current, body)),
                                                          shown("newSignInName", plan.new_sign_in))),
                                       key=lambda c: c.column.lower()))
            if changes:
                done.would(line_for(plan.row, plan.key, "update", current, counted(changes), changes))
            else:
                done.would(line_for(plan.row, plan.key, "skip", current, "already up to date"))
        return done

    async def _refusals(self, found: list[tuple[UpdatePlan, dict[str, Any]]], session: Session) -> dict[int, str]:
        """Why Graph would refuse a row's new sign-in name, known before anything is sent, by
        row: a customer with no email or user-name identity (Graph does not add a local one
        to a customer who has none: GRAPH.md §1.5), or a name another customer holds (the dry
        run said `update`, the run failed on "another object with the same value")."""
        refusals: dict[int, str] = {}
        asked: list[tuple[UpdatePlan, dict[str, Any]]] = []
        for plan, current in found:
            if not plan.new_sign_in:
                continue
            local = [i for i in current.get("identities") or []
                     if str(i.get("signInType", "")).lower() in LOCAL_SIGN_IN_TYPES]
            if local:
                asked.append((plan, current))
            else:
                refusals[plan.row] = ("newSignInName: this customer has no email or user-name sign-in to rename, and "
                                      "Graph does not add one to a customer who signs in only with other identities")
        answers = await send([lookup_call(UserKey("signin", p.new_sign_in or ""), self.domain) for p, _ in asked],
                             session) if asked else []
        for (plan, current), answer in zip(asked, answers):
            holders = [u for u in found_users(answer) or [] if str(u.get("id", "")) != str(current.get("id", ""))]
            if holders:
                refusals[plan.row] = (f"newSignInName '{quoted(plan.new_sign_in or '')}' is taken by the customer "
                                      f"{holders[0].get('id', '')}")
        return refusals

    async def reconcile(self, items: list[tuple[UpdatePlan, SentRow]], session: Session) -> Executed:
        """Read each customer again: values in place mean the interrupted run's PATCH landed."""
        return await self.execute([plan for plan, _ in items], session, resent=True)


def _replaced(current: dict[str, Any], body: dict[str, Any]) -> str | None:
    """The email or user name identity that the new sign-in name would replace (None: added)."""
    kept = {str(i.get("issuerAssignedId", "")).lower() for i in body.get("identities") or []}
    for identity in current.get("identities") or []:
        name = str(identity.get("issuerAssignedId", ""))
        if str(identity.get("signInType", "")).lower() in LOCAL_SIGN_IN_TYPES and name.lower() not in kept:
            return name
    return None


def _differs(current: Any, wanted: Any) -> bool:
    if wanted is None:
        return current not in (None, "", [])
    return bool(current != wanted)


EPILOG = """\
examples:
  entra-batch update changes.csv
  entra-batch update changes.csv --dry-run      plan.csv: each customer found, and what would change

The file: one customer per row, named by objectId, userPrincipalName or signInName, plus the
columns to change: displayName, givenName, surname, blockSignIn (Yes/No), usageLocation, mail,
jobTitle, department, companyName, city, state, country, streetAddress, postalCode,
officeLocation, mobilePhone, businessPhone, preferredLanguage, employeeId, newSignInName (a new
email or user name to sign in with), federatedIssuer + federatedId (a social identity to add,
e.g. google.com and the id Google gave; federatedIssuer2 + federatedId2 … for more; one the
customer holds is left as it is), signIn.federated (an export's issuer/id list, added the
same way), extension_<appId>_<name> or ext.<name>. A blank cell
leaves the value as it is; #clear empties it (not displayName, usageLocation or blockSignIn).
A row whose values already match is skipped. Exit status as for create: 0, 1, 2, 3, 130.
"""

SPEC = VerbSpec(
    name="update",
    summary="change customer profiles from a CSV file",
    description="Change the properties a CSV row gives, one customer per row.",
    epilog=EPILOG,
    columns=UPDATE_COLUMNS,
    portal_header=PORTAL_DELETE_HEADER,
    options=(),
    confirm="never",
    build=lambda settings: UpdateVerb(settings.domain or "", settings.extensions_app_id, settings.attributes),
)
