"""Issue 12, findings 2 and 3 over a real loopback socket: `entra-batch emulator` (http, and
--tls with msal) as a separate process, the CLI as another, nothing trusted through
REQUESTS_CA_BUNDLE or SSL_CERT_FILE unless a test says so.

- a wrong client secret ends in under 5 seconds with exit 3 and the AADSTS code;
- a profile with only `ca_file` reaches the emulator over TLS, token request included, even
  with a REQUESTS_CA_BUNDLE in the environment that does not hold the emulator's CA;
- a profile without `ca_file` fails at once (exit 3) naming the profile and what to add,
  and an export's message never advises `resume`."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulator.server_process import REPO_ROOT, Emulator, running_emulator

pytestmark = pytest.mark.network

TRUST_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def bare_env(home: Path) -> dict[str, str]:
    """The environment of a shell with no tenant, no emulator exports and no CA variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "ENTRA_BATCH_")) and k not in TRUST_VARIABLES}
    env["ENTRA_BATCH_HOME"] = str(home)
    env["ENTRA_BATCH_REPLICATION_WAITS"] = "0.01,0.02"
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batch", *args], cwd=cwd, env=dict(env, PYTHONPATH=str(REPO_ROOT)),
                          capture_output=True, text=True, timeout=timeout)


def profile(name: str, emulator: Emulator, *, ca_file: bool = True) -> str:
    text = (f'[{name}]\ntarget = "{emulator.graph_url}"\ntenant_id = "{emulator.tenant_id}"\n'
            f'client_id = "{emulator.client_id}"\nclient_secret_env = "STAGING_SECRET"\n'
            f'authority_host = "{emulator.authority_host}"\n')
    return text + (f'ca_file = "{emulator.ca_path}"\n' if ca_file else "")


def write_profiles(home: Path, text: str) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(text, encoding="utf-8")
    (home / "profiles.toml").chmod(0o600)


def customers_file(path: Path, n: int) -> Path:
    path.write_text("signInName,displayName\r\n" + "".join(f"ca{i}@example.com,CA {i}\r\n" for i in range(n)),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https-msal"])
def test_a_wrong_client_secret_ends_in_under_5_seconds_with_exit_3(tmp_path: Path, tls: bool) -> None:
    wrong = "Wr0ng~secret-value-for-the-test"
    with running_emulator(tmp_path / "emu", tls=tls) as emulator:
        env = {**bare_env(tmp_path / "client"), **emulator.exports, "AZURE_CLIENT_SECRET": wrong}
        source = customers_file(tmp_path / "in.csv", 3)
        started = time.monotonic()
        done = run_cli(["create", str(source), "--out-dir", str(tmp_path / "run"), "--quiet"], env, tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert "AADSTS7000215" in done.stderr and "into AZURE_CLIENT_SECRET" in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_a_profile_with_only_ca_file_reaches_the_tls_emulator(tmp_path: Path) -> None:
    import certifi

    home = tmp_path / "client"
    with running_emulator(tmp_path / "emu") as emulator:
        write_profiles(home, profile("staging", emulator))
        env = dict(bare_env(home), STAGING_SECRET=emulator.client_secret)
        source = customers_file(tmp_path / "in.csv", 5)
        done = run_cli(["create", str(source), "--profile", "staging", "--out-dir", str(tmp_path / "run"),
                        "--quiet"], env, tmp_path)
        assert done.returncode == 0, done.stderr
        with (tmp_path / "run" / "results.csv").open(newline="", encoding="utf-8") as handle:
            assert {row["status"] for row in csv.DictReader(handle)} == {"created"}
        # A bundle in the environment that lacks the emulator's CA does not override the profile's ca_file
        # (requests lets REQUESTS_CA_BUNDLE win over a session's verify; the token request must not).
        env["REQUESTS_CA_BUNDLE"] = certifi.where()
        exported = run_cli(["export", "--profile", "staging", "--out-dir", str(tmp_path / "export"), "--quiet"], env,
                           tmp_path)
        assert exported.returncode == 0, exported.stderr
        assert "export: 5 customers" in exported.stdout


def test_a_profile_without_ca_file_fails_at_once_naming_it(tmp_path: Path) -> None:
    home = tmp_path / "client"
    with running_emulator(tmp_path / "emu") as emulator:
        write_profiles(home, profile("noca", emulator, ca_file=False))
        env = dict(bare_env(home), STAGING_SECRET=emulator.client_secret)
        started = time.monotonic()
        done = run_cli(["export", "--profile", "noca", "--out-dir", str(tmp_path / "export"), "--quiet"], env,
                       tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert elapsed < 5.0, f"{elapsed:.1f} s: retried as if transient"
    assert "certificate verify failed" in done.stderr and "No CA file was given" in done.stderr
    assert "add ca_file = \"/path/to/ca.pem\" to profile 'noca'" in done.stderr
    assert "AZURE_AUTHORITY_HOST" not in done.stderr and "resume" not in done.stderr
    assert "(3 tries)" not in done.stderr
