"""What a tenant holds besides its users and app registrations, for the reads `entra-batch
doctor` makes (and any client may): its verified domains, whether its extensions app exists
and the types of the custom attributes it declares, and its authentication event listeners
(an `onPasswordSubmit` listener with a JIT migration handler).

Kept as JSON in the `meta` table, so that a directory file of an older version needs no new
table or column (as `Store.set_directory_roles` does for an app's directory roles).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

from .userstore import UserStore

# The data types of an extension property (extensionProperty.md: Binary, Boolean, DateTime,
# Integer, LargeInteger, String).
EXTENSION_TYPES = ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String")


class TenantConfig(UserStore):
    """Per-tenant settings beyond users: domains, the extensions app, event listeners."""

    def _get(self, key: str, default: Any) -> Any:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def _put(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # ---- domains -------------------------------------------------------------------------------

    def add_domain(self, tenant_id: str, name: str) -> None:
        """A verified custom domain of the tenant (besides its initial, default one)."""
        names = self._get(f"domains:{tenant_id}", [])
        if name.lower() not in names:
            self._put(f"domains:{tenant_id}", [*names, name.lower()])

    def custom_domains(self, tenant_id: str) -> list[str]:
        return list(self._get(f"domains:{tenant_id}", []))

    # ---- the extensions app -----------------------------------------------------------------

    def remove_extensions_app(self, tenant_id: str) -> None:
        """The tenant has no `b2c-extensions-app` (deleted, or a workforce tenant never made
        one): `/applications` does not list it and its extensionProperties are 404."""
        self._put(f"no_extensions_app:{tenant_id}", True)

    def has_extensions_app(self, tenant_id: str) -> bool:
        return not self._get(f"no_extensions_app:{tenant_id}", False)

    def add_extension_property(self, tenant_id: str, name: str, data_type: str = "String") -> str:
        """Declare a custom attribute on the extensions app, as the admin center's "Custom user
        attributes" page does; `name` is the short name (`requiresMigration`) or the full one.
        Returns the full name `extension_<app id without dashes>_<name>`."""
        if data_type not in EXTENSION_TYPES:
            raise ValueError(f"data_type is one of {', '.join(EXTENSION_TYPES)}")
        row = self._one("SELECT extensions_app_id FROM tenants WHERE id = ?", (tenant_id,))
        if row is None:
            raise ValueError(f"no tenant {tenant_id}")
        full = name if name.startswith("extension_") else \
            f"extension_{row['extensions_app_id'].replace('-', '').lower()}_{name}"
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO extension_properties(tenant_id, name) VALUES (?, ?)", (tenant_id, full))
        types = self._get(f"extension_types:{tenant_id}", {})
        self._put(f"extension_types:{tenant_id}", {**types, full.lower(): data_type})
        return full

    def extension_type(self, tenant_id: str, name: str) -> str:
        """The declared type of a custom attribute (one declared without a type, by an
        emulator directory of an earlier version, is a String)."""
        return str(self._get(f"extension_types:{tenant_id}", {}).get(name.lower(), "String"))

    def declared_extensions(self, tenant_id: str) -> dict[str, str]:
        """Each custom attribute declared on the tenant's extensions app (full name, as
        declared) → its dataType: what a user's body may write. Empty while the tenant has no
        extensions app (extensionProperties are 404 then)."""
        if not self.has_extensions_app(tenant_id):
            return {}
        types = self._get(f"extension_types:{tenant_id}", {})
        return {name: str(types.get(name.lower(), "String")) for name in self.extension_properties(tenant_id)}

    def tenant_apps(self, tenant_id: str) -> list[tuple[str, str]]:
        """(client id, display name) of the tenant's own app registrations: not Microsoft's
        multi-tenant public clients nor a managed identity, which a tenant holds as service
        principals only (application-list.md lists application objects)."""
        identity = self._get_text(f"managed_identity:{tenant_id}")
        return [(row["client_id"], row["display_name"])
                for row in self._all("SELECT client_id, display_name FROM apps WHERE tenant_id = ? AND public_client = 0"
                                     " AND multi_tenant = 0 ORDER BY rowid", (tenant_id,))
                if row["client_id"] != identity]

    def _get_text(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row else None

    # ---- authentication event listeners ---------------------------------------------------

    def add_password_submit_listener(self, tenant_id: str, migration_property_id: str, *,
                                     display_name: str = "JIT password migration",
                                     app_ids: tuple[str, ...] = ()) -> str:
        """An `onPasswordSubmitListener` whose handler is an
        `onPasswordMigrationCustomExtensionHandler` reading `migration_property_id` (the full
        `extension_<appId>_<name>` of a Boolean custom attribute). Returns its id."""
        listener_id = str(uuid.uuid4())
        listeners = self._get(f"event_listeners:{tenant_id}", [])
        listeners.append({"id": listener_id, "kind": "onPasswordSubmit", "displayName": display_name,
                          "migrationPropertyId": migration_property_id, "appIds": list(app_ids),
                          "customExtensionId": str(uuid.uuid4())})
        self._put(f"event_listeners:{tenant_id}", listeners)
        return listener_id

    def event_listeners(self, tenant_id: str) -> list[dict[str, Any]]:
        return list(self._get(f"event_listeners:{tenant_id}", []))

    # ---- just-in-time password migration ----------------------------------------------------

    def complete_password_migration(self, tenant_id: str, flag: str, *, count: int | None = None,
                                    upns: tuple[str, ...] = (), now: float | None = None) -> list[str]:
        """What a successful first sign-in of a JIT-migrated customer does: the custom
        extension answers `MigratePassword`, Entra keeps the password the customer typed and
        sets the flag to false (entra-docs external-id/customers/how-to-migrate-passwords-just-
        in-time.md, "How the JIT migration process works"). Done for the first `count`
        customers still flagged (true), or for the customers `upns` names (each must be
        flagged: `ValueError` otherwise). `flag` is the full `extension_<hex>_<name>` or the
        short name. The new password is random (only its digest is kept). Returns their UPNs."""
        row = self._one("SELECT extensions_app_id FROM tenants WHERE id = ?", (tenant_id,))
        if row is None:
            raise ValueError(f"no tenant {tenant_id}")
        prop = flag if flag.lower().startswith("extension_") else \
            f"extension_{row['extensions_app_id'].replace('-', '').lower()}_{flag}"
        wanted = {u.lower() for u in upns}
        done: list[str] = []
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
        with self.transaction() as db:
            for item in db.execute("SELECT id, upn, data FROM users WHERE tenant_id = ? AND state = 'live' "
                                   "ORDER BY rowid", (tenant_id,)).fetchall():
                if count is not None and len(done) >= count:
                    break
                if wanted and (item["upn"] or "").lower() not in wanted:
                    continue
                data = json.loads(item["data"])
                key = next((k for k in data if k.lower() == prop.lower()), None)
                if key is None or data[key] is not True:
                    if wanted:
                        raise ValueError(f"{item['upn']} is not flagged for migration ({prop} is not true)")
                    continue
                data[key] = False
                data["lastPasswordChangeDateTime"] = moment
                self.write_user(db, tenant_id, data, None)
                self.keep_password(db, item["id"], secrets.token_urlsafe(18))
                done.append(str(item["upn"]))
            missing = wanted - {u.lower() for u in done}
            if missing:  # nothing is changed then
                raise ValueError(f"no customer {sorted(missing)[0]} in this tenant")
        return done

    # ---- app permissions ----------------------------------------------------------------------

    def set_app_roles(self, client_id: str, roles: tuple[str, ...] | list[str]) -> None:
        """Replace the application permissions an app holds (its next token carries them):
        an app missing one permission, for `doctor`'s tests and demos."""
        with self.transaction() as db:
            db.execute("UPDATE apps SET roles = ? WHERE client_id = ?", (json.dumps(list(roles)), client_id.lower()))


__all__ = ["EXTENSION_TYPES", "TenantConfig"]
