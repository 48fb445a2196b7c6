"""The emulator's directory, kept in SQLite so that state survives a restart of the server
and is shared by the in-process emulator and `entra-batch emulator` on the same file.

`Store` is the whole of it: this module holds tenants, app registrations, and the seed of a
new directory (one customer tenant, one app with every user permission, the key that signs
tokens); users are `userstore.py`, the database itself `database.py`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .idstore import ROLE_TEMPLATES, IdentityStore
from .records import Admin, App, IdentityRow, Tenant, UserRow
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
_SEED_ATTEMPTS = 40  # x 50 ms: another process seeding the same new directory (`Store.__init__`)

# Microsoft's first-party public clients that administrators sign in with, in every tenant
# (multi-tenant apps with the client ids Microsoft publishes): Microsoft Graph PowerShell's
# `Connect-MgGraph` and the Azure CLI's `az login`.
GRAPH_COMMAND_LINE_TOOLS = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
PUBLIC_CLIENTS = ((GRAPH_COMMAND_LINE_TOOLS, "Microsoft Graph Command Line Tools"), (AZURE_CLI, "Microsoft Azure CLI"))
# The delegated permissions consented for them: every verb's and `doctor`'s reads, and
# User.Read for /me (Graph's delegated permission names, permissions-reference).
DELEGATED_SCOPES = (
    "User.Read",
    "User.ReadWrite.All",
    "User.ManageIdentities.All",
    "Organization.Read.All",
    "Application.Read.All",
    "Domain.Read.All",
    "AuditLog.Read.All",
    "EventListener.Read.All",
    "RoleManagement.Read.Directory",
)
# The Azure CLI is preauthorized for Directory.AccessAsUser.All on Graph: its Graph tokens carry it
# (`az account get-access-token --resource-type ms-graph`), so a person's password reset works through it.
# Graph Command Line Tools holds what an administrator consented (Connect-MgGraph -Scopes ...): not it here.
CONSENTED = {AZURE_CLI: (*DELEGATED_SCOPES, "Directory.AccessAsUser.All")}


class Store(IdentityStore, TenantConfig):
    """The emulator's directory: tenants, their app registrations and users, and the key that
    signs the emulator's tokens, in one SQLite database."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        for attempt in range(_SEED_ATTEMPTS):
            try:
                self._seed()
                break
            except sqlite3.IntegrityError:
                # Another process is seeding the same new directory (two commands started together
                # right after `emulator reset`): what it made is taken once it is there.
                if attempt == _SEED_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)

    # ---- tenants, apps --------------------------------------------------------------------

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
        self._seed_identity()

    def _seed_identity(self) -> None:
        """What sign-in needs, in a new directory and, once, in one made before it existed: the
        first-party public clients, the managed identity endpoint's header secret, and per
        tenant an administrator and a managed identity (`_seed_tenant`)."""
        if self.meta("identity_header") is None:
            self.set_meta("identity_header", secrets.token_hex(16))
        home = self.tenants()[0].id
        for client_id, name in PUBLIC_CLIENTS:
            if self.app(client_id) is None:
                self.add_app(home, (), display_name=name, client_id=client_id, secret=None, public_client=True,
                             delegated_scopes=CONSENTED.get(client_id, DELEGATED_SCOPES), multi_tenant=True)
        for tenant in self.tenants():
            self._seed_tenant(tenant)

    def _seed_tenant(self, tenant: Tenant) -> None:
        if self.meta(f"managed_identity:{tenant.id}") is None:
            identity = self.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name=f"{tenant.display_name} identity",
                                    secret=None, directory_roles=(USER_ADMINISTRATOR,), no_credential=True)
            self.set_meta(f"managed_identity:{tenant.id}", identity.client_id)
        if self.meta(f"seeded_admin:{tenant.id}") is None:
            upn = f"admin@{tenant.default_domain}"
            if self.admin(upn) is None:
                self.add_admin(tenant.id, upn, display_name="Tenant Administrator", roles=(USER_ADMINISTRATOR,))
            self.set_meta(f"seeded_admin:{tenant.id}", upn)

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
        if self.meta("identity_header") is not None:  # the first tenant is seeded by _seed_identity
            self._seed_tenant(tenant)
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
        public_client: bool = False,
        delegated_scopes: Iterable[str] = (),
        multi_tenant: bool = False,
        no_credential: bool = False,
    ) -> App:
        """An app registration with the application permissions `roles` (what its tokens carry) and
        the Microsoft Entra `directory_roles` assigned to its service principal (which Graph looks
        up itself and tokens do not carry). A `public_client` (device code, password grant) has no
        credential and signs administrators in with the consented `delegated_scopes`; so has an app
        made with `no_credential` (a managed identity, or one that only federates)."""
        keyless = public_client or no_credential or certificate_pem is not None
        app = App(
            client_id=(client_id or str(uuid.uuid4())).lower(),
            tenant_id=tenant_id,
            display_name=display_name,
            secret=secret if secret is not None else (None if keyless else _new_secret()),
            certificate=certificate_pem,
            roles=tuple(roles),
            public_client=public_client,
            delegated_scopes=tuple(delegated_scopes),
            multi_tenant=multi_tenant,
        )
        with self.transaction() as db:
            db.execute(
                "INSERT INTO apps(client_id, tenant_id, display_name, secret, certificate, roles, public_client,"
                " delegated_scopes, multi_tenant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (app.client_id, app.tenant_id, app.display_name, app.secret, app.certificate, json.dumps(app.roles),
                 int(app.public_client), json.dumps(app.delegated_scopes), int(app.multi_tenant)),
            )
        self.set_directory_roles(app.client_id, directory_roles)
        return app

    def set_app_certificate(self, client_id: str, certificate_pem: str) -> None:
        """Register `certificate_pem` (a public certificate, PEM; never a key) as the app's
        certificate credential, in place of the one it held. Its secret, if any, stays valid, as
        an app registration may hold both (`entra-batch emulator --app-certificate`)."""
        with self.transaction() as db:
            changed = db.execute("UPDATE apps SET certificate = ? WHERE client_id = ?",
                                 (certificate_pem, client_id.lower())).rowcount
        if not changed:
            raise KeyError(f"no app {client_id!r}")

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
        values["delegated_scopes"] = tuple(json.loads(values["delegated_scopes"]))
        values["public_client"] = bool(values["public_client"])
        values["multi_tenant"] = bool(values["multi_tenant"])
        return App(**values)

    def managed_identity(self, tenant_id: str) -> App:
        """The tenant's managed identity (a user-assigned-style identity: an app with the default
        app's permissions and no credential), the one `/msi/token` issues tokens for."""
        app = self.app(self.meta(f"managed_identity:{tenant_id}") or "")
        if app is None:
            raise KeyError(f"no tenant {tenant_id!r}")
        return app

    def identity_header(self) -> str:
        """The secret a managed-identity token request must send as X-IDENTITY-HEADER."""
        return self.meta("identity_header") or ""

    def seeded_admin(self, tenant_id: str) -> Admin:
        admin = self.admin(self.meta(f"seeded_admin:{tenant_id}") or "")
        assert admin is not None, "every tenant is seeded with an administrator"
        return admin

    def default_app(self) -> App:
        app = self.app(self.meta("default_client_id") or "")
        assert app is not None, "the store was seeded with a default app"
        return app

    def signing_key(self) -> tuple[str, str]:
        return self.meta("signing_key") or "", self.meta("signing_kid") or ""


def _new_secret() -> str:
    # Shaped like an Entra client secret: ~40 characters with a `~` in it.
    return secrets.token_urlsafe(24)[:3] + "8Q~" + secrets.token_urlsafe(27)


__all__ = ["ALL_USER_PERMISSIONS", "AZURE_CLI", "DEFAULT_DOMAIN", "DELEGATED_SCOPES", "GRAPH_COMMAND_LINE_TOOLS",
           "ROLE_TEMPLATES", "USER_ADMINISTRATOR", "Admin", "App", "IdentityRow", "Store", "Tenant", "UserRow"]
