"""Hostile requests (issue 15, defect 6): every malformed input is a 4xx in Graph's envelope
(the identity platform's on the token endpoint), never a 500; the token is checked before the
body is read; bodies are capped at Graph's 4 MB; `nbf` and `iss` are verified; `Host` is
checked, never reflected."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from emulator.helpers import GRAPH_SCOPE, error_of, graph_error

from batch.emulator import Store, create_app
from batch.emulator.edge import MAX_BODY_BYTES, HostPolicy
from batch.emulator.paging import encode_token
from batch.emulator.server import host_policy

PAGE_TOKEN_EXPIRED = graph_error(
    "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
BODY_NOT_JSON = graph_error(
    "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
                          "is of valid JSON format.")


async def asgi_call(app: Any, method: str, path: str, *, headers: dict[str, str] | None = None,
                    body: bytes = b"", query: str = "") -> tuple[int, dict[str, Any] | None, int]:
    """One request straight into the ASGI app: (status, JSON body or None, times `receive`
    was called, which says whether the app read the body)."""
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw_headers = [(b"host", b"emulator")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "scheme": "http",
             "query_string": query.encode(), "headers": raw_headers}
    await app(scope, receive, send)
    status = sent[0]["status"]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(payload) if payload else None), reads


# ---- the token endpoint ---------------------------------------------------------------------

@pytest.mark.parametrize("credentials", [
    "a",  # not base64 (padding)
    base64.b64encode(b"\xff\xfe:secret").decode(),  # not UTF-8
    base64.b64encode(b"no-colon").decode(),
    "!!!!",
])
async def test_unreadable_basic_credentials_are_a_400(graph, credentials):
    response = await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/token",
                                       data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
                                       headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request" and body["error_codes"] == [90023]


# ---- authentication before the body ---------------------------------------------------------

async def test_a_request_without_a_token_is_refused_before_its_body_is_read(app):
    status, body, reads = await asgi_call(app, "POST", "/v1.0/users", body=b"[" * 100_000)
    assert status == 401
    assert body is not None and body["error"]["code"] == "InvalidAuthenticationToken"
    assert reads == 0


async def test_deeply_nested_json_is_a_400(graph):
    for payload in (b"[" * 100_000, b"[" * 101 + b"]" * 101, b'{"a":' * 101 + b"1" + b"}" * 101):
        response = await graph.post("/v1.0/users", content=payload, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert error_of(response) == BODY_NOT_JSON


async def test_a_lone_surrogate_in_a_body_is_a_400(graph):
    response = await graph.post("/v1.0/users", content=b'{"displayName": "\\ud800"}',
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response) == BODY_NOT_JSON


async def test_a_body_over_4_mb_is_a_413(graph):
    big = json.dumps({"displayName": "x" * MAX_BODY_BYTES}).encode()
    for url in ("/v1.0/users", "/v1.0/$batch"):
        response = await graph.post(url, content=big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert error_of(response) == graph_error("BadRequest", "Maximum request length exceeded.")


async def test_a_declared_length_over_the_limit_is_refused_unread(app, token):
    status, body, reads = await asgi_call(app, "POST", "/v1.0/users", body=b"{}", headers={
        "Authorization": f"Bearer {token}", "Content-Length": str(MAX_BODY_BYTES + 1)})
    assert (status, reads) == (413, 0)
    assert body is not None and body["error"]["code"] == "BadRequest"


async def test_the_token_endpoint_caps_its_body(graph):
    response = await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/token", content=b"a" * (MAX_BODY_BYTES + 1),
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


# ---- crafted page tokens, $search, batch items ------------------------------------------------

def _token(state: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


@pytest.mark.parametrize("url", [
    f"/v1.0/users?$skiptoken={_token({'a': 'x'})}",
    f"/v1.0/users?$skiptoken={_token({'a': 2**70})}",
    f"/v1.0/users?$skiptoken={_token({'a': -1})}",
    f"/v1.0/users?$orderby=displayName&$skiptoken={_token({'o': []})}",
    f"/v1.0/users/delta?$skiptoken={_token({})}",
    f"/v1.0/users/delta?$skiptoken={_token({'p': 'init', 'a': 0, 'u': 0, 's': [1]})}",
    f"/v1.0/users/delta?$skiptoken={_token({'p': 'init', 'a': 0, 'u': 0, 'f': ['x']})}",
    f"/v1.0/users/delta?$deltatoken={_token({'c': 'x'})}",
    f"/v1.0/users/delta?$deltatoken={_token({'c': 1.5})}",
    f"/v1.0/users/delta?$deltatoken={_token([1])}",
    "/v1.0/users/delta?$deltatoken=" + "W" * 1001,
])
async def test_crafted_page_tokens_are_a_400(graph, url):
    response = await graph.get(url)
    assert response.status_code == 400, response.text
    assert error_of(response) == PAGE_TOKEN_EXPIRED


async def test_a_genuine_page_token_still_pages(graph):
    await graph.create_many(3)
    assert len(await graph.all_pages("/v1.0/users?$top=1")) == 3
    assert encode_token({"a": 0})  # the shape the emulator writes


@pytest.mark.parametrize("search", ['OR', 'AND', '"displayName:a" OR', 'OR "displayName:a"',
                                    '"displayName:a" AND OR "displayName:b"', 'nothing quoted'])
async def test_malformed_search_is_a_400(graph, search):
    response = await graph.get("/v1.0/users", params={"$search": search}, headers={"ConsistencyLevel": "eventual"})
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "Request_UnsupportedQuery"


@pytest.mark.parametrize("headers", [[1], "Content-Type: application/json", 7, True])
async def test_batch_item_headers_must_be_an_object(graph, headers):
    response = await graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": "/users", "headers": headers}]})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Invalid batch payload format.")


# ---- nbf and iss ------------------------------------------------------------------------------

def _signed(graph: Any, claims: dict[str, Any]) -> str:
    pem, kid = graph.store.signing_key()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


async def test_a_token_before_its_nbf_is_refused(graph):
    claims = jwt.decode(await graph.token(), options={"verify_signature": False})
    claims["nbf"] = int(graph.clock()) + 600
    headers = {"Authorization": f"Bearer {_signed(graph, claims)}"}
    response = await graph.client.get("/v1.0/users", headers=headers)
    assert response.status_code == 401
    assert error_of(response) == graph_error("InvalidAuthenticationToken",
                                             "Lifetime validation failed, the token is not yet valid.")
    graph.clock.advance(600)
    assert (await graph.client.get("/v1.0/users", headers=headers)).status_code == 200


@pytest.mark.parametrize("iss", ["https://evil.example/", "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
                                 None])
async def test_a_token_from_another_issuer_is_refused(graph, iss):
    claims = jwt.decode(await graph.token(), options={"verify_signature": False})
    if iss is None:
        del claims["iss"]
    else:
        claims["iss"] = iss
    response = await graph.client.get("/v1.0/users", headers={"Authorization": f"Bearer {_signed(graph, claims)}"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "InvalidAuthenticationToken"
    if iss is not None:
        assert error_of(response)["message"] == "Access token validation failure. Invalid issuer."


# ---- Host -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1.0/users?$top=1", "/common/discovery/instance", "/",
                                  "/{tenant}/v2.0/.well-known/openid-configuration"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "emulator.evil", "127.0.0.1@evil", "[::1",
                                  "localhost:99999", "emulator:x", "evil.test.example", ".test"])
async def test_a_foreign_host_is_refused_not_reflected(graph, path, host):
    await graph.create_many(2)
    response = await graph.get(path.replace("{tenant}", graph.tenant.id), headers={"Host": host})
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"
    assert "evil" not in response.text


async def test_the_names_the_in_process_emulator_answers_to(graph):
    await graph.create_many(2)
    for host in ("emulator", "emulator.local", "localhost:8765", "127.0.0.1", "[::1]:80", "EMULATOR",
                 "login.emulator.test"):
        response = await graph.get("/v1.0/users?$top=1", headers={"Host": host})
        assert response.status_code == 200, host
        assert response.json()["@odata.nextLink"].startswith(f"http://{host.lower()}/v1.0/users?")


def test_a_served_emulator_answers_to_its_address_and_port_only():
    policy = host_policy("127.0.0.1", 8765)
    assert policy.authority("http", "127.0.0.1:8765") == "127.0.0.1:8765"
    assert policy.authority("http", "localhost:8765") == "localhost:8765"
    assert policy.authority("http", None) == "127.0.0.1:8765"
    for host in ("127.0.0.1:8766", "127.0.0.1", "evil.example:8765", "emulator:8765", "x.test:8765"):
        assert policy.authority("http", host) is None, host
    assert host_policy("::1", 443).authority("https", "[::1]") == "[::1]"
    assert HostPolicy().authority("http", "emulator") == "emulator"


# ---- a bug of ours is Graph's 500, not a traceback ---------------------------------------------

async def test_an_internal_error_is_a_graph_shaped_500(graph, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(graph.app.service, "handle", broken)
    response = await graph.get("/v1.0/users")
    assert response.status_code == 500
    assert error_of(response) == graph_error("generalException", "An unspecified error has occurred.")
    assert "Traceback" not in response.text and "boom" not in response.text


def test_create_app_takes_a_host_policy():
    # create_app still takes a path or a store, and a HostPolicy of its own.
    store = Store(":memory:")
    try:
        assert create_app(store, hosts=HostPolicy(frozenset({"graph.test"}))).hosts.names == {"graph.test"}
    finally:
        store.close()
