"""Retry-After parsing and the deadline-bounded retry policy (GRAPH.md §3.3, §11, §14)."""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from batch.graph.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

try:
    from .fakes import FakeClock
except ImportError:  # tests/graph is not a package
    from fakes import FakeClock  # type: ignore[no-redef]

NOW = 1_780_000_000.0


@pytest.mark.parametrize(("value", "seconds"), [
    ("10", 10.0),
    ("0", 0.0),
    (" 3 ", 3.0),
    ("2.128", 2.128),  # the throttling docs' older example
    ("0.249", 0.249),  # seen inside $batch answers
    (".5", 0.5),
    ("180", 180.0),
    ("3, 5", 5.0),  # a repeated header joined by httpx
])
def test_retry_after_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == pytest.approx(seconds)


def test_retry_after_http_date_is_relative_to_now() -> None:
    in_30s = email.utils.formatdate(NOW + 30, usegmt=True)  # e.g. "Thu, 28 May 2026 20:27:10 GMT"
    assert parse_retry_after(in_30s, NOW) == pytest.approx(30.0)
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after(past, NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-1", "1e3", "nan", "inf", "10 seconds", "Thu, 99 Foo"])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False))
def test_retry_after_any_decimal(value: object) -> None:
    assert parse_retry_after(str(value), NOW) == pytest.approx(float(str(value)))


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    parsed = parse_retry_after(value, NOW)
    assert parsed is None or parsed >= 0


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=60.0, jitter=0.25)
    rng = random.Random(1)
    for attempt, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 60.0), (50, 60.0), (10_000, 60.0)]:
        for _ in range(20):
            assert nominal * 0.75 <= policy.backoff(attempt, rng) <= nominal * 1.25
    exact = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.0)
    assert [exact.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_delay_prefers_retry_after_however_long() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.delay(1, 250.0) == 250.0  # the SDKs give up at 180 s; we wait
    assert policy.delay(3, None) == policy.backoff(3)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(deadline_seconds=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=2)


# ---- the tenacity controller, with an injected clock and sleep ----------------------------------

@dataclass
class Answer:
    status: int
    retry_after: float | None = None

    @property
    def retry(self) -> bool:
        return self.status in RETRYABLE_STATUS


class FailThenSucceed:
    """A stateful fake: `failures` answers of `status`, then 200."""

    def __init__(self, failures: int, status: int = 503, retry_after: float | None = None) -> None:
        self.failures, self.status, self.retry_after = failures, status, retry_after
        self.calls = 0

    async def __call__(self) -> Answer:
        self.calls += 1
        if self.calls <= self.failures:
            return Answer(self.status, self.retry_after)
        return Answer(200)


def controller(policy: RetryPolicy, t: FakeClock) -> tenacity.AsyncRetrying:
    return policy.retrying(should_retry=lambda a: a.retry, retry_after=lambda a: a.retry_after,
                           clock=t.clock, sleep=t.sleep, rng=random.Random(0))


async def test_retries_until_success_and_records_waits() -> None:
    t = FakeClock()
    attempt = FailThenSucceed(3, retry_after=None)
    answer: Answer = await controller(RetryPolicy(base_delay=0.5, jitter=0.0), t)(attempt)
    assert answer.status == 200 and attempt.calls == 4
    assert t.sleeps == [0.5, 1.0, 2.0]


async def test_retry_after_is_the_wait() -> None:
    t = FakeClock()
    attempt = FailThenSucceed(2, status=429, retry_after=2.128)
    answer: Answer = await controller(RetryPolicy(), t)(attempt)
    assert answer.status == 200
    assert t.sleeps == [2.128, 2.128]


async def test_bounded_by_deadline_not_by_count() -> None:
    # 429 with Retry-After 200 s, forever: the SDKs stop after 3 tries (or at 180 s); we keep
    # going while the next try still starts before the deadline, then return the last answer.
    t = FakeClock()
    attempt = FailThenSucceed(10_000, status=429, retry_after=200.0)
    answer: Answer = await controller(RetryPolicy(deadline_seconds=900), t)(attempt)
    assert answer.status == 429  # no exception: the caller gets the last answer
    assert attempt.calls == 5  # at t = 0, 200, 400, 600, 800; t = 1000 would be past 900
    assert t.sleeps == [200.0] * 4

    many = FakeClock()
    quick = FailThenSucceed(10_000, status=503, retry_after=0.5)
    await controller(RetryPolicy(deadline_seconds=900), many)(quick)
    assert quick.calls == 1801  # far beyond any fixed count


async def test_exceptions_are_not_retried() -> None:
    t = FakeClock()

    async def boom() -> Answer:
        raise RuntimeError("run-level")

    with pytest.raises(RuntimeError):
        await controller(RetryPolicy(), t)(boom)
    assert t.sleeps == []


@pytest.mark.parametrize("seconds", [0.249, 1.0, 2.5, 3.0, 17.2])
@pytest.mark.parametrize("form", ["seconds", "decimal", "date", "none"])
def test_retry_after_in_every_form_the_emulator_sends(form: str, seconds: float) -> None:
    """The emulator writes Retry-After as Graph does (faults.py); the client reads each form
    back to at least the wait asked (a date rounds up to its whole second)."""
    from batch.emulator.faults import format_retry_after

    value = format_retry_after(seconds, form, NOW + 0.4)
    parsed = parse_retry_after(value, NOW + 0.4)
    if form == "none":
        assert value is None and parsed is None
    elif form == "decimal":
        assert parsed == pytest.approx(seconds, abs=1e-3)
    else:
        assert parsed is not None and seconds <= parsed + 1e-9 <= seconds + 1.0 + 1e-9


def test_a_date_retry_after_counts_from_the_answers_own_date() -> None:
    """A local clock an hour off must not turn "wait 30 s" into no wait or an hour's wait."""
    import time

    from batch.graph.retry import retry_after_of

    server_now = time.time() + 3600  # the local clock is an hour behind
    headers = {"date": email.utils.formatdate(server_now, usegmt=True),
               "retry-after": email.utils.formatdate(server_now + 30, usegmt=True)}
    assert retry_after_of(headers) == pytest.approx(30.0, abs=1.0)
    assert retry_after_of({"retry-after": "2.5", "date": "garbage"}) == 2.5
    assert retry_after_of({"date": headers["date"]}) is None
