"""Seeded fault injection: injected 429/503/504 (Retry-After in every form Graph uses), 500
and a gateway's HTML 502 (applied or not), connections reset mid-body or dropped before and
after a write is committed, inner $batch faults, and replayable sequences."""

from __future__ import annotations

import email.utils

import httpx
import pytest
from emulator.helpers import customer, error_of, graph_error, unique_email

from batch.emulator import EmulatorSettings, Faults, Latency
from batch.emulator.app import ConnectionDropped
from batch.emulator.settings import FAULT_KINDS

SEED_500_THEN_429 = 2  # the $batch draws 500 (met by its items), then an item starts a storm


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


# ---- Graph's dirtier faults (GRAPH.md §15.5) ----------------------------------------------

def retry_after_form(value: str | None) -> str:
    if value is None:
        return "none"
    if value.isdigit():
        return "seconds"
    if value.replace(".", "", 1).isdigit():
        return "decimal"
    assert email.utils.parsedate_to_datetime(value).tzinfo is not None, value
    return "date"


async def test_503_retry_after_takes_every_form(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("503",), seed=7))
    values = [(await g.get("/v1.0/users")).headers.get("Retry-After") for _ in range(40)]
    assert {retry_after_form(v) for v in values} == {"none", "seconds", "decimal", "date"}
    assert {"0.249", "2.5"} & set(values)


@pytest.mark.parametrize("seed", range(1, 9))
async def test_a_storms_429s_agree(make_graph, seed):
    """One form per storm, every 429 of it counting down to the same end."""
    g = make_graph(faulty(rate=1.0, kinds=("429",), storm_seconds=5, seed=seed))
    first = (await g.get("/v1.0/users")).headers.get("Retry-After")
    g.clock.advance(2)
    later = (await g.get("/v1.0/users")).headers.get("Retry-After")
    assert retry_after_form(first) == retry_after_form(later)
    if retry_after_form(first) == "date":
        assert first == later
    elif first is not None and later is not None:
        assert float(first) - float(later) == pytest.approx(2.0, abs=1.0)


async def test_500_is_graphs_json_and_sometimes_committed(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("500",), seed=11))
    for _ in range(12):
        response = await g.post("/v1.0/users", json=customer(unique_email("five")))
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/json")
        assert error_of(response) == graph_error("generalException", "General exception while processing")
    committed = g.store.live_user_count(g.tenant.id)
    assert 0 < committed < 12  # a 500 does not say whether the write was applied


async def test_502_is_a_gateways_html_page(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("502",), seed=11))
    for _ in range(12):
        response = await g.post("/v1.0/users", json=customer(unique_email("gw")))
        assert response.status_code == 502
        assert response.headers["content-type"] == "text/html"
        assert response.text.startswith("<html>") and "<title>502 Bad Gateway</title>" in response.text
        assert "request-id" not in response.headers
    assert 0 < g.store.live_user_count(g.tenant.id) < 12


async def test_reset_cuts_the_body_after_committing(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("reset",), seed=1))
    email_address = unique_email("reset")
    with pytest.raises(httpx.RemoteProtocolError):
        await g.post("/v1.0/users", json=customer(email_address))
    with pytest.raises(httpx.RemoteProtocolError):
        await g.get("/v1.0/users")
    assert g.store.live_user_count(g.tenant.id) == 1


async def test_reset_over_a_socket_sends_part_of_the_body(make_graph):
    """What the ASGI app sends before the reset: the status, the full Content-Length and half
    of the body (over a socket, the client then reads a short body)."""
    g = make_graph(faulty(rate=1.0, kinds=("reset",), seed=1))
    token = await g.token()
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1.0/users", "raw_path": b"/v1.0/users", "query_string": b"",
             "scheme": "http", "headers": [(b"host", b"emulator"), (b"authorization", f"Bearer {token}".encode())]}
    with pytest.raises(ConnectionDropped):
        await g.app(scope, receive, send)
    start, body = sent
    length = int(dict(start["headers"])[b"content-length"])
    assert start["status"] == 200 and body["more_body"] is True
    assert 0 < len(body["body"]) < length


async def test_inner_items_meet_500_and_503(make_graph):
    g = make_graph(faulty(rate=1.0, kinds=("500", "503"), seed=1))  # the $batch draws 500: its items meet it
    response = await g.post("/v1.0/$batch", json={"requests": [
        {"id": str(i), "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
         "body": customer(unique_email(f"inner{i}"))} for i in range(12)]})
    assert response.status_code == 200
    inner = response.json()["responses"]
    assert {r["status"] for r in inner} == {500, 503}
    for r in inner:
        assert r["body"]["error"]["code"] in ("generalException", "serviceNotAvailable")
    fives = sum(1 for r in inner if r["status"] == 500)
    assert 0 < g.store.live_user_count(g.tenant.id) < fives  # some 500s came after the commit


async def test_inner_429_carries_its_headers(make_graph):
    """A 500 drawn for the $batch itself is met by its items only; the first 429 an item meets
    starts a storm that throttles the items after it, each with the storm's headers."""
    g = make_graph(faulty(rate=1.0, kinds=("500", "429"), storm_seconds=3, seed=SEED_500_THEN_429))
    response = await g.post("/v1.0/$batch", json={"requests": [
        {"id": str(i), "method": "GET", "url": "/users"} for i in range(6)]})
    assert response.status_code == 200
    inner = response.json()["responses"]
    throttled = [r for r in inner if r["status"] == 429]
    assert throttled and {r["status"] for r in inner} <= {429, 500}
    for r in throttled:
        assert r["headers"]["x-ms-throttle-scope"] == "Tenant/ReadWrite/-/-"
        assert r["body"]["error"]["code"] == "TooManyRequests"
    assert len({retry_after_form(r["headers"].get("Retry-After")) for r in throttled}) == 1


@pytest.mark.parametrize("kind", ["502", "reset"])
async def test_gateway_faults_hit_the_whole_batch(make_graph, kind):
    g = make_graph(faulty(rate=1.0, kinds=(kind,), seed=3))
    payload = {"requests": [{"id": "1", "method": "GET", "url": "/users"}]}
    if kind == "reset":
        with pytest.raises(httpx.RemoteProtocolError):
            await g.post("/v1.0/$batch", json=payload)
        return
    response = await g.post("/v1.0/$batch", json=payload)
    assert response.status_code == 502 and response.headers["content-type"] == "text/html"


def test_new_kinds_are_known():
    assert {"500", "502", "reset"} <= set(FAULT_KINDS)
    Faults(kinds=("500", "502", "reset"))
