"""Pacing at Graph's throttling limits, shared by every worker (GRAPH.md §9, PRODUCT.md
"Pacing").

Graph's identity limits are token buckets: resource units per app+tenant (8,000 per 10 s in a
large tenant), writes per app+tenant (3,000 per 150 s) and writes per tenant across all apps
(18,000 per 300 s). A tenant may enforce other numbers than the documented ones, and never
says which: the documented quota is a starting belief, not a ceiling. Each app registration
gets one `Pacer` that every worker asks before it sends (`acquire`) and tells every answer
(`observe`); each of its limits is an `AdaptiveBucket` (`bucket.py`) that learns the server's
bucket behind it: its allowance C (the window's burst) and its refill rate r.

State machine of one bucket:

    BURST ──(a limit percentage says the allowance is spent / a 429 / the believed allowance
    │        is spent without a signal)──> SUSTAIN
    SUSTAIN ⇄ PROBE (no signal for `quiet_seconds`: the rate grows; a signal stops it)

- BURST: spend the window's allowance (believed: the documented amount) at once, bounded only
  by a ramp on what is in flight: one $batch (20) first, plus 30% of everything answered
  without a signal (`ramp_growth`: A calm answers prove an allowance of at least A / 0.8, so
  about a quarter more may be in flight without a 429; growing by half drew 2% 429s at
  100/4), but two $batches from A = 60 (`ramp_second`) and no more than two until A = 200
  (`ramp_plateau`): the refill counts among the calm answers, so a window of 100 at 300 ms
  met its edge at A ≈ 165 with three $batches in flight, where Graph warns for only one
  (`AdaptiveBucket.window`). A request the ramp holds goes as soon as the next answer
  widens it. Graph sends `x-ms-throttle-limit-percentage` p once a bucket is more than 80%
  used: the first p gives the allowance, C ≈ (admitted so far - the refill since the first
  admitted) / p (the refill at the believed rate, then again at each measured one), and
  every p the remaining allowance (1 - p)·C, minus what is in flight: the burst spends
  exactly that and ends before the 429, not after.
- SUSTAIN: pace at the learned rate. Two percentages Δt apart with W writes admitted between
  them measure Graph's refill rate: r = (W - C·Δp) / Δt (Δt long enough that p's rounding to
  0.01 is noise: `resolution`); the pace is `sustain_share` (98%) of the smoothed estimate.
  One measurement lowers the rate to no less than `deepest_cut` (70%) of it: a single noisy
  pair once measured ~0/s (an earlier trace: a 52 s stall). A measurement whose refill
  covers all that the first reading found used (r·Δt ≥ p·C) is only a lower bound, since
  Graph's bucket may have been full in between and lost the rest: it never slows the pace
  (a window of one $batch, 20/2, slid to 0.22 of its ceiling on such readings). Every p
  bounds what may be spent by what Graph still holds, (1 - p)·C less what is in flight; and
  when that is more than two $batches beyond p's rounding (0.005·C) (the refill of a burst
  bound by latency or the server's CPU: ~10% of a 3000/150 window), it is spent at once
  rather than left idle at the sustained rate. A calm answer after a percentage is a bound
  (Graph's bucket climbed back under 80%): r ≥ (W + C·(p - 0.8)) / Δt,
  the proven rate. A percentage lower than one read before, by more than Graph can have
  refilled since, is a late answer (the $batches in flight come back out of the order Graph
  counted them in): the earlier one, less that refill, is taken instead (`_freshest`).
- PROBE: with no signal at all, the rate grows by `probe_fast` (10%/s) while it is below the
  measured rate (or nothing was measured), by `probe_per_second` (0.5%/s) above it, up to
  `explore` × the documented rate. Probing starts from a bucket Graph holds full, so the first
  percentage comes late and proves the pace too fast: the rate goes back to the proven rate
  (by at most `deepest_cut`) until the next percentage measures where Graph's rate is.
- A 429 on a bucket's limit means Graph's bucket is empty: the rate measured since the last
  percentage (taking p = 1) becomes the learned rate, and pacing resumes there, not from a
  fraction of the old pace. 429s answering requests granted during the burst (the burst's
  tail, within `tail_seconds` of its end) teach nothing about the rate: they only pause; nor
  do the few admitted among them bound it (read against a bucket found empty, they once
  "proved" 6.8/s of a tenant's 30/s, and that run finished at 0.57 of the ceiling). Until
  the first measurement after a burst that met a window smaller than believed, the pace is
  `after_burst` (half) of the belief, at most half of one app's documented write rate.
- Every 429 (or 503 with Retry-After) sets a "not before" time that holds *every* worker of
  the pacer (or of the whole app pool when the scope is the tenant).

A limit percentage does not say which limit it is about: it goes to the bucket busiest
relative to its learned rate (a 429 names its limit, by `x-ms-throttle-information` or its
scope). `AppPool` (`pool.py`) spreads work over several app registrations of one tenant, each
with its own `Pacer`, all sharing one `TenantBudget`, whose bucket learns the tenant's write
quota the same way (its in-flight ramp and its tail count every app's requests; what any app
heard is applied before any app spends it). The quotas and what a request costs are in
`quotas.py`. The state changes are logged at DEBUG on `batch.graph.pacing`
(`benchmarks/pacing.py --trace`).

Measured (benchmarks/pacing.py, and in virtual time tests/graph/test_pacing.py): see the
numbers in that benchmark's docstring.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from batch.graph.bucket import AdaptiveBucket, trace
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


_INSTANT = 0.005  # answers this close together are one observation (the items of a $batch)


@dataclass
class _Signal:
    """What one instant's answers said about one bucket."""

    bucket: AdaptiveBucket
    percentage: float | None = None  # the highest limit percentage
    throttled: bool = False  # a 429 on its limit (not a burst's tail)
    tail: bool = False  # a 429 answering a request granted during a burst
    calm: bool = False  # an answer without any signal


@dataclass
class PacerStats:
    throttled: int = 0  # 429 answers observed
    pauses: int = 0  # times a Retry-After held the pool
    warnings: int = 0  # answers carrying a limit percentage above 0.8
    cuts: int = 0  # times a rate was lowered
    waits: int = 0  # times an acquire had to wait
    tail: int = 0  # 429s that answered requests granted during a burst (no rate signal)
    total_wait: float = 0.0  # seconds spent waiting in acquire, all workers together

    def as_dict(self) -> dict[str, float]:
        return {"throttled": self.throttled, "pauses": self.pauses, "warnings": self.warnings, "cuts": self.cuts,
                "tail": self.tail, "waits": self.waits, "total_wait_seconds": round(self.total_wait, 3)}


class TenantBudget:
    """The tenant-wide write quota (18,000 per 300 s) shared by an app pool's pacers, with
    its own "not before" for 429s whose scope is the whole tenant."""

    def __init__(self, writes: Quota = DOCUMENTED_TENANT_WRITES, *, settings: PacingSettings = DEFAULT_PACING,
                 clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.bucket = AdaptiveBucket("tenant writes", writes, settings, clock(), ramp=True)
        self.not_before = -math.inf
        self.app_named = False  # the last write 429 named an app's own quota, not the tenant's
        self.pacers: list[Pacer] = []  # the app pool's pacers: what one of them heard, all of them apply


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
        self.writes = AdaptiveBucket("writes", writes, settings, now, ramp=True)
        self.resource_units = AdaptiveBucket("resource units", resource_units, settings, now)
        self._budget: TenantBudget | None = None
        self.budget = budget
        self.not_before = -math.inf
        self.paused_by = 429  # the status of the answer that set not_before
        self.hold: Hold | None = None  # what acquire last slept for, and until when (a read-out; `_why`)
        self.stats = PacerStats()
        self._lock = asyncio.Lock()
        self._queued_writes = 0
        self._queued_units = 0
        self._pending: dict[int, _Signal] = {}  # this instant's signals, by bucket
        self._pending_at = now

    @property
    def budget(self) -> TenantBudget | None:
        """The tenant's write quota this app shares with the rest of its pool."""
        return self._budget

    @budget.setter
    def budget(self, budget: TenantBudget | None) -> None:
        if self._budget is not None and self in self._budget.pacers:
            self._budget.pacers.remove(self)
        self._budget = budget
        if budget is not None:
            budget.pacers.append(self)

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
                    self.hold = Hold(self._why(now, writes, resource_units), now + wait)
                    held = [b for b in self._write_buckets() if b.ramp_holds(writes)]
                    if held and wait <= self.settings.ramp_poll:
                        await self._await_answer(held, wait)
                    else:
                        await self.sleep(wait)
                    held_for = max(0.0, self.clock() - now)
                    self.stats.total_wait += held_for
                    if held_for >= 1.0:
                        trace.debug("%.3f %s held %.2f s by the %s", now, self.name or "pacer", held_for, self.hold.reason)
        finally:
            self._queued_writes -= writes
            self._queued_units -= resource_units

    async def _await_answer(self, buckets: list[AdaptiveBucket], poll: float) -> None:
        """Held by a burst's ramp: wait for the next answer (the ramp widens with it), or at
        most `poll` seconds. Polling alone lost up to a poll interval on every round trip."""
        waker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for bucket in buckets:
            bucket.wakers.append(waker)
        nap = asyncio.ensure_future(self.sleep(poll))
        try:
            await asyncio.wait({nap, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            waker.cancel()

    def _write_buckets(self) -> list[AdaptiveBucket]:
        return [self.writes] if self.budget is None else [self.writes, self.budget.bucket]

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

    def _refill(self, now: float, *, flush: bool = True) -> None:
        if flush and self.budget is not None:
            # Another app's answers may end the tenant's burst or lower its rate: apply them
            # before this app spends the shared budget (a pool once sent a $batch into a
            # tenant window that another app had already found empty).
            for pacer in self.budget.pacers:
                pacer._flush()
        elif flush or now - self._pending_at >= _INSTANT or now < self._pending_at:
            self._flush()
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
        """Learn from one answer (status and headers; an inner $batch answer counts too).

        The answers of one instant (the items of a $batch, which Graph may answer in any
        order) are one observation: what they spent, the highest limit percentage among them
        (Graph's bucket after all of them), any 429. It is applied when time moves on."""
        lower = {k.lower(): v for k, v in headers.items()}
        now = self.clock()
        self._refill(now, flush=False)
        retry_after = retry_after_of(lower)
        percentage = _float(lower.get("x-ms-throttle-limit-percentage"))
        warned = percentage is not None and percentage > self.settings.high_water
        self._answered(now, status, lower, calm=not warned and status < 500 and status != 429)
        if status == 429:
            self.stats.throttled += 1
            for bucket in self._attribute(lower, throttled=True):
                if bucket.in_tail(now) or bucket.bursting:
                    self.stats.tail += 1  # the end of a burst: no rate signal
                    self._signal(bucket).tail = True
                else:
                    self._signal(bucket).throttled = True
            self._pause(now, retry_after if retry_after is not None else self.settings.default_pause,
                        tenant_wide=self._tenant_scope(lower))
            return
        if status == 503 and retry_after is not None:
            self._pause(now, retry_after, tenant_wide=False, status=503)
        if warned:
            assert percentage is not None
            self.stats.warnings += 1
            for bucket in self._attribute(lower):
                signal = self._signal(bucket)
                signal.percentage = max(signal.percentage or 0.0, percentage)
        elif status < 500:
            for bucket in self._buckets():
                self._signal(bucket).calm = True

    def _signal(self, bucket: AdaptiveBucket) -> _Signal:
        if not self._pending:
            self._pending_at = self.clock()
        return self._pending.setdefault(id(bucket), _Signal(bucket))

    def _flush(self) -> None:
        """Apply the last instant's observation: once time has moved on, or a worker asks."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for signal in pending.values():
            bucket = signal.bucket
            if signal.percentage is not None and bucket.warned(self._pending_at, signal.percentage):
                self.stats.cuts += 1
            if signal.tail and bucket.bursting:
                bucket.throttled(self._pending_at)  # ends the burst (no warning came first)
            if signal.throttled and bucket.throttled(self._pending_at):
                self.stats.cuts += 1
            if signal.calm and signal.percentage is None and not signal.throttled and not signal.tail:
                bucket.calm(self._pending_at)

    def _answered(self, now: float, status: int, headers: Mapping[str, str], *, calm: bool) -> None:
        """Count the answer against what each bucket has in flight: a write while writes are
        in flight (a 429 spent nothing), and the resource units Graph says it charged."""
        admitted = 0.0 if status == 429 else 1.0
        for bucket in (self.writes, self.budget.bucket if self.budget is not None else None):
            if bucket is not None and bucket.in_flight > 0:
                bucket.answered(now, admitted, calm=calm)
        units = _float(headers.get("x-ms-resource-unit"))
        self.resource_units.answered(now, units if units is not None and units > 0 else 1.0, calm=calm)

    def _buckets(self) -> list[AdaptiveBucket]:
        buckets = [self.writes, self.resource_units]
        if self.budget is not None:
            buckets.append(self.budget.bucket)
        return buckets

    def _pause(self, now: float, seconds: float, *, tenant_wide: bool, status: int = 429) -> None:
        holder: Pacer | TenantBudget = self.budget if tenant_wide and self.budget is not None else self
        until = now + max(0.0, seconds)
        if until > holder.not_before:
            trace.debug("%.3f %s paused %.1f s by a %d%s", now, self.name or "pacer", seconds, status,
                        " (the tenant)" if holder is not self else "")
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
            if self.budget is not None:
                self.budget.app_named = not self._tenant_scope(headers)
                if not self.budget.app_named:
                    return [self.budget.bucket]
            return [self.writes]
        if throttled and info:
            return []
        scope = headers.get("x-ms-throttle-scope", "").lower()
        if throttled and scope and not self._tenant_scope(headers):  # the app's own limit, named by scope alone
            if "/write/" in scope:
                if self.budget is not None:
                    self.budget.app_named = True
                return [self.writes]
            return [max((self.writes, self.resource_units), key=lambda b: b.utilisation())]
        writes = self.writes
        if self.budget is not None and not self.budget.app_named:
            writes = self.budget.bucket  # in a pool, the shared limit, until a 429 names an app's own
        return [max((writes, self.resource_units), key=lambda b: b.utilisation())]

    # ---- looking -----------------------------------------------------------------------------

    @property
    def write_rate(self) -> float:
        """Writes per second the pacer currently allows (its own bucket)."""
        self._flush()
        return self.writes.rate

    @property
    def resource_unit_rate(self) -> float:
        self._flush()
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
