"""Commands that only read files and send nothing: `validate` and `template`."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from batch.cli.local import local_tenant_names
from batch.cli.offline_attributes import offline_attributes
from batch.cli.output import say
from batch.cli.targets import target_of
from batch.config import profile_tenant_names
from batch.errors import ConfigError, ExitCode
from batch.io.columns import ColumnSet
from batch.io.quoting import shown
from batch.io.sources import describe_source, open_input_file
from batch.outcome import Status
from batch.run.attributes import claim_attribute_columns, uses_attributes
from batch.run.pipeline import CHUNK_ROWS, chunks
from batch.run.private import check_replaceable
from batch.verbs.registry import VERBS, VerbSettings, build_verb


def validate(args: argparse.Namespace) -> int:
    domain, extensions_app_id = _tenant_names(args)
    catalog = offline_attributes(args)
    verb = build_verb(args.verb, VerbSettings(domain=domain, extensions_app_id=extensions_app_id,
                                              attributes=catalog))
    source = open_input_file(args.file, verb.columns, encoding=args.encoding, sheet=args.sheet)
    if catalog is not None and verb.columns.extensions:  # bare attribute names, as a run claims them
        source.match = claim_attribute_columns(source.headers, source.match, catalog)
    if not domain:
        say("the tenant's default domain is not known offline, so userPrincipalName domains were not checked (and "
            "sign-in name keys need it); give --domain, or use a profile or environment that names it")
    if source.match.unknown:
        say(f"ignored columns: {', '.join(shown(name, 60) for name in source.match.unknown)}")
    if catalog is None and uses_attributes(source.match):
        say("custom attribute columns were checked by their form only: whether the tenant has each attribute, and "
            "each value's type, are checked when a run (or --dry-run) reads the tenant's attributes")
    where = getattr(source, "where", lambda row: "")  # an .xlsx row's number in the sheet too
    rows = invalid = 0
    for chunk in chunks(source.rows(), CHUNK_ROWS):
        rows += len(chunk)
        for checked in verb.rejections(chunk):
            if checked.problems and checked.status is Status.INVALID:
                invalid += 1
                # The problems quote cells through `shown` already; escaping the line again keeps
                # any text a rule let through unescaped off the terminal's control sequences.
                print(f"row {checked.row}{where(checked.row)}: {shown('; '.join(checked.problems), None)}")
    print(f"{args.file}: {rows} row{'s' if rows != 1 else ''}, {invalid} invalid, {rows - invalid} valid "
          f"({describe_source(source)})")
    return ExitCode.ROWS_FAILED if invalid else ExitCode.OK


def _tenant_names(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The default domain and extensions app id that `create` on the same settings would use,
    as far as they can be known without sending anything: --domain and --extensions-app-id,
    the profile's or environment's, and for the built-in emulator its tenant's (issue 12,
    finding 7). A tenant's domain that only Graph can tell stays None."""
    try:
        target = target_of(args)
    except ConfigError as exc:
        if args.profile:  # a run could not sign in with it, but its names need no secret
            try:
                domain, extensions_app_id = profile_tenant_names(args.profile)
            except ConfigError:
                pass
            else:
                say(f"the profile cannot sign in as it is ({exc}); checking with its domain and extensions app id")
                return args.domain or domain, args.extensions_app_id or extensions_app_id
        say(f"the target's settings cannot be used ({exc}); checking with --domain and --extensions-app-id only")
        return args.domain, args.extensions_app_id
    if target.kind != "local":
        return target.domain, target.extensions_app_id
    domain, extensions_app_id = local_tenant_names()
    return target.domain or domain, target.extensions_app_id or extensions_app_id


def template(args: argparse.Namespace) -> int:
    spec = VERBS[args.verb]
    text = describe_columns(spec.columns) if args.columns else spec.template(portal=args.portal)
    if args.out and str(args.out) != "-":
        _write_template(Path(args.out), text.encode("utf-8"), force=args.force)
        say(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return ExitCode.OK


def _write_template(path: Path, data: bytes, *, force: bool) -> None:
    """`template --out FILE`: a new file, or a regular file of the user's, rewritten; never
    through a link, never a folder or a device; a link or another user's file is replaced
    (not written through) only with --force (`batch.run.private.check_replaceable`)."""
    check_replaceable(path, force=force)
    try:
        if force and os.path.lexists(path):
            found = os.lstat(path)
            if stat.S_ISLNK(found.st_mode) or found.st_uid != os.geteuid():
                path.unlink()  # the link or the other user's file goes; nothing is written through it
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)  # a template: the umask's mode
        except FileExistsError:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid():
                os.close(fd)
                raise ConfigError(f"--out {path} changed while being written; run again") from None
            os.ftruncate(fd, 0)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise ConfigError(f"cannot write --out {path} ({exc.strerror or exc}); choose another --out") from None


def describe_columns(columns: ColumnSet) -> str:
    """`template VERB --columns`: one paragraph per column, for the administrator filling a file."""
    required_one = {name: group for group in columns.one_of for name in group}
    lines = [f"Columns of `{columns.verb}` (headers match ignoring case, spaces, _ and -):", ""]
    for column in columns.columns:
        need = "required" if column.required else (
            "one of " + ", ".join(required_one[column.name]) + " is required" if column.name in required_one
            else "optional")
        lines.append(f"{column.name} ({need})")
        if column.help:
            lines.append(f"    {column.help}")
        if column.aliases:
            lines.append("    also read from: " + ", ".join(column.aliases))
    if columns.extensions:
        lines += ["extension_<appId>_<name> or ext.<name> (optional)", "    a custom attribute of the tenant"]
    return "\n".join(lines) + "\n"
