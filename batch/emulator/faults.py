"""Seeded bad days: latency per kind of request and injected faults (PRODUCT.md, emulator).

The same seed gives the same sequence of draws, so a failing soak run can be replayed.

Faults are as dirty as Graph's (GRAPH.md §15.5): a 429 or 503 may carry no `Retry-After`
(throttling-limits: some identity services send none), a fractional one ("0.249", "2.5": seen
in `$batch` answers, microsoft-graph-docs#3877) or an HTTP date (RFC 9110 §10.2.3 allows
both forms); a 500 may come after the write was committed or before it (a 500 does not say);
a 502 is a gateway's HTML page, not Graph's JSON; a reset cuts the answer in the middle of
its body.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .settings import Faults, Latency

T = TypeVar("T")

# The forms a Retry-After takes: integer seconds, decimal seconds, an HTTP date, or none at all.
RETRY_AFTER_FORMS = ("seconds", "decimal", "date", "none")
# Faults an item inside a $batch can meet: Graph answers each item on its own (json-batching),
# so these come back as inner answers with their headers. A gateway's 502, a reset and the
# dropped connections concern the HTTP exchange, so they hit the whole $batch request.
INNER_KINDS = ("429", "500", "503", "504")
# Faults that answer without (or instead of) running the request's route.
ANSWER_KINDS = ("429", "500", "502", "503", "504")


@dataclass(frozen=True)
class Fault:
    kind: str  # one of settings.FAULT_KINDS
    retry_after: str | None = None  # the Retry-After header of a 429/503/504; None leaves it out
    delay_seconds: float = 0.0  # for "slow"
    committed: bool = False  # for "500"/"502"/"504": the write was applied before the failure answered


def format_retry_after(seconds: float, form: str, now: float) -> str | None:
    """`seconds` written as a Retry-After of `form`. An HTTP date has a resolution of one second,
    so it is rounded up: a client that obeys it never comes back early."""
    if form == "none":
        return None
    if form == "decimal":
        text = f"{max(seconds, 0.001):.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if form == "date":
        return email.utils.formatdate(math.ceil(now + seconds), usegmt=True)
    return str(max(1, math.ceil(seconds)))


class FaultInjector:
    def __init__(self, faults: Faults, latency: Latency, clock: Callable[[], float], seed: int | None = None) -> None:
        self.faults = faults
        self.latency = latency
        self.clock = clock
        chosen = faults.seed if faults.seed is not None else seed
        self._random = random.Random(chosen)
        # The order of a $batch's items has its own stream, so that batching does not shift the
        # sequence of faults a seed gives (and the same seed replays both).
        self._order = random.Random(None if chosen is None else f"batch-order-{chosen}")
        self._storm_until = 0.0
        self._storm_form = "seconds"

    def service_time(self, kind: str) -> float:
        """Seconds a request of this kind ("read", "write", "token") takes to serve."""
        median = self.latency.medians_ms.get(kind, 0.0)
        if median <= 0:
            return 0.0
        return median / 1000.0 * math.exp(self._random.gauss(0.0, self.latency.sigma))

    def shuffled(self, items: Sequence[T]) -> list[T]:
        """`items` in a seeded order: how Graph runs a parallel $batch and lists its answers
        ("might appear in a different order than the requests", json-batching)."""
        out = list(items)
        self._order.shuffle(out)
        return out

    def draw(self, *, token_endpoint: bool = False, inner: bool = False) -> Fault | None:
        """The fault this request meets, if any. `inner`: an item of a $batch, which meets only
        the faults of INNER_KINDS (a kind it cannot meet is no fault)."""
        now = self.clock()
        if not token_endpoint and now < self._storm_until:
            return Fault("429", retry_after=format_retry_after(self._storm_until - now, self._storm_form, now))
        rate = self.faults.token_rate if token_endpoint else self.faults.rate
        if rate <= 0 or self._random.random() >= rate:
            return None
        if token_endpoint:
            return Fault("503", retry_after=self._random.choice([None, "1", "2"]))
        kind = self._random.choice(self.faults.kinds)
        if inner and kind not in INNER_KINDS:
            return None
        return self._fault(kind, now)

    def _fault(self, kind: str, now: float) -> Fault:
        if kind == "429":
            # Every 429 of a storm tells the same story: one form, counting down to one end.
            self._storm_until = now + self.faults.storm_seconds
            self._storm_form = self._random.choice(RETRY_AFTER_FORMS)
            return Fault("429", retry_after=format_retry_after(self.faults.storm_seconds, self._storm_form, now))
        if kind in ("503", "504"):
            # Graph sends Retry-After on some 503s only; clients must cope with every form.
            seconds = self._random.choice([0.249, 1.0, 2.5, 3.0])
            retry_after = format_retry_after(seconds, self._random.choice(RETRY_AFTER_FORMS), now)
            # A gateway that timed out waiting does not know whether the directory applied the
            # write: like 500 and 502, a 504 comes after the commit or instead of it.
            return Fault(kind, retry_after=retry_after, committed=kind == "504" and self._random.random() < 0.5)
        if kind in ("500", "502"):
            return Fault(kind, committed=self._random.random() < 0.5)
        if kind == "slow":
            return Fault(kind, delay_seconds=self.faults.slow_ms / 1000.0 * (0.5 + self._random.random()))
        return Fault(kind)
