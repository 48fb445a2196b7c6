"""`entra-batch emulator`: the emulator served over HTTP(S) on loopback by uvicorn."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from .app import ConnectionDropped, EmulatorApp
from .certificates import read_certificate
from .edge import LOOPBACK_NAMES, HostPolicy
from .settings import EmulatorSettings
from .store import AZURE_CLI, GRAPH_COMMAND_LINE_TOOLS, Store
from .tls import TlsFiles, ensure_tls_files


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    db: Path | None = None
    tls_dir: Path | None = None  # None: plain HTTP
    allow_remote: bool = False
    # Workload identity federation for the default app: external issuers with their keys
    # (issuer, JWKS document), and the subjects whose tokens of those issuers it accepts.
    trusted_issuers: tuple[tuple[str, dict[str, Any]], ...] = ()
    federated_subjects: tuple[str, ...] = ()
    # A public certificate (PEM, no key) registered with the default app (--app-certificate).
    app_certificate: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535 (0 picks a free one), got {self.port!r}")


class NotLoopback(ValueError):
    pass


class BadSetting(ValueError):
    """A setting that names something the directory does not have (one line for the user)."""


def host_policy(bound_host: str, port: int) -> HostPolicy:
    """The names a server bound to `bound_host:port` answers to: the address itself and the
    loopback names, on that port only."""
    names = set(LOOPBACK_NAMES)
    if bound_host not in ("0.0.0.0", "::", ""):
        names.add(bound_host.strip("[]").lower())
    default = f"{bound_host}:{port}" if ":" not in bound_host else f"[{bound_host}]:{port}"
    return HostPolicy(frozenset(names), port, default, suffixes=())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _QuietDrops(logging.Filter):
    """Injected connection drops are the point, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def export_lines(store: Store, origin: str, tls: TlsFiles | None, *, approve_db: str | None = None,
                 federated: bool = False) -> list[str]:
    """The shell lines a client needs: `export` lines for the ready-made app's secret (what every
    tool picks first), then, as comments, what each other sign-in method needs instead, its
    `unset` included, so that `eval` never switches the method by surprise."""
    app = store.default_app()
    tenant = store.tenant(app.tenant_id)
    assert tenant is not None
    lines = [
        f"export AZURE_TENANT_ID={tenant.id}",
        f"export AZURE_CLIENT_ID={app.client_id}",
        f"export AZURE_CLIENT_SECRET='{app.secret}'",
        f"export AZURE_AUTHORITY_HOST={origin}",
        f"export ENTRA_BATCH_TARGET={origin}/v1.0",
    ]
    if tls is not None:
        lines += [
            f"export SSL_CERT_FILE={tls.ca_cert}",
            f"export REQUESTS_CA_BUNDLE={tls.ca_cert}",
        ]
    lines += _certificate_lines(app.certificate)
    admin = store.seeded_admin(tenant.id)
    identity = store.managed_identity(tenant.id)
    where = f" --db {shlex.quote(approve_db)}" if approve_db else ""
    lines += [
        # Commented out: these variables would make azure-identity (and entra-batch's `auth`
        # order) choose another sign-in; uncomment the one you mean to use.
        f"# administrator for device code and Azure CLI sign-in: {admin.upn} ({', '.join(admin.roles)}); "
        f"public clients {GRAPH_COMMAND_LINE_TOOLS} (Microsoft Graph Command Line Tools) and {AZURE_CLI} "
        f"(Microsoft Azure CLI); approve a code with `entra-batch emulator approve USER_CODE{where}`, add an "
        f"administrator with `entra-batch emulator add-admin UPN [--role ROLE]{where}`",
        "# device code or Azure CLI sign-in (--auth device-code / azure-cli): first "
        "unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET",
        f"# managed identity (App Service style), client id {identity.client_id}: "
        "unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET, then",
        f"# export IDENTITY_ENDPOINT={origin}/msi/token",
        f"# export IDENTITY_HEADER={store.identity_header()}",
    ]
    if federated:
        lines.append("# workload identity (the app above, --federated-subject): unset AZURE_CLIENT_SECRET, then "
                     "set AZURE_FEDERATED_TOKEN_FILE to a file holding the --trust-issuer's token")
    lines += [
        f"export ENTRA_BATCH_DOMAIN={tenant.default_domain}",
        f"export ENTRA_BATCH_EXTENSIONS_APP_ID={tenant.extensions_app_id}",
        f"# tenant default domain: {tenant.default_domain}; Graph base URL: {origin}/v1.0",
    ]
    if tls is None:
        lines.append("# plain HTTP: msal needs an https authority, start with --tls for msal and the Graph SDKs")
    return lines


def _certificate_lines(pem: str | None) -> list[str]:
    if pem is None:
        return ["# certificate sign-in: start with --app-certificate CERT_FILE to register a certificate "
                "with the app above"]
    registered = read_certificate(pem.encode("ascii"))
    return [
        f"# certificate sign-in: the app above also holds certificate {registered.thumbprint} "
        f"({registered.subject}, valid {registered.not_before:%Y-%m-%d %H:%M} to {registered.not_after:%Y-%m-%d %H:%M} "
        "UTC): unset AZURE_CLIENT_SECRET, then",
        "# export AZURE_CLIENT_CERTIFICATE_PATH=PEM_OR_PFX_FILE_WITH_ITS_PRIVATE_KEY",
    ]


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, a response written as headers then body
        # waits for the client's delayed ACK (Nagle), 40 ms a request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        # Listen before the export lines are printed: a client that connects as soon as it
        # reads them waits in the backlog instead of being refused.
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def configure_federation(store: Store, options: ServeOptions) -> None:
    """Trust each issuer, and let the default app accept each subject's tokens from it; register
    the --app-certificate with the default app."""
    app = store.default_app()
    if options.app_certificate is not None:
        store.set_app_certificate(app.client_id, options.app_certificate)
    for issuer, jwks in options.trusted_issuers:
        store.trust_issuer(issuer, jwks)
        for subject in options.federated_subjects:
            store.add_federated_credential(app.client_id, issuer=issuer, subject=subject)


def serve(options: ServeOptions, settings: EmulatorSettings, out: TextIO) -> None:
    if not options.allow_remote and not is_loopback(options.host):
        raise NotLoopback(f"{options.host} is not a loopback address; the emulator serves loopback only "
                          "(pass --allow-remote to bind elsewhere on purpose)")
    store = Store(options.db) if options.db else Store(":memory:")
    try:
        configure_federation(store, options)
        upn = settings.approve_device_codes_as
        if upn and store.admin(upn) is None:
            raise BadSetting(f"--approve-device-codes-as {upn}: no such administrator; the emulator's are "
                             + ", ".join(a.upn for t in store.tenants() for a in store.admins(t.id)))
        tls = ensure_tls_files(options.tls_dir) if options.tls_dir else None
        sock = _bound_socket(options.host, options.port)
    except BaseException:
        store.close()
        raise
    port = sock.getsockname()[1]
    app = EmulatorApp(store, settings, hosts=host_policy(options.host, port))
    host = f"[{options.host}]" if ":" in options.host else options.host
    origin = f"{'https' if tls else 'http'}://{host}:{port}"
    federated = bool(options.trusted_issuers and options.federated_subjects)
    for line in export_lines(store, origin, tls, approve_db=settings.approve_db, federated=federated):
        print(line, file=out)
    out.flush()
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off",
        ssl_certfile=str(tls.server_cert) if tls else None, ssl_keyfile=str(tls.server_key) if tls else None,
        # A TLS client that keeps its connection open would hold a Ctrl-C/SIGTERM shutdown
        # for the 30 s SSL close handshake timeout; stop waiting after 2 s.
        timeout_keep_alive=30, timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        store.close()
