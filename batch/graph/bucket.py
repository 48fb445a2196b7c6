"""The pacer's client-side token bucket, whose rate adapts to what Graph says: it spends the
documented burst at a bounded peak pace, slows down on Graph's limit percentage, cuts hard on
a 429, and creeps back up while answers are calm (the rules are set out in `pacing.py`)."""

from __future__ import annotations

import math

from batch.graph.quotas import PacingSettings, Quota


class AdaptiveBucket:
    """A client-side token bucket whose rate adapts to what Graph says."""

    def __init__(self, name: str, quota: Quota, settings: PacingSettings, now: float) -> None:
        self.name = name
        self.quota = quota
        self.s = settings
        self.factor = 1.0  # adaptive share of `target × quota.rate`
        self.bursting = True  # spending the documented burst until Graph shows the edge
        self.level = quota.amount
        self.peak_cap = max(1.0, quota.rate * settings.smoothing_seconds)
        self.peak_level = self.peak_cap
        self.updated = now
        self.last_cut = -math.inf
        self.last_warn_cut = -math.inf
        self.last_warn_percentage = 0.0
        self.cut_base = 1.0
        self.safe = settings.explore  # below this share, creep quickly; lowered by 429s
        self.last_signal = now
        self.last_creep = now
        self.recent = 0.0  # exponentially weighted recent use (utilisation)
        self.cuts = 0

    @property
    def rate(self) -> float:
        return self.quota.rate * self.s.target * self.factor

    @property
    def smoothing_cap(self) -> float:
        return max(1.0, self.rate * self.s.smoothing_seconds)

    @property
    def cap(self) -> float:
        """The most that may be saved up: the documented burst at first, then about a second."""
        return self.quota.amount if self.bursting else self.smoothing_cap

    def refill(self, now: float) -> None:
        dt = now - self.updated
        if dt <= 0:
            return
        self.level = min(self.cap, self.level + self.rate * dt)
        if self.bursting:
            self.peak_level = min(self.peak_cap, self.peak_level + self.rate * self.s.peak * dt)
        self.recent *= math.exp(-dt / self.s.utilisation_window)
        self.updated = now

    def wait(self, amount: float) -> float:
        """Seconds until `amount` may be taken (a request bigger than the bucket waits for a
        full bucket and leaves it in debt, which keeps the average rate)."""
        if amount <= 0:
            return 0.0
        waits = [max(0.0, min(amount, self.cap) - self.level) / self.rate]
        if self.bursting:
            waits.append(max(0.0, min(amount, self.peak_cap) - self.peak_level) / (self.rate * self.s.peak))
        return max(waits)

    def take(self, amount: float) -> None:
        if amount <= 0:
            return
        self.level -= amount
        self.recent += amount
        if self.bursting:
            self.peak_level -= amount
            if self.level <= self.smoothing_cap:  # the documented burst is spent
                self._end_burst()

    def utilisation(self) -> float:
        return self.recent / (self.s.utilisation_window * self.quota.rate)

    def _end_burst(self, edge: bool = False) -> None:
        self.bursting = False
        if edge:
            # Graph showed the edge of its bucket during the burst: its real rate may be far
            # below the documented one. Restart from a share of it and climb back quickly.
            self.factor = min(self.factor, self.s.after_burst)
        self.level = min(self.level, self.cap)

    def warned(self, now: float, percentage: float) -> None:
        """Graph says a bucket is more than 80% used: stop spending saved-up tokens, stop
        creeping up, and slow down a little (the closer to 1.0, the more)."""
        self.last_signal = now
        if self.bursting:
            self._end_burst(edge=True)
        self.level = min(self.level, 0.0)
        if now - self.last_warn_cut >= self.s.warn_interval:
            # Only while the server's bucket is not refilling: a falling percentage means
            # we are already below its rate, and cutting again would undershoot.
            if percentage >= self.last_warn_percentage - 0.02:
                self.cuts += 1
                self._lower(self.factor * max(0.5, 1.0 - self.s.warn_cut * (percentage - self.s.high_water)))
            self.last_warn_cut = now
            self.last_warn_percentage = percentage

    def throttled(self, now: float) -> None:
        """A 429: cut hard, and remember below which rate it is safe to climb back quickly."""
        self.last_signal = now
        if now - self.last_cut >= self.s.adjust_interval:  # a batch brings many 429s: count them once
            self.last_cut = now
            self.cut_base = self.factor
            self.cuts += 1
        if self.bursting:
            self._end_burst(edge=True)
        self.safe = self.cut_base * self.s.safe_share
        self.level = min(self.level, 0.0)
        self._lower(self.cut_base * self.s.throttle_cut)

    def calm(self, now: float) -> None:
        """An answer without any throttle signal: after a quiet spell, creep back up —
        quickly up to the last safe rate, slowly beyond it (where the last 429 was)."""
        start = max(self.last_creep, self.last_signal + self.s.quiet_seconds)
        if now > start and self.factor < self.s.explore:
            speed = self.s.creep_per_second if self.factor < self.safe else self.s.probe_per_second
            self.factor = min(self.s.explore, self.factor * math.exp(speed * (now - start)))
        self.last_creep = max(self.last_creep, now)

    def _lower(self, factor: float) -> None:
        factor = max(self.s.floor / self.s.target, factor)
        if factor < self.factor:
            self.factor = factor
            self.level = min(self.level, self.cap)


__all__ = ["AdaptiveBucket"]
