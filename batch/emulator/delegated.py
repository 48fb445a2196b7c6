"""Administrators signing in through a public client: the device authorization grant, the
refresh token grant and the resource owner password credentials grant (v2 endpoints).

- "OAuth 2.0 device authorization grant" (identity platform): POST /{tenant}/oauth2/v2.0/devicecode
  answers device_code, user_code, verification_uri, expires_in (900), interval (5) and message;
  polling the token endpoint answers `authorization_pending` until the user signs in, then the
  tokens; `authorization_declined`, `bad_verification_code` and `expired_token` otherwise.
  The emulator's user signs in by `entra-batch emulator approve USER_CODE` (or the setting
  `approve_device_codes_as`).
- "Refresh tokens in the Microsoft identity platform": a refresh token is redeemed for new
  tokens and a new refresh token (they replace themselves on every use); one revoked or
  expired is `invalid_grant` (AADSTS70008 / AADSTS700082), one unknown `invalid_grant`
  (AADSTS9002313).
- "Resource Owner Password Credentials": grant_type=password with username and password, for
  public clients; a wrong password is `invalid_grant` AADSTS50126.

A token's `scp` is what was asked of the app's consented delegated permissions (`.default`:
all of them); asking for one not consented is `invalid_grant` AADSTS65001.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any, Protocol

from .oauth import TokenError, form_error
from .records import Admin, App, Tenant
from .store import Store


class TokenAuthority(Protocol):
    """What the grants need of tokens.TokenAuthority (which imports this module)."""

    store: Store
    clock: Callable[[], float]
    approve_device_codes_as: str | None
    approve_db: str | None

    def issue_delegated(self, tenant: Tenant, app: App, admin: Admin, scopes: tuple[str, ...], *,
                        oidc: frozenset[str], authority_root: str, client_info: bool) -> dict[str, Any]: ...

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRANTS = (DEVICE_CODE_GRANT, "refresh_token", "password")
DEVICE_CODE_LIFETIME = 900  # "the user has 15 minutes to sign in"
POLL_INTERVAL = 5
REFRESH_TOKEN_LIFETIME = 90 * 86_400  # refresh-tokens.md: 90 days by default
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
GRAPH_RESOURCES = ("https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000/")


class ApprovalError(ValueError):
    """Why a user code cannot be approved (unknown, expired, already used, no such administrator)."""


def public_client(authority: TokenAuthority, tenant: Tenant, form: dict[str, str]) -> App:
    client_id = form.get("client_id", "")
    if not client_id:
        raise form_error("client_id")
    app = authority.store.app(client_id)
    if app is None or not app.serves(tenant.id):
        raise TokenError(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found in the directory '{tenant.default_domain}'.")
    if not app.public_client:
        raise TokenError(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
    if form.get("client_secret") or form.get("client_assertion"):
        raise TokenError(401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
    return app


def split_scope(app: App, scope: str, *, consent: bool = True) -> tuple[tuple[str, ...], frozenset[str]]:
    """(the Graph permissions granted, the OpenID Connect scopes asked) for a `scope` parameter.
    Consent is checked when the token is issued (the user would be asked at sign-in), the
    resource as soon as the scope is seen."""
    oidc: set[str] = set()
    asked: list[str] = []
    for word in scope.split():
        if word.lower() in OIDC_SCOPES:
            oidc.add(word.lower())
            continue
        name = word
        for prefix in GRAPH_RESOURCES:
            if word.lower().startswith(prefix):
                name = word[len(prefix):]
        if "/" in name or ":" in name:
            resource = word.rsplit("/", 1)[0]
            raise TokenError(400, "invalid_resource", 500011, f"The resource principal named {resource} was not found in the tenant. This emulator serves Microsoft Graph only.")
        asked.append(name)
    consented = {s.lower(): s for s in app.delegated_scopes}
    granted: list[str] = []
    for name in asked or ["User.Read"]:
        if name == ".default":
            granted += app.delegated_scopes
        elif name.lower() in consented:
            granted.append(consented[name.lower()])
        elif consent:
            raise TokenError(400, "invalid_grant", 65001, f"The user or administrator has not consented to use the application with ID '{app.client_id}' named '{app.display_name}' for the permission '{name}'. Send an interactive authorization request for this user and resource.")
    return tuple(dict.fromkeys(granted)), frozenset(oidc)


def device_authorization(authority: TokenAuthority, tenant: Tenant, form: dict[str, str], origin: str) -> dict[str, Any]:
    app = public_client(authority, tenant, form)
    scope = form.get("scope", "")
    if not scope.strip():
        raise form_error("scope")
    split_scope(app, scope, consent=False)
    now = authority.clock()
    device_code, user_code = authority.store.add_device_code(tenant.id, app.client_id, scope, now + DEVICE_CODE_LIFETIME)
    if authority.approve_device_codes_as:
        try:
            approve(authority.store, user_code, authority.approve_device_codes_as, now)
        except ApprovalError:
            pass  # not an administrator of this tenant: the code waits for `emulator approve`
    uri = f"{origin}/devicelogin"
    return {
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": DEVICE_CODE_LIFETIME,
        "interval": POLL_INTERVAL,
        "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to "
                   f"authenticate. (Emulator: run `{approve_command(user_code, authority.approve_db)}`.)",
    }


def approve_command(user_code: str, db: str | None) -> str:
    """The command that approves `user_code` in the served directory: with `--db PATH` when the
    emulator serves another file than the default one."""
    return f"entra-batch emulator approve {user_code}" + (f" --db {shlex.quote(db)}" if db else "")


def approve(store: Store, user_code: str, upn: str | None, now: float, *, decline: bool = False,
            db: str | None = None) -> Admin:
    """Sign in as `upn` (default: the tenant's seeded administrator) on the device of `user_code`
    (`db`: the directory file to name in the hint of an unknown administrator)."""
    row = store.device_code_by_user_code(user_code)
    if row is None:
        raise ApprovalError(f"no device code {user_code!r} is waiting (a code is 9 letters and digits, as printed)")
    if row["expires"] <= now:
        raise ApprovalError(f"the code {user_code} has expired; start the sign-in again")
    if row["state"] != "pending":
        raise ApprovalError(f"the code {user_code} was already {row['state']}")
    admin = store.admin(upn) if upn else store.seeded_admin(row["tenant_id"])
    if admin is None or admin.tenant_id != row["tenant_id"]:
        where = f" --db {shlex.quote(db)}" if db else ""
        raise ApprovalError(f"{upn} is not an administrator of the tenant the code was asked for; add one with "
                            f"`entra-batch emulator add-admin {upn}{where}` (User Administrator; --role ROLE to "
                            "choose, --role none for none), then approve again")
    store.set_device_code_state(user_code, "declined" if decline else "approved", admin.id)
    return admin


def grant(authority: TokenAuthority, tenant: Tenant, form: dict[str, str], token_url: str) -> dict[str, Any]:
    app = public_client(authority, tenant, form)
    kind = form.get("grant_type")
    if kind == DEVICE_CODE_GRANT:
        admin, scope = _device_code(authority, tenant, app, form)
    elif kind == "refresh_token":
        admin, scope = _refresh(authority, tenant, app, form)
    else:
        admin, scope = _password(authority, tenant, form)
    scopes, oidc = split_scope(app, scope)
    root = token_url.split("/oauth2/", 1)[0].rsplit("/", 1)[0]  # the origin, before /{tenant}/oauth2/v2.0/token
    return authority.issue_delegated(tenant, app, admin, scopes, oidc=oidc, authority_root=root,
                                     client_info=form.get("client_info") == "1")


def _device_code(authority: TokenAuthority, tenant: Tenant, app: App, form: dict[str, str]) -> tuple[Admin, str]:
    code = form.get("device_code", "")
    if not code:
        raise form_error("device_code")
    store = authority.store
    row = store.device_code(code)
    if row is None or row["client_id"] != app.client_id or row["tenant_id"] != tenant.id:
        raise TokenError(400, "bad_verification_code", 70018, "The provided value for the input parameter 'device_code' is not valid.")
    if row["expires"] <= authority.clock():
        raise TokenError(400, "expired_token", 70019, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
    if row["state"] == "pending":
        raise TokenError(400, "authorization_pending", 70016, "The provided request has not yet been authorized by the user. The user must input their code.")
    if row["state"] == "declined":
        raise TokenError(400, "authorization_declined", 65004, "The user declined to sign in on the device.")
    admin = store.admin(row["admin_id"] or "")
    if admin is None or not store.redeem_device_code(code):
        raise TokenError(400, "invalid_grant", 70000, "The provided value for the input parameter 'device_code' is not valid: it was already redeemed.")
    return admin, form.get("scope") or row["scope"]


def _refresh(authority: TokenAuthority, tenant: Tenant, app: App, form: dict[str, str]) -> tuple[Admin, str]:
    token = form.get("refresh_token", "")
    if not token:
        raise form_error("refresh_token")
    row = authority.store.refresh_token(token)
    if row is None or row["client_id"] != app.client_id or row["tenant_id"] != tenant.id:
        raise TokenError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the refresh token is not one this tenant issued to this client.")
    admin = authority.store.admin(row["admin_id"])
    if row["revoked"] or admin is None:
        raise TokenError(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity or was revoked. Send a new interactive authorization request for this user and resource.")
    if row["expires"] <= authority.clock():
        raise TokenError(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
    return admin, form.get("scope") or row["scope"]


def _password(authority: TokenAuthority, tenant: Tenant, form: dict[str, str]) -> tuple[Admin, str]:
    for name in ("username", "password"):
        if not form.get(name):
            raise form_error(name)
    admin = authority.store.admin(form["username"])
    if admin is None or admin.tenant_id != tenant.id or not authority.store.admin_password_is(admin.id, form["password"]):
        raise TokenError(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
    return admin, form.get("scope") or "https://graph.microsoft.com/.default"
