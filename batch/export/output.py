"""The export file: where it goes, the `.partial` file that takes its name once complete
(`batch.export.writers`), the customers counted as they are written, and what a failure
leaves behind (the `.partial` file, named in the error)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from batch.errors import ConfigError, ExportFailed, GraphRequestFailed
from batch.export.modes import AGAIN
from batch.export.request import ExportRequest
from batch.export.summary import CustomerCounts
from batch.export.writers import ExportWriter, format_for, open_writer

T = TypeVar("T")


def output_file(request: ExportRequest, run_dir: Path) -> tuple[Path, str]:
    """The export file (`--out`, or customers.<format> in the run folder) and its format."""
    try:
        fmt = format_for(Path(request.out) if request.out else Path("customers.csv"), request.format)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    path = Path(request.out) if request.out else run_dir / f"customers.{fmt}"
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name")
    return path, fmt


class ExportFile:
    """The file being written: rows come in `fetched` column order, the file keeps `columns`
    of them, and every written customer is counted (the columns the counts need are fetched
    even when the file leaves them out)."""

    def __init__(self, path: Path, fmt: str, columns: Sequence[str], fetched: Sequence[str], *, raw: bool) -> None:
        try:
            self._writer: ExportWriter = open_writer(path, fmt, columns, raw=raw)
        except OSError as exc:
            raise ExportFailed(str(path), exc, "Choose another --out.") from None
        self.path = path
        self._fetched = tuple(fetched)
        self.counts = CustomerCounts()
        self.written = 0

    def write(self, rows: list[list[str]]) -> None:
        records = [dict(zip(self._fetched, row)) for row in rows]
        self._writer.write(records)
        for record in records:
            self.counts.add(record)
        self.written += len(records)

    async def fill(self, listing: Awaitable[T], *, since: str | None) -> tuple[T, Path]:
        """Await `listing` (which writes through `write`), then give the file its name; the
        listing's result and the file's path. A failure leaves the `.partial` file and says so."""
        try:
            result = await listing
            return result, self._writer.finish()
        except OSError as exc:
            leftover = self._abandon()
            raise ExportFailed(str(self.path), exc, f"{leftover} holds what was written so far." if leftover else "") \
                from None
        except GraphRequestFailed as exc:
            leftover = self._abandon()
            if since and exc.status == 410:
                raise ConfigError(f"the delta link in {since} has expired (Graph keeps changes for a "
                                  "limited time); delete the state file and run again for a full export") from None
            failed = GraphRequestFailed(exc.what, status=exc.status, code=exc.code, detail=exc.detail, then=AGAIN)
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


__all__ = ["ExportFile", "output_file"]
