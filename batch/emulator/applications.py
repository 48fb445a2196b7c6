"""The tenant's application objects: `GET /applications` (application-list.md: `$filter` on
displayName with eq or startsWith, and on appId; `$select`), one application by object id or
by `applications(appId='…')` (application-get.md), and the custom attributes the extensions
app declares, `…/extensionProperties` (application-list-extensionproperty.md).

An External ID or B2C tenant holds `b2c-extensions-app. Do not modify. Used by AADB2C for
storing user data.`, the app whose extension properties are the custom user attributes
(entra-docs external-id/customers/concept-user-attributes.md); the emulator lists it unless a
test removed it (`Store.remove_extensions_app`), then the tenant's app registrations.
Application object ids are derived from the app ids, so they stay the same across restarts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from . import errors
from .call import Call
from .errors import GraphError
from .messages import GraphResponse
from .permissions import APPLICATIONS

EXTENSIONS_APP_NAME = "b2c-extensions-app. Do not modify. Used by AADB2C for storing user data."

_STRING = r"'((?:[^']|'')*)'"
_FILTERS: tuple[tuple[re.Pattern[str], Callable[[dict[str, Any], str], bool]], ...] = (
    (re.compile(rf"^\s*displayName\s+eq\s+{_STRING}\s*$", re.I), lambda app, v: app["displayName"] == v),
    (re.compile(rf"^\s*startswith\(\s*displayName\s*,\s*{_STRING}\s*\)\s*$", re.I),
     lambda app, v: app["displayName"].lower().startswith(v.lower())),
    (re.compile(rf"^\s*appId\s+eq\s+{_STRING}\s*$", re.I), lambda app, v: app["appId"].lower() == v.lower()),
)


def object_id(app_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"application:{app_id.lower()}"))


def _application(app_id: str, name: str, domain: str) -> dict[str, Any]:
    return {"id": object_id(app_id), "deletedDateTime": None, "appId": app_id, "displayName": name,
            "publisherDomain": domain, "signInAudience": "AzureADMyOrg", "identifierUris": [], "tags": []}


def _applications(call: Call) -> list[dict[str, Any]]:
    tenant = call.tenant
    apps = []
    if call.store.has_extensions_app(tenant.id):
        apps.append(_application(tenant.extensions_app_id, EXTENSIONS_APP_NAME, tenant.default_domain))
    apps += [_application(client_id, name, tenant.default_domain)
             for client_id, name in call.store.tenant_apps(tenant.id)]
    return apps


def _selected(call: Call, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    select = [s.strip() for s in (call.request.query.get("$select") or "").split(",") if s.strip()]
    if not select:
        return values
    known = {k.lower(): k for item in values[:1] for k in item}
    for name in select:
        if values and name.lower() not in known:
            raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property "
                                                f"named '{name}' on type 'microsoft.graph.application'.")
    wanted = {name.lower() for name in select} | {"id"}
    return [{k: v for k, v in item.items() if k.lower() in wanted} for item in values]


def list_applications(call: Call) -> GraphResponse:
    call.require(APPLICATIONS)
    values = _applications(call)
    text = call.request.query.get("$filter")
    if text:
        for pattern, keep in _FILTERS:
            found = pattern.match(text)
            if found:
                value = found.group(1).replace("''", "'")
                values = [app for app in values if keep(app, value)]
                break
        else:
            raise errors.unsupported_query("Unsupported or invalid query filter clause specified for the emulator's "
                                           "applications: it takes displayName eq, startswith(displayName,…) and "
                                           "appId eq")
    return GraphResponse(200, {"@odata.context": call.context("applications"), "value": _selected(call, values)})


def _find(call: Call, key: str, *, by_app_id: bool) -> dict[str, Any]:
    for app in _applications(call):
        if (app["appId"] if by_app_id else app["id"]).lower() == key.lower():
            return app
    raise errors.not_found(key)


def get_application(call: Call, key: str, by_app_id: bool = False) -> GraphResponse:
    call.require(APPLICATIONS)
    app = _find(call, key, by_app_id=by_app_id)
    return GraphResponse(200, {"@odata.context": call.context("applications/$entity"), **_selected(call, [app])[0]})


def extension_properties(call: Call, key: str, by_app_id: bool = False) -> GraphResponse:
    """The custom attributes of an application: the extensions app declares the tenant's
    (declared by `Store.add_extension_property` with a type, or by first use as a String,
    docs/emulator.md); other apps declare none."""
    call.require(APPLICATIONS)
    app = _find(call, key, by_app_id=by_app_id)
    tenant = call.tenant
    names = call.store.extension_properties(tenant.id) if app["appId"] == tenant.extensions_app_id else []
    values = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{name}")), "deletedDateTime": None,
               "appDisplayName": app["displayName"], "dataType": call.store.extension_type(tenant.id, name),
               "isMultiValued": False, "isSyncedFromOnPremises": False, "name": name,
               "targetObjects": ["User"]} for name in names]
    return GraphResponse(200, {"@odata.context": call.context(f"applications('{app['id']}')/extensionProperties"),
                               "value": _selected(call, values) if values else values})
