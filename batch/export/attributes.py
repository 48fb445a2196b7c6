"""An export's columns: the tenant's custom attributes (`extension_<hex>_<name>`, listed from
the extensions app's `extensionProperties`) offered to `--select`, or the columns an
incremental export kept from its first run."""

from __future__ import annotations

from batch.errors import ConfigError
from batch.export.fields import Columns, SelectError, choose_columns
from batch.export.request import ExportRequest
from batch.export.state import DeltaState
from batch.graph import GraphCall
from batch.run.connection import Connection


async def export_columns(connection: Connection, request: ExportRequest,
                         state: DeltaState | None) -> tuple[Columns, list[str]]:
    """The columns of the file, and notes for the user (what was ignored or left out)."""
    if state is not None and state.columns:
        notes = ["--select is ignored: an incremental export keeps the columns of its first run"] \
            if request.select else []
        return Columns(state.columns, dict(state.extensions)), notes
    names, note = await extension_names(connection)
    app_id = connection.extensions_app_id
    hex_id = app_id.replace("-", "").lower() if app_id else None
    try:
        columns = choose_columns(request.select, extension_names=names, extensions_app_hex=hex_id,
                                 deleted=request.deleted, delta=request.since is not None)
    except SelectError as exc:
        raise ConfigError(str(exc)) from None
    return columns, [note] if note else []


async def extension_names(connection: Connection) -> tuple[list[str], str | None]:
    """The tenant's custom attributes (`extension_<hex>_<name>`), from the extensions app's
    `extensionProperties`; with a note instead when they cannot be listed."""
    app_id = connection.extensions_app_id
    if not app_id:
        return [], ("custom attributes are not exported: the extensions app id is unknown "
                    "(--extensions-app-id or ENTRA_BATCH_EXTENSIONS_APP_ID)")
    result = await connection.client.request(
        GraphCall("GET", f"/applications(appId='{app_id}')/extensionProperties?$select=name,targetObjects"))
    if result.status != 200 or not isinstance(result.body, dict):
        why = "the app lacks Application.Read.All" if result.status == 403 else (result.error_code or result.status)
        return [], (f"custom attributes are not listed ({why}); add them with --select +ext.NAME")
    names = [str(item["name"]) for item in result.body.get("value") or []
             if isinstance(item, dict) and item.get("name") and "User" in (item.get("targetObjects") or ["User"])]
    return sorted(names, key=str.lower), None


__all__ = ["export_columns", "extension_names"]
