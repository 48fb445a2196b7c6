"""GraphClient: retries bounded by a deadline, Retry-After in every form, the pause shared by
every worker, $batch retried by id, ambiguous answers, a fresh token after a 401, paging
(GRAPH.md §3, §8, §11, §14). Unit tests answer from `respx` routes (side-effect sequences
for 429/503/dropped connections, call assertions) on the one `FakeClock`; the integration
tests at the end run against the in-process emulator.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from batch.auth import ClientCredentialsProvider
from batch.emulator import EmulatorSettings, Faults, Quota, Quotas, Store, create_app
from batch.emulator.inprocess import EmulatorTransport
from batch.errors import GraphRequestFailed
from batch.graph import (
    AppPool,
    GraphCall,
    GraphClient,
    GraphResult,
    Pacer,
    RetryPolicy,
)
from batch.graph import Quota as PacerQuota

try:
    from .fakes import DOMAIN, FakeClock, customer
except ImportError:  # tests/graph is not a package
    from fakes import DOMAIN, FakeClock, customer  # type: ignore[no-redef]

BASE = "https://graph.test/v1.0"


class Tokens:
    """A token provider that hands out tok-1, tok-2, … and counts invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.current: str | None = None
        self.invalidations = 0

    async def token(self) -> str:
        if self.current is None:
            self.issued += 1
            self.current = f"tok-{self.issued}-{uuid.uuid4().hex}"
        return self.current

    def invalidate(self) -> None:
        self.invalidations += 1
        self.current = None


def graph_routes() -> respx.Router:
    """Routes on the Graph base; a request no route matches fails the test."""
    return respx.Router(base_url=BASE)


def graph_error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message or code}}, headers=headers)


def throttled(retry_after: str | None = "1") -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return graph_error(429, "TooManyRequests", "Please retry again later.", headers)


def make_client(graph: respx.Router, t: FakeClock | None = None, tokens: Tokens | None = None,
                **kwargs: Any) -> GraphClient:
    t = t or FakeClock()
    kwargs.setdefault("retry", RetryPolicy(jitter=0.0))
    return GraphClient(BASE, tokens or Tokens(), transport=httpx.MockTransport(graph.async_handler), sleep=t.sleep,
                       clock=t.clock, rng=random.Random(0), **kwargs)


# ---- one request ------------------------------------------------------------------------------------

async def test_get_sends_token_priority_and_parses_the_body() -> None:
    graph = graph_routes()
    user = graph.get("/users/abc", params={"$select": "id"}).respond(200, json={"id": "abc"})
    tokens = Tokens()
    client = make_client(graph, tokens=tokens, low_priority=True)
    result = await client.request(GraphCall("GET", "/users/abc?$select=id", headers={"ConsistencyLevel": "eventual"}))
    assert result.ok and result.body == {"id": "abc"} and result.attempts == 1 and not result.ambiguous
    sent = user.calls.last.request
    assert sent.url == "https://graph.test/v1.0/users/abc?$select=id"
    assert sent.headers["authorization"] == f"Bearer {tokens.current}"
    assert sent.headers["x-ms-throttle-priority"] == "Low"
    assert sent.headers["consistencylevel"] == "eventual"
    assert "retry-attempt" not in sent.headers


async def test_post_body_is_json() -> None:
    graph = graph_routes()
    create = graph.post("/users").respond(201, json={"id": "new"})
    result = await make_client(graph).request(GraphCall("POST", "/users", {"displayName": "Åsa"}))
    assert result.status == 201
    assert json.loads(create.calls.last.request.content) == {"displayName": "Åsa"}
    assert create.calls.last.request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("retry_after", "wait"), [
    ("7", 7.0),
    ("2.128", 2.128),
    ("0.249", 0.249),
    ("HTTP-date", 30.0),
    (None, 0.5),  # no header: the policy's first backoff
])
async def test_429_honours_retry_after_in_every_form(retry_after: str | None, wait: float) -> None:
    if retry_after == "HTTP-date":
        retry_after = email.utils.formatdate(time.time() + 30, usegmt=True)
    t = FakeClock()
    graph = graph_routes()
    users = graph.get("/users").mock(side_effect=[throttled(retry_after), httpx.Response(200, json={})])
    client = make_client(graph, t)
    result = await client.request(GraphCall("GET", "/users"))
    assert result.status == 200 and result.attempts == 2
    assert t.sleeps == [pytest.approx(wait, abs=1.5 if wait == 30.0 else 1e-6)]
    assert users.calls[1].request.headers["retry-attempt"] == "1"
    assert client.stats.throttled == 1 and client.stats.retries == 1


async def test_throttled_forever_gives_up_at_the_deadline_not_after_a_count() -> None:
    t = FakeClock()
    graph = graph_routes()
    graph.post("/users").mock(return_value=throttled("200"))
    client = make_client(graph, t, retry=RetryPolicy(deadline_seconds=900, throttled_deadline_seconds=900))
    result = await client.request(GraphCall("POST", "/users", {}))
    assert result.status == 429 and result.error_code == "TooManyRequests" and not result.ambiguous
    assert result.attempts == 5  # Retry-After ≥ 180 s is honoured, four times
    assert t.sleeps == [200.0] * 4


async def test_a_throttled_row_waits_its_turn_past_the_failure_deadline() -> None:
    t = FakeClock()
    graph = graph_routes()
    graph.post("/users").mock(side_effect=[*[throttled("300")] * 5, httpx.Response(201, json={"id": "x"})])
    result = await make_client(graph, t).request(GraphCall("POST", "/users", {}))
    assert result.status == 201 and result.attempts == 6
    assert sum(t.sleeps) == 1500.0  # beyond the 900 s that bounds failures


async def test_failures_still_stop_at_their_deadline() -> None:
    t = FakeClock()
    graph = graph_routes()
    unavailable = graph_error(503, "serviceNotAvailable", headers={"Retry-After": "400"})
    users = graph.get("/users").mock(return_value=unavailable)
    result = await make_client(graph, t).request(GraphCall("GET", "/users"))
    assert result.status == 503 and sum(t.sleeps) <= 900
    assert users.call_count == 3  # at 0, 400 and 800 s


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_retry_idempotent_calls_and_leave_posts_ambiguous(status: int) -> None:
    graph = graph_routes()
    graph.patch("/users/x").mock(side_effect=[graph_error(status, "UnknownError"), httpx.Response(204)])
    patched = await make_client(graph).request(GraphCall("PATCH", "/users/x", {"city": "Oslo"}))
    assert patched.status == 204 and patched.attempts == 2

    graph = graph_routes()
    create = graph.post("/users").mock(side_effect=[graph_error(status, "UnknownError"), httpx.Response(201, json={})])
    client = make_client(graph)
    created = await client.request(GraphCall("POST", "/users", {}))
    assert created.status == status and created.ambiguous and created.attempts == 1
    assert create.call_count == 1  # never resent blindly
    assert client.stats.ambiguous == 1


async def test_503_is_retried_even_for_post() -> None:
    graph = graph_routes()
    graph.post("/users").mock(side_effect=[graph_error(503, "serviceNotAvailable", headers={"Retry-After": "3"}),
                                           httpx.Response(201, json={})])
    t = FakeClock()
    result = await make_client(graph, t).request(GraphCall("POST", "/users", {}))
    assert result.status == 201 and not result.ambiguous and t.sleeps == [3.0]


async def test_post_marked_idempotent_is_retried() -> None:
    graph = graph_routes()
    graph.post("/directory/deletedItems/x/restore").mock(
        side_effect=[graph_error(504, "GatewayTimeout"), httpx.Response(200, json={})])
    result = await make_client(graph).request(GraphCall("POST", "/directory/deletedItems/x/restore", idempotent=True))
    assert result.status == 200 and result.attempts == 2


async def test_connect_error_is_safe_to_retry_even_for_post() -> None:
    graph = graph_routes()
    graph.post("/users").mock(side_effect=[httpx.ConnectError("connection refused"), httpx.ConnectTimeout("slow"),
                                           httpx.Response(201, json={})])
    result = await make_client(graph).request(GraphCall("POST", "/users", {}))
    assert result.status == 201 and result.attempts == 3 and not result.ambiguous


async def test_drop_after_send_leaves_post_ambiguous_and_retries_get() -> None:
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a complete response.")
    graph = graph_routes()
    create = graph.post("/users").mock(side_effect=[dropped, httpx.Response(201, json={})])
    created = await make_client(graph).request(GraphCall("POST", "/users", {}))
    assert created.status == 0 and created.ambiguous and created.attempts == 1
    assert created.error_code == "RemoteProtocolError" and "may or may not" in (created.error_message or "")
    assert create.call_count == 1

    graph = graph_routes()
    graph.get("/users").mock(side_effect=[httpx.ReadTimeout("timed out"), dropped,
                                          httpx.Response(200, json={"value": []})])
    listed = await make_client(graph).request(GraphCall("GET", "/users"))
    assert listed.status == 200 and listed.attempts == 3 and not listed.ambiguous


GATEWAY_PAGE = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1>"
                "</center></body>\r\n</html>\r\n" + "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" * 6)
SHORT_502 = "HTTP 502 from a gateway (HTML page: 502 Bad Gateway), not an answer from Graph"


def gateway_502(content_type: str | None = "text/html") -> httpx.Response:
    return httpx.Response(502, text=GATEWAY_PAGE, headers={} if content_type is None else {"Content-Type": content_type})


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8", None])
async def test_a_gateways_html_page_is_one_short_line_and_post_is_ambiguous(content_type: str | None) -> None:
    graph = graph_routes()
    create = graph.post("/users").mock(side_effect=[gateway_502(content_type), httpx.Response(201, json={})])
    created = await make_client(graph).request(GraphCall("POST", "/users", {}))
    assert created.status == 502 and created.ambiguous and create.call_count == 1
    assert created.error_message == SHORT_502 and created.error_code is None
    assert created.body is None  # the page is not kept

    graph = graph_routes()
    graph.get("/users").mock(side_effect=[gateway_502(content_type), httpx.Response(200, json={"value": []})])
    listed = await make_client(graph).request(GraphCall("GET", "/users"))
    assert listed.status == 200 and listed.attempts == 2


async def test_a_page_without_a_title_still_says_what_it_is() -> None:
    graph = graph_routes()
    graph.post("/users").respond(502, text="<!DOCTYPE html><html><body>" + "x" * 3000 + "</body></html>")
    created = await make_client(graph).request(GraphCall("POST", "/users", {}))
    assert created.error_message == "HTTP 502 from a gateway (HTML page), not an answer from Graph"


async def test_reset_mid_body_is_a_dropped_answer() -> None:
    """A connection reset after the headers and part of the body: httpx raises while reading
    the body; POST is ambiguous, PATCH is sent again."""
    reset = httpx.ReadError("[Errno 104] Connection reset by peer")
    graph = graph_routes()
    create = graph.post("/users").mock(side_effect=[reset, httpx.Response(201, json={})])
    created = await make_client(graph).request(GraphCall("POST", "/users", {}))
    assert created.status == 0 and created.ambiguous and create.call_count == 1
    assert "may or may not" in (created.error_message or "")

    graph = graph_routes()
    graph.patch("/users/x").mock(side_effect=[reset, httpx.Response(204)])
    patched = await make_client(graph).request(GraphCall("PATCH", "/users/x", {"city": "Oslo"}))
    assert patched.status == 204 and patched.attempts == 2 and not patched.ambiguous


async def test_401_gets_one_fresh_token() -> None:
    tokens = Tokens()
    expired = graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
    graph = graph_routes()
    users = graph.get("/users").mock(side_effect=[expired, httpx.Response(200, json={})])
    client = make_client(graph, tokens=tokens)
    result = await client.request(GraphCall("GET", "/users"))
    assert result.status == 200 and tokens.invalidations == 1 and tokens.issued == 2
    first, second = (call.request.headers["authorization"] for call in users.calls)
    assert first != second
    assert client.stats.token_refreshes == 1

    tokens = Tokens()
    graph = graph_routes()
    graph.get("/users").mock(return_value=expired)
    result = await make_client(graph, tokens=tokens).request(GraphCall("GET", "/users"))
    assert result.status == 401 and result.attempts == 2 and tokens.invalidations == 1


async def test_concurrent_401s_drop_the_token_once() -> None:
    tokens = Tokens()
    first_token: list[str] = []

    def expire_the_first_token(request: httpx.Request) -> httpx.Response:
        if not first_token:
            first_token.append(request.headers["authorization"])
        if request.headers["authorization"] == first_token[0]:
            return graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        return httpx.Response(200, json={})

    graph = graph_routes()
    graph.get(path__regex=r"/users/\d+$").mock(side_effect=expire_the_first_token)
    client = make_client(graph, tokens=tokens)
    results = await asyncio.gather(*(client.request(GraphCall("GET", f"/users/{i}")) for i in range(8)))
    assert all(r.status == 200 for r in results)
    assert tokens.invalidations == 1 and tokens.issued == 2


@pytest.mark.parametrize("answer", [graph_error(403, "Authorization_RequestDenied"), httpx.ReadError("reset"),
                                    httpx.Response(200)])
async def test_no_token_in_results_or_errors(answer: Any) -> None:
    tokens = Tokens()
    graph = graph_routes()
    graph.post("/users").mock(side_effect=[answer])
    result = await make_client(graph, tokens=tokens).request(GraphCall("POST", "/users", {}))
    assert tokens.current is not None and tokens.current not in repr(result)


async def test_foreign_hosts_never_get_the_token() -> None:
    graph = graph_routes()
    users = graph.get("/users").respond(200)
    client = make_client(graph)
    with pytest.raises(ValueError):
        await client.request(GraphCall("GET", "https://evil.test/v1.0/users"))
    assert not graph.calls.called  # refused before anything was sent
    ok = await client.request(GraphCall("GET", "https://graph.test/v1.0/users?$skiptoken=x"))
    assert ok.status == 200 and users.call_count == 1


def test_ca_bundle_paths_become_ssl_contexts() -> None:
    import ssl

    import certifi

    from batch.graph.transport import tls_verify

    assert isinstance(tls_verify(certifi.where()), ssl.SSLContext)
    assert tls_verify(False) is False and tls_verify(True) is True


# ---- the shared pause --------------------------------------------------------------------------------

async def test_429_pauses_every_worker_not_just_the_throttled_one() -> None:
    vt = FakeClock()
    second_sent: list[float] = []

    def second_answer(request: httpx.Request) -> httpx.Response:
        second_sent.append(vt.clock())
        return httpx.Response(200, json={})

    graph = graph_routes()
    graph.get("/users/first").mock(side_effect=[throttled("3"), httpx.Response(200, json={})])
    graph.get("/users/second").mock(side_effect=second_answer)
    pacer = Pacer(clock=vt.clock, sleep=vt.sleep)
    client = make_client(graph, vt, pacer=pacer)

    async def second_worker() -> GraphResult:
        await vt.sleep(0.5)  # starts after the first worker's 429
        return await client.request(GraphCall("GET", "/users/second"))

    async def both() -> list[GraphResult]:
        return list(await asyncio.gather(client.request(GraphCall("GET", "/users/first")), second_worker()))

    start = vt.clock()
    first, second = await vt.run(both())
    assert first.status == second.status == 200
    assert second_sent == [pytest.approx(start + 3.0)]  # held by the first worker's Retry-After
    assert second.attempts == 1  # it waited; it was never throttled itself
    assert pacer.stats.throttled == 1 and client.stats.pacing_wait >= 2.5


# ---- $batch ----------------------------------------------------------------------------------------------

class BatchGraph:
    """A $batch endpoint (a respx side effect): answers each inner request through
    `inner(request_dict, round)`, and returns the responses in *reverse* order (Graph may
    reorder them). `routes()` mounts it on POST /$batch; any other request fails the test."""

    def __init__(self, inner: Callable[[dict[str, Any], int], dict[str, Any]], outer: list[Any] | None = None) -> None:
        self.inner = inner
        self.outer = outer or []  # answers or exceptions for the first $batch requests
        self.batches: list[list[dict[str, Any]]] = []

    def routes(self) -> respx.Router:
        graph = graph_routes()
        graph.post("/$batch").mock(side_effect=self)
        return graph

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/json"
        items = json.loads(request.content)["requests"]
        assert len(items) <= 20
        self.batches.append(items)
        number = len(self.batches)
        if number <= len(self.outer):
            answer = self.outer[number - 1]
            if isinstance(answer, Exception):
                raise answer
            if answer is not None:
                return answer
        responses = [{"id": item["id"], **self.inner(item, number)} for item in items]
        return httpx.Response(200, json={"responses": list(reversed(responses))})


def echo(item: dict[str, Any], _round: int) -> dict[str, Any]:
    status = {"GET": 200, "POST": 201, "PATCH": 204, "DELETE": 204}[item["method"]]
    return {"status": status, "headers": {"Content-Type": "application/json"},
            "body": {"url": item["url"], "echo": item.get("body")}}


def creates(n: int) -> list[GraphCall]:
    return [GraphCall("POST", "/users", {"n": i}) for i in range(n)]


async def test_batch_chunks_by_20_and_matches_answers_by_id() -> None:
    graph = BatchGraph(echo)
    calls = creates(45)
    results = await make_client(graph.routes()).batch(calls)
    assert [len(b) for b in graph.batches] == [20, 20, 5]
    assert [r.body["echo"]["n"] for r in results] == list(range(45))  # input order despite reversed answers
    assert all(r.status == 201 and r.attempts == 1 for r in results)
    first = graph.batches[0][0]
    assert first["headers"]["Content-Type"] == "application/json" and first["url"] == "/users"


async def test_inner_429_retried_in_a_new_batch_of_only_the_failed_ids_after_the_longest_retry_after() -> None:
    def inner(item: dict[str, Any], number: int) -> dict[str, Any]:
        n = item["body"]["n"]
        if number == 1 and n in (2, 5, 7):
            retry = {2: "0.249", 5: "2.128", 7: "1"}[n]
            return {"status": 429, "headers": {"Retry-After": retry},
                    "body": {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}}
        return echo(item, number)

    graph = BatchGraph(inner)
    t = FakeClock()
    client = make_client(graph.routes(), t)
    results = await client.batch(creates(10))
    assert [len(b) for b in graph.batches] == [10, 3]
    assert sorted(item["body"]["n"] for item in graph.batches[1]) == [2, 5, 7]
    assert all(item["headers"]["Retry-Attempt"] == "1" for item in graph.batches[1])
    assert t.sleeps == [2.128]
    assert [r.status for r in results] == [201] * 10
    assert [r.attempts for r in results] == [1, 1, 2, 1, 1, 2, 1, 2, 1, 1]
    assert [r.body["echo"]["n"] for r in results] == list(range(10))
    assert client.stats.throttled == 3 and client.stats.retries == 3
    assert client.stats.requests == 2 and client.stats.calls == 13


async def test_inner_throttle_pauses_the_pacer_for_all_workers() -> None:
    vt = FakeClock()

    def inner(item: dict[str, Any], number: int) -> dict[str, Any]:
        if number == 1 and item["body"]["n"] == 0:
            return {"status": 429, "headers": {"Retry-After": "4", "x-ms-throttle-information": "WriteLimitExceeded"},
                    "body": {"error": {"code": "TooManyRequests", "message": "later"}}}
        return echo(item, number)

    pacer = Pacer(clock=vt.clock, sleep=vt.sleep)
    client = make_client(BatchGraph(inner).routes(), vt, pacer=pacer)
    await vt.run(client.batch(creates(3)))
    assert pacer.not_before >= 1000 + 4 - 1e-6
    assert pacer.stats.throttled == 1


async def test_inner_server_errors_retry_idempotent_calls_only() -> None:
    def inner(item: dict[str, Any], number: int) -> dict[str, Any]:
        if number == 1:
            return {"status": 504, "headers": {}, "body": {"error": {"code": "UnknownError", "message": "gateway"}}}
        return echo(item, number)

    graph = BatchGraph(inner)
    calls = [GraphCall("POST", "/users", {"n": 0}), GraphCall("PATCH", "/users/a", {"n": 1}),
             GraphCall("GET", "/users/b"), GraphCall("DELETE", "/users/c")]
    results = await make_client(graph.routes()).batch(calls)
    assert [r.status for r in results] == [504, 204, 200, 204]
    assert results[0].ambiguous and results[0].attempts == 1 and results[0].error_code == "UnknownError"
    assert not any(r.ambiguous for r in results[1:])
    assert [item["method"] for item in graph.batches[1]] == ["PATCH", "GET", "DELETE"]


async def test_whole_batch_dropped_after_sending() -> None:
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a complete response.")
    graph = BatchGraph(echo, outer=[dropped])
    calls = [GraphCall("POST", "/users", {"n": 0}), GraphCall("GET", "/users/b"), GraphCall("POST", "/users", {"n": 2})]
    client = make_client(graph.routes())
    results = await client.batch(calls)
    assert [r.ambiguous for r in results] == [True, False, True]
    assert [r.status for r in results] == [0, 200, 0]
    assert [item["method"] for item in graph.batches[1]] == ["GET"]
    assert client.stats.ambiguous == 2


@pytest.mark.parametrize("outer", [
    httpx.ConnectError("refused"),  # nothing was sent
    graph_error(503, "serviceNotAvailable", headers={"Retry-After": "2"}),  # refused as a whole
    throttled("2"),
])
async def test_whole_batch_refused_is_resent_whole(outer: Any) -> None:
    graph = BatchGraph(echo, outer=[outer])
    results = await make_client(graph.routes()).batch(creates(4))
    assert [r.status for r in results] == [201] * 4 and not any(r.ambiguous for r in results)
    assert [len(b) for b in graph.batches] == [4, 4]


async def test_whole_batch_5xx_without_retry_after_is_ambiguous_for_posts() -> None:
    graph = BatchGraph(echo, outer=[graph_error(502, "BadGateway")])
    results = await make_client(graph.routes()).batch([GraphCall("POST", "/users", {"n": 0}), GraphCall("PATCH", "/users/x", {})])
    assert results[0].ambiguous and results[0].status == 502
    assert results[1].status == 204


async def test_whole_batch_gateway_page_is_short_and_ambiguous_for_posts() -> None:
    graph = BatchGraph(echo, outer=[gateway_502()])
    results = await make_client(graph.routes()).batch([GraphCall("POST", "/users", {"n": 0}),
                                                       GraphCall("GET", "/users/x")])
    assert (results[0].status, results[0].ambiguous, results[0].error_message) == (502, True, SHORT_502)
    assert results[0].body is None
    assert results[1].status == 200 and [item["method"] for item in graph.batches[1]] == ["GET"]


@pytest.mark.parametrize("seed", range(5))
async def test_batch_answers_in_any_order_are_matched_by_id(seed: int) -> None:
    class Shuffled(BatchGraph):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            answer = super().__call__(request)
            body = json.loads(answer.content)
            random.Random(seed).shuffle(body["responses"])
            return httpx.Response(200, json=body)

    def inner(item: dict[str, Any], number: int) -> dict[str, Any]:
        n = item["body"]["n"]
        if n % 3 == 0:
            return {"status": 400, "headers": {}, "body": {"error": {"code": "Request_BadRequest", "message": f"n={n}"}}}
        return echo(item, number)

    results = await make_client(Shuffled(inner).routes()).batch(creates(20))
    for n, result in enumerate(results):
        if n % 3 == 0:
            assert (result.status, result.error_message) == (400, f"n={n}")
        else:
            assert result.status == 201 and result.body["echo"]["n"] == n


@pytest.mark.parametrize("url", ["/v1.0/users", "v1.0/users/x", "/beta/users", "https://graph.test/beta/users",
                                 "https://graph.test/users"])
async def test_batch_item_urls_never_carry_a_version(url: str) -> None:
    """Graph fails such an item ("Resource not found for the segment 'v1.0'.") or the whole
    batch: the client refuses it before anything is sent."""
    graph = BatchGraph(echo)
    with pytest.raises(ValueError, match="cannot batch"):
        await make_client(graph.routes()).batch([GraphCall("GET", "/users"), GraphCall("GET", url)])
    assert graph.batches == []


async def test_batch_401_refreshes_the_token_once() -> None:
    tokens = Tokens()
    graph = BatchGraph(echo, outer=[graph_error(401, "InvalidAuthenticationToken")])
    results = await make_client(graph.routes(), tokens=tokens).batch(creates(2))
    assert [r.status for r in results] == [201, 201] and tokens.invalidations == 1


async def test_batch_400_is_final_for_every_item() -> None:
    graph = BatchGraph(echo, outer=[graph_error(400, "BadRequest", "Invalid batch payload format.")])
    results = await make_client(graph.routes()).batch(creates(2))
    assert [(r.status, r.error_code, r.ambiguous) for r in results] == [(400, "BadRequest", False)] * 2


async def test_batch_inner_bodies_are_parsed_and_missing_answers_handled() -> None:
    def inner(item: dict[str, Any], number: int) -> dict[str, Any]:
        return {"status": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"value": [item["url"]]})}

    class Drops(BatchGraph):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            response = super().__call__(request)
            if len(self.batches) == 1:
                body = response.json()
                body["responses"] = [r for r in body["responses"] if r["id"] != "2"]
                return httpx.Response(200, json=body)
            return response

    graph = Drops(inner)
    results = await make_client(graph.routes()).batch([GraphCall("GET", "/users/a"), GraphCall("GET", "/users/b?$select=id")])
    assert [r.body for r in results] == [{"value": ["/users/a"]}, {"value": ["/users/b?$select=id"]}]
    assert results[1].attempts == 2


async def test_batch_deadline_returns_the_last_answers() -> None:
    def inner(item: dict[str, Any], number: int) -> dict[str, Any]:
        return {"status": 429, "headers": {"Retry-After": "400"}, "body": {"error": {"code": "TooManyRequests"}}}

    t = FakeClock()
    results = await make_client(BatchGraph(inner).routes(), t, retry=RetryPolicy(deadline_seconds=900,
                                                                         throttled_deadline_seconds=900)).batch(creates(2))
    assert [(r.status, r.attempts) for r in results] == [(429, 3), (429, 3)]
    assert t.sleeps == [400.0, 400.0]


async def test_batch_inner_urls_are_relative_and_escaped() -> None:
    graph = BatchGraph(echo)
    client = make_client(graph.routes(), low_priority=True)
    await client.batch([GraphCall("GET", "/users?$filter=identities/any(c:c/issuerAssignedId eq 'a@b.c')",
                                  headers={"ConsistencyLevel": "eventual"}),
                        GraphCall("GET", "https://graph.test/v1.0/users/x")])
    first, second = graph.batches[0]
    assert first["url"] == "/users?$filter=identities/any(c:c/issuerAssignedId%20eq%20'a@b.c')"
    assert first["headers"] == {"ConsistencyLevel": "eventual", "x-ms-throttle-priority": "Low"}
    assert second["url"] == "/users/x"


# ---- paging ---------------------------------------------------------------------------------------------

async def test_pages_follow_next_links_and_resend_headers() -> None:
    graph = graph_routes()
    last = graph.get("/users", params={"$skiptoken": "B"}).respond(200, json={"value": [4]})
    middle = graph.get("/users", params={"$skiptoken": "A"}).respond(
        200, json={"value": [3], "@odata.nextLink": "https://graph.test/v1.0/users?$skiptoken=B"})
    first = graph.get("/users").respond(
        200, json={"value": [1, 2], "@odata.nextLink": "https://graph.test/v1.0/users?$skiptoken=A"})
    client = make_client(graph)
    got = [page async for page in client.pages("/users", {"ConsistencyLevel": "eventual"})]
    assert [v for page in got for v in page["value"]] == [1, 2, 3, 4]
    assert first.call_count == middle.call_count == last.call_count == 1
    assert all(call.request.headers["consistencylevel"] == "eventual" for call in graph.calls)


async def test_pages_refuse_foreign_links_and_report_failures() -> None:
    graph = graph_routes()
    graph.get("/users").respond(200, json={"value": [], "@odata.nextLink": "https://evil.test/x"})
    with pytest.raises(GraphRequestFailed):
        async for _ in make_client(graph).pages("/users"):
            pass
    assert graph.calls.call_count == 1  # the foreign link was never fetched

    graph = graph_routes()
    graph.get("/users").mock(return_value=graph_error(403, "Authorization_RequestDenied", "Insufficient privileges"))
    with pytest.raises(GraphRequestFailed) as caught:
        async for _ in make_client(graph).pages("/users"):
            pass
    assert caught.value.exit_code == 3 and "Authorization_RequestDenied" in str(caught.value)


async def test_app_pool_uses_each_apps_own_token() -> None:
    a, b = Tokens(), Tokens()
    graph = graph_routes()
    patches = graph.patch(path__regex=r"/users/\d+$").respond(200, json={})
    vt = FakeClock()
    pool = AppPool.of([a, b], writes=PacerQuota(2, 1), clock=vt.clock, sleep=vt.sleep)
    client = GraphClient(BASE, pacer=pool, transport=httpx.MockTransport(graph.async_handler), clock=vt.clock,
                         sleep=vt.sleep)

    async def many() -> None:
        await asyncio.gather(*(client.request(GraphCall("PATCH", f"/users/{i}", {})) for i in range(20)))

    await vt.run(many())
    assert patches.call_count == 20
    used = {call.request.headers["authorization"] for call in patches.calls}
    assert used == {f"Bearer {a.current}", f"Bearer {b.current}"}


# ---- against the emulator ----------------------------------------------------------------------------------

def emulator_client(store: Store, settings: EmulatorSettings, **kwargs: Any) -> tuple[GraphClient, ClientCredentialsProvider]:
    app = create_app(store, settings)
    transport = EmulatorTransport(app)
    default, tenant = store.default_app(), store.tenants()[0]
    assert default.secret is not None
    tokens = ClientCredentialsProvider(f"http://emulator/{tenant.id}/oauth2/v2.0/token", default.client_id,
                                       default.secret, transport=transport)
    return GraphClient("http://emulator/v1.0", tokens, transport=transport, **kwargs), tokens


async def send_in_batches(client: GraphClient, emails: list[str], workers: int, size: int = 20) -> list[GraphResult]:
    results: dict[str, GraphResult] = {}
    queue = [emails[i:i + size] for i in range(0, len(emails), size)]

    async def worker() -> None:
        while queue:
            chunk = queue.pop(0)
            answers = await client.batch([GraphCall("POST", "/users", customer(e)) for e in chunk])
            for address, result in zip(chunk, answers):
                results[address] = result

    await asyncio.gather(*(worker() for _ in range(workers)))
    return [results[e] for e in emails]


async def test_emulator_200_creates_under_a_tight_hidden_quota() -> None:
    store = Store(":memory:")
    settings = EmulatorSettings(quotas=Quotas(app_tenant_writes=Quota(40, 2)), seed=7)  # 20 writes/s, a burst of 40; seeded $batch order
    pacer = Pacer()  # seeded with the documented 3000/150: not told the emulator's quota
    client, tokens = emulator_client(store, settings, pacer=pacer)
    emails = [f"tight.{i}.{uuid.uuid4().hex[:6]}@example.com" for i in range(200)]
    start = time.monotonic()
    results = await send_in_batches(client, emails, workers=4)
    elapsed = time.monotonic() - start
    tenant = store.tenants()[0]
    share = client.stats.throttle_share
    ceiling = (200 - 40) / 20  # the emulator's burst, then its rate
    print(f"\n200 creates, emulator writes 40/2s: {elapsed:.1f} s = {200 / elapsed:.1f} rows/s "
          f"({ceiling / elapsed:.0%} of the ceiling), {client.stats.throttled} x 429 in {client.stats.calls} calls "
          f"({share:.1%}), pacer write rate {pacer.write_rate:.1f}/s, {pacer.stats.as_dict()}")
    assert [r.status for r in results] == [201] * 200
    ids = {store.identity_holder(tenant.id, DOMAIN, e) for e in emails}
    assert None not in ids and len(ids) == 200  # none lost, none duplicated
    assert store.live_user_count(tenant.id) == 200
    assert share <= 0.05
    await client.aclose()
    await tokens.aclose()
    store.close()


async def test_emulator_dropped_connections_leave_posts_ambiguous_but_applied() -> None:
    store = Store(":memory:")
    settings = EmulatorSettings(faults=Faults(rate=0.2, kinds=("drop-after",), seed=3))
    client, tokens = emulator_client(store, settings, pacer=Pacer())
    tenant = store.tenants()[0]
    emails = [f"drop.{i}.{uuid.uuid4().hex[:6]}@example.com" for i in range(100)]
    batched = await send_in_batches(client, emails[:60], workers=2, size=5)
    single = [await client.request(GraphCall("POST", "/users", customer(e))) for e in emails[60:]]
    results = batched + single
    ambiguous = [e for e, r in zip(emails, results) if r.ambiguous]
    print(f"\ndrop-after 20%: {len(ambiguous)} of {len(emails)} creates ambiguous "
          f"({sum(r.ambiguous for r in batched)} in batches, {sum(r.ambiguous for r in single)} single)")
    assert ambiguous, "seed 3 drops some connections"
    assert any(r.ambiguous for r in batched) and any(r.ambiguous for r in single)
    for address, result in zip(emails, results):
        assert result.status == (0 if result.ambiguous else 201)
        assert store.identity_holder(tenant.id, DOMAIN, address) is not None  # the write happened
    assert store.live_user_count(tenant.id) == 100  # and only once
    reads = await client.batch([GraphCall("GET", f"/users?$filter=identities/any(c:c/issuerAssignedId eq '{e}' "
                                                 f"and c/issuer eq '{DOMAIN}')&$select=id") for e in ambiguous])
    assert all(r.status == 200 and len(r.body["value"]) == 1 for r in reads)  # reconciling finds them
    await client.aclose()
    await tokens.aclose()
    store.close()


async def test_emulator_converges_in_virtual_time_on_a_smaller_hidden_rate() -> None:
    # The real emulator on a virtual clock: 2,000 creates against 300 writes / 30 s (half the
    # documented rate), 0.3 s round trips, 16 workers. Minutes of pacing in about a second.
    vt = FakeClock(start=1_780_000_000.0)
    store = Store(":memory:")
    # Seeded: the emulator shuffles the items of each $batch, and which items of a batch meet
    # the bucket's edge moves the figure by a few points from one order to another.
    app = create_app(store, EmulatorSettings(quotas=Quotas(app_tenant_writes=Quota(300, 30)), seed=7), clock=vt.clock)

    class Latency(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = EmulatorTransport(app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await vt.sleep(0.15)
            response = await self.inner.handle_async_request(request)
            await response.aread()
            await vt.sleep(0.15)
            return response

    default, tenant = store.default_app(), store.tenants()[0]
    assert default.secret is not None
    tokens = ClientCredentialsProvider(f"http://emulator/{tenant.id}/oauth2/v2.0/token", default.client_id,
                                       default.secret, transport=EmulatorTransport(app), clock=vt.clock, sleep=vt.sleep)
    pacer = Pacer(clock=vt.clock, sleep=vt.sleep)
    client = GraphClient("http://emulator/v1.0", tokens, pacer=pacer, transport=Latency(), clock=vt.clock, sleep=vt.sleep)
    emails = [f"v.{i}@example.com" for i in range(2000)]
    start = vt.clock()
    results = await vt.run(send_in_batches(client, emails, workers=16))
    elapsed = vt.clock() - start
    ceiling = (2000 - 300) / 10
    print(f"\n2000 creates, emulator writes 300/30s (virtual time): {2000 / elapsed:.2f} rows/s for a 10/s quota "
          f"({ceiling / elapsed:.0%} of the ceiling), 429 share {client.stats.throttle_share:.2%}")
    assert all(r.status == 201 for r in results)
    assert store.live_user_count(tenant.id) == 2000
    assert client.stats.throttle_share < 0.02
    assert ceiling / elapsed > 0.9
    await client.aclose()
    await tokens.aclose()
    store.close()
