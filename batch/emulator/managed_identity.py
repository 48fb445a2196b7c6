"""The managed identity endpoint as Azure App Service, Functions and Container Apps expose it
("Managed identities for App Service and Azure Functions", REST endpoint reference; the same
table in Container Apps' "Managed identities"): `GET {IDENTITY_ENDPOINT}?resource=...&api-version=2019-08-01`
with the header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`, optionally `client_id`, `principal_id`
(alias `object_id`) or `mi_res_id` to pick a user-assigned identity, answering
`{access_token, expires_on, resource, token_type, client_id}` with `expires_on` in epoch
seconds as a string.

Errors are the local token service's JSON, `{"statusCode": ..., "message": ...}` (what msal's
App Service client reads). The pages do not document the status of a missing or wrong
header; the emulator answers 401 and 403, and "Unable to load the proper Managed Identity."
with 400 for an identity it does not have, the message App Service sends.

The emulator's identities are each tenant's `Store.managed_identity`; without an id
parameter (the "system-assigned" identity) it is the first tenant's.
"""

from __future__ import annotations

import hmac
import uuid
from typing import TYPE_CHECKING, Any

from .records import App

if TYPE_CHECKING:
    from .tokens import TokenAuthority

API_VERSIONS = ("2019-08-01",)
GRAPH_RESOURCES = ("https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000")


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}


def principal_id(app: App) -> str:
    """The object id of the identity's service principal (the `oid` of its tokens)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + app.client_id))


def token(authority: TokenAuthority, query: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    store = authority.store
    sent = headers.get("x-identity-header")
    if not sent:
        return _error(401, "The request is missing the X-IDENTITY-HEADER header.")
    if not hmac.compare_digest(sent.encode(), store.identity_header().encode()):
        return _error(403, "The X-IDENTITY-HEADER header does not match IDENTITY_HEADER.")
    if query.get("api-version") not in API_VERSIONS:
        return _error(400, f"The api-version '{query.get('api-version')}' is not supported; use 2019-08-01.")
    resource = query.get("resource", "")
    if not resource:
        return _error(400, "The 'resource' parameter is required.")
    if resource.removesuffix("/.default") not in GRAPH_RESOURCES:
        return _error(400, f"AADSTS500011: The resource principal named {resource} was not found in the tenant. "
                           "This emulator issues tokens for Microsoft Graph only.")
    chosen = [(name, query[name]) for name in ("client_id", "principal_id", "object_id", "mi_res_id") if query.get(name)]
    if len(chosen) > 1:
        return _error(400, "Only one of client_id, principal_id, object_id and mi_res_id may be given.")
    identities = [store.managed_identity(t.id) for t in store.tenants()]
    identity = identities[0] if not chosen else _find(identities, *chosen[0])
    if identity is None:
        return _error(400, "Unable to load the proper Managed Identity.")
    tenant = store.tenant(identity.tenant_id)
    assert tenant is not None
    issued = authority.issue(tenant, identity)
    return 200, {
        "access_token": issued["access_token"],
        "expires_on": str(int(authority.clock()) + int(issued["expires_in"])),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }


def _find(identities: list[App], kind: str, value: str) -> App | None:
    value = value.strip().lower()
    for app in identities:
        if kind == "client_id" and app.client_id == value:
            return app
        if kind in ("principal_id", "object_id") and principal_id(app) == value:
            return app
        if kind == "mi_res_id" and value.rstrip("/").rsplit("/", 1)[-1] in (app.client_id, app.display_name.lower()):
            return app
    return None
