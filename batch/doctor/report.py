"""What `entra-batch doctor` found, as values: each check a section, a name, a status (ok,
warn, fail), the finding in words, the remedy when something is wrong, and data for scripts.

A failed check says what it would stop: `access` (signing in, a permission, a directory
role: a run would stop with exit 3) or `setup` (the tenant itself: its extensions app, the
domain of sign-in names). The report's exit status is 3 when any access check failed, else 1
when any check failed, else 0 (warnings do not change it): PRODUCT.md's terms, in
notes/s20/doctor-docs.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batch.errors import ExitCode

OK, WARN, FAIL = "ok", "warn", "fail"
ACCESS, SETUP = "access", "setup"
SECTIONS = ("target", "identity", "extensions app", "service", "large runs")


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    status: str
    finding: str
    remedy: str | None = None
    stops: str | None = None  # for a failure: ACCESS or SETUP
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in (OK, WARN, FAIL) or self.section not in SECTIONS:
            raise ValueError(f"a check has a status of {OK, WARN, FAIL} and a section of {SECTIONS}")
        if self.status == FAIL and self.stops not in (ACCESS, SETUP):
            raise ValueError("a failed check says what it stops: access or setup")

    def as_json(self) -> dict[str, Any]:
        return {"section": self.section, "name": self.name, "status": self.status, "finding": self.finding,
                "remedy": self.remedy, "stops": self.stops, "data": dict(self.data)}


def ok(section: str, name: str, finding: str, **data: Any) -> Check:
    return Check(section, name, OK, finding, data=data)


def warn(section: str, name: str, finding: str, remedy: str | None = None, **data: Any) -> Check:
    return Check(section, name, WARN, finding, remedy, data=data)


def fail(section: str, name: str, finding: str, remedy: str, *, stops: str = SETUP, **data: Any) -> Check:
    return Check(section, name, FAIL, finding, remedy, stops, data=data)


@dataclass(frozen=True)
class DoctorReport:
    """Every check, in the order of `SECTIONS`, and who was asked (the target's label)."""

    target: str
    checks: tuple[Check, ...]
    seconds: float = 0.0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def exit_code(self) -> ExitCode:
        if any(c.stops == ACCESS for c in self.failures):
            return ExitCode.ABORTED  # as a run stops for a refused sign-in or a missing permission
        if self.failures:
            return ExitCode.ROWS_FAILED  # 1: something a run depends on is wrong
        return ExitCode.OK

    def section(self, name: str) -> list[Check]:
        return [c for c in self.checks if c.section == name]

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "ok": not self.failures, "exit_code": int(self.exit_code),
                "failures": len(self.failures), "warnings": len(self.warnings), "seconds": round(self.seconds, 3),
                "checks": [c.as_json() for c in self.checks]}


__all__ = ["ACCESS", "FAIL", "OK", "SECTIONS", "SETUP", "WARN", "Check", "DoctorReport", "fail", "ok", "warn"]
