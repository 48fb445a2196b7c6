"""Reading `profiles.toml` as ssh reads its config: a regular file of the user's (or root's),
writable by nobody else, an inline secret only in a file nobody else may read, bounded in
size, UTF-8 TOML, every value of the kind expected. `batch.config` turns a profile into a
`Target`."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batch.errors import ConfigError

PROFILES_MAX_BYTES = 1 << 20  # a profiles file is a few hundred bytes; anything this big is not one


def check_owner_and_mode(path: Path, info: os.stat_result, what: str, *, remedy: str) -> None:
    if info.st_uid not in (os.getuid(), 0):
        raise ConfigError(f"{what} {path} belongs to another user (uid {info.st_uid}); entra-batch uses only "
                          "files and directories of yours (or root's) for its settings. Use your own copy.")
    if info.st_mode & 0o022:
        raise ConfigError(f"{what} {path} may be written by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
                          f"they could change which tenant entra-batch talks to, or what it reads. Run `{remedy}`.")


def read_profiles(path: Path) -> dict[str, Any]:
    """The profiles file, parsed, after ssh's checks on its owner and mode; every way it can be
    unusable (a directory, a FIFO, not UTF-8, not TOML, too big) is a one-line `ConfigError`."""
    try:
        # O_NONBLOCK: opening a FIFO planted there must not hang; fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a profiles file; remove it or move it away") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the profiles file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{path} is a directory, not a profiles file; remove it or move it away")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file; profiles.toml must be a plain text file")
        check_owner_and_mode(path, info, "The profiles file", remedy=f"chmod 600 {path}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(PROFILES_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"Cannot read the profiles file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > PROFILES_MAX_BYTES:
        raise ConfigError(f"{path} is larger than {PROFILES_MAX_BYTES // 1024} KiB: that is not a profiles file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8") from None
    try:
        profiles = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if info.st_mode & 0o044 and _holds_inline_secret(profiles):
        raise ConfigError(
            f"{path} holds a client_secret and other users may read it (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"run `chmod 600 {path}`, or better, keep the secret out of the file (client_secret_env = \"NAME\", "
            "with the secret in $NAME)")
    return profiles


def _holds_inline_secret(profiles: Mapping[str, Any]) -> bool:
    for section in profiles.values():
        if not isinstance(section, dict):
            continue
        if section.get("client_secret"):
            return True
        apps = section.get("apps")
        if isinstance(apps, list) and any(isinstance(app, dict) and app.get("client_secret") for app in apps):
            return True
    return False


PROFILE_KEYS = {
    "target": "the Graph base URL: https://graph.microsoft.com/v1.0 (the default), an emulator's "
              "(https://127.0.0.1:8765/v1.0), or \"local\" for the built-in emulator (then no other key is needed)",
    "tenant_id": "the tenant: its id (a GUID) or its *.onmicrosoft.com domain",
    "client_id": "the app registration's application (client) id",
    "client_secret_env": "the name of the environment variable that holds the app's client secret (preferred: the "
                         "secret stays out of the file)",
    "client_secret": "the client secret itself (then the file must be readable by you only: chmod 600)",
    "certificate_path": "a PEM file with the app's private key and certificate, or a PFX/PKCS#12 file, instead of "
                        "a secret",
    "auth": "how to sign in: secret, certificate, device-code, azure-cli, managed-identity or workload-identity "
            "(default: what the profile's credential implies; --auth replaces it)",
    "certificate_password_env": "the name of the environment variable that holds the certificate's password (a "
                                "PFX/PKCS#12 file, or a PEM file with an encrypted key)",
    "send_x5c": "true to send the certificate's chain (x5c) with each token request, for an app registration that "
                "trusts its certificate by subject name and issuer (default false)",
    "federated_token_file": "workload-identity: the file holding the federated token (default "
                            "$AZURE_FEDERATED_TOKEN_FILE)",
    "authority_host": "where tokens come from (default https://login.microsoftonline.com; an emulator's "
                      "https://127.0.0.1:8765)",
    "ca_file": "a PEM file of the CA certificates to trust, for every request of the profile (the token request "
               "and Graph), such as the ca.pem that `entra-batch emulator --tls` prints",
    "domain": "the tenant's default domain, issuer of sign-in names (default: read from the tenant)",
    "extensions_app_id": "the app id of the tenant's extensions app, holding its custom attributes (found by itself when not set)",
    "apps": "[[NAME.apps]] tables: more app registrations of the same tenant (an app pool), each with client_id "
            "and client_secret_env, client_secret or certificate_path",
}
"""Every key a profile ([NAME] in profiles.toml) may hold, and what it means; any other key is
refused (`check_known`)."""

BOOLEAN_KEYS = frozenset({"send_x5c"})
"""The keys whose value is true or false (every other key is a quoted string)."""

APP_KEYS = {key: PROFILE_KEYS[key] for key in ("client_id", "client_secret_env", "client_secret", "certificate_path")}
"""Every key of an app pool's [[NAME.apps]] table."""


def check_known(table: Mapping[str, Any], known: Mapping[str, str], where: str) -> None:
    """A key that is not in `known` is refused, naming it and the known ones: a misspelt key
    (`ca-file`, `authority`) would otherwise be ignored and the run go where it was not meant to."""
    unknown = [key for key in table if key not in known]
    if unknown:
        shown = ", ".join(repr(k) if k.isprintable() and len(k) <= 60 else repr(k[:60]) for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(f"{where} has the unknown key{plural} {shown}; the known keys are "
                          f"{', '.join(known)}")


def check_types(table: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key in BOOLEAN_KEYS:
            if key in table and not isinstance(table[key], bool):
                raise ConfigError(f"{where}: {key} must be true or false (unquoted), not {type_name(table[key])}")
            continue
        if key in table and not isinstance(table[key], str):
            # The value itself is not shown: it may be a secret typed without quotes.
            raise ConfigError(f"{where}: {key} must be a quoted string, not {type_name(table[key])}")


def type_name(value: object) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a table",
             str: "a string"}
    return names.get(type(value), "a date or time")


__all__ = ["APP_KEYS", "BOOLEAN_KEYS", "PROFILES_MAX_BYTES", "PROFILE_KEYS", "check_known", "check_owner_and_mode", "check_types",
           "read_profiles", "type_name"]
