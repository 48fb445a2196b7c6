"""JSON batching: many calls sent as `$batch` requests of at most 20 (GRAPH.md §8).

Graph answers a `$batch` item by item, in any order: answers are matched by id, their bodies
parsed here, and every inner answer is reported to the pacer (the envelope carries no
throttle headers). Items answered 429/503 (and 500/502/504 for idempotent calls) are sent
again in a *new* batch holding only those, after the longest Retry-After among them, until
the retry policy's deadline. When the `$batch` request itself fails — refused whole (429,
or 5xx with Retry-After), dropped after sending, or answered without a usable envelope —
the chunk is resent whole if nothing can have been applied, and otherwise idempotent calls
are resent and the others come back `ambiguous=True` for the engine to reconcile."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from batch.graph.answers import (
    NOTHING_SENT,
    Secrets,
    failure_result,
    inner_body,
    json_bytes,
    lower_headers,
    request_secrets,
    response_body,
    result_of,
)
from batch.graph.model import GraphCall, GraphResult
from batch.graph.observe import Exchange, request_id_of, shown_headers
from batch.graph.quotas import Cost, request_cost
from batch.graph.retry import retry_after_of
from batch.graph.session import Lease, Session

MAX_BATCH = 20  # requests per $batch (GRAPH.md §8)


@dataclass
class _Item:
    """One call of a batch() and what became of it so far."""

    index: int
    call: GraphCall
    id: str
    attempts: int = 0
    result: GraphResult | None = None
    retry_after: float | None = None


@dataclass
class _Round:
    """The state of a batch() call between rounds: what still needs sending, and the wait."""

    pending: list[_Item]
    number: int = 0
    retry_after: float | None = None
    refreshed: bool = False  # a 401 already got its fresh token


async def send_batched(session: Session, calls: Sequence[GraphCall]) -> list[GraphResult]:
    """Send calls through JSON batching; results in input order (see the module docstring)."""
    items = [_Item(i, call, str(i + 1)) for i, call in enumerate(calls)]
    if not items:
        return []
    for item in items:
        session.relative(item.call.url)  # refuse foreign hosts and versioned paths before anything is sent

    async def send_round(state: _Round) -> _Round:
        return await _send_round(session, state)

    state = _Round(pending=list(items))
    retrying = session.retrying(
        should_retry=lambda s: bool(s.pending), retry_after=lambda s: s.retry_after,
        throttled=lambda s: bool(s.pending) and all(i.result is not None and i.result.status == 429
                                                    for i in s.pending))
    await retrying(send_round, state)
    results: list[GraphResult] = []
    for item in items:
        assert item.result is not None
        if item.result.ambiguous:
            session.stats.ambiguous += 1
        results.append(item.result)
    return results


async def _send_round(session: Session, state: _Round) -> _Round:
    """Send what is pending, in chunks of MAX_BATCH at once; keep what must be sent again."""
    state.number += 1
    chunks = [state.pending[i:i + MAX_BATCH] for i in range(0, len(state.pending), MAX_BATCH)]
    state.pending, state.retry_after = [], None
    answers = await asyncio.gather(*(_send_chunk(session, chunk, state) for chunk in chunks))
    waits: list[float] = []
    for chunk_retry in answers:
        for item in chunk_retry:
            state.pending.append(item)
            waits.append(item.retry_after if item.retry_after is not None
                         else session.retry.backoff(state.number, session.rng))
    state.pending.sort(key=lambda it: it.index)
    state.retry_after = max(waits) if waits else None
    return state


async def _send_chunk(session: Session, chunk: list[_Item], state: _Round) -> list[_Item]:
    """Send one $batch; set each item's result; return the items to send again."""
    lease = await session.lease(_chunk_cost(chunk, session.b2c))
    token = await lease.provider.token()
    for item in chunk:
        item.attempts += 1
        item.retry_after = None
        if item.attempts > 1:
            session.stats.retries += 1
    payload = {"requests": [_inner_request(session, item) for item in chunk]}
    session.stats.requests += 1
    session.stats.calls += len(chunk)
    headers = session.headers(token, state.number)
    headers["Content-Type"] = "application/json"
    try:
        response = await session.send("POST", f"{session.base_url}/$batch", headers, json_bytes(payload),
                                      what=f"{len(chunk)} request{'s' if len(chunk) != 1 else ''}")
    except httpx.HTTPError as exc:
        return _no_answer(session, chunk, exc, lambda: request_secrets(token, [item.call.body for item in chunk],
                                                                       session.redact))
    session.note_server_time(response)
    outer_headers = lower_headers(response.headers)
    outer_body = response_body(response)
    # Any answer may echo any request of the chunk: none may bring back a password of the chunk.
    secrets: Secrets = functools.cache(lambda: request_secrets(token, [item.call.body for item in chunk],
                                                               session.redact))
    if response.status_code == 200 and isinstance(outer_body, dict) and isinstance(outer_body.get("responses"), list):
        # The envelope carries no throttle headers; the pacer learns from the inner answers.
        return _inner_results(session, chunk, outer_body["responses"], lease, secrets)
    lease.observe(response.status_code, outer_headers)
    outer = result_of(response.status_code, outer_headers, outer_body, 0, secrets=secrets)
    return await _refused_whole(session, chunk, outer, state, lease, token)


def _chunk_cost(chunk: list[_Item], b2c: bool) -> Cost:
    writes = resource_units = 0
    for item in chunk:
        cost = request_cost(item.call.method, item.call.url, b2c=b2c)
        writes += cost.writes
        resource_units += cost.resource_units
    return Cost(writes, resource_units)


def _no_answer(session: Session, chunk: list[_Item], exc: httpx.HTTPError, secrets: Secrets = tuple) -> list[_Item]:
    """The $batch request got no answer: every item failed with it (without the chunk's secrets)."""
    session.stats.transport_errors += 1
    for item in chunk:
        item.result = failure_result(exc, item.attempts, secrets)
    if isinstance(exc, NOTHING_SENT):
        return list(chunk)
    return _ambiguous(chunk)


async def _refused_whole(session: Session, chunk: list[_Item], outer: GraphResult, state: _Round, lease: Lease,
                         token: str) -> list[_Item]:
    """The $batch request was answered without a usable envelope: its answer is every item's."""
    retry_after = retry_after_of(outer.headers)
    for item in chunk:
        item.result = GraphResult(outer.status, dict(outer.headers), outer.body, item.attempts,
                                  error_code=outer.error_code, error_message=outer.error_message)
    if outer.status == 401 and not state.refreshed:
        state.refreshed = True
        await session.refresh(lease.provider, token)
        for item in chunk:
            item.retry_after = 0.0
        return list(chunk)
    if outer.status == 429 or (outer.status >= 500 and retry_after is not None):
        if outer.status == 429:
            session.stats.throttled += 1
        for item in chunk:
            item.retry_after = retry_after
        return list(chunk)
    if outer.status >= 500 or outer.status == 200:  # no usable answer: each call may or may not have run
        return _ambiguous(chunk)
    return []


def _ambiguous(chunk: list[_Item]) -> list[_Item]:
    """Idempotent items are sent again; the others are marked ambiguous (reconciled later)."""
    again = []
    for item in chunk:
        if item.call.is_idempotent:
            again.append(item)
        else:
            assert item.result is not None
            item.result.ambiguous = True
    return again


def _inner_results(session: Session, chunk: list[_Item], responses: list[Any], lease: Lease,
                   secrets: Secrets) -> list[_Item]:
    """Match the inner answers to the items by id; judge each; return the items to send again."""
    by_id: dict[str, dict[str, Any]] = {}
    for answer in responses:
        if isinstance(answer, dict) and "id" in answer:
            by_id[str(answer["id"]).lower()] = answer
    again: list[_Item] = []
    for item in chunk:
        answer = by_id.get(item.id.lower())
        if answer is None:
            item.result = GraphResult(0, {}, None, item.attempts, error_code="MissingBatchResponse",
                                      error_message="The $batch answer held no response for this request.")
            again += _ambiguous([item])
            continue
        try:
            status = int(answer.get("status", 0))
        except (TypeError, ValueError):
            status = 0
        headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
        lease.observe(status, headers)
        if session.observer is not None:
            session.observe(Exchange("item", item.call.method.upper(), session.relative(item.call.url), status,
                                     request_id=request_id_of(headers), headers=shown_headers(headers), what=item.id))
        verdict = session.judge(result_of(status, headers, inner_body(answer.get("body"), headers), item.attempts,
                                          secrets=secrets), item.call.is_idempotent)
        item.result = verdict.result
        if verdict.retry:
            item.retry_after = verdict.retry_after
            again.append(item)
    return again


def _inner_request(session: Session, item: _Item) -> dict[str, Any]:
    """One item of the $batch payload (its headers, its URL relative to the version root)."""
    call = item.call
    headers = dict(call.headers)
    if call.body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    if session.low_priority:
        headers["x-ms-throttle-priority"] = "Low"
    if item.attempts > 1:
        headers["Retry-Attempt"] = str(item.attempts - 1)
    request: dict[str, Any] = {"id": item.id, "method": call.method.upper(), "url": session.relative(call.url)}
    if headers:
        request["headers"] = headers
    if call.body is not None:
        request["body"] = call.body
    return request


__all__ = ["MAX_BATCH", "send_batched"]
