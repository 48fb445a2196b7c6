"""Issue 13, sign-in methods without a socket: which method a command uses (`--auth`, a profile's
`auth`, ENTRA_BATCH_AUTH, else what the credentials imply), what each method needs, and the
permission preflight reading both kinds of token (an app's `roles`; a person's `scp` and
`wids`), naming the missing permission for the app and the missing directory role for the
signed-in administrator."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from batch.auth import missing_for, token_grants, token_roles
from batch.auth.permissions import ROLE_IDS
from batch.cli.parser import build_parser
from batch.config import GRAPH_COMMAND_LINE_TOOLS, resolve_target
from batch.errors import ConfigError, PermissionMissing
from batch.verbs.permissions import CREATE, ENABLE, PASSWORD, READ

CREDS = {"AZURE_TENANT_ID": "t-id", "AZURE_CLIENT_ID": "c-id", "AZURE_CLIENT_SECRET": "s3cr3t-value"}
USER_ADMIN = ROLE_IDS["User Administrator"]
HELPDESK = ROLE_IDS["Helpdesk Administrator"]


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part(claims)}.sig"


def write_profiles(home: Path, text: str) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(text, encoding="utf-8")
    (home / "profiles.toml").chmod(0o600)


# ---- which method -------------------------------------------------------------------------------------

def test_the_credentials_given_imply_the_method(tmp_path: Path) -> None:
    assert resolve_target(None, None, env=CREDS).auth == "secret"
    pem = tmp_path / "app.pem"
    pem.write_text("x")
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_CERTIFICATE_PATH": str(pem)}
    assert resolve_target(None, None, env=env).auth == "certificate"
    token = tmp_path / "token"
    token.write_text("eyJ")
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": str(token)}
    wi = resolve_target(None, None, env=env)
    assert (wi.auth, wi.federated_token_file) == ("workload-identity", token)


def test_the_flag_wins_over_the_variable_and_the_variable_over_the_credentials(tmp_path: Path) -> None:
    env = dict(CREDS, ENTRA_BATCH_AUTH="azure-cli", ENTRA_BATCH_CACHE=str(tmp_path / "cache"))
    assert resolve_target(None, None, env=env).auth == "azure-cli"
    target = resolve_target(None, None, auth="device-code", env=env)
    assert target.auth == "device-code" and target.sources.auth == "--auth"
    assert target.client_id == "c-id" and target.client_secret is None  # the secret is not the public client's
    assert target.token_cache == tmp_path / "cache"
    assert target.delegated


def test_device_code_defaults_to_graph_command_line_tools() -> None:
    target = resolve_target(None, None, auth="device-code", env={"AZURE_TENANT_ID": "t-id"})
    assert target.client_id == GRAPH_COMMAND_LINE_TOOLS and target.kind == "tenant"


def test_an_explicit_method_without_a_tenant_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="AZURE_TENANT_ID"):
        resolve_target(None, None, auth="managed-identity", env={})
    with pytest.raises(ConfigError, match="ENTRA_BATCH_AUTH managed-identity needs AZURE_TENANT_ID"):
        resolve_target(None, None, env={"ENTRA_BATCH_AUTH": "managed-identity"})
    with pytest.raises(ConfigError, match="AZURE_FEDERATED_TOKEN_FILE"):
        resolve_target(None, None, auth="workload-identity", env={"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"})


def test_an_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="ENTRA_BATCH_AUTH is 'interactive'.*device-code"):
        resolve_target(None, None, env=dict(CREDS, ENTRA_BATCH_AUTH="interactive"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "--auth", "password"])


def test_the_flag_reaches_every_verb_export_and_validate() -> None:
    parser = build_parser()
    for argv in (["create", "f.csv"], ["export"], ["validate", "--verb", "create", "f.csv"], ["delete", "f.csv"]):
        assert parser.parse_args([*argv, "--auth", "Azure-CLI"]).auth == "azure-cli"


def test_the_local_emulator_refuses_another_method() -> None:
    with pytest.raises(ConfigError, match="built-in emulator"):
        resolve_target("local", None, auth="device-code", env={})


def test_a_profile_chooses_its_method_and_the_flag_replaces_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(b"\x30\x82")
    write_profiles(home, f"""
[admin]
tenant_id = "t-id"
auth = "device-code"

[cert]
tenant_id = "t-id"
client_id = "c-id"
certificate_path = "{pfx}"
certificate_password_env = "PFX_PASSWORD"
send_x5c = true

[mi]
tenant_id = "t-id"
auth = "managed-identity"
client_id = "user-assigned-id"
""")
    env = {"ENTRA_BATCH_HOME": str(home), "PFX_PASSWORD": "pfx-pass", "ENTRA_BATCH_AUTH": "azure-cli"}
    admin = resolve_target(None, "admin", env=env)
    assert (admin.auth, admin.client_id, admin.sources.auth) == ("device-code", GRAPH_COMMAND_LINE_TOOLS,
                                                                 "profile 'admin' (auth)")
    cert = resolve_target(None, "cert", env=env)  # ENTRA_BATCH_AUTH is the environment's: the profile replaces it
    assert (cert.auth, cert.certificate_path, cert.certificate_password, cert.send_certificate_chain) == \
        ("certificate", pfx, "pfx-pass", True)
    assert "pfx-pass" not in repr(cert)
    mi = resolve_target(None, "mi", env=env)
    assert (mi.auth, mi.client_id) == ("managed-identity", "user-assigned-id")
    assert resolve_target(None, "cert", auth="azure-cli", env=env).auth == "azure-cli"


def test_send_x5c_must_be_a_boolean(tmp_path: Path) -> None:
    write_profiles(tmp_path, '[p]\ntenant_id = "t"\nclient_id = "c"\nclient_secret_env = "S"\nsend_x5c = "yes"\n')
    with pytest.raises(ConfigError, match="send_x5c must be true or false"):
        resolve_target(None, "p", env={"ENTRA_BATCH_HOME": str(tmp_path), "S": "x"})
    pem = tmp_path / "app.pem"
    pem.write_text("x")
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_CERTIFICATE_PATH": str(pem)}
    assert resolve_target(None, None, env=dict(env, AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="true")).send_certificate_chain
    assert not resolve_target(None, None, env=dict(env, AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="false")
                              ).send_certificate_chain
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SEND_CERTIFICATE_CHAIN must be true or false"):
        resolve_target(None, None, env=dict(env, AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="maybe"))


# ---- both kinds of token --------------------------------------------------------------------------------

APP_TOKEN = jwt({"idtyp": "app", "roles": ["User.Read.All"], "appid": "app-1", "app_displayname": "entra-batch",
                 "oid": "sp-1", "tid": "t-id"})


def person(scp: str, *roles: str) -> str:
    return jwt({"idtyp": "user", "scp": scp, "wids": list(roles), "upn": "admin@contoso.onmicrosoft.com",
                "name": "Admin", "oid": "u-1", "tid": "t-id", "appid": GRAPH_COMMAND_LINE_TOOLS,
                "app_displayname": "Microsoft Graph Command Line Tools"})


def test_an_app_token_grants_its_roles() -> None:
    grants = token_grants(APP_TOKEN)
    assert (grants.kind, grants.permissions, grants.app_id, grants.app_name) == \
        ("app", frozenset({"User.Read.All"}), "app-1", "entra-batch")
    missing = missing_for(grants, [CREATE, READ])
    assert missing.permissions == ("User.Create",) and missing.roles == ()
    assert token_roles(APP_TOKEN) == {"User.Read.All"}


def test_a_person_token_grants_scopes_and_roles() -> None:
    grants = token_grants(person("User.ReadWrite.All openid profile", USER_ADMIN))
    assert grants.kind == "user" and "User.ReadWrite.All" in grants.permissions
    assert grants.role_names == ("User Administrator",) and grants.upn == "admin@contoso.onmicrosoft.com"
    assert not missing_for(grants, [CREATE, READ])
    # A password change on a person's behalf needs Directory.AccessAsUser.All itself (user.md, passwordProfile).
    assert missing_for(grants, [PASSWORD]).permissions == ("Directory.AccessAsUser.All",)
    as_user = token_grants(person("User.ReadWrite.All Directory.AccessAsUser.All", USER_ADMIN))
    assert not missing_for(as_user, [CREATE, READ, PASSWORD])
    assert token_roles(person("User.ReadWrite.All", USER_ADMIN)) == frozenset()  # scopes are not app roles


def test_a_person_without_the_role_is_told_which_role() -> None:
    grants = token_grants(person("User.ReadWrite.All"))
    missing = missing_for(grants, [CREATE, READ])
    assert missing.permissions == () and missing.roles == ("User Administrator",)
    assert not missing_for(grants, [READ])  # members read the directory without a role
    helpdesk = token_grants(person("User.ReadWrite.All Directory.AccessAsUser.All", HELPDESK))
    assert not missing_for(helpdesk, [PASSWORD, READ])  # a Helpdesk Administrator resets customers' passwords
    assert missing_for(helpdesk, [CREATE]).roles == ("User Administrator",)
    assert missing_for(token_grants(person("User.Read.All")), [PASSWORD]).roles == ("Password Administrator",)
    paa = token_grants(person("User.ReadWrite.All", ROLE_IDS["Privileged Authentication Administrator"]))
    assert not missing_for(paa, [ENABLE]) and missing_for(helpdesk, [ENABLE]).roles == ("User Administrator",)


def test_a_person_missing_both_hears_both_for_whom() -> None:
    grants = token_grants(person("User.Read.All"))
    missing = missing_for(grants, [CREATE, READ])
    error = PermissionMissing(missing.permissions, client_id=GRAPH_COMMAND_LINE_TOOLS, roles=missing.roles,
                              person=grants.upn)
    text = str(error)
    assert "delegated permission User.Create" in text and "User Administrator" in text
    # The person is named once (finding 10a of the trial: "... of the signed-in administrator X lacks the
    # directory role ... for the signed-in administrator X").
    assert "The access token of the signed-in administrator admin@contoso.onmicrosoft.com lacks" in text
    assert text.count("signed-in administrator") == 1
    assert GRAPH_COMMAND_LINE_TOOLS in text
    app_text = str(PermissionMissing(["User.Create"], client_id="app-1"))
    assert "app app-1" in app_text and "application permission" in app_text


def test_access_as_user_meets_every_scope_but_not_the_role() -> None:
    grants = token_grants(person("Directory.AccessAsUser.All"))
    assert missing_for(grants, [CREATE, PASSWORD]).permissions == ()
    assert missing_for(grants, [CREATE]).roles == ("User Administrator",)


def test_a_resumed_run_signs_in_as_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    from batch.cli.targets import target_of
    from batch.run.request import RunRequest

    saved = RunRequest(verb="create", input="in.csv", auth="azure-cli")
    assert RunRequest.from_journal(dict(saved.__dict__)).auth == "azure-cli"
    for name, value in CREDS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ENTRA_BATCH_AUTH", raising=False)
    monkeypatch.delenv("ENTRA_BATCH_TARGET", raising=False)
    parser = build_parser()
    assert target_of(parser.parse_args(["resume", "runs/x"]), auth=saved.auth).auth == "azure-cli"
    assert target_of(parser.parse_args(["resume", "runs/x", "--auth", "secret"]), auth=saved.auth).auth == "secret"
    assert parser.parse_args(["create", "in.csv", "--auth", "azure-cli"]).auth == "azure-cli"


def test_profiles_lists_each_sign_in_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from batch.cli import main

    write_profiles(tmp_path, '[admin]\ntenant_id = "t"\nauth = "device-code"\n\n'
                             '[mi]\ntenant_id = "t"\nauth = "managed-identity"\nclient_id = "uai"\n\n'
                             '[cert]\ntenant_id = "t"\nclient_id = "c"\ncertificate_path = "/x.pfx"\n'
                             'certificate_password_env = "PFX_PW"\nsend_x5c = true\n')
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path))
    monkeypatch.setenv("PFX_PW", "pfx-secret-value")
    assert main(["profiles"]) == 0
    listed = capsys.readouterr().out
    assert "device-code" in listed and "managed-identity (client uai)" in listed and "certificate (x5c)" in listed
    assert main(["profiles", "show", "cert"]) == 0
    shown = capsys.readouterr().out
    assert "PFX_PW (the password comes from $PFX_PW: set)" in shown and "pfx-secret-value" not in shown


def test_profiles_show_the_client_a_method_uses_without_client_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Trial finding 12: device code and managed identity need no client_id; the list said "(missing)"."""
    from batch.cli import main

    write_profiles(tmp_path, '[admin]\ntenant_id = "t"\nauth = "device-code"\n\n'
                             '[mi]\ntenant_id = "t"\nauth = "managed-identity"\n\n'
                             '[broken]\ntenant_id = "t"\nclient_secret_env = "S"\n')
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path))
    assert main(["profiles"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert f"{GRAPH_COMMAND_LINE_TOOLS} (default: Microsoft Graph Command Line Tools)" in rows["admin"]
    assert "(system-assigned identity)" in rows["mi"]
    assert "(missing)" in rows["broken"] and "(missing)" not in rows["admin"] + rows["mi"]
    assert main(["profiles", "show", "mi"]) == 0
    assert "client_id                  (system-assigned identity)" in capsys.readouterr().out


def test_the_device_code_reaches_the_terminal_when_stderr_is_redirected(monkeypatch: pytest.MonkeyPatch) -> None:
    """`export --auth device-code 2>err.log` at a terminal: the code goes to the log and to the terminal."""
    import builtins
    import io

    from batch.cli import targets

    class Terminal(io.StringIO):
        def close(self) -> None:  # keep what was written readable after `with`
            pass

    terminal, log = Terminal(), io.StringIO()
    real_open = builtins.open

    def fake_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        return terminal if path == "/dev/tty" else real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(targets.sys, "stderr", log)
    targets.show_device_code("enter the code ABC123")
    assert "enter the code ABC123" in terminal.getvalue()
    assert "enter the code ABC123" in log.getvalue()


async def test_a_person_s_stale_token_is_renewed_once_before_the_preflight_says_what_is_missing() -> None:
    """A role (or a consent) granted after the cached token was issued: the preflight asks for a fresh token
    once before naming what is missing, instead of telling the administrator to wait out the cached one."""
    from batch.config import Target
    from batch.graph import GraphClient
    from batch.run.connection import Connection

    class Renewing:
        def __init__(self) -> None:
            self.tokens = [person("User.ReadWrite.All"), person("User.ReadWrite.All", USER_ADMIN)]
            self.invalidated = 0

        async def token(self) -> str:
            return self.tokens[min(self.invalidated, 1)]

        def invalidate(self) -> None:
            self.invalidated += 1

    provider = Renewing()
    target = Target("url", "http://127.0.0.1:9/v1.0", tenant_id="t-id", client_id="c")
    client = GraphClient(target.graph_url, provider)
    try:
        await Connection(target, client, [provider], ["c"]).check_permissions([CREATE, READ])
    finally:
        await client.aclose()
    assert provider.invalidated == 1


def test_a_profile_s_name_does_not_change_how_its_domain_is_checked(tmp_path: Path) -> None:
    """A domain is checked as a domain and an extensions app id as a GUID, whatever the profile is called (the
    check once told them apart by the words of the setting's name, so a profile named 'extensions-…' had its
    domain checked as a GUID and refused)."""
    home = tmp_path / "home"
    write_profiles(home, """
[extensions-prod]
tenant_id = "t-id"
auth = "device-code"
domain = "contoso.onmicrosoft.com"
extensions_app_id = "0e95a68c-9e07-4312-9887-d81aef0cd073"
""")
    target = resolve_target(None, "extensions-prod", env={"ENTRA_BATCH_HOME": str(home)})
    assert (target.domain, target.extensions_app_id) == ("contoso.onmicrosoft.com",
                                                          "0e95a68c-9e07-4312-9887-d81aef0cd073")


def test_profiles_never_show_a_password_written_in_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # `profiles` and `profiles show` printed `https://svc:Pw@graph...` as written, where a run
    # refuses such a URL without echoing it. Found by a review.
    from batch.cli import main

    write_profiles(tmp_path, '[staging]\ntarget = "https://svc:Sup3r-S3cret-Pw@graph.example.com/v1.0"\n'
                             'authority_host = "https://svc:Sup3r-S3cret-Pw@login.example.com"\n'
                             'tenant_id = "t1"\nclient_id = "c1"\nclient_secret_env = "STAGING_SECRET"\n')
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path))
    assert main(["profiles"]) == 0
    assert main(["profiles", "show", "staging"]) == 0
    shown = capsys.readouterr().out
    assert "Sup3r-S3cret-Pw" not in shown and "svc" not in shown
    assert "https://****@graph.example.com/v1.0" in shown and "https://****@login.example.com" in shown
