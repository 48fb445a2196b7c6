"""A paced, authenticated Graph client for a target, and what a run learns from the tenant
first: its token's permissions, its default domain, its extensions app.

`open_connection(target)` builds it, as `entra-batch` does for every verb: msal for a
tenant, a plain client-credentials request for an http loopback emulator (msal refuses http
authorities), an `AppPool` when the profile lists several apps. `transport` carries the
requests of both the client and the token endpoint when given: the CLI passes the built-in
emulator's in-process transport for `--target local`, tests pass mocks. This module never
imports the emulator.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from batch.auth import (
    ClientCredentialsProvider,
    Grants,
    MsalTokenProvider,
    TokenProvider,
    missing_for,
    token_grants,
)
from batch.auth.azure_identity import AzureIdentityProvider, azure_cli_credential, managed_identity_credential
from batch.auth.device_code import DeviceCodeProvider
from batch.config import GUID, AppCredential, Target, plain_http_to_remote
from batch.errors import AuthError, ConfigError, GraphRequestFailed, PermissionMissing
from batch.graph import AppPool, GraphCall, GraphClient, GraphResult, ObservedTokenProvider, Observer, Pacer
from batch.run.token_cache import TokenCacheFile


def token_provider_for(target: Target, transport: httpx.AsyncBaseTransport | None = None) -> TokenProvider:
    """The token provider of the target's sign-in method (`Target.auth`): msal for a secret, a
    certificate and a federated token (workload identity) and for device code; azure-identity
    for the Azure CLI and managed identity; a plain client-credentials request for an http
    loopback emulator with a secret (msal refuses http authorities)."""
    assert target.tenant_id
    verify: bool | str = str(target.ca_file) if target.ca_file else True
    if target.auth == "azure-cli":
        return AzureIdentityProvider("azure-cli", azure_cli_credential(target.tenant_id), tenant_id=target.tenant_id,
                                     sources=target.sources)
    if target.auth == "managed-identity":
        return AzureIdentityProvider("managed-identity", managed_identity_credential(target.client_id, verify),
                                     tenant_id=target.tenant_id, client_id=target.client_id, sources=target.sources)
    if target.authority_host.startswith("http://"):
        if target.auth != "secret":
            raise ConfigError(f"--auth {target.auth} needs an https authority host (msal refuses http): for the "
                              "emulator, serve it with `entra-batch emulator --tls` and use the https lines it prints")
        # msal refuses http authorities; a plain client-credentials request serves a loopback emulator.
        assert target.client_id
        return ClientCredentialsProvider(f"{target.authority_host}/{target.tenant_id}/oauth2/v2.0/token",
                                         target.client_id, target.client_secret or "", verify=verify,
                                         transport=transport, sources=target.sources)
    assert target.client_id
    if target.auth == "device-code":
        cache = TokenCacheFile(target.token_cache, target.tenant_id, target.client_id) if target.token_cache else None
        return DeviceCodeProvider(target.tenant_id, target.client_id, cache=cache, prompt=target.device_code_prompt,
                                  authority_host=target.authority_host, verify=verify, sources=target.sources)
    if target.auth == "workload-identity":
        return MsalTokenProvider(target.tenant_id, target.client_id, federated_token_file=target.federated_token_file,
                                 authority_host=target.authority_host, verify=verify, sources=target.sources)
    return MsalTokenProvider(target.tenant_id, target.client_id, client_secret=target.client_secret,
                             certificate_path=target.certificate_path,
                             certificate_password=target.certificate_password,
                             send_certificate_chain=target.send_certificate_chain,
                             authority_host=target.authority_host, verify=verify, sources=target.sources)


def pool_app_target(target: Target, app: AppCredential) -> Target:
    """The target as one app of a pool signs in: its own id and credential (a secret, or a PEM
    certificate: a pool app's table holds no password, and sends no chain), the profile's tenant,
    hosts and trust. Nothing of the first app's credential carries over."""
    return replace(target, client_id=app.client_id, client_secret=app.client_secret,
                   certificate_path=app.certificate_path, certificate_password=None, send_certificate_chain=False,
                   auth="certificate" if app.certificate_path else "secret", sources=app.sources)


def refuse_plain_http(target: Target, transport: httpx.AsyncBaseTransport | None) -> None:
    """The second lock on plain http (the first is `batch.config.checked_url`, for what a
    user's settings name): a `Target` built by hand in Python, or the built-in emulator's
    `http://emulator.local` without its in-process transport, must not send the secret, the
    token and the passwords in clear over a network. A transport other than httpx's network
    one keeps the requests in this process (the emulator's, a mock), so anything goes there."""
    if transport is not None and not isinstance(transport, httpx.AsyncHTTPTransport):
        return
    for url, what in ((target.graph_url, "the Graph URL"), (target.authority_host, "the authority host")):
        if plain_http_to_remote(url):
            host = urlsplit(url).hostname or url
            raise ConfigError(f"{what} is plain http to {host}, which would send the client secret, the access token "
                              "and every password unencrypted: use https (plain http is only for an emulator on "
                              "this machine: localhost, 127.0.0.0/8 or ::1, or the built-in emulator in process)")


def _trust(target: Target) -> ssl.SSLContext | bool:
    if target.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(target.ca_file))
    except (OSError, ssl.SSLError, ValueError):
        raise ConfigError(f"The CA file {target.ca_file} (SSL_CERT_FILE or a profile's ca_file) cannot be used: "
                          "point it at a PEM file of trusted CA certificates") from None


def target_identity(target: Target) -> dict[str, Any]:
    """What a run folder (or an export's state file) remembers of its target, to refuse
    going on against another one. (Run folders made before the local target named its
    tenant hold `tenant_id: None` for `local`; `same_target` accepts them.)"""
    return {"kind": target.kind, "tenant_id": target.tenant_id, "graph_url": target.graph_url}


def same_target(saved: dict[str, Any], now: dict[str, Any]) -> bool:
    if saved.get("kind") != now.get("kind"):
        return False
    return saved.get("tenant_id") == now.get("tenant_id") or (saved.get("kind") == "local" and not saved.get("tenant_id"))


@dataclass(frozen=True)
class TenantNames:
    """Who a run is about to write to, for the line that names it before anything is sent and
    for summary.json's `tenant`: what `GET /organization` and the token's claims say."""

    tenant_id: str
    display_name: str | None
    default_domain: str | None
    app_name: str | None
    client_id: str
    local: bool = False
    administrator: str | None = None  # the signed-in administrator's UPN (device code, Azure CLI); None: an app

    def as_json(self) -> dict[str, Any]:
        named = {"id": self.tenant_id, "display_name": self.display_name, "default_domain": self.default_domain,
                 "app_name": self.app_name, "client_id": self.client_id, "local": self.local}
        if self.administrator:  # signed in as a person: who
            named["administrator"] = self.administrator
        return named

    def words(self) -> str:
        """`Contoso Customers (contoso.onmicrosoft.com, tenant 1234…) as app entra-batch (client id 5678…)`."""
        where = ", ".join(x for x in (self.default_domain, f"tenant {self.tenant_id}") if x)
        if self.display_name:
            tenant = f"{self.display_name} ({where})"
        elif self.default_domain:
            tenant = f"the tenant {self.default_domain} (tenant {self.tenant_id})"
        else:
            tenant = f"tenant {self.tenant_id}"
        app = f"app {self.app_name} (client id {self.client_id})" if self.app_name else f"the app with client id " \
            f"{self.client_id}"
        if self.administrator:
            app = f"administrator {self.administrator} (signed in through {app})"
        return f"{'the built-in emulator: ' if self.local else ''}{tenant} as {app}"


def token_claims(access_token: str) -> dict[str, Any]:
    """The claims of a JWT access token, read without verifying it (only to name things)."""
    parts = access_token.split(".")
    if len(parts) < 2:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass
class Connection:
    """An open client on a target."""

    target: Target
    client: GraphClient
    providers: list[TokenProvider]
    client_ids: list[str] = field(default_factory=list)
    _organization: GraphResult | None = field(default=None, repr=False)
    _renewed: bool = field(default=False, repr=False)  # a person's token was renewed once for the preflight

    async def organization(self) -> GraphResult:
        """`GET /organization` (once per connection): the tenant's names and domains."""
        if self._organization is None:
            self._organization = await self.client.request(
                GraphCall("GET", "/organization?$select=id,displayName,verifiedDomains"))
        return self._organization

    async def names(self) -> TenantNames:
        """The tenant and app this connection writes to. A token that cannot read
        `/organization` (no Organization.Read.All) still names the tenant by its id and the
        domain the run uses."""
        claims = token_claims(await self.providers[0].token())
        grants = token_grants(await self.providers[0].token())
        result = await self.organization()
        display_name = None
        domain = self.target.domain
        if result.status == 200 and isinstance(result.body, dict):
            for org in result.body.get("value") or []:
                if isinstance(org, dict):
                    display_name = str(org["displayName"]) if org.get("displayName") else None
                    domain = domain or _default_of(org)
        app_name = claims.get("app_displayname")
        return TenantNames(tenant_id=str(self.target.tenant_id or claims.get("tid") or ""), display_name=display_name,
                           default_domain=domain, app_name=str(app_name) if app_name else None,
                           client_id=str((self.client_ids[0] if self.client_ids else "") or claims.get("appid") or ""),
                           local=self.target.kind == "local",
                           administrator=(grants.upn or grants.object_id) if grants.delegated else None)

    @property
    def extensions_app_id(self) -> str | None:
        return self.target.extensions_app_id

    async def grants(self) -> Grants:
        """What the (first) token grants: an app's permissions, or a person's scopes and roles."""
        return token_grants(await self.providers[0].token())

    async def check_permissions(self, needed: Sequence[frozenset[str]]) -> None:
        """Raise `PermissionMissing` (exit 3) naming what any token lacks for `needed`: for an
        app, its application permissions; for a signed-in administrator, the delegated scopes
        and the directory role (`batch.auth.permissions.missing_for`). First, `AuthError` (exit
        3) when a token is for another tenant than the target's (`check_tenant`)."""
        for provider, client_id in zip(self.providers, self.client_ids):
            grants = token_grants(await provider.token())
            await self.check_tenant(grants)
            missing = missing_for(grants, needed)
            if missing and grants.delegated and not self._renewed:
                # A person's token may predate a consent or a role just granted (a cached sign-in lives
                # for up to an hour): ask once (per connection) for a fresh one before saying what is missing.
                self._renewed = True
                provider.invalidate()
                grants = token_grants(await provider.token())
                missing = missing_for(grants, needed)
            if missing:
                person = (grants.upn or grants.object_id or "(unknown)") if grants.delegated else None
                raise PermissionMissing(missing.permissions, client_id=client_id or grants.app_id or None,
                                        roles=missing.roles, person=person)

    async def check_tenant(self, grants: Grants) -> None:
        """`AuthError` (exit 3) when the token speaks for another tenant than the one the target
        names: a managed identity, the Azure CLI or a cached sign-in answer for the tenant they
        belong to, which may be the organisation's workforce tenant rather than the customer
        tenant named by AZURE_TENANT_ID (Graph then writes wherever the token belongs). A tenant
        named by its id is compared with the token's `tid`; one named by a domain with the
        verified domains of `GET /organization` (the token's own tenant), when they can be read."""
        named, found = (self.target.tenant_id or "").strip().lower(), (grants.tenant_id or "").lower()
        if self.target.kind == "local" or not named or not found or named.replace("-", "") == found.replace("-", ""):
            return
        if GUID.match(named):
            mismatch = True
        else:
            result = await self.organization()
            domains = {str(d.get("name", "")).lower() for org in _values(result)
                       for d in org.get("verifiedDomains") or [] if isinstance(d, dict)}
            mismatch = bool(domains) and named not in domains
        if mismatch:
            raise AuthError(f"The token of --auth {self.target.auth} is for tenant {grants.tenant_id}, not for "
                            f"{self.target.tenant_id}, the tenant named by {self.target.sources.tenant_id}: nothing was "
                            "sent. Sign in to that tenant (a managed identity or the Azure CLI answer for the tenant "
                            "they belong to), or name the tenant the token is for.")

    async def default_domain(self) -> str:
        if self.target.domain:
            return self.target.domain
        return domain_of(await self.organization())


@asynccontextmanager
async def open_connection(target: Target, *, transport: httpx.AsyncBaseTransport | None = None,
                          concurrency: int = 4, priority: str = "normal",
                          pacing: bool = True, observer: Observer | None = None) -> AsyncIterator[Connection]:
    """A client for `target`, closed (with its token providers) when the block ends.
    `transport` replaces the network for Graph and the token endpoint (the in-process
    emulator, a mock); `pacing=False` sends without pacing (benchmarks measure the tool's
    overhead); `observer` is told every request and token request (`--verbose`)."""
    if not target.tenant_id or (not target.client_id and target.auth in ("secret", "certificate")):
        raise ConfigError("the target names no tenant and app: 'local' is the command line's built-in emulator; "
                          "from Python, pass a Graph URL with credentials, or the emulator's own target and "
                          "transport (README, Python API)")
    refuse_plain_http(target, transport)
    verify = _trust(target)
    providers: list[TokenProvider] = []
    client: GraphClient | None = None
    try:
        provider = _observed(token_provider_for(target, transport), observer, target.client_id)
        pool = [_observed(token_provider_for(pool_app_target(target, app), transport), observer, app.client_id)
                for app in target.extra_apps]
        providers.extend([provider, *pool])
        pacer: Pacer | AppPool | None = Pacer() if pacing else None
        if pool:
            pacer = AppPool.of([provider, *pool])
        client = GraphClient(
            target.graph_url, None if pool else provider, pacer=pacer,
            transport=transport,
            verify=verify,
            low_priority=priority == "low",
            max_connections=max(4, concurrency * 2),
            redact=[target.client_secret, target.certificate_password,
                    *(app.client_secret for app in target.extra_apps)],
            observer=observer,
        )
        client_ids = [target.client_id or ""] + [app.client_id for app in target.extra_apps]
        yield Connection(target, client, providers, client_ids)
    finally:
        if client is not None:
            await client.aclose()
        for each in providers:
            closer = getattr(each, "aclose", None)
            if closer is not None:
                await closer()


def _values(result: GraphResult) -> list[dict[str, Any]]:
    """The objects of a 200 collection answer (none otherwise)."""
    if result.status != 200 or not isinstance(result.body, dict):
        return []
    return [each for each in result.body.get("value") or [] if isinstance(each, dict)]


def _default_of(org: dict[str, Any]) -> str | None:
    for domain in org.get("verifiedDomains") or []:
        if isinstance(domain, dict) and domain.get("isDefault") and domain.get("name"):
            return str(domain["name"])
    return None


def _observed(provider: TokenProvider, observer: Observer | None, client_id: str | None) -> TokenProvider:
    return provider if observer is None else ObservedTokenProvider(provider, observer, client_id or "")


async def default_domain(client: GraphClient) -> str:
    """The tenant's default domain, the issuer of local sign-in names, from `GET /organization`."""
    return domain_of(await client.request(GraphCall("GET", "/organization?$select=verifiedDomains")))


def domain_of(result: GraphResult) -> str:
    """The default domain from an answer of `GET /organization`, or the run-level error."""
    if result.status == 200 and isinstance(result.body, dict):
        for org in result.body.get("value") or []:
            found = _default_of(org) if isinstance(org, dict) else None
            if found:
                return found
    if result.status == 0 or result.status >= 500:
        raise GraphRequestFailed("Reading the tenant's default domain (GET /organization)", status=result.status,
                                 code=result.error_code, detail=result.error_message)
    raise ConfigError(
        "create needs the tenant's default domain (the issuer of sign-in names) and could not read it from "
        f"GET /organization ({result.error_code or result.status}); pass --domain contoso.onmicrosoft.com "
        "or set ENTRA_BATCH_DOMAIN")


__all__ = ["Connection", "TenantNames", "default_domain", "domain_of", "token_claims", "open_connection", "refuse_plain_http", "same_target",
           "target_identity", "token_provider_for"]
