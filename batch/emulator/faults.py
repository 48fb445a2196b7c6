"""Seeded bad days: latency per kind of request and injected faults (PRODUCT.md, emulator).

The same seed gives the same sequence of draws, so a failing soak run can be replayed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from .settings import Faults, Latency


@dataclass(frozen=True)
class Fault:
    kind: str  # one of settings.FAULT_KINDS
    retry_after: int | None = None  # for 429/503/504; None means the header is left out
    delay_seconds: float = 0.0  # for "slow"


class FaultInjector:
    def __init__(self, faults: Faults, latency: Latency, clock: Callable[[], float], seed: int | None = None) -> None:
        self.faults = faults
        self.latency = latency
        self.clock = clock
        self._random = random.Random(faults.seed if faults.seed is not None else seed)
        self._storm_until = 0.0

    def service_time(self, kind: str) -> float:
        """Seconds a request of this kind ("read", "write", "token") takes to serve."""
        median = self.latency.medians_ms.get(kind, 0.0)
        if median <= 0:
            return 0.0
        return median / 1000.0 * math.exp(self._random.gauss(0.0, self.latency.sigma))

    def draw(self, *, token_endpoint: bool = False) -> Fault | None:
        now = self.clock()
        if not token_endpoint and now < self._storm_until:
            return Fault("429", retry_after=max(1, math.ceil(self._storm_until - now)))
        rate = self.faults.token_rate if token_endpoint else self.faults.rate
        if rate <= 0 or self._random.random() >= rate:
            return None
        if token_endpoint:
            return Fault("503", retry_after=self._random.choice([None, 1, 2]))
        kind = self._random.choice(self.faults.kinds)
        if kind == "429":
            self._storm_until = now + self.faults.storm_seconds
            return Fault("429", retry_after=max(1, math.ceil(self.faults.storm_seconds)))
        if kind in ("503", "504"):
            # Graph sends Retry-After on some 503s only; clients must cope with both.
            return Fault(kind, retry_after=self._random.choice([None, 1, 2, 3]))
        if kind == "slow":
            return Fault(kind, delay_seconds=self.faults.slow_ms / 1000.0 * (0.5 + self._random.random()))
        return Fault(kind)

