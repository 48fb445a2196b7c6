"""Issue 12, findings 2 and 9, on the Graph client: what `--verbose` is told of each request
(the observer), the throttle wait as wall-clock time (not summed over workers), and the
pacer's read-out of what holds a run back (for the progress bar)."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from batch.graph import GraphCall, GraphClient, Pacer, Quota, RetryPolicy

if TYPE_CHECKING:
    from batch.graph import Exchange

try:
    from .fakes import FakeClock
except ImportError:  # tests/graph is not a package
    from fakes import FakeClock  # type: ignore[no-redef]

BASE = "https://graph.example.test/v1.0"
TOKEN = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.secret-token-value"


class Tokens:
    async def token(self) -> str:
        return TOKEN

    def invalidate(self) -> None:
        pass


def client_on(handler: Any, vt: FakeClock, seen: list[Exchange] | None = None, **kwargs: Any) -> GraphClient:
    """A client on `handler` in virtual time; with `seen`, its observer appends there."""
    kwargs.setdefault("retry", RetryPolicy(jitter=0.0))
    if seen is not None:
        kwargs["observer"] = seen.append
    return GraphClient(BASE, Tokens(), transport=httpx.MockTransport(handler), sleep=vt.sleep, clock=vt.clock,
                       rng=random.Random(0), **kwargs)


async def test_every_request_is_told_with_status_request_id_duration_and_throttle_headers() -> None:
    """Finding 2: a 429 line shows its Retry-After; a $batch has one line per inner item;
    no line holds the bearer token or a body."""
    answers = iter([
        httpx.Response(429, json={"error": {"code": "TooManyRequests", "message": "later"}},
                       headers={"Retry-After": "2", "request-id": "rid-1", "x-ms-throttle-limit-percentage": "1.0"}),
        httpx.Response(200, json={"value": []}, headers={"request-id": "rid-2"}),
    ])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch"):
            return httpx.Response(200, json={"responses": [
                {"id": "1", "status": 201, "headers": {"x-ms-resource-unit": "1"}, "body": {"id": "u1"}},
                {"id": "2", "status": 429, "headers": {"Retry-After": "0.5"}, "body": {}}]}
                if b'"id":"2"' in request.content.replace(b" ", b"") and b'"id":"1"' in request.content.replace(b" ", b"")
                else {"responses": [{"id": "2", "status": 201, "headers": {}, "body": {"id": "u2"}}]})
        return next(answers)

    vt = FakeClock()
    seen: list[Exchange] = []
    async with client_on(handler, vt, seen) as client:
        result = await client.request(GraphCall("GET", "/users?$filter=mail eq 'ann@example.com'"))
        assert result.status == 200
        body = {"passwordProfile": {"password": "Pass-w0rd-in-body!"}}
        results = await client.batch([GraphCall("POST", "/users", body), GraphCall("POST", "/users", body)])
        assert [r.status for r in results] == [201, 201]
    lines = [e.line() for e in seen]
    assert lines[0].startswith("GET /users?$filter=mail eq 'ann@example.com' -> 429, ")
    assert "request-id rid-1" in lines[0] and "retry-after 2" in lines[0]
    assert "x-ms-throttle-limit-percentage 1.0" in lines[0] and " ms" in lines[0]
    assert lines[1].startswith("GET /users?$filter=") and "-> 200" in lines[1] and "request-id rid-2" in lines[1]
    assert lines[2].startswith("POST /$batch (2 requests) -> 200")
    assert "request-id" in lines[2]  # the client-request-id we sent, when Graph echoes none
    assert lines[3] == "  item 1: POST /users -> 201, x-ms-resource-unit 1"
    assert lines[4] == "  item 2: POST /users -> 429, retry-after 0.5"
    assert lines[5].startswith("POST /$batch (1 request) -> 200") and lines[6] == "  item 2: POST /users -> 201"
    for line in lines:
        assert TOKEN not in line and "secret-token" not in line and "Pass-w0rd" not in line


async def test_a_request_without_an_answer_is_told_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    vt = FakeClock()
    seen: list[Exchange] = []
    async with client_on(handler, vt, seen, retry=RetryPolicy(deadline_seconds=1.0, jitter=0.0)) as client:
        result = await client.request(GraphCall("GET", "/users/x"))
    assert result.status == 0
    assert seen and seen[0].line().startswith("GET /users/x -> no answer (ConnectError)")


async def test_token_requests_are_told_without_the_token() -> None:
    """A fetched token is told once (cached ones are not); a failure by its type only."""
    from batch.graph import ObservedTokenProvider

    seen: list[Exchange] = []

    class Failing(Tokens):
        async def token(self) -> str:
            raise RuntimeError(f"refused for {TOKEN}")

    observed = ObservedTokenProvider(Tokens(), seen.append, "app-1")
    assert await observed.token() == TOKEN and await observed.token() == TOKEN
    with pytest.raises(RuntimeError):
        await ObservedTokenProvider(Failing(), seen.append, "app-2").token()
    lines = [e.line() for e in seen]
    assert len(lines) == 2
    assert lines[0].startswith("token for app app-1 -> obtained")
    assert lines[1].startswith("token for app app-2 -> failed (RuntimeError)")
    assert not any(TOKEN in line for line in lines)


async def test_the_throttle_wait_is_wall_clock_time_not_the_sum_over_workers() -> None:
    """Finding 9 ("waited 119.7 s for a 34 s run"): four workers waiting out the same 3 s
    Retry-After held the run for 3 s, not 12 s."""
    first = {f"/v1.0/users/{i}": True for i in range(4)}

    def handler(request: httpx.Request) -> httpx.Response:
        if first.pop(request.url.path, False):
            return httpx.Response(429, json={"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "3"})
        return httpx.Response(200, json={})

    vt = FakeClock()
    async with client_on(handler, vt) as client:
        start = vt.clock()
        results = await vt.run(asyncio.gather(*(client.request(GraphCall("GET", f"/users/{i}")) for i in range(4))))
        elapsed = vt.clock() - start
    assert [r.status for r in results] == [200] * 4
    summed = client.stats.retry_wait + client.stats.pacing_wait
    assert summed >= 11.9  # what summary.json used to report
    assert client.stats.held_wait == pytest.approx(3.0, abs=0.01)
    assert client.stats.held_wait <= elapsed + 1e-9


async def test_the_pacer_says_what_holds_the_run() -> None:
    """Finding 9: a pacer at its write quota says `write quota`; after a 429 its workers wait
    for `429 Retry-After` (a read-out only: the waits themselves are the pacer's)."""
    vt = FakeClock()
    pacer = Pacer(writes=Quota(10, 10.0), clock=vt.clock, sleep=vt.sleep)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={})

    async with client_on(handler, vt, pacer=pacer) as client:
        assert client.hold() is None

        async def writes(n: int) -> None:
            for _ in range(n):
                await client.request(GraphCall("POST", "/users", {}))

        await vt.run(writes(30))
        hold = client.hold()
        assert hold is not None and hold.reason == "write quota" and not hold.asked_by_graph
        pacer.observe(429, {"Retry-After": "12"})
        await vt.run(writes(1))
    assert pacer.hold is not None and pacer.hold.reason == "429 Retry-After" and pacer.hold.asked_by_graph
