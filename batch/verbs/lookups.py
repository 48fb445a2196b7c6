"""User keys (PRODUCT.md): an object id, a userPrincipalName, or a sign-in name (the
`issuerAssignedId` of an emailAddress or userName identity), and the Graph lookups that turn
one into the customer it names, among live or soft-deleted users."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batch import rules
from batch.graph import GraphCall, GraphResult
from batch.io.quoting import shown
from batch.verbs.fields import email_problem

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
KEY_COLUMNS = (("objectId", "id"), ("userPrincipalName", "upn"), ("signInName", "signin"))
SELECT = "id,userPrincipalName,displayName,identities,accountEnabled,createdDateTime,mail"


@dataclass(frozen=True)
class UserKey:
    kind: str  # "id", "upn", "signin", or "federated" (create's lookup of a federated-only customer)
    value: str
    issuer: str = ""  # a federated identity's issuer

    def __str__(self) -> str:
        return self.value


def parse_key(cells: dict[str, str]) -> UserKey | str:
    """The row's key (an object id first, then a UPN, then a sign-in name), or why there is none."""
    for column, kind in KEY_COLUMNS:
        value = cells.get(column, "").strip()
        if not value:
            continue
        if kind == "id" and not _GUID.match(value):
            return f"objectId '{shown(value)}' is not an object id (a GUID such as 8d3f…-…)"
        if kind == "upn" and (problem := rules.upn_problem(value)):
            return f"userPrincipalName '{shown(value)}': {problem}"
        if kind == "signin" and not (rules.is_user_name(value) or email_problem(value) is None):
            return f"signInName '{shown(value)}' is neither an email address nor a user name"
        return UserKey(kind, value.lower() if kind == "id" else value)
    return "a user key is required: objectId, userPrincipalName or signInName"


def _quoted(value: str) -> str:
    return value.replace("'", "''")


def lookup_call(key: UserKey, domain: str, *, deleted: bool = False) -> GraphCall:
    """The customer named by `key`, among live users or (deleted=True) soft-deleted ones."""
    select = SELECT + (",deletedDateTime" if deleted else "")
    if key.kind == "id":
        path = f"/directory/deletedItems/{key.value}" if deleted else f"/users/{key.value}"
        return GraphCall("GET", f"{path}?$select={select}")
    base = "/directory/deletedItems/microsoft.graph.user" if deleted else "/users"
    if key.kind == "upn" and not deleted:
        return GraphCall("GET", f"/users/{quote(key.value, safe='@')}?$select={select}")
    if key.kind == "upn":
        flt = f"userPrincipalName eq '{_quoted(key.value)}'"
    elif key.kind == "federated":
        flt = identity_filter(key.issuer, key.value)
    else:
        flt = f"identities/any(c:c/issuerAssignedId eq '{_quoted(key.value)}' and c/issuer eq '{_quoted(domain)}')"
    return GraphCall("GET", f"{base}?$filter={quote(flt, safe='')}&$select={select}")


def identity_filter(issuer: str, assigned_id: str) -> str:
    """The `$filter` of the user holding an identity: "Filtering for entries with a signInType of
    federated requires a valid issuer and issuerAssignedId" (objectidentity.md, "Filtering")."""
    return f"identities/any(c:c/issuerAssignedId eq '{_quoted(assigned_id)}' and c/issuer eq '{_quoted(issuer)}')"


def contact_of(user: dict[str, Any]) -> str:
    """Where to reach a customer: its mail, else its email sign-in name, else ''."""
    if user.get("mail"):
        return str(user["mail"])
    for identity in user.get("identities") or ():
        if isinstance(identity, dict) and identity.get("signInType") == "emailAddress" and \
                identity.get("issuerAssignedId"):
            return str(identity["issuerAssignedId"])
    return ""


def found_users(result: GraphResult) -> list[dict[str, Any]] | None:
    """The users a lookup found ([] when none), or None when the lookup itself failed."""
    if result.status == 404:
        return []
    if result.status != 200 or not isinstance(result.body, dict):
        return None
    if "value" in result.body:
        return [u for u in result.body["value"] if isinstance(u, dict)]
    return [result.body]
