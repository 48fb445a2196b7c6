"""The tenant's custom attributes, read from Graph once per run (and by `export`), and the
columns of a file that name them.

Reading: the extensions app is found by itself, `GET /applications?$filter=startswith(
displayName,'b2c-extensions-app')&$select=id,appId,displayName` (an External ID or B2C tenant
makes it; entra-docs external-id/customers/concept-user-attributes.md), picked among the
answers by a configured app id or by its exact name (`choose_extensions_app`); then `GET /applications/{id}/extensionProperties` gives each attribute's
`name` and `dataType` (application-list-extensionproperty.md; attributes targeting users
only). Both need Application.Read.All (application-list.md, least privileged application
permission).

What cannot be read is a `CatalogReading` without a catalog and with the reason: the caller
decides whether the run needs it (a file with custom attribute columns does) and raises.

Columns: batch/io/columns.match_headers knows only `ext.<name>` and `extension_<hex>_<name>`
as custom attributes; a header holding an attribute's bare name is unknown to it (it is read
before the catalog exists). `claim_attribute_columns` gives the verb those columns once the
catalog is known, by mapping each such header to `ext.<its text>` in the source's
`HeaderMatch`: the rows then carry the cell under that name, and everything downstream
(Extensions, plan.csv's labels, permissions) treats it as an `ext.` column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from batch import rules
from batch.errors import ConfigError, PermissionMissing
from batch.graph import GraphCall, GraphClient, GraphResult
from batch.io.columns import HeaderMatch, normalise_header
from batch.io.quoting import shown
from batch.userschema import USER_PROPERTIES
from batch.verbs.attributes import AttributeCatalog

EXTENSIONS_APP_PREFIX = "b2c-extensions-app"
# The name the tenant gives it (concept-user-attributes.md; batch/emulator/applications.py).
EXTENSIONS_APP_NAME = "b2c-extensions-app. Do not modify. Used by AADB2C for storing user data."
FIND_APP = (f"/applications?$filter=startswith(displayName,'{EXTENSIONS_APP_PREFIX}')"
            "&$select=id,appId,displayName")
PERMISSION = "Application.Read.All"
# Headers of an export's object id (`id`) or an admin center's (`objectId`): --legacy-id-attribute keeps them.
LEGACY_ID_HEADERS = frozenset({"id", "objectid"})
# Headers that are never a custom attribute named bare: Graph's own user properties (an
# export's createdDateTime, creationType, …) and the columns export computes. A run that cannot
# read the attributes lists them as ignored, as before, instead of stopping for them.
NOT_ATTRIBUTES = frozenset(normalise_header(name) for name in (
    *USER_PROPERTIES, "restorableUntil", "change", "removal", "signIn.emailAddress", "signIn.userName",
    "signIn.federated")) | LEGACY_ID_HEADERS


@dataclass(frozen=True)
class CatalogReading:
    """What reading the catalog gave: the catalog, or why there is none."""

    catalog: AttributeCatalog | None
    why: str | None = None          # for a note or an error: what is wrong, and the remedy
    permission: bool = False        # the reason is a missing Application.Read.All
    wrong_app: bool = False         # the configured app id is not this tenant's extensions app
    absent: bool = False            # the tenant has no extensions app: it has no custom attributes

    def required(self, client_id: str | None = None, columns: Sequence[str] = ()) -> AttributeCatalog:
        """The catalog, or the run-level error saying why there is none: `PermissionMissing`
        (exit 3, as for any permission a run lacks: grant it, then run again) or
        `ConfigError` (exit 2: the tenant or the settings must be fixed; nothing was sent).
        `columns`: the file's unknown columns, which may name custom attributes by their bare
        name, named in the error with what to do."""
        if self.catalog is not None:
            return self.catalog
        said = ""
        if columns:
            named = ", ".join(columns)
            example = f"ext.{columns[0]}"
            said = (f" The file's columns {named} may be custom attributes, which cannot be told without the "
                    f"tenant's list: grant {PERMISSION}, or write the column as {example}, or remove the column.")
        if self.permission:
            error = PermissionMissing([PERMISSION], client_id=client_id)
            if said:
                error.args = (f"{error}{said}",)
            raise error
        raise ConfigError(f"{self.why}; nothing was sent.{said}" if said else f"{self.why}; nothing was sent")


@dataclass(frozen=True)
class AppChoice:
    """The extensions app picked out of `FIND_APP`'s answer, or why none was (`why`, with
    `absent`: the tenant has none, `wrong_app`: the configured id is none of them)."""

    app_id: str = ""
    object_id: str = ""
    why: str | None = None
    absent: bool = False
    wrong_app: bool = False


def choose_extensions_app(body: Any, configured: str | None) -> AppChoice:
    """The tenant's extensions app among the applications whose name starts with
    `EXTENSIONS_APP_PREFIX` (any app registration may be named so): the one with the configured
    app id, else the one with the exact name the tenant gives it (`EXTENSIONS_APP_NAME`), else
    the only candidate; several candidates and none of them named exactly is refused rather
    than guessed, since the wrong app's attributes would be written or read. `doctor` finds it
    with this too (batch/doctor/extensions.py)."""
    listed = (body.get("value") if isinstance(body, dict) else None) or []
    apps = [a for a in listed if isinstance(a, dict) and str(a.get("displayName", "")).startswith(EXTENSIONS_APP_PREFIX)]
    if not apps:
        return AppChoice(why=f"this tenant has no {EXTENSIONS_APP_PREFIX}, which holds its custom attributes: "
                             "ext.<name> and extension_… columns cannot be written (a deleted one can be restored "
                             "within 30 days: admin center, App registrations > Deleted applications)", absent=True)
    if configured:
        wanted = _bare(configured)
        chosen = [a for a in apps if _bare(str(a.get("appId") or "")) == wanted]
        if not chosen:
            ids = ", ".join(str(a.get("appId")) for a in apps)
            return AppChoice(why=f"the configured extensions app id {configured} is not this tenant's "
                                 f"{EXTENSIONS_APP_PREFIX} (app id {ids}): set --extensions-app-id "
                                 "(ENTRA_BATCH_EXTENSIONS_APP_ID, a profile's extensions_app_id) to "
                                 f"{'it' if len(apps) == 1 else 'the right one'}, or leave it out and let entra-batch "
                                 "find it", wrong_app=True)
    else:
        exact = [a for a in apps if str(a.get("displayName")) == EXTENSIONS_APP_NAME]
        chosen = exact or apps
        if len(chosen) > 1:
            ids = ", ".join(str(a.get("appId")) for a in chosen)
            return AppChoice(why=f"several applications are named like the {EXTENSIONS_APP_PREFIX} (app ids {ids}): "
                                 "set --extensions-app-id (ENTRA_BATCH_EXTENSIONS_APP_ID, a profile's "
                                 "extensions_app_id) to the tenant's (admin center: App registrations > All "
                                 f"applications, '{EXTENSIONS_APP_NAME}')")
    return AppChoice(str(chosen[0].get("appId") or ""), str(chosen[0].get("id") or ""))


def _bare(app_id: str) -> str:
    return app_id.replace("-", "").lower()


async def read_catalog(client: GraphClient, configured: str | None) -> CatalogReading:
    """The tenant's custom attributes with their types (see the module docstring)."""
    found = await client.request(GraphCall("GET", FIND_APP))
    if not found.ok:
        return _unreadable(found, f"the extensions app ({EXTENSIONS_APP_PREFIX})")
    app = choose_extensions_app(found.body, configured)
    if app.why is not None:
        return CatalogReading(None, app.why, wrong_app=app.wrong_app, absent=app.absent)
    listed = await client.request(GraphCall(
        "GET", f"/applications/{app.object_id}/extensionProperties?$select=name,dataType,targetObjects"))
    if not listed.ok or not isinstance(listed.body, dict):
        return _unreadable(listed, f"the custom attributes of {EXTENSIONS_APP_PREFIX} {app.app_id}")
    declared = [(str(p["name"]), str(p.get("dataType") or "String")) for p in listed.body.get("value") or []
                if isinstance(p, dict) and p.get("name") and "User" in (p.get("targetObjects") or ["User"])]
    return CatalogReading(AttributeCatalog.of(app.app_id, declared))


def _unreadable(result: GraphResult, what: str) -> CatalogReading:
    if result.status in (401, 403):
        return CatalogReading(None, f"{what} cannot be read: the token lacks {PERMISSION}", permission=True)
    answer = f"HTTP {result.status}" if result.status else "no answer"
    detail = f" {result.error_code}" if result.error_code else ""
    return CatalogReading(None, f"{what} cannot be read ({answer}{detail})")


# --- the file's columns --------------------------------------------------------------------------

def uses_attributes(match: HeaderMatch) -> bool:
    """Whether the file has custom attribute columns (as match_headers recognises them)."""
    return any(name.lower().startswith(("ext.", "extension_")) for name in match.by_index.values())


def claim_attribute_columns(headers: list[str], match: HeaderMatch, catalog: AttributeCatalog,
                            legacy_id: str | None = None) -> HeaderMatch:
    """`match` with the unknown headers that are custom attributes given to the verb as
    `ext.<header>`: a header equal to an attribute's name (case-insensitively) where that is
    unambiguous (no other column already gives that attribute, no second header has the same
    name), and with `legacy_id` (an attribute's name) the object id column of an export (`id`,
    `objectId`). A header that a known column took stays that column's, but for a column of
    the `legacy_id` attribute itself when the file has an id column: --legacy-id-attribute asks
    for the object id there, and an export of a tenant that has the same attribute (mostly
    blank, or holding an older system's id) must not silently win over it; that column is
    left out (and so listed with the ignored columns)."""
    if legacy_id is not None:
        match = _release_legacy_column(headers, match, catalog, legacy_id)
    taken = {_attribute_of(name, catalog) for name in match.by_index.values()} - {None}
    wanted_by: dict[str, list[tuple[int, str]]] = {}
    unknown_texts = set(match.unknown)
    for index, header in enumerate(headers):
        text = header.strip()
        if index in match.by_index or not text or shown(header) not in unknown_texts:
            continue
        wanted = legacy_id if legacy_id is not None and normalise_header(text) in LEGACY_ID_HEADERS else text
        found = catalog.find(wanted)
        if found is not None and found.name.lower() not in taken:
            wanted_by.setdefault(found.name.lower(), []).append((index, wanted))
    claimed = {key: places[0] for key, places in wanted_by.items() if len(places) == 1}
    if not claimed:
        return match
    by_index = {**match.by_index, **{index: f"ext.{wanted}" for index, wanted in claimed.values()}}
    kept = {shown(headers[index]) for index, _ in claimed.values()}
    return replace(match, by_index=dict(sorted(by_index.items())),
                   unknown=[u for u in match.unknown if u not in kept])


def _release_legacy_column(headers: list[str], match: HeaderMatch, catalog: AttributeCatalog,
                           legacy_id: str) -> HeaderMatch:
    """`match` without the columns that give the `legacy_id` attribute, when an id column will."""
    attribute = catalog.find(legacy_id)
    has_id = any(i not in match.by_index and normalise_header(h.strip()) in LEGACY_ID_HEADERS
                 for i, h in enumerate(headers))
    if attribute is None or not has_id:
        return match
    released = [i for i, name in match.by_index.items() if _attribute_of(name, catalog) == attribute.name.lower()]
    if not released:
        return match
    return replace(match, by_index={i: n for i, n in match.by_index.items() if i not in released},
                   unknown=[*match.unknown, *(shown(headers[i]) for i in released)])


def _attribute_of(column: str, catalog: AttributeCatalog) -> str | None:
    lowered = column.lower()
    if lowered.startswith("ext."):
        found = catalog.find(column[4:])
    elif lowered.startswith("extension_"):
        found = catalog.find(column.split("_", 2)[2]) if column.count("_") >= 2 else None
    else:
        return None
    return found.name.lower() if found is not None else None


def foreign_note(columns: Iterable[str], catalog: AttributeCatalog) -> str | None:
    """The run's note when columns of another tenant's extensions app (an export of that
    tenant, issue 14 item 5) are mapped by name to this tenant's attributes."""
    mapped: dict[str, list[str]] = {}
    for column in columns:
        parsed = rules.parse_extension_name(column)
        if parsed is not None and parsed[0] != catalog.hex and catalog.find(parsed[1]) is not None:
            mapped.setdefault(parsed[0], []).append(parsed[1])
    if not mapped:
        return None
    return "; ".join(f"custom attributes of app {hex_id} mapped by name to this tenant's: "
                     f"{', '.join(sorted(names, key=str.lower))}" for hex_id, names in sorted(mapped.items()))


def catalog_meta(catalog: AttributeCatalog | None, why: str | None) -> dict[str, Any]:
    """The journal's record of the catalog the run validated with (None: there was none)."""
    return {"attributes": catalog.as_meta() if catalog is not None else None, "attributes_why": why}


__all__ = ["EXTENSIONS_APP_NAME", "EXTENSIONS_APP_PREFIX", "FIND_APP", "LEGACY_ID_HEADERS", "PERMISSION", "AppChoice",
           "CatalogReading", "choose_extensions_app",
           "catalog_meta", "claim_attribute_columns", "foreign_note", "read_catalog", "uses_attributes"]
