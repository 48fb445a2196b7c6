"""The identity section: who signed in (an app's name and client id, or an administrator and
their directory roles, from the token's claims), and for each verb whether the token grants
what it needs.

The verdict per verb is the run's own preflight, `Connection.check_permissions`, fed the
verb's declared needs (batch/verbs/permissions.py through each verb's `needs`; export's
through batch/export/permissions.py): doctor and a run cannot disagree, and what a run
would name as missing is what doctor names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from batch.auth import Grants
from batch.auth.certificate import EXPIRY_WARNING_DAYS, load_certificate, not_after
from batch.config import Sources, Target
from batch.doctor.report import ACCESS, Check, fail, ok, warn
from batch.errors import PermissionMissing
from batch.export.permissions import needed as export_needs
from batch.run.connection import Connection
from batch.verbs.registry import VERBS, VerbSettings

SECTION = "identity"


def identity_check(grants: Grants, client_id: str | None, method: str = "secret", chosen_by: str = "--auth") -> Check:
    """Who the token speaks for: an app (its name, client id and application permissions) or
    a signed-in administrator (upn, directory roles, and the delegated permissions of the
    client they signed in through), and the sign-in method that got it, named as it was chosen
    (`chosen_by`, `Sources.auth`: --auth, ENTRA_BATCH_AUTH, a profile's auth key, or "" when the
    credentials given implied it)."""
    app_id = grants.app_id or client_id
    how = f", signed in with {Sources(auth=chosen_by).method(method)}"
    permissions = sorted(grants.permissions)
    if grants.delegated:
        upn = grants.upn or grants.object_id or "(unknown)"
        roles = [r for r in grants.role_names if r != MEMBER_ROLE]
        held = ", ".join(roles) if roles else "no directory role"
        return ok(SECTION, "identity", f"signed in as {upn} ({held}), through {grants.app_name or 'the app'} "
                                       f"(client id {app_id}){how}; delegated permissions: {', '.join(permissions) or 'none'}",
                  kind="user", method=method, upn=upn, display_name=grants.name, roles=roles, scopes=permissions,
                  app_name=grants.app_name, client_id=app_id)
    return ok(SECTION, "identity", f"app {grants.app_name or '(no name)'} (client id {app_id}){how}; application "
                                   f"permissions: {', '.join(permissions) or 'none'}",
              kind="app", method=method, app_name=grants.app_name, client_id=app_id, permissions=permissions)


def certificate_check(target: Target, now: dt.datetime | None = None) -> Check | None:
    """For a certificate sign-in, when its certificate stops being valid, read from the file
    itself: ! within `EXPIRY_WARNING_DAYS` days (an expired one never gets here: the sign-in
    refuses it, `refuse_expired`). None for other sign-in methods."""
    if target.auth != "certificate" or target.certificate_path is None:
        return None
    ends = not_after(load_certificate(target.certificate_path, target.certificate_password))
    left = ends - (now or dt.datetime.now(dt.UTC))
    when = f"{ends:%Y-%m-%d %H:%M} UTC"
    if left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        return warn(SECTION, "certificate", f"{target.certificate_path} expires on {when}, in {max(left.days, 0)} "
                                            f"day{'s' if left.days != 1 else ''}",
                    f"create a new certificate, upload its public part to the app registration's Certificates & "
                    f"secrets, and point {target.sources.certificate_path} at it before {when}; runs stop once it "
                    "has expired", not_after=ends.isoformat())
    return ok(SECTION, "certificate", f"{target.certificate_path} is valid until {when}", not_after=ends.isoformat())


# Every member user's own role template (in `wids` of any member's token): not an admin role.
MEMBER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"


def _needs_words(missing: PermissionMissing) -> str:
    """`User-PasswordProfile.ReadWrite.All`, or `the Password Administrator role`, or both."""
    parts = [", ".join(missing.missing)] if missing.missing else []
    if missing.roles:
        plural = "s" if len(missing.roles) > 1 else ""
        parts.append(f"the {', '.join(missing.roles)} directory role{plural} for {missing.person or 'the administrator'}")
    return " and ".join(parts)


async def _missing(connection: Connection, needs: Sequence[frozenset[str]]) -> PermissionMissing | None:
    try:
        await connection.check_permissions(needs)
    except PermissionMissing as missing:
        return missing
    return None


def _needs_by_verb(domain: str | None) -> list[tuple[str, tuple[frozenset[str], ...],
                                                     dict[str, tuple[frozenset[str], ...]]]]:
    """(verb, what a run needs, what a run needs with each optional column)."""
    settings = VerbSettings(domain=domain or "contoso.onmicrosoft.com")
    rows = []
    for name, spec in VERBS.items():
        needs = spec.build(settings).needs
        rows.append((name, needs.for_run(()), {column: needs.for_run([column]) for column in needs.by_column}))
    rows.append(("export", (export_needs(deleted=False),), {}))
    rows.append(("export --deleted", (export_needs(deleted=True),), {}))
    return rows


async def permission_checks(connection: Connection, domain: str | None) -> list[Check]:
    """One check per verb: ✓ when the token grants what a run of it needs, ✗ naming what it
    lacks (with the run's own remedy), ! when only some optional columns need more."""
    checks = []
    for name, base, by_column in _needs_by_verb(domain):
        missing = await _missing(connection, base)
        if missing is not None:
            checks.append(fail(SECTION, name, f"needs {_needs_words(missing)}", str(missing), stops=ACCESS,
                               missing=missing.missing, roles=missing.roles))
            continue
        lacking = {column: extra for column, needs in by_column.items()
                   if (extra := await _missing(connection, needs)) is not None}
        if lacking:
            said = "; ".join(f"a {column} column needs {_needs_words(extra)}" for column, extra in lacking.items())
            first = next(iter(lacking.values()))
            checks.append(warn(SECTION, name, f"works, but {said}", str(first),
                               columns={column: {"missing": extra.missing, "roles": extra.roles}
                                        for column, extra in lacking.items()}))
        else:
            checks.append(ok(SECTION, name, "granted"))
    return checks


__all__ = ["certificate_check", "identity_check", "permission_checks"]
