"""Access tokens for Graph (client credentials, GRAPH.md §10 and §14).

- `MsalTokenProvider`: a real tenant, through msal (a client secret or a certificate), with one
  `ConfidentialClientApplication` for the whole run.
- `ClientCredentialsProvider`: a plain httpx client-credentials fetcher, for the in-process
  emulator and http loopback targets (msal refuses http authorities).
- `StaticTokenProvider`: a fixed token (tests, or a token obtained elsewhere).

Both keep the token and refresh it themselves 5 minutes before it expires (msal refreshes
early only when the answer carries `refresh_in`, which client credentials never do), retry
the token endpoint (5xx, 429, connection errors, `temporarily_unavailable`) with backoff
until a deadline (msal retries none of these), keep using a still-valid token while a
refresh fails, and raise `AuthError` — with the AADSTS code and what to do — when the
credentials are refused. Secrets and tokens are never logged, and never put in an exception.

`token_roles` and `missing_permissions` serve the preflight: the run checks the token's
application permissions before sending anything (PRODUCT.md, "Targets").
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from batch.errors import AuthError, ConfigError
from batch.graph.retry import RetryPolicy, parse_retry_after
from batch.graph.transport import TokenProvider, tls_verify

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
REFRESH_MARGIN_SECONDS = 300.0  # refresh this long before expiry (as azure-identity does)
TOKEN_RETRY = RetryPolicy(deadline_seconds=300.0, base_delay=1.0, max_delay=30.0, jitter=0.25)
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


# ---- what the identity platform's errors mean ----------------------------------------------------

_REMEDIES = {
    "7000215": "The client secret is wrong. Copy the secret's *value* (not its id) from the app "
               "registration's Certificates & secrets page into AZURE_CLIENT_SECRET, or create a new one.",
    "7000222": "The client secret has expired. Create a new secret under the app registration's "
               "Certificates & secrets and put it in AZURE_CLIENT_SECRET.",
    "700016": "No application with this client id exists in the tenant. Check AZURE_CLIENT_ID and "
              "AZURE_TENANT_ID (the app must be registered in, or consented to by, that tenant).",
    "90002": "The tenant was not found. Check AZURE_TENANT_ID (a tenant GUID or its "
             "*.onmicrosoft.com domain) and the authority host.",
    "700027": "The client assertion was refused. Upload the certificate (its public part) to the app "
              "registration's Certificates & secrets, and check AZURE_CLIENT_CERTIFICATE_PATH.",
    "700024": "The client assertion is outside its valid time range. Check this machine's clock.",
    "7000218": "The request held neither a client secret nor a certificate. Set AZURE_CLIENT_SECRET or "
               "AZURE_CLIENT_CERTIFICATE_PATH.",
    "1002012": "The scope was refused. The tool asks for https://graph.microsoft.com/.default.",
    "70011": "The scope was refused. The tool asks for https://graph.microsoft.com/.default.",
    "7000112": "The application is disabled in the tenant. Ask an administrator to enable it.",
    "700023": "The application is not allowed to get tokens for this tenant. Check AZURE_TENANT_ID.",
}
_REMEDY_BY_ERROR = {
    "invalid_client": "Check the app registration's credentials (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or "
                      "AZURE_CLIENT_CERTIFICATE_PATH).",
    "unauthorized_client": "The app is not authorised in this tenant. Check AZURE_CLIENT_ID and "
                           "AZURE_TENANT_ID, and that an administrator consented to the app.",
    "invalid_tenant": "Check AZURE_TENANT_ID.",
}
_AADSTS = re.compile(r"AADSTS(\d+)")


def _auth_error(body: Mapping[str, Any], *, secret: str | None = None) -> AuthError:
    error = str(body.get("error") or "unknown_error")
    description = str(body.get("error_description") or "")
    codes = body.get("error_codes")
    code = None
    if isinstance(codes, list) and codes:
        code = str(codes[0])
    else:
        match = _AADSTS.search(description)
        code = match.group(1) if match else None
    summary = description.split(" Trace ID:")[0].strip() or error
    if code and f"AADSTS{code}" not in summary:
        summary = f"AADSTS{code}: {summary}"
    remedy = _REMEDIES.get(code or "") or _REMEDY_BY_ERROR.get(error, "Check the app registration and its "
                                                                      "credentials, then run again.")
    message = _scrub(f"The identity platform refused the credentials ({error}, {summary}). {remedy}", secret)
    return AuthError(message, code=code, error=error)


def _unavailable(deadline: float, detail: str, secret: str | None) -> AuthError:
    return AuthError(_scrub(
        f"The token endpoint could not be reached or kept failing for {deadline:g} s ({detail}). "
        "Check the network, a proxy, or the authority host (AZURE_AUTHORITY_HOST), then resume the run.", secret),
        code=None, error="temporarily_unavailable")


def _scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


# ---- the shared refresh-and-retry machinery ----------------------------------------------------------

@dataclass
class _Fetched:
    """One try at the token endpoint: a token, or a transient failure to retry."""

    token: str | None = None
    expires_in: float = 0.0
    refresh_in: float | None = None
    transient: str | None = None  # why it failed, when it may work next time
    retry_after: float | None = None


class _RefreshingProvider:
    """Caches one token; fetches a new one `REFRESH_MARGIN_SECONDS` before expiry, retrying
    transient failures up to the policy's deadline. While an old token is still valid, a
    failed refresh is tried once and the old token used a little longer."""

    def __init__(self, *, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 retry: RetryPolicy, secret: str | None) -> None:
        self._clock = clock
        self._sleep = sleep
        self._retry = retry
        self._secret = secret
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._next_try = 0.0
        self._failures = 0
        self.fetches = 0  # tokens obtained from the endpoint (not from the cache)

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

    def _store(self, fetched: _Fetched) -> None:
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
        self.fetches += 1

    async def _try_fetch(self) -> _Fetched:
        self._forget()
        return await self._fetch()

    async def _fetch_until_deadline(self) -> _Fetched:
        retrying = self._retry.retrying(
            should_retry=lambda f: f.token is None, retry_after=lambda f: f.retry_after,
            clock=self._clock, sleep=self._sleep)
        fetched: _Fetched = await retrying(self._try_fetch)
        if fetched.token is None:
            raise _unavailable(self._retry.deadline_seconds, fetched.transient or "no answer", self._secret)
        return fetched

    async def _fetch(self) -> _Fetched:  # pragma: no cover - abstract
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop whatever a library caches, so that the next fetch really asks the endpoint."""


# ---- msal (real tenants) ------------------------------------------------------------------------------

class MsalTokenProvider(_RefreshingProvider):
    """Client credentials through msal: a secret, or a PEM certificate with its private key.

    One `ConfidentialClientApplication` is built (lazily, in a thread: msal's construction
    already calls the network) and reused. msal refuses http authorities; use
    `ClientCredentialsProvider` for http loopback targets."""

    def __init__(self, tenant_id: str, client_id: str, *, client_secret: str | None = None,
                 certificate_path: str | Path | None = None, certificate_password: str | None = None,
                 authority_host: str = PUBLIC_AUTHORITY_HOST, verify: bool | str = True,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 retry: RetryPolicy = TOKEN_RETRY, scope: str = GRAPH_SCOPE, http_client: Any = None) -> None:
        if (client_secret is None) == (certificate_path is None):
            raise ConfigError("Give exactly one credential for the app: a client secret (AZURE_CLIENT_SECRET) "
                              "or a certificate (AZURE_CLIENT_CERTIFICATE_PATH).")
        if not tenant_id or not client_id:
            raise ConfigError("A tenant id (AZURE_TENANT_ID) and a client id (AZURE_CLIENT_ID) are needed.")
        host = authority_host.rstrip("/")
        if not host.lower().startswith("https://"):
            raise ConfigError(f"The authority host must be an https URL (msal refuses others), got {authority_host!r}. "
                              "For an http emulator, use its token endpoint without msal.")
        super().__init__(clock=clock, sleep=sleep, retry=retry, secret=client_secret)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.authority = f"{host}/{tenant_id}"
        self.scope = scope
        self._credential: str | dict[str, str]
        if client_secret is not None:
            self._credential = client_secret
        else:
            assert certificate_path is not None
            self._credential = load_certificate(certificate_path, certificate_password)
        self._instance_discovery = host.lower() == PUBLIC_AUTHORITY_HOST
        self._verify = verify
        self._http_client = http_client
        self._http_cache: dict[str, Any] = {}
        self._app: Any = None

    def _build(self) -> Any:
        import msal

        kwargs: dict[str, Any] = {
            "client_credential": self._credential, "authority": self.authority, "verify": self._verify,
            "http_cache": self._http_cache, "token_cache": msal.TokenCache(),
        }
        if not self._instance_discovery:
            kwargs["instance_discovery"] = False
        if self._http_client is not None:
            kwargs["http_client"] = self._http_client
        return msal.ConfidentialClientApplication(self.client_id, **kwargs)

    def _acquire(self) -> dict[str, Any]:
        if self._app is None:
            self._app = self._build()
        return self._app.acquire_token_for_client(scopes=[self.scope])  # type: ignore[no-any-return]

    async def _fetch(self) -> _Fetched:
        import msal
        import requests

        try:
            result = await asyncio.to_thread(self._acquire)
        except msal.exceptions.MsalServiceError as exc:  # msal raises it on a 5xx
            return _Fetched(transient=f"token endpoint error: {_scrub(str(exc), self._secret)}")
        except requests.exceptions.RequestException as exc:
            return _Fetched(transient=f"connection error: {type(exc).__name__}")
        except OSError as exc:
            return _Fetched(transient=f"connection error: {type(exc).__name__}")
        except ValueError as exc:
            text = str(exc)
            if "Unable to get authority configuration" in text or "OIDC Discovery failed" in text:
                raise _auth_error({"error": "invalid_tenant", "error_codes": [90002],
                                   "error_description": f"Tenant '{self.tenant_id}' not found at {self.authority}."},
                                  secret=self._secret) from None
            if "json" in text.lower() or "expecting" in text.lower():
                return _Fetched(transient="the token endpoint answered something that is not JSON")
            raise ConfigError(_scrub(f"msal refused the configuration: {text}", self._secret)) from None
        if not isinstance(result, dict):
            return _Fetched(transient="no answer from msal")
        if "access_token" in result:
            refresh_on = result.get("refresh_on")
            refresh_in = None if refresh_on is None else max(0.0, float(refresh_on) - time.time())
            return _Fetched(token=str(result["access_token"]), expires_in=float(result.get("expires_in", 3599)),
                            refresh_in=refresh_in)
        if result.get("error") in TRANSIENT_ERRORS:
            return _Fetched(transient=str(result.get("error")))
        raise _auth_error(result, secret=self._secret)

    def _forget(self) -> None:
        # We are the cache: msal would otherwise hand back the token we were told to drop (a 401),
        # or a token it still deems fresh on its own clock. Its failure cache is dropped too: we
        # have already waited out the Retry-After it would replay.
        self._http_cache.clear()
        app = self._app
        if app is None:
            return
        cache = app.token_cache
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(entry)


def load_certificate(path: str | Path, password: str | None = None) -> dict[str, str]:
    """A PEM file holding the private key and the certificate → msal's credential
    (`public_certificate` makes msal sign with PS256 and send `x5c`, GRAPH.md §14)."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the certificate file {path}: {exc.__class__.__name__}. "
                          "AZURE_CLIENT_CERTIFICATE_PATH must name a PEM file with the private key and "
                          "the certificate.") from None
    key = re.search(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.*?-----END (?:RSA |EC |ENCRYPTED )?"
                    r"PRIVATE KEY-----", text, re.S)
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    if key is None or not certs:
        missing = "private key" if key is None else "certificate"
        raise ConfigError(f"The certificate file {path} holds no {missing}. It must be a PEM file with both the "
                          "private key and the certificate (e.g. cat key.pem cert.pem > app.pem).")
    credential = {"private_key": key.group(0) + "\n", "public_certificate": "\n".join(certs) + "\n"}
    if password:
        credential["passphrase"] = password
    return credential


# ---- plain client credentials (emulator, loopback) ---------------------------------------------------

class ClientCredentialsProvider(_RefreshingProvider):
    """Client credentials with a client secret over plain httpx, POSTed to `token_url`
    (`{authority}/{tenant}/oauth2/v2.0/token`): for the in-process emulator (pass its
    transport) and http loopback targets."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, *,
                 transport: httpx.AsyncBaseTransport | None = None, verify: bool | str | ssl.SSLContext = True,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 retry: RetryPolicy = TOKEN_RETRY, scope: str = GRAPH_SCOPE) -> None:
        super().__init__(clock=clock, sleep=sleep, retry=retry, secret=client_secret)
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
                      "scope": scope}
        self._http = httpx.AsyncClient(transport=transport, verify=tls_verify(verify), timeout=httpx.Timeout(30.0))

    async def _fetch(self) -> _Fetched:
        try:
            response = await self._http.post(self.token_url, data=self._form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            return _Fetched(transient=f"connection error: {type(exc).__name__}")
        try:
            body = response.json()
        except ValueError:
            body = None
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            refresh_in = body.get("refresh_in")
            return _Fetched(token=str(body["access_token"]), expires_in=float(body.get("expires_in", 3599)),
                            refresh_in=None if refresh_in is None else float(refresh_in))
        if response.status_code == 429 or response.status_code >= 500 or not isinstance(body, dict):
            return _Fetched(transient=f"HTTP {response.status_code}", retry_after=retry_after)
        if body.get("error") in TRANSIENT_ERRORS:
            return _Fetched(transient=str(body.get("error")), retry_after=retry_after)
        raise _auth_error(body, secret=self._form["client_secret"])

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


# ---- the preflight -------------------------------------------------------------------------------------

def token_roles(access_token: str) -> frozenset[str]:
    """The application permissions (`roles`) of an access token, read from its JWT payload
    without verifying it (the preflight only reads what Graph will enforce). A token that is
    not a JWT gives no roles."""
    parts = access_token.split(".")
    if len(parts) < 2:
        return frozenset()
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return frozenset()
    roles = payload.get("roles") if isinstance(payload, dict) else None
    if not isinstance(roles, list):
        return frozenset()
    return frozenset(str(r) for r in roles)


# Broader permissions rank higher; everything unlisted is a narrow, least-privileged one.
_BREADTH = {"User.Read.All": 1, "Directory.Read.All": 2, "User.ReadWrite.All": 3, "Directory.ReadWrite.All": 4}


def missing_permissions(roles: Collection[str], needed: Sequence[Collection[str]]) -> list[str]:
    """For each requirement (a set of acceptable permissions) that `roles` does not meet, the
    least privileged permission that would meet it. A list or tuple is taken as ordered,
    least privileged first; a set is ranked (narrow permissions before `User.ReadWrite.All`
    and `Directory.*`)."""
    have = {r.lower() for r in roles}
    missing: list[str] = []
    for acceptable in needed:
        if any(p.lower() in have for p in acceptable):
            continue
        if isinstance(acceptable, (list, tuple)):
            least = acceptable[0] if acceptable else None
        else:
            least = min(acceptable, key=lambda p: (_BREADTH.get(p, 0), p), default=None)
        if least is not None and least not in missing:
            missing.append(least)
    return missing


__all__ = [
    "ClientCredentialsProvider", "GRAPH_SCOPE", "MsalTokenProvider", "StaticTokenProvider", "TokenProvider",
    "load_certificate", "missing_permissions", "token_roles",
]
