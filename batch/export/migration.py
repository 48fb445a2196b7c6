"""`export --jit-migration ATTRIBUTE`: the progress of a just-in-time password migration in the
summary (summary.json's `password_migration`, the `--summary` table, the `--report` page).

The flag is the Boolean custom attribute that `create --jit-migration` set to true and that
Entra sets to false when a customer's legacy password was checked at first sign-in and kept
(entra-docs external-id/customers/how-to-migrate-passwords-just-in-time.md). It is named on
the command line rather than read from the tenant's onPasswordSubmit listener: reading
listeners needs EventListener.Read.All, which an export otherwise never asks for, and a
tenant may keep the flag after its listener is gone.

Counted: `true` still to migrate, `false` migrated, absent never flagged.
"""

from __future__ import annotations

from batch.export.fields import Columns
from batch.run.attributes import read_catalog
from batch.run.connection import Connection
from batch.verbs.jit import find_flag


async def migration_column(connection: Connection, name: str, fetched: Columns) -> tuple[str, Columns]:
    """The column the summary counts (`ext.<name>`) and the fetched columns with it: the
    attribute found by name in the tenant's custom attributes, read as runs read them
    (batch/run/attributes.py)."""
    reading = await read_catalog(connection.client, connection.extensions_app_id)
    attribute = find_flag(reading.required(connection.client_ids[0] if connection.client_ids else None), name)
    column = f"ext.{attribute.name}"
    return column, Columns(tuple(dict.fromkeys([*fetched.names, column])), {**fetched.extensions, column: attribute.property})


__all__ = ["migration_column"]
