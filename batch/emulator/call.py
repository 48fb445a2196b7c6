"""`Call`: one Graph call being served, that is the request, the app making it, its tenant
and the directory it may touch. Every resource handler takes one."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .directory import Directory
from .messages import GraphRequest
from .permissions import delegated_allows
from .records import Tenant
from .settings import EmulatorSettings
from .store import Store
from .tokens import Principal


@dataclass(frozen=True)
class Call:
    request: GraphRequest
    principal: Principal
    tenant: Tenant
    directory: Directory
    settings: EmulatorSettings = field(default_factory=EmulatorSettings)  # page token lifetimes

    @property
    def store(self) -> Store:
        return self.directory.store

    @property
    def method(self) -> str:
        return self.request.method.upper()

    def now(self) -> float:
        """The emulator's clock (a fake one in tests)."""
        return self.directory.clock()

    def require(self, roles: frozenset[str]) -> None:
        """Refuse the call (403) unless the app holds one of the permissions `roles`; a delegated
        token also needs the signed-in administrator's directory role for it (permissions.py)."""
        principal = self.principal
        if not principal.delegated:
            if not principal.has_any(roles):
                raise errors.forbidden()
            return
        if not delegated_allows(roles, principal.scopes, self.user_roles()):
            raise errors.forbidden()

    def user_roles(self) -> frozenset[str]:
        """The signed-in administrator's directory roles now (Graph evaluates the directory, not
        the token's `wids`); empty for an app token or an administrator since removed."""
        admin = self.store.admin(self.principal.user_id or "") if self.principal.delegated else None
        return frozenset(admin.roles) if admin is not None and admin.tenant_id == self.tenant.id else frozenset()

    def context(self, path: str, select: list[str] | None = None) -> str:
        """The `@odata.context` URL of a response about `path`, naming the selected properties."""
        return f"{self.request.base_url}/$metadata#{path}" + (f"({','.join(select)})" if select else "")
