"""The extensions app section: the tenant's `b2c-extensions-app` found by itself (and held
against a configured extensions_app_id), the custom attributes it defines with their types,
and, when an `onPasswordSubmit` listener runs a JIT password migration, which attribute it
reads and whether that attribute is a Boolean.

Sources: entra-docs external-id/customers/concept-user-attributes.md (custom attributes live
on the b2c-extensions-app, named extension_<appId without dashes>_<name>),
how-to-migrate-users.md and microsoft-graph-docs-contrib v1.0
onpasswordmigrationcustomextensionhandler.md (migrationPropertyId names the custom attribute
that says whether a user still needs migrating).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batch.doctor.report import Check, fail, ok, warn
from batch.graph import GraphResult
from batch.run.attributes import EXTENSIONS_APP_PREFIX, choose_extensions_app
from batch.verbs.jit import migration_listeners

SECTION = "extensions app"
_FULL_NAME = re.compile(r"^extension_([0-9a-f]{32})_(.+)$", re.I)


@dataclass(frozen=True)
class ExtensionsApp:
    object_id: str
    app_id: str


def short_name(name: str) -> str:
    found = _FULL_NAME.match(name)
    return found.group(2) if found else name


def _why(result: GraphResult, permission: str) -> str:
    if result.status in (401, 403):
        return f"the token lacks {permission}"
    return f"HTTP {result.status or 'no answer'} {result.error_code or ''}".strip()


def find_extensions_app(result: GraphResult, configured: str | None) -> tuple[Check, ExtensionsApp | None]:
    if not result.ok:
        return warn(SECTION, "extensions app", f"cannot look for {EXTENSIONS_APP_PREFIX} ({_why(result, 'Application.Read.All')})",
                    "grant Application.Read.All (application permission): doctor and export's custom attribute "
                    "columns read the extensions app with it"), None
    chosen = choose_extensions_app(result.body, configured)
    if chosen.absent:
        return fail(SECTION, "extensions app", f"this tenant has no {EXTENSIONS_APP_PREFIX}: custom attributes "
                                               "(ext.<name> and extension_… columns) cannot be read or written",
                    "an external or B2C tenant makes it when it is created; if it was deleted, restore it within 30 "
                    "days (admin center: App registrations > Deleted applications); do not create one by hand"), None
    if chosen.why is not None:
        # A configured id that is none of the candidates, or several candidates: what to set.
        said, _, remedy = chosen.why.partition(": set ")
        return fail(SECTION, "extensions app", said, f"set {remedy}", configured=configured), None
    app = ExtensionsApp(chosen.object_id, chosen.app_id)
    data: dict[str, Any] = {"app_id": app.app_id, "object_id": app.object_id, "configured": configured}
    said = " (as configured)" if configured else ""
    return ok(SECTION, "extensions app", f"{EXTENSIONS_APP_PREFIX}, app id {app.app_id}{said}", **data), app


def attributes_of(result: GraphResult | None) -> dict[str, str] | None:
    """Full attribute name → data type, or None when they could not be read."""
    if result is None or not result.ok or not isinstance(result.body, dict):
        return None
    return {str(p.get("name")): str(p.get("dataType") or "String") for p in result.body.get("value") or []
            if isinstance(p, dict) and p.get("name")}


def attributes_check(result: GraphResult | None, attributes: dict[str, str] | None) -> Check:
    if attributes is None:
        why = _why(result, "Application.Read.All") if result is not None else "no extensions app"
        return warn(SECTION, "custom attributes", f"cannot be listed ({why})")
    if not attributes:
        return ok(SECTION, "custom attributes", "none defined", attributes={})
    shown = ", ".join(f"{short_name(n)} ({t})" for n, t in sorted(attributes.items(), key=lambda i: i[0].lower()))
    return ok(SECTION, "custom attributes", shown,
              attributes={short_name(n): {"name": n, "type": t} for n, t in attributes.items()})


def migration_checks(result: GraphResult, attributes: dict[str, str] | None) -> list[Check]:
    if result.status in (401, 403):
        return [warn(SECTION, "password migration", "the authentication event listeners cannot be read (the token "
                                                    "lacks EventListener.Read.All)",
                     "only needed to check a JIT password migration: grant EventListener.Read.All to see which "
                     "attribute its onPasswordSubmit listener reads")]
    if not result.ok:
        return [ok(SECTION, "password migration", f"no authentication event listeners here (HTTP {result.status} "
                                                  f"{result.error_code or ''})".replace(" )", ")"))]
    listeners = migration_listeners(result.body)
    if not listeners:
        return [ok(SECTION, "password migration", "no onPasswordSubmit listener with a migration handler "
                                                  "(no JIT password migration configured)")]
    return [_migration_check(name, prop, attributes) for name, prop in listeners]


def _migration_check(listener: str, prop: str, attributes: dict[str, str] | None) -> Check:
    data: dict[str, Any] = {"listener": listener, "migration_property_id": prop, "attribute": short_name(prop)}
    said = f"the onPasswordSubmit listener '{listener}' reads {short_name(prop)} ({prop})"
    if attributes is None:
        return warn(SECTION, "password migration", f"{said}; its type cannot be checked", **data)
    kinds = {n.lower(): t for n, t in attributes.items()}
    kind = kinds.get(prop.lower())
    if kind is None:
        return warn(SECTION, "password migration", f"{said}, which the extensions app does not define",
                    "define that custom attribute (Boolean) on the extensions app, or point the listener's "
                    "migrationPropertyId at the one your migration sets", **data)
    if kind != "Boolean":
        return warn(SECTION, "password migration", f"{said}, a {kind}, not a Boolean",
                    "the migration handler reads it as true/false: define a Boolean attribute for it", type=kind,
                    **data)
    return ok(SECTION, "password migration", f"{said}, a Boolean: set it to true on migrated customers",
              type=kind, **data)


__all__ = ["ExtensionsApp", "attributes_check", "attributes_of", "find_extensions_app", "migration_checks",
           "short_name"]
