"""The lifecycle end to end on the built-in emulator: create the sample, list it, update some,
block some, reset some, delete some, restore them, purge one — and at every step results.csv
and the directory agree."""

from __future__ import annotations

import csv
from pathlib import Path

from batch.cli import main
from batch.emulator import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "customers.csv"


def results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def directory(home: Path, state: str = "live") -> dict[str, dict]:
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        return {r.id: r.data for r in store.select_users(tenant.id, state, limit=100_000)}
    finally:
        store.close()


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\r\n" + "".join(r + "\r\n" for r in rows), encoding="utf-8", newline="")
    return path


def test_the_customer_lifecycle_round_trip(home: Path, tmp_path: Path) -> None:
    assert main(["create", str(SAMPLE), "--out-dir", str(tmp_path / "1-create"), "--quiet"]) == 1
    created = {r["key"].lower(): r["object_id"] for r in results(tmp_path / "1-create") if r["status"] == "created"}
    assert set(directory(home)) == set(created.values())

    # A listing of the directory (what `export` will write) is valid input for the other verbs.
    listing = [f"{object_id},{user['userPrincipalName']}" for object_id, user in directory(home).items()]
    write(tmp_path / "listing.csv", "objectId,userPrincipalName", listing)
    assert main(["validate", str(tmp_path / "listing.csv"), "--verb", "update"]) == 0  # valid, nothing to change
    assert main(["validate", str(tmp_path / "listing.csv"), "--verb", "delete"]) == 0

    write(tmp_path / "update.csv", "signInName,jobTitle,blockSignIn",
          ["ada.lovelace@example.com,Analyst,", "grace.hopper@example.com,Admiral,Yes", "alan.turing@example.co.uk,,Yes"])
    assert main(["update", str(tmp_path / "update.csv"), "--out-dir", str(tmp_path / "2-update"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "2-update")] == ["updated"] * 3
    users = directory(home)
    assert users[created["ada.lovelace@example.com"]]["jobTitle"] == "Analyst"
    assert users[created["grace.hopper@example.com"]]["accountEnabled"] is False
    assert users[created["alan.turing@example.co.uk"]]["accountEnabled"] is False

    write(tmp_path / "reset.csv", "signInName", ["ada.lovelace@example.com", "bjorn_olstad"])
    assert main(["reset-password", str(tmp_path / "reset.csv"), "--out-dir", str(tmp_path / "3-reset"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "3-reset")] == ["password_reset"] * 2
    assert (tmp_path / "3-reset" / "passwords.csv").read_text().count("\n") == 3

    gone = ["grace.hopper@example.com", "alan.turing@example.co.uk", "marie.curie@example.fr"]
    write(tmp_path / "delete.csv", "signInName", gone)
    assert main(["delete", str(tmp_path / "delete.csv"), "--out-dir", str(tmp_path / "4-delete"), "--quiet"]) == 0
    assert {created[g] for g in gone} == set(directory(home, "deleted"))

    write(tmp_path / "restore.csv", "objectId", [created[g] for g in gone[:2]])
    assert main(["restore", str(tmp_path / "restore.csv"), "--out-dir", str(tmp_path / "5-restore"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "5-restore")] == ["restored"] * 2
    assert directory(home)[created["grace.hopper@example.com"]]["accountEnabled"] is False  # restored as it was

    write(tmp_path / "purge.csv", "signInName", [gone[2]])
    assert main(["purge", str(tmp_path / "purge.csv"), "--yes", "--out-dir", str(tmp_path / "6-purge"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "6-purge")] == ["purged"]
    assert directory(home, "deleted") == {}
    assert set(directory(home)) == set(created.values()) - {created[gone[2]]}
