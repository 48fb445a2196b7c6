"""Issue 13, "Done when": each sign-in method runs `create` and `export` against
`entra-batch emulator --tls` (a separate process, the CLI another, over loopback; msal and
azure-identity with instance discovery off and AZURE_AUTHORITY_HOST on the emulator, never
login.microsoftonline.com), and a wrong or expired credential of each kind ends in under 5
seconds with the reason and no secret printed; device code's cache file is 0600 and holds no
client secret, and a second run asks no code."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from emulator.server_process import REPO_ROOT, Emulator, running_emulator

from batch.emulator import ALL_USER_PERMISSIONS, Store

pytestmark = pytest.mark.network

TRUST_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PFX_PASSWORD = "Pfx~password-0f-the-test"


def bare_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "ENTRA_BATCH_", "IDENTITY_", "MSI_")) and k not in TRUST_VARIABLES}
    env["ENTRA_BATCH_HOME"] = str(home)
    env["ENTRA_BATCH_CACHE"] = str(home / "cache")
    env["ENTRA_BATCH_REPLICATION_WAITS"] = "0.01,0.02"
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batch", *args], cwd=cwd, env=dict(env, PYTHONPATH=str(REPO_ROOT)),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def customers_file(path: Path, n: int, prefix: str) -> Path:
    path.write_text("signInName,displayName\r\n" + "".join(f"{prefix}{i}@example.com,{prefix} {i}\r\n"
                                                          for i in range(n)), encoding="utf-8")
    return path


def tenant_env(emulator: Emulator, home: Path) -> dict[str, str]:
    """The client's environment for the emulator's tenant, without the default app's credentials."""
    env = bare_env(home)
    env.update({"AZURE_TENANT_ID": emulator.tenant_id, "AZURE_AUTHORITY_HOST": emulator.authority_host,
                "ENTRA_BATCH_TARGET": emulator.graph_url, "SSL_CERT_FILE": emulator.ca_path,
                "ENTRA_BATCH_DOMAIN": emulator.exports.get("ENTRA_BATCH_DOMAIN", "contoso.onmicrosoft.com")})
    return env


def create_and_export(env: dict[str, str], tmp_path: Path, name: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    source = customers_file(tmp_path / f"{name}.csv", 3, name)
    created = run_cli(["create", str(source), "--out-dir", str(tmp_path / f"{name}-run"), "--quiet"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    out = tmp_path / f"{name}-export.csv"
    exported = run_cli(["export", "--out", str(out), "--out-dir", str(tmp_path / f"{name}-export"), "--quiet"], env,
                       tmp_path)
    assert exported.returncode == 0, exported.stderr
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return created, rows


def doctor_identity(env: dict[str, str], cwd: Path, failing: dict[str, str] | None = None) -> dict[str, Any]:
    """`entra-batch doctor --json` with this sign-in: nothing stops a run but the `failing` checks (name →
    finding), and the identity check's data (who the token speaks for, and the method that got it)."""
    done = run_cli(["doctor", "--json"], env, cwd)
    report = json.loads(done.stdout)
    assert {c["name"]: c["finding"] for c in report["checks"] if c["status"] == "fail"} == (failing or {}), done.stdout
    assert done.returncode == (3 if failing else 0), done.stdout + done.stderr
    (identity,) = [check for check in report["checks"] if check["name"] == "identity"]
    assert identity["status"] == "ok"
    return identity["data"]  # type: ignore[no-any-return]


def signed_in(rows: list[dict[str, str]], name: str) -> set[str]:
    return {value for row in rows for value in row.values() if value.startswith(name) and value.endswith(".com")}


def self_signed(days: int = 1) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch e2e")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    return key, cert


def seed(db: Path, fill: Any) -> Any:
    """Prepare the emulator's directory before the server opens it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    try:
        return fill(store, store.tenants()[0])
    finally:
        closer = getattr(store, "close", None)
        if closer is not None:
            closer()


# ---- certificate: PFX with a password, with and without x5c ------------------------------------------------

def test_certificate_pfx_creates_and_exports_and_a_wrong_one_ends_fast(tmp_path: Path) -> None:
    key, cert = self_signed()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    db = tmp_path / "emu" / "emulator.db"
    app = seed(db, lambda store, tenant: store.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="pfx app",
                                                      certificate_pem=pem))
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(PFX_PASSWORD.encode())))
    pfx.chmod(0o600)
    with running_emulator(tmp_path / "emu", db=db) as emulator:
        env = tenant_env(emulator, tmp_path / "client")
        env.update({"AZURE_CLIENT_ID": app.client_id, "AZURE_CLIENT_CERTIFICATE_PATH": str(pfx),
                    "AZURE_CLIENT_CERTIFICATE_PASSWORD": PFX_PASSWORD, "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "true"})
        created, rows = create_and_export(env, tmp_path, "pfx")
        assert len(signed_in(rows, "pfx")) == 3
        identity = doctor_identity(env, tmp_path)
        assert (identity["kind"], identity["method"], identity["client_id"]) == ("app", "certificate", app.client_id)

        # Another certificate than the registered one: refused at the token endpoint, at once.
        other_key, other_cert = self_signed()
        wrong = tmp_path / "other.pfx"
        wrong.write_bytes(pkcs12.serialize_key_and_certificates(
            b"app", other_key, other_cert, None, serialization.BestAvailableEncryption(PFX_PASSWORD.encode())))
        started = time.monotonic()
        done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--quiet"],
                       dict(env, AZURE_CLIENT_CERTIFICATE_PATH=str(wrong)), tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert "AADSTS700027" in done.stderr and "AZURE_CLIENT_CERTIFICATE_PATH" in done.stderr
    assert PFX_PASSWORD not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_wrong_pfx_password_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    key, cert = self_signed()
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(PFX_PASSWORD.encode())))
    env = bare_env(tmp_path / "client")
    env.update({"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_CERTIFICATE_PATH": str(pfx),
                "AZURE_CLIENT_CERTIFICATE_PASSWORD": "Not-the~password-123"})
    started = time.monotonic()
    done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--quiet"], env, tmp_path)
    assert time.monotonic() - started < 5.0
    assert done.returncode in (2, 3), done.stderr
    assert "AZURE_CLIENT_CERTIFICATE_PASSWORD" in done.stderr and "password is wrong" in done.stderr
    assert "Not-the~password-123" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


# ---- device code: as the signed-in administrator ------------------------------------------------------------

def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI with a terminal as its standard input (a person could type): device code may ask."""
    import pty

    leader, follower = pty.openpty()
    try:
        return subprocess.run([sys.executable, "-m", "batch", *args], cwd=cwd,
                              env=dict(env, PYTHONPATH=str(REPO_ROOT)), capture_output=True, text=True,
                              timeout=timeout, stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)


def test_device_code_creates_and_exports_once_asked_then_from_the_cache(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    admin = seed(db, lambda store, tenant: store.seeded_admin(tenant.id).upn)
    with running_emulator(tmp_path / "emu", db=db, extra_args=["--approve-device-codes-as", admin]) as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), ENTRA_BATCH_AUTH="device-code")
        source = customers_file(tmp_path / "dc.csv", 3, "dc")
        first = on_a_terminal(["create", str(source), "--out-dir", str(tmp_path / "dc-run")], env, tmp_path)
        assert first.returncode == 0, first.stderr
        assert "enter the code" in first.stderr  # the code and the page, on stderr
        assert f"as administrator {admin}" in first.stderr  # the line that names who writes
        # The next runs, without a terminal: the cached sign-in, no code.
        out = tmp_path / "dc-export.csv"
        second = run_cli(["export", "--out", str(out), "--out-dir", str(tmp_path / "dc-export"), "--quiet"], env,
                         tmp_path)
        assert second.returncode == 0, second.stderr
        assert "enter the code" not in second.stderr
        with out.open(encoding="utf-8-sig", newline="") as handle:
            assert len(signed_in(list(csv.DictReader(handle)), "dc")) == 3
        cache_files = list((tmp_path / "client" / "cache").iterdir())
        assert len(cache_files) == 1
        assert stat.S_IMODE(cache_files[0].stat().st_mode) == 0o600
        assert stat.S_IMODE(cache_files[0].parent.stat().st_mode) == 0o700
        text = cache_files[0].read_text()
        assert emulator.client_secret not in text and "client_secret" not in text
        summary = json.loads((tmp_path / "dc-run" / "summary.json").read_text())
        assert summary["tenant"]["administrator"] == admin
        # From the cache too, without a terminal. Graph Command Line Tools is not consented here for
        # Directory.AccessAsUser.All, which a password change on a person's behalf needs.
        identity = doctor_identity(env, tmp_path, {"reset-password": "needs Directory.AccessAsUser.All"})
        assert (identity["kind"], identity["method"], identity["upn"]) == ("user", "device-code", admin)


def test_device_code_without_a_terminal_and_no_cache_ends_at_once(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "emu") as emulator:
        env = tenant_env(emulator, tmp_path / "client")
        started = time.monotonic()
        done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--auth", "device-code", "--quiet"], env, tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert "no one is at a terminal" in done.stderr and "Traceback" not in done.stderr


def test_a_signed_in_administrator_without_the_role_is_told_which_role(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    upn = seed(db, lambda store, tenant: store.admin(store.add_admin(
        tenant.id, f"helpdesk@{tenant.default_domain}", roles=("Helpdesk Administrator",))).upn)
    with running_emulator(tmp_path / "emu", db=db, extra_args=["--approve-device-codes-as", upn]) as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), ENTRA_BATCH_AUTH="device-code")
        source = customers_file(tmp_path / "hd.csv", 2, "hd")
        done = on_a_terminal(["create", str(source), "--out-dir", str(tmp_path / "hd-run")], env, tmp_path)
    assert done.returncode == 3, done.stderr
    assert f"The access token of the signed-in administrator {upn} lacks the directory role User Administrator" \
        in done.stderr
    assert not (tmp_path / "hd-run" / "results.csv").exists() or "created" not in \
        (tmp_path / "hd-run" / "results.csv").read_text()


# ---- the Azure CLI: a fake `az` on PATH -------------------------------------------------------------------------

FAKE_AZ = '''#!{python}
"""A fake `az account get-access-token`: a delegated token from the emulator by ROPC, printed as az prints it."""
import json, os, ssl, sys, urllib.parse, urllib.request

state = os.environ.get("FAKE_AZ_STATE", "signed-in")
if state == "signed-out":
    sys.stderr.write("ERROR: Please run 'az login' to setup account.\\n")
    sys.exit(1)
args = sys.argv[1:]
tenant = args[args.index("--tenant") + 1] if "--tenant" in args else os.environ["FAKE_AZ_TENANT"]
form = urllib.parse.urlencode({{"grant_type": "password", "client_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                                "username": os.environ["FAKE_AZ_USER"], "password": os.environ["FAKE_AZ_PASSWORD"],
                                "scope": "https://graph.microsoft.com/.default"}}).encode()
context = ssl.create_default_context(cafile=os.environ["FAKE_AZ_CA"])
url = os.environ["FAKE_AZ_AUTHORITY"] + "/" + tenant + "/oauth2/v2.0/token"
try:
    answer = json.load(urllib.request.urlopen(url, data=form, context=context, timeout=10))
except urllib.error.HTTPError as exc:
    body = json.load(exc)
    sys.stderr.write("ERROR: " + body.get("error_description", "") + "\\n")
    sys.exit(1)
import time
expires_on = int(time.time()) + int(answer["expires_in"])
print(json.dumps({{"accessToken": answer["access_token"], "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000",
                  time.localtime(expires_on)), "expires_on": expires_on, "subscription": "", "tenant": tenant,
                  "tokenType": "Bearer"}}))
'''


def fake_az(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    az = folder / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(0o755)
    return folder


def test_azure_cli_creates_and_exports_and_says_az_login_when_signed_out(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    password = "Admin~password-0f-the-e2e"
    upn = seed(db, lambda store, tenant: store.admin(store.add_admin(
        tenant.id, f"ops@{tenant.default_domain}", roles=("User Administrator",), password=password)).upn)
    bin_dir = fake_az(tmp_path / "bin")
    with running_emulator(tmp_path / "emu", db=db) as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), ENTRA_BATCH_AUTH="azure-cli",
                   PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", FAKE_AZ_USER=upn,
                   FAKE_AZ_PASSWORD=password, FAKE_AZ_CA=emulator.ca_path,
                   FAKE_AZ_AUTHORITY=emulator.authority_host)
        created, rows = create_and_export(env, tmp_path, "az")
        assert len(signed_in(rows, "az")) == 3
        identity = doctor_identity(env, tmp_path)
        assert (identity["kind"], identity["method"], identity["upn"]) == ("user", "azure-cli", upn)
        assert identity["roles"] == ["User Administrator"]
        started = time.monotonic()
        signed_out = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--quiet"],
                             dict(env, FAKE_AZ_STATE="signed-out"), tmp_path)
        elapsed = time.monotonic() - started
        assert signed_out.returncode == 3, signed_out.stderr
        assert elapsed < 5.0, f"{elapsed:.1f} s"
        assert f"az login --tenant {emulator.tenant_id}" in signed_out.stderr
        wrong = run_cli(["export", "--out", str(tmp_path / "y.csv"), "--quiet"],
                        dict(env, FAKE_AZ_PASSWORD="Wrong~password-123"), tmp_path)
        assert wrong.returncode == 3 and f"az login --tenant {emulator.tenant_id}" in wrong.stderr
        assert "Wrong~password-123" not in wrong.stderr + wrong.stdout
    missing = run_cli(["export", "--out", str(tmp_path / "z.csv"), "--quiet"],
                      dict(env, PATH=str(tmp_path / "empty")), tmp_path)
    assert missing.returncode == 3 and "the Azure CLI (az) is not on PATH" in missing.stderr
    assert all(line.startswith("entra-batch: ") for line in missing.stderr.splitlines())  # azure-identity's log: not shown


# ---- managed identity (App Service's IDENTITY_ENDPOINT / IDENTITY_HEADER) -----------------------------------

def test_managed_identity_creates_and_exports_and_a_wrong_header_ends_fast(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    header = seed(db, lambda store, tenant: store.identity_header())
    with running_emulator(tmp_path / "emu", db=db) as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), ENTRA_BATCH_AUTH="managed-identity",
                   IDENTITY_ENDPOINT=f"{emulator.authority_host}/msi/token", IDENTITY_HEADER=header)
        created, rows = create_and_export(env, tmp_path, "mi")
        assert len(signed_in(rows, "mi")) == 3
        identity = doctor_identity(env, tmp_path)
        assert (identity["kind"], identity["method"]) == ("app", "managed-identity")
        # The identity answers for its own tenant: a run aimed at another one stops before writing anything.
        other_tenant = "11111111-2222-3333-4444-555555555555"
        elsewhere = run_cli(["create", str(customers_file(tmp_path / "xt.csv", 1, "xt")), "--out-dir",
                             str(tmp_path / "xt-run"), "--quiet"], dict(env, AZURE_TENANT_ID=other_tenant), tmp_path)
        assert elsewhere.returncode == 3, elsewhere.stderr
        assert f"is for tenant {emulator.tenant_id}, not for {other_tenant}" in elsewhere.stderr
        assert len(signed_in(create_and_export(env, tmp_path, "again")[1], "xt")) == 0  # nothing was written
        assert identity["client_id"] == seed(db, lambda store, tenant: store.managed_identity(tenant.id).client_id)
        wrong_header = "0" * len(header)
        started = time.monotonic()
        done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--quiet"],
                       dict(env, IDENTITY_HEADER=wrong_header), tmp_path)
        elapsed = time.monotonic() - started
        # The emulator's printed exports name a confidential app in AZURE_CLIENT_ID (trial finding 4).
        app_id = seed(db, lambda store, tenant: store.default_app().client_id)
        other = run_cli(["doctor"], dict(env, AZURE_CLIENT_ID=app_id), tmp_path)
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    # Where the method was chosen, and the real cause: the header refused (trial findings 5 and 10c).
    assert "\nentra-batch: managed-identity (ENTRA_BATCH_AUTH): the identity endpoint (IDENTITY_ENDPOINT) refused the " \
        "IDENTITY_HEADER" in done.stderr, done.stderr
    assert "no managed identity answered here" not in done.stderr and "Traceback" not in done.stderr
    assert all(line.startswith("entra-batch: ") for line in done.stderr.splitlines())
    assert header not in done.stderr + done.stdout
    assert other.returncode == 3, other.stdout + other.stderr
    assert f"AZURE_CLIENT_ID ({app_id}) names no managed identity assigned to this resource" in other.stdout
    assert "Run on an Azure VM" not in other.stdout


def test_managed_identity_refuses_plain_http_to_another_host(tmp_path: Path) -> None:
    env = bare_env(tmp_path / "client")
    env.update({"AZURE_TENANT_ID": "t", "ENTRA_BATCH_AUTH": "managed-identity",
                "IDENTITY_ENDPOINT": "http://203.0.113.7/msi/token", "IDENTITY_HEADER": "h"})
    done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--quiet"], env, tmp_path)
    assert done.returncode == 2 and "IDENTITY_ENDPOINT is plain http to 203.0.113.7" in done.stderr


# ---- workload identity federation (AZURE_FEDERATED_TOKEN_FILE) ---------------------------------------------

ISSUER = "https://token.actions.example.test"
SUBJECT = "repo:contoso/onboarding:ref:refs/heads/main"


def federated_token(key: rsa.RSAPrivateKey, *, subject: str = SUBJECT, lifetime: int = 600) -> str:
    import jwt as pyjwt

    now = int(time.time())
    return pyjwt.encode({"iss": ISSUER, "sub": subject, "aud": "api://AzureADTokenExchange", "iat": now - 60,
                         "nbf": now - 60, "exp": now + lifetime}, key, algorithm="RS256", headers={"kid": "k1"})


def test_workload_identity_creates_and_exports_and_an_expired_token_ends_fast(tmp_path: Path) -> None:
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    db = tmp_path / "emu" / "emulator.db"

    def fill(store: Any, tenant: Any) -> Any:
        app = store.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="ci app")
        store.trust_issuer(ISSUER, {"keys": [jwk]})
        store.add_federated_credential(app.client_id, issuer=ISSUER, subject=SUBJECT)
        return app

    app = seed(db, fill)
    token_file = tmp_path / "federated-token"
    token_file.write_text(federated_token(key))
    with running_emulator(tmp_path / "emu", db=db) as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), AZURE_CLIENT_ID=app.client_id,
                   AZURE_FEDERATED_TOKEN_FILE=str(token_file))  # the method is implied by the file
        created, rows = create_and_export(env, tmp_path, "wi")
        assert len(signed_in(rows, "wi")) == 3
        identity = doctor_identity(env, tmp_path)
        assert (identity["kind"], identity["method"], identity["client_id"]) == ("app", "workload-identity",
                                                                                 app.client_id)
        expired = federated_token(key, lifetime=-120)
        token_file.write_text(expired)
        started = time.monotonic()
        done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--quiet"], env, tmp_path)
        elapsed = time.monotonic() - started
        assert done.returncode == 3, done.stderr
        assert elapsed < 5.0, f"{elapsed:.1f} s"
        assert "AZURE_FEDERATED_TOKEN_FILE" in done.stderr and expired not in done.stderr
        token_file.write_text(federated_token(key, subject="repo:someone/else:ref:refs/heads/main"))
        other = run_cli(["export", "--out", str(tmp_path / "y.csv"), "--quiet"], env, tmp_path)
        assert other.returncode == 3 and "AADSTS700213" in other.stderr, other.stderr
        assert "Federated credentials" in other.stderr


def test_a_revoked_device_code_sign_in_without_a_terminal_ends_at_once(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    admin = seed(db, lambda store, tenant: store.seeded_admin(tenant.id).upn)
    with running_emulator(tmp_path / "emu", db=db, extra_args=["--approve-device-codes-as", admin]) as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), ENTRA_BATCH_AUTH="device-code")
        first = on_a_terminal(["export", "--out", str(tmp_path / "a.csv"), "--quiet"], env, tmp_path)
        assert first.returncode == 0, first.stderr
        seed(db, lambda store, tenant: store.revoke_refresh_tokens(admin))  # revokeSignInSessions
        started = time.monotonic()
        done = run_cli(["export", "--out", str(tmp_path / "b.csv"), "--quiet"], env, tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert f"the cached sign-in of {admin}" in done.stderr and "expired or was revoked" in done.stderr


# ---- resume signs in as the run did ---------------------------------------------------------------------------

def test_a_run_records_the_method_it_used_and_resume_signs_in_the_same_way(tmp_path: Path) -> None:
    """The method is recorded as resolved (here implied by AZURE_CLIENT_SECRET, no flag): a resume from a
    shell whose environment implies another method (a federated token file) still signs in with the secret."""
    from batch.run.lifecycle import read_request

    with running_emulator(tmp_path / "emu") as emulator:
        env = dict(tenant_env(emulator, tmp_path / "client"), AZURE_CLIENT_ID=emulator.client_id,
                   AZURE_CLIENT_SECRET=emulator.client_secret)
        source = customers_file(tmp_path / "rs.csv", 2, "rs")
        run_dir = tmp_path / "rs-run"
        created = run_cli(["create", str(source), "--out-dir", str(run_dir), "--quiet"], env, tmp_path)
        assert created.returncode == 0, created.stderr
        assert read_request(run_dir).auth == "secret"
        token_file = tmp_path / "not-a-token"
        token_file.write_text("x")
        other_shell = {k: v for k, v in env.items() if k != "AZURE_CLIENT_SECRET"}
        other_shell["AZURE_FEDERATED_TOKEN_FILE"] = str(token_file)  # alone, it would imply workload identity
        resumed = run_cli(["resume", str(run_dir), "--quiet"], other_shell, tmp_path)
    # Signed in the recorded way: a secret, which this shell lacks, is asked for by name.
    assert resumed.returncode == 2, resumed.stderr
    assert "AZURE_CLIENT_SECRET" in resumed.stderr and "workload" not in resumed.stderr.lower(), resumed.stderr


def test_an_identity_endpoint_that_cannot_be_reached_ends_at_once_naming_it(tmp_path: Path) -> None:
    """Nothing listens at IDENTITY_ENDPOINT: one line naming it, in seconds (not the token endpoint's 300 s of
    retries, which suit a passing fault, nor a message about AZURE_AUTHORITY_HOST)."""
    env = bare_env(tmp_path / "client")
    env.update({"AZURE_TENANT_ID": "11111111-2222-3333-4444-555555555555", "ENTRA_BATCH_AUTH": "managed-identity",
                "IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h" * 32})
    started = time.monotonic()
    done = run_cli(["export", "--target", "https://127.0.0.1:9/v1.0", "--out", str(tmp_path / "x.csv"), "--quiet"],
                   env, tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert "the managed identity endpoint could not be reached" in done.stderr and "IDENTITY_ENDPOINT" in done.stderr
    assert "AZURE_AUTHORITY_HOST" not in done.stderr and "h" * 32 not in done.stderr
