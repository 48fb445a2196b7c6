"""`Call`: one Graph call being served, that is the request, the app making it, its tenant
and the directory it may touch. Every resource handler takes one."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .directory import Directory
from .messages import GraphRequest
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
        """Refuse the call (403) unless the app holds one of `roles`."""
        if not self.principal.has_any(roles):
            raise errors.forbidden()

    def context(self, path: str, select: list[str] | None = None) -> str:
        """The `@odata.context` URL of a response about `path`, naming the selected properties."""
        return f"{self.request.base_url}/$metadata#{path}" + (f"({','.join(select)})" if select else "")
