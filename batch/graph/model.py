"""The values the Graph client trades in: `GraphCall` (one request), `GraphResult` (what became
of it, after retries) and `ClientStats` (the client's counters for summary.json).

Row-level failures are values (`GraphResult`), never exceptions: verbs read these types and
nothing else of the client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class GraphCall:
    """One Graph request. `url` is relative to the Graph base (`/users?$filter=...`); an
    absolute URL is accepted only on the base's own host (an `@odata.nextLink`)."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool | None = None  # None: GET/PATCH/DELETE/PUT idempotent, POST not

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in IDEMPOTENT_METHODS


@dataclass
class GraphResult:
    """What became of one call, after retries."""

    status: int  # 0 = no answer at all
    headers: dict[str, str]
    body: Any
    attempts: int
    ambiguous: bool = False  # may have been applied without an answer: reconcile, never resend blindly
    error_code: str | None = None  # Graph's error code, or a transport description
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class ClientStats:
    """Counters for summary.json."""

    requests: int = 0  # HTTP requests sent (a $batch counts once)
    calls: int = 0  # Graph calls sent, each inner request of a $batch counted, re-sends included
    throttled: int = 0  # 429 answers seen (inner ones included)
    retries: int = 0  # calls sent again
    ambiguous: int = 0  # calls left ambiguous
    transport_errors: int = 0  # requests that got no answer
    token_refreshes: int = 0  # 401s answered with a fresh token
    retry_wait: float = 0.0  # seconds slept before re-sends (Retry-After or backoff)
    pacing_wait: float = 0.0  # seconds spent waiting for the pacer, all workers together
    held_wait: float = 0.0  # wall-clock seconds during which at least one worker was held (the union)

    @property
    def throttle_share(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"requests": self.requests, "calls": self.calls, "throttled": self.throttled,
                "throttle_share": round(self.throttle_share, 4), "retries": self.retries,
                "ambiguous": self.ambiguous, "transport_errors": self.transport_errors,
                "token_refreshes": self.token_refreshes, "retry_wait_seconds": round(self.retry_wait, 3),
                "pacing_wait_seconds": round(self.pacing_wait, 3), "held_wait_seconds": round(self.held_wait, 3)}


@dataclass(frozen=True)
class Hold:
    """Why sending is held right now, and until when (on the client's clock): `reason` is
    `write quota`, `tenant write quota`, `resource-unit quota` (the pacer keeps the pace),
    `retry` (a worker's backoff before a re-send) or
    `429 Retry-After` / `503 Retry-After` (Graph asked to wait)."""

    reason: str
    until: float

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.until - now)

    @property
    def asked_by_graph(self) -> bool:
        return "Retry-After" in self.reason


class HeldTime:
    """Wall-clock seconds during which at least one worker was held (waiting for the pacer or
    sleeping before a re-send): the union of the workers' waits, not their sum, so that four
    workers waiting out the same Retry-After count its seconds once."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._holding = 0
        self._since = 0.0

    def begin(self, now: float) -> None:
        if self._holding == 0:
            self._since = now
        self._holding += 1

    def end(self, now: float) -> None:
        self._holding = max(0, self._holding - 1)
        if self._holding == 0:
            self.seconds += max(0.0, now - self._since)


GRAPH_VERSIONS = ("v1.0", "beta")
"""The version segments of Graph's URLs: what precedes a path relative to the version root."""

__all__ = ["GRAPH_VERSIONS", "IDEMPOTENT_METHODS", "ClientStats", "GraphCall", "GraphResult", "HeldTime", "Hold"]
