"""The files of a run folder (PRODUCT.md, "Contract of a run"): results.csv, passwords.csv
(mode 0600, created exclusively before the first secret is written, fsynced before a row is
marked done), summary.json. results.csv is always regenerated from the journal, so the two
can never disagree."""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch.errors import RunFolderTaken
from batch.io.quoting import neutralise
from batch.outcome import RESULT_COLUMNS
from batch.run.journal import Journal

PASSWORD_COLUMNS = ("row", "sign_in_name", "object_id", "password")
STARTUP_LEFTOVERS = frozenset({".lock", Journal.FILE, Journal.FILE + "-wal", Journal.FILE + "-shm", Journal.FILE + "-journal"})


def excel_safe(value: object) -> str:
    """Neutralise a cell that Excel would read as a formula (see `batch.io.quoting`)."""
    return neutralise(value)


def new_run_dir(base: Path, verb: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        candidate = base / (f"{stamp}-{verb}" if n == 0 else f"{stamp}-{verb}-{n}")
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            continue
    raise RunFolderTaken(f"cannot make a new run folder under {base}")


def prepare_out_dir(path: Path) -> Path:
    """`--out-dir`: a new or empty folder. A folder of an earlier run is finished with `resume`."""
    if path.exists():
        if (path / Journal.FILE).exists() and Journal.recorded(path):
            raise RunFolderTaken(f"{path} holds an earlier run; finish it with `entra-batch resume {path}` "
                                  "or choose another --out-dir")
        # A start killed before it recorded its run leaves only the lock and an empty journal.
        if any(p.name not in STARTUP_LEFTOVERS for p in path.iterdir()):
            raise RunFolderTaken(f"{path} is not empty; choose a new or empty --out-dir")
    path.mkdir(parents=True, exist_ok=True)
    return path


class PasswordsFile:
    """passwords.csv: opened with O_EXCL and mode 0600 when the first secret is about to be
    written (or re-opened for appending on resume, after checking its mode)."""

    NAME = "passwords.csv"

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / self.NAME
        self._fd: int | None = None
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        """A line without its line break was cut short (a full disk, a crash mid-write): its
        row was never marked done, and its password may be truncated. Drop it, so that the
        row is reconciled (a fresh password) and later lines do not run into it."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 1))
            if size and handle.read(1) == b"\n":
                return
            keep = 0
            step = 1 << 16
            position = size
            while position > 0 and not keep:
                start = max(0, position - step)
                handle.seek(start)
                block = handle.read(position - start)
                at = block.rfind(b"\n")
                if at >= 0:
                    keep = start + at + 1
                position = start
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        if keep == 0:
            self.path.unlink()  # not even its header: made again, with mode 0600, on the first write

    def _open(self) -> int:
        if self._fd is None:
            if self.path.exists():
                mode = stat.S_IMODE(self.path.stat().st_mode)
                if mode & 0o077:
                    os.chmod(self.path, 0o600)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            else:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                _write_all(self._fd, (",".join(PASSWORD_COLUMNS) + "\r\n").encode())
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
        resume). Streams the file: it may hold millions of lines."""
        if not self.path.exists() or not wanted:
            return set()
        found: set[int] = set()
        with self.path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for line in csv.reader(handle):
                if len(line) == 4 and line[0].isdigit() and line[2] and line[3] and int(line[0]) in wanted:
                    found.add(int(line[0]))
        return found

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PlanFile:
    """plan.csv of a dry run that reads the directory (`update --dry-run`): one line per
    property that would change, with its current and its new value."""

    NAME = "plan.csv"
    COLUMNS = ("row", "key", "object_id", "property", "before", "after")

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / self.NAME
        self._handle: Any = None

    def append(self, lines: list[tuple[Any, ...]]) -> None:
        if not lines:
            return
        if self._handle is None:
            self._handle = self.path.open("a", newline="", encoding="utf-8")
            if self._handle.tell() == 0:
                csv.writer(self._handle, lineterminator="\r\n").writerow(self.COLUMNS)
        csv.writer(self._handle, lineterminator="\r\n").writerows([[excel_safe(v) for v in line] for line in lines])
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a nearly full disk): loop, or raise OSError."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _csv_lines(rows: list[tuple[Any, ...]]) -> str:
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def write_results(journal: Journal, run_dir: Path) -> Path:
    """results.csv from the journal, in input order, written to a temporary file and renamed."""
    path = run_dir / "results.csv"
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(RESULT_COLUMNS)
        for outcome in journal.outcomes():
            record = outcome.as_record()
            writer.writerow([record[0], excel_safe(record[1]), record[2], record[3],
                             "" if record[4] is None else record[4], record[5], excel_safe(record[6]), record[7]])
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    path = run_dir / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
