"""The verbs that run on a file (create, update, reset-password, delete, restore, purge) and
`resume`: arguments → `RunRequest` → `batch.run` in an event loop of the CLI's own, with
progress on stderr, confirmation on the terminal, and the closing summary on stdout."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from batch.cli import signals
from batch.cli.output import say
from batch.cli.progress import ProgressBar
from batch.cli.targets import reach, target_of
from batch.config import Target, is_loopback_host
from batch.errors import ConfigError
from batch.graph import Exchange
from batch.run.connection import TenantNames
from batch.run.lifecycle import read_request, resume_run, start_run
from batch.run.request import RunRequest
from batch.run.summary import RunSummary
from batch.run.watch import RunWatch
from batch.verbs.registry import VERBS

CONFIRM_ABOVE = 100
# Verbs that ask above CONFIRM_ABOVE rows against any target but the built-in emulator (a
# tenant, or an emulator served as one), as delete asks everywhere: a reset invalidates
# passwords that customers are using.
ASK_ON_A_TENANT = frozenset({"reset-password"})
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
        force_change_generated=not getattr(args, "no_force_change", False), auth=getattr(args, "auth", None),
        jit_migration=getattr(args, "jit_migration", None),
        legacy_id_attribute=getattr(args, "legacy_id_attribute", None),
        sheet=args.sheet,
    )
    target = target_of(args)
    if target.kind != "local":
        # The method actually used (flag, profile, ENTRA_BATCH_AUTH or implied): `resume` signs in the same way
        # from any shell, whatever its environment implies, unless told otherwise with --auth.
        request = replace(request, auth=target.auth)
    bar = ProgressBar(args.quiet or args.verbose)
    try:
        with reach(target) as where:
            summary = signals.run(start_run(request, where.target, runs_root=RUNS_ROOT, transport=where.transport,
                                            on_progress=bar, on_start=holder.started,
                                            # --yes answers before the run starts: nothing to ask, now or on resume.
                                            confirm=None if getattr(args, "yes", False) else
                                            lambda rows: confirmed(args, rows, where.target, bar),
                                            watch=watching(args, dry_run=args.dry_run),
                                            new_run=args.new_run))
    finally:
        bar.close()
    return report(summary, as_json=args.json)


def watching(args: argparse.Namespace, *, dry_run: bool = False) -> RunWatch:
    """The run's watchers: the tenant named on stderr before anything is sent (the built-in
    emulator is announced when it opens), and with --verbose every request (stderr and run.log)."""
    def named(names: TenantNames, verb: str, rows: int) -> None:
        if names.local:
            return  # already announced, with its directory ("no tenant configured: using the built-in …")
        if dry_run:
            say(f"dry run of {verb} on {row_count(rows)}, reading {names.words()}")
        else:
            say(f"{verb} {row_count(rows)} in {names.words()}")
    return RunWatch(on_exchange=tell_exchange if args.verbose else None, on_target=named)


def tell_exchange(exchange: Exchange) -> None:
    say(exchange.line())


def confirmed(args: argparse.Namespace, rows: int, target: Target | None = None,
              bar: ProgressBar | None = None) -> bool:
    """Deleting more than 100 customers (a verb whose confirmation is `above_limit`), or
    resetting more than 100 passwords anywhere but in the built-in emulator
    (ASK_ON_A_TENANT), is confirmed on a terminal, or with --yes. Asked once the run has
    named the tenant it is connected to (the line just above the question); the question
    names the tenant too. The question goes to stderr, so that stdout stays the summary's
    (`--json`)."""
    on_a_tenant = target is not None and target.kind != "local"
    asks = VERBS[args.command].confirm == "above_limit" or (args.command in ASK_ON_A_TENANT and on_a_tenant)
    if not asks or args.dry_run or getattr(args, "yes", False) or rows <= CONFIRM_ABOVE:
        return True
    where = _where(args, target) if on_a_tenant and target is not None else ""
    what = "rows to delete" if args.command == "delete" else "passwords to reset"
    if not sys.stdin.isatty():
        look = "" if getattr(args, "resuming", False) else " (or --dry-run to look first)"
        raise ConfigError(f"{args.file} holds {rows} {what}{where}; pass --yes to confirm{look}")
    if args.command == "delete":
        question = f"Delete {rows} customers listed in {args.file}{where}? They stay restorable for 30 days. "
    else:
        question = (f"Reset the passwords of {rows} customers listed in {args.file}{where}? Their current "
                    "passwords stop working. ")
    if bar is not None:
        bar.bar.clear()
    sys.stderr.write(question + "Type yes to go on: ")
    sys.stderr.flush()
    return _answer().strip().lower() == "yes"


def _answer() -> str:
    """A line typed on the terminal; "" for the end of input (Ctrl-D) or Ctrl-C, which say no.
    The run's event loop turns Ctrl-C into a cancellation that waits for the loop, which
    waits for this answer: while it is asked, Ctrl-C interrupts the question itself."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: no handler to change
        previous = None
    try:
        return input()
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")
        return ""
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _where(args: argparse.Namespace, target: Target) -> str:
    """Where a question says the rows go: the tenant, or an emulator served on this machine."""
    if is_loopback_host(urlsplit(target.graph_url).hostname):
        return f" in the emulator at {target.graph_url}"
    profile = f", profile {args.profile}" if args.profile else ""
    return f" in tenant {target.tenant_id} ({target.graph_url}{profile})"


def resume(args: argparse.Namespace, holder: RunFolderHolder) -> int:
    holder.run_dir = args.run_dir
    request = read_request(args.run_dir)
    target = target_of(args, target=request.target, profile=request.profile, domain=request.domain,
                       extensions_app_id=request.extensions_app_id, auth=request.auth)
    bar = ProgressBar(args.quiet or args.verbose)
    # A run stopped at its confirmation question is asked it again, as its own command asks.
    asked = argparse.Namespace(command=request.verb, dry_run=request.dry_run, yes=args.yes, file=request.input,
                               profile=request.profile, resuming=True)
    try:
        with reach(target) as where:
            summary = signals.run(resume_run(args.run_dir, where.target, transport=where.transport, on_progress=bar,
                                             watch=watching(args, dry_run=request.dry_run),
                                             confirm=lambda rows: confirmed(asked, rows, where.target, bar)))
    finally:
        bar.close()
    return report(summary, as_json=args.json)


def report(summary: RunSummary, *, as_json: bool = False) -> int:
    for note in summary.notes:
        say(note)
    if as_json:
        # For scripts: summary.json's document (run_dir included) and nothing else on stdout.
        print(json.dumps(summary.as_json(), ensure_ascii=False))
        return summary.exit_code
    counts = {k: v for k, v in summary.counts.items() if v}
    sent = "dry run: read only, nothing changed" if summary.dry_run else f"{summary.rows_per_second} rows/s sent"
    print(f"{summary.verb}: {row_count(summary.rows)} in {summary.duration_seconds:.1f} s ({sent})")
    print("  " + ", ".join(planned(summary) if summary.dry_run else [f"{k} {v}" for k, v in counts.items()]))
    held = held_back(summary.throttled_429, summary.held_seconds, summary.duration_seconds)
    if held:
        print(f"  {held}")
    print(f"  results: {summary.run_dir / 'results.csv'}")
    to_retry = summary.counts.get("invalid", 0) + summary.counts.get("failed", 0)
    if to_retry and (summary.run_dir / "retry.csv").is_file():
        print(f"  to fix and run again: {summary.run_dir / 'retry.csv'} (the {row_count(to_retry)} that ended invalid or "
              "failed)")
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


def row_count(number: int) -> str:
    return f"{number} row" if number == 1 else f"{number} rows"


def held_back(throttled: int, held_seconds: float, duration_seconds: float) -> str:
    """The closing line about throttling: how often Graph answered 429, and for how much of
    this process's wall-clock time sending was held (not the workers' waits added up). A run
    that Graph never throttled says so only when pacing under the quotas took a good part of
    a run long enough to notice."""
    if throttled:
        said = f"throttled {throttled} time{'s' if throttled != 1 else ''} (429)"
        if held_seconds >= 0.05:
            said += (f"; sending was held back for {held_seconds:.1f} s of the run's {duration_seconds:.1f} s "
                     "(Retry-After and pacing)")
        return said
    if duration_seconds >= 5 and held_seconds >= 0.25 * duration_seconds:
        return f"paced under Graph's quotas: sending waited {held_seconds:.1f} s of the run's {duration_seconds:.1f} s"
    return ""


__all__ = ["ASK_ON_A_TENANT", "RunFolderHolder", "held_back", "planned", "report", "resume", "row_count", "start"]
