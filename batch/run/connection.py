"""A paced, authenticated Graph client for a target, and what a run learns from the tenant
first: its token's permissions, its default domain, its extensions app.

`open_connection(target)` builds it, as `entra-batch` does for every verb: the built-in
emulator in process for `--target local`, msal (or a plain client-credentials request for
an http loopback emulator) otherwise, an `AppPool` when the profile lists several apps.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from batch.auth import (
    ClientCredentialsProvider,
    MsalTokenProvider,
    TokenProvider,
    missing_permissions,
    token_roles,
)
from batch.config import Target, emulator_db_path
from batch.errors import ConfigError, GraphRequestFailed, PermissionMissing
from batch.graph import AppPool, GraphCall, GraphClient, Pacer


class LocalEmulator:
    """The in-process emulator of `--target local`, on the directory under ENTRA_BATCH_HOME."""

    def __init__(self, settings: Any = None) -> None:
        from batch.emulator import EmulatorApp, Store
        from batch.emulator.inprocess import EmulatorTransport

        self.store = Store(emulator_db_path())
        self.app = EmulatorApp(self.store, settings)
        self.transport = EmulatorTransport(self.app)
        tenant = self.store.tenant(self.store.default_app().tenant_id)
        assert tenant is not None
        self.tenant = tenant

    def token_provider(self) -> TokenProvider:
        app = self.store.default_app()
        return ClientCredentialsProvider(f"http://emulator.local/{self.tenant.id}/oauth2/v2.0/token",
                                         app.client_id, app.secret or "", transport=self.transport)

    def close(self) -> None:
        self.store.close()


def token_provider_for(target: Target) -> TokenProvider:
    assert target.tenant_id and target.client_id
    verify: bool | str = str(target.ca_file) if target.ca_file else True
    if target.authority_host.startswith("http://"):
        # msal refuses http authorities; a plain client-credentials request serves a loopback emulator.
        return ClientCredentialsProvider(f"{target.authority_host}/{target.tenant_id}/oauth2/v2.0/token",
                                         target.client_id, target.client_secret or "", verify=verify)
    return MsalTokenProvider(target.tenant_id, target.client_id, client_secret=target.client_secret,
                             certificate_path=target.certificate_path, authority_host=target.authority_host,
                             verify=verify)


def target_identity(target: Target) -> dict[str, Any]:
    """What a run folder (or an export's state file) remembers of its target, to refuse
    going on against another one."""
    return {"kind": target.kind, "tenant_id": target.tenant_id, "graph_url": target.graph_url}


@dataclass
class Connection:
    """An open client on a target. `local` is set for the in-process emulator."""

    target: Target
    client: GraphClient
    providers: list[TokenProvider]
    local: LocalEmulator | None = None
    client_ids: list[str] = field(default_factory=list)

    @property
    def extensions_app_id(self) -> str | None:
        return self.target.extensions_app_id or (self.local.tenant.extensions_app_id if self.local else None)

    async def check_permissions(self, needed: Sequence[frozenset[str]]) -> None:
        """Raise `PermissionMissing` (exit 3) naming what any app's token lacks for `needed`."""
        for provider, client_id in zip(self.providers, self.client_ids):
            missing = missing_permissions(token_roles(await provider.token()), needed)
            if missing:
                raise PermissionMissing(missing, client_id=client_id or None)

    async def default_domain(self) -> str:
        if self.target.domain:
            return self.target.domain
        if self.local is not None:
            return self.local.tenant.default_domain
        return await default_domain(self.client)


@asynccontextmanager
async def open_connection(target: Target, *, concurrency: int = 4, priority: str = "normal",
                          local_settings: Any = None, pacing: bool = True) -> AsyncIterator[Connection]:
    """A client for `target`, closed (with its token providers) when the block ends.
    `local_settings` (EmulatorSettings) changes the in-process emulator of the local
    target; `pacing=False` sends without pacing (benchmarks measure the tool's overhead)."""
    local = LocalEmulator(local_settings) if target.kind == "local" else None
    providers: list[TokenProvider] = []
    client: GraphClient | None = None
    try:
        provider = local.token_provider() if local else token_provider_for(target)
        pool = [token_provider_for(replace(target, client_id=app.client_id, client_secret=app.client_secret,
                                           certificate_path=app.certificate_path))
                for app in target.extra_apps] if not local else []
        providers.extend([provider, *pool])
        pacer: Pacer | AppPool | None = Pacer() if pacing else None
        if pool:
            pacer = AppPool.of([provider, *pool])
        client = GraphClient(
            target.graph_url, None if pool else provider, pacer=pacer,
            transport=local.transport if local else None,
            verify=ssl.create_default_context(cafile=str(target.ca_file)) if target.ca_file else True,
            low_priority=priority == "low",
            max_connections=max(4, concurrency * 2),
        )
        client_ids = [target.client_id or ""] + [app.client_id for app in target.extra_apps]
        yield Connection(target, client, providers, local, client_ids)
    finally:
        if client is not None:
            await client.aclose()
        for each in providers:
            closer = getattr(each, "aclose", None)
            if closer is not None:
                await closer()
        if local is not None:
            local.close()


async def default_domain(client: GraphClient) -> str:
    """The tenant's default domain, the issuer of local sign-in names, from `GET /organization`."""
    result = await client.request(GraphCall("GET", "/organization?$select=verifiedDomains"))
    if result.status == 200 and isinstance(result.body, dict):
        for org in result.body.get("value") or []:
            for domain in org.get("verifiedDomains") or []:
                if domain.get("isDefault") and domain.get("name"):
                    return str(domain["name"])
    if result.status == 0 or result.status >= 500:
        raise GraphRequestFailed("Reading the tenant's default domain (GET /organization)", status=result.status,
                                 code=result.error_code, detail=result.error_message)
    raise ConfigError(
        "create needs the tenant's default domain (the issuer of sign-in names) and could not read it from "
        f"GET /organization ({result.error_code or result.status}); pass --domain contoso.onmicrosoft.com "
        "or set ENTRA_BATCH_DOMAIN")


__all__ = ["Connection", "LocalEmulator", "default_domain", "open_connection", "target_identity",
           "token_provider_for"]
