"""Every sign-in flow of the emulator driven by the real clients (msal, azure-identity) over
a TLS socket against `entra-batch emulator` (issue 13, "The emulator serves each flow"):
device code approved by `entra-batch emulator approve` or by `--approve-device-codes-as`,
the account cached by msal and reused without a new code, the password grant the Azure CLI
test's fake `az` uses, the App Service managed-identity endpoint, and workload identity
federation configured with `--trust-issuer` / `--federated-subject`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential, WorkloadIdentityCredential
from cryptography.hazmat.primitives.asymmetric import rsa
from emulator.server_process import GRAPH_SCOPE, REPO_ROOT, Emulator, running_emulator

from batch.emulator import Store
from batch.emulator.store import AZURE_CLI, GRAPH_COMMAND_LINE_TOOLS

pytestmark = pytest.mark.network

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/onboarding:environment:production"
ADMIN = "admin@contoso.onmicrosoft.com"
ADMIN_PASSWORD = "Adm1n-Passw0rd!"


@dataclass(frozen=True)
class Served:
    emulator: Emulator
    db: Path
    home: Path
    issuer_key: rsa.RSAPrivateKey


def _jwks(key: rsa.RSAPrivateKey) -> dict[str, object]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": "gh1", "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home: Path = tmp_path_factory.mktemp("identity-home")
    db = home / "emulator.db"
    store = Store(db)
    try:
        store.set_admin_password(ADMIN, ADMIN_PASSWORD)
    finally:
        store.close()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_file = home / "github-jwks.json"
    jwks_file.write_text(json.dumps(_jwks(key)))
    args = ["--trust-issuer", f"{ISSUER}={jwks_file}", "--federated-subject", SUBJECT]
    with running_emulator(home, db, extra_args=args) as emulator:
        yield Served(emulator, db, home, key)


@pytest.fixture(autouse=True)
def exported_ca(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, served.emulator.exports[name])
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _public(emulator: Emulator, client_id: str = GRAPH_COMMAND_LINE_TOOLS,
            cache: msal.SerializableTokenCache | None = None) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(client_id, authority=emulator.authority, instance_discovery=False,
                                        verify=emulator.ca_path, token_cache=cache)


def _device_flow(app: msal.PublicClientApplication, flow: dict[str, object]) -> dict[str, object]:
    """msal's polling, given up after 10 s instead of the code's 15 minutes (a broken approval
    fails the test instead of holding it)."""
    started = time.monotonic()
    return app.acquire_token_by_device_flow(flow, exit_condition=lambda _: time.monotonic() - started > 10)  # type: ignore[no-any-return]


def _graph(emulator: Emulator, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{emulator.graph_url}{path}", headers={"Authorization": f"Bearer {token}"},
                     verify=emulator.ssl_context(), timeout=10)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batch", "emulator", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "ENTRA_BATCH_HOME": str(home),
                                                      "PYTHONPATH": str(REPO_ROOT)})


def test_start_up_lines_name_the_administrator_and_the_managed_identity(served: Served) -> None:
    emulator = served.emulator
    assert emulator.identity_endpoint == f"{emulator.authority_host}/msi/token"
    assert emulator.identity_header
    assert "IDENTITY_ENDPOINT" not in emulator.exports  # commented out: never chosen by accident


def test_device_code_approved_by_the_command_then_cached(served: Served) -> None:
    emulator = served.emulator
    cache = msal.SerializableTokenCache()
    app = _public(emulator, cache=cache)
    flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
    assert "user_code" in flow, flow
    assert flow["user_code"] in flow["message"] and flow["interval"] == 5 and flow["expires_in"] == 900
    approved = _cli("approve", flow["user_code"], "--as", ADMIN, "--db", str(served.db), home=served.home)
    assert approved.returncode == 0, approved.stderr
    assert ADMIN in approved.stderr and approved.stdout == ""
    flow["interval"] = 1
    result = _device_flow(app, flow)
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["idtyp"] == "user" and claims["upn"] == ADMIN and "roles" not in claims
    me = _graph(emulator, "/me", result["access_token"])
    assert me.status_code == 200 and me.json()["userPrincipalName"] == ADMIN

    # A later run: the serialized cache signs in again without a new code.
    later = _public(emulator, cache=msal.SerializableTokenCache())
    later.token_cache.deserialize(cache.serialize())  # type: ignore[attr-defined]
    (account,) = later.get_accounts()
    assert account["username"] == ADMIN
    again = later.acquire_token_silent([GRAPH_SCOPE], account=account, force_refresh=True)
    assert again is not None and "access_token" in again, again
    assert again["access_token"] != result["access_token"]
    assert _graph(emulator, "/users", again["access_token"]).status_code == 200
    app.http_client.close()
    later.http_client.close()


def test_approve_command_errors_are_one_line(served: Served) -> None:
    unknown = _cli("approve", "NOSUCHCOD", "--db", str(served.db), home=served.home)
    assert unknown.returncode == 2 and "no device code" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and "Traceback" not in unknown.stderr
    missing = _cli("approve", "--db", str(served.db), home=served.home)
    assert missing.returncode == 2 and "USER_CODE" in missing.stderr
    nowhere = _cli("approve", "ABCDEFGHJ", "--db", str(served.home / "absent.db"), home=served.home)
    assert nowhere.returncode == 2 and "no emulator directory" in nowhere.stderr


def test_device_code_declined_ends_the_flow(served: Served) -> None:
    app = _public(served.emulator)
    flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
    declined = _cli("decline", flow["user_code"], "--db", str(served.db), home=served.home)
    assert declined.returncode == 0, declined.stderr
    flow["interval"] = 1
    started = time.monotonic()
    result = _device_flow(app, flow)
    assert result.get("error") == "authorization_declined", result
    assert time.monotonic() - started < 5
    app.http_client.close()


def test_password_grant_as_the_azure_cli_would(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    # msal first asks https://{host}/common/userrealm/{user} for the account type, dropping the
    # authority's port (msal.authority.Authority.user_realm_discovery): the emulator's port is not
    # 443, so that request cannot reach it. A host in this set goes straight to the password grant,
    # as msal does itself after a 404.
    realms = set(msal.authority.Authority._domains_without_user_realm_discovery)
    monkeypatch.setattr(msal.authority.Authority, "_domains_without_user_realm_discovery", realms | {"127.0.0.1"})
    app = _public(served.emulator, AZURE_CLI)
    result = app.acquire_token_by_username_password(ADMIN, ADMIN_PASSWORD, scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result
    assert jwt.decode(result["access_token"], options={"verify_signature": False})["appid"] == AZURE_CLI
    wrong = app.acquire_token_by_username_password(ADMIN, "not-it", scopes=[GRAPH_SCOPE])
    assert wrong.get("error") == "invalid_grant" and 50126 in wrong["error_codes"]
    assert "not-it" not in json.dumps(wrong)
    app.http_client.close()


def test_managed_identity_with_azure_identity(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = served.emulator
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)
    with ManagedIdentityCredential() as credential:
        token = credential.get_token(GRAPH_SCOPE)
    assert token.expires_on > time.time()
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["idtyp"] == "app" and claims["tid"] == emulator.tenant_id
    assert _graph(emulator, "/users", token.token).status_code == 200

    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    started = time.monotonic()
    with ManagedIdentityCredential() as credential, pytest.raises(ClientAuthenticationError):
        credential.get_token(GRAPH_SCOPE)
    assert time.monotonic() - started < 5


def _federated_token(served: Served, subject: str = SUBJECT, lifetime: int = 300) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "aud": "api://AzureADTokenExchange", "iat": now, "nbf": now - 5,
              "exp": now + lifetime, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, served.issuer_key, algorithm="RS256", headers={"kid": "gh1"})


def _workload(served: Served, token: str, tmp_path: Path) -> WorkloadIdentityCredential:
    token_file = tmp_path / "federated-token"
    token_file.write_text(token)
    emulator = served.emulator
    return WorkloadIdentityCredential(tenant_id=emulator.tenant_id, client_id=emulator.client_id,
                                      token_file_path=str(token_file), authority=emulator.authority_host,
                                      disable_instance_discovery=True)


def test_workload_identity_federation_with_azure_identity(served: Served, tmp_path: Path) -> None:
    with _workload(served, _federated_token(served), tmp_path) as credential:
        token = credential.get_token(GRAPH_SCOPE)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["appid"] == served.emulator.client_id and claims["idtyp"] == "app"
    assert _graph(served.emulator, "/users", token.token).status_code == 200


@pytest.mark.parametrize("subject,lifetime,code", [("repo:contoso/other:ref:refs/heads/x", 300, "AADSTS700213"),
                                                    (SUBJECT, -120, "AADSTS700024")])
def test_workload_identity_refused_fast_with_the_reason(served: Served, tmp_path: Path, subject: str, lifetime: int,
                                                        code: str) -> None:
    token = _federated_token(served, subject, lifetime)
    started = time.monotonic()
    with _workload(served, token, tmp_path) as credential, pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(GRAPH_SCOPE)
    assert time.monotonic() - started < 5
    assert code in str(caught.value) and token not in str(caught.value)


def test_auto_approval_option(served: Served, tmp_path: Path) -> None:
    # The same home (and so the same local CA, which the environment trusts), another directory.
    with running_emulator(served.home, tmp_path / "auto.db", extra_args=["--approve-device-codes-as", ADMIN]) as emulator:
        app = _public(emulator)
        flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
        started = time.monotonic()
        result = _device_flow(app, flow)
        assert "access_token" in result, result
        assert time.monotonic() - started < 5
        app.http_client.close()


def test_sign_in_options_that_name_nothing_are_one_line(served: Served, tmp_path: Path) -> None:
    unknown = _cli("--memory", "--port", "0", "--approve-device-codes-as", "nobody@contoso.onmicrosoft.com",
                   home=served.home)
    assert unknown.returncode == 2 and "no such administrator" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = _cli("--memory", "--port", "0", "--trust-issuer", f"{ISSUER}={tmp_path / 'absent.json'}", home=served.home)
    assert bad.returncode == 2 and "cannot read the JWKS document" in bad.stderr
    alone = _cli("--memory", "--port", "0", "--federated-subject", SUBJECT, home=served.home)
    assert alone.returncode == 2 and "needs a --trust-issuer" in alone.stderr


def test_device_code_credential_of_azure_identity(served: Served) -> None:
    """azure-identity's DeviceCodeCredential (what a client built on it uses): the prompt callback
    gets the code, `emulator approve` signs in, and the AuthenticationRecord names the admin."""
    from azure.identity import DeviceCodeCredential

    emulator = served.emulator
    approvals: list[subprocess.CompletedProcess[str]] = []

    def prompt(verification_uri: str, user_code: str, expires_on: object) -> None:
        approvals.append(_cli("approve", user_code, "--db", str(served.db), home=served.home))

    credential = DeviceCodeCredential(client_id=GRAPH_COMMAND_LINE_TOOLS, tenant_id=emulator.tenant_id,
                                      authority=emulator.authority_host, disable_instance_discovery=True,
                                      prompt_callback=prompt, timeout=20)
    started = time.monotonic()
    record = credential.authenticate(scopes=[GRAPH_SCOPE])
    assert time.monotonic() - started < 15
    assert approvals and approvals[0].returncode == 0, approvals
    assert record.username == ADMIN and record.tenant_id == emulator.tenant_id
    token = credential.get_token(GRAPH_SCOPE)
    assert _graph(emulator, "/me", token.token).json()["userPrincipalName"] == ADMIN


# ---- the trial's findings 2, 3 and 11: a certificate, more administrators, a named --db ---------------------

def _certificate_file(path: Path, days: tuple[int, int]) -> tuple[str, str]:
    """A PEM file holding a private key and a self-signed certificate valid from days[0] to
    days[1] days from now (what a client signs with); returns (key body line, thumbprint)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch onboarding")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + dt.timedelta(days=days[0]))
            .not_valid_after(now + dt.timedelta(days=days[1])).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))
    return key_pem.decode().splitlines()[5], cert.fingerprint(hashes.SHA1()).hex().upper()


def test_a_certificate_registered_at_start_signs_the_ready_made_app_in(served: Served, tmp_path: Path) -> None:
    from azure.identity import CertificateCredential, ClientSecretCredential

    pem = tmp_path / "app.pem"
    key_line, thumbprint = _certificate_file(pem, (-1, 365))
    db = tmp_path / "cert.db"  # not the default file: the prompts name it
    with running_emulator(served.home, db, extra_args=["--app-certificate", str(pem)]) as emulator:
        text = "\n".join(emulator.printed)
        assert f"holds certificate {thumbprint} (CN=entra-batch onboarding" in text
        assert "AZURE_CLIENT_CERTIFICATE_PATH" in emulator.optional and "AZURE_CLIENT_CERTIFICATE_PATH" not in emulator.exports
        assert text.count("unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET") == 2  # device code / Azure CLI, managed identity
        assert f"`entra-batch emulator approve USER_CODE --db {db}`" in text
        options = {"authority": emulator.authority_host, "disable_instance_discovery": True}
        with CertificateCredential(emulator.tenant_id, emulator.client_id, certificate_path=str(pem), **options) as c:
            token = c.get_token(GRAPH_SCOPE).token
        assert jwt.decode(token, options={"verify_signature": False})["appid"] == emulator.client_id
        with ClientSecretCredential(emulator.tenant_id, emulator.client_id, emulator.client_secret, **options) as c:
            assert c.get_token(GRAPH_SCOPE).token  # the app keeps its secret
        app = _public(emulator)
        flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
        assert flow["message"].endswith(f"(Emulator: run `entra-batch emulator approve {flow['user_code']} --db {db}`.)")
        app.http_client.close()
    # Only the certificate is kept: no line of the client's private key is in the directory file.
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cert.db*"))
    assert stored and key_line.encode() not in stored


def test_a_certificate_that_expired_yesterday_is_refused(served: Served, tmp_path: Path) -> None:
    from azure.identity import CertificateCredential

    pem = tmp_path / "expired.pem"
    _certificate_file(pem, (-30, -1))
    with running_emulator(served.home, tmp_path / "expired.db", extra_args=["--app-certificate", str(pem)]) as emulator:
        assert any("certificate" in line and "valid" in line for line in emulator.printed)
        with CertificateCredential(emulator.tenant_id, emulator.client_id, certificate_path=str(pem),
                                   authority=emulator.authority_host, disable_instance_discovery=True) as credential, \
                pytest.raises(ClientAuthenticationError) as caught:
            credential.get_token(GRAPH_SCOPE)
    assert "AADSTS700027" in str(caught.value) and "The key used is expired." in str(caught.value)


def test_an_app_certificate_that_is_not_one_is_one_line(served: Served, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    bad = _cli("--memory", "--port", "0", "--app-certificate", str(tmp_path / "notes.txt"), home=served.home)
    assert bad.returncode == 2 and "holds no certificate" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    absent = _cli("--memory", "--port", "0", "--app-certificate", str(tmp_path / "absent.pem"), home=served.home)
    assert absent.returncode == 2 and "cannot read --app-certificate" in absent.stderr


def test_add_admin_while_serving_then_approve_as_them(served: Served) -> None:
    helpdesk = "helpdesk@contoso.onmicrosoft.com"
    # The served directory is the home's default file: no --db needed.
    added = _cli("add-admin", helpdesk, "--role", "helpdesk administrator", home=served.home)
    assert added.returncode == 0 and "holding Helpdesk Administrator" in added.stderr, added.stderr
    app = _public(served.emulator)
    flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
    approved = _cli("approve", flow["user_code"], "--as", helpdesk, home=served.home)
    assert approved.returncode == 0, approved.stderr
    flow["interval"] = 1
    result = _device_flow(app, flow)
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["upn"] == helpdesk and claims["wids"] == ["729827e3-9c14-49f7-bb1b-9608f156bbb8"]
    # The "lacks the role" case: no role at all.
    none = _cli("add-admin", helpdesk, "--role", "none", home=served.home)
    assert none.returncode == 0 and "now holds no directory role" in none.stderr
    flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
    assert _cli("approve", flow["user_code"], "--as", helpdesk, home=served.home).returncode == 0
    flow["interval"] = 1
    claims = jwt.decode(_device_flow(app, flow)["access_token"], options={"verify_signature": False})
    assert claims["upn"] == helpdesk and not claims.get("wids")
    app.http_client.close()


def test_add_admin_and_approve_errors_are_one_line(served: Served) -> None:
    for args, expected in [
        (("add-admin", "x@contoso.onmicrosoft.com", "--role", "Janitor"), "unknown directory role"),
        (("add-admin", "x@fabrikam.example"), "no tenant of the emulator has the domain fabrikam.example"),
        (("add-admin", "not-a-upn"), "needs a UPN"),
    ]:
        done = _cli(*args, home=served.home)
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    app = _public(served.emulator)
    flow = app.initiate_device_flow(scopes=[GRAPH_SCOPE])
    unknown = _cli("approve", flow["user_code"], "--as", "nobody@contoso.onmicrosoft.com", "--db", str(served.db),
                   home=served.home)
    assert unknown.returncode == 2
    assert f"`entra-batch emulator add-admin nobody@contoso.onmicrosoft.com --db {served.db}`" in unknown.stderr
    app.http_client.close()
