"""The permissions an export needs: to read customers, and to list the deleted ones.

The permission sets are the verbs' (reading like `create`'s lookups, listing deleted items
like `delete`/`restore`); every import of them by the export is here."""

from __future__ import annotations

from batch.verbs.create import READ
from batch.verbs.delete import DELETE_RESTORE

LIST_DELETED = DELETE_RESTORE | READ


def needed(*, deleted: bool) -> frozenset[str]:
    """Any one of these permissions lets the export list what it is asked for."""
    return LIST_DELETED if deleted else READ


__all__ = ["LIST_DELETED", "READ", "needed"]
