"""The CLI's verbs that work on files: create, validate, template, resume. Each turns parsed
arguments into a library call, renders progress on stderr, prints a closing summary and
returns the exit status of PRODUCT.md."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from batch.config import Target, resolve_target
from batch.errors import ExitCode, InputFileError, RunError
from batch.io.csvio import open_csv
from batch.run.pipeline import Progress


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM stops a command as Ctrl-C does: exit 130, resumable. While a run's event loop
    # turns, `batch.interrupts.run` handles SIGTERM instead (cancelling the run at an await).
    raise KeyboardInterrupt


def run_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command == "template":
            return _template(args)
        if args.command == "validate":
            return _validate(args)
        if args.command in ("create", "update", "reset-password", "delete", "restore", "purge"):
            return _start(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "export":
            return _export(args)
    except RunError as exc:
        _say(f"{exc}")
        for note in getattr(exc, "__notes__", ()):
            _say(note)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.command == "export":
            _say("interrupted; the export is incomplete (a .partial file holds what was written, if anything was); "
                 "run it again")
            return ExitCode.INTERRUPTED
        folder = getattr(args, "run_dir", None) or _STARTED.get("run_dir")
        _say(f"interrupted; finish the run with `entra-batch resume {folder or '<run folder>'}`")
        return ExitCode.INTERRUPTED
    raise ValueError(f"unknown verb {args.command}")


def _say(message: str, stream: TextIO | None = None) -> None:
    print(f"entra-batch: {message}", file=stream or sys.stderr)


def _target(args: argparse.Namespace) -> Target:
    target = resolve_target(getattr(args, "target", None), getattr(args, "profile", None),
                            domain=getattr(args, "domain", None),
                            extensions_app_id=getattr(args, "extensions_app_id", None))
    if target.kind == "local":
        from batch.config import emulator_db_path

        _say(f"no tenant configured: using the built-in Graph emulator ({emulator_db_path()})")
    return target


class ProgressBar:
    """tqdm on stderr: rows, rows/s, ETA, throttled; silent when not a terminal or --quiet."""

    def __init__(self, total: int | None, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="row", disable=quiet or not sys.stderr.isatty(), file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.05)
        self.done = 0

    def __call__(self, progress: Progress) -> None:
        self.bar.update(progress.rows_done - self.done)
        self.done = progress.rows_done
        failed = progress.by_status.get("failed", 0) + progress.by_status.get("invalid", 0)
        postfix = {}
        if failed:
            postfix["invalid_or_failed"] = failed
        if progress.throttled:
            postfix["throttled"] = progress.throttled
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()


_STARTED: dict[str, Path] = {}


def _started(run_dir: Path) -> None:
    _STARTED["run_dir"] = run_dir
    _say(f"run folder: {run_dir}")


CONFIRM_ABOVE = 100


def _confirmed(args: argparse.Namespace, rows: int | None) -> bool:
    """Deleting more than 100 customers is confirmed on a terminal, or with --yes; purging
    (irreversible) always needs --yes."""
    if args.command == "purge" and not args.dry_run and not args.yes:
        _say("purge deletes customers for good and cannot be undone; pass --yes to confirm "
             "(or --dry-run to see what would go)")
        return False
    if args.command != "delete" or args.dry_run or args.yes or (rows or 0) <= CONFIRM_ABOVE:
        return True
    if not sys.stdin.isatty():
        _say(f"{args.file} holds about {rows} rows to delete; pass --yes to confirm (or --dry-run to look first)")
        return False
    answer = input(f"Delete about {rows} customers listed in {args.file}? They stay restorable for 30 days. "
                   "Type yes to go on: ")
    return answer.strip().lower() == "yes"


def _start(args: argparse.Namespace) -> int:
    from batch.run.lifecycle import RunRequest, start_run

    if not args.file.is_file():
        raise InputFileError(args.file, "no such file")
    rows = _approximate_rows(args.file)
    if not _confirmed(args, rows):
        return ExitCode.USAGE
    target = _target(args)
    request = RunRequest(
        verb=args.command, input=str(args.file), encoding=args.encoding,
        out_dir=str(args.out_dir) if args.out_dir else None, dry_run=args.dry_run, batch_size=args.batch_size,
        concurrency=args.concurrency, on_existing=getattr(args, "on_existing", "fail"), priority=args.priority,
        target=args.target, profile=args.profile, domain=args.domain, extensions_app_id=args.extensions_app_id,
        force_change_generated=not getattr(args, "no_force_change", False), yes=getattr(args, "yes", False),
    )
    bar = ProgressBar(rows, args.quiet)
    try:
        report = start_run(request, target, bar, on_start=_started)
    finally:
        bar.close()
    return _report(report)


def _approximate_rows(path: Path) -> int | None:
    """Line count minus the header, for the progress bar's ETA (quoted line breaks make it a
    slight overestimate); None when the file cannot be read (the run reports why)."""
    try:
        with open(path, "rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None
    return max(0, lines - 1)


def _resume(args: argparse.Namespace) -> int:
    from batch.run.lifecycle import load_request, resume_run

    request, journal = load_request(args.run_dir)
    journal.close()
    target = resolve_target(args.target or request.target, args.profile or request.profile,
                            domain=args.domain or request.domain,
                            extensions_app_id=args.extensions_app_id or request.extensions_app_id)
    bar = ProgressBar(_approximate_rows(Path(request.input)), args.quiet)
    try:
        report = resume_run(args.run_dir, target, bar)
    finally:
        bar.close()
    return _report(report)


def _report(report: Any) -> int:
    summary = report.summary
    counts = {k: v for k, v in summary["counts"].items() if v}
    for note in report.notes:
        _say(note)
    print(f"{summary['verb']}: {summary['rows']} rows in {summary['duration_seconds']:.1f} s"
          f" ({'dry run, nothing sent' if summary['dry_run'] else str(summary['rows_per_second']) + ' rows/s sent'})")
    print("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if summary.get("throttled_429"):
        print(f"  throttled {summary['throttled_429']} times, waited {summary['throttle_wait_seconds']} s")
    print(f"  results: {report.run_dir / 'results.csv'}")
    if (report.run_dir / "passwords.csv").exists():
        print(f"  passwords: {report.run_dir / 'passwords.csv'} (keep it secret; delete it once handed over)")
    return report.exit_status


class ExportProgressBar:
    """tqdm on stderr for an export: customers, pages, rate; silent when not a terminal or --quiet."""

    def __init__(self, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=None, unit=" customers", disable=quiet or not sys.stderr.isatty(), file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.1)
        self.customers = 0

    def __call__(self, progress: Any) -> None:
        if progress.total is not None and self.bar.total != progress.total:
            self.bar.total = progress.total
            self.bar.refresh()
        self.bar.update(progress.customers - self.customers)
        self.customers = progress.customers
        self.bar.set_postfix({"pages": progress.pages}, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _export(args: argparse.Namespace) -> int:
    from batch.export.run import ExportRequest, run_export

    request = ExportRequest(
        out=str(args.out) if args.out else None, format=args.format, out_dir=str(args.out_dir) if args.out_dir else None,
        filter=args.filter, created_after=args.created_after, created_before=args.created_before, blocked=args.blocked,
        sign_in_type=args.sign_in_type, select=args.select, deleted=args.deleted,
        since=str(args.since) if args.since else None, sequential=args.sequential, concurrency=args.concurrency,
        raw=args.raw, report=str(args.report) if args.report else None, priority=args.priority)
    target = _target(args)
    bar = ExportProgressBar(args.quiet)
    try:
        report = run_export(request, target, on_progress=bar, on_start=_started)
    finally:
        bar.close()
    summary = report.summary
    for note in report.notes:
        _say(note)
    print(f"export: {summary['customers']} customers in {summary['duration_seconds']:.1f} s "
          f"({summary['customers_per_second']} customers/s, {summary['pages']} pages, {summary['mode']})")
    print(f"  file: {report.path}")
    if report.report_path is not None:
        print(f"  report: {report.report_path}")
    if args.since:
        print(f"  state: {args.since} (run again with --since {args.since} for the next changes)")
    if summary.get("throttled_429"):
        print(f"  throttled {summary['throttled_429']} times")
    if args.summary:
        print(report.counts.text(), end="")
    return ExitCode.OK


def _validate(args: argparse.Namespace) -> int:
    from batch.verbs.base import Rejected
    from batch.verbs.registry import VerbSettings, build_verb

    verb = build_verb(args.verb, VerbSettings(domain=args.domain, extensions_app_id=args.extensions_app_id))
    source = open_csv(args.file, verb.columns, encoding=args.encoding)
    if source.match.unknown:
        _say(f"ignored columns: {', '.join(source.match.unknown)}")
    rows = invalid = 0
    for row in source.rows():
        rows += 1
        checked = verb.validate(row)
        if isinstance(checked, Rejected) and checked.problems and checked.status.value == "invalid":
            invalid += 1
            print(f"row {checked.row}: {'; '.join(checked.problems)}")
    print(f"{args.file}: {rows} rows, {invalid} invalid, {rows - invalid} valid "
          f"({source.encoding}, delimiter {source.delimiter!r}{', admin center template' if source.portal_template else ''})")
    return ExitCode.ROWS_FAILED if invalid else ExitCode.OK


def _template(args: argparse.Namespace) -> int:
    from batch.verbs.registry import VERBS

    text = VERBS[args.verb].template(portal=args.portal)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        _say(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return ExitCode.OK
