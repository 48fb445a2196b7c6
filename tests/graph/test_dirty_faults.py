"""The client against the emulator's dirtiest faults (GRAPH.md §15.4, §15.5): 500s that may
have been applied, gateways' HTML 502s, connections reset in the middle of a body, 429/503
whose Retry-After is missing, fractional or a date, and $batch answers in a shuffled order.
Everything runs on a virtual clock, so storms and backoffs cost no real time.

What must hold: every idempotent call ends with its real answer; every create ends created
or `ambiguous` (never created twice, never a 409 of its own making); no result carries HTML."""

from __future__ import annotations

import time
import uuid

import pytest

from batch.auth import ClientCredentialsProvider
from batch.emulator import EmulatorSettings, Faults, Store, create_app
from batch.emulator.inprocess import EmulatorTransport
from batch.graph import GraphCall, GraphClient, GraphResult, Pacer

try:
    from .fakes import DOMAIN, FakeClock, customer
except ImportError:  # tests/graph is not a package
    from fakes import DOMAIN, FakeClock, customer  # type: ignore[no-redef]

DIRTY = ("500", "502", "reset", "429", "503")


class Rig:
    """The emulator and a client on one virtual clock (started at the real time, so that an
    HTTP-date Retry-After means the same to both)."""

    def __init__(self, faults: Faults) -> None:
        self.vt = FakeClock(start=time.time())
        self.store = Store(":memory:")
        self.app = create_app(self.store, EmulatorSettings(faults=faults), clock=self.vt.clock)
        default, self.tenant = self.store.default_app(), self.store.tenants()[0]
        assert default.secret is not None
        # Tokens come from an emulator without faults on the same store: the token endpoint's
        # own faults are another test's business.
        token_app = create_app(self.store, EmulatorSettings(), clock=self.vt.clock)
        self.tokens = ClientCredentialsProvider(f"http://emulator/{self.tenant.id}/oauth2/v2.0/token",
                                                default.client_id, default.secret,
                                                transport=EmulatorTransport(token_app), clock=self.vt.clock,
                                                sleep=self.vt.sleep)
        self.client = GraphClient("http://emulator/v1.0", self.tokens, transport=EmulatorTransport(self.app),
                                  pacer=Pacer(clock=self.vt.clock, sleep=self.vt.sleep), clock=self.vt.clock,
                                  sleep=self.vt.sleep)

    def holder(self, email: str) -> str | None:
        return self.store.identity_holder(self.tenant.id, DOMAIN, email)

    async def close(self) -> None:
        await self.client.aclose()
        await self.tokens.aclose()
        self.store.close()


def assert_clean(result: GraphResult) -> None:
    """No HTML page, and nothing longer than a message, in what would reach results.csv."""
    assert "<" not in (result.error_message or "") and len(result.error_message or "") < 200, result.error_message
    assert not (isinstance(result.body, str) and "<html" in result.body.lower())


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_creates_end_created_or_ambiguous_never_twice(seed: int) -> None:
    rig = Rig(Faults(rate=0.3, kinds=DIRTY, storm_seconds=2, seed=seed))
    emails = [f"dirty.{seed}.{i}.{uuid.uuid4().hex[:6]}@example.com" for i in range(60)]

    async def work() -> list[GraphResult]:
        batched: list[GraphResult] = []
        for start in range(0, 40, 10):
            batched += await rig.client.batch([GraphCall("POST", "/users", customer(e)) for e in emails[start:start + 10]])
        single = [await rig.client.request(GraphCall("POST", "/users", customer(e))) for e in emails[40:]]
        return batched + single

    results = await rig.vt.run(work())
    ambiguous = [e for e, r in zip(emails, results, strict=True) if r.ambiguous]
    for address, result in zip(emails, results, strict=True):
        assert_clean(result)
        if result.ambiguous:
            assert result.status in (0, 500, 502)
        else:
            assert result.status == 201, (result.status, result.error_code, result.error_message)
            assert rig.holder(address) is not None
    assert ambiguous, "30 % dirty faults leave some creates ambiguous"
    assert rig.store.live_user_count(rig.tenant.id) == sum(rig.holder(e) is not None for e in emails)

    # Reconciling (what the verbs do with an ambiguous create): reads are idempotent, so every
    # one ends with its real answer despite the same faults.
    lookups = [GraphCall("GET", f"/users?$filter=identities/any(c:c/issuerAssignedId eq '{e}' "
                                f"and c/issuer eq '{DOMAIN}')&$select=id") for e in ambiguous]
    reads = await rig.vt.run(rig.client.batch(lookups))
    for address, read in zip(ambiguous, reads, strict=True):
        assert read.status == 200 and not read.ambiguous, (read.status, read.error_message)
        assert len(read.body["value"]) == (1 if rig.holder(address) else 0)
    await rig.close()


async def test_idempotent_calls_always_get_their_answer() -> None:
    rig = Rig(Faults(rate=0.0, seed=5))
    created = [await rig.client.request(GraphCall("POST", "/users", customer(f"idem.{i}@example.com"))) for i in range(8)]
    ids = [r.body["id"] for r in created]
    rig.app.service.faults.faults = Faults(rate=0.5, kinds=DIRTY, storm_seconds=1, seed=5)

    async def work() -> list[GraphResult]:
        patches = await rig.client.batch([GraphCall("PATCH", f"/users/{i}", {"jobTitle": "Dirty"}) for i in ids])
        gets = [await rig.client.request(GraphCall("GET", f"/users/{i}?$select=jobTitle")) for i in ids]
        return patches + gets

    results = await rig.vt.run(work())
    assert [r.status for r in results] == [204] * 8 + [200] * 8
    assert all(r.body["jobTitle"] == "Dirty" for r in results[8:])
    assert not any(r.ambiguous for r in results)
    assert rig.client.stats.retries > 0
    await rig.close()


async def test_a_gateway_page_reaches_the_result_as_one_line() -> None:
    rig = Rig(Faults(rate=1.0, kinds=("502",), seed=1))
    result = await rig.client.request(GraphCall("POST", "/users", customer("gw@example.com")))
    assert result.status == 502 and result.ambiguous and result.body is None
    assert result.error_message == "HTTP 502 from a gateway (HTML page: 502 Bad Gateway), not an answer from Graph"
    await rig.close()


async def test_a_reset_mid_body_leaves_a_create_ambiguous_but_applied() -> None:
    rig = Rig(Faults(rate=1.0, kinds=("reset",), seed=1))
    result = await rig.client.request(GraphCall("POST", "/users", customer("reset@example.com")))
    assert result.status == 0 and result.ambiguous and result.error_code == "RemoteProtocolError"
    assert rig.holder("reset@example.com") is not None
    await rig.close()


async def test_shuffled_batch_answers_reach_their_own_calls() -> None:
    rig = Rig(Faults(rate=0.0, seed=9))
    emails = [f"order.{i}@example.com" for i in range(20)]
    results = await rig.client.batch([GraphCall("POST", "/users", customer(e)) for e in emails])
    for address, result in zip(emails, results, strict=True):
        assert result.status == 201 and result.body["id"] == rig.holder(address)
    await rig.close()


def test_the_emulators_batch_answers_are_really_shuffled() -> None:
    """The previous test would pass against an emulator that never reorders: check it does."""
    rig = Rig(Faults(rate=0.0, seed=9))
    order = rig.app.service.faults.shuffled(list(range(20)))
    assert order != list(range(20))
    rig.store.close()


async def test_missing_retry_after_falls_back_to_backoff() -> None:
    """A 429 storm whose Retry-After is missing: the client backs off on its own (0.5 s, 1 s,
    2 s, … jittered) and gets through once the storm is over."""
    rig = Rig(Faults(rate=1.0, kinds=("429",), storm_seconds=3, seed=4))  # seed 4: a storm without Retry-After
    faults = rig.app.service.faults
    storm = faults.draw()
    assert storm is not None and storm.kind == "429" and storm.retry_after is None
    faults.faults = Faults(rate=0.0)  # the storm goes on; no new one starts after it
    began = rig.vt.now
    result = await rig.client.request(GraphCall("GET", "/users"))
    assert result.status == 200 and result.attempts > 2
    assert rig.client.stats.throttled == result.attempts - 1
    assert rig.vt.now - began >= 3.0  # the storm was waited out
    assert result.attempts <= 8  # backing off (the pacer's pause, the policy's backoff), not hammering
    await rig.close()
