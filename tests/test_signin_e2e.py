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
