"""The emulator as an ASGI application: Graph under `/v1.0` (and `/beta`), the identity
platform under `/{tenant}/...`. Serve it with uvicorn (`entra-batch emulator`) or call it in
process through `EmulatorTransport`.

Faults that concern the HTTP exchange itself happen here: service time (latency), slow
answers, injected 429/500/502/503/504 (a 500 or 502 before the request is handled or after its
write has been committed), connections reset in the middle of the body, and dropped
connections, before the request is handled or after its write has been committed (the answer
is lost, the change is not). A $batch meets 500 through its items (batching.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from .batching import answer_batch
from .edge import MAX_BODY_BYTES, HostPolicy, declared_length, parse_json
from .errors import GraphError, error_body
from .faults import ANSWER_KINDS, Fault
from .managed_identity import token as managed_identity_token
from .messages import GraphRequest, GraphResponse, parse_query, split_path
from .service import GraphService
from .settings import EmulatorSettings
from .store import Store
from .tokens import Principal, TokenError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
GRAPH_VERSIONS = ("v1.0", "beta")
_log = logging.getLogger("batch.emulator")


class ConnectionDropped(Exception):
    """Raised after the response has started, so that the server closes the connection
    with no complete answer: what a client sees when a connection drops."""


class EmulatorApp:
    def __init__(self, store: Store | str | Path, settings: EmulatorSettings | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, hosts: HostPolicy | None = None) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.settings = settings or EmulatorSettings()
        self.service = GraphService(self.store, self.settings, clock)
        self.clock = clock
        self.sleep = sleep
        self.hosts = hosts or HostPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._http(scope, receive, tracked)
        except ConnectionDropped:
            raise
        except Exception as exc:
            # A bug of ours: Graph's own 500 body, one line in the log, never a traceback to
            # the client (the traceback goes to the debug log).
            _log.error("entra-batch emulator: internal error on %s %s: %s: %s", scope.get("method"),
                       scope.get("path"), type(exc).__name__, exc)
            _log.debug("traceback", exc_info=True)
            if started:
                raise
            err = GraphError(500, "generalException", "An unspecified error has occurred.")
            await _send_json(send, 500, error_body(err, str(uuid.uuid4()), None, self.clock()))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        segments = split_path(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme = str(scope.get("scheme", "http"))
        authority = self.hosts.authority(scheme, headers.get("host"))
        if authority is None:
            # HTTP.sys, in front of Microsoft's services, answers a Host it does not serve with
            # 400 "Bad Request - Invalid Hostname"; the emulator says it in Graph's envelope.
            err = GraphError(400, "BadRequest", "Invalid hostname: the emulator answers to "
                             f"{', '.join(sorted(self.hosts.names))} only.")
            await _send_json(send, 400, error_body(err, str(uuid.uuid4()), None, self.clock()))
            return
        origin = f"{scheme}://{authority}"
        query = scope.get("query_string", b"").decode("latin-1")
        method = str(scope["method"])
        if segments and segments[0] in GRAPH_VERSIONS:
            request = GraphRequest(method=method.upper(), segments=segments[1:], query=parse_query(query),
                                   headers=headers, base_url=f"{origin}/{segments[0]}")
            await self._graph(request, receive, send)
        elif len(segments) >= 2 and segments[-3:] == ["oauth2", "v2.0", "token"] and method == "POST":
            body = await _read_body(receive, headers)
            if body is None:
                too_large = TokenError(413, "invalid_request", 90023, "Request is malformed or invalid: the request "
                                       f"body exceeds {MAX_BODY_BYTES} bytes.")
                await _send_json(send, 413, too_large.body(self.clock()))
                return
            await self._token(segments[0], body, headers, f"{origin}/{'/'.join(segments)}", send)
        elif len(segments) == 4 and segments[1:] == ["oauth2", "v2.0", "devicecode"] and method == "POST":
            await self._devicecode(segments[0], await _read_body(receive, headers), origin, send)
        elif segments == ["msi", "token"] and method == "GET":
            status, answer = managed_identity_token(self.service.tokens, dict(parse_qsl(query)), headers)
            await _send_json(send, status, answer)
        elif segments == ["devicelogin"]:
            await _send_json(send, 200, {"message": "This emulator has no sign-in page: approve a device code with "
                                                    "`entra-batch emulator approve USER_CODE [--as UPN]`."})
        elif len(segments) == 4 and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            await self._openid(segments[0], origin, send)
        elif len(segments) == 4 and segments[1:] == ["discovery", "v2.0", "keys"]:
            await _send_json(send, 200, self.service.tokens.jwks())
        elif segments == ["common", "discovery", "instance"]:
            await _send_json(send, 200, _instance_discovery(origin, dict(parse_qsl(query))))
        elif not segments:
            tenant = self.store.tenants()[0]
            await _send_json(send, 200, {"service": "entra-batch Graph emulator", "graph": f"{origin}/v1.0",
                                         "authority": f"{origin}/{tenant.id}", "docs": "docs/emulator.md"})
        else:
            err = GraphError(404, "NotFound", f"No such endpoint: {path}")
            await _send_json(send, 404, error_body(err, str(uuid.uuid4()), None, self.clock()))

    async def _graph(self, request: GraphRequest, receive: Receive, send: Send) -> None:
        service = self.service
        # The token is checked before the body is read, so that an anonymous client cannot
        # make the emulator read (or parse) anything.
        auth = service.authenticate(request)
        if isinstance(auth, GraphResponse):
            await _send_response(send, auth)
            return
        body = await _read_body(receive, request.headers)
        if body is None:
            # 413 is Graph's status for a request over its size limit (concepts/errors.md in
            # microsoftgraph/microsoft-graph-docs-contrib); "Maximum request length exceeded." is
            # the message Graph sent for one (microsoftgraph/microsoft-graph-docs#85).
            err = GraphError(413, "BadRequest", "Maximum request length exceeded.")
            await _send_response(send, service.error(err, request))
            return
        if body.strip():
            request.body, request.body_error = parse_json(body)
        fault = _outer(service.faults.draw(), batch=bool(request.segments) and request.segments[0] == "$batch")
        if fault is not None and fault.kind == "drop-before":
            await _drop(send)
        if fault is not None and fault.kind in ANSWER_KINDS and not fault.committed:
            # Refused before anything ran: nothing is written.
            await self.sleep(service.faults.service_time("read"))
            await _send_response(send, service.injected(fault, request))
            return
        response, delay = self._answer(request, auth)
        if fault is not None and fault.kind == "slow":
            delay += fault.delay_seconds
        if delay > 0:
            await self.sleep(delay)
        if fault is not None and fault.kind == "drop-after":
            await _drop(send)
        if fault is not None and fault.kind in ANSWER_KINDS:
            # The write was committed, and the answer says it failed: a 500 does not tell.
            response = service.injected(fault, request)
        if fault is not None and fault.kind == "reset":
            await _reset(send, response)
        await _send_response(send, response)

    def _answer(self, request: GraphRequest, auth: Principal) -> tuple[GraphResponse, float]:
        """The request handled (a $batch or one call), and the service time it took."""
        service = self.service
        if request.segments and request.segments[0] == "$batch":
            response, kinds = answer_batch(service, request, auth)
            return response, max((service.faults.service_time(k) for k in kinds), default=0.0)
        response = service.handle(request, auth)
        return response, service.faults.service_time("read" if request.method == "GET" else "write")

    async def _token(self, tenant_key: str, body: bytes, headers: dict[str, str], url: str, send: Send) -> None:
        service = self.service
        fault = service.faults.draw(token_endpoint=True)
        delay = service.faults.service_time("token")
        if delay:
            await self.sleep(delay)
        if fault is not None:
            extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            err = TokenError(503, "temporarily_unavailable", 50196 if fault.retry_after else 90033,
                             "The server is temporarily unavailable. Please try again later.")
            await _send_json(send, 503, err.body(self.clock()), extra)
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            result = service.tokens.token(tenant_key, form, headers.get("authorization"), url)
        except TokenError as err:
            await _send_json(send, err.status, err.body(self.clock()))
            return
        await _send_json(send, 200, result, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    async def _devicecode(self, tenant_key: str, body: bytes | None, origin: str, send: Send) -> None:
        """POST /{tenant}/oauth2/v2.0/devicecode (delegated.py)."""
        form = dict(parse_qsl((body or b"").decode("utf-8", "replace"), keep_blank_values=True))
        try:
            result = self.service.tokens.device_authorization(tenant_key, form, origin)
        except TokenError as err:
            await _send_json(send, err.status, err.body(self.clock()))
            return
        await _send_json(send, 200, result, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    async def _openid(self, tenant_key: str, origin: str, send: Send) -> None:
        tenant = self.store.tenant(tenant_key)
        if tenant is None:
            err = TokenError(400, "invalid_tenant", 90002, f"Tenant '{tenant_key}' not found.")
            await _send_json(send, 400, err.body(self.clock()))
            return
        await _send_json(send, 200, self.service.tokens.openid_configuration(origin, tenant))


def _instance_discovery(origin: str, query: dict[str, str]) -> dict[str, Any]:
    host = origin.split("://", 1)[1]
    return {
        "tenant_discovery_endpoint": query.get("authorization_endpoint", f"{origin}/common").rsplit("/oauth2", 1)[0]
        + "/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }


async def _read_body(receive: Receive, headers: dict[str, str], limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` (from its
    Content-Length, or while reading): what is over the limit is never held in memory."""
    declared = declared_length(headers)
    if declared is not None and declared > limit:
        return None
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _start(response: GraphResponse, payload: bytes) -> dict[str, Any]:
    """The ASGI start of `response`, whose body is `payload`."""
    headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()
               if k.lower() != "content-length"]
    headers.append((b"content-length", str(len(payload)).encode()))
    return {"type": "http.response.start", "status": response.status, "headers": headers}


async def _send_response(send: Send, response: GraphResponse) -> None:
    payload = response.json_bytes()
    await send(_start(response, payload))
    await send({"type": "http.response.body", "body": payload})


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    # The login endpoints (token, keys, discovery) answer plain JSON, successes included (GRAPH.md §15.6).
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    await _send_response(send, GraphResponse(status, body, all_headers))


def _outer(fault: Fault | None, *, batch: bool) -> Fault | None:
    """The fault that hits the whole HTTP exchange. A 500 of a $batch is met by its items, as
    inner answers (batching.py), not by the envelope."""
    if fault is not None and batch and fault.kind == "500":
        return None
    return fault


async def _reset(send: Send, response: GraphResponse) -> None:
    """The status, the headers and the first half of the body sent, then the connection reset:
    what a client sees of a connection that dies mid-answer. An answer with no body cannot be
    cut, so it is dropped whole (its write is committed either way)."""
    payload = response.json_bytes()
    if not payload:
        await _drop(send)
    await send(_start(response, payload))
    await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
    raise ConnectionDropped()


async def _drop(send: Send) -> NoReturn:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
    raise ConnectionDropped()


def create_app(db: Store | str | Path, settings: EmulatorSettings | None = None,
               clock: Callable[[], float] = time.time, hosts: HostPolicy | None = None) -> EmulatorApp:
    return EmulatorApp(db, settings, clock, hosts=hosts)


__all__ = ["EmulatorApp", "create_app", "ConnectionDropped", "Fault"]
