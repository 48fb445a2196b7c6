"""Replication lag: a write is committed at once but read later (GRAPH.md §15.3).

Graph documents that listing users "might have replication delays for users that were
recently created, updated, or deleted" (microsoft-graph-docs-contrib, api-reference/v1.0/api/
user-list.md), and a B2C client that PATCHed a user right after creating it was answered 404
`Request_ResourceNotFound` (microsoftgraph/msgraph-sdk-java-core#353). The emulator models it so:

- Every committed write of a user (create, update including a password change, delete,
  restore, purge, and the purge at the end of retention) becomes visible to reads only at
  `visible_at = now + uniform(0, lag)`, drawn from a `random.Random` of its own, seeded from
  `EmulatorSettings.seed`, so that the fault and latency draws keep their sequence.
- Until then reads see the user as it was before that write: a just-created user is absent, a
  just-updated one shows its old values, a just-deleted one is still live (GET works, lists
  show it) and not yet in deletedItems, a just-restored one is still in deletedItems and not
  live, a purge not yet visible leaves it in deletedItems.
- Reads are GET /users/{id|upn}, GET /users (any $filter or $search), /users/$count, the
  deletedItems list and item, and users/delta: a change enters delta once visible, and a delta
  link issued before it still reports it (the link's watermark stops below the oldest write
  not yet visible).
- Writes that name an existing user (PATCH and DELETE /users/{key}, restore, DELETE
  deletedItems/{id}) find it through the same view, so a user not yet visible there is Graph's
  404. The write itself applies to the directory's true state: the user must also be live
  (or deleted) there. Uniqueness (ObjectConflict on UPN, identities, mail) is always checked
  against the true state: a second create of the same identity inside the window conflicts.
- A second write inside a user's window keeps the oldest version readers still see and the
  later of the two `visible_at`.

With a lag of 0 (the default) nothing of this runs: no draw, no extra query, no extra table
row. How the store keeps the prior versions is `userstore.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Visibility:
    """When a write is made (`now`) and when reads start to see it (`at`)."""

    now: float
    at: float


class ReplicationLag:
    """The moment reads see the directory as of, and when each new write becomes visible."""

    def __init__(self, lag_ms: float, seed: int | None, clock: Callable[[], float]) -> None:
        self.lag_seconds = lag_ms / 1000.0
        self.clock = clock
        # A string seed of its own: the same --seed replays the same delays without shifting
        # the fault injector's draws, which use the integer seed itself.
        self._random = random.Random(f"replication-lag:{seed}") if seed is not None else random.Random()

    @property
    def enabled(self) -> bool:
        return self.lag_seconds > 0

    def as_of(self) -> float | None:
        """The moment reads see the directory as of; None when every write is seen at once."""
        return self.clock() if self.enabled else None

    def next_write(self) -> Visibility | None:
        """When the write being committed now becomes visible; None without lag."""
        if not self.enabled:
            return None
        now = self.clock()
        return Visibility(now, now + self._random.uniform(0.0, self.lag_seconds))


__all__ = ["ReplicationLag", "Visibility"]
