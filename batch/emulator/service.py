"""Graph v1.0 for customer accounts, as one function from request to response.

`GraphService.handle` takes a parsed request (the HTTP layer in `app.py` builds it, and
`$batch` builds one per inner request) and returns a status, headers and a JSON body. In
between: the tenant of the bearer token, the throttle, the route (`routes.py`), and Graph's
error envelope and headers for anything refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from . import errors
from .call import Call
from .directory import Directory
from .errors import GraphError, error_body
from .faults import Fault, FaultInjector
from .messages import ERROR_TYPE, JSON_TYPE, GraphRequest, GraphResponse
from .records import Tenant
from .replication import ReplicationLag
from .routes import route
from .settings import EmulatorSettings
from .store import Store
from .throttle import Throttle, request_cost
from .tokens import Principal, TokenAuthority

SIZE_CACHE_SECONDS = 30


class GraphService:
    def __init__(self, store: Store, settings: EmulatorSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings or EmulatorSettings()
        self.clock = clock
        self.directory = Directory(store, clock, self.settings.retention_days,
                                   ReplicationLag(self.settings.replication_lag_ms, self.settings.seed, clock),
                                   password_reset_needs_role=self.settings.password_reset_needs_role,
                                   keep_password_digests=self.settings.keep_password_digests)
        self.throttle = Throttle(self.settings.quotas, clock)
        self.tokens = TokenAuthority(store, clock, self.settings.token_lifetime_seconds,
                                     approve_device_codes_as=self.settings.approve_device_codes_as,
                                     approve_db=self.settings.approve_db)
        self.faults = FaultInjector(self.settings.faults, self.settings.latency, clock, self.settings.seed)
        self._size_cache: dict[str, tuple[float, str]] = {}

    def authenticate(self, request: GraphRequest) -> Principal | GraphResponse:
        """The app behind the bearer token, or the 401 to answer with."""
        try:
            return self.tokens.verify(request.header("authorization"))
        except GraphError as err:
            return self.error(err, request)

    def handle(self, request: GraphRequest, principal: Principal) -> GraphResponse:
        """One Graph call (a top-level request or one inside a $batch)."""
        tenant = self.store.tenant(principal.tenant_id)
        if tenant is None:
            return self.error(errors.unauthenticated("Access token validation failure. The tenant no longer exists."), request)
        cost = request_cost(request.method, request.segments, request.query, tenant.kind)
        decision = self.throttle.admit(
            app_id=principal.app_id, tenant_id=tenant.id, size_class=self._size_class(tenant), cost=cost,
            low_priority=(request.header("x-ms-throttle-priority") or "").lower() == "low",
        )
        headers = {"x-ms-resource-unit": str(decision.resource_units)}
        if decision.limit_percentage is not None:
            headers["x-ms-throttle-limit-percentage"] = f"{decision.limit_percentage:.2f}"
        if not decision.allowed:
            headers.update({"Retry-After": str(decision.retry_after), "x-ms-throttle-scope": decision.scope,
                            "x-ms-throttle-information": decision.information})
            return self.error(errors.too_many_requests(), request, headers)
        try:
            response = route(Call(request, principal, tenant, self.directory, self.settings))
        except GraphError as err:
            return self.error(err, request, headers)
        response.headers.update(headers)
        return self.finish(response, request)

    def injected(self, fault: Fault, request: GraphRequest) -> GraphResponse:
        """The response of an injected 429/500/502/503/504 (faults.py says when each comes)."""
        if fault.kind == "502":
            return bad_gateway_page()
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        if fault.kind == "429":
            headers.update({"x-ms-throttle-scope": "Tenant/ReadWrite/-/-", "x-ms-throttle-information": "CPULimitExceeded"})
            return self.error(errors.too_many_requests(), request, headers)
        if fault.kind == "500":
            return self.error(internal_error(), request, headers)
        if fault.kind == "503":
            return self.error(GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."), request, headers)
        return self.error(GraphError(504, "UnknownError", "The gateway timed out waiting for the directory service."), request, headers)

    def finish(self, response: GraphResponse, request: GraphRequest) -> GraphResponse:
        """The headers every Graph response carries: request ids, OData version, content type,
        no caching. Without a client-request-id from the client, Graph uses one value for the
        header and for the error's innerError (GRAPH.md §15.6), the request-id."""
        request_id = response.headers.setdefault("request-id", str(uuid.uuid4()))
        response.headers.setdefault("client-request-id", request.header("client-request-id") or request_id)
        # Graph is an OData v4 service and says so on its answers (GRAPH.md §15.6, §8 json-batching).
        response.headers.setdefault("OData-Version", "4.0")
        if response.body is not None:
            response.headers.setdefault("Content-Type", "text/plain" if isinstance(response.body, str) else JSON_TYPE)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    def error(self, err: GraphError, request: GraphRequest, headers: dict[str, str] | None = None) -> GraphResponse:
        """`err` in Graph's error envelope (GRAPH.md §3.1), with `headers` and the error's own.
        Errors are plain `application/json`, not the OData type of successes (GRAPH.md §3.3, §15.6)."""
        request_id = str(uuid.uuid4())
        body = error_body(err, request_id, request.header("client-request-id"), self.clock())
        merged = {"Content-Type": ERROR_TYPE, **(headers or {})}
        merged.update(err.headers)
        merged["request-id"] = request_id
        return self.finish(GraphResponse(err.status, body, merged), request)

    def _size_class(self, tenant: Tenant) -> str:
        if tenant.size_class != "auto":
            return tenant.size_class
        now = self.clock()
        cached = self._size_cache.get(tenant.id)
        if cached and now - cached[0] < SIZE_CACHE_SECONDS:
            return cached[1]
        count = self.store.live_user_count(tenant.id, at_most=501)
        size = "S" if count < 50 else "M" if count <= 500 else "L"
        self._size_cache[tenant.id] = (now, size)
        return size


def internal_error() -> GraphError:
    """Graph's 500 as seen in the wild: `generalException` "General exception while processing"
    (OneDrive/onedrive-api-docs#1509, microsoft-graph-docs-contrib#6355)."""
    return GraphError(500, "generalException", "General exception while processing")


# What a gateway in front of Graph answers when the service behind it fails: an HTML page, not
# Graph's JSON envelope, and without Graph's request ids (the padding is nginx's, which pads its
# error pages past 512 bytes so that browsers show them).
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
    + "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" * 6
)


def bad_gateway_page() -> GraphResponse:
    return GraphResponse(502, BAD_GATEWAY_PAGE, {"Content-Type": "text/html", "Cache-Control": "no-cache"})


__all__ = ["GraphService", "bad_gateway_page", "internal_error"]
