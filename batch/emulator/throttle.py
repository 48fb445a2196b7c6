"""Graph's identity throttling as token buckets (GRAPH.md §9.2, §9.3).

Scopes, each a bucket that refills continuously: resource units per app+tenant (by tenant
size), writes per app+tenant, resource units per app, writes per app, writes per tenant.
A request is admitted when every bucket it touches holds enough; otherwise it gets a 429
naming the first exhausted scope, with `Retry-After` = the time that bucket needs.

Graph says every request accrues cost, refused ones included; so a refused request still
pays its resource units (the bucket may go into debt, at most one capacity deep), while
a refused write, which wrote nothing, pays no write.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .settings import Quota, Quotas


@dataclass
class Bucket:
    quota: Quota
    level: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.quota.amount, self.level + (now - self.updated) * self.quota.rate)
            self.updated = now

    def used_fraction(self) -> float:
        return 1.0 - self.level / self.quota.amount

    def wait_for(self, amount: float, floor: float = 0.0) -> float:
        """Seconds until the bucket holds `amount` above `floor`."""
        missing = amount + floor - self.level
        return max(0.0, missing / self.quota.rate)


@dataclass(frozen=True)
class Cost:
    resource_units: int
    writes: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    resource_units: int
    retry_after: int = 0
    scope: str = ""
    information: str = ""
    limit_percentage: float | None = None


def request_cost(method: str, segments: list[str], query: dict[str, str], tenant_kind: str) -> Cost:
    """GRAPH.md §9.2: `GET users` 2, other GETs 1, writes 1 RU + 1 write; `$select` −1,
    `$top` < 20 −1, `$expand` +1; a user created in a B2C tenant +4; never below 1."""
    method = method.upper()
    if method == "GET":
        is_list = len(segments) == 1 and segments[0].lower() == "users"
        units = 2 if is_list else 1
        writes = 0
    else:
        units, writes = 1, 1
        if method == "POST" and len(segments) == 1 and segments[0].lower() == "users" and tenant_kind == "b2c":
            units += 4
    if "$select" in query:
        units -= 1
    if "$expand" in query:
        units += 1
    top = query.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        units -= 1
    return Cost(max(1, units), writes)


class Throttle:
    def __init__(self, quotas: Quotas, clock: Callable[[], float]) -> None:
        self.quotas = quotas
        self.clock = clock
        self._buckets: dict[tuple[str, ...], Bucket] = {}

    def _bucket(self, key: tuple[str, ...], quota: Quota, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.quota != quota:
            bucket = self._buckets[key] = Bucket(quota, quota.amount, now)
        bucket.refill(now)
        return bucket

    def admit(self, *, app_id: str, tenant_id: str, size_class: str, cost: Cost, low_priority: bool = False) -> Decision:
        if not self.quotas.enabled:
            return Decision(True, cost.resource_units)
        now = self.clock()
        q = self.quotas
        ru = [
            ("Tenant_Application", "ResourceUnitLimitExceeded", "ReadWrite",
             self._bucket(("ru", app_id, tenant_id), q.resource_units[size_class], now)),
            ("Application", "ResourceUnitLimitExceeded", "ReadWrite",
             self._bucket(("ru", app_id), q.app_resource_units, now)),
        ]
        writes = []
        if cost.writes:
            writes = [
                ("Tenant_Application", "WriteLimitExceeded", "Write",
                 self._bucket(("w", app_id, tenant_id), q.app_tenant_writes, now)),
                ("Application", "WriteLimitExceeded", "Write", self._bucket(("w", app_id), q.app_writes, now)),
                ("Tenant", "WriteLimitExceeded", "Write", self._bucket(("w", tenant_id), q.tenant_writes, now)),
            ]
        checks = [(scope, info, limit, b, cost.resource_units) for scope, info, limit, b in ru]
        checks += [(scope, info, limit, b, cost.writes) for scope, info, limit, b in writes]
        refusal = None
        for scope, info, limit, bucket, amount in checks:
            floor = q.low_priority_reserve * bucket.quota.amount if low_priority else 0.0
            if bucket.level - amount < floor:
                wait = bucket.wait_for(amount, floor)
                if refusal is None or wait > refusal[0]:
                    subject = tenant_id if scope != "Application" else app_id
                    refusal = (wait, f"{scope}/{limit}/{app_id}/{subject}", info)
        if refusal is not None:
            for _, _, _, bucket, _ in checks[: len(ru)]:
                bucket.level = max(-bucket.quota.amount, bucket.level - cost.resource_units)
            wait, scope_header, info = refusal
            return Decision(False, cost.resource_units, retry_after=max(1, math.ceil(wait)), scope=scope_header,
                            information=info, limit_percentage=_percentage(checks))
        for _, _, _, bucket, amount in checks:
            bucket.level -= amount
        return Decision(True, cost.resource_units, limit_percentage=_percentage(checks))


def _percentage(checks: list[tuple[str, str, str, Bucket, int]]) -> float | None:
    """`x-ms-throttle-limit-percentage` appears only above 0.8 of a limit, up to 1.8."""
    used = max(bucket.used_fraction() for _, _, _, bucket, _ in checks)
    if used <= 0.8:
        return None
    return round(min(1.8, used), 2)
