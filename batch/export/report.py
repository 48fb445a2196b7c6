"""What a finished export reports: `ExportReport`, typed and frozen, which is also the run
folder's summary.json; and the `--report` page drawn from its counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch.errors import ExportFailed
from batch.export.summary import CustomerCounts, render_report
from batch.run.files import write_summary
from batch.run.private import write_replacing, writing


@dataclass(frozen=True)
class ExportReport:
    """One export: where it went, how it listed, timing, Graph traffic and the counts."""

    run_dir: Path
    path: Path  # the export file
    format: str
    target: str
    mode: str  # "sequential", "partitioned (N partitions, C at a time)" or "delta"
    filter: str | None
    sign_in_type: str | None
    deleted: bool
    since: str | None  # the state file of an incremental export
    columns: tuple[str, ...]
    started: str
    finished: str
    duration_seconds: float
    customers: int
    pages: int
    customers_per_second: float | None
    requests: int
    graph_calls: int
    throttled_429: int
    retries: int
    version: str
    counts: CustomerCounts = field(compare=False)  # by status, sign-in type, location, month
    report_path: Path | None = None  # the `--report` page
    notes: tuple[str, ...] = field(default=(), compare=False)

    def as_json(self) -> dict[str, Any]:
        """summary.json."""
        return {
            "verb": "export", "output": str(self.path), "format": self.format, "run_dir": str(self.run_dir),
            "target": self.target, "mode": self.mode, "filter": self.filter, "sign_in_type": self.sign_in_type,
            "deleted": self.deleted, "since": self.since, "columns": list(self.columns), "started": self.started,
            "finished": self.finished, "duration_seconds": self.duration_seconds, "customers": self.customers,
            "pages": self.pages, "customers_per_second": self.customers_per_second, "requests": self.requests,
            "graph_calls": self.graph_calls, "throttled_429": self.throttled_429, "retries": self.retries,
            "counts": self.counts.to_dict(), "version": self.version,
        }


def save_report(report: ExportReport) -> None:
    """The `--report` page (when asked for), then summary.json in the run folder."""
    try:
        if report.report_path is not None:
            html = render_report(report.counts, title="Customer accounts", generated_at=report.finished,
                                 target=report.target, source=str(report.path)).encode("utf-8")
            report.report_path.parent.mkdir(parents=True, exist_ok=True)
            # Private as the export itself (it counts its customers), through a fresh file
            # renamed into place: a link planted at the path is replaced, never written through.
            write_replacing(report.report_path, writing(html))
        write_summary(report.run_dir, report.as_json())
    except OSError as exc:
        page = report.report_path
        where = str(page) if page and not page.exists() else f"the summary in {report.run_dir}"
        raise ExportFailed(where, exc, f"The export itself is complete in {report.path}.") from None


def iso_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["ExportReport", "iso_time", "save_report"]
