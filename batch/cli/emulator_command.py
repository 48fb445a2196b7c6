"""`entra-batch emulator`: serve the built-in Graph emulator over HTTP(S) on loopback."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch import config
from batch.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from batch.emulator.store import Store


def run_emulator(args: argparse.Namespace) -> int:
    actions = {"reset": reset_emulator, "approve": approve_device_code, "decline": approve_device_code,
               "add-admin": add_admin, "add-attribute": add_attribute,
               "migrate-passwords": migrate_passwords}
    if args.action in actions:
        return actions[args.action](args)
    if args.user_code is not None or getattr(args, "upns", None):
        print(f"entra-batch emulator: unexpected {args.user_code or args.upns[0]!r}; a user code goes after approve "
              "or decline", file=sys.stderr)
        return ExitCode.USAGE
    federation = _federation(args)
    if isinstance(federation, int):
        return federation
    certificate = _app_certificate(args)
    if isinstance(certificate, int):
        return certificate
    from batch.emulator.database import DatabaseUnavailable
    from batch.emulator.server import BadSetting, NotLoopback, ServeOptions, serve
    from batch.emulator.settings import EmulatorSettings, Faults, Latency, Quotas

    quotas = Quotas(enabled=not args.no_throttle)
    changes = {}
    if args.write_quota:
        changes["app_tenant_writes"] = args.write_quota
    if args.tenant_write_quota:
        changes["tenant_writes"] = args.tenant_write_quota
    if args.app_write_quota:
        changes["app_writes"] = args.app_write_quota
    quotas = replace(quotas, **changes)
    if args.ru_quota:
        quotas = quotas.with_resource_units(args.ru_quota)
    db = None if args.memory else (args.db or config.emulator_db_path())
    try:
        faults = Faults(rate=args.fault_rate, kinds=tuple(k.strip() for k in args.faults.split(",") if k.strip()),
                        storm_seconds=args.storm_seconds, slow_ms=args.slow_ms, token_rate=args.token_fault_rate,
                        seed=args.seed)
        settings = EmulatorSettings(quotas=quotas, latency=Latency.uniform(args.latency_ms, args.latency_sigma),
                                    faults=faults, token_lifetime_seconds=args.token_lifetime, seed=args.seed,
                                    password_reset_needs_role=args.password_reset_needs_role,
                                    keep_password_digests=args.keep_password_digests,
                                    replication_lag_ms=args.replication_lag_ms,
                                    approve_device_codes_as=args.approve_device_codes_as,
                                    approve_db=_named_db(db))
        options = ServeOptions(host=args.host, port=args.port, db=db,
                               tls_dir=config.emulator_tls_dir() if args.tls else None, allow_remote=args.allow_remote,
                               trusted_issuers=federation, federated_subjects=tuple(args.federated_subject),
                               app_certificate=certificate)
    except ValueError as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    problem = _db_problem(db) if db is not None else None
    if problem:
        print(f"entra-batch emulator: --db {db} {problem}", file=sys.stderr)
        return ExitCode.USAGE
    print(f"entra-batch emulator: directory in {db or 'memory'}; Ctrl-C stops it", file=sys.stderr)
    lock = _hold(db)
    try:
        serve(options, settings, sys.stdout)
    except (NotLoopback, BadSetting, DatabaseUnavailable) as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as exc:
        print(f"entra-batch emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}. "
              "Try another --port (0 picks a free one).", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    finally:
        if lock is not None:
            os.close(lock)
    return ExitCode.OK


def _db_problem(db: Path) -> str | None:
    """Why `db` cannot be the emulator's directory file, found before it is touched (its mode
    tightened, a .lock made beside it): a folder, or a file that is not an SQLite database
    (its header's first 16 bytes). Nothing there yet or an empty file is fine."""
    if db.is_dir():
        return f"is a folder; give the path of a file, for example {db / 'emulator.db'}"
    try:
        with db.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return None  # not there yet, or unreadable: the emulator's own opening says why
    if head and head != b"SQLite format 3\x00":
        return ("is a file that is not an emulator directory (not an SQLite database); give a new file name, or "
                "the emulator.db of an earlier emulator")
    return None


def _federation(args: argparse.Namespace) -> tuple[tuple[str, dict[str, Any]], ...] | int:
    """The --trust-issuer ISSUER=JWKS_FILE pairs read, or the usage exit code after one line."""
    pairs = []
    for item in args.trust_issuer:
        issuer, equals, path = item.rpartition("=")
        if not equals or not issuer or not path:
            print(f"entra-batch emulator: --trust-issuer takes ISSUER=JWKS_FILE, got {item!r}", file=sys.stderr)
            return ExitCode.USAGE
        try:
            jwks = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"entra-batch emulator: cannot read the JWKS document {path}: {getattr(exc, 'strerror', None) or exc}",
                  file=sys.stderr)
            return ExitCode.USAGE
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            print(f"entra-batch emulator: {path} is not a JWKS document ({{\"keys\": [...]}})", file=sys.stderr)
            return ExitCode.USAGE
        pairs.append((issuer, jwks))
    if args.federated_subject and not pairs:
        print("entra-batch emulator: --federated-subject needs a --trust-issuer to accept tokens from", file=sys.stderr)
        return ExitCode.USAGE
    return tuple(pairs)


def _named_db(db: Path | None) -> str | None:
    """The directory file to name in `approve ... --db PATH` hints: None for the default one
    (which `approve` finds by itself) and for --memory (which no other process can reach)."""
    # The default file's path only: the home directory is neither made nor checked here.
    if db is None or db.absolute() == (config.home_dir() / "emulator.db").absolute():
        return None
    return str(db.absolute())


def _app_certificate(args: argparse.Namespace) -> str | None | int:
    """The --app-certificate's public certificate (PEM), or the usage exit code after one line.
    A private key in the file is never read into the directory, and said so."""
    if args.app_certificate is None:
        return None
    from batch.emulator.certificates import read_certificate

    try:
        registered = read_certificate(args.app_certificate.read_bytes())
    except OSError as exc:
        print(f"entra-batch emulator: cannot read --app-certificate {args.app_certificate}: {exc.strerror or exc}",
              file=sys.stderr)
        return ExitCode.USAGE
    except ValueError as exc:
        print(f"entra-batch emulator: --app-certificate {args.app_certificate} {exc}", file=sys.stderr)
        return ExitCode.USAGE
    note = "; its private key was not read into the directory (only the certificate is registered)" \
        if registered.had_private_key else ""
    print(f"entra-batch emulator: the ready-made app holds certificate {registered.thumbprint} ({registered.subject}, "
          f"valid until {registered.not_after:%Y-%m-%d %H:%M} UTC){note}", file=sys.stderr)
    return registered.pem


def add_admin(args: argparse.Namespace) -> int:
    """`entra-batch emulator add-admin UPN [--role ROLE ...] [--db PATH]`: an administrator of the
    tenant whose default domain ends the UPN (default role User Administrator; `--role none`
    for none), or new roles for an existing one, in the emulator's directory file, so that
    `approve --as UPN` signs them in (works while the emulator runs)."""
    from batch.emulator.database import DatabaseUnavailable

    upn = (args.user_code or "").strip()
    if "@" not in upn:
        print("entra-batch emulator: add-admin needs a UPN, for example helpdesk@contoso.onmicrosoft.com",
              file=sys.stderr)
        return ExitCode.USAGE
    roles = [r for r in (args.role or ["User Administrator"]) if r.lower() != "none"]
    store = _open_directory(args.db)
    if isinstance(store, int):
        return store
    try:
        return _add_admin(store, upn, roles)
    except (ValueError, DatabaseUnavailable) as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()


def _add_admin(store: Store, upn: str, given: list[str]) -> int:
    from batch.emulator.store import ROLE_TEMPLATES

    names = {name.lower(): name for name in ROLE_TEMPLATES}
    roles = [names.get(" ".join(role.split()).lower(), role) for role in given]
    domain = upn.rpartition("@")[2].lower()
    tenant = next((t for t in store.tenants() if t.default_domain == domain), None)
    if tenant is None:
        print(f"entra-batch emulator: {upn}: no tenant of the emulator has the domain {domain}; its domains: "
              + ", ".join(t.default_domain for t in store.tenants()), file=sys.stderr)
        return ExitCode.USAGE
    held = ", ".join(roles) or "no directory role"
    if store.admin(upn) is not None:
        store.set_admin_roles(upn, roles)
        print(f"entra-batch emulator: {upn} now holds {held}", file=sys.stderr)
    else:
        store.add_admin(tenant.id, upn, roles=roles)
        print(f"entra-batch emulator: {upn} is an administrator of {tenant.default_domain} holding {held}; "
              f"sign in with `entra-batch emulator approve USER_CODE --as {upn}`", file=sys.stderr)
    return ExitCode.OK


def migrate_passwords(args: argparse.Namespace) -> int:
    """`entra-batch emulator migrate-passwords ATTRIBUTE [--count N | UPN ...] [--db PATH]`: what
    customers' first sign-ins do in a JIT password migration (the extension answers
    MigratePassword: Entra keeps the password and sets the flag to false), for the first N
    customers still flagged (default 1) or the ones named, in the default tenant or the tenant
    of the UPNs' domain (works while the emulator runs)."""
    from batch.emulator.database import DatabaseUnavailable

    flag = (args.user_code or "").strip()
    upns = tuple(getattr(args, "upns", None) or ())
    if not flag or "@" in flag:
        print("entra-batch emulator: migrate-passwords needs the flag attribute first, for example "
              "`migrate-passwords requiresMigration --count 10`", file=sys.stderr)
        return ExitCode.USAGE
    if upns and args.count is not None:
        print("entra-batch emulator: migrate-passwords takes --count N or UPNs, not both", file=sys.stderr)
        return ExitCode.USAGE
    store = _open_directory(args.db)
    if isinstance(store, int):
        return store
    try:
        tenants = store.tenants()
        tenant = tenants[0]
        if upns:
            domain = upns[0].rpartition("@")[2].lower()
            tenant = next((t for t in tenants if t.default_domain == domain), tenant)
        done = store.complete_password_migration(tenant.id, flag, upns=upns,
                                                 count=None if upns else (args.count or 1))
    except (ValueError, DatabaseUnavailable) as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()
    print(f"entra-batch emulator: {len(done)} customer{'s' if len(done) != 1 else ''} of {tenant.default_domain} "
          f"migrated their password ({flag} now false)", file=sys.stderr)
    return ExitCode.OK


ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")


def add_attribute(args: argparse.Namespace) -> int:
    """`entra-batch emulator add-attribute NAME [--type TYPE] [--db PATH]`: declare a custom
    attribute on the extensions app of the emulator's tenant, as the admin center's "Custom
    user attributes" page does; until then, Graph (and the emulator) refuse to write it.
    Works while the emulator runs. An attribute's name (any case) and type are for good, as in
    the admin center, whose custom attributes cannot be renamed or retyped: declaring the same
    one again changes nothing, and another type (or another case) is refused."""
    from batch.emulator.database import DatabaseUnavailable
    from batch.emulator.tenantstore import EXTENSION_TYPES

    name = (args.user_code or "").strip()
    if not ATTRIBUTE_NAME.fullmatch(name):
        print("entra-batch emulator: add-attribute needs an attribute name (a letter, then letters, digits or _), "
              "for example: add-attribute loyaltyTier --type Integer", file=sys.stderr)
        return ExitCode.USAGE
    types = {t.lower(): t for t in EXTENSION_TYPES}
    data_type = types.get((args.type or "String").lower())
    if data_type is None:
        print(f"entra-batch emulator: --type is one of {', '.join(EXTENSION_TYPES)}", file=sys.stderr)
        return ExitCode.USAGE
    store = _open_directory(args.db, make_default=True)
    if isinstance(store, int):
        return store
    try:
        tenant_id = store.default_app().tenant_id
        tenant = store.tenant(tenant_id)
        hex_id = tenant.extensions_app_id.replace("-", "").lower() if tenant is not None else ""
        declared = {full.split("_", 2)[2]: kind for full, kind in store.declared_extensions(tenant_id).items()
                    if full.lower().startswith(f"extension_{hex_id}_")}
        same = next(((known, kind) for known, kind in declared.items() if known.lower() == name.lower()), None)
        if same is not None and same != (name, data_type):
            print(f"entra-batch emulator: the custom attribute {same[0]} is declared already, as a {same[1]}; an "
                  "attribute's name and type cannot be changed (nothing was changed)", file=sys.stderr)
            return ExitCode.USAGE
        full = store.add_extension_property(tenant_id, name, data_type)
    except (ValueError, DatabaseUnavailable) as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()
    print(f"entra-batch emulator: custom attribute {name} ({data_type}) declared as {full}; "
          f"write it with an ext.{name} column", file=sys.stderr)
    return ExitCode.OK


def _open_directory(given: Path | None, *, make_default: bool = False) -> Store | int:
    """The emulator's directory file opened (a Store), or the usage exit code after one line.
    `make_default`: the built-in emulator's own directory (no --db) is made when it does not
    exist yet, as its first run would (setting a tenant up before any customer exists)."""
    from batch.emulator.database import DatabaseUnavailable
    from batch.emulator.store import Store

    try:
        db: Path = given or config.emulator_db_path()
    except ConfigError as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if not db.is_file() and not (make_default and given is None):
        print(f"entra-batch emulator: no emulator directory at {db}; give the --db of the running emulator",
              file=sys.stderr)
        return ExitCode.USAGE
    try:
        return Store(db)
    except DatabaseUnavailable as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE


def approve_device_code(args: argparse.Namespace) -> int:
    """`entra-batch emulator approve USER_CODE [--as UPN]`: the administrator signs in on the device
    that shows USER_CODE (or, with `decline`, refuses), in the emulator's directory file, so that
    a running `entra-batch emulator` on the same file answers the device's next poll."""
    from batch.emulator.delegated import ApprovalError, approve

    if not args.user_code:
        print(f"entra-batch emulator: {args.action} needs the USER_CODE the sign-in printed", file=sys.stderr)
        return ExitCode.USAGE
    store = _open_directory(args.db)
    if isinstance(store, int):
        return store
    try:
        admin = approve(store, args.user_code, args.as_upn, time.time(), decline=args.action == "decline",
                        db=str(args.db) if args.db else None)
    except ApprovalError as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()
    verb = "declined" if args.action == "decline" else "signed in"
    print(f"entra-batch emulator: {admin.upn} {verb} on the device showing {args.user_code.strip().upper()}",
          file=sys.stderr)
    return ExitCode.OK


def _hold(db: Path | None) -> int | None:
    """The directory's shared lock while serving it, so that `emulator reset` refuses."""
    if db is None:
        return None
    from batch.cli.local import share_directory

    return share_directory(db)


def reset_emulator(args: argparse.Namespace) -> int:
    """`entra-batch emulator reset`: the local emulator's directory (its SQLite file, default
    under ENTRA_BATCH_HOME, or --db) removed, after asking on a terminal or with --yes; the
    next command starts from the emulator's first state (one tenant, one app, no customers).
    A link is removed, never followed."""
    try:
        db: Path = args.db or config.emulator_db_path()
    except ConfigError as exc:
        print(f"entra-batch emulator: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    files = [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    if not os.path.lexists(db):
        print(f"entra-batch emulator: {db} does not exist; the local directory is already empty", file=sys.stderr)
        return ExitCode.OK
    problem = None if db.is_symlink() else _db_problem(db)
    if problem:  # a file of the user's given as --db: never removed (found by a review: it was)
        print(f"entra-batch emulator: --db {db} {problem}. Nothing was removed", file=sys.stderr)
        return ExitCode.USAGE
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"entra-batch emulator: reset removes every customer of the local emulator ({db}); pass --yes "
                  "to confirm", file=sys.stderr)
            return ExitCode.USAGE
        answer = input(f"Remove the local emulator's directory {db} (every customer, and its app's secret)? "
                       "Type yes to go on: ")
        if answer.strip().lower() != "yes":
            print("entra-batch emulator: not reset", file=sys.stderr)
            return ExitCode.USAGE
    from batch.cli.local import directory_in_use

    try:
        lock = directory_in_use(db, exclusive=True)
    except OSError as exc:
        print(f"entra-batch emulator: cannot lock {db}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.USAGE
    if lock is None:
        print(f"entra-batch emulator: {db} is in use by a running `entra-batch emulator` or a run on the built-in "
              "emulator; stop it first (Ctrl-C), then reset. Nothing was removed", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return _remove(db, files)
    finally:
        os.close(lock)


def _remove(db: Path, files: list[Path]) -> int:
    for path in files:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            print(f"entra-batch emulator: cannot remove {path}: {exc.strerror or exc}", file=sys.stderr)
            return ExitCode.USAGE
    print(f"entra-batch emulator: the local directory ({db}) is empty; it starts afresh on the next command",
          file=sys.stderr)
    return ExitCode.OK
