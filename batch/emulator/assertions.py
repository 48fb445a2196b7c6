"""Client assertions (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`)
at the token endpoint: an app's own certificate, or a token of an external identity
provider that a federated credential of the app trusts.

- Certificate ("Microsoft identity platform application authentication certificate
  credentials"): `iss` and `sub` are the client id, `aud` the token endpoint, signed with the
  registered certificate's key. With an `x5c` header (msal's `send_x5c`, subject name and issuer
  authentication) the leaf certificate must be the registered one: real Entra also accepts a
  renewed certificate of the same subject and issuer for apps set up for SNI; the emulator does
  not model that trust (docs/emulator.md).
- Federated ("Workload identity federation", "Important considerations and restrictions"):
  `iss`, `sub` and `aud` must match one federated credential of the app exactly (AADSTS70021
  when the app has none, AADSTS700211 no issuer match, AADSTS700213 no subject match,
  AADSTS700212 no audience match), the token is signed by a key the issuer publishes
  (here: the JWKS given to `Store.trust_issuer`) and is within its lifetime (AADSTS700024).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .oauth import TokenError, number
from .records import App
from .store import Store


def check(store: Store, app: App, assertion: str, now: float) -> None:
    """Accept the assertion for `app`, or raise the identity platform's error."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation: it is not a JWT.") from None
    # An app's own assertion names it as issuer and subject; a federated one is issued by an
    # external identity provider about one of its workloads.
    if app.client_id in (str(unverified.get("iss", "")).lower(), str(unverified.get("sub", "")).lower()):
        _certificate(app, assertion, header, now)
    else:
        _federated(store, app, assertion, header, unverified)
    _in_time(unverified, now)


def _certificate(app: App, assertion: str, header: dict[str, Any], now: float) -> None:
    if not app.certificate:
        raise TokenError(401, "invalid_client", 700027, "Client assertion contains an invalid signature: the application has no certificate.")
    registered = x509.load_pem_x509_certificate(app.certificate.encode())
    _key_in_time(registered, now)
    if "x5c" in header:
        leaf = _x5c_leaf(header["x5c"])
        if leaf != registered.public_bytes(serialization.Encoding.DER):
            raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation: the certificate in the x5c header is not a certificate registered for the application (the emulator does not model subject name and issuer trust).")
    try:
        claims = jwt.decode(
            assertion, registered.public_key(), algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(401, "invalid_client", 700027, f"Client assertion failed signature validation. ({exc.__class__.__name__})") from None
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise TokenError(401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer, or iss/sub is not the client id.")
    if not str(claims.get("aud", "")).rstrip("/").endswith("/oauth2/v2.0/token"):
        raise TokenError(401, "invalid_client", 700212, f"No matching federated identity record found for presented assertion audience '{claims.get('aud')}'.")


def _key_in_time(registered: x509.Certificate, now: float) -> None:
    """The app's key credential is valid from the certificate's notBefore to its notAfter
    (keyCredential startDateTime/endDateTime, keycredential.md). Entra refuses an assertion
    signed with an expired key before looking at the signature, as 700027 with the reason and
    the key's dates, e.g. "AADSTS700027: Client assertion contains an invalid signature.
    [Reason - The key used is expired., Thumbprint of key used by client: '…', Found key
    'Start=01/28/2018 16:00:00, End=01/28/2019 16:00:00', …]" (reported in
    microsoft/azure-tools-for-java#2785). A key not valid yet is refused the same way (the
    reason's wording there is the emulator's)."""
    start, end = registered.not_valid_before_utc, registered.not_valid_after_utc
    if end.timestamp() < now:
        reason = "The key used is expired."
    elif start.timestamp() > now:
        reason = "The key used is not yet valid."
    else:
        return
    thumbprint = hashlib.sha1(registered.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    raise TokenError(401, "invalid_client", 700027,
                     f"Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by "
                     f"client: '{thumbprint}', Found key 'Start={start:%m/%d/%Y %H:%M:%S}, End={end:%m/%d/%Y %H:%M:%S}']")


def _x5c_leaf(chain: Any) -> bytes:
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation: the x5c header is not a certificate chain.")
    try:
        # msal sends the PEM body as it is, line breaks included (msal.application.extract_certs).
        return base64.b64decode("".join(chain[0].split()), validate=True)
    except (binascii.Error, ValueError):
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation: the x5c header is not base64.") from None


def _federated(store: Store, app: App, assertion: str, header: dict[str, Any], claims: dict[str, Any]) -> None:
    credentials = store.federated_credentials(app.client_id)
    iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if not credentials:
        raise TokenError(400, "invalid_request", 70021, "No matching federated identity record found for presented assertion. "
                         f"Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.")
    by_issuer = [c for c in credentials if c["issuer"] == iss]
    if not by_issuer:
        raise TokenError(400, "invalid_request", 700211, f"No matching federated identity record found for presented assertion issuer '{iss}'. "
                         "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.")
    by_subject = [c for c in by_issuer if c["subject"] == sub]
    if not by_subject:
        raise TokenError(400, "invalid_request", 700213, f"No matching federated identity record found for presented assertion subject '{sub}'. "
                         "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.")
    if not any(c["audience"] in audiences for c in by_subject):
        raise TokenError(400, "invalid_request", 700212, f"No matching federated identity record found for presented assertion audience '{aud}'. "
                         "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.")
    jwks = store.issuer_jwks(str(iss))
    if jwks is None:
        # Entra reads the issuer's OpenID configuration and keys; an issuer it cannot reach is
        # AADSTS50166 ("Request to External OIDC endpoint failed."). Reached only when a federated
        # credential names the issuer but the emulator holds no keys for it (a test's
        # Store.add_federated_credential without Store.trust_issuer; `--federated-subject` always
        # comes with `--trust-issuer`). An issuer no federated credential of the app names is
        # AADSTS700211 above, whether or not the emulator was told about it: the issuer is
        # matched against the app's records before its keys are fetched.
        raise TokenError(400, "invalid_request", 50166, f"Request to External OIDC endpoint failed: the issuer '{iss}' publishes no keys this emulator knows (trust it with --trust-issuer).")
    try:
        key = jwt.PyJWKSet.from_dict(jwks)[str(header.get("kid", ""))] if header.get("kid") else jwt.PyJWKSet.from_dict(jwks).keys[0]
        jwt.decode(assertion, key.key, algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
                   options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False})
    except (jwt.PyJWTError, KeyError, IndexError):
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation: no key of the issuer verifies it.") from None


def _in_time(claims: dict[str, Any], now: float) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not number(exp) or not number(nbf) or float(exp or 0) < now or float(nbf or 0) > now + 300:
        raise TokenError(401, "invalid_client", 700024,
                         "Client assertion is not within its valid time range.")
