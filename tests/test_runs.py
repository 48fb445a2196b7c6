"""Run folders as things (issue 12, findings 6 and 10): one run per file and target, no reset
of a customer whose password another run folder handed out, provisional results, usage
errors that leave no folder, `entra-batch runs` and `runs prune`."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import batch
from batch.cli import main
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.emulator.settings import EmulatorSettings
from batch.outcome import Outcome, SentRow, Status
from batch.run.index import RunIndex
from batch.run.journal import Journal

HEADER = "signInType,signInName,displayName\r\n"


def rows_file(path: Path, count: int) -> Path:
    path.write_text(HEADER + "".join(f"emailAddress,c{n}@example.com,C {n}\r\n" for n in range(1, count + 1)),
                    encoding="utf-8", newline="")
    return path


def results(run_dir: Path) -> dict[int, dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return {int(r["row"]): r for r in csv.DictReader(handle)}


def passwords(run_dir: Path) -> dict[str, str]:
    with (run_dir / "passwords.csv").open(newline="", encoding="utf-8-sig") as handle:
        return {r["object_id"]: r["password"] for r in csv.DictReader(handle)}


@dataclasses.dataclass
class Emulator:
    store: Store
    app: EmulatorApp
    target: batch.Target


@pytest.fixture
def emulator(home: Path, tmp_path: Path) -> Iterator[Emulator]:
    store = Store(tmp_path / "emulator.db")
    app = store.default_app()
    tenant = store.tenant(app.tenant_id)
    assert tenant is not None
    target = batch.Target("url", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                          client_secret=app.secret, authority_host="http://emulator.local",
                          domain=tenant.default_domain)
    yield Emulator(store, EmulatorApp(store, EmulatorSettings(keep_password_digests=True)), target)
    store.close()


class Stalling(httpx.AsyncBaseTransport):
    """The emulator, until the `stall_at`-th $batch: that one is delivered (`deliver`) or not,
    and its answer never comes back, as when the process is stopped while it waits. Counts
    the password changes (PATCH with passwordProfile) it forwards."""

    def __init__(self, app: EmulatorApp, stall_at: int | None = None, *, deliver: bool = True) -> None:
        self.inner = EmulatorTransport(app)
        self.stall_at, self.deliver = stall_at, deliver
        self.batches = 0
        self.stalled = asyncio.Event()
        self.password_changes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.method == "POST" and request.url.path.endswith("/$batch"):
            self.batches += 1
            self.password_changes += body.count(b'"PATCH"') if b"passwordProfile" in body else 0
            if self.batches == self.stall_at:
                if self.deliver:
                    await self.inner.handle_async_request(request)
                self.stalled.set()
                await asyncio.Event().wait()  # never answered
        elif request.method == "PATCH" and b"passwordProfile" in body:
            self.password_changes += 1
        return await self.inner.handle_async_request(request)


async def interrupted(request: batch.RunRequest, emulator: Emulator, transport: Stalling, **options: object) -> Path:
    """Start a run and stop it (as Ctrl-C does: its task cancelled) once its transport stalls."""
    folders: list[Path] = []
    task = asyncio.ensure_future(batch.start_run(request, emulator.target, transport=transport,
                                                 on_start=folders.append, **options))  # type: ignore[arg-type]
    await asyncio.wait_for(transport.stalled.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return folders[0]


async def test_finding_6_two_runs_on_one_file_never_reset_each_others_passwords(emulator: Emulator,
                                                                                 tmp_path: Path) -> None:
    source = rows_file(tmp_path / "in.csv", 10)
    request = batch.RunRequest(verb="create", input=str(source), batch_size=5, concurrency=1)
    # Run A: rows 1-5 created and done (passwords on file); rows 6-10 created, answer lost.
    run_a = await interrupted(dataclasses.replace(request, out_dir=str(tmp_path / "a")), emulator,
                              Stalling(emulator.app, stall_at=2))
    assert sorted(results(run_a)) == [1, 2, 3, 4, 5]  # provisional results.csv: the rows done so far

    # Run B on the same file and target is refused while A is unfinished, naming A and resume.
    with pytest.raises(batch.RunError) as refused:
        await batch.start_run(dataclasses.replace(request, out_dir=str(tmp_path / "b")), emulator.target,
                              transport=EmulatorTransport(emulator.app))
    assert refused.value.exit_code == batch.ExitCode.USAGE
    assert str(run_a) in str(refused.value) and f"entra-batch resume {run_a}" in str(refused.value)
    assert not (tmp_path / "b").exists()

    # With --new-run it starts anyway; it is stopped with rows 1-5 sent and never answered.
    run_b = await interrupted(dataclasses.replace(request, out_dir=str(tmp_path / "b")), emulator,
                              Stalling(emulator.app, stall_at=1, deliver=False), new_run=True)

    # Resume B: rows 1-5 are A's customers, whose passwords are in A's passwords.csv: not reset.
    resumed_b = Stalling(emulator.app)
    await batch.resume_run(run_b, emulator.target, transport=resumed_b)
    assert resumed_b.password_changes == 0
    lines_b = results(run_b)
    for row in range(1, 6):
        assert lines_b[row]["status"] == "created"
        assert lines_b[row]["error_message"] == (f"created by the run in {run_a.resolve()}; its password is in that "
                                                 "folder's passwords.csv")
    assert {lines_b[row]["status"] for row in range(6, 11)} == {"failed"}  # A's, and B never claimed them

    # Resume A: its own rows 6-10 get the fresh passwords their lost answers took with them.
    await batch.resume_run(run_a, emulator.target, transport=EmulatorTransport(emulator.app))
    lines_a = results(run_a)
    assert {lines_a[row]["status"] for row in range(1, 11)} == {"created"}
    handed_out = passwords(run_a)
    assert len(handed_out) == 10 and not (run_b / "passwords.csv").exists()
    for object_id, password in handed_out.items():
        assert emulator.store.password_is(object_id, password), "a password in A's passwords.csv is stale"
    assert emulator.store.live_user_count(emulator.target.tenant_id or "") == 10


async def test_a_dry_run_and_a_finished_run_do_not_block_a_new_run(emulator: Emulator, tmp_path: Path) -> None:
    source = rows_file(tmp_path / "in.csv", 3)
    transport = EmulatorTransport(emulator.app)
    request = batch.RunRequest(verb="create", input=str(source))
    await batch.start_run(dataclasses.replace(request, out_dir=str(tmp_path / "one")), emulator.target,
                          transport=transport)
    again = await batch.start_run(dataclasses.replace(request, out_dir=str(tmp_path / "two"), on_existing="skip"),
                                  emulator.target, transport=transport)
    assert again.counts["skipped"] == 3
    index = RunIndex()
    assert [e.run_dir for e in index.runs()] == [(tmp_path / "one").resolve(), (tmp_path / "two").resolve()]
    assert all(e.finished is not None for e in index.runs())


# ---- usage errors leave no folder (finding 10) ------------------------------------------------------


def test_finding_10_a_usage_error_after_the_folder_was_made_leaves_runs_empty(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    source = rows_file(tmp_path / "in.csv", 2)
    not_a_certificate = tmp_path / "app.pem"
    not_a_certificate.write_text("not a certificate\n", encoding="utf-8")
    for name, value in (("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"), ("AZURE_CLIENT_ID", "app"),
                        ("AZURE_CLIENT_CERTIFICATE_PATH", str(not_a_certificate))):
        monkeypatch.setenv(name, value)
    assert main(["create", str(source), "--quiet", "--target", "http://127.0.0.1:9/v1.0"]) == batch.ExitCode.USAGE
    assert "private key" in capsys.readouterr().err
    assert list((tmp_path / "runs").iterdir()) == []
    assert RunIndex().runs() == []
    # --out-dir: the folder it named is removed when the run made it, emptied when it was there.
    assert main(["create", str(source), "--quiet", "--target", "http://127.0.0.1:9/v1.0",
                 "--out-dir", str(tmp_path / "new")]) == batch.ExitCode.USAGE
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir(mode=0o700)
    assert main(["create", str(source), "--quiet", "--target", "http://127.0.0.1:9/v1.0",
                 "--out-dir", str(tmp_path / "mine")]) == batch.ExitCode.USAGE
    assert list((tmp_path / "mine").iterdir()) == []


# ---- runs as things (finding 10) ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "customers.csv"


def killed_run(run_dir: Path, source: Path) -> None:
    """A run folder as kill -9 leaves it: row 1 done, row 2 sent without an answer, no results.csv."""
    run_dir.mkdir(mode=0o700)
    journal = Journal(run_dir)
    journal.set_meta(request=dataclasses.asdict(batch.RunRequest(verb="create", input=str(source.resolve()))),
                     fingerprint=hashlib.sha256(source.read_bytes()).hexdigest(), target="local",
                     target_identity={"kind": "local", "tenant_id": None, "graph_url": "http://emulator.local/v1.0"},
                     started=time.time() - 10, records=3)
    journal.mark_sent([SentRow(2, "c2@example.com", time.time() - 5, True, 1)])
    journal.mark_done([Outcome(1, "c1@example.com", Status.CREATED, "obj-1", 201, attempts=1)])
    journal.close()


def test_finding_10_runs_lists_shows_and_writes_provisional_results(home: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    source = rows_file(tmp_path / "in.csv", 3)
    assert main(["create", str(source), "--quiet", "--out-dir", str(tmp_path / "done")]) == 0
    # A dry run is listed too (its rows exist now, so it says they would fail: exit 1).
    assert main(["create", str(source), "--quiet", "--dry-run", "--out-dir", str(tmp_path / "dry")]) == 1
    killed = tmp_path / "runs" / "20260101T000000Z-create"
    (tmp_path / "runs").mkdir(mode=0o700, exist_ok=True)
    killed_run(killed, source)  # not in the index: found under ./runs/
    capsys.readouterr()
    assert main(["runs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split("\t") == ["folder", "verb", "target", "started", "state", "counts"]
    rows = {line.split("\t")[0]: line.split("\t") for line in listed[1:]}
    assert rows["done"][1:3] == ["create", "local"] and rows["done"][4:] == ["finished", "created 3"]
    assert rows["runs/20260101T000000Z-create"][4:] == ["interrupted", "created 1, not finished 2"]
    assert rows["dry"][1] == "create (dry run)" and rows["dry"][4] == "finished"

    assert not (killed / "results.csv").exists()
    assert main(["runs", "show", str(killed)]) == 0
    shown = capsys.readouterr().out
    assert "state:    interrupted" in shown and "1 row sent without an answer" in shown
    assert f"`entra-batch resume {killed}`" in shown and "provisional" in shown
    assert sorted(results(killed)) == [1]

    # The unfinished run blocks a second run of the same file (but not one with --new-run).
    assert main(["create", str(source), "--quiet"]) == batch.ExitCode.USAGE
    assert f"entra-batch resume {killed.resolve()}" in capsys.readouterr().err
    assert main(["create", str(source), "--quiet", "--new-run", "--on-existing", "skip"]) == 0


def test_finding_10_prune_removes_only_old_finished_folders_and_keeps_passwords(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generated = rows_file(tmp_path / "in.csv", 2)
    own = tmp_path / "own.csv"
    own.write_text("signInType,signInName,displayName,password\r\nemailAddress,x@example.com,X,Own-Password-1!\r\n",
                   encoding="utf-8", newline="")
    assert main(["create", str(generated), "--quiet", "--out-dir", str(tmp_path / "with-passwords")]) == 0
    assert main(["create", str(own), "--quiet", "--out-dir", str(tmp_path / "plain")]) == 0
    killed_run(tmp_path / "killed", rows_file(tmp_path / "other.csv", 3))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep", encoding="utf-8")
    (tmp_path / "runs").mkdir(mode=0o700, exist_ok=True)
    (tmp_path / "runs" / "link").symlink_to(outside)
    capsys.readouterr()

    assert main(["runs", "prune", "--older-than", "1d"]) == 0  # nothing that old
    assert (tmp_path / "plain").exists()
    assert main(["runs", "prune", "--older-than", "0m", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert out.out == "would remove plain\n" and "kept with-passwords" in out.err
    assert (tmp_path / "plain").exists()
    assert main(["runs", "prune", "--older-than", "0m"]) == 0
    assert capsys.readouterr().out == "removed plain\n"
    assert not (tmp_path / "plain").exists() and (tmp_path / "with-passwords" / "passwords.csv").exists()
    assert (tmp_path / "killed").exists()  # unfinished: never pruned
    assert main(["runs", "prune", "--older-than", "0m", "--including-passwords"]) == 0
    assert not (tmp_path / "with-passwords").exists()
    assert (outside / "keep.txt").exists() and (tmp_path / "runs" / "link").is_symlink()
    assert [e.run_dir for e in RunIndex().runs()] == []


def test_prune_removes_a_run_s_own_files_only(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # A dry run with `--out-dir .` made a project folder a run folder: prune removed the project,
    # its notes and another run's passwords.csv beneath it; from inside it, prune removed the
    # working directory. And a folder under runs/ with a journal.db that is not ours was pruned
    # as "finished". Found by a review.
    project = tmp_path / "project"
    project.mkdir(mode=0o700)
    source = rows_file(tmp_path / "in.csv", 2)
    assert main(["create", str(source), "--dry-run", "--quiet", "--out-dir", str(project)]) == 0
    (project / "notes.txt").write_text("mine", encoding="utf-8")
    (project / "runs").mkdir(mode=0o700)
    (project / "runs" / "passwords.csv").write_text("row,password\r\n1,secret\r\n", encoding="utf-8")
    foreign = tmp_path / "runs" / "experiment-42"
    foreign.mkdir(parents=True, mode=0o700)
    (foreign / "journal.db").write_text("not SQLite", encoding="utf-8")
    (foreign / "summary.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(project)
    capsys.readouterr()
    assert main(["runs", "prune", "--older-than", "0m"]) == 0 and project.is_dir()
    assert "it is the working directory, or holds it" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "prune", "--older-than", "0m"]) == 0
    err = capsys.readouterr().err
    assert "holds others entra-batch did not write (notes.txt, runs)" in err
    assert sorted(p.name for p in project.iterdir()) == ["notes.txt", "runs"]  # the dry run's own files went
    assert (project / "runs" / "passwords.csv").exists()
    assert (foreign / "journal.db").exists() and "experiment-42: its journal.db describes no run" in err


def test_finding_10_the_readme_first_command_twice_gives_the_same_result(home: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = next(line for line in readme.splitlines() if "sample_data/customers.csv" in line)
    assert "entra-batch emulator reset --yes && .venv/bin/entra-batch create sample_data/customers.csv" in first
    (tmp_path / "sample_data").mkdir()
    (tmp_path / "sample_data" / "customers.csv").write_bytes(SAMPLE.read_bytes())
    # What the README's first line runs after installing (checked above).
    outcomes = []
    for _ in range(2):
        assert main(["emulator", "reset", "--yes"]) == 0
        assert main(["create", "sample_data/customers.csv", "--quiet"]) == 1
        outcomes.append(capsys.readouterr().out.splitlines()[1])
    assert outcomes == ["  created 43, invalid 7"] * 2
    # Without the reset, the second run finds the customers of the first: what finding 10 saw.
    assert main(["create", "sample_data/customers.csv", "--quiet"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == "  invalid 7, failed 43"


def test_emulator_reset_asks_and_needs_yes_without_a_terminal(home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", str(rows_file(tmp_path / "in.csv", 1)), "--quiet"]) == 0
    assert main(["emulator", "reset"]) == batch.ExitCode.USAGE  # stdin is not a terminal under pytest
    assert "pass --yes" in capsys.readouterr().err
    assert (home / "emulator.db").exists()
    assert main(["emulator", "reset", "--yes"]) == 0
    assert not (home / "emulator.db").exists()


def test_a_run_made_before_an_emulator_reset_says_so_on_resume(home: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # It said "made against the built-in emulator, but the current settings point at the
    # built-in emulator".
    assert main(["create", str(rows_file(tmp_path / "in.csv", 1)), "--quiet", "--out-dir", str(tmp_path / "r")]) == 0
    assert main(["emulator", "reset", "--yes"]) == 0
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "r"), "--quiet"]) == batch.ExitCode.USAGE
    err = capsys.readouterr().err
    assert "the emulator has been reset since" in err and "Start the run again in a new folder" in err, err


def test_a_second_start_of_the_same_file_while_one_is_starting_is_refused(home: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # Two creates of one file started together both found no earlier run holding rows and both
    # went on (their customers and passwords split between two folders). Found by a bug hunt.
    source = rows_file(tmp_path / "in.csv", 2)
    assert main(["create", str(source), "--dry-run", "--quiet", "--out-dir", str(tmp_path / "look")]) == 0
    journal = Journal(tmp_path / "look")
    identity = journal.meta()["target_identity"]
    journal.close()
    fingerprint = hashlib.sha256(source.read_bytes()).hexdigest()
    with RunIndex().starting(verb="create", fingerprint=fingerprint, target_identity=identity,
                             input_name=str(source)):  # as another process starting it holds it
        capsys.readouterr()
        assert main(["create", str(source), "--quiet", "--out-dir", str(tmp_path / "second")]) == 2
        assert "another create run on" in capsys.readouterr().err and not (tmp_path / "second").exists()
        assert main(["create", str(source), "--quiet", "--dry-run", "--out-dir", str(tmp_path / "dry")]) == 0
        assert main(["create", str(source), "--quiet", "--new-run", "--out-dir", str(tmp_path / "new")]) == 0
    assert main(["delete", str(source), "--quiet", "--out-dir", str(tmp_path / "other-verb")]) == 0


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry run", "run"])
def test_a_domain_the_tenant_has_not_verified_stops_the_run_before_it_sends(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: bool) -> None:
    # `--domain fabrikam.com` passed validate and the dry run ("would create"), and the run then
    # failed every row (Graph: the issuer must be the tenant's domain). Found by a bug hunt.
    source = rows_file(tmp_path / "in.csv", 2)
    capsys.readouterr()
    code = main(["create", str(source), "--domain", "fabrikam.com", "--quiet", "--out-dir", str(tmp_path / "r"),
                 *(["--dry-run"] if dry_run else [])])
    assert code == batch.ExitCode.USAGE
    assert "--domain fabrikam.com is not a verified domain of the tenant (contoso.onmicrosoft.com)" in \
        capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["create", str(source), "--domain", "Contoso.onmicrosoft.com", "--quiet", "--out-dir",
                 str(tmp_path / "ok"), *(["--dry-run"] if dry_run else [])]) == 0


class RefusingLater(httpx.AsyncBaseTransport):
    """The emulator, until the second $batch: its writes are refused with 403, as when the
    app's permission is taken away mid-run."""

    def __init__(self, app: EmulatorApp) -> None:
        self.inner = EmulatorTransport(app)
        self.batches = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/$batch"):
            self.batches += 1
            if self.batches >= 2:
                items = json.loads(request.content)["requests"]
                denied = {"error": {"code": "Authorization_RequestDenied",
                                    "message": "Insufficient privileges to complete the operation."}}
                return httpx.Response(200, json={"responses": [
                    {"id": item["id"], "status": 403, "headers": {"Content-Type": "application/json"}, "body": denied}
                    for item in items]})
        return await self.inner.handle_async_request(request)


async def test_finding_10_an_abort_with_exit_3_leaves_a_provisional_results_csv(emulator: Emulator,
                                                                                  tmp_path: Path) -> None:
    source = rows_file(tmp_path / "in.csv", 10)
    request = batch.RunRequest(verb="create", input=str(source), batch_size=5, concurrency=1,
                               out_dir=str(tmp_path / "run"))
    with pytest.raises(batch.RunError) as stopped:
        await batch.start_run(request, emulator.target, transport=RefusingLater(emulator.app))
    assert stopped.value.exit_code == batch.ExitCode.ABORTED
    lines = results(tmp_path / "run")
    assert {lines[row]["status"] for row in range(1, 6)} == {"created"} and len(lines) <= 10
