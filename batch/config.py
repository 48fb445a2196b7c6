"""Where entra-batch keeps its files and which tenant a run talks to. The environment and
the profiles file are read here and nowhere else (STYLE.md lesson 1).

Targets (PRODUCT.md, "Targets"):
- `local`: the built-in emulator, in process, its directory under ENTRA_BATCH_HOME; the
  default when no tenant is configured (announced on stderr by the CLI);
- a URL (`--target http://127.0.0.1:8765/v1.0`, or ENTRA_BATCH_TARGET as printed by
  `entra-batch emulator`), with the token endpoint under AZURE_AUTHORITY_HOST;
- a tenant: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or
  AZURE_CLIENT_CERTIFICATE_PATH), Graph at graph.microsoft.com;
- a named profile (`--profile NAME`) in ENTRA_BATCH_HOME/profiles.toml.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from batch.errors import ConfigError

GRAPH_URL = "https://graph.microsoft.com/v1.0"
AUTHORITY_HOST = "https://login.microsoftonline.com"


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    """`ENTRA_BATCH_HOME`, or the platform's per-user data directory."""
    env = os.environ if env is None else env
    configured = env.get("ENTRA_BATCH_HOME")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("entra-batch"))


def emulator_db_path(env: Mapping[str, str] | None = None) -> Path:
    return home_dir(env) / "emulator.db"


def emulator_tls_dir(env: Mapping[str, str] | None = None) -> Path:
    return home_dir(env) / "emulator-tls"


@dataclass(frozen=True)
class AppCredential:
    """Another app registration of the same tenant, for an app pool (each app has its own
    write quota; together they stay under the tenant's)."""

    client_id: str
    client_secret: str | None = None
    certificate_path: Path | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"AppCredential(client_id={self.client_id!r})"


@dataclass(frozen=True)
class Target:
    kind: str                        # "local", "url" or "tenant"
    graph_url: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    certificate_path: Path | None = None
    authority_host: str = AUTHORITY_HOST
    ca_file: Path | None = None      # trust for https targets with a private CA (the emulator's --tls)
    domain: str | None = None        # the tenant's default domain: issuer of local identities
    extensions_app_id: str | None = None
    extra_apps: tuple[AppCredential, ...] = ()  # an app pool: more registrations of the same tenant

    @property
    def label(self) -> str:
        return "local" if self.kind == "local" else (self.tenant_id or self.graph_url)

    def __repr__(self) -> str:  # never show the secret
        return f"Target(kind={self.kind!r}, graph_url={self.graph_url!r}, tenant_id={self.tenant_id!r})"


def resolve_target(target: str | None, profile: str | None, *, domain: str | None = None,
                   extensions_app_id: str | None = None, env: Mapping[str, str] | None = None) -> Target:
    env = os.environ if env is None else env
    if profile:
        resolved = _profile(profile, env)
    elif target == "local" or (target is None and not env.get("ENTRA_BATCH_TARGET") and not env.get("AZURE_TENANT_ID")):
        resolved = Target("local", "http://emulator.local/v1.0")
    else:
        url = target or env.get("ENTRA_BATCH_TARGET") or GRAPH_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--target is 'local' or a Graph URL such as http://127.0.0.1:8765/v1.0, not {url!r}")
        resolved = _from_env(Target("url" if url != GRAPH_URL else "tenant", url.rstrip("/")), env)
    return replace(
        resolved,
        domain=domain or resolved.domain or env.get("ENTRA_BATCH_DOMAIN") or None,
        extensions_app_id=extensions_app_id or resolved.extensions_app_id or env.get("ENTRA_BATCH_EXTENSIONS_APP_ID") or None,
    )


def _from_env(target: Target, env: Mapping[str, str]) -> Target:
    tenant, client = env.get("AZURE_TENANT_ID"), env.get("AZURE_CLIENT_ID")
    secret, certificate = env.get("AZURE_CLIENT_SECRET"), env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    if not tenant or not client or not (secret or certificate):
        raise ConfigError(
            f"{target.graph_url} needs credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
            "(or AZURE_CLIENT_CERTIFICATE_PATH), or use --profile NAME, or --target local for the built-in emulator")
    ca = env.get("SSL_CERT_FILE") if target.kind == "url" else None
    return replace(target, tenant_id=tenant, client_id=client, client_secret=secret or None,
                   certificate_path=Path(certificate) if certificate else None,
                   authority_host=(env.get("AZURE_AUTHORITY_HOST") or AUTHORITY_HOST).rstrip("/"),
                   ca_file=Path(ca) if ca else None)


def _profile(name: str, env: Mapping[str, str]) -> Target:
    path = home_dir(env) / "profiles.toml"
    if not path.exists():
        raise ConfigError(f"no profiles file at {path}; create it with a [{name}] table "
                          "(tenant_id, client_id, client_secret_env or certificate_path, domain)")
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    section = profiles.get(name)
    if not isinstance(section, dict):
        known = ", ".join(sorted(k for k, v in profiles.items() if isinstance(v, dict))) or "none"
        raise ConfigError(f"no profile [{name}] in {path} (profiles: {known})")
    if section.get("target") == "local":
        return Target("local", "http://emulator.local/v1.0", domain=section.get("domain"),
                      extensions_app_id=section.get("extensions_app_id"))
    secret = section.get("client_secret")
    if section.get("client_secret_env"):
        secret = env.get(section["client_secret_env"])
        if not secret:
            raise ConfigError(f"profile [{name}] takes its secret from ${section['client_secret_env']}, which is not set")
    for key in ("tenant_id", "client_id"):
        if not section.get(key):
            raise ConfigError(f"profile [{name}] in {path} has no {key}")
    if not secret and not section.get("certificate_path"):
        raise ConfigError(f"profile [{name}] needs client_secret_env (or client_secret) or certificate_path")
    url = str(section.get("target") or GRAPH_URL).rstrip("/")
    extra = tuple(_pool_app(name, i, app, env) for i, app in enumerate(section.get("apps") or [], start=1))
    return Target(
        kind="tenant" if url == GRAPH_URL else "url", graph_url=url, tenant_id=section["tenant_id"],
        client_id=section["client_id"], client_secret=secret,
        certificate_path=Path(section["certificate_path"]).expanduser() if section.get("certificate_path") else None,
        authority_host=str(section.get("authority_host") or AUTHORITY_HOST).rstrip("/"),
        ca_file=Path(section["ca_file"]).expanduser() if section.get("ca_file") else None,
        domain=section.get("domain"), extensions_app_id=section.get("extensions_app_id"), extra_apps=extra,
    )


def _pool_app(profile: str, index: int, app: object, env: Mapping[str, str]) -> AppCredential:
    """`[[NAME.apps]]` tables: client_id and client_secret_env (or certificate_path)."""
    where = f"profile [{profile}], app {index} of its [[{profile}.apps]]"
    if not isinstance(app, dict) or not app.get("client_id"):
        raise ConfigError(f"{where} needs a client_id")
    secret = app.get("client_secret")
    if app.get("client_secret_env"):
        secret = env.get(app["client_secret_env"])
        if not secret:
            raise ConfigError(f"{where} takes its secret from ${app['client_secret_env']}, which is not set")
    certificate = app.get("certificate_path")
    if not secret and not certificate:
        raise ConfigError(f"{where} needs client_secret_env (or client_secret) or certificate_path")
    return AppCredential(str(app["client_id"]), secret, Path(certificate).expanduser() if certificate else None)
