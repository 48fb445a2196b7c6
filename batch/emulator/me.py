"""The signed-in administrator: `GET /me` and `GET /me/memberOf` (their directory roles).

Both need a delegated token: with an app token Graph answers 400 BadRequest "/me request is
only valid with delegated authentication flow." (user-get.md: "/me ... delegated"; the
message is Graph's, microsoft-graph-docs issues). `/me/memberOf` lists directoryRole objects
(`@odata.type` #microsoft.graph.directoryRole, `id`, `displayName`, `roleTemplateId`), as
user-list-memberof.md shows; the emulator's administrators belong to no groups.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import errors, odata
from .call import Call
from .errors import GraphError
from .idstore import ROLE_TEMPLATES
from .messages import GraphResponse
from .permissions import ME, MEMBER_OF
from .records import Admin


def _signed_in(call: Call, permissions: frozenset[str]) -> Admin:
    if not call.principal.delegated:
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    call.require(permissions)
    admin = call.store.admin(call.principal.user_id or "")
    if admin is None or admin.tenant_id != call.tenant.id:
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{call.principal.user_id}' does not exist or one "
                         "of its queried reference-property objects are not present.")
    return admin


def me(call: Call) -> GraphResponse:
    if call.method != "GET":
        raise errors.method_not_allowed()
    admin = _signed_in(call, ME)
    select = odata.parse_select(call.request.query.get("$select"))
    body: dict[str, Any] = {
        "businessPhones": [], "displayName": admin.display_name, "givenName": None, "jobTitle": None,
        "mail": admin.upn, "mobilePhone": None, "officeLocation": None, "preferredLanguage": None, "surname": None,
        "userPrincipalName": admin.upn, "id": admin.id,
    }
    if select:
        wanted = {s.lower() for s in select}
        body = {k: v for k, v in body.items() if k.lower() in wanted or k == "id"}
    return GraphResponse(200, {"@odata.context": call.context("users", select) + "/$entity", **body})


def member_of(call: Call) -> GraphResponse:
    if call.method != "GET":
        raise errors.method_not_allowed()
    admin = _signed_in(call, MEMBER_OF)
    values = [{
        "@odata.type": "#microsoft.graph.directoryRole",
        # A role's object id in a tenant is its own (activated from the template); stable per tenant here.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"role:{call.tenant.id}:{ROLE_TEMPLATES[name]}")),
        "deletedDateTime": None,
        "description": None,
        "displayName": name,
        "roleTemplateId": ROLE_TEMPLATES[name],
    } for name in admin.roles if name in ROLE_TEMPLATES]
    return GraphResponse(200, {"@odata.context": call.context("directoryObjects"), "value": values})
