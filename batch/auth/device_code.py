"""Device code: the administrator signs in as themselves (delegated permissions, their
directory role), as Graph PowerShell's `Connect-MgGraph` does — "OAuth 2.0 device
authorization grant" (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code).

The client asks the tenant's device code endpoint for a code, the CLI prints the code and the
page to enter it on (stderr), and msal polls the token endpoint until the person has signed in,
declined, or let the code expire (15 minutes). The tokens (an access token and a refresh
token) go to a token cache file of the person's, so that the next run signs in silently with
the refresh token and asks for no code; a refresh token that has expired or been revoked asks
again.

Why plain msal (`PublicClientApplication`) and not azure-identity's `DeviceCodeCredential`:
the persistence of azure-identity (`TokenCachePersistenceOptions`, through msal-extensions)
decides itself where the cache goes and how (the keyring through libsecret, or with
`allow_unencrypted_storage` a file whose checks are not ours), which we cannot make 0600 in a
0700 folder with O_EXCL/O_NOFOLLOW, nor refuse when another user could read it. msal's
`SerializableTokenCache` is what both build on; we keep its text in our own file
(`TokenCacheFile`, written by `batch.run.token_cache` with the run folders' rules). The
cache holds the tokens of a public client: there is no client secret to hold.

Without anyone at a terminal (no prompt) and without a cached sign-in, the provider stops at
once (`AuthError`, exit 3) instead of waiting 15 minutes for a code nobody will see.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from batch.auth.errors import TRANSIENT_ERRORS
from batch.auth.msal_provider import PUBLIC_AUTHORITY_HOST, MsalTokenProvider, https_authority
from batch.auth.providers import GRAPH_SCOPE, TOKEN_RETRY, Fetched, RefreshingProvider
from batch.config import ENVIRONMENT, GRAPH_COMMAND_LINE_TOOLS, Sources
from batch.errors import AuthError, ConfigError
from batch.graph.retry import RetryPolicy


class TokenCacheFile(Protocol):
    """Where msal's serialized token cache is kept between runs."""

    def load(self) -> str | None:
        """The cache's text, or None when there is none yet."""

    def save(self, text: str) -> None:
        """Replace the cache's text."""

    def describe(self) -> str:
        """Where it is, for messages."""


class DeviceCodeProvider(MsalTokenProvider):
    """Delegated tokens through the device authorization grant, cached across runs."""

    method = "device-code"

    def __init__(self, tenant_id: str, client_id: str, *, cache: TokenCacheFile | None,
                 prompt: Callable[[str], None] | None, authority_host: str = PUBLIC_AUTHORITY_HOST,
                 verify: bool | str = True, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, retry: RetryPolicy = TOKEN_RETRY,
                 scope: str = GRAPH_SCOPE, http_client: Any = None, sources: Sources = ENVIRONMENT) -> None:
        if not tenant_id or not client_id:
            raise ConfigError("device-code needs a tenant id (AZURE_TENANT_ID) and a public client's id.")
        host = https_authority(authority_host, "For the emulator, serve it with `entra-batch emulator --tls`.")
        RefreshingProvider.__init__(self, clock=clock, sleep=sleep, retry=retry, secret=None, authority_url=host,
                                    sources=sources, ca_path=verify if isinstance(verify, str) else None)
        self._msal_state(host, tenant_id, client_id, scope, verify, http_client)
        self._cache_file = cache
        self._prompt = prompt
        self._stop = threading.Event()
        self.asked = 0  # how many codes were asked for (a second run with a cache asks none)

    def _build(self) -> Any:
        import msal

        from batch.auth.msal_provider import token_session

        if self._http_client is None:
            self._http_client = token_session(self._verify)
        cache = msal.SerializableTokenCache()
        text = self._cache_file.load() if self._cache_file is not None else None
        if text:
            try:
                cache.deserialize(text)
            except ValueError:
                pass  # a damaged cache is as good as none: sign in again, and it is rewritten
        kwargs: dict[str, Any] = {"authority": self.authority, "http_client": self._http_client,
                                  "http_cache": self._http_cache, "token_cache": cache}
        if not self._instance_discovery:
            kwargs["instance_discovery"] = False
        return msal.PublicClientApplication(self.client_id, **kwargs)

    def _save(self) -> None:
        cache = self._app.token_cache
        if self._cache_file is not None and cache.has_state_changed:
            self._cache_file.save(cache.serialize())
            cache.has_state_changed = False

    def _acquire(self) -> dict[str, Any]:
        if self._app is None:
            self._app = self._build()
        app = self._app
        lapsed: list[str] = []  # cached sign-ins whose refresh token no longer works
        for account in app.get_accounts():
            if account.get("realm") not in (None, "", self.tenant_id) and _is_guid(self.tenant_id):
                continue
            silent = app.acquire_token_silent_with_error([self.scope], account=account)
            if silent and "access_token" in silent:
                self._save()
                result: dict[str, Any] = silent
                return result
            if silent and silent.get("error") in TRANSIENT_ERRORS:
                return dict(silent)
            lapsed.append(str(account.get("username") or account.get("home_account_id") or "?"))
        if self._prompt is None:
            how = self._sources.method("device-code")
            where = self._cache_file.describe() if self._cache_file is not None else "no cache"
            if lapsed:
                raise AuthError(
                    f"{how}: the cached sign-in of {', '.join(lapsed)} for tenant {self.tenant_id} "
                    f"({where}) has expired or was revoked, and no one is at a terminal to enter a code. Run the "
                    "command once at a terminal to sign in again.", error="interaction_required")
            raise AuthError(
                f"{how}: no signed-in administrator is cached for tenant {self.tenant_id} ({where}), "
                "and no one is at a terminal to enter a code. Run the command once at a terminal to sign in (the "
                "next runs reuse the sign-in), or, for unattended runs, use --auth workload-identity, "
                f"managed-identity, certificate or secret.{self._own_app_hint()}", error="interaction_required")
        flow = app.initiate_device_flow(scopes=[self.scope])
        if "user_code" not in flow:
            return dict(flow)  # the endpoint's refusal (public client flows off, no such app, ...)
        self.asked += 1
        self._prompt(str(flow.get("message") or f"To sign in, open {flow.get('verification_uri')} and enter the "
                                                  f"code {flow['user_code']}"))
        result = app.acquire_token_by_device_flow(
            flow, exit_condition=lambda f: self._stop.is_set() or f.get("expires_at", 0) < time.time())
        if isinstance(result, dict) and "access_token" in result:
            self._save()
        return dict(result) if isinstance(result, dict) else {}

    def _own_app_hint(self) -> str:
        """Without a terminal nothing is asked of the identity platform, so whether the app is a
        public client cannot be known; when it is not the default public client, say so, as the
        likelier cause when the environment is a confidential app's (an emulator's exports)."""
        if self.client_id == GRAPH_COMMAND_LINE_TOOLS:
            return ""
        return (f" Note: {self._sources.client_id} names the app {self.client_id}, which device code signs in "
                "through: it must be a public client ('Allow public client flows'); if it is an app with a secret "
                "or certificate, unset it to sign in through Microsoft Graph Command Line Tools.")

    async def _fetch(self) -> Fetched:
        try:
            return await super()._fetch()
        except asyncio.CancelledError:
            self._stop.set()  # Ctrl-C: msal's polling loop ends at its next look
            raise


def _is_guid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12]


__all__ = ["DeviceCodeProvider", "TokenCacheFile"]
