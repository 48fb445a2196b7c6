"""Issue 15, defect 1 and the PII part of defect 10: the review's attacks on the run folder and
on `export --out` / `template --out`, as a hostile local user would make them.

Run folders are 0700 and every file in them 0600 whatever the umask; nothing is written through
a link planted in the folder; a folder others can write is refused before anything is sent; a
passwords.csv that is not a private file of ours stops `resume` before anything is sent; export
and template files never replace a link, a folder or a device without asking (--force), and
`-` is standard output. Tests that need another user's files (chown) run as root only.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from batch.cli import main
from batch.emulator import Store
from batch.errors import RunFolderFailed, RunFolderUnsafe
from batch.outcome import SentRow
from batch.run.files import PasswordsFile
from batch.run.journal import Journal
from batch.run.request import RunRequest

ROOT = Path(__file__).resolve().parent.parent
HEADER = "signInType,signInName,displayName,password\r\n"
ROWS = "".join(f"emailAddress,c{n}@example.com,Customer {n},\r\n" for n in range(1, 6))
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="making another user's files needs root")
SOMEONE_ELSE = 65534  # nobody


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def users(home: Path) -> int:
    store = Store(home / "emulator.db")
    try:
        return store.live_user_count(store.tenants()[0].id)
    finally:
        store.close()


def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8", newline="")
    return path


def interrupted_run(run_dir: Path, input_file: Path) -> None:
    """A create run as a crash leaves it before its first answer: every row still to send, each
    with a generated password (so resume writes passwords.csv)."""
    run_dir.mkdir(mode=0o700)
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="create", input=str(input_file.resolve()))),
                     fingerprint=hashlib.sha256(input_file.read_bytes()).hexdigest(), target="local",
                     started=time.time() - 10)
    journal.close()


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# ---- the run folder ---------------------------------------------------------------------------

@pytest.mark.parametrize("folder_mode", [0o777, 0o770, 0o1777])
def test_an_out_dir_others_can_write_is_refused_before_anything_is_sent(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], folder_mode: int) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    os.chmod(out, folder_mode)
    assert main(["create", str(source(tmp_path)), "--out-dir", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "can be written by other users" in err and "choose a folder only you can write" in err
    assert "Traceback" not in err and list(out.iterdir()) == []
    assert users(home) == 0


@ROOT_ONLY
def test_an_out_dir_of_another_user_is_refused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "theirs"
    out.mkdir(mode=0o700)
    os.chown(out, SOMEONE_ELSE, SOMEONE_ELSE)
    assert main(["create", str(source(tmp_path)), "--out-dir", str(out), "--quiet"]) == 2
    assert "belongs to another user" in capsys.readouterr().err
    assert users(home) == 0


def test_a_run_folder_under_a_folder_anyone_can_write_is_refused(home: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # no sticky bit: anyone could rename the run folder and put theirs in its place
    assert main(["create", str(source(tmp_path)), "--out-dir", str(shared / "run"), "--quiet"]) == 2
    assert "can be written by every user and has no sticky bit" in capsys.readouterr().err
    assert not (shared / "run").exists() and users(home) == 0


def test_an_existing_empty_out_dir_is_made_private(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    assert main(["create", str(source(tmp_path)), "--out-dir", str(out), "--quiet"]) == 0
    assert mode(out) == 0o700


def test_with_umask_000_run_folders_are_0700_and_their_files_0600(home: Path, tmp_path: Path, umask_000: None) -> None:
    # The default place (runs/ made now), and an --out-dir with a parent made for it.
    assert main(["create", str(source(tmp_path)), "--quiet"]) == 0
    [run] = list((tmp_path / "runs").iterdir())
    out = tmp_path / "new" / "out"
    (tmp_path / "more.csv").write_text(HEADER + "emailAddress,d1@example.com,D,\r\n", encoding="utf-8", newline="")
    assert main(["create", str(tmp_path / "more.csv"), "--out-dir", str(out), "--quiet"]) == 0
    for folder in (tmp_path / "runs", run, tmp_path / "new", out):
        assert mode(folder) == 0o700, folder
    for folder in (run, out):
        names = {p.name for p in folder.iterdir()}
        assert {"results.csv", "summary.json", "passwords.csv", "journal.db", ".lock"} <= names
        for name in names:
            assert mode(folder / name) == 0o600, folder / name


def test_with_umask_000_plan_csv_is_0600(home: Path, tmp_path: Path, umask_000: None) -> None:
    assert main(["create", str(source(tmp_path)), "--out-dir", str(tmp_path / "made"), "--quiet"]) == 0
    (tmp_path / "up.csv").write_text("signInName,displayName\r\nc1@example.com,Renamed\r\n", encoding="utf-8")
    assert main(["update", str(tmp_path / "up.csv"), "--dry-run", "--out-dir", str(tmp_path / "plan"), "--quiet"]) == 0
    assert (tmp_path / "plan" / "plan.csv").read_text(encoding="utf-8").count("\n") == 2
    for path in (tmp_path / "plan").iterdir():
        assert mode(path) == 0o600, path


# ---- resume: what is already in the folder ----------------------------------------------------

def test_a_passwords_csv_link_planted_before_resume_receives_nothing(home: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    stolen = tmp_path / "attacker.txt"
    stolen.write_text("mine\n", encoding="utf-8")
    (run / "passwords.csv").symlink_to(stolen)
    assert main(["resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "passwords.csv is a symbolic link" in err and "Traceback" not in err
    assert stolen.read_text(encoding="utf-8") == "mine\n"
    assert users(home) == 0  # refused before anything was sent


def test_a_passwords_csv_others_can_read_is_refused_not_silently_fixed(home: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Ours and regular, but 0644: the passwords already in it may have been read. Like ssh with
    # a private key, refuse and say how to fix it, instead of chmodding it behind the user's back.
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    planted = run / "passwords.csv"
    planted.write_text("row,sign_in_name,object_id,password\r\n", encoding="utf-8", newline="")
    os.chmod(planted, 0o644)
    assert main(["resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "can be read by other users (mode 0644)" in err and "chmod 600" in err
    assert users(home) == 0 and mode(planted) == 0o644
    os.chmod(planted, 0o600)  # what the message says to do
    assert main(["resume", str(run), "--quiet"]) == 0
    with planted.open(newline="", encoding="utf-8-sig") as handle:
        assert len(list(csv.DictReader(handle))) == 5


@ROOT_ONLY
def test_a_passwords_csv_of_another_user_is_refused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    planted = run / "passwords.csv"
    planted.write_text("row,sign_in_name,object_id,password\r\n", encoding="utf-8", newline="")
    os.chmod(planted, 0o600)
    os.chown(planted, SOMEONE_ELSE, SOMEONE_ELSE)
    assert main(["resume", str(run), "--quiet"]) == 2
    assert "passwords.csv belongs to another user" in capsys.readouterr().err
    assert planted.read_bytes() == b"row,sign_in_name,object_id,password\r\n"
    assert users(home) == 0


def test_planted_temporary_file_links_are_not_followed(home: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    for name in ("results.csv.tmp", "summary.json.tmp"):
        (run / name).symlink_to(victim)
    assert main(["resume", str(run), "--quiet"]) == 0
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not (run / "results.csv").is_symlink() and mode(run / "results.csv") == 0o600
    assert len((run / "results.csv").read_text(encoding="utf-8").splitlines()) == 6


@pytest.mark.parametrize("name", ["journal.db-wal", "journal.db-shm", ".lock"])
def test_a_link_planted_beside_the_journal_is_refused(home: Path, tmp_path: Path, name: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    assert main(["resume", str(run), "--quiet"]) == 2
    assert f"{name} is a symbolic link" in capsys.readouterr().err
    assert victim.read_text(encoding="utf-8") == "precious\n" and users(home) == 0


def test_a_run_folder_others_can_write_is_not_resumed(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    os.chmod(run, 0o777)
    assert main(["resume", str(run), "--quiet"]) == 2
    assert "can be written by other users" in capsys.readouterr().err and users(home) == 0


def test_a_run_folder_of_an_earlier_version_is_made_private_on_resume(home: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    interrupted_run(run, source(tmp_path))
    os.chmod(run, 0o755)
    os.chmod(run / "journal.db", 0o644)
    assert main(["resume", str(run), "--quiet"]) == 0
    assert mode(run) == 0o700 and mode(run / "journal.db") == 0o600


def test_a_file_that_appears_mid_run_stops_it_without_blaming_the_disk(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    passwords = PasswordsFile(run)  # a new run: no passwords.csv yet
    planted = run / "passwords.csv"
    planted.write_text("", encoding="utf-8")
    try:
        with pytest.raises(FileExistsError) as caught:
            passwords.append([(1, "a@example.com", "id-1", "Secret-Password-1!")])
    finally:
        passwords.close()
    assert planted.read_text(encoding="utf-8") == ""
    message = str(RunFolderFailed(run, caught.value))
    assert "passwords.csv: File exists" in message and "Move that file out of the run folder" in message
    assert "disk space" not in message


def test_resume_with_a_fifo_for_passwords_csv_does_not_hang(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    os.mkfifo(run / "passwords.csv", 0o600)
    with pytest.raises(RunFolderUnsafe, match="not a regular file"):
        PasswordsFile(run)


def test_sent_rows_resume_through_a_checked_passwords_file(home: Path, tmp_path: Path) -> None:
    # The reconciling path reads passwords.csv through the descriptor checked at the start.
    run = tmp_path / "run"
    input_file = source(tmp_path)
    interrupted_run(run, input_file)
    journal = Journal(run)
    journal.mark_sent([SentRow(1, "c1@example.com", time.time() - 5, True, 1)])
    journal.close()
    (run / "passwords.csv").write_text("row,sign_in_name,object_id,password\r\n", encoding="utf-8", newline="")
    os.chmod(run / "passwords.csv", 0o600)
    assert main(["resume", str(run), "--quiet"]) == 0
    with (run / "passwords.csv").open(newline="", encoding="utf-8-sig") as handle:
        assert sorted(int(r["row"]) for r in csv.DictReader(handle)) == [1, 2, 3, 4, 5]


# ---- export --out and template --out ----------------------------------------------------------

@pytest.fixture
def customers(home: Path, tmp_path: Path) -> None:
    assert main(["create", str(source(tmp_path)), "--out-dir", str(tmp_path / "made"), "--quiet"]) == 0


def test_export_files_are_0600_whatever_the_umask(customers: None, tmp_path: Path, umask_000: None) -> None:
    assert main(["export", "--out-dir", str(tmp_path / "e1"), "--sequential", "--quiet"]) == 0
    assert mode(tmp_path / "e1") == 0o700
    assert mode(tmp_path / "e1" / "customers.csv") == 0o600 and mode(tmp_path / "e1" / "summary.json") == 0o600
    for name in ("c.csv", "c.jsonl", "c.xlsx", "c.parquet"):
        out = tmp_path / name
        assert main(["export", "--out", str(out), "--out-dir", str(tmp_path / f"e-{name}"), "--quiet"]) == 0
        assert mode(out) == 0o600, name


def test_export_out_to_a_link_is_refused_without_force(customers: None, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    assert main(["export", "--out", str(link), "--out-dir", str(tmp_path / "e1"), "--quiet"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and victim.read_text(encoding="utf-8") == "precious\n"
    assert main(["export", "--out", str(link), "--force", "--out-dir", str(tmp_path / "e2"), "--quiet"]) == 0
    assert not link.is_symlink() and mode(link) == 0o600  # the link was replaced, not written through
    assert victim.read_text(encoding="utf-8") == "precious\n"


def test_export_out_to_a_folder_or_a_special_file_is_refused_even_with_force(
        customers: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, words in ((folder, "is a folder"), (fifo, "is not a regular file")):
        for force in ([], ["--force"]):
            assert main(["export", "--out", str(target), *force, "--out-dir", str(tmp_path / f"e{target.name}{len(force)}"),
                         "--quiet"]) == 2
            assert words in capsys.readouterr().err
    assert folder.is_dir() and list(folder.iterdir()) == [] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@ROOT_ONLY
def test_export_out_never_replaces_a_device(customers: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # /dev/full's numbers
    assert main(["export", "--out", str(full), "--force", "--out-dir", str(tmp_path / "e"), "--quiet"]) == 2
    assert "is not a regular file" in capsys.readouterr().err
    assert stat.S_ISCHR(os.lstat(full).st_mode)


@ROOT_ONLY
def test_export_out_over_another_users_file_needs_force(customers: None, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("theirs\n", encoding="utf-8")
    os.chown(theirs, SOMEONE_ELSE, SOMEONE_ELSE)
    assert main(["export", "--out", str(theirs), "--out-dir", str(tmp_path / "e1"), "--quiet"]) == 2
    assert "belongs to another user" in capsys.readouterr().err and theirs.read_text(encoding="utf-8") == "theirs\n"
    assert main(["export", "--out", str(theirs), "--force", "--out-dir", str(tmp_path / "e2"), "--quiet"]) == 0
    assert os.lstat(theirs).st_uid == os.geteuid()


def test_a_planted_partial_link_is_not_followed(customers: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (tmp_path / "out.csv.partial").symlink_to(victim)
    assert main(["export", "--out", str(tmp_path / "out.csv"), "--out-dir", str(tmp_path / "e1"), "--quiet"]) == 2
    assert "out.csv.partial is there and is not a file of yours" in capsys.readouterr().err
    assert victim.read_text(encoding="utf-8") == "precious\n" and not (tmp_path / "out.csv").exists()


def test_a_partial_file_left_by_an_interrupted_export_is_replaced(customers: None, tmp_path: Path) -> None:
    (tmp_path / "out.csv.partial").write_text("half an export", encoding="utf-8")
    assert main(["export", "--out", str(tmp_path / "out.csv"), "--out-dir", str(tmp_path / "e1"), "--quiet"]) == 0
    assert not (tmp_path / "out.csv.partial").exists()
    assert len((tmp_path / "out.csv").read_text(encoding="utf-8-sig").splitlines()) == 6


def _cli(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
    env["ENTRA_BATCH_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "batch", *args], cwd=cwd, env=env, capture_output=True, timeout=120,
                          check=False)


def test_export_out_dash_streams_csv_and_jsonl_to_stdout(customers: None, home: Path, tmp_path: Path) -> None:
    done = _cli(["export", "--out", "-", "--out-dir", str(tmp_path / "e1"), "--quiet", "--sequential"], tmp_path, home)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("utf-8-sig")
    assert text.startswith("id,") and len(text.splitlines()) == 6  # the same bytes as the file: BOM, header, rows
    assert b"file: standard output" in done.stderr and b"export:" not in done.stdout
    assert not (tmp_path / "-").exists()
    done = _cli(["export", "--out", "-", "--format", "jsonl", "--out-dir", str(tmp_path / "e2"), "--quiet"],
                tmp_path, home)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 5 and done.stdout.startswith(b"{")


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_export_out_dash_refuses_binary_formats(customers: None, tmp_path: Path, fmt: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--out", "-", "--format", fmt, "--out-dir", str(tmp_path / "e"), "--quiet"]) == 2
    assert f"only as csv or jsonl, not {fmt}" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()  # refused before the run folder was made


def test_template_out_dash_is_stdout(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "create"]) == 0
    expected = capsys.readouterr().out
    assert main(["template", "create", "--out", "-"]) == 0
    assert capsys.readouterr().out == expected and not (tmp_path / "-").exists()


def test_template_out_refuses_links_folders_and_devices(home: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    link = tmp_path / "t.csv"
    link.symlink_to(victim)
    assert main(["template", "create", "--out", str(link)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err and victim.read_text(encoding="utf-8") == "precious\n"
    assert main(["template", "create", "--out", str(link), "--force"]) == 0
    assert not link.is_symlink() and link.read_text(encoding="utf-8").startswith("signInType,")
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert main(["template", "create", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder; give a file name" in err and "Traceback" not in err
    assert main(["template", "create", "--out", str(tmp_path / "no-such-folder" / "t.csv")]) == 2
    assert "cannot write --out" in capsys.readouterr().err


@ROOT_ONLY
def test_template_out_never_writes_to_a_device(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    assert main(["template", "create", "--out", str(null), "--force"]) == 2
    assert "is not a regular file" in capsys.readouterr().err and stat.S_ISCHR(os.lstat(null).st_mode)


def test_template_out_rewrites_a_file_of_ours(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    out.write_text("old and longer than the template " * 100, encoding="utf-8")
    assert main(["template", "delete", "--out", str(out)]) == 0
    assert "old and longer" not in out.read_text(encoding="utf-8")


def test_an_out_dir_holding_someone_s_journal_db_is_not_taken(home: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # A folder holding only the administrator's own SQLite database named journal.db was taken
    # for a start killed before it recorded its run: written into, then removed on a usage
    # error. Found by a review.
    import sqlite3

    diary = tmp_path / "diary"
    diary.mkdir(mode=0o700)
    with sqlite3.connect(diary / "journal.db") as db:
        db.execute("CREATE TABLE entries (day TEXT, text TEXT)")
        db.execute("INSERT INTO entries VALUES ('monday', 'dear diary')")
    before = (diary / "journal.db").read_bytes()
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName\r\na@example.com,A\r\n", encoding="utf-8", newline="")
    assert main(["create", str(source), "--quiet", "--out-dir", str(diary)]) == 2
    assert f"{diary} is not empty: its journal.db holds tables of another program" in capsys.readouterr().err
    assert (diary / "journal.db").read_bytes() == before and sorted(p.name for p in diary.iterdir()) == ["journal.db"]
