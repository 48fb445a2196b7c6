"""Issue 15, defect 8: no traceback on any input, and an exit status a script can read.

- A failure of entra-batch itself (an exception no layer expected) is one line on stderr and
  exit 4 (`ExitCode.INTERNAL`), never 1 (rows failed); the traceback goes to a private
  error.log in the run folder, or under ENTRA_BATCH_HOME/errors/ without one.
- A corrupted journal on `resume` is a usage error (exit 2) saying why the folder cannot be
  resumed, and the journal is left as it was.
- stdout closed early (`| head -1`) ends the command quietly with 141 (128 + SIGPIPE).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from batch.cli import main
from batch.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
HEADER = "signInName,displayName\r\n"


def write_input(path: Path, rows: int = 3) -> Path:
    path.write_text(HEADER + "".join(f"user{i}@example.com,User {i}\r\n" for i in range(rows)), encoding="utf-8",
                    newline="")
    return path


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("entra-batch: run folder:")
             and "using the built-in Graph emulator" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---- the top-level handler ------------------------------------------------------------------------

def test_a_defect_mid_run_exits_4_with_one_line_and_the_traceback_in_the_run_folder(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from batch.run import pipeline

    async def broken(self: object) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline.Engine, "run", broken)
    run = tmp_path / "run"
    status = main(["create", str(write_input(tmp_path / "in.csv")), "--out-dir", str(run), "--quiet"])
    line = one_line(capsys.readouterr().err)
    assert status == ExitCode.INTERNAL == 4
    log = run / "error.log"
    assert re.fullmatch(
        r"entra-batch: internal error \(a defect of entra-batch, not of your input or settings\): create failed "
        r"with ZeroDivisionError at batch/run/lifecycle\.py:\d+ \(_execute\)\. "
        + re.escape(f"The traceback is in {log}; please report it. The run folder keeps what was done: "
                    f"`entra-batch resume {run}` goes on from there."), line), line
    assert "a bug" not in line  # the exception's text may hold data: only in the private log
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: a bug" in text
    assert "command create" in text

    # As the line says, the run goes on once the defect is gone.
    monkeypatch.undo()
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(run), "--quiet"]) == ExitCode.OK


def test_without_a_run_folder_the_traceback_goes_under_entra_batch_home(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from batch.cli import file_commands

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("Secret-Cell-Value")

    monkeypatch.setattr(file_commands, "open_input_file", broken)
    status = main(["validate", "--verb", "create", str(write_input(tmp_path / "in.csv"))])
    line = one_line(capsys.readouterr().err)
    assert status == ExitCode.INTERNAL
    logs = list((home / "errors").iterdir())
    assert len(logs) == 1 and f"The traceback is in {logs[0]}" in line and "validate failed with KeyError" in line
    assert "Secret-Cell-Value" not in line and "resume" not in line
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "errors").stat().st_mode) == 0o700
    assert "KeyError: 'Secret-Cell-Value'" in logs[0].read_text(encoding="utf-8")


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_a_home_made_for_the_first_error_log_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], umask: int) -> None:
    # The home made for errors/ took the umask's mode (0775 under 002: every later command then
    # refused it as writable by others). Found by a review.
    from batch.cli import file_commands

    home = tmp_path / "new-home"
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(home))

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("a defect")

    monkeypatch.setattr(file_commands, "open_input_file", broken)
    old = os.umask(umask)
    try:
        assert main(["validate", "--verb", "create", str(write_input(tmp_path / "in.csv"))]) == ExitCode.INTERNAL
    finally:
        os.umask(old)
    assert "The traceback is in " + str(home / "errors") in one_line(capsys.readouterr().err)
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in (home, home / "errors")] == ["0o700", "0o700"]


def test_the_log_never_follows_a_planted_link(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from batch.run import pipeline

    async def broken(self: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline.Engine, "run", broken)
    run = tmp_path / "run"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    real_started = main.__globals__["RunFolderHolder"].started

    def plant(self: object, run_dir: Path) -> None:
        (run_dir / "error.log").symlink_to(victim)
        real_started(self, run_dir)

    monkeypatch.setattr(main.__globals__["RunFolderHolder"], "started", plant)
    assert main(["create", str(write_input(tmp_path / "in.csv")), "--out-dir", str(run), "--quiet"]) == 4
    line = one_line(capsys.readouterr().err)
    assert victim.read_text() == "precious\n"
    assert "The traceback is in " + str(home / "errors") in line


def test_the_secret_of_the_environment_is_not_written_to_the_log(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from batch.cli import file_commands

    monkeypatch.setenv("AZURE_CLIENT_SECRET", "the-Client-Secret-42")

    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("credentials the-Client-Secret-42 in a message")

    monkeypatch.setattr(file_commands, "open_input_file", broken)
    assert main(["validate", "--verb", "create", str(write_input(tmp_path / "in.csv"))]) == 4
    capsys.readouterr()
    (log,) = (home / "errors").iterdir()
    assert "the-Client-Secret-42" not in log.read_text(encoding="utf-8")


def test_a_user_error_keeps_its_own_code_and_an_interrupt_130(home: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", str(tmp_path / "missing.csv")]) == ExitCode.USAGE
    from batch.cli import file_commands

    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(file_commands, "open_input_file", interrupted)
    assert main(["validate", "--verb", "create", str(write_input(tmp_path / "in.csv"))]) == ExitCode.INTERRUPTED
    assert not (home / "errors").exists()


# ---- corrupted journals on resume ---------------------------------------------------------------------

@pytest.fixture
def finished_run(home: Path, tmp_path: Path) -> Path:
    run = tmp_path / "good"
    assert main(["create", str(write_input(tmp_path / "in.csv")), "--out-dir", str(run), "--quiet"]) == 0
    return run


def _edit(sql: str, *params: object) -> Callable[[Path], None]:
    def change(journal: Path) -> None:
        db = sqlite3.connect(journal)
        db.execute(sql, params)
        db.commit()
        db.close()
    return change


def _request_with(**changes: object) -> Callable[[Path], None]:
    def change(journal: Path) -> None:
        db = sqlite3.connect(journal)
        request = json.loads(db.execute("SELECT value FROM meta WHERE key = 'request'").fetchone()[0])
        request.update(changes)
        db.execute("UPDATE meta SET value = ? WHERE key = 'request'", (json.dumps(request),))
        db.commit()
        db.close()
    return change


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "not-sqlite": (lambda j: j.write_text("hello, I am not a database\n"), "is not a SQLite database"),
    "truncated": (lambda j: j.write_bytes(j.read_bytes()[:1500]), "is damaged"),
    "no-meta-table": (_edit("DROP TABLE meta"), "has rows but no meta table"),
    "bad-request-json": (_edit("UPDATE meta SET value = '{not json' WHERE key = 'request'"),
                         "holds a run description whose 'request' is not readable"),
    "unknown-verb": (_request_with(verb="frobnicate"), "names the verb 'frobnicate', which this version"),
    "request-not-an-object": (_edit("UPDATE meta SET value = '[1, 2]' WHERE key = 'request'"),
                              "holds a run description that is not one"),
    "wrong-type": (_request_with(batch_size="twenty"), "holds a run description with batch_size missing or of the wrong kind"),
    "no-input": (_request_with(input=None), "holds a run description with input missing or of the wrong kind"),
    "target-identity": (_edit("UPDATE meta SET value = '\"x\"' WHERE key = 'target_identity'"),
                        "holds a run description with target_identity missing"),
    "odd-row-state": (_edit("UPDATE rows SET state = 'weird' WHERE row = 2"), "holds row 2 in a state no version"),
    "odd-status": (_edit("UPDATE rows SET status = 'exploded' WHERE row = 1"), "holds row 1 in a state no version"),
    "rows-without-columns": (_edit("ALTER TABLE rows DROP COLUMN status"), "has a rows table without the columns "
                                                                           "status"),
    "foreign-database": (lambda j: (j.unlink(), _edit("CREATE TABLE photos (id)")(j)), "holds tables of another"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupted_journal_cannot_be_resumed_and_says_why(finished_run: Path, kind: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    journal = finished_run / "journal.db"
    damage, reason = CORRUPTIONS[kind]
    damage(journal)
    before = journal.read_bytes()
    capsys.readouterr()
    status = main(["resume", str(finished_run), "--quiet"])
    line = one_line(capsys.readouterr().err)
    assert status == ExitCode.USAGE
    assert line.startswith(f"entra-batch: {finished_run} cannot be resumed: its journal.db {reason}"), line
    assert "Nothing was sent. Run the verb again on the same file in a new run folder" in line
    assert f"the passwords generated so far stay in {finished_run / 'passwords.csv'}" in line
    assert journal.read_bytes() == before  # read, never repaired or extended
    assert not (finished_run / "error.log").exists()


def test_a_start_killed_before_it_recorded_anything_still_says_start_again(home: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for content in (b"", None):
        run = tmp_path / f"run-{content is None}"
        run.mkdir()
        if content is None:
            _edit("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")(run / "journal.db")
        else:
            (run / "journal.db").write_bytes(content)
        assert main(["resume", str(run)]) == ExitCode.USAGE
        assert "interrupted while starting, before anything was sent" in one_line(capsys.readouterr().err)


def test_an_emptied_journal_beside_a_run_s_files_is_not_a_start_that_sent_nothing(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An emptied journal.db beside passwords.csv was "interrupted while starting, before anything
    # was sent; start it again with the same command (--out-dir ...)", which then refused the
    # folder as not empty. Found by a bug hunt.
    run = tmp_path / "run"
    run.mkdir()
    (run / "journal.db").write_bytes(b"")
    (run / "passwords.csv").write_text("row,sign_in_name,object_id,password\r\n")
    assert main(["resume", str(run)]) == ExitCode.USAGE
    line = one_line(capsys.readouterr().err)
    assert "cannot be resumed: its journal.db describes no run, though the folder holds the files of one" in line
    assert f"the passwords generated so far stay in {run / 'passwords.csv'}" in line


# ---- stdout closed early ----------------------------------------------------------------------------

def run_with_closed_stdout(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command with a stdout whose reader is already gone: every write fails with EPIPE,
    deterministically (as `| head -1` does once head has its line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
    env.update(ENTRA_BATCH_HOME=str(home), PYTHONPATH=str(ROOT))
    try:
        return subprocess.run([sys.executable, "-m", "batch", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, env=env, timeout=120)
    finally:
        os.close(write_end)


def test_stdout_closed_early_ends_quietly_with_141(home: Path, tmp_path: Path) -> None:
    done = run_with_closed_stdout(["template", "create"], home, tmp_path)
    assert (done.returncode, done.stderr) == (141, "")


def test_an_export_piped_into_head_ends_quietly_and_its_file_is_complete(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    done = run_with_closed_stdout(["export", "--out", str(out), "--quiet"], home, tmp_path)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert out.read_text(encoding="utf-8-sig").startswith("id,")


def test_a_local_emulator_database_that_cannot_be_used_is_one_line_and_exit_2(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "emulator.db").mkdir()  # a folder where the emulator's directory file should be
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName\r\nada@example.com,Ada\r\n", encoding="utf-8")
    assert main(["create", str(source), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "built-in emulator cannot use its directory" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the "no tenant configured" line, then the refusal


@pytest.mark.parametrize("argv", [["create", "x.csv", "--batch-size", "50"], ["emulator", "--port", "99999"],
                                  ["frobnicate"], ["runs", "frob"]])
def test_a_usage_error_is_one_line_saying_where_the_help_is(argv: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err and "--help`" in err
