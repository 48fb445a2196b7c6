"""The state file of an incremental export (`--since state.json`): the delta link to follow
next time, the columns of the first run, and when each round began on Graph's clock.

The file belongs to one tenant and one Graph address (a delta link only works where it was
made), and is replaced whole, and only once the export file is complete."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch.errors import ConfigError

STATE_VERSION = 1


@dataclass(frozen=True)
class DeltaState:
    """What one delta round leaves for the next."""

    delta_link: str
    synced_at: str | None = None  # when the round began, on Graph's clock: later creations are `added`
    first_synced_at: str | None = None
    columns: tuple[str, ...] = ()  # empty in a state file that kept none: the columns are chosen again
    extensions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def after_round(cls, previous: DeltaState | None, delta_link: str, columns: Sequence[str],
                    extensions: Mapping[str, str], started: float) -> DeltaState:
        """The state after a round that began at `started` (Graph's clock, seconds since the epoch)."""
        began = _iso(started)
        return cls(delta_link=delta_link, synced_at=began,
                   first_synced_at=(previous.first_synced_at if previous else None) or began,
                   columns=tuple(columns), extensions=dict(extensions))

    def as_json(self, target: Mapping[str, Any]) -> dict[str, Any]:
        return {"version": STATE_VERSION, "deltaLink": self.delta_link, "columns": list(self.columns),
                "extensions": dict(self.extensions), "synced_at": self.synced_at,
                "first_synced_at": self.first_synced_at, "target": dict(target)}


def read_state(path: Path, identity: Mapping[str, Any]) -> DeltaState | None:
    """The state file of an incremental export; None on its first run (no file yet).
    `identity` is the target's (`batch.run.connection.target_identity`)."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--since {path}: not a state file written by `entra-batch export --since` ({exc})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not state.get("deltaLink"):
        raise ConfigError(f"--since {path}: not a state file written by `entra-batch export --since`")
    saved = state.get("target") or {}
    if saved.get("kind") != identity["kind"] or saved.get("tenant_id") != identity["tenant_id"]:
        raise ConfigError(f"--since {path} belongs to another target ({saved.get('tenant_id') or saved.get('kind')}); "
                          "use a state file per tenant")
    if saved.get("graph_url") != identity["graph_url"]:
        raise ConfigError(f"--since {path} was made against {saved.get('graph_url')}, not {identity['graph_url']}: "
                          "its delta link only works there. Use that address, or delete the state file for a "
                          "full export")
    return DeltaState(delta_link=state["deltaLink"], synced_at=state.get("synced_at"),
                      first_synced_at=state.get("first_synced_at"), columns=tuple(state.get("columns") or ()),
                      extensions=dict(state.get("extensions") or {}))


def write_state(path: Path, state: DeltaState, identity: Mapping[str, Any]) -> None:
    """Replaced whole and only once the export file is complete: an interrupted export
    leaves the previous state, and running it again lists the same changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(state.as_json(identity), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["STATE_VERSION", "DeltaState", "read_state", "write_state"]
