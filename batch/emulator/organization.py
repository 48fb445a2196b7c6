"""The tenant itself: `GET /organization`, `GET /domains`, and its authentication event
listeners, `GET /identity/authenticationEventListeners`. The applications (the extensions
app and its custom attributes) are `applications.py`.

Shapes follow microsoftgraph/microsoft-graph-docs-contrib (api-reference/v1.0): the
organization resource's `tenantType` ("AAD" for a workforce tenant, "AAD B2C", "CIAM" for an
external tenant; resources/organization.md), domain-list.md's domain objects, and
identitycontainer-list-authenticationeventlisteners.md with the onPasswordSubmitListener and
onPasswordMigrationCustomExtensionHandler resources (resources/onpasswordsubmitlistener.md,
resources/onpasswordmigrationcustomextensionhandler.md, both v1.0 since 2026-03).
"""

from __future__ import annotations

from typing import Any

from .call import Call
from .messages import GraphResponse
from .permissions import DOMAINS, EVENT_LISTENERS, ORGANIZATION

# tenantType of resources/organization.md, by the emulator's tenant kinds.
TENANT_TYPES = {"external": "CIAM", "b2c": "AAD B2C", "workforce": "AAD"}


def _domains(call: Call) -> list[tuple[str, bool]]:
    """(name, is the default and initial one) for each verified domain of the tenant."""
    tenant = call.tenant
    return [(tenant.default_domain, True), *((name, False) for name in call.store.custom_domains(tenant.id))]


def organization(call: Call) -> GraphResponse:
    call.require(ORGANIZATION)
    tenant = call.tenant
    return GraphResponse(200, {
        "@odata.context": call.context("organization"),
        "value": [{
            "id": tenant.id, "displayName": tenant.display_name,
            "tenantType": TENANT_TYPES.get(tenant.kind, "CIAM"),
            "verifiedDomains": [{"name": name, "isDefault": initial, "isInitial": initial, "type": "Managed",
                                 "capabilities": "None" if initial else "Email, OfficeCommunicationsOnline"}
                                for name, initial in _domains(call)],
        }],
    })


def list_domains(call: Call) -> GraphResponse:
    """`GET /domains` (domain-list.md; Domain.Read.All least privileged). The initial
    `.onmicrosoft.com` domain is the default until a custom one is made default."""
    call.require(DOMAINS)
    values = [{"authenticationType": "Managed", "availabilityStatus": None, "id": name, "isAdminManaged": True,
               "isDefault": initial, "isInitial": initial, "isRoot": True, "isVerified": True,
               "passwordNotificationWindowInDays": None, "passwordValidityPeriodInDays": None,
               "supportedServices": [] if initial else ["Email"], "state": None}
              for name, initial in _domains(call)]
    return GraphResponse(200, {"@odata.context": call.context("domains"), "value": values})


def _listener(tenant_id: str, base_url: str, item: dict[str, Any]) -> dict[str, Any]:
    """An onPasswordSubmitListener with its JIT migration handler, as the v1.0 resources
    show them (the handler's customExtension expanded, as the list example does)."""
    listener_id = item["id"]
    return {
        "@odata.type": "#microsoft.graph.onPasswordSubmitListener",
        "id": listener_id,
        "displayName": item.get("displayName"),
        "authenticationEventsFlowId": None,
        "conditions": {"applications": {
            "includeApplications@odata.context": f"{base_url}/$metadata#identity/authenticationEventListeners"
                                                 f"('{listener_id}')/microsoft.graph.onPasswordSubmitListener/"
                                                 "conditions/applications/includeApplications",
            "includeApplications": [{"appId": app_id} for app_id in item.get("appIds") or []]}},
        "handler": {
            "@odata.type": "#microsoft.graph.onPasswordMigrationCustomExtensionHandler",
            "configuration": None,
            "migrationPropertyId": item["migrationPropertyId"],
            "customExtension": {"id": item.get("customExtensionId"), "displayName": "Legacy password check",
                                "description": None},
        },
    }


def list_event_listeners(call: Call) -> GraphResponse:
    """`GET /identity/authenticationEventListeners` (EventListener.Read.All least privileged)."""
    call.require(EVENT_LISTENERS)
    tenant = call.tenant
    values = [_listener(tenant.id, call.request.base_url, item) for item in call.store.event_listeners(tenant.id)]
    return GraphResponse(200, {"@odata.context": call.context("identity/authenticationEventListeners"),
                               "value": values})
