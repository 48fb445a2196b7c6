"""Which Graph a command talks to: a tenant, a Graph URL, or the built-in emulator in process
(announced on stderr). Only here does the CLI reach for the emulator."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from batch.cli.local import LocalEmulator
from batch.cli.output import say
from batch.config import Target, emulator_db_path, resolve_target


@dataclass(frozen=True)
class Reach:
    """A target, and the transport that reaches it when that is not the network."""

    target: Target
    transport: httpx.AsyncBaseTransport | None = None


@contextmanager
def reach(target: Target, *, emulator_settings: Any = None) -> Iterator[Reach]:
    """`target` as the library needs it; for `local`, the emulator opened for the command's
    duration, its tenant's names and app filled in."""
    if target.kind != "local":
        yield Reach(target)
        return
    say(f"no tenant configured: using the built-in Graph emulator ({emulator_db_path()})")
    with LocalEmulator(emulator_settings) as local:
        yield Reach(local.target(target), local.transport)


def target_of(args: argparse.Namespace, *, target: str | None = None, profile: str | None = None,
              domain: str | None = None, extensions_app_id: str | None = None) -> Target:
    """The target named by the command line, falling back to the given values (a resumed
    run's own), then to the environment and profiles (`batch.config`)."""
    return resolve_target(getattr(args, "target", None) or target, getattr(args, "profile", None) or profile,
                          domain=getattr(args, "domain", None) or domain,
                          extensions_app_id=getattr(args, "extensions_app_id", None) or extensions_app_id)
