"""The custom attributes `validate` checks a file against, offline: only the built-in
emulator's can be known without sending anything (its directory is read, never made); for a
tenant, `validate` keeps the untyped checks, and the run reads the catalog from Graph
(batch/run/attributes.py)."""

from __future__ import annotations

import argparse

from batch.cli.local import local_attributes
from batch.cli.targets import target_of
from batch.errors import ConfigError
from batch.verbs.attributes import AttributeCatalog


def offline_attributes(args: argparse.Namespace) -> AttributeCatalog | None:
    try:
        target = target_of(args)
    except ConfigError:
        return None
    return local_attributes() if target.kind == "local" else None


__all__ = ["offline_attributes"]
