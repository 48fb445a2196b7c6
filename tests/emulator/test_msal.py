"""msal (the real library, unpatched) against the emulator served over TLS on a loopback
socket: client-secret and certificate credentials, the token cache, a refused secret, and
the token's use on Graph (GRAPH.md §10, §14)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from emulator.server_process import GRAPH_SCOPE, Emulator, running_emulator

from batch.emulator import ALL_USER_PERMISSIONS, Store

pytestmark = pytest.mark.network


@dataclass(frozen=True)
class CertApp:
    client_id: str
    key_pem: str
    cert_pem: str
    sha1_thumbprint: str


@dataclass(frozen=True)
class Served:
    emulator: Emulator
    cert_app: CertApp


def _self_signed() -> tuple[str, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch test app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem, cert.fingerprint(hashes.SHA1()).hex()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home: Path = tmp_path_factory.mktemp("msal-home")
    db = home / "emulator.db"
    key_pem, cert_pem, thumbprint = _self_signed()
    # Register an app holding only a certificate before the server starts, as an admin would.
    store = Store(db)
    try:
        tenant_id = store.default_app().tenant_id
        app = store.add_app(tenant_id, ALL_USER_PERMISSIONS, display_name="cert app", certificate_pem=cert_pem)
    finally:
        store.close()
    with running_emulator(home, db) as emulator:
        yield Served(emulator, CertApp(app.client_id, key_pem, cert_pem, thumbprint))


@pytest.fixture(autouse=True)
def exported_ca(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a shell that ran the emulator's `export` lines: requests (msal's HTTP client) lets
    REQUESTS_CA_BUNDLE from the environment win over msal's `verify=` argument, so an
    inherited bundle that lacks the emulator's CA would break TLS verification."""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, served.emulator.exports[name])


class RecordingSession(requests.Session):
    """msal's ordinary HTTP client, remembering the token requests it sends."""

    def __init__(self, ca_path: str) -> None:
        super().__init__()
        self.verify = ca_path
        self.token_posts: list[dict[str, str]] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        # A per-request `verify`, or REQUESTS_CA_BUNDLE from the environment would win over self.verify.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)

    def post(self, url, data=None, **kwargs):  # type: ignore[no-untyped-def,override]
        if url.endswith("/oauth2/v2.0/token"):
            form = data if isinstance(data, dict) else dict(parse_qsl(data or ""))
            self.token_posts.append({_text(k): _text(v) for k, v in form.items()})
        return super().post(url, data=data, **kwargs)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture
def make_app(served: Served) -> Iterator:  # type: ignore[type-arg]
    """Builds msal apps against the emulator and closes their HTTP sessions afterwards (an
    open keep-alive TLS connection would hold up the server's shutdown)."""
    apps: list[msal.ConfidentialClientApplication] = []

    def make(client_id: str, credential, http_client=None) -> msal.ConfidentialClientApplication:  # type: ignore[no-untyped-def]
        emulator = served.emulator
        kwargs = {"http_client": http_client} if http_client is not None else {"verify": emulator.ca_path}
        app = msal.ConfidentialClientApplication(
            client_id, client_credential=credential, authority=emulator.authority, instance_discovery=False, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.http_client.close()


def _list_users(emulator: Emulator, token: str) -> httpx.Response:
    return httpx.get(f"{emulator.graph_url}/users", headers={"Authorization": f"Bearer {token}"},
                     params={"$top": "5"}, verify=emulator.ssl_context(), timeout=10)


def test_client_secret_token_then_cache(served: Served, make_app) -> None:
    emulator = served.emulator
    session = RecordingSession(emulator.ca_path)
    app = make_app(emulator.client_id, emulator.client_secret, session)

    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in first, first
    assert first["token_type"].lower() == "bearer"
    assert first["token_source"] == "identity_provider"
    second = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert len(session.token_posts) == 1
    sent = session.token_posts[0]
    assert sent["grant_type"] == "client_credentials" and sent["client_secret"] == emulator.client_secret

    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert claims["tid"] == emulator.tenant_id and claims["appid"] == emulator.client_id
    response = _list_users(emulator, first["access_token"])
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["value"], list)


def test_wrong_secret_is_invalid_client(served: Served, make_app) -> None:
    emulator = served.emulator
    app = make_app(emulator.client_id, "not-the-secret")
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" not in result
    assert result["error"] == "invalid_client", result
    assert 7000215 in result.get("error_codes", [])
    assert result["error_description"].startswith("AADSTS7000215")


def _assertion_header(session: RecordingSession) -> dict[str, object]:
    assert len(session.token_posts) == 1
    form = session.token_posts[0]
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_secret" not in form
    return jwt.get_unverified_header(form["client_assertion"])


def test_certificate_with_public_certificate_uses_ps256(served: Served, make_app) -> None:
    emulator, cert = served.emulator, served.cert_app
    session = RecordingSession(emulator.ca_path)
    app = make_app(cert.client_id, {"private_key": cert.key_pem, "public_certificate": cert.cert_pem}, session)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result
    header = _assertion_header(session)
    assert header["alg"] == "PS256" and "x5t#S256" in header and "x5c" in header

    response = _list_users(emulator, result["access_token"])
    assert response.status_code == 200, response.text
    assert jwt.decode(result["access_token"], options={"verify_signature": False})["appid"] == cert.client_id


def test_certificate_with_thumbprint_uses_rs256(served: Served, make_app) -> None:
    emulator, cert = served.emulator, served.cert_app
    session = RecordingSession(emulator.ca_path)
    app = make_app(cert.client_id, {"private_key": cert.key_pem, "thumbprint": cert.sha1_thumbprint}, session)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result
    header = _assertion_header(session)
    assert header["alg"] == "RS256" and "x5t" in header

    response = _list_users(emulator, result["access_token"])
    assert response.status_code == 200, response.text


def test_certificate_app_refuses_a_foreign_key(served: Served, make_app) -> None:
    """A key that does not match the registered certificate is refused with invalid_client."""
    cert = served.cert_app
    other_key, other_cert, _ = _self_signed()
    app = make_app(cert.client_id, {"private_key": other_key, "public_certificate": other_cert})
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" not in result
    assert result["error"] == "invalid_client", result
