"""How a page of Graph users becomes rows of the export: flattened to the fetched columns,
kept or dropped by `--sign-in-type`, and marked `added`/`changed`/`removed` in a delta round."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batch.export.fields import CHANGE_COLUMNS, Columns, flatten, row_flattener
from batch.export.state import DeltaState

Convert = Callable[[list[dict[str, Any]]], list[list[str]]]


def row_maker(fetched: Columns, state: DeltaState | None, sign_in_type: str | None) -> Convert:
    """A page's users → rows, one string per fetched column, in `fetched.names` order."""
    keep = keeper(sign_in_type)
    if not any(name in CHANGE_COLUMNS for name in fetched.names):
        flat = row_flattener(fetched)  # the hot path of a full export: no record dicts
        if not sign_in_type:
            return lambda users: [flat(user) for user in users]
        return lambda users: [flat(user) for user in users if keep(user)]

    def convert(users: list[dict[str, Any]]) -> list[list[str]]:
        out = []
        for user in users:
            if keep(user):
                record = make_record(user, fetched, state)
                out.append([record[name] for name in fetched.names])
        return out

    return convert


def make_record(user: dict[str, Any], columns: Columns, state: DeltaState | None) -> dict[str, str]:
    record = flatten(user, columns)
    if "change" in columns.names:
        removed = user.get("@removed")
        if isinstance(removed, dict):
            record["change"] = "removed"
            record["removal"] = "purged" if removed.get("reason") == "deleted" else "deleted"
        else:
            # Graph's delta does not tell a new customer from a changed one: the creation time does.
            synced = state.synced_at if state else None
            created = str(user.get("createdDateTime") or "")
            record["change"] = "added" if not synced or (created and created > synced) else "changed"
    return record


def keeper(sign_in_type: str | None) -> Callable[[dict[str, Any]], bool]:
    """`--sign-in-type`: Graph cannot filter on signInType, so it is applied here."""
    if not sign_in_type:
        return lambda user: True

    def keep(user: dict[str, Any]) -> bool:
        if isinstance(user.get("@removed"), dict):
            return True  # a removed customer has no identities left to tell; keep it listed
        return any(i.get("signInType") == sign_in_type for i in user.get("identities") or [])

    return keep


__all__ = ["Convert", "keeper", "make_record", "row_maker"]
