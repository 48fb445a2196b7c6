"""The emulator's identity platform beyond client credentials, driven in process through its
HTTP front door (issue 13, "The emulator serves each flow"): administrators and their
delegated tokens, the device authorization grant, refresh tokens, the password grant,
Graph's delegated enforcement and `/me`, the App Service managed-identity endpoint,
federated client assertions and certificate assertions with an x5c header.

The same flows driven by the real msal and azure-identity over a TLS socket are in
test_identity_clients.py."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from emulator.helpers import FORBIDDEN, START, Graph, customer, error_of, graph_error, unique_email

from batch.emulator import Store
from batch.emulator.delegated import ApprovalError, approve
from batch.emulator.permissions import DELEGATED_ROLES, delegated_allows
from batch.emulator.store import AZURE_CLI, DELEGATED_SCOPES, GRAPH_COMMAND_LINE_TOOLS, ROLE_TEMPLATES

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "https://graph.microsoft.com/.default offline_access openid profile"
PASSWORD = "Adm1n-Passw0rd!"
EXCHANGE = "api://AzureADTokenExchange"
REPO = Path(__file__).resolve().parents[2]


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def aad(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    return response.status_code, body["error"], body["error_codes"][0]


async def device_code(graph: Graph, client_id: str = GRAPH_COMMAND_LINE_TOOLS, scope: str = SCOPE) -> httpx.Response:
    return await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/devicecode",
                                   data={"client_id": client_id, "scope": scope})


async def poll(graph: Graph, code: str, client_id: str = GRAPH_COMMAND_LINE_TOOLS, **extra: str) -> httpx.Response:
    return await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/token",
                                   data={"grant_type": DEVICE_GRANT, "client_id": client_id, "device_code": code, **extra})


async def grant(graph: Graph, **form: str) -> httpx.Response:
    return await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/token", data=form)


async def signed_in(graph: Graph, upn: str | None = None, scope: str = SCOPE,
                    client_id: str = GRAPH_COMMAND_LINE_TOOLS) -> dict[str, Any]:
    """The token response of a device code approved as `upn` (default: the seeded admin)."""
    started = (await device_code(graph, client_id, scope)).json()
    approve(graph.store, started["user_code"], upn, graph.clock())
    response = await poll(graph, started["device_code"], client_id, client_info="1")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- administrators and the seed -------------------------------------------------------------

def test_every_tenant_has_an_administrator_a_managed_identity_and_the_public_clients(store: Store) -> None:
    tenant = store.tenants()[0]
    other = store.add_tenant("fabrikam.onmicrosoft.com")
    for t in (tenant, other):
        (admin,) = store.admins(t.id)
        assert admin.upn == f"admin@{t.default_domain}" and admin.roles == ("User Administrator",)
        identity = store.managed_identity(t.id)
        assert identity.secret is None and identity.certificate is None
        assert set(identity.roles) == set(store.default_app().roles)
    for client_id in (GRAPH_COMMAND_LINE_TOOLS, AZURE_CLI):
        app = store.app(client_id)
        assert app is not None and app.public_client and app.multi_tenant and app.secret is None
        assert app.serves(other.id) and set(DELEGATED_SCOPES) <= set(app.delegated_scopes)
    assert store.identity_header()


def test_a_directory_of_the_previous_version_gains_the_identity_seed(tmp_path: Path) -> None:
    """A file made by the main branch's emulator (without the new tables and columns) opens,
    keeps its app and secret, and is seeded with administrators and sign-in apps."""
    db = tmp_path / "old.db"
    main = REPO.parent / "main"
    if not (main / "batch" / "emulator" / "store.py").is_file():
        pytest.skip("the main worktree is not beside this one")
    script = "import sys; from batch.emulator import Store; s = Store(sys.argv[1]); print(s.default_app().secret); s.close()"
    old = subprocess.run([sys.executable, "-c", script, str(db)], cwd=main, env={"PYTHONPATH": str(main)},
                         capture_output=True, text=True, check=True)
    if "admins" in subprocess.run(["sqlite3", str(db), ".tables"], capture_output=True, text=True).stdout:
        pytest.skip("the main worktree already has the identity tables")
    store = Store(db)
    try:
        assert store.default_app().secret == old.stdout.strip()
        tenant = store.tenants()[0]
        assert store.admins(tenant.id)[0].upn == f"admin@{tenant.default_domain}"
        assert store.app(GRAPH_COMMAND_LINE_TOOLS) is not None and store.managed_identity(tenant.id)
    finally:
        store.close()
    again = Store(db)  # a second opening adds nothing twice
    try:
        assert len(again.admins(again.tenants()[0].id)) == 1
    finally:
        again.close()


async def test_administrators_are_not_customers(graph: Graph) -> None:
    graph.store.add_admin(graph.tenant.id, f"helpdesk@{graph.tenant.default_domain}", roles=("Helpdesk Administrator",))
    await graph.create()
    listed = await graph.all_pages("/v1.0/users")
    assert len(listed) == 1 and not any(u["userPrincipalName"].startswith(("admin@", "helpdesk@")) for u in listed)


def test_unknown_directory_roles_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown directory role"):
        store.add_admin(store.tenants()[0].id, "x@contoso.onmicrosoft.com", roles=("Janitor",))


def test_every_permission_set_has_its_delegated_rule() -> None:
    assert len(DELEGATED_ROLES) == 16  # distinct keys: no two permission sets collide
    # A set without a row: reads need no role of a member user, writes a user-writing role.
    reads = frozenset({"Domain.Read.All", "Directory.Read.All"})
    writes = frozenset({"Policy.ReadWrite.AuthenticationFlows"})
    assert delegated_allows(reads, frozenset({"Domain.Read.All"}), frozenset())
    assert not delegated_allows(writes, frozenset(writes), frozenset({"Helpdesk Administrator"}))
    assert delegated_allows(writes, frozenset(writes), frozenset({"Global Administrator"}))


# ---- device code ---------------------------------------------------------------------------

async def test_device_code_answer_as_documented(graph: Graph) -> None:
    response = await device_code(graph)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"device_code", "user_code", "verification_uri", "expires_in", "interval", "message"}
    assert (body["expires_in"], body["interval"]) == (900, 5)
    assert body["user_code"] in body["message"] and body["verification_uri"] in body["message"]
    assert len(body["user_code"]) == 9 and len(body["device_code"]) > 64


async def test_device_code_pending_then_approved_then_spent(graph: Graph) -> None:
    started = (await device_code(graph)).json()
    for _ in range(2):
        assert aad(await poll(graph, started["device_code"])) == (400, "authorization_pending", 70016)
    admin = approve(graph.store, started["user_code"], None, graph.clock())
    response = await poll(graph, started["device_code"], client_info="1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"access_token", "refresh_token", "id_token", "client_info", "scope", "expires_in"} <= set(body)
    claims = claims_of(body["access_token"])
    assert claims["idtyp"] == "user" and "roles" not in claims
    assert claims["oid"] == admin.id and claims["upn"] == admin.upn and claims["tid"] == graph.tenant.id
    assert claims["appid"] == GRAPH_COMMAND_LINE_TOOLS and claims["app_displayname"] == "Microsoft Graph Command Line Tools"
    assert set(claims["scp"].split()) == set(DELEGATED_SCOPES)  # .default: every consented permission
    assert claims["wids"] == [ROLE_TEMPLATES["User Administrator"]]
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": admin.id, "utid": graph.tenant.id}
    id_token = claims_of(body["id_token"])
    assert id_token["aud"] == GRAPH_COMMAND_LINE_TOOLS and id_token["preferred_username"] == admin.upn
    assert id_token["iss"] == f"http://emulator/{graph.tenant.id}/v2.0"
    # One approval, one token.
    assert aad(await poll(graph, started["device_code"]))[1:] == ("invalid_grant", 70000)


async def test_device_code_errors(graph: Graph) -> None:
    assert aad(await poll(graph, "not-a-code")) == (400, "bad_verification_code", 70018)
    started = (await device_code(graph)).json()
    assert aad(await poll(graph, started["device_code"], AZURE_CLI)) == (400, "bad_verification_code", 70018)
    approve(graph.store, started["user_code"], None, graph.clock(), decline=True)
    assert aad(await poll(graph, started["device_code"])) == (400, "authorization_declined", 65004)
    late = (await device_code(graph)).json()
    graph.clock.advance(901)
    assert aad(await poll(graph, late["device_code"])) == (400, "expired_token", 70019)
    with pytest.raises(ApprovalError, match="expired"):
        approve(graph.store, late["user_code"], None, graph.clock())


async def test_device_code_refuses_a_confidential_app_and_unknown_clients(graph: Graph) -> None:
    assert aad(await device_code(graph, graph.default_app.client_id)) == (401, "invalid_client", 7000218)
    assert aad(await device_code(graph, str(uuid.uuid4())))[1:] == ("unauthorized_client", 700016)
    response = await graph.client.post(f"/{graph.tenant.id}/oauth2/v2.0/devicecode", data={"client_id": AZURE_CLI})
    assert aad(response) == (400, "invalid_request", 900144)


async def test_approval_names_an_administrator_of_the_tenant(graph: Graph) -> None:
    started = (await device_code(graph)).json()
    with pytest.raises(ApprovalError, match="not an administrator"):
        approve(graph.store, started["user_code"], "nobody@contoso.onmicrosoft.com", graph.clock())
    with pytest.raises(ApprovalError, match="no device code"):
        approve(graph.store, "ZZZZZZZZZ", None, graph.clock())


async def test_auto_approval_setting(make_graph: Any) -> None:
    from batch.emulator import EmulatorSettings

    graph = make_graph(EmulatorSettings(approve_device_codes_as="admin@contoso.onmicrosoft.com"))
    started = (await device_code(graph)).json()
    response = await poll(graph, started["device_code"])
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["upn"] == "admin@contoso.onmicrosoft.com"


async def test_a_scope_not_consented_is_refused(graph: Graph) -> None:
    started = (await device_code(graph, scope="https://graph.microsoft.com/Mail.Send openid")).json()
    approve(graph.store, started["user_code"], None, graph.clock())
    assert aad(await poll(graph, started["device_code"])) == (400, "invalid_grant", 65001)
    other = await device_code(graph, scope="https://management.azure.com/.default")
    assert aad(other) == (400, "invalid_resource", 500011)


async def test_named_scopes_give_exactly_those(graph: Graph) -> None:
    body = await signed_in(graph, scope="https://graph.microsoft.com/User.Read offline_access openid profile")
    assert claims_of(body["access_token"])["scp"] == "User.Read"


# ---- refresh tokens and the password grant ----------------------------------------------------

async def test_refresh_token_rotates_and_is_refused_when_unknown_revoked_or_expired(graph: Graph) -> None:
    first = await signed_in(graph)
    response = await grant(graph, grant_type="refresh_token", client_id=GRAPH_COMMAND_LINE_TOOLS,
                           refresh_token=first["refresh_token"], scope=SCOPE)
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["upn"] == "admin@contoso.onmicrosoft.com"
    unknown = await grant(graph, grant_type="refresh_token", client_id=GRAPH_COMMAND_LINE_TOOLS, refresh_token="1.Aabc")
    assert aad(unknown) == (400, "invalid_grant", 9002313)
    other_client = await grant(graph, grant_type="refresh_token", client_id=AZURE_CLI, refresh_token=second["refresh_token"])
    assert aad(other_client) == (400, "invalid_grant", 9002313)
    graph.store.revoke_refresh_tokens("admin@contoso.onmicrosoft.com")
    revoked = await grant(graph, grant_type="refresh_token", client_id=GRAPH_COMMAND_LINE_TOOLS,
                          refresh_token=second["refresh_token"])
    assert aad(revoked) == (400, "invalid_grant", 70008)
    late = await signed_in(graph)
    graph.clock.advance(91 * 86_400)
    expired = await grant(graph, grant_type="refresh_token", client_id=GRAPH_COMMAND_LINE_TOOLS,
                          refresh_token=late["refresh_token"])
    assert aad(expired) == (400, "invalid_grant", 700082)


async def test_password_grant_for_public_clients(graph: Graph) -> None:
    graph.store.set_admin_password("admin@contoso.onmicrosoft.com", PASSWORD)
    form = {"grant_type": "password", "client_id": AZURE_CLI, "username": "admin@contoso.onmicrosoft.com",
            "scope": "https://graph.microsoft.com/.default offline_access openid profile"}
    response = await grant(graph, password=PASSWORD, **form)
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["appid"] == AZURE_CLI
    assert aad(await grant(graph, password="wrong", **form)) == (400, "invalid_grant", 50126)
    assert aad(await grant(graph, password=PASSWORD, client_secret="x", **form)) == (401, "invalid_client", 700025)
    nobody = dict(form, username="nobody@contoso.onmicrosoft.com")
    assert aad(await grant(graph, password=PASSWORD, **nobody)) == (400, "invalid_grant", 50126)


async def test_a_public_client_cannot_use_client_credentials(graph: Graph) -> None:
    response = await grant(graph, grant_type="client_credentials", client_id=AZURE_CLI, client_secret="x",
                           scope="https://graph.microsoft.com/.default")
    assert aad(response)[1:] == ("invalid_client", 7000215)


# ---- Graph with a delegated token -------------------------------------------------------------

def as_user_client(graph: Graph) -> str:
    """A public client consented for Directory.AccessAsUser.All besides the seeded clients' scopes."""
    app = graph.store.add_app(graph.tenant.id, (), display_name="admin tool", secret=None, public_client=True,
                              delegated_scopes=(*DELEGATED_SCOPES, "Directory.AccessAsUser.All"))
    return app.client_id


async def test_delegated_enforcement_needs_the_scope_and_the_role(graph: Graph) -> None:
    domain = graph.tenant.default_domain
    graph.store.add_admin(graph.tenant.id, f"helpdesk@{domain}", roles=("Helpdesk Administrator",))
    graph.store.add_admin(graph.tenant.id, f"reader@{domain}", roles=())
    users_admin = (await signed_in(graph))["access_token"]
    helpdesk = (await signed_in(graph, f"helpdesk@{domain}"))["access_token"]
    reader = (await signed_in(graph, f"reader@{domain}"))["access_token"]

    body = customer(unique_email())
    refused = await graph.client.post("/v1.0/users", json=body, headers=bearer(helpdesk))
    assert refused.status_code == 403 and error_of(refused) == FORBIDDEN
    created = await graph.client.post("/v1.0/users", json=body, headers=bearer(users_admin))
    assert created.status_code == 201, created.text
    user = f"/v1.0/users/{created.json()['id']}"
    # Reading needs no role for a member user.
    for token in (helpdesk, reader):
        assert (await graph.client.get("/v1.0/users", headers=bearer(token))).status_code == 200
    # A Helpdesk Administrator may reset a customer's password, not rename or delete one; a password reset
    # also needs Directory.AccessAsUser.All in the token (user.md, passwordProfile), which the seeded
    # clients' consent does not hold.
    reset = {"passwordProfile": {"password": "N3w-Passw0rd!x", "forceChangePasswordNextSignIn": False}}
    assert (await graph.client.patch(user, json=reset, headers=bearer(helpdesk))).status_code == 403
    as_user = as_user_client(graph)
    helpdesk_as_user = (await signed_in(graph, f"helpdesk@{domain}", client_id=as_user))["access_token"]
    reader_as_user = (await signed_in(graph, f"reader@{domain}", client_id=as_user))["access_token"]
    assert (await graph.client.patch(user, json=reset, headers=bearer(helpdesk_as_user))).status_code == 204
    assert (await graph.client.patch(user, json=reset, headers=bearer(reader_as_user))).status_code == 403
    assert (await graph.client.patch(user, json={"displayName": "X"}, headers=bearer(helpdesk))).status_code == 403
    assert (await graph.client.delete(user, headers=bearer(helpdesk))).status_code == 403
    assert (await graph.client.patch(user, json={"displayName": "X"}, headers=bearer(users_admin))).status_code == 204
    assert (await graph.client.delete(user, headers=bearer(users_admin))).status_code == 204
    # The role is the directory's now, not the token's: a role removed takes effect at once.
    graph.store.set_admin_roles("admin@contoso.onmicrosoft.com", ())
    again = await graph.client.post("/v1.0/users", json=customer(unique_email()), headers=bearer(users_admin))
    assert again.status_code == 403


async def test_every_role_the_client_names_for_a_password_reset_is_one_the_emulator_allows(graph: Graph) -> None:
    """The run's preflight (batch.auth.permissions.PASSWORD_ROLES) and Graph's enforcement agree:
    an administrator holding only one of those roles may reset a customer's password, and the
    preflight lets that administrator's token through for reset-password but not for create."""
    from batch.auth.permissions import PASSWORD_ROLES, missing_for, token_grants

    writer = (await signed_in(graph))["access_token"]
    created = await graph.client.post("/v1.0/users", json=customer(unique_email()), headers=bearer(writer))
    assert created.status_code == 201, created.text
    user = f"/v1.0/users/{created.json()['id']}"
    reset = {"passwordProfile": {"password": "N3w-Passw0rd!x", "forceChangePasswordNextSignIn": False}}
    as_user = as_user_client(graph)
    for index, role in enumerate(PASSWORD_ROLES):
        upn = f"reset{index}@{graph.tenant.default_domain}"
        graph.store.add_admin(graph.tenant.id, upn, roles=(role,))
        token = (await signed_in(graph, upn, client_id=as_user))["access_token"]
        answer = await graph.client.patch(user, json=reset, headers=bearer(token))
        assert answer.status_code == 204, (role, answer.text)
        grants = token_grants(token)
        assert not missing_for(grants, [frozenset({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All"})]), role
        if role not in ("User Administrator", "Global Administrator"):
            assert missing_for(grants, [frozenset({"User.Create", "User.ReadWrite.All"})]), role


async def test_delegated_enforcement_needs_the_scope(graph: Graph) -> None:
    narrow = (await signed_in(graph, scope="User.Read openid offline_access"))["access_token"]
    listed = await graph.client.get("/v1.0/users", headers=bearer(narrow))
    assert listed.status_code == 403 and error_of(listed) == FORBIDDEN
    created = await graph.client.post("/v1.0/users", json=customer(unique_email()), headers=bearer(narrow))
    assert created.status_code == 403
    org = await graph.client.get("/v1.0/organization", headers=bearer(narrow))
    assert org.status_code == 403
    full = (await signed_in(graph))["access_token"]
    assert (await graph.client.get("/v1.0/organization", headers=bearer(full))).status_code == 200


async def test_app_tokens_keep_their_behaviour(graph: Graph) -> None:
    limited = graph.add_app(["User.Read.All"])
    assert (await graph.get("/v1.0/users", app=limited)).status_code == 200
    refused = await graph.post("/v1.0/users", app=limited, json=customer(unique_email()))
    assert refused.status_code == 403 and error_of(refused) == FORBIDDEN


async def test_me_and_member_of(graph: Graph) -> None:
    body = await signed_in(graph)
    me = await graph.client.get("/v1.0/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    admin = graph.store.admin("admin@contoso.onmicrosoft.com")
    assert admin is not None
    assert {k: me.json()[k] for k in ("id", "displayName", "userPrincipalName", "mail")} == {
        "id": admin.id, "displayName": admin.display_name, "userPrincipalName": admin.upn, "mail": admin.upn}
    roles = await graph.client.get("/v1.0/me/memberOf", headers=bearer(body["access_token"]))
    assert roles.status_code == 200, roles.text
    (role,) = roles.json()["value"]
    assert role["@odata.type"] == "#microsoft.graph.directoryRole"
    assert (role["displayName"], role["roleTemplateId"]) == ("User Administrator", ROLE_TEMPLATES["User Administrator"])


async def test_me_with_an_app_token_is_a_bad_request(graph: Graph) -> None:
    for path in ("/v1.0/me", "/v1.0/me/memberOf"):
        response = await graph.get(path)
        assert response.status_code == 400
        assert error_of(response) == graph_error("BadRequest", "/me request is only valid with delegated authentication flow.")


# ---- managed identity -------------------------------------------------------------------------

async def test_managed_identity_endpoint(graph: Graph) -> None:
    header = {"X-IDENTITY-HEADER": graph.store.identity_header()}
    query = {"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"}
    response = await graph.client.get("/msi/token", params=query, headers=header)
    assert response.status_code == 200, response.text
    body = response.json()
    identity = graph.store.managed_identity(graph.tenant.id)
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["client_id"] == identity.client_id and body["resource"] == "https://graph.microsoft.com"
    assert isinstance(body["expires_on"], str) and int(body["expires_on"]) == int(graph.clock()) + 3599
    claims = claims_of(body["access_token"])
    assert claims["idtyp"] == "app" and claims["appid"] == identity.client_id and "scp" not in claims
    assert (await graph.client.get("/v1.0/users", headers=bearer(body["access_token"]))).status_code == 200
    by_client = await graph.client.get("/msi/token", params={**query, "client_id": identity.client_id}, headers=header)
    assert by_client.status_code == 200 and by_client.json()["client_id"] == identity.client_id


@pytest.mark.parametrize("problem,status", [
    ("no-header", 401), ("wrong-header", 403), ("unknown-client", 400), ("api-version", 400), ("other-resource", 400),
])
async def test_managed_identity_errors(graph: Graph, problem: str, status: int) -> None:
    headers = {"X-IDENTITY-HEADER": graph.store.identity_header()}
    query = {"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"}
    if problem == "no-header":
        headers = {}
    elif problem == "wrong-header":
        headers = {"X-IDENTITY-HEADER": "guess"}
    elif problem == "unknown-client":
        query["client_id"] = str(uuid.uuid4())
    elif problem == "api-version":
        query["api-version"] = "2017-09-01"
    else:
        query["resource"] = "https://vault.azure.net"
    response = await graph.client.get("/msi/token", params=query, headers=headers)
    assert response.status_code == status
    assert response.json()["statusCode"] == status and "access_token" not in response.json()
    assert graph.store.identity_header() not in response.text


# ---- federated and x5c client assertions ------------------------------------------------------

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/onboarding:ref:refs/heads/main"


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(key: rsa.RSAPrivateKey, kid: str = "k1") -> dict[str, Any]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


def external_token(key: rsa.RSAPrivateKey, now: float, *, iss: str = ISSUER, sub: str = SUBJECT,
                   aud: str = EXCHANGE, lifetime: int = 300, kid: str = "k1") -> str:
    claims = {"iss": iss, "sub": sub, "aud": aud, "iat": int(now), "nbf": int(now), "exp": int(now) + lifetime,
              "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def federated(graph: Graph, client_id: str, token: str) -> httpx.Response:
    return await grant(graph, grant_type="client_credentials", client_id=client_id,
                       scope="https://graph.microsoft.com/.default", client_assertion_type=ASSERTION_TYPE,
                       client_assertion=token)


async def test_federated_assertion_from_a_trusted_issuer(graph: Graph, issuer_key: rsa.RSAPrivateKey) -> None:
    app = graph.add_app(["User.ReadWrite.All"], display_name="ci onboarding", no_credential=True)
    assert app.secret is None
    graph.store.trust_issuer(ISSUER, jwks_of(issuer_key))
    graph.store.add_federated_credential(app.client_id, issuer=ISSUER, subject=SUBJECT)
    response = await federated(graph, app.client_id, external_token(issuer_key, graph.clock()))
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    assert claims_of(access)["appid"] == app.client_id and claims_of(access)["idtyp"] == "app"
    assert (await graph.client.get("/v1.0/users", headers=bearer(access))).status_code == 200


@pytest.mark.parametrize("problem,expected", [
    ("no-record", (400, "invalid_request", 70021)),
    ("issuer", (400, "invalid_request", 700211)),
    ("subject", (400, "invalid_request", 700213)),
    ("audience", (400, "invalid_request", 700212)),
    ("expired", (401, "invalid_client", 700024)),
    ("signature", (401, "invalid_client", 700027)),
    ("untrusted", (400, "invalid_request", 50166)),
])
async def test_federated_assertion_errors(graph: Graph, issuer_key: rsa.RSAPrivateKey, problem: str,
                                          expected: tuple[int, str, int]) -> None:
    app = graph.add_app(["User.ReadWrite.All"], no_credential=True)
    now = graph.clock()
    if problem != "untrusted":
        graph.store.trust_issuer(ISSUER, jwks_of(issuer_key))
    if problem != "no-record":
        graph.store.add_federated_credential(app.client_id, issuer=ISSUER, subject=SUBJECT)
    token = external_token(issuer_key, now)
    if problem == "issuer":
        token = external_token(issuer_key, now, iss="https://elsewhere.example")
    elif problem == "subject":
        token = external_token(issuer_key, now, sub="repo:contoso/other:ref:refs/heads/main")
    elif problem == "audience":
        token = external_token(issuer_key, now, aud="api://SomethingElse")
    elif problem == "expired":
        token = external_token(issuer_key, now - 3600)
    elif problem == "signature":
        token = external_token(rsa.generate_private_key(public_exponent=65537, key_size=2048), now)
    assert aad(await federated(graph, app.client_id, token)) == expected


def certificate(name: str = "entra-batch x5c", key: rsa.RSAPrivateKey | None = None, *,
                valid: tuple[float, float] = (-1, 30), at: float = START,
                ) -> tuple[rsa.RSAPrivateKey, x509.Certificate, str]:
    """A self-signed certificate valid from `valid[0]` to `valid[1]` days from `at` (default: the
    fake clock's start, the emulator's now in these tests)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.fromtimestamp(at, dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + dt.timedelta(days=valid[0]))
            .not_valid_after(now + dt.timedelta(days=valid[1])).sign(key, hashes.SHA256()))
    return key, cert, cert.public_bytes(serialization.Encoding.PEM).decode()


def x5c_assertion(key: rsa.RSAPrivateKey, cert: x509.Certificate, client_id: str, audience: str, now: float) -> str:
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "nbf": int(now),
              "exp": int(now) + 600}
    return jwt.encode(claims, key, algorithm="PS256", headers={"x5c": [der]})


async def test_x5c_assertion_with_the_registered_certificate(graph: Graph) -> None:
    key, cert, pem = certificate()
    app = graph.add_app(["User.Read.All"], certificate_pem=pem)
    url = f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    response = await federated(graph, app.client_id, x5c_assertion(key, cert, app.client_id, url, graph.clock()))
    assert response.status_code == 200, response.text
    # A renewed certificate (same subject, even the same key) is a different leaf: subject name
    # and issuer trust is not modelled, only the registered certificate is accepted.
    new_key, new_cert, _ = certificate(key=key)
    refused = await federated(graph, app.client_id, x5c_assertion(new_key, new_cert, app.client_id, url, graph.clock()))
    assert aad(refused) == (401, "invalid_client", 700027)


@pytest.mark.parametrize("valid,reason", [((-30, -1), "The key used is expired."),
                                          ((1, 30), "The key used is not yet valid.")])
async def test_a_certificate_outside_its_validity_is_refused(graph: Graph, valid: tuple[float, float],
                                                             reason: str) -> None:
    # Trial finding 6: a certificate that expired yesterday signed the app in. Entra refuses an
    # assertion signed with an expired key credential: AADSTS700027 "[Reason - The key used is
    # expired., ...]" with the key's dates.
    key, cert, pem = certificate(valid=valid)
    app = graph.add_app(["User.Read.All"], certificate_pem=pem)
    url = f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    for headers in ({"x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]}, {}):
        claims = {"aud": url, "iss": app.client_id, "sub": app.client_id, "jti": str(uuid.uuid4()),
                  "nbf": int(graph.clock()), "exp": int(graph.clock()) + 600}
        refused = await federated(graph, app.client_id, jwt.encode(claims, key, algorithm="PS256", headers=headers))
        assert aad(refused) == (401, "invalid_client", 700027)
        description = refused.json()["error_description"]
        assert f"[Reason - {reason}, Thumbprint of key used by client: '" in description
        assert f"End={cert.not_valid_after_utc:%m/%d/%Y %H:%M:%S}" in description


async def test_a_registered_certificate_keeps_the_secret(graph: Graph) -> None:
    # `entra-batch emulator --app-certificate`: the ready-made app gains a certificate and keeps
    # its secret, as an app registration may hold both.
    key, cert, pem = certificate()
    app = graph.default_app
    graph.store.set_app_certificate(app.client_id, pem)
    url = f"http://emulator/{graph.tenant.id}/oauth2/v2.0/token"
    by_certificate = await federated(graph, app.client_id, x5c_assertion(key, cert, app.client_id, url, graph.clock()))
    assert by_certificate.status_code == 200, by_certificate.text
    assert (await graph.token_response()).status_code == 200  # the secret still works
    with pytest.raises(KeyError):
        graph.store.set_app_certificate(str(uuid.uuid4()), pem)


async def test_the_device_code_message_names_the_served_directory(make_graph: Any) -> None:
    # Trial finding 11: an emulator serving another file than the default one is reached by
    # `approve CODE --db PATH`; the message says so (shell-quoted).
    from batch.emulator import EmulatorSettings

    default = (await device_code(make_graph())).json()
    assert default["message"].endswith(f"(Emulator: run `entra-batch emulator approve {default['user_code']}`.)")
    named = (await device_code(make_graph(EmulatorSettings(approve_db="/tmp/my runs/emu.db")))).json()
    assert named["message"].endswith(
        f"(Emulator: run `entra-batch emulator approve {named['user_code']} --db '/tmp/my runs/emu.db'`.)")


async def test_approving_as_an_unknown_administrator_says_how_to_add_one(graph: Graph) -> None:
    started = (await device_code(graph)).json()
    with pytest.raises(ApprovalError, match=r"add one with `entra-batch emulator add-admin "
                                            r"helpdesk@contoso.onmicrosoft.com --db /x/emu.db`"):
        approve(graph.store, started["user_code"], "helpdesk@contoso.onmicrosoft.com", graph.clock(), db="/x/emu.db")
