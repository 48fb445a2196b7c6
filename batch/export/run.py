"""An export from start to finish, composed of its parts: check the request
(`request`), choose the columns (`attributes`), list the customers sequentially, in
partitions or as the changes since a delta link (`modes`, `state`), write them as they arrive
(`rows`, `output`), and write summary.json and the `--report` page (`report`), and the state
file of an incremental export once the file is complete.

Nothing here prints: progress goes to `on_progress`, run-level failures are `RunError`s,
and the CLI renders both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from batch.config import Target
from batch.errors import ConfigError, ExportFailed, RunFolderTaken
from batch.export import modes
from batch.export.attributes import export_columns
from batch.export.fields import COUNTED_COLUMNS
from batch.export.migration import migration_column
from batch.export.output import STDOUT, ExportFile, check_output, output_file
from batch.export.permissions import needed
from batch.export.report import ExportReport, iso_time, save_report
from batch.export.request import ExportRequest, check_request, odata_filter
from batch.export.rows import row_maker
from batch.export.state import DeltaState, read_state, write_state
from batch.graph import ClientStats, Observer
from batch.run.connection import open_connection, target_identity
from batch.run.files import new_run_dir, prepare_out_dir
from batch.version import __version__


@dataclass
class ExportProgress:
    customers: int = 0
    pages: int = 0
    total: int | None = None


async def run_export(request: ExportRequest, target: Target, *, runs_root: Path | None = None,
                     on_progress: Callable[[ExportProgress], None] | None = None,
                     on_start: Callable[[Path], None] | None = None, transport: httpx.AsyncBaseTransport | None = None,
                     pacing: bool = True, stdout: BinaryIO | None = None,
                     observer: Observer | None = None) -> ExportReport:
    """Export customers of `target` as `request` says. summary.json goes to `request.out_dir`
    (new or empty) or a new `<UTC time>-export` folder under `runs_root`; `transport`
    replaces the network (the built-in emulator in process, a mock). `request.out == "-"`
    writes CSV or JSON Lines to `stdout` (a binary stream) as it comes. `observer` is told
    every request (`--verbose`)."""
    check_request(request)
    check_output(request)
    if request.out == STDOUT and stdout is None:
        raise ValueError("run_export writes --out - to `stdout`: pass the binary stream")
    if request.out_dir is None and runs_root is None:
        raise ValueError("run_export needs request.out_dir or runs_root")
    made = request.out_dir is None or not Path(request.out_dir).exists()
    try:
        run_dir = prepare_out_dir(Path(request.out_dir)) if request.out_dir else new_run_dir(runs_root or Path(), "export")
    except RunFolderTaken:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot make the run folder {request.out_dir or 'runs/'} ({exc.strerror or exc}); "
                          "choose a writable place with --out-dir") from None
    if on_start is not None:
        on_start(run_dir)
    try:
        return await _export(request, target, run_dir, on_progress or (lambda p: None), transport, pacing, stdout,
                             observer)
    except ConfigError:
        # A usage error found once connected (a property, a filter or a state file the tenant
        # refuses): nothing was written, and the folder made for the export goes.
        if made:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when empty
        raise


async def _export(request: ExportRequest, target: Target, run_dir: Path, on_progress: Callable[[ExportProgress], None],
                  transport: httpx.AsyncBaseTransport | None, pacing: bool, stdout: BinaryIO | None,
                  observer: Observer | None = None) -> ExportReport:
    started = time.time()
    async with open_connection(target, concurrency=request.concurrency, priority=request.priority,
                               transport=transport, pacing=pacing, observer=observer) as connection:
        identity = target_identity(connection.target)
        state = read_state(Path(request.since), identity) if request.since else None
        await connection.check_permissions([needed(deleted=request.deleted)])
        client = connection.client
        columns, notes = await export_columns(connection, request, state)
        # The file's columns, and what the summary counts (and --sign-in-type checks) besides.
        fetched = columns.including(COUNTED_COLUMNS)
        migration = None
        if request.jit_migration:
            migration, fetched = await migration_column(connection, request.jit_migration, fetched)
        flt, advanced = odata_filter(request)
        query = modes.Query(fetched.select, flt, advanced, request.deleted)
        path, fmt = output_file(request, run_dir)
        progress = ExportProgress()
        if request.since is None:
            # A filter Graph refuses stops here, with Graph's reason, before anything is written.
            query = replace(query, advanced=await modes.probe(client, query))
            progress.total = await modes.count(client, flt) if not request.deleted else None
        out = ExportFile(path, fmt, columns.names, fetched.names, raw=request.raw, stream=stdout, migration=migration)

        def page_arrived(customers: int, pages: int) -> None:
            progress.pages += pages
            progress.customers += customers
            on_progress(progress)

        flow = modes.RowFlow(row_maker(fetched, state, request.sign_in_type), out.write, page_arrived)
        on_progress(progress)
        spool = run_dir if request.out == STDOUT else path.parent  # restart bookkeeping beside the output
        if request.since is not None:
            new_state, final = await out.fill(modes.delta(client, columns, query.select, state, flow, spool_dir=spool),
                                              since=request.since)
            _save_state(request.since, new_state, identity, final)
            mode = "delta"
        elif request.deleted or request.sequential:
            mode, final = await out.fill(modes.sequential(client, query, flow, spool_dir=spool), since=None)
        else:
            mode, final = await out.fill(modes.partitioned(client, query, flow, concurrency=request.concurrency,
                                                           spool_dir=spool), since=None)
        stats = client.stats
    report = _report(request, target, run_dir, final, fmt, mode, flt, columns.names, started, time.time(),
                     out, progress.pages, stats, notes)
    save_report(report)
    return report


def _save_state(since: str, state: DeltaState, identity: Mapping[str, Any], final: Path) -> None:
    try:
        write_state(Path(since), state, identity)
    except OSError as exc:
        raise ExportFailed(f"the state file {since}", exc,
                           f"The export itself is complete in {final}; the next run with --since "
                           "lists these changes again.") from None


def _report(request: ExportRequest, target: Target, run_dir: Path, final: Path, fmt: str, mode: str,
            flt: str | None, columns: tuple[str, ...], started: float, finished: float, out: ExportFile, pages: int,
            stats: ClientStats, notes: list[str]) -> ExportReport:
    return ExportReport(
        run_dir=run_dir, path=final, format=fmt, target=target.label, mode=mode, filter=flt,
        sign_in_type=request.sign_in_type, deleted=request.deleted, since=request.since, columns=columns,
        started=iso_time(started), finished=iso_time(finished), duration_seconds=round(finished - started, 3),
        customers=out.written, pages=pages,
        customers_per_second=round(out.written / (finished - started), 1) if finished > started else None,
        requests=stats.requests, graph_calls=stats.calls, throttled_429=stats.throttled, retries=stats.retries,
        version=__version__, counts=out.counts, report_path=Path(request.report) if request.report else None,
        notes=tuple(notes))


__all__ = ["ExportProgress", "ExportReport", "ExportRequest", "odata_filter", "run_export"]
