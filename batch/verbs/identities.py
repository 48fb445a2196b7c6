"""Sign-in identities beyond the one email or user name of `signInName`: federated (social)
identities, and the export's own identity columns, for `create` and `update`.

A customer may hold any number of identities (GRAPH.md §1.3 Example 2, a B2C migration with
an email, a user name and a facebook.com identity together). The columns that give them:

- `federatedIssuer` + `federatedId` (the issuer, e.g. `google.com`, and the id the issuer
  assigned to the customer), numbered for more: `federatedIssuer2` + `federatedId2`, up to
  `MAX_NUMBERED`. Aliases: "social issuer"/"social id", "federated issuer"/"federated id".
- the export's columns: `signIn.emailAddress`, `signIn.userName` (each may hold several
  values joined by `; `) and `signIn.federated` (`issuer/issuerAssignedId`, several joined
  by `; `), so that an export of one tenant is the input of `create` in another.

Graph's rules (api-reference/v1.0/resources/objectidentity.md, microsoftgraph/microsoft-graph-
docs-contrib; GRAPH.md §1.5): `issuer` holds at most 512 characters; the "64 character limit"
of `issuerAssignedId` sits in the doc's `userName` bullet (batch/verbs/fields.py checks it on
email and user-name sign-ins, strictly: for emailAddress the doc is not explicit), while a
federated id "can be in any format chosen by the issuer" and has no documented limit, so none
is applied here (an OpenID Connect `sub` alone may hold 255 characters, OpenID Connect Core 1.0
§2); the issuer of a local
(non-federated) identity is the tenant's default domain, so local issuers are always the
target's own domain here, never a value from the file; "the combination of issuer and
issuerAssignedId must be unique within the organization". The docs state no case rule for
that uniqueness: it is checked case-insensitively in the file (as the directory compares
names, and as the emulator does), which can only refuse more, never send a duplicate.
B2C keeps at most 10 identities per user (user-profile-attributes.md), the userPrincipalName
identity Graph adds among them: a row may give at most 9.

Our own rule, not Graph's: a federated identity whose issuer is the tenant's own domain is
refused. Graph documents no such refusal, but the tenant's domain is the issuer of local
identities, so such a row is almost certainly a local sign-in typed in the wrong column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from batch.io.columns import EXPORT_COLUMNS, FEDERATED_PAIRS, MAX_NUMBERED_FEDERATED
from batch.io.quoting import shown
from batch.verbs.fields import sign_in_name_problem

ISSUER_MAX_LENGTH = 512          # objectidentity.md: issuer "512 character limit"
MAX_IDENTITIES = 9               # B2C's 10 per user, less the userPrincipalName identity Graph adds
MAX_NUMBERED = MAX_NUMBERED_FEDERATED  # federatedIssuer … federatedIssuer5
SEPARATOR = "; "                 # how export joins several values of one column

EXPORT_EMAIL, EXPORT_USER_NAME, EXPORT_FEDERATED = EXPORT_COLUMNS
FEDERATED_COLUMNS = tuple(c for pair in FEDERATED_PAIRS for c in pair)
IDENTITY_COLUMNS = frozenset((*FEDERATED_COLUMNS, *EXPORT_COLUMNS))

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Identity:
    """One objectIdentity of a body."""

    sign_in_type: str
    issuer: str
    assigned_id: str

    @property
    def federated(self) -> bool:
        return self.sign_in_type == "federated"

    def json(self) -> dict[str, str]:
        return {"signInType": self.sign_in_type, "issuer": self.issuer, "issuerAssignedId": self.assigned_id}

    def key(self) -> str:
        """What names it in the file's duplicate check and in results.csv: `issuer/id`."""
        return join_federated(self.issuer, self.assigned_id)


def join_federated(issuer: str, assigned_id: str) -> str:
    """The export's text of a federated identity (batch/export/fields.py): `issuer/issuerAssignedId`."""
    return f"{issuer}/{assigned_id}"


def split_federated(text: str) -> tuple[str, str] | None:
    """`issuer/issuerAssignedId` back into its parts; None when there is no `/` to split at.

    The rule: an issuer written as a URL (`https://accounts.example.com/`, as an OpenID
    Connect provider's issuer is) ends at the LAST `/`; any other issuer (`google.com`,
    `facebook.com`, `appleid.apple.com`, a domain) holds no `/` and ends at the FIRST one, so
    the id may hold `/`. The one text this cannot read right is a URL issuer whose id holds
    a `/`: give such an identity in `federatedIssuer`/`federatedId` instead."""
    at = text.rfind("/") if _SCHEME.match(text) else text.find("/")
    if at < 0:
        return None
    return text[:at], text[at + 1:]


def _values(cell: str) -> Iterator[str]:
    """The values of an export cell: `; `-separated, blank ones left out."""
    for part in cell.split(";"):
        value = part.strip()
        if value:
            yield value


def has_identity_columns(names: frozenset[str] | set[str] | Mapping[str, str]) -> bool:
    return any(name in IDENTITY_COLUMNS for name in names)


def is_export(names: frozenset[str] | set[str] | Mapping[str, str]) -> bool:
    """A file with the export's sign-in columns is taken for an export (of this or another
    tenant): its userPrincipalName column then holds names Graph generated, which another
    tenant cannot take, and they are dropped rather than refused (`create`)."""
    return any(name in EXPORT_COLUMNS for name in names)


def extra_identities(cells: Mapping[str, str], problems: list[str]) -> list[Identity]:
    """The export's local identities of a row (`signIn.emailAddress`, `signIn.userName`) with
    an empty issuer, which `check_identities` sets to the tenant's domain, then its federated
    ones (numbered columns, then `signIn.federated`). Syntax problems are appended, naming
    the column."""
    found: list[Identity] = []
    for column, sign_in_type in ((EXPORT_EMAIL, "emailAddress"), (EXPORT_USER_NAME, "userName")):
        for value in _values(cells.get(column, "")):
            problem = sign_in_name_problem(column, value, sign_in_type)
            if problem:
                problems.append(problem)
            else:
                found.append(Identity(sign_in_type, "", value))
    for issuer_column, id_column in FEDERATED_PAIRS:
        issuer, assigned = cells.get(issuer_column, "").strip(), cells.get(id_column, "").strip()
        if issuer and assigned:
            if _federated_ok(issuer_column, issuer, problems):
                found.append(Identity("federated", issuer, assigned))
        elif issuer or assigned:
            given, lacking = (issuer_column, id_column) if issuer else (id_column, issuer_column)
            problems.append(f"{given} is given without {lacking}: a federated identity needs both")
    for text in _values(cells.get(EXPORT_FEDERATED, "")):
        parts = split_federated(text)
        if parts is None or not parts[0] or not parts[1]:
            problems.append(f"{EXPORT_FEDERATED} '{shown(text)}' is not issuer/issuerAssignedId "
                            "(for example google.com/1234567890)")
        elif _federated_ok(EXPORT_FEDERATED, parts[0], problems):
            found.append(Identity("federated", *parts))
    return found


def _federated_ok(issuer_column: str, issuer: str, problems: list[str]) -> bool:
    """The issuer's documented limit; the id has none (objectidentity.md: a federated id "can
    be in any format chosen by the issuer", the 64 character limit being userName's)."""
    if len(issuer) > ISSUER_MAX_LENGTH:
        problems.append(f"{issuer_column}: the issuer is {len(issuer)} characters long; Entra allows {ISSUER_MAX_LENGTH}")
        return False
    return True


def check_identities(identities: list[Identity], domain: str, problems: list[str]) -> list[Identity]:
    """The row's identities with local issuers set to the tenant's domain, checked as a whole:
    no federated identity issued by the tenant's own domain, no identity twice, at most
    MAX_IDENTITIES."""
    out: list[Identity] = []
    seen: set[tuple[str, str]] = set()
    for identity in identities:
        if identity.federated and domain and identity.issuer.lower() == domain.lower():
            problems.append(f"federated issuer '{shown(identity.issuer)}' is the tenant's own domain, the issuer of "
                            "email and user-name sign-ins: give a local sign-in in signInName, and a federated one "
                            "with its provider's issuer (google.com, facebook.com, …)")
            continue
        issuer = identity.issuer if identity.federated else domain
        pair = (issuer.lower(), identity.assigned_id.lower())
        if pair in seen:
            if not identity.federated:
                continue  # the same sign-in name in signInName and signIn.*: one identity
            problems.append(f"federated identity '{shown(identity.key())}' is given twice in this row")
            continue
        seen.add(pair)
        out.append(Identity(identity.sign_in_type, issuer, identity.assigned_id))
    if len(out) > MAX_IDENTITIES:
        problems.append(f"the row gives {len(out)} sign-in identities; a customer can hold at most {MAX_IDENTITIES} "
                        "(Graph keeps 10, one of them the userPrincipalName)")
    return out


@dataclass(frozen=True)
class RowIdentities:
    """What a create row's identity columns give."""

    identities: list[Identity]  # checked, local issuers set to the tenant's domain
    key: str                    # results.csv's key: the first local sign-in name, else the UPN, else issuer/id
    upn: str | None             # the row's UPN, None when blank or dropped (an export's, of another tenant)
    note: str = ""

    @property
    def local(self) -> Identity | None:
        """The first email or user-name identity: the customer's sign-in name."""
        return next((i for i in self.identities if not i.federated), None)


def read_identities(cells: Mapping[str, str], domain: str, problems: list[str],
                    given: list[Identity]) -> RowIdentities:
    """The identities of a create row: `given` (signInName's), then the federated and export
    columns' (`extra_identities`), checked together (`check_identities`).

    In an export (`is_export`), a userPrincipalName of another domain than the tenant's is
    dropped with a note: it is the name the source tenant generated (`<id>@source.onmicrosoft.com`,
    GRAPH.md §1.4), which this tenant cannot hold; Graph generates a new one. A hand-made file
    keeps today's rule: such a UPN makes the row invalid."""
    identities = check_identities([*given, *extra_identities(cells, problems)], domain, problems)
    upn = cells.get("userPrincipalName", "").strip() or None
    note = ""
    if upn is not None and is_export(cells) and domain and upn.partition("@")[2].lower() != domain.lower():
        note = f"userPrincipalName {shown(upn)} is another tenant's; Graph generated a new one"
        upn = None
    local = next((i for i in identities if not i.federated), None)
    federated = next((i for i in identities if i.federated), None)
    key = local.assigned_id if local else upn or (federated.key() if federated else "")
    return RowIdentities(identities, key, upn, note)
