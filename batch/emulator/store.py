"""The emulator's directory, kept in SQLite so that state survives a restart of the server
and is shared by the in-process emulator and `entra-batch emulator` on the same file.

`Store` is the whole of it: this module holds tenants, app registrations, and the seed of a
new directory (one customer tenant, one app with every user permission, the key that signs
tokens); users are `userstore.py`, the database itself `database.py`.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .records import App, IdentityRow, Tenant, UserRow
from .tenantstore import TenantConfig

# Every user permission an app can hold (GRAPH.md §10), plus what reads the tenant itself.
ALL_USER_PERMISSIONS = (
    "User.ReadWrite.All",
    "User.Read.All",
    "User.Create",
    "User.ReadUpdate.All",
    "User.EnableDisableAccount.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.DeleteRestore.All",
    "User.ManageIdentities.All",
    "User-Mail.ReadWrite.All",
    "User-Phone.ReadWrite.All",
    "Organization.Read.All",
    # Lists the custom attributes (the extensions app's extensionProperties) for `export`.
    "Application.Read.All",
    # What `entra-batch doctor` reads besides: the tenant's domains (domain-list.md) and its
    # authentication event listeners (identitycontainer-list-authenticationeventlisteners.md).
    "Domain.Read.All",
    "EventListener.Read.All",
)

DEFAULT_DOMAIN = "contoso.onmicrosoft.com"

# The Microsoft Entra role that user-update.md asks of an app that resets passwords app-only
# ("at least the User Administrator Microsoft Entra role"); the default app holds it, as the
# service principal of a set-up tenant would (GRAPH.md §4.1).
USER_ADMINISTRATOR = "User Administrator"

# Bumped when ALL_USER_PERMISSIONS grows, so that the default app of an older directory gains
# the new permissions once ("1": before Domain.Read.All and EventListener.Read.All).
_DEFAULT_APP_VERSION = "2"


class Store(TenantConfig):
    """The emulator's directory: tenants, their app registrations and users, and the key that
    signs the emulator's tokens, in one SQLite database."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._seed()

    # ---- meta, tenants, apps -------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _seed(self) -> None:
        """A new store starts with one customer tenant and one app holding every user
        permission (PRODUCT.md, Targets), and the key that signs the emulator's tokens."""
        with self.transaction() as db:
            if db.execute("SELECT value FROM meta WHERE key = 'signing_key'").fetchone() is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                db.execute("INSERT INTO meta(key, value) VALUES ('signing_key', ?)", (pem,))
                db.execute("INSERT INTO meta(key, value) VALUES ('signing_kid', ?)", (secrets.token_hex(8),))
        if self.meta("default_client_id") is None:
            tenant = self.add_tenant(DEFAULT_DOMAIN, display_name="Contoso customers")
            app = self.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="entra-batch",
                               directory_roles=(USER_ADMINISTRATOR,))
            self.set_meta("default_client_id", app.client_id)
            self.set_meta("default_app_upgraded", _DEFAULT_APP_VERSION)
            self.set_meta("default_app_roles", "1")
        elif self.meta("default_app_upgraded") != _DEFAULT_APP_VERSION:
            # A directory made by an older version: its app gains what was added since, once.
            older = self.app(self.meta("default_client_id") or "")
            if older is not None:
                roles = list(dict.fromkeys([*older.roles, *ALL_USER_PERMISSIONS]))
                with self.transaction() as db:
                    db.execute("UPDATE apps SET roles = ? WHERE client_id = ?", (json.dumps(roles), older.client_id))
            self.set_meta("default_app_upgraded", _DEFAULT_APP_VERSION)
        if self.meta("default_app_roles") is None:
            # A directory made before directory roles existed: its default app gains its role, once.
            self.set_directory_roles(self.meta("default_client_id") or "", (USER_ADMINISTRATOR,))
            self.set_meta("default_app_roles", "1")

    def add_tenant(
        self,
        default_domain: str,
        *,
        display_name: str | None = None,
        kind: str = "external",
        size_class: str = "auto",
        tenant_id: str | None = None,
    ) -> Tenant:
        if kind not in ("external", "b2c", "workforce"):
            raise ValueError("kind is 'external', 'b2c' or 'workforce'")
        if size_class not in ("auto", "S", "M", "L"):
            raise ValueError("size_class is auto, S, M or L")
        tenant = Tenant(
            id=tenant_id or str(uuid.uuid4()),
            default_domain=default_domain.lower(),
            display_name=display_name or default_domain.split(".")[0],
            kind=kind,
            size_class=size_class,
            extensions_app_id=str(uuid.uuid4()),
        )
        with self.transaction() as db:
            db.execute(
                "INSERT INTO tenants(id, default_domain, display_name, kind, size_class, extensions_app_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (tenant.id, tenant.default_domain, tenant.display_name, tenant.kind, tenant.size_class,
                 tenant.extensions_app_id),
            )
        return tenant

    def tenant(self, key: str) -> Tenant | None:
        """By tenant id or by default domain, as the token endpoint accepts either."""
        row = self._one("SELECT * FROM tenants WHERE id = ? OR default_domain = ?", (key.lower(), key))
        return Tenant(**dict(row)) if row else None

    def tenants(self) -> list[Tenant]:
        return [Tenant(**dict(r)) for r in self._all("SELECT * FROM tenants ORDER BY rowid")]

    def add_app(
        self,
        tenant_id: str,
        roles: Iterable[str],
        *,
        display_name: str = "app",
        secret: str | None = None,
        certificate_pem: str | None = None,
        client_id: str | None = None,
        directory_roles: Iterable[str] = (),
    ) -> App:
        """An app registration with the application permissions `roles` (what its tokens carry) and
        the Microsoft Entra `directory_roles` assigned to its service principal (which Graph looks
        up itself and tokens do not carry)."""
        app = App(
            client_id=client_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            display_name=display_name,
            secret=secret if secret is not None else (None if certificate_pem else _new_secret()),
            certificate=certificate_pem,
            roles=tuple(roles),
        )
        with self.transaction() as db:
            db.execute(
                "INSERT INTO apps(client_id, tenant_id, display_name, secret, certificate, roles) VALUES (?, ?, ?, ?, ?, ?)",
                (app.client_id, app.tenant_id, app.display_name, app.secret, app.certificate, json.dumps(app.roles)),
            )
        self.set_directory_roles(app.client_id, directory_roles)
        return app

    def set_directory_roles(self, client_id: str, directory_roles: Iterable[str]) -> None:
        """Assign exactly `directory_roles` (names such as "User Administrator") to the app. Kept in
        `meta`, so that a store file of an older version needs no new column."""
        self.set_meta(f"directory_roles:{client_id.lower()}", json.dumps(sorted(set(directory_roles))))

    def directory_roles(self, client_id: str) -> frozenset[str]:
        text = self.meta(f"directory_roles:{client_id.lower()}")
        return frozenset(json.loads(text)) if text else frozenset()

    def app(self, client_id: str) -> App | None:
        row = self._one("SELECT * FROM apps WHERE client_id = ?", (client_id.lower(),))
        if row is None:
            return None
        values = dict(row)
        values["roles"] = tuple(json.loads(values["roles"]))
        return App(**values)

    def default_app(self) -> App:
        app = self.app(self.meta("default_client_id") or "")
        assert app is not None, "the store was seeded with a default app"
        return app

    def signing_key(self) -> tuple[str, str]:
        return self.meta("signing_key") or "", self.meta("signing_kid") or ""


def _new_secret() -> str:
    # Shaped like an Entra client secret: ~40 characters with a `~` in it.
    return secrets.token_urlsafe(24)[:3] + "8Q~" + secrets.token_urlsafe(27)


__all__ = ["ALL_USER_PERMISSIONS", "DEFAULT_DOMAIN", "USER_ADMINISTRATOR", "App", "IdentityRow", "Store", "Tenant", "UserRow"]
