"""Run-level failures and exit statuses: the only exceptions entra-batch raises on purpose,
and the one table of the process exit statuses they map to (PRODUCT.md, "Contract of a run").

A row that Graph refuses, throttles past the deadline or leaves unanswered is *not* an
exception: it comes back as a value (`GraphResult`, then the engine's row outcome). Only what
stops the whole run raises, and each message says what to do next. The CLI maps
`exit_code` to the process exit status (PRODUCT.md, "Contract of a run").

    RunError                    any run-level failure; `exit_code`
    ├── ConfigError             2  usage or configuration error; nothing was sent
    │   ├── InputFileError      2  the input file cannot be used as a whole (`path`)
    │   ├── RunFolderTaken      2  --out-dir holds an earlier run or other files
    │   ├── RunLocked           2  another process is working on this run folder
    │   ├── RunFolderUnsafe     2  a run folder or run file others could write or swap (a link,
    │                              someone else's, writable by others): refused, nothing sent
    │   └── NotConfirmed        2  the confirmation asked before a run was refused
    ├── AuthError               3  credentials refused (AADSTS code, the setting used and the
    │                              remedy in the message), the token endpoint's TLS certificate
    │                              not verified (at once), or the endpoint down past the retry
    │                              deadline; what to do after the fix (resume, or run again)
    │                              is the CLI's, since an export has no resume
    ├── PermissionMissing       3  the token lacks an application permission the verb needs;
    │                              `missing` names the least privileged one(s)
    ├── GraphRequestFailed      3  Graph kept failing a request the run cannot do without
    │                              (a page of a listing, or a write refused with 401/403);
    │                              `status`, `code` and `detail` say why
    ├── RowsUnresolved          3  some rows got no answer and could not be looked up either:
    │                              they stay in the journal for `resume` to reconcile
    ├── RunFolderFailed         3  writing the run folder failed mid-run (a full disk, a folder
    │                              gone read-only): rows in flight stay `sent` for `resume`
    └── ExportFailed            3  writing an export, its summary, report or state file failed

No message, attribute or `__cause__` of these exceptions ever holds a client secret, a
certificate key or an access token: foreign exceptions are translated at the boundary with
`raise ... from None` when they might carry one (httpx requests carry the bearer header).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """The process exit statuses of PRODUCT.md ("Contract of a run")."""

    OK = 0              # every row succeeded, or was skipped by request
    ROWS_FAILED = 1     # some rows invalid or failed
    USAGE = 2           # usage or configuration error; nothing sent
    ABORTED = 3         # authentication, permission, Graph or run folder failure; resumable
    INTERNAL = 4        # entra-batch itself failed (a defect): one line, the traceback in the run folder's log
    INTERRUPTED = 130   # Ctrl-C / SIGTERM; resumable
    BROKEN_PIPE = 141   # stdout closed early (`| head`): 128 + SIGPIPE, what a shell reports for other tools


class RunError(Exception):
    """A failure that ends the run. `exit_code` is the process exit status it maps to."""

    exit_code: ExitCode = ExitCode.ABORTED


class ConfigError(RunError):
    """Usage or configuration error found before anything was sent."""

    exit_code = ExitCode.USAGE


class InputFileError(ConfigError):
    """The input file cannot be used as a whole; the message says what to do about it."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class RunFolderTaken(ConfigError):
    """The run folder asked for holds an earlier run or other files."""


class RunLocked(ConfigError):
    """Another entra-batch process holds the run folder's lock."""


class RunFolderUnsafe(ConfigError):
    """A folder or file the run would write is not private to the user: a symbolic link, a
    special file, someone else's, or writable (passwords.csv: readable) by others. Refused
    before anything is sent."""


class NotConfirmed(ConfigError):
    """The confirmation asked before a run (deleting many customers) was refused: nothing was
    written or sent."""


class AuthError(RunError):
    """The identity platform refused the credentials, its TLS certificate could not be
    verified, or it could not be reached before the deadline. The message names the setting
    that was used (`batch.config.Sources`) and the remedy; a run (not an export) is resumable
    once it is fixed."""

    exit_code = ExitCode.ABORTED

    def __init__(self, message: str, *, code: str | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # the AADSTS number, e.g. "7000215", when the endpoint gave one
        self.error = error  # the OAuth error, e.g. "invalid_client"


class PermissionMissing(RunError):
    """The token lacks permission(s) the verb needs: an app's application permissions, or for
    a signed-in administrator (device code, Azure CLI) the delegated permissions consented to
    the client and the directory role(s) the person holds."""

    exit_code = ExitCode.ABORTED

    def __init__(self, missing: Sequence[str], *, client_id: str | None = None, roles: Sequence[str] = (),
                 person: str | None = None) -> None:
        self.missing = list(missing)
        self.client_id = client_id
        self.roles = list(roles)
        self.person = person
        names = ", ".join(self.missing)
        plural = "s" if len(self.missing) > 1 else ""
        if person is None:
            app = f"app {client_id}" if client_id else "the app registration"
            super().__init__(
                f"The access token of {app} lacks the application permission{plural} {names}. "
                f"Grant {names} (Microsoft Graph, application permission) to the app registration, "
                "have an administrator grant admin consent, then run again (a new token is needed "
                "for the new permission to show)."
            )
            return
        app = f"the app {client_id}" if client_id else "the app that signed you in"
        lacks, remedies = [], []
        if self.missing:
            lacks.append(f"the delegated permission{plural} {names} (consented to {app})")
            remedies.append(f"grant admin consent to {names} (Microsoft Graph, delegated permission) for {app}")
        if self.roles:
            role_names = " or ".join(self.roles)
            lacks.append(f"the directory role {role_names}")
            remedies.append(f"assign {person} the {role_names} role (Entra admin center > Roles and administrators)")
        remedy = "; ".join(remedies)
        super().__init__(
            f"The access token of the signed-in administrator {person} lacks {' and '.join(lacks)}. "
            f"{remedy[:1].upper()}{remedy[1:]}; then sign in again (a new token is needed for the change to show)."
        )


class GraphRequestFailed(RunError):
    """Graph kept failing a request that the run cannot go on without."""

    exit_code = ExitCode.ABORTED

    RESUMABLE = "The run can be resumed once Graph answers again."

    def __init__(self, what: str, *, status: int, code: str | None, detail: str | None,
                 then: str = RESUMABLE) -> None:
        self.what, self.status, self.code, self.detail = what, status, code, detail
        answer = f"HTTP {status}" if status else "no answer"
        extra = f" {code}: {detail}" if code or detail else ""
        super().__init__(f"{what} failed ({answer}{extra}). {then}")


class RowsUnresolved(RunError):
    """Rows whose requests may or may not have been applied, and that could not be looked up."""

    exit_code = ExitCode.ABORTED

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(
            f"{count} row(s) got no answer from Graph and could not be looked up either, so whether their customers "
            "exist is not known yet. Nothing was lost: run `entra-batch resume` on the run folder once Graph "
            "answers again; it looks them up before sending anything.")


class RunFolderFailed(RunError):
    """The run folder could not be written (journal, passwords.csv, results): the run stops
    where it is, with every row either done or `sent`, and `resume` finishes it."""

    exit_code = ExitCode.ABORTED

    def __init__(self, run_dir: object, cause: BaseException) -> None:
        self.run_dir = run_dir
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        name = getattr(cause, "filename", None)
        if name:
            reason = f"{Path(str(name)).name}: {reason}"
        if getattr(cause, "errno", None) in (errno.EEXIST, errno.ELOOP):
            # Not the disk: a file this run was about to create is already there (put there by
            # something else, since the folder is private to its owner).
            remedy = "Move that file out of the run folder (and find out what put it there)"
        else:
            remedy = "Free some disk space (or make the folder writable again)"
        super().__init__(f"Writing to the run folder {run_dir} failed ({reason}). The run stopped; nothing was "
                         f"lost. {remedy}, then run `entra-batch resume {run_dir}`.")


class ExportFailed(RunError):
    """Writing the export (or its summary, report or state file) failed: a full disk, a
    folder that cannot be written."""

    exit_code = ExitCode.ABORTED

    def __init__(self, what: str, cause: OSError, after: str = "") -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"cannot write {what} ({reason}).{' ' + after if after else ''}")


def first_failure(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped a task group; cancellations of the other tasks are not news."""
    for failure in failures.exceptions:
        if isinstance(failure, BaseExceptionGroup):
            return first_failure(failure)
        if not isinstance(failure, asyncio.CancelledError):
            return failure
    return failures.exceptions[0]


__all__ = ["AuthError", "ConfigError", "ExitCode", "ExportFailed", "GraphRequestFailed", "InputFileError",
           "NotConfirmed", "PermissionMissing", "RowsUnresolved", "RunError", "RunFolderFailed", "RunFolderTaken", "RunFolderUnsafe",
           "RunLocked", "first_failure"]
