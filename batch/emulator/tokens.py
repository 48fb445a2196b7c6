"""The emulator's identity platform: the token endpoint (client credentials with a secret, a
certificate or a federated assertion; device code, refresh token and password grants for
administrators), the device authorization endpoint, its OpenID configuration, and the check
of every bearer token Graph receives.

Tokens are RS256 JWTs signed with a key kept in the store (so they stay valid across a
restart of the server). App tokens carry `tid`, `appid`, `roles`, `idtyp: app` and `exp` as
Entra's v1 app tokens do (GRAPH.md §10); delegated tokens carry `scp`, `wids` and the
signed-in administrator (`oid`, `upn`, `name`) and no `roles` (identity platform, "Access
token claims reference"). A token names its tenant; every Graph call is scoped to that tenant.
The grants themselves are `delegated.py` (administrators) and `assertions.py` (client
assertions); the App Service managed-identity endpoint is `managed_identity.py`.
"""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from . import assertions, delegated, errors
from .oauth import ASSERTION_TYPE, GRAPH_AUDIENCES, TokenError, basic_credentials, issuer, well_formed
from .records import Admin, App, Tenant
from .store import ROLE_TEMPLATES, Store

__all__ = ["Principal", "TokenAuthority", "TokenError", "issuer"]


@dataclass(frozen=True)
class Principal:
    """Who calls Graph: an app on its own (`roles`), or an app on behalf of a signed-in
    administrator (`user_id`, the delegated `scopes`)."""

    tenant_id: str
    app_id: str
    roles: frozenset[str]
    scopes: frozenset[str] = frozenset()
    user_id: str | None = None

    @property
    def delegated(self) -> bool:
        return self.user_id is not None

    def has_any(self, permissions: frozenset[str] | set[str]) -> bool:
        """Whether the token grants one of `permissions`: its application permissions (`roles`),
        or for a delegated token its scopes (`scp`)."""
        held = self.scopes if self.delegated else self.roles
        return not held.isdisjoint(permissions)


class TokenAuthority:
    def __init__(self, store: Store, clock: Callable[[], float], lifetime_seconds: int = 3599,
                 approve_device_codes_as: str | None = None, approve_db: str | None = None) -> None:
        self.store = store
        self.clock = clock
        self.lifetime = lifetime_seconds
        self.approve_device_codes_as = approve_device_codes_as
        self.approve_db = approve_db
        pem, self.kid = store.signing_key()
        self._private = serialization.load_pem_private_key(pem.encode(), password=None)
        self._public = self._private.public_key()
        self._verified: dict[str, dict[str, Any]] = {}

    # ---- issuing ---------------------------------------------------------------------------

    def tenant(self, tenant_key: str) -> Tenant:
        tenant = self.store.tenant(tenant_key)
        if tenant is None:
            raise TokenError(400, "invalid_tenant", 90002, f"Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        return tenant

    def token(self, tenant_key: str, form: dict[str, str], authorization: str | None, token_url: str) -> dict[str, Any]:
        tenant = self.tenant(tenant_key)
        grant = form.get("grant_type")
        if grant in delegated.GRANTS:
            return delegated.grant(self, tenant, form, token_url)
        if grant != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type. This emulator serves client_credentials, urn:ietf:params:oauth:grant-type:device_code, refresh_token and password.")
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            client_id, secret = basic_credentials(authorization[6:])
        app = self.store.app(client_id) if client_id else None
        if app is None or not app.serves(tenant.id):
            raise TokenError(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found in the directory '{tenant.default_domain}'.")
        scope = form.get("scope", "")
        if not scope.strip().endswith("/.default"):
            raise TokenError(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        if form.get("client_assertion_type") == ASSERTION_TYPE:
            assertions.check(self.store, app, form.get("client_assertion", ""), self.clock())
        elif secret is not None:
            if app.secret is None or not hmac.compare_digest(secret, app.secret):
                raise TokenError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + app.client_id + "'.")
        else:
            raise TokenError(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        if app.public_client:
            # A public client has no application permissions to hold (identity platform, "Public
            # client and confidential client applications"): AADSTS700025 names the mismatch.
            raise TokenError(401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
        return self.issue(tenant, app)

    def device_authorization(self, tenant_key: str, form: dict[str, str], origin: str) -> dict[str, Any]:
        return delegated.device_authorization(self, self.tenant(tenant_key), form, origin)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})  # type: ignore[arg-type]

    def _common_claims(self, tenant: Tenant, app: App) -> dict[str, Any]:
        """What every v1.0 access token for Graph carries, an app's or a person's."""
        now = int(self.clock())
        return {"aud": "https://graph.microsoft.com", "iss": issuer(tenant.id), "iat": now, "nbf": now,
                "exp": now + self.lifetime, "appid": app.client_id, "app_displayname": app.display_name,
                "tid": tenant.id, "ver": "1.0", "uti": uuid.uuid4().hex[:22]}

    def issue(self, tenant: Tenant, app: App) -> dict[str, Any]:
        claims = {
            **self._common_claims(tenant, app),
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + app.client_id)),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + app.client_id)),
            "roles": list(app.roles),
        }
        return {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                "access_token": self.sign(claims)}

    def issue_delegated(self, tenant: Tenant, app: App, admin: Admin, scopes: tuple[str, ...], *,
                        oidc: frozenset[str], authority_root: str, client_info: bool) -> dict[str, Any]:
        """An access token for Graph on behalf of `admin` (access-token-claims-reference: `scp`
        the granted delegated permissions, `wids` the user's directory role template ids,
        `idtyp: user`, no `roles`), with the id token, refresh token and client_info that
        msal needs to cache the account."""
        now = int(self.clock())
        claims = {
            **self._common_claims(tenant, app),
            "acr": "1",
            "amr": ["pwd"],
            "appidacr": "0",
            "idtyp": "user",
            "name": admin.display_name,
            "oid": admin.id,
            "scp": " ".join(scopes),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sub:{admin.id}:{app.client_id}")),
            "unique_name": admin.upn,
            "upn": admin.upn,
            "wids": [ROLE_TEMPLATES[r] for r in admin.roles if r in ROLE_TEMPLATES],
        }
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join([*scopes, *sorted(oidc)]),
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": self.sign(claims),
        }
        if "openid" in oidc:
            answer["id_token"] = self.sign({
                "aud": app.client_id, "iss": f"{authority_root}/{tenant.id}/v2.0", "iat": now, "nbf": now,
                "exp": now + 3600, "name": admin.display_name, "oid": admin.id, "preferred_username": admin.upn,
                "sub": claims["sub"], "tid": tenant.id, "ver": "2.0",
            })
        if client_info:
            info = json.dumps({"uid": admin.id, "utid": tenant.id}).encode()
            answer["client_info"] = base64.urlsafe_b64encode(info).decode().rstrip("=")
        if "offline_access" in oidc:
            answer["refresh_token"] = self.store.add_refresh_token(
                tenant.id, app.client_id, admin.id, " ".join([*scopes, *sorted(oidc)]),
                now + delegated.REFRESH_TOKEN_LIFETIME)
            answer["refresh_token_expires_in"] = delegated.REFRESH_TOKEN_LIFETIME
        return answer

    # ---- checking ---------------------------------------------------------------------------

    def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.strip():
            raise errors.unauthenticated("Access token is empty.")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthenticated("Access token validation failure. Invalid audience.")
        token = token.strip()
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token, self._public, algorithms=["RS256"], audience=list(GRAPH_AUDIENCES),  # type: ignore[arg-type]
                    options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "iss", "tid", "appid"]},
                )
            except jwt.InvalidAudienceError:
                raise errors.unauthenticated("Access token validation failure. Invalid audience.") from None
            except jwt.PyJWTError:
                raise errors.unauthenticated("Access token validation failure.") from None
            if not well_formed(claims):
                raise errors.unauthenticated("Access token validation failure.")
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = claims
        now = self.clock()
        if float(claims["exp"]) <= now:
            raise errors.unauthenticated("Lifetime validation failed, the token is expired.")
        # Graph refuses a token before its `nbf` and one from another issuer than the tenant's
        # own STS (v1.0 app tokens: `https://sts.windows.net/{tid}/`), each with 401
        # InvalidAuthenticationToken (identity platform, "Access tokens": validate nbf and iss).
        if float(claims.get("nbf", 0)) > now:
            raise errors.unauthenticated("Lifetime validation failed, the token is not yet valid.")
        if claims["iss"] != issuer(str(claims["tid"])):
            raise errors.unauthenticated("Access token validation failure. Invalid issuer.")
        app = self.store.app(str(claims["appid"]))
        if app is None or not app.serves(str(claims["tid"])):
            raise errors.unauthenticated("Access token validation failure. The application is not known in the tenant.")
        if claims.get("idtyp") == "user" or "scp" in claims:
            return Principal(str(claims["tid"]), str(claims["appid"]), frozenset(),
                             frozenset(str(claims.get("scp", "")).split()), str(claims.get("oid", "")))
        return Principal(str(claims["tid"]), str(claims["appid"]), frozenset(claims.get("roles") or ()))

    def openid_configuration(self, authority_base: str, tenant: Tenant) -> dict[str, Any]:
        root = f"{authority_base.rstrip('/')}/{tenant.id}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{authority_base.rstrip('/')}/{tenant.id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "emulator.local",
        }

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)  # type: ignore[call-overload]
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}
