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

from batch.errors import ConfigError
from batch.export.attributes import extension_names
from batch.export.fields import Columns
from batch.run.connection import Connection


async def migration_column(connection: Connection, name: str, fetched: Columns) -> tuple[str, Columns]:
    """The column the summary counts (`ext.<name>`) and the fetched columns with it."""
    short = name[4:] if name.lower().startswith("ext.") else name
    app_id = connection.extensions_app_id
    if short.lower().startswith("extension_"):
        prop = short
        short = short.split("_", 2)[2] if short.count("_") >= 2 else short
    elif app_id:
        prop = f"extension_{app_id.replace('-', '').lower()}_{short}"
    else:
        raise ConfigError(f"--jit-migration {name}: the extensions app id is unknown; give it with "
                          "--extensions-app-id (or ENTRA_BATCH_EXTENSIONS_APP_ID)")
    names, _note = await extension_names(connection)
    if names and prop.lower() not in {n.lower() for n in names}:
        listed = ", ".join(n.split("_", 2)[2] if n.count("_") >= 2 else n for n in names)
        raise ConfigError(f"--jit-migration {name}: the tenant has no custom attribute {short}; its attributes: "
                          f"{listed}")
    column = f"ext.{short}"
    return column, Columns(tuple(dict.fromkeys([*fetched.names, column])), {**fetched.extensions, column: prop})


__all__ = ["migration_column"]
