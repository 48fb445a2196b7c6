"""Graph's error envelope (GRAPH.md §3.1) and the exception the emulator raises inside a request.

`GraphError` never leaves the emulator: the request handler turns it into the JSON body Graph
sends, `{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`,
with `details` for conflicts and invalid values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class GraphError(Exception):
    status: int
    code: str
    message: str
    details: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    inner: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def error_body(err: GraphError, request_id: str, client_request_id: str | None, now: float) -> dict[str, Any]:
    inner: dict[str, Any] = dict(err.inner)
    inner["date"] = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    inner["request-id"] = request_id
    inner["client-request-id"] = client_request_id or request_id
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.details:
        body["details"] = err.details
    body["innerError"] = inner
    return {"error": body}


# Constructors for the errors Graph sends, so the wording lives in one place.

def bad_request(message: str, *, target: str | None = None, detail_code: str = "InvalidValue") -> GraphError:
    details = [{"target": target, "code": detail_code}] if target else []
    return GraphError(400, "Request_BadRequest", message, details)


def invalid_value(prop: str, *, with_message: bool = False) -> GraphError:
    """`with_message`: the detail repeats the message, as in the one such answer captured from
    Graph (creationType on POST, msgraph-sdk-javascript#1523)."""
    err = bad_request(f"Invalid value specified for property '{prop}' of resource 'User'.", target=prop)
    if with_message:
        err.details = [{"code": "InvalidValue", "message": err.message, "target": prop}]
    return err


def schema_mismatch(prop: str) -> GraphError:
    """A value of the wrong JSON shape, refused by Graph's OData reader (code `BadRequest`, not the
    directory's `Request_BadRequest`): "Property identities in payload has a value that does not
    match schema." (msgraph-sdk-php#708)."""
    return GraphError(400, "BadRequest", f"Property {prop} in payload has a value that does not match schema.")


def body_not_json(message: str) -> GraphError:
    """A body Graph cannot read: 400 `BadRequest` "Unable to read JSON request payload. Please ensure
    Content-Type header is set and payload is of valid JSON format." (microsoftgraph/
    nodejs-connect-rest-sample#53, php-connect-rest-sample#29: real responses pasted)."""
    return GraphError(400, "BadRequest", message)


def unknown_select(name: str) -> GraphError:
    """`$select` of a property the user type lacks: code `BadRequest` from the OData layer (GRAPH.md §15.3)."""
    return GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property named "
                                         f"'{name}' on type 'microsoft.graph.user'.")


def required_value(prop: str) -> GraphError:
    return bad_request(f"A value is required for property '{prop}' of resource 'User'.", target=prop)


def conflict(prop: str) -> GraphError:
    return bad_request(
        f"Another object with the same value for property {prop} already exists.",
        target=prop,
        detail_code="ObjectConflict",
    )


def not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def unsupported_filter(prop: str) -> GraphError:
    return unsupported_query(f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'.")


def advanced_query_required(operator: str) -> GraphError:
    return unsupported_query(
        f"Operator '{operator}' is not supported because the required parameters might be missing. "
        "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        "Refer to https://aka.ms/graph-aad-query-advanced for more information"
    )


def forbidden() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def unauthenticated(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'},
    )


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def no_resource(path: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.")


def too_many_requests() -> GraphError:
    return GraphError(429, "TooManyRequests", "Please retry again later.",
                      inner={"code": "429", "message": "Please retry after", "status": "429"})
