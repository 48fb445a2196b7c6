"""What a finished run reports: `RunSummary`, typed and frozen, which is also summary.json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from batch.config import Target
from batch.errors import ExitCode
from batch.outcome import Status
from batch.run.journal import Journal
from batch.verbs.base import ACTIONS, DRY_RUN_PREFIX, planned
from batch.version import __version__

if TYPE_CHECKING:
    from batch.graph import ClientStats
    from batch.run.connection import TenantNames
    from batch.run.pipeline import Progress
    from batch.run.request import RunRequest


@dataclass(frozen=True)
class RunSummary:
    """Counts per status, timing and Graph traffic of one run (resumes included)."""

    verb: str
    input: str
    run_dir: Path
    target: str
    dry_run: bool
    started: str
    finished: str
    duration_seconds: float
    rows: int
    counts: Mapping[str, int]
    rows_per_second: float | None
    requests: int
    graph_calls: int
    throttled_429: int
    retries: int
    throttle_wait_seconds: float
    apps: int
    resumed: bool
    version: str
    notes: tuple[str, ...] = field(default=(), compare=False)
    # A dry run's plan: rows per action (plan.csv's), and the `fail`s per cause ("exists").
    plan: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    plan_failures: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # Wall-clock seconds this process held sending back (Retry-After, pacing): the closing
    # line compares it with this process's duration (throttle_wait_seconds adds up every part).
    held_seconds: float = field(default=0.0, compare=False)
    tenant: Mapping[str, Any] | None = None  # who was written to (connection.TenantNames), None without Graph

    @property
    def failed(self) -> int:
        """Rows that ended invalid or failed (in a dry run: or would fail)."""
        return (self.counts.get(Status.INVALID.value, 0) + self.counts.get(Status.FAILED.value, 0)
                + self.plan.get("fail", 0))

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.ROWS_FAILED if self.failed else ExitCode.OK

    @property
    def passwords_file(self) -> Path | None:
        path = self.run_dir / "passwords.csv"
        return path if path.exists() else None

    def as_json(self) -> dict[str, Any]:
        """summary.json (PRODUCT.md, "Contract of a run")."""
        return {
            "verb": self.verb, "input": self.input, "run_dir": str(self.run_dir), "target": self.target,
            "dry_run": self.dry_run, "started": self.started, "finished": self.finished,
            "duration_seconds": self.duration_seconds, "rows": self.rows, "counts": dict(self.counts),
            "rows_per_second": self.rows_per_second, "requests": self.requests, "graph_calls": self.graph_calls,
            "throttled_429": self.throttled_429, "retries": self.retries,
            "throttle_wait_seconds": self.throttle_wait_seconds, "apps": self.apps, "resumed": self.resumed,
            "version": self.version, "tenant": dict(self.tenant) if self.tenant is not None else None,
            **({"plan": dict(self.plan), "plan_failures": dict(self.plan_failures)} if self.dry_run else {}),
        }


_TOTALS = (("requests", "requests"), ("graph_calls", "calls"), ("throttled_429", "throttled"),
           ("retries", "retries"))


def summarise(request: RunRequest, target: Target, journal: Journal, run_dir: Path, stats: ClientStats | None,
              progress: Progress, started: float, finished: float, resuming: bool,
              notes: tuple[str, ...], *, tenant: TenantNames | None = None) -> RunSummary:
    """The summary of the run in `journal`, adding this process's Graph traffic to the totals
    of every process that worked on the run before it."""
    counts = {s.value: 0 for s in Status}
    counts.update(journal.counts())
    totals: dict[str, float] = dict(journal.meta().get("client_totals") or {})
    if stats is not None:
        for name, attribute in _TOTALS:
            totals[name] = round(totals.get(name, 0) + getattr(stats, attribute), 3)
        # Wall-clock time during which sending was held (the union of the workers' waits, not
        # their sum: four workers waiting out one Retry-After held the run once).
        totals["throttle_wait_seconds"] = round(totals.get("throttle_wait_seconds", 0) + stats.held_wait, 3)
        journal.set_meta(client_totals=totals)
    plan, plan_failures = _plan_counts(journal) if request.dry_run else ({}, {})
    return RunSummary(
        verb=request.verb, input=request.input, run_dir=run_dir, target=target.label, dry_run=request.dry_run,
        started=_iso(journal.meta().get("started", started)), finished=_iso(finished),
        duration_seconds=round(finished - started, 3), rows=sum(counts.values()),
        counts=MappingProxyType(counts),
        rows_per_second=round(progress.sent / (finished - started), 2) if finished > started else None,
        requests=int(totals.get("requests", 0)), graph_calls=int(totals.get("graph_calls", 0)),
        throttled_429=int(totals.get("throttled_429", 0)), retries=int(totals.get("retries", 0)),
        throttle_wait_seconds=float(totals.get("throttle_wait_seconds", 0.0)),
        apps=1 + len(target.extra_apps) if not request.dry_run else 0, resumed=resuming, version=__version__,
        notes=notes, plan=MappingProxyType(plan), plan_failures=MappingProxyType(plan_failures),
        tenant=MappingProxyType(tenant.as_json()) if tenant is not None else None,
        held_seconds=round(stats.held_wait, 1) if stats is not None else 0.0)


def _plan_counts(journal: Journal) -> tuple[dict[str, int], dict[str, int]]:
    """A dry run's rows per action, and its `fail`s per cause, from the journal (so that a
    resumed dry run counts the rows of every part of it), in plan.csv's order of actions.
    SQLite counts the actions; only the `fail` messages are read back, for their causes."""
    counted = journal.count_first_words(Status.SKIPPED, DRY_RUN_PREFIX)
    actions = {a: counted[a] for a in ACTIONS if counted.get(a)}
    causes: dict[str, int] = {}
    if actions.get("fail"):
        for message in journal.messages_starting(Status.SKIPPED, DRY_RUN_PREFIX + "fail"):
            found = planned(message)
            if found is not None and found[0] == "fail":
                causes[found[1]] = causes.get(found[1], 0) + 1
    return actions, dict(sorted(causes.items(), key=lambda item: (-item[1], item[0])))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["RunSummary", "summarise"]
