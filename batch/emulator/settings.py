"""What an emulator instance is told: quotas, latency, faults and replication lag. Frozen, so one object can be
shared by the app, the throttle and the fault injector without anyone changing it mid-run.

Defaults are Graph's documented numbers (GRAPH.md §9.2); tests and benchmarks set small ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

# Bounds of what an emulator can be told. A latency or delay is a number of milliseconds
# between 0 and an hour (NaN or infinity would make every request wait forever); the
# log-normal's spread stays where exp() cannot overflow.
MAX_DELAY_MS = 3_600_000.0
MAX_SIGMA = 3.0
# An access token lives at least 2 s (its `exp` is whole seconds, so 1 s could be spent before
# it arrives) and at most 1 day, the ceiling of Entra's configurable token lifetimes (GRAPH.md
# §10: 10 minutes to 23:59:59). Short lifetimes are for tests of token refresh.
MIN_TOKEN_LIFETIME = 2
MAX_TOKEN_LIFETIME = 86_400


def check_delay_ms(name: str, value: float) -> float:
    """`value` if it is a usable number of milliseconds, else ValueError naming `name`."""
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= MAX_DELAY_MS:
        raise ValueError(f"{name} must be a number of milliseconds between 0 and {MAX_DELAY_MS:.0f}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Quota:
    """`amount` units per `seconds`, refilled continuously (a token bucket)."""

    amount: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.amount / self.seconds

    @classmethod
    def parse(cls, text: str) -> Quota:
        """`3000/150` → 3,000 per 150 seconds."""
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", text)
        if not match or float(match.group(1)) <= 0 or float(match.group(2)) <= 0:
            raise ValueError(f"expected a quota as N/SECONDS (for example 3000/150), got {text!r}")
        return cls(float(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.amount:g}/{self.seconds:g}s"


@dataclass(frozen=True)
class Quotas:
    """GRAPH.md §9.2, identity and access service limits."""

    enabled: bool = True
    # Resource units per app+tenant by tenant size class (S <50 users, M 50-500, L >500).
    resource_units: dict[str, Quota] = field(
        default_factory=lambda: {"S": Quota(3500, 10), "M": Quota(5000, 10), "L": Quota(8000, 10)}
    )
    app_tenant_writes: Quota = Quota(3000, 150)
    app_resource_units: Quota = Quota(150_000, 20)
    app_writes: Quota = Quota(35_000, 300)
    tenant_writes: Quota = Quota(18_000, 300)
    # Requests sent with `x-ms-throttle-priority: Low` are refused once a bucket falls below
    # this share of its capacity, so that background work yields first (GRAPH.md §9.3).
    low_priority_reserve: float = 0.2

    def with_resource_units(self, quota: Quota) -> Quotas:
        return replace(self, resource_units={k: quota for k in ("S", "M", "L")})


@dataclass(frozen=True)
class Latency:
    """Service time per kind of request: a log-normal around a median, in milliseconds."""

    medians_ms: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "write": 0.0, "token": 0.0})
    sigma: float = 0.35

    def __post_init__(self) -> None:
        for kind, median in self.medians_ms.items():
            check_delay_ms(f"the {kind} latency", median)
        if not isinstance(self.sigma, int | float) or not math.isfinite(self.sigma) or not 0 <= self.sigma <= MAX_SIGMA:
            raise ValueError(f"the latency spread (sigma) must be between 0 and {MAX_SIGMA:g}, got {self.sigma!r}")

    @classmethod
    def uniform(cls, median_ms: float, sigma: float = 0.35) -> Latency:
        return cls({"read": median_ms, "write": median_ms, "token": median_ms}, sigma)


DELTA_EXPIRY_ANSWERS = ("syncStateNotFound", "410", "mixed")
FAULT_KINDS = ("429", "500", "502", "503", "504", "reset", "drop-before", "drop-after", "slow")


@dataclass(frozen=True)
class Faults:
    """Seeded fault injection: each request meets a fault with probability `rate`,
    the kind drawn from `kinds`. A `429` starts a storm: every request is refused for
    `storm_seconds`, its Retry-After in one of Graph's forms (seconds, decimal seconds, an
    HTTP date, or none). `503`/`504` likewise. `500` is Graph's JSON error, answered after
    the write was committed or before it (seeded); `502` is a gateway's HTML page (likewise);
    `reset` sends the headers and part of the body, then resets the connection (a write is
    committed first). `slow` adds `slow_ms`. `drop-after` commits the write, then drops the
    connection without an answer: the case that duplicates naive clients' creates. Items of
    a `$batch` meet 429, 500, 503 and 504 as inner answers; the others hit the whole batch."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    storm_seconds: float = 2.0
    slow_ms: float = 2000.0
    token_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; choose among {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0 or not 0.0 <= self.token_rate <= 1.0:
            raise ValueError("fault rates are probabilities between 0 and 1")
        check_delay_ms("the slow-fault delay", self.slow_ms)
        check_delay_ms("the storm length", self.storm_seconds * 1000.0)


@dataclass(frozen=True)
class EmulatorSettings:
    quotas: Quotas = field(default_factory=Quotas)
    latency: Latency = field(default_factory=Latency)
    faults: Faults = field(default_factory=Faults)
    token_lifetime_seconds: int = 3599
    seed: int | None = None
    # Soft-deleted users are purged this long after deletion (GRAPH.md §6).
    retention_days: int = 30
    # user-update.md, passwordProfile: "In app-only scenarios, the calling app must be assigned a
    # supported permission and at least the User Administrator Microsoft Entra role" (GRAPH.md
    # §4.1, §15.1). Off by default: the same page's Example 3 names the permission alone, and
    # field reports disagree. On: a PATCH of passwordProfile by an app without such a role is 403.
    password_reset_needs_role: bool = False
    # Each committed write of a user becomes visible to reads only after a seeded delay drawn
    # uniformly between 0 and this many milliseconds (GRAPH.md §15.3; `replication.py`). 0 is
    # a directory that reads its own writes at once.
    replication_lag_ms: float = 0.0
    # For tests and the soak only: keep a salted digest of each customer's current password
    # so that a test can ask which password a customer has (`Store.password_is`). Off by
    # default: a directory someone fills from a real legacy export keeps no trace of passwords.
    keep_password_digests: bool = False
    # A page's `$skiptoken` (/users, deleted items, delta next links) is refused with
    # Directory_ExpiredPageToken this long after it was handed out. Graph documents no lifetime
    # (microsoft-graph-docs#20092 asks for one; Microsoft said "no validity period" in
    # msgraph-sdk-javascript#1463), yet the error exists and is met (msgraph-sdk-java#368).
    # An hour never troubles a client that reads its pages as they come, and is reached by one
    # that pauses for long (a throttling storm, a laptop asleep): the case worth rehearsing.
    page_token_ttl_seconds: int = 3600
    # A delta link's `$deltatoken` expires after seven days for directory objects
    # (concepts/delta-query-overview.md, "Token duration").
    delta_token_ttl_seconds: int = 7 * 86_400
    # How an expired delta token is answered: "syncStateNotFound" (a 400 with that code, the
    # "40X-series error" of delta-query-overview), "410" (410 Gone with a Location header that
    # starts a full round, its "Synchronization reset"), or "mixed": one or the other, drawn
    # from `seed` and the token so that the same token always gets the same answer.
    delta_expiry: str = "mixed"
    # Device codes are approved as this administrator (a UPN) as soon as they are asked for, as
    # if the person had signed in at once: for tests and demos (`--approve-device-codes-as`).
    # None: a code waits for `entra-batch emulator approve USER_CODE`.
    approve_device_codes_as: str | None = None
    # The directory file the served emulator uses when it is not the default one: the device
    # code message then tells `entra-batch emulator approve CODE --db PATH`, the command that
    # reaches this directory. None: the default file (or --memory).
    approve_db: str | None = None

    def __post_init__(self) -> None:
        check_delay_ms("the replication lag", self.replication_lag_ms)
        for name in ("page_token_ttl_seconds", "delta_token_ttl_seconds"):
            ttl = getattr(self, name)
            if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
                raise ValueError(f"{name} must be a whole number of seconds, at least 1, got {ttl!r}")
        if self.delta_expiry not in DELTA_EXPIRY_ANSWERS:
            raise ValueError(f"delta_expiry must be one of {', '.join(DELTA_EXPIRY_ANSWERS)}, got {self.delta_expiry!r}")
        lifetime = self.token_lifetime_seconds
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not (
                MIN_TOKEN_LIFETIME <= lifetime <= MAX_TOKEN_LIFETIME):
            raise ValueError(f"the token lifetime must be a whole number of seconds between {MIN_TOKEN_LIFETIME} "
                             f"and {MAX_TOKEN_LIFETIME}, got {lifetime!r}")
