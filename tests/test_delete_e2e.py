"""`entra-batch delete` on the built-in emulator: keys of every kind, idempotent re-runs,
unknown keys, the admin center's template, confirmation, and reconciling after a crash."""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from secret_scan import scan_for_secrets

from batch.cli import main
from batch.emulator import Store
from batch.outcome import SentRow
from batch.run.journal import Journal
from batch.run.request import RunRequest

CREATE = "signInType,signInName,displayName\r\n" + "".join(
    f"emailAddress,c{i}@example.com,Customer {i}\r\n" for i in range(1, 7))


def results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def state(home: Path) -> tuple[int, int]:
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        return store.count_users(tenant.id, "live"), store.count_users(tenant.id, "deleted")
    finally:
        store.close()


@pytest.fixture
def created(home: Path, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "create.csv").write_text(CREATE, encoding="utf-8", newline="")
    assert main(["create", str(tmp_path / "create.csv"), "--out-dir", str(tmp_path / "created"), "--quiet"]) == 0
    return {r["key"]: r["object_id"] for r in results(tmp_path / "created")}


def test_delete_by_every_kind_of_key_then_again(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    store = Store(home / "emulator.db")
    upn = store.user(store.tenants()[0].id, created["c2@example.com"]).data["userPrincipalName"]  # type: ignore[union-attr]
    store.close()
    (tmp_path / "del.csv").write_text(
        "objectId,userPrincipalName,signInName\r\n"
        f"{created['c1@example.com']},,\r\n,{upn},\r\n,,C3@example.com\r\n,,nobody@example.com\r\n"
        ",,c3@example.com\r\nnot-a-guid,,\r\n", encoding="utf-8", newline="")
    assert main(["delete", str(tmp_path / "del.csv"), "--out-dir", str(tmp_path / "d1"), "--quiet"]) == 1
    lines = results(tmp_path / "d1")
    assert [r["status"] for r in lines] == ["deleted", "deleted", "deleted", "failed", "invalid", "invalid"]
    assert lines[0]["object_id"] == created["c1@example.com"] and "restorable until" in lines[0]["error_message"]
    assert lines[3]["error_code"] == "Request_ResourceNotFound"
    assert "already in row 3 of this file" in lines[4]["error_message"]
    assert "not an object id" in lines[5]["error_message"]
    assert state(home) == (3, 3)
    # Running the same file again changes nothing and fails nothing that was deleted.
    assert main(["delete", str(tmp_path / "del.csv"), "--out-dir", str(tmp_path / "d2"), "--quiet"]) == 1
    again = results(tmp_path / "d2")
    assert [r["status"] for r in again[:3]] == ["skipped"] * 3
    assert all("already deleted on" in r["error_message"] for r in again[:3])
    assert state(home) == (3, 3)


def test_the_portal_delete_template_works_as_downloaded(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    store = Store(home / "emulator.db")
    tenant = store.tenants()[0]
    upns = [store.user(tenant.id, created[f"c{i}@example.com"]).data["userPrincipalName"] for i in (4, 5)]  # type: ignore[union-attr]
    store.close()
    (tmp_path / "portal.csv").write_text("version:v1.0,\r\nUser name [userPrincipalName] Required\r\n"
                                         + "".join(u + "\r\n" for u in upns), encoding="utf-8", newline="")
    assert main(["delete", str(tmp_path / "portal.csv"), "--out-dir", str(tmp_path / "p"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "p")] == ["deleted", "deleted"]


def test_more_than_100_rows_need_yes(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.csv"
    big.write_text("signInName\r\n" + "".join(f"x{i}@example.com\r\n" for i in range(101)), encoding="utf-8")
    assert main(["delete", str(big), "--quiet"]) == 2
    assert "pass --yes to confirm" in capsys.readouterr().err
    # A dry run asks nothing; it looks the keys up, and nobody has them: every row would fail.
    assert main(["delete", str(big), "--quiet", "--dry-run", "--out-dir", str(tmp_path / "dry")]) == 1
    assert {r["status"] for r in results(tmp_path / "dry")} == {"skipped"}


def test_resume_counts_a_delete_that_happened_before_the_crash(home: Path, tmp_path: Path,
                                                               created: dict[str, str]) -> None:
    source = tmp_path / "del.csv"
    source.write_text("signInName\r\nc1@example.com\r\nc2@example.com\r\n", encoding="utf-8", newline="")
    # Row 1's delete reached Graph, its answer was lost with the process; row 2 never left.
    sent_at = time.time() - 1
    store = Store(home / "emulator.db")
    from batch.emulator.directory import Directory

    Directory(store, time.time).delete(store.tenants()[0], created["c1@example.com"])
    store.close()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="delete", input=str(source.resolve()))),
                     fingerprint=hashlib.sha256(source.read_bytes()).hexdigest(), target="local", started=sent_at)
    journal.mark_sent([SentRow(1, "c1@example.com", sent_at, False, 1), SentRow(2, "c2@example.com", sent_at, False, 1)])
    journal.close()
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    assert [(r["status"], r["object_id"]) for r in results(run_dir)] == [
        ("deleted", created["c1@example.com"]), ("deleted", created["c2@example.com"])]


def delete_all(tmp_path: Path, keys: list[str], out: str) -> None:
    (tmp_path / f"{out}.csv").write_text("signInName\r\n" + "".join(k + "\r\n" for k in keys), encoding="utf-8",
                                         newline="")
    assert main(["delete", str(tmp_path / f"{out}.csv"), "--out-dir", str(tmp_path / out), "--quiet"]) == 0


def test_restore_by_id_and_sign_in_name_with_a_conflict_and_a_live_one(home: Path, tmp_path: Path,
                                                                       created: dict[str, str]) -> None:
    delete_all(tmp_path, ["c1@example.com", "c2@example.com", "c3@example.com"], "del")
    # Someone takes c3's sign-in name while c3 is deleted.
    (tmp_path / "again.csv").write_text("signInName,displayName\r\nc3@example.com,New C3\r\n", encoding="utf-8")
    assert main(["create", str(tmp_path / "again.csv"), "--out-dir", str(tmp_path / "again"), "--quiet"]) == 0
    new_c3 = results(tmp_path / "again")[0]["object_id"]
    (tmp_path / "restore.csv").write_text(
        "objectId,signInName\r\n"
        f"{created['c1@example.com']},\r\n,c2@example.com\r\n,c3@example.com\r\n,c4@example.com\r\n"
        ",ghost@example.com\r\n", encoding="utf-8", newline="")
    assert main(["restore", str(tmp_path / "restore.csv"), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 1
    lines = results(tmp_path / "r")
    assert [r["status"] for r in lines] == ["restored", "restored", "failed", "skipped", "failed"]
    assert lines[0]["object_id"] == created["c1@example.com"] and lines[1]["object_id"] == created["c2@example.com"]
    assert lines[2]["error_code"] == "ObjectConflict" and new_c3 in lines[2]["error_message"]
    assert "is live" in lines[3]["error_message"]
    assert "not in deleted items" in lines[4]["error_message"]
    assert state(home) == (6, 1)
    # Restoring again: the live ones are skipped, never failed.
    assert main(["restore", str(tmp_path / "restore.csv"), "--out-dir", str(tmp_path / "r2"), "--quiet"]) == 1
    assert [r["status"] for r in results(tmp_path / "r2")][:2] == ["skipped", "skipped"]


def test_the_portal_restore_template_works_as_downloaded(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    delete_all(tmp_path, ["c5@example.com"], "del")
    (tmp_path / "portal.csv").write_text("version:v1.0\r\nObject ID [objectId] Required\r\n"
                                         f"{created['c5@example.com']}\r\n", encoding="utf-8", newline="")
    assert main(["restore", str(tmp_path / "portal.csv"), "--out-dir", str(tmp_path / "p"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "p")] == ["restored"]


def test_purge_needs_yes_erases_deleted_ones_and_refuses_live_ones(home: Path, tmp_path: Path,
                                                                   created: dict[str, str],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    delete_all(tmp_path, ["c1@example.com", "c2@example.com"], "del")
    purge = tmp_path / "purge.csv"
    purge.write_text("signInName\r\nc1@example.com\r\nc2@example.com\r\nc3@example.com\r\n", encoding="utf-8",
                     newline="")
    assert main(["purge", str(purge), "--quiet"]) == 2
    assert "cannot be undone; pass --yes" in capsys.readouterr().err
    assert main(["purge", str(purge), "--dry-run", "--out-dir", str(tmp_path / "dry"), "--quiet"]) == 1
    assert [r["error_message"].split(" (")[0] for r in results(tmp_path / "dry")] == [
        "dry run: would purge", "dry run: would purge", "dry run: would fail"]  # c3 is live
    assert state(home) == (4, 2)
    assert main(["purge", str(purge), "--yes", "--out-dir", str(tmp_path / "p1"), "--quiet"]) == 1
    lines = results(tmp_path / "p1")
    assert [r["status"] for r in lines] == ["purged", "purged", "failed"]
    assert lines[2]["error_code"] == "NotDeleted"
    assert state(home) == (4, 0)
    assert main(["purge", str(purge), "--yes", "--out-dir", str(tmp_path / "p2"), "--quiet"]) == 1
    assert [r["status"] for r in results(tmp_path / "p2")][:2] == ["skipped", "skipped"]


def passwords_of(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "passwords.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_a_customer_named_twice_gets_one_password(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    # By its objectId in one row and its sign-in name in another, a customer got two resets:
    # two passwords in passwords.csv, one of them dead (found by a review). The dry run says so too.
    (tmp_path / "twice.csv").write_text(f"objectId,signInName\r\n{created['c1@example.com']},\r\n,c1@example.com\r\n"
                                        ",c2@example.com\r\n", encoding="utf-8", newline="")
    assert main(["reset-password", str(tmp_path / "twice.csv"), "--out-dir", str(tmp_path / "dry"), "--quiet",
                 "--dry-run"]) == 1
    with (tmp_path / "dry" / "plan.csv").open(newline="", encoding="utf-8-sig") as handle:
        assert [r["action"] for r in csv.DictReader(handle)] == ["reset", "fail", "reset"]
    assert main(["reset-password", str(tmp_path / "twice.csv"), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 1
    lines = results(tmp_path / "r")
    assert [r["status"] for r in lines] == ["password_reset", "failed", "password_reset"]
    assert lines[1]["error_message"] == (f"the same customer as row 1 ({created['c1@example.com']}): one password "
                                         "reset per customer")
    assert [s["row"] for s in passwords_of(tmp_path / "r")] == ["1", "3"]


def test_reset_password_gives_temporary_passwords(home: Path, tmp_path: Path, created: dict[str, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import stat

    (tmp_path / "reset.csv").write_text(
        f"objectId,signInName\r\n{created['c1@example.com']},\r\n,c2@example.com\r\n,ghost@example.com\r\n",
        encoding="utf-8", newline="")
    assert main(["reset-password", str(tmp_path / "reset.csv"), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 1
    lines = results(tmp_path / "r")
    assert [r["status"] for r in lines] == ["password_reset", "password_reset", "failed"]
    secrets = passwords_of(tmp_path / "r")
    assert [(s["row"], s["object_id"]) for s in secrets] == [("1", created["c1@example.com"]),
                                                             ("2", created["c2@example.com"])]
    assert stat.S_IMODE((tmp_path / "r" / "passwords.csv").stat().st_mode) == 0o600
    assert not any(s["password"] in (tmp_path / "r" / "results.csv").read_text() for s in secrets)
    store = Store(home / "emulator.db")
    user = store.user(store.tenants()[0].id, created["c1@example.com"]).data  # type: ignore[union-attr]
    store.close()
    assert user["passwordProfile"]["forceChangePasswordNextSignIn"] is True
    (tmp_path / "one.csv").write_text("signInName\r\nc3@example.com\r\n", encoding="utf-8", newline="")
    assert main(["reset-password", str(tmp_path / "one.csv"), "--out-dir", str(tmp_path / "r2"), "--quiet",
                 "--no-force-change"]) == 0
    store = Store(home / "emulator.db")
    user = store.user(store.tenants()[0].id, created["c3@example.com"]).data  # type: ignore[union-attr]
    client_secret = store.default_app().secret
    store.close()
    assert user["passwordProfile"]["forceChangePasswordNextSignIn"] is False
    # No password of either run, nor the app's secret or a token, anywhere else (issue 15).
    out = capsys.readouterr()
    every = [s["password"] for s in secrets + passwords_of(tmp_path / "r2")]
    for run in ("r", "r2"):
        assert scan_for_secrets(tmp_path / run, passwords=every, client_secrets=[client_secret],
                                texts={"stdout": out.out, "stderr": out.err}) == []


def test_resume_of_a_reset_keeps_a_password_on_file_and_redoes_the_rest(home: Path, tmp_path: Path,
                                                                        created: dict[str, str]) -> None:
    from batch.run.files import PasswordsFile

    source = tmp_path / "reset.csv"
    source.write_text("signInName\r\nc1@example.com\r\nc2@example.com\r\n", encoding="utf-8", newline="")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="reset-password", input=str(source.resolve()))),
                     fingerprint=hashlib.sha256(source.read_bytes()).hexdigest(), target="local", started=time.time())
    journal.mark_sent([SentRow(1, "c1@example.com", time.time(), True, 1),
                       SentRow(2, "c2@example.com", time.time(), True, 1)])
    journal.close()
    # Row 1's password reached the file before the crash; row 2's did not.
    PasswordsFile(run_dir).append([(1, "c1@example.com", created["c1@example.com"], "Kept-Password-1!")])
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    assert [r["status"] for r in results(run_dir)] == ["password_reset", "password_reset"]
    assert [s["row"] for s in passwords_of(run_dir)] == ["1", "2"]


def user_data(home: Path, object_id: str) -> dict:
    store = Store(home / "emulator.db")
    try:
        return store.user(store.tenants()[0].id, object_id).data  # type: ignore[union-attr]
    finally:
        store.close()


def test_update_changes_what_the_row_says_and_nothing_else(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    (tmp_path / "up.csv").write_text(
        "signInName,displayName,surname,blockSignIn,usageLocation,jobTitle,newSignInName\r\n"
        "c1@example.com,Customer One,Un,Yes,fr,,\r\n"          # block, rename, usage location
        "c2@example.com,,,,,#clear,\r\n"                         # clear a property never set: already so
        "c3@example.com,,,,,Engineer,c3.new@example.com\r\n"     # a new sign-in name
        "c4@example.com,Customer 4,,,,,\r\n"                     # the same value again
        "ghost@example.com,X,,,,,\r\n"
        "c5@example.com,,,,XX,,\r\n", encoding="utf-8", newline="")
    assert main(["update", str(tmp_path / "up.csv"), "--out-dir", str(tmp_path / "u"), "--quiet"]) == 1
    lines = results(tmp_path / "u")
    assert [r["status"] for r in lines] == ["updated", "skipped", "updated", "skipped", "failed", "invalid"]
    assert lines[0]["error_message"] == "changed: accountEnabled, displayName, surname, usageLocation"
    one = user_data(home, created["c1@example.com"])
    assert (one["displayName"], one["surname"], one["accountEnabled"], one["usageLocation"]) == \
        ("Customer One", "Un", False, "FR")
    three = user_data(home, created["c3@example.com"])
    names = [(i["signInType"], i["issuerAssignedId"]) for i in three["identities"]]
    assert ("emailAddress", "c3.new@example.com") in names and ("emailAddress", "c3@example.com") not in names
    assert any(kind == "userPrincipalName" for kind, _ in names)  # the other identities are kept
    assert three["jobTitle"] == "Engineer"
    # Running it again: nothing left to change.
    (tmp_path / "again.csv").write_text("signInName,displayName,blockSignIn\r\nc1@example.com,Customer One,Yes\r\n",
                                        encoding="utf-8", newline="")
    assert main(["update", str(tmp_path / "again.csv"), "--out-dir", str(tmp_path / "u2"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "u2")] == ["skipped"]


def test_update_clears_with_the_marker_and_refuses_to_clear_the_name(home: Path, tmp_path: Path,
                                                                    created: dict[str, str]) -> None:
    (tmp_path / "set.csv").write_text("signInName,jobTitle\r\nc1@example.com,Engineer\r\n", encoding="utf-8")
    assert main(["update", str(tmp_path / "set.csv"), "--out-dir", str(tmp_path / "s"), "--quiet"]) == 0
    (tmp_path / "clear.csv").write_text("signInName,jobTitle,displayName\r\nc1@example.com,#clear,\r\n"
                                        "c2@example.com,,#clear\r\n", encoding="utf-8", newline="")
    assert main(["update", str(tmp_path / "clear.csv"), "--out-dir", str(tmp_path / "c"), "--quiet"]) == 1
    first, second = results(tmp_path / "c")
    assert first["status"] == "updated" and user_data(home, created["c1@example.com"])["jobTitle"] is None
    assert second["status"] == "invalid" and "displayName cannot be cleared" in second["error_message"]


def test_update_dry_run_writes_the_plan_and_changes_nothing(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    (tmp_path / "up.csv").write_text("signInName,displayName,blockSignIn,city\r\nc1@example.com,Customer One,Yes,\r\n"
                                     "c2@example.com,Customer 2,,\r\nghost@example.com,X,,\r\n",
                                     encoding="utf-8", newline="")
    assert main(["update", str(tmp_path / "up.csv"), "--dry-run", "--out-dir", str(tmp_path / "plan"), "--quiet"]) == 1
    assert [(r["status"], r["error_message"]) for r in results(tmp_path / "plan")] == [
        ("skipped", "dry run: would update (2 properties differ: blockSignIn, displayName)"),
        ("skipped", "dry run: would skip (already up to date)"),
        ("skipped", "dry run: would fail (no customer with this key)")]
    with (tmp_path / "plan" / "plan.csv").open(newline="", encoding="utf-8-sig") as handle:
        plan = [(p["row"], p["action"], p["object_id"], p["changes"]) for p in csv.DictReader(handle)]
    assert plan == [("1", "update", created["c1@example.com"],
                     "blockSignIn: No \u2192 Yes; displayName: 'Customer 1' \u2192 'Customer One'"),
                    ("2", "skip", created["c2@example.com"], ""), ("3", "fail", "", "")]
    one = user_data(home, created["c1@example.com"])
    assert (one["displayName"], one["accountEnabled"]) == ("Customer 1", True)


def test_an_ambiguous_key_names_the_candidates(home: Path, tmp_path: Path, created: dict[str, str]) -> None:
    # The same sign-in name deleted twice: two customers in deleted items answer to it.
    delete_all(tmp_path, ["c1@example.com"], "d1")
    (tmp_path / "again.csv").write_text("signInName,displayName\r\nc1@example.com,Again\r\n", encoding="utf-8")
    assert main(["create", str(tmp_path / "again.csv"), "--out-dir", str(tmp_path / "again"), "--quiet"]) == 0
    second = results(tmp_path / "again")[0]["object_id"]
    delete_all(tmp_path, ["c1@example.com"], "d2")
    (tmp_path / "restore.csv").write_text("signInName\r\nc1@example.com\r\n", encoding="utf-8", newline="")
    assert main(["restore", str(tmp_path / "restore.csv"), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 1
    [line] = results(tmp_path / "r")
    assert line["status"] == "failed" and line["error_code"] == "AmbiguousKey"
    assert created["c1@example.com"] in line["error_message"] and second in line["error_message"]
