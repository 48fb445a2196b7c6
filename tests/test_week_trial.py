"""What an administrator's trial week found after issue 12's first round (the review of the
merged change and a new user's week against the emulator), each pinned by a test that failed
before its fix:

- a dry run's plan.csv left out the invalid rows (185 lines for 200 rows) and its summary
  counted rows "to fix" that retry.csv did not hold;
- the delete or reset question came before the tenant was named;
- `emulator reset` pulled the directory from under a running emulator, which kept serving the
  old one;
- `validate --profile` with the profile's secret unset forgot the profile's domain too;
- a full file run again said only "failed 200", the way out hidden in each row's message;
- a short run with unknown keys waited out the replication window without a word;
- `export --out - | head` ended with exit 3 "cannot write - (Broken pipe)";
- the run index rewrote itself to forget a folder (a run starting meanwhile could lose its
  line), and another run's password was matched by sign-in name, which a purged and recreated
  customer shares with its predecessor.
"""

from __future__ import annotations

import asyncio
import csv
import os
from pathlib import Path

import pytest

import batch
from batch.cli import main
from batch.cli.local import LocalEmulator
from batch.run.index import PasswordsElsewhere, RunIndex
from batch.run.lifecycle import start_run
from batch.run.request import RunRequest
from batch.run.watch import RunWatch
from tests.test_cli_errors import run_with_closed_stdout

HEADER = "signInType,signInName,displayName\r\n"


def rows_file(path: Path, names: list[str]) -> Path:
    path.write_text(HEADER + "".join(f"emailAddress,{n},{n.split('@')[0].title()}\r\n" for n in names),
                    encoding="utf-8", newline="")
    return path


def lines(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_a_dry_run_plans_every_row_and_counts_what_retry_csv_holds(home: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    existing = rows_file(tmp_path / "old.csv", ["ann@example.com"])
    assert main(["create", str(existing), "--quiet"]) == 0
    week = tmp_path / "week.csv"
    week.write_text(HEADER + "emailAddress,ann@example.com,Ann\r\nemailAddress,not-an-address,Bad\r\n"
                    "emailAddress,cat@example.com,Cat\r\n", encoding="utf-8", newline="")
    capsys.readouterr()
    assert main(["create", str(week), "--dry-run", "--out-dir", str(tmp_path / "dry"), "--quiet"]) == 1
    plan = lines(tmp_path / "dry" / "plan.csv")
    assert [(p["row"], p["action"], p["line"]) for p in plan] == [("1", "fail", "2"), ("2", "fail", "3"),
                                                                  ("3", "create", "4")]
    assert plan[1]["reason"].startswith("invalid: ")
    out = capsys.readouterr().out
    assert "would create 1, would fail 1 (exists: 1), invalid 1" in out
    retry = lines(tmp_path / "dry" / "retry.csv")
    assert [r["signInName"] for r in retry] == ["not-an-address"]
    assert "(the 1 row that ended invalid or failed)" in out


def test_the_question_comes_after_the_tenant_is_named(home: Path, tmp_path: Path) -> None:
    source = rows_file(tmp_path / "leavers.csv", [f"c{n}@example.com" for n in range(3)])
    said: list[str] = []
    with LocalEmulator() as local:
        target = local.target(batch.resolve_target("local", None))
        watch = RunWatch(on_target=lambda names, verb, rows: said.append(f"named {names.default_domain}"))

        def confirm(rows: int) -> bool:
            said.append(f"asked {rows}")
            return False

        request = RunRequest(verb="delete", input=str(source))
        with pytest.raises(batch.RunError, match="not confirmed"):
            asyncio.run(start_run(request, target, runs_root=tmp_path / "runs", transport=local.transport,
                                  watch=watch, confirm=confirm))
    assert said == ["named contoso.onmicrosoft.com", "asked 3"]
    assert not any((tmp_path / "runs").iterdir())  # refused: no folder left behind


def test_emulator_reset_refuses_while_the_directory_is_in_use(home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with LocalEmulator():  # as `entra-batch emulator` serving it, or a run on --target local
        assert main(["emulator", "reset", "--yes"]) == batch.ExitCode.USAGE
        assert "in use by a running `entra-batch emulator`" in capsys.readouterr().err
        assert (home / "emulator.db").exists()
    assert main(["emulator", "reset", "--yes"]) == 0
    assert not (home / "emulator.db").exists()


def test_validate_with_a_profile_whose_secret_is_unset_keeps_its_domain(home: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(mode=0o700, exist_ok=True)
    profiles = home / "profiles.toml"
    profiles.write_text('[emu]\ntarget = "https://127.0.0.1:8765/v1.0"\nauthority_host = "https://127.0.0.1:8765"\n'
                        'tenant_id = "t"\nclient_id = "c"\nclient_secret_env = "EMU_SECRET"\n'
                        'domain = "contoso.onmicrosoft.com"\n', encoding="utf-8")
    profiles.chmod(0o600)
    monkeypatch.delenv("EMU_SECRET", raising=False)
    source = tmp_path / "upn.csv"
    source.write_text("displayName,userPrincipalName\r\nA,a@fabrikam.com\r\n", encoding="utf-8", newline="")
    assert main(["validate", str(source), "--verb", "create", "--profile", "emu"]) == 1
    captured = capsys.readouterr()
    assert "row 1:" in captured.out and "contoso.onmicrosoft.com" in captured.out
    assert "checking with its domain" in captured.err


def test_a_file_run_again_says_once_how_to_skip_the_customers_that_exist(home: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = rows_file(tmp_path / "week.csv", ["ann@example.com", "bob@example.com"])
    assert main(["create", str(source), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["create", str(source), "--quiet"]) == 1
    assert ("2 rows failed because the customer already exists; to create only the missing customers of a file run "
            "before, run it again with --on-existing skip") in capsys.readouterr().err
    assert main(["create", str(source), "--quiet", "--on-existing", "skip"]) == 0


def test_unknown_keys_say_why_the_run_waited(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reset.csv"
    source.write_text("signInName\r\nghost@example.com\r\n", encoding="utf-8", newline="")
    assert main(["reset-password", str(source), "--quiet"]) == 1
    assert "1 row whose customer was not where the row wants it got a second look once Graph's replication delay " \
           "had passed" in capsys.readouterr().err


def test_an_export_to_a_closed_stdout_ends_with_141(home: Path, tmp_path: Path) -> None:
    assert main(["create", str(rows_file(tmp_path / "in.csv", ["ann@example.com"])), "--quiet"]) == 0
    done = run_with_closed_stdout(["export", "--out", "-", "--quiet"], home, tmp_path)
    assert done.returncode == 141, done.stderr
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr


def test_forgetting_a_folder_appends_and_a_new_start_brings_it_back(tmp_path: Path) -> None:
    index = RunIndex(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for folder in (one, two):
        index.run_started(folder, verb="create", target="local", fingerprint="f", target_identity={}, started=1.0,
                          dry_run=False)
    before = index.path.read_bytes()
    index.forget([one])
    after = index.path.read_bytes()
    assert after.startswith(before)  # appended, never rewritten
    assert [e.run_dir for e in index.runs()] == [two.resolve()]
    index.run_started(one, verb="create", target="local", fingerprint="f", target_identity={}, started=2.0,
                      dry_run=False)
    assert [e.run_dir for e in index.runs()] == [two.resolve(), one.resolve()]


def test_another_runs_password_is_matched_by_object_id_only(tmp_path: Path) -> None:
    identity = {"kind": "local", "tenant_id": None, "graph_url": "http://emulator.local/v1.0"}
    index = RunIndex(tmp_path)
    earlier, this = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    for folder in (earlier, this):
        folder.mkdir(parents=True)
        (folder / "journal.db").write_bytes(b"")
        index.run_started(folder, verb="create", target="local", fingerprint="f", target_identity=identity,
                          started=1.0, dry_run=False)
    fd = os.open(earlier / "passwords.csv", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, "\ufeffrow,sign_in_name,object_id,password,display_name,contact\r\n"
                 "1,ann@example.com,old-id,Secret-1,Ann,ann@example.com\r\n".encode())
    os.close(fd)
    elsewhere = PasswordsElsewhere(index, verb="create", fingerprint="f", target_identity=identity, run_dir=this)
    assert elsewhere("old-id", "ann@example.com") == earlier.resolve()
    # The same sign-in name on a customer created since (the first one purged): not that folder's password.
    assert elsewhere("new-id", "ann@example.com") is None


def test_the_readme_names_every_status_results_csv_can_hold() -> None:
    """Finding 9: the README's status list omitted password_reset, deleted, restored, purged."""
    from batch.outcome import Status

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("`status` is one of")
    listed = readme[start:readme.index("- `retry.csv`", start)]
    assert [s.value for s in Status if f"`{s.value}`" not in listed] == []
