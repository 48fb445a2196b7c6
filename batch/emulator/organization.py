"""The tenant itself: `GET /organization`, and the custom attributes its extensions app
declares, `GET /applications(appId='…')/extensionProperties`."""

from __future__ import annotations

import uuid

from .call import Call
from .errors import GraphError
from .messages import GraphResponse
from .permissions import APPLICATIONS, ORGANIZATION

EXTENSIONS_APP_NAME = "b2c-extensions-app. Do not modify. Used by AADB2C for storing user data."


def organization(call: Call) -> GraphResponse:
    call.require(ORGANIZATION)
    tenant = call.tenant
    return GraphResponse(200, {
        "@odata.context": call.context("organization"),
        "value": [{
            "id": tenant.id, "displayName": tenant.display_name,
            "tenantType": "AAD B2C" if tenant.kind == "b2c" else "CIAM",
            "verifiedDomains": [{"name": tenant.default_domain, "isDefault": True, "isInitial": True,
                                 "type": "Managed", "capabilities": "None"}],
        }],
    })


def extension_properties(call: Call, app_id: str) -> GraphResponse:
    """The custom attributes of the tenant's extensions app (`b2c-extensions-app`). The
    emulator declares an attribute when a user is first given it (docs/emulator.md)."""
    call.require(APPLICATIONS)
    tenant = call.tenant
    if app_id.lower() != tenant.extensions_app_id.lower():
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{app_id}' does not exist or one of its "
                         "queried reference-property objects are not present.")
    values = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{name}")), "deletedDateTime": None,
               "appDisplayName": EXTENSIONS_APP_NAME,
               "dataType": "String", "isMultiValued": False, "isSyncedFromOnPremises": False, "name": name,
               "targetObjects": ["User"]} for name in call.store.extension_properties(tenant.id)]
    select = [s.strip() for s in (call.request.query.get("$select") or "").split(",") if s.strip()]
    if select:
        values = [{k: v for k, v in item.items() if k in select or k == "id"} for item in values]
    return GraphResponse(200, {"@odata.context": call.context(f"applications('{app_id}')/extensionProperties"),
                               "value": values})
