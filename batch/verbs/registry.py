"""The verbs, one line each. The CLI builds its subcommands, `template`, `validate --verb`
and their help from `VERBS`; a run builds its verb with `build_verb`.

A verb is its module (batch/verbs/<verb>.py: the `Verb` subclass and its `SPEC`) and its
line below; the order is the order of `entra-batch --help`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from batch.verbs import create, delete, purge, reset_password, restore, update
from batch.verbs.base import Verb
from batch.verbs.spec import Option, VerbSettings, VerbSpec

__all__ = ["VERBS", "Option", "VerbSettings", "VerbSpec", "build_verb"]


def _registry(*specs: VerbSpec) -> Mapping[str, VerbSpec]:
    by_name = {spec.name: spec for spec in specs}
    if len(by_name) != len(specs):
        raise ValueError("two verbs have the same name")
    return MappingProxyType(by_name)


VERBS: Mapping[str, VerbSpec] = _registry(
    create.SPEC,
    delete.SPEC,
    update.SPEC,
    reset_password.SPEC,
    restore.SPEC,
    purge.SPEC,
)


def build_verb(name: str, settings: VerbSettings) -> Verb[Any]:
    try:
        spec = VERBS[name]
    except KeyError:
        raise ValueError(f"unknown verb {name!r}; known: {', '.join(VERBS)}") from None
    return spec.build(settings)

