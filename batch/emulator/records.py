"""The records the store hands out: a tenant, an app registration, a user row and one of
its sign-in identities. Frozen values; the store is the only one that makes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tenant:
    id: str
    default_domain: str
    display_name: str
    kind: str  # "external" (External ID customer tenant) or "b2c"
    size_class: str  # "auto", "S", "M" or "L"
    extensions_app_id: str

    @property
    def extensions_app_hex(self) -> str:
        return self.extensions_app_id.replace("-", "").lower()


@dataclass(frozen=True)
class App:
    client_id: str
    tenant_id: str
    display_name: str
    secret: str | None
    certificate: str | None
    roles: tuple[str, ...]
    # A public client (device code, ROPC: no credential of its own) and the delegated
    # permissions consented for it in the tenant; a multi-tenant app (Microsoft's first-party
    # public clients) is accepted in every tenant of the store.
    public_client: bool = False
    delegated_scopes: tuple[str, ...] = ()
    multi_tenant: bool = False

    def serves(self, tenant_id: str) -> bool:
        return self.multi_tenant or self.tenant_id == tenant_id


@dataclass(frozen=True)
class Admin:
    """An administrator: a member user of the tenant holding directory roles (names such as
    "User Administrator"). Not a customer: the emulator's /users lists customers only."""

    id: str
    tenant_id: str
    upn: str
    display_name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class IdentityRow:
    sign_in_type: str
    issuer: str
    assigned_id: str


@dataclass(frozen=True)
class UserRow:
    seq: int
    id: str
    state: str
    change_seq: int
    deleted: float | None
    data: dict[str, Any]
