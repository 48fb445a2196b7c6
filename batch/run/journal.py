"""The run journal: a SQLite file in the run folder recording each row's progress, so that
`entra-batch resume` finishes an interrupted run exactly once (ARCHITECTURE.md).

A row moves `sent → done`. `sent` is committed before its request leaves; `done`, with the
outcome, after the answer came back (and, for a generated password, after the password was
fsynced to passwords.csv). Rows never journaled are still pending. No password, secret or
token is ever written here.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batch.errors import RunLocked
from batch.io.quoting import neutralised_in_sql
from batch.outcome import Outcome, SentRow, Status
from batch.run.private import check_dir, open_existing, open_or_create

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row INTEGER PRIMARY KEY,
    state TEXT NOT NULL,            -- sent | done
    key TEXT NOT NULL,
    status TEXT,
    object_id TEXT,
    http_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at REAL,                   -- when the request left (wall clock), for reconciling
    generated_password INTEGER NOT NULL DEFAULT 0,
    clock_offset REAL               -- Graph's clock minus ours when it left (NULL: not known yet)
);
"""


# A row done: its Outcome, whose fields are these columns, in this order (mark_done).
_MARK_DONE = (f"INSERT INTO rows(state, {', '.join(Outcome._fields)}) VALUES ('done', {', '.join('?' * len(Outcome._fields))})"
              " ON CONFLICT(row) DO UPDATE SET state='done', "
              + ", ".join(f"{name}=excluded.{name}" for name in Outcome._fields if name != "row"))

SQLITE_MAGIC = b"SQLite format 3\x00"
ROW_COLUMNS = frozenset({"row", "state", "key", "status", "object_id", "http_status", "error_code", "error_message",
                         "attempts", "sent_at", "generated_password"})  # clock_offset: added on opening if missing


class JournalUnreadable(Exception):
    """A journal that cannot be read as a run's: `reason` completes "its journal.db …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def why_unreadable(path: Path) -> str | None:
    """Why the file at `path` cannot be read as a run journal, as words that complete "its
    journal.db …", or None. Reads only. A file that is not SQLite, one truncated or
    overwritten, a journal without its tables or columns, rows in a state no version writes:
    each is named. An empty file (a start killed before its first write) is readable and
    describes no run."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not header:
        return None
    if header != SQLITE_MAGIC:
        return "is not a SQLite database (it was overwritten, or is not entra-batch's)"
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"cannot be opened ({exc})"
    try:
        return _why_unreadable(db)
    except sqlite3.DatabaseError as exc:
        return f"is damaged ({exc}): it was truncated or overwritten"
    finally:
        db.close()


def _why_unreadable(db: sqlite3.Connection) -> str | None:
    checked = db.execute("PRAGMA quick_check(1)").fetchone()
    if checked is None or checked[0] != "ok":
        return f"is damaged ({checked[0] if checked else 'no answer to an integrity check'}): it was truncated or " \
               "overwritten"
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "rows" in tables:
        columns = {r[1] for r in db.execute("PRAGMA table_info(rows)")}
        if not ROW_COLUMNS <= columns:
            return f"has a rows table without the columns {', '.join(sorted(ROW_COLUMNS - columns))}"
        statuses = ", ".join(f"'{s.value}'" for s in Status)
        odd = db.execute("SELECT row, state, status FROM rows WHERE state NOT IN ('sent', 'done')"
                         f" OR (state = 'done' AND (status IS NULL OR status NOT IN ({statuses}))) LIMIT 1").fetchone()
        if odd is not None:
            return f"holds row {odd[0]} in a state no version of entra-batch writes ({odd[1]!r}, {odd[2]!r})"
    if "meta" in tables:
        columns = {r[1] for r in db.execute("PRAGMA table_info(meta)")}
        if not {"key", "value"} <= columns:
            return "has a meta table without its key and value columns"
    elif "rows" in tables and db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None:
        return "has rows but no meta table: the description of the run (its file, verb and target) is gone"
    elif tables - {"rows"}:
        return "holds tables of another program, not a run journal"
    return None


class Journal:
    FILE = "journal.db"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        check_dir(run_dir)
        self._lock = _lock(run_dir)
        try:
            _prepare_db_files(run_dir / self.FILE)
            self._db = sqlite3.connect(run_dir / self.FILE, isolation_level=None)
        except BaseException:
            os.close(self._lock)
            raise
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(rows)")}
        if "clock_offset" not in columns:  # a journal written by an earlier version
            self._db.execute("ALTER TABLE rows ADD COLUMN clock_offset REAL")
        self._pending_done: list[tuple[Any, ...]] = []

    @classmethod
    def recorded(cls, run_dir: Path) -> bool:
        """Whether the journal in `run_dir` describes a run (a start killed before recording its
        request leaves an empty one: nothing was sent, the folder can be started again)."""
        if (run_dir / cls.FILE).is_symlink():
            return True  # not a journal of ours, but something is there: the folder is not free
        try:
            db = sqlite3.connect(f"file:{run_dir / cls.FILE}?mode=ro", uri=True)
            try:
                (tables,) = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
                if not tables:
                    return False  # empty: a start killed before it made its tables
                return db.execute("SELECT 1 FROM meta WHERE key = 'request'").fetchone() is not None
            finally:
                db.close()
        except sqlite3.DatabaseError:
            # Tables but no meta table: someone's database called journal.db (it was taken for a
            # killed start, written into, then removed; found by a review); or not SQLite at
            # all, or unreadable: something is there, and the folder is not free.
            return True

    def close(self) -> None:
        try:
            self.flush()
        except sqlite3.Error:
            # A full disk: the outcomes not yet committed are of rows never sent (invalid or
            # skipped), which resume finds again; the run is already stopping with the error.
            pass
        finally:
            self._db.close()
            os.close(self._lock)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN … COMMIT, rolled back on any exception (a full disk, or Ctrl-C between two
        statements), so that the connection never stays inside a half-done transaction."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- run description ---------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """The run's description; `JournalUnreadable` if a value is not the JSON written."""
        values: dict[str, Any] = {}
        for key, value in self._db.execute("SELECT key, value FROM meta"):
            try:
                values[key] = json.loads(value)
            except (TypeError, ValueError):
                raise JournalUnreadable(f"holds a run description whose {key!r} is not readable "
                                        "(the file was edited or damaged)") from None
        return values

    def set_meta(self, **values: Any) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in values.items()])

    # ---- row states --------------------------------------------------------------------

    def mark_sent(self, rows: Iterable[SentRow]) -> None:
        """Committed before the requests leave: a crash after this point is reconciled."""
        self.flush()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO rows(row, state, key, sent_at, generated_password, attempts, clock_offset)"
                " VALUES (?, 'sent', ?, ?, ?, ?, ?)"
                " ON CONFLICT(row) DO UPDATE SET state='sent', sent_at=excluded.sent_at,"
                " generated_password=excluded.generated_password, attempts=excluded.attempts,"
                " clock_offset=excluded.clock_offset",
                [(r.row, r.key, r.sent_at, int(r.generated_password), r.attempts, r.clock_offset) for r in rows],
            )

    def mark_done(self, outcomes: Iterable[Outcome], *, commit: bool = True) -> None:
        # An Outcome is the tuple of the columns below, in their order (its status a str enum,
        # which SQLite binds as its text): kept as it is, no second tuple per row.
        self._pending_done.extend(outcomes)
        if commit or len(self._pending_done) >= 5000:
            self.flush()

    def flush(self) -> None:
        if not self._pending_done:
            return
        with self._transaction():
            self._db.executemany(_MARK_DONE, self._pending_done)
        self._pending_done = []

    def last_row(self) -> int:
        """The highest row number journaled (0 for none)."""
        self.flush()
        (last,) = self._db.execute("SELECT coalesce(max(row), 0) FROM rows").fetchone()
        return int(last)

    def forget_plans_after(self, row: int) -> int:
        """A dry run's rows after `row`, no longer `done`: planned again by its resume (their
        plan.csv lines were lost: `PlanFile.keep_rows_up_to`). Only a dry run's journal may
        forget rows: its rows changed nothing. Returns how many were forgotten."""
        self.flush()
        with self._transaction():
            return self._db.execute("DELETE FROM rows WHERE row > ? AND state = 'done'", (row,)).rowcount

    def states_between(self, first: int, last: int) -> dict[int, str]:
        self.flush()
        return dict(self._db.execute("SELECT row, state FROM rows WHERE row BETWEEN ? AND ?", (first, last)))

    def sent_rows(self) -> list[SentRow]:
        """Every row still `sent` (for inspecting a run folder; the engine reads them by range)."""
        self.flush()
        return [SentRow(r, k, s or 0.0, bool(g), a, o) for r, k, s, g, a, o in self._db.execute(
            "SELECT row, key, sent_at, generated_password, attempts, clock_offset FROM rows WHERE state = 'sent'"
            " ORDER BY row")]

    def sent_row(self, row: int) -> SentRow | None:
        found = self._db.execute(
            "SELECT row, key, sent_at, generated_password, attempts, clock_offset FROM rows"
            " WHERE row = ? AND state = 'sent'", (row,)
        ).fetchone()
        return SentRow(found[0], found[1], found[2] or 0.0, bool(found[3]), found[4], found[5]) if found else None

    def outcomes(self) -> Iterator[Outcome]:
        self.flush()
        cursor = self._db.execute(
            "SELECT row, key, status, object_id, http_status, error_code, error_message, attempts"
            " FROM rows WHERE state = 'done' ORDER BY row")
        for row, key, status, object_id, http_status, code, message, attempts in cursor:
            yield Outcome(row, key, Status(status), object_id or "", http_status, code or "", message or "", attempts)

    def result_records(self, header_lines: int) -> Iterator[tuple[Any, ...]]:
        """results.csv's records (RESULT_COLUMNS), in row order, made by SQLite: each outcome
        as `Outcome.as_record` has it (absent text as "", no HTTP status as ""), its key and
        message neutralised for spreadsheets (`batch.io.quoting`), and its spreadsheet line
        (`OutputDialect.line`). A csv writer takes them as they come: no Python per row."""
        self.flush()
        key, message = neutralised_in_sql("key"), neutralised_in_sql("coalesce(error_message, '')")
        return self._db.execute(
            f"SELECT row, {key}, status, coalesce(object_id, ''), coalesce(http_status, ''), coalesce(error_code, ''),"
            f" {message}, attempts, row + ? FROM rows WHERE state = 'done' ORDER BY row", (header_lines,))

    def count_first_words(self, status: Status, prefix: str) -> dict[str, int]:
        """Rows done with `status` whose message starts with `prefix`, counted by the word that
        follows it (up to the next space, or the end): a dry run's rows per action, counted by
        SQLite rather than by reading every message back."""
        self.flush()
        start = len(prefix) + 1
        return dict(self._db.execute(
            "SELECT substr(error_message, ?1, instr(substr(error_message, ?1) || ' ', ' ') - 1) AS word, COUNT(*)"
            " FROM rows WHERE state = 'done' AND status = ?2 AND substr(error_message, 1, ?3) = ?4 GROUP BY word",
            (start, status.value, len(prefix), prefix)))

    def messages_starting(self, status: Status, prefix: str) -> Iterator[str]:
        """The messages of the rows done with `status` that start with `prefix` (streamed)."""
        self.flush()
        for (message,) in self._db.execute(
                "SELECT error_message FROM rows WHERE state = 'done' AND status = ? AND substr(error_message, 1, ?) = ?",
                (status.value, len(prefix), prefix)):
            yield message

    def rows_ending(self, statuses: Iterable[Status]) -> Iterator[int]:
        """The numbers of the rows done with one of `statuses`, ascending (streamed)."""
        self.flush()
        wanted = [s.value for s in statuses]
        marks = ", ".join("?" for _ in wanted)
        for (row,) in self._db.execute(f"SELECT row FROM rows WHERE state = 'done' AND status IN ({marks})"
                                       " ORDER BY row", wanted):
            yield row

    def counts(self) -> dict[str, int]:
        self.flush()
        return dict(self._db.execute("SELECT status, COUNT(*) FROM rows WHERE state = 'done' GROUP BY status"))

    def count_failed_with(self, message_start: str) -> int:
        """Rows that failed with a message that starts with `message_start` (a note for the summary)."""
        self.flush()
        (found,) = self._db.execute(
            "SELECT COUNT(*) FROM rows WHERE state = 'done' AND status = ? AND substr(error_message, 1, ?) = ?",
            (Status.FAILED.value, len(message_start), message_start)).fetchone()
        return int(found)


_NOT_OURS = "this run folder holds a file entra-batch did not write; remove it (and find out what put it there)"


def check_journal_files(run_dir: Path) -> None:
    """The run folder and the journal's files checked as a run checks them, before anything
    reads the journal: even a read-only SQLite open follows links."""
    check_dir(run_dir)
    _prepare_db_files(run_dir / Journal.FILE)


def _prepare_db_files(db: Path) -> None:
    """SQLite opens the journal (and makes its -wal and -shm files, with the journal's mode)
    by path, following links: it cannot be given O_NOFOLLOW. The main protection is the run
    folder, private (0700, ours, checked just before) so that nobody else can plant anything in
    it. On top of that the journal is made here with O_EXCL and 0600 (or, left by an earlier
    part of the run, checked on its descriptor: a regular file of ours), and its companion
    files, when there, are checked the same way."""
    fd, _ = open_or_create(db, os.O_RDWR, advice=_NOT_OURS)
    os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        try:
            os.close(open_existing(db.with_name(db.name + suffix), os.O_RDWR, tighten=True, advice=_NOT_OURS))
        except FileNotFoundError:
            pass


def _lock(run_dir: Path) -> int:
    """One process per run folder: the lock dies with its process, even on kill -9."""
    fd, _ = open_or_create(run_dir / ".lock", os.O_RDWR, advice=_NOT_OURS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(f"another entra-batch process is working on {run_dir}; wait for it to finish "
                        "(or stop it) before resuming") from None
    return fd
