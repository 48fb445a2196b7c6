"""`update`'s newSignInName against the directory: the dry run and the run say the same, and
what Graph would refuse is said before anything is sent (found by a review of `update`: each
case below planned `update` and then failed, or skipped a change)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from batch.cli import main
from batch.emulator import Store


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\r\n" + "".join(r + "\r\n" for r in rows), encoding="utf-8", newline="")
    return path


def read(run_dir: Path, name: str = "results.csv") -> list[dict[str, str]]:
    with (run_dir / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def customers(home: Path) -> dict[str, dict[str, Any]]:
    store = Store(home / "emulator.db")
    try:
        return {u.data["displayName"]: u.data for u in store.select_users(store.tenants()[0].id, "live", limit=100)}
    finally:
        store.close()


def create(tmp_path: Path, header: str, rows: list[str]) -> None:
    assert main(["create", str(write(tmp_path / "create.csv", header, rows)), "--out-dir", str(tmp_path / "c"),
                 "--quiet"]) == 0


def dry_then_run(tmp_path: Path, source: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    main(["update", str(source), "--dry-run", "--out-dir", str(tmp_path / "dry"), "--quiet"])
    main(["update", str(source), "--out-dir", str(tmp_path / "run"), "--quiet"])
    return read(tmp_path / "dry", "plan.csv"), read(tmp_path / "run")


def local_names(customer: dict[str, Any]) -> list[str]:
    return [i["issuerAssignedId"] for i in customer["identities"] if i["signInType"] in ("emailAddress", "userName")]


def test_a_new_sign_in_name_another_customer_holds_fails_naming_the_holder(home: Path, tmp_path: Path) -> None:
    create(tmp_path, "signInName,displayName", ["ada@example.com,Ada", "bob@example.com,Bob"])
    bob = customers(home)["Bob"]["id"]
    plan, results = dry_then_run(tmp_path, write(tmp_path / "u.csv", "signInName,newSignInName",
                                                 ["ada@example.com,BOB@example.com"]))
    said = f"newSignInName 'BOB@example.com' is taken by the customer {bob}"
    assert (plan[0]["action"], plan[0]["reason"]) == ("fail", said)
    assert (results[0]["status"], results[0]["error_message"]) == ("failed", said)
    assert local_names(customers(home)["Ada"]) == ["ada@example.com"]


def test_a_customer_with_no_local_sign_in_is_not_given_one(home: Path, tmp_path: Path) -> None:
    # Graph refuses adding a local identity to a customer who has none (GRAPH.md §1.5).
    create(tmp_path, "displayName,federatedIssuer,federatedId", ["Gina,google.com,3003"])
    gina = customers(home)["Gina"]["id"]
    plan, results = dry_then_run(tmp_path, write(tmp_path / "u.csv", "objectId,newSignInName,jobTitle",
                                                 [f"{gina},gina@example.com,Pilot"]))
    assert plan[0]["action"] == "fail" and results[0]["status"] == "failed"
    assert "has no email or user-name sign-in to rename" in results[0]["error_message"] == plan[0]["reason"]
    assert "jobTitle" not in customers(home)["Gina"]  # the row is refused whole, as Graph would refuse its PATCH


def test_two_rows_giving_one_new_sign_in_name_are_refused_before_they_race(home: Path, tmp_path: Path) -> None:
    create(tmp_path, "signInName,displayName", ["ada@example.com,Ada", "cy@example.com,Cy"])
    plan, results = dry_then_run(tmp_path, write(tmp_path / "u.csv", "signInName,newSignInName",
                                                 ["ada@example.com,new@example.com", "cy@example.com,NEW@example.com"]))
    assert [p["action"] for p in plan] == ["update", "fail"]
    assert [r["status"] for r in results] == ["updated", "invalid"]
    assert "newSignInName 'NEW@example.com' is already used by row 1 of this file" in results[1]["error_message"]


def test_a_sign_in_name_whose_case_changes_is_changed(home: Path, tmp_path: Path) -> None:
    create(tmp_path, "signInName,displayName", ["ADA@Example.com,Ada"])
    plan, results = dry_then_run(tmp_path, write(tmp_path / "u.csv", "signInName,newSignInName",
                                                 ["ada@example.com,ada@example.com"]))
    assert plan[0]["action"] == "update" and results[0]["status"] == "updated"
    assert local_names(customers(home)["Ada"]) == ["ada@example.com"]
    main(["update", str(tmp_path / "u.csv"), "--out-dir", str(tmp_path / "again"), "--quiet"])
    assert read(tmp_path / "again")[0]["status"] == "skipped"  # now in place
