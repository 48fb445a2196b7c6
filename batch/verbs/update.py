"""`update`: change customers' profiles, `PATCH /users/{id}` (GRAPH.md §5).

Only the columns a row fills change: a blank cell leaves the value as it is, and the marker
`#clear` empties a property that can be empty. `blockSignIn` (or `accountEnabled`) blocks or
unblocks sign-in; `newSignInName` replaces the customer's email or user name identity and
keeps its other identities (Graph replaces the collection whole). The customer's current
values are read first: a row whose values already match is `skipped`, and only the
properties that differ are sent.

Exactly once: a PATCH is idempotent; a row whose answer was lost is read again and, if its
values are in place, counted as updated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from batch import rules
from batch.graph import GraphCall
from batch.io.csvio import Row
from batch.outcome import Outcome, SentRow, Status
from batch.verbs.base import Executed, Rejected, Session
from batch.verbs.create import (
    ENABLE,
    PROFILE_COLUMNS,
    READ,
    UPDATE,
    email_problem,
    parse_bool,
)
from batch.verbs.keyed import KeyedVerb, KeyPlan
from batch.verbs.lookups import lookup_call

CLEAR = "#clear"
IDENTITIES = frozenset({"User.ManageIdentities.All"})
NOT_CLEARABLE = {"displayName", "usageLocation", "blockSignIn", "accountEnabled", "newSignInName"}


@dataclass
class UpdatePlan(KeyPlan):
    changes: dict[str, Any] = field(default_factory=dict)  # Graph property → wanted value (None: clear)
    new_sign_in: str | None = None


class UpdateVerb(KeyedVerb):
    name = "update"
    doing = "Updating customers"
    permissions: tuple[frozenset[str], ...] = (UPDATE, READ)

    def needs(self, columns: set[str]) -> tuple[frozenset[str], ...]:
        """The permissions this file needs, by the columns it fills (GRAPH.md §5, §10)."""
        needed = [UPDATE, READ]
        if columns & {"blockSignIn", "accountEnabled"}:
            needed.append(ENABLE)
        if "newSignInName" in columns:
            needed.append(IDENTITIES)
        return tuple(needed)

    def __init__(self, domain: str, extensions_app_id: str | None = None) -> None:
        super().__init__(domain)
        self.extensions_app_id = extensions_app_id
        self._ext_prefix = (f"extension_{extensions_app_id.replace('-', '').lower()}_" if extensions_app_id else None)

    def validate(self, row: Row) -> UpdatePlan | Rejected:  # type: ignore[override]
        keyed = super().validate(row)
        if isinstance(keyed, Rejected):
            return keyed
        cells = row.cells
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for column, value in cells.items():
            value = value.strip()
            if not value or column in ("objectId", "userPrincipalName", "signInName"):
                continue
            if value.lower() == CLEAR:
                if column in NOT_CLEARABLE:
                    problems.append(f"{column} cannot be cleared")
                elif column == "businessPhone":
                    changes["businessPhones"] = []
                else:
                    changes[self._property(column)] = None
                continue
            self._check(column, value, changes, problems)
        new_sign_in = cells.get("newSignInName", "").strip() or None
        if new_sign_in and new_sign_in.lower() != CLEAR:
            if "@" in new_sign_in and email_problem(new_sign_in):
                problems.append(f"newSignInName '{new_sign_in}' is not a valid email address")
            elif "@" not in new_sign_in and not rules.is_user_name(new_sign_in):
                problems.append(f"newSignInName '{new_sign_in}' is not a valid user name")
            elif not self.domain:
                problems.append("newSignInName needs the tenant's domain (--domain)")
        changes.pop("newSignInName", None)
        if problems:
            return Rejected(row.number, keyed.key, tuple(problems))
        if not changes and not new_sign_in:
            return Rejected(row.number, keyed.key, ("nothing to change: every column besides the key is blank",),
                            Status.SKIPPED)
        return UpdatePlan(keyed.row, keyed.key, keyed.user, changes, new_sign_in)

    def _property(self, column: str) -> str:
        if column.lower().startswith("ext.") and self._ext_prefix:
            return self._ext_prefix + column[4:]
        return column

    def _check(self, column: str, value: str, changes: dict[str, Any], problems: list[str]) -> None:
        if column in ("blockSignIn", "accountEnabled"):
            try:
                flag = parse_bool(value)
            except ValueError:
                problems.append(f"{column} '{value}' is not Yes/No (true/false, 1/0)")
                return
            enabled = not flag if column == "blockSignIn" else flag
            if "accountEnabled" in changes and changes["accountEnabled"] != enabled:
                problems.append("blockSignIn and accountEnabled disagree")
            changes["accountEnabled"] = enabled
        elif column == "usageLocation":
            code = rules.normalise_usage_location(value)
            if code is None:
                problems.append(f"usageLocation '{value}' is not an ISO 3166-1 two-letter country code")
            changes["usageLocation"] = code
        elif column == "mail":
            if email_problem(value):
                problems.append(f"mail '{value}' is not a valid email address")
            changes["mail"] = value
        elif column == "preferredLanguage":
            if not rules.is_language_tag(value):
                problems.append(f"preferredLanguage '{value}' is not a language tag such as en-US")
            changes["preferredLanguage"] = value
        elif column == "businessPhone":
            changes["businessPhones"] = [value]
        elif column == "displayName" or column in PROFILE_COLUMNS:
            limit = rules.PROPERTY_MAX_LENGTHS.get(column)
            if limit is not None and len(value) > limit:
                problems.append(f"{column} is {len(value)} characters long; Entra allows {limit}")
            changes[column] = value
        elif column.lower().startswith(("extension_", "ext.")):
            name = self._property(column)
            if rules.parse_extension_name(name) is None:
                problems.append(f"column '{column}' is not a custom attribute name (extension_<appId>_<name>; "
                                "ext.<name> needs --extensions-app-id)")
            elif len(value) > rules.EXTENSION_VALUE_MAX_LENGTH:
                problems.append(f"{column} is longer than {rules.EXTENSION_VALUE_MAX_LENGTH} characters")
            lowered = value.lower()
            changes[name] = True if lowered == "true" else False if lowered == "false" else value

    def sent_marker(self, plan: KeyPlan) -> bool:
        return False

    def _lookup(self, plan: UpdatePlan) -> GraphCall:
        call = lookup_call(plan.user, self.domain)
        wanted = sorted(set(plan.changes) | {"identities"})
        return GraphCall("GET", call.url + "," + ",".join(wanted))

    def _patch(self, plan: UpdatePlan, current: dict[str, Any]) -> dict[str, Any]:
        """Only the properties whose value differs from the customer's current one."""
        body = {k: v for k, v in plan.changes.items() if _differs(current.get(k), v)}
        if plan.new_sign_in:
            identities = [dict(i) for i in current.get("identities") or []]
            new_type = "emailAddress" if "@" in plan.new_sign_in else "userName"
            local = [i for i in identities if str(i.get("signInType", "")).lower().startswith(("emailaddress", "username"))]
            target = next((i for i in local if plan.user.kind == "signin"
                           and str(i.get("issuerAssignedId", "")).lower() == plan.user.value.lower()), None)
            target = target or next((i for i in local if i.get("signInType") == new_type), None) or \
                (local[0] if local else None)
            if target is None:
                identities.append({"signInType": new_type, "issuer": self.domain, "issuerAssignedId": plan.new_sign_in})
            elif str(target.get("issuerAssignedId", "")).lower() != plan.new_sign_in.lower():
                target.update(signInType=new_type, issuer=self.domain, issuerAssignedId=plan.new_sign_in)
            else:
                return body
            body["identities"] = identities
        return body

    async def execute(self, plans: list[UpdatePlan], session: Session, *, resent: bool = False) -> Executed:  # type: ignore[override]
        done = Executed()
        found, absent = await self.find(plans, session, done, calls=[self._lookup(p) for p in plans])
        done.outcomes += [self.not_live(plan) for plan in absent]
        targets: list[tuple[UpdatePlan, str, dict[str, Any]]] = []
        for plan, current in found:
            body = self._patch(plan, current)
            object_id = str(current.get("id", ""))
            if body:
                targets.append((plan, object_id, body))
            elif resent:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.UPDATED, object_id, 204,
                                             error_message="updated before the interruption"))
            else:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, object_id,
                                             error_message="already up to date"))
        results = await self._send([GraphCall("PATCH", f"/users/{object_id}", body=body,
                                              headers={"Content-Type": "application/json"})
                                    for _, object_id, body in targets], session)
        for (plan, object_id, body), result in zip(targets, results):
            if result.status == 204:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.UPDATED, object_id, 204,
                                             error_message="changed: " + ", ".join(sorted(body)),
                                             attempts=result.attempts))
            elif result.status == 0 or result.ambiguous:
                done.unresolved.append(plan.row)
            else:
                self._refused(plan, result, done, "", object_id)
        return done

    async def plan(self, plans: list[UpdatePlan], session: Session) -> Executed:
        """A dry run: read each customer and say, property by property, what would change."""
        done = Executed()
        found, absent = await self.find(plans, session, done, calls=[self._lookup(p) for p in plans])
        done.outcomes += [self.not_live(plan) for plan in absent]
        for plan, current in found:
            object_id = str(current.get("id", ""))
            body = self._patch(plan, current)
            for name in sorted(body):
                done.plan.append((plan.row, plan.key, object_id, name, _shown(current.get(name)), _shown(body[name])))
            message = ("dry run: would change " + ", ".join(sorted(body))) if body else "dry run: already up to date"
            done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, object_id, error_message=message))
        return done

    async def reconcile(self, items: list[tuple[UpdatePlan, SentRow]], session: Session) -> Executed:  # type: ignore[override]
        """Read each customer again: values in place mean the interrupted run's PATCH landed."""
        return await self.execute([plan for plan, _ in items], session, resent=True)


def _shown(value: Any) -> str:
    """A value as plan.csv shows it: text as it is, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _differs(current: Any, wanted: Any) -> bool:
    if wanted is None:
        return current not in (None, "", [])
    if isinstance(wanted, str) and isinstance(current, str):
        return current != wanted
    return current != wanted
