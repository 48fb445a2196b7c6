"""What is retried, how long to wait, and when to give up (GRAPH.md §3.3, §11, §14).

Unlike the Graph SDKs (3 tries, a Retry-After of 180 s or more dropped), a request here is
retried until a *deadline*, never a fixed count: a throttled row waits its turn, however long
Graph asks. The wait is Graph's `Retry-After` when there is one (integer seconds, decimal
seconds as $batch sends them, or an HTTP date), otherwise a jittered exponential backoff.

The policy is built from tenacity's small callables (`wait`, `stop`, `retry`), with `sleep`
and the clock injected so that tests run instantly and can record every wait.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tenacity
from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
"""Statuses worth another try: throttling, and the server failures Graph documents as transient."""

AMBIGUOUS_STATUS = frozenset({500, 502, 504})
"""Answers after which a *non-idempotent* request may or may not have been applied: the caller
reconciles (looks the object up) instead of resending (GRAPH.md §14, item 4)."""

_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value, or None when there is none or it is garbage.

    Accepts integer seconds ("10"), decimal seconds ("2.128", "0.249": Graph's $batch sends
    them), an HTTP date (relative to `now`, a Unix time; a date in the past gives 0), and a
    header repeated and joined by a comma ("3, 3": the largest wins)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    if when is not None and when.tzinfo is not None:
        return max(0.0, when.timestamp() - now)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and all(_NUMBER.fullmatch(p) for p in parts):
        return max(float(p) for p in parts)
    return None


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from an answer's headers (lower-case names). An HTTP-date Retry-After is
    counted from the answer's own `Date` when it has one, so that a skewed local clock neither
    shortens nor stretches the wait (RFC 9110 §10.2.3 gives the date in the server's time);
    otherwise from the local clock."""
    now = time.time()
    stamp = headers.get("date")
    if stamp:
        try:
            sent = email.utils.parsedate_to_datetime(stamp)
        except (TypeError, ValueError, IndexError, OverflowError):
            sent = None
        if sent is not None and sent.tzinfo is not None:
            now = sent.timestamp()
    return parse_retry_after(headers.get("retry-after"), now)


@dataclass(frozen=True)
class RetryPolicy:
    """How long a request may keep trying, and how it backs off when Graph gives no
    `Retry-After`. `deadline_seconds` counts from the first attempt and bounds failures
    (5xx, lost connections); a request that Graph only throttles waits its turn up to
    `throttled_deadline_seconds` (PRODUCT.md: "a throttled row waits its turn")."""

    deadline_seconds: float = 900.0
    throttled_deadline_seconds: float = 86_400.0
    base_delay: float = 0.5
    max_delay: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.deadline_seconds < 0 or self.base_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("retry policy values must be non-negative (jitter between 0 and 1)")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after the `attempt`-th failure (1-based) when Graph gave no Retry-After:
        base·2^(attempt-1), capped at max_delay, spread by ±jitter so workers do not retry
        in lockstep."""
        exponent = min(max(attempt, 1) - 1, 62)
        delay = min(self.max_delay, self.base_delay * (2.0 ** exponent))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, delay * (1.0 + spread))

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Graph's Retry-After when it gave one (honoured however long), else the backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return self.backoff(attempt, rng)

    def retrying(
        self,
        *,
        should_retry: Callable[[Any], bool],
        retry_after: Callable[[Any], float | None],
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        before_sleep: Callable[[RetryCallState], None] | None = None,
        rng: random.Random | None = None,
        start: float | None = None,
        throttled: Callable[[Any], bool] | None = None,
    ) -> tenacity.AsyncRetrying:
        """A tenacity controller that calls an attempt function until `should_retry(result)` is
        false or the deadline would pass before the next attempt, and then returns the *last
        result* (never raises RetryError). Exceptions raised by the attempt propagate."""
        began = clock() if start is None else start
        deadline = began + self.deadline_seconds
        return tenacity.AsyncRetrying(
            sleep=sleep,
            stop=stop_at_deadline(deadline, clock, throttled=throttled,
                                  throttled_deadline=began + max(self.deadline_seconds, self.throttled_deadline_seconds)),
            wait=wait_retry_after(self, retry_after, rng),
            retry=tenacity.retry_if_result(should_retry),
            before_sleep=before_sleep,
            retry_error_callback=_last_result,
        )


DEFAULT_RETRY = RetryPolicy()


class stop_at_deadline(stop_base):  # noqa: N801 - tenacity's naming
    """Stop when the next attempt would start after `deadline` (on the injected clock)."""

    def __init__(self, deadline: float, clock: Callable[[], float], *,
                 throttled: Callable[[Any], bool] | None = None, throttled_deadline: float | None = None) -> None:
        self.deadline = deadline
        self.clock = clock
        self.throttled = throttled
        self.throttled_deadline = deadline if throttled_deadline is None else throttled_deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        deadline = self.deadline
        outcome = retry_state.outcome
        if self.throttled is not None and outcome is not None and not outcome.failed \
                and self.throttled(outcome.result()):
            deadline = self.throttled_deadline
        return self.clock() + (retry_state.upcoming_sleep or 0.0) > deadline


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming
    """Wait what the last answer's Retry-After says, else the policy's backoff."""

    def __init__(self, policy: RetryPolicy, retry_after: Callable[[Any], float | None],
                 rng: random.Random | None = None) -> None:
        self.policy = policy
        self.retry_after = retry_after
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        value = None
        if outcome is not None and not outcome.failed:
            value = self.retry_after(outcome.result())
        return self.policy.delay(retry_state.attempt_number, value, self.rng)


def _last_result(retry_state: RetryCallState) -> Any:
    assert retry_state.outcome is not None
    return retry_state.outcome.result()


__all__ = [
    "AMBIGUOUS_STATUS", "DEFAULT_RETRY", "RETRYABLE_STATUS", "RetryPolicy", "parse_retry_after", "retry_after_of",
    "stop_at_deadline",
    "wait_retry_after",
]
