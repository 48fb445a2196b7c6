"""Sending a verb's requests and reading Graph's answers, as every verb does: a group of
calls goes as one request or one `$batch`, and a 400 that says the object exists is a
conflict (GRAPH.md §5: `ObjectConflict`, or "already exists" in the message)."""

from __future__ import annotations

from batch.graph import GraphCall, GraphResult
from batch.verbs.base import Session


async def send(calls: list[GraphCall], session: Session) -> list[GraphResult]:
    """One answer per call, in order: nothing for no call, one request for one call, else a batch."""
    if not calls:
        return []
    if len(calls) == 1:
        return [await session.client.request(calls[0])]
    return await session.client.batch(calls)


def is_conflict(result: GraphResult) -> bool:
    """Graph refused a write because a unique property (UPN, sign-in name, mail) is taken."""
    if result.status != 400 or not isinstance(result.body, dict):
        return False
    error = result.body.get("error") or {}
    details = error.get("details") or []
    return any(isinstance(d, dict) and d.get("code") == "ObjectConflict" for d in details) or \
        "already exists" in str(error.get("message", ""))


def conflict_on(result: GraphResult, prop: str) -> bool:
    """Whether a conflict names `prop` as the taken property ("Another object with the same
    value for property identities already exists.", or a detail whose target is it)."""
    if not is_conflict(result) or not isinstance(result.body, dict):
        return False
    error = result.body.get("error") or {}
    targets = {str(d.get("target", "")).lower() for d in error.get("details") or [] if isinstance(d, dict)}
    return prop.lower() in targets or f"property {prop.lower()} " in str(error.get("message", "")).lower()
