"""`--target local`: the built-in Graph emulator, in process, on the directory kept under
ENTRA_BATCH_HOME. Only the CLI chooses it; the library reaches it, as it reaches any Graph,
through an httpx transport and a `Target` holding the emulator tenant's own app credentials.

Its Graph URL and authority (`http://emulator.local`) are plain http to a host that is not
loopback, which `batch.config` refuses in a user's settings: they are built here, never read
from a setting, and only ever travel through the in-process transport built with them
(`batch.run.connection.refuse_plain_http` stops them from reaching a socket otherwise)."""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from batch.config import Target, emulator_db_path, home_dir, private_dir
from batch.errors import ConfigError
from batch.verbs.attributes import AttributeCatalog

LOCAL_AUTHORITY = "http://emulator.local"
# The built-in emulator's tenant, before its directory exists: its default domain is fixed
# (PRODUCT.md, "Targets"); its extensions app id is drawn when the directory is made, and any
# one gives `ext.<name>` columns the same verdict (`local_tenant_names`).
LOCAL_DEFAULT_DOMAIN = "contoso.onmicrosoft.com"
_ANY_EXTENSIONS_APP_ID = "00000000-0000-0000-0000-000000000000"


def directory_in_use(db: Path, *, exclusive: bool = False) -> int | None:
    """A lock on the emulator directory `db` (`<db>.lock`, 0600, never through a link): shared
    while a served emulator or an in-process run uses it, exclusive for `emulator reset`, so
    that a reset cannot pull the directory from under a server that keeps serving the old one.
    The descriptor holding the lock (close it to release), or None when it is taken."""
    fd = os.open(db.with_name(db.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def local_tenant_names() -> tuple[str, str]:
    """The built-in emulator tenant's default domain and extensions app id, read from its
    directory when there is one (never made here: `validate` writes nothing)."""
    if not (home_dir() / "emulator.db").is_file():  # the path of emulator_db_path, without making the home
        return LOCAL_DEFAULT_DOMAIN, _ANY_EXTENSIONS_APP_ID
    with LocalEmulator() as local:
        return local.tenant.default_domain, local.tenant.extensions_app_id


def local_attributes() -> AttributeCatalog:
    """The built-in emulator tenant's declared custom attributes with their types, read from
    its directory (a directory not made yet declares none: create would find none either)."""
    if not (home_dir() / "emulator.db").is_file():
        return AttributeCatalog(_ANY_EXTENSIONS_APP_ID, ())
    with LocalEmulator() as local:
        declared = local.store.declared_extensions(local.tenant.id)
        app_id = local.tenant.extensions_app_id
    return AttributeCatalog.of(app_id, list(declared.items()))


class LocalEmulator:
    """The emulator's store and ASGI app, with the transport that reaches them in process."""

    def __init__(self, settings: Any = None, db_path: Path | None = None) -> None:
        from batch.emulator import EmulatorApp, Store
        from batch.emulator.database import DatabaseUnavailable
        from batch.emulator.inprocess import EmulatorTransport

        if db_path is not None and not db_path.parent.exists():
            # The database holds the app's secret and the token-signing key: its folder is made
            # private before SQLite writes there (the default one is the private home).
            private_dir(db_path.parent, "the emulator database's folder")
        path = db_path or emulator_db_path()
        self._lock = share_directory(path)
        try:
            self.store = Store(path)
        except DatabaseUnavailable as exc:
            if self._lock is not None:
                os.close(self._lock)
            raise ConfigError(f"the built-in emulator cannot use its directory: {exc}") from None
        self.app = EmulatorApp(self.store, settings)
        self.transport: httpx.AsyncBaseTransport = EmulatorTransport(self.app)
        self._app = self.store.default_app()
        tenant = self.store.tenant(self._app.tenant_id)
        assert tenant is not None
        self.tenant = tenant

    def target(self, base: Target) -> Target:
        """`base` (kind `local`) with the emulator tenant's id, app credentials and names; a
        domain or extensions app id given on the command line wins."""
        return replace(base, tenant_id=self.tenant.id, client_id=self._app.client_id,
                       client_secret=self._app.secret or "", authority_host=LOCAL_AUTHORITY,
                       domain=base.domain or self.tenant.default_domain,
                       extensions_app_id=base.extensions_app_id or self.tenant.extensions_app_id)

    def close(self) -> None:
        self.store.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> LocalEmulator:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def share_directory(db: Path) -> int | None:
    """The shared lock of a server or a run on the directory, held until its descriptor is
    closed (a reset waits for no one: it refuses while one is held)."""
    try:
        return directory_in_use(db)
    except OSError:
        return None  # a folder where no lock can be made: the directory itself says what is wrong


__all__ = ["LOCAL_AUTHORITY", "LOCAL_DEFAULT_DOMAIN", "LocalEmulator", "directory_in_use", "local_attributes", "local_tenant_names",
           "share_directory"]
