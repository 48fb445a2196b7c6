"""`entra-batch doctor` (issue 13, item 2): the checklist before a run.

Done when: doctor against an emulator tenant missing one permission, or without the
extensions app, or whose administrator lacks the role, exits non-zero naming exactly that,
in under 10 seconds; a healthy tenant exits 0; --json is the same as the text; nothing
secret is printed. The CLI is driven in process on the built-in emulator (`--target local`,
its directory prepared first) and once against `entra-batch emulator` over loopback, slow.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator.server_process import REPO_ROOT, running_emulator

import batch.run.connection as connection_module
from batch.auth import StaticTokenProvider, token_grants
from batch.cli import main
from batch.cli.doctor_command import render
from batch.config import Target, emulator_db_path
from batch.doctor import FAIL, OK, WARN, Check, DoctorReport, run_doctor
from batch.doctor.identity import identity_check, permission_checks
from batch.doctor.run import examine
from batch.emulator import EmulatorApp, EmulatorSettings, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.emulator.settings import Latency
from batch.emulator.store import ALL_USER_PERMISSIONS
from batch.errors import ExitCode
from batch.graph import GraphClient
from batch.run.connection import Connection

# What reset-password needs, and the broad permission that would grant it too: the app below
# holds every other permission (GRAPH.md §10).
PASSWORD_PERMISSIONS = ("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All")
WITHOUT_PASSWORD = tuple(p for p in ALL_USER_PERMISSIONS if p not in PASSWORD_PERMISSIONS)
TEN_SECONDS = 10.0  # the bound


def _fails(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("✗")]


def _prepare_local(change: Callable[[Store, str, str], object]) -> None:
    """The built-in emulator's directory (under ENTRA_BATCH_HOME), changed by `change(store,
    tenant_id, client_id)` before doctor opens it."""
    store = Store(emulator_db_path())
    app = store.default_app()
    change(store, app.tenant_id, app.client_id)
    store.close()


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    status = main(["doctor", "--target", "local", *args])
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    return status, out, err, took


# --- the CLI on the built-in emulator --------------------------------------------------------

def test_a_healthy_tenant_exits_0_with_every_verb_granted(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _, took = _doctor(capsys)
    assert status == ExitCode.OK, out
    assert _fails(out) == []
    for verb in ("create", "update", "reset-password", "delete", "restore", "purge", "export", "export --deleted"):
        assert f"✓ {verb}: granted" in out
    assert "external tenant (tenantType CIAM)" in out
    assert "✓ extensions app: b2c-extensions-app" in out
    assert "✓ $count with ConsistencyLevel: eventual: works" in out
    assert "✓ identity filter on deleted items: works" in out
    assert out.rstrip().endswith("nothing would stop a run")
    assert took < TEN_SECONDS


def test_a_tenant_missing_one_permission_exits_3_naming_exactly_it(home: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _prepare_local(lambda store, tenant_id, client_id: store.set_app_roles(client_id, WITHOUT_PASSWORD))
    status, out, _, took = _doctor(capsys)
    assert status == ExitCode.ABORTED, out
    assert _fails(out) == ["✗ reset-password: needs User-PasswordProfile.ReadWrite.All"]
    assert "Grant User-PasswordProfile.ReadWrite.All (Microsoft Graph, application permission)" in out
    assert "✓ create: granted" in out and "✓ update: granted" in out
    assert out.rstrip().endswith("1 problem would stop a run (exit 3)")
    assert took < TEN_SECONDS


def test_a_tenant_without_the_extensions_app_exits_1_naming_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _prepare_local(lambda store, tenant_id, client_id: store.remove_extensions_app(tenant_id))
    status, out, _, took = _doctor(capsys, "--extensions-app-id", "")
    assert status == 1, out
    assert [line.split(":")[0] for line in _fails(out)] == ["✗ extensions app"]
    assert "this tenant has no b2c-extensions-app" in out
    assert took < TEN_SECONDS


def test_json_is_one_document_holding_what_the_text_says(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _prepare_local(lambda store, tenant_id, client_id: store.set_app_roles(client_id, WITHOUT_PASSWORD))
    status, text, _, _ = _doctor(capsys)
    json_status, out, _, _ = _doctor(capsys, "--json")
    document = json.loads(out)
    assert json_status == status == document["exit_code"] == 3
    assert document["ok"] is False and document["failures"] == 1
    marks = {OK: "✓", WARN: "!", FAIL: "✗"}
    lines = set(text.splitlines())
    for check in document["checks"]:
        shown = f"  {marks[check['status']]} {check['name']}: "
        # The same checks in the same words (the measured ones, latency and resource units, differ).
        assert any(line.startswith(shown) for line in lines), shown
        if check["name"] not in ("latency", "throttling", "clock"):
            assert f"{shown}{check['finding']}" in lines
        if check["status"] != OK and check["remedy"]:
            assert f"      → {check['remedy']}" in lines
    failed = [c for c in document["checks"] if c["status"] == FAIL]
    assert [(c["section"], c["name"], c["data"]["missing"], c["stops"]) for c in failed] == \
        [("identity", "reset-password", ["User-PasswordProfile.ReadWrite.All"], "access")]


def test_nothing_secret_is_printed(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(emulator_db_path())
    secret = store.default_app().secret
    store.close()
    assert secret
    for args in ((), ("--json",), ("-v",)):
        _, out, err, _ = _doctor(capsys, *args)
        for stream in (out, err):
            assert secret not in stream
            assert "eyJ" not in stream  # no JWT (a token's header starts so)


def test_help_says_what_the_exit_statuses_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["doctor", "--help"])
    out = capsys.readouterr().out
    assert "--profile" in out and "--target" in out and "--json" in out
    assert "Exit status: 0 nothing would stop a run" in " ".join(out.split())


# --- the library, on tenants of other kinds --------------------------------------------------

@dataclass
class Tenant:
    store: Store
    tenant_id: str
    client_id: str
    transport: EmulatorTransport

    def target(self, **changes: object) -> Target:
        app = self.store.app(self.client_id)
        assert app is not None
        tenant = self.store.tenant(self.tenant_id)
        assert tenant is not None
        values: dict[str, object] = {"tenant_id": tenant.id, "client_id": app.client_id,
                                     "client_secret": app.secret, "authority_host": "http://emulator.local"}
        values.update(changes)
        return Target("url", "http://emulator.local/v1.0", **values)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Tenant]:
    store = Store(tmp_path / "emulator.db")
    app = store.default_app()
    yield Tenant(store, app.tenant_id, app.client_id, EmulatorTransport(EmulatorApp(store)))
    store.close()


def _other_tenant(world: Tenant, kind: str, domain: str) -> Tenant:
    tenant = world.store.add_tenant(domain, display_name=f"{kind} tenant", kind=kind)
    app = world.store.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="entra-batch")
    return Tenant(world.store, tenant.id, app.client_id, world.transport)


def _check(report: DoctorReport, name: str) -> tuple[str, str]:
    found = [c for c in report.checks if c.name == name]
    assert len(found) == 1, [c.name for c in report.checks]
    return found[0].status, found[0].finding


async def test_a_workforce_tenant_is_a_warning_not_a_failure(world: Tenant) -> None:
    workforce = _other_tenant(world, "workforce", "fabrikam.onmicrosoft.com")
    report = await run_doctor(workforce.target(), transport=workforce.transport)
    status, finding = _check(report, "tenant")
    assert status == WARN and "workforce tenant (tenantType AAD)" in finding
    assert report.exit_code == ExitCode.OK


async def test_a_b2c_tenant_is_fine_with_a_note_and_no_count(world: Tenant) -> None:
    b2c = _other_tenant(world, "b2c", "woodgrove.onmicrosoft.com")
    report = await run_doctor(b2c.target(), transport=b2c.transport)
    status, finding = _check(report, "tenant")
    assert status == OK and "Azure AD B2C tenant (tenantType AAD B2C). Note:" in finding
    status, finding = _check(report, "$count with ConsistencyLevel: eventual")
    assert status == WARN and "refused by this tenant (HTTP 400" in finding
    assert report.exit_code == ExitCode.OK


async def test_the_migration_listener_s_attribute_is_named_with_its_type(world: Tenant) -> None:
    full = world.store.add_extension_property(world.tenant_id, "requiresMigration", "Boolean")
    world.store.add_extension_property(world.tenant_id, "loyaltyNumber", "String")
    world.store.add_password_submit_listener(world.tenant_id, full, display_name="Legacy sign-in")
    report = await run_doctor(world.target(), transport=world.transport)
    assert _check(report, "custom attributes") == (OK, "loyaltyNumber (String), requiresMigration (Boolean)")
    status, finding = _check(report, "password migration")
    assert status == OK
    assert finding.startswith(f"the onPasswordSubmit listener 'Legacy sign-in' reads requiresMigration ({full}), "
                              "a Boolean")


async def test_a_migration_attribute_that_is_not_boolean_is_a_warning(world: Tenant) -> None:
    full = world.store.add_extension_property(world.tenant_id, "needsMigration", "String")
    world.store.add_password_submit_listener(world.tenant_id, full)
    report = await run_doctor(world.target(), transport=world.transport)
    status, finding = _check(report, "password migration")
    assert status == WARN and finding.endswith("a String, not a Boolean")


async def test_a_configured_extensions_app_id_of_another_app_fails(world: Tenant) -> None:
    report = await run_doctor(world.target(extensions_app_id="11111111-2222-3333-4444-555555555555"),
                              transport=world.transport)
    status, finding = _check(report, "extensions app")
    assert status == FAIL and "is not this tenant's b2c-extensions-app" in finding
    assert report.exit_code == 1


async def test_a_configured_domain_that_is_not_verified_fails(world: Tenant) -> None:
    world.store.add_domain(world.tenant_id, "contoso.com")
    report = await run_doctor(world.target(domain="contoso.example"), transport=world.transport)
    status, finding = _check(report, "domains")
    assert status == FAIL and "(verified: contoso.onmicrosoft.com, contoso.com)" in finding
    assert report.exit_code == 1


async def test_a_wrong_secret_is_one_failed_sign_in_check(world: Tenant) -> None:
    report = await run_doctor(world.target(client_secret="not-the-secret"), transport=world.transport)
    assert [(c.section, c.name, c.status) for c in report.checks] == [("identity", "sign-in", FAIL)]
    assert "7000215" in report.checks[0].finding and "not-the-secret" not in report.checks[0].finding
    assert report.exit_code == ExitCode.ABORTED


async def test_a_graph_too_slow_for_the_budget_ends_in_time_saying_so(tmp_path: Path) -> None:
    store = Store(tmp_path / "slow.db")
    try:
        app = store.default_app()
        slow = Latency({"read": 5000.0, "write": 5000.0, "token": 0.0}, 0.0)  # Graph is slow, not the sign-in
        transport = EmulatorTransport(EmulatorApp(store, EmulatorSettings(latency=slow)))
        target = Target("url", "http://emulator.local/v1.0", tenant_id=app.tenant_id, client_id=app.client_id,
                        client_secret=app.secret, authority_host="http://emulator.local")
        started = time.monotonic()
        report = await run_doctor(target, transport=transport, budget_seconds=1.0)
        assert time.monotonic() - started < 4.0
        assert _check(report, "answers")[0] == FAIL
        assert report.exit_code == ExitCode.ABORTED
    finally:
        store.close()


class _Person:
    """A sign-in that waits for a person (a device code being entered) before the token."""

    def __init__(self, inner: Any, wait: float) -> None:
        self.inner, self.wait = inner, wait

    async def token(self) -> str:
        if self.wait:
            await asyncio.sleep(self.wait)
            self.wait = 0.0
        token: str = await self.inner.token()
        return token

    def invalidate(self) -> None:
        self.inner.invalidate()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_sign_in_waiting_for_a_person_longer_than_the_budget_is_not_cut_short(
        world: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trial finding 1: a device code entered after the budget had run out stopped doctor at 8 s
    ("Graph did not answer"). The sign-in comes before the budget, which covers Graph's reads."""
    real = connection_module.token_provider_for

    def slow(target: Target, transport: Any = None) -> Any:
        return _Person(real(dataclasses.replace(target, auth="secret"), transport), wait=1.5)

    monkeypatch.setattr(connection_module, "token_provider_for", slow)
    report = await run_doctor(world.target(auth="device-code"), transport=world.transport, budget_seconds=1.0)
    assert report.exit_code == ExitCode.OK, [c for c in report.checks if c.status != OK]
    assert report.seconds > 1.5
    assert _check(report, "tenant")[0] == OK


async def test_a_graph_too_slow_for_the_budget_still_shows_every_verb_and_each_section_not_answered(
        tmp_path: Path) -> None:
    """Trial finding 7: out of time, doctor printed only the identity line. The verbs' lines need
    only the token; every section whose reads did not answer says so."""
    store = Store(tmp_path / "slow.db")
    try:
        app = store.default_app()
        slow = Latency({"read": 3000.0, "write": 3000.0, "token": 0.0}, 0.0)
        transport = EmulatorTransport(EmulatorApp(store, EmulatorSettings(latency=slow)))
        target = Target("url", "http://emulator.local/v1.0", tenant_id=app.tenant_id, client_id=app.client_id,
                        client_secret=app.secret, authority_host="http://emulator.local")
        report = await run_doctor(target, transport=transport, budget_seconds=0.5)
    finally:
        store.close()
    text = render(report)
    for verb in ("create", "delete", "update", "reset-password", "restore", "purge", "export", "export --deleted"):
        assert _check(report, verb)[0] == OK, text
    for section in ("target", "extensions app", "large runs"):
        assert [(c.name, c.status) for c in report.section(section)] == [("not answered", WARN)], text
    assert "  ! not answered: Graph did not answer this section's reads within 0.5 s" in text, text
    assert _check(report, "answers")[0] == FAIL and report.exit_code == ExitCode.ABORTED


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--domain", "bad domain!", "--domain is 'bad domain!', which is not a domain name"),
    ("--extensions-app-id", "not-a-guid", "--extensions-app-id is 'not-a-guid', which is not an app id"),
])
def test_a_malformed_domain_or_extensions_app_id_is_a_usage_error(
        home: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str) -> None:
    """Trial finding 9: a value that cannot be a domain or an app id is exit 2 (before anything is
    asked), for doctor as for a verb, not "not the tenant's" (exit 1)."""
    status, out, err, _ = _doctor(capsys, option, value)
    assert status == ExitCode.USAGE, out + err
    assert says in err
    assert main(["create", str(home / "none.csv"), "--target", "local", option, value, "--dry-run"]) == ExitCode.USAGE
    assert says in capsys.readouterr().err


# --- over loopback, against a slow `entra-batch emulator` ----------------------------------

def test_over_loopback_a_slow_emulator_s_missing_permission_in_under_10_s(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    store = Store(db)
    narrow = store.add_app(store.default_app().tenant_id, WITHOUT_PASSWORD, display_name="narrow app")
    store.close()
    with running_emulator(tmp_path / "home", db=db, tls=False, extra_args=["--latency-ms", "250"]) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
        env.update(emulator.exports, AZURE_CLIENT_ID=narrow.client_id, AZURE_CLIENT_SECRET=narrow.secret or "",
                   ENTRA_BATCH_HOME=str(tmp_path / "client-home"), PYTHONPATH=str(REPO_ROOT))
        env.pop("ENTRA_BATCH_EXTENSIONS_APP_ID", None)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "batch", "doctor", "--target", emulator.graph_url], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert _fails(done.stdout) == ["✗ reset-password: needs User-PasswordProfile.ReadWrite.All"]
    assert "app narrow app (client id " in done.stdout
    assert "✓ clock: Graph's clock is" in done.stdout  # the served emulator dates its answers
    assert took < TEN_SECONDS, f"{took:.1f} s"
    assert (narrow.secret or "") not in done.stdout + done.stderr


# --- a signed-in administrator (delegated token): the person's role decides ---------------

def _unsigned(claims: dict[str, object]) -> str:
    """A JWT's shape with these claims (the preflight reads claims, it does not verify them)."""
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


HELPDESK = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"  # Microsoft Graph Command Line Tools, a public client


async def _checks_for(claims: dict[str, object]) -> tuple[Check, list[Check]]:
    token = _unsigned({"idtyp": "user", "appid": GRAPH_CLI, "app_displayname": "Microsoft Graph Command Line Tools",
                       "tid": "t", "oid": "o", "upn": "admin@contoso.onmicrosoft.com", **claims})
    target = Target("url", "http://127.0.0.1:9/v1.0", tenant_id="t", client_id=GRAPH_CLI)
    client = GraphClient(target.graph_url, StaticTokenProvider(token))
    try:
        connection = Connection(target, client, [StaticTokenProvider(token)], [GRAPH_CLI])
        return identity_check(token_grants(token), GRAPH_CLI), await permission_checks(connection, "contoso.onmicrosoft.com")
    finally:
        await client.aclose()


async def test_an_administrator_lacking_the_role_is_named_with_the_role() -> None:
    identity, checks = await _checks_for({"scp": "User.ReadWrite.All Organization.Read.All Directory.AccessAsUser.All",
                                          "wids": [HELPDESK]})
    assert identity.finding.startswith("signed in as admin@contoso.onmicrosoft.com (Helpdesk Administrator), through "
                                       "Microsoft Graph Command Line Tools")
    failed = {c.name: c.finding for c in checks if c.status == FAIL}
    role = "needs the User Administrator directory role for admin@contoso.onmicrosoft.com"
    assert failed == {verb: role for verb in ("create", "delete", "update", "restore", "purge")}
    # A helpdesk administrator may reset a customer's password; reading asks no role.
    assert {c.name for c in checks if c.status == OK} == {"reset-password", "export", "export --deleted"}
    assert all(c.stops == "access" for c in checks if c.status == FAIL)


async def test_an_administrator_with_the_role_and_the_scope_is_granted_everything_but_a_password_change() -> None:
    identity, checks = await _checks_for({"scp": "User.ReadWrite.All", "wids": [USER_ADMINISTRATOR]})
    assert "(User Administrator)" in identity.finding and identity.data["kind"] == "user"
    # User.ReadWrite.All does not change sign-in names: update's newSignInName column needs more (GRAPH.md §10);
    # a password change on a person's behalf needs Directory.AccessAsUser.All (user.md, passwordProfile).
    assert [(c.name, c.status, c.finding) for c in checks if c.status != OK] == \
        [("update", WARN, "works, but a newSignInName column needs User.ManageIdentities.All; "
                          "a federatedIssuer column needs User.ManageIdentities.All"),
         ("reset-password", FAIL, "needs Directory.AccessAsUser.All")]
    _, as_user = await _checks_for({"scp": "User.ReadWrite.All Directory.AccessAsUser.All",
                                    "wids": [USER_ADMINISTRATOR]})
    assert [c for c in as_user if c.status != OK] == []


async def test_doctor_with_an_emulator_administrator_lacking_the_role(world: Tenant) -> None:
    """End to end in process: the emulator's own delegated token (password grant of the Graph
    command line tools' public client) for an administrator holding Helpdesk Administrator only;
    doctor's reads all succeed as that person and the writes are refused for the role."""
    upn = "helpdesk@contoso.onmicrosoft.com"
    world.store.add_admin(world.tenant_id, upn, display_name="Help Desk", roles=("Helpdesk Administrator",),
                          password="Pa55-word-for-tests")
    async with httpx.AsyncClient(transport=world.transport, base_url="http://emulator.local") as http:
        answer = await http.post(f"/{world.tenant_id}/oauth2/v2.0/token", data={
            "grant_type": "password", "client_id": GRAPH_CLI, "username": upn, "password": "Pa55-word-for-tests",
            "scope": "https://graph.microsoft.com/.default"})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    target = Target("url", "http://emulator.local/v1.0", tenant_id=world.tenant_id, client_id=GRAPH_CLI)
    client = GraphClient(target.graph_url, StaticTokenProvider(token), transport=world.transport)
    checks: list[Check] = []
    try:
        await examine(Connection(target, client, [StaticTokenProvider(token)], [GRAPH_CLI]), checks)
    finally:
        await client.aclose()
    report = DoctorReport(target.label, tuple(checks))
    assert report.exit_code == ExitCode.ABORTED
    identity = next(c for c in checks if c.name == "identity")
    assert identity.finding.startswith(f"signed in as {upn} (Helpdesk Administrator), through Microsoft Graph "
                                       "Command Line Tools")
    role = f"needs the User Administrator directory role for {upn}"
    assert {c.name: c.finding for c in report.failures} == \
        {**{verb: role for verb in ("create", "delete", "update", "restore", "purge")},
         "reset-password": "needs Directory.AccessAsUser.All"}  # not consented for Graph Command Line Tools here
    # Every read doctor makes is allowed to a member with the consented scopes.
    for name in ("tenant", "domains", "extensions app", "custom attributes", "password migration",
                 "identity filter on deleted items", "$count with ConsistencyLevel: eventual"):
        assert _check(report, name)[0] == OK, _check(report, name)
    assert token not in json.dumps(report.as_json())


# --- signed in with a device code, against `entra-batch emulator --tls` -----------------------

def _device_code_doctor(tmp_path: Path, upn: str, roles: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str],
                                                                                  float]:
    """doctor --auth device-code as `upn` (approved by the served emulator), on a terminal."""
    import pty

    db = tmp_path / "emu" / "emulator.db"
    db.parent.mkdir(parents=True)
    store = Store(db)
    if store.admin(upn) is None:
        store.add_admin(store.tenants()[0].id, upn, roles=roles)
    store.close()
    with running_emulator(tmp_path / "emu", db=db, extra_args=["--approve-device-codes-as", upn]) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_", "IDENTITY_"))
               and k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
        env.update(AZURE_TENANT_ID=emulator.tenant_id, AZURE_AUTHORITY_HOST=emulator.authority_host,
                   SSL_CERT_FILE=emulator.ca_path, ENTRA_BATCH_HOME=str(tmp_path / "client"),
                   ENTRA_BATCH_CACHE=str(tmp_path / "client" / "cache"), PYTHONPATH=str(REPO_ROOT))
        leader, follower = pty.openpty()
        try:
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "batch", "doctor", "--target", emulator.graph_url, "--auth",
                                   "device-code"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                                  stdin=follower)
            return done, time.monotonic() - started
        finally:
            os.close(leader)
            os.close(follower)


def test_device_code_doctor_names_the_administrator_and_the_role_they_lack(tmp_path: Path) -> None:
    upn = "helpdesk@contoso.onmicrosoft.com"
    done, took = _device_code_doctor(tmp_path, upn, ("Helpdesk Administrator",))
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"✓ identity: signed in as {upn} (Helpdesk Administrator), through Microsoft Graph Command Line " \
           "Tools" in done.stdout
    role = f"needs the User Administrator directory role for {upn}"
    assert _fails(done.stdout) == [f"✗ {verb}: {role}" for verb in ("create", "delete", "update")] + \
        ["✗ reset-password: needs Directory.AccessAsUser.All"] + [f"✗ {verb}: {role}" for verb in ("restore", "purge")]
    assert took < TEN_SECONDS, f"{took:.1f} s"


def test_device_code_doctor_as_a_user_administrator_lacks_only_the_password_permission(tmp_path: Path) -> None:
    done, took = _device_code_doctor(tmp_path, "admin@contoso.onmicrosoft.com", ("User Administrator",))
    assert done.returncode == 3, done.stdout + done.stderr
    assert _fails(done.stdout) == ["✗ reset-password: needs Directory.AccessAsUser.All"]
    assert "✓ identity: signed in as admin@contoso.onmicrosoft.com (User Administrator)" in done.stdout
    assert took < TEN_SECONDS, f"{took:.1f} s"
