"""The one seam between entra-batch and Microsoft Graph: `GraphClient` over an `httpx` async
transport (a socket, the in-process emulator, or a test's `MockTransport`).

What it does that the Graph SDKs do not (GRAPH.md §14):
- every HTTP request first asks the pacer, and every answer (each inner $batch answer too) is
  reported back to it, so that a 429 pauses *all* workers and the rate follows Graph's
  `x-ms-throttle-limit-percentage`;
- retries are bounded by a deadline, never a count; `Retry-After` is honoured in every form;
- $batch items are matched by id, their bodies parsed here, and the throttled or failed ones
  sent again in a *new* batch after the longest Retry-After;
- a request that may have been applied without an answer (a dropped connection after
  sending, or 500/502/504 on a POST) is never sent again blindly: it comes back
  `ambiguous=True` and the engine reconciles (looks the object up);
- a 401 mid-run gets one fresh token and one more try.

Row-level failures are values (`GraphResult`), never exceptions. Tokens and secrets never
appear in results, logs or exceptions.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from batch.errors import GraphRequestFailed
from batch.graph.pacing import AppPool, Pacer, request_cost
from batch.graph.retry import AMBIGUOUS_STATUS, RetryPolicy, parse_retry_after
from batch.graph.transport import TokenProvider, tls_verify

log = logging.getLogger(__name__)

MAX_BATCH = 20  # requests per $batch (GRAPH.md §8)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                httpx.ProxyError)
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=15.0, pool=None)
_URL_SAFE = "/?&=$:,;()'@!*+%~-._"


@dataclass(frozen=True)
class GraphCall:
    """One Graph request. `url` is relative to the Graph base (`/users?$filter=...`); an
    absolute URL is accepted only on the base's own host (an `@odata.nextLink`)."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool | None = None  # None: GET/PATCH/DELETE/PUT idempotent, POST not

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in IDEMPOTENT_METHODS


@dataclass
class GraphResult:
    """What became of one call, after retries."""

    status: int  # 0 = no answer at all
    headers: dict[str, str]
    body: Any
    attempts: int
    ambiguous: bool = False  # may have been applied without an answer: reconcile, never resend blindly
    error_code: str | None = None  # Graph's error code, or a transport description
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ClientStats:
    """Counters for summary.json."""

    requests: int = 0  # HTTP requests sent (a $batch counts once)
    calls: int = 0  # Graph calls sent, each inner request of a $batch counted, re-sends included
    throttled: int = 0  # 429 answers seen (inner ones included)
    retries: int = 0  # calls sent again
    ambiguous: int = 0  # calls left ambiguous
    transport_errors: int = 0  # requests that got no answer
    token_refreshes: int = 0  # 401s answered with a fresh token
    retry_wait: float = 0.0  # seconds slept before re-sends (Retry-After or backoff)
    pacing_wait: float = 0.0  # seconds spent waiting for the pacer, all workers together

    @property
    def throttle_share(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"requests": self.requests, "calls": self.calls, "throttled": self.throttled,
                "throttle_share": round(self.throttle_share, 4), "retries": self.retries,
                "ambiguous": self.ambiguous, "transport_errors": self.transport_errors,
                "token_refreshes": self.token_refreshes, "retry_wait_seconds": round(self.retry_wait, 3),
                "pacing_wait_seconds": round(self.pacing_wait, 3)}


@dataclass
class _Lease:
    pacer: Pacer | None
    provider: TokenProvider

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        if self.pacer is not None:
            self.pacer.observe(status, headers)


@dataclass
class _Outcome:
    """One attempt of a single request: its result, and whether and when to try again."""

    result: GraphResult
    retry: bool = False
    retry_after: float | None = None


@dataclass
class _Item:
    index: int
    call: GraphCall
    id: str
    attempts: int = 0
    result: GraphResult | None = None
    retry_after: float | None = None


@dataclass
class _Tries:
    """The attempts of one request() call so far."""

    attempts: int = 0
    refreshed: bool = False  # a 401 already got its fresh token


@dataclass
class _Round:
    """The state of a batch() call between rounds: what still needs sending, and the wait."""

    pending: list[_Item]
    number: int = 0
    retry_after: float | None = None
    refreshed: bool = False


class GraphClient:
    """Microsoft Graph for the engine: `request`, `batch` and `pages`, paced and retried.

    `base_url` is the Graph root with its version (`https://graph.microsoft.com/v1.0`, or an
    emulator's). `pacer` is shared with every other client of the same app registration
    (or an `AppPool`, whose apps bring their own token providers). `sleep` and `clock` are
    injectable so that tests run in virtual time."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider | None = None,
        *,
        pacer: Pacer | AppPool | None = None,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str | ssl.SSLContext = True,
        max_connections: int = 16,
        low_priority: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        b2c: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if token_provider is None and not (isinstance(pacer, AppPool)
                                           and all(m.token_provider for m in pacer.members)):
            raise ValueError("GraphClient needs a token provider (or an AppPool whose apps each have one)")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the Graph base must be an http(s) URL such as https://graph.microsoft.com/v1.0, "
                             f"got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc}".lower()
        self.token_provider = token_provider
        self.pacer = pacer
        self.retry = retry
        self.low_priority = low_priority
        self.b2c = b2c
        self.stats = ClientStats()
        self.server_clock_offset: float | None = None  # seconds Graph's clock is ahead of ours
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(transport=transport, verify=tls_verify(verify), limits=limits, timeout=timeout,
                                       follow_redirects=False)

    def _note_server_time(self, response: httpx.Response) -> None:
        """Graph's clock minus ours, from the `Date` header (1 s resolution): lets a caller
        compare its own send times with `createdDateTime` despite a skewed local clock."""
        stamp = response.headers.get("date")
        if stamp:
            try:
                server = email.utils.parsedate_to_datetime(stamp).timestamp()
            except (TypeError, ValueError, IndexError):
                return
            self.server_clock_offset = server - time.time()

    def summary(self) -> dict[str, Any]:
        """The client's and the pacer's counters together, for summary.json."""
        out: dict[str, Any] = dict(self.stats.as_dict())
        if self.pacer is not None:
            out["pacer"] = self.pacer.stats.as_dict()
        return out

    async def __aenter__(self) -> "GraphClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- one request -------------------------------------------------------------------------

    async def request(self, call: GraphCall) -> GraphResult:
        """Send one call, retrying what is safe to retry until the policy's deadline."""
        tries = _Tries()

        async def attempt() -> _Outcome:
            return await self._attempt(call, tries)

        retrying = self.retry.retrying(
            should_retry=lambda o: o.retry, retry_after=lambda o: o.retry_after, clock=self._clock,
            sleep=self._counted_sleep, rng=self._rng, throttled=lambda o: o.result.status == 429)
        outcome: _Outcome = await retrying(attempt)
        result = outcome.result
        if result.ambiguous:
            self.stats.ambiguous += 1
        log.debug("%s %s -> %s after %d attempt(s)%s", call.method.upper(), _path(call.url), result.status,
                  result.attempts, " (ambiguous)" if result.ambiguous else "")
        return result

    async def _attempt(self, call: GraphCall, tries: _Tries) -> _Outcome:
        method = call.method.upper()
        url = self._absolute(call.url)
        cost = request_cost(method, call.url, b2c=self.b2c)
        lease = await self._lease(cost.writes, cost.resource_units)
        token = await lease.provider.token()
        tries.attempts += 1
        attempts = tries.attempts
        headers = self._headers(token, attempts)
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(call.headers)
        self.stats.requests += 1
        self.stats.calls += 1
        if attempts > 1:
            self.stats.retries += 1
        try:
            response = await self._http.request(method, url, headers=headers,
                                                content=None if call.body is None else _json_bytes(call.body))
        except httpx.HTTPError as exc:
            return self._transport_failure(exc, call.is_idempotent, attempts)
        lease.observe(response.status_code, response.headers)
        self._note_server_time(response)
        result = _result(response.status_code, _headers(response.headers), _response_body(response), attempts)
        if result.status == 401 and not tries.refreshed:
            tries.refreshed = True
            await self._refresh(lease.provider, token)
            return _Outcome(result, retry=True, retry_after=0.0)
        return self._judge(result, call.is_idempotent)

    def _judge(self, result: GraphResult, idempotent: bool) -> _Outcome:
        """Is this answer final, to be retried (and after how long), or ambiguous?"""
        status = result.status
        retry_after = parse_retry_after(result.headers.get("retry-after"), time.time())
        if status == 429:
            self.stats.throttled += 1
            return _Outcome(result, retry=True, retry_after=retry_after)
        if status == 503:
            return _Outcome(result, retry=True, retry_after=retry_after)
        if status in AMBIGUOUS_STATUS:
            if idempotent:
                return _Outcome(result, retry=True, retry_after=retry_after)
            result.ambiguous = True
        return _Outcome(result)

    def _transport_failure(self, exc: httpx.HTTPError, idempotent: bool, attempts: int) -> _Outcome:
        self.stats.transport_errors += 1
        nothing_sent = isinstance(exc, NOTHING_SENT)
        result = GraphResult(0, {}, None, attempts, error_code=type(exc).__name__, error_message=_describe(exc))
        if nothing_sent or idempotent:
            return _Outcome(result, retry=True)
        result.ambiguous = True
        return _Outcome(result)

    # ---- $batch ------------------------------------------------------------------------------

    async def batch(self, calls: Sequence[GraphCall]) -> list[GraphResult]:
        """Send calls through JSON batching (≤ 20 per $batch); results in input order.

        Inner 429/503 (and 500/502/504 of idempotent calls) are sent again in a new batch
        holding only those ids, after the longest Retry-After. If the $batch request itself
        fails ambiguously (dropped after sending, 5xx without Retry-After), idempotent calls
        are retried and the others come back `ambiguous=True`."""
        items = [_Item(i, call, str(i + 1)) for i, call in enumerate(calls)]
        if not items:
            return []
        for item in items:
            self._absolute(item.call.url)  # refuse foreign hosts before anything is sent

        async def send_round(state: _Round) -> _Round:
            state.number += 1
            chunks = [state.pending[i:i + MAX_BATCH] for i in range(0, len(state.pending), MAX_BATCH)]
            state.pending, state.retry_after = [], None
            answers = await asyncio.gather(*(self._send_batch(chunk, state) for chunk in chunks))
            waits: list[float] = []
            for chunk_retry in answers:
                for item in chunk_retry:
                    state.pending.append(item)
                    waits.append(item.retry_after if item.retry_after is not None
                                 else self.retry.backoff(state.number, self._rng))
            state.pending.sort(key=lambda it: it.index)
            state.retry_after = max(waits) if waits else None
            return state

        state = _Round(pending=list(items))
        retrying = self.retry.retrying(
            should_retry=lambda s: bool(s.pending), retry_after=lambda s: s.retry_after, clock=self._clock,
            sleep=self._counted_sleep, rng=self._rng,
            throttled=lambda s: bool(s.pending) and all(i.result is not None and i.result.status == 429
                                                        for i in s.pending))
        await retrying(send_round, state)
        results: list[GraphResult] = []
        for item in items:
            assert item.result is not None
            if item.result.ambiguous:
                self.stats.ambiguous += 1
            results.append(item.result)
        return results

    async def _send_batch(self, chunk: list[_Item], state: _Round) -> list[_Item]:
        """Send one $batch; set each item's result; return the items to send again."""
        writes = resource_units = 0
        for item in chunk:
            cost = request_cost(item.call.method, item.call.url, b2c=self.b2c)
            writes += cost.writes
            resource_units += cost.resource_units
        lease = await self._lease(writes, resource_units)
        token = await lease.provider.token()
        for item in chunk:
            item.attempts += 1
            item.retry_after = None
            if item.attempts > 1:
                self.stats.retries += 1
        payload = {"requests": [self._inner_request(item) for item in chunk]}
        self.stats.requests += 1
        self.stats.calls += len(chunk)
        try:
            headers = self._headers(token, state.number)
            headers["Content-Type"] = "application/json"
            response = await self._http.post(f"{self.base_url}/$batch", headers=headers, content=_json_bytes(payload))
        except httpx.HTTPError as exc:
            self.stats.transport_errors += 1
            for item in chunk:
                item.result = GraphResult(0, {}, None, item.attempts, error_code=type(exc).__name__,
                                          error_message=_describe(exc))
            if isinstance(exc, NOTHING_SENT):
                return list(chunk)
            return self._ambiguous_batch(chunk)
        self._note_server_time(response)
        outer_headers = _headers(response.headers)
        outer_body = _response_body(response)
        if response.status_code == 200 and isinstance(outer_body, dict) and isinstance(outer_body.get("responses"), list):
            # The envelope carries no throttle headers; the pacer learns from the inner answers.
            return self._inner_results(chunk, outer_body["responses"], lease)
        lease.observe(response.status_code, outer_headers)
        outer = _result(response.status_code, outer_headers, outer_body, 0)
        retry_after = parse_retry_after(outer_headers.get("retry-after"), time.time())
        for item in chunk:
            item.result = GraphResult(outer.status, dict(outer.headers), outer.body, item.attempts,
                                      error_code=outer.error_code, error_message=outer.error_message)
        if outer.status == 401 and not state.refreshed:
            state.refreshed = True
            await self._refresh(lease.provider, token)
            for item in chunk:
                item.retry_after = 0.0
            return list(chunk)
        if outer.status == 429 or (outer.status >= 500 and retry_after is not None):
            if outer.status == 429:
                self.stats.throttled += 1
            for item in chunk:
                item.retry_after = retry_after
            return list(chunk)
        if outer.status >= 500 or outer.status == 200:  # no usable answer: each call may or may not have run
            return self._ambiguous_batch(chunk)
        return []

    def _ambiguous_batch(self, chunk: list[_Item]) -> list[_Item]:
        again = []
        for item in chunk:
            if item.call.is_idempotent:
                again.append(item)
            else:
                assert item.result is not None
                item.result.ambiguous = True
        return again

    def _inner_results(self, chunk: list[_Item], responses: list[Any], lease: _Lease) -> list[_Item]:
        by_id: dict[str, dict[str, Any]] = {}
        for answer in responses:
            if isinstance(answer, dict) and "id" in answer:
                by_id[str(answer["id"]).lower()] = answer
        again: list[_Item] = []
        for item in chunk:
            answer = by_id.get(item.id.lower())
            if answer is None:
                item.result = GraphResult(0, {}, None, item.attempts, error_code="MissingBatchResponse",
                                          error_message="The $batch answer held no response for this request.")
                again += self._ambiguous_batch([item])
                continue
            try:
                status = int(answer.get("status", 0))
            except (TypeError, ValueError):
                status = 0
            headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
            lease.observe(status, headers)
            result = _result(status, headers, _inner_body(answer.get("body"), headers), item.attempts)
            outcome = self._judge(result, item.call.is_idempotent)
            item.result = outcome.result
            if outcome.retry:
                item.retry_after = outcome.retry_after
                again.append(item)
        return again

    def _inner_request(self, item: _Item) -> dict[str, Any]:
        call = item.call
        headers = dict(call.headers)
        if call.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        if self.low_priority:
            headers["x-ms-throttle-priority"] = "Low"
        if item.attempts > 1:
            headers["Retry-Attempt"] = str(item.attempts - 1)
        request: dict[str, Any] = {"id": item.id, "method": call.method.upper(), "url": self._relative(call.url)}
        if headers:
            request["headers"] = headers
        if call.body is not None:
            request["body"] = call.body
        return request

    # ---- listings ----------------------------------------------------------------------------

    async def pages(self, url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """GET a collection and follow `@odata.nextLink`, yielding each page's body (its
        `value`, and on the last page `@odata.deltaLink` for delta queries). The headers
        (e.g. `ConsistencyLevel: eventual`) are sent again with every page. A page that
        cannot be fetched before the deadline raises `GraphRequestFailed`: a listing with a
        hole is worth nothing."""
        next_url: str | None = url
        sent = dict(headers or {})
        while next_url:
            try:
                result = await self.request(GraphCall("GET", next_url, headers=sent))
            except ValueError as exc:
                raise GraphRequestFailed("Following @odata.nextLink", status=0, code="ForeignNextLink",
                                         detail=str(exc)) from None
            if not result.ok or not isinstance(result.body, dict):
                raise GraphRequestFailed(f"GET {_path(next_url)}", status=result.status, code=result.error_code,
                                         detail=result.error_message)
            yield result.body
            link = result.body.get("@odata.nextLink")
            next_url = link if isinstance(link, str) and link else None

    # ---- plumbing ----------------------------------------------------------------------------

    async def _lease(self, writes: int, resource_units: int) -> _Lease:
        start = self._clock()
        try:
            if self.pacer is None:
                assert self.token_provider is not None
                return _Lease(None, self.token_provider)
            if isinstance(self.pacer, AppPool):
                member = await self.pacer.acquire(writes, resource_units)
                provider = member.token_provider or self.token_provider
                assert provider is not None
                return _Lease(member.pacer, provider)
            await self.pacer.acquire(writes, resource_units)
            assert self.token_provider is not None
            return _Lease(self.pacer, self.token_provider)
        finally:
            self.stats.pacing_wait += max(0.0, self._clock() - start)

    async def _refresh(self, provider: TokenProvider, refused: str) -> None:
        """Graph refused `refused` (401: expired or revoked mid-run). Drop it, unless another
        worker already did and the provider holds a newer one."""
        self.stats.token_refreshes += 1
        if await provider.token() == refused:
            provider.invalidate()

    async def _counted_sleep(self, seconds: float) -> None:
        self.stats.retry_wait += seconds
        await self._sleep(seconds)

    def _headers(self, token: str, attempt: int) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   "client-request-id": str(uuid.uuid4())}
        if self.low_priority:
            headers["x-ms-throttle-priority"] = "Low"
        if attempt > 1:
            headers["Retry-Attempt"] = str(attempt - 1)
        return headers

    def _absolute(self, url: str) -> str:
        if url.lower().startswith(("http://", "https://")):
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}".lower() != self._origin:
                raise ValueError(f"refusing to send the access token to {parts.scheme}://{parts.netloc}, "
                                 f"which is not the Graph host {self._origin}")
            return url
        return f"{self.base_url}{url if url.startswith('/') else '/' + url}"

    def _relative(self, url: str) -> str:
        """A $batch item's URL: relative to the version root, spaces and the like escaped."""
        if url.lower().startswith(("http://", "https://")):
            absolute = self._absolute(url)
            url = absolute[len(self.base_url):] if absolute.startswith(self.base_url) else urlsplit(absolute).path
        if not url.startswith("/"):
            url = "/" + url
        return quote(url, safe=_URL_SAFE)



def _result(status: int, headers: dict[str, str], body: Any, attempts: int) -> GraphResult:
    code = message = None
    if status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
        elif isinstance(body, str) and body.strip():
            message = body.strip()[:500]
    return GraphResult(status, headers, body, attempts, error_code=code, error_message=message)


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _response_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    content_type = response.headers.get("content-type", "")
    if "json" in content_type or response.content[:1] in (b"{", b"["):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def _inner_body(body: Any, headers: Mapping[str, str]) -> Any:
    """Inner $batch bodies are JSON objects, or strings (text, or JSON Graph sent as a string)."""
    if isinstance(body, str) and "json" in headers.get("content-type", ""):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _describe(exc: httpx.HTTPError) -> str:
    """A transport failure in words, without the request (whose headers hold the token)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, NOTHING_SENT):
        return f"Could not connect ({text}); nothing was sent."
    return f"No answer ({text}); the request may or may not have been applied."


def _path(url: str) -> str:
    return urlsplit(url).path or url


__all__ = ["ClientStats", "GraphCall", "GraphClient", "GraphResult", "MAX_BATCH"]
