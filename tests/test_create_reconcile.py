"""The create verb's decisions when answers are lost, scripted against a fake client:
who owns a customer found after a lost answer, what happens when the lookup fails too,
and when the run must stop instead of failing row after row."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from batch.errors import GraphRequestFailed
from batch.graph import ClientStats, GraphCall, GraphResult
from batch.io.csvio import Row
from batch.outcome import SentRow, Status
from batch.verbs.base import Session
from batch.verbs.create import CreateOptions, CreatePlan, CreateVerb

NOW = time.time()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeClient:
    """Answers each call with the next scripted answer for its method."""

    def __init__(self, script: dict[str, list[Callable[[GraphCall], GraphResult]]]) -> None:
        self.script = script
        self.calls: list[GraphCall] = []
        self.stats = ClientStats()
        self.server_clock_offset: float | None = None  # as GraphClient: unknown until a Date header is seen

    async def request(self, call: GraphCall) -> GraphResult:
        self.calls.append(call)
        return self.script[call.method].pop(0)(call)

    async def batch(self, calls: list[GraphCall]) -> list[GraphResult]:
        return [await self.request(c) for c in calls]


def answer(status: int, body: Any = None, *, attempts: int = 1, ambiguous: bool = False,
           code: str | None = None) -> Callable[[GraphCall], GraphResult]:
    return lambda call: GraphResult(status, {}, body, attempts, ambiguous=ambiguous, error_code=code,
                                    error_message=code and f"{code} message")


def found(created: float, object_id: str = "obj-1") -> Callable[[GraphCall], GraphResult]:
    return answer(200, {"value": [{"id": object_id, "createdDateTime": iso(created)}]})


CONFLICT = answer(400, {"error": {"code": "Request_BadRequest", "message": "Another object with the same value for "
                                  "property identities already exists.",
                                  "details": [{"target": "identities", "code": "ObjectConflict"}]}},
                  code="Request_BadRequest")
EMPTY = answer(200, {"value": []})


def plan(verb: CreateVerb, number: int = 1) -> CreatePlan:
    result = verb.validate(Row(number, {"signInName": f"c{number}@example.com", "displayName": "C"}))
    assert isinstance(result, CreatePlan)
    return result


def session(client: FakeClient, on_file: set[int] | None = None, waits: tuple[float, ...] = (1.0, 2.0)) -> Session:
    async def no_sleep(seconds: float) -> None:
        return None

    return Session(client=client, clock=lambda: NOW, passwords_on_file=lambda rows: (on_file or set()) & rows,  # type: ignore[arg-type]
                   replication_waits=waits, sleep=no_sleep)


@pytest.fixture
def verb() -> CreateVerb:
    return CreateVerb(CreateOptions(domain="contoso.onmicrosoft.com"))


async def test_lost_answer_then_a_lagging_lookup_is_asked_again_not_resent(verb: CreateVerb) -> None:
    client = FakeClient({"POST": [answer(0, ambiguous=True)], "GET": [EMPTY, found(NOW + 1)]})
    p = plan(verb)
    done = await verb.execute([p], session(client))
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.CREATED, "obj-1")
    assert [c.method for c in client.calls] == ["POST", "GET", "GET"]
    assert [line[:4] for line in done.passwords] == [(1, "c1@example.com", "obj-1", p.generated_password)]


async def test_lost_answer_then_a_lookup_lagging_past_the_waits_then_a_conflict_is_still_ours(verb: CreateVerb) -> None:
    client = FakeClient({"POST": [answer(0, ambiguous=True), CONFLICT], "GET": [EMPTY, EMPTY, found(NOW + 1)]})
    p = plan(verb)
    done = await verb.execute([p], session(client, waits=(1.0,)))
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.CREATED, "obj-1")
    # Both POSTs carried the same password, and that is the one on file.
    sent = [c.body["passwordProfile"]["password"] for c in client.calls if c.method == "POST"]
    assert sent[0] == sent[1] == p.generated_password
    assert [line[:4] for line in done.passwords] == [(1, "c1@example.com", "obj-1", p.generated_password)]


async def test_a_failed_lookup_leaves_the_row_for_resume(verb: CreateVerb) -> None:
    client = FakeClient({"POST": [answer(504, ambiguous=True)], "GET": [answer(503, code="serviceNotAvailable")]})
    done = await verb.execute([plan(verb)], session(client))
    assert done.outcomes == [] and done.unresolved == [1] and done.passwords == []


async def test_a_first_attempt_conflict_is_never_claimed(verb: CreateVerb) -> None:
    # Created a second before this run sent its request: the file ran twice in a row.
    client = FakeClient({"POST": [CONFLICT], "GET": [found(NOW - 1, "theirs")]})
    done = await verb.execute([plan(verb)], session(client))
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id, outcome.error_code) == (Status.FAILED, "theirs", "ObjectConflict")
    assert done.passwords == []


async def test_a_refused_write_stops_the_run(verb: CreateVerb) -> None:
    client = FakeClient({"POST": [answer(201, {"id": "ok"}), answer(403, code="Authorization_RequestDenied")]})
    done = await verb.execute([plan(verb, 1), plan(verb, 2)], session(client))
    assert [o.row for o in done.outcomes] == [1] and done.unresolved == [2]
    assert isinstance(done.stop, GraphRequestFailed) and done.stop.exit_code == 3
    assert "Authorization_RequestDenied" in str(done.stop)


async def test_reconcile_replaces_a_password_that_died_with_the_process(verb: CreateVerb) -> None:
    client = FakeClient({"GET": [found(NOW - 2)], "PATCH": [answer(204)]})
    p = plan(verb)
    done = await verb.reconcile([(p, SentRow(1, p.key, NOW - 5, True, 1))], session(client))
    [outcome] = done.outcomes
    assert outcome.status is Status.CREATED and "a new one was set" in outcome.error_message
    [patch] = [c for c in client.calls if c.method == "PATCH"]
    assert [line[:4] for line in done.passwords] == [(1, "c1@example.com", "obj-1", patch.body["passwordProfile"]["password"])]


async def test_reconcile_keeps_a_password_already_on_file(verb: CreateVerb) -> None:
    client = FakeClient({"GET": [found(NOW - 2)]})
    p = plan(verb)
    done = await verb.reconcile([(p, SentRow(1, p.key, NOW - 5, True, 1))], session(client, on_file={1}))
    assert [(o.status, o.error_message) for o in done.outcomes] == [(Status.CREATED, "")]
    assert done.passwords == [] and not [c for c in client.calls if c.method != "GET"]


async def test_reconcile_resends_what_never_arrived_and_a_conflict_then_is_ours(verb: CreateVerb) -> None:
    # The lookup lags, the re-send conflicts: the interrupted process made it, with a password now lost.
    client = FakeClient({"GET": [EMPTY, found(NOW - 3)], "POST": [CONFLICT], "PATCH": [answer(204)]})
    p = plan(verb)
    done = await verb.reconcile([(p, SentRow(1, p.key, NOW - 5, True, 1))], session(client))
    [outcome] = done.outcomes
    assert outcome.status is Status.CREATED and "a new one was set" in outcome.error_message
    assert len(done.passwords) == 1


async def test_reconcile_resend_conflict_keeps_the_password_already_on_file(verb: CreateVerb) -> None:
    # The interrupted process wrote the password line, then died before marking the row done;
    # the lookup lags past the waits and the re-send (with this process's new password)
    # conflicts: the customer is the earlier process's, its password is the one on file, and
    # the refused POST's password must not be written as a second, wrong line (soak: "row 113
    # has 2 lines in passwords.csv").
    client = FakeClient({"GET": [EMPTY, EMPTY, found(NOW - 3)], "POST": [CONFLICT]})
    p = plan(verb)
    done = await verb.reconcile([(p, SentRow(1, p.key, NOW - 5, True, 1))],
                                session(client, on_file={1}, waits=(1.0,)))
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.CREATED, "obj-1")
    assert done.passwords == [] and not [c for c in client.calls if c.method == "PATCH"]


async def test_ownership_is_judged_on_graphs_clock(verb: CreateVerb) -> None:
    # This machine's clock runs 45 s ahead of Graph's: our lost create shows a createdDateTime
    # 45 s "before" we sent it, and is still ours.
    client = FakeClient({"POST": [answer(0, ambiguous=True)], "GET": [found(NOW - 44)]})
    client.server_clock_offset = -45.0
    done = await verb.execute([plan(verb)], session(client))
    assert [o.status for o in done.outcomes] == [Status.CREATED] and len(done.passwords) == 1
    # With Graph's clock known, a customer created well before the send is not claimed.
    client = FakeClient({"POST": [answer(0, ambiguous=True)], "GET": [found(NOW - 60, "theirs")]})
    client.server_clock_offset = -45.0
    done = await verb.execute([plan(verb, 2)], session(client))
    assert [(o.status, o.object_id) for o in done.outcomes] == [(Status.FAILED, "theirs")]
