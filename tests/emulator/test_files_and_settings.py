"""The emulator's files are private whatever the umask (issue 15, defect 3: the database, its
-wal and -shm hold the app's client secret and the token-signing key), and what it is told is
checked: a bad setting is one line and exit 2, never a traceback (defects 8 and 10)."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch.cli import main
from batch.emulator import EmulatorSettings, Store
from batch.emulator.database import DatabaseUnavailable
from batch.emulator.server import ServeOptions
from batch.emulator.settings import Faults, Latency
from batch.emulator.tls import ensure_tls_files


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000, as on a careless shared host; the test runs in this process only."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_database_wal_and_shm_are_private_under_umask_000(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "home" / "emulator.db"
    store = Store(db)
    try:
        store.add_tenant("fabrikam.onmicrosoft.com")  # a write, so that the WAL holds data
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(db.parent) == 0o700
    finally:
        store.close()


def test_loose_files_of_an_older_emulator_are_tightened(tmp_path: Path) -> None:
    db = tmp_path / "emulator.db"
    Store(db).close()
    for p in (db, Path(f"{db}-wal")):
        p.touch()
        p.chmod(0o644)
    Store(db).close()
    assert mode(db) == 0o600
    if Path(f"{db}-wal").exists():
        assert mode(Path(f"{db}-wal")) == 0o600


def test_a_database_path_that_is_a_link_or_a_folder_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("not yours")
    link = tmp_path / "emulator.db"
    link.symlink_to(victim)
    with pytest.raises(DatabaseUnavailable, match="symbolic link"):
        Store(link)
    assert victim.read_text() == "not yours"
    with pytest.raises(DatabaseUnavailable, match="is a directory"):
        Store(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(DatabaseUnavailable, match="cannot open"):
        Store(junk)


def test_tls_files_are_private_under_umask_000(tmp_path: Path, open_umask: None) -> None:
    files = ensure_tls_files(tmp_path / "tls")
    assert mode(files.server_key) == 0o600
    assert mode(files.server_cert) == 0o644 and mode(files.ca_cert) == 0o644
    assert mode(tmp_path / "tls") & 0o022 == 0


def test_tls_files_replace_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (folder / "server-key.pem").symlink_to(victim)
    files = ensure_tls_files(folder)
    assert victim.read_text() == "keep me"
    assert not files.server_key.is_symlink() and mode(files.server_key) == 0o600


# ---- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda: Latency.uniform(-1.0),
    lambda: Latency.uniform(math.nan),
    lambda: Latency.uniform(math.inf),
    lambda: Latency.uniform(10.0, sigma=math.nan),
    lambda: Latency.uniform(10.0, sigma=-0.1),
    lambda: Latency.uniform(10.0, sigma=1000.0),
    lambda: Faults(slow_ms=-5.0),
    lambda: Faults(storm_seconds=math.nan),
    lambda: EmulatorSettings(token_lifetime_seconds=0),
    lambda: EmulatorSettings(token_lifetime_seconds=-60),
    lambda: EmulatorSettings(token_lifetime_seconds=10**9),
    lambda: ServeOptions(port=99999),
    lambda: ServeOptions(port=-1),
])
def test_settings_refuse_unusable_values(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        build()


def test_settings_keep_usable_values() -> None:
    assert Latency.uniform(0.0).medians_ms["read"] == 0.0
    assert EmulatorSettings(token_lifetime_seconds=4).token_lifetime_seconds == 4
    assert ServeOptions(port=0).port == 0 and ServeOptions(port=65535).port == 65535


@pytest.mark.parametrize("flag, value, expected", [
    ("--port", "99999", "a port number between 0 and 65535"),
    ("--port", "-1", "a port number between 0 and 65535"),
    ("--port", "http", "a port number between 0 and 65535"),
    ("--latency-ms", "-5", "a number of milliseconds between 0 and"),
    ("--latency-ms", "nan", "a number of milliseconds between 0 and"),
    ("--latency-ms", "inf", "a number of milliseconds between 0 and"),
    ("--slow-ms", "nan", "a number of milliseconds between 0 and"),
    ("--storm-seconds", "-1", "a number of seconds between 0 and"),
    ("--latency-sigma", "nan", "a spread between 0 and 3"),
    ("--token-lifetime", "0", "a whole number of seconds between 2 and 86400"),
    ("--token-lifetime", "-1", "a whole number of seconds between 2 and 86400"),
])
def test_the_emulator_command_refuses_bad_settings(flag: str, value: str, expected: str,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def serve(*args: object) -> None:
        raise AssertionError("a bad setting reached the server")

    monkeypatch.setattr("batch.emulator.server.serve", serve)
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--memory", flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_the_emulator_command_refuses_a_folder_as_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--db", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"--db {tmp_path} is a folder" in err and "Traceback" not in err


def test_the_emulator_command_refuses_a_database_it_cannot_use(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # A file that is not SQLite is refused untouched: its mode was tightened to 0600 and a
    # .lock made beside it first (found by a bug hunt).
    junk = tmp_path / "notes.csv"
    junk.write_bytes(b"this is not SQLite" * 100)
    junk.chmod(0o644)
    assert main(["emulator", "--db", str(junk), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "is a file that is not an emulator directory (not an SQLite database)" in err and "Traceback" not in err
    assert oct(junk.stat().st_mode & 0o777) == "0o644" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.csv"]
    assert main(["emulator", "reset", "--db", str(junk), "--yes"]) == 2  # nor removed (it was, by a reset)
    assert "is a file that is not an emulator directory" in capsys.readouterr().err and junk.exists()
    damaged = tmp_path / "damaged.db"  # an SQLite header over garbage: the directory's own opening says why
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    assert main(["emulator", "--db", str(damaged), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the emulator's directory" in err and "Traceback" not in err


@pytest.mark.parametrize("flags,needs_role", [([], False), (["--password-reset-needs-role"], True)])
def test_the_emulator_command_passes_the_password_role_setting(flags: list[str], needs_role: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`--password-reset-needs-role` turns on EmulatorSettings.password_reset_needs_role (off by default)."""
    seen: list[EmulatorSettings] = []

    def serve(options: object, settings: EmulatorSettings, out: object) -> None:
        seen.append(settings)

    monkeypatch.setattr("batch.emulator.server.serve", serve)
    assert main(["emulator", "--memory", *flags]) in (0, None)
    assert [s.password_reset_needs_role for s in seen] == [needs_role]


def test_an_older_store_gives_its_default_app_the_user_administrator_role(tmp_path: Path) -> None:
    """A directory file made before directory roles existed: the default app gains its role once."""
    path = tmp_path / "old.db"
    store = Store(path)
    client_id = store.default_app().client_id
    with store.transaction() as db:
        db.execute("DELETE FROM meta WHERE key IN ('default_app_roles', ?)", (f"directory_roles:{client_id}",))
    assert store.directory_roles(client_id) == frozenset()
    store.close()
    reopened = Store(path)
    assert reopened.directory_roles(client_id) == {"User Administrator"}
    reopened.close()


def test_two_openings_of_a_new_directory_at_once_both_get_it(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Two commands started together right after `emulator reset` both found the new directory
    # unseeded and both seeded it: one ended in an internal error (IntegrityError), one time in
    # a dozen (found by a bug hunt). Here both are held until each has found it unseeded.
    import threading

    both_looked = threading.Barrier(2, timeout=10)
    held: set[int] = set()
    add_tenant = Store.add_tenant

    def add_tenant_together(self: Store, *args: object, **kwargs: object) -> object:
        if threading.get_ident() not in held:
            held.add(threading.get_ident())
            both_looked.wait()
        return add_tenant(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "add_tenant", add_tenant_together)
    opened: list[object] = []

    def open_it() -> None:
        try:
            store = Store(tmp_path / "new.db")
            opened.append((len(store.tenants()), store.default_app().client_id))
            store.close()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            opened.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(opened) == 2 and opened[0] == opened[1] and opened[0][0] == 1, opened  # type: ignore[index]
