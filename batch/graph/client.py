"""The one seam between entra-batch and Microsoft Graph: `GraphClient` over an `httpx` async
transport (a socket, the in-process emulator, or a test's mock).

What it does that the Graph SDKs do not (GRAPH.md §14):
- every HTTP request first asks the pacer, and every answer (each inner $batch answer too) is
  reported back to it, so that a 429 pauses *all* workers and the rate follows Graph's
  `x-ms-throttle-limit-percentage`;
- retries are bounded by a deadline, never a count; `Retry-After` is honoured in every form;
- $batch items are matched by id, their bodies parsed, and the throttled or failed ones
  sent again in a *new* batch after the longest Retry-After (`batching.py`);
- a request that may have been applied without an answer (a dropped connection after
  sending, or 500/502/504 on a POST) is never sent again blindly: it comes back
  `ambiguous=True` and the engine reconciles (looks the object up);
- a 401 mid-run gets one fresh token and one more try.

This module holds the client and the single-request path; the shared plumbing is in
`session.py`, what an answer means in `answers.py`, listings in `paging.py`. Row-level
failures are values (`GraphResult`), never exceptions. Tokens and secrets never appear in
results, logs or exceptions.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx

from batch.graph.answers import (
    NOTHING_SENT,
    Secrets,
    Verdict,
    failure_result,
    json_bytes,
    lower_headers,
    request_secrets,
    response_body,
    result_of,
    url_path,
)
from batch.graph.batching import send_batched
from batch.graph.model import ClientStats, GraphCall, GraphResult, Hold
from batch.graph.observe import Observer
from batch.graph.pacing import Pacer
from batch.graph.paging import follow_pages
from batch.graph.pool import AppPool
from batch.graph.quotas import request_cost
from batch.graph.retry import DEFAULT_RETRY, RetryPolicy
from batch.graph.session import DEFAULT_TIMEOUT, Session
from batch.graph.transport import TokenProvider

log = logging.getLogger(__name__)


@dataclass
class _Tries:
    """The attempts of one request() call so far."""

    attempts: int = 0
    refreshed: bool = False  # a 401 already got its fresh token


class GraphClient:
    """Microsoft Graph for the engine: `request`, `batch` and `pages`, paced and retried.

    `base_url` is the Graph root with its version (`https://graph.microsoft.com/v1.0`, or an
    emulator's). `pacer` is shared with every other client of the same app registration
    (or an `AppPool`, whose apps bring their own token providers). `sleep` and `clock` are
    injectable so that tests run in virtual time. `redact` lists what no answer may bring back
    into a result (the client secrets); the token and the passwords of each request are
    redacted from its answer anyway. `observer` is told every exchange (`observe.py`)."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider | None = None,
        *,
        pacer: Pacer | AppPool | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str | ssl.SSLContext = True,
        max_connections: int = 16,
        low_priority: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        b2c: bool = False,
        rng: random.Random | None = None,
        redact: Sequence[str | None] = (),
        observer: Observer | None = None,
    ) -> None:
        self._session = Session(base_url, token_provider, pacer=pacer, retry=retry, transport=transport,
                                verify=verify, max_connections=max_connections, low_priority=low_priority,
                                sleep=sleep, clock=clock, timeout=timeout, b2c=b2c, rng=rng, redact=redact,
                                observer=observer)
        self.stats: ClientStats = self._session.stats

    @property
    def base_url(self) -> str:
        return self._session.base_url

    @property
    def pacer(self) -> Pacer | AppPool | None:
        return self._session.pacer

    def hold(self) -> Hold | None:
        """Why sending is held right now (the pacer keeps the pace, or Graph asked to wait),
        or None: a read-out for progress displays."""
        return self._session.hold()

    @property
    def server_clock_offset(self) -> float | None:
        """Seconds Graph's clock is ahead of ours (from the last answer's `Date`), or None."""
        return self._session.server_clock_offset

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._session.aclose()

    # ---- one request -------------------------------------------------------------------------

    async def request(self, call: GraphCall) -> GraphResult:
        """Send one call, retrying what is safe to retry until the policy's deadline."""
        tries = _Tries()

        async def attempt() -> Verdict:
            return await self._attempt(call, tries)

        retrying = self._session.retrying(should_retry=lambda v: v.retry, retry_after=lambda v: v.retry_after,
                                          throttled=lambda v: v.result.status == 429)
        verdict: Verdict = await retrying(attempt)
        result = verdict.result
        if result.ambiguous:
            self.stats.ambiguous += 1
        log.debug("%s %s -> %s after %d attempt(s)%s", call.method.upper(), url_path(call.url), result.status,
                  result.attempts, " (ambiguous)" if result.ambiguous else "")
        return result

    async def _attempt(self, call: GraphCall, tries: _Tries) -> Verdict:
        session = self._session
        method = call.method.upper()
        url = session.absolute(call.url)
        lease = await session.lease(request_cost(method, call.url, b2c=session.b2c))
        token = await lease.provider.token()
        tries.attempts += 1
        attempts = tries.attempts
        headers = session.headers(token, attempts)
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(call.headers)
        self.stats.requests += 1
        self.stats.calls += 1
        if attempts > 1:
            self.stats.retries += 1
        try:
            response = await session.send(method, url, headers, None if call.body is None else json_bytes(call.body))
        except httpx.HTTPError as exc:
            return self._transport_failure(exc, call.is_idempotent, attempts,
                                           lambda: request_secrets(token, [call.body], session.redact))
        lease.observe(response.status_code, response.headers)
        session.note_server_time(response)
        result = result_of(response.status_code, lower_headers(response.headers), response_body(response), attempts,
                           secrets=lambda: request_secrets(token, [call.body], session.redact))
        if result.status == 401 and not tries.refreshed:
            tries.refreshed = True
            await session.refresh(lease.provider, token)
            return Verdict(result, retry=True, retry_after=0.0)
        return session.judge(result, call.is_idempotent)

    def _transport_failure(self, exc: httpx.HTTPError, idempotent: bool, attempts: int, secrets: Secrets) -> Verdict:
        self.stats.transport_errors += 1
        result = failure_result(exc, attempts, secrets)
        if isinstance(exc, NOTHING_SENT) or idempotent:
            return Verdict(result, retry=True)
        result.ambiguous = True
        return Verdict(result)

    # ---- many requests -------------------------------------------------------------------------

    async def batch(self, calls: Sequence[GraphCall]) -> list[GraphResult]:
        """Send calls through JSON batching (≤ 20 per $batch); results in input order.

        Inner 429/503 (and 500/502/504 of idempotent calls) are sent again in a new batch
        holding only those ids, after the longest Retry-After. If the $batch request itself
        fails ambiguously (dropped after sending, 5xx without Retry-After), idempotent calls
        are retried and the others come back `ambiguous=True`."""
        return await send_batched(self._session, calls)

    def pages(self, url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """GET a collection and follow `@odata.nextLink`, yielding each page's body (its
        `value`, and on the last page `@odata.deltaLink` for delta queries). The headers
        (e.g. `ConsistencyLevel: eventual`) are sent again with every page. A page that
        cannot be fetched before the deadline raises `GraphRequestFailed`: a listing with a
        hole is worth nothing."""
        return follow_pages(self.request, url, headers)


__all__ = ["GraphClient"]
