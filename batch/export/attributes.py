"""An export's columns: the tenant's custom attributes (`extension_<hex>_<name>`, listed from
the extensions app's `extensionProperties`, the app found by itself) offered to `--select`, or the columns an
incremental export kept from its first run."""

from __future__ import annotations

from batch.errors import ConfigError
from batch.export.fields import Columns, SelectError, choose_columns
from batch.export.request import ExportRequest
from batch.export.state import DeltaState
from batch.run.attributes import read_catalog
from batch.run.connection import Connection


async def export_columns(connection: Connection, request: ExportRequest,
                         state: DeltaState | None) -> tuple[Columns, list[str]]:
    """The columns of the file, and notes for the user (what was ignored or left out)."""
    if state is not None and state.columns:
        notes = ["--select is ignored: an incremental export keeps the columns of its first run"] \
            if request.select else []
        return Columns(state.columns, dict(state.extensions)), notes
    names, note, app_id = await extension_names(connection)
    hex_id = app_id.replace("-", "").lower() if app_id else None
    try:
        columns = choose_columns(request.select, extension_names=names, extensions_app_hex=hex_id,
                                 deleted=request.deleted, delta=request.since is not None, listed=note is None)
    except SelectError as exc:
        raise ConfigError(str(exc)) from None
    return columns, [note] if note else []


async def extension_names(connection: Connection) -> tuple[list[str], str | None, str | None]:
    """The tenant's custom attributes (`extension_<hex>_<name>`), read as runs read them
    (batch/run/attributes.py: the extensions app found by itself, unless configured, then its
    `extensionProperties`), with the app id; with a note instead when they cannot be listed
    (the configured app id, if any, still lets `--select +ext.NAME` name one)."""
    reading = await read_catalog(connection.client, connection.extensions_app_id)
    if reading.catalog is None:
        why = "the app lacks Application.Read.All" if reading.permission else reading.why
        return [], f"custom attributes are not listed ({why}); add them with --select +ext.NAME", \
            connection.extensions_app_id
    names = [a.property for a in reading.catalog.attributes]
    return sorted(names, key=str.lower), None, reading.catalog.app_id


__all__ = ["export_columns", "extension_names"]
