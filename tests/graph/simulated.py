"""A simulated Graph behind the pacer, in virtual time: the emulator's own throttle model
with quotas the pacer is not told, answering each $batch after a latency (tests/graph/
test_pacing.py, benchmarks/pacing_grid.py)."""

from __future__ import annotations

import asyncio
import math
import random

from batch.emulator.settings import Quota as ServerQuota
from batch.emulator.settings import Quotas
from batch.emulator.throttle import Cost as ServerCost
from batch.emulator.throttle import Throttle
from batch.graph.pacing import Pacer
from batch.graph.pool import AppPool

try:
    from .fakes import FakeClock
except ImportError:  # tests/graph is not a package
    from fakes import FakeClock  # type: ignore[no-redef]

EMULATOR_SPREAD = 0.35  # the emulator's latency sigma (batch/emulator/settings.py `Latency`)


class SimulatedGraph:
    """Graph's write buckets with quotas the pacer is not told (the emulator's throttle
    model), answering each $batch after `latency` seconds. `tenant` puts the quota on the
    tenant (an app pool's shared limit) instead of the app. `spread`: the emulator's latency
    instead, a log-normal of that sigma around `latency` for each item, a $batch admitted on
    arrival and answered after its slowest item, its answers in any order (seeded by `seed`)."""

    def __init__(self, vt: FakeClock, writes: ServerQuota, latency: float = 0.2, *, tenant: bool = False,
                 service: float = 0.0, spread: float = 0.0, seed: int = 0) -> None:
        self.vt = vt
        quotas = Quotas(tenant_writes=writes) if tenant else Quotas(app_tenant_writes=writes)
        self.throttle = Throttle(quotas, vt.clock)
        self.latency = latency
        self.spread = spread
        self.rng = random.Random(seed)
        self.service = service  # seconds of the server's one CPU per request (the emulator's, when it is the limit)
        self.busy_until = -math.inf
        self.admitted = 0
        self.refused = 0

    async def send(self, pacer: Pacer | AppPool, size: int) -> int:
        """A batch of `size` creates: each item admitted or refused on its own. Returns
        how many were admitted."""
        if isinstance(pacer, AppPool):
            member = await pacer.acquire(size, size)
            app, own = member.name, member.pacer
        else:
            await pacer.acquire(size, size)
            app, own = "app", pacer
        if not self.spread:
            await self.vt.sleep(self.latency / 2)
        if self.service:  # queue for the server's CPU
            start = max(self.vt.clock(), self.busy_until)
            self.busy_until = start + size * self.service
            await self.vt.sleep(self.busy_until - self.vt.clock())
        answers = []
        for _ in range(size):
            decision = self.throttle.admit(app_id=app, tenant_id="t", size_class="L", cost=ServerCost(1, 1))
            headers = {"x-ms-resource-unit": "1"}
            if decision.limit_percentage is not None:
                headers["x-ms-throttle-limit-percentage"] = f"{decision.limit_percentage:.2f}"
            if decision.allowed:
                self.admitted += 1
                answers.append((201, headers))
            else:
                self.refused += 1
                headers.update({"Retry-After": str(decision.retry_after), "x-ms-throttle-information": decision.information,
                                "x-ms-throttle-scope": decision.scope})
                answers.append((429, headers))
        if self.spread:
            await self.vt.sleep(max(self.latency * math.exp(self.rng.gauss(0.0, self.spread)) for _ in range(size)))
            self.rng.shuffle(answers)
        else:
            await self.vt.sleep(self.latency / 2)
        for status, headers in answers:
            own.observe(status, headers)
        return sum(1 for status, _ in answers if status == 201)


async def drive(vt: FakeClock, graph: SimulatedGraph, pacer: Pacer | AppPool, rows: int, workers: int,
                size: int = 20) -> float:
    """Send `rows` creates in batches of `size` from `workers` workers, re-sending refusals
    after a second (their Retry-After); return the elapsed virtual seconds."""
    todo = [rows]

    async def worker() -> None:
        while todo[0] > 0:
            take = min(size, todo[0])
            todo[0] -= take
            admitted = await graph.send(pacer, take)
            todo[0] += take - admitted
            if admitted < take:
                await vt.sleep(1.0)

    start = vt.clock()
    await vt.run(asyncio.gather(*(worker() for _ in range(workers))))
    return vt.clock() - start


def ceiling_share(hidden: ServerQuota, rows: int, elapsed: float, latency_bound: float = 0.0) -> float:
    """Elapsed time of the fastest any client could go, over ours: 1.0 is the ceiling."""
    return max(latency_bound, max(0.0, rows - hidden.amount) / hidden.rate) / elapsed
