"""`entra-batch profiles`: the profiles of $ENTRA_BATCH_HOME/profiles.toml, one line each
(name, target, tenant, client id, how the app signs in, how many apps), and `profiles show
NAME`: every key of one profile, secrets masked, and where each secret comes from (the
environment variable's name, and whether it is set). The file is checked as a run checks it
(owner and mode, types, unknown keys): what is listed is what a run accepts."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from batch.config import GRAPH_COMMAND_LINE_TOOLS, load_profiles
from batch.errors import ConfigError, ExitCode
from batch.profiles import APP_KEYS, PROFILE_KEYS

MASK = "****"


def profiles(args: argparse.Namespace) -> int:
    path, found = load_profiles()
    if getattr(args, "profiles_action", None) == "show":
        section = found.get(args.name)
        if section is None:
            known = ", ".join(sorted(found)) or "none"
            raise ConfigError(f"no profile [{args.name}] in {path} (profiles: {known})")
        print(f"profile {args.name} (in {path})")
        for key, value in _show(section):
            print(f"  {key:<26} {value}")
        return ExitCode.OK
    if not found:
        print(f"no profiles in {path}; the README's Profiles section shows how to write one")
        return ExitCode.OK
    print(f"profiles in {path}:")
    rows = [("NAME", "TARGET", "TENANT", "CLIENT", "AUTH", "APPS")]
    rows += [_line(name, section) for name, section in sorted(found.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return ExitCode.OK


def _line(name: str, section: Mapping[str, Any]) -> tuple[str, str, str, str, str, str]:
    if section.get("target") == "local":
        return name, "local (the built-in emulator)", "-", "-", "-", "-"
    target = _without_user_info(str(section.get("target") or "https://graph.microsoft.com/v1.0 (default)"))
    apps = section.get("apps", [])
    return (name, target, section.get("tenant_id") or "(missing)", _client(section), _auth(section),
            str(1 + len(apps)))


# Where a sign-in method needs no client_id, what it uses without one (batch/config.py).
_NO_CLIENT = {
    "device-code": f"{GRAPH_COMMAND_LINE_TOOLS} (default: Microsoft Graph Command Line Tools)",
    "managed-identity": "(system-assigned identity)",
    "azure-cli": "(the Azure CLI's own)",
}


def _client(section: Mapping[str, Any]) -> str:
    """The client id a profile signs in with: its own, or what its method uses without one."""
    if section.get("client_id"):
        return str(section["client_id"])
    return _NO_CLIENT.get(str(section.get("auth") or ""), "(missing)")


def _auth(app: Mapping[str, Any]) -> str:
    """How an app signs in, without its secret."""
    method = app.get("auth")
    if method and method not in ("secret", "certificate"):
        return str(method) + (f" (client {app['client_id']})" if method == "managed-identity" and app.get("client_id")
                              else "")
    if app.get("client_secret_env") and method != "certificate":
        name = app["client_secret_env"]
        return f"secret from ${name}" + ("" if os.environ.get(name) else " (not set)")
    if app.get("client_secret"):
        return "secret in the file"
    if app.get("certificate_path"):
        return "certificate" + (" (x5c)" if app.get("send_x5c") else "")
    return "(no credential)"


def _show(section: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every key of a profile with its value (secrets masked), unset ones said so."""
    lines = [(key, _value(key, section) if key != "client_id" or section.get("client_id") else
              _client(section).replace("(missing)", "(not set)")) for key in PROFILE_KEYS if key != "apps"]
    apps = section.get("apps", [])
    lines.append(("apps", f"{len(apps)} more app(s) in [[...apps]] tables (an app pool)" if apps else "(none)"))
    for index, app in enumerate(apps, start=1):
        lines += [(f"apps #{index} {key}", _value(key, app)) for key in APP_KEYS if key in app]
    return lines


_UNSET = {
    "target": "(not set: https://graph.microsoft.com/v1.0)",
    "authority_host": "(not set: https://login.microsoftonline.com)",
    "ca_file": "(not set: the default trusted CAs)",
    "domain": "(not set: read from the tenant)",
    "auth": "(not set: what the credentials imply)",
}


def _value(key: str, table: Mapping[str, Any]) -> str:
    value = table.get(key)
    if value is None or value == "":
        return _UNSET.get(key, "(not set)")
    if key == "client_secret":
        return f"{MASK} (in the file)"
    if key in ("client_secret_env", "certificate_password_env"):
        what = "secret" if key == "client_secret_env" else "password"
        return f"{value} (the {what} comes from ${value}: " + ("set)" if os.environ.get(value) else "not set)")
    return _without_user_info(str(value))


def _without_user_info(text: str) -> str:
    """A URL with a user (and password) in it, shown with them masked: a run refuses such a
    URL and never echoes it, and neither does a listing of profiles."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return text
    return f"{scheme}://{MASK}@{authority.rpartition('@')[2]}{slash}{path}"


__all__ = ["profiles"]
