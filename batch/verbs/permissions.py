"""The application permissions a verb needs (GRAPH.md §10; PRODUCT.md, "Targets").

Each constant is one requirement: a set of permissions any one of which meets it (the least
privileged one first in spirit; `auth.missing_permissions` ranks them when naming what is
missing). A verb says what it reads with, what it writes with, and which columns of a file
ask for more, as one `PermissionNeeds` value; `for_run` turns that into the requirements of
one run, which the run checks against the token before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Requirement = frozenset[str]

READ: Requirement = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
CREATE: Requirement = frozenset({"User.Create", "User.ReadWrite.All", "Directory.ReadWrite.All"})
UPDATE: Requirement = frozenset({"User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
PASSWORD: Requirement = frozenset({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All",
                                   "Directory.ReadWrite.All"})
ENABLE: Requirement = frozenset({"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
DELETE_RESTORE: Requirement = frozenset({"User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
IDENTITIES: Requirement = frozenset({"User.ManageIdentities.All"})


@dataclass(frozen=True)
class PermissionNeeds:
    """What a verb reads with, what it writes with, and what a filled column adds.

    `write` lists every write requirement of the verb as configured (create with
    `--on-existing update` writes with update's too); `by_column` maps a column name to the
    requirements it adds when the file has that column (update's `blockSignIn`); `same_as` maps
    a column to the `by_column` one it needs what of (update's `federatedIssuer2` and
    `signIn.federated` add identities as `federatedIssuer` does), so that `by_column`, which
    doctor lists, names each need once."""

    read: Requirement
    write: tuple[Requirement, ...]
    by_column: Mapping[str, tuple[Requirement, ...]] = field(default_factory=dict)
    same_as: Mapping[str, str] = field(default_factory=dict)

    def for_run(self, columns: Iterable[str], *, reads_only: bool = False) -> tuple[Requirement, ...]:
        """The requirements of a run on a file with these columns, in the order a missing
        permission is named: the verb's first write, the read, further writes, then what the
        columns add. A dry run that reads the directory (`reads_only`) needs the read only."""
        if reads_only:
            return (self.read,)
        present = {self.same_as.get(column, column) for column in columns}
        needed = [*self.write[:1], self.read, *self.write[1:]]
        for column, extra in self.by_column.items():
            if column in present:
                needed += extra
        return tuple(dict.fromkeys(needed))  # once each, first place kept

    def with_writes(self, *extra: Requirement) -> PermissionNeeds:
        """These needs, writing with `extra` too (create's `--on-existing update`)."""
        return PermissionNeeds(self.read, (*self.write, *extra), self.by_column, self.same_as)
