"""The files of a run folder (PRODUCT.md, "Contract of a run"): results.csv, passwords.csv
(created exclusively before the first secret is written, fsynced before a row is marked
done), summary.json, plan.csv (a dry run's). results.csv is always regenerated from the journal, so the two
can never disagree.

The folder is 0700 and every file in it 0600, whatever the umask; no file is opened through a
link, and one left by an earlier part of the run is checked on its descriptor
(`batch.run.private`)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from batch.errors import RunFolderTaken
from batch.io.quoting import neutralise
from batch.outcome import RESULT_COLUMNS
from batch.run.journal import Journal
from batch.run.private import (
    PRIVATE_DIR,
    check_dir,
    create_private,
    open_existing,
    open_or_create,
    private_dir,
    write_replacing,
)
from batch.verbs.base import PlanLine

PASSWORD_COLUMNS = ("row", "sign_in_name", "object_id", "password")
STARTUP_LEFTOVERS = frozenset({".lock", Journal.FILE, Journal.FILE + "-wal", Journal.FILE + "-shm", Journal.FILE + "-journal"})


def excel_safe(value: object) -> str:
    """Neutralise a cell that Excel would read as a formula (see `batch.io.quoting`)."""
    return neutralise(value)


def new_run_dir(base: Path, verb: str, now: datetime | None = None) -> Path:
    """A new `<UTC time>-<verb>` folder under `base`, 0700 (`base` too, when made now)."""
    private_dir(base, what="run folders")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        candidate = base / (f"{stamp}-{verb}" if n == 0 else f"{stamp}-{verb}-{n}")
        try:
            os.mkdir(candidate, PRIVATE_DIR)
        except FileExistsError:
            continue
        check_dir(candidate)
        return candidate
    raise RunFolderTaken(f"cannot make a new run folder under {base}")


def prepare_out_dir(path: Path) -> Path:
    """`--out-dir`: a new or empty folder of ours that nobody else can write, made 0700. A
    folder of an earlier run is finished with `resume`."""
    if path.exists() and path.is_dir():
        check_dir(path, tighten=False)  # before looking inside: others could have planted anything
        if (path / Journal.FILE).exists() and Journal.recorded(path):
            raise RunFolderTaken(f"{path} holds an earlier run; finish it with `entra-batch resume {path}` "
                                  "or choose another --out-dir")
        # A start killed before it recorded its run leaves only the lock and an empty journal.
        if any(p.name not in STARTUP_LEFTOVERS for p in path.iterdir()):
            raise RunFolderTaken(f"{path} is not empty; choose a new or empty --out-dir")
    return private_dir(path)


class PasswordsFile:
    """passwords.csv: created with O_EXCL, O_NOFOLLOW and mode 0600 when the first secret is
    about to be written. On resume the file of the earlier part of the run is opened at once,
    before anything is sent, without following a link, and checked on its descriptor: a
    regular file of ours that no one else can read, else the resume is refused."""

    NAME = "passwords.csv"
    ADVICE = ("resume refuses to add passwords to it. If it is the run's own file, make it private "
              "(`chmod 600` it, and know that others could read the passwords already in it); otherwise move it "
              "away and resume (a new passwords.csv is started)")

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / self.NAME
        self._fd: int | None = None
        try:
            self._fd = open_existing(self.path, os.O_RDWR | os.O_APPEND, tighten=False, advice=self.ADVICE)
        except FileNotFoundError:
            return
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        """A line without its line break was cut short (a full disk, a crash mid-write): its
        row was never marked done, and its password may be truncated. Drop it, so that the
        row is reconciled (a fresh password) and later lines do not run into it."""
        fd = self._fd
        assert fd is not None
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) == b"\n":
            return
        keep = 0
        step = 1 << 16
        position = size
        while position > 0 and not keep:
            start = max(0, position - step)
            block = os.pread(fd, position - start, start)
            at = block.rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
            position = start
        os.ftruncate(fd, keep)
        if keep == 0:  # not even its header
            _write_all(fd, self._header())
        os.fsync(fd)

    @staticmethod
    def _header() -> bytes:
        return (",".join(PASSWORD_COLUMNS) + "\r\n").encode()

    def _open(self) -> int:
        if self._fd is None:
            # FileExistsError if anything (a link too) appeared since the run started: the run
            # stops (RunFolderFailed says to move it away), and nothing is written through it.
            self._fd = create_private(self.path, os.O_RDWR | os.O_APPEND)
            _write_all(self._fd, self._header())
        return self._fd

    def append(self, lines: list[tuple[int, str, str, str]]) -> None:
        """Write all of it and fsync: only then may the rows be marked done."""
        if not lines:
            return
        fd = self._open()
        buffer = _csv_lines([(row, excel_safe(name), object_id, password) for row, name, object_id, password in lines])
        _write_all(fd, buffer.encode("utf-8"))
        os.fsync(fd)

    def rows_present(self, wanted: set[int]) -> set[int]:
        """Which of `wanted` have a complete password line in the file (for reconciling on
        resume). Streams the file (it may hold millions of lines) through the descriptor
        checked when the run opened it, never by path."""
        if self._fd is None or not wanted:
            return set()
        found: set[int] = set()
        reader = os.dup(self._fd)
        os.lseek(reader, 0, os.SEEK_SET)  # O_APPEND writes go to the end whatever the offset
        with open(reader, newline="", encoding="utf-8", errors="replace", closefd=True) as handle:
            for line in csv.reader(handle):
                if len(line) == 4 and line[0].isdigit() and line[2] and line[3] and int(line[0]) in wanted:
                    found.add(int(line[0]))
        return found

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PlanFile:
    """plan.csv of a dry run: one line per valid row, saying what would happen to it
    (`action`), to which customer (object id, display name, sign-in name), why, and for an
    update which properties would change, named as the input's own header names them."""

    NAME = "plan.csv"
    COLUMNS = ("row", "key", "action", "object_id", "display_name", "sign_in_name", "reason", "changes")

    def __init__(self, run_dir: Path, labels: Mapping[str, str] | None = None) -> None:
        self.path = run_dir / self.NAME
        self.labels = dict(labels or {})
        self._handle: Any = None

    def append(self, lines: list[PlanLine]) -> None:
        if not lines:
            return
        if self._handle is None:
            fd, _ = open_or_create(self.path, os.O_WRONLY | os.O_APPEND,
                                   advice="move it out of the run folder and run again")
            self._handle = open(fd, "a", newline="", encoding="utf-8", closefd=True)
            if os.fstat(fd).st_size == 0:
                csv.writer(self._handle, lineterminator="\r\n").writerow(self.COLUMNS)
        csv.writer(self._handle, lineterminator="\r\n").writerows(
            [[excel_safe(v) for v in self._record(line)] for line in lines])
        self._handle.flush()

    def _record(self, line: PlanLine) -> tuple[object, ...]:
        changes = "; ".join(f"{self.labels.get(c.column, c.column)}: {c.before} \u2192 {c.after}" for c in line.changes)
        return (line.row, line.key, line.action, line.object_id, line.display_name, line.sign_in_name, line.reason,
                changes)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


_BRACKET = re.compile(r"\[[^\[\]]*\]")
_REMARK = re.compile(r"\([^()]*\)")
_REQUIRED = re.compile(r"\s*(\*|\brequired)\s*$", re.IGNORECASE)


def column_labels(headers: list[str], by_index: Mapping[int, str]) -> dict[str, str]:
    """Each matched column's name as the file's header writes it, without the admin center's
    [graphProperty], (remarks) and "Required": "Block sign in (Yes/No) [accountEnabled]
    Required" is "Block sign in"."""
    labels: dict[str, str] = {}
    for index, name in by_index.items():
        text = headers[index] if index < len(headers) else ""
        label = _REQUIRED.sub("", _REMARK.sub("", _BRACKET.sub("", text))).strip().lstrip("\ufeff").strip()
        labels[name] = label or name
    return labels


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a nearly full disk): loop, or raise OSError."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _csv_lines(rows: list[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def write_results(journal: Journal, run_dir: Path) -> Path:
    """results.csv from the journal, in input order, written to a fresh temporary file (0600)
    and renamed."""

    def fill(raw: BinaryIO) -> None:
        handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(RESULT_COLUMNS)
        for outcome in journal.outcomes():
            record = outcome.as_record()
            writer.writerow([record[0], excel_safe(record[1]), record[2], record[3],
                             "" if record[4] is None else record[4], record[5], excel_safe(record[6]), record[7]])
        handle.flush()
        handle.detach()  # `raw` stays open: write_replacing fsyncs and closes it

    return write_replacing(run_dir / "results.csv", fill)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """summary.json (0600), through a fresh temporary file renamed into place."""
    data = (json.dumps(summary, indent=2, sort_keys=False) + "\n").encode("utf-8")

    def fill(raw: BinaryIO) -> None:
        raw.write(data)

    return write_replacing(run_dir / "summary.json", fill)
