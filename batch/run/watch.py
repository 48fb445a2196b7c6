"""What a caller may watch of a run besides its progress: every exchange with Graph
(`--verbose`, also appended to `run.log` in the run folder) and the target, named once the
connection and permissions are checked and before anything is sent.

The library prints nothing: the CLI passes callbacks that write to stderr. run.log is
private (0600, never through a link) and holds what `Exchange.line` shows: no credential,
no body."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from batch.graph import Exchange, Observer
from batch.run.connection import Connection, TenantNames
from batch.run.private import open_or_create

RUN_LOG = "run.log"

# Told the tenant, the verb and the number of rows before the first request that writes.
TargetCallback = Callable[[TenantNames, str, int], None]


@dataclass(frozen=True)
class RunWatch:
    """`on_exchange` is told every request (each `$batch` item and token request too), and
    with `log` they are also appended to run.log; `on_target` is told who is about to be
    written to."""

    on_exchange: Observer | None = None
    on_target: TargetCallback | None = None
    log: bool = True

    @contextmanager
    def observing(self, run_dir: Path) -> Iterator[Observer | None]:
        """The observer for the run's connection, run.log open meanwhile (None: nobody watches)."""
        if self.on_exchange is None:
            yield None
            return
        tell = self.on_exchange
        if not self.log:
            yield tell
            return
        fd, _ = open_or_create(run_dir / RUN_LOG, os.O_WRONLY | os.O_APPEND,
                               advice="remove it, then resume the run")
        with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace", buffering=1) as log:
            def both(exchange: Exchange) -> None:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {exchange.line()}\n")
                tell(exchange)
            yield both


async def name_target(connection: Connection | None, verb: str, rows: int, watch: RunWatch | None) -> TenantNames | None:
    """The tenant a run writes to (summary.json's `tenant`), told to `watch.on_target`."""
    if connection is None:
        return None
    names = await connection.names()
    if watch is not None and watch.on_target is not None:
        watch.on_target(names, verb, rows)
    return names


__all__ = ["RUN_LOG", "RunWatch", "TargetCallback", "name_target"]
