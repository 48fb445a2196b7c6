"""The `entra-batch` command: parses flags, resolves the target (choosing the built-in
emulator for `local`), runs the library in an event loop of its own with SIGTERM handled as
Ctrl-C, renders progress and summaries, and maps the outcome to an exit status. Nothing else
in the package prints, prompts, exits, reads the environment (but `batch.config`) or installs
signal handlers."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from batch.cli.output import say
from batch.cli.parser import build_parser
from batch.cli.run_command import RunFolderHolder
from batch.errors import ExitCode, RunError
from batch.verbs.registry import VERBS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    if args.command == "emulator":
        from batch.cli.emulator_command import run_emulator

        return run_emulator(args)
    return run_command(args)


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM stops a command as Ctrl-C does: exit 130, resumable. While a run's event loop
    # turns, `batch.cli.signals.run` handles SIGTERM instead (cancelling the run at an await).
    raise KeyboardInterrupt


def run_command(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    holder = RunFolderHolder()
    try:
        return _handler(args.command)(args, holder)
    except RunError as exc:
        say(f"{exc}")
        for note in getattr(exc, "__notes__", ()):
            say(note)
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
    from batch.cli.file_commands import template, validate

    handlers = {"validate": validate, "template": template}
    return lambda args, holder: handlers[command](args)


__all__ = ["build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
