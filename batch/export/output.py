"""The export file: where it goes (and what `--out` may replace), the `.partial` file that
takes its name once complete (`batch.export.writers`), the customers counted as they are
written, and what a failure leaves behind (the `.partial` file, named in the error).
`--out -` streams CSV or JSON Lines to the stream the caller gives (the CLI: standard output)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from batch.errors import ConfigError, ExportFailed, GraphRequestFailed
from batch.export.modes import AGAIN
from batch.export.request import ExportRequest
from batch.export.summary import CustomerCounts
from batch.export.writers import STREAMABLE, ExportWriter, format_for, open_writer
from batch.graph.paging import PageTokenExpired
from batch.run.private import check_replaceable

T = TypeVar("T")


STDOUT = "-"


def output_file(request: ExportRequest, run_dir: Path) -> tuple[Path, str]:
    """The export file (`--out`, or customers.<format> in the run folder) and its format;
    `--out -` is standard output (Path("-"))."""
    fmt = _format(request)
    if request.out is None:
        return run_dir / f"customers.{fmt}", fmt
    check_output(request)
    return Path(request.out), fmt


def _format(request: ExportRequest) -> str:
    try:
        return format_for(Path(request.out) if request.out and request.out != STDOUT else Path("customers.csv"),
                          request.format)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_output(request: ExportRequest) -> None:
    """`--out` may name a new file, or a regular file of the user's, which the export replaces
    once complete. A symbolic link or another user's file is replaced only with `--force` (the
    link itself: what it points to is never written); a folder or a special file (a device, a
    FIFO) never is. `-` is standard output, for CSV and JSON Lines. `--report` likewise."""
    if request.report is not None:
        check_replaceable(Path(request.report), force=request.force, option="--report")
    if request.out is None:
        return
    fmt = _format(request)
    if request.out == STDOUT:
        if fmt not in STREAMABLE:
            raise ConfigError(f"--out - writes to standard output only as csv or jsonl, not {fmt}; "
                              f"write it to a file with --out FILE.{fmt}")
        return
    check_replaceable(Path(request.out), force=request.force)


class ExportFile:
    """The file being written: rows come in `fetched` column order, the file keeps `columns`
    of them, and every written customer is counted (the columns the counts need are fetched
    even when the file leaves them out)."""

    def __init__(self, path: Path, fmt: str, columns: Sequence[str], fetched: Sequence[str], *, raw: bool,
                 stream: BinaryIO | None = None, migration: str | None = None) -> None:
        if str(path) == STDOUT and stream is None:
            raise ValueError("--out - needs the stream to write to (run_export's stdout)")
        try:
            self._writer: ExportWriter = open_writer(path, fmt, columns, raw=raw,
                                                     stream=stream if str(path) == STDOUT else None)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        except OSError as exc:
            raise ExportFailed(str(path), exc, "Choose another --out.") from None
        self.path = path
        self._fetched = tuple(fetched)
        # The writer takes rows in `columns` order: the fetched rows as they are when the
        # columns lead them (as `Columns.including` makes them), else picked out.
        self._positions = [self._fetched.index(name) if name in self._fetched else None for name in columns]
        self._prefix = self._positions == list(range(len(self._positions)))
        self.counts = CustomerCounts(migration)  # migration: the JIT flag's column, counted by value
        self.written = 0

    def write(self, rows: list[list[str]]) -> None:
        self._writer.write(rows if self._prefix else
                           [["" if i is None else row[i] for i in self._positions] for row in rows])
        self.counts.add_rows(rows, self._fetched)
        self.written += len(rows)

    async def fill(self, listing: Awaitable[T], *, since: str | None) -> tuple[T, Path]:
        """Await `listing` (which writes through `write`), then give the file its name; the
        listing's result and the file's path. A failure leaves the `.partial` file and says so."""
        try:
            result = await listing
            return result, self._writer.finish()
        except BrokenPipeError:
            raise  # `--out - | head`: the reader left; the command line ends as shells expect (141)
        except (OSError, sqlite3.Error) as exc:
            # sqlite3: the bookkeeping beside the output (ids already written) on a full disk.
            leftover = self._abandon()
            cause = exc if isinstance(exc, OSError) else OSError(str(exc))
            raise ExportFailed(str(self.path), cause, f"{leftover} holds what was written so far." if leftover else "") \
                from None
        except GraphRequestFailed as exc:
            leftover = self._abandon()
            # 410 Gone (a resync) and syncStateNotFound (an expired delta link) mean the same:
            # only a full read helps (delta-query-overview, "Synchronization reset", "Token duration").
            if since and (exc.status == 410 or exc.code == "syncStateNotFound"):
                raise ConfigError(f"the delta link in {since} has expired (Graph keeps changes for a "
                                  "limited time); delete the state file and run again for a full export") from None
            failed = exc if isinstance(exc, PageTokenExpired) else GraphRequestFailed(  # it says what to do itself
                exc.what, status=exc.status, code=exc.code, detail=exc.detail, then=AGAIN)
            if leftover:
                failed.add_note(f"the export did not finish; {leftover} holds what was written so far")
            raise failed from None
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> Path | None:
        """Close the unfinished file; the `.partial` file it leaves, if any."""
        try:
            return self._writer.abandon()
        except OSError:
            return None


__all__ = ["STDOUT", "ExportFile", "check_output", "output_file"]
