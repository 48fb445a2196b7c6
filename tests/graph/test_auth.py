"""Token providers (msal and plain client credentials): caching, refresh 5 minutes before
expiry, retries of the token endpoint up to a deadline, AuthError with the AADSTS code and a
remedy, no secret or token in messages or logs; and the permission preflight helpers
(GRAPH.md §10, §14). The plain token endpoint is a `respx` route; msal gets a scripted
`http_client` (it speaks `requests`, not httpx); time is the one `FakeClock`."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from batch.auth import (
    ClientCredentialsProvider,
    MsalTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    load_certificate,
    missing_permissions,
    token_roles,
)
from batch.emulator import ALL_USER_PERMISSIONS, Store, create_app
from batch.emulator.inprocess import EmulatorTransport
from batch.errors import AuthError, ConfigError, PermissionMissing
from batch.graph import GraphCall, GraphClient, RetryPolicy

try:
    from .fakes import FakeClock
except ImportError:  # tests/graph is not a package
    from fakes import FakeClock  # type: ignore[no-redef]

SECRET = "s3cr3t~Value.With-Symbols_0123456789"
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
HOST = "https://login.emulator.test"
TOKEN_URL = f"{HOST}/{TENANT}/oauth2/v2.0/token"


def fake_jwt(roles: list[str] | None = None, **claims: Any) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    payload = {"aud": "https://graph.microsoft.com", "tid": TENANT, **claims}
    if roles is not None:
        payload["roles"] = roles
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


def fake_time() -> FakeClock:
    """The providers' clock is Unix time (`time.time`)."""
    return FakeClock(start=1_780_000_000.0)


def token_answer(token: str, expires_in: int = 3599) -> httpx.Response:
    return httpx.Response(200, json={"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
                                     "access_token": token})


def aad_error(status: int, error: str, code: int, text: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={
        "error": error, "error_description": f"AADSTS{code}: {text} Trace ID: t Correlation ID: c Timestamp: now",
        "error_codes": [code], "trace_id": "t", "correlation_id": "c"})


class TokenEndpoint:
    """The token endpoint as a respx route: `route` answers, `forms` are the forms it got."""

    def __init__(self) -> None:
        self.router = respx.Router()
        self.route = self.router.post(TOKEN_URL)

    @property
    def forms(self) -> list[dict[str, list[str]]]:
        return [parse_qs(call.request.content.decode()) for call in self.route.calls]


def plain(endpoint: TokenEndpoint, t: FakeClock, **kwargs: Any) -> ClientCredentialsProvider:
    kwargs.setdefault("retry", RetryPolicy(deadline_seconds=120, base_delay=1.0, max_delay=30.0, jitter=0.0))
    transport = httpx.MockTransport(endpoint.router.async_handler)
    return ClientCredentialsProvider(TOKEN_URL, CLIENT, SECRET, transport=transport, clock=t.clock, sleep=t.sleep,
                                     **kwargs)


# ---- the preflight ----------------------------------------------------------------------------------------

def test_token_roles_reads_the_payload_without_verifying() -> None:
    assert token_roles(fake_jwt(["User.Create", "User.Read.All"])) == {"User.Create", "User.Read.All"}
    assert token_roles(fake_jwt()) == frozenset()
    for garbage in ("", "opaque-token", "a.b.c", "a.!!!.c", fake_jwt(roles="User.Create")):  # type: ignore[arg-type]
        assert token_roles(garbage) == frozenset()


def test_missing_permissions_names_the_least_privileged() -> None:
    create = frozenset({"User.Create", "User.ReadWrite.All", "Directory.ReadWrite.All"})
    read = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
    identities = frozenset({"User.ManageIdentities.All"})
    needed = [create, read, identities]
    assert missing_permissions(frozenset(), needed) == ["User.Create", "User.Read.All", "User.ManageIdentities.All"]
    assert missing_permissions({"User.ReadWrite.All"}, needed) == ["User.ManageIdentities.All"]
    assert missing_permissions({"user.create", "User.Read.All", "User.ManageIdentities.All"}, needed) == []
    assert missing_permissions(set(), [("User.ReadUpdate.All", "User.ReadWrite.All")]) == ["User.ReadUpdate.All"]
    error = PermissionMissing(missing_permissions({"User.Read.All"}, needed), client_id=CLIENT)
    assert error.exit_code == 3 and "User.Create" in str(error) and "admin consent" in str(error)


# ---- plain client credentials -----------------------------------------------------------------------------

async def test_token_is_cached_and_refreshed_five_minutes_before_expiry() -> None:
    t = fake_time()
    endpoint = TokenEndpoint()
    endpoint.route.mock(side_effect=[token_answer("first", 3600), token_answer("second", 3600)])
    provider = plain(endpoint, t)
    assert await provider.token() == "first"
    assert endpoint.forms[0]["client_secret"] == [SECRET] and endpoint.forms[0]["grant_type"] == ["client_credentials"]
    assert endpoint.forms[0]["scope"] == ["https://graph.microsoft.com/.default"]
    t.now += 3600 - 301
    assert await provider.token() == "first"
    t.now += 2  # now less than 5 minutes are left
    assert await provider.token() == "second"
    assert len(endpoint.forms) == 2


async def test_concurrent_callers_share_one_fetch() -> None:
    t = fake_time()
    endpoint = TokenEndpoint()
    endpoint.route.mock(return_value=token_answer("only"))
    provider = plain(endpoint, t)
    assert set(await asyncio.gather(*(provider.token() for _ in range(20)))) == {"only"}
    assert endpoint.route.call_count == 1


async def test_invalidate_fetches_a_new_token() -> None:
    t = fake_time()
    endpoint = TokenEndpoint()
    endpoint.route.mock(side_effect=[token_answer("old"), token_answer("new")])
    provider = plain(endpoint, t)
    assert await provider.token() == "old"
    provider.invalidate()
    assert await provider.token() == "new"


@pytest.mark.parametrize("failure", [
    aad_error(503, "temporarily_unavailable", 50196, "The server is temporarily unavailable."),
    httpx.Response(502, text="<html>Bad gateway</html>"),
    aad_error(429, "temporarily_unavailable", 50196, "Too many requests.", {"Retry-After": "4"}),
    httpx.ConnectError("connection refused"),
])
async def test_token_endpoint_failures_are_retried(failure: Any) -> None:
    t = fake_time()
    endpoint = TokenEndpoint()
    endpoint.route.mock(side_effect=[failure, failure, token_answer("finally")])
    provider = plain(endpoint, t)
    assert await provider.token() == "finally"
    assert endpoint.route.call_count == 3
    expected = [4.0, 4.0] if isinstance(failure, httpx.Response) and failure.status_code == 429 else [1.0, 2.0]
    assert t.sleeps == expected


async def test_token_endpoint_down_past_the_deadline_is_an_auth_error() -> None:
    t = fake_time()
    endpoint = TokenEndpoint()
    endpoint.route.mock(side_effect=httpx.ConnectError("refused"))  # every time
    provider = plain(endpoint, t)
    with pytest.raises(AuthError) as caught:
        await provider.token()
    assert caught.value.exit_code == 3
    assert "120 s" in str(caught.value) and SECRET not in str(caught.value)
    assert sum(t.sleeps) <= 120 and endpoint.route.call_count > 3


async def test_a_failing_refresh_keeps_the_valid_token() -> None:
    t = fake_time()
    down = aad_error(503, "temporarily_unavailable", 50196, "Unavailable.")
    endpoint = TokenEndpoint()
    endpoint.route.mock(side_effect=[token_answer("still-good", 3600), down, down, token_answer("fresh", 3600)])
    provider = plain(endpoint, t)
    assert await provider.token() == "still-good"
    t.now += 3400  # inside the refresh margin, still valid for 200 s
    assert await provider.token() == "still-good"  # one failed try, no waiting
    assert await provider.token() == "still-good"  # backing off: no new try yet
    assert endpoint.route.call_count == 2 and t.sleeps == []
    t.now += 5
    assert await provider.token() == "still-good"
    t.now += 5
    assert await provider.token() == "fresh"


async def test_refused_credentials_raise_auth_error_with_code_and_remedy() -> None:
    t = fake_time()
    refused = aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent "
                                                        "in the request is the client secret value.")
    endpoint = TokenEndpoint()
    endpoint.route.mock(return_value=refused)
    with pytest.raises(AuthError) as caught:
        await plain(endpoint, t).token()
    message = str(caught.value)
    assert "7000215" in message and "AZURE_CLIENT_SECRET" in message
    assert caught.value.code == "7000215" and caught.value.error == "invalid_client" and caught.value.exit_code == 3
    assert SECRET not in message and "Trace ID" not in message
    assert endpoint.route.call_count == 1  # not retried

    tenant = TokenEndpoint()
    tenant.route.mock(return_value=aad_error(400, "invalid_request", 90002, f"Tenant '{TENANT}' not found."))
    with pytest.raises(AuthError, match="AZURE_TENANT_ID"):
        await plain(tenant, t).token()


async def test_client_credentials_against_the_emulator(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = Store(":memory:")
    transport = EmulatorTransport(create_app(store))
    app, tenant = store.default_app(), store.tenants()[0]
    assert app.secret is not None
    url = f"http://emulator/{tenant.id}/oauth2/v2.0/token"
    provider = ClientCredentialsProvider(url, app.client_id, app.secret, transport=transport)
    token = await provider.token()
    assert {"User.ReadWrite.All", "User.ManageIdentities.All"} <= token_roles(token)
    async with GraphClient("http://emulator/v1.0", provider, transport=transport) as client:
        result = await client.request(GraphCall("GET", "/users?$top=1"))
    assert result.status == 200
    wrong = ClientCredentialsProvider(url, app.client_id, "not-the-secret", transport=transport)
    with pytest.raises(AuthError) as caught:
        await wrong.token()
    assert "7000215" in str(caught.value) and "not-the-secret" not in str(caught.value)
    assert app.secret not in caplog.text and token not in caplog.text and "not-the-secret" not in caplog.text
    await provider.aclose()
    await wrong.aclose()
    store.close()


def test_static_provider_and_protocol() -> None:
    static = StaticTokenProvider("abc")
    assert isinstance(static, TokenProvider)
    assert asyncio.run(static.token()) == "abc"
    static.invalidate()


# ---- msal -------------------------------------------------------------------------------------------------

class FakeIdentityPlatform:
    """msal's `http_client`: serves the OpenID configuration of `HOST/TENANT` and answers
    token POSTs from a script (the last answer repeats)."""

    def __init__(self, *answers: Any, tenant_found: bool = True) -> None:
        self.answers = list(answers)
        self.gets: list[str] = []
        self.posts: list[dict[str, Any]] = []
        self.tenant_found = tenant_found

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        self.gets.append(url)
        if not self.tenant_found:
            return SimpleNamespace(status_code=400, text='{"error":"invalid_tenant"}', headers={})
        assert url == f"{HOST}/{TENANT}/v2.0/.well-known/openid-configuration", url
        root = f"{HOST}/{TENANT}"
        body = {"token_endpoint": f"{root}/oauth2/v2.0/token", "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "issuer": f"{root}/v2.0", "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode"}
        return SimpleNamespace(status_code=200, text=json.dumps(body), headers={"content-type": "application/json"})

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        assert url == TOKEN_URL
        self.posts.append(dict(data or {}))
        answer = self.answers[min(len(self.posts), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        status, body, extra = answer
        return SimpleNamespace(status_code=status, text=json.dumps(body), headers={"content-type": "application/json",
                                                                                     **extra})

    def close(self) -> None:
        pass


def ok(token: str, expires_in: int = 3599) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 200, {"token_type": "Bearer", "expires_in": expires_in, "access_token": token}, {}


def msal_provider(platform: FakeIdentityPlatform, t: FakeClock, **kwargs: Any) -> MsalTokenProvider:
    if "certificate_path" not in kwargs:
        kwargs["client_secret"] = SECRET
    return MsalTokenProvider(TENANT, CLIENT, authority_host=HOST, clock=t.clock, sleep=t.sleep, http_client=platform,
                             retry=RetryPolicy(deadline_seconds=60, base_delay=1.0, jitter=0.0), **kwargs)


async def test_msal_one_app_cached_and_refreshed_early(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    t = fake_time()
    platform = FakeIdentityPlatform(ok(fake_jwt(["User.Create"], n=1), 3600), ok(fake_jwt(["User.Create"], n=2), 3600))
    provider = msal_provider(platform, t)
    first = await provider.token()
    assert await provider.token() == first
    assert len(platform.posts) == 1
    assert platform.posts[0]["client_secret"] == SECRET and platform.posts[0]["grant_type"] == "client_credentials"
    assert all("login.microsoftonline.com" not in url for url in platform.gets)  # no instance discovery
    t.now += 3600 - 299
    second = await provider.token()
    assert second != first and len(platform.posts) == 2
    app = provider._app  # noqa: SLF001 - the same ConfidentialClientApplication throughout
    provider.invalidate()
    third = await provider.token()
    assert provider._app is app and len(platform.posts) == 3  # noqa: SLF001
    assert token_roles(third) == {"User.Create"}
    assert SECRET not in caplog.text and first not in caplog.text and second not in caplog.text


async def test_msal_5xx_and_temporarily_unavailable_are_retried() -> None:
    t = fake_time()
    unavailable = (503, {"error": "temporarily_unavailable", "error_description": "AADSTS50196: busy",
                         "error_codes": [50196]}, {"Retry-After": "30"})
    platform = FakeIdentityPlatform(unavailable, (400, {"error": "temporarily_unavailable",
                                                        "error_description": "AADSTS90033: try again"}, {}),
                                    ok(fake_jwt(), 3600))
    provider = msal_provider(platform, t)
    assert token_roles(await provider.token()) == frozenset()
    assert len(platform.posts) == 3  # msal's own failure cache did not swallow the retries
    assert t.sleeps == [1.0, 2.0]


async def test_msal_connection_errors_are_retried_then_give_up() -> None:
    import requests

    t = fake_time()
    platform = FakeIdentityPlatform(requests.exceptions.ConnectionError("refused"))
    with pytest.raises(AuthError, match="60 s"):
        await msal_provider(platform, t).token()
    assert len(platform.posts) > 3 and sum(t.sleeps) <= 60


async def test_msal_refused_secret_is_an_auth_error_without_the_secret() -> None:
    t = fake_time()
    description = "AADSTS7000215: Invalid client secret provided. Trace ID: x Correlation ID: y"
    refused: tuple[int, dict[str, Any], dict[str, str]] = (
        401, {"error": "invalid_client", "error_description": description, "error_codes": [7000215]}, {})
    platform = FakeIdentityPlatform(refused)
    with pytest.raises(AuthError) as caught:
        await msal_provider(platform, t).token()
    assert "AADSTS7000215" in str(caught.value) and SECRET not in str(caught.value)
    assert len(platform.posts) == 1

    with pytest.raises(AuthError, match="90002"):
        await msal_provider(FakeIdentityPlatform(tenant_found=False), t).token()


def self_signed(tmp_path: Path) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    path = tmp_path / "app.pem"
    path.write_text(key_pem + cert_pem)
    return path, cert_pem


async def test_msal_certificate_signs_ps256_with_x5c(tmp_path: Path) -> None:
    path, _ = self_signed(tmp_path)
    credential = load_certificate(path)
    assert set(credential) == {"private_key", "public_certificate"}
    t = fake_time()
    platform = FakeIdentityPlatform(ok(fake_jwt()))
    await msal_provider(platform, t, certificate_path=path, send_certificate_chain=True).token()
    form = platform.posts[0]
    assert "client_secret" not in form
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == "PS256" and "x5c" in header and "x5t#S256" in header
    # Issue 13: without send_x5c (azure-identity's default), the same signature without the chain.
    platform = FakeIdentityPlatform(ok(fake_jwt()))
    await msal_provider(platform, t, certificate_path=path).token()
    header = jwt.get_unverified_header(platform.posts[0]["client_assertion"])
    assert header["alg"] == "PS256" and "x5c" not in header and "x5t#S256" in header


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        MsalTokenProvider(TENANT, CLIENT)  # no credential
    with pytest.raises(ConfigError):
        MsalTokenProvider(TENANT, CLIENT, client_secret=SECRET, certificate_path="x.pem")
    with pytest.raises(ConfigError, match="https"):
        MsalTokenProvider(TENANT, CLIENT, client_secret=SECRET, authority_host="http://127.0.0.1:8765")
    with pytest.raises(ConfigError, match="Cannot read"):
        MsalTokenProvider(TENANT, CLIENT, certificate_path=tmp_path / "missing.pem")
    (tmp_path / "key-only.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="no certificate"):
        load_certificate(tmp_path / "key-only.pem")
    assert ConfigError("x").exit_code == 2


class EmulatorBridge:
    """msal's `http_client` bridged, from msal's worker thread, onto the in-process emulator
    running on the test's event loop: real msal, real emulator, no socket."""

    def __init__(self, transport: httpx.AsyncBaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.client = httpx.AsyncClient(transport=transport)
        self.loop = loop

    def _call(self, method: str, url: str, **kwargs: Any) -> SimpleNamespace:
        future = asyncio.run_coroutine_threadsafe(self.client.request(method, url, **kwargs), self.loop)
        response = future.result(timeout=30)
        return SimpleNamespace(status_code=response.status_code, text=response.text, headers=dict(response.headers))

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        return self._call("GET", url, params=params, headers=headers)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        if isinstance(data, dict):  # msal hands the client assertion over as bytes, as requests accepts
            data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        return self._call("POST", url, params=params, data=data, headers=headers)

    def close(self) -> None:
        pass


async def test_msal_against_the_emulator_with_secret_and_certificate(tmp_path: Path) -> None:
    store = Store(":memory:")
    transport = EmulatorTransport(create_app(store))
    bridge = EmulatorBridge(transport, asyncio.get_running_loop())
    default, tenant = store.default_app(), store.tenants()[0]
    path, cert_pem = self_signed(tmp_path)
    cert_app = store.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="cert app", certificate_pem=cert_pem)
    by_secret = MsalTokenProvider(tenant.id, default.client_id, client_secret=default.secret, authority_host=HOST,
                                  http_client=bridge)
    by_cert = MsalTokenProvider(tenant.id, cert_app.client_id, certificate_path=path, authority_host=HOST,
                                http_client=bridge)
    for provider in (by_secret, by_cert):
        async with GraphClient("http://emulator/v1.0", provider, transport=transport) as client:
            result = await client.request(GraphCall("GET", "/users?$top=1&$select=id"))
        assert result.status == 200, result.error_message
    wrong = MsalTokenProvider(tenant.id, default.client_id, client_secret="wrong-secret-value", authority_host=HOST,
                              http_client=bridge)
    with pytest.raises(AuthError) as caught:
        await wrong.token()
    assert "7000215" in str(caught.value) and "wrong-secret-value" not in str(caught.value)
    await bridge.client.aclose()
    store.close()
