"""Pacing below Graph's throttling limits, shared by every worker (GRAPH.md §9, PRODUCT.md
"Pacing").

Graph's identity limits are token buckets: resource units per app+tenant (8,000 per 10 s in a
large tenant), writes per app+tenant (3,000 per 150 s) and writes per tenant across all apps
(18,000 per 300 s). Hammering and backing off wastes quota (refused requests still cost
resource units) and stalls rows; so each app registration gets one `Pacer` that every worker
asks before it sends, and that learns from every answer:

- it starts from the documented quotas, at `target` (97%) of their rate;
- while Graph shows headroom it spends the documented burst, but at a bounded peak pace, so
  that the first `x-ms-throttle-limit-percentage` (sent once a server-side bucket is more
  than 80% used) ends the burst before it overshoots;
- a limit percentage above 0.8 lowers the rate multiplicatively (more the closer it is to
  1.0), as long as the percentage is not already falling (Graph refilling: we are below its
  rate, and cutting again would undershoot); a percentage stops any creeping up;
- a 429 (or a 503 with Retry-After) sets a "not before" time that holds *every* worker of
  the pacer (or of the whole app pool when the scope is the tenant); a 429 on a write or
  resource-unit limit also cuts that bucket's rate by 30% and remembers 85% of the old rate
  as the safe one;
- answers without any signal let the rate creep back (8% per second up to the safe rate,
  0.5% beyond it). With no 429 seen, the creep goes on past the documented quota: a quota
  that is larger than documented is found, and Graph's warnings at 80% stop the climb
  before anything is refused.

Measured against the emulator's throttle model (tests/graph/test_pacing.py): on the
documented quota, no 429 and the full rate once the burst is spent (the burst's last 20%
stays unspent as a margin); on hidden quotas from a quarter to twice the documented rate,
90-99% of the ceiling with 0-1.6% of the calls answered 429, most of them while converging.

`AppPool` (`pool.py`) spreads work over several app registrations of one tenant (each its own
quota and credentials), bounded together by a shared `TenantBudget`. The quotas and what a
request costs are in `quotas.py`, the adaptive bucket in `bucket.py`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from batch.graph.bucket import AdaptiveBucket
from batch.graph.model import Hold
from batch.graph.quotas import (
    DEFAULT_PACING,
    DOCUMENTED_RESOURCE_UNITS,
    DOCUMENTED_TENANT_WRITES,
    DOCUMENTED_WRITES,
    PacingSettings,
    Quota,
)
from batch.graph.retry import retry_after_of

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_EPSILON = 1e-6  # shorter waits are rounding (a Unix-time clock ticks in ~2e-7 s): go ahead


@dataclass
class PacerStats:
    throttled: int = 0  # 429 answers observed
    pauses: int = 0  # times a Retry-After held the pool
    warnings: int = 0  # answers carrying a limit percentage above 0.8
    cuts: int = 0  # times a rate was lowered
    waits: int = 0  # times an acquire had to wait
    total_wait: float = 0.0  # seconds spent waiting in acquire, all workers together

    def as_dict(self) -> dict[str, float]:
        return {"throttled": self.throttled, "pauses": self.pauses, "warnings": self.warnings, "cuts": self.cuts,
                "waits": self.waits, "total_wait_seconds": round(self.total_wait, 3)}


class TenantBudget:
    """The tenant-wide write quota (18,000 per 300 s) shared by an app pool's pacers, with
    its own "not before" for 429s whose scope is the whole tenant."""

    def __init__(self, writes: Quota = DOCUMENTED_TENANT_WRITES, *, settings: PacingSettings = DEFAULT_PACING,
                 clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.bucket = AdaptiveBucket("tenant writes", writes, settings, clock())
        self.not_before = -math.inf


class Pacer:
    """One app registration's pace, shared by all workers that use its credentials.

    `acquire(writes, resource_units)` waits (FIFO) until every bucket has room and the shared
    "not before" time has passed; `observe(status, headers)` is told every answer (each inner
    answer of a $batch too)."""

    def __init__(self, writes: Quota = DOCUMENTED_WRITES, resource_units: Quota = DOCUMENTED_RESOURCE_UNITS, *,
                 budget: TenantBudget | None = None, settings: PacingSettings = DEFAULT_PACING,
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, name: str = "") -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.name = name
        now = clock()
        self.writes = AdaptiveBucket("writes", writes, settings, now)
        self.resource_units = AdaptiveBucket("resource units", resource_units, settings, now)
        self.budget = budget
        self.not_before = -math.inf
        self.paused_by = 429  # the status of the answer that set not_before
        self.hold: Hold | None = None  # what acquire last slept for, and until when (a read-out; `_why`)
        self.stats = PacerStats()
        self._lock = asyncio.Lock()
        self._queued_writes = 0
        self._queued_units = 0

    # ---- asking ------------------------------------------------------------------------------

    async def acquire(self, writes: int, resource_units: int) -> None:
        """Wait until `writes` writes and `resource_units` resource units may be spent."""
        self._queued_writes += writes
        self._queued_units += resource_units
        try:
            async with self._lock:
                waited = False
                while True:
                    now = self.clock()
                    wait = self._wait(now, writes, resource_units)
                    if wait <= _EPSILON:
                        self._take(writes, resource_units)
                        return
                    if not waited:
                        self.stats.waits += 1
                        waited = True
                    self.stats.total_wait += wait
                    self.hold = Hold(self._why(now, writes, resource_units), now + wait)
                    await self.sleep(wait)
        finally:
            self._queued_writes -= writes
            self._queued_units -= resource_units

    def ready_in(self, writes: int = 0, resource_units: int = 0) -> float:
        """Seconds until this pacer could serve a request of this size after the ones already
        queued on it (how an `AppPool` picks the app with the earliest availability)."""
        return self._wait(self.clock(), writes + self._queued_writes, resource_units + self._queued_units)

    def _wait(self, now: float, writes: int, units: int) -> float:
        self._refill(now)
        waits = [self.not_before - now, self.writes.wait(writes), self.resource_units.wait(units)]
        if self.budget is not None:
            waits += [self.budget.not_before - now, self.budget.bucket.wait(writes)]
        return max(0.0, *waits)

    def _why(self, now: float, writes: int, units: int) -> str:
        """Which limit `_wait` waits for (after its refill), in words for a progress display."""
        paused, by = self.not_before - now, self.paused_by
        waits = {"write quota": self.writes.wait(writes), "resource-unit quota": self.resource_units.wait(units)}
        if self.budget is not None:
            waits["tenant write quota"] = self.budget.bucket.wait(writes)
            if self.budget.not_before - now > paused:
                paused, by = self.budget.not_before - now, 429  # only 429s pause the tenant
        waits[f"{by} Retry-After"] = paused
        return max(waits, key=lambda k: waits[k])

    def _refill(self, now: float) -> None:
        self.writes.refill(now)
        self.resource_units.refill(now)
        if self.budget is not None:
            self.budget.bucket.refill(now)

    def _take(self, writes: int, units: int) -> None:
        self.writes.take(writes)
        self.resource_units.take(units)
        if self.budget is not None:
            self.budget.bucket.take(writes)

    # ---- learning ----------------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer (status and headers; an inner $batch answer counts too)."""
        lower = {k.lower(): v for k, v in headers.items()}
        now = self.clock()
        self._refill(now)
        retry_after = retry_after_of(lower)
        if status == 429:
            self.stats.throttled += 1
            for bucket in self._attribute(lower, throttled=True):
                before = bucket.cuts
                bucket.throttled(now)
                self.stats.cuts += bucket.cuts - before
            self._pause(now, retry_after if retry_after is not None else self.settings.default_pause,
                        tenant_wide=self._tenant_scope(lower))
            return
        if status == 503 and retry_after is not None:
            self._pause(now, retry_after, tenant_wide=False, status=503)
        percentage = _float(lower.get("x-ms-throttle-limit-percentage"))
        if percentage is not None and percentage > self.settings.high_water:
            self.stats.warnings += 1
            for bucket in self._attribute(lower):
                before = bucket.cuts
                bucket.warned(now, percentage)
                self.stats.cuts += bucket.cuts - before
        elif status < 500:
            for bucket in self._buckets():
                bucket.calm(now)

    def _buckets(self) -> list[AdaptiveBucket]:
        buckets = [self.writes, self.resource_units]
        if self.budget is not None:
            buckets.append(self.budget.bucket)
        return buckets

    def _pause(self, now: float, seconds: float, *, tenant_wide: bool, status: int = 429) -> None:
        holder: Pacer | TenantBudget = self.budget if tenant_wide and self.budget is not None else self
        until = now + max(0.0, seconds)
        if until > holder.not_before:
            holder.not_before = until
            self.stats.pauses += 1
            self.paused_by = status

    @staticmethod
    def _tenant_scope(headers: Mapping[str, str]) -> bool:
        return headers.get("x-ms-throttle-scope", "").lower().startswith("tenant/")

    def _attribute(self, headers: Mapping[str, str], throttled: bool = False) -> list[AdaptiveBucket]:
        """Which bucket a throttle signal is about: Graph names it on 429s
        (`x-ms-throttle-information`, `x-ms-throttle-scope`); otherwise the busiest one.
        A 429 for another reason (`CPULimitExceeded`: the service is busy, not our quota)
        pauses the pool but lowers no rate."""
        info = headers.get("x-ms-throttle-information", "").lower()
        if "resourceunit" in info:
            return [self.resource_units]
        if "write" in info:
            if self._tenant_scope(headers) and self.budget is not None:
                return [self.budget.bucket]
            return [self.writes]
        if throttled and info:
            return []
        candidates = [self.writes, self.resource_units]
        if self.budget is not None:
            candidates.append(self.budget.bucket)
        return [max(candidates, key=lambda b: b.utilisation())]

    # ---- looking -----------------------------------------------------------------------------

    @property
    def write_rate(self) -> float:
        """Writes per second the pacer currently allows (its own bucket)."""
        return self.writes.rate

    @property
    def resource_unit_rate(self) -> float:
        return self.resource_units.rate


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


__all__ = ["Clock", "Pacer", "PacerStats", "Sleep", "TenantBudget"]
