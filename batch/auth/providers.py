"""Token providers that keep one token fresh (GRAPH.md §10, §14): the shared
cache-refresh-retry machinery (`RefreshingProvider`), plain client credentials over httpx
(`ClientCredentialsProvider`: the in-process emulator and http loopback targets, which msal
refuses) and a fixed token (`StaticTokenProvider`).

A refreshing provider keeps the token and refreshes it itself 5 minutes before it expires
(msal refreshes early only when the answer carries `refresh_in`, which client credentials
never do), retries the token endpoint (5xx, 429, connection errors,
`temporarily_unavailable`) with backoff until a deadline (msal retries none of these), keeps
using a still-valid token while a refresh fails, and raises `AuthError` — with the AADSTS
code, the settings used (`batch.config.Sources`: an environment variable, or a profile and
its key) and what to do — when the credentials are refused. Only network faults (a
connection refused or reset, a timeout) and 5xx / 429 / `temporarily_unavailable` answers are
retried. A token endpoint whose TLS certificate fails verification is said at once, naming
the CA file used (no retry can fix it); an authority host that cannot be connected to at all
(its name does not resolve, the connection is refused) is not a passing failure either: after
`UNREACHABLE_TRIES` tries in a row, a few seconds, the `AuthError` names the host and the
setting it came from, instead of 300 s of silence. Secrets and tokens are never logged, and
never put in an exception."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from batch.auth.errors import TRANSIENT_ERRORS, auth_error, unavailable, unreachable, untrusted
from batch.config import ENVIRONMENT, Sources
from batch.errors import AuthError
from batch.graph.retry import RetryPolicy, parse_retry_after
from batch.graph.transport import tls_verify

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
REFRESH_MARGIN_SECONDS = 300.0  # refresh this long before expiry (as azure-identity does)
TOKEN_RETRY = RetryPolicy(deadline_seconds=300.0, base_delay=1.0, max_delay=30.0, jitter=0.25)
UNREACHABLE_TRIES = 3  # tries in a row that could not connect at all before giving up (waits of ~1 s and ~2 s)


@dataclass
class Fetched:
    """One try at the token endpoint: a token, or a transient failure to retry."""

    token: str | None = None
    expires_in: float = 0.0
    refresh_in: float | None = None
    transient: str | None = None  # why it failed, when it may work next time
    retry_after: float | None = None
    unreachable: str | None = None  # why no connection could be made at all (with `transient` set too)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception it wraps (httpx, requests and urllib3 wrap the socket's error
    in causes, contexts, `reason`s and arguments)."""
    seen: set[int] = set()
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        each = todo.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        found.append(each)
        linked = [each.__cause__, each.__context__, getattr(each, "reason", None), *each.args]
        todo.extend(link for link in linked if isinstance(link, BaseException))
    return found


def connect_failure(exc: BaseException) -> str | None:
    """Why a connection to the host could not be made at all (its name does not resolve, it
    refuses connections, the network cannot reach it), read from the exception's chain; None
    when it is something that may pass (a timeout, a connection dropped mid-answer). A TLS
    certificate that fails verification is `tls_failure`'s, said at once."""
    for each in _chain(exc):
        if isinstance(each, socket.gaierror) or type(each).__name__ == "NameResolutionError":
            return "its name does not resolve"
        if isinstance(each, ConnectionRefusedError):
            return "it refuses connections"
        if isinstance(each, OSError) and each.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "the network cannot reach it"
    return None


def tls_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure in `exc`'s chain, if that is what it is."""
    return next((each for each in _chain(exc) if isinstance(each, ssl.SSLCertVerificationError)), None)


class RefreshingProvider:
    """Caches one token; fetches a new one `REFRESH_MARGIN_SECONDS` before expiry, retrying
    transient failures up to the policy's deadline. While an old token is still valid, a
    failed refresh is tried once and the old token used a little longer."""

    def __init__(self, *, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 retry: RetryPolicy, secret: str | None, authority_url: str = "", sources: Sources = ENVIRONMENT,
                 ca_path: str | None = None) -> None:
        self._clock = clock
        self._authority_host = urlsplit(authority_url).netloc or authority_url
        self._sources = sources
        self._ca_path = ca_path  # the CA file the token request trusts, for messages (None: the defaults)
        self._sleep = sleep
        self._retry = retry
        self._secret = secret
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._next_try = 0.0
        self._failures = 0

    async def token(self) -> str:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        async with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            if self._token is not None and now < self._expires_at - 30:
                if now < self._next_try:
                    return self._token
                fetched = await self._try_fetch()
                if fetched.token is None:  # keep the valid token, try again a little later
                    self._failures += 1
                    self._next_try = now + self._retry.delay(self._failures, fetched.retry_after)
                    log.warning("token refresh failed (%s); the current token is still valid", fetched.transient)
                    return self._token
            else:
                fetched = await self._fetch_until_deadline()
            assert fetched.token is not None
            self._store(fetched)
            return fetched.token

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = self._refresh_at = 0.0
        self._forget()

    def _store(self, fetched: Fetched) -> None:
        now = self._clock()
        assert fetched.token is not None
        lifetime = max(0.0, fetched.expires_in)
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        refresh_in = lifetime - margin
        if fetched.refresh_in is not None:
            refresh_in = min(refresh_in, fetched.refresh_in)
        self._token = fetched.token
        self._expires_at = now + lifetime
        self._refresh_at = now + refresh_in
        self._failures = 0
        self._next_try = 0.0

    async def _try_fetch(self) -> Fetched:
        self._forget()
        return await self._fetch()

    async def _fetch_until_deadline(self) -> Fetched:
        in_a_row = 0  # tries in a row that could not connect at all

        def should_retry(fetched: Fetched) -> bool:
            nonlocal in_a_row
            if fetched.token is not None:
                return False
            in_a_row = in_a_row + 1 if fetched.unreachable else 0
            return in_a_row < UNREACHABLE_TRIES

        retrying = self._retry.retrying(
            should_retry=should_retry, retry_after=lambda f: f.retry_after, clock=self._clock, sleep=self._sleep)
        fetched: Fetched = await retrying(self._try_fetch)
        if fetched.token is None:
            if fetched.unreachable and in_a_row >= UNREACHABLE_TRIES:
                raise unreachable(self._authority_host, self._sources.authority_host, fetched.unreachable, in_a_row)
            raise unavailable(self._retry.deadline_seconds, fetched.transient or "no answer", self._secret, self._sources)
        return fetched

    def _untrusted(self, failure: ssl.SSLCertVerificationError) -> AuthError:
        return untrusted(self._authority_host, failure, self._sources, self._ca_path)

    method = ""  # the sign-in method when it has refusals of its own (auth_error's method-specific remedies)

    def _refused(self, body: dict[str, object]) -> AuthError:
        """The endpoint's refusal, naming the settings used."""
        return auth_error(body, secret=self._secret, sources=self._sources, tenant=self._tenant(),
                          client_id=self._client_id(), authority=self._authority_host, method=self.method)

    def _tenant(self) -> str:
        return ""

    def _client_id(self) -> str:
        return ""

    async def _fetch(self) -> Fetched:  # pragma: no cover - abstract
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop whatever a library caches, so that the next fetch really asks the endpoint."""


class ClientCredentialsProvider(RefreshingProvider):
    """Client credentials with a client secret over plain httpx, POSTed to `token_url`
    (`{authority}/{tenant}/oauth2/v2.0/token`): for the in-process emulator (pass its
    transport) and http loopback targets."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, *,
                 transport: httpx.AsyncBaseTransport | None = None, verify: bool | str | ssl.SSLContext = True,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 retry: RetryPolicy = TOKEN_RETRY, scope: str = GRAPH_SCOPE, sources: Sources = ENVIRONMENT) -> None:
        super().__init__(clock=clock, sleep=sleep, retry=retry, secret=client_secret, authority_url=token_url,
                         sources=sources, ca_path=verify if isinstance(verify, str) else None)
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
                      "scope": scope}
        self._http = httpx.AsyncClient(transport=transport, verify=tls_verify(verify), timeout=httpx.Timeout(30.0))

    async def _fetch(self) -> Fetched:
        try:
            response = await self._http.post(self.token_url, data=self._form, headers={"Accept": "application/json"})
        except httpx.ConnectError as exc:
            failure = tls_failure(exc)
            if failure is not None:
                raise self._untrusted(failure) from None
            return Fetched(transient=f"connection error: {type(exc).__name__}", unreachable=connect_failure(exc))
        except httpx.HTTPError as exc:
            return Fetched(transient=f"connection error: {type(exc).__name__}")
        try:
            body = response.json()
        except ValueError:
            body = None
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            refresh_in = body.get("refresh_in")
            return Fetched(token=str(body["access_token"]), expires_in=float(body.get("expires_in", 3599)),
                            refresh_in=None if refresh_in is None else float(refresh_in))
        if response.status_code == 429 or response.status_code >= 500 or not isinstance(body, dict):
            return Fetched(transient=f"HTTP {response.status_code}", retry_after=retry_after)
        if body.get("error") in TRANSIENT_ERRORS:
            return Fetched(transient=str(body.get("error")), retry_after=retry_after)
        raise self._refused(body)

    def _tenant(self) -> str:
        parts = urlsplit(self.token_url).path.strip("/").split("/")  # .../{tenant}/oauth2/v2.0/token
        return parts[-4] if len(parts) >= 4 else ""

    def _client_id(self) -> str:
        return self.client_id

    async def aclose(self) -> None:
        await self._http.aclose()


class StaticTokenProvider:
    """A fixed token (tests, or a token handed over by another tool)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def invalidate(self) -> None:
        """A fixed token cannot be renewed; the next 401 stands."""


__all__ = [
    "GRAPH_SCOPE", "REFRESH_MARGIN_SECONDS", "TOKEN_RETRY", "UNREACHABLE_TRIES", "ClientCredentialsProvider",
    "Fetched", "RefreshingProvider", "StaticTokenProvider", "connect_failure", "tls_failure",
]
