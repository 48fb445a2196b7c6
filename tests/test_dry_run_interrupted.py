"""A dry run's plan.csv across interruptions: every row once, in input order, after a refused
lookup, a write cut short (a full disk), or a crash of the machine that lost plan.csv's last
lines but not the journal's (found by a review of `PlanFile.keep_rows_up_to`)."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

import batch
from batch.cli import main
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.errors import RunFolderUnsafe
from batch.io.dialect import OutputDialect
from batch.run import files
from batch.run.files import PlanFile
from batch.run.journal import Journal
from batch.run.lifecycle import resume_run, start_run
from batch.run.request import RunRequest
from batch.verbs.base import PlanLine

HEADER = "signInType,signInName,displayName,mail\r\n"


def plan_rows(run_dir: Path) -> list[int]:
    with (run_dir / "plan.csv").open(newline="", encoding="utf-8-sig") as handle:
        return [int(r["row"]) for r in csv.DictReader(handle)]


def journaled(run_dir: Path) -> list[int]:
    journal = Journal(run_dir)
    try:
        return [o.row for o in journal.outcomes()]
    finally:
        journal.close()


def forget_after(run_dir: Path, row: int) -> None:
    """The journal a kill left: rows after `row` never journaled."""
    journal = Journal(run_dir)
    journal._db.execute("DELETE FROM rows WHERE row > ?", (row,))  # noqa: SLF001
    journal._db.commit()  # noqa: SLF001
    journal.close()


def two_dry_runs(tmp_path: Path, rows: list[str], code: int = 0) -> tuple[Path, Path]:
    """The same dry run twice: one left whole, one to interrupt."""
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "".join(rows), encoding="utf-8", newline="")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for out in (whole, cut):
        assert main(["create", str(source), "--dry-run", "--out-dir", str(out), "--quiet"]) == code
    return whole, cut


ROWS = [f"emailAddress,c{i}@example.com,Customer {i},\r\n" for i in range(1, 41)]


# ---- a refused lookup ------------------------------------------------------------------------


class Refusing(httpx.AsyncBaseTransport):
    """The emulator, but a lookup whose URL names one of `keys` is answered 403 (inside a
    $batch too), as when the app's read permission is withdrawn mid-run."""

    def __init__(self, inner: httpx.AsyncBaseTransport, keys: list[str]) -> None:
        self.inner = inner
        self.keys = [f"'{key}'" for key in keys]

    def refused(self, url: str) -> bool:
        return any(key in unquote(url) for key in self.keys)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        denied = {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges."}}
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/$batch"):
            return httpx.Response(403, json=denied) if self.refused(str(request.url)) else response
        asked = {r["id"]: r["url"] for r in json.loads(await request.aread())["requests"]}
        body = json.loads(await response.aread())
        for answer in body["responses"]:
            if self.refused(asked[answer["id"]]):
                answer.update(status=403, body=denied)
        return httpx.Response(200, json=body)


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EmulatorTransport, batch.Target]]:
    """The emulator, and a target signed in as an app that may only read."""
    monkeypatch.setenv("ENTRA_BATCH_REPLICATION_WAITS", "0.01,0.02")
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "emulator.db")
    tenant = store.tenant(store.default_app().tenant_id)
    assert tenant is not None
    app = store.add_app(tenant.id, ["User.Read.All", "Organization.Read.All"], display_name="reader")
    yield EmulatorTransport(EmulatorApp(store)), batch.Target(
        "url", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id, client_secret=app.secret,
        authority_host="http://emulator.local", domain=tenant.default_domain)
    store.close()


@pytest.mark.parametrize(("refused", "invalid"), [([7], None), (list(range(21, 41)), 30)],
                         ids=["one row", "every row from 21 on, an invalid row among them"])
async def test_a_dry_run_stopped_by_a_refused_lookup_resumes_in_input_order(
        reader: tuple[EmulatorTransport, batch.Target], tmp_path: Path, refused: list[int], invalid: int | None) -> None:
    # The refused row had no line, but the other rows of its group were journaled and written:
    # the journal was no longer the first rows of the input, and resume wrote the refused
    # row's line after later rows (and, killed once more, twice).
    transport, target = reader
    lines = [f"c{i}@example.com,C{i}\r\n" for i in range(1, 41)]
    if invalid:
        lines[invalid - 1] = f"not-an-email,C{invalid}\r\n"
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName\r\n" + "".join(lines), encoding="utf-8", newline="")
    out = tmp_path / "dry"
    request = RunRequest(verb="create", input=str(source), out_dir=str(out), dry_run=True, concurrency=1)
    with pytest.raises(batch.RunError):  # every key looked up, as before the directory's listing is complete
        await start_run(request, target, transport=Refusing(transport, [f"c{i}@example.com" for i in refused]),
                        directory_index=False)
    first = min(refused)
    assert journaled(out) == plan_rows(out) == list(range(1, first))
    await resume_run(out, target, transport=transport)
    assert plan_rows(out) == list(range(1, 41))
    assert journaled(out) == list(range(1, 41))


# ---- a write cut short -----------------------------------------------------------------------


@pytest.mark.parametrize(("keep", "what"), [
    (1, "inside the row number"),
    (4, "inside a cell"),
    (None, "inside an accented character"),
])
def test_a_plan_line_cut_short_is_planned_again(home: Path, tmp_path: Path, keep: int | None, what: str) -> None:
    # A cut inside the row number kept the stub ("2" of "26", a row journaled already) and the
    # resume's lines were glued to it; a cut inside a character made the dry run unresumable.
    rows = list(ROWS)
    rows[25] = "emailAddress,renée@example.com,Renée,\r\n"  # row 26: invalid, its value quoted in plan.csv
    whole, cut = two_dry_runs(tmp_path, rows, code=1)
    forget_after(cut, 25)
    data = (cut / "plan.csv").read_bytes()
    start = data.index(b"\r\n26,") + 2
    end = start + keep if keep is not None else data.index("é".encode(), start) + 1
    (cut / "plan.csv").write_bytes(data[:end])
    assert main(["resume", str(cut), "--quiet"]) == 1
    assert (cut / "plan.csv").read_bytes() == (whole / "plan.csv").read_bytes()


def test_cutting_plan_csv_drops_a_last_record_cut_short(tmp_path: Path) -> None:
    plan = PlanFile(tmp_path, OutputDialect(";"))
    plan.append([PlanLine(1, "a", "create", reason="one"), PlanLine(2, "b", "fail", reason="two\r\nlines"),
                 PlanLine(3, "c", "fail", reason="three\r\nlines")])
    plan.close()
    written = (tmp_path / "plan.csv").read_bytes()
    two = written.index(b"\r\n2;") + 2
    three = written.index(b"\r\n3;") + 2
    cases = [
        (written, 3, written),
        (written[:three + 1], 2, written[:three]),  # inside the row number
        (written[:written.index(b"three\r\n") + 7], 2, written[:three]),  # at a line break inside a quoted cell
        (written[:two] + b"2;b;fail;;;;\"two\r\n", 1, written[:two]),  # the same, a row journaled already
        (written + b"\x00" * 300, 3, written),  # what a crash may leave: a tail of zeros
        (written[:5], 0, b""),  # the header itself
    ]
    for given, kept, left in cases:
        (tmp_path / "plan.csv").write_bytes(given)
        assert PlanFile(tmp_path, OutputDialect(";")).keep_rows_up_to(9) == kept
        assert (tmp_path / "plan.csv").read_bytes() == left
    # A complete line that is not what entra-batch wrote is still refused, not cut.
    (tmp_path / "plan.csv").write_bytes(written + b"4;\xff\r\n")
    with pytest.raises(RunFolderUnsafe, match="is not the plan.csv entra-batch wrote"):
        PlanFile(tmp_path, OutputDialect(";")).keep_rows_up_to(9)


class FullAt(io.FileIO):
    """A file on a disk that is full once the file holds `limit` bytes: a write takes what
    fits, the next one fails (ENOSPC)."""

    def __init__(self, fd: int, limit: int) -> None:
        super().__init__(fd, "a", closefd=True)
        self.limit = limit

    def write(self, data: Any) -> int:
        room = self.limit - os.fstat(self.fileno()).st_size
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(bytes(data)[:room])


@pytest.mark.parametrize("where", ["row number", "character"])
def test_a_disk_full_inside_a_plan_line_is_reported_then_resumed(home: Path, tmp_path: Path, where: str,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # The full disk was reported as an internal error (closing plan.csv failed again and hid
    # it); the line it cut was kept as it was, or made the dry run unresumable.
    rows = [f"emailAddress,{'renée' if i % 10 == 0 else 'c'}{i}@example.com,C {i},\r\n" for i in range(1, 3001)]
    whole, cut = two_dry_runs(tmp_path, rows, code=1)
    data = (whole / "plan.csv").read_bytes()
    line = data.index(b"\r\n1001,") + 2  # the first line of the second group
    limit = line + 2 if where == "row number" else data.index("é".encode(), line) + 1
    cut.rename(tmp_path / "gone")

    def open_full(path: Path, columns: Any, dialect: OutputDialect) -> Any:
        fd, _ = files.open_or_create(path, os.O_WRONLY | os.O_APPEND, advice="")
        handle = io.TextIOWrapper(io.BufferedWriter(FullAt(fd, limit)), encoding="utf-8", newline="")
        handle.write("\ufeff")
        dialect.writer(handle).writerow(columns)
        return handle

    with monkeypatch.context() as full:
        full.setattr(files, "open_csv_output", open_full)
        capsys.readouterr()
        assert main(["create", str(tmp_path / "in.csv"), "--dry-run", "--out-dir", str(cut), "--quiet"]) == 3
        err = capsys.readouterr().err
    assert "Free some disk space" in err and not (cut / "error.log").exists(), err
    assert main(["resume", str(cut), "--quiet"]) == 1
    assert (cut / "plan.csv").read_bytes() == (whole / "plan.csv").read_bytes()


# ---- lines lost with the machine -------------------------------------------------------------


def test_journaled_rows_whose_lines_never_reached_the_disk_are_planned_again(home: Path, tmp_path: Path) -> None:
    # plan.csv is flushed, not synced, line by line; the journal is synced: after a crash of
    # the machine the journal may hold rows whose lines are gone. They were never written again.
    whole, cut = two_dry_runs(tmp_path, ROWS)
    forget_after(cut, 30)
    data = (cut / "plan.csv").read_bytes()
    (cut / "plan.csv").write_bytes(data[:data.index(b"\r\n21,") + 2])  # on the disk up to row 20
    assert main(["resume", str(cut), "--quiet"]) == 0
    assert (cut / "plan.csv").read_bytes() == (whole / "plan.csv").read_bytes()
    assert (cut / "results.csv").read_bytes() == (whole / "results.csv").read_bytes()


# ---- a file of invalid rows ------------------------------------------------------------------


def test_a_dry_run_records_its_refusals_as_it_goes(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Refused rows waited in memory for the next valid row's group: a file of invalid rows sat
    # there whole (340 MB at 300,000 rows) until its end, and a kill lost all of it.
    from batch.run.pipeline import CHUNK_ROWS

    rows = ROWS[:3] + [f"emailAddress,not-an-email-{i},N {i},\r\n" for i in range(3 * CHUNK_ROWS)] + ROWS[3:5]
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "".join(rows), encoding="utf-8", newline="")
    recorded: list[int] = []
    mark_done = Journal.mark_done

    def counted(self: Journal, outcomes: Any, *, commit: bool = True) -> None:
        outcomes = list(outcomes)
        recorded.append(len(outcomes))
        mark_done(self, outcomes, commit=commit)

    monkeypatch.setattr(Journal, "mark_done", counted)
    assert main(["create", str(source), "--dry-run", "--out-dir", str(tmp_path / "dry"), "--quiet"]) == 1
    assert plan_rows(tmp_path / "dry") == list(range(1, len(rows) + 1))
    assert sum(recorded) == len(rows) and max(recorded) <= 2 * CHUNK_ROWS, recorded
