"""The index of run folders: one JSON line per event in `runs.jsonl` under ENTRA_BATCH_HOME,
so that a run folder is found wherever `--out-dir` put it.

A run appends a `start` line when its folder holds the run (folder, verb, target, the input's
sha256, dry run or not) and a `finish` line when results.csv and summary.json are complete.
The index only points at folders: what a folder holds is read from the folder itself (its
journal, its lock), so a folder moved or deleted since is simply skipped, and a folder the
index never heard of (an older version's, or a lost index) is still found under ./runs/.

The file is 0600 in the private home, appended with O_APPEND (a line is written in one call),
never through a link. Writing it is best effort: a run never fails because its index cannot
be written (the folder itself stays the truth); reading skips lines it cannot parse.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batch.config import home_dir, private_home
from batch.errors import ConfigError, RunError
from batch.run.connection import same_target
from batch.run.journal import Journal
from batch.run.private import open_or_create

INDEX_FILE = "runs.jsonl"
MAX_LINE = 1 << 16


@dataclass
class IndexedRun:
    """What the index says of one run folder (the last word of each field wins)."""

    run_dir: Path
    verb: str = ""
    target: str = ""
    fingerprint: str = ""
    target_identity: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    finished: float | None = None
    dry_run: bool = False
    forgotten: bool = False


class RunIndex:
    """`runs.jsonl` in `home` (ENTRA_BATCH_HOME unless given)."""

    def __init__(self, home: Path | None = None) -> None:
        self._home = home
        self.path = (home or home_dir()) / INDEX_FILE

    def run_started(self, run_dir: Path, *, verb: str, target: str, fingerprint: str,
                    target_identity: dict[str, Any], started: float, dry_run: bool) -> None:
        self._append({"event": "start", "dir": str(run_dir.resolve()), "verb": verb, "target": target,
                      "fingerprint": fingerprint, "target_identity": target_identity, "started": started,
                      "dry_run": dry_run})

    def run_finished(self, run_dir: Path, finished: float) -> None:
        self._append({"event": "finish", "dir": str(run_dir.resolve()), "finished": finished})

    def forget(self, run_dirs: Iterable[Path]) -> None:
        """Folders removed (`runs prune`, a start undone by a usage error): a `forget` line each.
        Appended like every other line, never rewritten, so that a run starting at the same
        moment in another process cannot lose its own line."""
        for run_dir in run_dirs:
            self._append({"event": "forget", "dir": str(run_dir.resolve())})

    def _append(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            if self._home is None:
                private_home()
            fd, _ = open_or_create(self.path, os.O_WRONLY | os.O_APPEND,
                                   advice="remove it; it is only an index of run folders")
        except (OSError, RunError):
            return  # best effort: the run folder itself is the truth
        try:
            os.write(fd, line)
        except OSError:
            pass
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def starting(self, *, verb: str, fingerprint: str, target_identity: dict[str, Any], input_name: str,
                 skip: bool = False) -> Iterator[None]:
        """Held while a run of `verb` on this input (by content) against this target starts and
        runs: a second start meanwhile is refused (`ConfigError`, nothing sent), where both
        would have found no earlier run holding rows. A lock file per input and target in the
        home's `starting/` folder, released by the system when the process ends, even killed.
        Best effort, as the index: a home that cannot hold it holds nothing back."""
        if skip:
            yield
            return
        key = hashlib.sha256(json.dumps([verb, fingerprint, target_identity.get("kind"),
                                         target_identity.get("tenant_id"), target_identity.get("graph_url")],
                                        sort_keys=True).encode()).hexdigest()[:32]
        fd: int | None = None
        try:
            if self._home is None:
                private_home()
            folder = self.path.parent / "starting"
            folder.mkdir(mode=0o700, exist_ok=True)
            fd, _ = open_or_create(folder / f"{key}.lock", os.O_RDWR, advice="remove it; it only marks a run starting")
        except (OSError, RunError):
            fd = None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ConfigError(f"another {verb} run on {input_name} against this target is running now (started "
                                  "by another entra-batch process); nothing was sent. Wait for it to finish, or "
                                  "resume its folder (`entra-batch runs` lists it); to start a separate run anyway, "
                                  "pass --new-run") from None
            except OSError:
                os.close(fd)
                fd = None
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)

    def _lines(self) -> Iterator[str]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return
        with open(fd, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                line = line.strip()
                if not line or len(line) > MAX_LINE:
                    continue
                try:
                    if isinstance(json.loads(line), dict):
                        yield line
                except ValueError:
                    continue

    def runs(self) -> list[IndexedRun]:
        """Every folder the index names, in the order their runs started."""
        found: dict[str, IndexedRun] = {}
        for line in self._lines():
            event = json.loads(line)
            where = event.get("dir")
            if not isinstance(where, str):
                continue
            entry = found.setdefault(where, IndexedRun(Path(where)))
            try:
                _apply(entry, event)
            except (TypeError, ValueError):
                continue
        return sorted((e for e in found.values() if not e.forgotten), key=lambda e: e.started)


def _apply(entry: IndexedRun, event: dict[str, Any]) -> None:
    if event.get("event") == "start":
        entry.verb = str(event.get("verb", ""))
        entry.target = str(event.get("target", ""))
        entry.fingerprint = str(event.get("fingerprint", ""))
        identity = event.get("target_identity")
        entry.target_identity = identity if isinstance(identity, dict) else {}
        entry.started = float(event.get("started", 0.0))
        entry.dry_run = bool(event.get("dry_run", False))
        entry.finished = None
        entry.forgotten = False
    elif event.get("event") == "finish":
        entry.finished = float(event["finished"])
    elif event.get("event") == "forget":
        entry.forgotten = True


# ---- what a folder holds -------------------------------------------------------------------

RUNNING, FINISHED, INTERRUPTED = "running", "finished", "interrupted"


def is_run_folder(path: Path) -> bool:
    """A real folder (not a link) holding a journal that is a regular file."""
    return path.is_dir() and not path.is_symlink() and (path / Journal.FILE).is_file() \
        and not (path / Journal.FILE).is_symlink()


def lock_held(run_dir: Path) -> bool:
    """Whether a process is working on `run_dir` (the journal's lock, `batch.run.journal`)."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def read_journal(run_dir: Path) -> tuple[dict[str, Any], dict[str, int], int]:
    """A journal read without taking its lock: (its run description, counts per status of
    rows done, rows sent without an answer). Empty when it cannot be read."""
    try:
        db = sqlite3.connect(f"file:{quote(str(run_dir / Journal.FILE))}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}, {}, 0
    try:
        meta: dict[str, Any] = {}
        for key, value in db.execute("SELECT key, value FROM meta"):
            try:
                meta[key] = json.loads(value)
            except (TypeError, ValueError):
                continue
        counts = dict(db.execute("SELECT status, COUNT(*) FROM rows WHERE state = 'done' GROUP BY status"))
        (sent,) = db.execute("SELECT COUNT(*) FROM rows WHERE state = 'sent'").fetchone()
        return meta, counts, int(sent)
    except sqlite3.Error:
        return {}, {}, 0
    finally:
        db.close()


def folder_state(run_dir: Path, meta: dict[str, Any]) -> str:
    """running (its lock is held), finished (results.csv and summary.json complete) or
    interrupted (anything else: a crash, Ctrl-C, an abort with exit 3, a start killed)."""
    if lock_held(run_dir):
        return RUNNING
    if meta.get("finished") is not None or (run_dir / "summary.json").is_file():
        return FINISHED
    return INTERRUPTED


def unfinished_runs(index: RunIndex, *, verb: str, fingerprint: str, target_identity: dict[str, Any],
                    exclude: Path | None = None, also_under: Path | None = None) -> list[Path]:
    """Folders of earlier runs of `verb` on the same input against the same target that are not
    finished and hold rows (dry runs do not count; folders moved or deleted are skipped)."""
    unfinished = []
    for entry in _same_runs(index, verb, fingerprint, target_identity, exclude, also_under):
        meta, counts, sent = read_journal(entry.run_dir)
        # A run stopped before its first row (a refused token, say) handed nothing out: no conflict.
        if folder_state(entry.run_dir, meta) != FINISHED and (counts or sent):
            unfinished.append(entry.run_dir)
    return unfinished


def _candidates(index: RunIndex, also_under: Path | None) -> Iterator[IndexedRun]:
    """The index's runs, then run folders under `also_under` (./runs/) it does not name (made by
    an earlier version, or with the index lost), described by their own journals."""
    entries = index.runs()
    yield from entries
    if also_under is None or not also_under.is_dir() or also_under.is_symlink():
        return
    known = {entry.run_dir for entry in entries}
    for path in sorted(also_under.iterdir()):
        if path.is_symlink() or path.resolve() in known or not is_run_folder(path):
            continue
        meta = read_journal(path)[0]
        request = meta.get("request") if isinstance(meta.get("request"), dict) else None
        identity = meta.get("target_identity")
        if request is None or not isinstance(identity, dict):
            continue
        yield IndexedRun(path.resolve(), verb=str(request.get("verb", "")), target=str(meta.get("target", "")),
                         fingerprint=str(meta.get("fingerprint", "")), target_identity=identity,
                         dry_run=bool(request.get("dry_run", False)))


def _same_runs(index: RunIndex, verb: str, fingerprint: str, target_identity: dict[str, Any],
               exclude: Path | None, also_under: Path | None = None) -> Iterator[IndexedRun]:
    skip = exclude.resolve() if exclude is not None else None
    for entry in _candidates(index, also_under):
        if entry.dry_run or entry.verb != verb or entry.fingerprint != fingerprint or entry.run_dir == skip:
            continue
        if not entry.target_identity or not same_target(entry.target_identity, target_identity):
            continue
        if is_run_folder(entry.run_dir):
            yield entry


class PasswordsElsewhere:
    """The passwords.csv files of the other run folders of the same input and target (in the
    index, or beside this one, as a previous version's are), read on first use: which folder
    handed out the password of a customer. A reconciling run asks before it would set a fresh
    password. Only the object id counts: a sign-in name may have passed to another customer
    since (a customer purged and created again), whose password that folder never held."""

    def __init__(self, index: RunIndex, *, verb: str, fingerprint: str, target_identity: dict[str, Any],
                 run_dir: Path) -> None:
        self._find: Callable[[], list[Path]] = lambda: [
            e.run_dir for e in _same_runs(index, verb, fingerprint, target_identity, run_dir, run_dir.parent)]
        self._by_id: dict[str, Path] | None = None

    def __call__(self, object_id: str, sign_in_name: str = "") -> Path | None:
        if self._by_id is None:
            self._by_id = {}
            for folder in self._find():
                for key in _password_ids(folder / "passwords.csv"):
                    self._by_id.setdefault(key, folder)
        return self._by_id.get(object_id) if object_id else None


def _password_ids(path: Path) -> Iterator[str]:
    """The object ids of the complete lines of a passwords.csv, whatever its delimiter or
    BOM; the passwords themselves are never kept."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    with open(fd, "rb") as raw:
        if os.fstat(raw.fileno()).st_uid != os.geteuid():
            return
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        header_line = text.readline()
        delimiter = max(",;\t", key=header_line.count)
        header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter), [])]
        if "object_id" not in header or "password" not in header:
            return
        at_id, at_password = header.index("object_id"), header.index("password")
        for line in csv.reader(text, delimiter=delimiter):
            if len(line) == len(header) and line[at_password] and line[at_id]:
                yield line[at_id]


def refuse_second_run(index: RunIndex, *, verb: str, fingerprint: str, target_identity: dict[str, Any],
                      input_name: str, also_under: Path | None = None) -> None:
    """ConfigError (exit 2, nothing sent) when an earlier run of `verb` on this input and
    target is not finished: a second run beside it could hand out a second password for the
    same customer (issue 12, finding 6)."""
    unfinished = unfinished_runs(index, verb=verb, fingerprint=fingerprint, target_identity=target_identity,
                                 also_under=also_under)
    if not unfinished:
        return
    folder = unfinished[-1]
    more = f" (and {len(unfinished) - 1} more: `entra-batch runs` lists them)" if len(unfinished) > 1 else ""
    raise ConfigError(f"an earlier {verb} run on {input_name} against this target is not finished: {folder}{more}. "
                      f"Finish it with `entra-batch resume {folder}`; nothing was sent. To start a separate run "
                      "anyway, pass --new-run")


__all__ = ["FINISHED", "INTERRUPTED", "RUNNING", "IndexedRun", "PasswordsElsewhere", "RunIndex", "folder_state",
           "is_run_folder", "lock_held", "read_journal", "refuse_second_run", "unfinished_runs"]
