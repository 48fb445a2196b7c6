"""What Graph allows and what a request costs (GRAPH.md §9.2): `Quota` (an amount per period,
refilled continuously like Graph's token buckets), the documented identity quotas, the
settings of the pacer's adaptation, and `request_cost` (the resource units and writes one
request spends)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from batch.graph.model import GRAPH_VERSIONS


@dataclass(frozen=True)
class Quota:
    """`amount` units per `seconds`, refilled continuously (Graph's token buckets)."""

    amount: float
    seconds: float

    def __post_init__(self) -> None:
        if self.amount <= 0 or self.seconds <= 0:
            raise ValueError(f"a quota needs a positive amount and period, got {self.amount}/{self.seconds}")

    @property
    def rate(self) -> float:
        return self.amount / self.seconds

    @classmethod
    def parse(cls, text: str) -> Quota:
        """`3000/150` → 3,000 per 150 seconds."""
        amount, sep, seconds = text.strip().rstrip("s").partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(float(amount), float(seconds))
        except ValueError:
            raise ValueError(f"expected a quota as N/SECONDS (for example 3000/150), got {text!r}") from None

    def __str__(self) -> str:
        return f"{self.amount:g}/{self.seconds:g}s"


DOCUMENTED_WRITES = Quota(3000, 150)  # per app and tenant (GRAPH.md §9.2)
DOCUMENTED_RESOURCE_UNITS = Quota(8000, 10)  # per app and tenant, large tenant (> 500 users)
DOCUMENTED_TENANT_WRITES = Quota(18_000, 300)  # per tenant, all apps together


@dataclass(frozen=True)
class PacingSettings:
    """How a pacer learns (the state machine is in `pacing.py`). Tuned against the emulator's
    throttle model with hidden quotas from 30/3 to 3000/150 (tests/graph/test_pacing.py,
    benchmarks/pacing.py)."""

    target: float = 0.97  # share of the documented rate believed before anything is learned
    smoothing_seconds: float = 1.0  # after the burst: no more than this much rate saved up
    high_water: float = 0.8  # Graph sends the limit percentage above 0.8
    ramp_start: float = 20.0  # BURST: in flight at first (one $batch) ...
    ramp_growth: float = 0.3  # ... plus this share of all that was answered without a signal ...
    ramp_second: float = 3.0  # ... but two $batches (2 × ramp_start) once this many ramp_starts were answered calm ...
    ramp_plateau: float = 10.0  # ... and no more than two until this many were (Graph's edge: `AdaptiveBucket.window`)
    ramp_poll: float = 0.05  # BURST: a request held by the ramp looks again on the next answer, or after this
    stale_seconds: float = 5.0  # in-flight writes with no answer nor request for this long are forgotten
    tail_seconds: float = 2.0  # 429s this soon after a burst's end, for requests sent during it, teach nothing
    after_burst: float = 0.5  # a window smaller than believed: pace at this share until the rate is measured
    app_write_rate: float = 20.0  # ... of this many writes/s at most (one app's documented write rate)
    estimate_seconds: float = 0.5  # two limit percentages this far apart measure Graph's rate ...
    resolution: float = 0.1  # ... or farther, so that 0.01 of the allowance is at most this share of what we send
    smoothing: float = 0.5  # weight of a new measurement of Graph's rate
    sustain_share: float = 0.98  # SUSTAIN paces at this share of the learned rate
    throttle_cut: float = 0.7  # a 429 with nothing to measure from: rate × throttle_cut
    deepest_cut: float = 0.7  # one measurement lowers the rate to no less than this share of it
    spend_batches: float = 2.0  # SUSTAIN spends what Graph still holds when beyond this many $batches ...
    spend_share: float = 0.0  # ... and this share of its allowance (2% left 60 writes idle at 3000/150: 3 s)
    adjust_interval: float = 0.5  # 429s within this interval count as one (a batch brings many)
    quiet_seconds: float = 1.0  # PROBE: no signal for this long, and the rate grows ...
    probe_per_second: float = 0.005  # ... by ~0.5% per second above the measured rate ...
    probe_fast: float = 0.1  # ... by ~10% per second below it, or while nothing was measured
    floor: float = 0.02  # never below this share of the documented rate
    explore: float = 8.0  # probing may take the rate up to this multiple of the documented one
    default_pause: float = 1.0  # a 429 without Retry-After pauses the pool this long
    utilisation_window: float = 2.0  # seconds over which each bucket's recent use is weighed

    def __post_init__(self) -> None:
        if not 0 < self.target <= 1 or not 0 < self.floor <= self.target or self.explore < 1 \
                or self.ramp_start <= 0 or self.ramp_growth < 0 or not 0 < self.ramp_second <= self.ramp_plateau \
                or not 0 < self.sustain_share <= 1 \
                or not 0 < self.deepest_cut <= 1:
            raise ValueError("pacing needs 0 < floor <= target <= 1, explore >= 1, a positive ramp that does not shrink "
                             "(0 < ramp_second <= ramp_plateau), 0 < sustain_share <= 1 and 0 < deepest_cut <= 1")


# ---- what a request costs (GRAPH.md §9.2) -----------------------------------------------------

DEFAULT_PACING = PacingSettings()

@dataclass(frozen=True)
class Cost:
    writes: int
    resource_units: int


def request_cost(method: str, url: str, *, b2c: bool = False) -> Cost:
    """Graph's documented cost of one identity request: `GET /users` (the collection) 2 RU,
    other GETs 1, writes 1 RU and 1 write; `$select` −1, `$expand` +1, `$top` < 20 −1, never
    below 1; creating a user in a B2C tenant +4."""
    parts = urlsplit(url)
    path = parts.path
    for version in GRAPH_VERSIONS:
        if path.startswith(f"/{version}/"):
            path = path[len(version) + 1:]
    segments = [s for s in path.split("/") if s]
    query = {k.lower().lstrip("$"): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    method = method.upper()
    if method == "GET":
        writes, units = 0, 2 if [s.lower() for s in segments] == ["users"] else 1
    else:
        writes, units = 1, 1
        if b2c and method == "POST" and [s.lower() for s in segments] == ["users"]:
            units += 4
    if "select" in query:
        units -= 1
    if "expand" in query:
        units += 1
    top = query.get("top", "")
    if top.isdigit() and int(top) < 20:
        units -= 1
    return Cost(writes, max(1, units))


__all__ = [
    "DEFAULT_PACING",
    "DOCUMENTED_RESOURCE_UNITS",
    "DOCUMENTED_TENANT_WRITES",
    "DOCUMENTED_WRITES",
    "Cost",
    "PacingSettings",
    "Quota",
    "request_cost",
]
