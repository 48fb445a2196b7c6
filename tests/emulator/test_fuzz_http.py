"""Hypothesis against the emulator's HTTP layer (issue 15): random paths, query options, page
tokens, bearer tokens (valid, forged, signed with odd claims), headers, Host values, JSON and
non-JSON bodies and $batch envelopes. Whatever comes in, no 500 goes out and every 4xx has
Graph's error envelope (`{"error": {"code", "message", "innerError"}}`), or the identity
platform's (`error`, `error_description`) on the token endpoint.

Sized for CI (a few seconds). To run it longer:
    ENTRA_BATCH_FUZZ_EXAMPLES=20000 pytest tests/emulator/test_fuzz_http.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.emulator import EmulatorSettings, Store, create_app
from batch.emulator.app import EmulatorApp
from batch.emulator.messages import split_path
from batch.emulator.settings import Quotas

EXAMPLES = int(os.environ.get("ENTRA_BATCH_FUZZ_EXAMPLES", "400"))
TOKEN_ENDPOINT_SUFFIX = "/oauth2/v2.0/token"


class Target:
    """One emulator with a few customers, and what a valid client holds."""

    def __init__(self) -> None:
        self.store = Store(":memory:")
        self.app: EmulatorApp = create_app(self.store, EmulatorSettings(quotas=Quotas(enabled=False)))
        self.loop = asyncio.new_event_loop()
        self.client = self.store.default_app()
        tenant = self.store.tenant(self.client.tenant_id)
        assert tenant is not None
        self.tenant = tenant
        self.token = self.app.service.tokens.issue(tenant, self.client)["access_token"]
        pem, self.kid = self.store.signing_key()
        self.key = serialization.load_pem_private_key(pem.encode(), password=None)
        self.claims = jwt.decode(self.token, options={"verify_signature": False})
        for i in range(3):
            self.call("POST", "/v1.0/users", {"authorization": f"Bearer {self.token}", "host": "emulator"},
                      json.dumps(_customer(i)).encode(), b"")

    def call(self, method: str, path: str, headers: dict[str, str], body: bytes,
             query: bytes) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        raw_path = path.encode("utf-8", "surrogateescape")
        scope = {"type": "http", "method": method, "path": path, "raw_path": raw_path, "scheme": "http",
                 "query_string": query, "http_version": "1.1",
                 "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]}
        self.loop.run_until_complete(self.app(scope, receive, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    def close(self) -> None:
        self.loop.close()
        self.store.close()


def _customer(i: int) -> dict[str, Any]:
    return {"displayName": f"Fuzz {i}", "mail": f"fuzz{i}@example.com",
            "identities": [{"signInType": "emailAddress", "issuer": "contoso.onmicrosoft.com",
                            "issuerAssignedId": f"fuzz{i}@example.com"}],
            "passwordProfile": {"password": "Xy12345678!", "forceChangePasswordNextSignIn": False},
            "passwordPolicies": "DisablePasswordExpiration"}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


# ---- strategies ---------------------------------------------------------------------------------

latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
words = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=4),
    max_leaves=12,
)
USER_PROPERTIES = ["displayName", "givenName", "surname", "mail", "otherMails", "identities", "passwordProfile",
                   "passwordPolicies", "accountEnabled", "usageLocation", "userPrincipalName", "jobTitle",
                   "preferredLanguage", "employeeId", "extension_0123456789abcdef0123456789abcdef_x", "id",
                   "@odata.type", "businessPhones", "mobilePhone", "newUserPrincipalName", "autoReconcileProxyConflict"]
user_bodies = st.dictionaries(st.sampled_from(USER_PROPERTIES) | words, json_values, max_size=6) | st.builds(
    lambda extra: {**_customer(0), **extra},
    st.dictionaries(st.sampled_from(USER_PROPERTIES), json_values, max_size=3))

SEGMENTS = ["users", "$count", "delta", "delta()", "microsoft.graph.delta()", "directory", "deletedItems",
            "microsoft.graph.user", "graph.user", "restore", "$batch", "organization", "extensionProperties",
            "applications(appId='x')", "00000000-0000-0000-0000-000000000000", "fuzz0@example.com", "'x'", "", "..",
            "%", "%ff", "%00", "a%2Fb"]
segments = st.lists(st.sampled_from(SEGMENTS) | latin1.map(lambda s: quote(s, safe="$()'@,;=")), max_size=4)
prefixes = st.sampled_from(["/v1.0", "/beta", "/{tenant}", "/contoso.onmicrosoft.com", "/common", "", "//v1.0", "/V1.0"])


def _page_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


OPTIONS = ["$filter", "$select", "$top", "$orderby", "$count", "$search", "$skiptoken", "$deltatoken", "$skip",
           "$expand", "$format", "filter", "top", "api-version", "authorization_endpoint"]
FILTERS = ["identities/any(c:c/issuerAssignedId eq 'a' and c/issuer eq 'b')", "id eq 'x'", "displayName eq 'a'",
           "startswith(displayName,'a')", "endswith(mail,'a')", "not(accountEnabled eq true)", "(", ")", "eq", "'",
           "displayName eq 'a' or " * 20 + "displayName eq 'b'", "createdDateTime ge 2020-01-01T00:00:00Z",
           "id in ('a','b')", "accountEnabled ne true", "extension_0123456789abcdef0123456789abcdef_x eq 'a'"]
option_values = (st.sampled_from(FILTERS) | words | st.integers().map(str)
                 | st.sampled_from(["true", "false", "0", "1000", "999", "-1", "OR", "AND", '"displayName:a"',
                                    '"displayName:a" OR', "displayName desc", "createdDateTime", "id,mail"])
                 | json_values.map(_page_token) | st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode()))
queries = st.one_of(
    st.dictionaries(st.sampled_from(OPTIONS) | words, option_values, max_size=4).map(
        lambda q: "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in q.items()).encode()),
    st.binary(max_size=60),
)


@st.composite
def authorizations(draw: st.DrawFn, target: Target) -> str | None:
    kind = draw(st.sampled_from(["valid", "valid", "valid", "none", "garbage", "basic", "signed", "alg-none"]))
    if kind == "valid":
        return f"Bearer {target.token}"
    if kind == "none":
        return None
    if kind == "garbage":
        return draw(latin1)
    if kind == "basic":
        return "Basic " + draw(latin1 | st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()))
    claims = dict(target.claims)
    for name in draw(st.lists(st.sampled_from(["exp", "nbf", "iss", "tid", "appid", "roles", "aud"]), max_size=3)):
        if draw(st.booleans()):
            claims.pop(name, None)
        else:
            claims[name] = draw(json_values)
    # PyJWS signs any payload (jwt.encode refuses odd claim types, which a forger would not).
    payload = json.dumps(claims).encode()
    if kind == "alg-none":
        return "Bearer " + jwt.api_jws.PyJWS().encode(payload, None, algorithm="none")
    return "Bearer " + jwt.api_jws.PyJWS().encode(payload, target.key, algorithm="RS256",  # type: ignore[arg-type]
                                                  headers={"kid": target.kid})


def batch_bodies() -> st.SearchStrategy[Any]:
    urls = st.sampled_from(["/users", "users?$top=1", "/v1.0/users", "https://graph.microsoft.com/v1.0/users",
                            "/users/fuzz0@example.com", "/users/delta", "/directory/deletedItems/microsoft.graph.user",
                            "/$batch", "", "?", "http://", "/users/%ff"]) | words | json_values
    item = st.fixed_dictionaries({}, optional={
        "id": st.sampled_from(["1", "2", "3"]) | json_values,
        "method": st.sampled_from(["GET", "POST", "PATCH", "DELETE", "get", "PUT"]) | json_values,
        "url": urls,
        "headers": st.dictionaries(st.sampled_from(["Content-Type", "ConsistencyLevel", "Prefer"]) | words,
                                   json_values, max_size=3) | json_values,
        "body": user_bodies | json_values,
        "dependsOn": st.lists(st.sampled_from(["1", "2", "3"]) | json_values, max_size=3) | json_values,
        "depends_on": st.lists(st.sampled_from(["1", "2", "3"]), max_size=2),
    })
    return st.fixed_dictionaries({"requests": st.lists(item, max_size=5)}) | json_values


bodies = st.one_of(
    st.just(b""),
    user_bodies.map(lambda b: json.dumps(b).encode()),
    batch_bodies().map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=80),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n),
    st.dictionaries(st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "client_assertion",
                                     "client_assertion_type"]) | words, latin1, max_size=5).map(
        lambda f: "&".join(f"{quote(k)}={quote(v)}" for k, v in f.items()).encode()),
)
HOSTS = ["emulator", "emulator.local", "localhost:8765", "127.0.0.1", "[::1]:1", "evil.example", "", "[", ":", "a:b:c"]


@st.composite
def requests(draw: st.DrawFn, target: Target) -> tuple[str, str, dict[str, str], bytes, bytes]:
    method = draw(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]) | latin1.filter(bool))
    prefix = draw(prefixes).replace("{tenant}", target.tenant.id)
    rest = draw(st.sampled_from(["", "/oauth2/v2.0/token", "/v2.0/.well-known/openid-configuration",
                                 "/discovery/v2.0/keys", "/discovery/instance"]))
    path = prefix + "".join("/" + s for s in draw(segments)) + rest
    headers: dict[str, str] = {"host": draw(st.sampled_from(HOSTS) | latin1)}
    auth = draw(authorizations(target))
    if auth is not None:
        headers["authorization"] = auth
    for name in draw(st.lists(st.sampled_from(["consistencylevel", "prefer", "content-type", "client-request-id",
                                               "x-ms-throttle-priority", "content-length", "retry-attempt"]), max_size=3)):
        headers[name] = draw(st.sampled_from(["eventual", "odata.maxpagesize=2", "application/json", "low", "5",
                                              "99999999999"]) | latin1)
    return method, path or "/", headers, draw(bodies), draw(queries)


def _graph_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)
            and isinstance(error.get("innerError"), dict))


def _oauth_shaped(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("error_description"), str)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_request_gets_a_500(target: Target, data: st.DataObject) -> None:
    method, path, headers, body, query = data.draw(requests(target))
    status, payload = target.call(method, path, headers, body, query)
    assert status < 500, (status, payload[:300])
    if 400 <= status < 500:
        parsed = json.loads(payload)
        if _oauth_shaped(parsed):
            # Only the identity platform's own endpoints answer in OAuth's shape.
            first = split_path(path)[:1]
            assert first not in (["v1.0"], ["beta"]), (status, path, parsed)
            assert path.rstrip("/").endswith((TOKEN_ENDPOINT_SUFFIX, "/.well-known/openid-configuration")), path
        else:
            assert _graph_shaped(parsed), (status, path, parsed)
