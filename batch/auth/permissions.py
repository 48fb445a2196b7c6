"""The permission preflight (PRODUCT.md, "Targets"): what a token grants, and for what a run
needs but lacks, the least privileged permission (and, for a person, directory role) to
grant — checked before anything is sent.

Two kinds of token reach Graph (identity platform, "Access token claims reference",
https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
- an app's (client secret, certificate, managed identity, workload identity): `idtyp: app`,
  its application permissions in `roles`;
- a person's (device code, Azure CLI): `idtyp: user`, the delegated permissions consented to
  the client in `scp` (space-separated), and the signed-in user's directory roles in `wids`
  (role *template* ids). A delegated call succeeds only when both allow it: the scope, and a
  role of the person that may do it ("Delegated permissions ... the app can never have more
  privileges than the signed-in user", https://learn.microsoft.com/graph/permissions-overview).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

# Directory role template ids (https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
ROLE_TEMPLATES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
}
ROLE_IDS = {name: template for template, name in ROLE_TEMPLATES.items()}

# Roles that may create, update, block, delete, restore and purge users that hold no admin role
# (customers): "User Administrator: create users and manage all aspects of users" (permissions
# reference); Global Administrator can do everything. Least privileged first.
WRITER_ROLES = ("User Administrator", "Global Administrator")
# Roles that may reset a non-administrator's password ("Who can reset passwords", permissions
# reference: Password Administrator, Helpdesk Administrator, Authentication Administrator, User
# Administrator, Privileged Authentication Administrator, Global Administrator). Least first.
PASSWORD_ROLES = ("Password Administrator", "Helpdesk Administrator", "Authentication Administrator",
                  "User Administrator", "Privileged Authentication Administrator", "Global Administrator")

# Roles that may block and unblock sign-in (accountEnabled is a "sensitive action" on users,
# https://learn.microsoft.com/graph/api/resources/users#who-can-perform-sensitive-actions).
BLOCKER_ROLES = ("User Administrator", "Privileged Authentication Administrator", "Global Administrator")

# Delegated permissions that stand for everything the signed-in user may do in the directory.
AS_THE_USER = "Directory.AccessAsUser.All"
_AS_THE_USER = frozenset({AS_THE_USER.lower()})
# Permissions that only read: a requirement made of these asks no directory role of a person
# (member users read the directory by default, "default user permissions").
_READS = frozenset({"user.read.all", "directory.read.all", "user.readbasic.all", "organization.read.all",
                    "application.read.all", "domain.read.all", "auditlog.read.all"})
_PASSWORD = "user-passwordprofile.readwrite.all"
_ENABLE = "user.enabledisableaccount.all"


@dataclass(frozen=True)
class Grants:
    """What an access token grants, read from its claims.

    `kind` is "app" (application permissions in `roles`) or "user" (delegated scopes in
    `scp`, the person's directory roles in `wids`); `permissions` is either set."""

    kind: str
    permissions: frozenset[str]
    role_ids: frozenset[str] = frozenset()
    upn: str | None = None
    app_id: str | None = None
    app_name: str | None = None
    object_id: str | None = None
    tenant_id: str | None = None
    name: str | None = None

    @property
    def delegated(self) -> bool:
        return self.kind == "user"

    @property
    def role_names(self) -> tuple[str, ...]:
        """The person's directory roles by name (unknown template ids as they are)."""
        return tuple(sorted(ROLE_TEMPLATES.get(r, r) for r in self.role_ids))

    @property
    def who(self) -> str:
        """"the signed-in administrator admin@contoso.onmicrosoft.com" or "the app <client id>"."""
        if self.delegated:
            return f"the signed-in administrator {self.upn or self.object_id or '(unknown)'}"
        return f"the app {self.app_id}" if self.app_id else "the app registration"


@dataclass(frozen=True)
class Missing:
    """What a token lacks for a run: permissions (least privileged each) and, for a person,
    directory roles (least privileged each)."""

    permissions: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.permissions or self.roles)


def token_claims(access_token: str) -> dict[str, Any]:
    """The claims of a JWT access token, read without verifying it (the preflight only reads
    what Graph will enforce). A token that is not a JWT has none."""
    parts = access_token.split(".")
    if len(parts) < 2:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _text(claims: dict[str, Any], key: str) -> str | None:
    value = claims.get(key)
    return str(value) if value else None


def token_grants(access_token: str) -> Grants:
    """The grants of an access token. `idtyp` says the kind when present (Entra adds it as an
    optional claim, and always for app tokens in v2); without it, a token with `scp` is a
    person's, else an app's."""
    claims = token_claims(access_token)
    kind = str(claims.get("idtyp") or ("user" if "scp" in claims else "app"))
    if kind == "user":
        scopes = claims.get("scp")
        permissions = frozenset(str(scopes).split()) if isinstance(scopes, str) else frozenset()
    else:
        kind = "app"
        roles = claims.get("roles")
        permissions = frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()
    wids = claims.get("wids")
    return Grants(kind=kind, permissions=permissions,
                  role_ids=frozenset(str(w) for w in wids) if isinstance(wids, list) else frozenset(),
                  upn=_text(claims, "upn") or _text(claims, "preferred_username"),
                  app_id=_text(claims, "appid") or _text(claims, "azp"), app_name=_text(claims, "app_displayname"),
                  object_id=_text(claims, "oid"), tenant_id=_text(claims, "tid"), name=_text(claims, "name"))


def token_roles(access_token: str) -> frozenset[str]:
    """The application permissions (`roles`) of an access token; none for a person's token."""
    grants = token_grants(access_token)
    return frozenset() if grants.delegated else grants.permissions


# Broader permissions rank higher; everything unlisted is a narrow, least-privileged one.
_BREADTH = {"User.Read.All": 1, "Directory.Read.All": 2, "User.ReadWrite.All": 3, "Directory.ReadWrite.All": 4}


def missing_permissions(roles: Collection[str], needed: Sequence[Collection[str]]) -> list[str]:
    """For each requirement (a set of acceptable permissions) that `roles` does not meet, the
    least privileged permission that would meet it. A list or tuple is taken as ordered,
    least privileged first; a set is ranked (narrow permissions before `User.ReadWrite.All`
    and `Directory.*`)."""
    have = {r.lower() for r in roles}
    missing: list[str] = []
    for acceptable in needed:
        if any(p.lower() in have for p in acceptable):
            continue
        if isinstance(acceptable, (list, tuple)):
            least = acceptable[0] if acceptable else None
        else:
            least = min(acceptable, key=lambda p: (_BREADTH.get(p, 0), p), default=None)
        if least is not None and least not in missing:
            missing.append(least)
    return missing


def roles_for(requirement: Collection[str]) -> tuple[str, ...]:
    """The directory roles, least privileged first, of which a person needs one to do what
    `requirement` allows: none to read, a password role to reset passwords, else a user
    writer's (User Administrator)."""
    lowered = {p.lower() for p in requirement}
    if _PASSWORD in lowered:
        return PASSWORD_ROLES
    if _ENABLE in lowered:
        return BLOCKER_ROLES
    if any(p in _READS or (p.endswith(".read.all") and "write" not in p) for p in lowered):
        return ()  # a read permission meets it: reading asks no role of a member
    return WRITER_ROLES


def missing_for(grants: Grants, needed: Sequence[Collection[str]]) -> Missing:
    """What `grants` lacks for `needed` (requirements, each a set of acceptable permissions):
    the least privileged permission for each unmet one and, for a person's token, the least
    privileged directory role for each requirement that none of the person's roles allows.
    `Directory.AccessAsUser.All` (delegated) meets every permission requirement: the person's
    roles then decide."""
    if grants.delegated and {p.lower() for p in grants.permissions} & _AS_THE_USER:
        permissions: list[str] = []
    elif grants.delegated:
        # A person's password change needs Directory.AccessAsUser.All itself (user.md, passwordProfile:
        # "In delegated access, the calling app must be assigned the Directory.AccessAsUser.All delegated
        # permission"): User-PasswordProfile.ReadWrite.All or User.ReadWrite.All do not meet it.
        as_person = [(AS_THE_USER,) if _PASSWORD in {p.lower() for p in r} else r for r in needed]
        permissions = missing_permissions(grants.permissions, as_person)
    else:
        permissions = missing_permissions(grants.permissions, needed)
    roles: list[str] = []
    if grants.delegated:
        have = set(grants.role_names)
        for requirement in needed:
            acceptable = roles_for(requirement)
            if acceptable and not have & set(acceptable) and acceptable[0] not in roles:
                roles.append(acceptable[0])
    return Missing(tuple(permissions), tuple(roles))


__all__ = ["BLOCKER_ROLES", "PASSWORD_ROLES", "ROLE_IDS", "ROLE_TEMPLATES", "WRITER_ROLES", "Grants", "Missing", "missing_for",
           "missing_permissions", "roles_for", "token_claims", "token_grants", "token_roles"]
