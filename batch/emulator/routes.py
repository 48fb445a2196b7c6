"""Graph's URL space on one page: which handler serves a path (after the version) and a
method. Segments match case-insensitively and under each of the spellings OData clients
send (`delta`, `delta()`, `microsoft.graph.delta()`…). What is not a resource is Graph's
400 naming the first segment it could not resolve; a known resource refuses other methods
with 405.

Routing is written out rather than declared through Starlette's router: Graph's segments
are case-insensitive and come in several OData spellings, a refusal names the segment that
failed, some resources check a permission (or purge expired deleted users) before they
refuse a method, and `$batch` runs its requests through these same routes synchronously,
inside one throttle and fault sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import errors
from .call import Call
from .deleted import get_deleted, list_deleted, purge, restore
from .delta import delta
from .me import me, member_of
from .messages import GraphResponse
from .organization import extension_properties, organization
from .users import (
    count_users,
    create_user,
    delete_user,
    get_user,
    list_live_users,
    update_user,
)

DELTA = ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()")
# `graph.user` is the namespace alias the Graph SDKs send (msgraph-sdk: deletedItems/graph.user).
USER_CAST = ("microsoft.graph.user", "graph.user")
RESTORE = ("restore", "microsoft.graph.restore")
APPLICATION_BY_APP_ID = "applications(appid="

Handler = Callable[..., GraphResponse]


def route(call: Call) -> GraphResponse:
    """Serve one call, or raise the `GraphError` Graph answers with."""
    request = call.request
    if request.body_error:
        raise errors.body_not_json(request.body_error)
    segments = request.segments
    if not segments:
        raise errors.no_resource("")
    head = segments[0].lower()
    second = segments[1].lower() if len(segments) > 1 else None
    if head == "users":
        return _users(call, segments[1:])
    if head == "directory" and second == "deleteditems":
        return _deleted_items(call, segments[2:])
    if head.startswith(APPLICATION_BY_APP_ID) and len(segments) == 2 and second == "extensionproperties":
        app_id = segments[0][len(APPLICATION_BY_APP_ID):-1].strip("'\"")
        return _by_method(call, {"GET": extension_properties}, app_id)
    if head == "me" and len(segments) == 1:
        return me(call)
    if head == "me" and len(segments) == 2 and second == "memberof":
        return member_of(call)
    if head == "organization" and len(segments) == 1 and call.method == "GET":
        return organization(call)
    raise errors.no_resource(segments[0])


def _users(call: Call, rest: list[str]) -> GraphResponse:
    if not rest:
        return _by_method(call, {"GET": list_live_users, "POST": create_user})
    if len(rest) > 1:
        raise errors.no_resource(rest[1])
    second = rest[0].lower()
    if second == "$count":
        return count_users(call)
    if second in DELTA:
        return _by_method(call, {"GET": delta})
    return _by_method(call, {"GET": get_user, "PATCH": update_user, "DELETE": delete_user}, _strip_key(rest[0]))


def _deleted_items(call: Call, rest: list[str]) -> GraphResponse:
    if not rest:
        # The OData cast segment is mandatory (GRAPH.md §6).
        # microsoft-graph-docs#10080: Graph's answer to a query on deletedItems itself.
        raise errors.unsupported_query("Searches against this resource are not supported. Only specific instances "
                                       "can be queried.")
    call.directory.purge_expired(call.tenant)
    if rest[0].lower() in USER_CAST:
        if len(rest) == 1:
            return _by_method(call, {"GET": list_deleted})
        raise errors.no_resource(rest[1])
    object_id = rest[0]
    if len(rest) == 1:
        return _by_method(call, {"GET": get_deleted, "DELETE": purge}, object_id)
    if len(rest) == 2 and rest[1].lower() in RESTORE:
        return _by_method(call, {"POST": restore}, object_id)
    raise errors.no_resource(rest[1])


def _by_method(call: Call, handlers: Mapping[str, Handler], *args: str) -> GraphResponse:
    handler = handlers.get(call.method)
    if handler is None:
        raise errors.method_not_allowed()
    return handler(call, *args)


def _strip_key(key: str) -> str:
    # Clients sometimes quote keys: users('a@b.com') style is not used, but '…' around a UPN is.
    return key[1:-1] if len(key) > 1 and key[0] == key[-1] == "'" else key
