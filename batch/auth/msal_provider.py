"""Client credentials for a real tenant through msal (GRAPH.md §10, §14): a client secret, a
certificate (PEM or PFX, with or without its chain in x5c), or a federated token (workload
identity: the client assertion read from AZURE_FEDERATED_TOKEN_FILE), one `ConfidentialClientApplication` for the whole run, and msal's answers and
exceptions read into the refreshing provider's terms (a token, a transient failure to retry,
or a refusal with its remedy).

msal's HTTP client is a `requests.Session` of ours (`token_session`): requests lets
REQUESTS_CA_BUNDLE from the environment win over a session's `verify`, so the CA file of the
target (a profile's `ca_file`, SSL_CERT_FILE) is given with every request instead, and every
request has a timeout (msal's own session has none: a silent token endpoint would hang the
run). Proxies from the environment are still used."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from batch.auth.certificate import client_assertion_signer, load_certificate, refuse_expired
from batch.auth.errors import TRANSIENT_ERRORS, scrub
from batch.auth.providers import (
    GRAPH_SCOPE,
    TOKEN_RETRY,
    Fetched,
    RefreshingProvider,
    connect_failure,
    tls_failure,
)
from batch.config import ENVIRONMENT, Sources
from batch.errors import ConfigError
from batch.graph.retry import RetryPolicy

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
TOKEN_REQUEST_TIMEOUT = (10.0, 30.0)  # seconds to connect, and to wait for an answer


def token_session(verify: bool | str) -> Any:
    """A `requests.Session` for msal that trusts `verify` (a CA file or directory; True: the
    defaults, REQUESTS_CA_BUNDLE included) on every request, whatever the environment says,
    with a timeout, and with msal's own minimal retry of a failed connection."""
    import requests

    session = requests.Session()
    send = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TOKEN_REQUEST_TIMEOUT)
        if verify is not True:
            kwargs["verify"] = verify  # per request: it wins over REQUESTS_CA_BUNDLE (session.verify does not)
        return send(method, url, *args, **kwargs)

    session.request = request  # type: ignore[method-assign,assignment]
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def https_authority(authority_host: str, hint: str) -> str:
    """`authority_host` without its trailing slash, or `ConfigError`: msal refuses any authority
    but https."""
    host = authority_host.rstrip("/")
    if not host.lower().startswith("https://"):
        raise ConfigError(f"The authority host must be an https URL (msal refuses others), got {authority_host!r}. "
                          f"{hint}")
    return host


class MsalTokenProvider(RefreshingProvider):
    """Client credentials through msal: a secret, or a PEM certificate with its private key.

    One `ConfidentialClientApplication` is built (lazily, in a thread: msal's construction
    already calls the network) and reused. msal refuses http authorities; use
    `ClientCredentialsProvider` for http loopback targets."""

    def __init__(self, tenant_id: str, client_id: str, *, client_secret: str | None = None,
                 certificate_path: str | Path | None = None, certificate_password: str | None = None,
                 send_certificate_chain: bool = False, federated_token_file: str | Path | None = None,
                 authority_host: str = PUBLIC_AUTHORITY_HOST, verify: bool | str = True,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 retry: RetryPolicy = TOKEN_RETRY, scope: str = GRAPH_SCOPE, http_client: Any = None,
                 sources: Sources = ENVIRONMENT) -> None:
        given = [c for c in (client_secret, certificate_path, federated_token_file) if c is not None]
        if len(given) != 1:
            raise ConfigError("Give exactly one credential for the app: a client secret (AZURE_CLIENT_SECRET), "
                              "a certificate (AZURE_CLIENT_CERTIFICATE_PATH) or a federated token file "
                              "(AZURE_FEDERATED_TOKEN_FILE).")
        if not tenant_id or not client_id:
            raise ConfigError("A tenant id (AZURE_TENANT_ID) and a client id (AZURE_CLIENT_ID) are needed.")
        host = https_authority(authority_host, "For an http emulator, use its token endpoint without msal.")
        super().__init__(clock=clock, sleep=sleep, retry=retry, secret=client_secret or certificate_password,
                         authority_url=host, sources=sources, ca_path=verify if isinstance(verify, str) else None)
        self._msal_state(host, tenant_id, client_id, scope, verify, http_client)
        self._credential: str | dict[str, Any]
        if client_secret is not None:
            self._credential = client_secret
        elif certificate_path is not None:
            certificate = load_certificate(certificate_path, certificate_password)
            refuse_expired(certificate_path, certificate, sources)  # stop here, not at the token endpoint
            # With the chain: msal signs PS256 with x5t#S256 and x5c. Without: the same signature,
            # no x5c (an app that trusts its certificate by subject name and issuer needs the chain).
            self._credential = certificate if send_certificate_chain else {
                "client_assertion": client_assertion_signer(certificate, client_id, self._token_endpoint)}
        else:
            assert federated_token_file is not None
            self._credential = {"client_assertion": federated_assertion(Path(federated_token_file), sources)}
            self.method = "workload-identity"

    def _msal_state(self, host: str, tenant_id: str, client_id: str, scope: str, verify: bool | str,
                    http_client: Any) -> None:
        """What every msal application of ours keeps: who and where it asks, its HTTP session
        (ours unless given), msal's HTTP cache, and the application, built on first use."""
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.authority = f"{host}/{tenant_id}"
        self.scope = scope
        self._instance_discovery = host.lower() == PUBLIC_AUTHORITY_HOST
        self._verify = verify
        self._own_session = http_client is None
        self._http_client = http_client
        self._http_cache: dict[str, Any] = {}
        self._app: Any = None

    def _token_endpoint(self) -> str:
        """The token endpoint msal posts to (the audience of a client assertion)."""
        if self._app is not None:
            return str(self._app.authority.token_endpoint)
        return f"{self.authority}/oauth2/v2.0/token"

    def _build(self) -> Any:
        import msal

        if self._http_client is None:
            self._http_client = token_session(self._verify)
        kwargs: dict[str, Any] = {
            "client_credential": self._credential, "authority": self.authority, "http_client": self._http_client,
            "http_cache": self._http_cache, "token_cache": msal.TokenCache(),
        }
        if not self._instance_discovery:
            kwargs["instance_discovery"] = False
        return msal.ConfidentialClientApplication(self.client_id, **kwargs)

    def _acquire(self) -> dict[str, Any]:
        if self._app is None:
            self._app = self._build()
        result: dict[str, Any] = self._app.acquire_token_for_client(scopes=[self.scope])  # msal is untyped
        return result

    async def _fetch(self) -> Fetched:
        import msal
        import requests

        try:
            result = await asyncio.to_thread(self._acquire)
        except msal.exceptions.MsalServiceError as exc:  # msal raises it on a 5xx
            return Fetched(transient=f"token endpoint error: {scrub(str(exc), self._secret)}")
        except requests.exceptions.ConnectionError as exc:
            failure = tls_failure(exc)  # an SSLError is a ConnectionError, but no retry helps
            if failure is not None:
                raise self._untrusted(failure) from None
            cannot = None if isinstance(exc, requests.exceptions.Timeout) else connect_failure(exc)
            return Fetched(transient=f"connection error: {type(exc).__name__}", unreachable=cannot)
        except requests.exceptions.RequestException as exc:
            return Fetched(transient=f"connection error: {type(exc).__name__}")
        except OSError as exc:
            return Fetched(transient=f"connection error: {type(exc).__name__}")
        except ValueError as exc:
            text = str(exc)
            if "Unable to get authority configuration" in text or "OIDC Discovery failed" in text:
                raise self._refused({"error": "invalid_tenant", "error_codes": [90002],
                                     "error_description": f"Tenant '{self.tenant_id}' not found at {self.authority}."}
                                    ) from None
            if "json" in text.lower() or "expecting" in text.lower():
                return Fetched(transient="the token endpoint answered something that is not JSON")
            raise ConfigError(scrub(f"msal refused the configuration: {text}", self._secret)) from None
        if not isinstance(result, dict):
            return Fetched(transient="no answer from msal")
        if "access_token" in result:
            refresh_on = result.get("refresh_on")
            refresh_in = None if refresh_on is None else max(0.0, float(refresh_on) - time.time())
            return Fetched(token=str(result["access_token"]), expires_in=float(result.get("expires_in", 3599)),
                            refresh_in=refresh_in)
        if result.get("error") in TRANSIENT_ERRORS:
            return Fetched(transient=str(result.get("error")))
        raise self._refused(result)

    def _tenant(self) -> str:
        return self.tenant_id

    def _client_id(self) -> str:
        return self.client_id

    async def aclose(self) -> None:
        """Close the HTTP session this provider made (one given to it is its owner's)."""
        if self._own_session and self._http_client is not None:
            self._http_client.close()

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


def federated_assertion(path: Path, sources: Sources = ENVIRONMENT) -> Callable[[], str]:
    """Workload identity federation: the client assertion is the token in `path`, read again
    for each token request (Kubernetes rotates the projected token in place; GitHub Actions'
    is written once per job) — "Workload identity federation", and azure-identity's
    WorkloadIdentityCredential, which reads AZURE_FEDERATED_TOKEN_FILE the same way."""
    def read() -> str:
        try:
            with open(path, encoding="utf-8") as file:
                token = file.read(64 * 1024).strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigError(f"Cannot read the federated token file {path} ({sources.federated_token_file}): "
                              f"{reason}. It must hold the token that GitHub Actions or Kubernetes writes.") from None
        if not token:
            raise ConfigError(f"The federated token file {path} ({sources.federated_token_file}) is empty.")
        return token

    return read


__all__ = ["PUBLIC_AUTHORITY_HOST", "TOKEN_REQUEST_TIMEOUT", "MsalTokenProvider", "federated_assertion",
           "token_session", "https_authority"]
