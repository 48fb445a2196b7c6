"""A run from start to finish, as the library sees it: resolve the target, open the input,
make (or reopen) the run folder and its journal, check permissions, run the engine, write
results.csv and summary.json. The CLI calls `start_run` / `resume_run` and renders what
they report; run-level failures are exceptions of the `RunError` tree.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import ssl
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from batch import __version__, interrupts
from batch.config import Target, home_dir
from batch.errors import ConfigError, ExitCode, RunFolderFailed, RunFolderTaken
from batch.graph import GraphClient
from batch.io.columns import COLUMN_SETS
from batch.io.csvio import open_csv
from batch.outcome import Status
from batch.run.connection import LocalEmulator, open_connection, target_identity
from batch.run.files import (
    PasswordsFile,
    PlanFile,
    new_run_dir,
    prepare_out_dir,
    write_results,
    write_summary,
)
from batch.run.journal import Journal
from batch.run.pipeline import Engine, EngineOptions, Progress
from batch.verbs import registry
from batch.verbs.base import Session
from batch.verbs.registry import VerbSettings, build_verb


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs that is not a secret; stored in the journal for `resume`."""

    verb: str
    input: str
    encoding: str | None = None
    out_dir: str | None = None
    dry_run: bool = False
    batch_size: int = 20
    concurrency: int = 4
    on_existing: str = "fail"
    priority: str = "normal"
    target: str | None = None
    profile: str | None = None
    domain: str | None = None
    extensions_app_id: str | None = None
    force_change_generated: bool = True
    yes: bool = False


@dataclass
class RunReport:
    run_dir: Path
    summary: dict[str, Any]
    exit_status: int
    notes: list[str] = field(default_factory=list)


def fingerprint(path: Path) -> str:
    """SHA-256 of the whole file: resume needs the very same rows (a second per ~300 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def execute_run(request: RunRequest, target: Target, *, journal: Journal, run_dir: Path,
                      on_progress: Callable[[Progress], None] | None = None, resuming: bool = False,
                      local_settings: Any = None, pacing: bool = True) -> RunReport:
    """One run on an open journal. `local_settings` (EmulatorSettings) changes the in-process
    emulator of the local target, and `pacing=False` sends without pacing: benchmarks use them
    to measure the tool's own overhead, the CLI does not."""
    started = time.time()
    notes: list[str] = []
    source = open_csv(Path(request.input), COLUMN_SETS[request.verb], encoding=request.encoding)
    # A dry run that reads the directory writes plan.csv (what would change).
    reads_in_dry_run = request.dry_run and registry.reads_in_dry_run(request.verb)
    if request.dry_run and not reads_in_dry_run:
        source.check_encoding()  # a bad byte deep in the file stops the run before anything is written
    else:
        # Before any network: a bad byte or a runaway quote deep in the file stops the run
        # before anything is sent (a full parse; it checks the encoding too).
        for _ in source.rows():
            pass
    if source.match.unknown:
        notes.append(f"ignored columns: {', '.join(source.match.unknown)}")
    remembered = journal.meta()
    domain = remembered.get("domain") or target.domain
    extensions_app_id = remembered.get("extensions_app_id") or target.extensions_app_id
    passwords = PasswordsFile(run_dir)
    plan_file = PlanFile(run_dir) if reads_in_dry_run else None
    client: GraphClient | None = None
    try:
        async with AsyncExitStack() as stack:
            session = None
            connection = None
            if not request.dry_run or reads_in_dry_run:
                connection = await stack.enter_async_context(open_connection(
                    target, concurrency=request.concurrency, priority=request.priority,
                    local_settings=local_settings, pacing=pacing))
                client = connection.client
                extensions_app_id = extensions_app_id or connection.extensions_app_id
                if domain is None:
                    try:
                        domain = await connection.default_domain()
                    except ConfigError:
                        if request.verb == "create":
                            raise
                        domain = None  # other verbs need it only for sign-in name keys (rows say so)
            elif target.kind == "local" and (domain is None or extensions_app_id is None):
                local = LocalEmulator(local_settings)  # a dry run validates with the local tenant's names
                domain = domain or local.tenant.default_domain
                extensions_app_id = extensions_app_id or local.tenant.extensions_app_id
                local.close()
            if domain and "domain" not in remembered:
                journal.set_meta(domain=domain)  # resume validates rows exactly as this run did
            if extensions_app_id and "extensions_app_id" not in remembered:
                journal.set_meta(extensions_app_id=extensions_app_id)
            verb = build_verb(request.verb, VerbSettings(domain=domain, extensions_app_id=extensions_app_id,
                                                         on_existing=request.on_existing,
                                                         force_change_generated=request.force_change_generated))
            if connection is not None:
                needed = verb.needs.for_run(source.match.by_index.values(), reads_only=reads_in_dry_run)  # a plan only reads
                await connection.check_permissions(needed)
                session = Session(client=connection.client, passwords_on_file=passwords.rows_present)
            engine = Engine(verb, source.rows(), journal, passwords, session,
                            EngineOptions(batch_size=request.batch_size, concurrency=request.concurrency,
                                          dry_run=request.dry_run), on_progress, plan_file=plan_file)
            try:
                progress = await engine.run()
            except (OSError, sqlite3.Error) as exc:  # a full disk, a folder gone read-only: resumable
                if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
                    raise  # not the run folder: the network, which the client should have turned into results
                raise RunFolderFailed(run_dir, exc) from None
    finally:
        passwords.close()
        if plan_file is not None:
            plan_file.close()
    finished = time.time()
    try:
        return _write_run_files(request, target, journal, run_dir, client, progress, started, finished, resuming,
                                notes)
    except (OSError, sqlite3.Error) as exc:
        raise RunFolderFailed(run_dir, exc) from None


def _write_run_files(request: RunRequest, target: Target, journal: Journal, run_dir: Path, client: GraphClient | None,
                     progress: Progress, started: float, finished: float, resuming: bool,
                     notes: list[str]) -> RunReport:
    """results.csv from the journal, then summary.json."""
    write_results(journal, run_dir)
    counts = {s.value: 0 for s in Status}
    counts.update(journal.counts())
    rows = sum(counts.values())
    stats = client.stats if client is not None else None
    # Requests, 429s and retries of every process that worked on this run, resumes included.
    totals = dict(journal.meta().get("client_totals") or {})
    if stats is not None:
        for name, value in (("requests", stats.requests), ("graph_calls", stats.calls), ("throttled_429", stats.throttled),
                            ("retries", stats.retries), ("throttle_wait_seconds", stats.retry_wait + stats.pacing_wait)):
            totals[name] = round(totals.get(name, 0) + value, 3)
        journal.set_meta(client_totals=totals)
    failed = counts[Status.INVALID.value] + counts[Status.FAILED.value]
    summary = {
        "verb": request.verb,
        "input": request.input,
        "run_dir": str(run_dir),
        "target": target.label,
        "dry_run": request.dry_run,
        "started": _iso(journal.meta().get("started", started)),
        "finished": _iso(finished),
        "duration_seconds": round(finished - started, 3),
        "rows": rows,
        "counts": counts,
        "rows_per_second": round(progress.sent / (finished - started), 2) if finished > started else None,
        "requests": totals.get("requests", 0),
        "graph_calls": totals.get("graph_calls", 0),
        "throttled_429": totals.get("throttled_429", 0),
        "retries": totals.get("retries", 0),
        "throttle_wait_seconds": totals.get("throttle_wait_seconds", 0.0),
        "apps": 1 + len(target.extra_apps) if not request.dry_run else 0,
        "resumed": resuming,
        "version": __version__,
    }
    write_summary(run_dir, summary)
    return RunReport(run_dir, summary, ExitCode.ROWS_FAILED if failed else ExitCode.OK, notes)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def start_run(request: RunRequest, target: Target, on_progress: Callable[[Progress], None] | None = None,
              on_start: Callable[[Path], None] | None = None) -> RunReport:
    source_path = Path(request.input)
    if not source_path.is_file():
        raise ConfigError(f"cannot read {source_path}: no such file")
    base = Path("runs")
    wanted = Path(request.out_dir) if request.out_dir else base
    try:
        run_dir = prepare_out_dir(wanted) if request.out_dir else new_run_dir(base, request.verb)
        check_room(run_dir, source_path)
        journal = Journal(run_dir)
    except RunFolderTaken:
        raise
    except (OSError, sqlite3.Error) as exc:
        # Found before anything is sent: an unwritable place for the run folder.
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot write the run folder {wanted} ({reason}); nothing was sent. "
                          "Choose a writable place with --out-dir") from None
    if on_start is not None:
        on_start(run_dir)
    try:
        journal.set_meta(request=asdict(request) | {"input": str(source_path.resolve())},
                         fingerprint=fingerprint(source_path), target=target.label,
                         target_identity=target_identity(target), started=time.time())
        return interrupts.run(execute_run(replace_input(request, source_path.resolve()), target, journal=journal,
                                       run_dir=run_dir, on_progress=on_progress))
    finally:
        journal.close()


ROOM_MARGIN_BYTES = 1 << 20


def check_room(run_dir: Path, source: Path) -> None:
    """Before anything is sent: room for the journal, results.csv and passwords.csv, each of
    them about as big as the input file or smaller. A disk that fills up anyway stops the run
    with `RunFolderFailed`, resumably."""
    needed = 3 * source.stat().st_size + ROOM_MARGIN_BYTES
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise ConfigError(f"the disk holding {run_dir} has {free // 1024} KiB free; this run needs about "
                          f"{needed // 1024} KiB for its journal and result files. Free some space (or choose "
                          "another --out-dir), then run again; nothing was sent")


def replace_input(request: RunRequest, path: Path) -> RunRequest:
    return replace(request, input=str(path))


def load_request(run_dir: Path) -> tuple[RunRequest, Journal]:
    if not (run_dir / Journal.FILE).exists():
        raise ConfigError(f"{run_dir} is not a run folder (it has no {Journal.FILE})")
    journal = Journal(run_dir)
    meta = journal.meta()
    if "request" not in meta:
        # Killed between making the folder and recording the run: nothing was sent.
        journal.close()
        raise ConfigError(f"the run in {run_dir} was interrupted while starting, before anything was sent; "
                          f"start it again with the same command (--out-dir {run_dir})")
    request = RunRequest(**meta["request"])
    source = Path(request.input)
    if not source.is_file():
        journal.close()
        raise ConfigError(f"the run's input file {source} is gone; put it back to resume")
    if fingerprint(source) != meta.get("fingerprint"):
        journal.close()
        raise ConfigError(f"{source} changed since the run started; resume needs the same file")
    return request, journal


def resume_run(run_dir: Path, target: Target, on_progress: Callable[[Progress], None] | None = None) -> RunReport:
    request, journal = load_request(run_dir)
    try:
        saved = journal.meta().get("target_identity") or {}
        now = target_identity(target)
        if saved and (saved.get("kind") != now["kind"] or saved.get("tenant_id") != now["tenant_id"]):
            where = "the built-in emulator" if saved.get("kind") == "local" else \
                f"tenant {saved.get('tenant_id')} at {saved.get('graph_url')}"
            here = "the built-in emulator" if now["kind"] == "local" else f"tenant {now['tenant_id']}"
            raise ConfigError(f"this run was made against {where}, but the current settings point at {here}; "
                              "set up the same target (the same environment, --target or --profile) to resume it")
        check_room(run_dir, Path(request.input))
        return interrupts.run(execute_run(request, target, journal=journal, run_dir=run_dir,
                                       on_progress=on_progress, resuming=True))
    finally:
        journal.close()


__all__ = ["RunRequest", "RunReport", "start_run", "resume_run", "load_request", "home_dir"]
