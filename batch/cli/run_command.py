"""The verbs that run on a file (create, update, reset-password, delete, restore, purge) and
`resume`: arguments → `RunRequest` → `batch.run` in an event loop of the CLI's own, with
progress on stderr, confirmation on the terminal, and the closing summary on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batch.cli import signals
from batch.cli.output import say
from batch.cli.progress import ProgressBar
from batch.cli.targets import reach, target_of
from batch.errors import ConfigError
from batch.run.lifecycle import read_request, resume_run, start_run
from batch.run.request import RunRequest
from batch.run.summary import RunSummary
from batch.verbs.registry import VERBS

CONFIRM_ABOVE = 100
RUNS_ROOT = Path("runs")  # under the working directory, unless --out-dir says where


class RunFolderHolder:
    """Remembers the run folder once the run has one, for the message that an interruption ends with."""

    run_dir: Path | None = None

    def started(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        say(f"run folder: {run_dir}")


def start(args: argparse.Namespace, holder: RunFolderHolder) -> int:
    if VERBS[args.command].confirm == "always" and not args.dry_run and not args.yes:
        raise ConfigError(f"{args.command} deletes customers for good and cannot be undone; pass --yes to confirm "
                          "(or --dry-run to see what would go)")
    request = RunRequest(
        verb=args.command, input=str(args.file), encoding=args.encoding,
        out_dir=str(args.out_dir) if args.out_dir else None, dry_run=args.dry_run, batch_size=args.batch_size,
        concurrency=args.concurrency, on_existing=getattr(args, "on_existing", "fail"), priority=args.priority,
        target=args.target, profile=args.profile, domain=args.domain, extensions_app_id=args.extensions_app_id,
        force_change_generated=not getattr(args, "no_force_change", False),
    )
    bar = ProgressBar(args.quiet)
    try:
        with reach(target_of(args)) as where:
            summary = signals.run(start_run(request, where.target, runs_root=RUNS_ROOT, transport=where.transport,
                                            on_progress=bar, on_start=holder.started,
                                            confirm=lambda rows: confirmed(args, rows), new_run=args.new_run))
    finally:
        bar.close()
    return report(summary)


def confirmed(args: argparse.Namespace, rows: int) -> bool:
    """Deleting more than 100 customers (a verb whose confirmation is `above_limit`) is
    confirmed on a terminal, or with --yes."""
    if VERBS[args.command].confirm != "above_limit" or args.dry_run or args.yes or rows <= CONFIRM_ABOVE:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(f"{args.file} holds {rows} rows to delete; pass --yes to confirm (or --dry-run to look "
                          "first)")
    answer = input(f"Delete {rows} customers listed in {args.file}? They stay restorable for 30 days. "
                   "Type yes to go on: ")
    return answer.strip().lower() == "yes"


def resume(args: argparse.Namespace, holder: RunFolderHolder) -> int:
    holder.run_dir = args.run_dir
    request = read_request(args.run_dir)
    target = target_of(args, target=request.target, profile=request.profile, domain=request.domain,
                       extensions_app_id=request.extensions_app_id)
    bar = ProgressBar(args.quiet)
    try:
        with reach(target) as where:
            summary = signals.run(resume_run(args.run_dir, where.target, transport=where.transport, on_progress=bar))
    finally:
        bar.close()
    return report(summary)


def report(summary: RunSummary) -> int:
    counts = {k: v for k, v in summary.counts.items() if v}
    for note in summary.notes:
        say(note)
    sent = "dry run: read only, nothing changed" if summary.dry_run else f"{summary.rows_per_second} rows/s sent"
    print(f"{summary.verb}: {summary.rows} rows in {summary.duration_seconds:.1f} s ({sent})")
    print("  " + ", ".join(planned(summary) if summary.dry_run else [f"{k} {v}" for k, v in counts.items()]))
    if summary.throttled_429:
        print(f"  throttled {summary.throttled_429} times, waited {summary.throttle_wait_seconds} s")
    print(f"  results: {summary.run_dir / 'results.csv'}")
    if summary.failed and (summary.run_dir / "retry.csv").is_file():
        print(f"  to fix and run again: {summary.run_dir / 'retry.csv'} (the {summary.failed} invalid or failed rows)")
    if summary.passwords_file is not None:
        print(f"  passwords: {summary.passwords_file} (keep it secret; delete it once handed over)")
    return summary.exit_code


def planned(summary: RunSummary) -> list[str]:
    """A dry run's counts in the future tense ("would create 180, would fail 20 (exists: 20)"),
    then the rows it did not plan (invalid, or skipped by validation such as blank rows)."""
    said = []
    for action, number in summary.plan.items():
        causes = ", ".join(f"{cause}: {n}" for cause, n in summary.plan_failures.items())
        said.append(f"would {action} {number}" + (f" ({causes})" if action == "fail" and causes else ""))
    rest = dict(summary.counts)
    rest["skipped"] = rest.get("skipped", 0) - sum(summary.plan.values())
    return said + [f"{k} {v}" for k, v in rest.items() if v]


__all__ = ["RunFolderHolder", "report", "resume", "start"]
