"""Federated identities end to end on the built-in emulator through the command line:
create (email + Google, user name + Facebook, Google only), duplicates in the file, a dry
run, and update adding a federated identity."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from emulator.server_process import running_emulator
from test_create_loopback import client_env, run_cli

from batch.cli import main
from batch.emulator import Store


def results(run_dir: Path, name: str = "results.csv") -> list[dict[str, str]]:
    with (run_dir / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def identities(home: Path) -> dict[str, list[tuple[str, str, str]]]:
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        return {u.data["displayName"]: sorted((i["signInType"], i["issuer"], i["issuerAssignedId"])
                                              for i in u.data["identities"] if i["signInType"] != "userPrincipalName")
                for u in store.select_users(tenant.id, "live", limit=100)}
    finally:
        store.close()


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\r\n" + "".join(r + "\r\n" for r in rows), encoding="utf-8", newline="")
    return path


def test_create_and_update_federated_identities(home: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "social.csv", "signInName,displayName,Social issuer,Social ID", [
        "ada@example.com,Ada,google.com,1001",
        "alan_t,Alan,facebook.com,2002",
        ",Gina,google.com,3003",
        ",Gina Again,Google.com,3003",
    ])
    assert main(["create", str(source), "--dry-run", "--out-dir", str(tmp_path / "plan"), "--quiet"]) == 1
    planned = results(tmp_path / "plan", "plan.csv")
    assert [p["action"] for p in planned] == ["create", "create", "create", "fail"]
    assert planned[2]["reason"] == "no customer has this federated identity"

    assert main(["create", str(source), "--out-dir", str(tmp_path / "1"), "--quiet"]) == 1
    lines = results(tmp_path / "1")
    assert [(r["key"], r["status"]) for r in lines] == [
        ("ada@example.com", "created"), ("alan_t", "created"), ("google.com/3003", "created"),
        ("Google.com/3003", "invalid")]
    assert lines[3]["error_message"] == "federated identity 'Google.com/3003' is already used by row 3 of this file"
    assert {r["sign_in_name"] for r in results(tmp_path / "1", "passwords.csv")} == {"ada@example.com", "alan_t"}
    domain = "contoso.onmicrosoft.com"
    assert identities(home) == {
        "Ada": [("emailAddress", domain, "ada@example.com"), ("federated", "google.com", "1001")],
        "Alan": [("federated", "facebook.com", "2002"), ("userName", domain, "alan_t")],
        "Gina": [("federated", "google.com", "3003")]}

    # Gina's customer exists: a second run finds her by her Google identity.
    assert main(["create", str(source), "--on-existing", "skip", "--out-dir", str(tmp_path / "2"), "--quiet"]) == 1
    assert results(tmp_path / "2")[2]["status"] == "skipped"

    changes = write(tmp_path / "add.csv", "signInName,federatedIssuer,federatedId", [
        "ada@example.com,facebook.com,4004", "alan_t,facebook.com,2002"])
    assert main(["update", str(changes), "--out-dir", str(tmp_path / "3"), "--quiet"]) == 0
    assert [(r["status"], r["error_message"]) for r in results(tmp_path / "3")] == [
        ("updated", "changed: identities"), ("skipped", "already up to date")]
    assert identities(home)["Ada"] == [("emailAddress", domain, "ada@example.com"),
                                       ("federated", "facebook.com", "4004"), ("federated", "google.com", "1001")]


def test_update_adds_an_exports_federated_identities_and_refuses_one_given_twice(home: Path, tmp_path: Path) -> None:
    """update reads signIn.federated as an export writes it (issue 14 item 1), adds what the
    customer lacks, and refuses a row that gives an identity an earlier row adds (finding 6)."""
    source = write(tmp_path / "people.csv", "signInName,displayName", ["ada@example.com,Ada", "alan_t,Alan"])
    assert main(["create", str(source), "--out-dir", str(tmp_path / "1"), "--quiet"]) == 0
    changes = write(tmp_path / "export.csv", "signInName,displayName,signIn.federated", [
        "ada@example.com,Ada,google.com/1001; https://idp.example.com/t/v2.0/" + "s" * 100,
        "alan_t,Alan,Google.com/1001",
        "alan_t2,Alan,facebook.com/1001"])
    assert main(["update", str(changes), "--out-dir", str(tmp_path / "2"), "--quiet"]) == 1
    assert [(r["status"], r["error_message"]) for r in results(tmp_path / "2")] == [
        ("updated", "changed: identities"),
        ("invalid", "federated identity 'Google.com/1001' is already used by row 1 of this file"),
        ("failed", "no live customer has this key")]
    assert identities(home)["Ada"] == [("emailAddress", "contoso.onmicrosoft.com", "ada@example.com"),
                                       ("federated", "google.com", "1001"),
                                       ("federated", "https://idp.example.com/t/v2.0", "s" * 100)]


@pytest.mark.parametrize("header, cells", [("federatedIssuer2,federatedId2", "google.com,1001"),
                                           ("signIn.federated", "google.com/1001")])
def test_update_checks_manage_identities_for_any_column_that_adds_one(tmp_path: Path, header: str,
                                                                       cells: str) -> None:
    """A file whose only identity columns are a numbered pair, or the export's, stops with
    exit 3 naming User.ManageIdentities.All before anything is sent (finding 13(b)): not
    403 on every PATCH mid-run."""
    db = tmp_path / "emu" / "emulator.db"
    db.parent.mkdir(parents=True)
    store = Store(db)
    editor = store.add_app(store.tenants()[0].id, ["User.ReadUpdate.All", "User.Read.All", "Organization.Read.All"],
                           display_name="editor")
    store.close()
    with running_emulator(tmp_path / "emu", db=db) as emulator:
        env = client_env(emulator, tmp_path)
        env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"] = editor.client_id, editor.secret or ""
        source = write(tmp_path / "add.csv", "signInName," + header, ["someone@example.com," + cells])
        done = run_cli(["update", str(source), "--out-dir", str(tmp_path / "run"), "--quiet"], env)
        assert done.returncode == 3, done.stderr
        assert "User.ManageIdentities.All" in done.stderr and not (tmp_path / "run" / "results.csv").exists()
