"""How an export fails beyond the run-level errors of `batch.errors`: a file it cannot write."""

from __future__ import annotations

from batch.errors import ExitCode, RunError

AGAIN = "Run the export again once Graph answers."


class ExportFailed(RunError):
    """Writing the export (or its summary, report or state file) failed: a full disk, a
    folder that cannot be written."""

    exit_code = ExitCode.ABORTED

    def __init__(self, what: str, cause: OSError, after: str = "") -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {what} ({reason}).{' ' + after if after else ''}")


__all__ = ["AGAIN", "ExportFailed"]
