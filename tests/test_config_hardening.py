"""Issue 15, the configuration's part: no secret to a plain-http host that is not this machine,
no credentials in a target URL, profiles.toml under ssh's rules, a usable CA file, a private
ENTRA_BATCH_HOME, bounded certificate reads, and an unreachable authority host said in seconds.
Each case is one clear line and exit 2 (configuration) or 3 (authentication), never a traceback.
The review's reproductions are here by name: a world-writable profile holding a secret,
`--target http://evil.example` (refused before any request), `http://127.0.0.1:8765` (accepted)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from batch.auth import ClientCredentialsProvider, MsalTokenProvider, load_certificate
from batch.auth.providers import UNREACHABLE_TRIES
from batch.cli import main
from batch.cli.local import LocalEmulator
from batch.config import (
    CERTIFICATE_MAX_BYTES,
    Sources,
    Target,
    emulator_db_path,
    is_loopback_host,
    private_dir,
    resolve_target,
)
from batch.errors import AuthError, ConfigError
from batch.graph import RetryPolicy
from batch.run.connection import open_connection

try:
    from .graph.fakes import FakeClock
except ImportError:  # tests is not a package
    from graph.fakes import FakeClock  # type: ignore[no-redef]

CREDS = {"AZURE_TENANT_ID": "t-id", "AZURE_CLIENT_ID": "c-id", "AZURE_CLIENT_SECRET": "s3cr3t-value"}
HUNTER = "hunter2-Pa55word"


@pytest.fixture
def csv_file(home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("signInType,signInName,displayName\nemailAddress,a@contoso.com,A\n", encoding="utf-8")
    return path


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> int:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return main(args)


def write_profiles(home: Path, text: str, mode: int = 0o600) -> Path:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


PROD = '[prod]\ntenant_id = "p-tenant"\nclient_id = "p-client"\nclient_secret = "inline-S3cret"\n'


# ---- defect 2: plain http only to this machine -----------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/v1.0", "http://127.9.8.7:8765/v1.0", "http://localhost:8765/v1.0",
                                 "http://[::1]:8765/v1.0", "HTTP://LOCALHOST/v1.0", "https://graph.example.com/v1.0"])
def test_loopback_http_and_any_https_are_accepted(url: str) -> None:
    target = resolve_target(url, None, env=dict(CREDS, AZURE_AUTHORITY_HOST="http://127.0.0.1:8765"))
    assert target.graph_url == url.rstrip("/") and target.kind == "url"


@pytest.mark.parametrize("host", ["evil.example", "10.0.0.1", "127.0.0.1.evil.example", "127.1", "0x7f.0.0.1",
                                  "localhost.", "[::ffff:7f00:1]", "[fe80::1]", "emulator.local"])
def test_plain_http_to_any_other_host_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"--target is plain http to .*use https://"):
        resolve_target(f"http://{host}/v1.0", None, env=CREDS)


@pytest.mark.parametrize("env, setting", [
    ({"ENTRA_BATCH_TARGET": "http://evil.example/v1.0"}, "ENTRA_BATCH_TARGET"),
    ({"ENTRA_BATCH_TARGET": "https://graph.example.com/v1.0", "AZURE_AUTHORITY_HOST": "http://evil.example"},
     "AZURE_AUTHORITY_HOST"),
    ({"AZURE_AUTHORITY_HOST": "http://login.evil.example/"}, "AZURE_AUTHORITY_HOST"),
])
def test_plain_http_from_the_environment_is_refused_naming_it(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError, match=f"^{setting} is plain http to .*evil.example.*use https"):
        resolve_target(None, None, env=dict(CREDS, **env))


@pytest.mark.parametrize("key", ["target", "authority_host"])
def test_plain_http_from_a_profile_is_refused_naming_the_key(home: Path, key: str) -> None:
    value = "http://evil.example/v1.0" if key == "target" else "http://evil.example"
    path = write_profiles(home, PROD + f'{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"^the {key} of profile \[prod\] in {path} is plain http to evil.example"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})


def test_review_http_evil_target_is_refused_before_any_request(csv_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with respx.mock(assert_all_called=False) as network:
        anything = network.route()
        code = cli(["create", str(csv_file), "--target", "http://evil.example/v1.0", "--out-dir", str(tmp_path / "run")],
                   monkeypatch, dict(CREDS, AZURE_AUTHORITY_HOST="http://evil.example"))
    assert code == 2 and anything.call_count == 0
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--target is plain http to evil.example" in err and "s3cr3t-value" not in err


def test_review_http_loopback_target_still_reaches_the_emulator(csv_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # http://127.0.0.1:8765 is accepted: the refusal above is not a refusal of http.
    with respx.mock(assert_all_called=False) as network:
        token = network.post("http://127.0.0.1:8765/t-id/oauth2/v2.0/token").respond(
            400, json={"error": "invalid_client", "error_codes": [7000215], "error_description": "AADSTS7000215: bad"})
        code = cli(["create", str(csv_file), "--target", "http://127.0.0.1:8765/v1.0"], monkeypatch,
                   dict(CREDS, AZURE_AUTHORITY_HOST="http://127.0.0.1:8765"))
    assert token.call_count == 1 and code == 3  # the token endpoint was asked (and refused the made-up secret)


async def test_a_hand_built_target_cannot_reach_a_remote_host_in_clear() -> None:
    target = Target("url", "http://evil.example/v1.0", tenant_id="t", client_id="c", client_secret="s",
                    authority_host="https://login.example.com")
    with pytest.raises(ConfigError, match="the Graph URL is plain http to evil.example"):
        async with open_connection(target):
            pass
    with pytest.raises(ConfigError, match="the Graph URL is plain http"):
        async with open_connection(target, transport=httpx.AsyncHTTPTransport()):
            pass
    local = Target("local", "http://emulator.local/v1.0", tenant_id="t", client_id="c", client_secret="s",
                   authority_host="http://emulator.local")
    with pytest.raises(ConfigError, match="plain http to emulator.local"):  # the emulator's URL without its transport
        async with open_connection(local):
            pass
    async with open_connection(local, transport=httpx.MockTransport(lambda request: httpx.Response(500))):
        pass  # in process: nothing leaves


def test_the_local_emulator_keeps_working(home: Path, csv_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(["create", str(csv_file), "--target", "local"], monkeypatch, {}) == 0


def test_loopback_hosts() -> None:
    assert all(map(is_loopback_host, ["localhost", "127.0.0.1", "127.255.0.9", "::1"]))
    assert not any(map(is_loopback_host, [None, "", "128.0.0.1", "::2", "localhost.", "127.1", "emulator.local"]))


# ---- defect 10: credentials in a target URL --------------------------------------------------------------

@pytest.mark.parametrize("url", [f"https://admin:{HUNTER}@graph.example.com/v1.0", f"admin:{HUNTER}@graph.example.com",
                                 f"http://admin:{HUNTER}@127.0.0.1:8765/v1.0", f"https://{HUNTER}@graph.example.com"])
def test_credentials_in_the_target_are_refused_and_never_echoed(url: str, csv_file: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(["create", str(csv_file), "--target", url, "--out-dir", str(tmp_path / "run")], monkeypatch, CREDS)
    out, err = capsys.readouterr()
    assert code == 2 and "--target holds a user name or password" in err and err.count("\n") == 1
    assert HUNTER not in out + err and "admin" not in out + err
    assert not (tmp_path / "run").exists()  # so no journal holds it either


@pytest.mark.parametrize("name", ["ENTRA_BATCH_TARGET", "AZURE_AUTHORITY_HOST"])
def test_credentials_in_the_environments_urls_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} holds a user name or password") as caught:
        resolve_target(None, None, env=dict(CREDS, **{name: f"https://u:{HUNTER}@example.com"}))
    assert HUNTER not in str(caught.value)


# ---- defect 8: URLs that are not URLs ---------------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("ftp://graph.example.com/v1.0", "--target is 'local' or a Graph URL"),
    ("https:///v1.0", "--target must be an https URL"),
    ("https://graph.example.com:99999/v1.0", "--target is not a valid URL"),
    ("https://graph.example.com/v1.0?x=1", "without '\\?' or '#'"),
    ("https://graph.example.com/v1.0#x", "without '\\?' or '#'"),
])
def test_a_target_that_is_not_a_graph_base_is_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_target(url, None, env=CREDS)


def test_an_ftp_target_in_a_profile_is_one_line_and_exit_2(home: Path, csv_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_profiles(home, PROD + 'target = "ftp://graph.example.com/v1.0"\n')
    assert cli(["create", str(csv_file), "--profile", "prod"], monkeypatch, {}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the target of profile [prod]" in err and "Traceback" not in err


def test_authority_host_must_be_an_https_url() -> None:
    with pytest.raises(ConfigError, match="AZURE_AUTHORITY_HOST must be an https URL"):
        resolve_target(None, None, env=dict(CREDS, AZURE_AUTHORITY_HOST="ftp://login.example.com"))


# ---- defect 5: profiles.toml under ssh's rules ------------------------------------------------------------

def owned_by_someone_else(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() == 0:
        os.chown(path, 4242, -1)
    else:  # we cannot give a file away: become someone else instead
        monkeypatch.setattr("batch.config.os.getuid", lambda: os.geteuid() + 4242)


def test_review_world_writable_profile_holding_a_secret_is_refused(home: Path) -> None:
    path = write_profiles(home, PROD, mode=0o666)
    with pytest.raises(ConfigError, match=rf"profiles file {path} may be written by other users \(mode 0666\).*chmod 600"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})


def test_a_group_writable_profile_is_refused_even_without_a_secret(home: Path) -> None:
    write_profiles(home, '[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret_env = "S"\n', mode=0o620)
    with pytest.raises(ConfigError, match="may be written by other users"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home), "S": "x"})


def test_a_profile_owned_by_another_user_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_profiles(home, PROD)
    owned_by_someone_else(path, monkeypatch)
    with pytest.raises(ConfigError, match="belongs to another user"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})


def test_an_inline_secret_in_a_file_others_may_read_is_refused(home: Path) -> None:
    path = write_profiles(home, PROD, mode=0o644)
    with pytest.raises(ConfigError, match=rf"{path} holds a client_secret and other users may read it.*client_secret_env"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})
    # in a pool app of another profile, too: the file exposes it whichever profile is used
    write_profiles(home, '[lab]\ntarget = "local"\n[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret_env = "S"\n'
                         '[[prod.apps]]\nclient_id = "c2"\nclient_secret = "pool-S3cret"\n', mode=0o640)
    with pytest.raises(ConfigError, match="holds a client_secret"):
        resolve_target(None, "lab", env={"ENTRA_BATCH_HOME": str(home)})


def test_a_readable_profile_without_inline_secret_is_fine(home: Path) -> None:
    write_profiles(home, '[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret_env = "S"\n', mode=0o644)
    assert resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home), "S": "from-env"}).client_secret == "from-env"
    write_profiles(home, PROD, mode=0o600)
    assert resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)}).client_secret == "inline-S3cret"


def test_a_home_others_may_write_is_refused(home: Path) -> None:
    write_profiles(home, PROD)
    home.chmod(0o777)
    with pytest.raises(ConfigError, match=rf"ENTRA_BATCH_HOME {home} may be written by other users.*chmod 700"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})
    with pytest.raises(ConfigError, match="may be written by other users"):
        emulator_db_path({"ENTRA_BATCH_HOME": str(home)})


# ---- defect 8: profiles.toml that cannot be read --------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b'[prod]\ntenant_id = "\xff"\n', r"is not UTF-8 text \(byte 0xff at offset 20\); save it as UTF-8"),
    (b"[prod\n", "is not valid TOML"),
    (b'[prod]\ntenant_id = 5\nclient_id = "c"\nclient_secret = "s"\n', "tenant_id must be a quoted string, not a number"),
    (b'[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret = 12345678\n',
     "client_secret must be a quoted string, not a number"),
    (b'[prod]\ntenant_id = "t"\nclient_id = ["c"]\nclient_secret = "s"\n', "client_id must be a quoted string, not a list"),
    (b'[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret = "s"\napps = "x"\n',
     r"apps must be a list of tables \(\[\[prod.apps\]\] sections\), not a string"),
    (b'[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret = "s"\napps = [1]\n', "app 1 .* must be a table"),
    (b'[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret = "s"\n[[prod.apps]]\nclient_id = 7\n',
     "client_id must be a quoted string"),
    (b'[prod]\ntenant_id = "t"\nclient_id = "c"\nclient_secret = "s"\ndomain = true\n', "domain must be a quoted string"),
    (b"# " + b"x" * (1 << 20) + b"\n", "larger than 1024 KiB"),
])
def test_a_profiles_file_that_cannot_be_used_is_one_clear_line(home: Path, content: bytes, message: str) -> None:
    home.mkdir(mode=0o700)
    (home / "profiles.toml").write_bytes(content)
    (home / "profiles.toml").chmod(0o600)
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})
    assert "12345678" not in str(caught.value)  # a secret typed without quotes is not echoed


def test_a_profiles_directory_or_fifo_is_refused(home: Path) -> None:
    home.mkdir(mode=0o700)
    (home / "profiles.toml").mkdir()
    with pytest.raises(ConfigError, match="is a directory, not a profiles file"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})
    (home / "profiles.toml").rmdir()
    os.mkfifo(home / "profiles.toml", 0o600)
    with pytest.raises(ConfigError, match="is not a regular file"):  # and does not wait for a writer
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})


@pytest.mark.parametrize("content", [b'[prod]\ntenant_id = "\xff"\n', b'[prod]\ntenant_id = 5\nclient_id = "c"\n'
                                     b'client_secret = "s"\n', b'[prod]\ntenant_id = "t"\nclient_id = "c"\n'
                                     b'client_secret = "s"\napps = 5\n'])
def test_bad_profiles_through_the_cli_exit_2_without_traceback(home: Path, csv_file: Path, content: bytes,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "profiles.toml").write_bytes(content)
    (home / "profiles.toml").chmod(0o600)
    assert cli(["create", str(csv_file), "--profile", "prod"], monkeypatch, {}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


# ---- defect 8: a CA file that cannot be used ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "directory", "not PEM"])
def test_ssl_cert_file_that_cannot_be_used_is_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "ca.pem"
    if kind == "directory":
        path.mkdir()
    elif kind == "not PEM":
        path.write_text("hello\n")
    message = {"missing": "cannot be read", "directory": "is not a regular file", "not PEM": "TLS cannot use"}[kind]
    for url in ("https://127.0.0.1:8765/v1.0", None):  # a URL target, and a tenant (httpx reads it itself)
        with pytest.raises(ConfigError, match=rf"^SSL_CERT_FILE names {path}, which {message}.*or unset it"):
            resolve_target(url, None, env=dict(CREDS, SSL_CERT_FILE=str(path)))
    with pytest.raises(ConfigError, match="^REQUESTS_CA_BUNDLE names"):
        resolve_target(None, None, env=dict(CREDS, REQUESTS_CA_BUNDLE=str(tmp_path / "missing")))


def test_ssl_cert_file_missing_through_the_cli(csv_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nowhere.pem"))
    for name, value in CREDS.items():
        monkeypatch.setenv(name, value)
    assert main(["create", str(csv_file), "--target", "https://127.0.0.1:9/v1.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SSL_CERT_FILE names" in err


def test_a_profiles_missing_ca_file_is_named(home: Path) -> None:
    write_profiles(home, PROD + f'ca_file = "{home / "ca.pem"}"\n')
    with pytest.raises(ConfigError, match=r"^the ca_file of profile \[prod\] .* cannot be read"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})


# ---- defect 3: the home directory, private from the start ------------------------------------------------

def test_the_home_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    for umask, name in ((0o022, "a"), (0o000, "b"), (0o277, "c")):
        (tmp_path / name).mkdir()
        old = os.umask(umask)
        try:
            path = emulator_db_path({"ENTRA_BATCH_HOME": str(tmp_path / name / "home")})
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and not path.exists()


def test_the_local_emulators_home_and_database_folder_are_private(home: Path, tmp_path: Path, csv_file: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0)
    try:
        assert cli(["create", str(csv_file), "--dry-run"], monkeypatch, {}) == 0
        with LocalEmulator(db_path=tmp_path / "elsewhere" / "emulator.db"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "elsewhere").stat().st_mode) == 0o700


def test_an_existing_readable_home_is_accepted_but_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir(mode=0o755)  # made by an earlier version: nobody else may write it
    (tmp_path / "old").chmod(0o755)
    assert private_dir(tmp_path / "old", "ENTRA_BATCH_HOME") == tmp_path / "old"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        private_dir(tmp_path / "file", "ENTRA_BATCH_HOME")


# ---- defect 7: certificate files, bounded ------------------------------------------------------------------

@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory", "huge"])
def test_a_certificate_path_that_is_not_a_small_regular_file_is_refused(tmp_path: Path, special: str) -> None:
    path = Path(special) if special.startswith("/") else tmp_path / special
    if special == "fifo":
        os.mkfifo(path)
    elif special == "directory":
        path.mkdir()
    elif special == "huge":
        with path.open("wb") as file:
            file.truncate(CERTIFICATE_MAX_BYTES + 1)  # sparse: costs no disk
    message = {"/dev/zero": "not a regular file", "fifo": "not a regular file", "directory": "a directory",
               "huge": "more than a certificate file can be"}[special]
    with pytest.raises(ConfigError, match=message):
        load_certificate(path)  # what msal's provider reads: at once, without reading /dev/zero or waiting on the FIFO
    env = {k: v for k, v in CREDS.items() if k != "AZURE_CLIENT_SECRET"}
    with pytest.raises(ConfigError, match=f"^AZURE_CLIENT_CERTIFICATE_PATH names {path}, which .*{message}"):
        resolve_target(None, None, env=dict(env, AZURE_CLIENT_CERTIFICATE_PATH=str(path)))


def test_dev_zero_as_certificate_through_the_cli(csv_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in CREDS.items() if k != "AZURE_CLIENT_SECRET"}
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    code = cli(["create", str(csv_file), "--out-dir", str(tmp_path / "run")], monkeypatch,
               dict(env, AZURE_CLIENT_CERTIFICATE_PATH="/dev/zero"))
    assert code == 2 and not (tmp_path / "run").exists()
    assert "AZURE_CLIENT_CERTIFICATE_PATH names /dev/zero" in capsys.readouterr().err


def test_a_pfx_file_is_told_to_be_converted(tmp_path: Path) -> None:
    (tmp_path / "app.pfx").write_bytes(b"\x30\x82\x0a\x00\xff\xfe")
    with pytest.raises(ConfigError, match="not a PEM text file .*openssl pkcs12"):
        load_certificate(tmp_path / "app.pfx")


# ---- defect 10: an unreachable authority host is said in seconds -------------------------------------------

def chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


DNS_FAILURE = chained(httpx.ConnectError("[Errno -2] Name or service not known"),
                      socket.gaierror(-2, "Name or service not known"))
REFUSED = chained(httpx.ConnectError("All connection attempts failed"),
                  chained(OSError("All connection attempts failed"), ConnectionRefusedError(111, "Connect call failed")))


def plain_provider(handler: Any, t: FakeClock, setting: str = "AZURE_AUTHORITY_HOST") -> ClientCredentialsProvider:
    return ClientCredentialsProvider("http://127.0.0.1:8765/t/oauth2/v2.0/token", "c", "s3cr3t-value",
                                     transport=httpx.MockTransport(handler), clock=t.clock, sleep=t.sleep,
                                     sources=Sources(authority_host=setting))


@pytest.mark.parametrize("failure, why", [(DNS_FAILURE, "its name does not resolve"),
                                          (REFUSED, "it refuses connections")])
async def test_an_authority_that_cannot_be_connected_to_fails_fast(failure: BaseException, why: str) -> None:
    t = FakeClock()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise failure

    with pytest.raises(AuthError, match=rf"^Cannot connect to the authority host 127.0.0.1:8765 \(set by "
                                        rf"AZURE_AUTHORITY_HOST\): {why} \(3 tries\)") as caught:
        await plain_provider(handler, t).token()
    assert len(calls) == UNREACHABLE_TRIES and sum(t.sleeps) < 5  # not 300 s
    assert caught.value.exit_code == 3 and "s3cr3t-value" not in str(caught.value)


async def test_transient_failures_still_retry_to_the_deadline() -> None:
    t = FakeClock()
    answers = [DNS_FAILURE, DNS_FAILURE, httpx.ReadTimeout("slow")] * 200

    def handler(request: httpx.Request) -> httpx.Response:
        raise answers.pop(0)

    with pytest.raises(AuthError, match="300 s"):  # two unreachable tries, then a timeout: never three in a row
        await plain_provider(handler, t).token()
    assert sum(t.sleeps) > 250


async def test_the_profile_setting_is_named(home: Path) -> None:
    t = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        raise REFUSED

    with pytest.raises(AuthError, match=r"\(set by profile 'prod' \(authority_host\)\)"):
        await plain_provider(handler, t, "profile 'prod' (authority_host)").token()
    with pytest.raises(AuthError, match=r"\(the default; AZURE_AUTHORITY_HOST sets another\)"):
        await plain_provider(handler, t, "").token()


async def test_msal_fails_fast_when_the_authority_cannot_be_connected_to() -> None:
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = chained(NewConnectionError(None, "Failed to establish a new connection"),  # type: ignore[arg-type]
                     ConnectionRefusedError(111, "Connection refused"))
    refused = requests.exceptions.ConnectionError(MaxRetryError(None, "/x", reason))  # type: ignore[arg-type]
    timeout = requests.exceptions.ConnectTimeout(MaxRetryError(None, "/x", reason))  # type: ignore[arg-type]

    class Platform:
        def __init__(self, failure: Exception) -> None:
            self.failure, self.calls = failure, 0

        def get(self, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise self.failure

        post = get

        def close(self) -> None:
            pass

    t = FakeClock()
    platform = Platform(refused)
    provider = MsalTokenProvider("t", "c", client_secret="s3cr3t-value", authority_host="https://login.example.com",
                                 clock=t.clock, sleep=t.sleep, http_client=platform,
                                 retry=RetryPolicy(deadline_seconds=300, base_delay=1.0, jitter=0.0),
                                 sources=Sources(authority_host="AZURE_AUTHORITY_HOST"))
    with pytest.raises(AuthError, match=r"login.example.com \(set by AZURE_AUTHORITY_HOST\): it refuses connections"):
        await provider.token()
    assert platform.calls == UNREACHABLE_TRIES and t.sleeps == [1.0, 2.0]
    t2 = FakeClock()
    slow = MsalTokenProvider("t", "c", client_secret="s", authority_host="https://login.example.com", clock=t2.clock,
                             sleep=t2.sleep, http_client=Platform(timeout),
                             retry=RetryPolicy(deadline_seconds=60, base_delay=1.0, jitter=0.0))
    with pytest.raises(AuthError, match="60 s"):  # a timeout may pass: retried to the deadline
        await slow.token()


def test_review_unreachable_authority_through_the_cli(csv_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # A real socket on loopback that refuses: msal (https) and the plain provider (http) alike.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    for scheme in ("https", "http"):
        code = cli(["create", str(csv_file), "--target", f"{scheme}://127.0.0.1:{port}/v1.0"], monkeypatch,
                   dict(CREDS, AZURE_AUTHORITY_HOST=f"{scheme}://127.0.0.1:{port}"))
        err = capsys.readouterr().err
        assert code == 3, err
        assert f"Cannot connect to the authority host 127.0.0.1:{port} (set by AZURE_AUTHORITY_HOST): " \
               "it refuses connections (3 tries)" in err
