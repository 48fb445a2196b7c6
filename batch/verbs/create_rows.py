"""`create`'s rows: how one becomes a `CreatePlan` (the body of `POST /users`) or a rejection.

Validation is one rule at a time, each with a message that names the column; every problem
of a row is reported, not just the first. The profile columns follow the field rules that
`update` uses too (batch/verbs/fields.py); what only `create` has is here: the sign-in
identity, the UPN, the initial password, and duplicates within the file.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch import rules
from batch.io.csvio import Row
from batch.io.quoting import shown
from batch.outcome import PasswordLine, Status
from batch.passwords import generate_password
from batch.verbs.attributes import AttributeCatalog
from batch.verbs.base import Rejected
from batch.verbs.fields import (
    FIELD_RULES,
    Extensions,
    account_enabled,
    check_fields,
    flag,
    is_extension_column,
    sign_in_name_problem,
)
from batch.verbs.identities import Identity, has_identity_columns
from batch.verbs.identities import read_identities as read_row_identities
from batch.verbs.plans import property_columns
from batch.verbs.screen import FLAG_WORDS, flagged
from batch.verbs.seen import SeenKeys

EXAMPLE_ROW = "this is the example row of the admin center's template; delete it from the file"
SIGN_IN_TYPES = {"emailaddress": "emailAddress", "email": "emailAddress", "username": "userName", "user name": "userName"}


@dataclass
class CreateOptions:
    domain: str                           # the tenant's default domain, the issuer of local identities
    extensions_app_id: str | None = None  # for ext.<name> columns
    attributes: AttributeCatalog | None = None  # the tenant's custom attributes, typed (None: offline)
    on_existing: str = "fail"             # fail | skip | update
    force_change_generated: bool = True   # a generated password is temporary by default


@dataclass
class CreatePlan:
    row: int
    key: str
    sign_in_type: str | None
    sign_in_name: str | None
    upn: str | None
    body: dict[str, Any] = field(repr=False)
    generates_password: bool = False
    generated_password: str | None = field(default=None, repr=False)
    # Set when a request for this row may have been applied without our seeing the answer:
    # when it left (this machine's clock), and whether its password died with an earlier process.
    maybe_applied_at: float | None = None
    # The same moment on Graph's clock, with the margin to allow around it: taken when the
    # request left, so that this machine's clock jumping afterwards cannot move it.
    applied_since: tuple[float, float] | None = None
    password_lost: bool = False
    # An earlier process's password for this row reached passwords.csv: the customer found is
    # that process's, with that password, whatever this plan carries (a re-send that conflicts).
    password_on_file: bool = False
    enabled_given: bool = True  # the row said whether sign-in is blocked (else: default, not an update)
    # Graph property → the row's column, where they differ (a dry run's plan.csv speaks in columns).
    columns: dict[str, str] = field(default_factory=dict)
    # The row's federated identities (issuer, issuerAssignedId): a customer with no email or
    # user name is looked up by the first of them (batch/verbs/identities.py).
    federated: tuple[tuple[str, str], ...] = ()
    note: str = ""  # said in results.csv when the customer is created (an export's UPN dropped)

    def with_password(self) -> CreatePlan:
        """The password is generated when the row is about to be sent, not when it is
        validated: a dry run or a validation of a million rows makes no secrets."""
        if self.generates_password and self.generated_password is None:
            self.generated_password = generate_password()
            self.body["passwordProfile"]["password"] = self.generated_password
        return self

    def password_line(self, object_id: str, password: str | None = None) -> PasswordLine:
        """passwords.csv's line for this customer: the generated password (or `password`),
        with the display name and contact address (the mail the row gave, or its email
        sign-in name, which became its mail) to give it to the right person."""
        given = password or self.generated_password
        assert given is not None
        return PasswordLine(self.row, self.sign_in_name or self.upn or "", object_id, given,
                            str(self.body.get("displayName") or ""), str(self.body.get("mail") or ""))


@dataclass(frozen=True)
class _Layout:
    """What every row of a file with these columns shares, worked out once per file."""

    names: tuple[str, ...]
    names_set: frozenset[str]
    fields: tuple[tuple[str, str], ...]      # (column, property) of the field rules' columns present, in table order
    extensions: tuple[tuple[str, str], ...]  # (column, property) of the custom attribute columns
    usable: bool  # False: every row has a problem with the columns themselves (no displayName, a bad custom attribute)
    columns: dict[str, str]                  # property_columns of a row, but for blockSignIn
    identities: bool = False  # federated or export identity columns: every row is read by `read`


class CreateRows:
    """Reads create rows into plans, remembering the keys of earlier rows."""

    def __init__(self, options: CreateOptions) -> None:
        self.options = options
        self.seen = SeenKeys()
        self.extensions = Extensions(options.extensions_app_id, options.attributes)
        self._layouts: dict[tuple[str, ...], _Layout] = {}

    def read_chunk(self, rows: Sequence[Row]) -> list[CreatePlan | Rejected]:
        """What `read` gives for each of these consecutive rows, a chunk at a time: each
        column is screened over the whole chunk (batch/verbs/screen.py); a row no screen
        flags becomes its plan here, with the few checks that depend on the row as a whole
        (the sign-in name's syntax for its type, the UPN, duplicates, the two flags); every
        other row is read by `read`, so that what is said about it is exactly what `read`
        says. Rows are taken in file order, so duplicate keys are claimed as `read` claims
        them (a claim is repeatable: `read` claiming again what a row claimed here is a no-op)."""
        results: list[CreatePlan | Rejected] = []
        for row, plain in self._screened(rows, build=True):
            results.append(plain if isinstance(plain, CreatePlan) else self.read(row))
        return results

    def rejections(self, rows: Sequence[Row]) -> list[Rejected]:
        """The rejections `read_chunk` would give for these rows, without making the plans
        of the valid ones (the `validate` command needs only what is wrong)."""
        found: list[Rejected] = []
        for row, plain in self._screened(rows, build=False):
            if plain is False:
                checked = self.read(row)
                if isinstance(checked, Rejected):
                    found.append(checked)
        return found

    def _screened(self, rows: Sequence[Row], *, build: bool) -> Iterator[tuple[Row, CreatePlan | bool]]:
        """Each row with its plan (True without `build`), or False when `read` must read it."""
        if not rows:
            return
        layout = self._layout(tuple(rows[0].cells))
        names = layout.names
        cells = [row.cells for row in rows]
        same = False
        if len(names) > 1 and set(map(len, cells)) == {len(names)}:
            try:  # every row has these columns and no other: the chunk's columns, at C speed
                columns = dict(zip(names, map(list, zip(*map(operator.itemgetter(*names), cells)))))
                same = True
            except KeyError:
                pass
        if not same:  # rows of other shapes than the first: screened as blank where a column lacks
            columns = {name: [c.get(name, "") for c in cells] for name in names}
        suspects = flagged(columns)
        self.seen.prepare(("signin", columns.get("signInName", ())), ("upn", columns.get("userPrincipalName", ())))
        plain = self._plain
        for index, row in enumerate(rows):
            if index in suspects or row.blank or row.problem or row.example or layout.identities or not (
                    same or row.cells.keys() == layout.names_set):
                yield row, False
            else:
                yield row, plain(row, layout, build)

    def _layout(self, names: tuple[str, ...]) -> _Layout:
        layout = self._layouts.get(names)
        if layout is None:
            present = set(names)
            fields = tuple((c, "businessPhones" if c == "businessPhone" else c) for c in FIELD_RULES if c in present)
            problems: list[str] = []
            # A column naming an attribute the tenant lacks holds back only the rows with a value
            # in it ("" here sends such a row to `read`, which says so).
            extensions = tuple((c, "" if self.extensions.unknown(c) else self.extensions.property_name(c, problems)
                                or "") for c in names if is_extension_column(c))
            columns = property_columns(dict.fromkeys(names, ""), self.extensions)
            layout = self._layouts[names] = _Layout(names, frozenset(names), fields, extensions,
                                                     not problems and "displayName" in present, columns,
                                                     has_identity_columns(present))
        return layout

    def _plain(self, row: Row, layout: _Layout, build: bool = True) -> CreatePlan | bool:
        """The plan of a row whose cells passed the screens (without `build`: True), or False
        when the row needs `read` to say what is wrong with it."""
        cells = row.cells
        body: dict[str, Any] = {}
        keys = self._plain_keys(row.number, cells, body)
        if keys is None or not layout.usable:
            return False
        block, enabled = cells.get("blockSignIn", ""), cells.get("accountEnabled", "")
        blocked = FLAG_WORDS[block] if block else None
        given = FLAG_WORDS[enabled] if enabled else None
        if blocked is not None and given is not None and blocked == given:
            return False
        if layout.extensions and any(len(cells[c]) > rules.EXTENSION_VALUE_MAX_LENGTH for c, _ in layout.extensions):
            return False
        attributes = self._typed_extensions(cells, layout)
        if attributes is None:
            return False
        if not build:
            return True
        sign_in_type, sign_in_name, upn = keys
        for column, prop in layout.fields:
            value = cells[column]
            if value:
                body[prop] = [value] if prop == "businessPhones" else value
        body["accountEnabled"] = (not blocked) if blocked is not None else (True if given is None else given)
        if "mail" not in body and sign_in_type == "emailAddress" and sign_in_name:
            body["mail"] = sign_in_name
        password = cells.get("password", "") or None
        force = cells.get("forceChangePasswordNextSignIn", "")
        body["passwordProfile"] = {
            "password": password,
            "forceChangePasswordNextSignIn": FLAG_WORDS[force] if force else (
                password is None and self.options.force_change_generated)}
        body["passwordPolicies"] = "DisablePasswordExpiration"
        body.update(attributes)
        columns = {"accountEnabled": "blockSignIn", **layout.columns} if block else dict(layout.columns)
        return CreatePlan(row.number, sign_in_name or upn or "", sign_in_type if sign_in_name else None,
                          sign_in_name, upn, body, generates_password=password is None,
                          enabled_given=bool(block or enabled), columns=columns)

    def _typed_extensions(self, cells: dict[str, str], layout: _Layout) -> dict[str, Any] | None:
        """The custom attributes of a screened row (typed by the catalog when there is one),
        or None when a value does not fit its type and `read` must say so."""
        found: dict[str, Any] = {}
        for column, prop in layout.extensions:
            value = cells[column]
            if value:
                if not prop:
                    return None
                if self.extensions.catalog is None:
                    lowered = value.strip().lower()
                    found[prop] = True if lowered == "true" else False if lowered == "false" else value
                    continue
                problems: list[str] = []
                checked = self.extensions.check(column, value, problems)
                if checked is None or problems:
                    return None
                found[prop] = checked[1]
        return found

    def _plain_keys(self, number: int, cells: dict[str, str],
                    body: dict[str, Any]) -> tuple[str | None, str | None, str | None] | None:
        """(sign-in type, sign-in name, UPN) of a screened row, their part of the body, and
        their claims; None when `read` must say what is wrong."""
        sign_in_name = cells.get("signInName") or None
        upn = cells.get("userPrincipalName") or None
        stated = cells.get("signInType", "")
        sign_in_type = SIGN_IN_TYPES[stated.lower()] if stated else None
        if sign_in_name is not None:
            if sign_in_type is None:
                sign_in_type = "emailAddress" if "@" in sign_in_name else "userName"
            if ("@" in sign_in_name) != (sign_in_type == "emailAddress"):  # screened for the type its '@' says
                return None
            if self.seen.claim("signin", sign_in_name, number) is not None:
                return None
            body["identities"] = [{"signInType": sign_in_type, "issuer": self.options.domain,
                                   "issuerAssignedId": sign_in_name}]
        elif upn is None:
            return None
        if upn is not None:
            domain = self.options.domain
            if rules.upn_problem(upn) or (domain and upn.partition("@")[2].lower() != domain.lower()):
                return None
            if self.seen.claim("upn", upn, number) is not None:
                return None
            body["userPrincipalName"] = upn
            if sign_in_name is None:
                body["mailNickname"] = upn.partition("@")[0][:64]
        return sign_in_type, sign_in_name, upn

    def read(self, row: Row) -> CreatePlan | Rejected:
        cells = row.cells
        if has_identity_columns(cells):
            return self._read_identities(row)
        key = (cells.get("signInName") or cells.get("userPrincipalName") or "").strip()
        unusable = _unusable(row, key)
        if unusable is not None:
            return unusable
        problems: list[str] = []
        body: dict[str, Any] = {}
        if not cells.get("displayName", "").strip():
            problems.append("displayName is required")
        sign_in_name = cells.get("signInName", "").strip() or None
        upn = cells.get("userPrincipalName", "").strip() or None
        sign_in_type = _sign_in_type(cells.get("signInType", ""), sign_in_name, problems)
        if sign_in_name is None and upn is None:
            problems.append("signInName (or userPrincipalName) is required")
        if sign_in_name is not None and sign_in_type is not None:
            body["identities"] = self._identity(sign_in_name, sign_in_type, row.number, problems)
        return self._finish(row, key, problems, body, sign_in_type, sign_in_name, upn)

    def _read_identities(self, row: Row) -> CreatePlan | Rejected:
        """A row of a file with federated or export identity columns (batch/verbs/identities.py):
        any number of identities; a customer with only federated ones gets no password."""
        cells = row.cells
        problems: list[str] = []
        sign_in_name = cells.get("signInName", "").strip() or None
        sign_in_type = _sign_in_type(cells.get("signInType", ""), sign_in_name, problems)
        given: list[Identity] = []
        if sign_in_name is not None and sign_in_type is not None:
            problem = sign_in_name_problem("signInName", sign_in_name, sign_in_type)
            if problem:
                problems.append(problem)
            given.append(Identity(sign_in_type, self.options.domain, sign_in_name))
        found = read_row_identities(cells, self.options.domain, problems, given)
        unusable = _unusable(row, found.key)
        if unusable is not None:
            return unusable
        if not cells.get("displayName", "").strip():
            problems.append("displayName is required")
        upn = found.upn
        if not found.identities and upn is None:
            problems.append("signInName, userPrincipalName or a federated identity (federatedIssuer and "
                            "federatedId) is required")
        self._claim(found.identities, row.number, problems)
        body: dict[str, Any] = {"identities": [i.json() for i in found.identities]} if found.identities else {}
        local = found.local
        sign_in_type, sign_in_name = (local.sign_in_type, local.assigned_id) if local else (None, None)
        federated = tuple((i.issuer, i.assigned_id) for i in found.identities if i.federated)
        if found.identities and local is None:
            if cells.get("password", ""):
                problems.append("password: a customer with only federated identities signs in with its provider "
                                "and has no password here; leave password blank")
            if cells.get("forceChangePasswordNextSignIn", "").strip():
                problems.append("forceChangePasswordNextSignIn: a customer with only federated identities has no "
                                "password; leave it blank")
        return self._finish(row, found.key, problems, body, sign_in_type, sign_in_name, upn,
                            federated=federated, note=found.note)

    def _claim(self, identities: list[Identity], row: int, problems: list[str]) -> None:
        """Each identity of the row claimed in the file: issuer and id are unique in the tenant
        (objectidentity.md); local ones share the sign-in names' claims."""
        for identity in identities:
            kind, value = ("federated", f"{identity.issuer}\0{identity.assigned_id}") if identity.federated else \
                ("signin", identity.assigned_id)
            first = self.seen.claim(kind, value, row)
            if first is not None:
                what = f"federated identity '{shown(identity.key())}'" if identity.federated else \
                    f"sign-in name '{shown(identity.assigned_id)}'"
                problems.append(f"{what} is already used by row {first} of this file")

    def _finish(self, row: Row, key: str, problems: list[str], body: dict[str, Any], sign_in_type: str | None,
                sign_in_name: str | None, upn: str | None, *, federated: tuple[tuple[str, str], ...] = (),
                note: str = "") -> CreatePlan | Rejected:
        """The rest of a row, whatever its identities: UPN, profile, flags, password, custom attributes."""
        cells = row.cells
        if upn is not None:
            body.update(self._upn(upn, sign_in_name is None, row.number, problems))
        body.update(check_fields(cells, problems))
        enabled = account_enabled(cells, problems)
        body["accountEnabled"] = True if enabled is None else enabled
        if "mail" not in body and sign_in_type == "emailAddress" and sign_in_name:
            body["mail"] = sign_in_name  # as the admin center and Graph's External ID example do
        # "For a social/federated-only identity none are required" (user-post-users.md, GRAPH.md
        # §1.2): a customer who signs in only with Google has no password to send or hand out.
        federated_only = bool(federated) and sign_in_name is None
        password = None if federated_only else self._password(cells, body, problems)
        body.update(self._extensions(cells, problems))
        if problems:
            return Rejected(row.number, key, tuple(problems))
        return CreatePlan(row.number, key, sign_in_type if sign_in_name else None, sign_in_name, upn, body,
                          generates_password=password is None and not federated_only,
                          enabled_given=_flag_given(cells), columns=property_columns(cells, self.extensions),
                          federated=federated, note=note)

    def _identity(self, sign_in_name: str, sign_in_type: str, row: int, problems: list[str]) -> list[dict[str, str]]:
        problem = sign_in_name_problem("signInName", sign_in_name, sign_in_type)
        if problem:
            problems.append(problem)
        first = self.seen.claim("signin", sign_in_name, row)
        if first is not None:
            problems.append(f"signInName '{shown(sign_in_name)}' is already used by row {first} of this file")
        return [{"signInType": sign_in_type, "issuer": self.options.domain, "issuerAssignedId": sign_in_name}]

    def _upn(self, upn: str, only_key: bool, row: int, problems: list[str]) -> dict[str, str]:
        problem = rules.upn_problem(upn)
        domain = self.options.domain
        if problem:
            problems.append(f"userPrincipalName '{shown(upn)}': {problem}")
        elif domain and upn.partition("@")[2].lower() != domain.lower():
            problems.append(f"userPrincipalName '{shown(upn)}' must end with @{domain}")
        first = self.seen.claim("upn", upn, row)
        if first is not None:
            problems.append(f"userPrincipalName '{shown(upn)}' is already used by row {first} of this file")
        if only_key:
            # A user without identities is created as Graph's workforce shape requires.
            return {"userPrincipalName": upn, "mailNickname": upn.partition("@")[0][:64]}
        return {"userPrincipalName": upn}

    def _password(self, cells: dict[str, str], body: dict[str, Any], problems: list[str]) -> str | None:
        """The row's password (None: generated when the row is sent), into the body."""
        password = cells.get("password", "") or None
        if password is not None:
            problem = rules.password_problem(password)
            if problem:
                problems.append(f"password: {problem}")
            force_default = False
        else:
            force_default = self.options.force_change_generated
        force = flag(cells, "forceChangePasswordNextSignIn", problems)
        body["passwordProfile"] = {"password": password,
                                   "forceChangePasswordNextSignIn": force_default if force is None else force}
        body["passwordPolicies"] = "DisablePasswordExpiration"
        return password

    def _extensions(self, cells: dict[str, str], problems: list[str]) -> dict[str, Any]:
        # Every custom attribute column is checked, blank or not: a bad name is the file's problem
        # (an attribute the tenant lacks only where the row gives it a value: Extensions.check).
        found: dict[str, Any] = {}
        for name, value in cells.items():
            if is_extension_column(name):
                checked = self.extensions.check(name, value, problems)
                if checked is not None:
                    found[checked[0]] = checked[1]
        return found


def _unusable(row: Row, key: str) -> Rejected | None:
    if row.blank:
        return Rejected(row.number, key, ("blank row",), Status.SKIPPED)
    if row.problem:
        # The cells of a row that does not fit the header are shifted: the "sign-in name"
        # may be someone's password. Such a row is reported without a key.
        return Rejected(row.number, "", (row.problem,))
    if row.example:
        return Rejected(row.number, key, (EXAMPLE_ROW,))
    return None


def _flag_given(cells: dict[str, str]) -> bool:
    return bool(cells.get("blockSignIn", "").strip() or cells.get("accountEnabled", "").strip())


def _sign_in_type(raw: str, sign_in_name: str | None, problems: list[str]) -> str | None:
    text = raw.strip()
    if not text:
        if sign_in_name is None:
            return None
        # Unstated: an address signs in by email, anything else by user name.
        return "emailAddress" if "@" in sign_in_name else "userName"
    known = SIGN_IN_TYPES.get(text.lower())
    if known is None:
        problems.append(f"signInType '{shown(text)}' is not emailAddress (email) or userName (username)")
    return known
