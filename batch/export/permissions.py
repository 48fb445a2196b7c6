"""The permissions an export needs: to read customers, and to list the deleted ones.

The permission sets are the verbs' (batch/verbs/permissions.py): reading as the verbs' lookups
do, listing deleted items as `delete`/`restore` do."""

from __future__ import annotations

from batch.verbs.permissions import DELETE_RESTORE, READ

LIST_DELETED = DELETE_RESTORE | READ


def needed(*, deleted: bool) -> frozenset[str]:
    """Any one of these permissions lets the export list what it is asked for."""
    return LIST_DELETED if deleted else READ


__all__ = ["LIST_DELETED", "READ", "needed"]
