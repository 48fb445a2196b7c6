"""The identity section: who signed in (an app's name and client id, or an administrator and
their directory roles, from the token's claims), and for each verb whether the token grants
what it needs.

The verdict per verb is the run's own preflight, `Connection.check_permissions`, fed the
verb's declared needs (batch/verbs/permissions.py through each verb's `needs`; export's
through batch/export/permissions.py): doctor and a run cannot disagree, and what a run
would name as missing is what doctor names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batch.doctor.report import ACCESS, Check, fail, ok, warn
from batch.errors import PermissionMissing
from batch.export.permissions import needed as export_needs
from batch.run.connection import Connection
from batch.verbs.registry import VERBS, VerbSettings

SECTION = "identity"

# Directory role template ids (the `wids` claim of a delegated token) of the roles that
# matter to entra-batch, with their names (entra-docs identity/role-based-access-control/
# permissions-reference.md).
ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "b79fbf4d-3ef9-4689-8143-76b194e85509": "(member user)",  # every member user's default role
}


def delegated(claims: dict[str, Any]) -> bool:
    """A token issued to a signed-in user (device code, Azure CLI) rather than to an app."""
    return claims.get("idtyp") == "user" or ("scp" in claims and "roles" not in claims)


def role_names(claims: dict[str, Any]) -> list[str]:
    wids = claims.get("wids") if isinstance(claims.get("wids"), list) else []
    names = [ROLE_NAMES.get(str(w).lower(), f"role {w}") for w in wids or []]
    return [n for n in names if n != "(member user)"]


def identity_check(claims: dict[str, Any], client_id: str | None) -> Check:
    app_name = claims.get("app_displayname")
    app_id = claims.get("appid") or claims.get("azp") or client_id
    if delegated(claims):
        upn = claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or claims.get("oid")
        roles = role_names(claims)
        scopes = sorted(str(claims.get("scp") or "").split())
        held = ", ".join(roles) if roles else "no directory role"
        return ok(SECTION, "identity", f"signed in as {upn} ({held}), through {app_name or 'the app'} "
                                       f"(client id {app_id}); delegated permissions: {', '.join(scopes) or 'none'}",
                  kind="user", upn=upn, display_name=claims.get("name"), roles=roles, scopes=scopes, app_name=app_name,
                  client_id=app_id)
    roles = sorted(str(r) for r in claims.get("roles") or [])
    return ok(SECTION, "identity", f"app {app_name or '(no name)'} (client id {app_id}); application permissions: "
                                   f"{', '.join(roles) or 'none'}",
              kind="app", app_name=app_name, client_id=app_id, permissions=roles)


async def _missing(connection: Connection, needs: Sequence[frozenset[str]]) -> PermissionMissing | None:
    try:
        await connection.check_permissions(needs)
    except PermissionMissing as missing:
        return missing
    return None


def _needs_by_verb(domain: str | None) -> list[tuple[str, tuple[frozenset[str], ...], tuple[frozenset[str], ...],
                                                     list[str]]]:
    """(verb, what a run needs, what a run with every optional column needs, those columns)."""
    settings = VerbSettings(domain=domain or "contoso.onmicrosoft.com")
    rows = []
    for name, spec in VERBS.items():
        needs = spec.build(settings).needs
        columns = list(needs.by_column)
        rows.append((name, needs.for_run(()), needs.for_run(columns), columns))
    rows.append(("export", (export_needs(deleted=False),), (export_needs(deleted=False),), []))
    rows.append(("export --deleted", (export_needs(deleted=True),), (export_needs(deleted=True),), []))
    return rows


async def permission_checks(connection: Connection, domain: str | None) -> list[Check]:
    """One check per verb: ✓ when the token grants what a run of it needs, ✗ naming what it
    lacks (with the run's own remedy), ! when only some optional columns need more."""
    checks = []
    for name, base, full, columns in _needs_by_verb(domain):
        missing = await _missing(connection, base)
        if missing is not None:
            checks.append(fail(SECTION, name, f"needs {', '.join(missing.missing)}", str(missing), stops=ACCESS,
                               missing=missing.missing))
            continue
        extra = await _missing(connection, full) if full != base else None
        if extra is not None:
            checks.append(warn(SECTION, name, f"works, but its {' or '.join(columns)} column needs "
                                              f"{', '.join(extra.missing)}", str(extra), missing=extra.missing))
        else:
            checks.append(ok(SECTION, name, "granted"))
    return checks


__all__ = ["ROLE_NAMES", "delegated", "identity_check", "permission_checks", "role_names"]
