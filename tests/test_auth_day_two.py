"""Issue 12, findings 2 and 3 without a socket: token errors that no retry can fix end the run
at once with exit 3, naming what was used (a profile and its key, or the environment variable)
and the remedy; advice to `resume` only where a resume exists; profiles: --target with
--profile, unknown keys, every key documented, `entra-batch profiles` (secrets masked)."""

from __future__ import annotations

import argparse
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch.auth import ClientCredentialsProvider, MsalTokenProvider
from batch.cli import main
from batch.cli.parser import build_parser
from batch.cli.targets import target_of
from batch.config import Sources, resolve_target
from batch.errors import AuthError, ConfigError
from batch.graph import RetryPolicy
from batch.profiles import APP_KEYS, PROFILE_KEYS

try:
    from .graph.fakes import FakeClock
except ImportError:  # tests is not a package
    from graph.fakes import FakeClock  # type: ignore[no-redef]

CREDS = {"AZURE_TENANT_ID": "t-id", "AZURE_CLIENT_ID": "c-id", "AZURE_CLIENT_SECRET": "s3cr3t-value"}
STAGING = Sources.of_profile("staging", {"client_secret_env": "STAGING_SECRET"})


def write_profiles(home: Path, text: str, mode: int = 0o600) -> Path:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def verify_failure() -> ssl.SSLCertVerificationError:
    failure = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                              "unable to get local issuer certificate (_ssl.c:1006)")
    failure.verify_message = "unable to get local issuer certificate"
    return failure


# ---- finding 2: a TLS verification failure of the token request ends the run at once -------------------

def msal_platform(failure: Exception) -> Any:
    class Platform:
        calls = 0

        def get(self, *args: Any, **kwargs: Any) -> Any:
            Platform.calls += 1
            raise failure

        post = get

        def close(self) -> None:
            pass

    return Platform()


@pytest.mark.parametrize("sources, ca_path, named, remedy", [
    (Sources.of_profile("staging", {}), "/x/ca.pem", "the CA file /x/ca.pem (profile 'staging' (ca_file))",
     "point profile 'staging' (ca_file) at"),
    (Sources.of_profile("staging", {}), None, "No CA file was given, so it was checked against the default trusted CAs",
     "add ca_file = \"/path/to/ca.pem\" to profile 'staging'"),
    (Sources(fallback_ca="REQUESTS_CA_BUNDLE (/etc/bundle.pem)"), None,
     "No CA file was given, so it was checked against REQUESTS_CA_BUNDLE (/etc/bundle.pem)", "set SSL_CERT_FILE"),
])
async def test_a_token_endpoint_certificate_that_fails_verification_ends_at_once_naming_the_ca(
        sources: Sources, ca_path: str | None, named: str, remedy: str) -> None:
    import requests
    from urllib3.exceptions import MaxRetryError
    from urllib3.exceptions import SSLError as Urllib3SSLError

    if ca_path:
        sources = Sources(**{**sources.__dict__, "ca_file": "profile 'staging' (ca_file)"})
    failure = requests.exceptions.SSLError(MaxRetryError(None, "/x", Urllib3SSLError(verify_failure())))  # type: ignore[arg-type]
    platform = msal_platform(failure)
    t = FakeClock()
    provider = MsalTokenProvider("t", "c", client_secret="s3cr3t-value", authority_host="https://127.0.0.1:9443",
                                 verify=ca_path or True, clock=t.clock, sleep=t.sleep, http_client=platform,
                                 retry=RetryPolicy(deadline_seconds=300, base_delay=1.0, jitter=0.0), sources=sources)
    with pytest.raises(AuthError) as caught:
        await provider.token()
    message = str(caught.value)
    assert platform.calls == 1 and t.sleeps == [], "no retry: another try cannot trust the certificate"
    assert caught.value.exit_code == 3
    assert "certificate verify failed: unable to get local issuer certificate" in message
    assert named in message and remedy in message and "127.0.0.1:9443" in message
    assert "resume" not in message and "s3cr3t-value" not in message


async def test_the_plain_provider_also_ends_at_once_on_a_certificate_it_cannot_verify() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]")
        error.__cause__ = verify_failure()
        raise error

    t = FakeClock()
    provider = ClientCredentialsProvider("https://127.0.0.1:9443/t/oauth2/v2.0/token", "c", "s3cr3t-value",
                                         transport=httpx.MockTransport(handler), clock=t.clock, sleep=t.sleep,
                                         sources=Sources(authority_host="AZURE_AUTHORITY_HOST"))
    with pytest.raises(AuthError, match=r"^The token endpoint 127.0.0.1:9443 \(set by AZURE_AUTHORITY_HOST\) "
                                        r"presented a TLS certificate that could not be verified") as caught:
        await provider.token()
    assert len(calls) == 1 and t.sleeps == []
    assert "set SSL_CERT_FILE" in str(caught.value)


def refusal(code: int, error: str = "invalid_client") -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401 if error == "invalid_client" else 400, json={
            "error": error, "error_codes": [code], "error_description": f"AADSTS{code}: refused. Trace ID: x"})
    return httpx.MockTransport(handler)


@pytest.mark.parametrize("code, error, sources, names", [
    (7000215, "invalid_client", STAGING,
     ["into $STAGING_SECRET (named by client_secret_env of profile 'staging')", "credentials of profile 'staging'"]),
    (7000222, "invalid_client", Sources.of_profile("staging", {}), ["put it in profile 'staging' (client_secret)"]),
    (700016, "unauthorized_client", STAGING,
     ["client id c-id exists in tenant t-id", "check profile 'staging' (client_id) and profile 'staging' (tenant_id)"]),
    (90002, "invalid_request", STAGING, ["Tenant t-id was not found", "check profile 'staging' (tenant_id)"]),
    (700027, "invalid_client", STAGING, ["check profile 'staging' (certificate_path)"]),
    (7000215, "invalid_client", Sources(), ["into AZURE_CLIENT_SECRET", "credentials of the environment"]),
])
async def test_a_refusal_names_the_code_and_the_setting_that_was_used(code: int, error: str, sources: Sources,
                                                                     names: list[str]) -> None:
    t = FakeClock()
    provider = ClientCredentialsProvider("http://127.0.0.1:8765/t-id/oauth2/v2.0/token", "c-id", "s3cr3t-value",
                                         transport=refusal(code, error), clock=t.clock, sleep=t.sleep, sources=sources)
    with pytest.raises(AuthError) as caught:
        await provider.token()
    message = str(caught.value)
    assert caught.value.code == str(code) and f"AADSTS{code}" in message and t.sleeps == []
    for name in names:
        assert name in message
    if sources.profile:
        assert "AZURE_" not in message, "a profile was used, not the environment"


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> int:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AZURE_CLIENT_CERTIFICATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return main(args)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens there


def test_an_export_that_cannot_get_a_token_never_advises_resume(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    env = dict(CREDS, AZURE_AUTHORITY_HOST=f"http://127.0.0.1:{port}")
    code = cli(["export", "--target", f"http://127.0.0.1:{port}/v1.0", "--out-dir", "exported", "--quiet"],
               monkeypatch, env)
    err = capsys.readouterr().err
    assert code == 3, err
    assert "it refuses connections" in err and "resume" not in err, err
    assert "run the export again" in err


def test_a_run_that_cannot_get_a_token_says_how_to_finish_it(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("signInType,signInName,displayName\nemailAddress,a@contoso.com,A\n", encoding="utf-8")
    port = closed_port()
    code = cli(["create", str(source), "--target", f"http://127.0.0.1:{port}/v1.0", "--out-dir", "run", "--quiet"],
               monkeypatch, dict(CREDS, AZURE_AUTHORITY_HOST=f"http://127.0.0.1:{port}"))
    err = capsys.readouterr().err
    assert code == 3 and "finish the run with `entra-batch resume run`" in err, err


# ---- finding 3: profiles ------------------------------------------------------------------------------

PROD = ('[prod]\ntenant_id = "p-tenant"\nclient_id = "p-client"\nclient_secret = "inline-S3cret-value"\n'
        'target = "https://127.0.0.1:9443/v1.0"\n')


def test_target_with_profile_is_a_usage_error(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_profiles(home, PROD)
    env = {"ENTRA_BATCH_HOME": str(home)}
    with pytest.raises(ConfigError, match=r"^--target and --profile both name the tenant to talk to: give one"):
        resolve_target("http://127.0.0.1:8765/v1.0", "prod", env=env)
    with pytest.raises(ConfigError, match="--target and --profile"):
        resolve_target("local", "prod", env=env)
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName\na@contoso.com,A\n", encoding="utf-8")
    code = cli(["create", str(source), "--profile", "prod", "--target", "local", "--out-dir", "run"], monkeypatch, {})
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--target and --profile" in err
    assert not (tmp_path / "run").exists(), "nothing was started"


def test_resume_takes_the_command_lines_profile_instead_of_the_saved_target(home: Path) -> None:
    write_profiles(home, PROD)
    args = argparse.Namespace(target=None, profile="prod", domain=None, extensions_app_id=None)
    target = target_of(args, target="http://127.0.0.1:8765/v1.0", profile=None)
    assert target.tenant_id == "p-tenant" and target.graph_url == "https://127.0.0.1:9443/v1.0"
    saved = target_of(argparse.Namespace(target=None, profile=None, domain=None, extensions_app_id=None),
                      target=None, profile="prod")
    assert saved.sources.profile == "prod"


@pytest.mark.parametrize("text, unknown", [
    (PROD + 'ca-file = "/x/ca.pem"\n', "'ca-file'"),
    (PROD + 'authority = "https://login.example.com"\n', "'authority'"),
    (PROD + '[[prod.apps]]\nclient_id = "second"\nsecret_env = "SECOND"\n', "'secret_env'"),
])
def test_an_unknown_profile_key_is_refused_naming_it_and_the_known_keys(home: Path, text: str, unknown: str) -> None:
    write_profiles(home, text)
    with pytest.raises(ConfigError, match=f"has the unknown key {unknown}; the known keys are ") as caught:
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})
    message = str(caught.value)
    assert "client_secret_env" in message and "inline-S3cret-value" not in message
    assert ("ca_file" in message) == ("apps" not in text), "a profile's keys, or an app's"
    assert caught.value.exit_code == 2


def test_every_profile_key_is_accepted_and_documented(home: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(_any_ca_pem())), encoding="ascii")
    write_profiles(home, f'[full]\ntarget = "https://127.0.0.1:9443/v1.0"\ntenant_id = "t"\nclient_id = "c"\n'
                         f'client_secret_env = "FULL_SECRET"\nauthority_host = "https://127.0.0.1:9443"\n'
                         f'ca_file = "{ca}"\ndomain = "contoso.onmicrosoft.com"\nextensions_app_id = "0e95a68c-9e07-4312-9887-d81aef0cd073"\n'
                         f'[[full.apps]]\nclient_id = "c2"\nclient_secret_env = "SECOND"\n')
    target = resolve_target(None, "full", env={"ENTRA_BATCH_HOME": str(home), "FULL_SECRET": "a-secret",
                                               "SECOND": "b-secret"})
    assert target.ca_file == ca and target.sources.ca_file == "profile 'full' (ca_file)"
    assert target.extra_apps[0].sources.client_secret == "$SECOND (named by client_secret_env of apps #1 of profile 'full')"
    assert target.extra_apps[0].sources.ca_file == "profile 'full' (ca_file)"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["profiles", "--help"])
    profiles_help = capsys.readouterr().out
    for key in (*PROFILE_KEYS, *APP_KEYS):
        assert f"  {key} " in profiles_help or f" {key}," in profiles_help or f" {key}." in profiles_help, key


def _any_ca_pem() -> str:
    import certifi

    text = Path(certifi.where()).read_text(encoding="ascii")
    return text[text.index("-----BEGIN CERTIFICATE-----"):text.index("-----END CERTIFICATE-----") + 25]


def test_profiles_lists_and_shows_with_secrets_masked(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_profiles(home, PROD + '[[prod.apps]]\nclient_id = "second"\nclient_secret_env = "SECOND_SECRET"\n'
                               '[staging]\ntenant_id = "s-tenant"\nclient_id = "s-client"\n'
                               'client_secret_env = "STAGING_SECRET"\n[lab]\ntarget = "local"\n')
    monkeypatch.setenv("STAGING_SECRET", "env-S3cret-value")
    monkeypatch.delenv("SECOND_SECRET", raising=False)
    assert main(["profiles"]) == 0
    listed = capsys.readouterr().out
    lines = {line.split()[0]: line for line in listed.splitlines()[2:]}
    assert set(lines) == {"lab", "prod", "staging"}
    assert "https://127.0.0.1:9443/v1.0" in lines["prod"] and "p-tenant" in lines["prod"] \
        and "secret in the file" in lines["prod"] and lines["prod"].rstrip().endswith("2")
    assert "secret from $STAGING_SECRET" in lines["staging"] and "(not set)" not in lines["staging"]
    assert main(["profiles", "show", "prod"]) == 0
    shown = capsys.readouterr().out
    assert "client_secret              **** (in the file)" in shown
    assert "apps #1 client_secret_env  SECOND_SECRET (the secret comes from $SECOND_SECRET: not set)" in shown
    for key in PROFILE_KEYS:
        assert f"\n  {key} " in shown, key
    assert main(["profiles", "show", "staging"]) == 0
    shown += capsys.readouterr().out
    assert "STAGING_SECRET (the secret comes from $STAGING_SECRET: set)" in shown
    assert "inline-S3cret-value" not in listed + shown and "env-S3cret-value" not in listed + shown
    assert main(["profiles", "show", "nope"]) == 2
    assert "no profile [nope]" in capsys.readouterr().err


def test_profiles_without_a_file_and_with_a_bad_one(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    assert "no profiles in" in capsys.readouterr().out
    write_profiles(home, PROD + 'tenant = "x"\n')
    assert main(["profiles"]) == 2
    assert "unknown key 'tenant'" in capsys.readouterr().err


def test_what_a_profile_names_never_holds_its_secret(home: Path) -> None:
    # The Target a profile makes never shows its secret (repr), its sources name settings only.
    write_profiles(home, PROD)
    target = resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(home)})
    assert "inline-S3cret-value" not in repr(target) + json.dumps(target.sources.__dict__)
