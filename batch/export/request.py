"""What an export is asked to do: `ExportRequest`, the checks that need no Graph, and the
OData `$filter` its friendly options (`--created-after`, `--blocked`…) and `--filter` make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from batch.errors import ConfigError
from batch.export.writers import FORMATS

SIGN_IN_TYPES = ("emailAddress", "userName", "federated")


@dataclass(frozen=True)
class ExportRequest:
    out: str | None = None
    format: str | None = None
    out_dir: str | None = None
    filter: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    blocked: bool | None = None  # True: only blocked, False: only enabled, None: both
    sign_in_type: str | None = None
    select: str | None = None
    deleted: bool = False
    since: str | None = None  # the state file of an incremental export
    sequential: bool = False
    concurrency: int = 16
    raw: bool = False
    report: str | None = None
    priority: str = "normal"
    force: bool = False  # --force: --out may replace a link or another user's file (never a folder or device)
    jit_migration: str | None = None  # --jit-migration ATTRIBUTE: count the JIT password migration's progress


def check_request(request: ExportRequest) -> None:
    """What can be refused before anything is made or asked of Graph."""
    if request.format and request.format not in FORMATS:
        raise ConfigError(f"--format {request.format}: one of {', '.join(FORMATS)}")
    if request.sign_in_type and request.sign_in_type not in SIGN_IN_TYPES:
        raise ConfigError(f"--sign-in-type {request.sign_in_type}: one of {', '.join(SIGN_IN_TYPES)}")
    if request.since and (request.filter or request.created_after or request.created_before
                          or request.blocked is not None or request.deleted):
        raise ConfigError("--since lists what changed in the whole directory: it cannot be combined with "
                          "--filter, --created-after/--created-before, --blocked/--enabled or --deleted "
                          "(Graph's delta query takes no filter)")
    if request.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")


def odata_filter(request: ExportRequest) -> tuple[str | None, bool]:
    """The `$filter` of the friendly options and `--filter` together, and whether it needs
    Graph's advanced query mode. None of the friendly options does: createdDateTime ge/le and
    accountEnabled eq are served by default (includes/filter-directory-objects.md), so they
    also work in Azure AD B2C, which has no advanced queries. A --filter that needs the mode
    is sent again in it by `modes.probe`."""
    clauses: list[str] = []
    if request.created_after:
        clauses.append(f"createdDateTime ge {_moment(request.created_after, '--created-after')}")
    if request.created_before:
        clauses.append(f"createdDateTime le {_moment(request.created_before, '--created-before', end=True)}")
    if request.blocked is not None:
        clauses.append(f"accountEnabled eq {'false' if request.blocked else 'true'}")
    if request.filter:
        clauses.append(f"({request.filter})" if clauses else request.filter)
    return (" and ".join(clauses) or None), False


def _moment(text: str, option: str, *, end: bool = False) -> str:
    """`2026-01-31` or an ISO 8601 time → Graph's `2026-01-31T00:00:00Z` (a date given as
    --created-before includes its whole day)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            moment = day.replace(hour=23, minute=59, second=59) if end else day
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give a date (2026-01-31) or a time (2026-01-31T08:00:00Z)") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["SIGN_IN_TYPES", "ExportRequest", "check_request", "odata_filter"]
