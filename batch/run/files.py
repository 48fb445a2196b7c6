"""The files of a run folder (PRODUCT.md, "Contract of a run"): results.csv, passwords.csv
(created exclusively before the first secret is written, fsynced before a row is marked
done), summary.json, plan.csv (a dry run's), retry.csv. results.csv and retry.csv are
always regenerated from the journal, so they can never disagree with it.

The CSV files are written in the input's dialect (`batch.io.dialect`): its delimiter, UTF-8
with a byte order mark. The journal remembers the dialect (meta `outputs`), so that results
regenerated without the input (a resume, a provisional results.csv) look the same.

The folder is 0700 and every file in it 0600, whatever the umask; no file is opened through a
link, and one left by an earlier part of the run is checked on its descriptor
(`batch.run.private`)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from batch.errors import InputFileError, RunFolderTaken, RunFolderUnsafe
from batch.io.dialect import ENCODING, OutputDialect
from batch.io.quoting import neutralise, neutralise_rows
from batch.outcome import FIRST_PASSWORD_COLUMNS, PASSWORD_COLUMNS, RESULT_COLUMNS, PasswordLine, Status
from batch.run.journal import Journal, why_unreadable
from batch.run.private import (
    PRIVATE_DIR,
    check_dir,
    create_private,
    open_existing,
    open_or_create,
    private_dir,
    write_replacing,
    writing,
)
from batch.verbs.base import Change, PlanLine

if TYPE_CHECKING:
    from batch.io.sources import InputSource

OUTPUTS_META = "outputs"  # the journal's record of the dialect (OutputDialect.as_meta)
RETRY_STATUSES = (Status.INVALID, Status.FAILED)
# What starting a run leaves before its first row (run.log: --verbose told the token request).
STARTUP_LEFTOVERS = frozenset({".lock", Journal.FILE, Journal.FILE + "-wal", Journal.FILE + "-shm", Journal.FILE + "-journal",
                               "run.log"})


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
            foreign = why_unreadable(path / Journal.FILE)
            if foreign is not None:  # someone's file called journal.db
                raise RunFolderTaken(f"{path} is not empty: its journal.db {foreign}; choose a new or empty --out-dir")
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
    regular file of ours that no one else can read, else the resume is refused.

    Its columns are `PASSWORD_COLUMNS` in the input's dialect; a file begun by an earlier
    version (`row,sign_in_name,object_id,password`, comma) goes on in its own format, so that
    one file never mixes two."""

    NAME = "passwords.csv"
    ADVICE = ("resume refuses to add passwords to it. If it is the run's own file, make it private "
              "(`chmod 600` it, and know that others could read the passwords already in it); otherwise move it "
              "away and resume (a new passwords.csv is started)")

    def __init__(self, run_dir: Path, dialect: OutputDialect | None = None) -> None:
        self.path = run_dir / self.NAME
        self._delimiter = (dialect or OutputDialect()).delimiter
        self._columns: tuple[str, ...] = PASSWORD_COLUMNS
        self._fd: int | None = None
        try:
            self._fd = open_existing(self.path, os.O_RDWR | os.O_APPEND, tighten=False, advice=self.ADVICE)
        except FileNotFoundError:
            return
        self._drop_torn_tail()
        self._follow_header()

    def _follow_header(self) -> None:
        """Take the delimiter and the columns of the file already there from its header line."""
        assert self._fd is not None
        first = os.pread(self._fd, 4096, 0).decode("utf-8", "replace").removeprefix("\ufeff")
        first = first.split("\n", 1)[0].rstrip("\r")
        for delimiter in (",", ";", "\t"):
            names = tuple(first.split(delimiter))
            if names in (PASSWORD_COLUMNS, FIRST_PASSWORD_COLUMNS):
                self._delimiter, self._columns = delimiter, names
                return

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

    def _header(self) -> bytes:
        return ("\ufeff" + self._delimiter.join(self._columns) + "\r\n").encode("utf-8")

    def _open(self) -> int:
        if self._fd is None:
            # FileExistsError if anything (a link too) appeared since the run started: the run
            # stops (RunFolderFailed says to move it away), and nothing is written through it.
            self._fd = create_private(self.path, os.O_RDWR | os.O_APPEND)
            _write_all(self._fd, self._header())
        return self._fd

    def append(self, lines: Iterable[tuple[Any, ...]]) -> None:
        """Write all of it and fsync: only then may the rows be marked done. `lines` are
        `PasswordLine`s (a plain 4-tuple is one without display name and contact)."""
        given = [PasswordLine(*line) for line in lines]
        if not given:
            return
        fd = self._open()
        width = len(self._columns)
        cells = [(p.row, excel_safe(p.sign_in_name), p.object_id, p.password, excel_safe(p.display_name),
                  excel_safe(p.contact))[:width] for p in given]
        _write_all(fd, _csv_lines(cells, self._delimiter).encode("utf-8"))
        os.fsync(fd)

    def rows_present(self, wanted: set[int]) -> set[int]:
        """Which of `wanted` have a complete password line in the file (for reconciling on
        resume). Streams the file (it may hold millions of lines) through the descriptor
        checked when the run opened it, never by path."""
        if self._fd is None or not wanted:
            return set()
        found: set[int] = set()
        width = len(self._columns)
        reader = os.dup(self._fd)
        os.lseek(reader, 0, os.SEEK_SET)  # O_APPEND writes go to the end whatever the offset
        with open(reader, newline="", encoding=ENCODING, errors="replace", closefd=True) as handle:
            for line in csv.reader(handle, delimiter=self._delimiter):
                if len(line) == width and line[0].isdigit() and line[2] and line[3] and int(line[0]) in wanted:
                    found.add(int(line[0]))
        return found

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_PLAN_ADVICE = "start the dry run again in a new folder (it changes nothing)"


class PlanFile:
    """plan.csv of a dry run: one line per valid row, saying what would happen to it
    (`action`), to which customer (object id, display name, sign-in name), why, and for an
    update which properties would change, named as the input's own header names them."""

    NAME = "plan.csv"
    COLUMNS = ("row", "key", "action", "object_id", "display_name", "sign_in_name", "reason", "changes", "line")

    def __init__(self, run_dir: Path, dialect: OutputDialect | None = None,
                 labels: Mapping[str, str] | None = None) -> None:
        self.path = run_dir / self.NAME
        self.dialect = dialect or OutputDialect()
        self.labels = dict(labels or {})
        self._handle: Any = None

    def keep_rows_up_to(self, last_row: int) -> int:
        """Cut the lines of rows after `last_row` from a plan.csv an earlier part of the run
        wrote, and a last record a failed write cut short; return the last row kept (0 for
        none). A dry run appends a group's lines before it journals the group's rows `done`:
        interrupted in between, its resume plans those rows again, and their lines were written
        twice. The lines are in row order and every journaled row precedes every row that was
        not (`Engine._record_plans`), so the file is cut where the first record of a later row
        starts (a record may span lines: the csv reader finds its ends). A write cut short (a
        full disk) leaves a last line with no line break, perhaps inside a row number or a
        character: that record goes too, whatever it holds. Anything else that is not what
        entra-batch writes is one clear error."""
        if self._handle is not None:
            raise RuntimeError("plan.csv is cut before anything is appended to it")
        try:
            fd = open_existing(self.path, os.O_RDWR, tighten=True, advice=_PLAN_ADVICE)
        except FileNotFoundError:
            return 0
        with open(fd, "rb", closefd=True) as handle:
            read = 0  # bytes of the file the reader has taken
            ended = False  # every line went to the reader
            torn = False  # the last line has no line break

            def lines() -> Iterable[str]:
                nonlocal read, ended, torn
                for line in handle:
                    if not line.endswith(b"\n"):
                        torn = True
                        break
                    read += len(line)
                    yield line.decode("utf-8")  # the byte order mark stays in the header's text
                ended = True

            records = csv.reader(lines(), delimiter=self.dialect.delimiter, strict=True)
            cut: int | None = None
            kept = 0
            try:
                next(records, None)  # the header
                end = read  # where the record about to be read starts
                for record in records:
                    row = record[0] if record else ""
                    number = int(row) if row.isascii() and row.isdigit() else None
                    if number is not None and number > last_row:
                        cut = end
                        break
                    kept = number if number is not None else kept
                    end = read
            except csv.Error as exc:
                if not ended:
                    raise RunFolderUnsafe(f"{self.path} is not the plan.csv entra-batch wrote ({exc}); "
                                          f"{_PLAN_ADVICE}") from None
                torn = True  # the file ends inside a quoted cell: its last record was cut short
            except UnicodeDecodeError as exc:
                raise RunFolderUnsafe(f"{self.path} is not the plan.csv entra-batch wrote ({exc}); "
                                      f"{_PLAN_ADVICE}") from None
            if cut is None and torn:
                cut = end
            if cut is not None:
                os.ftruncate(handle.fileno(), cut)
        return kept

    def append(self, lines: list[PlanLine]) -> None:
        if not lines:
            return
        if self._handle is None:
            self._handle = open_csv_output(self.path, self.COLUMNS, self.dialect)
        spreadsheet_line = self.dialect.line
        self.dialect.writer(self._handle).writerows(neutralise_rows(
            [[line.row, line.key, line.action, line.object_id, line.display_name, line.sign_in_name, line.reason,
              self._changes(line.changes) if line.changes else "", spreadsheet_line(line.row)] for line in lines],
            self._TEXT))
        self._handle.flush()

    _TEXT = (1, 2, 3, 4, 5, 6, 7)  # every cell but the row and line numbers

    def _changes(self, changes: tuple[Change, ...]) -> str:
        return "; ".join(f"{self.labels.get(c.column, c.column)}: {c.before} \u2192 {c.after}" for c in changes)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # closed even when its last flush fails


def open_csv_output(path: Path, columns: Iterable[str], dialect: OutputDialect) -> Any:
    """A CSV file of the run folder opened for appending text in `dialect` (0600, no link
    followed), its byte order mark and header line written when it is new."""
    fd, _ = open_or_create(path, os.O_WRONLY | os.O_APPEND, advice="move it out of the run folder and run again")
    handle = open(fd, "a", newline="", encoding="utf-8", closefd=True)
    if os.fstat(fd).st_size == 0:
        handle.write("\ufeff")
        dialect.writer(handle).writerow(columns)
    return handle


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


def _csv_lines(rows: list[tuple[Any, ...]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def output_dialect(journal: Journal, dialect: OutputDialect | None = None) -> OutputDialect:
    """The dialect of the run's files: `dialect` (the input's), remembered by the journal the
    first time, else the one the journal remembers (the defaults for a run of an earlier
    version)."""
    remembered = journal.meta().get(OUTPUTS_META)
    if dialect is None:
        return OutputDialect.from_meta(remembered)
    if remembered != dialect.as_meta():
        journal.set_meta(**{OUTPUTS_META: dialect.as_meta()})
    return dialect


def write_results(journal: Journal, run_dir: Path, dialect: OutputDialect | None = None) -> Path:
    """results.csv from the journal, in input order, in the run's dialect, written to a fresh
    temporary file (0600) and renamed."""
    chosen = output_dialect(journal, dialect)

    def fill(raw: BinaryIO) -> None:
        handle = io.TextIOWrapper(raw, encoding=ENCODING, newline="")
        writer = chosen.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        writer.writerows(journal.result_records(chosen.header_lines))
        handle.flush()
        handle.detach()  # `raw` stays open: write_replacing fsyncs and closes it

    return write_replacing(run_dir / "results.csv", fill)


def write_retry(journal: Journal, run_dir: Path, source: InputSource, *, blank: Collection[int] = ()) -> Path | None:
    """retry.csv: the input's head (its version line, when it has one, and its header line)
    and every row that ended `invalid` or `failed`, exactly as the input has them (for an
    .xlsx, JSON Lines or Parquet input, a CSV file of their cells: `batch.io.tabular`), so that
    fixing it and running it again finishes the job. A pass over the input walked alongside
    the journal's failing rows (both ascending), in bounded memory, and checked against the
    fingerprint the run took of the file.

    Only when some row failed, so that a run with nothing to fix reads its input no more than
    twice (batch/io/csvio.py); an older retry.csv is removed then. Not written either when the
    input cannot be read again or changed since the run read it: no retry.csv rather than a
    wrong one (results.csv still names the rows).

    `blank`: the indexes of columns whose cells must not be copied (a JIT run's password
    column: its passwords are checked by the legacy system and written nowhere, batch/verbs/
    jit.py); a record with such a cell filled is re-written through csv with the input's
    delimiter and those cells empty, the others are kept exactly."""
    path = run_dir / "retry.csv"
    failing = journal.rows_ending(RETRY_STATUSES)
    first = next(failing, None)
    if first is None:
        path.unlink(missing_ok=True)
        return None
    fingerprint = journal.meta().get("fingerprint")

    def fill(raw: BinaryIO) -> None:
        handle = io.TextIOWrapper(raw, encoding=ENCODING, newline="")
        records = source.raw_records(itertools.chain((first,), failing),
                                     sha256=fingerprint if isinstance(fingerprint, str) else None)
        head = next(records, None)
        if head is not None:
            handle.write(head)
        for text in records:
            handle.write(blanked(text, blank, source.dialect.delimiter) if blank else text)
        handle.flush()
        handle.detach()

    try:
        return write_replacing(path, fill)
    except InputFileError:
        path.unlink(missing_ok=True)
        return None


def blanked(text: str, blank: Collection[int], delimiter: str) -> str:
    """A raw record (`InputSource.raw_records`) with the cells at `blank` emptied: the text
    itself when they already are, else the record re-written through csv."""
    fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    if not any(index < len(fields) and fields[index] for index in blank):
        return text
    fields = ["" if index in blank else cell for index, cell in enumerate(fields)]
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if text.endswith("\r\n") else "\n").writerow(fields)
    return out.getvalue()


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """summary.json (0600), through a fresh temporary file renamed into place."""
    data = (json.dumps(summary, indent=2, sort_keys=False) + "\n").encode("utf-8")
    return write_replacing(run_dir / "summary.json", writing(data))
