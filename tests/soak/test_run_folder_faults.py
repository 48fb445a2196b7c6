"""Bad days on the client's side, in process against the local emulator: a run folder that
cannot be written or a disk too full is found before anything is sent (exit 2); a disk that
fills up mid-run stops the run cleanly (exit 3) and `resume` finishes it; a start killed before
it recorded its run can be started again; Ctrl-C inside a journal write leaves no half-open
transaction; a password line cut short is never taken for a password."""

from __future__ import annotations

import csv
import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import batch.run.files as runfiles
import batch.run.lifecycle as runner
from batch.cli import main
from batch.emulator import Store
from batch.outcome import Outcome, SentRow, Status
from batch.run.files import PasswordsFile
from batch.run.journal import Journal

HEADER = "signInType,signInName,displayName,password\r\n"


def source(path: Path, n: int, prefix: str = "d") -> Path:
    path.write_text(HEADER + "".join(f"emailAddress,{prefix}{i}@example.com,Customer {i},\r\n" for i in range(1, n + 1)),
                    encoding="utf-8")
    return path


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def users(home: Path) -> list[dict]:
    store = Store(home / "emulator.db")
    try:
        return [r.data for r in store.select_users(store.tenants()[0].id, "live", limit=100_000)]
    finally:
        store.close()


def test_a_run_folder_that_cannot_be_made_stops_before_anything_is_sent(home: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status = main(["create", str(source(tmp_path / "in.csv", 3)), "--out-dir", str(blocker / "run"), "--quiet",
                   "--target", "local"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "cannot write the run folder" in err and "nothing was sent" in err and "Traceback" not in err
    assert not (home / "emulator.db").exists() or users(home) == []


def test_a_disk_too_full_for_the_run_is_found_before_anything_is_sent(home: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runner.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, (1 << 30) - 4096, 4096))
    status = main(["create", str(source(tmp_path / "in.csv", 3)), "--out-dir", str(tmp_path / "run"), "--quiet",
                   "--target", "local"])
    err = capsys.readouterr().err
    assert status == 2 and "KiB free" in err and "nothing was sent" in err, err
    assert not (home / "emulator.db").exists() or users(home) == []


def test_a_disk_that_fills_up_mid_run_stops_cleanly_and_resume_finishes(home: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    file = source(tmp_path / "in.csv", 120)
    run_dir = tmp_path / "run"
    real_write = os.write
    writes = {"n": 0}

    def filling_write(fd: int, data: bytes | memoryview) -> int:
        writes["n"] += 1
        if writes["n"] == 4:  # the fourth batch of passwords: half a line fits, then the disk is full
            return real_write(fd, bytes(data)[: len(data) // 2])
        if writes["n"] > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(runfiles.os, "write", filling_write)
    status = main(["create", str(file), "--out-dir", str(run_dir), "--quiet", "--target", "local",
                   "--batch-size", "10", "--concurrency", "1"])
    err = capsys.readouterr().err
    assert status == 3, err
    assert "No space left on device" in err and f"entra-batch resume {run_dir}" in err and "Traceback" not in err
    monkeypatch.setattr(runfiles.os, "write", real_write)
    assert main(["resume", str(run_dir), "--quiet"]) == 0, capsys.readouterr().err
    lines = read(run_dir / "results.csv")
    assert [int(r["row"]) for r in lines] == list(range(1, 121)) and {r["status"] for r in lines} == {"created"}
    on_file = read(run_dir / "passwords.csv")
    assert sorted(int(p["row"]) for p in on_file) == list(range(1, 121)), "one complete password line per row"
    assert {p["object_id"] for p in on_file} == {u["id"] for u in users(home)} == {r["object_id"] for r in lines}
    assert stat.S_IMODE((run_dir / "passwords.csv").stat().st_mode) == 0o600


def test_a_start_killed_before_it_recorded_its_run_can_be_started_again(home: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Journal(run_dir).close()  # what kill -9 leaves between making the folder and recording the run
    assert main(["resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "before anything was sent" in err and "start it again" in err and "Traceback" not in err
    assert main(["create", str(source(tmp_path / "in.csv", 3)), "--out-dir", str(run_dir), "--quiet",
                 "--target", "local"]) == 0
    assert {r["status"] for r in read(run_dir / "results.csv")} == {"created"}


def test_an_interrupt_inside_a_journal_write_leaves_no_open_transaction(tmp_path: Path) -> None:
    journal = Journal(tmp_path)

    def rows() -> Iterator[SentRow]:
        yield SentRow(1, "a@example.com", time.time(), True, 1)
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) between two statements of the transaction

    with pytest.raises(KeyboardInterrupt):
        journal.mark_sent(rows())
    journal.mark_done([Outcome(2, "b@example.com", Status.INVALID, error_message="bad")])
    journal.close()
    reopened = Journal(tmp_path)
    assert reopened.sent_rows() == [] and [o.row for o in reopened.outcomes()] == [2]
    reopened.close()


def test_a_password_line_cut_short_is_not_taken_for_a_password(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    path.write_bytes(b"row,sign_in_name,object_id,password\r\n1,a@example.com,id-1,Whole-Pass-1!\r\n"
                     b"2,b@example.com,id-2,Half")
    os.chmod(path, 0o600)
    passwords = PasswordsFile(tmp_path)
    assert passwords.rows_present({1, 2}) == {1}
    passwords.append([(3, "c@example.com", "id-3", "Third-Pass-3!")])
    passwords.close()
    assert [r["row"] for r in read(path)] == ["1", "3"]
