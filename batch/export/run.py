"""An export from start to finish: choose the columns, check permissions, list the
customers page by page (sequentially, in partitions, deleted ones, or the changes since a
delta link), write them as they arrive, and write summary.json (and the state file of an
incremental export) once the file is complete.

Nothing here prints: progress goes to `on_progress`, run-level failures are `RunError`s,
and the CLI renders both.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batch import __version__, interrupts
from batch.config import Target
from batch.errors import ConfigError, GraphRequestFailed, RunError, RunFolderTaken
from batch.export import listing
from batch.export.fields import (
    COUNTED_COLUMNS,
    Columns,
    SelectError,
    choose_columns,
    flatten,
)
from batch.export.summary import ExportSummary, render_report
from batch.export.writers import FORMATS, format_for, open_writer
from batch.graph import GraphCall, GraphClient
from batch.run.connection import Connection, open_connection, target_identity
from batch.run.files import new_run_dir, prepare_out_dir, write_summary
from batch.verbs.permissions import DELETE_RESTORE, READ

LIST_DELETED = DELETE_RESTORE | READ
READ_APPLICATIONS = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                               "Directory.ReadWrite.All"})
SIGN_IN_TYPES = ("emailAddress", "userName", "federated")
STATE_VERSION = 1


@dataclass(frozen=True)
class ExportRequest:
    out: str | None = None
    format: str | None = None
    out_dir: str | None = None
    filter: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    blocked: bool | None = None  # True: only blocked, False: only enabled, None: both
    sign_in_type: str | None = None
    select: str | None = None
    deleted: bool = False
    since: str | None = None  # the state file of an incremental export
    sequential: bool = False
    concurrency: int = 16
    raw: bool = False
    report: str | None = None
    priority: str = "normal"


@dataclass
class ExportProgress:
    customers: int = 0
    pages: int = 0
    total: int | None = None


@dataclass
class ExportReport:
    run_dir: Path
    path: Path
    summary: dict[str, Any]
    counts: ExportSummary
    notes: list[str]
    report_path: Path | None = None


def odata_filter(request: ExportRequest) -> tuple[str | None, bool]:
    """The `$filter` of the friendly options and `--filter` together, and whether it needs
    Graph's advanced query mode (createdDateTime can only be filtered there)."""
    clauses: list[str] = []
    advanced = False
    if request.created_after:
        clauses.append(f"createdDateTime ge {_moment(request.created_after, '--created-after')}")
        advanced = True
    if request.created_before:
        clauses.append(f"createdDateTime le {_moment(request.created_before, '--created-before', end=True)}")
        advanced = True
    if request.blocked is not None:
        clauses.append(f"accountEnabled eq {'false' if request.blocked else 'true'}")
    if request.filter:
        clauses.append(f"({request.filter})" if clauses else request.filter)
    return (" and ".join(clauses) or None), advanced


def _moment(text: str, option: str, *, end: bool = False) -> str:
    """`2026-01-31` or an ISO 8601 time → Graph's `2026-01-31T00:00:00Z` (a date given as
    --created-before includes its whole day)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            moment = day.replace(hour=23, minute=59, second=59) if end else day
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give a date (2026-01-31) or a time (2026-01-31T08:00:00Z)") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(request: ExportRequest) -> None:
    if request.format and request.format not in FORMATS:
        raise ConfigError(f"--format {request.format}: one of {', '.join(FORMATS)}")
    if request.sign_in_type and request.sign_in_type not in SIGN_IN_TYPES:
        raise ConfigError(f"--sign-in-type {request.sign_in_type}: one of {', '.join(SIGN_IN_TYPES)}")
    if request.since and (request.filter or request.created_after or request.created_before
                          or request.blocked is not None or request.deleted):
        raise ConfigError("--since lists what changed in the whole directory: it cannot be combined with "
                          "--filter, --created-after/--created-before, --blocked/--enabled or --deleted "
                          "(Graph's delta query takes no filter)")
    if request.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")


class ExportFailed(RunError):
    """Writing the export (or its summary, report or state file) failed: a full disk, a
    folder that cannot be written."""

    exit_code = 3

    def __init__(self, what: str, cause: OSError, after: str = "") -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {what} ({reason}).{' ' + after if after else ''}")


AGAIN = "Run the export again once Graph answers."


def run_export(request: ExportRequest, target: Target, *, on_progress: Callable[[ExportProgress], None] | None = None,
               on_start: Callable[[Path], None] | None = None, local_settings: Any = None,
               pacing: bool = True) -> ExportReport:
    _check(request)
    try:
        run_dir = prepare_out_dir(Path(request.out_dir)) if request.out_dir else new_run_dir(Path("runs"), "export")
    except RunFolderTaken:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot make the run folder {request.out_dir or 'runs/'} ({exc.strerror or exc}); "
                          "choose a writable place with --out-dir") from None
    if on_start is not None:
        on_start(run_dir)
    return interrupts.run(_export(request, target, run_dir, on_progress or (lambda p: None), local_settings, pacing))


async def _export(request: ExportRequest, target: Target, run_dir: Path, on_progress: Callable[[ExportProgress], None],
                  local_settings: Any, pacing: bool) -> ExportReport:
    started = time.time()
    notes: list[str] = []
    async with open_connection(target, concurrency=request.concurrency, priority=request.priority,
                               local_settings=local_settings, pacing=pacing) as connection:
        identity = _identity(connection)
        state = _read_state(Path(request.since), identity) if request.since else None
        await connection.check_permissions([LIST_DELETED if request.deleted else READ])
        client = connection.client
        if state is not None and state.get("columns"):
            columns = Columns(tuple(state["columns"]), dict(state.get("extensions") or {}))
            if request.select:
                notes.append("--select is ignored: an incremental export keeps the columns of its first run")
        else:
            names, note = await _extension_names(connection)
            if note:
                notes.append(note)
            hex_id = connection.extensions_app_id.replace("-", "").lower() if connection.extensions_app_id else None
            try:
                columns = choose_columns(request.select, extension_names=names, extensions_app_hex=hex_id,
                                         deleted=request.deleted, delta=request.since is not None)
            except SelectError as exc:
                raise ConfigError(str(exc)) from None
        # The file's columns, and what the summary counts (and --sign-in-type checks) besides.
        fetched = columns.including(COUNTED_COLUMNS)
        select = fetched.select
        flt, advanced = odata_filter(request)
        try:
            fmt = format_for(Path(request.out) if request.out else Path("customers.csv"), request.format)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        path = Path(request.out) if request.out else run_dir / f"customers.{fmt}"
        if path.is_dir():
            raise ConfigError(f"--out {path} is a folder; give a file name")
        if request.since is None:
            # A filter Graph refuses stops here, with Graph's reason, before anything is written.
            advanced = await _probe(client, _listing_for(request, select, flt), advanced)
            progress_total = await _count(client, flt) if not request.deleted else None
        else:
            progress_total = None
        counts = ExportSummary()
        progress = ExportProgress(total=progress_total)
        keep = _keeper(request.sign_in_type)
        try:
            writer = open_writer(path, fmt, columns.names, raw=request.raw)
        except OSError as exc:
            raise ExportFailed(str(path), exc, "Choose another --out.") from None
        written = 0

        def convert(users: list[dict[str, Any]]) -> list[list[str]]:
            out = []
            for user in users:
                if keep(user):
                    record = _record(user, fetched, state)
                    out.append([record[name] for name in fetched.names])
            return out

        def sink(rows: list[list[str]]) -> None:
            nonlocal written
            records = [dict(zip(fetched.names, row)) for row in rows]
            writer.write(records)
            for record in records:
                counts.add(record)
            written += len(records)

        def page_arrived(customers: int) -> None:
            progress.pages += 1
            progress.customers += customers
            on_progress(progress)

        on_progress(progress)
        mode = "sequential"
        new_state: dict[str, Any] | None = None
        try:
            if request.since is not None:
                mode = "delta"
                new_state = await _delta(client, columns, select, state, convert, sink, page_arrived)
            elif request.deleted or request.sequential:
                await _sequential(client, _listing_for(request, select, flt)(advanced, listing.PAGE_SIZE),
                                  convert, sink, page_arrived)
            else:
                mode = f"partitioned ({len(listing.PARTITION_PREFIXES)} partitions, {request.concurrency} at a time)"
                listings = [listing.users_listing(select, listing.partition_filter(p, flt), advanced=advanced)
                            for p in listing.PARTITION_PREFIXES]
                await listing.partitioned(client, listings, concurrency=request.concurrency,
                                          spool_dir=path.parent, convert=convert, on_page=page_arrived, sink=sink)
            final = writer.finish()
        except OSError as exc:
            leftover = _abandon(writer)
            raise ExportFailed(str(path), exc, f"{leftover} holds what was written so far." if leftover else "") \
                from None
        except GraphRequestFailed as exc:
            leftover = _abandon(writer)
            if request.since and exc.status == 410:
                raise ConfigError(f"the delta link in {request.since} has expired (Graph keeps changes for a "
                                  "limited time); delete the state file and run again for a full export") from None
            failed = GraphRequestFailed(exc.what, status=exc.status, code=exc.code, detail=exc.detail, then=AGAIN)
            if leftover:
                failed.add_note(f"the export did not finish; {leftover} holds what was written so far")
            raise failed from None
        except BaseException:
            _abandon(writer)
            raise
        if new_state is not None and request.since:
            try:
                _write_state(Path(request.since), new_state | {"target": identity})
            except OSError as exc:
                raise ExportFailed(f"the state file {request.since}", exc,
                                   f"The export itself is complete in {final}; the next run with --since "
                                   "lists these changes again.") from None
        stats = client.stats
    finished = time.time()
    report_path = None
    try:
        if request.report:
            report_path = Path(request.report)
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(render_report(counts, title="Customer accounts", generated_at=_iso(finished),
                                                 target=target.label, source=str(final)), encoding="utf-8")
        summary = {
            "verb": "export",
            "output": str(final),
            "format": fmt,
            "run_dir": str(run_dir),
            "target": target.label,
            "mode": mode,
            "filter": flt,
            "sign_in_type": request.sign_in_type,
            "deleted": request.deleted,
            "since": request.since,
            "columns": list(columns.names),
            "started": _iso(started),
            "finished": _iso(finished),
            "duration_seconds": round(finished - started, 3),
            "customers": written,
            "pages": progress.pages,
            "customers_per_second": round(written / (finished - started), 1) if finished > started else None,
            "requests": stats.requests,
            "graph_calls": stats.calls,
            "throttled_429": stats.throttled,
            "retries": stats.retries,
            "counts": counts.to_dict(),
            "version": __version__,
        }
        write_summary(run_dir, summary)
    except OSError as exc:
        where = str(report_path) if report_path and not report_path.exists() else f"the summary in {run_dir}"
        raise ExportFailed(where, exc, f"The export itself is complete in {final}.") from None
    return ExportReport(run_dir, final, summary, counts, notes, report_path)


def _abandon(writer: Any) -> Path | None:
    """Close an unfinished export; the `.partial` file it leaves, if any."""
    try:
        leftover: Path | None = writer.abandon()
        return leftover
    except OSError:
        return None


def _listing_for(request: ExportRequest, select: list[str], flt: str | None
                 ) -> Callable[[bool, int], listing.Listing]:
    """The listing of this export's customers (live or deleted), in normal or advanced query mode."""
    def make(advanced: bool, top: int) -> listing.Listing:
        if request.deleted:
            return listing.deleted_listing(select, flt, advanced=advanced, top=top)
        return listing.users_listing(select, flt, advanced=advanced, top=top)
    return make


def _record(user: dict[str, Any], columns: Columns, state: dict[str, Any] | None) -> dict[str, str]:
    record = flatten(user, columns)
    if "change" in columns.names:
        removed = user.get("@removed")
        if isinstance(removed, dict):
            record["change"] = "removed"
            record["removal"] = "purged" if removed.get("reason") == "deleted" else "deleted"
        else:
            synced = (state or {}).get("synced_at")
            created = str(user.get("createdDateTime") or "")
            record["change"] = "added" if not synced or (created and created > synced) else "changed"
    return record


def _keeper(sign_in_type: str | None) -> Callable[[dict[str, Any]], bool]:
    """`--sign-in-type`: Graph cannot filter on signInType, so it is applied here."""
    if not sign_in_type:
        return lambda user: True

    def keep(user: dict[str, Any]) -> bool:
        if isinstance(user.get("@removed"), dict):
            return True  # a removed customer has no identities left to tell; keep it listed
        return any(i.get("signInType") == sign_in_type for i in user.get("identities") or [])

    return keep


async def _sequential(client: GraphClient, source: listing.Listing, convert: Callable[[list[dict[str, Any]]], list[list[str]]],
                      sink: Callable[[list[list[str]]], None], page_arrived: Callable[[int], None]) -> None:
    async for body in listing.pages(client, source):
        rows = convert(body.get("value") or [])
        sink(rows)
        page_arrived(len(rows))


async def _delta(client: GraphClient, columns: Columns, select: list[str], state: dict[str, Any] | None,
                 convert: Callable[[list[dict[str, Any]]], list[list[str]]], sink: Callable[[list[list[str]]], None],
                 page_arrived: Callable[[int], None]) -> dict[str, Any]:
    """One delta round; returns the state to keep (the new delta link and when this round
    started on Graph's clock: next round, a customer created later is `added`, an earlier
    one `changed`, which Graph's delta does not tell apart)."""
    source = listing.delta_listing(select, (state or {}).get("deltaLink"))
    sent = time.time()
    started: float | None = None
    delta_link = None
    async for body in listing.pages(client, source):
        if started is None:  # the first answer's Date header gives Graph's clock
            started = sent + (client.server_clock_offset or 0.0)
        rows = convert(body.get("value") or [])
        sink(rows)
        page_arrived(len(rows))
        link = body.get("@odata.deltaLink")
        if isinstance(link, str):
            delta_link = link
    if delta_link is None or started is None:
        raise GraphRequestFailed("GET /users/delta", status=200, code="NoDeltaLink",
                                 detail="the last page carried no @odata.deltaLink; nothing was saved", then=AGAIN)
    return {"version": STATE_VERSION, "deltaLink": delta_link, "columns": list(columns.names),
            "extensions": dict(columns.extensions), "synced_at": _iso(started),
            "first_synced_at": (state or {}).get("first_synced_at") or _iso(started)}


async def _probe(client: GraphClient, make: Callable[[bool, int], listing.Listing], advanced: bool) -> bool:
    """Ask for one customer first, so that a filter Graph refuses stops the export with
    Graph's reason (exit 2) before anything is written or any partition starts. A filter
    that needs Graph's advanced query mode is sent again in that mode. Returns whether the
    mode is used."""
    first = await client.request(GraphCall("GET", make(advanced, 1).url, headers=make(advanced, 1).headers))
    if first.status == 400 and not advanced:
        retry = await client.request(GraphCall("GET", make(True, 1).url, headers=make(True, 1).headers))
        if retry.status == 200:
            return True
    if first.status == 400:
        raise ConfigError(f"Graph refused the export's query: {first.error_message or first.error_code}")
    if not first.ok:
        raise GraphRequestFailed("GET the first customer", status=first.status, code=first.error_code,
                                 detail=first.error_message, then=AGAIN)
    return advanced


async def _count(client: GraphClient, flt: str | None) -> int | None:
    """How many customers to expect, for progress (`/users/$count`, eventually consistent;
    None when Graph will not say)."""
    url = "/users/$count" + (f"?$filter={quote(flt, safe='')}" if flt else "")
    result = await client.request(GraphCall("GET", url, headers=listing.EVENTUAL))
    if result.status != 200:
        return None
    try:
        return int(str(result.body).strip())
    except ValueError:
        return None


async def _extension_names(connection: Connection) -> tuple[list[str], str | None]:
    """The tenant's custom attributes (`extension_<hex>_<name>`), from the extensions app's
    `extensionProperties`; with a note instead when they cannot be listed."""
    app_id = connection.extensions_app_id
    if not app_id:
        return [], ("custom attributes are not exported: the extensions app id is unknown "
                    "(--extensions-app-id or ENTRA_BATCH_EXTENSIONS_APP_ID)")
    result = await connection.client.request(
        GraphCall("GET", f"/applications(appId='{app_id}')/extensionProperties?$select=name,targetObjects"))
    if result.status != 200 or not isinstance(result.body, dict):
        why = "the app lacks Application.Read.All" if result.status == 403 else (result.error_code or result.status)
        return [], (f"custom attributes are not listed ({why}); add them with --select +ext.NAME")
    names = [str(item["name"]) for item in result.body.get("value") or []
             if isinstance(item, dict) and item.get("name") and "User" in (item.get("targetObjects") or ["User"])]
    return sorted(names, key=str.lower), None


def _identity(connection: Connection) -> dict[str, Any]:
    """The tenant a state file belongs to (the local emulator's own tenant id for `local`)."""
    identity = target_identity(connection.target)
    if connection.local is not None:
        identity["tenant_id"] = connection.local.tenant.id
    return identity


def _read_state(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The state file of an incremental export; None on its first run (no file yet)."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--since {path}: not a state file written by `entra-batch export --since` ({exc})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not state.get("deltaLink"):
        raise ConfigError(f"--since {path}: not a state file written by `entra-batch export --since`")
    saved = state.get("target") or {}
    if saved.get("kind") != identity["kind"] or saved.get("tenant_id") != identity["tenant_id"]:
        raise ConfigError(f"--since {path} belongs to another target ({saved.get('tenant_id') or saved.get('kind')}); "
                          "use a state file per tenant")
    if saved.get("graph_url") != identity["graph_url"]:
        raise ConfigError(f"--since {path} was made against {saved.get('graph_url')}, not {identity['graph_url']}: "
                          "its delta link only works there. Use that address, or delete the state file for a "
                          "full export")
    return state


def _write_state(path: Path, state: dict[str, Any]) -> None:
    """Replaced whole and only once the export file is complete: an interrupted export
    leaves the previous state, and running it again lists the same changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["ExportProgress", "ExportReport", "ExportRequest", "odata_filter", "run_export"]
