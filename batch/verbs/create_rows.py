"""`create`'s rows: how one becomes a `CreatePlan` (the body of `POST /users`) or a rejection.

Validation is one rule at a time, each with a message that names the column; every problem
of a row is reported, not just the first. The profile columns follow the field rules that
`update` uses too (batch/verbs/fields.py); what only `create` has is here: the sign-in
identity, the UPN, the initial password, and duplicates within the file.
"""

from __future__ import annotations

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


class CreateRows:
    """Reads create rows into plans, remembering the keys of earlier rows."""

    def __init__(self, options: CreateOptions) -> None:
        self.options = options
        self.seen = SeenKeys()
        self.extensions = Extensions(options.extensions_app_id, options.attributes)

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
