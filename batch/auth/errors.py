"""What the identity platform's refusals mean, and what to do about them: an error answer of
the token endpoint (its `error`, AADSTS code and description) becomes an `AuthError` whose
message names the code and the remedy; secrets are scrubbed from every message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from batch.errors import AuthError

TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
"""`error` values of the token endpoint that are worth another try."""

_REMEDIES = {
    "7000215": "The client secret is wrong. Copy the secret's *value* (not its id) from the app "
               "registration's Certificates & secrets page into AZURE_CLIENT_SECRET, or create a new one.",
    "7000222": "The client secret has expired. Create a new secret under the app registration's "
               "Certificates & secrets and put it in AZURE_CLIENT_SECRET.",
    "700016": "No application with this client id exists in the tenant. Check AZURE_CLIENT_ID and "
              "AZURE_TENANT_ID (the app must be registered in, or consented to by, that tenant).",
    "90002": "The tenant was not found. Check AZURE_TENANT_ID (a tenant GUID or its "
             "*.onmicrosoft.com domain) and the authority host.",
    "700027": "The client assertion was refused. Upload the certificate (its public part) to the app "
              "registration's Certificates & secrets, and check AZURE_CLIENT_CERTIFICATE_PATH.",
    "700024": "The client assertion is outside its valid time range. Check this machine's clock.",
    "7000218": "The request held neither a client secret nor a certificate. Set AZURE_CLIENT_SECRET or "
               "AZURE_CLIENT_CERTIFICATE_PATH.",
    "1002012": "The scope was refused. The tool asks for https://graph.microsoft.com/.default.",
    "70011": "The scope was refused. The tool asks for https://graph.microsoft.com/.default.",
    "7000112": "The application is disabled in the tenant. Ask an administrator to enable it.",
    "700023": "The application is not allowed to get tokens for this tenant. Check AZURE_TENANT_ID.",
}
_REMEDY_BY_ERROR = {
    "invalid_client": "Check the app registration's credentials (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or "
                      "AZURE_CLIENT_CERTIFICATE_PATH).",
    "unauthorized_client": "The app is not authorised in this tenant. Check AZURE_CLIENT_ID and "
                           "AZURE_TENANT_ID, and that an administrator consented to the app.",
    "invalid_tenant": "Check AZURE_TENANT_ID.",
}
_AADSTS = re.compile(r"AADSTS(\d+)")


def auth_error(body: Mapping[str, Any], *, secret: str | None = None) -> AuthError:
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
    remedy = _REMEDIES.get(code or "") or _REMEDY_BY_ERROR.get(error, "Check the app registration and its "
                                                                      "credentials, then run again.")
    message = scrub(f"The identity platform refused the credentials ({error}, {summary}). {remedy}", secret)
    return AuthError(message, code=code, error=error)


def unavailable(deadline: float, detail: str, secret: str | None) -> AuthError:
    return AuthError(scrub(
        f"The token endpoint could not be reached or kept failing for {deadline:g} s ({detail}). "
        "Check the network, a proxy, or the authority host (AZURE_AUTHORITY_HOST), then resume the run.", secret),
        code=None, error="temporarily_unavailable")


def unreachable(host: str, setting: str, why: str, tries: int) -> AuthError:
    """The authority host cannot be connected to at all (its name does not resolve, the
    connection is refused, its TLS certificate is not trusted): said after a few tries instead
    of the transient failures' long deadline, naming the host and where it was set."""
    where = f"set by {setting}" if setting else "the default; AZURE_AUTHORITY_HOST sets another"
    return AuthError(
        f"Cannot connect to the authority host {host} ({where}): {why} ({tries} tries). Check the host name and "
        "the network (a proxy, a firewall), then run again or resume the run.", code=None, error="unreachable")


def scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


__all__ = ["TRANSIENT_ERRORS", "auth_error", "scrub", "unavailable", "unreachable"]
