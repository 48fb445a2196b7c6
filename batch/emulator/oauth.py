"""What every grant of the emulator's token endpoint shares: the identity platform's error
response (`TokenError`), the issuer of the tokens it signs, and the reading of a Basic
Authorization header."""

from __future__ import annotations

import base64
import math
import time
import uuid
from typing import Any

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


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


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def well_formed(claims: dict[str, Any]) -> bool:
    """Claims of the types Entra writes (numeric dates, string ids, a list of role names, a
    space-separated `scp` string, a list of role template ids in `wids`)."""
    roles = claims.get("roles", [])
    wids = claims.get("wids", [])
    return (number(claims["exp"]) and number(claims.get("nbf", 0)) and isinstance(claims["tid"], str)
            and isinstance(claims["appid"], str) and isinstance(claims["iss"], str)
            and isinstance(roles, list) and all(isinstance(r, str) for r in roles)
            and isinstance(claims.get("scp", ""), str) and isinstance(claims.get("oid", ""), str)
            and isinstance(wids, list) and all(isinstance(w, str) for w in wids))


def form_error(name: str) -> TokenError:
    """AADSTS900144, a required parameter missing from the request body."""
    return TokenError(400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def basic_credentials(encoded: str) -> tuple[str, str]:
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


