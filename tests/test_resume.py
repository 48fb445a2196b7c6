"""Resume: rows left `sent` by an interrupted run are reconciled against the directory before
anything is re-sent; a lost generated password is replaced; a run folder has one owner."""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from batch.cli import main
from batch.emulator import Store
from batch.emulator.directory import Directory
from batch.errors import RunLocked
from batch.outcome import Outcome, SentRow, Status
from batch.run.journal import Journal
from batch.run.request import RunRequest

HEADER = "signInType,signInName,displayName,password\r\n"


def results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def interrupted_run(run_dir: Path, source: Path, sent: list[tuple[int, str, bool]], done: list[Outcome]) -> None:
    """A run folder as a crash leaves it: some rows sent without an answer, some done."""
    run_dir.mkdir()
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="create", input=str(source.resolve()))),
                     fingerprint=hashlib.sha256(source.read_bytes()).hexdigest(), target="local", started=time.time() - 10)
    journal.mark_sent(SentRow(row, key, time.time() - 5, generated, 1) for row, key, generated in sent)
    journal.mark_done(done)
    journal.close()


def create_directly(home: Path, name: str) -> str:
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        doc = Directory(store, time.time).create(tenant, {
            "displayName": name, "passwordPolicies": "DisablePasswordExpiration",
            "identities": [{"signInType": "emailAddress", "issuer": tenant.default_domain, "issuerAssignedId": name}],
            "passwordProfile": {"password": "Lost-Password-123!"}})
        return str(doc["id"])
    finally:
        store.close()


def count_users(home: Path) -> int:
    store = Store(home / "emulator.db")
    try:
        return store.live_user_count(store.tenants()[0].id)
    finally:
        store.close()


# Chunks of 3: the last row the interrupted run journaled (4) starts the second chunk, whose
# states must still be read (the reader skips the query only past that row).
@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_resume_reconciles_before_resending(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            chunk_rows: int | None) -> None:
    if chunk_rows is not None:
        monkeypatch.setattr("batch.run.pipeline.CHUNK_ROWS", chunk_rows)
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "emailAddress,a@example.com,A,\r\nemailAddress,b@example.com,B,\r\n"
                      "emailAddress,c@example.com,C,Own-Password-1!\r\nemailAddress,d@example.com,D,\r\n"
                      "emailAddress,e@example.com,E,\r\n", encoding="utf-8", newline="")
    # Row 1 reached the directory but its answer (and password) were lost; row 2 never
    # arrived; row 3 (own password) reached the directory; row 4 was finished; row 5 pending.
    a_id = create_directly(home, "a@example.com")
    c_id = create_directly(home, "c@example.com")
    d_id = create_directly(home, "d@example.com")
    run_dir = tmp_path / "run"
    interrupted_run(run_dir, source, [(1, "a@example.com", True), (2, "b@example.com", True), (3, "c@example.com", False)],
                    [Outcome(4, "d@example.com", Status.CREATED, d_id, 201, attempts=1)])
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    lines = {int(r["row"]): r for r in results(run_dir)}
    assert sorted(lines) == [1, 2, 3, 4, 5]
    assert {r["status"] for r in lines.values()} == {"created"}
    assert lines[1]["object_id"] == a_id and "a new one was set" in lines[1]["error_message"]
    assert lines[3]["object_id"] == c_id and lines[3]["error_message"] == ""
    assert lines[4]["object_id"] == d_id
    assert count_users(home) == 5  # b and e created now; nobody twice
    with (run_dir / "passwords.csv").open(newline="", encoding="utf-8-sig") as handle:
        on_file = {int(p["row"]): p for p in csv.DictReader(handle)}
    assert sorted(on_file) == [1, 2, 5]
    assert on_file[1]["object_id"] == a_id and on_file[1]["password"] != "Lost-Password-123!"


def test_a_customer_that_existed_before_the_run_is_not_claimed(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "emailAddress,old@example.com,Old,\r\n", encoding="utf-8", newline="")
    old_id = create_directly(home, "old@example.com")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="create", input=str(source.resolve()))),
                     fingerprint=hashlib.sha256(source.read_bytes()).hexdigest(), target="local", started=time.time())
    # Sent well after the customer was created (beyond any clock skew).
    journal.mark_sent([SentRow(1, "old@example.com", time.time() + 3600, True, 1)])
    journal.close()
    assert main(["resume", str(run_dir), "--quiet"]) == 1
    [line] = results(run_dir)
    assert line["status"] == "failed" and line["object_id"] == old_id and line["error_code"] == "ObjectConflict"
    assert not (run_dir / "passwords.csv").exists()


def test_a_run_folder_has_one_owner(tmp_path: Path, capsys: pytest.CaptureFixture[str], home: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "emailAddress,a@example.com,A,\r\n", encoding="utf-8", newline="")
    run_dir = tmp_path / "run"
    interrupted_run(run_dir, source, [], [])
    holder = Journal(run_dir)
    try:
        with pytest.raises(RunLocked):
            Journal(run_dir)
        assert main(["resume", str(run_dir), "--quiet"]) == 2
        assert "another entra-batch process is working on" in capsys.readouterr().err
    finally:
        holder.close()


def test_resume_refuses_a_changed_input(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "emailAddress,a@example.com,A,\r\n", encoding="utf-8", newline="")
    run_dir = tmp_path / "run"
    interrupted_run(run_dir, source, [], [])
    source.write_text(HEADER + "emailAddress,z@example.com,Z,\r\n", encoding="utf-8", newline="")
    assert main(["resume", str(run_dir), "--quiet"]) == 2
    assert "changed since the run started" in capsys.readouterr().err


def test_resume_refuses_another_target(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "emailAddress,a@example.com,A,\r\n", encoding="utf-8", newline="")
    run_dir = tmp_path / "run"
    interrupted_run(run_dir, source, [(1, "a@example.com", True)], [])
    journal = Journal(run_dir)
    journal.set_meta(target_identity={"kind": "url", "tenant_id": "t-1", "graph_url": "http://127.0.0.1:9/v1.0"})
    journal.close()
    # No tenant in this environment: resuming here would go to the local emulator instead.
    assert main(["resume", str(run_dir), "--quiet"]) == 2
    assert "this run was made against tenant t-1" in capsys.readouterr().err
    assert not (home / "emulator.db").exists() or count_users(home) == 0
