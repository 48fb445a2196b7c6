"""Issue 13, the sign-in methods' providers without a socket: device code (the code and page
said through the prompt, the token cache file 0600 in a 0700 folder holding no secret, a second
run that asks no code, a run without a terminal that stops at once, a code not approved in
time), certificates (PFX with a password, x5c only with send_x5c), workload identity (the
federated token read from its file for each request), and azure-identity's refusals (Azure
CLI, managed identity) as one line naming the method and the remedy."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from batch.auth import MsalTokenProvider
from batch.auth.azure_identity import AzureIdentityProvider
from batch.auth.device_code import DeviceCodeProvider
from batch.config import GRAPH_COMMAND_LINE_TOOLS, Sources
from batch.errors import AuthError, ConfigError
from batch.graph import RetryPolicy
from batch.run.token_cache import TokenCacheFile

HOST = "https://login.example.test"
TENANT = "11111111-2222-3333-4444-555555555555"
ROOT = f"{HOST}/{TENANT}"
TOKEN_URL = f"{ROOT}/oauth2/v2.0/token"
DEVICE_URL = f"{ROOT}/oauth2/v2.0/devicecode"
FAST = RetryPolicy(deadline_seconds=5, base_delay=0.01, jitter=0.0)


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any]) -> str:
    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"


class FakeDeviceLogin:
    """msal's `http_client`: the OpenID configuration, the device code endpoint and the token
    endpoint of one tenant, with one administrator who approves (or not) the code."""

    def __init__(self, *, approve: bool = True, expire: bool = False) -> None:
        self.approve, self.expire = approve, expire
        self.codes = 0
        self.grants: list[str] = []
        self.refresh_tokens: set[str] = set()

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        assert url == f"{ROOT}/v2.0/.well-known/openid-configuration", url
        body = {"token_endpoint": TOKEN_URL, "authorization_endpoint": f"{ROOT}/oauth2/v2.0/authorize",
                "issuer": f"{ROOT}/v2.0", "device_authorization_endpoint": DEVICE_URL}
        return self._json(200, body)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        form = dict(data or {})
        assert "client_secret" not in form and "client_assertion" not in form  # a public client
        if url == DEVICE_URL:
            self.codes += 1
            return self._json(200, {"device_code": f"dc{self.codes}", "user_code": f"ABCD{self.codes}",
                                    "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 900,
                                    "interval": 0, "message": f"To sign in, enter the code ABCD{self.codes}"})
        assert url == TOKEN_URL
        self.grants.append(form["grant_type"])
        if form["grant_type"] == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return self._json(400, {"error": "invalid_grant", "error_codes": [70008]})
            return self._tokens(form["client_id"])
        if self.expire:
            return self._json(400, {"error": "expired_token", "error_codes": [70019],
                                    "error_description": "AADSTS70019: This verification code expired."})
        if not self.approve:
            return self._json(400, {"error": "authorization_declined", "error_codes": [65004],
                                    "error_description": "AADSTS65004: User declined to consent."})
        return self._tokens(form["client_id"])

    def _tokens(self, client_id: str) -> SimpleNamespace:
        now = int(time.time())
        access = unsigned({"idtyp": "user", "scp": "User.ReadWrite.All", "upn": "admin@contoso.test", "tid": TENANT,
                           "oid": "admin-oid", "exp": now + 3600})
        refresh = f"rt-{len(self.refresh_tokens)}"
        self.refresh_tokens.add(refresh)
        id_token = unsigned({"iss": f"{ROOT}/v2.0", "aud": client_id, "iat": now, "exp": now + 3600, "sub": "s",
                             "oid": "admin-oid", "tid": TENANT, "preferred_username": "admin@contoso.test"})
        return self._json(200, {"token_type": "Bearer", "expires_in": 3600, "access_token": access,
                                "refresh_token": refresh, "id_token": id_token,
                                "scope": "User.ReadWrite.All openid profile offline_access",
                                "client_info": b64({"uid": "admin-oid", "utid": TENANT})})

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(status_code=status, text=json.dumps(body), headers={"content-type": "application/json"})

    def close(self) -> None:
        pass


def device_provider(platform: FakeDeviceLogin, cache: TokenCacheFile | None, prompt: Any) -> DeviceCodeProvider:
    return DeviceCodeProvider(TENANT, GRAPH_COMMAND_LINE_TOOLS, cache=cache, prompt=prompt, authority_host=HOST,
                              http_client=platform, retry=FAST)


# ---- device code -------------------------------------------------------------------------------------

def test_device_code_says_the_code_caches_privately_and_the_next_run_asks_none(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "entra-batch"
    said: list[str] = []
    platform = FakeDeviceLogin()
    first = device_provider(platform, TokenCacheFile(folder, TENANT, GRAPH_COMMAND_LINE_TOOLS), said.append)
    token = asyncio.run(first.token())
    assert "admin@contoso.test" in base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
    assert said == ["To sign in, enter the code ABCD1"] and first.asked == 1
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].name == f"device-code-{TENANT}-{GRAPH_COMMAND_LINE_TOOLS}.json"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    text = files[0].read_text()
    assert "RefreshToken" in text and "client_secret" not in text  # a public client has no secret to keep

    # The next run (a new process: a new provider) signs in with the refresh token, no code, no prompt.
    second = device_provider(platform, TokenCacheFile(folder, TENANT, GRAPH_COMMAND_LINE_TOOLS), prompt=None)
    asyncio.run(second.token())
    assert second.asked == 0 and platform.codes == 1 and platform.grants[-1] == "refresh_token"


def test_device_code_without_a_terminal_or_a_cache_stops_at_once(tmp_path: Path) -> None:
    platform = FakeDeviceLogin()
    provider = device_provider(platform, TokenCacheFile(tmp_path / "c", TENANT, GRAPH_COMMAND_LINE_TOOLS), None)
    started = time.monotonic()
    with pytest.raises(AuthError, match="no one is at a terminal to enter a code") as caught:
        asyncio.run(provider.token())
    assert time.monotonic() - started < 5 and platform.codes == 0
    assert "Run the command once at a terminal" in str(caught.value)


def test_a_code_not_approved_in_time_ends_with_the_reason(tmp_path: Path) -> None:
    provider = device_provider(FakeDeviceLogin(expire=True), None, lambda message: None)
    with pytest.raises(AuthError, match="AADSTS70019.*not entered in time"):
        asyncio.run(provider.token())
    declined = device_provider(FakeDeviceLogin(approve=False), None, lambda message: None)
    with pytest.raises(AuthError, match="declined"):
        asyncio.run(declined.token())


def test_a_cache_file_others_may_read_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    cache = TokenCacheFile(folder, TENANT, GRAPH_COMMAND_LINE_TOOLS)
    cache.save("{}")
    cache.path.chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by other users"):
        cache.load()


# ---- certificates -------------------------------------------------------------------------------------

def self_signed() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, cert


class FakeConfidential(FakeDeviceLogin):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any) -> SimpleNamespace:
        self.forms.append(dict(data or {}))
        return self._json(200, {"token_type": "Bearer", "expires_in": 3600,
                                "access_token": unsigned({"idtyp": "app", "roles": [], "tid": TENANT})})


def test_a_pfx_with_its_password_signs_and_sends_x5c_only_when_asked(tmp_path: Path) -> None:
    key, cert = self_signed()
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(b"pfx-password")))
    for chain in (False, True):
        platform = FakeConfidential()
        provider = MsalTokenProvider(TENANT, "app-id", certificate_path=pfx, certificate_password="pfx-password",
                                     send_certificate_chain=chain, authority_host=HOST, http_client=platform,
                                     retry=FAST)
        asyncio.run(provider.token())
        assertion = platform.forms[0]["client_assertion"]
        header = pyjwt.get_unverified_header(assertion)
        assert header["alg"] == "PS256" and "x5t#S256" in header and ("x5c" in header) is chain
        claims = pyjwt.decode(assertion, cert.public_key(), algorithms=["PS256"], audience=TOKEN_URL)  # type: ignore[arg-type]
        assert claims["iss"] == claims["sub"] == "app-id"
    with pytest.raises(ConfigError, match="password is wrong") as caught:
        MsalTokenProvider(TENANT, "app-id", certificate_path=pfx, certificate_password="nope", authority_host=HOST)
    assert "nope" not in str(caught.value)
    with pytest.raises(ConfigError, match="needs a password"):
        MsalTokenProvider(TENANT, "app-id", certificate_path=pfx, authority_host=HOST)


def test_an_encrypted_pem_key_opens_with_its_password(tmp_path: Path) -> None:
    key, cert = self_signed()
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"pem-pass"))
                    + cert.public_bytes(serialization.Encoding.PEM))
    platform = FakeConfidential()
    asyncio.run(MsalTokenProvider(TENANT, "app-id", certificate_path=pem, certificate_password="pem-pass",
                                  authority_host=HOST, http_client=platform, retry=FAST).token())
    assert platform.forms[0]["client_assertion"]
    with pytest.raises(ConfigError, match="encrypted and no password"):
        MsalTokenProvider(TENANT, "app-id", certificate_path=pem, authority_host=HOST)


# ---- workload identity --------------------------------------------------------------------------------

def test_workload_identity_sends_the_file_token_read_again_each_time(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("federated-1\n")
    platform = FakeConfidential()
    provider = MsalTokenProvider(TENANT, "app-id", federated_token_file=token_file, authority_host=HOST,
                                 http_client=platform, retry=FAST)
    asyncio.run(provider.token())
    token_file.write_text("federated-2")  # Kubernetes rotates it in place
    provider.invalidate()
    asyncio.run(provider.token())
    assert [f["client_assertion"] for f in platform.forms] == ["federated-1", "federated-2"]
    assert all(f["client_assertion_type"].endswith("jwt-bearer") for f in platform.forms)


def test_workload_identity_refusals_name_the_file() -> None:
    from batch.auth.errors import auth_error

    sources = Sources()
    error = auth_error({"error": "invalid_client", "error_codes": [70021],
                        "error_description": "AADSTS70021: No matching federated identity record found"},
                       sources=sources, client_id="app-id", method="workload-identity")
    assert "AZURE_FEDERATED_TOKEN_FILE" in str(error) and "Federated credentials" in str(error)


# ---- azure-identity's credentials -------------------------------------------------------------------------

class Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        raise self.exc


def test_azure_cli_refusals_are_one_line_with_az_login() -> None:
    from azure.identity import CredentialUnavailableError

    for reason, expected in (("Azure CLI not found on path", "is not on PATH"),
                             ("Please run 'az login' to set up an account", f"az login --tenant {TENANT}")):
        provider = AzureIdentityProvider("azure-cli", lambda r=reason: Raising(CredentialUnavailableError(r)),
                                         tenant_id=TENANT, retry=FAST, sources=Sources(auth="--auth"))
        with pytest.raises(AuthError, match=expected) as caught:
            asyncio.run(provider.token())
        assert "\n" not in str(caught.value) and str(caught.value).startswith("--auth azure-cli:")


def test_azure_cli_on_another_tenant_is_refused() -> None:
    other = unsigned({"tid": "99999999-2222-3333-4444-555555555555", "exp": int(time.time()) + 3600})

    class Other:
        def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
            return SimpleNamespace(token=other, expires_on=int(time.time()) + 3600, refresh_on=None)

    provider = AzureIdentityProvider("azure-cli", Other, tenant_id=TENANT, retry=FAST)
    with pytest.raises(AuthError, match=f"not {TENANT}.*az login --tenant {TENANT}"):
        asyncio.run(provider.token())


def test_managed_identity_refusal_names_the_identity() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    provider = AzureIdentityProvider(
        "managed-identity", lambda: Raising(ClientAuthenticationError("Unable to load the proper Managed Identity.")),
        client_id="mi-client", retry=FAST)
    with pytest.raises(AuthError, match="user-assigned identity mi-client"):
        asyncio.run(provider.token())


# ---- the trial's findings (s20): causes and remedies ---------------------------------------------------

def test_a_wrong_identity_header_is_said_as_such_naming_both_variables() -> None:
    """Trial finding 5: the endpoint's 401/403 for a wrong IDENTITY_HEADER read as "no managed
    identity answered here (App Service managed identity configuration not found ...)"."""
    from azure.identity import CredentialUnavailableError

    noise = ("App Service managed identity configuration not found in environment. Token request error: "
             "(invalid_scope) 403, The X-IDENTITY-HEADER header does not match IDENTITY_HEADER.")
    provider = AzureIdentityProvider("managed-identity", lambda: Raising(CredentialUnavailableError(noise)),
                                     retry=FAST, sources=Sources(auth="ENTRA_BATCH_AUTH"))
    with pytest.raises(AuthError) as caught:
        asyncio.run(provider.token())
    text = str(caught.value)
    assert text.startswith("managed-identity (ENTRA_BATCH_AUTH): the identity endpoint (IDENTITY_ENDPOINT) refused "
                           "the IDENTITY_HEADER"), text
    assert "403" in text and "no managed identity answered" not in text and "configuration not found" not in text


def test_a_client_id_naming_no_identity_is_said_naming_azure_client_id() -> None:
    """Trial finding 4: AZURE_CLIENT_ID of a confidential app with managed identity."""
    from azure.identity import CredentialUnavailableError

    noise = ("App Service managed identity configuration not found in environment. Token request error: "
             "(invalid_scope) 400, Unable to load the proper Managed Identity.")
    provider = AzureIdentityProvider("managed-identity", lambda: Raising(CredentialUnavailableError(noise)),
                                     client_id="app-id", retry=FAST, sources=Sources(auth="--auth"))
    with pytest.raises(AuthError) as caught:
        asyncio.run(provider.token())
    text = str(caught.value)
    assert text.startswith("--auth managed-identity: the identity endpoint answered, but AZURE_CLIENT_ID (app-id) "
                           "names no managed identity assigned to this resource"), text
    assert "Run on an Azure VM" not in text and "Unset AZURE_CLIENT_ID" in text


def test_device_code_names_where_it_was_chosen_and_the_app_it_would_use(tmp_path: Path) -> None:
    """Trial findings 10c and 4: "--auth device-code:" when a profile's auth key chose it, and
    "nothing cached" without a word about AZURE_CLIENT_ID naming a confidential app."""
    provider = DeviceCodeProvider(TENANT, "confidential-app", cache=None, prompt=None, authority_host=HOST,
                                  http_client=FakeDeviceLogin(), retry=FAST,
                                  sources=Sources(auth="profile 'emu-admin' (auth)"))
    with pytest.raises(AuthError) as caught:
        asyncio.run(provider.token())
    text = str(caught.value)
    assert text.startswith("device-code (profile 'emu-admin' (auth)): no signed-in administrator is cached"), text
    assert "AZURE_CLIENT_ID names the app confidential-app" in text and "public client" in text
    default = device_provider(FakeDeviceLogin(), None, None)
    with pytest.raises(AuthError) as caught:
        asyncio.run(default.token())
    assert str(caught.value).startswith("device-code (from the credentials given):")
    assert "public client" not in str(caught.value)


def test_a_declined_sign_in_tells_to_sign_in_again_and_approve() -> None:
    """Trial finding 10b: doctor said "fix the credentials named above" after a declined sign-in."""
    from batch.doctor.run import refused_remedy

    declined = device_provider(FakeDeviceLogin(approve=False), None, lambda message: None)
    with pytest.raises(AuthError) as caught:
        asyncio.run(declined.token())
    assert "sign in and approve" in refused_remedy(caught.value)
    assert "fix the credentials" in refused_remedy(AuthError("x", code="7000215", error="invalid_client"))


def test_a_bad_federated_token_signature_says_what_to_do() -> None:
    """Trial finding 10d: AADSTS700027 for workload identity had no remedy."""
    from batch.auth.errors import auth_error

    error = auth_error({"error": "invalid_client", "error_codes": [700027],
                        "error_description": "AADSTS700027: Client assertion contains an invalid signature."},
                       client_id="app-id", method="workload-identity")
    assert "AZURE_FEDERATED_TOKEN_FILE" in str(error) and "not edited or re-signed" in str(error)


def _certificate_files(tmp_path: Path, days: float) -> list[Path]:
    """A PEM and a PFX file of a certificate that ends `days` from now (negative: ended)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    pem, pfx = tmp_path / f"c{days}.pem", tmp_path / f"c{days}.pfx"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"app", key, cert, None,
                                                          serialization.BestAvailableEncryption(b"pw")))
    return [pem, pfx]


def test_an_expired_certificate_stops_at_once_and_one_near_its_end_is_a_doctor_warning(tmp_path: Path) -> None:
    """Trial finding 6: an expired certificate was accepted (the emulator did not refuse it) and
    doctor said nothing; it must stop locally (exit 3) and doctor warns within 30 days."""
    from batch.config import Target
    from batch.doctor.identity import certificate_check
    from batch.errors import ExitCode

    for path in _certificate_files(tmp_path, -2):
        platform = FakeConfidential()
        with pytest.raises(AuthError, match=r"expired on \d{4}-\d\d-\d\d .*UTC.*AADSTS700027.*Create a new") as caught:
            MsalTokenProvider(TENANT, "app-id", certificate_path=path, authority_host=HOST, http_client=platform,
                              certificate_password="pw" if path.suffix == ".pfx" else None, retry=FAST)
        assert caught.value.exit_code == ExitCode.ABORTED and not platform.forms
        assert "AZURE_CLIENT_CERTIFICATE_PATH" in str(caught.value)
    for days, status in ((10, "warn"), (90, "ok")):
        for path in _certificate_files(tmp_path, days):
            target = Target("tenant", "https://graph.microsoft.com/v1.0", tenant_id=TENANT, client_id="app-id",
                            auth="certificate", certificate_path=path,
                            certificate_password="pw" if path.suffix == ".pfx" else None)
            check = certificate_check(target)
            assert check is not None and check.status == status, (path, check)
            if status == "warn":
                assert "expires on" in check.finding and "AZURE_CLIENT_CERTIFICATE_PATH" in (check.remedy or "")


def test_a_password_given_for_a_key_without_one_is_said_as_such(tmp_path: Path) -> None:
    """cryptography raises the same TypeError for a missing password and for a needless one: each is named."""
    from cryptography import x509 as x509_
    from cryptography.hazmat.primitives import hashes as hashes_
    from cryptography.hazmat.primitives import serialization as serialization_
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_
    from cryptography.x509.oid import NameOID as NameOID_

    from batch.auth.certificate import load_certificate
    from batch.errors import ConfigError

    key = rsa_.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509_.Name([x509_.NameAttribute(NameOID_.COMMON_NAME, "plain key")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509_.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes_.SHA256()))
    pem = tmp_path / "plain.pem"
    pem.write_bytes(key.private_bytes(serialization_.Encoding.PEM, serialization_.PrivateFormat.PKCS8,
                                      serialization_.NoEncryption()) + cert.public_bytes(serialization_.Encoding.PEM))
    assert load_certificate(pem)["private_key"]  # no password: fine
    with pytest.raises(ConfigError, match="is not encrypted, but a password was given"):
        load_certificate(pem, "a-needless-password")


def test_a_pool_app_signs_in_with_its_own_credential_only() -> None:
    """An app pool's second app (a secret) inherits nothing of the first app's certificate: no password, no chain,
    the method of its own credential."""
    from batch.config import AppCredential, Target
    from batch.run.connection import pool_app_target

    first = Target("tenant", "https://graph.microsoft.com/v1.0", tenant_id="t", client_id="a1", auth="certificate",
                   certificate_path=Path("/keys/a1.pfx"), certificate_password="pfx-password",
                   send_certificate_chain=True)
    second = pool_app_target(first, AppCredential("a2", client_secret="s2"))
    assert (second.client_id, second.auth, second.client_secret) == ("a2", "secret", "s2")
    assert second.certificate_path is None and second.certificate_password is None
    assert not second.send_certificate_chain
    third = pool_app_target(first, AppCredential("a3", certificate_path=Path("/keys/a3.pem")))
    assert (third.auth, third.certificate_password, third.send_certificate_chain) == ("certificate", None, False)
