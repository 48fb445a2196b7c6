"""Where entra-batch keeps its files and which tenant a run talks to. The environment and
the profiles file are read here and nowhere else (STYLE.md lesson 1).

Targets (PRODUCT.md, "Targets"):
- `local`: the built-in emulator, in process, its directory under ENTRA_BATCH_HOME; the
  default when no tenant is configured (announced on stderr by the CLI);
- a URL (`--target http://127.0.0.1:8765/v1.0`, or ENTRA_BATCH_TARGET as printed by
  `entra-batch emulator`), with the token endpoint under AZURE_AUTHORITY_HOST;
- a tenant: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or
  AZURE_CLIENT_CERTIFICATE_PATH), Graph at graph.microsoft.com;
- a named profile (`--profile NAME`) in ENTRA_BATCH_HOME/profiles.toml, whose keys
  (`batch.profiles.PROFILE_KEYS`) replace the environment's; `--target` with `--profile` is
  a usage error (a profile names its own target), and so is a key a profile may not hold.

Each `Target` carries its `Sources`: where each setting came from, as the administrator set
it, so that an authentication failure names what to fix (`batch.auth.errors`).

What is refused here, before anything is sent (issue 15), each as a one-line `ConfigError`
naming the setting: a Graph URL or authority host that is plain `http://` to anything but
this machine (the client secret, the bearer token and every password would cross the network
in clear), a URL holding `user:password@` (it would be echoed and journalled), a scheme other
than http(s); a profiles file that another user owns or may write (it could repoint the
target and collect the secret; ssh refuses its config on the same terms), or that holds an
inline `client_secret` while others may read it; a CA file that cannot be used; a home
directory that others may write.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from batch.errors import ConfigError
from batch.profiles import (
    APP_KEYS,
    PROFILE_KEYS,
    check_known,
    check_owner_and_mode,
    check_types,
    read_profiles,
    type_name,
)

GRAPH_URL = "https://graph.microsoft.com/v1.0"
AUTHORITY_HOST = "https://login.microsoftonline.com"
LOCAL_GRAPH_URL = "http://emulator.local/v1.0"
"""The built-in emulator's Graph base. It is never reached over the network: the CLI pairs a
`local` target with the emulator's in-process transport (`batch.cli.local`), and
`batch.run.connection` refuses plain http to a host other than loopback when no in-process
transport is given. That is why this constant, and only it, skips `checked_url`: the check
applies to what a user's settings name, the one way a URL reaches a socket."""

CERTIFICATE_MAX_BYTES = 4 << 20
"""A PEM key and certificate chain is a few KB, a PFX a few more: 4 MiB leaves room for long
chains and stops a wrong path (`/dev/zero` once grew the process to 23.9 GB) from filling
memory. `batch.auth.certificate` reads the file under the same cap."""


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    """`ENTRA_BATCH_HOME`, or the platform's per-user data directory (the path only; see
    `private_home` for the directory itself)."""
    env = os.environ if env is None else env
    configured = env.get("ENTRA_BATCH_HOME")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("entra-batch"))


def private_home(env: Mapping[str, str] | None = None) -> Path:
    """The home directory, created 0700 when missing (before anything is written in it: it
    holds the emulator's database, with an app secret and a token-signing key), or checked
    when it exists: a directory of ours that no one else may write (anyone who may write it
    could swap profiles.toml or the emulator's database under us)."""
    env = os.environ if env is None else env
    setting = "ENTRA_BATCH_HOME" if env.get("ENTRA_BATCH_HOME") else "the entra-batch data directory"
    return private_dir(home_dir(env), setting)


def private_dir(path: Path, setting: str) -> Path:
    """`path` made a directory only we may enter (0700) when it is missing; when it exists, a
    directory owned by us (or root) that group and others may not write, else `ConfigError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)  # the umask can only take bits away: never wider than 0700
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"Cannot create {setting} {path}: {exc.strerror or exc}. "
                          "Set ENTRA_BATCH_HOME to a directory you can write.") from None
    else:
        os.chmod(path, 0o700)  # and a umask such as 0277 cannot leave it unusable
        return path
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"Cannot use {setting} {path}: {exc.strerror or exc}.") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{setting} {path} is not a directory. Set ENTRA_BATCH_HOME to a directory of yours.")
    check_owner_and_mode(path, info, setting, remedy=f"chmod 700 {path}")
    return path


REPLICATION_WAITS_VARIABLE = "ENTRA_BATCH_REPLICATION_WAITS"
MAX_REPLICATION_WAIT = 600.0


def replication_waits(env: Mapping[str, str] | None = None) -> tuple[float, ...] | None:
    """ENTRA_BATCH_REPLICATION_WAITS: the pauses, in seconds, before each new look at a
    customer that Graph's replication delay may hide (batch/verbs/lag.py), for example
    `0.5,1,2,4,8` (the default, 15.5 s in all); a tenant that replicates slowly may want
    longer. None when unset; a ConfigError naming the variable when it is not 1 to 10
    numbers between 0 and 600."""
    text = (os.environ if env is None else env).get(REPLICATION_WAITS_VARIABLE, "").strip()
    if not text:
        return None
    try:
        waits = tuple(float(part) for part in text.split(","))
    except ValueError:
        waits = ()
    if not 1 <= len(waits) <= 10 or not all(0.0 <= w <= MAX_REPLICATION_WAIT for w in waits):  # NaN fails too
        raise ConfigError(f"{REPLICATION_WAITS_VARIABLE} must be 1 to 10 comma-separated numbers of seconds "
                          f"between 0 and {MAX_REPLICATION_WAIT:.0f} (for example 0.5,1,2,4,8), got {text!r}")
    return waits


def emulator_db_path(env: Mapping[str, str] | None = None) -> Path:
    """The local emulator's database, in the home directory (created private first)."""
    return private_home(env) / "emulator.db"


def emulator_tls_dir(env: Mapping[str, str] | None = None) -> Path:
    return private_home(env) / "emulator-tls"


@dataclass(frozen=True)
class Sources:
    """Where a target's settings came from, named as the administrator set them, for the
    messages that tell what to fix (`batch.auth.errors`): an environment variable
    (`AZURE_CLIENT_SECRET`), or a profile and its key (`profile 'staging' (ca_file)`)."""

    tenant_id: str = "AZURE_TENANT_ID"
    client_id: str = "AZURE_CLIENT_ID"
    client_secret: str = "AZURE_CLIENT_SECRET"
    certificate_path: str = "AZURE_CLIENT_CERTIFICATE_PATH"
    certificate_password: str = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
    federated_token_file: str = "AZURE_FEDERATED_TOKEN_FILE"
    auth: str = ""             # where the sign-in method was chosen ("--auth", "ENTRA_BATCH_AUTH", ...); "" = inferred
    authority_host: str = ""   # "" = the default, login.microsoftonline.com
    ca_file: str = ""          # the setting that named `Target.ca_file`; "" = none was given
    fallback_ca: str = ""      # without a ca_file: the CA bundle requests (msal) reads on its own, "NAME (path)"
    profile: str = ""          # the profile's name; "" = the environment

    @classmethod
    def of_profile(cls, name: str, section: Mapping[str, object], *, app: int | None = None) -> Sources:
        """The settings of profile `name` (of its `app`-th [[NAME.apps]] table for an app pool)."""
        def key(setting: str) -> str:
            inner = f"apps #{app} {setting}" if app else setting
            return f"profile '{name}' ({inner})"

        secret_env = section.get("client_secret_env")
        where = f"apps #{app} of profile '{name}'" if app else f"profile '{name}'"
        secret = f"${secret_env} (named by client_secret_env of {where})" if secret_env else key("client_secret")
        password_env = section.get("certificate_password_env")
        password = f"${password_env} (named by certificate_password_env of {where})" if password_env \
            else key("certificate_password_env")
        return cls(tenant_id=key("tenant_id"), client_id=key("client_id"), client_secret=secret,
                   certificate_path=key("certificate_path"), certificate_password=password,
                   federated_token_file=key("federated_token_file"), profile=name)

    @property
    def used(self) -> str:
        """What the settings came from, in a few words."""
        return f"profile '{self.profile}'" if self.profile else "the environment"

    def method(self, method: str) -> str:
        """The sign-in method as it was chosen: `--auth device-code`, `device-code (ENTRA_BATCH_AUTH)`,
        `device-code (profile 'x' (auth))`, or `secret (from the credentials given)`."""
        if self.auth == "--auth":
            return f"--auth {method}"
        return f"{method} ({self.auth or 'from the credentials given'})"


ENVIRONMENT = Sources()
"""The settings of the environment's variables (AZURE_TENANT_ID, ...): the default `Sources`."""


@dataclass(frozen=True)
class AppCredential:
    """Another app registration of the same tenant, for an app pool (each app has its own
    write quota; together they stay under the tenant's)."""

    client_id: str
    client_secret: str | None = None
    certificate_path: Path | None = None
    sources: Sources = ENVIRONMENT  # where its client_id and secret were set

    def __repr__(self) -> str:  # never show the secret
        return f"AppCredential(client_id={self.client_id!r})"


AUTH_METHODS = {
    "secret": "the app registration's client secret (AZURE_CLIENT_SECRET, or a profile's client_secret_env)",
    "certificate": "the app registration's certificate: a PEM file, or a PFX/PKCS#12 file and its password "
                   "(AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_CERTIFICATE_PASSWORD)",
    "device-code": "you, the signed-in administrator (delegated permissions and your directory role): a code to "
                   "enter at the sign-in page, asked once, then kept in your cache directory",
    "azure-cli": "the account of `az login` for the tenant (delegated, as the Azure CLI signed you in)",
    "managed-identity": "the managed identity of the Azure VM, App Service or Container App this runs on "
                        "(AZURE_CLIENT_ID names a user-assigned one)",
    "workload-identity": "workload identity federation: the token in AZURE_FEDERATED_TOKEN_FILE (GitHub Actions, "
                         "Kubernetes) exchanged for the app registration's (AZURE_CLIENT_ID)",
}
"""The sign-in methods (`--auth`, ENTRA_BATCH_AUTH, a profile's `auth`), and what each signs in as."""

DELEGATED_METHODS = frozenset({"device-code", "azure-cli"})
"""The methods that sign in as a person: their tokens carry `scp` and `wids`, not `roles`."""

GRAPH_COMMAND_LINE_TOOLS = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
"""The client id of Microsoft Graph Command Line Tools, the public client that Graph
PowerShell's Connect-MgGraph signs administrators in with: device code's default app."""

AUTH_VARIABLE = "ENTRA_BATCH_AUTH"


@dataclass(frozen=True)
class Target:
    kind: str                        # "local", "url" or "tenant"
    graph_url: str
    tenant_id: str | None = None
    client_id: str | None = None     # the app registration (device code: the public client; managed identity:
    #                                  a user-assigned identity's client id, None for the system-assigned one)
    client_secret: str | None = None
    certificate_path: Path | None = None
    auth: str = "secret"             # the sign-in method, one of AUTH_METHODS
    certificate_password: str | None = None  # a PFX/PKCS#12 file's (or an encrypted PEM key's) password
    send_certificate_chain: bool = False     # send x5c (subject name + issuer authentication)
    federated_token_file: Path | None = None  # workload identity: the file holding the federated token
    token_cache: Path | None = None  # device code: the directory of its token cache (0700)
    device_code_prompt: Callable[[str], None] | None = field(default=None, compare=False)
    """Device code: who is told the code and URL (the CLI prints them on stderr, only when a
    person can act on them: a terminal); None = nobody can, so device code without a cached
    account fails at once instead of waiting for an approval that will not come."""
    authority_host: str = AUTHORITY_HOST
    ca_file: Path | None = None      # trust for https targets with a private CA (the emulator's --tls)
    domain: str | None = None        # the tenant's default domain: issuer of local identities
    extensions_app_id: str | None = None
    extra_apps: tuple[AppCredential, ...] = ()  # an app pool: more registrations of the same tenant
    sources: Sources = ENVIRONMENT   # where each setting came from, for messages

    @property
    def label(self) -> str:
        return "local" if self.kind == "local" else (self.tenant_id or self.graph_url)

    @property
    def delegated(self) -> bool:
        """True when the method signs in as a person (device code, Azure CLI)."""
        return self.auth in DELEGATED_METHODS

    def __repr__(self) -> str:  # never show the secret
        return f"Target(kind={self.kind!r}, graph_url={self.graph_url!r}, tenant_id={self.tenant_id!r}, " \
               f"auth={self.auth!r})"


# --- URLs -----------------------------------------------------------------------------------

def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1: the hosts plain http may go to (the traffic stays on
    this machine). Spellings that only some resolvers read as loopback (`127.1`, `0x7f.1`,
    `localhost.`) are not accepted: what is checked must be what is connected to."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return address == ipaddress.IPv6Address("::1")
    return address in ipaddress.IPv4Network("127.0.0.0/8")


def plain_http_to_remote(url: str) -> bool:
    """True when `url` is plain http to a host other than loopback (secrets would travel in clear)."""
    parts = urlsplit(url)
    return parts.scheme.lower() != "https" and not (parts.scheme.lower() == "http"
                                                    and is_loopback_host(parts.hostname))


def checked_url(url: str, setting: str, *, example: str) -> str:
    """`url` without its trailing slash, or `ConfigError` naming `setting`: http(s) only,
    no credentials, no query or fragment, and plain http only to loopback."""
    if "@" in url:
        # Never echo it: what comes before the @ is a user name and, likely, a password.
        raise ConfigError(f"{setting} holds a user name or password (user:password@ before the host); remove it. "
                          "entra-batch never takes credentials from a URL: the app's secret comes from "
                          "AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) or a profile's client_secret_env.")
    shown = url if url.isprintable() and len(url) <= 200 else repr(url[:200])
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{setting} is not a valid URL ({shown}); give one such as {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{setting} must be an https URL such as {example}, not {shown}")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"{setting} must be a base URL without '?' or '#', such as {example}, not {shown}")
    if scheme == "http" and not is_loopback_host(parts.hostname):
        host = parts.hostname + (f":{port}" if port else "")
        raise ConfigError(
            f"{setting} is plain http to {host}, which would send the client secret, the access token and every "
            f"password unencrypted: use https://{host}{parts.path.rstrip('/')} (plain http is only for an emulator "
            "on this machine: localhost, 127.0.0.0/8 or ::1)")
    return url.rstrip("/")


def _graph_url(url: str, setting: str) -> str:
    if "@" not in url and not url.lower().startswith(("http://", "https://")):
        raise ConfigError(f"{setting} is 'local' or a Graph URL such as {GRAPH_URL} "
                          f"(or http://127.0.0.1:8765/v1.0 for the emulator), not {url[:200]!r}")
    return checked_url(url, setting, example=GRAPH_URL)


def _authority(url: str, setting: str) -> str:
    return checked_url(url, setting, example=AUTHORITY_HOST)


# --- targets --------------------------------------------------------------------------------

def resolve_target(target: str | None, profile: str | None, *, domain: str | None = None,
                   extensions_app_id: str | None = None, auth: str | None = None,
                   env: Mapping[str, str] | None = None) -> Target:
    """The target of a command. The sign-in method is, in this order: `auth` (the `--auth`
    flag); the profile's `auth` key with `--profile`, else ENTRA_BATCH_AUTH; else the
    credential that is given (a client secret, then a certificate, then a federated token
    file, as azure-identity's EnvironmentCredential and DefaultAzureCredential look)."""
    env = os.environ if env is None else env
    if profile and target:
        raise ConfigError(f"--target and --profile both name the tenant to talk to: give one of them (profile "
                          f"'{profile}' talks to its own target key; for another Graph URL, add a profile with that "
                          "target to profiles.toml)")
    flag = _chosen_auth(auth, "--auth")
    chosen = flag or (None if profile else _chosen_auth(env.get(AUTH_VARIABLE) or None, AUTH_VARIABLE))
    if profile:
        resolved = _profile(profile, env, flag)
    elif target == "local" or (target is None and not env.get("ENTRA_BATCH_TARGET") and not env.get("AZURE_TENANT_ID")
                               and chosen is None):
        if flag is not None and flag[0] != "secret":
            raise ConfigError(f"--auth {flag[0]} signs in to a tenant or an emulator URL; the built-in emulator "
                              "(--target local) signs in with its own app. Give --target URL, or set "
                              "AZURE_TENANT_ID for a tenant")
        resolved = Target("local", LOCAL_GRAPH_URL)
    else:
        if target:
            url = _graph_url(target, "--target")
        elif env.get("ENTRA_BATCH_TARGET"):
            url = _graph_url(env["ENTRA_BATCH_TARGET"], "ENTRA_BATCH_TARGET")
        else:
            url = GRAPH_URL
        resolved = _from_env(Target("url" if url != GRAPH_URL else "tenant", url), env, chosen)
    if resolved.kind != "local":
        # httpx reads SSL_CERT_FILE, and requests (under msal) REQUESTS_CA_BUNDLE, on their own:
        # a wrong path would otherwise surface as a traceback, or as a token endpoint "down" for 300 s.
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            if env.get(name):
                _ca_file(env[name], name, directory_ok=name == "REQUESTS_CA_BUNDLE")
        if resolved.ca_file is None:
            resolved = replace(resolved, sources=replace(resolved.sources, fallback_ca=_fallback_ca(env)))
        if resolved.auth == "device-code":
            resolved = replace(resolved, token_cache=token_cache_dir(env))
        if resolved.auth == "managed-identity":
            _identity_endpoint(env)
    return replace(
        resolved,
        domain=_well_formed(domain, "--domain", DOMAIN)
        or _well_formed(resolved.domain, f"profile '{profile}' (domain)" if profile else "the domain", DOMAIN)
        or _well_formed(env.get("ENTRA_BATCH_DOMAIN"), "ENTRA_BATCH_DOMAIN", DOMAIN) or None,
        extensions_app_id=_well_formed(extensions_app_id, "--extensions-app-id", APP_ID)
        or _well_formed(resolved.extensions_app_id, f"profile '{profile}' (extensions_app_id)" if profile
                        else "the extensions app id", APP_ID)
        or _well_formed(env.get("ENTRA_BATCH_EXTENSIONS_APP_ID"), "ENTRA_BATCH_EXTENSIONS_APP_ID", APP_ID) or None,
    )


_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


DOMAIN, APP_ID = "domain", "app id"


def _well_formed(value: str | None, setting: str, kind: str) -> str | None:
    """A domain or extensions app id (`kind`) as given (None: not given), or the usage error
    naming the setting when it cannot be one: a domain is a DNS name (contoso.onmicrosoft.com),
    an extensions app id a GUID (an app's appId, with or without hyphens)."""
    if not value:
        return None
    app_id = kind == APP_ID
    if (GUID if app_id else _DOMAIN).match(value):
        return value
    shown = value if value.isprintable() and len(value) <= 80 else repr(value[:80])
    what = "an app id (a GUID such as 0e95a68c-9e07-4312-9887-d81aef0cd073: the appId of the tenant's " \
        "b2c-extensions-app)" if app_id else "a domain name (such as contoso.onmicrosoft.com)"
    raise ConfigError(f"{setting} is {shown!r}, which is not {what}")


IMDS_HOST = "169.254.169.254"
"""The Azure instance metadata service, which answers managed identity tokens on an Azure VM
over plain http by design (a link-local address that never leaves the host)."""


def _identity_endpoint(env: Mapping[str, str]) -> None:
    """The managed identity endpoint that azure-identity will read from the environment:
    App Service's IDENTITY_ENDPOINT is plain http on loopback (allowed, as for the emulator);
    plain http to any other host but the metadata service would send the identity header and
    receive the token in clear, so it is refused."""
    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        url = env.get(name)
        if not url:
            continue
        if "@" in url:
            raise ConfigError(f"{name} holds a user name or password (user:password@ before the host); remove it")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ConfigError(f"{name} is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name} must be an http(s) URL, such as App Service's http://127.0.0.1:41234/msi/token")
        if plain_http_to_remote(url) and parts.hostname != IMDS_HOST:
            raise ConfigError(f"{name} is plain http to {parts.hostname}, which would send the identity header and "
                              "receive the token unencrypted: use https (plain http is only for loopback, as App "
                              f"Service's endpoint is, and for the metadata service {IMDS_HOST})")


def token_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where device code keeps its token cache: ENTRA_BATCH_CACHE, or the platform's per-user
    cache directory (the path only; `batch.auth.cache` makes it 0700 before writing in it)."""
    env = os.environ if env is None else env
    configured = env.get("ENTRA_BATCH_CACHE")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_cache_dir("entra-batch"))


def _chosen_auth(value: str | None, setting: str) -> tuple[str, str] | None:
    """A sign-in method named by `setting`, checked; None when it names none."""
    if value is None:
        return None
    method = value.strip().lower()
    if method not in AUTH_METHODS:
        shown = value if value.isprintable() and len(value) <= 40 else repr(value[:40])
        raise ConfigError(f"{setting} is {shown!r}; the sign-in methods are {', '.join(AUTH_METHODS)}")
    return method, setting


@dataclass(frozen=True)
class _Given:
    """The credentials a profile or the environment gives, before a method picks from them."""

    tenant: str | None
    client: str | None
    secret: str | None
    certificate: str | None
    password: str | None
    send_chain: bool
    federated_file: str | None
    sources: Sources
    where: str  # "the environment" or "profile [NAME] in PATH"


def _flag(value: object, setting: str) -> bool:
    """A yes/no setting: true/false in a profile, or 1/0, true/false, yes/no in a variable.
    (azure-identity takes any non-empty value of AZURE_CLIENT_SEND_CERTIFICATE_CHAIN as yes,
    "false" included; here "false" means no, and anything else unclear is refused.)"""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{setting} must be true or false, not {str(value)[:40]!r}")


def _method(chosen: tuple[str, str] | None, given: _Given) -> tuple[str, str]:
    """The sign-in method: the one chosen, else the one the given credentials imply."""
    if chosen is not None:
        return chosen
    if given.secret:
        return "secret", ""
    if given.certificate:
        return "certificate", ""
    if given.federated_file:
        return "workload-identity", ""
    return "secret", ""


def _credentials(chosen: tuple[str, str] | None, given: _Given, missing: Callable[[str, str], ConfigError]) -> dict[str, Any]:
    """The `Target` fields of the sign-in method, each needed setting checked; `missing(method,
    settings)` is the error naming what is not set."""
    method, setting = _method(chosen, given)
    src = given.sources
    fields: dict[str, Any] = {"auth": method, "tenant_id": given.tenant, "client_id": given.client,
                              "sources": replace(src, auth=setting)}
    if not given.tenant:
        raise missing(method, src.tenant_id)
    if method == "secret":
        if not given.client or not given.secret:
            raise missing(method, " and ".join(s for s, v in ((src.client_id, given.client),
                                                               (src.client_secret, given.secret)) if not v))
        fields["client_secret"] = given.secret
    elif method == "certificate":
        if not given.client or not given.certificate:
            raise missing(method, " and ".join(s for s, v in ((src.client_id, given.client),
                                                               (src.certificate_path, given.certificate)) if not v))
        fields.update(certificate_path=_certificate(given.certificate, src.certificate_path),
                      certificate_password=given.password, send_certificate_chain=given.send_chain)
    elif method == "workload-identity":
        if not given.client or not given.federated_file:
            raise missing(method, " and ".join(s for s, v in ((src.client_id, given.client),
                                                               (src.federated_token_file, given.federated_file))
                                               if not v))
        fields["federated_token_file"] = _token_file(given.federated_file, src.federated_token_file)
    elif method == "device-code":
        fields["client_id"] = given.client or GRAPH_COMMAND_LINE_TOOLS
    elif method == "azure-cli":
        fields["client_id"] = None  # the Azure CLI's own app signs in; az says which
    return fields


def _token_file(value: str, setting: str) -> Path:
    """A federated token file that exists (it is read again for each token: Kubernetes
    rotates it)."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"{setting} names {path}, which is not a readable file: it must name the file that holds "
                          "the federated token (GitHub Actions' OIDC token, Kubernetes' projected service account "
                          "token)")
    return path


def _from_env(target: Target, env: Mapping[str, str], chosen: tuple[str, str] | None = None) -> Target:
    given = _Given(tenant=env.get("AZURE_TENANT_ID") or None, client=env.get("AZURE_CLIENT_ID") or None,
                   secret=env.get("AZURE_CLIENT_SECRET") or None,
                   certificate=env.get("AZURE_CLIENT_CERTIFICATE_PATH") or None,
                   password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
                   send_chain=_flag(env.get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"), "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"),
                   federated_file=env.get("AZURE_FEDERATED_TOKEN_FILE") or None, sources=ENVIRONMENT,
                   where="the environment")

    def missing(method: str, settings: str) -> ConfigError:
        if chosen is None:
            return ConfigError(
                f"{target.graph_url} needs credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
                "(or AZURE_CLIENT_CERTIFICATE_PATH), or sign in another way with --auth METHOD "
                f"({', '.join(AUTH_METHODS)}), or use --profile NAME, or --target local for the built-in emulator")
        return ConfigError(f"{chosen[1]} {method} needs {settings}: set it (the sign-in method {method} is "
                           f"{AUTH_METHODS[method]})")

    fields = _credentials(chosen, given, missing)
    authority, authority_setting = AUTHORITY_HOST, ""
    if env.get("AZURE_AUTHORITY_HOST"):
        authority, authority_setting = _authority(env["AZURE_AUTHORITY_HOST"], "AZURE_AUTHORITY_HOST"), \
            "AZURE_AUTHORITY_HOST"
    ca = env.get("SSL_CERT_FILE") if target.kind == "url" else None
    fields["sources"] = replace(fields["sources"], authority_host=authority_setting, ca_file="SSL_CERT_FILE" if ca else "")
    return replace(target, authority_host=authority, ca_file=Path(ca) if ca else None, **fields)


def _fallback_ca(env: Mapping[str, str]) -> str:
    """The CA bundle that requests (under msal) trusts on its own when no CA file is given."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if env.get(name):
            return f"{name} ({env[name]})"
    return ""


def _certificate(value: str, setting: str) -> Path:
    """A certificate file worth reading: a regular file of at most `CERTIFICATE_MAX_BYTES`,
    checked here so that a wrong path is said before a run folder is made (the reader checks
    the open file again)."""
    path = Path(value).expanduser()
    hint = "it must name a PEM file with the private key and the certificate, or a PFX/PKCS#12 file"
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{setting} names {path}, which cannot be read ({exc.strerror or exc}): {hint}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, a FIFO or a socket)"
        raise ConfigError(f"{setting} names {path}, which is {kind}: {hint}")
    if info.st_size > CERTIFICATE_MAX_BYTES:
        raise ConfigError(f"{setting} names {path}, which is {info.st_size:,} bytes, more than a certificate file can be "
                          f"({CERTIFICATE_MAX_BYTES >> 20} MiB): {hint}")
    return path


def _ca_file(value: str, setting: str, *, directory_ok: bool = False) -> Path:
    """A CA bundle that TLS can load, or `ConfigError` naming `setting`."""
    path = Path(value).expanduser()
    remedy = "point it at a PEM file of trusted CA certificates, or unset it"
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{setting} names {path}, which cannot be read ({exc.strerror or exc}): {remedy}") from None
    if directory_ok and stat.S_ISDIR(info.st_mode):
        return path
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{setting} names {path}, which is not a regular file: {remedy}")
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError) \
            else "no PEM certificate in it"
        raise ConfigError(f"{setting} names {path}, which TLS cannot use ({reason}): {remedy}") from None
    return path


# --- profiles -------------------------------------------------------------------------------

def profiles_file(env: Mapping[str, str] | None = None) -> Path:
    """ENTRA_BATCH_HOME/profiles.toml (the path only)."""
    return home_dir(os.environ if env is None else env) / "profiles.toml"


def profile_tenant_names(name: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """A profile's `domain` and `extensions_app_id`, read without its credentials (`validate`,
    which sends nothing, needs no secret to check rows as a run with that profile would).
    `ConfigError` when the file or the profile cannot be used at all."""
    _, section = _profile_section(name, env)
    domain, app_id = section.get("domain"), section.get("extensions_app_id")
    return (domain if isinstance(domain, str) else None), (app_id if isinstance(app_id, str) else None)


def load_profiles(env: Mapping[str, str] | None = None) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The profiles file's path and its profiles (an empty dict when there is no file), each
    checked as a run would check it before using it (`check_profile`): the `entra-batch
    profiles` command shows what a run would accept."""
    env = os.environ if env is None else env
    path = profiles_file(env)
    if not path.exists() and not path.is_symlink():
        return path, {}
    private_dir(path.parent, "ENTRA_BATCH_HOME" if env.get("ENTRA_BATCH_HOME") else "the entra-batch data directory")
    profiles = {name: section for name, section in read_profiles(path).items() if isinstance(section, dict)}
    for name, section in profiles.items():
        check_profile(name, section, path)
    return path, profiles


def check_profile(name: str, section: Mapping[str, Any], path: Path) -> None:
    """A profile's keys: only known ones (a misspelt key would otherwise be ignored, and the
    run go elsewhere than meant), strings where strings are expected, apps a list of tables
    of known keys."""
    where = f"profile [{name}] in {path}"
    check_known(section, PROFILE_KEYS, where)
    check_types(section, tuple(k for k in PROFILE_KEYS if k != "apps"), where)
    apps = section.get("apps", [])
    if not isinstance(apps, list):
        raise ConfigError(f"{where}: apps must be a list of tables ([[{name}.apps]] sections), "
                          f"not {type_name(apps)}")
    for index, app in enumerate(apps, start=1):
        app_where = f"profile [{name}], app {index} of its [[{name}.apps]] in {path}"
        if not isinstance(app, dict):
            raise ConfigError(f"{app_where} must be a table ([[{name}.apps]] with client_id = \"...\"), "
                              f"not {type_name(app)}")
        check_known(app, APP_KEYS, app_where)
        check_types(app, tuple(APP_KEYS), app_where)


def _profile_section(name: str, env: Mapping[str, str] | None) -> tuple[Path, dict[str, Any]]:
    """The profiles file's path and profile `name`'s table; `ConfigError` naming the file, or
    the profiles it holds, when there is no such profile."""
    path, profiles = load_profiles(env)
    if not profiles and not path.exists():
        raise ConfigError(f"no profiles file at {path}; create it with a [{name}] table "
                          "(tenant_id, client_id, client_secret_env or certificate_path, domain)")
    section = profiles.get(name)
    if section is None:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile [{name}] in {path} (profiles: {known})")
    return path, section


def _profile(name: str, env: Mapping[str, str], flag: tuple[str, str] | None = None) -> Target:
    path, section = _profile_section(name, env)
    where = f"profile [{name}] in {path}"
    if section.get("target") == "local":
        if flag is not None and flag[0] != "secret":
            raise ConfigError(f"--auth {flag[0]} signs in to a tenant or an emulator URL; {where} is the built-in "
                              "emulator (target = \"local\"), which signs in with its own app")
        return Target("local", LOCAL_GRAPH_URL, domain=section.get("domain"),
                      extensions_app_id=section.get("extensions_app_id"))
    sources = Sources.of_profile(name, section)
    chosen = flag or _chosen_auth(section.get("auth") or None, f"profile '{name}' (auth)")
    secret = section.get("client_secret")
    password = None
    if section.get("certificate_password_env"):
        password = env.get(section["certificate_password_env"])
        if not password:
            raise ConfigError(f"profile [{name}] takes its certificate's password from "
                              f"${section['certificate_password_env']}, which is not set")
    if section.get("client_secret_env") and (chosen is None or chosen[0] == "secret"):
        secret = env.get(section["client_secret_env"])
        if not secret:
            raise ConfigError(f"profile [{name}] takes its secret from ${section['client_secret_env']}, which is not set")
    given = _Given(tenant=section.get("tenant_id") or None, client=section.get("client_id") or None, secret=secret,
                   certificate=section.get("certificate_path") or None, password=password,
                   send_chain=_flag(section.get("send_x5c"), f"the send_x5c of {where}"),
                   federated_file=section.get("federated_token_file") or None, sources=sources, where=where)

    def missing(method: str, settings: str) -> ConfigError:
        if not given.tenant:
            return ConfigError(f"{where} has no tenant_id")
        if chosen is None:
            if not given.client:
                return ConfigError(f"{where} has no client_id")
            return ConfigError(f"profile [{name}] needs client_secret_env (or client_secret) or certificate_path, "
                               f"or auth = \"METHOD\" ({', '.join(AUTH_METHODS)})")
        return ConfigError(f"{where} signs in with {method} ({chosen[1]}), which needs {settings}")

    fields = _credentials(chosen, given, missing)
    url = _graph_url(section["target"], f"the target of {where}") if section.get("target") else GRAPH_URL
    authority = AUTHORITY_HOST
    if section.get("authority_host"):
        authority = _authority(section["authority_host"], f"the authority_host of {where}")
        fields["sources"] = replace(fields["sources"], authority_host=f"profile '{name}' (authority_host)")
    ca_file = None
    if section.get("ca_file"):
        ca_file = _ca_file(section["ca_file"], f"the ca_file of {where}")
        fields["sources"] = replace(fields["sources"], ca_file=f"profile '{name}' (ca_file)")
    extra = tuple(_pool_app(name, i, app, env, fields["sources"])
                  for i, app in enumerate(section.get("apps", []), start=1))
    if extra and fields["auth"] not in ("secret", "certificate"):
        raise ConfigError(f"{where} lists [[{name}.apps]] (an app pool), which sign in with a secret or a "
                          f"certificate; its own sign-in method is {fields['auth']}. Remove the apps, or sign in "
                          "with secret or certificate")
    return Target(
        kind="tenant" if url == GRAPH_URL else "url", graph_url=url,
        authority_host=authority, ca_file=ca_file,
        domain=section.get("domain"), extensions_app_id=section.get("extensions_app_id"), extra_apps=extra, **fields,
    )


def _pool_app(profile: str, index: int, app: Mapping[str, Any], env: Mapping[str, str],
              sources: Sources) -> AppCredential:
    """`[[NAME.apps]]` tables: client_id and client_secret_env (or certificate_path)."""
    where = f"profile [{profile}], app {index} of its [[{profile}.apps]]"
    if not app.get("client_id"):
        raise ConfigError(f"{where} needs a client_id")
    secret = app.get("client_secret")
    if app.get("client_secret_env"):
        secret = env.get(app["client_secret_env"])
        if not secret:
            raise ConfigError(f"{where} takes its secret from ${app['client_secret_env']}, which is not set")
    certificate = app.get("certificate_path")
    if not secret and not certificate:
        raise ConfigError(f"{where} needs client_secret_env (or client_secret) or certificate_path")
    return AppCredential(str(app["client_id"]), secret,
                         _certificate(certificate, f"the certificate_path of {where}") if certificate else None,
                         _app_sources(sources, Sources.of_profile(profile, app, app=index)))


def _app_sources(profile: Sources, app: Sources) -> Sources:
    """A pool app's settings: its own id and credential, the profile's tenant, hosts and CA."""
    return replace(profile, client_id=app.client_id, client_secret=app.client_secret,
                   certificate_path=app.certificate_path)
