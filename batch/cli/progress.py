"""Progress bars on stderr (tqdm): silent when stderr is not a terminal or with --quiet.

A run's bar shows the rate the run goes at *now* (rows finished over the last
`RATE_WINDOW` seconds) and the time left at that rate, not tqdm's long-run average: once
Graph's write quota sets the pace, an ETA from the first seconds' burst would promise far too
little (issue 12: "17 s left at 74 % when 47 s were left"). It says when the run is pacing at
a quota, or waiting out a Retry-After, from the Graph client's read-out (`Progress.hold`);
while nothing finishes (a long wait), a ticker keeps those words current."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from batch.graph import Hold
from batch.run.pipeline import Progress

RATE_WINDOW = 10.0  # seconds of finished rows that the rate and the ETA are computed from
TICK = 1.0  # seconds between refreshes while no row finishes


class RecentRate:
    """Rows finished per second over the last `window` seconds (the paced rate)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> None:
        self.samples.append((now, done))
        # Keep one sample at or before the window's start, so that the span covers the window.
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()

    def rate(self, now: float) -> float | None:
        """Rows finished from the oldest kept sample until `now`, per second; None until a
        second of samples is there. A stall (nothing finishing) lowers it as time passes."""
        if len(self.samples) < 2 or now - self.samples[0][0] < 1.0:
            return None
        first_time, first_done = self.samples[0]
        return max(0, self.samples[-1][1] - first_done) / (now - first_time)


def eta_seconds(rate: float | None, done: int, total: int | None) -> float | None:
    """Seconds left at `rate` rows per second, or None when it cannot be told."""
    if rate is None or total is None or rate <= 0:
        return None
    return max(0, total - done) / rate


def hold_words(hold: Hold | None, now: float) -> str | None:
    """What holds the run back, in words: `pacing at the write quota`, or
    `waiting 12 s (429 Retry-After)`, or None."""
    if hold is None:
        return None
    left = math.ceil(hold.seconds_left(now))
    if hold.asked_by_graph:
        return f"waiting {left} s ({hold.reason})" if left > 0 else f"resuming after a {hold.reason}"
    if hold.reason == "retry":
        return f"waiting {left} s to retry" if left > 0 else None
    return f"pacing at the {hold.reason}"


def status_text(*, rate: float | None, eta: float | None, hold: str | None, failed: int, throttled: int) -> str:
    """The bar's words after the count: rate, ETA, what holds the run, failures, 429s."""
    parts = []
    if rate is not None:
        parts.append(f"{rate:.1f} rows/s")
    if eta is not None:
        parts.append(f"ETA {tqdm.format_interval(eta)}")
    if hold:
        parts.append(hold)
    if failed:
        parts.append(f"invalid or failed {failed}")
    if throttled:
        parts.append(f"throttled {throttled}")
    return ", ".join(parts)


class ProgressBar:
    """A run's rows: done, the paced rate and the ETA from it, what holds the run, invalid or
    failed rows, 429s."""

    def __init__(self, quiet: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.bar = tqdm(total=None, unit="row", disable=quiet or not sys.stderr.isatty(), file=sys.stderr,
                        dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self.clock = clock
        self.done = 0
        self.recent = RecentRate()
        self.last: Progress | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            if progress.rows_total is not None and self.bar.total != progress.rows_total:
                self.bar.total = progress.rows_total
            self.recent.add(self.clock(), progress.rows_done)
            self.bar.update(progress.rows_done - self.done)
            self.done = progress.rows_done
            self.last = progress
            self._show()
        if self._ticker is None and not self.bar.disable:
            self._ticker = threading.Thread(target=self._tick, name="entra-batch progress", daemon=True)
            self._ticker.start()

    def text(self, progress: Progress) -> str:
        now = self.clock()
        rate = self.recent.rate(now)
        failed = progress.by_status.get("failed", 0) + progress.by_status.get("invalid", 0)
        hold = hold_words(progress.hold(), time.monotonic()) if progress.hold is not None else None
        return status_text(rate=rate, eta=eta_seconds(rate, progress.rows_done, progress.rows_total), hold=hold,
                           failed=failed, throttled=progress.throttled)

    def _show(self) -> None:
        if self.last is not None and not self.bar.disable:
            self.bar.set_postfix_str(self.text(self.last), refresh=True)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                self._show()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2 * TICK)
        self.bar.close()


class ExportProgressBar:
    """An export's customers and pages, with the ETA once `$count` told the total."""

    def __init__(self, quiet: bool) -> None:
        self.bar = tqdm(total=None, unit=" customers", disable=quiet or not sys.stderr.isatty(), file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.1)
        self.customers = 0

    def __call__(self, progress: Any) -> None:
        if progress.total is not None and self.bar.total != progress.total:
            self.bar.total = progress.total
            self.bar.refresh()
        self.bar.update(progress.customers - self.customers)
        self.customers = progress.customers
        self.bar.set_postfix({"pages": progress.pages}, refresh=False)

    def close(self) -> None:
        self.bar.close()
