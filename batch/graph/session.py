"""What every Graph request shares, sent alone or inside a `$batch`: one httpx client, URLs
kept on the Graph host (the token goes nowhere else), the request headers, a paced lease of
a token (from the pacer, or from the app of an `AppPool` that can serve first), the fresh
token after a 401, the retry controller with its counted sleep, and Graph's clock.

`GraphClient` builds one `Session`; the single-request path (`client.py`) and the `$batch`
machine (`batching.py`) both send through it."""

from __future__ import annotations

import email.utils
import random
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import tenacity

from batch.graph.answers import Verdict, judge, url_path
from batch.graph.model import GRAPH_VERSIONS, ClientStats, GraphResult, HeldTime, Hold
from batch.graph.observe import Exchange, Observer, request_id_of, shown_headers, shown_path
from batch.graph.pacing import Pacer
from batch.graph.pool import AppPool
from batch.graph.quotas import Cost
from batch.graph.retry import RetryPolicy
from batch.graph.transport import TokenProvider, tls_verify

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=15.0, pool=None)
RECENT_HOLD = 1.0  # seconds a pacer's wait stays "current" for progress displays
_URL_SAFE = "/?&=$:,;()'@!*+%~-._"


@dataclass
class Lease:
    """Permission to send one request: the pacer that granted it (told the answer) and the
    token provider of the app it was granted for."""

    pacer: Pacer | None
    provider: TokenProvider

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        if self.pacer is not None:
            self.pacer.observe(status, headers)


class Session:
    """The plumbing of a `GraphClient` (see the module docstring). `base_url` is the Graph
    root with its version; `sleep` and `clock` are injectable so that tests run in virtual
    time."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider | None,
        *,
        pacer: Pacer | AppPool | None,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None,
        verify: bool | str | ssl.SSLContext,
        max_connections: int,
        low_priority: bool,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
        timeout: httpx.Timeout,
        b2c: bool,
        rng: random.Random | None,
        redact: Sequence[str | None] = (),
        observer: Observer | None = None,
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
        self.redact = tuple(s for s in redact if s)  # never kept from an answer (answers.result_of)
        self.pacer = pacer
        self.retry = retry
        self.low_priority = low_priority
        self.b2c = b2c
        self.observer = observer  # told every exchange (`--verbose`); never a header with a credential
        self.stats = ClientStats()
        self.held = HeldTime()  # stats.held_wait: the union of the workers' waits
        self.retry_hold: Hold | None = None  # the latest sleep before a re-send, for progress read-outs
        self.server_clock_offset: float | None = None  # seconds Graph's clock is ahead of ours
        self._sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(transport=transport, verify=tls_verify(verify), limits=limits, timeout=timeout,
                                      follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    # ---- pacing and tokens -----------------------------------------------------------------------

    async def lease(self, cost: Cost) -> Lease:
        """Wait until the pacer (or the pool's first available app) grants `cost`."""
        start = self.clock()
        self.held.begin(start)
        try:
            if self.pacer is None:
                assert self.token_provider is not None
                return Lease(None, self.token_provider)
            if isinstance(self.pacer, AppPool):
                member = await self.pacer.acquire(cost.writes, cost.resource_units)
                provider = member.token_provider or self.token_provider
                assert provider is not None
                return Lease(member.pacer, provider)
            await self.pacer.acquire(cost.writes, cost.resource_units)
            assert self.token_provider is not None
            return Lease(self.pacer, self.token_provider)
        finally:
            end = self.clock()
            self.stats.pacing_wait += max(0.0, end - start)
            self._held_end(end)

    def _held_end(self, now: float) -> None:
        self.held.end(now)
        self.stats.held_wait = self.held.seconds

    async def refresh(self, provider: TokenProvider, refused: str) -> None:
        """Graph refused `refused` (401: expired or revoked mid-run). Drop it, unless another
        worker already did and the provider holds a newer one."""
        self.stats.token_refreshes += 1
        if await provider.token() == refused:
            provider.invalidate()

    # ---- answers and retries ---------------------------------------------------------------------

    def judge(self, result: GraphResult, idempotent: bool) -> Verdict:
        """`answers.judge`, counting the 429s."""
        if result.status == 429:
            self.stats.throttled += 1
        return judge(result, idempotent)

    def retrying(self, *, should_retry: Callable[[Any], bool], retry_after: Callable[[Any], float | None],
                 throttled: Callable[[Any], bool]) -> tenacity.AsyncRetrying:
        """The retry policy's controller on this session's clock, randomness and counted sleep."""
        return self.retry.retrying(should_retry=should_retry, retry_after=retry_after, clock=self.clock,
                                   sleep=self._counted_sleep, rng=self.rng, throttled=throttled)

    async def _counted_sleep(self, seconds: float) -> None:
        self.stats.retry_wait += seconds
        start = self.clock()
        self.retry_hold = Hold("retry", start + seconds)
        self.held.begin(start)
        try:
            await self._sleep(seconds)
        finally:
            self._held_end(self.clock())

    def hold(self) -> Hold | None:
        """Why sending is held now, if it is: the pacer's (or any pool app's) wait, else a
        worker's sleep before a re-send. A pacer pacing at a quota sleeps a little before
        each request, so a wait that ended less than `RECENT_HOLD` seconds ago still counts.
        A read-out for progress displays; changes nothing."""
        now = self.clock()
        pacers = [m.pacer for m in self.pacer.members] if isinstance(self.pacer, AppPool) else \
            [self.pacer] if self.pacer is not None else []
        holds = [h for h in (p.hold for p in pacers) if h is not None and h.until > now - RECENT_HOLD]
        if holds:
            return min(holds, key=lambda h: h.until) if isinstance(self.pacer, AppPool) else holds[0]
        if self.retry_hold is not None and self.retry_hold.until > now:
            return self.retry_hold
        return None

    def note_server_time(self, response: httpx.Response) -> None:
        """Graph's clock minus ours, from the `Date` header (1 s resolution): lets a caller
        compare its own send times with `createdDateTime` despite a skewed local clock."""
        stamp = response.headers.get("date")
        if stamp:
            try:
                server = email.utils.parsedate_to_datetime(stamp).timestamp()
            except (TypeError, ValueError, IndexError):
                return
            self.server_clock_offset = server - time.time()

    # ---- requests --------------------------------------------------------------------------------

    async def send(self, method: str, url: str, headers: dict[str, str], content: bytes | None, *,
                   what: str = "") -> httpx.Response:
        """One HTTP request, reported to the observer (if any) with its answer or its failure."""
        if self.observer is None:
            return await self.http.request(method, url, headers=headers, content=content)
        start = time.monotonic()
        try:
            response = await self.http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            self.observe(Exchange("http", method, shown_path(url, self.base_url), 0, (time.monotonic() - start) * 1000,
                                  request_id=request_id_of({}, headers), error=type(exc).__name__, what=what))
            raise
        self.observe(Exchange("http", method, shown_path(url, self.base_url), response.status_code,
                              (time.monotonic() - start) * 1000, request_id_of(response.headers, headers),
                              shown_headers(response.headers), what=what))
        return response

    def observe(self, exchange: Exchange) -> None:
        if self.observer is not None:
            self.observer(exchange)

    def headers(self, token: str, attempt: int) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   "client-request-id": str(uuid.uuid4())}
        if self.low_priority:
            headers["x-ms-throttle-priority"] = "Low"
        if attempt > 1:
            headers["Retry-Attempt"] = str(attempt - 1)
        return headers

    def absolute(self, url: str) -> str:
        """The URL to send to; an absolute URL on another host than Graph's raises ValueError."""
        if url.lower().startswith(("http://", "https://")):
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}".lower() != self._origin:
                raise ValueError(f"refusing to send the access token to {parts.scheme}://{parts.netloc}, "
                                 f"which is not the Graph host {self._origin}")
            return url
        return f"{self.base_url}{url if url.startswith('/') else '/' + url}"

    def relative(self, url: str) -> str:
        """A $batch item's URL: relative to the version root, spaces and the like escaped.

        Graph takes nothing else: an absolute item URL refuses the whole batch ("Invalid batch
        payload format.", microsoft-graph-docs-contrib#8576) and a path that starts with the
        version fails the item ("Resource not found for the segment 'v1.0'.",
        msgraph-sdk-javascript#1178). A call that would need either is a bug of the caller:
        ValueError, before anything is sent."""
        if url.lower().startswith(("http://", "https://")):
            absolute = self.absolute(url)
            if not absolute.startswith(self.base_url + "/"):
                raise ValueError(f"cannot batch {url_path(url)}: it is not under the Graph base {self.base_url}")
            url = absolute[len(self.base_url):]
        if not url.startswith("/"):
            url = "/" + url
        first = url.lstrip("/").split("/", 1)[0].split("?", 1)[0].lower()
        if first in GRAPH_VERSIONS:
            raise ValueError(f"cannot batch {url_path(url)}: a $batch item's URL is relative to the version root "
                             f"({self.base_url}), so it must not start with /{first}")
        return quote(url, safe=_URL_SAFE)

__all__ = ["DEFAULT_TIMEOUT", "RECENT_HOLD", "Lease", "Session"]
