"""The one fake clock of the Graph client, retry, auth and pacing tests, and the customer body
they create on the emulator."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
DOMAIN = "contoso.onmicrosoft.com"


def customer(email: str) -> dict[str, Any]:
    """The body of a POST /users for one email customer of the emulator's tenant."""
    return {
        "displayName": email.split("@")[0],
        "identities": [{"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": email}],
        "passwordProfile": {"password": "Xy12345678!", "forceChangePasswordNextSignIn": False},
        "passwordPolicies": "DisablePasswordExpiration",
    }


class FakeClock:
    """Fake time: `clock()` reads it, `sleep(seconds)` records every wait in `sleeps`.

    Outside `run()`, a sleep moves the clock at once: enough for one task at a time (a retry
    loop, a token refresh). Inside `run(coro)`, time is virtual for many tasks: each sleeper
    waits until the clock reaches its wake-up time, and the clock jumps to the earliest
    sleeper whenever no task can make progress, so minutes of pacing run in milliseconds,
    deterministically. `now` may be set or moved by a test."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = float(start)
        self.sleeps: list[float] = []
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._running = False

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self._running:
            self.now += seconds
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.now + seconds, next(self._seq), future))
        await future

    async def run(self, work: Awaitable[T]) -> T:
        """Run `work` (and the tasks it starts) on virtual time."""
        self._running = True
        try:
            return await self._run(work)
        finally:
            self._running = False

    async def _run(self, work: Awaitable[T]) -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(100_000):  # let everything that is ready run
                await asyncio.sleep(0)
                if task.done() or not loop._ready:  # type: ignore[attr-defined]  # asyncio has no public "idle"
                    break
            if task.done():
                break
            while self._heap and self._heap[0][2].done():
                heapq.heappop(self._heap)
            if not self._heap:
                await asyncio.sleep(0.001)  # something outside virtual time is pending
                continue
            self.now = max(self.now, self._heap[0][0])
            while self._heap and self._heap[0][0] <= self.now:
                future = heapq.heappop(self._heap)[2]
                if not future.done():
                    future.set_result(None)
        return task.result()


__all__ = ["FakeClock"]
