"""JSON batching, `POST /$batch` (GRAPH.md §8, §15.4): up to 20 requests, each run as if sent
alone (its own permission check, throttling and faults), answered in one 200 envelope.

What Graph refuses, as Graph says it:
- an absolute item URL: the whole batch, 400 "Invalid batch payload format."
  (microsoft-graph-docs-contrib#8576);
- an item URL that starts with the version (`/v1.0/users`): that item, 400 "Resource not found
  for the segment 'v1.0'." (msgraph-sdk-javascript#1178, msgraph-sdk-python#1015; an inner
  answer, as for any segment Graph does not know: msgraph-sdk-dotnet#1119);
- a `dependsOn` naming a request that is not *earlier* in the list: the whole batch, 400
  "Invalid dependency for request Id …" (msgraph-sdk-dotnet-core#891, msgraph-sdk-java-core#71);
- a batch that is neither fully sequential nor fully parallel (some items depend on others
  and more than one depends on nothing): the whole batch, 400 "Batch should be either fully
  sequential or fully parallel." (microsoft-graph-docs-contrib#2339: the doc's example 1, 2→1,
  3, 4→2 was refused; its fix, the chain 1, 2→1, 4→2, 3→4, is accepted).

Keys Graph does not know are ignored, the Python SDK's `depends_on` among them
(msgraph-sdk-python-core PR #996: with `depends_on` "the reminder will not change").
A parallel batch runs in a seeded shuffled order; a sequential one in its (dependency) order,
a request whose dependency failed getting 424 without being run. The answers come back in a
seeded shuffled order either way ("might appear in a different order than the requests",
json-batching)."""

from __future__ import annotations

import uuid
from typing import Any

from . import errors
from .errors import GraphError, error_body
from .faults import INNER_KINDS
from .messages import GraphRequest, GraphResponse, parse_query, split_path
from .service import GraphService
from .tokens import Principal

MAX_BATCH = 20
HOP_HEADERS = {"request-id", "client-request-id"}
GRAPH_VERSIONS = ("v1.0", "beta")


def _invalid(message: str = "Invalid batch payload format.") -> GraphError:
    return GraphError(400, "BadRequest", message)


def _split_url(url: str) -> tuple[list[str], str]:
    path, _, query = url.partition("?")
    return split_path(path), query


def answer_batch(service: GraphService, request: GraphRequest, principal: Principal) -> tuple[GraphResponse, list[str]]:
    """`POST /$batch` answered: the envelope of its responses (or the refusal of the whole
    batch), and the kinds of the requests it ran, from which the HTTP layer draws the
    batch's service time."""
    if request.method != "POST":
        return service.error(errors.method_not_allowed(), request), ["read"]
    if request.body_error:
        return service.error(GraphError(400, "BadRequest", request.body_error), request), ["read"]
    try:
        response, kinds = run_batch(service, request, principal)
    except GraphError as err:
        return service.error(err, request), ["read"]
    return service.finish(response, request), kinds


def parse_batch(body: Any) -> list[dict[str, Any]]:
    """The batch's requests, checked before any of them runs (so that a refused batch has
    written nothing): ids, methods, urls, headers, and dependencies (see the module docstring)."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid()
    items = body["requests"]
    if not items:
        raise _invalid("Invalid batch payload format: the batch holds no requests.")
    if len(items) > MAX_BATCH:
        raise _invalid("Number of requests inside batch exceed the limit")
    seen: set[str] = set()
    parsed = [_parse_item(item, seen) for item in items]
    _check_dependencies(parsed)
    return parsed


def _check_dependencies(parsed: list[dict[str, Any]]) -> None:
    """Each dependency names a request earlier in the list (so no cycle can form), and the
    batch is fully parallel (no dependencies) or fully sequential (one request alone depends on
    nothing). UNSURE: only the start of Graph's dependency message is on record."""
    earlier: set[str] = set()
    for p in parsed:
        if any(dep.lower() not in earlier for dep in p["depends"]):
            raise _invalid(f"Invalid dependency for request Id : {p['id']}")
        earlier.add(p["id"].lower())
    independent = sum(1 for p in parsed if not p["depends"])
    if independent < len(parsed) and independent > 1:
        raise _invalid("Batch should be either fully sequential or fully parallel.")


def _parse_item(item: Any, seen: set[str]) -> dict[str, Any]:
    """One request of the batch; `seen` holds the ids (lower case) of those before it."""
    if not isinstance(item, dict) or not all(item.get(k) not in (None, "") for k in ("id", "method", "url")):
        raise _invalid()
    request_id = str(item["id"])
    if request_id.lower() in seen:
        raise _invalid(f"Batch request contains duplicate request id '{request_id}'.")
    seen.add(request_id.lower())
    if str(item["url"]).lower().startswith(("http://", "https://")):
        # json-batching: "the relative resource URL"; an absolute one is refused whole.
        raise _invalid()
    depends = item.get("dependsOn") or []
    if not isinstance(depends, list):
        raise _invalid()
    raw_headers = item.get("headers") or {}
    if not isinstance(raw_headers, dict):
        # json-batching: "headers" is a JSON object of header names and values.
        raise _invalid()
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    if item.get("body") is not None and "content-type" not in headers:
        raise _invalid(f"Write request id : {request_id} does not contain Content-Type header or body.")
    return {"id": request_id, "method": str(item["method"]).upper(), "url": str(item["url"]),
            "headers": headers, "body": item.get("body"), "depends": [str(d) for d in depends]}


def run_batch(service: GraphService, outer: GraphRequest, principal: Principal) -> tuple[GraphResponse, list[str]]:
    """The batch's response, and the kinds ("read"/"write") of the requests it ran,
    from which the HTTP layer draws the batch's service time."""
    items = parse_batch(outer.body)
    sequential = any(p["depends"] for p in items)
    order = items if sequential else service.faults.shuffled(items)
    results: dict[str, dict[str, Any]] = {}
    kinds: list[str] = []
    for item in order:
        failed = [d for d in item["depends"] if results[d.lower()]["status"] >= 400]
        if failed:
            results[item["id"].lower()] = _failed_dependency(service, outer, item, failed)
            continue
        results[item["id"].lower()] = _run_one(service, outer, principal, item)
        kinds.append("read" if item["method"] == "GET" else "write")
    responses = service.faults.shuffled([results[p["id"].lower()] for p in items])
    return GraphResponse(200, {"responses": responses}), kinds


def _failed_dependency(service: GraphService, outer: GraphRequest, item: dict[str, Any],
                       failed: list[str]) -> dict[str, Any]:
    refusal = GraphError(424, "FailedDependency", f"The request depends on request(s) {', '.join(failed)}, which failed.")
    body = error_body(refusal, str(uuid.uuid4()), outer.header("client-request-id"), service.clock())
    return {"id": item["id"], "status": 424, "headers": {"Content-Type": "application/json"}, "body": body}


def _run_one(service: GraphService, outer: GraphRequest, principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    segments, raw_query = _split_url(item["url"])
    request = GraphRequest(
        method=item["method"], segments=segments, query=parse_query(raw_query),
        headers=item["headers"], body=item["body"], base_url=outer.base_url,
    )
    response = _inner_response(service, request, principal)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_HEADERS}
    out: dict[str, Any] = {"id": item["id"], "status": response.status, "headers": headers}
    if response.body is not None:
        out["body"] = response.body
    return out


def _inner_response(service: GraphService, request: GraphRequest, principal: Principal) -> GraphResponse:
    """One item answered: refused for its URL, met by a fault (a 500 after its write was
    committed, or instead of running it), or handled."""
    segments = request.segments
    if segments and segments[0].lower() in GRAPH_VERSIONS:
        return service.error(_invalid(f"Resource not found for the segment '{segments[0]}'."), request)
    if segments and segments[0] == "$batch":
        return service.error(_invalid("Nested batch requests are not supported."), request)
    fault = service.faults.draw(inner=True)
    if fault is None or fault.kind not in INNER_KINDS:
        return service.handle(request, principal)
    if fault.committed:
        service.handle(request, principal)
    return service.injected(fault, request)
