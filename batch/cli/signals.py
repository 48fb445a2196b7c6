"""Running a coroutine so that SIGTERM stops it as Ctrl-C does.

`asyncio.run` turns Ctrl-C into cancelling the main task, so every `finally` and `async with`
of a run unwinds at an `await` — between two journal writes, never inside one — and then
raises KeyboardInterrupt (exit 130, resumable). `run` gives SIGTERM the same path through the
event loop's own signal handling. It does not go by way of SIGINT: a background job of a
script (`entra-batch create big.csv &`) starts with SIGINT ignored, and must still stop
cleanly when it is sent SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

T = TypeVar("T")
_STOPPED = object()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, stopped by SIGTERM as by Ctrl-C: raises KeyboardInterrupt."""
    result = asyncio.run(_stoppable(main))
    if result is _STOPPED:
        raise KeyboardInterrupt
    return cast(T, result)


async def _stoppable(main: Coroutine[Any, Any, T]) -> T | object:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, stop)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return await main
    try:
        return await main
    except asyncio.CancelledError:
        if stopped:
            return _STOPPED
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["run"]
