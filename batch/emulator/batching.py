"""JSON batching, `POST /$batch` (GRAPH.md §8): up to 20 requests, each run as if sent alone
(its own permission check, throttling and faults), answered in one 200 envelope.
`dependsOn` (and the Python SDK's `depends_on`) orders requests; a request whose
dependency failed gets 424 without being run."""

from __future__ import annotations

import uuid
from typing import Any

from . import errors
from .errors import GraphError, error_body
from .messages import GraphRequest, GraphResponse, parse_query, split_path
from .service import GraphService
from .tokens import Principal

MAX_BATCH = 20
HOP_HEADERS = {"request-id", "client-request-id"}


def _invalid(message: str = "Invalid batch payload format.") -> GraphError:
    return GraphError(400, "BadRequest", message)


def _split_url(url: str) -> tuple[list[str], str]:
    if url.lower().startswith(("http://", "https://")):
        url = url.split("://", 1)[1].partition("/")[2]
    path, _, query = url.partition("?")
    segments = split_path(path)
    if segments and segments[0].lower() in ("v1.0", "beta"):
        segments = segments[1:]
    return segments, query


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
    """The batch's requests, checked before any of them runs: ids, methods, urls, headers,
    and dependencies that name requests of the batch and form no cycle."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid()
    items = body["requests"]
    if not items:
        raise _invalid("Invalid batch payload format: the batch holds no requests.")
    if len(items) > MAX_BATCH:
        raise _invalid("Number of requests inside batch exceed the limit")
    seen: set[str] = set()
    parsed: list[dict[str, Any]] = []
    for item in items:
        parsed.append(_parse_item(item, seen))
    for p in parsed:
        for dep in p["depends"]:
            if dep.lower() not in seen or dep.lower() == p["id"].lower():
                raise _invalid(f"Request id '{p['id']}' depends on '{dep}', which is not in the batch.")
    # Refuse a cycle before anything runs, so that a refused batch has written nothing.
    _refuse_cycles({p["id"].lower(): [d.lower() for d in p["depends"]] for p in parsed})
    return parsed


def _parse_item(item: Any, seen: set[str]) -> dict[str, Any]:
    """One request of the batch; `seen` holds the ids (lower case) of those before it."""
    if not isinstance(item, dict) or not all(item.get(k) not in (None, "") for k in ("id", "method", "url")):
        raise _invalid()
    request_id = str(item["id"])
    if request_id.lower() in seen:
        raise _invalid(f"Batch request contains duplicate request id '{request_id}'.")
    seen.add(request_id.lower())
    depends = item.get("dependsOn", item.get("depends_on")) or []
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


def _refuse_cycles(graph: dict[str, list[str]]) -> None:
    """Depth-first through `dependsOn`, without recursion."""
    done: set[str] = set()
    for start in graph:
        path: set[str] = {start}
        stack = [(start, iter(graph[start]))]
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                path.discard(node)
                done.add(node)
            elif dep in path:
                raise _invalid("Batch request dependencies form a cycle.")
            elif dep not in done:
                path.add(dep)
                stack.append((dep, iter(graph[dep])))


def run_batch(service: GraphService, outer: GraphRequest, principal: Principal) -> tuple[GraphResponse, list[str]]:
    """The batch's response, and the kinds ("read"/"write") of the requests it ran,
    from which the HTTP layer draws the batch's service time."""
    items = parse_batch(outer.body)
    by_id = {p["id"].lower(): p for p in items}
    results: dict[str, dict[str, Any]] = {}
    kinds: list[str] = []
    visiting: set[str] = set()

    def run(item: dict[str, Any]) -> dict[str, Any]:
        key = item["id"].lower()
        if key in results:
            return results[key]
        if key in visiting:
            raise _invalid("Batch request dependencies form a cycle.")
        visiting.add(key)
        failed = [d for d in item["depends"] if run(by_id[d.lower()])["status"] >= 400]
        if failed:
            refusal = GraphError(424, "FailedDependency",
                                 f"The request depends on request(s) {', '.join(failed)}, which failed.")
            request_id = str(uuid.uuid4())
            result = {"id": item["id"], "status": 424, "headers": {"Content-Type": "application/json"},
                      "body": error_body(refusal, request_id, outer.header("client-request-id"), service.clock())}
        else:
            result = _run_one(service, outer, principal, item)
            kinds.append("read" if item["method"] == "GET" else "write")
        results[key] = result
        return result

    for item in items:
        run(item)
    responses = [results[p["id"].lower()] for p in items]
    return GraphResponse(200, {"responses": responses}), kinds


def _run_one(service: GraphService, outer: GraphRequest, principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    segments, raw_query = _split_url(item["url"])
    request = GraphRequest(
        method=item["method"], segments=segments, query=parse_query(raw_query),
        headers=item["headers"], body=item["body"], base_url=outer.base_url,
    )
    if segments and segments[0] == "$batch":
        response = service.error(_invalid("Nested batch requests are not supported."), request)
    else:
        fault = service.faults.draw()
        if fault is not None and fault.kind in ("429", "503", "504"):
            response = service.injected(fault, request)
        else:
            response = service.handle(request, principal)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_HEADERS}
    out: dict[str, Any] = {"id": item["id"], "status": response.status, "headers": headers}
    if response.body is not None:
        out["body"] = response.body
    return out
