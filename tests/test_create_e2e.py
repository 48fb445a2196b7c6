"""`entra-batch create` end to end on the built-in emulator, in process (the default target
when no tenant is configured): the run folder's contract and the directory's final state."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest
from secret_scan import input_passwords, scan_for_secrets

from batch.cli import main
from batch.emulator import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "customers.csv"
HEADER = "signInType,signInName,displayName,givenName,surname,blockSignIn,usageLocation,mail,password\r\n"


def results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def live_users(home: Path) -> list[dict]:
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        return [r.data for r in store.select_users(tenant.id, "live", limit=100_000)]
    finally:
        store.close()


def write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\r\n" for r in rows), encoding="utf-8", newline="")
    return path


def test_sample_file_creates_every_valid_customer_once(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run1"
    status = main(["create", str(SAMPLE), "--out-dir", str(run), "--quiet"])
    out = capsys.readouterr()
    assert status == 1  # the sample has wrong rows on purpose
    assert "using the built-in Graph emulator" in out.err
    lines = results(run)
    assert [int(r["row"]) for r in lines] == list(range(1, 51))
    by_status: dict[str, list[int]] = {}
    for r in lines:
        by_status.setdefault(r["status"], []).append(int(r["row"]))
    assert sorted(by_status) == ["created", "invalid"]
    assert by_status["invalid"] == [43, 44, 45, 46, 47, 48, 49]
    invalid = {int(r["row"]): r["error_message"] for r in lines if r["status"] == "invalid"}
    assert "already used by row 1" in invalid[43]
    assert "is not a valid email address" in invalid[44]
    assert invalid[45] == "displayName is required"
    assert "usageLocation 'XX'" in invalid[46]
    assert "'maybe'" not in invalid[48] and "blockSignIn 'Maybe' is not Yes/No" in invalid[48]
    created = [r for r in lines if r["status"] == "created"]
    assert all(r["object_id"] and r["http_status"] == "201" for r in created)
    users = live_users(home)
    assert len(users) == 43
    assert {u["id"] for u in users} == {r["object_id"] for r in created}
    # Every generated password, and only those, in a private passwords.csv.
    pw = run / "passwords.csv"
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    with pw.open(newline="", encoding="utf-8-sig") as handle:
        secrets = list(csv.DictReader(handle))
    assert len(secrets) == 42  # row 26 brought its own password
    assert {int(s["row"]) for s in secrets} == {int(r["row"]) for r in created} - {26}
    # Nothing secret anywhere else.
    everything = (run / "results.csv").read_text() + (run / "summary.json").read_text() + out.out + out.err
    for secret in secrets:
        assert secret["password"] not in everything
    assert "Welcome-2024!" not in everything
    # The review's method (issue 15): every password, the app's secret and any token, searched
    # in every file of the run folder (the journal dumped) and in what was printed.
    store = Store(home / "emulator.db")
    client_secret = store.default_app().secret
    store.close()
    assert scan_for_secrets(run, passwords=input_passwords(SAMPLE), client_secrets=[client_secret],
                            texts={"stdout": out.out, "stderr": out.err}) == []
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"]["created"] == 43 and summary["counts"]["invalid"] == 7
    assert summary["target"] == "local" and summary["rows"] == 50


def test_a_second_run_with_on_existing_skip_creates_nothing(home: Path, tmp_path: Path) -> None:
    assert main(["create", str(SAMPLE), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 1
    before = live_users(home)
    assert main(["create", str(SAMPLE), "--out-dir", str(tmp_path / "b"), "--quiet", "--on-existing", "skip"]) == 1
    second = results(tmp_path / "b")
    assert {r["status"] for r in second} == {"skipped", "invalid"}
    assert all(r["object_id"] for r in second if r["status"] == "skipped")
    assert len(live_users(home)) == len(before)
    assert not (tmp_path / "b" / "passwords.csv").exists()


def test_existing_customers_fail_by_default_and_name_the_holder(home: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "one.csv", ["emailAddress,ada@example.com,Ada,Ada,Lovelace,No,GB,,"])
    assert main(["create", str(f), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 0
    first_id = results(tmp_path / "a")[0]["object_id"]
    assert main(["create", str(f), "--out-dir", str(tmp_path / "b"), "--quiet"]) == 1
    [line] = results(tmp_path / "b")
    assert line["status"] == "failed" and line["error_code"] == "ObjectConflict"
    assert first_id in line["error_message"] and line["object_id"] == first_id


def test_on_existing_update_changes_the_profile(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "one.csv", ["emailAddress,ada@example.com,Ada,Ada,Lovelace,No,GB,,"])
    assert main(["create", str(tmp_path / "one.csv"), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 0
    write(tmp_path / "two.csv", ["emailAddress,ADA@example.com,Ada King,Ada,King,Yes,FR,,"])
    assert main(["create", str(tmp_path / "two.csv"), "--out-dir", str(tmp_path / "b"), "--quiet",
                 "--on-existing", "update"]) == 0
    [line] = results(tmp_path / "b")
    assert line["status"] == "updated"
    [user] = live_users(home)
    assert (user["displayName"], user["surname"], user["usageLocation"], user["accountEnabled"]) == ("Ada King", "King", "FR", False)


def test_dry_run_sends_nothing(home: Path, tmp_path: Path) -> None:
    assert main(["create", str(SAMPLE), "--out-dir", str(tmp_path / "dry"), "--quiet", "--dry-run"]) == 1
    lines = results(tmp_path / "dry")
    assert {r["status"] for r in lines} == {"skipped", "invalid"}
    assert sum(r["status"] == "invalid" for r in lines) == 7
    assert not (tmp_path / "dry" / "passwords.csv").exists()
    assert live_users(home) == []


def test_validate_reports_the_same_findings(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLE), "--verb", "create"]) == 1
    out = capsys.readouterr().out
    assert out.count("row ") >= 7 and "row 45: displayName is required" in out
    assert "50 rows, 7 invalid, 43 valid" in out


def test_template_round_trips_through_validate(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "create", "--out", str(tmp_path / "t.csv")]) == 0
    header = (tmp_path / "t.csv").read_text().strip().split(",")
    assert header[:3] == ["signInType", "signInName", "displayName"]
    assert main(["template", "create", "--portal"]) == 0
    assert capsys.readouterr().out.startswith("version:v1.0\r\nName [displayName] Required,")


def test_the_portal_template_works_as_downloaded(home: Path, tmp_path: Path) -> None:
    from batch.io.columns import PORTAL_CREATE_HEADER

    portal = tmp_path / "portal.csv"
    portal.write_text(
        "version:v1.0,,,,,,,,,,,,,,,,\r\n" + PORTAL_CREATE_HEADER + "\r\n"
        "Example: Chris Green,chris@contoso.onmicrosoft.com,Pa55w.rd!,No,Chris,Green,,,,,,,,,,,\r\n"
        "Grace Hopper,grace@contoso.onmicrosoft.com,Hopper-1906!,Yes,Grace,Hopper,,,US,,,,,,,,\r\n",
        encoding="utf-8", newline="")
    assert main(["create", str(portal), "--out-dir", str(tmp_path / "p"), "--quiet"]) == 1
    example, grace = results(tmp_path / "p")
    assert example["status"] == "invalid" and "example row" in example["error_message"]
    assert grace["status"] == "created"
    [user] = live_users(home)
    assert user["userPrincipalName"] == "grace@contoso.onmicrosoft.com" and user["accountEnabled"] is False


def test_an_unreadable_file_stops_before_anything_is_sent(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("nom;courriel\r\nAda;ada@example.com\r\n", encoding="utf-8")
    assert main(["create", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "displayName" in err
    assert live_users(home) == []


def test_a_run_folder_is_not_reused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "one.csv", ["emailAddress,ada@example.com,Ada,Ada,Lovelace,No,GB,,"])
    assert main(["create", str(f), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 0
    assert main(["create", str(f), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 2
    assert "entra-batch resume" in capsys.readouterr().err


def test_batch_size_one_works_too(home: Path, tmp_path: Path) -> None:
    rows = [f"emailAddress,c{i}@example.com,C {i},C,{i},No,US,," for i in range(30)]
    f = write(tmp_path / "many.csv", rows)
    assert main(["create", str(f), "--out-dir", str(tmp_path / "r"), "--quiet", "--batch-size", "1"]) == 0
    assert [r["status"] for r in results(tmp_path / "r")] == ["created"] * 30
    assert len(live_users(home)) == 30


@pytest.mark.parametrize("verb, name, args", [("create", "create.csv", []), ("create", "create-portal.csv", ["--portal"]),
                                             ("delete", "delete.csv", []), ("delete", "delete-portal.csv", ["--portal"]),
                                             ("restore", "restore.csv", []), ("restore", "restore-portal.csv", ["--portal"]),
                                             ("purge", "purge.csv", []), ("purge", "purge-portal.csv", ["--portal"]),
                                             ("reset-password", "reset-password.csv", []),
                                             ("reset-password", "reset-password-portal.csv", ["--portal"]),
                                             ("update", "update.csv", [])])
def test_the_shipped_templates_are_current(verb: str, name: str, args: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", verb, *args]) == 0
    assert capsys.readouterr().out == (ROOT / "templates" / name).read_bytes().decode("utf-8")


def test_on_existing_update_leaves_what_the_row_does_not_say(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "one.csv", ["emailAddress,ada@example.com,Ada,Ada,Lovelace,Yes,GB,,"])
    assert main(["create", str(tmp_path / "one.csv"), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 0
    write(tmp_path / "two.csv", ["emailAddress,ada@example.com,Ada L.,Ada,Lovelace,,GB,,"])
    assert main(["create", str(tmp_path / "two.csv"), "--out-dir", str(tmp_path / "b"), "--quiet",
                 "--on-existing", "update"]) == 0
    [user] = live_users(home)
    assert user["displayName"] == "Ada L." and user["accountEnabled"] is False  # still blocked


def test_a_misaligned_row_never_shows_its_cells(home: Path, tmp_path: Path) -> None:
    from batch.io.columns import PORTAL_CREATE_HEADER

    portal = tmp_path / "portal.csv"
    portal.write_text("version:v1.0\r\n" + PORTAL_CREATE_HEADER + "\r\n"
                      "chris2@contoso.onmicrosoft.com,Sup3r-Secret!42,No,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r\r\n",
                      encoding="utf-8", newline="")
    assert main(["create", str(portal), "--out-dir", str(tmp_path / "p"), "--quiet"]) == 1
    [line] = results(tmp_path / "p")
    assert line["status"] == "invalid" and line["key"] == ""
    assert "Sup3r-Secret!42" not in (tmp_path / "p" / "results.csv").read_text()
