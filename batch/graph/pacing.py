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

`AppPool` spreads work over several app registrations of one tenant (each its own quota and
credentials), bounded together by a shared `TenantBudget`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from batch.graph.retry import parse_retry_after

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_EPSILON = 1e-6  # shorter waits are rounding (a Unix-time clock ticks in ~2e-7 s): go ahead


@dataclass(frozen=True)
class Quota:
    """`amount` units per `seconds`, refilled continuously (Graph's token buckets)."""

    amount: float
    seconds: float

    def __post_init__(self) -> None:
        if self.amount <= 0 or self.seconds <= 0:
            raise ValueError(f"a quota needs a positive amount and period, got {self.amount}/{self.seconds}")

    @property
    def rate(self) -> float:
        return self.amount / self.seconds

    @classmethod
    def parse(cls, text: str) -> "Quota":
        """`3000/150` → 3,000 per 150 seconds."""
        amount, sep, seconds = text.strip().rstrip("s").partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(float(amount), float(seconds))
        except ValueError:
            raise ValueError(f"expected a quota as N/SECONDS (for example 3000/150), got {text!r}") from None

    def __str__(self) -> str:
        return f"{self.amount:g}/{self.seconds:g}s"


DOCUMENTED_WRITES = Quota(3000, 150)  # per app and tenant (GRAPH.md §9.2)
DOCUMENTED_RESOURCE_UNITS = Quota(8000, 10)  # per app and tenant, large tenant (> 500 users)
DOCUMENTED_TENANT_WRITES = Quota(18_000, 300)  # per tenant, all apps together


@dataclass(frozen=True)
class PacingSettings:
    """How a pacer adapts. The defaults were tuned against the emulator's throttle model with
    hidden quotas of 1/4 to 1 times the documented ones (tests/graph/test_pacing.py)."""

    target: float = 0.97  # share of the quota's rate aimed at when nothing is heard
    peak: float = 5.0  # while spending the documented burst, at most peak × the rate
    smoothing_seconds: float = 1.0  # after the burst: no more than this much rate saved up
    high_water: float = 0.8  # Graph sends the limit percentage above 0.8
    warn_cut: float = 1.0  # on a limit percentage p: rate × (1 - warn_cut·(p - high_water))
    throttle_cut: float = 0.7  # on a 429: rate × throttle_cut
    adjust_interval: float = 0.5  # 429s within this interval count as one (a batch brings many)
    warn_interval: float = 2.0  # at most one cut for limit percentages per interval
    safe_share: float = 0.85  # after a 429, the rate below which creeping back is quick
    quiet_seconds: float = 1.0  # no signal for this long, and the rate starts to creep back
    creep_per_second: float = 0.08  # below the safe rate, it grows by ~8% per second of calm answers
    probe_per_second: float = 0.005  # above it, by ~0.5% per second
    after_burst: float = 0.8  # share of the rate to restart from when the burst meets the edge
    floor: float = 0.02  # never below this share of the quota's rate
    explore: float = 8.0  # calm answers may take the rate up to this multiple of the quota's
    default_pause: float = 1.0  # a 429 without Retry-After pauses the pool this long
    utilisation_window: float = 2.0  # seconds over which each bucket's recent use is weighed

    def __post_init__(self) -> None:
        if not 0 < self.target <= 1 or not 0 < self.floor <= self.target or self.peak < 1 or self.explore < 1:
            raise ValueError("pacing needs 0 < floor <= target <= 1, peak >= 1 and explore >= 1")


class _Bucket:
    """A client-side token bucket whose rate adapts to what Graph says."""

    def __init__(self, name: str, quota: Quota, settings: PacingSettings, now: float) -> None:
        self.name = name
        self.quota = quota
        self.s = settings
        self.factor = 1.0  # adaptive share of `target × quota.rate`
        self.bursting = True  # spending the documented burst until Graph shows the edge
        self.level = quota.amount
        self.peak_cap = max(1.0, quota.rate * settings.smoothing_seconds)
        self.peak_level = self.peak_cap
        self.updated = now
        self.last_cut = -math.inf
        self.last_warn_cut = -math.inf
        self.last_warn_percentage = 0.0
        self.cut_base = 1.0
        self.safe = settings.explore  # below this share, creep quickly; lowered by 429s
        self.last_signal = now
        self.last_creep = now
        self.recent = 0.0  # exponentially weighted recent use (utilisation)
        self.cuts = 0

    @property
    def rate(self) -> float:
        return self.quota.rate * self.s.target * self.factor

    @property
    def smoothing_cap(self) -> float:
        return max(1.0, self.rate * self.s.smoothing_seconds)

    @property
    def cap(self) -> float:
        """The most that may be saved up: the documented burst at first, then about a second."""
        return self.quota.amount if self.bursting else self.smoothing_cap

    def refill(self, now: float) -> None:
        dt = now - self.updated
        if dt <= 0:
            return
        self.level = min(self.cap, self.level + self.rate * dt)
        if self.bursting:
            self.peak_level = min(self.peak_cap, self.peak_level + self.rate * self.s.peak * dt)
        self.recent *= math.exp(-dt / self.s.utilisation_window)
        self.updated = now

    def wait(self, amount: float) -> float:
        """Seconds until `amount` may be taken (a request bigger than the bucket waits for a
        full bucket and leaves it in debt, which keeps the average rate)."""
        if amount <= 0:
            return 0.0
        waits = [max(0.0, min(amount, self.cap) - self.level) / self.rate]
        if self.bursting:
            waits.append(max(0.0, min(amount, self.peak_cap) - self.peak_level) / (self.rate * self.s.peak))
        return max(waits)

    def take(self, amount: float) -> None:
        if amount <= 0:
            return
        self.level -= amount
        self.recent += amount
        if self.bursting:
            self.peak_level -= amount
            if self.level <= self.smoothing_cap:  # the documented burst is spent
                self._end_burst()

    def utilisation(self) -> float:
        return self.recent / (self.s.utilisation_window * self.quota.rate)

    def _end_burst(self, edge: bool = False) -> None:
        self.bursting = False
        if edge:
            # Graph showed the edge of its bucket during the burst: its real rate may be far
            # below the documented one. Restart from a share of it and climb back quickly.
            self.factor = min(self.factor, self.s.after_burst)
        self.level = min(self.level, self.cap)

    def warned(self, now: float, percentage: float) -> None:
        """Graph says a bucket is more than 80% used: stop spending saved-up tokens, stop
        creeping up, and slow down a little (the closer to 1.0, the more)."""
        self.last_signal = now
        if self.bursting:
            self._end_burst(edge=True)
        self.level = min(self.level, 0.0)
        if now - self.last_warn_cut >= self.s.warn_interval:
            # Only while the server's bucket is not refilling: a falling percentage means
            # we are already below its rate, and cutting again would undershoot.
            if percentage >= self.last_warn_percentage - 0.02:
                self.cuts += 1
                self._lower(self.factor * max(0.5, 1.0 - self.s.warn_cut * (percentage - self.s.high_water)))
            self.last_warn_cut = now
            self.last_warn_percentage = percentage

    def throttled(self, now: float) -> None:
        """A 429: cut hard, and remember below which rate it is safe to climb back quickly."""
        self.last_signal = now
        if now - self.last_cut >= self.s.adjust_interval:  # a batch brings many 429s: count them once
            self.last_cut = now
            self.cut_base = self.factor
            self.cuts += 1
        if self.bursting:
            self._end_burst(edge=True)
        self.safe = self.cut_base * self.s.safe_share
        self.level = min(self.level, 0.0)
        self._lower(self.cut_base * self.s.throttle_cut)

    def calm(self, now: float) -> None:
        """An answer without any throttle signal: after a quiet spell, creep back up —
        quickly up to the last safe rate, slowly beyond it (where the last 429 was)."""
        start = max(self.last_creep, self.last_signal + self.s.quiet_seconds)
        if now > start and self.factor < self.s.explore:
            speed = self.s.creep_per_second if self.factor < self.safe else self.s.probe_per_second
            self.factor = min(self.s.explore, self.factor * math.exp(speed * (now - start)))
        self.last_creep = max(self.last_creep, now)

    def _lower(self, factor: float) -> None:
        factor = max(self.s.floor / self.s.target, factor)
        if factor < self.factor:
            self.factor = factor
            self.level = min(self.level, self.cap)


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

    def __init__(self, writes: Quota = DOCUMENTED_TENANT_WRITES, *, settings: PacingSettings = PacingSettings(),
                 clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.bucket = _Bucket("tenant writes", writes, settings, clock())
        self.not_before = -math.inf


class Pacer:
    """One app registration's pace, shared by all workers that use its credentials.

    `acquire(writes, resource_units)` waits (FIFO) until every bucket has room and the shared
    "not before" time has passed; `observe(status, headers)` is told every answer (each inner
    answer of a $batch too)."""

    def __init__(self, writes: Quota = DOCUMENTED_WRITES, resource_units: Quota = DOCUMENTED_RESOURCE_UNITS, *,
                 budget: TenantBudget | None = None, settings: PacingSettings = PacingSettings(),
                 clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, name: str = "") -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.name = name
        now = clock()
        self.writes = _Bucket("writes", writes, settings, now)
        self.resource_units = _Bucket("resource units", resource_units, settings, now)
        self.budget = budget
        self.not_before = -math.inf
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
        retry_after = parse_retry_after(lower.get("retry-after"), time.time())
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
            self._pause(now, retry_after, tenant_wide=False)
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

    def _buckets(self) -> list[_Bucket]:
        buckets = [self.writes, self.resource_units]
        if self.budget is not None:
            buckets.append(self.budget.bucket)
        return buckets

    def _pause(self, now: float, seconds: float, *, tenant_wide: bool) -> None:
        holder: Pacer | TenantBudget = self.budget if tenant_wide and self.budget is not None else self
        until = now + max(0.0, seconds)
        if until > holder.not_before:
            holder.not_before = until
            self.stats.pauses += 1

    @staticmethod
    def _tenant_scope(headers: Mapping[str, str]) -> bool:
        return headers.get("x-ms-throttle-scope", "").lower().startswith("tenant/")

    def _attribute(self, headers: Mapping[str, str], throttled: bool = False) -> list[_Bucket]:
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

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "write_rate": round(self.writes.rate, 3),
                "resource_unit_rate": round(self.resource_units.rate, 3), **self.stats.as_dict()}


@dataclass
class PoolMember:
    """One app registration of a pool: its pacer and its credentials (a `TokenProvider`)."""

    pacer: Pacer
    token_provider: Any = None
    name: str = ""


class AppPool:
    """Several app registrations of one tenant: each request goes to the app whose pacer can
    serve it first; all of them draw on one `TenantBudget`."""

    def __init__(self, members: Sequence[PoolMember], budget: TenantBudget | None = None) -> None:
        if not members:
            raise ValueError("an app pool needs at least one app")
        self.members = list(members)
        self.budget = budget if budget is not None else self.members[0].pacer.budget
        if self.budget is None:
            self.budget = TenantBudget(clock=self.members[0].pacer.clock)
        for member in self.members:
            if member.pacer.budget is None:
                member.pacer.budget = self.budget
            elif member.pacer.budget is not self.budget:
                raise ValueError("every pacer of an app pool must share the pool's tenant budget")
        self._next = 0

    @classmethod
    def of(cls, token_providers: Sequence[Any], *, writes: Quota = DOCUMENTED_WRITES,
           resource_units: Quota = DOCUMENTED_RESOURCE_UNITS, tenant_writes: Quota = DOCUMENTED_TENANT_WRITES,
           settings: PacingSettings = PacingSettings(), clock: Clock = time.monotonic,
           sleep: Sleep = asyncio.sleep) -> "AppPool":
        """A pool with one pacer per token provider, all seeded from the same quotas."""
        budget = TenantBudget(tenant_writes, settings=settings, clock=clock)
        members = [PoolMember(Pacer(writes, resource_units, budget=budget, settings=settings, clock=clock,
                                    sleep=sleep, name=f"app{i + 1}"), provider, f"app{i + 1}")
                   for i, provider in enumerate(token_providers)]
        return cls(members, budget)

    async def acquire(self, writes: int, resource_units: int) -> PoolMember:
        """Wait for the app with the earliest availability; return it (its pacer has granted)."""
        count = len(self.members)
        order = [self.members[(self._next + i) % count] for i in range(count)]
        self._next = (self._next + 1) % count
        member = min(order, key=lambda m: m.pacer.ready_in(writes, resource_units))
        await member.pacer.acquire(writes, resource_units)
        return member

    @property
    def stats(self) -> PacerStats:
        total = PacerStats()
        for member in self.members:
            s = member.pacer.stats
            total.throttled += s.throttled
            total.pauses += s.pauses
            total.warnings += s.warnings
            total.cuts += s.cuts
            total.waits += s.waits
            total.total_wait += s.total_wait
        return total


# ---- what a request costs (GRAPH.md §9.2) -----------------------------------------------------

@dataclass(frozen=True)
class Cost:
    writes: int
    resource_units: int


def request_cost(method: str, url: str, *, b2c: bool = False) -> Cost:
    """Graph's documented cost of one identity request: `GET /users` (the collection) 2 RU,
    other GETs 1, writes 1 RU and 1 write; `$select` −1, `$expand` +1, `$top` < 20 −1, never
    below 1; creating a user in a B2C tenant +4."""
    parts = urlsplit(url)
    path = parts.path
    for prefix in ("/v1.0", "/beta"):
        if path.startswith(prefix + "/"):
            path = path[len(prefix):]
    segments = [s for s in path.split("/") if s]
    query = {k.lower().lstrip("$"): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    method = method.upper()
    if method == "GET":
        writes, units = 0, 2 if [s.lower() for s in segments] == ["users"] else 1
    else:
        writes, units = 1, 1
        if b2c and method == "POST" and [s.lower() for s in segments] == ["users"]:
            units += 4
    if "select" in query:
        units -= 1
    if "expand" in query:
        units += 1
    top = query.get("top", "")
    if top.isdigit() and int(top) < 20:
        units -= 1
    return Cost(writes, max(1, units))


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


__all__ = [
    "AppPool", "Cost", "DOCUMENTED_RESOURCE_UNITS", "DOCUMENTED_TENANT_WRITES", "DOCUMENTED_WRITES", "Pacer",
    "PacerStats", "PacingSettings", "PoolMember", "Quota", "TenantBudget", "request_cost",
]
