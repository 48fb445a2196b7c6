"""The identity platform's tables: administrators (member users with directory roles),
device codes waiting for approval, refresh tokens, federated credentials of apps and the
external issuers (their public keys) that workload identity federation trusts.

Secrets are kept as digests: a refresh token or a device code is a random string handed to
the client once; the store holds its SHA-256, and an administrator's password its salted
PBKDF2. Nothing here returns a token it did not just make.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from .records import Admin
from .userstore import UserStore

# Directory role template ids (Microsoft Entra built-in roles, "permissions-reference"): what a
# delegated token's `wids` claim lists and what `/me/memberOf` answers as `roleTemplateId`.
ROLE_TEMPLATES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
}

# A user code is short and typed by a person: letters and digits without look-alikes.
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_PBKDF2_ROUNDS = 60_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(roles))
    unknown = [r for r in names if r not in ROLE_TEMPLATES]
    if unknown:
        raise ValueError(f"unknown directory role(s) {unknown}; choose among {', '.join(ROLE_TEMPLATES)}")
    return names


class IdentityStore(UserStore):
    # ---- meta ------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # ---- administrators --------------------------------------------------------------------

    def add_admin(self, tenant_id: str, upn: str, *, display_name: str = "",
                  roles: Iterable[str] = ("User Administrator",), password: str | None = None) -> str:
        """An administrator of `tenant_id` (a member user, not a customer) holding the directory
        `roles`; `password` enables the password grant (ROPC) for them. Returns the object id."""
        admin_id = str(uuid.uuid4())
        with self.transaction() as db:
            db.execute("INSERT INTO admins(id, tenant_id, upn, display_name, roles, password_digest)"
                       " VALUES (?, ?, ?, ?, ?, NULL)",
                       (admin_id, tenant_id, upn, display_name or upn.split("@")[0],
                        json.dumps(list(check_roles(roles)))))
        if password is not None:
            self.set_admin_password(admin_id, password)
        return admin_id

    def admins(self, tenant_id: str) -> list[Admin]:
        return [_admin(r) for r in self._all("SELECT * FROM admins WHERE tenant_id = ? ORDER BY rowid", (tenant_id,))]

    def admin(self, upn_or_id: str) -> Admin | None:
        row = self._one("SELECT * FROM admins WHERE id = ? OR upn = ?", (upn_or_id.lower(), upn_or_id))
        return _admin(row) if row else None

    def set_admin_roles(self, upn_or_id: str, roles: Iterable[str]) -> None:
        admin = self._existing_admin(upn_or_id)
        with self.transaction() as db:
            db.execute("UPDATE admins SET roles = ? WHERE id = ?", (json.dumps(list(check_roles(roles))), admin.id))

    def set_admin_password(self, upn_or_id: str, password: str) -> None:
        admin = self._existing_admin(upn_or_id)
        salt = secrets.token_hex(16)
        value = f"{salt}${_pbkdf2(password, salt)}"
        with self.transaction() as db:
            db.execute("UPDATE admins SET password_digest = ? WHERE id = ?", (value, admin.id))

    def admin_password_is(self, admin_id: str, password: str) -> bool:
        row = self._one("SELECT password_digest FROM admins WHERE id = ?", (admin_id,))
        if row is None or not row["password_digest"]:
            return False
        salt, _, expected = str(row["password_digest"]).partition("$")
        return hmac.compare_digest(expected, _pbkdf2(password, salt))

    def _existing_admin(self, upn_or_id: str) -> Admin:
        admin = self.admin(upn_or_id)
        if admin is None:
            raise KeyError(f"no administrator {upn_or_id!r}")
        return admin

    # ---- device codes ----------------------------------------------------------------------

    def add_device_code(self, tenant_id: str, client_id: str, scope: str, expires: float) -> tuple[str, str]:
        """A new pending device code: (device_code, user_code). Only the device code's digest is kept."""
        device_code = secrets.token_urlsafe(96)
        with self.transaction() as db:
            db.execute("DELETE FROM device_codes WHERE expires < ?", (expires - 86_400,))
            for _ in range(20):
                user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
                try:
                    db.execute("INSERT INTO device_codes(digest, user_code, tenant_id, client_id, scope, expires, state)"
                               " VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                               (digest(device_code), user_code, tenant_id, client_id, scope, expires))
                    break
                except sqlite3.IntegrityError:
                    continue
        return device_code, user_code

    def device_code(self, device_code: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM device_codes WHERE digest = ?", (digest(device_code),))
        return dict(row) if row else None

    def device_code_by_user_code(self, user_code: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM device_codes WHERE user_code = ?", (user_code.strip().upper(),))
        return dict(row) if row else None

    def set_device_code_state(self, user_code: str, state: str, admin_id: str | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE device_codes SET state = ?, admin_id = COALESCE(?, admin_id) WHERE user_code = ?",
                       (state, admin_id, user_code.strip().upper()))

    def redeem_device_code(self, device_code: str) -> bool:
        """Mark an approved code redeemed; False if it was not (still) approved: one token per approval."""
        with self.transaction() as db:
            cursor = db.execute("UPDATE device_codes SET state = 'redeemed' WHERE digest = ? AND state = 'approved'",
                                (digest(device_code),))
            return cursor.rowcount == 1

    # ---- refresh tokens --------------------------------------------------------------------

    def add_refresh_token(self, tenant_id: str, client_id: str, admin_id: str, scope: str, expires: float) -> str:
        token = "1.A" + secrets.token_urlsafe(180)
        with self.transaction() as db:
            db.execute("INSERT INTO refresh_tokens(digest, tenant_id, client_id, admin_id, scope, expires)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (digest(token), tenant_id, client_id, admin_id, scope, expires))
        return token

    def refresh_token(self, token: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM refresh_tokens WHERE digest = ?", (digest(token),))
        return dict(row) if row else None

    def revoke_refresh_tokens(self, upn_or_id: str) -> int:
        """Every refresh token of the administrator revoked (Graph's user: revokeSignInSessions)."""
        admin = self._existing_admin(upn_or_id)
        with self.transaction() as db:
            return db.execute("UPDATE refresh_tokens SET revoked = 1 WHERE admin_id = ?", (admin.id,)).rowcount

    # ---- workload identity federation ------------------------------------------------------

    def add_federated_credential(self, client_id: str, *, issuer: str, subject: str,
                                 audience: str = "api://AzureADTokenExchange") -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO federated_credentials(client_id, issuer, subject, audience)"
                       " VALUES (?, ?, ?, ?)", (client_id.lower(), issuer, subject, audience))

    def federated_credentials(self, client_id: str) -> list[dict[str, str]]:
        return [dict(r) for r in self._all("SELECT issuer, subject, audience FROM federated_credentials"
                                           " WHERE client_id = ? ORDER BY rowid", (client_id.lower(),))]

    def trust_issuer(self, issuer: str, jwks: dict[str, Any]) -> None:
        """The public keys (a JWKS document) of an external OIDC issuer, such as GitHub Actions'
        or a Kubernetes cluster's, whose tokens federated credentials may name."""
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ValueError("jwks must be a JWKS document: {\"keys\": [...]}")
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO trusted_issuers(issuer, jwks) VALUES (?, ?)", (issuer, json.dumps(jwks)))

    def issuer_jwks(self, issuer: str) -> dict[str, Any] | None:
        row = self._one("SELECT jwks FROM trusted_issuers WHERE issuer = ?", (issuer,))
        return json.loads(row["jwks"]) if row else None


def _pbkdf2(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _PBKDF2_ROUNDS).hex()


def _admin(row: sqlite3.Row) -> Admin:
    return Admin(id=row["id"], tenant_id=row["tenant_id"], upn=row["upn"], display_name=row["display_name"],
                 roles=tuple(json.loads(row["roles"])))
