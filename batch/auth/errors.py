"""What the identity platform's refusals mean, and what to do about them: an error answer of
the token endpoint (its `error`, AADSTS code and description) becomes an `AuthError` whose
message names the code, the setting that was used (an environment variable, or a profile and
its key: `Sources`) and the remedy; secrets are scrubbed from every message.

None of these messages says what to do *after* the fix (run again, or `resume`): that depends
on the command (an export has no resume), and the CLI adds it."""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from typing import Any

from batch.config import ENVIRONMENT, Sources
from batch.errors import AuthError

TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
"""`error` values of the token endpoint that are worth another try."""

_REMEDIES = {
    "7000215": "The client secret is wrong: copy the secret's *value* (not its id) from the app registration's "
               "Certificates & secrets page into {client_secret}, or create a new one.",
    "7000222": "The client secret has expired: create a new secret under the app registration's "
               "Certificates & secrets and put it in {client_secret}.",
    "700016": "No application with client id {client_id_value} exists in tenant {tenant_value}: check "
              "{client_id} and {tenant_id} (the app must be registered in, or consented to by, that tenant).",
    "90002": "Tenant {tenant_value} was not found at {authority}: check {tenant_id} (a tenant GUID or its "
             "*.onmicrosoft.com domain) and the authority host ({authority_host}).",
    "700027": "The client assertion was refused: upload the certificate (its public part) to the app "
              "registration's Certificates & secrets, and check {certificate_path}.",
    "700024": "The client assertion is outside its valid time range. Check this machine's clock.",
    "7000218": "The request held neither a client secret nor a certificate: set {client_secret} or "
               "{certificate_path}.",
    "1002012": "The scope was refused. The tool asks for https://graph.microsoft.com/.default.",
    "70011": "The scope was refused. The tool asks for https://graph.microsoft.com/.default.",
    "7000112": "The application is disabled in the tenant. Ask an administrator to enable it.",
    "700023": "The application is not allowed to get tokens for this tenant: check {tenant_id}.",
}
_REMEDY_BY_ERROR = {
    "invalid_client": "Check the app registration's credentials ({client_id}, {client_secret} or "
                      "{certificate_path}).",
    "unauthorized_client": "The app is not authorised in this tenant: check {client_id} and {tenant_id}, and that "
                           "an administrator consented to the app.",
    "invalid_tenant": "Check {tenant_id}.",
}
_METHOD_REMEDIES = {
    # "OAuth 2.0 device authorization grant": authorization_declined, bad_verification_code,
    # expired_token; AADSTS7000218 when the app is not a public client.
    "device-code": {
        "70019": "The code was not entered in time (a code is valid for 15 minutes): run again and enter the new "
                 "code at the page shown.",
        "expired_token": "The code was not entered in time (a code is valid for 15 minutes): run again and enter "
                         "the new code at the page shown.",
        "65004": "The sign-in was declined at the sign-in page: run again and accept, signed in as an administrator "
                 "of tenant {tenant_value}.",
        "authorization_declined": "The sign-in was declined at the sign-in page: run again and accept.",
        "70018": "The code was not accepted: run again and enter the new code exactly as shown.",
        "7000218": "The app {client_id_value} is not a public client: turn on 'Allow public client flows' in its "
                   "app registration (Authentication), or leave {client_id} unset to sign in through Microsoft Graph "
                   "Command Line Tools.",
        "700016": "No application with client id {client_id_value} exists in tenant {tenant_value}: check "
                  "{client_id}, or leave it unset to sign in through Microsoft Graph Command Line Tools.",
        "65001": "The app {client_id_value} has no consent for the permissions asked: an administrator grants admin "
                 "consent to its delegated Microsoft Graph permissions (User.ReadWrite.All, Organization.Read.All, "
                 "Application.Read.All).",
        "50076": "The tenant asks for multi-factor authentication: complete it at the sign-in page, then run again.",
    },
    # "Workload identity federation": AADSTS70021 and its variants name what did not match.
    "workload-identity": {
        "70021": "No federated credential of app {client_id_value} matches the token in {federated_token_file}: add "
                 "one under the app registration's Certificates & secrets > Federated credentials with the token's "
                 "issuer, subject and audience (api://AzureADTokenExchange).",
        "700211": "No federated credential of app {client_id_value} trusts the issuer of the token in "
                  "{federated_token_file}: add one for that issuer under the app registration's Certificates & "
                  "secrets > Federated credentials.",
        "700212": "No federated credential of app {client_id_value} has the audience of the token in "
                  "{federated_token_file} (api://AzureADTokenExchange is the usual one): correct it under the app "
                  "registration's Certificates & secrets > Federated credentials.",
        "700213": "No federated credential of app {client_id_value} has the subject of the token in "
                  "{federated_token_file}: add one for that subject (for GitHub Actions: repo:OWNER/REPO:...) under "
                  "the app registration's Certificates & secrets > Federated credentials.",
        "700024": "The token in {federated_token_file} has expired or is not valid yet: it must be fresh (GitHub "
                  "Actions' and Kubernetes' tokens last minutes to an hour; the file is read again for each token).",
        "700027": "The token in {federated_token_file} could not be verified against its issuer's published keys "
                  "(the jwks_uri of the issuer's /.well-known/openid-configuration): give the file a token exactly as "
                  "the issuer wrote it (not edited or re-signed), fresh from the issuer named in the app's federated "
                  "credential (GitHub Actions: the job's id token, requested with `permissions: id-token: write`).",
        "invalid_client": "Check {client_id} and the app registration's federated credentials against the token in "
                          "{federated_token_file}.",
    },
}
_DEFAULT_REMEDY = "Check the app registration and its credentials ({client_id}, {client_secret} or {certificate_path})."
_AADSTS = re.compile(r"AADSTS(\d+)")


def _authority_setting(sources: Sources) -> str:
    """Where the authority host was set, or how to set another."""
    if sources.authority_host:
        return sources.authority_host
    if sources.profile:
        return f"the default; authority_host in profile '{sources.profile}' sets another"
    return "the default; AZURE_AUTHORITY_HOST sets another"


def _fill(template: str, sources: Sources, values: Mapping[str, str]) -> str:
    names = {"tenant_id": sources.tenant_id, "client_id": sources.client_id, "client_secret": sources.client_secret,
             "certificate_path": sources.certificate_path, "authority_host": _authority_setting(sources),
             "federated_token_file": sources.federated_token_file}
    return template.format(**names, **values)


def auth_error(body: Mapping[str, Any], *, secret: str | None = None, sources: Sources = ENVIRONMENT,
               tenant: str = "", client_id: str = "", authority: str = "", method: str = "") -> AuthError:
    """The token endpoint's refusal `body` as an `AuthError`: its AADSTS code, and a remedy
    naming the settings as they were given (`sources`) and, for a sign-in method with its own
    refusals (device code, workload identity), that method's remedy."""
    error = str(body.get("error") or "unknown_error")
    description = str(body.get("error_description") or "")
    codes = body.get("error_codes")
    code = None
    if isinstance(codes, list) and codes:
        code = str(codes[0])
    else:
        match = _AADSTS.search(description)
        code = match.group(1) if match else None
    summary = description.split(" Trace ID:")[0].strip() or error
    if code and f"AADSTS{code}" not in summary:
        summary = f"AADSTS{code}: {summary}"
    own = _METHOD_REMEDIES.get(method, {})
    template = own.get(code or "") or own.get(error) or _REMEDIES.get(code or "") or \
        _REMEDY_BY_ERROR.get(error, _DEFAULT_REMEDY)
    remedy = _fill(template, sources, {"tenant_value": tenant or "(none)", "client_id_value": client_id or "(none)",
                                       "authority": authority or "the authority host"})
    what = f"the {method} sign-in" if method else "the credentials"
    message = scrub(f"The identity platform refused {what} of {sources.used} ({error}, {summary}). "
                    f"{remedy}", secret)
    return AuthError(message, code=code, error=error)


def unavailable(deadline: float, detail: str, secret: str | None, sources: Sources = ENVIRONMENT) -> AuthError:
    return AuthError(scrub(
        f"The token endpoint could not be reached or kept failing for {deadline:g} s ({detail}). "
        f"Check the network, a proxy, or the authority host ({_authority_setting(sources)}).", secret),
        code=None, error="temporarily_unavailable")


def unreachable(host: str, setting: str, why: str, tries: int) -> AuthError:
    """The authority host cannot be connected to at all (its name does not resolve, the
    connection is refused): said after a few tries instead of the transient failures' long
    deadline, naming the host and where it was set."""
    where = f"set by {setting}" if setting else "the default; AZURE_AUTHORITY_HOST sets another"
    return AuthError(
        f"Cannot connect to the authority host {host} ({where}): {why} ({tries} tries). Check the host name and "
        "the network (a proxy, a firewall).", code=None, error="unreachable")


def untrusted(host: str, failure: ssl.SSLCertVerificationError, sources: Sources, ca_path: str | None) -> AuthError:
    """The token endpoint's TLS certificate failed verification: no retry can change that, so
    it is said at once, naming the CA file that was used (and the setting that named it), or
    that none was given, and where to name the right one."""
    reason = getattr(failure, "verify_message", None) or failure.reason or str(failure)
    where = f"set by {sources.authority_host}" if sources.authority_host else "the default"
    if ca_path and sources.ca_file:
        trusted = f"It was checked against the CA file {ca_path} ({sources.ca_file})"
        remedy = f"point {sources.ca_file} at the PEM file of the CA that issued {host}'s certificate"
    else:
        if ca_path:
            trusted = f"It was checked against the CA file {ca_path}"
        elif sources.fallback_ca:
            trusted = f"No CA file was given, so it was checked against {sources.fallback_ca}"
        else:
            trusted = "No CA file was given, so it was checked against the default trusted CAs"
        remedy = (f"add ca_file = \"/path/to/ca.pem\" to profile '{sources.profile}'" if sources.profile
                  else "set SSL_CERT_FILE (or a profile's ca_file)") + \
            f", naming the PEM file of the CA that issued {host}'s certificate"
    if "mismatch" in str(reason).lower():
        remedy = f"use the host name that {host}'s certificate was issued for in the authority host ({where})"
    return AuthError(
        f"The token endpoint {host} ({where}) presented a TLS certificate that could not be verified "
        f"(certificate verify failed: {reason}). {trusted}. No retry can fix this: {remedy} "
        "(for `entra-batch emulator --tls`, the ca.pem it prints as SSL_CERT_FILE).",
        code=None, error="tls_untrusted")


def scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


__all__ = ["TRANSIENT_ERRORS", "auth_error", "scrub", "unavailable", "unreachable", "untrusted"]
