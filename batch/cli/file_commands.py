"""Commands that only read files and send nothing: `validate` and `template`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batch.cli.output import say
from batch.errors import ExitCode
from batch.io.csvio import open_csv


def validate(args: argparse.Namespace) -> int:
    from batch.verbs import build_verb
    from batch.verbs.base import Rejected

    request = argparse.Namespace(verb=args.verb, on_existing="fail", force_change_generated=True)
    verb = build_verb(request, domain=args.domain, extensions_app_id=args.extensions_app_id)
    source = open_csv(args.file, verb.columns, encoding=args.encoding)
    if source.match.unknown:
        say(f"ignored columns: {', '.join(source.match.unknown)}")
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


def template(args: argparse.Namespace) -> int:
    from batch.io.columns import (
        PORTAL_CREATE_HEADER,
        PORTAL_DELETE_HEADER,
        PORTAL_RESTORE_HEADER,
        template_header,
    )

    if args.portal:
        header = {"create": PORTAL_CREATE_HEADER, "delete": PORTAL_DELETE_HEADER,
                  "restore": PORTAL_RESTORE_HEADER, "purge": PORTAL_RESTORE_HEADER,
                  "reset-password": PORTAL_DELETE_HEADER, "update": PORTAL_DELETE_HEADER}[args.verb]
        text = "version:v1.0\r\n" + header + "\r\n"
    else:
        text = ",".join(template_header(args.verb)) + "\r\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        say(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return ExitCode.OK
