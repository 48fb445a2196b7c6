"""The `entra-batch` command: parses flags, resolves the target (choosing the built-in
emulator for `local`), runs the library in an event loop of its own with SIGTERM handled as
Ctrl-C, renders progress and summaries, and maps the outcome to an exit status. Nothing else
in the package prints, prompts, exits, reads the environment (but `batch.config`) or installs
signal handlers."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from batch.cli.output import say, write_traceback
from batch.cli.parser import build_parser
from batch.cli.run_command import RunFolderHolder
from batch.config import home_dir
from batch.errors import AuthError, ExitCode, RunError, first_failure
from batch.verbs.registry import VERBS


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; every way out is an exit status of `ExitCode`: a failure of
    entra-batch itself (any exception no layer expected) is one line on stderr and
    `ExitCode.INTERNAL`, its traceback in a log file (`report_defect`)."""
    command = "entra-batch"
    holder = RunFolderHolder()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command or command
        if args.command is None:
            parser.print_help(sys.stderr)
            return ExitCode.USAGE
        if args.command == "emulator":
            from batch.cli.emulator_command import run_emulator

            return run_emulator(args)
        if args.command == "validate" or (args.command == "create" and getattr(args, "dry_run", False)):
            collect_less_often()
        return run_command(args, holder)
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that catches what no layer expected
        return report_defect(exc, command, holder.run_dir)


# CPython collects its youngest generation every 700 net container allocations; `validate`
# allocates millions (rows, cells, plans) that die young and make no cycles worth chasing:
# 4.6 -> 3.0 us/row of validation with these thresholds (issue 16, benchmarks/validate.py,
# 200,000 rows, medians of 3 in one run). Only the commands bound by this process's CPU:
# `validate`, and `create --dry-run`, which plans most rows from its directory index
# (1,000,000 rows: 29.9 -> 24.8 s, medians of 3; peak RSS unchanged, 184 MB, and 145 -> 149 MB
# with 100,000 rows against a directory of 1,000,000 customers listed in process). A run is
# bound by Graph's quotas, an export by its pages, and there the cycles that HTTP and asyncio
# leave do pile up between full collections (export of 1,000,000 customers: peak RSS 79 ->
# 254 MB sequential, 119 -> 273 MB partitioned).
COLLECT_EVERY = (20_000, 20, 20)


def collect_less_often() -> None:
    """The process's garbage collector thresholds for `validate` and a create dry run (a CLI
    decision: the library never touches them)."""
    gc.set_threshold(*COLLECT_EVERY)


def _stdout_closed() -> int:
    """The reader of stdout went away (`entra-batch export ... | head -1`): stop quietly, as
    other tools do when SIGPIPE ends them, with the status a shell reports for those (141).
    Whatever the command still had to print is dropped; what it wrote to files is complete
    up to where it stopped."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit cannot fail again
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return ExitCode.BROKEN_PIPE


def report_defect(exc: BaseException, command: str, run_dir: Path | None) -> int:
    """An exception no layer expected: entra-batch has a defect. One line on stderr (what
    failed, where, that it is a defect, where the traceback is), the traceback in the run
    folder's error.log, or under ENTRA_BATCH_HOME/errors/ without a run folder."""
    failure = first_failure(exc) if isinstance(exc, BaseExceptionGroup) else exc
    places = [run_dir] if run_dir is not None and (run_dir / "journal.db").is_file() else []
    try:
        places.append(home_dir() / "errors")
    except Exception:  # noqa: BLE001 - no home: the temporary directory takes the log
        pass
    log, why_not = write_traceback(exc, command, places, hide=[os.environ.get(name) for name in (
        "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "IDENTITY_HEADER")])
    where = f"The traceback is in {log}; please report it" if log is not None \
        else f"The traceback could not be written ({why_not})"
    then = f". The run folder keeps what was done: `entra-batch resume {run_dir}` goes on from there" \
        if places and places[0] == run_dir else ""
    try:
        say(f"internal error (a defect of entra-batch, not of your input or settings): {command} failed with "
            f"{type(failure).__name__} at {_place(failure)}. {where}{then}.")
    except OSError:
        pass
    return ExitCode.INTERNAL


def _place(exc: BaseException) -> str:
    """Where it failed: the innermost frame in entra-batch's own code (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    ours = [f for f in frames if f"{os.sep}batch{os.sep}" in f.filename]
    frame = (ours or frames)[-1]
    name = frame.filename
    marker = name.rfind(f"{os.sep}batch{os.sep}")
    return f"{name[marker + 1:] if marker >= 0 else os.path.basename(name)}:{frame.lineno} ({frame.name})"


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM stops a command as Ctrl-C does: exit 130, resumable. While a run's event loop
    # turns, `batch.cli.signals.run` handles SIGTERM instead (cancelling the run at an await).
    raise KeyboardInterrupt


def run_command(args: argparse.Namespace, holder: RunFolderHolder | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    holder = holder or RunFolderHolder()
    try:
        return _handler(args.command)(args, holder)
    except RunError as exc:
        say(f"{exc}")
        for note in getattr(exc, "__notes__", ()):
            say(note)
        if isinstance(exc, AuthError):
            say(_after_auth_error(args.command, None if getattr(args, "dry_run", False) else holder.run_dir))
        return exc.exit_code
    except KeyboardInterrupt:
        if args.command == "export":
            say("interrupted; the export is incomplete (a .partial file holds what was written, if anything was); "
                "run it again")
            return ExitCode.INTERRUPTED
        if holder.run_dir is None:
            say("interrupted before the run started; nothing was sent")
        else:
            say(f"interrupted; finish the run with `entra-batch resume {holder.run_dir}`")
        return ExitCode.INTERRUPTED


def _after_auth_error(command: str, run_dir: Path | None) -> str:
    """What to do once the credentials are fixed: an export (which has no journal) is run
    again; a run with a folder is finished with `resume`; a dry run, or a run stopped before
    it had a folder, sent nothing."""
    if command == "export":
        return "Once that is fixed, run the export again."
    if run_dir is None:
        return "Nothing was sent; once that is fixed, run the command again."
    return f"Once that is fixed, finish the run with `entra-batch resume {run_dir}`."


def _handler(command: str) -> Callable[[argparse.Namespace, RunFolderHolder], int]:
    if command in VERBS:
        from batch.cli.run_command import start

        return start
    if command == "resume":
        from batch.cli.run_command import resume

        return resume
    if command == "export":
        from batch.cli.export_command import export

        return export
    if command == "doctor":
        from batch.cli.doctor_command import doctor

        return lambda args, holder: doctor(args)
    if command == "profiles":
        from batch.cli.profiles_command import profiles

        return lambda args, holder: profiles(args)
    if command == "runs":
        from batch.cli.runs_command import runs

        return lambda args, holder: runs(args)
    from batch.cli.file_commands import template, validate

    handlers = {"validate": validate, "template": template}
    return lambda args, holder: handlers[command](args)


__all__ = ["build_parser", "collect_less_often", "main", "report_defect"]


if __name__ == "__main__":
    sys.exit(main())
