"""The `/users` resource: create, read, update and delete one customer, and count them.
Listing is `listing.py`, `users/delta` is `delta.py`; the rules for what may be written
are the directory's (`directory.py`)."""

from __future__ import annotations

from . import errors, odata
from .call import Call
from .directory import project
from .listing import list_users
from .messages import GraphResponse
from .permissions import CREATE, DELETE_RESTORE, PASSWORD_RESET_ROLES, READ, changes_password, update_needs


def create_user(call: Call) -> GraphResponse:
    call.require(CREATE)
    request, tenant = call.request, call.tenant
    doc = call.directory.create(tenant, request.body)
    body = {"@odata.context": f"{request.base_url}/$metadata#users/$entity", **project(doc, None)}
    # External ID answers with the default set only; B2C also echoes identities (GRAPH.md §1.1).
    if doc.get("identities") is not None and tenant.kind == "b2c":
        body["identities"] = doc["identities"]
        if doc.get("passwordPolicies"):
            body["passwordPolicies"] = doc["passwordPolicies"]
    return GraphResponse(201, body, {"Location": created_location(request.base_url, tenant.id, doc["id"])})


def created_location(base_url: str, tenant_id: str, user_id: str) -> str:
    """Graph's `Location` for a new user names the directory's own v2 address, not the v1.0 URL:
    `https://graph.microsoft.com/v2/<tenant id>/directoryObjects/<id>/Microsoft.DirectoryServices.User`
    (response headers pasted from Graph Explorer in microsoft-graph-docs#7589)."""
    origin = base_url.rsplit("/", 1)[0]  # base_url is `<origin>/v1.0` (or `/beta`)
    return f"{origin}/v2/{tenant_id}/directoryObjects/{user_id}/Microsoft.DirectoryServices.User"


def get_user(call: Call, key: str) -> GraphResponse:
    call.require(READ)
    select = odata.parse_select(call.request.query.get("$select"))
    expand = odata.parse_expand(call.request.query.get("$expand"))
    row = call.directory.get_live(call.tenant, key)
    return GraphResponse(200, {"@odata.context": call.context("users", select) + "/$entity", **project(row.data, select),
                               **expand})


def update_user(call: Call, key: str) -> GraphResponse:
    for roles in update_needs(call.request.body):
        call.require(roles)
    if call.directory.password_reset_needs_role and changes_password(call.request.body) and not call.principal.delegated:
        # Without the role Graph answers 403 Authorization_RequestDenied "Insufficient privileges to
        # complete the operation." (GRAPH.md §3.2, §4.1).
        if call.store.directory_roles(call.principal.app_id).isdisjoint(PASSWORD_RESET_ROLES):
            raise errors.forbidden()
    call.directory.update(call.tenant, key, call.request.body)
    return GraphResponse(204)


def delete_user(call: Call, key: str) -> GraphResponse:
    call.require(DELETE_RESTORE)
    call.directory.delete(call.tenant, key)
    return GraphResponse(204)


def list_live_users(call: Call) -> GraphResponse:
    call.require(READ)
    return list_users(call, state="live", context="users")


def count_users(call: Call) -> GraphResponse:
    """`GET /users/$count`, an advanced query: External ID only, with `ConsistencyLevel: eventual`."""
    call.require(READ)
    request, tenant = call.request, call.tenant
    if call.method != "GET":
        raise errors.method_not_allowed()
    if tenant.kind == "b2c" or not request.eventual:
        raise errors.bad_request("$count is not currently supported.")
    query = odata.compile_filter(request.query.get("$filter", ""))
    odata.check_advanced(query, advanced=True)
    return GraphResponse(200, str(call.store.count_users(tenant.id, "live", query.where, query.params,
                                                            as_of=call.directory.as_of())))
