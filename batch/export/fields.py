"""What an export's columns are, what to ask Graph for them, and how a Graph user becomes a
flat record (one string per column).

Columns are named as the other verbs read them, so that an exported file is valid input
to `update`, `delete`, `reset-password` and `restore` as it is: `id` is read as the object
id, `userPrincipalName` and the profile properties under their own names, custom
attributes as `ext.<name>`. Sign-in names are flattened from `identities`, one column per
sign-in type: `signIn.emailAddress`, `signIn.userName`, and `signIn.federated` for social
and federated identities (`issuer/issuerAssignedId`, several joined by `; `). The
userPrincipalName identity is left out: it is the `userPrincipalName` column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batch.userschema import USER_PROPERTIES
from batch.verbs.delete import RETENTION

SIGN_IN_COLUMNS = ("signIn.emailAddress", "signIn.userName", "signIn.federated")
DEFAULT_COLUMNS = ("id", "userPrincipalName", "displayName", "givenName", "surname", "mail", *SIGN_IN_COLUMNS,
                   "accountEnabled", "usageLocation", "createdDateTime", "creationType")
DELETED_COLUMNS = ("deletedDateTime", "restorableUntil")
CHANGE_COLUMNS = ("change", "removal")
# What the summary counts (status, sign-in type, usage location, month): always fetched, even
# when `--select` leaves them out of the file.
COUNTED_COLUMNS = ("accountEnabled", *SIGN_IN_COLUMNS, "usageLocation", "createdDateTime")
# Columns made from one Graph property (or computed), by column name.
_SOURCES = {**{name: "identities" for name in SIGN_IN_COLUMNS}, "restorableUntil": "deletedDateTime"}
_PROPERTY_NAMES = {name.lower(): name for name in USER_PROPERTIES}


class SelectError(ValueError):
    """A `--select` that names no property Graph has."""


@dataclass(frozen=True)
class Columns:
    """The export's columns in order, and the `$select` that fetches them."""

    names: tuple[str, ...]
    extensions: Mapping[str, str]  # column `ext.<name>` → Graph property `extension_<hex>_<name>`

    def including(self, names: Sequence[str]) -> Columns:
        """These columns and `names` (not written: fetched and flattened for the summary)."""
        return Columns(tuple(dict.fromkeys([*self.names, *names])), self.extensions)

    @property
    def select(self) -> list[str]:
        wanted: list[str] = ["id"]
        for name in self.names:
            prop = self.extensions.get(name) or _SOURCES.get(name) or name
            if prop not in wanted and prop not in CHANGE_COLUMNS:
                wanted.append(prop)
        return wanted


def choose_columns(select: str | None, *, extension_names: Sequence[str], extensions_app_hex: str | None,
                   deleted: bool = False, delta: bool = False, listed: bool = False) -> Columns:
    """The columns of an export. `select` is `--select`: a list of names narrows the columns to
    exactly those (in that order); names each starting with `+` are added to the defaults.
    `extension_names` are the tenant's custom attributes (`extension_<hex>_<name>`), which
    the defaults include under their friendly names; `listed`: they are all of them, and a
    custom attribute of the extensions app that is not among them is refused (a misspelt one
    was a blank column)."""
    extensions: dict[str, str] = {}

    def friendly(prop: str) -> str:
        prefix = f"extension_{extensions_app_hex}_" if extensions_app_hex else None
        if prefix and prop.lower().startswith(prefix):
            name = "ext." + prop[len(prefix):]
            extensions[name] = prop
            return name
        return prop

    defaults = [*DEFAULT_COLUMNS, *(friendly(p) for p in extension_names)]
    declared = {name.lower(): name for name in extension_names}
    items = [item.strip() for item in (select or "").split(",") if item.strip()]
    adding = bool(items) and all(item.startswith("+") for item in items)
    if items and not adding and any(item.startswith("+") for item in items):
        raise SelectError("--select takes either a list of columns (exactly those) or a list of +column "
                          "(added to the default ones), not both")
    names = defaults if not items or adding else []
    for item in items:
        name = _column_name(item.lstrip("+"), extensions_app_hex, extensions, declared if listed else None)
        if name.lower() not in {n.lower() for n in names}:  # the other verbs read headers case-insensitively
            names.append(name)
    if deleted:
        names += [c for c in DELETED_COLUMNS if c not in names]
    if delta:
        names = [*CHANGE_COLUMNS, *(n for n in names if n not in CHANGE_COLUMNS)]
    if "id" not in names:
        names.insert(0, "id")
    return Columns(tuple(names), extensions)


def _column_name(text: str, extensions_app_hex: str | None, extensions: dict[str, str],
                 declared: Mapping[str, str] | None) -> str:
    """The column `--select` names. A custom attribute takes the spelling the tenant declared
    (Graph matches `$select` case-insensitively but answers with that spelling); `declared`
    None: the tenant's could not be listed, and any name is taken."""
    given = text
    lowered = text.lower()
    if lowered.startswith("ext."):
        if not extensions_app_hex:
            raise SelectError(f"--select {text}: custom attributes by short name need the extensions app id "
                              "(--extensions-app-id or ENTRA_BATCH_EXTENSIONS_APP_ID); or give extension_<hex>_<name>")
        text = f"extension_{extensions_app_hex}_{text[4:]}"
        lowered = text.lower()
    if lowered.startswith("extension_"):
        text = (declared or {}).get(lowered, text)
        prefix = f"extension_{extensions_app_hex}_" if extensions_app_hex else None
        if prefix and lowered.startswith(prefix) and declared is not None and lowered not in declared:
            known = ", ".join("ext." + name[len(prefix):] for name in declared.values()
                              if name.lower().startswith(prefix)) or "none"
            raise SelectError(f"--select {given}: the tenant has no such custom attribute (its custom attributes: "
                              f"{known})")
        if prefix and lowered.startswith(prefix):
            name = "ext." + text[len(prefix):]
            extensions[name] = text
            return name
        return text
    for known in (*SIGN_IN_COLUMNS, *DELETED_COLUMNS, *CHANGE_COLUMNS):
        if lowered == known.lower():
            return known
    if lowered in _PROPERTY_NAMES:
        return _PROPERTY_NAMES[lowered]
    raise SelectError(f"--select {text}: not a property of a user (see `entra-batch export --help` for the columns)")


def flatten(user: Mapping[str, Any], columns: Columns) -> dict[str, str]:
    """One Graph user as a record of strings: '' for a missing or null value, `true`/`false`
    for booleans, lists joined by `; `."""
    record: dict[str, str] = {}
    identities = user.get("identities") or []
    for name in columns.names:
        if name in _SOURCES and name.startswith("signIn."):
            record[name] = _sign_in(identities, name[len("signIn."):])
        elif name == "restorableUntil":
            record[name] = restorable_until(user.get("deletedDateTime"))
        else:
            record[name] = _text(user.get(columns.extensions.get(name, name)))
    return record


def row_flattener(columns: Columns) -> Callable[[Mapping[str, Any]], list[str]]:
    """`flatten` for the export's hot path: one Graph user as a list of strings in
    `columns.names` order, the same values as `flatten`, at a fraction of its cost (the plan
    of each column is made once, identities are read once for all sign-in columns)."""
    plan: list[tuple[int, str]] = []  # (0: a property, 1: a sign-in type, 2: restorableUntil; its key)
    for name in columns.names:
        if name in _SOURCES and name.startswith("signIn."):
            plan.append((1, name[len("signIn."):]))
        elif name == "restorableUntil":
            plan.append((2, name))
        else:
            plan.append((0, columns.extensions.get(name, name)))
    steps = tuple(plan)
    signs_needed = any(kind == 1 for kind, _ in steps)

    def flat(user: Mapping[str, Any]) -> list[str]:
        signs = _sign_ins(user.get("identities") or []) if signs_needed else {}
        out: list[str] = []
        for kind, key in steps:
            if kind == 0:
                value = user.get(key)
                out.append(value if value.__class__ is str else "" if value is None else _text(value))
            elif kind == 1:
                out.append(signs.get(key, ""))
            else:
                out.append(restorable_until(user.get("deletedDateTime")))
        return out

    return flat


# signInType as Graph may spell it → the column's kind. External ID's documented user-name
# identity is written `username` (entra-docs how-to-sign-in-alias.md), B2C's `userName`; custom
# types starting with `emailAddress` (`emailAddress1`) are email sign-ins (objectidentity.md).
_KINDS = {"emailaddress": "emailAddress", "username": "userName", "federated": "federated"}


def _kind(sign_in_type: Any) -> Any:
    if not isinstance(sign_in_type, str):
        return sign_in_type
    lowered = sign_in_type.lower()
    return _KINDS.get(lowered) or ("emailAddress" if lowered.startswith("emailaddress") else sign_in_type)


def _sign_ins(identities: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """`_sign_in` of every kind in one pass: kind → its values joined by `; `."""
    found: dict[str, list[str]] = {}
    for identity in identities:
        sign_in_type = _kind(identity.get("signInType"))
        value = identity.get("issuerAssignedId") or ""
        if sign_in_type == "federated":
            found.setdefault("federated", []).append(f"{identity.get('issuer', '')}/{value}")
        elif value and isinstance(sign_in_type, str):
            found.setdefault(sign_in_type, []).append(value)
    return {kind: "; ".join(values) for kind, values in found.items()}


def _sign_in(identities: Sequence[Mapping[str, Any]], kind: str) -> str:
    found = []
    for identity in identities:
        sign_in_type = _kind(identity.get("signInType"))
        value = identity.get("issuerAssignedId") or ""
        if kind == "federated" and sign_in_type == "federated":
            found.append(f"{identity.get('issuer', '')}/{value}")
        elif sign_in_type == kind and value:
            found.append(value)
    return "; ".join(found)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def restorable_until(deleted: Any) -> str:
    """The last moment a soft-deleted customer can be restored: 30 days after its deletion."""
    if not isinstance(deleted, str) or not deleted:
        return ""
    try:
        moment = datetime.fromisoformat(deleted.replace("Z", "+00:00"))
    except ValueError:
        return ""
    until = moment.astimezone(UTC) + RETENTION
    return until.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["CHANGE_COLUMNS", "COUNTED_COLUMNS", "Columns", "DEFAULT_COLUMNS", "DELETED_COLUMNS", "SIGN_IN_COLUMNS", "SelectError",
           "choose_columns", "flatten", "restorable_until", "row_flattener"]
