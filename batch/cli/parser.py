"""`entra-batch`'s argument parser: one subcommand per verb, plus validate, template,
resume, export and emulator. Help texts live in `batch.cli.help`."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from batch.cli.help import DOCTOR_EPILOG, EMULATOR_EPILOG, EXPORT_EPILOG
from batch.verbs.registry import VERBS, VerbSpec
from batch.version import __version__

if TYPE_CHECKING:
    from batch.emulator.settings import Quota


def _quota(text: str) -> Quota:
    from batch.emulator.settings import Quota

    try:
        return Quota.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _emulator_limits() -> Any:
    from batch.emulator import settings  # imported when an emulator option is given, not at start

    return settings


def _number(convert: Callable[[str], float], what: str, limits: Callable[[], tuple[float, float]],
            *, scale: str = "{:g}") -> Callable[[str], Any]:
    """An argparse type: `convert(text)` within `limits()` (looked up when an option is parsed,
    so that the emulator's limits stay in its settings), else one line saying what is wanted."""
    def parse(text: str) -> Any:
        low, high = limits()
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            shown = f", got {text!r}" if what != "a probability" else ""
            raise argparse.ArgumentTypeError(f"{what} between {scale.format(low)} and {scale.format(high)}{shown}")
        return value
    return parse


_probability = _number(float, "a probability", lambda: (0.0, 1.0))
_port = _number(int, "a port number", lambda: (0, 65535), scale="{:d}")
_milliseconds = _number(float, "a number of milliseconds", lambda: (0.0, _emulator_limits().MAX_DELAY_MS),
                        scale="{:.0f}")
_seconds = _number(float, "a number of seconds", lambda: (0.0, _emulator_limits().MAX_DELAY_MS / 1000),
                   scale="{:.0f}")
_sigma = _number(float, "a spread", lambda: (0.0, _emulator_limits().MAX_SIGMA))
_token_lifetime = _number(int, "a whole number of seconds", lambda: (_emulator_limits().MIN_TOKEN_LIFETIME,
                                                                      _emulator_limits().MAX_TOKEN_LIFETIME),
                          scale="{:d}")


def _auth_methods() -> tuple[str, ...]:
    from batch.config import AUTH_METHODS

    return tuple(AUTH_METHODS)


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("target")
    g.add_argument("--target", metavar="local|URL",
                   help="'local' for the built-in emulator (the default when no tenant is configured), or a Graph "
                        "base URL such as http://127.0.0.1:8765/v1.0 (default: $ENTRA_BATCH_TARGET, else "
                        "graph.microsoft.com when AZURE_TENANT_ID is set). Not with --profile: a profile names "
                        "its own target")
    g.add_argument("--profile", metavar="NAME",
                   help="a named tenant in $ENTRA_BATCH_HOME/profiles.toml (`entra-batch profiles` lists them); "
                        "its settings replace the AZURE_* and ENTRA_BATCH_TARGET variables. Not with --target")
    g.add_argument("--auth", metavar="METHOD", type=str.lower, choices=_auth_methods(),
                   help="how to sign in: secret, certificate (PEM or PFX), device-code (you, as administrator: a "
                        "code to enter in a browser, asked once then cached), azure-cli (the account of `az login`), "
                        "managed-identity, workload-identity (AZURE_FEDERATED_TOKEN_FILE). Default: the profile's "
                        "auth key with --profile, else $ENTRA_BATCH_AUTH, else what the credentials given imply "
                        "(a client secret, a certificate, a federated token file)")
    g.add_argument("--domain", metavar="DOMAIN",
                   help="the tenant's default domain, issuer of sign-in names (e.g. contoso.onmicrosoft.com)")
    g.add_argument("--extensions-app-id", metavar="APP_ID",
                   help="app id of the tenant's extensions app (b2c-extensions-app), which holds its custom "
                        "attributes; found by itself when not given (needs Application.Read.All)")


SHEET_HELP = "the worksheet of an .xlsx file to read (default: the first); its name exactly"


def _add_verb(verbs: argparse._SubParsersAction[argparse.ArgumentParser], spec: VerbSpec) -> None:
    """A verb's subcommand, from its registry entry: the options every run takes, then its own."""
    p = verbs.add_parser(spec.name, help=spec.summary, description=spec.description, epilog=spec.epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="the input file: CSV (UTF-8, UTF-16 with BOM, or --encoding), or by its "
                                           "suffix .xlsx, .jsonl/.ndjson, .parquet")
    p.add_argument("--encoding", help="the CSV file's encoding when it is not UTF-8 (e.g. cp1252 for Excel's 'CSV (Windows)')")
    p.add_argument("--sheet", metavar="NAME", help=SHEET_HELP)
    p.add_argument("--out-dir", type=Path, help=f"run folder to write (new or empty; default runs/<UTC time>-{spec.name})")
    p.add_argument("--dry-run", action="store_true", help="validate and plan; send nothing")
    p.add_argument("--new-run", action="store_true",
                   help="start a separate run even though an earlier run of this verb on the same file and target "
                        "is not finished (by default that is refused, naming the folder to resume)")
    for option in spec.options:
        if option.store_true:
            p.add_argument(option.flag, dest=option.dest, action="store_true", help=option.help)
        elif option.metavar == "ATTRIBUTE":
            p.add_argument(option.flag, dest=option.dest, default=option.default, metavar=option.metavar,
                           help=option.help, type=_attribute_name)
        else:
            p.add_argument(option.flag, dest=option.dest, choices=option.choices, default=option.default,
                           metavar=option.metavar, help=option.help)
    p.add_argument("--batch-size", type=_batch_size, default=20, help="requests per JSON batch, 1-20 (default 20)")
    _add_pace_options(p, concurrency=4, what="batches in flight at once")
    _add_output_options(p)
    _add_target_options(p)


def _add_output_options(parser: argparse._ActionsContainer) -> None:
    """-v/--verbose and --json, which every command that talks to Graph takes."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="one line per HTTP request on stderr (method, path, status, request-id, duration, "
                             "throttle headers; never a token or a body), also written to run.log in the run folder "
                             "(export: stderr only); no progress bar then")
    parser.add_argument("--json", action="store_true",
                        help="print the closing summary as one JSON document on stdout (summary.json and run_dir), "
                             "for scripts; other lines go to stderr")


def _add_pace_options(group: argparse._ActionsContainer, *, concurrency: int, what: str) -> None:
    """--concurrency, --priority and --quiet, which every command that talks to Graph takes."""
    group.add_argument("--concurrency", type=_concurrency, default=concurrency,
                       help=f"{what}, 1 to {MAX_CONCURRENCY} (default {concurrency})")
    group.add_argument("--priority", choices=("normal", "low"), default="normal",
                       help="low sends x-ms-throttle-priority: Low so that interactive work goes first")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_export(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("export", help="export customer accounts to CSV, JSON Lines, Excel or Parquet",
                         description="Export customers (all, a filter, the deleted ones, or what changed since the "
                                     "last export) to a file, streamed page by page.",
                         epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="file to write (default: customers.<format> in the run folder); - for standard output "
                        "(csv and jsonl). An existing file of yours is replaced once the export is complete")
    p.add_argument("--force", action="store_true",
                   help="let --out replace a symbolic link (the link, not what it points to) or another user's file")
    p.add_argument("--format", choices=("csv", "jsonl", "xlsx", "parquet"),
                   help="file format (default: from --out's extension, else csv)")
    p.add_argument("--out-dir", type=Path, help="run folder for summary.json (new or empty; default runs/<UTC time>-export)")
    g = p.add_argument_group("which customers")
    g.add_argument("--filter", metavar="ODATA", help="an OData $filter passed to Graph, e.g. \"accountEnabled eq false\"")
    g.add_argument("--created-after", metavar="DATE", help="created on or after DATE (2026-01-31 or an ISO time)")
    g.add_argument("--created-before", metavar="DATE", help="created on or before DATE (a date includes its whole day)")
    blocked = g.add_mutually_exclusive_group()
    blocked.add_argument("--blocked", dest="blocked", action="store_const", const=True, help="only customers blocked from signing in")
    blocked.add_argument("--enabled", dest="blocked", action="store_const", const=False, help="only customers who can sign in")
    g.add_argument("--sign-in-type", choices=("emailAddress", "userName", "federated"),
                   help="only customers with this kind of sign-in name (checked by entra-batch: Graph cannot filter on it)")
    g.add_argument("--deleted", action="store_true", help="soft-deleted customers instead, with deletedDateTime and restorableUntil")
    g.add_argument("--since", type=Path, metavar="STATE_FILE",
                   help="incremental: what changed since the last export with this state file (made on first use)")
    g = p.add_argument_group("what and how")
    g.add_argument("--select", metavar="COLUMNS", help="a,b,c: exactly these columns; +a,+b: these added to the default ones")
    g.add_argument("--raw", action="store_true", help="do not neutralise formula-looking cells (see below)")
    g.add_argument("--summary", action="store_true", help="print counts by status, sign-in type, usage location and month")
    g.add_argument("--report", type=Path, metavar="FILE.html", help="write the counts as a self-contained page with charts")
    g.add_argument("--jit-migration", metavar="ATTRIBUTE", type=_attribute_name,
                   help="with --summary/--report (and in summary.json): the progress of a just-in-time password "
                        "migration, counting customers whose Boolean ATTRIBUTE is true (still to migrate), false "
                        "(migrated) or absent (never flagged)")
    g.add_argument("--sequential", action="store_true", help="one listing in Graph's order instead of concurrent partitions")
    _add_pace_options(g, concurrency=16, what="partitions fetched at once")
    _add_output_options(g)
    _add_target_options(p)


def _add_doctor(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("doctor", help="check a tenant before a run: identity, permissions, extensions app, limits",
                         description="Check everything that can be known before a run, with reads only: the tenant "
                                     "(name, id, domains, kind), the identity used and its permissions against each "
                                     "verb's needs, the extensions app and its custom attributes (and the attribute "
                                     "a JIT password migration listener reads), the clock offset to Graph, throttle "
                                     "headers and latency, and the queries large runs depend on.",
                         epilog=DOCTOR_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="one line per HTTP request on stderr (method, path, status, request-id, duration, throttle "
                        "headers; never a token or a body)")
    p.add_argument("--json", action="store_true",
                   help="print the checklist as one JSON document on stdout (every check with its section, status, "
                        "finding, remedy and data), for scripts")
    _add_target_options(p)


def _add_validate(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("validate", help="check a CSV file for a verb without sending anything",
                         description="Check every row of a file as the verb would, and print what is wrong, "
                                     "row by row. Needs no tenant.",
                         epilog="examples:\n  entra-batch validate customers.csv --verb create\n"
                                "  entra-batch validate export.csv --verb create --encoding cp1252\n"
                                "  entra-batch validate legacy.xlsx --verb create --sheet Customers\n\n"
                                "Exit status: 0 every row is valid, 1 some rows are not, 2 the file cannot be used.",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="the input file: CSV, or by its suffix .xlsx, .jsonl/.ndjson, .parquet")
    p.add_argument("--verb", required=True, choices=tuple(VERBS),
                   help="the verb the file is meant for")
    p.add_argument("--encoding", help="the CSV file's encoding when it is not UTF-8 (e.g. cp1252)")
    p.add_argument("--sheet", metavar="NAME", help=SHEET_HELP)
    _add_target_options(p)  # read offline, as the verb would use them (nothing is sent)


def _add_template(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("template", help="write the CSV template of a verb",
                         description="Write an empty CSV template for a verb: entra-batch's own columns, "
                                     "or the Entra admin center's bulk format with --portal.",
                         epilog="examples:\n  entra-batch template create > customers.csv\n"
                                "  entra-batch template create --portal --out bulk-create.csv\n"
                                "  entra-batch template update --columns",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("verb", choices=tuple(VERBS))
    p.add_argument("--portal", action="store_true", help="the admin center's bulk template (version row + bracketed headers)")
    p.add_argument("--out", type=Path, metavar="FILE", help="file to write (default, or -: standard output)")
    p.add_argument("--force", action="store_true",
                   help="let --out replace a symbolic link (the link, not what it points to) or another user's file")
    p.add_argument("--columns", action="store_true",
                   help="instead of a template, list every column the verb reads: what it means, other headers "
                        "that match it, and whether it is required")


def _add_resume(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("resume", help="finish an interrupted run",
                         description="Finish a run that was interrupted (crash, Ctrl-C, kill, lost network, missing "
                                     "permission): rows already done are kept, rows whose answer never came are "
                                     "looked up before anything is re-sent, the rest are sent.",
                         epilog="examples:\n  entra-batch resume runs/20261129T013000Z-create",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="the run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--yes", action="store_true",
                   help="confirm a run that stopped at its confirmation question (deleting more than 100 "
                        "customers, ...) without asking it again (needed when not on a terminal)")
    _add_output_options(p)
    _add_target_options(p)


def _add_profiles(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from batch.profiles import APP_KEYS, PROFILE_KEYS

    keys = "\n".join(f"  {key:<18} {meaning}" for key, meaning in PROFILE_KEYS.items())
    app_keys = ", ".join(APP_KEYS)
    p = verbs.add_parser(
        "profiles", help="list the profiles of profiles.toml, or show one",
        description="List the named tenants of $ENTRA_BATCH_HOME/profiles.toml (name, target, tenant, client id, "
                    "how the app signs in, how many apps), or show every key of one, secrets masked. The file is "
                    "checked as a run checks it.",
        epilog="examples:\n  entra-batch profiles\n  entra-batch profiles show staging\n\n"
               f"The keys of a profile ([NAME] in profiles.toml); any other key is refused:\n{keys}\n"
               f"An [[NAME.apps]] table takes {app_keys}.\n\n"
               "--profile NAME uses the profile's settings instead of the AZURE_* and ENTRA_BATCH_TARGET variables; "
               "it cannot be given with --target.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="profiles_action", metavar="ACTION")
    actions.add_parser("list", help="list the profiles (the default)")
    show = actions.add_parser("show", help="show every key of one profile, secrets masked")
    show.add_argument("name", metavar="NAME", help="the profile's name")


_AGE = re.compile(r"(\d+(?:\.\d+)?)([dhm])")
_AGE_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0}


def older_than(text: str) -> float:
    """`7d`, `12h`, `30m`: an age in seconds (`runs prune --older-than`)."""
    found = _AGE.fullmatch(text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"an age such as 7d, 12h or 30m, got {text!r}")
    return float(found.group(1)) * _AGE_UNITS[found.group(2)]


def _add_runs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("runs", help="list, show and prune run folders",
                         description="The run folders of this user (wherever --out-dir put them: they are indexed "
                                     "in ENTRA_BATCH_HOME) and those under ./runs/: folder, verb, target, start, "
                                     "state (finished, interrupted, running) and counts.",
                         epilog="examples:\n  entra-batch runs\n  entra-batch runs show runs/20261129T013000Z-create\n"
                                "  entra-batch runs prune --older-than 7d --dry-run\n\n"
                                "`runs show` of an interrupted run writes its results.csv with the rows finished so "
                                "far (provisional; `resume` writes it whole).",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="runs_action", metavar="ACTION")
    show = actions.add_parser("show", help="one run's details; writes a provisional results.csv if it is unfinished")
    show.add_argument("run_dir", type=Path, help="the run folder")
    prune = actions.add_parser("prune", help="remove finished run folders older than an age",
                               description="Remove finished run folders whose run ended longer ago than --older-than. "
                                           "Unfinished and running ones are never removed, nor folders that still "
                                           "hold passwords.csv unless --including-passwords; links are never "
                                           "followed.")
    prune.add_argument("--older-than", type=older_than, required=True, metavar="AGE",
                       help="an age: 7d (days), 12h (hours) or 30m (minutes)")
    prune.add_argument("--including-passwords", action="store_true",
                       help="remove folders that still hold passwords.csv too (the passwords are gone for good)")
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")


def _attribute_name(text: str) -> str:
    """A custom attribute's name (--jit-migration, --legacy-id-attribute): never empty, which
    would otherwise read as "option not given" (`--jit-migration ""` made a plain create that
    wrote passwords.csv)."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("name a custom attribute, e.g. requiresMigration (the value is empty)")
    return name


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 20:
        raise argparse.ArgumentTypeError("a JSON batch holds 1 to 20 requests")
    return value


MAX_CONCURRENCY = 64  # far above what Graph's throttling admits from one app; each one costs memory


def _concurrency(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"1 to {MAX_CONCURRENCY}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, and where the help is), not the
    whole usage block before it: the rule for every error a user can cause."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="entra-batch",
        description="Bulk management of Microsoft Entra External ID customer accounts through Microsoft Graph.",
    )
    parser.add_argument("--version", action="version", version=f"entra-batch {__version__}")
    verbs = parser.add_subparsers(dest="command", metavar="VERB")

    for spec in VERBS.values():
        _add_verb(verbs, spec)
    _add_export(verbs)
    _add_doctor(verbs)
    _add_validate(verbs)
    _add_template(verbs)
    _add_resume(verbs)
    _add_profiles(verbs)
    _add_runs(verbs)

    emu = verbs.add_parser(
        "emulator", help="serve the local Microsoft Graph emulator over HTTP(S) on loopback",
        description="Serve the built-in Microsoft Graph emulator (users, deleted items, $batch, delta, "
                    "throttling, faults, a client-credentials token endpoint) on a loopback address.",
        epilog=EMULATOR_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emu.add_argument("action", nargs="?", choices=("reset", "approve", "decline", "add-admin", "add-attribute",
                                                 "migrate-passwords"),
                     help="reset: empty the local emulator's directory (every customer, deleted ones too; a new app "
                          "secret) after asking, or with --yes; a running `entra-batch emulator` must be stopped "
                          "first. approve USER_CODE: sign in as an administrator on the device that shows USER_CODE "
                          "(device code flow; works while the emulator runs). decline USER_CODE: refuse it. add-admin UPN: "
                          "add an administrator (a member user of the tenant of the UPN's domain) who can approve "
                          "codes with --as UPN, or set the roles of one (works while the emulator runs). "
                          "add-attribute NAME --type TYPE: declare a custom attribute on the tenant's extensions "
                          "app, which must be done before any customer is given it (works while the emulator runs). "
                          "migrate-passwords ATTRIBUTE [--count N | UPN ...]: simulate customers' first sign-ins in a "
                          "just-in-time password migration: their flag attribute set to false and a new password "
                          "(works while the emulator runs)")
    emu.add_argument("user_code", nargs="?", metavar="USER_CODE|UPN|NAME",
                     help="with approve or decline: the code printed by the device code sign-in; with add-admin: "
                          "the administrator's user principal name; with add-attribute: the attribute's name; with "
                          "migrate-passwords: the flag attribute")
    emu.add_argument("upns", nargs="*", metavar="UPN", help="with migrate-passwords: the customers who migrate")
    emu.add_argument("--type", metavar="TYPE",
                     help="with add-attribute: the attribute's data type, String (default), Boolean, Integer, "
                          "LargeInteger, DateTime or Binary")
    emu.add_argument("--count", type=int, metavar="N",
                     help="with migrate-passwords: how many flagged customers migrate (default 1)")
    emu.add_argument("--yes", action="store_true", help="with reset: do not ask")
    emu.add_argument("--as", dest="as_upn", metavar="UPN",
                     help="with approve: the administrator who signs in (default: the tenant's admin@<domain>)")
    emu.add_argument("--role", action="append", metavar="ROLE",
                     help="with add-admin: a directory role by name, repeatable (default: User Administrator; "
                          "'none' for no role). Known: Global Administrator, User Administrator, Password "
                          "Administrator, Helpdesk Administrator, Privileged Authentication Administrator, "
                          "Authentication Administrator, Global Reader, Directory Readers")
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only; default 127.0.0.1)")
    emu.add_argument("--port", type=_port, default=8765, help="port to bind, 0 for any free port (default 8765)")
    emu.add_argument("--db", type=Path, help="SQLite file holding the emulator's directory "
                                             "(default: emulator.db under ENTRA_BATCH_HOME)")
    emu.add_argument("--memory", action="store_true", help="keep the directory in memory only")
    emu.add_argument("--tls", action="store_true", help="serve https with a local CA made on first start "
                                                        "(its path is printed as SSL_CERT_FILE)")
    emu.add_argument("--allow-remote", action="store_true", help=argparse.SUPPRESS)
    emu.add_argument("--password-reset-needs-role", action="store_true",
                     help="refuse (403) a passwordProfile change by an app without the User Administrator "
                          "directory role, as user-update.md says for app-only calls (the default app holds it)")
    emu.add_argument("--keep-password-digests", action="store_true",
                     help="for tests: keep a salted digest of each customer's current password, so that a test "
                          "can check which password a customer has (never returned by any endpoint)")
    g = emu.add_argument_group("sign-in (device code, managed identity, workload identity federation)")
    g.add_argument("--approve-device-codes-as", metavar="UPN",
                   help="approve every device code as this administrator as soon as it is asked for (tests, demos); "
                        "without it a code waits for `entra-batch emulator approve USER_CODE`")
    g.add_argument("--app-certificate", type=Path, metavar="CERT_FILE",
                   help="register this certificate (PEM or DER; only the certificate is kept, never a private key "
                        "in the file) with the ready-made app, which keeps its secret too: sign in with "
                        "AZURE_CLIENT_CERTIFICATE_PATH set to the certificate and its key; kept in --db")
    g.add_argument("--trust-issuer", action="append", default=[], metavar="ISSUER=JWKS_FILE",
                   help="trust tokens of the external OIDC issuer ISSUER (for example GitHub Actions' "
                        "https://token.actions.githubusercontent.com) signed by a key of the JWKS document in "
                        "JWKS_FILE; repeatable")
    g.add_argument("--federated-subject", action="append", default=[], metavar="SUBJECT",
                   help="let the default app accept, as a client assertion, a token of each --trust-issuer whose "
                        "sub is SUBJECT and aud api://AzureADTokenExchange (a federated credential, as "
                        "AZURE_FEDERATED_TOKEN_FILE provides); repeatable")
    g = emu.add_argument_group("throttling (defaults are Graph's documented quotas)")
    g.add_argument("--write-quota", type=_quota, metavar="N/SECONDS",
                   help="writes per app and tenant (default 3000/150)")
    g.add_argument("--tenant-write-quota", type=_quota, metavar="N/SECONDS",
                   help="writes per tenant across apps (default 18000/300)")
    g.add_argument("--app-write-quota", type=_quota, metavar="N/SECONDS",
                   help="writes per app across tenants (default 35000/300)")
    g.add_argument("--ru-quota", type=_quota, metavar="N/SECONDS",
                   help="resource units per app and tenant (default by tenant size: 3500, 5000 or 8000 per 10 s)")
    g.add_argument("--no-throttle", action="store_true", help="admit every request")
    g = emu.add_argument_group("latency and faults (seeded)")
    g.add_argument("--latency-ms", type=_milliseconds, default=0.0, metavar="N", help="median service time of a request")
    g.add_argument("--latency-sigma", type=_sigma, default=0.35, metavar="S", help="spread of the log-normal latency")
    g.add_argument("--fault-rate", type=_probability, default=0.0, metavar="F",
                   help="probability that a request meets a fault")
    g.add_argument("--faults", default="429,500,502,503,504,reset,drop-before,drop-after,slow", metavar="KINDS",
                   help="which faults to inject (comma-separated; default all): 429 storms and 503/504 with a "
                        "Retry-After in seconds, decimals, a date or none; 500 (JSON) and 502 (a gateway's HTML "
                        "page), applied or not; reset mid-body; drop-before/drop-after; slow")
    g.add_argument("--storm-seconds", type=_seconds, default=2.0, metavar="S", help="length of an injected 429 storm")
    g.add_argument("--slow-ms", type=_milliseconds, default=2000.0, metavar="N", help="extra delay of a slow response")
    g.add_argument("--token-fault-rate", type=_probability, default=0.0, metavar="F",
                   help="probability that the token endpoint answers 503")
    g.add_argument("--replication-lag-ms", type=_milliseconds, default=0.0, metavar="N",
                   help="each write of a user shows in reads only after a delay drawn between 0 and N ms, as "
                        "Graph's replicas lag: a user just created is 404 and not listed, one just deleted still "
                        "live (default 0; for --target local set ENTRA_BATCH_EMULATOR_LAG_MS=N)")
    g.add_argument("--seed", type=int, help="seed for latency, fault and replication lag draws (replayable runs)")
    g.add_argument("--token-lifetime", type=_token_lifetime, default=3599, metavar="SECONDS", help="access token lifetime")
    return parser
