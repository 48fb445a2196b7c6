"""Graph's replication delay, and how the verbs wait it out.

Entra's directory is eventually consistent: a write is answered by one replica and reaches
the others later, so a read (or a write that names the object by key) right after it can
miss it — a customer just created is "not found", one just deleted still looks live, one
just restored still looks deleted. Sources: GRAPH.md §15.3 (user-list doc: "might have
replication delays for users that were recently created, updated, or deleted"); B2C POST
then PATCH → 404 `Request_ResourceNotFound` (msgraph-sdk-java-core#353); Microsoft's
"Designing for Eventual Consistency for Microsoft Entra" (devblogs.microsoft.com/identity,
2026: "A newly created object [may] return a 'Not Found'"); "Why do I sometimes get a 404
when trying to update an Azure directory object after I just created it?" (aaddevsup, 2021).
Replication usually completes within seconds; no bound is documented.

So an answer that says "absent" is only believed at once when nothing this run did can
explain it. When the run itself may have just written the object (a lost answer, a re-sent
create that conflicts, a row a crashed run left `sent`) or has just seen it (a lookup found
it, then the PATCH says 404), the same calls are asked again on a bounded schedule,
`REPLICATION_WAITS`, before the absence counts. A key the run never saw costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable

from batch.graph import GraphCall, GraphResult
from batch.verbs.answers import send
from batch.verbs.base import REPLICATION_WAITS, Session

__all__ = ["REPLICATION_WAITS", "first_not_found", "found_nothing", "not_found", "until_seen", "waiting_for"]


def not_found(result: GraphResult) -> bool:
    """A write (or GET by key) answered 404: the object is not visible to that replica."""
    return result.status == 404


def first_not_found(result: GraphResult) -> bool:
    """A delete or purge answered 404 at its first attempt. A 404 on a later attempt (the
    client sent it again after losing an answer) is most likely our own first attempt having
    done it, and is settled by looking, not by deleting again."""
    return result.status == 404 and result.attempts <= 1


def waiting_for(written_at: float | None, session: Session) -> bool:
    """Whether a write made at `written_at` (this machine's clock) may still be replicating:
    within the waits' total since then. A row an interrupted run sent long ago is looked up
    once; one sent a moment ago is waited for."""
    return written_at is None or session.clock() - written_at < sum(session.replication_waits)


def found_nothing(result: GraphResult) -> bool:
    """A lookup answered, with nothing in it (a 404 by key, or an empty `value`)."""
    if result.status == 404:
        return True
    body = result.body
    return result.status == 200 and isinstance(body, dict) and "value" in body and not body["value"]


async def until_seen(calls: list[GraphCall], session: Session,
                     unseen: Callable[[int, GraphResult], bool]) -> list[GraphResult]:
    """Send `calls`; while some answers are `unseen(index, answer)` (the object is not
    visible yet), send those again, together, after each of the session's replication
    waits. The last answers come back in order; what is still unseen then is believed."""
    results = await send(calls, session)
    for wait in session.replication_waits:
        waiting = [i for i, result in enumerate(results) if unseen(i, result)]
        if not waiting:
            break
        await session.sleep(wait)
        session.replication_retries += len(waiting)
        for i, result in zip(waiting, await send([calls[i] for i in waiting], session)):
            results[i] = result
    return results
