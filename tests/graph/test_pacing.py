"""The pacer: token buckets from Graph's documented quotas, a pause shared by every worker,
adaptation to `x-ms-throttle-limit-percentage` and 429s, and the app pool (GRAPH.md §9).

Time is virtual (`FakeClock`): it jumps to the next sleeper whenever every task waits, so
minutes of pacing run in milliseconds and deterministically. The hidden-quota tests stand a
simulated Graph (the emulator's own throttle model) behind the pacer.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Any

import pytest

from batch.auth import StaticTokenProvider
from batch.emulator.settings import Quota as ServerQuota
from batch.emulator.settings import Quotas
from batch.emulator.throttle import Throttle
from batch.graph.pacing import Pacer, TenantBudget
from batch.graph.pool import AppPool, PoolMember
from batch.graph.quotas import DOCUMENTED_RESOURCE_UNITS, DOCUMENTED_WRITES, Cost, PacingSettings, Quota, request_cost

try:
    from .fakes import FakeClock
    from .simulated import EMULATOR_SPREAD, SimulatedGraph, ceiling_share, drive
except ImportError:  # tests/graph is not a package
    from fakes import FakeClock  # type: ignore[no-redef]
    from simulated import EMULATOR_SPREAD, SimulatedGraph, ceiling_share, drive  # type: ignore[no-redef]


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

NO_PROBE = PacingSettings(target=1.0, probe_fast=0.0, probe_per_second=0.0)  # the token bucket alone


def calm(pacer: Pacer, n: int = 1) -> None:
    """`n` answers without any throttle signal, at the current instant."""
    for _ in range(n):
        pacer.observe(201, {"x-ms-resource-unit": "1"})


def told(pacer: Pacer, percentage: float, n: int = 1, status: int = 201) -> None:
    """`n` answers carrying a limit percentage (Graph's bucket that full after them)."""
    for _ in range(n):
        headers = {"x-ms-resource-unit": "1", "x-ms-throttle-limit-percentage": f"{percentage:.2f}"}
        if status == 429:
            headers.update({"Retry-After": "1", "x-ms-throttle-information": "WriteLimitExceeded",
                            "x-ms-throttle-scope": "Tenant_Application/Write/app/tenant"})
        pacer.observe(status, headers)


async def test_burst_ramps_up_by_round_trips_then_runs_at_97_percent() -> None:
    # BURST: one $batch in flight, then more as answers come back without a signal; the
    # believed allowance (100) spent, SUSTAIN at 97% of the believed rate.
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(100, 10))  # 10 writes/s, 100 saved up
    times: list[float] = []

    async def worker() -> None:
        for _ in range(8):
            await pacer.acquire(1, 1)
            times.append(vt.clock())
            await vt.sleep(0.1)  # a round trip
            calm(pacer)

    await vt.run(asyncio.gather(*(worker() for _ in range(40))))
    start = times[0]
    assert len([t for t in times if t - start < 0.05]) == 20  # one $batch's worth at first
    assert len([t for t in times if t - start < 0.15]) == 46  # 20 + 20 + 30% of the 20 answered
    assert len([t for t in times if t - start < 0.5]) >= 100  # the allowance spent within a few round trips
    after = times[100:140]
    rate = (len(after) - 1) / (after[-1] - after[0])
    assert 10 * 0.97 * 0.98 <= rate <= 10 * 0.97 * 1.5  # then the believed rate ...
    assert pacer.write_rate > 10  # ... and, without any signal, probing above it


async def test_a_request_held_by_the_ramp_goes_on_the_answer_not_on_the_next_poll() -> None:
    # Polling every 10 ms lost up to that much on every round trip of a burst: a fresh
    # 300-row job took 8 round trips of 0.31 s instead of 0.3 s.
    vt = FakeClock()
    pacer = make_pacer(vt)
    granted: list[float] = []

    async def second() -> None:
        await pacer.acquire(20, 20)  # the ramp allows one $batch in flight: held
        granted.append(vt.clock())

    async def scenario() -> None:
        await pacer.acquire(20, 20)
        waiting = asyncio.ensure_future(second())
        await vt.sleep(0.123)  # the first $batch's round trip
        calm(pacer, 20)
        answered = vt.clock()
        await waiting
        assert granted == [pytest.approx(answered, abs=1e-9)]

    await vt.run(scenario())


async def test_batch_sized_requests_keep_the_average_rate() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(40, 2), settings=NO_PROBE)
    times = []

    async def go() -> None:
        for _ in range(30):
            await pacer.acquire(20, 20)  # a $batch of 20 creates
            times.append(vt.clock())
            calm(pacer, 20)

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


def test_a_request_nobody_answers_does_not_hold_the_ramp_forever() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer._take(20, 20)  # noqa: SLF001 - a $batch whose connection dropped: never answered
    assert pacer.ready_in(20, 20) > 0
    vt.now += PacingSettings().stale_seconds + 0.1
    assert pacer.ready_in(20, 20) == 0


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


# ---- learning from recorded header sequences (issue 16) ----------------------------------------------

def test_limit_percentage_gives_the_allowance_and_the_burst_stops_before_the_429() -> None:
    # Graph's window holds 30, not the documented 3,000: after 25 writes it says 0.83 used.
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer._take(40, 40)  # noqa: SLF001 - two $batches of 20 in flight
    calm(pacer, 20)
    told(pacer, 0.83, 5)  # the first 25 of them admitted, the allowance 25 / 0.83 ≈ 30
    assert pacer.writes.bursting  # an instant's answers are one observation, applied when time moves on
    assert pacer.ready_in(1, 1) > 0  # ... or when a worker asks: the burst is over
    assert not pacer.writes.bursting
    assert pacer.writes.capacity == pytest.approx(25 / 0.83)
    # What Graph still holds, (1 - 0.83) × 30 ≈ 5, is on its way already (15 in flight): send nothing more.
    assert pacer.writes.level <= 0


def test_the_tail_of_a_burst_teaches_nothing_about_the_rate() -> None:
    # The issue's trace: the 429s that end a burst cut the old pacer to about half and marked
    # 85% of that as safe. Here they only pause; the rate is measured afterwards.
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer._take(80, 80)  # noqa: SLF001 - four $batches in flight when the window runs out
    calm(pacer, 20)
    told(pacer, 0.97, 10)
    told(pacer, 1.0, 50, status=429)
    assert pacer.stats.throttled == 50 and pacer.stats.tail == 50 and pacer.stats.cuts == 0
    assert pacer.not_before == pytest.approx(vt.clock() + 1)  # Retry-After is honoured
    paused_rate = pacer.write_rate
    assert paused_rate == pytest.approx(0.5 * 20 * 0.97)  # a prior until the first measurement, not a cut per 429
    # Then Graph refills at 10/s: 2 s later a $batch of 20 is admitted, ending at 0.97 again.
    vt.now += 2
    pacer._take(20, 20)  # noqa: SLF001
    calm(pacer, 5)
    told(pacer, 0.97, 15)
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(10 * 0.98, rel=0.05)
    assert pacer.writes.estimate == pytest.approx(10, rel=0.05)


def test_after_a_429_resume_at_the_learned_rate_not_from_half() -> None:
    # Graph refills 18/s (the pacer believes 19.4). A reading at 0.90 (10 left); 2 s later 46
    # were admitted and the rest refused: (46 - 100 × (1.0 - 0.90)) / 2 s = 18/s. Pace at 98%
    # of that; the old pacer cut to 70% (13.6/s) and climbed back at 0.5% a second.
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer.writes.bursting = False
    pacer.writes.capacity = 100
    pacer.writes.proven = pacer.writes.rate  # not probing: the first percentage is no news
    told(pacer, 0.90)
    vt.now += 2
    pacer._take(56, 56)  # noqa: SLF001
    told(pacer, 1.0, 46)
    told(pacer, 1.0, 10, status=429)
    assert pacer.write_rate == pytest.approx(18 * 0.98, rel=0.02)
    assert pacer.stats.cuts == 1 and pacer.stats.throttled == 10 and pacer.stats.tail == 0


def test_what_graph_still_holds_is_spent_not_left_idle() -> None:
    # A 3000/150 window after a 15 s burst that met no edge: Graph says 0.85 used, so it holds
    # 450 writes; the old pacer held its sustained 19.4/s and never spent them (0.88 of the
    # ceiling in a 3,600-row run).
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer.writes.bursting = False
    pacer.writes.capacity = 3000
    pacer.writes.level = 0.0
    pacer._take(20, 20)  # noqa: SLF001 - one $batch in flight
    told(pacer, 0.85)
    vt.now += 0.01
    held = 0.15 * 3000 - 19 - 0.005 * 3000  # less what is in flight and the percentage's rounding
    assert pacer.ready_in(int(held), 0) == 0
    assert pacer.writes.level == pytest.approx(held, abs=0.5)
    # Graph holding only a $batch or two is paced as before, not spent at once.
    told(pacer, 0.99)
    vt.now += 0.01
    assert pacer.ready_in(40, 0) > 0


def test_a_late_answer_saying_graph_holds_more_is_not_spent_twice() -> None:
    # Two $batches in flight, A then B as Graph counted them; B's answer (0.91) arrives first,
    # A's (0.90) after it. A's 0.90 counts neither: with A no longer in flight it said Graph
    # held 300, and the 20 writes of A were spent a second time (the served 3000/150 run at
    # 80 ms re-spent 20-35 writes this way several times after its burst: 1.10% 429s).
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer.writes.bursting = False
    pacer.writes.capacity = 3000
    pacer.writes.level = 0.0
    pacer._take(40, 40)  # noqa: SLF001 - A and B in flight
    told(pacer, 0.91, 20)
    vt.now += 0.01
    pacer.ready_in()
    assert pacer.writes.level == pytest.approx(0.09 * 3000 - 20 - 15, abs=0.5)  # A still in flight
    told(pacer, 0.90, 20)
    vt.now += 0.01
    pacer.ready_in()
    assert pacer.writes.level == pytest.approx(0.09 * 3000 - 15, abs=1)  # what 0.91 said, A counted in it
    # A lower percentage that Graph's refill (20/s) explains is believed: 5 s later, 0.88.
    vt.now += 5.0
    told(pacer, 0.88)
    vt.now += 0.01
    pacer.ready_in()
    assert pacer.writes.level == pytest.approx(0.12 * 3000 - 15, abs=1)


def test_a_late_answer_does_not_prove_graph_s_rate_higher() -> None:
    # After the burst (0.82 of 3000), 420 writes admitted in 0.85 s take Graph to 0.96: its
    # refill is nothing to speak of. A late answer saying 0.94 made Δp 0.12 for the same 420
    # writes: "Graph refills at least (420 - 360 - 30) / 0.9 = 33/s", and the rate went there.
    vt = FakeClock()
    bucket = make_pacer(vt).writes
    bucket.bursting = False
    bucket.capacity = 3000
    bucket.warned(vt.now, 0.82)
    rate = bucket.rate
    for _ in range(420):
        bucket.answered(vt.now + 0.8, 1.0, calm=False)
    bucket.warned(vt.now + 0.85, 0.96)
    bucket.warned(vt.now + 0.9, 0.94)
    assert bucket.rate <= rate


def sustaining(vt: FakeClock, writes: Quota, rate: float) -> Pacer:
    """A pacer past its burst, which learned Graph's allowance (the quota's amount) and paces
    at `rate`, proven by calm answers (so that the first percentage is no news)."""
    pacer = make_pacer(vt, writes=writes)
    pacer.writes.bursting = False
    pacer.writes.capacity = writes.amount
    pacer.writes.rate = pacer.writes.proven = rate
    return pacer


def test_one_noisy_reading_cuts_the_rate_to_no_less_than_70_percent() -> None:
    # Two percentages 0.6 s apart, 0.90 then 0.95 of a window of 100, with 5 writes admitted
    # between them, measure Graph's rate as (5 - 5) / 0.6 = 0/s. Taken at its word, it once
    # stalled a run for 52 s at 100/4; one reading now cuts by 30% at most.
    vt = FakeClock()
    pacer = sustaining(vt, Quota(100, 4), 24.0)
    told(pacer, 0.90)
    vt.now += 0.6
    pacer._take(5, 5)  # noqa: SLF001
    told(pacer, 0.95, 5)
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(24.0 * 0.7 * 0.98)


def test_a_window_that_may_have_filled_between_two_readings_does_not_slow_the_pace() -> None:
    # A window of one $batch (20/2): every $batch leaves Graph's bucket empty (p = 1.00), and
    # the next goes 2.06 s later at 9.7/s plus a round trip (0.4 s). Graph's bucket refilled
    # to full in 2 s and lost the rest, so 20 writes in 2.46 s say only that its rate is at
    # least 8.1/s. Taken as the rate, each $batch measured a little less than the one before,
    # and a run slid to ~2/s (0.22 of the ceiling at 80 ms, 0.06 at 600 ms).
    vt = FakeClock()
    pacer = sustaining(vt, Quota(20, 2), 9.7)
    told(pacer, 1.00, 20)
    for _ in range(5):
        vt.now += 2.46
        pacer._take(20, 20)  # noqa: SLF001
        told(pacer, 1.00, 20)
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(9.7)
    # Where the bucket cannot have filled, the same measurement still slows the pace: from
    # 0.85 used to 0.95 with 20 writes in 2.46 s at 30/3, Graph's rate is (20 - 3) / 2.46.
    pacer = sustaining(vt, Quota(30, 3), 9.7)
    told(pacer, 0.85)
    vt.now += 2.46
    pacer._take(20, 20)  # noqa: SLF001
    told(pacer, 0.95, 20)
    vt.now += 0.01
    assert pacer.write_rate < 9.7


def test_the_answers_of_a_burst_s_tail_bound_nothing() -> None:
    # The burst meets Graph's edge with $batches still in flight: their answers come within a
    # round trip, most refused, and the few admitted, against a bucket read empty, "proved"
    # Graph's rate under half its real one (150/5 at 300 ms, a pool: 9.7 -> 6.65/s, and the
    # run took 109 s where its siblings took 63). Only later readings bound the rate.
    vt = FakeClock()
    pacer = make_pacer(vt)
    for _ in range(13):
        pacer._take(20, 20)  # noqa: SLF001
    calm(pacer, 200)
    vt.now += 0.3
    told(pacer, 1.00, 40, status=429)  # the edge: the burst ends, 20 more in flight
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(9.7) and not pacer.writes.bursting
    vt.now += 0.6
    told(pacer, 1.00, 2)
    told(pacer, 1.00, 18, status=429)
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(9.7)
    # Past the tail, two readings 0.6 s apart that only a slower Graph explains still bound it.
    vt.now += 2.0
    pacer._take(5, 5)  # noqa: SLF001
    told(pacer, 0.95, 5)
    vt.now += 0.6
    rate = pacer.write_rate
    pacer._take(1, 1)  # noqa: SLF001
    told(pacer, 1.00)
    vt.now += 0.01
    assert pacer.write_rate < rate


def test_the_first_percentage_after_probing_goes_back_towards_the_proven_rate() -> None:
    # 100/4 at 80 ms: after the burst, calm answers proved 25/s; probing on from a full bucket
    # reached 46/s before Graph's bucket was 80% used, and the next $batch drew 429s before a
    # second percentage could measure anything. The first percentage proves the pace too fast.
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(100, 4))
    pacer.writes.bursting = False
    pacer.writes.capacity = 100
    pacer.writes.proven = 25.0
    pacer.writes.rate = 46.0
    told(pacer, 0.88)
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(46.0 * 0.7)
    pacer.writes.rate = 30.0
    pacer.writes.reading = None  # probing again, not far above what calm answers proved
    told(pacer, 0.85)
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(25.0)


def test_probing_above_the_measured_rate_is_slow() -> None:
    # Once Graph's rate is measured, going past it costs 429s: 0.5% a second above it (the old
    # pacer climbed 2% a second from its pace).
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(100, 4))
    pacer.writes.bursting = False
    pacer.writes.estimate = 10.0
    pacer.writes.rate = 9.8
    for _ in range(21):  # twenty seconds without a signal
        calm(pacer)
        vt.now += 1
    assert 9.8 * 1.05 < pacer.write_rate < 9.8 * math.exp(0.005 * 20) * 1.001


def test_calm_answers_after_a_reading_bound_the_rate_from_below() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt, writes=Quota(100, 4))  # believed 25/s
    pacer.writes.bursting = False
    pacer.writes.capacity = 100
    pacer.writes.rate = 10.0  # learned too low
    told(pacer, 0.95)
    vt.now += 2
    pacer._take(20, 20)  # noqa: SLF001
    calm(pacer, 20)  # 20 spent, and Graph's bucket climbed from 0.95 to under 0.8 used: r ≥ (20 + 14) / 2
    vt.now += 0.01
    assert pacer.write_rate >= (20 + 100 * 0.13) / 2  # 0.01 lower: the percentage was rounded


def test_without_any_signal_the_rate_probes_past_the_documented_quota() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    pacer.writes.bursting = False
    full = pacer.write_rate
    for _ in range(30):  # thirty seconds of answers without the header
        vt.now += 1
        calm(pacer)
    assert pacer.write_rate > full * 2  # the documented quota is a belief, not a ceiling


def test_a_429_names_its_bucket() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    for bucket in (pacer.writes, pacer.resource_units):
        bucket.bursting = False
    writes, units = pacer.write_rate, pacer.resource_unit_rate
    pacer.observe(429, {"Retry-After": "1", "x-ms-throttle-information": "ResourceUnitLimitExceeded"})
    vt.now += 0.01
    assert pacer.resource_unit_rate == pytest.approx(units * 0.7 * 0.98)  # nothing measured yet: a plain cut
    assert pacer.write_rate == writes
    for _ in range(15):  # a batch brings many 429s at once: they count as one cut
        pacer.observe(429, {"Retry-After": "1", "x-ms-throttle-information": "WriteLimitExceeded"})
    vt.now += 0.01
    assert pacer.write_rate == pytest.approx(writes * 0.7 * 0.98)
    assert pacer.stats.throttled == 16 and pacer.stats.cuts == 2


def test_a_busy_service_pauses_without_lowering_the_rate() -> None:
    vt = FakeClock()
    pacer = make_pacer(vt)
    rate = pacer.write_rate
    pacer.observe(429, {"Retry-After": "2", "x-ms-throttle-scope": "Tenant/ReadWrite/-/-",
                        "x-ms-throttle-information": "CPULimitExceeded"})
    assert pacer.not_before == pytest.approx(vt.clock() + 2)
    assert pacer.write_rate == rate and pacer.stats.cuts == 0


def test_in_a_pool_a_limit_percentage_is_the_tenants_until_a_429_names_an_app() -> None:
    vt = FakeClock()
    pool = AppPool.of(apps("a", "b"), clock=vt.clock, sleep=vt.sleep)
    first = pool.members[0].pacer
    assert pool.budget is not None
    first._take(20, 20)  # noqa: SLF001
    told(first, 0.85, 20)
    vt.now += 0.01
    first.ready_in()  # a worker asks: the instant's answers are applied
    assert not pool.budget.bucket.bursting and first.writes.bursting
    first.observe(429, {"Retry-After": "1", "x-ms-throttle-information": "WriteLimitExceeded",
                        "x-ms-throttle-scope": "Tenant_Application/Write/a/t"})
    assert pool.budget.app_named
    told(first, 0.9)
    vt.now += 0.01
    first.ready_in()
    assert not first.writes.bursting


SWEEP = [(ServerQuota(30, 3), 1500), (ServerQuota(3000, 150), 6000), (ServerQuota(100, 4), 2000)]


@pytest.mark.parametrize("pool", [False, True], ids=["one app", "pool of four"])
@pytest.mark.parametrize("latency", [0.08, 0.3])
@pytest.mark.parametrize(("hidden", "rows"), SWEEP, ids=[str(q) for q, _ in SWEEP])
async def test_the_issue_16_sweep_at_the_enforced_ceiling(hidden: ServerQuota, rows: int, latency: float,
                                                          pool: bool) -> None:
    # What `create` does (4 workers, $batches of 20) against quotas below, at and above the
    # documented ones. The old pacer: 0.83-0.84 of the ceiling at 3000/150 (the burst's
    # last 20% never spent), 0.70 at 100/4 and 300 ms, up to 7.6% 429s in a pool.
    vt = FakeClock()
    graph = SimulatedGraph(vt, hidden, latency, tenant=pool)
    pacer: Pacer | AppPool = AppPool.of(apps("a", "b", "c", "d"), clock=vt.clock, sleep=vt.sleep) if pool \
        else make_pacer(vt)
    elapsed = await drive(vt, graph, pacer, rows, workers=4)
    share = graph.refused / (graph.admitted + graph.refused)
    ratio = ceiling_share(hidden, rows, elapsed)
    print(f"hidden {hidden}, {latency * 1000:.0f} ms, {'pool' if pool else 'app'}: {rows / elapsed:.2f} rows/s, "
          f"{ratio:.3f} of the ceiling, 429 share {share:.2%}")
    assert graph.admitted == rows
    assert ratio >= 0.95
    assert share <= 0.01




@pytest.mark.parametrize("pool", [False, True], ids=["one app", "pool of four"])
async def test_the_first_burst_meets_a_small_window_with_two_batches_in_flight_not_three(pool: bool) -> None:
    # Issue 16's last bar: the served benchmark at 100/4 and 300 ms drew 0-27 429s (1.14% of
    # a pool's calls, median of 3), all where the first burst meets Graph's edge with three
    # $batches in flight: Graph warns only in the last 20 writes of its 100, an answer comes a
    # $batch's round trip (~0.6 s: its slowest item) after Graph counted it, and the calm
    # answers (the refill among them) had grown the ramp to 60-68 by then. With the emulator's
    # latency here, that ramp drew 0-26 429s a run (median 15.5 over these seeds); no more than
    # two $batches in flight until ten came back calm draws 0-8 (median 1).
    refused, ratios = [], []
    for seed in range(8):
        vt = FakeClock()
        graph = SimulatedGraph(vt, ServerQuota(100, 4), 0.3, tenant=pool, spread=EMULATOR_SPREAD, seed=seed)
        pacer: Pacer | AppPool = AppPool.of(apps("a", "b", "c", "d"), clock=vt.clock, sleep=vt.sleep) if pool \
            else make_pacer(vt)
        elapsed = await drive(vt, graph, pacer, 2000, workers=4)
        refused.append(graph.refused)
        ratios.append(ceiling_share(ServerQuota(100, 4), 2000, elapsed))
    print(f"{'pool' if pool else 'app'}: 429s {refused}, ceiling {min(ratios):.3f}-{max(ratios):.3f}")
    assert statistics.median(refused) <= 5 and max(refused) <= 12  # of 2,000 writes: 1% is 20
    assert statistics.median(ratios) >= 0.95  # (0.97-0.98 either way; one run's 0.94-0.97 is the sustained phase's noise)


async def test_a_fresh_300_row_job_is_not_slowed_by_the_ramp_s_plateau() -> None:
    # The same ramp on Graph's documented window, with the emulator's latency: 15 $batches of
    # 20 in about eight round trips of ~0.6 s. The second $batch goes a round trip sooner, the
    # third and fourth no later (median 4.94 s here, 4.93 s before the plateau; holding to one
    # $batch in flight until ten came back calm, `ramp_second=10`, takes 5.13 s).
    times = []
    for seed in range(8):
        vt = FakeClock()
        graph = SimulatedGraph(vt, ServerQuota(3000, 150), 0.3, spread=EMULATOR_SPREAD, seed=seed)
        times.append(await drive(vt, graph, make_pacer(vt), 300, workers=4))
        assert graph.refused == 0
    print(f"fresh 300 rows: {statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f})")
    assert statistics.median(times) <= 5.1


@pytest.mark.parametrize("latency", [0.08, 0.6])
async def test_a_window_of_one_batch_is_not_read_as_an_ever_slower_rate(latency: float) -> None:
    # A window no larger than a $batch (20/2, outside the issue's sweep): each $batch empties
    # Graph's bucket, which refills to full and loses the rest before the next; taking those
    # lower bounds for the rate slid the pace down all run long: 0.52 of the ceiling at 80 ms
    # and 0.17 at 600 ms over these 600 rows (0.22 and 0.06 over 2,000). Now 0.87 and 0.62: a
    # $batch of 20 must wait for the whole window, and each waits a round trip more than
    # Graph's refill needs.
    ratios, refused = [], []
    for seed in range(4):
        vt = FakeClock()
        graph = SimulatedGraph(vt, ServerQuota(20, 2), latency, spread=EMULATOR_SPREAD, seed=seed)
        elapsed = await drive(vt, graph, make_pacer(vt), 600, workers=4)
        ratios.append(ceiling_share(ServerQuota(20, 2), 600, elapsed))
        refused.append(graph.refused)
    print(f"20/2 at {latency * 1000:.0f} ms: ceiling {statistics.median(ratios):.3f}, 429s {refused}")
    assert statistics.median(ratios) >= 0.55
    assert statistics.median(refused) <= 6  # 1% of 600


@pytest.mark.parametrize(("hidden", "pool"), [(ServerQuota(150, 5), True), (ServerQuota(200, 5), False),
                                             (ServerQuota(200, 5), True)], ids=["150/5 pool", "200/5 app", "200/5 pool"])
async def test_no_seed_is_left_far_under_the_ceiling_by_its_burst_s_tail(hidden: ServerQuota, pool: bool) -> None:
    # At 300 ms, one seed in eight or sixteen read the tail of the first burst as Graph's
    # rate and finished at 0.53-0.59 of the ceiling where its siblings reached 0.96-0.98
    # (benchmarks/pacing_grid.py --seeds 16); medians unchanged, the worst now 0.94-0.97.
    ratios = []
    for seed in range(16):
        vt = FakeClock()
        graph = SimulatedGraph(vt, hidden, 0.3, tenant=pool, spread=EMULATOR_SPREAD, seed=seed)
        pacer: Pacer | AppPool = AppPool.of(apps("a", "b", "c", "d"), clock=vt.clock, sleep=vt.sleep) if pool \
            else make_pacer(vt)
        ratios.append(ceiling_share(hidden, 2000, await drive(vt, graph, pacer, 2000, workers=4)))
    print(f"{hidden}, {'pool' if pool else 'app'}: ceiling {min(ratios):.3f}-{max(ratios):.3f}")
    assert min(ratios) >= 0.9 and statistics.median(ratios) >= 0.95


@pytest.mark.parametrize("pool", [False, True], ids=["one app", "pool of four"])
@pytest.mark.parametrize(("hidden", "rows", "latency", "rel", "bar", "refused"), [
    (ServerQuota(3000, 150), 3600, 0.08, 0.03, 0.93, 0),
    (ServerQuota(30, 3), 330, 0.3, 0.05, 0.95, 8),
], ids=["3000/150, 80 ms", "30/3, 300 ms"])
async def test_a_burst_bound_by_the_servers_cpu_measures_the_allowance_net_of_its_refill(
        hidden: ServerQuota, rows: int, latency: float, rel: float, bar: float, refused: int, pool: bool) -> None:
    # The quick benchmark's 3,600 rows at 3000/150: the emulator admits ~220 writes/s on this
    # machine, so the burst lasts 12 s and Graph refills 240 meanwhile. Read as allowance, that
    # made C 3,284 instead of 3,000, and every rate measured from C·Δp wrong: 0.900 of the
    # ceiling here, and rates raised to 63/s (429s) in the served benchmark. The refill counts
    # from the first write admitted, not the first sent (at 30/3 and 300 ms C read 18: 0.936), and
    # at the measured rate once there is one (the believed 19.4/s read it as 26-28 for 30).
    vt = FakeClock()
    graph = SimulatedGraph(vt, hidden, latency, tenant=pool, service=1 / 220)
    pacer: Pacer | AppPool = AppPool.of(apps("a", "b", "c", "d"), clock=vt.clock, sleep=vt.sleep) if pool \
        else make_pacer(vt)
    elapsed = await drive(vt, graph, pacer, rows, workers=4)
    bucket = pacer.budget.bucket if isinstance(pacer, AppPool) and pacer.budget is not None else \
        pacer.writes if isinstance(pacer, Pacer) else None
    assert bucket is not None and bucket.capacity == pytest.approx(hidden.amount, rel=rel)
    assert ceiling_share(hidden, rows, elapsed) >= bar  # paced at 97% and a margin for p's rounding
    assert graph.refused <= refused  # the end of the first burst at 30/3: a second $batch of 20 in a window of 30


@pytest.mark.parametrize("latency", [0.08, 0.3])
async def test_a_300_row_job_on_a_fresh_quota_runs_at_the_latency_bound(latency: float) -> None:
    # The old pacer spent the burst at 5 × the rate: 2.9 s for 300 rows that fit the window.
    vt = FakeClock()
    graph = SimulatedGraph(vt, ServerQuota(3000, 150), latency)
    elapsed = await drive(vt, graph, make_pacer(vt), 300, workers=4)
    bound = math.ceil(300 / (4 * 20)) * latency  # round trips of four $batches of 20
    assert graph.refused == 0
    assert elapsed <= 2 * bound


@pytest.mark.parametrize(("hidden", "rows"), [
    (ServerQuota(200, 5), 3000),  # twice the documented rate (the create benchmark's emulator)
    (ServerQuota(40, 2), 2000),  # the documented rate, a tiny burst
    (ServerQuota(300, 30), 3000),  # half the documented rate
    (ServerQuota(100, 10), 1500),  # half, with a small burst
    (ServerQuota(150, 30), 2000),  # a quarter
])
async def test_converges_on_a_hidden_quota_with_many_workers(hidden: ServerQuota, rows: int) -> None:
    vt = FakeClock()
    graph = SimulatedGraph(vt, hidden)
    pacer = make_pacer(vt)  # seeded with the documented 3000/150: it is not told
    elapsed = await drive(vt, graph, pacer, rows, workers=16)
    share = graph.refused / (graph.admitted + graph.refused)
    ratio = ceiling_share(hidden, rows, elapsed)
    print(f"hidden {hidden}: {rows / elapsed:.2f} rows/s for a quota of {hidden.rate:.2f}/s "
          f"({ratio:.0%} of the ceiling), 429 share {share:.2%}")
    assert graph.admitted == rows
    assert share < 0.03
    assert ratio > 0.9


async def test_documented_quota_runs_at_the_ceiling_without_429() -> None:
    vt = FakeClock()
    graph = SimulatedGraph(vt, ServerQuota(3000, 150), latency=0.5)
    pacer = make_pacer(vt)
    elapsed = await drive(vt, graph, pacer, 8000, workers=16)
    assert graph.refused == 0
    ratio = ceiling_share(ServerQuota(3000, 150), 8000, elapsed)
    print(f"documented quota 3000/150s: {8000 / elapsed:.2f} rows/s, {ratio:.0%} of the ceiling, no 429")
    assert ratio > 0.93  # the whole window is spent, not 80% of it


async def test_rate_climbs_back_when_the_quota_grows() -> None:
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
    pool = AppPool.of(apps("token-a", "token-b", "token-c"), writes=Quota(20, 1), settings=NO_PROBE, clock=vt.clock,
                      sleep=vt.sleep)
    used: dict[str, int] = {}
    done: list[float] = []

    async def worker() -> None:
        for _ in range(100):
            member = await pool.acquire(1, 1)
            used[member.name] = used.get(member.name, 0) + 1
            done.append(vt.clock())
            calm(member.pacer)

    await vt.run(asyncio.gather(*(worker() for _ in range(6))))
    assert sorted(used) == ["app1", "app2", "app3"]
    assert max(used.values()) - min(used.values()) <= 30
    tail = sorted(done)[300:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) == pytest.approx(3 * 20, rel=0.05)


async def test_tenant_budget_bounds_the_pool() -> None:
    vt = FakeClock()
    pool = AppPool.of(apps("a", "b", "c"), writes=Quota(20, 1), tenant_writes=Quota(30, 1), settings=NO_PROBE,
                      clock=vt.clock, sleep=vt.sleep)
    done: list[float] = []

    async def worker() -> None:
        for _ in range(100):
            member = await pool.acquire(1, 1)
            done.append(vt.clock())
            calm(member.pacer)

    await vt.run(asyncio.gather(*(worker() for _ in range(6))))
    tail = sorted(done)[300:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) == pytest.approx(30, rel=0.05)


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


def test_what_one_app_heard_holds_the_other_apps_of_the_pool() -> None:
    # A tenant window of 30 found empty by app1's $batch: app2, whose worker sat out the
    # Retry-After, must not spend the tenant's believed allowance a second later (a pool of
    # four at 30/3 sent a second $batch into the empty window: 8 more 429s).
    vt = FakeClock()
    pool = AppPool.of(apps("a", "b"), clock=vt.clock, sleep=vt.sleep)
    first, second = (m.pacer for m in pool.members)
    first._take(20, 20)  # noqa: SLF001
    told(first, 0.97, 12)
    for _ in range(8):
        first.observe(429, {"Retry-After": "1", "x-ms-throttle-information": "WriteLimitExceeded",
                            "x-ms-throttle-scope": "Tenant/Write/a/t"})
    vt.now += 1.1  # the Retry-After is over; app1 has not been asked since
    assert second.ready_in(20, 20) > 0  # the tenant's burst is over: 20 more need about 2 s at ~10/s
    assert pool.budget is not None and not pool.budget.bucket.bursting


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



