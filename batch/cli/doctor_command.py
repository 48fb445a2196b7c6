"""`entra-batch doctor`: the target as a verb would reach it (profile, --target or the
environment) → `batch.doctor.run_doctor` → the checklist on stdout (✓ ok, ! warning, ✗ and
the remedy for what would stop a run), or `--json` as one document; the exit status says
whether anything would stop a run (batch/doctor/report.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from batch.cli import signals
from batch.cli.run_command import tell_exchange
from batch.cli.targets import reach, target_of
from batch.doctor import FAIL, OK, SECTIONS, DoctorReport, run_doctor

MARKS = {OK: "✓", "warn": "!", FAIL: "✗"}
PLAIN_MARKS = {OK: "ok", "warn": "!", FAIL: "FAIL"}  # for a terminal that cannot show ✓ and ✗


def doctor(args: argparse.Namespace) -> int:
    with reach(target_of(args)) as where:
        report = signals.run(run_doctor(where.target, transport=where.transport,
                                        observer=tell_exchange if args.verbose else None))
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        sys.stdout.write(render(report, _can_show(sys.stdout)))
    return int(report.exit_code)


def _can_show(stream: TextIO) -> bool:
    try:
        "✓✗→".encode(stream.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def render(report: DoctorReport, fancy: bool = True) -> str:
    """The checklist: a heading per section, one line per check, the remedy under each one
    that is not ok."""
    marks, arrow = (MARKS, "→") if fancy else (PLAIN_MARKS, "->")
    lines = [f"entra-batch doctor: {report.target} ({report.seconds:.1f} s)"]
    for section in SECTIONS:
        checks = report.section(section)
        if not checks:
            continue
        lines.append(section)
        for check in checks:
            lines.append(f"  {marks[check.status]} {check.name}: {check.finding}")
            if check.remedy and check.status != OK:
                lines.append(f"      {arrow} {check.remedy}")
    lines.append(_verdict(report))
    return "\n".join(lines) + "\n"


def _verdict(report: DoctorReport) -> str:
    failures, warnings = len(report.failures), len(report.warnings)
    warned = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    if failures:
        return f"{failures} problem{'s' if failures != 1 else ''} would stop a run{warned} (exit {int(report.exit_code)})"
    return f"nothing would stop a run{warned}"
