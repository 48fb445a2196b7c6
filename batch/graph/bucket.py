"""The pacer's client-side token bucket for one of Graph's limits, whose rate and allowance it
learns from Graph's answers (the state machine is set out in `pacing.py`)."""

from __future__ import annotations

import asyncio
import logging
import math

from batch.graph.quotas import PacingSettings, Quota

# The pacer's state changes at DEBUG (benchmarks/pacing.py --trace), with the pacer's clock.
trace = logging.getLogger("batch.graph.pacing")


class AdaptiveBucket:
    """A client-side token bucket that learns the server's bucket behind it: its allowance
    (`capacity`, the window's burst) and its refill rate (`rate`).

    `ramp` buckets (the write quotas) also bound what is in flight while they spend the
    window's allowance, so that a window smaller than believed is found within a round trip."""

    def __init__(self, name: str, quota: Quota, settings: PacingSettings, now: float, *, ramp: bool = False) -> None:
        self.name = name
        self.quota = quota
        self.s = settings
        self.rate = quota.rate * settings.target  # the learned sustained rate (units per second)
        self.bursting = True  # spending the window's allowance (BURST) until Graph shows its edge
        self.level = quota.amount  # what may still be spent now
        self.updated = now
        self.ramp = ramp
        self.in_flight = 0.0  # taken and not answered yet
        self.largest = 0.0  # the largest request taken (one $batch): saved up at least that much
        self.calm_answers = 0  # answered without any signal during the burst (the ramp grows with them)
        self.last_answer = now
        self.last_take = now
        self.capacity: float | None = None  # the server's allowance, once a limit percentage told it
        self.burst_admitted = 0.0  # admitted during the burst (with the first percentage: the capacity)
        self.burst_started: float | None = None  # when the burst's first write came back admitted
        self.burst_fit: tuple[float, float, float] | None = None  # admitted, seconds, p: the allowance, given a rate
        self.tail_left = 0.0  # answers still due for requests granted during the burst
        self.tail_until = -math.inf
        self.estimate: float | None = None  # the server's refill rate, learned
        self.proven = 0.0  # a lower bound on it, from calm answers after a reading
        self.reading: float | None = None  # the last limit percentage read, and when
        self.peak = 0.0  # the highest percentage read lately, and when (`_freshest`)
        self.peak_at = now
        self.read_at = now
        self.admitted = 0.0  # admitted since that reading
        self.last_signal = -math.inf  # the last percentage or 429
        self.last_cut = -math.inf
        self.last_probe = now
        self.recent = 0.0  # exponentially weighted recent use (utilisation)
        self.cuts = 0
        self.wakers: list[asyncio.Future[None]] = []  # requests held by the ramp, woken by the next answer

    # ---- the client's own bucket -------------------------------------------------------------

    @property
    def smoothing_cap(self) -> float:
        return max(1.0, self.rate * self.s.smoothing_seconds, self.largest)

    @property
    def cap(self) -> float:
        """The most that may be saved up: the window's allowance while bursting, then about a second."""
        return self.quota.amount if self.bursting else self.smoothing_cap

    @property
    def server_capacity(self) -> float:
        return self.capacity if self.capacity is not None else self.quota.amount

    def refill(self, now: float) -> None:
        dt = now - self.updated
        if dt <= 0:
            return
        self.level = min(max(self.cap, self.level), self.level + self.rate * dt)  # a burst's rest is kept
        self.recent *= math.exp(-dt / self.s.utilisation_window)
        if self.in_flight > 0 and now - max(self.last_answer, self.last_take) > self.s.stale_seconds:
            self.in_flight = 0.0  # answers that never came (a dropped connection): stop waiting for them
        self.updated = now

    def wait(self, amount: float) -> float:
        """Seconds until `amount` may be taken (a request bigger than the bucket waits for a
        full bucket and leaves it in debt, which keeps the average rate)."""
        if amount <= 0:
            return 0.0
        wait = max(0.0, min(amount, self.cap) - self.level) / self.rate
        if self.ramp_holds(amount):
            wait = max(wait, self.s.ramp_poll)  # the ramp: wait for answers (`answered` wakes the waiter)
        return wait

    def ramp_holds(self, amount: float) -> bool:
        """Does the burst's ramp hold a request of `amount` until more answers come back?"""
        return self.bursting and self.ramp and self.in_flight > 0 and self.in_flight + amount > self.window

    @property
    def window(self) -> float:
        """While bursting: how much may be in flight (grows with the calm answers A).

        ramp_start + ramp_growth × A, in three stages for $batches of ramp_start (20): one
        in flight until three came back calm (A = 60), then two (a little sooner than the
        growth alone, at 67), and no more than two until ten came back calm (A = 200: 80, four).
        Graph warns only in the last 20% of its window, one $batch of a window of 100, and
        an answer comes a round trip after Graph counted it: what is in flight when the burst
        meets the edge, beyond that 20% and a round trip's refill, is refused. A window of 100
        at 300 ms meets it at A = 120-200, after 2-4 s (its refill counts among the calm
        answers), where the growth alone had three
        $batches in flight: 18-27 429s in the served benchmark's pool, a median of 11.5 (up
        to 42) in virtual time with the emulator's latency; with two, 0-4 and 2 (up to 14)
        (benchmarks/pacing.py, tests/graph/test_pacing.py). A job on Graph's documented
        window loses nothing: the second $batch goes a round trip sooner, the fourth at the
        same A (a fresh 300-row job: 15 $batches in about eight round trips either way)."""
        answered, batch = self.calm_answers, self.s.ramp_start
        grown = batch + self.s.ramp_growth * answered
        if answered >= self.s.ramp_plateau * batch:
            return max(grown, 2 * batch)
        if answered >= self.s.ramp_second * batch:
            return 2 * batch
        return min(grown, 2 * batch)

    def take(self, amount: float) -> None:
        if amount <= 0:
            return
        self.level -= amount
        self.last_take = self.updated
        self.largest = max(self.largest, amount)
        self.recent += amount
        self.in_flight += amount
        if self.bursting and self.level <= self.smoothing_cap and self.capacity is None:
            self._end_burst(self.updated)  # the believed allowance is spent, and Graph never objected

    def utilisation(self) -> float:
        """Recent use as a share of the learned rate (which bucket a signal is about)."""
        return self.recent / (self.s.utilisation_window * self.rate)

    def _end_burst(self, now: float, *, edge: bool = False) -> None:
        self.bursting = False
        rate = self.rate
        if edge and self.server_capacity < self.s.after_burst * self.quota.amount:
            # Graph's window is smaller than believed, and so, probably, is its rate: until the
            # first measurement (one interval), pace at a share of the belief (for writes, at
            # most that share of one app's documented rate, even for a tenant's budget).
            self.rate *= self.s.after_burst
            if self.ramp:
                self.rate = min(self.rate, self.s.after_burst * self.s.target * self.s.app_write_rate)
        self.tail_left = self.in_flight
        self.tail_until = now + self.s.tail_seconds
        self._trace(now, "SUSTAIN: the burst ends (%s) after %.0f admitted in %.2f s, %.0f in flight (ramp %.0f), "
                    "allowance %.0f, rate %.2f -> %.2f", "Graph's edge" if edge else "the believed allowance spent",
                    self.burst_admitted, now - (self.burst_started if self.burst_started is not None else now),
                    self.in_flight, self.window, self.server_capacity, rate, self.rate)

    def _trace(self, now: float, message: str, *args: object) -> None:
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("%.3f %s " + message, now, self.name, *args)

    def in_tail(self, now: float) -> bool:
        """Is the answer now one of those granted during the burst? (Counts it.)"""
        tail = self.tail_left > 0 and now < self.tail_until
        self.tail_left = max(0.0, self.tail_left - 1)
        return tail

    # ---- learning ----------------------------------------------------------------------------

    def answered(self, now: float, admitted: float, *, calm: bool) -> None:
        """One answer to a request that spent this bucket (`admitted` units were spent at
        Graph: 0 for a 429)."""
        self.last_answer = now
        self.in_flight = max(0.0, self.in_flight - max(1.0, admitted))
        wakers, self.wakers = self.wakers, []
        for waker in wakers:  # a request held by the ramp looks again now, not at its next poll
            if not waker.done():
                waker.set_result(None)
        self.admitted += admitted
        if self.bursting:
            self.burst_admitted += admitted
            if self.burst_started is None and admitted > 0:
                self.burst_started = now
            if calm:
                self.calm_answers += 1

    def warned(self, now: float, percentage: float) -> bool:
        """Graph says this bucket is `percentage` used (above 0.8). Returns whether the rate
        was lowered."""
        self.last_signal = now
        percentage = self._freshest(now, percentage)
        if self.bursting:
            if self.capacity is None:  # a fresh window: what we spent is that share of it
                self.capacity = self._burst_capacity(now, percentage)
        # What Graph still holds, less what is on its way to it (that cannot take it below empty).
        remaining = max(0.0, (1.0 - percentage) * self.server_capacity - self.in_flight)
        if self.bursting:
            self._end_burst(now, edge=True)  # what remains of the allowance stays in `level`, spent at once
        elif self.reading is None and self.rate > self.proven:
            # The first percentage after probing without a signal: Graph's bucket drained, so
            # its rate is below our pace, by how much is measured within an interval. Meanwhile
            # back to the proven rate, by at most `deepest_cut` (probing from a full bucket of
            # 100/4 reached 46/s before Graph said anything, and the next $batch drew 429s).
            rate, self.rate = self.rate, max(self.proven, self.rate * self.s.deepest_cut)
            self._trace(now, "the first percentage after probing: rate %.2f -> %.2f", rate, self.rate)
        self.level = min(self.level, remaining)  # never spend what Graph no longer holds
        self._spend_held(remaining)
        lowered = False
        if self.reading is not None and not self.bursting:
            dt = now - self.read_at
            if dt < self.s.estimate_seconds:
                return False
            change = self.server_capacity * (percentage - self.reading)
            slack = self.server_capacity * 0.01  # both percentages were rounded to 0.01
            if dt < self._interval():  # too soon for a measurement, but maybe not for a bound
                high, low = (self.admitted - change + slack) / dt, (self.admitted - change - slack) / dt
                # Graph's rate is surely below our pace; but not from the answers of a burst's
                # tail: requests sent during the burst, a round trip ago, most refused.
                if high < self.rate / self.s.sustain_share and now >= self.tail_until:
                    return self._learn(now, high, limit=True)
                if low > self.rate:  # ... surely above it
                    self.rate = min(self.ceiling, low)
                return False
            observed = (self.admitted - change) / dt
            if observed < self.rate and observed * dt >= self.reading * self.server_capacity:
                # Graph refilled at least all that was used at the first reading: its bucket may
                # have been full in between, the refill beyond it lost, and the measurement is
                # then only a lower bound (not a reason to slow down).
                self._read(now, percentage)
                return False
            lowered = self._learn(now, observed)
        self._read(now, percentage)
        return lowered

    def _freshest(self, now: float, percentage: float) -> float:
        """The percentage to go by: `percentage`, unless an answer read earlier said more,
        less what Graph can have refilled since (at the documented or the measured rate,
        whichever is higher). The answers of several $batches in flight arrive out of the
        order Graph counted them in; a late one says the bucket holds writes that an answer
        already counted spent (then no longer in flight). Taken at its word, it made the pacer
        spend 20-35 writes of 3000/150 a second time, several times after the burst (1.10%
        429s in a 6,000-row run), and its Δp, too small for what was admitted, "proved"
        Graph's rate above 40/s."""
        refill = max(self.rate, self.estimate or 0.0, self.quota.rate) / self.server_capacity
        decayed = self.peak - refill * max(0.0, now - self.peak_at)
        if percentage >= decayed:
            self.peak, self.peak_at = percentage, now
            return percentage
        return decayed

    def _burst_capacity(self, now: float, percentage: float) -> float:
        """Graph's allowance from the burst that reached `percentage` of it: what was admitted,
        less what Graph refilled meanwhile (at the believed rate; for writes, at most one app's
        documented rate, even for a tenant's budget), is that share of it. A burst bound by the
        server's CPU (12 s for 2,660 writes at 3000/150) otherwise read 3,284, and that 9% error
        in C went into every rate measured from C·Δp."""
        rate = min(self.rate, self.s.target * self.s.app_write_rate) if self.ramp else self.rate
        self.burst_fit = (self.burst_admitted, max(0.0, now - (self.burst_started or now)), percentage)
        return self._fit_capacity(rate)

    def _fit_capacity(self, rate: float) -> float:
        """The burst's allowance with Graph's refill at `rate` (once measured, the estimate:
        at 30/3 the belief of 19.4/s read C as 22)."""
        admitted, duration, percentage = self.burst_fit or (0.0, 0.0, 1.0)
        used = max(admitted - rate * duration, 0.5 * admitted)
        return max(1.0, used / max(percentage, 1e-3))

    def _spend_held(self, remaining: float) -> None:
        """SUSTAIN: what Graph still holds, beyond a couple of $batches and a share of its
        allowance, is spent rather than left idle (a burst that met no edge leaves Graph the
        refill of its own duration: 10% of a 3000/150 window after a 15 s burst). Less the
        percentage's rounding (0.005 of the allowance)."""
        if self.bursting:
            return
        spendable = remaining - 0.005 * self.server_capacity
        if spendable > max(self.s.spend_batches * max(self.largest, 1.0), self.s.spend_share * self.server_capacity) \
                and spendable > self.level:
            self._trace(self.updated, "spends what Graph still holds: %.0f (was %.0f)", spendable, self.level)
            self.level = spendable

    def throttled(self, now: float) -> bool:
        """A 429 on this bucket's limit (not the tail of a burst): Graph's bucket is empty, so
        the pace was above its rate. Resume at the learned rate, not at a fraction of the old
        one. Returns whether the rate was lowered (a $batch brings many 429s: counted once)."""
        self.last_signal = now
        self.level = min(self.level, 0.0)
        self.peak, self.peak_at = 1.0, now  # Graph's bucket is empty: later answers that say otherwise are late
        if self.bursting:  # the burst's end: the allowance is spent; that says nothing of the rate
            if self.capacity is None:
                self.capacity = self._burst_capacity(now, 1.0)
            self._end_burst(now, edge=True)
            self._read(now, 1.0)
            return False
        if now - self.last_cut < self.s.adjust_interval:
            return False
        self.last_cut = now
        before = self.rate
        if self.reading is not None and now - self.read_at >= self._interval():
            self._learn(now, (self.admitted - self.server_capacity * (1.0 - self.reading)) / (now - self.read_at),
                        limit=True)
        elif self.estimate is not None:
            self.rate = min(self.rate, self.estimate * self.s.sustain_share)
        elif self.reading is None or now - self.read_at >= self._interval():
            self._learn(now, self.rate * self.s.throttle_cut)  # nothing to learn from: a plain cut
        if self.reading is None or now - self.read_at >= self._interval():
            self._read(now, 1.0)
        return self.rate < before

    def calm(self, now: float) -> None:
        """An answer without any signal: Graph's bucket holds more than 20% of its allowance.
        A bound on its rate when we last read it near empty; otherwise probe upward (the
        documented quota is a belief, not a ceiling)."""
        if self.bursting:
            return
        if self.reading is not None:
            dt = now - self.read_at
            if dt >= self.s.estimate_seconds:  # p was rounded to 0.01: take it 0.01 lower
                bound = (self.admitted + self.server_capacity * (self.reading - 0.01 - self.s.high_water)) / dt
                self.proven = max(self.proven, min(bound, self.ceiling))
                if bound > self.rate:  # Graph refilled faster than we spent: its rate is at least that
                    self.rate = min(bound, self.ceiling)
                if bound > self.rate or dt > 2 * max(self._interval(), self.s.quiet_seconds):
                    self.reading = None  # its level is unknown again: probe from here
                    self.last_probe = now
            return
        if now - self.last_signal > self.s.quiet_seconds:
            dt = now - max(self.last_probe, self.last_signal + self.s.quiet_seconds)
            if dt > 0:  # quickly up to the measured rate, slowly beyond it
                fast = self.estimate is None or self.rate < self.estimate * self.s.sustain_share
                speed = self.s.probe_fast if fast else self.s.probe_per_second
                self.rate = min(self.ceiling, self.rate * math.exp(speed * dt))
        self.last_probe = max(self.last_probe, now)

    @property
    def ceiling(self) -> float:
        return self.quota.rate * self.s.explore

    def _interval(self) -> float:
        """How long between two readings before their difference says something: a percentage
        is rounded to 0.01, so a large allowance needs a long interval."""
        return max(self.s.estimate_seconds, 0.01 * self.server_capacity / (self.s.resolution * max(self.rate, 1e-9)))

    def _read(self, now: float, percentage: float) -> None:
        self.reading = percentage
        self.read_at = now
        self.admitted = 0.0
        self.last_probe = now

    def _learn(self, now: float, observed: float, *, limit: bool = False) -> bool:
        """A measurement of Graph's rate (`limit`: an upper bound, from a 429 or a fast drain):
        smooth it into the estimate and pace a little below."""
        # One measurement lowers the rate at most to `deepest_cut` of it: a single noisy pair of
        # percentages (rounded to 0.01, p unchanged over a short interval) measured nearly 0/s and
        # stalled a run for 52 s (an earlier trace); a rate really that low is reached by a few cuts.
        observed = max(observed, self.quota.rate * self.s.floor, self.rate * self.s.deepest_cut)
        if self.estimate is None or (limit and observed < self.estimate):
            self.estimate = observed
        else:
            self.estimate += self.s.smoothing * (observed - self.estimate)
        new = min(self.ceiling, self.estimate * self.s.sustain_share)
        lowered = new < self.rate
        if lowered:
            self.cuts += 1
        self._trace(now, "measured %.2f/s%s: estimate %.2f, rate %.2f -> %.2f", observed,
                    " (a bound)" if limit else "", self.estimate, self.rate, new)
        self.rate = new
        self.level = min(self.level, self.cap)
        if self.burst_fit is not None and not limit:  # the burst's allowance, with the refill now measured
            self.capacity = self._fit_capacity(self.estimate)
        return lowered


__all__ = ["AdaptiveBucket"]
