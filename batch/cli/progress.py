"""Progress bars on stderr (tqdm): silent when stderr is not a terminal or with --quiet."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from batch.run.pipeline import Progress


class ProgressBar:
    """A run's rows: done, rows/s, ETA, invalid or failed, throttled."""

    def __init__(self, quiet: bool) -> None:
        self.bar = tqdm(total=None, unit="row", disable=quiet or not sys.stderr.isatty(), file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.05)
        self.done = 0

    def __call__(self, progress: Progress) -> None:
        if progress.rows_total is not None and self.bar.total != progress.rows_total:
            self.bar.total = progress.rows_total
            self.bar.refresh()
        self.bar.update(progress.rows_done - self.done)
        self.done = progress.rows_done
        failed = progress.by_status.get("failed", 0) + progress.by_status.get("invalid", 0)
        postfix = {}
        if failed:
            postfix["invalid_or_failed"] = failed
        if progress.throttled:
            postfix["throttled"] = progress.throttled
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
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
