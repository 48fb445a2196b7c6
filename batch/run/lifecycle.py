"""A run from start to finish, as the library sees it: read the input once, make (or reopen)
the run folder and its journal, connect and check permissions, run the pipeline, write
results.csv and summary.json.

`start_run` and `resume_run` are coroutines that any event loop can await; they never print,
prompt, exit, install signal handlers or choose a target by themselves. The caller passes the
target (and, for the built-in emulator or a mock, the httpx transport that reaches it), a
folder for the run, and callbacks for progress and confirmation. Run-level failures are
exceptions of the `batch.errors.RunError` tree; per-row results are in the summary and the
run folder.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import ssl
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx

from batch.config import Target, replication_waits
from batch.errors import ConfigError, NotConfirmed, RunFolderFailed, RunFolderTaken
from batch.io.columns import HeaderMatch, normalise_header
from batch.io.csvio import Scan
from batch.io.sources import InputSource, open_input_file
from batch.run.attributes import (
    NOT_ATTRIBUTES,
    catalog_meta,
    claim_attribute_columns,
    foreign_note,
    read_catalog,
    uses_attributes,
)
from batch.run.connection import (
    Connection,
    open_connection,
    same_target,
    target_identity,
)
from batch.run.directory_keys import directory_keys
from batch.run.files import (
    STARTUP_LEFTOVERS,
    PasswordsFile,
    PlanFile,
    column_labels,
    new_run_dir,
    output_dialect,
    prepare_out_dir,
    write_results,
    write_retry,
    write_summary,
)
from batch.run.index import PasswordsElsewhere, RunIndex, refuse_second_run
from batch.run.journal import Journal, JournalUnreadable, check_journal_files, why_unreadable
from batch.run.pipeline import Engine, EngineOptions, ProgressCallback
from batch.run.request import RunRequest
from batch.run.summary import RunSummary, summarise
from batch.run.watch import RUN_LOG, RunWatch, name_target
from batch.verbs.attributes import AttributeCatalog
from batch.verbs.base import REPLICATION_WAITS, Session
from batch.verbs.create import EXISTS_MESSAGE
from batch.verbs.jit import check_jit_start
from batch.verbs.registry import VERBS, VerbSettings, build_verb

# Asked with the number of data records before anything is written or sent; False stops the run.
ConfirmCallback = Callable[[int], bool]


@dataclass(frozen=True)
class _Input:
    source: InputSource
    scan: Scan


def _read_input(request: RunRequest) -> _Input:
    """Open the input and read it once, whole: structure, hash and record count, before any
    run folder exists or anything is sent."""
    path = Path(request.input)  # the readers refuse what is not a regular file (a FIFO, a device), saying so
    source = open_input_file(path, VERBS[request.verb].columns, encoding=request.encoding, sheet=request.sheet)
    return _Input(source, source.scan())


async def start_run(request: RunRequest, target: Target, *, runs_root: Path | None = None,
                    transport: httpx.AsyncBaseTransport | None = None,
                    on_progress: ProgressCallback | None = None, on_start: Callable[[Path], None] | None = None,
                    confirm: ConfirmCallback | None = None, pacing: bool = True, new_run: bool = False,
                    index: RunIndex | None = None,
                    watch: RunWatch | None = None, directory_index: bool = True) -> RunSummary:
    """Run `request.verb` on `request.input` against `target`.

    The run folder is `request.out_dir` (new or empty) or, without one, a new
    `<UTC time>-<verb>` folder under `runs_root`. `transport` replaces the network (the
    built-in emulator in process, a mock). `confirm(records)` may refuse the run once the
    target is named (`watch.on_target`) and before anything is written; `on_start(run_dir)` is called once the folder holds the run (from
    then on `resume_run` can finish it). `pacing=False` sends without pacing (benchmarks).
    `directory_index=False`: a create dry run looks every key up without reading the
    directory ahead (batch/run/directory_keys.py), the old path, for comparisons.

    One run per file and target: while an earlier run of the same verb on the same input
    (by content) against the same target is not finished, `ConfigError` names its folder,
    unless `new_run`. `index` (default: the one under ENTRA_BATCH_HOME) is where run folders
    are found. A `ConfigError` raised before anything was sent removes the folder it made.
    """
    if request.out_dir is None and runs_root is None:
        raise ValueError("start_run needs request.out_dir or runs_root")
    waits = replication_waits()  # a bad setting stops the run before anything is written
    opened = _read_input(request)
    index = index or RunIndex()
    identity = target_identity(target)
    # One start at a time per input and target: two started at once both found no earlier run
    # holding rows, and both went on (held until this run ends; a dry run and --new-run skip it).
    with index.starting(verb=request.verb, fingerprint=opened.scan.sha256, target_identity=identity,
                        input_name=request.input, skip=request.dry_run or new_run):
        if not request.dry_run and not new_run:
            refuse_second_run(index, verb=request.verb, fingerprint=opened.scan.sha256, target_identity=identity,
                              input_name=request.input, also_under=runs_root)
        request = replace(request, input=str(Path(request.input).resolve()))
        run_dir, journal, made = _make_run_folder(request, opened.source.path, runs_root)
        started = time.time()
        closed = False
        try:
            # A run that may ask is unconfirmed until its answer: stopped before it (a network
            # failure, a refused sign-in, a kill), resume asks (found by a review: it deleted 150).
            journal.set_meta(request=asdict(request), fingerprint=opened.scan.sha256, target=target.label,
                             target_identity=identity, started=started, records=opened.scan.records,
                             **({"confirmed": False} if confirm is not None else {}))
            index.run_started(run_dir, verb=request.verb, target=target.label, fingerprint=opened.scan.sha256,
                              target_identity=identity, started=started, dry_run=request.dry_run)
            if on_start is not None:
                on_start(run_dir)
            return await _execute(request, target, opened, journal=journal, run_dir=run_dir, transport=transport,
                                  on_progress=on_progress, resuming=False, pacing=pacing, replication_waits=waits,
                                  index=index, watch=watch, confirm=confirm, directory_index=directory_index)
        except ConfigError:
            unused = _nothing_but_the_start(run_dir, journal)
            journal.close()
            closed = True
            if unused:
                _remove_start(run_dir, remove_folder=made)
                index.forget([run_dir])
            raise
        finally:
            if not closed:
                journal.close()


def _nothing_but_the_start(run_dir: Path, journal: Journal) -> bool:
    """Whether the run folder holds only what starting a run put there (a usage error found
    after the folder was made: nothing was sent, nothing is worth keeping)."""
    try:
        leftovers = {p.name for p in run_dir.iterdir()}
        return leftovers <= STARTUP_LEFTOVERS and not journal.counts() and not journal.sent_rows()
    except (OSError, sqlite3.Error):
        return False


def _remove_start(run_dir: Path, *, remove_folder: bool) -> None:
    """Remove the lock and journal a start made (never following a link: unlink removes the
    link itself), and the folder when this start made it."""
    try:
        for name in STARTUP_LEFTOVERS:
            if name == RUN_LOG and not remove_folder:
                continue  # an --out-dir of the user's: a run.log there may be theirs
            try:
                os.unlink(run_dir / name)
            except FileNotFoundError:
                pass
        if remove_folder:
            os.rmdir(run_dir)
    except OSError:
        pass  # a folder that cannot be cleaned stays; it holds nothing that was sent


def _make_run_folder(request: RunRequest, source: Path, runs_root: Path | None) -> tuple[Path, Journal, bool]:
    """The run folder, its journal, and whether the folder was made now."""
    wanted = Path(request.out_dir) if request.out_dir else runs_root
    assert wanted is not None
    made = not request.out_dir or not os.path.lexists(wanted)
    try:
        run_dir = prepare_out_dir(wanted) if request.out_dir else new_run_dir(wanted, request.verb)
        try:
            check_room(run_dir, source)
        except ConfigError:
            if made:
                _remove_start(run_dir, remove_folder=True)  # the empty folder made just now
            raise
        return run_dir, Journal(run_dir), made
    except RunFolderTaken:
        raise
    except (OSError, sqlite3.Error) as exc:
        # Found before anything is sent: an unwritable place for the run folder.
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot write the run folder {wanted} ({reason}); nothing was sent. "
                          "Choose a writable place with --out-dir") from None


def read_request(run_dir: Path) -> RunRequest:
    """The request a run folder holds (to resolve its target before resuming it)."""
    journal = _open_recorded(run_dir)
    try:
        return _recorded_request(journal.meta())
    finally:
        journal.close()


def _open_recorded(run_dir: Path) -> Journal:
    """The journal of a run to resume, read and checked first: a journal that is not one
    (not SQLite, truncated, tables gone, a description that cannot be read) is a
    `ConfigError` saying why the folder cannot be resumed, never a traceback."""
    path = run_dir / Journal.FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (it has no {Journal.FILE})")
    check_journal_files(run_dir)
    why = why_unreadable(path)
    if why is not None:
        raise _cannot_resume(run_dir, why)
    try:
        journal = Journal(run_dir)
    except sqlite3.DatabaseError as exc:
        raise _cannot_resume(run_dir, f"is damaged ({exc})") from None
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot open the run folder {run_dir} ({reason}); make it readable and writable by you, "
                          "then resume it") from None
    try:
        meta = journal.meta()
        if "request" not in meta:
            if any(p.name not in STARTUP_LEFTOVERS for p in run_dir.iterdir()):
                # Files of a run beside a journal that describes none: it was emptied or replaced.
                raise JournalUnreadable("describes no run, though the folder holds the files of one (the journal "
                                        "was emptied or replaced)")
            # Killed between making the folder and recording the run: nothing was sent.
            raise ConfigError(f"the run in {run_dir} was interrupted while starting, before anything was sent; "
                              f"start it again with the same command (--out-dir {run_dir})")
        _recorded_request(meta)
    except JournalUnreadable as exc:
        journal.close()
        raise _cannot_resume(run_dir, exc.reason) from None
    except BaseException:
        journal.close()
        raise
    return journal


def _recorded_request(meta: dict[str, Any]) -> RunRequest:
    """The run's request, as recorded; `JournalUnreadable` if it is not one this version wrote."""
    saved = meta.get("request")
    if not isinstance(saved, dict):
        raise JournalUnreadable("holds a run description that is not one (the file was edited or damaged)")
    if not isinstance(saved.get("verb"), str) or saved["verb"] not in VERBS:
        raise JournalUnreadable(f"names the verb {str(saved.get('verb'))[:40]!r}, which this version of entra-batch "
                                "does not know (was the run made by another version?)")
    wrong = []
    for each in fields(RunRequest):
        if each.name not in saved:
            if each.name in ("verb", "input"):
                wrong.append(each.name)
            continue
        value, default = saved[each.name], each.default
        expected: tuple[type, ...] = (str,) if each.name in ("verb", "input") or isinstance(default, str) else \
            (str, type(None)) if default is None else (type(default),)
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected) or \
                (isinstance(value, int) and not isinstance(value, bool) and value < 1):
            wrong.append(each.name)
    identity = meta.get("target_identity")
    if identity is not None and not isinstance(identity, dict):
        wrong.append("target_identity")
    for name in ("domain", "extensions_app_id", "fingerprint"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            wrong.append(name)
    if wrong:
        raise JournalUnreadable(f"holds a run description with {', '.join(wrong)} missing or of the wrong kind "
                                "(the file was edited or damaged)")
    return RunRequest.from_journal(saved)


def _cannot_resume(run_dir: Path, why: str) -> ConfigError:
    passwords = run_dir / "passwords.csv"
    kept = f"; the passwords generated so far stay in {passwords}" if passwords.is_file() else ""
    return ConfigError(
        f"{run_dir} cannot be resumed: its {Journal.FILE} {why}. Nothing was sent. Run the verb again on the same "
        f"file in a new run folder (for create, with --on-existing skip, so that no customer is created twice){kept}")


async def resume_run(run_dir: Path, target: Target, *, transport: httpx.AsyncBaseTransport | None = None,
                     on_progress: ProgressCallback | None = None, index: RunIndex | None = None,
                     watch: RunWatch | None = None, confirm: ConfirmCallback | None = None) -> RunSummary:
    """Finish an interrupted run: rows done are kept, rows sent without an answer are looked
    up before anything is re-sent, the rest are sent. Needs the same input file and target.
    A run that stopped at its confirmation question (nothing sent) is asked again:
    `confirm(records)`, as `start_run` asks; without one, `NotConfirmed`."""
    waits = replication_waits()  # a bad setting stops the resume before anything is touched
    journal = _open_recorded(run_dir)
    try:
        meta = journal.meta()
        request = RunRequest.from_journal(meta["request"])
        _check_same_target(meta.get("target_identity") or {}, target)
        unconfirmed = meta.get("confirmed") is False
        if unconfirmed and confirm is None:
            raise NotConfirmed(f"{run_dir} stopped at its confirmation question and was never confirmed; nothing was "
                               "sent. Resume it where the question can be answered")
        source = Path(request.input)
        if not source.is_file():
            raise ConfigError(f"the run's input file {source} is gone; put it back to resume")
        opened = _read_input(request)
        if opened.scan.sha256 != meta.get("fingerprint"):
            raise ConfigError(f"{source} changed since the run started; resume needs the same file")
        check_room(run_dir, source)
        index = index or RunIndex()
        index.run_started(run_dir, verb=request.verb, target=str(meta.get("target", target.label)),
                          fingerprint=opened.scan.sha256, target_identity=meta.get("target_identity") or {},
                          started=float(meta.get("started") or time.time()), dry_run=request.dry_run)
        return await _execute(request, target, opened, journal=journal, run_dir=run_dir, transport=transport,
                              on_progress=on_progress, resuming=True, replication_waits=waits, index=index,
                              watch=watch, confirm=confirm if unconfirmed else None)
    finally:
        journal.close()


def write_provisional_results(run_dir: Path) -> Path:
    """results.csv of a run folder that is not finished, from its journal: the rows done so
    far (`entra-batch runs show`). `RunLocked` while a process works on the folder."""
    journal = _open_recorded(run_dir)
    try:
        return write_results(journal, run_dir)
    except (OSError, sqlite3.Error) as exc:
        raise RunFolderFailed(run_dir, exc) from None
    finally:
        journal.close()


def _check_same_target(saved: dict[str, object], target: Target) -> None:
    now = target_identity(target)
    if not saved or same_target(saved, now):
        return
    if saved.get("kind") == now["kind"] == "local":  # its tenant is another one now: `emulator reset`
        raise ConfigError(f"this run was made against the built-in emulator's tenant {saved.get('tenant_id')}, and "
                          f"the emulator has been reset since (its tenant is {now['tenant_id']} now): what the run "
                          "did there is gone. Start the run again in a new folder")
    where = "the built-in emulator" if saved.get("kind") == "local" else \
        f"tenant {saved.get('tenant_id')} at {saved.get('graph_url')}"
    here = "the built-in emulator" if now["kind"] == "local" else f"tenant {now['tenant_id']}"
    raise ConfigError(f"this run was made against {where}, but the current settings point at {here}; "
                      "set up the same target (the same environment, --target or --profile) to resume it")


async def _execute(request: RunRequest, target: Target, opened: _Input, *, journal: Journal, run_dir: Path,
                   transport: httpx.AsyncBaseTransport | None, on_progress: ProgressCallback | None,
                   resuming: bool, index: RunIndex, pacing: bool = True,
                   replication_waits: tuple[float, ...] | None = None, watch: RunWatch | None = None,
                   confirm: ConfirmCallback | None = None, directory_index: bool = True) -> RunSummary:
    started = time.time()
    source = opened.source
    notes: tuple[str, ...] = ()
    plans_by_reading = request.dry_run  # every dry run reads the directory; plan.csv: what would happen
    dialect = output_dialect(journal, source.dialect)  # the input's, remembered for results written later
    passwords = PasswordsFile(run_dir, dialect)
    plan_file = PlanFile(run_dir, dialect, column_labels(source.headers, source.match.by_index)) \
        if plans_by_reading else None
    if plan_file is not None and resuming:
        # Lines an interrupted part wrote for rows it never journaled go; rows it journaled
        # whose lines never reached the disk (a crash of the machine: plan.csv is not synced
        # line by line) are planned again.
        journal.forget_plans_after(plan_file.keep_rows_up_to(journal.last_row()))
    connection: Connection | None = None
    tenant = None
    try:
        async with AsyncExitStack() as stack:
            connection = await stack.enter_async_context(open_connection(
                target, transport=transport, concurrency=request.concurrency, priority=request.priority,
                pacing=pacing, observer=stack.enter_context((watch or RunWatch()).observing(run_dir))))
            domain, extensions_app_id = await _tenant_names(request, target, journal, connection)
            catalog = await _attributes(request, target, journal, connection, source.match)
            if catalog is not None:
                extensions_app_id = catalog.app_id
                notes += _claim_columns(request, source, catalog, plan_file)
            if source.match.unknown:
                notes = (f"ignored columns: {', '.join(source.match.unknown)}", *notes)
            if request.jit_migration is not None and connection is not None and catalog is not None:  # dry runs too
                jit = await check_jit_start(connection.client, request.jit_migration, catalog)
                catalog, notes = jit.catalog, notes + jit.notes
            verb = build_verb(request.verb, VerbSettings(
                domain=domain, extensions_app_id=extensions_app_id, on_existing=request.on_existing,
                force_change_generated=request.force_change_generated, attributes=catalog,
                jit_migration=request.jit_migration))
            session = None
            if connection is not None:
                await connection.check_permissions(
                    verb.needs.for_run(source.match.by_index.values(), reads_only=plans_by_reading))
                tenant = await name_target(connection, request.verb, opened.scan.records, watch)
                # Asked once the tenant is named and before anything is written (a refusal leaves no
                # folder). A run stopped at the question (killed, its terminal closed) was never
                # confirmed: its journal says so, and resume asks again.
                if confirm is not None:
                    journal.set_meta(confirmed=False)
                    if not confirm(opened.scan.records):
                        raise NotConfirmed("not confirmed; nothing was sent")
                    journal.set_meta(confirmed=True)
                session = Session(client=connection.client, passwords_on_file=passwords.rows_present,
                                  passwords_elsewhere=PasswordsElsewhere(
                                      index, verb=request.verb, fingerprint=opened.scan.sha256, run_dir=run_dir,
                                      target_identity=journal.meta().get("target_identity") or {}),
                                  replication_waits=replication_waits or REPLICATION_WAITS)
                if plans_by_reading and request.verb == "create" and directory_index:
                    # Read the directory's keys meanwhile (batch/run/directory_keys.py); the
                    # listing is cancelled when the run ends, before the connection closes.
                    session.directory_keys = await stack.enter_async_context(directory_keys(connection.client))
            engine = Engine(verb, source.rows(), journal, passwords, session,
                            EngineOptions(batch_size=request.batch_size, concurrency=request.concurrency,
                                          dry_run=request.dry_run), on_progress, plan_file=plan_file)
            engine.progress.rows_total = opened.scan.records
            engine.progress.hold = connection.client.hold if connection is not None else None
            try:
                progress = await engine.run()
                notes += _second_look_note(engine)
                if session is not None and session.directory_keys is not None and session.directory_keys.note():
                    notes += (session.directory_keys.note(),)
            except (OSError, sqlite3.Error) as exc:  # a full disk, a folder gone read-only: resumable
                if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
                    _write_provisional_results(journal, run_dir)
                    raise  # not the run folder: the network, which the client should have turned into results
                raise RunFolderFailed(run_dir, exc) from None
            except BaseException:  # Ctrl-C, SIGTERM, an abort with exit 3: what is done so far
                _write_provisional_results(journal, run_dir)
                raise
    except BaseException:
        _close_files(passwords, plan_file, run_dir, failing=True)
        raise
    _close_files(passwords, plan_file, run_dir, failing=False)
    notes += _existing_note(request, journal)
    try:
        write_results(journal, run_dir, dialect)
        write_retry(journal, run_dir, source, blank=_password_columns(request, source))
        summary = summarise(request, target, journal, run_dir, connection.client.stats if connection else None,
                            progress, started, time.time(), resuming, notes, tenant=tenant)
        write_summary(run_dir, summary.as_json())
        finished = time.time()
        journal.set_meta(finished=finished)
    except (OSError, sqlite3.Error) as exc:
        raise RunFolderFailed(run_dir, exc) from None
    index.run_finished(run_dir, finished)
    return summary


def _close_files(passwords: PasswordsFile, plan_file: PlanFile | None, run_dir: Path, *, failing: bool) -> None:
    """passwords.csv and plan.csv, closed. Closing flushes what plan.csv still buffers: when
    that fails while the run is failing already (a disk still full), the failure on its way
    out is the one reported, and resume cuts what was written short (`PlanFile.keep_rows_up_to`)."""
    passwords.close()
    if plan_file is None:
        return
    try:
        plan_file.close()
    except OSError as exc:
        if not failing:
            raise RunFolderFailed(run_dir, exc) from None


def _second_look_note(engine: Engine) -> tuple[str, ...]:
    """Why a short run with unknown keys took longer than its rows: they were asked again once
    Graph's replication window had passed (batch/verbs/lag.py), before being reported."""
    if not engine.second_looks:
        return ()
    waited = f", waiting {engine.second_look_wait:.1f} s for it" if engine.second_look_wait >= 0.5 else ""
    many = engine.second_looks != 1
    return (f"{engine.second_looks} row{'s' if many else ''} whose customer {'were' if many else 'was'} not where the "
            f"row wants {'them' if many else 'it'} got a second look once Graph's replication delay had passed"
            f"{waited}, before {'they were' if many else 'it was'} reported",)


def _existing_note(request: RunRequest, journal: Journal) -> tuple[str, ...]:
    """A create run again on a file whose customers exist fails those rows: say so once, with
    the way out, rather than only in each row's message."""
    if request.verb != "create" or request.dry_run or request.on_existing != "fail":
        return ()
    existing = journal.count_failed_with(EXISTS_MESSAGE)
    if not existing:
        return ()
    return (f"{existing} row{'s' if existing != 1 else ''} failed because the customer already exists; to create "
            "only the missing customers of a file run before, run it again with --on-existing skip",)


def _write_provisional_results(journal: Journal, run_dir: Path) -> None:
    """results.csv of a run that stops before its end (Ctrl-C, SIGTERM, exit 3): the rows
    done so far, in input order; `resume` rewrites it whole. Best effort: the run is already
    stopping for another reason, which must not be hidden by this one."""
    try:
        write_results(journal, run_dir)
    except (OSError, sqlite3.Error):
        pass


async def _tenant_names(request: RunRequest, target: Target, journal: Journal,
                        connection: Connection | None) -> tuple[str | None, str | None]:
    """The tenant's default domain and extensions app id, remembered by the journal so that a
    resumed run validates its rows exactly as the run that started them."""
    remembered = journal.meta()
    domain = remembered.get("domain") or target.domain
    extensions_app_id = remembered.get("extensions_app_id") or target.extensions_app_id
    if connection is not None and domain is None:
        try:
            domain = await connection.default_domain()
        except ConfigError:
            if request.verb == "create":
                raise
            domain = None  # other verbs need it only for sign-in name keys (rows say so)
    elif connection is not None and domain and "domain" not in remembered:
        await _check_domain(domain, connection)
    if domain and "domain" not in remembered:
        journal.set_meta(domain=domain)
    if extensions_app_id and "extensions_app_id" not in remembered:
        journal.set_meta(extensions_app_id=extensions_app_id)
    return domain, extensions_app_id


async def _check_domain(domain: str, connection: Connection) -> None:
    """A domain given by --domain (a profile, ENTRA_BATCH_DOMAIN) that the tenant has not
    verified: every sign-in name and UPN in it would be refused, row after row, so the run
    stops before anything is sent. Not checked when the app may not read /organization."""
    found = await connection.organization()
    if found.status != 200 or not isinstance(found.body, dict):
        return
    names = [str(d.get("name")) for org in found.body.get("value") or [] if isinstance(org, dict)
             for d in org.get("verifiedDomains") or [] if isinstance(d, dict) and d.get("name")]
    if names and domain.lower() not in {name.lower() for name in names}:
        raise ConfigError(f"--domain {domain} is not a verified domain of the tenant ({', '.join(names)}): Graph "
                          "would refuse every sign-in name and UPN in it. Give one of those, or leave --domain out "
                          "to use the tenant's default")


# The verbs that write custom attributes: they validate them against the tenant's catalog.
ATTRIBUTE_VERBS = ("create", "update")


async def _attributes(request: RunRequest, target: Target, journal: Journal, connection: Connection | None,
                      match: HeaderMatch) -> AttributeCatalog | None:
    """The tenant's custom attributes (batch/run/attributes.py), read once per run and
    remembered by the journal, so that a resumed run validates its rows with the catalog the
    run started with. A file with custom attribute columns needs it, and so do
    --legacy-id-attribute and --jit-migration (each names an attribute): without it the run
    stops before anything is sent; other runs go on without."""
    if request.verb not in ATTRIBUTE_VERBS:
        return None
    remembered = journal.meta()
    if "attributes" in remembered:
        saved = remembered["attributes"]
        try:
            return AttributeCatalog.from_meta(saved) if saved is not None else None
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ConfigError("the run's journal holds custom attributes that cannot be read (the file was edited "
                              "or damaged); run the verb again in a new run folder") from None
    if connection is None:
        return None
    if not (uses_attributes(match) or match.unknown or request.legacy_id_attribute is not None
            or request.jit_migration is not None):
        # Nothing in the file or the options names an attribute: two round trips saved before
        # the first row is sent (0.6 s at 300 ms), and a resumed run does the same.
        journal.set_meta(**catalog_meta(None, "the file names no custom attribute"))
        return None
    reading = await read_catalog(connection.client, remembered.get("extensions_app_id") or target.extensions_app_id)
    # Unknown columns may be custom attributes named bare (claim_attribute_columns): unless the
    # tenant has no extensions app at all, they cannot be told from typos without the catalog.
    # (An export's id/objectId column is only ever kept by --legacy-id-attribute.)
    bare = [] if reading.absent else [u for u in match.unknown if normalise_header(u) not in NOT_ATTRIBUTES]
    if reading.catalog is None and (uses_attributes(match) or request.legacy_id_attribute is not None
                                     or request.jit_migration is not None or bare):
        reading.required(connection.client_ids[0] if connection.client_ids else None, bare)
    journal.set_meta(**catalog_meta(reading.catalog, reading.why))
    return reading.catalog


def _claim_columns(request: RunRequest, source: InputSource, catalog: AttributeCatalog,
                   plan_file: PlanFile | None) -> tuple[str, ...]:
    """Give the verb the file's columns that name custom attributes only by their bare
    name (or the object id kept by --legacy-id-attribute), and say what was mapped."""
    notes: list[str] = []
    legacy = request.legacy_id_attribute if request.verb == "create" else None
    if legacy is not None:
        found = catalog.find(legacy)
        if found is None or found.data_type != "String":
            what = f"a {found.data_type}" if found is not None else "not one of this tenant's custom attributes"
            raise ConfigError(f"--legacy-id-attribute {legacy} is {what}: name a String custom attribute "
                              f"(this tenant's: {catalog.listed()}); nothing was sent")
    source.match = claim_attribute_columns(source.headers, source.match, catalog, legacy)
    if plan_file is not None:
        plan_file.labels.update(column_labels(source.headers, source.match.by_index))
    if legacy is not None and f"ext.{legacy}" not in source.match.by_index.values():
        notes.append(f"--legacy-id-attribute {legacy}: the file has no id or objectId column to keep")
    note = foreign_note(source.match.by_index.values(), catalog)
    if note:
        notes.append(note)
    return tuple(notes)


def _password_columns(request: RunRequest, source: InputSource) -> list[int]:
    """The columns retry.csv leaves blank: a JIT run's passwords (batch/verbs/jit.py) are the
    legacy system's to check and are written nowhere, not even in a copy of the failing rows."""
    if request.jit_migration is None:
        return []
    return [index for index, name in source.match.by_index.items() if name == "password"]


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


__all__ = ["ConfirmCallback", "ProgressCallback", "RunSummary", "check_room",
           "read_request", "resume_run", "start_run", "write_provisional_results"]
