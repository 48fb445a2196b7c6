"""The files an export writes beside its output, the `--report` page and the `--since` state
file: private as the output is, never written through a link, and a state file edited by
hand refused in one line (found by a review: both were written with the umask's mode and
through a planted link, and a state file whose fields had other types was an internal error)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from batch.cli import main


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ENTRA_BATCH_TARGET", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def export(here: Path, *options: str, out: str = "c.csv") -> int:
    return main(["export", "--quiet", "--out", str(here / out), "--out-dir", str(here / ("run-" + out)), *options])


def test_the_report_and_the_state_file_are_private_whatever_the_umask(here: Path) -> None:
    old = os.umask(0o022)
    try:
        assert export(here, "--report", str(here / "r.html"), "--since", str(here / "state.json")) == 0
    finally:
        os.umask(old)
    modes = {name: oct(stat.S_IMODE(os.stat(here / name).st_mode)) for name in ("c.csv", "r.html", "state.json")}
    assert modes == {"c.csv": "0o600", "r.html": "0o600", "state.json": "0o600"}
    assert json.loads((here / "state.json").read_text())["deltaLink"]
    assert sorted(p.name for p in here.iterdir() if p.name.endswith(".tmp")) == []


def test_a_link_at_the_report_s_path_is_refused_or_replaced_never_written_through(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = here / "victim.txt"
    victim.write_text("precious\n")
    (here / "r.html").symlink_to(victim)
    capsys.readouterr()
    assert export(here, "--report", str(here / "r.html")) == 2
    assert "--report" in capsys.readouterr().err and not (here / "c.csv").exists()
    assert export(here, "--report", str(here / "r.html"), "--force") == 0  # the link itself is replaced
    assert victim.read_text() == "precious\n"
    assert not (here / "r.html").is_symlink() and "<html" in (here / "r.html").read_text().lower()


@pytest.mark.parametrize(("field", "value"), [
    ("target", "hand-edited"), ("columns", 5), ("extensions", [1, 2]), ("deltaLink", 123),
    ("columns", [1]), ("synced_at", {}),
])
def test_a_state_file_edited_by_hand_is_refused_in_one_line(here: Path, capsys: pytest.CaptureFixture[str],
                                                            field: str, value: object) -> None:
    state = here / "state.json"
    assert export(here, "--since", str(state)) == 0
    saved = json.loads(state.read_text())
    saved[field] = value
    state.write_text(json.dumps(saved))
    capsys.readouterr()
    assert export(here, "--since", str(state), out="d.csv") == 2
    err = capsys.readouterr().err
    assert "not a state file written by `entra-batch export --since`" in err and "internal error" not in err, err
    assert "Traceback" not in err and sum("state file" in line for line in err.splitlines()) == 1, err


@pytest.mark.parametrize("option", [["--select", "bogusprop"], ["--filter", "bogus eq 1"],
                                    ["--created-after", "notadate"]])
def test_a_usage_error_found_once_connected_leaves_no_run_folder(here: Path, option: list[str],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Each left an empty runs/<time>-export folder behind (the verbs remove theirs).
    assert main(["export", "--quiet", "--out", str(here / "c.csv"), *option]) == 2
    assert "entra-batch:" in capsys.readouterr().err
    assert not (here / "runs").exists() or list((here / "runs").iterdir()) == []
    (here / "mine").mkdir()  # a folder the administrator made stays
    assert main(["export", "--quiet", "--out", str(here / "c.csv"), "--out-dir", str(here / "mine"), *option]) == 2
    assert (here / "mine").is_dir()


def test_a_full_disk_under_the_export_s_bookkeeping_is_one_line(here: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The ids already written are kept in SQLite beside the output: a full disk there raised
    # sqlite3.OperationalError, an internal error (exit 4). Found by a review.
    import sqlite3

    from batch.export import listing

    def full(self: object, users: object) -> object:
        raise sqlite3.OperationalError("database or disk is full")

    assert export(here, "--sequential", out="warm.csv") == 0  # the emulator's directory made first
    monkeypatch.setattr(listing.SeenIds, "fresh", full)
    capsys.readouterr()
    assert export(here, "--sequential") == 3
    err = capsys.readouterr().err
    assert "cannot write" in err and "database or disk is full" in err and "internal error" not in err, err
