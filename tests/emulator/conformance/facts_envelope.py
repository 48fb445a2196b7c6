"""Facts about the error envelope, response headers, 401/403 and the token endpoint
(GRAPH.md §3, §10, §15.6)."""

from __future__ import annotations

from typing import Any

from fact import ABSENT, PRESENT, Check, Fact, matches

ERRORS = "docs:concepts/errors.md"
ADVANCED = "docs:concepts/aad-advanced-queries.md"
CLIENT_CREDENTIALS = "MicrosoftDocs/entra-docs:docs/identity-platform/v2-oauth2-client-creds-grant-flow.md"
MISSING = "/v1.0/users/00000000-0000-4000-8000-000000000000"
CLIENT_REQUEST_ID = "5f2d7c34-1111-4222-8333-944455556666"
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_URL = "/{tenant_id}/oauth2/v2.0/token"
PLAIN_JSON = Check("application/json without OData parameters",
                   lambda v: v.split(";")[0].strip() == "application/json" and "odata" not in v)


def token(name: str, source: str, status: int, url: str = TOKEN_URL, **form_and_expect: Any) -> Fact:
    expect = {k: form_and_expect.pop(k) for k in list(form_and_expect) if k in ("code", "fields", "response_headers",
                                                                                 "awaiting")}
    form = {"grant_type": "client_credentials", "client_id": "{client_id}", "client_secret": "{secret}",
            "scope": GRAPH_SCOPE, **form_and_expect}
    return Fact(name, source, "POST", url, status, auth="none", form=form, **expect)


def aadsts(number: int) -> dict[str, object]:
    return {"error_codes": [number], "error_description": matches(rf"^AADSTS{number}: ")}


ENVELOPE = [
    Fact("error envelope with innerError", ERRORS + " (Error resource type)", "GET", MISSING, 404,
         fields={"error.code": "Request_ResourceNotFound", "error.message": PRESENT,
                 "error.innerError.date": matches(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$"),
                 "error.innerError.request-id": PRESENT, "error.innerError.client-request-id": PRESENT}),
    Fact("client-request-id echoed in the header and innerError", ERRORS + " + " + ADVANCED + " (response examples)",
         "GET", MISSING, 404, headers={"client-request-id": CLIENT_REQUEST_ID},
         fields={"error.innerError.client-request-id": CLIENT_REQUEST_ID},
         response_headers={"client-request-id": CLIENT_REQUEST_ID, "request-id": PRESENT}),
    Fact("without a client-request-id, header and innerError agree", ERRORS + " + GRAPH.md §15.6", "GET", MISSING, 404,
         same=("client-request-id", "error.innerError.client-request-id")),
    Fact("client-request-id echoed on success", ERRORS, "GET", "/v1.0/users/{ada}", 200,
         headers={"client-request-id": CLIENT_REQUEST_ID}, response_headers={"client-request-id": CLIENT_REQUEST_ID}),
    Fact("success content type is OData JSON", "GRAPH.md §15.6 (Graph responses)", "GET", "/v1.0/users/{ada}", 200,
         response_headers={"content-type": ODATA_JSON}),
    Fact("error content type is plain JSON", "GRAPH.md §15.6 (Graph responses)", "GET", MISSING, 404,
         response_headers={"content-type": PLAIN_JSON}),
    Fact("OData-Version 4.0 on answers", "GRAPH.md §15.6 + docs:concepts/json-batching.md (response headers)", "GET",
         "/v1.0/users/{ada}", 200, response_headers={"odata-version": "4.0"}),
    Fact("wrong method on a user", ERRORS + " (405)", "PUT", "/v1.0/users/{ada}", 405, json={}),
    Fact("malformed JSON body", ERRORS + " (400 malformed request)", "POST", "/v1.0/users", 400,
         headers={"Content-Type": "application/json"}, content='{"displayName": '),
]

AUTH = [
    Fact("no token", ERRORS + " (401) + GRAPH.md §15.6", "GET", "/v1.0/users", 401, auth="none",
         code="InvalidAuthenticationToken", message="Access token is empty.",
         response_headers={"www-authenticate": PRESENT}),
    Fact("a token that is not a JWT", "GRAPH.md §15.6", "GET", "/v1.0/users", 401, auth="raw:Bearer not-a-jwt",
         code="InvalidAuthenticationToken", message="Access token validation failure."),
    Fact("an expired token", "GRAPH.md §15.6", "GET", "/v1.0/users", 401, auth="expired",
         code="InvalidAuthenticationToken", message="Lifetime validation failed, the token is expired."),
    Fact("create without a create permission", "docs:concepts/json-batching.md (403 example) + GRAPH.md §3.2", "POST",
         "/v1.0/users", 403, auth="readonly", json={"displayName": "x"}, code="Authorization_RequestDenied",
         message="Insufficient privileges to complete the operation."),
    Fact("delete without a delete permission", "docs:api-reference/v1.0/api/user-delete.md (permissions)", "DELETE",
         "/v1.0/users/{ada}", 403, auth="readonly", code="Authorization_RequestDenied"),
    Fact("read with User.Read.All", "docs:api-reference/v1.0/api/user-list.md (permissions)", "GET", "/v1.0/users",
         200, auth="readonly"),
]

TOKENS = [
    token("client credentials token", CLIENT_CREDENTIALS + " (successful response)", 200,
          fields={"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": PRESENT, "access_token": PRESENT}),
    token("token answer is plain JSON", CLIENT_CREDENTIALS + " (successful response)", 200,
          response_headers={"content-type": PLAIN_JSON}),
    token("wrong secret", CLIENT_CREDENTIALS + " (error codes) + GRAPH.md §15.6", 401, client_secret="wrong",
          code="invalid_client", fields=aadsts(7000215)),
    token("unknown tenant", "GRAPH.md §15.6 (AADSTS90002 reports 2023, 2025)", 400,
          url="/22222222-2222-2222-2222-222222222222/oauth2/v2.0/token", code="invalid_tenant", fields=aadsts(90002)),
    token("unknown client", CLIENT_CREDENTIALS + " + GRAPH.md §15.6", 400,
          client_id="11111111-1111-1111-1111-111111111111", code="unauthorized_client", fields=aadsts(700016)),
    token("scope without /.default", CLIENT_CREDENTIALS + " (scope must end in /.default)", 400,
          scope="https://graph.microsoft.com/User.Read.All", code="invalid_scope", fields=aadsts(1002012)),
    token("token errors carry error_uri", "GRAPH.md §15.6 (token body row)", 401, client_secret="wrong",
          fields={"error_uri": PRESENT}),
    token("token success has no refresh token", CLIENT_CREDENTIALS, 200, fields={"refresh_token": ABSENT}),
]

FACTS = ENVELOPE + AUTH + TOKENS
