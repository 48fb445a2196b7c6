"""The state file of an incremental export (`--since state.json`): the delta link to follow
next time, the columns of the first run, and when each round began on Graph's clock.

The file belongs to one tenant and one Graph address (a delta link only works where it was
made), and is replaced whole, and only once the export file is complete."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch.errors import ConfigError
from batch.run.private import write_replacing, writing

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
    wrong = _malformed(state) if isinstance(state, dict) else ""
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not state.get("deltaLink") or wrong:
        raise ConfigError(f"--since {path}: not a state file written by `entra-batch export --since`"
                          f"{f' ({wrong})' if wrong else ''}")
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


# What each field of a state file holds (a file edited by hand is refused, field by field).
_FIELDS: dict[str, tuple[type, ...]] = {
    "deltaLink": (str,), "synced_at": (str, type(None)), "first_synced_at": (str, type(None)),
    "columns": (list, type(None)), "extensions": (dict, type(None)), "target": (dict, type(None))}


def _malformed(state: dict[str, Any]) -> str:
    """What is wrong with the fields of a state file read as JSON, or ""."""
    for name, kinds in _FIELDS.items():
        if not isinstance(state.get(name), kinds):
            return f"its {name!r} is not what entra-batch writes there"
    if not all(isinstance(c, str) for c in state.get("columns") or ()):
        return "its 'columns' are not all names"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in (state.get("extensions") or {}).items()):
        return "its 'extensions' are not all names"
    if not all(isinstance(v, (str, type(None))) for v in (state.get("target") or {}).values()):
        return "its 'target' is not what entra-batch writes there"
    return ""


def write_state(path: Path, state: DeltaState, identity: Mapping[str, Any]) -> None:
    """Replaced whole and only once the export file is complete: an interrupted export
    leaves the previous state, and running it again lists the same changes. Private (it
    holds the delta link that reads the tenant's changes), through a fresh file renamed into
    place (`write_replacing`: a link planted at the path is replaced, never written through)."""
    data = (json.dumps(state.as_json(identity), indent=2) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_replacing(path, writing(data))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["STATE_VERSION", "DeltaState", "read_state", "write_state"]
