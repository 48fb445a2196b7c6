"""`entra-batch export`: arguments → `ExportRequest` → `batch.export` in the CLI's event loop,
progress on stderr, the closing lines (and `--summary` tables) on stdout."""

from __future__ import annotations

import argparse
import json
import sys

from batch.cli import signals
from batch.cli.output import say
from batch.cli.progress import ExportProgressBar
from batch.cli.run_command import RUNS_ROOT, RunFolderHolder, tell_exchange
from batch.cli.targets import reach, target_of
from batch.errors import ConfigError, ExitCode
from batch.export.output import STDOUT
from batch.export.run import ExportRequest, run_export


def export(args: argparse.Namespace, holder: RunFolderHolder) -> int:
    request = ExportRequest(
        out=str(args.out) if args.out else None, format=args.format, out_dir=str(args.out_dir) if args.out_dir else None,
        filter=args.filter, created_after=args.created_after, created_before=args.created_before, blocked=args.blocked,
        sign_in_type=args.sign_in_type, select=args.select, deleted=args.deleted,
        since=str(args.since) if args.since else None, sequential=args.sequential, concurrency=args.concurrency,
        raw=args.raw, report=str(args.report) if args.report else None, priority=args.priority, force=args.force,
        jit_migration=args.jit_migration)
    to_stdout = request.out == STDOUT
    if to_stdout and args.json:
        raise ConfigError("--json and --out - both want standard output: write the export to a file with --out, "
                          "or leave --json out (summary.json in the run folder holds the same document)")
    bar = ExportProgressBar(args.quiet or args.verbose)
    try:
        with reach(target_of(args)) as where:
            report = signals.run(run_export(request, where.target, runs_root=RUNS_ROOT, transport=where.transport,
                                            on_progress=bar, on_start=holder.started,
                                            stdout=sys.stdout.buffer if to_stdout else None,
                                            observer=tell_exchange if args.verbose else None))
    finally:
        bar.close()
    for note in report.notes:
        say(note)
    if args.json:
        # For scripts: summary.json's document (run_dir included) and nothing else on stdout.
        print(json.dumps(report.as_json(), ensure_ascii=False))
        if args.summary:
            print(report.counts.text(), end="", file=sys.stderr)
        return ExitCode.OK
    # With --out -, standard output holds the export: the closing lines go to stderr.
    show = sys.stderr if to_stdout else sys.stdout
    print(f"export: {report.customers} customers in {report.duration_seconds:.1f} s "
          f"({report.customers_per_second} customers/s, {report.pages} pages, {report.mode})", file=show)
    print(f"  file: {'standard output' if to_stdout else report.path}", file=show)
    if report.report_path is not None:
        print(f"  report: {report.report_path}", file=show)
    if args.since:
        print(f"  state: {args.since} (run again with --since {args.since} for the next changes)", file=show)
    if report.throttled_429:
        print(f"  throttled {report.throttled_429} times", file=show)
    if args.summary:
        print(report.counts.text(), end="", file=show)
    return ExitCode.OK
