"""The emulator's identity platform: a client-credentials token endpoint that msal can use,
its OpenID configuration, and the check of every bearer token Graph receives.

Tokens are RS256 JWTs signed with a key kept in the store (so they stay valid across a
restart of the server) and carry `tid`, `appid`, `roles` and `exp` as Entra's v1 app tokens
do (GRAPH.md §10). A token names its tenant; every Graph call is scoped to that tenant.
"""

from __future__ import annotations

import base64
import hmac
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import errors
from .records import App, Tenant
from .store import Store

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    app_id: str
    roles: frozenset[str]

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return not self.roles.isdisjoint(roles)


class TokenError(Exception):
    """An OAuth error response of the token endpoint (`error`, `error_description`, `error_codes`)."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description

    def body(self, now: float) -> dict[str, Any]:
        trace = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
                                 f"Correlation ID: {uuid.uuid4()} Timestamp: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(now))}",
            "error_codes": [self.code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now)),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
            # The identity platform's own error page for the code (GRAPH.md §15.6): a string
            # only, nothing fetches it.
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def issuer(tenant_id: str) -> str:
    """The `iss` of a v1.0 app token for Graph (GRAPH.md §10)."""
    return f"https://sts.windows.net/{tenant_id}/"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _well_formed(claims: dict[str, Any]) -> bool:
    """Claims of the types Entra writes (numeric dates, string ids, a list of role names)."""
    roles = claims.get("roles", [])
    return (_number(claims["exp"]) and _number(claims.get("nbf", 0)) and isinstance(claims["tid"], str)
            and isinstance(claims["appid"], str) and isinstance(claims["iss"], str)
            and isinstance(roles, list) and all(isinstance(r, str) for r in roles))


def _basic_credentials(encoded: str) -> tuple[str, str]:
    """`client_id:secret` of an HTTP Basic header, or the identity platform's 400 for a header it cannot read (AADSTS90023,
    "Request is malformed or invalid.")."""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise TokenError(400, "invalid_request", 90023, "Request is malformed or invalid: the Authorization "
                         "header is not Basic base64(client_id:client_secret).") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise TokenError(400, "invalid_request", 90023, "Request is malformed or invalid: the Authorization "
                         "header is not Basic base64(client_id:client_secret).")
    return client_id, secret


class TokenAuthority:
    def __init__(self, store: Store, clock: Callable[[], float], lifetime_seconds: int = 3599) -> None:
        self.store = store
        self.clock = clock
        self.lifetime = lifetime_seconds
        pem, self.kid = store.signing_key()
        self._private = serialization.load_pem_private_key(pem.encode(), password=None)
        self._public = self._private.public_key()
        self._verified: dict[str, dict[str, Any]] = {}

    # ---- issuing ---------------------------------------------------------------------------

    def token(self, tenant_key: str, form: dict[str, str], authorization: str | None, token_url: str) -> dict[str, Any]:
        tenant = self.store.tenant(tenant_key)
        if tenant is None:
            raise TokenError(400, "invalid_tenant", 90002, f"Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type. Only client_credentials is served by this emulator.")
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            client_id, secret = _basic_credentials(authorization[6:])
        app = self.store.app(client_id) if client_id else None
        if app is None or app.tenant_id != tenant.id:
            raise TokenError(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found in the directory '{tenant.default_domain}'.")
        scope = form.get("scope", "")
        if not scope.strip().endswith("/.default"):
            raise TokenError(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        if form.get("client_assertion_type") == ASSERTION_TYPE:
            self._check_assertion(app, form.get("client_assertion", ""), token_url)
        elif secret is not None:
            if app.secret is None or not hmac.compare_digest(secret, app.secret):
                raise TokenError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + app.client_id + "'.")
        else:
            raise TokenError(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        return self.issue(tenant, app)

    def issue(self, tenant: Tenant, app: App) -> dict[str, Any]:
        now = int(self.clock())
        claims = {
            "aud": "https://graph.microsoft.com",
            "iss": issuer(tenant.id),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "appid": app.client_id,
            "app_displayname": app.display_name,
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + app.client_id)),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + app.client_id)),
            "roles": list(app.roles),
            "tid": tenant.id,
            "ver": "1.0",
            "uti": uuid.uuid4().hex[:22],
        }
        token = jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})  # type: ignore[arg-type]
        return {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime, "access_token": token}

    def _check_assertion(self, app: App, assertion: str, token_url: str) -> None:
        if not app.certificate:
            raise TokenError(401, "invalid_client", 700027, "Client assertion contains an invalid signature: the application has no certificate.")
        public_key = x509.load_pem_x509_certificate(app.certificate.encode()).public_key()
        try:
            claims = jwt.decode(
                assertion, public_key, algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(401, "invalid_client", 700027, f"Client assertion failed signature validation. ({exc.__class__.__name__})") from None
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise TokenError(401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer, or iss/sub is not the client id.")
        if not str(claims.get("aud", "")).rstrip("/").endswith("/oauth2/v2.0/token"):
            raise TokenError(401, "invalid_client", 700212, f"No matching federated identity record found for presented assertion audience '{claims.get('aud')}'.")
        exp = claims.get("exp", 0)
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp < self.clock():
            raise TokenError(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")

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
            if not _well_formed(claims):
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
        if app is None or app.tenant_id != claims["tid"]:
            raise errors.unauthenticated("Access token validation failure. The application is not known in the tenant.")
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
