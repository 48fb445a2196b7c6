"""Which Graph a command talks to: a tenant, a Graph URL, or the built-in emulator in process
(announced on stderr). Only here does the CLI reach for the emulator."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx

from batch.cli.local import LocalEmulator
from batch.cli.output import say
from batch.config import Target, emulator_db_path, resolve_target
from batch.errors import ConfigError

# Milliseconds of replication lag for the in-process emulator (`entra-batch emulator` takes
# --replication-lag-ms): tests of a client's patience against Graph's replicas, run locally.
LAG_VARIABLE = "ENTRA_BATCH_EMULATOR_LAG_MS"


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
    with LocalEmulator(emulator_settings or local_emulator_settings()) as local:
        yield Reach(local.target(target), local.transport)


def local_emulator_settings() -> Any:
    """The in-process emulator's settings: Graph's defaults, with the replication lag of
    ENTRA_BATCH_EMULATOR_LAG_MS when it is set (None: the defaults)."""
    text = os.environ.get(LAG_VARIABLE, "").strip()
    if not text:
        return None
    from batch.emulator.settings import EmulatorSettings

    try:
        return EmulatorSettings(replication_lag_ms=float(text))
    except ValueError as exc:
        reason = str(exc) if "replication lag" in str(exc) else f"it is {text!r}, not a number of milliseconds"
        raise ConfigError(f"{LAG_VARIABLE}: {reason}") from None


def target_of(args: argparse.Namespace, *, target: str | None = None, profile: str | None = None,
              domain: str | None = None, extensions_app_id: str | None = None, auth: str | None = None) -> Target:
    """The target named by the command line, falling back to the given values (a resumed
    run's own), then to the environment and profiles (`batch.config`). `--target` and
    `--profile` on the command line replace the given pair as a whole; given together, they
    are a usage error (`resolve_target`). `--auth` replaces the given method (a resumed run's
    own)."""
    if getattr(args, "target", None) or getattr(args, "profile", None):
        target, profile = getattr(args, "target", None), getattr(args, "profile", None)
    resolved = resolve_target(target, profile, auth=getattr(args, "auth", None) or auth,
                              domain=getattr(args, "domain", None) or domain,
                              extensions_app_id=getattr(args, "extensions_app_id", None) or extensions_app_id)
    if resolved.auth == "device-code" and (sys.stdin.isatty() or sys.stderr.isatty()):
        # Only a person at a terminal can enter the code; without one, device code uses its cache or stops.
        resolved = replace(resolved, device_code_prompt=show_device_code)
    return resolved


def show_device_code(message: str) -> None:
    """The device code's page and code, on stderr; and, when stderr is not the terminal (it was
    redirected to a file) but there is one, on the terminal itself: the person who must type
    the code would otherwise wait, unknowing, for the code to expire."""
    say(message)
    if sys.stderr.isatty():
        return
    try:
        with open("/dev/tty", "w", encoding="utf-8") as terminal:
            terminal.write(f"entra-batch: {message}\n")
    except OSError:
        pass  # no controlling terminal: stderr is all there is
