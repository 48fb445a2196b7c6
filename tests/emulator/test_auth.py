"""The token endpoint, bearer-token checks, least-privileged permissions and tenant
isolation (GRAPH.md §10, §3.2, §5, §6)."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from emulator.helpers import (
    DOMAIN,
    FORBIDDEN,
    GRAPH_SCOPE,
    START,
    customer,
    error_of,
    graph_error,
    not_found,
    unique_email,
)

from batch.emulator import EmulatorSettings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def unauthenticated(message: str) -> dict[str, Any]:
    return graph_error("InvalidAuthenticationToken", message)


# ---- the token endpoint ---------------------------------------------------------------------

async def test_token_success(graph):
    response = await graph.token_response()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)
    assert response.headers["cache-control"] == "no-store, no-cache"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["tid"] == graph.tenant.id
    assert claims["appid"] == graph.default_app.client_id
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["exp"] - claims["iat"] == 3599
    assert claims["iat"] == int(graph.clock())
    assert set(claims["roles"]) == set(graph.default_app.roles)


async def test_token_by_tenant_domain(graph):
    response = await graph.token_response(tenant=DOMAIN)
    assert response.status_code == 200


async def test_token_with_basic_auth(graph):
    app = graph.default_app
    basic = base64.b64encode(f"{app.client_id}:{app.secret}".encode()).decode()
    response = await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/token",
                                       data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
                                       headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text


def aad_error(response) -> tuple[int, str, list[int]]:
    body = response.json()
    assert set(body) == {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={body['error_codes'][0]}"
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    return response.status_code, body["error"], body["error_codes"]


@pytest.mark.parametrize("change,expected", [
    ({"client_secret": "wrong"}, (401, "invalid_client", [7000215])),
    ({"client_secret": None}, (401, "invalid_client", [7000218])),
    ({"client_id": "11111111-1111-1111-1111-111111111111"}, (400, "unauthorized_client", [700016])),
    ({"tenant": "22222222-2222-2222-2222-222222222222"}, (400, "invalid_tenant", [90002])),
    ({"tenant": "nowhere.onmicrosoft.com"}, (400, "invalid_tenant", [90002])),
    ({"scope": "https://graph.microsoft.com/User.Read.All"}, (400, "invalid_scope", [1002012])),
    ({"scope": ""}, (400, "invalid_scope", [1002012])),
    ({"grant_type": "implicit"}, (400, "unsupported_grant_type", [70003])),
    # The password grant is served for public clients; a confidential app must authenticate.
    ({"grant_type": "password"}, (401, "invalid_client", [7000218])),
])
async def test_token_errors(graph, change, expected):
    change = dict(change)
    tenant = change.pop("tenant", None)
    response = await graph.token_response(tenant=tenant, **change)
    assert aad_error(response) == expected


async def test_token_app_of_another_tenant(graph):
    other = graph.add_tenant("fabrikam.onmicrosoft.com")
    app = graph.add_app(["User.Read.All"], other)
    response = await graph.token_response(app, tenant=graph.tenant.id)
    assert aad_error(response) == (400, "unauthorized_client", [700016])


def self_signed() -> tuple[rsa.RSAPrivateKey, str, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch test")])
    # Valid on the fake clock (the emulator's now in these tests) and on the machine's: the
    # emulator refuses a certificate outside its validity.
    start, now = dt.datetime.fromtimestamp(START, dt.UTC), dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(min(start, now) - dt.timedelta(days=1))
            .not_valid_after(max(start, now) + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode(), cert


def assertion(key, cert: x509.Certificate, client_id: str, audience: str, *, exp: float, alg: str = "RS256",
              **overrides: Any) -> str:
    thumb = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).decode().rstrip("=")
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
              "nbf": int(exp) - 600, "exp": int(exp), **overrides}
    return jwt.encode(claims, key, algorithm=alg, headers={"x5t": thumb})


@pytest.fixture(scope="module")
def certificate():
    return self_signed()


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
async def test_certificate_client_assertion(graph, certificate, alg):
    key, pem, cert = certificate
    app = graph.add_app(["User.Read.All"], certificate_pem=pem)
    assert app.secret is None
    url = f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    token = assertion(key, cert, app.client_id, url, exp=graph.clock() + 600, alg=alg)
    response = await graph.token_response(app, client_assertion_type=ASSERTION_TYPE, client_assertion=token)
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    listed = await graph.client.get("/v1.0/users", headers={"Authorization": f"Bearer {access}"})
    assert listed.status_code == 200


@pytest.mark.parametrize("problem,expected_code", [
    ("foreign-key", 700027), ("wrong-iss", 700023), ("wrong-aud", 700212), ("expired", 700024), ("garbage", 700027),
])
async def test_certificate_assertion_refused(graph, certificate, problem, expected_code):
    key, pem, cert = certificate
    app = graph.add_app(["User.Read.All"], certificate_pem=pem)
    url = f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    exp = graph.clock() + 600
    if problem == "foreign-key":
        other_key, _, _ = self_signed()
        token = assertion(other_key, cert, app.client_id, url, exp=exp)
    elif problem == "wrong-iss":
        token = assertion(key, cert, app.client_id, url, exp=exp, iss="someone-else")
    elif problem == "wrong-aud":
        token = assertion(key, cert, app.client_id, "https://example.com/", exp=exp)
    elif problem == "expired":
        token = assertion(key, cert, app.client_id, url, exp=graph.clock() - 1)
    else:
        token = "not.a.jwt"
    response = await graph.token_response(app, client_assertion_type=ASSERTION_TYPE, client_assertion=token)
    assert aad_error(response) == (401, "invalid_client", [expected_code])


async def test_assertion_for_app_without_certificate(graph, certificate):
    key, _, cert = certificate
    app = graph.default_app
    url = f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    token = assertion(key, cert, app.client_id, url, exp=graph.clock() + 600)
    response = await graph.token_response(client_secret=None, client_assertion_type=ASSERTION_TYPE, client_assertion=token)
    assert aad_error(response) == (401, "invalid_client", [700027])


async def test_openid_configuration(graph):
    response = await graph.client.get(f"/{graph.tenant.id}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    keys = (await graph.client.get(f"/{graph.tenant.id}/discovery/v2.0/keys")).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"


async def test_plain_fixtures(client, token, store, clock):
    """The bare fixtures (store, app, client, token) work without the Graph helper."""
    headers = {"Authorization": f"Bearer {token}"}
    created = await client.post("/v1.0/users", json=customer("plain@example.com"), headers=headers)
    assert created.status_code == 201
    assert store.user(store.tenants()[0].id, created.json()["id"]) is not None
    clock.advance(3600)
    expired = await client.get("/v1.0/users", headers=headers)
    assert error_of(expired) == unauthenticated("Lifetime validation failed, the token is expired.")


# ---- bearer tokens on Graph -------------------------------------------------------------------

async def test_missing_token(graph):
    response = await graph.client.get("/v1.0/users")
    assert response.status_code == 401
    assert error_of(response) == unauthenticated("Access token is empty.")
    assert response.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("header,message", [
    ("Bearer", "Access token validation failure. Invalid audience."),
    ("Basic abc", "Access token validation failure. Invalid audience."),
    ("Bearer not-a-jwt", "Access token validation failure."),
])
async def test_malformed_authorization(graph, header, message):
    response = await graph.client.get("/v1.0/users", headers={"Authorization": header})
    assert response.status_code == 401
    assert error_of(response) == unauthenticated(message)


async def test_forged_token(graph):
    real = jwt.decode(await graph.token(), options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(real, other_key, algorithm="RS256", headers={"kid": graph.store.signing_key()[1]})
    response = await graph.client.get("/v1.0/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert error_of(response) == unauthenticated("Access token validation failure.")


async def test_token_for_another_audience(graph):
    pem, kid = graph.store.signing_key()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    claims = jwt.decode(await graph.token(), options={"verify_signature": False})
    claims["aud"] = "https://management.azure.com"
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    response = await graph.client.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert error_of(response) == unauthenticated("Access token validation failure. Invalid audience.")


async def test_expired_token(graph):
    token = await graph.token()
    headers = {"Authorization": f"Bearer {token}"}
    graph.clock.advance(3598)
    assert (await graph.client.get("/v1.0/users", headers=headers)).status_code == 200
    graph.clock.advance(1)
    response = await graph.client.get("/v1.0/users", headers=headers)
    assert response.status_code == 401
    assert error_of(response) == unauthenticated("Lifetime validation failed, the token is expired.")


async def test_token_lifetime_setting(make_graph):
    g = make_graph(EmulatorSettings(token_lifetime_seconds=600))
    response = await g.token_response()
    assert response.json()["expires_in"] == 600
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    g.clock.advance(600)
    assert (await g.client.get("/v1.0/users", headers=headers)).status_code == 401


async def test_token_from_another_emulator_store(graph, make_graph):
    other = make_graph()
    foreign = await other.token()
    response = await graph.client.get("/v1.0/users", headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401
    assert error_of(response) == unauthenticated("Access token validation failure.")


# ---- permissions ------------------------------------------------------------------------------

@pytest.fixture
async def target(graph) -> dict[str, Any]:
    return await graph.create(customer("target@example.com"))


def operation(name: str, user_id: str) -> tuple[str, str, dict[str, Any]]:
    new_identities = [
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "renamed@example.com"},
        {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": f"{user_id}@{DOMAIN}"},
    ]
    return {
        "create": ("POST", "/v1.0/users", {"json": customer(unique_email())}),
        "list": ("GET", "/v1.0/users", {}),
        "get": ("GET", f"/v1.0/users/{user_id}", {}),
        "delta": ("GET", "/v1.0/users/delta", {}),
        "count": ("GET", "/v1.0/users/$count", {"headers": {"ConsistencyLevel": "eventual"}}),
        "update": ("PATCH", f"/v1.0/users/{user_id}", {"json": {"jobTitle": "Boss"}}),
        "disable": ("PATCH", f"/v1.0/users/{user_id}", {"json": {"accountEnabled": False}}),
        "password": ("PATCH", f"/v1.0/users/{user_id}", {"json": {"passwordProfile": {"password": "N3w-Passw0rd!"}}}),
        "identities": ("PATCH", f"/v1.0/users/{user_id}", {"json": {"identities": new_identities}}),
        "otherMails": ("PATCH", f"/v1.0/users/{user_id}", {"json": {"otherMails": ["o@example.com"]}}),
        "phone": ("PATCH", f"/v1.0/users/{user_id}", {"json": {"mobilePhone": "+1 555 0100"}}),
        "delete": ("DELETE", f"/v1.0/users/{user_id}", {}),
        "organization": ("GET", "/v1.0/organization", {}),
    }[name]


OK = {"create": 201, "list": 200, "get": 200, "delta": 200, "count": 200, "update": 204, "disable": 204, "password": 204,
      "identities": 204, "otherMails": 204, "phone": 204, "delete": 204, "organization": 200}

PERMISSIONS = [
    # roles, operations allowed (all others in OK are refused with 403)
    (["User.Create"], {"create"}),
    (["User.Read.All"], {"list", "get", "delta", "count"}),
    (["User.ReadUpdate.All"], {"list", "get", "delta", "count", "update"}),
    (["User.ReadWrite.All"], {"create", "list", "get", "delta", "count", "update", "disable", "password", "otherMails",
                              "phone", "delete"}),
    (["User.EnableDisableAccount.All"], set()),
    (["User.EnableDisableAccount.All", "User.Read.All"], {"list", "get", "delta", "count", "disable"}),
    (["User-PasswordProfile.ReadWrite.All"], {"password"}),
    (["User.ManageIdentities.All"], {"identities"}),
    (["User.DeleteRestore.All"], {"delete"}),
    (["User-Mail.ReadWrite.All"], {"otherMails"}),
    (["User-Phone.ReadWrite.All"], {"phone"}),
    (["Directory.Read.All"], {"list", "get", "delta", "count", "organization"}),
    (["Organization.Read.All"], {"organization"}),
    ([], set()),
]


@pytest.mark.parametrize("roles,allowed", PERMISSIONS, ids=lambda v: "+".join(v) or "none" if isinstance(v, list) else "")
async def test_least_privilege(graph, target, roles, allowed):
    """Each operation with each permission set: the expected success status, or 403 with
    Graph's exact body. DELETE goes last so that the target lives for the others."""
    app = graph.add_app(roles)
    got, expected = {}, {}
    for name in sorted(OK, key=lambda n: n == "delete"):
        method, url, kwargs = operation(name, target["id"])
        response = await graph.request(method, url, app=app, **kwargs)
        got[name] = response.status_code
        expected[name] = OK[name] if name in allowed else 403
        if response.status_code == 403:
            assert error_of(response) == FORBIDDEN
            assert "x-ms-resource-unit" in response.headers
    assert got == expected


@pytest.mark.parametrize("roles,allowed", [
    (["User.DeleteRestore.All"], {"list_deleted", "get_deleted", "restore", "purge"}),
    (["User.ReadWrite.All"], {"list_deleted", "get_deleted", "restore", "purge"}),
    (["User.Read.All"], {"list_deleted", "get_deleted"}),
    (["User.ReadUpdate.All"], set()),
    (["User.Create"], set()),
])
async def test_deleted_items_permissions(graph, target, roles, allowed):
    assert (await graph.delete(f"/v1.0/users/{target['id']}")).status_code == 204
    app = graph.add_app(roles)
    calls = [
        ("list_deleted", "GET", "/v1.0/directory/deletedItems/microsoft.graph.user", 200),
        ("get_deleted", "GET", f"/v1.0/directory/deletedItems/{target['id']}", 200),
        ("restore", "POST", f"/v1.0/directory/deletedItems/{target['id']}/restore", 200),
        ("purge", "DELETE", f"/v1.0/directory/deletedItems/{target['id']}", 204),
    ]
    for name, method, url, ok in calls:
        if name == "purge" and "restore" in allowed:
            assert (await graph.delete(f"/v1.0/users/{target['id']}")).status_code == 204  # deleted again to purge
        response = await graph.request(method, url, app=app)
        expected = ok if name in allowed else 403
        assert response.status_code == expected, (name, response.text)
        if expected == 403:
            assert error_of(response) == FORBIDDEN


async def test_password_permission_alone_cannot_change_other_properties(graph, target):
    app = graph.add_app(["User-PasswordProfile.ReadWrite.All"])
    response = await graph.patch(f"/v1.0/users/{target['id']}", app=app,
                                 json={"passwordProfile": {"password": "N3w-Passw0rd!"}, "jobTitle": "x"})
    assert response.status_code == 403
    assert error_of(response) == FORBIDDEN


async def test_refused_write_changes_nothing(graph, target):
    app = graph.add_app(["User.Read.All"])
    response = await graph.patch(f"/v1.0/users/{target['id']}", app=app, json={"jobTitle": "Hacker"})
    assert response.status_code == 403
    assert (await graph.get(f"/v1.0/users/{target['id']}")).json()["jobTitle"] is None


# ---- tenant isolation -------------------------------------------------------------------------

async def test_tenant_isolation(graph, target):
    other_tenant = graph.add_tenant("fabrikam.onmicrosoft.com")
    other = graph.add_app(["User.ReadWrite.All", "User.ManageIdentities.All", "Directory.ReadWrite.All"], other_tenant)
    uid, upn = target["id"], target["userPrincipalName"]

    listed = await graph.get("/v1.0/users", app=other)
    assert listed.status_code == 200 and listed.json()["value"] == []
    for key in (uid, upn):
        assert error_of(await graph.get(f"/v1.0/users/{key}", app=other)) == not_found(key)
        assert error_of(await graph.patch(f"/v1.0/users/{key}", app=other, json={"jobTitle": "x"})) == not_found(key)
        assert error_of(await graph.delete(f"/v1.0/users/{key}", app=other)) == not_found(key)
    found = await graph.get("/v1.0/users", app=other, params={"$filter": f"id eq '{uid}'"})
    assert found.json()["value"] == []
    identity = await graph.get("/v1.0/users", app=other, params={
        "$filter": f"identities/any(c:c/issuerAssignedId eq 'target@example.com' and c/issuer eq '{DOMAIN}')"})
    assert identity.json()["value"] == []
    count = await graph.get("/v1.0/users/$count", app=other, headers={"ConsistencyLevel": "eventual"})
    assert count.text == "0"
    delta = await graph.get("/v1.0/users/delta", app=other)
    assert delta.json()["value"] == []

    # the first tenant's deleted items are invisible too
    assert (await graph.delete(f"/v1.0/users/{uid}")).status_code == 204
    assert (await graph.get("/v1.0/directory/deletedItems/microsoft.graph.user", app=other)).json()["value"] == []
    assert error_of(await graph.get(f"/v1.0/directory/deletedItems/{uid}", app=other)) == not_found(uid)
    assert error_of(await graph.post(f"/v1.0/directory/deletedItems/{uid}/restore", app=other)) == not_found(uid)
    assert error_of(await graph.delete(f"/v1.0/directory/deletedItems/{uid}", app=other)) == not_found(uid)
    assert (await graph.post(f"/v1.0/directory/deletedItems/{uid}/restore")).status_code == 200

    # the same sign-in name can exist once per tenant; the other tenant's issuer is its own domain
    own = await graph.post("/v1.0/users", app=other,
                           json=customer("target@example.com", issuer="fabrikam.onmicrosoft.com"))
    assert own.status_code == 201
    assert own.json()["userPrincipalName"].endswith("@fabrikam.onmicrosoft.com")
    wrong_issuer = await graph.post("/v1.0/users", app=other, json=customer(unique_email()))
    assert error_of(wrong_issuer)["message"] == "Issuer should match tenants domainName for non federated identity."
    assert [u["id"] for u in (await graph.get("/v1.0/users")).json()["value"]] == [uid]


async def test_organization(graph):
    response = await graph.get("/v1.0/organization")
    assert response.status_code == 200
    org = response.json()["value"][0]
    assert org["id"] == graph.tenant.id
    assert org["tenantType"] == "CIAM"
    assert org["verifiedDomains"][0]["name"] == DOMAIN


async def test_unknown_endpoint(graph):
    response = await graph.client.get("/nothing/here")
    assert response.status_code == 404



async def test_token_answer_is_plain_json(graph):
    """The token endpoint is not an OData service: its 200 is plain JSON (GRAPH.md §15.6)."""
    response = await graph.token_response()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
