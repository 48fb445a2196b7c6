"""Seeded fault injection: injected 429/503/504, dropped connections before and after a
write is committed, and replayable sequences."""

from __future__ import annotations

import httpx
import pytest
from emulator.helpers import customer, error_of, graph_error, unique_email

from batch.emulator import EmulatorSettings, Faults, Latency


def faulty(**kwargs) -> EmulatorSettings:
    return EmulatorSettings(faults=Faults(**kwargs))


async def test_every_request_503(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("503",), seed=1))
    responses = [await g.get("/v1.0/users"), await g.post("/v1.0/users", json=customer(unique_email())),
                 await g.get("/v1.0/users/7c9e6679-7425-40de-944b-e07fc1f90ae7")]
    for response in responses:
        assert response.status_code == 503
        assert error_of(response) == graph_error("serviceNotAvailable",
                                                 "The service is temporarily unavailable. Please retry later.")
        assert response.headers.get("Retry-After") in (None, "1", "2", "3")
    # nothing was written; the token endpoint (token_rate 0) kept working
    assert g.store.live_user_count(g.tenant.id) == 0


async def test_504(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("504",), seed=3))
    response = await g.get("/v1.0/users")
    assert response.status_code == 504
    assert error_of(response) == graph_error("UnknownError", "The gateway timed out waiting for the directory service.")


async def test_injected_429_storm(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("429",), storm_seconds=5, seed=2))
    first = await g.get("/v1.0/users")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "5"
    assert error_of(first) == graph_error("TooManyRequests", "Please retry again later.")
    assert first.headers["x-ms-throttle-scope"] == "Tenant/ReadWrite/-/-"
    g.clock.advance(3)
    during = await g.get("/v1.0/users")
    assert during.status_code == 429 and during.headers["Retry-After"] == "2"


async def test_drop_after_commits_the_write(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("drop-after",), seed=1))
    email = unique_email("dropped")
    with pytest.raises(httpx.RemoteProtocolError):
        await g.post("/v1.0/users", json=customer(email))
    # a second emulator on the same store, without faults, sees the committed user
    healthy = make_graph(store=g.store)
    found = await healthy.get("/v1.0/users", params={"$filter": f"mail eq '{email}'"})
    assert len(found.json()["value"]) == 1
    # so a naive re-send conflicts (GRAPH.md §14 point 4)
    again = await healthy.post("/v1.0/users", json=customer(email))
    assert error_of(again)["details"] == [{"target": "identities", "code": "ObjectConflict"}]


async def test_drop_before_writes_nothing(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("drop-before",), seed=1))
    with pytest.raises(httpx.RemoteProtocolError):
        await g.post("/v1.0/users", json=customer(unique_email()))
    assert g.store.live_user_count(g.tenant.id) == 0


async def statuses(g, n: int = 30) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        response = await g.get("/v1.0/users")
        out.append((response.status_code, response.headers.get("Retry-After")))
    return out


async def test_same_seed_same_sequence(make_graph):
    settings = faulty(rate=0.5, kinds=("503", "504"), seed=42)
    first = await statuses(make_graph(settings))
    second = await statuses(make_graph(settings))
    assert first == second
    assert {s for s, _ in first} == {200, 503, 504}
    other = await statuses(make_graph(faulty(rate=0.5, kinds=("503", "504"), seed=43)))
    assert other != first


async def test_rate_zero_never_faults(make_graph):
    g = make_graph(faulty(rate=0.0, seed=1))
    assert {s for s, _ in await statuses(g, 10)} == {200}


async def test_slow_uses_the_sleep(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("slow",), slow_ms=2000, seed=5))
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    g.app.sleep = fake_sleep
    response = await g.get("/v1.0/users")
    assert response.status_code == 200
    assert len(slept) == 1 and 1.0 <= slept[0] <= 3.0


async def test_latency_medians(make_graph):
    g = make_graph(EmulatorSettings(latency=Latency.uniform(100, sigma=0.0)))
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    g.app.sleep = fake_sleep
    await g.token()
    await g.get("/v1.0/users")
    assert slept == [pytest.approx(0.1), pytest.approx(0.1)]


async def test_token_endpoint_faults(make_graph):
    g = make_graph(faulty(token_rate=1.0, seed=1))
    response = await g.token_response()
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_unknown_fault_kind():
    with pytest.raises(ValueError):
        Faults(kinds=("explode",))
