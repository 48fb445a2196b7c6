"""The pacer: token buckets from Graph's documented quotas, a pause shared by every worker,
adaptation to `x-ms-throttle-limit-percentage` and 429s, and the app pool (GRAPH.md §9).

Time is virtual (`FakeClock`): it jumps to the next sleeper whenever every task waits, so
minutes of pacing run in milliseconds and deterministically. The hidden-quota tests stand a
simulated Graph (the emulator's own throttle model) behind the pacer.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from batch.auth import StaticTokenProvider
from batch.emulator.settings import Quota as ServerQuota
from batch.emulator.settings import Quotas
from batch.emulator.throttle import Cost as ServerCost
from batch.emulator.throttle import Throttle
from batch.graph.pacing import Pacer, TenantBudget
from batch.graph.pool import AppPool, PoolMember
from batch.graph.quotas import DOCUMENTED_RESOURCE_UNITS, DOCUMENTED_WRITES, Cost, PacingSettings, Quota, request_cost

try:
    from .fakes import FakeClock
except ImportError:  # tests/graph is not a package
    from fakes import FakeClock  # type: ignore[no-redef]


def apps(*tokens: str) -> list[StaticTokenProvider]:
    """Token providers for an app pool (the pacer never asks them for a token)."""
    return [StaticTokenProvider(token) for token in tokens]


def make_pacer(vt: FakeClock, writes: Quota = DOCUMENTED_WRITES, units: Quota = DOCUMENTED_RESOURCE_UNITS,
               **kwargs: Any) -> Pacer:
    return Pacer(writes, units, clock=vt.clock, sleep=vt.sleep, **kwargs)


# ---- costs and quotas --------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "url", "cost"), [
    ("GET", "/users", Cost(0, 2)),
    ("GET", "/users?$select=id,displayName&$top=999", Cost(0, 1)),
    ("GET", "/users/abc", Cost(0, 1)),
    ("GET", "/users/abc?$select=id", Cost(0, 1)),
    ("GET", "/users?$top=5", Cost(0, 1)),
    ("GET", "/users/abc?$expand=manager", Cost(0, 2)),
    ("GET", "/users?$filter=identities/any(c:c/issuerAssignedId eq 'a@b.c')", Cost(0, 2)),
    ("POST", "/users", Cost(1, 1)),
    ("PATCH", "/users/abc", Cost(1, 1)),
    ("DELETE", "/users/abc", Cost(1, 1)),
    ("POST", "/directory/deletedItems/abc/restore", Cost(1, 1)),
    ("GET", "https://graph.microsoft.com/v1.0/users?$skiptoken=x", Cost(0, 2)),
])
def test_request_cost(method: str, url: str, cost: Cost) -> None:
    assert request_cost(method, url) == cost


def test_b2c_create_costs_five_units() -> None:
    assert request_cost("POST", "/users", b2c=True) == Cost(1, 5)
    assert request_cost("PATCH", "/users/x", b2c=True) == Cost(1, 1)


def test_quota_parse() -> None:
    assert Quota.parse("3000/150") == Quota(3000, 150)
    assert Quota.parse(" 40 / 2s ").rate == 20
    for bad in ("3000", "a/b", "0/10", "10/0"):
        with pytest.raises(ValueError):
            Quota.parse(bad)


# ---- pacing at the configured quota -----------------------------------------------------------------

async def test_spends_the_burst_gently_then_runs_at_97_percent() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(100, 10))  # 10 writes/s, 100 saved up
    times: list[float] = []

    async def go() -> None:
        for _ in range(400):
            await pacer.acquire(1, 1)
            times.append(vt.clock())

    await vt.run(go())
    start = times[0]
    at_once = [t for t in times if t - start < 0.01]
    assert len(at_once) <= 11  # the burst is spent at a bounded peak pace, not all at once
    burst = [t for t in times if t - start < 2.0]
    assert len(burst) > 40  # but faster than the steady rate
    tail = times[200:]
    rate = (len(tail) - 1) / (tail[-1] - tail[0])
    assert rate == pytest.approx(10 * 0.97, rel=0.01)


async def test_batch_sized_requests_keep_the_average_rate() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(40, 2), settings=PacingSettings(target=1.0))
    times = []

    async def go() -> None:
        for _ in range(30):
            await pacer.acquire(20, 20)  # a $batch of 20 creates
            times.append(vt.clock())

    await vt.run(go())
    tail = times[10:]
    assert 20 * (len(tail) - 1) / (tail[-1] - tail[0]) == pytest.approx(20.0, rel=0.02)


async def test_resource_units_bind_reads() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt, units=Quota(100, 10))
    times = []

    async def go() -> None:
        for _ in range(200):
            await pacer.acquire(0, 2)  # GET /users: 2 units, no write
            times.append(vt.clock())

    await vt.run(go())
    tail = times[100:]
    assert 2 * (len(tail) - 1) / (tail[-1] - tail[0]) == pytest.approx(9.7, rel=0.02)


# ---- the shared pause ----------------------------------------------------------------------------------

async def test_429_pauses_every_worker_for_retry_after() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    granted: dict[str, float] = {}

    async def worker(name: str, delay: float) -> None:
        await vt.sleep(delay)
        await pacer.acquire(1, 1)
        granted[name] = vt.clock()

    async def scenario() -> None:
        await pacer.acquire(1, 1)
        t0 = vt.clock()
        pacer.observe(429, {"Retry-After": "5", "x-ms-throttle-information": "WriteLimitExceeded"})
        await asyncio.gather(worker("a", 0.1), worker("b", 1.0), worker("c", 4.9))
        assert all(t >= t0 + 5 for t in granted.values()), granted

    await vt.run(scenario())
    assert pacer.stats.throttled == 1 and pacer.stats.pauses == 1
    assert pacer.stats.total_wait > 0


async def test_503_with_retry_after_pauses_without_cutting() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    rate = pacer.write_rate
    pacer.observe(503, {"Retry-After": "2.5"})
    assert pacer.not_before == pytest.approx(vt.clock() + 2.5)
    assert pacer.write_rate == rate
    pacer.observe(503, {})
    pacer.observe(504, {"retry-after": "30"})
    assert pacer.not_before == pytest.approx(vt.clock() + 2.5)


async def test_429_without_retry_after_pauses_briefly() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer.observe(429, {})
    assert pacer.not_before == pytest.approx(vt.clock() + PacingSettings().default_pause)


# ---- adaptation ------------------------------------------------------------------------------------

def test_limit_percentage_lowers_the_rate_then_calm_lets_it_creep_back() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    full = pacer.write_rate
    assert full == pytest.approx(20 * 0.97)
    pacer._take(1, 1)  # noqa: SLF001 - make writes the busiest bucket
    pacer.observe(200, {"x-ms-throttle-limit-percentage": "0.95"})
    lowered = pacer.write_rate
    assert lowered < full * 0.9
    assert pacer.stats.warnings == 1 and pacer.stats.cuts == 1
    pacer.observe(200, {"x-ms-throttle-limit-percentage": "0.80"})  # at the threshold: not a warning
    assert pacer.stats.warnings == 1
    for _ in range(10):  # ten seconds of answers without the header
        vt.now += 1
        pacer.observe(201, {"x-ms-resource-unit": "1"})
    assert pacer.write_rate > lowered * 1.3
    for _ in range(20):  # and on, past the documented quota: Graph's warnings will say where to stop
        vt.now += 1
        pacer.observe(201, {"x-ms-resource-unit": "1"})
    assert pacer.write_rate > full


def test_429_cuts_hard_and_names_its_bucket() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    writes, units = pacer.write_rate, pacer.resource_unit_rate
    pacer.observe(429, {"Retry-After": "1", "x-ms-throttle-information": "ResourceUnitLimitExceeded"})
    assert pacer.resource_unit_rate == pytest.approx(units * 0.7)
    assert pacer.write_rate == writes
    for _ in range(15):  # a batch brings many 429s at once: they count as one cut
        pacer.observe(429, {"Retry-After": "1", "x-ms-throttle-information": "WriteLimitExceeded"})
    assert pacer.write_rate == pytest.approx(writes * 0.7)
    assert pacer.stats.throttled == 16


def test_a_busy_service_pauses_without_lowering_the_rate() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    rate = pacer.write_rate
    pacer.observe(429, {"Retry-After": "2", "x-ms-throttle-scope": "Tenant/ReadWrite/-/-",
                        "x-ms-throttle-information": "CPULimitExceeded"})
    assert pacer.not_before == pytest.approx(vt.clock() + 2)
    assert pacer.write_rate == rate and pacer.stats.cuts == 0


def test_warnings_do_not_cut_again_while_graph_refills() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer._take(1, 1)  # noqa: SLF001
    pacer.observe(200, {"x-ms-throttle-limit-percentage": "0.95"})
    first = pacer.write_rate
    vt.now += 3
    pacer.observe(200, {"x-ms-throttle-limit-percentage": "0.85"})  # falling: we are already below its rate
    assert pacer.write_rate == first
    vt.now += 3
    pacer.observe(200, {"x-ms-throttle-limit-percentage": "0.99"})  # rising again
    assert pacer.write_rate < first


class SimulatedGraph:
    """Graph's write and resource-unit buckets with a quota the pacer is not told (the
    emulator's throttle model), answering after `latency` seconds."""

    def __init__(self, vt: FakeClock, writes: ServerQuota, latency: float = 0.2) -> None:
        self.vt = vt
        self.throttle = Throttle(Quotas(app_tenant_writes=writes), vt.clock)
        self.latency = latency
        self.admitted = 0
        self.refused = 0

    async def send(self, pacer: Pacer, size: int) -> int:
        """A batch of `size` creates: each item admitted or refused on its own. Returns
        how many were admitted."""
        await pacer.acquire(size, size)
        await self.vt.sleep(self.latency / 2)
        answers = []
        for _ in range(size):
            decision = self.throttle.admit(app_id="app", tenant_id="t", size_class="L", cost=ServerCost(1, 1))
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
        await self.vt.sleep(self.latency / 2)
        for status, headers in answers:
            pacer.observe(status, headers)
        return sum(1 for status, _ in answers if status == 201)


async def drive(vt: FakeClock, graph: SimulatedGraph, pacer: Pacer, rows: int, workers: int,
                size: int = 20) -> float:
    """Send `rows` creates in batches of `size` from `workers` workers, re-sending refusals;
    return the elapsed virtual seconds."""
    todo = [rows]

    async def worker() -> None:
        while todo[0] > 0:
            take = min(size, todo[0])
            todo[0] -= take
            admitted = await graph.send(pacer, take)
            todo[0] += take - admitted

    start = vt.clock()
    await vt.run(asyncio.gather(*(worker() for _ in range(workers))))
    return vt.clock() - start


@pytest.mark.parametrize(("hidden", "rows"), [
    (ServerQuota(200, 5), 3000),  # twice the documented rate (the create benchmark's emulator)
    (ServerQuota(40, 2), 2000),  # the documented rate, a tiny burst
    (ServerQuota(300, 30), 3000),  # half the documented rate
    (ServerQuota(100, 10), 1500),  # half, with a small burst
    (ServerQuota(150, 30), 2000),  # a quarter
])
async def test_converges_on_a_hidden_smaller_quota(hidden: ServerQuota, rows: int) -> None:
    vt = FakeClock()
    graph = SimulatedGraph(vt, hidden)
    pacer = make_pacer(vt)  # seeded with the documented 3000/150: it is not told
    elapsed = await drive(vt, graph, pacer, rows, workers=16)
    ceiling = max(0.0, rows - hidden.amount) / hidden.rate  # the fastest any client could go
    share = graph.refused / (graph.admitted + graph.refused)
    print(f"hidden {hidden}: {rows / elapsed:.2f} rows/s for a quota of {hidden.rate:.2f}/s "
          f"({ceiling / elapsed:.0%} of the ceiling), 429 share {share:.2%}")
    assert graph.admitted == rows
    assert share < 0.02
    assert ceiling / elapsed > 0.85


async def test_documented_quota_runs_at_the_ceiling_without_429() -> None:
    vt = FakeClock()
    graph = SimulatedGraph(vt, ServerQuota(3000, 150), latency=0.5)
    pacer = make_pacer(vt)
    elapsed = await drive(vt, graph, pacer, 8000, workers=16)
    assert graph.refused == 0
    ceiling = (8000 - 3000) / 20
    print(f"documented quota 3000/150s: {8000 / elapsed:.2f} rows/s, {ceiling / elapsed:.0%} of the ceiling, no 429")
    assert ceiling / elapsed > 0.8  # the burst's last 20% stays unspent, as a margin


async def test_rate_creeps_back_when_the_quota_grows() -> None:
    vt = FakeClock()
    graph = SimulatedGraph(vt, ServerQuota(50, 10))  # 5/s
    pacer = make_pacer(vt)
    await drive(vt, graph, pacer, 600, workers=8)
    slow = pacer.write_rate
    assert slow < 8
    graph.throttle = Throttle(Quotas(app_tenant_writes=ServerQuota(3000, 150)), vt.clock)  # another app stopped
    await drive(vt, graph, pacer, 3000, workers=8)
    assert pacer.write_rate > 2 * slow


# ---- the app pool ---------------------------------------------------------------------------------------

async def test_app_pool_spreads_load_across_apps() -> None:
    vt = FakeClock()
    pool = AppPool.of(apps("token-a", "token-b", "token-c"), writes=Quota(20, 1), clock=vt.clock, sleep=vt.sleep)
    used: dict[str, int] = {}
    done: list[float] = []

    async def worker() -> None:
        for _ in range(100):
            member = await pool.acquire(1, 1)
            used[member.name] = used.get(member.name, 0) + 1
            done.append(vt.clock())

    await vt.run(asyncio.gather(*(worker() for _ in range(6))))
    assert sorted(used) == ["app1", "app2", "app3"]
    assert max(used.values()) - min(used.values()) <= 30
    tail = sorted(done)[300:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) == pytest.approx(3 * 20 * 0.97, rel=0.05)


async def test_tenant_budget_bounds_the_pool() -> None:
    vt = FakeClock()
    pool = AppPool.of(apps("a", "b", "c"), writes=Quota(20, 1), tenant_writes=Quota(30, 1), clock=vt.clock,
                      sleep=vt.sleep)
    done: list[float] = []

    async def worker() -> None:
        for _ in range(100):
            await pool.acquire(1, 1)
            done.append(vt.clock())

    await vt.run(asyncio.gather(*(worker() for _ in range(6))))
    tail = sorted(done)[300:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) == pytest.approx(30 * 0.97, rel=0.05)


async def test_tenant_scoped_429_pauses_the_whole_pool() -> None:
    vt = FakeClock()
    pool = AppPool.of(apps("a", "b"), clock=vt.clock, sleep=vt.sleep)
    first = pool.members[0].pacer
    first.observe(429, {"Retry-After": "7", "x-ms-throttle-scope": "Tenant/Write/-/tenant",
                        "x-ms-throttle-information": "WriteLimitExceeded"})
    assert pool.budget is not None and pool.budget.not_before == pytest.approx(vt.clock() + 7)
    assert pool.members[1].pacer.ready_in(1, 1) == pytest.approx(7)
    app_scoped = AppPool.of(apps("a", "b"), clock=vt.clock, sleep=vt.sleep)
    app_scoped.members[0].pacer.observe(429, {"Retry-After": "7",
                                              "x-ms-throttle-scope": "Tenant_Application/Write/a/t"})
    assert app_scoped.members[1].pacer.ready_in(1, 1) == 0
    member = await vt.run(app_scoped.acquire(1, 1))
    assert member is app_scoped.members[1]  # the paused app is skipped
    assert app_scoped.stats.throttled == 1


def test_pool_members_share_one_budget() -> None:
    budget = TenantBudget()
    a = Pacer(budget=budget)
    b = Pacer(budget=TenantBudget())
    with pytest.raises(ValueError):
        AppPool([PoolMember(a), PoolMember(b)], budget)
    with pytest.raises(ValueError):
        AppPool([])


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        PacingSettings(target=1.5)
    assert math.isclose(PacingSettings().target, 0.97)



