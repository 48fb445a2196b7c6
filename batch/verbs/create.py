"""`create`: one customer account per row, `POST /users` with a sign-in identity.

Validation is one rule at a time, each with a message that names the column; every problem
of a row is reported, not just the first. A plan carries the request body (with the password,
generated when the cell is blank); the password leaves this module only towards Graph and
towards passwords.csv.

Exactly once: identities and UPNs are unique in the directory, so a create can never make a
second customer; but an answer can be lost (a dropped connection, a 504, a crash). A row in
that state is *reconciled*: the customer is looked up, and if it was created after the row
was sent it is ours (reported `created`), otherwise it belonged to someone before us and
`--on-existing` decides.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import numpy as np
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from batch import rules
from batch.errors import GraphRequestFailed
from batch.graph import GraphCall, GraphResult
from batch.io.columns import COLUMN_SETS, ColumnSet
from batch.io.csvio import Row
from batch.outcome import Outcome, SentRow, Status
from batch.passwords import generate_password
from batch.verbs.base import Executed, Rejected, Session

READ = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
CREATE = frozenset({"User.Create", "User.ReadWrite.All", "Directory.ReadWrite.All"})
UPDATE = frozenset({"User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
PASSWORD = frozenset({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
ENABLE = frozenset({"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})

TRUE_WORDS = {"yes", "y", "true", "1"}
FALSE_WORDS = {"no", "n", "false", "0"}
SIGN_IN_TYPES = {"emailaddress": "emailAddress", "email": "emailAddress", "username": "userName", "user name": "userName"}
# Columns copied as they are into the body, after their length check.
PROFILE_COLUMNS = ("givenName", "surname", "jobTitle", "department", "companyName", "city", "state", "country",
                   "streetAddress", "postalCode", "officeLocation", "mobilePhone", "employeeId")
# A customer created before the row was sent cannot be ours. Send times are moved onto
# Graph's clock with the `Date` header's offset (1 s resolution); the margin covers that,
# and clock skew when no Date header was seen.
CLOCK_SKEW_SECONDS = 5.0
UNKNOWN_SKEW_SECONDS = 30.0


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
    enabled_given: bool = True  # the row said whether sign-in is blocked (else: default, not an update)

    def with_password(self) -> "CreatePlan":
        """The password is generated when the row is about to be sent, not when it is
        validated: a dry run or a validation of a million rows makes no secrets."""
        if self.generates_password and self.generated_password is None:
            self.generated_password = generate_password()
            self.body["passwordProfile"]["password"] = self.generated_password
        return self

    def password_line(self, object_id: str) -> tuple[int, str, str, str]:
        assert self.generated_password is not None
        return (self.row, self.sign_in_name or self.upn or "", object_id, self.generated_password)


class SeenKeys:
    """Sign-in names and UPNs seen earlier in the file, as 63-bit digests with the row that had
    each first. Recent ones sit in a dict; every half million they move into two sorted numpy
    arrays (12 bytes a key), so a ten-million-row file needs ~120 MB here, not gigabytes."""

    FLUSH_EVERY = 500_000

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._digests = np.empty(0, dtype=np.int64)
        self._rows = np.empty(0, dtype=np.uint32)

    def claim(self, kind: str, value: str, row: int) -> int | None:
        """None when `row` is the first to use the value, else the first row that did."""
        digest = int.from_bytes(hashlib.blake2b(f"{kind}\0{value.lower()}".encode(), digest_size=8).digest(),
                                "big") >> 1
        first = self._recent.get(digest)
        if first is None and self._digests.size:
            at = int(np.searchsorted(self._digests, digest))
            if at < self._digests.size and int(self._digests[at]) == digest:
                first = int(self._rows[at])
        if first is not None:
            return None if first == row else first
        self._recent[digest] = row
        if len(self._recent) >= self.FLUSH_EVERY:
            self._flush()
        return None

    def _flush(self) -> None:
        digests = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        rows = np.fromiter(self._recent.values(), dtype=np.uint32, count=len(self._recent))
        all_digests = np.concatenate([self._digests, digests])
        order = np.argsort(all_digests, kind="stable")
        self._digests = all_digests[order]
        self._rows = np.concatenate([self._rows, rows])[order]
        self._recent = {}


@dataclass
class CreateOptions:
    domain: str                           # the tenant's default domain, the issuer of local identities
    extensions_app_id: str | None = None  # for ext.<name> columns
    on_existing: str = "fail"             # fail | skip | update
    force_change_generated: bool = True   # a generated password is temporary by default


def parse_bool(value: str) -> bool | None:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(value)


# The common, plainly valid address, checked fast; anything else goes to email-validator,
# which gives the reason. Every address this accepts, email-validator accepts too (tested).
_PLAIN_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def email_problem(value: str) -> str | None:
    if len(value) <= 254 and _PLAIN_EMAIL.fullmatch(value) and value.rpartition(".")[2].lower() not in _SPECIAL_USE:
        return None
    if rules.has_accents(value):
        return "has accented characters, which Entra does not accept in an address"
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


class CreateVerb:
    name = "create"
    permissions: tuple[frozenset[str], ...] = (CREATE, READ)

    def __init__(self, options: CreateOptions) -> None:
        self.options = options
        if options.on_existing == "update":
            # Updating existing customers needs what `update` needs (GRAPH.md §5, §10).
            self.permissions = (CREATE, READ, UPDATE, ENABLE)
        self.columns: ColumnSet = COLUMN_SETS["create"]
        self.seen = SeenKeys()
        self._ext_prefix = (f"extension_{options.extensions_app_id.replace('-', '').lower()}_"
                            if options.extensions_app_id else None)

    # ---- validation ----------------------------------------------------------------------

    def validate(self, row: Row) -> CreatePlan | Rejected:
        cells = row.cells
        key = (cells.get("signInName") or cells.get("userPrincipalName") or "").strip()
        if row.blank:
            return Rejected(row.number, key, ("blank row",), Status.SKIPPED)
        if row.problem:
            # The cells of a row that does not fit the header are shifted: the "sign-in name"
            # may be someone's password. Such a row is reported without a key.
            return Rejected(row.number, "", (row.problem,))
        if row.example:
            return Rejected(row.number, key, ("this is the example row of the admin center's template; "
                                              "delete it from the file",))
        problems: list[str] = []
        body: dict[str, Any] = {}

        display_name = cells.get("displayName", "").strip()
        if not display_name:
            problems.append("displayName is required")
        else:
            self._check_length("displayName", display_name, problems)
            if "<" in display_name or ">" in display_name:
                problems.append("displayName cannot contain < or >")
            body["displayName"] = display_name

        sign_in_name = cells.get("signInName", "").strip() or None
        upn = cells.get("userPrincipalName", "").strip() or None
        sign_in_type = self._sign_in_type(cells.get("signInType", ""), sign_in_name, problems)
        if sign_in_name is None and upn is None:
            problems.append("signInName (or userPrincipalName) is required")
        if sign_in_name is not None and sign_in_type is not None:
            if len(sign_in_name) > rules.ISSUER_ASSIGNED_ID_MAX_LENGTH:
                problems.append(f"signInName is longer than {rules.ISSUER_ASSIGNED_ID_MAX_LENGTH} characters")
            elif sign_in_type == "emailAddress":
                problem = email_problem(sign_in_name)
                if problem:
                    problems.append(f"signInName '{sign_in_name}' is not a valid email address: {problem}")
            elif not rules.is_user_name(sign_in_name):
                problems.append(f"signInName '{sign_in_name}' is not a valid user name: it must start with a letter "
                                "or digit and hold only letters, digits, '-' and '_'")
            body["identities"] = [{"signInType": sign_in_type, "issuer": self.options.domain,
                                   "issuerAssignedId": sign_in_name}]
            first = self.seen.claim("signin", sign_in_name, row.number)
            if first is not None:
                problems.append(f"signInName '{sign_in_name}' is already used by row {first} of this file")
        if upn is not None:
            problem = rules.upn_problem(upn)
            if problem:
                problems.append(f"userPrincipalName '{upn}': {problem}")
            elif self.options.domain and upn.partition("@")[2].lower() != self.options.domain.lower():
                problems.append(f"userPrincipalName '{upn}' must end with @{self.options.domain}")
            body["userPrincipalName"] = upn
            first = self.seen.claim("upn", upn, row.number)
            if first is not None:
                problems.append(f"userPrincipalName '{upn}' is already used by row {first} of this file")
            if sign_in_name is None:
                # A user without identities is created as Graph's workforce shape requires.
                body["mailNickname"] = upn.partition("@")[0][:64]

        for column in PROFILE_COLUMNS:
            value = cells.get(column, "").strip()
            if value:
                self._check_length(column, value, problems)
                body[column] = value
        if cells.get("businessPhone", "").strip():
            body["businessPhones"] = [cells["businessPhone"].strip()]

        body["accountEnabled"] = self._account_enabled(cells, problems)
        enabled_given = bool(cells.get("blockSignIn", "").strip() or cells.get("accountEnabled", "").strip())

        location = cells.get("usageLocation", "").strip()
        if location:
            code = rules.normalise_usage_location(location)
            if code is None:
                problems.append(f"usageLocation '{location}' is not an ISO 3166-1 two-letter country code (e.g. US, FR, NA)")
            else:
                body["usageLocation"] = code

        mail = cells.get("mail", "").strip()
        if mail:
            problem = email_problem(mail)
            if problem:
                problems.append(f"mail '{mail}' is not a valid email address: {problem}")
            body["mail"] = mail
        elif sign_in_type == "emailAddress" and sign_in_name:
            body["mail"] = sign_in_name  # as the admin center and Graph's External ID example do

        language = cells.get("preferredLanguage", "").strip()
        if language:
            if not rules.is_language_tag(language):
                problems.append(f"preferredLanguage '{language}' is not a language tag such as en-US")
            body["preferredLanguage"] = language

        password: str | None = cells.get("password", "")
        if password:
            problem = rules.password_problem(password)
            if problem:
                problems.append(f"password: {problem}")
            force_default = False
        else:
            password = None  # generated when the row is sent
            force_default = self.options.force_change_generated
        force = self._bool(cells, "forceChangePasswordNextSignIn", force_default, problems)
        body["passwordProfile"] = {"password": password, "forceChangePasswordNextSignIn": force}
        body["passwordPolicies"] = "DisablePasswordExpiration"

        for name, value in cells.items():
            if name.lower().startswith(("extension_", "ext.")):
                self._extension(name, value, body, problems)

        if problems:
            return Rejected(row.number, key, tuple(problems))
        return CreatePlan(row.number, key, sign_in_type if sign_in_name else None, sign_in_name, upn, body,
                          generates_password=password is None, enabled_given=enabled_given)

    def _sign_in_type(self, raw: str, sign_in_name: str | None, problems: list[str]) -> str | None:
        text = raw.strip()
        if not text:
            if sign_in_name is None:
                return None
            # Unstated: an address signs in by email, anything else by user name.
            return "emailAddress" if "@" in sign_in_name else "userName"
        known = SIGN_IN_TYPES.get(text.lower())
        if known is None:
            problems.append(f"signInType '{text}' is not emailAddress (email) or userName (username)")
        return known

    def _account_enabled(self, cells: dict[str, str], problems: list[str]) -> bool:
        block = self._bool(cells, "blockSignIn", None, problems)
        enabled = self._bool(cells, "accountEnabled", None, problems)
        if block is not None and enabled is not None and block == enabled:
            problems.append("blockSignIn and accountEnabled disagree")
        if block is not None:
            return not block
        return True if enabled is None else enabled

    @staticmethod
    def _bool(cells: dict[str, str], column: str, default: bool | None, problems: list[str]) -> Any:
        value = cells.get(column, "").strip()
        if not value:
            return default
        try:
            return parse_bool(value)
        except ValueError:
            problems.append(f"{column} '{value}' is not Yes/No (true/false, 1/0)")
            return default

    @staticmethod
    def _check_length(column: str, value: str, problems: list[str]) -> None:
        limit = rules.PROPERTY_MAX_LENGTHS.get(column)
        if limit is not None and len(value) > limit:
            problems.append(f"{column} is {len(value)} characters long; Entra allows {limit}")

    def _extension(self, name: str, value: str, body: dict[str, Any], problems: list[str]) -> None:
        if name.lower().startswith("ext."):
            if self._ext_prefix is None:
                problems.append(f"column '{name}' needs the extensions app id (--extensions-app-id) "
                                "to become extension_<appId>_<name>")
                return
            attribute = name[4:]
            full = self._ext_prefix + attribute
        else:
            full = name
        parsed = rules.parse_extension_name(full)
        if parsed is None:
            problems.append(f"column '{name}' is not a custom attribute name (extension_<appId without hyphens>_<name>)")
            return
        if self._ext_prefix is not None and not full.lower().startswith(self._ext_prefix):
            problems.append(f"column '{name}' belongs to another app than the extensions app {self.options.extensions_app_id}")
            return
        if value == "":
            return
        if len(value) > rules.EXTENSION_VALUE_MAX_LENGTH:
            problems.append(f"{name} is longer than {rules.EXTENSION_VALUE_MAX_LENGTH} characters")
        lowered = value.strip().lower()
        body[full] = True if lowered == "true" else False if lowered == "false" else value

    def sent_marker(self, plan: CreatePlan) -> bool:  # type: ignore[override]
        return plan.generates_password

    # ---- sending ---------------------------------------------------------------------------

    def create_call(self, plan: CreatePlan) -> GraphCall:
        return GraphCall("POST", "/users", body=plan.with_password().body, headers={"Content-Type": "application/json"})

    def lookup_call(self, plan: CreatePlan) -> GraphCall:
        select = "$select=id,userPrincipalName,createdDateTime,identities"
        if plan.sign_in_name:
            value = plan.sign_in_name.replace("'", "''")
            issuer = self.options.domain.replace("'", "''")
            flt = f"identities/any(c:c/issuerAssignedId eq '{value}' and c/issuer eq '{issuer}')"
        else:
            flt = f"userPrincipalName eq '{(plan.upn or '').replace(chr(39), chr(39) * 2)}'"
        return GraphCall("GET", f"/users?$filter={quote(flt, safe='')}&{select}")

    async def _send(self, calls: list[GraphCall], session: Session) -> list[GraphResult]:
        if len(calls) == 1:
            return [await session.client.request(calls[0])]
        return await session.client.batch(calls)

    async def execute(self, plans: list[CreatePlan], session: Session, *, resends: int = 3) -> Executed:  # type: ignore[override]
        sent_at = session.clock()
        since = _on_server_clock(sent_at, session)
        results = await self._send([self.create_call(p) for p in plans], session)
        done = Executed()
        conflicts: list[tuple[CreatePlan, GraphResult]] = []
        unanswered: list[CreatePlan] = []
        for plan, result in zip(plans, results):
            if result.status == 201 and isinstance(result.body, dict):
                self._created(plan, str(result.body.get("id", "")), result, done)
            elif result.ambiguous or result.status == 0:
                plan.maybe_applied_at = plan.maybe_applied_at or sent_at
                plan.applied_since = plan.applied_since or since
                unanswered.append(plan)
            elif result.status in (401, 403):
                # Consent withdrawn or credentials revoked mid-run: every row would fail the
                # same way. Stop; the row stays `sent` and `resume` reconciles it.
                done.unresolved.append(plan.row)
                done.stop = done.stop or GraphRequestFailed(
                    "Creating customers", status=result.status, code=result.error_code, detail=result.error_message)
            elif _is_conflict(result):
                conflicts.append((plan, result))
            else:
                done.outcomes.append(_failed(plan, result))
        if unanswered or conflicts:
            await self._resolve(unanswered, conflicts, since, session, done, resends=resends)
        return done

    async def reconcile(self, items: list[tuple[CreatePlan, SentRow]], session: Session) -> Executed:  # type: ignore[override]
        """Rows sent by an interrupted run: look each customer up before anything is re-sent."""
        plans = []
        for plan, sent in items:
            plan.maybe_applied_at = sent.sent_at
            if sent.clock_offset is not None:  # Graph's clock as it was when the row left
                plan.applied_since = (sent.sent_at + sent.clock_offset, CLOCK_SKEW_SECONDS)
            # A password generated by the interrupted process is gone unless it reached the file.
            plan.password_lost = sent.generated_password
            plans.append(plan)
        on_file = session.passwords_on_file({p.row for p in plans})
        done = Executed()
        for plan in plans:
            if plan.row in on_file:
                plan.password_lost = False
        await self._resolve(plans, [], _on_server_clock(min(p.maybe_applied_at or 0.0 for p in plans), session),
                            session, done, resends=3,
                            on_file=on_file)
        return done

    def _created(self, plan: CreatePlan, object_id: str, result: GraphResult, done: Executed, note: str = "") -> None:
        done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, object_id, 201, error_message=note,
                                     attempts=result.attempts))
        if plan.generated_password is not None:
            done.passwords.append(plan.password_line(object_id))

    async def _resolve(self, unanswered: list[CreatePlan], conflicts: list[tuple[CreatePlan, GraphResult]],
                       since: tuple[float, float], session: Session, done: Executed, *, resends: int,
                       on_file: set[int] | None = None) -> None:
        """A create whose answer was lost, or a conflict that our own lost answer may have
        caused: look the customer up and decide from what the directory says."""
        plans = unanswered + [p for p, _ in conflicts]
        answers = {id(p): r for p, r in conflicts}
        lookups = await self._send([self.lookup_call(p) for p in plans], session)
        again: list[CreatePlan] = []
        for plan, lookup in zip(plans, lookups):
            found = _found(lookup)
            original = answers.get(id(plan))
            # Only a request that may have been applied unseen can have made this customer;
            # a first-attempt conflict of a row never sent before did not.
            ours_possible = plan.maybe_applied_at is not None or (original is not None and original.attempts > 1)
            if plan.applied_since is not None:
                since_sent = plan.applied_since
            elif plan.maybe_applied_at is not None:  # journaled before Graph's clock was known
                since_sent = _on_server_clock(plan.maybe_applied_at, session)
            else:
                since_sent = since
            if lookup.status != 200:
                if ours_possible:
                    done.unresolved.append(plan.row)
                else:
                    done.outcomes.append(_failed(plan, original or lookup, "the customer already exists and looking "
                                                                          "it up failed: "))
            elif found is not None and ours_possible and _created_since(found, since_sent):
                if plan.password_lost and not (on_file and plan.row in on_file):
                    await self._replace_lost_password(plan, str(found["id"]), session, done)
                elif plan.password_lost or (on_file and plan.row in on_file):
                    done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, str(found["id"]), 201,
                                                 attempts=(original or lookup).attempts))
                else:
                    self._created(plan, str(found["id"]), original or lookup, done)
            elif found is not None:
                await self._existing(plan, found, done, session)
            elif original is not None and not ours_possible:
                # The conflict is on another property (mail): report Graph's answer.
                done.outcomes.append(_failed(plan, original))
            else:
                again.append(plan)
        if again and resends > 0:
            done.merge(await self.execute(again, session, resends=resends - 1))
        else:
            done.unresolved += [plan.row for plan in again]

    async def _existing(self, plan: CreatePlan, found: dict[str, Any], done: Executed, session: Session) -> None:
        object_id = str(found.get("id", ""))
        policy = self.options.on_existing
        if policy == "skip":
            done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, object_id, 400, "ObjectConflict",
                                         "the customer already exists; skipped (--on-existing skip)"))
            return
        if policy == "update":
            # Only what the row says: a blank "block sign in" leaves a blocked customer blocked.
            changes = {k: v for k, v in plan.body.items()
                       if k not in ("identities", "passwordProfile", "passwordPolicies", "userPrincipalName", "mailNickname")
                       and (k != "accountEnabled" or plan.enabled_given)}
            result = await session.client.request(GraphCall("PATCH", f"/users/{object_id}", body=changes,
                                                            headers={"Content-Type": "application/json"}))
            if result.status == 204:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.UPDATED, object_id, 204,
                                             error_message="the customer already existed; its profile was updated "
                                                           "(--on-existing update), its password left as it was",
                                             attempts=result.attempts))
            else:
                done.outcomes.append(_failed(plan, result, "the customer already exists and updating it failed: ",
                                             object_id))
            return
        done.outcomes.append(Outcome(plan.row, plan.key, Status.FAILED, object_id, 400, "ObjectConflict",
                                     f"a customer with this sign-in name already exists (object id {object_id}); "
                                     "use --on-existing skip or update"))

    async def _replace_lost_password(self, plan: CreatePlan, object_id: str, session: Session, done: Executed) -> None:
        """The customer exists but the run died before its password reached passwords.csv:
        set a fresh one so that the file tells the truth, or say that a reset is needed."""
        password = generate_password()
        force = bool(plan.body["passwordProfile"].get("forceChangePasswordNextSignIn", True))
        result = await session.client.request(GraphCall(
            "PATCH", f"/users/{object_id}", headers={"Content-Type": "application/json"},
            body={"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force}}))
        if result.status == 204:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, object_id, 201,
                                         error_message="created before the interruption; its first password was "
                                                       "lost, so a new one was set (in passwords.csv)",
                                         attempts=result.attempts))
            done.passwords.append((plan.row, plan.sign_in_name or plan.upn or "", object_id, password))
        else:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, object_id, result.status or None,
                                         result.error_code or "PasswordResetNeeded",
                                         "created before the interruption, but its generated password was lost and "
                                         f"setting a new one failed ({result.error_message}); reset its password",
                                         attempts=result.attempts))


def _is_conflict(result: GraphResult) -> bool:
    if result.status != 400 or not isinstance(result.body, dict):
        return False
    error = result.body.get("error") or {}
    details = error.get("details") or []
    return any(isinstance(d, dict) and d.get("code") == "ObjectConflict" for d in details) or \
        "already exists" in str(error.get("message", ""))


def _found(result: GraphResult) -> dict[str, Any] | None:
    if result.status != 200 or not isinstance(result.body, dict):
        return None
    values = result.body.get("value") or []
    return values[0] if values else None


def _on_server_clock(sent_at: float, session: Session) -> tuple[float, float]:
    """A local send time on Graph's clock, and the margin to allow around it."""
    offset = getattr(session.client, "server_clock_offset", None)
    if offset is None:
        return sent_at, UNKNOWN_SKEW_SECONDS
    return sent_at + offset, CLOCK_SKEW_SECONDS


def _created_since(found: dict[str, Any], since: tuple[float, float]) -> bool:
    created = found.get("createdDateTime")
    if not created:
        return False
    try:
        moment = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    sent_at, margin = since
    return moment >= sent_at - margin


def _failed(plan: CreatePlan, result: GraphResult, prefix: str = "", object_id: str = "") -> Outcome:
    code = result.error_code or ("NoAnswer" if result.status == 0 else "")
    message = result.error_message or ("no answer from Graph" if result.status == 0 else f"HTTP {result.status}")
    return Outcome(plan.row, plan.key, Status.FAILED, object_id, result.status or None, code, prefix + message,
                   result.attempts)
