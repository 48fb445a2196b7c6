"""What a dry run's plan.csv says of a row, in the input's terms: the customer found (object
id, display name, sign-in name) and, for an update, each property that would change as the
row's own column says it ("blockSignIn: No → Yes", never "accountEnabled: true → false")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from batch.verbs.base import Change, PlanLine
from batch.verbs.fields import Extensions, is_extension_column

LOCAL_SIGN_IN_TYPES = ("emailaddress", "username")
BLANK = "(blank)"


def sign_in_name_of(user: Mapping[str, Any]) -> str:
    """The customer's email or user name identity, else its UPN."""
    for identity in user.get("identities") or []:
        if isinstance(identity, dict) and str(identity.get("signInType", "")).lower() in LOCAL_SIGN_IN_TYPES:
            return str(identity.get("issuerAssignedId", ""))
    return str(user.get("userPrincipalName") or "")


def line_for(row: int, key: str, action: str, user: Mapping[str, Any] | None, reason: str,
             changes: tuple[Change, ...] = ()) -> PlanLine:
    """A plan.csv line naming `user` (the customer found; None when there is none)."""
    if user is None:
        return PlanLine(row, key, action, reason=reason, changes=changes)
    return PlanLine(row, key, action, str(user.get("id") or ""), str(user.get("displayName") or ""),
                    sign_in_name_of(user), reason, changes)


def property_columns(cells: Mapping[str, str], extensions: Extensions) -> dict[str, str]:
    """Graph property → the column of the row that gives it, where they differ: accountEnabled
    from blockSignIn (when the row fills that), businessPhones from businessPhone, a custom
    attribute from its ext.<name> column."""
    columns: dict[str, str] = {}
    if cells.get("blockSignIn", "").strip():
        columns["accountEnabled"] = "blockSignIn"
    if "businessPhone" in cells:
        columns["businessPhones"] = "businessPhone"
    for column in cells:
        if is_extension_column(column):
            prop = extensions.property_name(column, [])
            if prop is not None and prop != column:
                columns[prop] = column
    return columns


def shown(column: str, value: Any) -> str:
    """A value as the input's column would write it."""
    if column == "blockSignIn":  # the inverse of accountEnabled, in the row's words
        return "No" if value is None or value is True else "Yes"
    if value is None or value == "" or value == []:
        return BLANK
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(f"'{v}'" for v in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def changes_of(body: Mapping[str, Any], current: Mapping[str, Any], columns: Mapping[str, str]) -> tuple[Change, ...]:
    """Each property of `body` (what would be sent) as a change from `current`, named by its
    column and sorted by it. `identities` is left to the caller (its column is newSignInName)."""
    found = []
    for prop, wanted in body.items():
        if prop == "identities":
            continue
        column = columns.get(prop, prop)
        found.append(Change(column, shown(column, current.get(prop)), shown(column, wanted)))
    return tuple(sorted(found, key=lambda c: c.column.lower()))


def counted(changes: tuple[Change, ...]) -> str:
    """"2 properties differ: blockSignIn, displayName"."""
    names = ", ".join(c.column for c in changes)
    return f"{len(changes)} {'property differs' if len(changes) == 1 else 'properties differ'}: {names}"


__all__ = ["changes_of", "counted", "line_for", "property_columns", "shown", "sign_in_name_of"]
