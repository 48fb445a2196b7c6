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
from batch.graph.model import GRAPH_VERSIONS, ClientStats, GraphResult
from batch.graph.pacing import Pacer
from batch.graph.pool import AppPool
from batch.graph.quotas import Cost
from batch.graph.retry import RetryPolicy
from batch.graph.transport import TokenProvider, tls_verify

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=15.0, pool=None)
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
        self.stats = ClientStats()
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
            self.stats.pacing_wait += max(0.0, self.clock() - start)

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
        await self._sleep(seconds)

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

__all__ = ["DEFAULT_TIMEOUT", "Lease", "Session"]
