"""How a verb describes itself to the command line and the registry: its help texts, its own
options (declared without argparse), its confirmation rule, its template, and how to build it
from a run's settings. Each verb module holds one `VerbSpec` (its `SPEC`); the registry
(batch/verbs/registry.py) lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batch.io.columns import PORTAL_VERSION_LINE, ColumnSet
from batch.verbs.attributes import AttributeCatalog
from batch.verbs.base import Verb


@dataclass(frozen=True)
class Option:
    """A verb-specific command-line option, declared without argparse."""

    flag: str            # "--on-existing"
    dest: str            # "on_existing"
    help: str
    choices: tuple[str, ...] | None = None
    default: object = None
    store_true: bool = False
    metavar: str | None = None  # "ATTRIBUTE": how --help names the value (default: from dest)


@dataclass(frozen=True)
class VerbSettings:
    """What building a verb needs (from the run request and the tenant)."""

    domain: str | None
    extensions_app_id: str | None = None
    on_existing: str = "fail"
    force_change_generated: bool = True
    # The tenant's custom attributes with their types (None: unknown, e.g. `validate` offline).
    attributes: AttributeCatalog | None = None
    # create --jit-migration ATTRIBUTE: the Boolean attribute that marks a customer still to migrate.
    jit_migration: str | None = None


@dataclass(frozen=True)
class VerbSpec:
    name: str                    # "reset-password"
    summary: str                 # one line for `entra-batch --help`
    description: str             # first paragraph of `entra-batch VERB --help`
    epilog: str                  # examples + the file's columns + exit statuses
    columns: ColumnSet
    portal_header: str | None    # the admin center's bulk template header for `template --portal`
    options: tuple[Option, ...]  # e.g. create: --on-existing, --no-force-change; delete: --yes
    confirm: str                 # "never", "above_limit" (delete: >100 rows ask), "always" (purge needs --yes)
    build: Callable[[VerbSettings], Verb[Any]]

    def __post_init__(self) -> None:
        if self.confirm not in ("never", "above_limit", "always"):
            raise ValueError(f"{self.name}: confirm is never, above_limit or always, not {self.confirm!r}")
        if self.columns.verb != self.name:
            raise ValueError(f"{self.name}: its columns are declared for {self.columns.verb!r}")

    def template(self, *, portal: bool = False) -> str:
        """The text `entra-batch template VERB [--portal]` writes (CRLF lines, as Excel does)."""
        if portal:
            if self.portal_header is None:
                raise ValueError(f"the admin center has no bulk template for {self.name}")
            return f"{PORTAL_VERSION_LINE}\r\n{self.portal_header}\r\n"
        return ",".join(self.columns.template_names) + "\r\n"
