"""Run folders as things (issue 12, findings 6 and 10): one run per file and target, no reset
of a customer whose password another run folder handed out, provisional results, usage
errors that leave no folder, `entra-batch runs` and `runs prune`."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import batch
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.emulator.settings import EmulatorSettings
from batch.run.index import RunIndex

HEADER = "signInType,signInName,displayName\r\n"


def rows_file(path: Path, count: int) -> Path:
    path.write_text(HEADER + "".join(f"emailAddress,c{n}@example.com,C {n}\r\n" for n in range(1, count + 1)),
                    encoding="utf-8", newline="")
    return path


def results(run_dir: Path) -> dict[int, dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8") as handle:
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
