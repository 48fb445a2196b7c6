"""What a run is asked to do: `RunRequest`, recorded in the journal so that `resume` does
the very same run."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs that is not a secret; stored in the journal for `resume`."""

    verb: str
    input: str
    encoding: str | None = None
    out_dir: str | None = None
    dry_run: bool = False
    batch_size: int = 20
    concurrency: int = 4
    on_existing: str = "fail"
    priority: str = "normal"
    target: str | None = None
    profile: str | None = None
    domain: str | None = None
    extensions_app_id: str | None = None
    force_change_generated: bool = True
    auth: str | None = None  # the sign-in method the run used (None: local, or a run folder of an earlier version)
    sheet: str | None = None  # an .xlsx input's worksheet (None: the first)
    jit_migration: str | None = None  # create --jit-migration: the Boolean custom attribute marking customers to migrate
    legacy_id_attribute: str | None = None  # create --legacy-id-attribute: the String attribute keeping an export's id

    @classmethod
    def from_journal(cls, saved: dict[str, Any]) -> RunRequest:
        """The request a run folder recorded (keys of older versions, such as `yes`, are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})


__all__ = ["RunRequest"]
