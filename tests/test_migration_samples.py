"""The README's "Migrating from a legacy system": each road's example file under sample_data/
runs on the built-in emulator with the commands the README gives, and ends as it says."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from batch.cli import main
from batch.emulator import Store

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
README = Path(__file__).resolve().parent.parent / "README.md"


def results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def passwords(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "passwords.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def live_users(home: Path) -> list[dict]:
    store = Store(home / "emulator.db")
    try:
        return [r.data for r in store.select_users(store.tenants()[0].id, "live", limit=1000)]
    finally:
        store.close()


@pytest.mark.parametrize("name", ["migration_passwords.csv", "migration_jit.csv", "migration_social.csv"])
def test_the_readme_names_each_sample(name: str) -> None:
    assert f"sample_data/{name}" in README.read_text(encoding="utf-8")


def test_known_passwords_are_kept_and_nothing_is_generated(home: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["create", str(SAMPLES / "migration_passwords.csv"), "--out-dir", str(run), "--quiet"]) == 0
    rows = results(run)
    assert [r["status"] for r in rows] == ["created"] * 5
    assert passwords(run) == []  # every password came from the file
    users = live_users(home)
    assert len(users) == 5
    assert all(u["passwordProfile"]["forceChangePasswordNextSignIn"] is False for u in users)


def test_jit_sample_needs_its_attribute_then_creates_flagged_customers(home: Path, tmp_path: Path) -> None:
    command = ["create", str(SAMPLES / "migration_jit.csv"), "--jit-migration", "requiresMigration", "--quiet"]
    assert main([*command, "--out-dir", str(tmp_path / "refused")]) == 2  # the tenant lacks the attribute
    assert live_users(home) == []
    assert main(["emulator", "add-attribute", "requiresMigration", "--type", "Boolean"]) == 0
    run = tmp_path / "run"
    assert main([*command, "--out-dir", str(run)]) == 0
    assert [r["status"] for r in results(run)] == ["created"] * 5
    assert not (run / "passwords.csv").exists()
    users = live_users(home)
    flags = [value for u in users for key, value in u.items() if key.endswith("_requiresMigration")]
    assert flags == [True] * 5


def test_social_sample_gives_passwords_only_to_customers_with_a_local_sign_in(home: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["create", str(SAMPLES / "migration_social.csv"), "--out-dir", str(run), "--quiet"]) == 0
    rows = results(run)
    assert [r["status"] for r in rows] == ["created"] * 4
    assert rows[0]["key"] == "google.com/108353256214947563512"
    assert [p["sign_in_name"] for p in passwords(run)] == ["leslie.lamport@example.com"]
    federated = sorted((i["issuer"], i["issuerAssignedId"]) for u in live_users(home) for i in u["identities"]
                       if i["signInType"] == "federated")
    assert federated == [("facebook.com", "10223344556677889"), ("facebook.com", "10998877665544332"),
                         ("google.com", "104455667788990011223"), ("google.com", "108353256214947563512"),
                         ("google.com", "117654321098765432101")]
