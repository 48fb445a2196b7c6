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
    kind: str  # "external" (External ID customer tenant), "b2c" or "workforce" (tenantType AAD)
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
