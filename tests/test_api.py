"""The Python API, used as a library user would: from an event loop of the test's own, with
no command line involved. It must return typed summaries and never print, exit, prompt or
touch signal handlers."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator.server_process import running_emulator

import batch
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "customers.csv"


@dataclasses.dataclass
class Emulator:
    store: Store
    transport: EmulatorTransport
    target: batch.Target


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    store = Store(tmp_path / "emulator.db")
    app = store.default_app()
    tenant = store.tenant(app.tenant_id)
    assert tenant is not None
    target = batch.Target("url", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                          client_secret=app.secret, authority_host="http://emulator.local",
                          domain=tenant.default_domain)
    yield Emulator(store, EmulatorTransport(EmulatorApp(store)), target)
    store.close()


async def test_a_verb_runs_from_the_callers_event_loop(emulator: Emulator, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    asked: list[int] = []
    request = batch.RunRequest(verb="create", input=str(SAMPLE))
    summary = await batch.start_run(request, emulator.target, runs_root=tmp_path / "runs",
                                    transport=emulator.transport, confirm=lambda rows: asked.append(rows) or True)
    assert isinstance(summary, batch.RunSummary)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.rows = 0  # type: ignore[misc]
    assert asked == [50]
    assert (summary.rows, summary.counts["created"], summary.counts["invalid"], summary.failed) == (50, 43, 7, 7)
    assert summary.exit_code == batch.ExitCode.ROWS_FAILED
    assert summary.run_dir.parent == tmp_path / "runs" and summary.passwords_file is not None
    with (summary.run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        assert len(list(csv.DictReader(handle))) == 50
    assert capfd.readouterr() == ("", "")  # the library says nothing
    assert signal.getsignal(signal.SIGTERM) is handler

    exported = await batch.run_export(batch.ExportRequest(out=str(tmp_path / "all.csv"), sequential=True),
                                      emulator.target, runs_root=tmp_path / "runs", transport=emulator.transport)
    with (tmp_path / "all.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 43
    assert exported.path == tmp_path / "all.csv"
    assert capfd.readouterr() == ("", "")


async def test_a_refused_confirmation_writes_and_sends_nothing(emulator: Emulator, tmp_path: Path) -> None:
    request = batch.RunRequest(verb="delete", input=str(SAMPLE), out_dir=str(tmp_path / "run"))
    with pytest.raises(batch.RunError) as refused:
        await batch.start_run(request, emulator.target, transport=emulator.transport, confirm=lambda rows: False)
    assert refused.value.exit_code == batch.ExitCode.USAGE
    assert not (tmp_path / "run").exists()


async def test_a_run_stopped_at_its_question_is_asked_again_on_resume(emulator: Emulator, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A delete killed at its question (its terminal closed) left a run folder that resume
    # finished without asking: every customer of the file deleted, never confirmed.
    monkeypatch.setenv("ENTRA_BATCH_REPLICATION_WAITS", "0.01,0.02")
    created = await batch.start_run(batch.RunRequest(verb="create", input=str(SAMPLE)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=emulator.transport)
    live = created.counts["created"]

    class Killed(BaseException):
        pass

    def killed(rows: int) -> bool:
        raise Killed

    run_dir = tmp_path / "delete"
    request = batch.RunRequest(verb="delete", input=str(SAMPLE), out_dir=str(run_dir))
    with pytest.raises(Killed):
        await batch.start_run(request, emulator.target, transport=emulator.transport, confirm=killed)
    with pytest.raises(batch.RunError, match="stopped at its confirmation question") as unasked:
        await batch.resume_run(run_dir, emulator.target, transport=emulator.transport)
    assert unasked.value.exit_code == batch.ExitCode.USAGE
    asked: list[int] = []
    with pytest.raises(batch.RunError, match="not confirmed; nothing was sent"):
        await batch.resume_run(run_dir, emulator.target, transport=emulator.transport,
                               confirm=lambda rows: asked.append(rows) and False)
    assert asked == [50] and emulator.store.count_users(emulator.target.tenant_id, "live") == live
    summary = await batch.resume_run(run_dir, emulator.target, transport=emulator.transport, confirm=lambda rows: True)
    assert summary.counts["deleted"] == live
    # Once confirmed, a later resume does not ask again.
    await batch.resume_run(run_dir, emulator.target, transport=emulator.transport)


async def test_a_run_stopped_before_its_question_is_asked_on_resume(emulator: Emulator, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Stopped before the question was reached (the sign-in refused at the start), the journal
    # said nothing of a confirmation, and resume deleted every customer unasked (found by a review).
    import httpx

    monkeypatch.setenv("ENTRA_BATCH_REPLICATION_WAITS", "0.01,0.02")

    class SignInRefused(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, json={"error": "invalid_client",
                                             "error_description": "AADSTS7000215: Invalid client secret provided."})

    run_dir = tmp_path / "delete"
    request = batch.RunRequest(verb="delete", input=str(SAMPLE), out_dir=str(run_dir))
    with pytest.raises(batch.RunError):
        await batch.start_run(request, emulator.target, transport=SignInRefused(), confirm=lambda rows: True)
    assert run_dir.is_dir()
    with pytest.raises(batch.RunError, match="stopped at its confirmation question"):
        await batch.resume_run(run_dir, emulator.target, transport=emulator.transport)
    asked: list[int] = []
    await batch.resume_run(run_dir, emulator.target, transport=emulator.transport,
                           confirm=lambda rows: asked.append(rows) or True)
    assert asked == [50]


async def test_the_local_target_needs_the_emulators_transport(tmp_path: Path) -> None:
    request = batch.RunRequest(verb="create", input=str(SAMPLE), out_dir=str(tmp_path / "run"))
    with pytest.raises(batch.RunError, match="built-in emulator"):
        await batch.start_run(request, batch.Target("local", "http://emulator.local/v1.0"))


def test_readme_python_example_runs_against_a_served_emulator(home: Path, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## Python API\n.*?```python\n(.*?)```", readme, re.S)
    assert example is not None, "README.md has a Python API example"
    (tmp_path / "customers.csv").write_bytes(SAMPLE.read_bytes())
    with running_emulator(home) as served:
        env = {**os.environ, **served.exports, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", example.group(1)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"43 created, 7 invalid or failed; see runs/\S+-create\n", done.stdout), done.stdout
