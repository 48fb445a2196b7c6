"""`create --jit-migration ATTRIBUTE` (issue 14, item 3) end to end on the built-in emulator:
no password on disk, every customer flagged, the start checks, resume, dry run, and the
migration's progress in `export --summary`/`--report` after the emulator migrates some."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from secret_scan import scan_for_secrets

from batch.cli import main
from batch.emulator import Store
from batch.emulator.directory import Directory
from batch.outcome import SentRow
from batch.run.journal import Journal
from batch.run.request import RunRequest
from batch.verbs import create_rows

FLAG = "requiresMigration"
HEADER = "signInType,signInName,displayName,password\r\n"


def results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def prepare_tenant(home: Path, *, data_type: str = "Boolean", listener: bool = True) -> str:
    """The tenant of the built-in emulator with the flag attribute (and a listener reading it)."""
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        prop = store.add_extension_property(tenant.id, FLAG, data_type)
        store.add_extension_property(tenant.id, "loyaltyId", "String")
        if listener:
            store.add_password_submit_listener(tenant.id, prop)
        return prop
    finally:
        store.close()


def live_users(home: Path) -> list[dict]:
    store = Store(home / "emulator.db")
    try:
        return [r.data for r in store.select_users(store.tenants()[0].id, "live", limit=100_000)]
    finally:
        store.close()


def customers(path: Path, count: int, *, password: str = "") -> Path:
    lines = "".join(f"emailAddress,c{i}@example.com,Customer {i},{password}\r\n" for i in range(count))
    path.write_text(HEADER + lines, encoding="utf-8", newline="")
    return path


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the run generates (and so sends)."""
    made: list[str] = []
    original = create_rows.generate_password

    def recording() -> str:
        made.append(original())
        return made[-1]
    monkeypatch.setattr(create_rows, "generate_password", recording)
    return made


def unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in emulator without Graph's write quotas (3,000 writes per 150 s per app and
    tenant would pace 10,000 creates for minutes): what is tested is what reaches the disk."""
    from batch.cli import targets
    from batch.emulator.settings import EmulatorSettings, Quotas

    monkeypatch.setattr(targets, "local_emulator_settings", lambda: EmulatorSettings(quotas=Quotas(enabled=False)))


def jit_run_leaves_no_password(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               captured: list[str], rows: int) -> None:
    prop = prepare_tenant(home)
    source = customers(tmp_path / "legacy.csv", rows)
    run = tmp_path / "run"
    assert main(["create", str(source), "--jit-migration", FLAG, "--out-dir", str(run), "--quiet"]) == 0
    out = capsys.readouterr()
    assert len(captured) == rows and len(set(captured)) == rows
    assert not (run / "passwords.csv").exists()
    assert scan_for_secrets(run, passwords=captured, texts={"stdout": out.out, "stderr": out.err}) == []
    assert {r["status"] for r in results(run)} == {"created"}
    assert all(r["error_message"] == "" for r in results(run))
    users = live_users(home)
    assert len(users) == rows
    assert all(u[prop] is True and u["passwordProfile"]["forceChangePasswordNextSignIn"] is False for u in users)
    assert "the onPasswordSubmit listener 'JIT password migration' reads requiresMigration" in out.err
    # Some customers sign in for the first time: the extension's MigratePassword clears their flag.
    db = str(home / "emulator.db")
    assert main(["emulator", "migrate-passwords", FLAG, "--count", str(rows // 4), "--db", db]) == 0
    capsys.readouterr()
    report = tmp_path / "progress.html"
    assert main(["export", "--summary", "--jit-migration", FLAG, "--out-dir", str(tmp_path / "export"),
                 "--report", str(report), "--quiet"]) == 0
    printed = capsys.readouterr().out
    migrated = rows // 4
    assert "Password migration (ext.requiresMigration)" in printed
    lines = [" ".join(line.split()) for line in printed.splitlines()]
    assert f"still to migrate (true) {rows - migrated:,} 75.0%" in lines
    assert f"migrated (false) {migrated:,} 25.0%" in lines and "not flagged 0 0.0%" in lines
    summary = json.loads((tmp_path / "export" / "summary.json").read_text())
    assert summary["counts"]["password_migration"] == {"attribute": f"ext.{FLAG}", "still_flagged": rows - migrated,
                                                        "completed": migrated, "not_flagged": 0}
    page = report.read_text()
    assert "Password migration (ext.requiresMigration)" in page and "migrated (false)" in page


def test_a_jit_run_leaves_no_password_anywhere_and_export_shows_progress(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[str]) -> None:
    jit_run_leaves_no_password(home, tmp_path, capsys, captured, 2_000)


@pytest.mark.slow
def test_a_jit_run_of_ten_thousand_leaves_no_password_anywhere(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    unthrottled(monkeypatch)
    jit_run_leaves_no_password(home, tmp_path, capsys, captured, 10_000)


def test_export_without_jit_migration_shows_no_progress(home: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    prepare_tenant(home)
    assert main(["create", str(customers(tmp_path / "in.csv", 3)), "--jit-migration", FLAG, "--quiet"]) == 0
    assert main(["export", "--summary", "--out-dir", str(tmp_path / "e"), "--quiet"]) == 0
    assert "Password migration" not in capsys.readouterr().out
    assert "password_migration" not in json.loads((tmp_path / "e" / "summary.json").read_text())["counts"]


def test_emulator_migrates_the_customers_named(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prop = prepare_tenant(home)
    assert main(["create", str(customers(tmp_path / "in.csv", 3)), "--jit-migration", FLAG, "--quiet"]) == 0
    first = sorted(u["userPrincipalName"] for u in live_users(home))[0]
    db = str(home / "emulator.db")
    assert main(["emulator", "migrate-passwords", FLAG, first, "--db", db]) == 0
    flags = {u["userPrincipalName"]: u[prop] for u in live_users(home)}
    assert flags[first] is False and sorted(flags.values()) == [False, True, True]
    # A customer migrates once: naming it again, or naming nobody's UPN, changes nothing.
    capsys.readouterr()
    assert main(["emulator", "migrate-passwords", FLAG, first, "--db", db]) == 2
    assert "is not flagged for migration" in capsys.readouterr().err
    assert main(["emulator", "migrate-passwords", FLAG, "nobody@" + first.split("@")[1], "--db", db]) == 2
    assert sorted(u[prop] for u in live_users(home)) == [False, True, True]


def test_a_row_with_a_password_or_a_false_flag_is_refused(home: Path, tmp_path: Path,
                                                          captured: list[str]) -> None:
    prepare_tenant(home)
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName,password,ext.requiresMigration,forceChangePasswordNextSignIn\r\n"
                      "a@example.com,A,,,\r\n"
                      "b@example.com,B,Legacy-Password-1!,,\r\n"
                      "c@example.com,C,,false,\r\n"
                      "d@example.com,D,,true,No\r\n"
                      "e@example.com,E,,,Yes\r\n", encoding="utf-8", newline="")
    run = tmp_path / "run"
    assert main(["create", str(source), "--jit-migration", FLAG, "--out-dir", str(run), "--quiet"]) == 1
    lines = {r["key"]: r for r in results(run)}
    assert lines["a@example.com"]["status"] == "created" and lines["d@example.com"]["status"] == "created"
    assert lines["b@example.com"]["status"] == "invalid"
    assert "legacy password is checked by the custom authentication extension" in lines["b@example.com"]["error_message"]
    assert lines["c@example.com"]["status"] == "invalid"
    assert "ext.requiresMigration: --jit-migration sets this flag to true" in lines["c@example.com"]["error_message"]
    assert lines["e@example.com"]["status"] == "invalid"
    assert "forceChangePasswordNextSignIn" in lines["e@example.com"]["error_message"]
    assert not (run / "passwords.csv").exists()
    assert "Legacy-Password-1!" not in (run / "results.csv").read_text()
    assert len(live_users(home)) == 2


@pytest.mark.parametrize(("data_type", "declared", "said"), [
    ("Boolean", False, "the tenant has no custom attribute requiresMigration; its attributes: loyaltyId (String)"),
    ("String", True, "the custom attribute requiresMigration is a String"),
])
def test_the_flag_must_exist_and_be_a_boolean(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              data_type: str, declared: bool, said: str) -> None:
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        store.add_extension_property(tenant.id, "loyaltyId", "String")
        if declared:
            store.add_extension_property(tenant.id, FLAG, data_type)
    finally:
        store.close()
    source = customers(tmp_path / "in.csv", 2)
    for dry in ([], ["--dry-run"]):
        run = tmp_path / f"run{len(dry)}"
        assert main(["create", str(source), "--jit-migration", FLAG, "--out-dir", str(run), "--quiet", *dry]) == 2
        assert said in capsys.readouterr().err
        assert not run.exists() or not any(run.iterdir())
    assert live_users(home) == []


def test_without_a_listener_the_run_says_customers_cannot_sign_in(home: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    prepare_tenant(home, listener=False)
    run = tmp_path / "run"
    assert main(["create", str(customers(tmp_path / "in.csv", 2)), "--jit-migration", FLAG, "--out-dir", str(run),
                 "--quiet"]) == 0
    said = "no password-submit listener reads requiresMigration: customers cannot sign in until one does"
    assert said in capsys.readouterr().err


def test_a_dry_run_checks_and_plans_without_making_a_password(home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              captured: list[str]) -> None:
    prepare_tenant(home)
    run = tmp_path / "run"
    assert main(["create", str(customers(tmp_path / "in.csv", 3)), "--jit-migration", FLAG, "--dry-run",
                 "--out-dir", str(run), "--quiet"]) == 0
    assert "reads requiresMigration" in capsys.readouterr().err
    assert captured == [] and live_users(home) == []
    assert (run / "plan.csv").exists() and not (run / "passwords.csv").exists()


@pytest.mark.parametrize("marked", [False, True])
def test_resume_after_a_crash_mid_jit_run_replaces_no_password(home: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               captured: list[str], marked: bool) -> None:
    """Row 1 reached the directory but its answer died with the process; row 2 never arrived.
    A JIT customer's password is lost by design: resume reports it created, with no password
    note, sets no new password and writes no passwords.csv (`marked`: even if the journal said
    the row carried a generated password)."""
    prop = prepare_tenant(home)
    source = customers(tmp_path / "in.csv", 2)
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        first = Directory(store, time.time).create(tenant, {
            "displayName": "Customer 0", "passwordPolicies": "DisablePasswordExpiration", prop: True,
            "identities": [{"signInType": "emailAddress", "issuer": tenant.default_domain,
                            "issuerAssignedId": "c0@example.com"}],
            "passwordProfile": {"password": "Random-Lock-Password-1!", "forceChangePasswordNextSignIn": False}})
    finally:
        store.close()
    run = tmp_path / "run"
    run.mkdir()
    journal = Journal(run)
    journal.set_meta(request=asdict(RunRequest(verb="create", input=str(source.resolve()), jit_migration=FLAG)),
                     fingerprint=hashlib.sha256(source.read_bytes()).hexdigest(), target="local",
                     started=time.time() - 10)
    journal.mark_sent([SentRow(1, "c0@example.com", time.time() - 5, marked, 1)])
    journal.close()
    assert main(["resume", str(run), "--quiet"]) == 0
    out = capsys.readouterr()
    lines = {int(r["row"]): r for r in results(run)}
    assert lines[1]["status"] == "created" and lines[1]["object_id"] == first["id"]
    assert lines[1]["error_message"] == "" and lines[1]["error_code"] == ""
    assert lines[2]["status"] == "created"
    assert not (run / "passwords.csv").exists()
    assert len(captured) == 1  # row 2's lock; nothing made to "replace" row 1's
    assert scan_for_secrets(run, passwords=captured, texts={"stdout": out.out, "stderr": out.err}) == []
    users = {u["id"]: u for u in live_users(home)}
    assert len(users) == 2 and all(u[prop] is True for u in users.values())


@pytest.mark.parametrize(("removed", "status", "said"), [
    ("EventListener.Read.All", 0, "whether a password-submit listener reads requiresMigration could not be checked "
                                  "(the token lacks EventListener.Read.All)"),
    # A permission a run lacks is exit 3, as for any other (batch/run/attributes.py CatalogReading.required).
    ("Application.Read.All", 3, "lacks the application permission Application.Read.All. Grant Application.Read.All"),
])
def test_a_start_check_that_cannot_read_says_what_to_grant(home: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           removed: str, status: int, said: str) -> None:
    prepare_tenant(home)
    store = Store(home / "emulator.db")
    try:
        app = store.default_app()
        store.set_app_roles(app.client_id, [r for r in app.roles if r != removed])
    finally:
        store.close()
    run = tmp_path / "run"
    assert main(["create", str(customers(tmp_path / "in.csv", 2)), "--jit-migration", FLAG, "--out-dir", str(run),
                 "--quiet"]) == status
    assert said in capsys.readouterr().err
    assert len(live_users(home)) == (2 if status == 0 else 0)


def test_export_refuses_an_attribute_the_tenant_lacks(home: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    prepare_tenant(home)
    assert main(["export", "--summary", "--jit-migration", "toBeMigrated", "--out-dir", str(tmp_path / "e"),
                 "--quiet"]) == 2
    assert "the tenant has no custom attribute toBeMigrated; its attributes: loyaltyId (String), requiresMigration " \
        "(Boolean)" \
        in capsys.readouterr().err


# --- review findings 4, 5, 7, 11, 13(d) -------------------------------------------------------------

LEGACY = "Legacy-Password-1!"


def _xlsx(path: Path, rows: list[list[str]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "semicolon csv", "xlsx"])
def test_rows_bringing_passwords_leave_no_password_in_any_file_and_retry_csv_blanks_it(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[str], kind: str) -> None:
    """retry.csv keeps the refused rows (to be fixed and run again) but never their password:
    with JIT the password is the legacy system's to check, written nowhere."""
    prepare_tenant(home)
    rows = [["signInName", "displayName", "password"], ["a@example.com", "A", ""],
            ["b@example.com", "B, the second", LEGACY], ["c@example.com", "C", f"{LEGACY}\"x"]]
    if kind == "xlsx":
        source = _xlsx(tmp_path / "in.xlsx", rows)
    else:
        delimiter = ";" if kind.startswith("semicolon") else ","
        source = tmp_path / "in.csv"
        with source.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, delimiter=delimiter).writerows(rows)
    run = tmp_path / "run"
    assert main(["create", str(source), "--jit-migration", FLAG, "--out-dir", str(run), "--quiet"]) == 1
    out = capsys.readouterr()
    delimiter = ";" if kind.startswith("semicolon") else ","  # the run's files follow the input's
    with (run / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        lines = {r["key"]: r for r in csv.DictReader(handle, delimiter=delimiter)}
    assert lines["a@example.com"]["status"] == "created"
    for key in ("b@example.com", "c@example.com"):
        assert lines[key]["status"] == "invalid"
        assert "retry.csv has this row with the cell emptied" in lines[key]["error_message"]
    assert scan_for_secrets(run, passwords=[*captured, LEGACY], texts={"stdout": out.out, "stderr": out.err}) == []
    for path in run.rglob("*"):
        assert not path.is_file() or LEGACY.encode() not in path.read_bytes(), path
    with (run / "retry.csv").open(newline="", encoding="utf-8-sig") as handle:
        kept = list(csv.reader(handle, delimiter=delimiter))
    assert kept == [rows[0], ["b@example.com", "B, the second", ""], ["c@example.com", "C", ""]]


def test_a_social_only_customer_is_created_without_the_flag_and_said_so(home: Path, tmp_path: Path,
                                                                        captured: list[str]) -> None:
    """A customer who signs in only with Google has no password to migrate: no lock, no flag."""
    prop = prepare_tenant(home)
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName,federatedIssuer,federatedId\r\n"
                      "a@example.com,A,,\r\n"
                      ",Social,google.com,108123456789\r\n", encoding="utf-8", newline="")
    run = tmp_path / "run"
    assert main(["create", str(source), "--jit-migration", FLAG, "--out-dir", str(run), "--quiet"]) == 0
    lines = {int(r["row"]): r for r in results(run)}
    assert lines[1]["status"] == "created" and lines[1]["error_message"] == ""
    assert lines[2]["status"] == "created"
    assert "signs in only with a federated identity: no password to migrate, created without the --jit-migration " \
        "flag" in lines[2]["error_message"]
    users = {u["displayName"]: u for u in live_users(home)}
    assert users["A"][prop] is True
    assert prop not in users["Social"] and "passwordProfile" not in users["Social"]
    assert len(captured) == 1  # A's lock only


@pytest.mark.parametrize("argv", [["create", "IN", "--jit-migration", ""], ["create", "IN", "--jit-migration", "  "],
                                  ["create", "IN", "--legacy-id-attribute", ""],
                                  ["export", "--summary", "--jit-migration", ""]])
def test_an_empty_attribute_name_is_refused_rather_than_read_as_no_option(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[str], argv: list[str]) -> None:
    """`--jit-migration ""` made a plain create: passwords generated, passwords.csv written."""
    prepare_tenant(home)
    source = customers(tmp_path / "in.csv", 2)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        main([str(source) if a == "IN" else a for a in argv] + ["--out-dir", str(run), "--quiet"])
    assert stopped.value.code == 2
    assert "name a custom attribute" in capsys.readouterr().err
    assert captured == [] and live_users(home) == [] and not run.exists()


@pytest.mark.parametrize("status", [429, 404, 503, 0])
def test_a_listener_listing_that_failed_says_it_could_not_be_checked(status: int) -> None:
    """Only a listing is evidence that no listener reads the flag."""
    from batch.graph import GraphResult
    from batch.verbs.attributes import Attribute
    from batch.verbs.jit import listener_note
    attribute = Attribute(FLAG, f"extension_{'a' * 32}_{FLAG}", "Boolean")
    note = listener_note(GraphResult(status, {}, {"error": {"code": "x"}}, 1, error_code="x"), attribute)
    assert note.startswith(f"whether a password-submit listener reads {FLAG} could not be checked (HTTP {status} x)"
                           if status else f"whether a password-submit listener reads {FLAG} could not be checked "
                                          "(no answer x)")
    assert "no password-submit listener reads" not in note


def test_export_refuses_a_flag_that_is_not_a_boolean(home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    prepare_tenant(home)
    assert main(["export", "--summary", "--jit-migration", "loyaltyId", "--out-dir", str(tmp_path / "e"),
                 "--quiet"]) == 2
    assert "the custom attribute loyaltyId is a String; the migration handler reads a Boolean flag" \
        in capsys.readouterr().err
