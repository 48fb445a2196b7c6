"""`create`: one customer account per row, `POST /users` with a sign-in identity.

Rows become plans in batch/verbs/create_rows.py (a chunk at a time in create_chunk.py). A
plan carries the request body (with the password, generated when the cell is blank, when the
row is sent); the password leaves this module only towards Graph and towards passwords.csv.

Exactly once: identities and UPNs are unique in the directory, so a create can never make a
second customer; but an answer can be lost (a dropped connection, a 504, a crash). A row in
that state is *reconciled*: the customer is looked up, and if it was created after the row
was sent it is ours (reported `created`), otherwise it belonged to someone before us and
`--on-existing` decides.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from batch.errors import ConfigError, GraphRequestFailed
from batch.graph import GraphCall, GraphResult
from batch.graph.batching import MAX_BATCH
from batch.io.columns import CREATE_COLUMNS, PORTAL_CREATE_HEADER
from batch.io.csvio import Row
from batch.outcome import Outcome, SentRow, Status
from batch.passwords import generate_password
from batch.verbs.answers import conflict_on, is_conflict, send
from batch.verbs.base import Executed, PlanLine, Rejected, Session, Verb
from batch.verbs.create_chunk import ChunkedRows
from batch.verbs.create_rows import CreateOptions, CreatePlan
from batch.verbs.jit import checked as jit_checked
from batch.verbs.jit import find_flag, social_only
from batch.verbs.lag import found_nothing, not_found, until_seen, waiting_for
from batch.verbs.lookups import SELECT, UserKey, found_users, identity_filter, lookup_call
from batch.verbs.permissions import CREATE, READ, PermissionNeeds
from batch.verbs.plans import changes_of, counted, line_for
from batch.verbs.spec import Option, VerbSettings, VerbSpec
from batch.verbs.update import NEEDS as UPDATE_NEEDS

__all__ = ["SPEC", "CreateOptions", "CreatePlan", "CreateVerb"]

NEEDS = PermissionNeeds(read=READ, write=(CREATE,))
# A customer created before the row was sent cannot be ours. Send times are moved onto
# Graph's clock with the `Date` header's offset (1 s resolution); the margin covers that,
# and clock skew when no Date header was seen.
CLOCK_SKEW_SECONDS = 5.0
UNKNOWN_SKEW_SECONDS = 30.0


# How a row whose customer exists fails (with --on-existing fail); the run's summary counts them.
EXISTS_MESSAGE = "a customer with this sign-in name already exists"


class CreateVerb(Verb[CreatePlan]):
    name = "create"
    columns = CREATE_COLUMNS

    def __init__(self, options: CreateOptions, jit_flag: str | None = None) -> None:
        self.options = options
        # --jit-migration: the flag's Graph property (batch/verbs/jit.py); its generated
        # passwords are locks that nobody is given, never written anywhere.
        self.jit_flag = jit_flag
        self.needs = NEEDS
        if options.on_existing == "update":
            # Updating existing customers needs what `update` needs for the columns create
            # sends (GRAPH.md §5, §10): its write, and sign-in blocking.
            self.needs = NEEDS.with_writes(*UPDATE_NEEDS.write, *UPDATE_NEEDS.by_column["accountEnabled"])
        self.rows = ChunkedRows(options)

    def validate(self, row: Row) -> CreatePlan | Rejected:
        return self._jit(self.rows.read(row))

    def validate_chunk(self, rows: Sequence[Row]) -> list[CreatePlan | Rejected]:
        if self.jit_flag is None:
            return self.rows.read_chunk(rows)
        return [self._jit(read) for read in self.rows.read_chunk(rows)]

    def rejections(self, rows: Sequence[Row]) -> list[Rejected]:
        if self.jit_flag is not None:
            return [read for read in self.validate_chunk(rows) if isinstance(read, Rejected)]
        return self.rows.rejections(rows)

    def _jit(self, read: CreatePlan | Rejected) -> CreatePlan | Rejected:
        if self.jit_flag is None or isinstance(read, Rejected):
            return read
        return jit_checked(read, self.jit_flag)

    def sent_marker(self, plan: CreatePlan) -> bool:
        # A JIT customer's password is lost by design: resume must not "replace" it.
        return plan.generates_password and self.jit_flag is None

    # ---- sending ---------------------------------------------------------------------------

    def create_call(self, plan: CreatePlan) -> GraphCall:
        body = plan.with_password().body
        if self.jit_flag is not None and not social_only(plan):
            # Only in the create itself: a customer that already exists (--on-existing update)
            # keeps its password and flag.
            body = {**body, self.jit_flag: True}
        return GraphCall("POST", "/users", body=body, headers={"Content-Type": "application/json"})

    def lookup_call(self, plan: CreatePlan) -> GraphCall:
        select = "$select=id,userPrincipalName,createdDateTime,identities"
        if plan.sign_in_name:
            flt = identity_filter(self.options.domain, plan.sign_in_name)
        elif plan.federated:  # a federated-only customer is found by its identity (identities.py)
            flt = identity_filter(*plan.federated[0])
        else:
            flt = f"userPrincipalName eq '{(plan.upn or '').replace(chr(39), chr(39) * 2)}'"
        return GraphCall("GET", f"/users?$filter={quote(flt, safe='')}&{select}")

    async def execute(self, plans: list[CreatePlan], session: Session, *, resends: int = 3) -> Executed:
        sent_at = session.clock()
        since = _on_server_clock(sent_at, session)
        results = await send([self.create_call(p) for p in plans], session)
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
            elif is_conflict(result):
                conflicts.append((plan, result))
            else:
                done.outcomes.append(_failed(plan, result))
        if unanswered or conflicts:
            await self._resolve(unanswered, conflicts, since, session, done, resends=resends)
        return done

    async def reconcile(self, items: list[tuple[CreatePlan, SentRow]], session: Session) -> Executed:
        """Rows sent by an interrupted run: look each customer up before anything is re-sent."""
        plans = []
        for plan, sent in items:
            plan.maybe_applied_at = sent.sent_at
            if sent.clock_offset is not None:  # Graph's clock as it was when the row left
                plan.applied_since = (sent.sent_at + sent.clock_offset, CLOCK_SKEW_SECONDS)
            # A password generated by the interrupted process is gone unless it reached the file.
            plan.password_lost = sent.generated_password and self.jit_flag is None
            plans.append(plan)
        on_file = session.passwords_on_file({p.row for p in plans})
        done = Executed()
        for plan in plans:
            if plan.row in on_file:
                plan.password_lost, plan.password_on_file = False, True
        await self._resolve(plans, [], _on_server_clock(min(p.maybe_applied_at or 0.0 for p in plans), session),
                            session, done, resends=3)
        return done

    async def plan(self, plans: list[CreatePlan], session: Session) -> Executed:
        """A dry run: look up each row's sign-in name and UPN (batched), as a conflict would
        make a run do, and apply --on-existing to the customer found. No password is made."""
        keys: list[UserKey] = []
        asked: list[list[tuple[str, int]]] = []  # per plan: (which key, its index in `keys`)
        for plan in plans:
            mine = []
            if plan.sign_in_name:
                mine.append(("sign-in name", len(keys)))
                keys.append(UserKey("signin", plan.sign_in_name))
            if plan.upn:
                mine.append(("UPN", len(keys)))
                keys.append(UserKey("upn", plan.upn))
            for issuer, assigned in plan.federated:
                mine.append(("federated identity", len(keys)))
                keys.append(UserKey("federated", assigned, issuer))
            asked.append(mine)
        answers = await self._absent_or_looked_up(keys, asked, self._update_select(plans), session)
        done = Executed()
        for plan, mine in zip(plans, asked):
            holder: tuple[str, dict[str, Any]] | None = None
            for what, index in mine:
                answer = answers[index]
                if answer is None:  # no customer can hold this key (the directory's index)
                    continue
                users = found_users(answer)
                if users is None:
                    self._lookup_failed(plan, answer, done)
                    break
                if users and holder is None:
                    key = keys[index]
                    holder = (f"{what} {key.issuer}/{key.value}" if key.kind == "federated" else f"{what} {key.value}", users[0])
            else:
                done.would(self._verdict(plan, holder))
        return done

    async def _absent_or_looked_up(self, keys: list[UserKey], asked: list[list[tuple[str, int]]], more: str,
                                   session: Session) -> list[GraphResult | None]:
        """The lookup of each key, or None for a key that the directory's digest index
        (batch/verbs/absence.py) proves absent: that one is not asked. Without a ready index
        every key is asked at once, as before; with one, the few present keys of a larger
        group (pipeline.py) go ≤ MAX_BATCH at a time, so that no more lookups are in flight."""
        def call(key: UserKey) -> GraphCall:
            return GraphCall("GET", lookup_call(key, self.options.domain).url + more)

        index = session.directory_keys
        if index is None or not index.ready:
            if index is not None:
                index.rows_planned += len(asked)
            return list(await send([call(key) for key in keys], session))
        absent = index.absent([key.value for key in keys])
        index.rows_planned += len(asked)
        index.rows_spared += sum(1 for mine in asked if all(absent[at] for _, at in mine))
        wanted = [at for at, gone in enumerate(absent) if not gone]
        answers: list[GraphResult | None] = [None] * len(keys)
        for first in range(0, len(wanted), MAX_BATCH):
            part = wanted[first:first + MAX_BATCH]
            for at, answer in zip(part, await send([call(keys[at]) for at in part], session)):
                answers[at] = answer
        return answers

    def _update_select(self, plans: list[CreatePlan]) -> str:
        """With --on-existing update, the lookups read what an update would compare."""
        if self.options.on_existing != "update":
            return ""
        wanted = sorted({k for p in plans for k in self._updatable(p)} - set(SELECT.split(",")))
        return "".join("," + name for name in wanted)

    def _updatable(self, plan: CreatePlan) -> dict[str, Any]:
        """What --on-existing update sends to a customer that exists: only what the row says
        (a blank "block sign in" leaves a blocked customer blocked)."""
        return {k: v for k, v in plan.body.items()
                if k not in ("identities", "passwordProfile", "passwordPolicies", "userPrincipalName", "mailNickname")
                and (k != "accountEnabled" or plan.enabled_given)}

    def _lookup_failed(self, plan: CreatePlan, answer: GraphResult, done: Executed) -> None:
        if answer.status in (401, 403):
            done.unresolved.append(plan.row)
            done.stop = done.stop or GraphRequestFailed("Creating customers", status=answer.status,
                                                        code=answer.error_code, detail=answer.error_message)
            return
        message = answer.error_message or ("no answer from Graph" if answer.status == 0 else f"HTTP {answer.status}")
        done.would(line_for(plan.row, plan.key, "fail", None, f"looking the customer up failed: {message}"))

    def _verdict(self, plan: CreatePlan, holder: tuple[str, dict[str, Any]] | None) -> PlanLine:
        if holder is None:
            return line_for(plan.row, plan.key, "create", None,
                            _free(bool(plan.sign_in_name), bool(plan.upn), bool(plan.federated)))
        what, user = holder
        exists = f"exists: {what} is taken by {user.get('id', '')}"
        policy = self.options.on_existing
        if policy == "skip":
            return line_for(plan.row, plan.key, "skip", user, f"{exists}; --on-existing skip")
        if policy == "update":
            body = {k: v for k, v in self._updatable(plan).items() if user.get(k) != v}
            changes = changes_of(body, user, plan.columns)
            differ = counted(changes) if changes else "nothing differs"
            return line_for(plan.row, plan.key, "update", user, f"{exists}; --on-existing update: {differ}", changes)
        return line_for(plan.row, plan.key, "fail", user, f"{exists}; use --on-existing skip or update")

    def _created(self, plan: CreatePlan, object_id: str, result: GraphResult, done: Executed, note: str = "") -> None:
        done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, object_id, 201, error_message=note or plan.note,
                                     attempts=result.attempts))
        if plan.generated_password is not None and self.jit_flag is None:
            done.passwords.append(plan.password_line(object_id))

    async def _resolve(self, unanswered: list[CreatePlan], conflicts: list[tuple[CreatePlan, GraphResult]],
                       since: tuple[float, float], session: Session, done: Executed, *, resends: int) -> None:
        """A create whose answer was lost, or a conflict that our own lost answer may have
        caused: look the customer up and decide from what the directory says.

        Right after such a write an empty lookup proves nothing (batch/verbs/lag.py): the
        customer may exist on the replica that took the POST and not yet on the one that
        reads. So when our own request may have made it, or a conflict on the very key we
        look up says someone holds it, the lookup is asked again within the replication
        waits before the row is re-sent (or, for a conflict, failed)."""
        plans = unanswered + [p for p, _ in conflicts]
        answers = {id(p): r for p, r in conflicts}

        def expected(index: int, lookup: GraphResult) -> bool:
            plan = plans[index]
            original = answers.get(id(plan))
            held = original is not None and conflict_on(original, "identities" if plan.sign_in_name or plan.federated
                                                        else "userPrincipalName")
            ours = _ours_possible(plan, original)
            # A conflict after a request of ours may have landed proves a holder exists even
            # when Graph names another property (mail's proxy address) or none.
            return found_nothing(lookup) and (held or (ours and (original is not None or
                                                                  waiting_for(plan.maybe_applied_at, session))))

        lookups = await until_seen([self.lookup_call(p) for p in plans], session, expected)
        again: list[CreatePlan] = []
        for plan, lookup in zip(plans, lookups):
            found = _found(lookup)
            original = answers.get(id(plan))
            ours_possible = _ours_possible(plan, original)
            if lookup.status != 200:
                if ours_possible:
                    done.unresolved.append(plan.row)
                else:
                    done.outcomes.append(_failed(plan, original or lookup, "the customer already exists and looking "
                                                                          "it up failed: "))
            elif found is not None and ours_possible and _created_since(found, self._since_sent(plan, since, session)):
                await self._ours(plan, found, original or lookup, session, done)
            elif found is not None:
                await self._existing(plan, found, done, session)
            elif original is not None and not ours_possible:
                # The conflict is on another property (mail), or its holder never became
                # visible: report Graph's answer.
                done.outcomes.append(_failed(plan, original))
            else:
                again.append(plan)
        if again and resends > 0:
            done.merge(await self.execute(again, session, resends=resends - 1))
        else:
            done.unresolved += [plan.row for plan in again]

    @staticmethod
    def _since_sent(plan: CreatePlan, since: tuple[float, float], session: Session) -> tuple[float, float]:
        """When this plan's request may first have been applied, on Graph's clock, with its margin."""
        if plan.applied_since is not None:
            return plan.applied_since
        if plan.maybe_applied_at is not None:  # journaled before Graph's clock was known
            return _on_server_clock(plan.maybe_applied_at, session)
        return since

    async def _ours(self, plan: CreatePlan, found: dict[str, Any], answer: GraphResult, session: Session,
                    done: Executed) -> None:
        """A customer our own request made: created, with the password that reached it. After
        a resume that is the earlier process's password: on file (nothing to write, even when a
        re-send of this plan's new password conflicted), or lost (replaced)."""
        if plan.password_lost:
            elsewhere = session.passwords_elsewhere(str(found["id"]), plan.sign_in_name or plan.upn or "")
            if elsewhere is not None:
                done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, str(found["id"]), 201,
                                             error_message=f"created by the run in {elsewhere}; its password is in "
                                                           "that folder's passwords.csv",
                                             attempts=answer.attempts))
            else:
                await self._replace_lost_password(plan, str(found["id"]), session, done)
        elif plan.password_on_file:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, str(found["id"]), 201,
                                         attempts=answer.attempts))
        else:
            self._created(plan, str(found["id"]), answer, done)

    async def _existing(self, plan: CreatePlan, found: dict[str, Any], done: Executed, session: Session) -> None:
        object_id = str(found.get("id", ""))
        policy = self.options.on_existing
        if policy == "skip":
            done.outcomes.append(Outcome(plan.row, plan.key, Status.SKIPPED, object_id, 400, "ObjectConflict",
                                         "the customer already exists; skipped (--on-existing skip)"))
            return
        if policy == "update":
            changes = self._updatable(plan)
            # Just found, so a 404 is a replica that does not show it yet (batch/verbs/lag.py).
            [result] = await until_seen([GraphCall("PATCH", f"/users/{object_id}", body=changes,
                                                   headers={"Content-Type": "application/json"})],
                                        session, lambda _i, answer: not_found(answer))
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
                                     f"{EXISTS_MESSAGE} (object id {object_id}); "
                                     "to skip existing customers when running a file again, use --on-existing skip "
                                     "(or update, to update their profiles)"))

    async def _replace_lost_password(self, plan: CreatePlan, object_id: str, session: Session, done: Executed) -> None:
        """The customer exists but the run died before its password reached passwords.csv:
        set a fresh one so that the file tells the truth, or say that a reset is needed."""
        password = generate_password()
        force = bool(plan.body["passwordProfile"].get("forceChangePasswordNextSignIn", True))
        # The lookup just found it: a 404 is a replica that does not show it yet (batch/verbs/lag.py).
        [result] = await until_seen([GraphCall(
            "PATCH", f"/users/{object_id}", headers={"Content-Type": "application/json"},
            body={"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force}})],
            session, lambda _i, answer: not_found(answer))
        if result.status == 204:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, object_id, 201,
                                         error_message="created before the interruption; its first password was "
                                                       "lost, so a new one was set (in passwords.csv)",
                                         attempts=result.attempts))
            done.passwords.append(plan.password_line(object_id, password))
        else:
            done.outcomes.append(Outcome(plan.row, plan.key, Status.CREATED, object_id, result.status or None,
                                         result.error_code or "PasswordResetNeeded",
                                         "created before the interruption, but its generated password was lost and "
                                         f"setting a new one failed ({result.error_message}); reset its password",
                                         attempts=result.attempts))


def _ours_possible(plan: CreatePlan, original: GraphResult | None) -> bool:
    """Only a request that may have been applied unseen can have made this customer; a
    first-attempt conflict of a row never sent before did not."""
    return plan.maybe_applied_at is not None or (original is not None and original.attempts > 1)


def _found(result: GraphResult) -> dict[str, Any] | None:
    if result.status != 200 or not isinstance(result.body, dict):
        return None
    values = result.body.get("value") or []
    return values[0] if values else None


@functools.cache
def _free(sign_in_name: bool, upn: bool, federated: bool) -> str:
    """A create's reason when no customer holds any of the row's keys (one string per shape)."""
    free = " and ".join(what for what, given in (("sign-in name", sign_in_name), ("UPN", upn),
                                                 ("federated identity", federated)) if given)
    return f"no customer has this {free}"


def _on_server_clock(sent_at: float, session: Session) -> tuple[float, float]:
    """A local send time on Graph's clock, and the margin to allow around it."""
    offset = session.client.server_clock_offset
    if offset is None:
        return sent_at, UNKNOWN_SKEW_SECONDS
    return sent_at + offset, CLOCK_SKEW_SECONDS


def _created_since(found: dict[str, Any], since: tuple[float, float]) -> bool:
    created = found.get("createdDateTime")
    if not created:
        return False
    try:
        moment = datetime.fromisoformat(str(created)).timestamp()
    except ValueError:
        return False
    sent_at, margin = since
    return moment >= sent_at - margin


def _failed(plan: CreatePlan, result: GraphResult, prefix: str = "", object_id: str = "") -> Outcome:
    code = result.error_code or ("NoAnswer" if result.status == 0 else "")
    message = result.error_message or ("no answer from Graph" if result.status == 0 else f"HTTP {result.status}")
    return Outcome(plan.row, plan.key, Status.FAILED, object_id, result.status or None, code, prefix + message,
                   result.attempts)


EPILOG = """\
examples:
  entra-batch create customers.csv                      create on the local emulator (no tenant configured)
  entra-batch create customers.csv --dry-run            look up each row, write nothing; plan.csv says what would happen
  entra-batch create customers.csv --on-existing skip   a second run creates nothing twice
  entra-batch create legacy.csv --profile prod --priority low --out-dir runs/migration
  entra-batch create legacy.csv --jit-migration requiresMigration   passwords unknown: migrated at first sign-in
  entra-batch create legacy.xlsx --sheet Customers      an Excel workbook (also .jsonl and .parquet)
  entra-batch create old-tenant-export.csv --legacy-id-attribute legacyId   another tenant's export

The file: one customer per row; CSV, or by its suffix .xlsx, .jsonl/.ndjson or .parquet.
Columns (headers match case-insensitively, ignoring spaces, _ and -): signInType
(emailAddress/email or userName/username; blank: guessed from the value), signInName,
displayName (required), givenName, surname, blockSignIn (Yes/No), usageLocation (ISO code),
mail, password (blank: a 16-character one is generated), forceChangePasswordNextSignIn;
federatedIssuer + federatedId (a social identity such as google.com; numbered 2 to 5 for more;
a customer with only social identities gets no password); custom attributes as ext.<name>, the
attribute's bare name or extension_<appId>_<name>, checked against their declared types. An
export of another tenant works as it is (its signIn.* columns; its id and foreign UPN are
ignored). The admin center's bulk-create template works as downloaded. `entra-batch template
create` writes an empty one.

Writes a run folder (runs/<UTC time>-create/ or --out-dir): results.csv (one line per row:
row,key,status,object_id,http_status,error_code,error_message,attempts), passwords.csv (mode
0600, generated passwords only), summary.json, and the journal that `entra-batch resume`
uses to finish an interrupted run without creating anyone twice.
With --jit-migration ATTRIBUTE (just-in-time password migration) no passwords.csv is written:
each customer's random password is never stored, rows must not bring a password, and the
tenant must have ATTRIBUTE as a Boolean custom attribute read by an onPasswordSubmit listener's
migration handler (`entra-batch export --summary --jit-migration ATTRIBUTE` shows the progress).
Exit status: 0 all rows done, 1 some rows invalid or failed, 2 usage or configuration error
(nothing sent), 3 aborted (authentication, missing permission; resumable), 130 interrupted
(resumable).
"""


def build(settings: VerbSettings) -> CreateVerb:
    flag = None
    if settings.jit_migration is not None:
        if settings.attributes is None:
            raise ConfigError(f"--jit-migration {settings.jit_migration}: the tenant's custom attributes are unknown; "
                              "the flag attribute cannot be checked")
        flag = find_flag(settings.attributes, settings.jit_migration).property
    return CreateVerb(CreateOptions(domain=settings.domain or "", attributes=settings.attributes,
                                    extensions_app_id=settings.extensions_app_id or (
                                        settings.attributes.app_id if settings.attributes else None),
                                    on_existing=settings.on_existing,
                                    # JIT customers keep the password they migrate (batch/verbs/jit.py).
                                    force_change_generated=settings.force_change_generated and flag is None),
                      jit_flag=flag)


SPEC = VerbSpec(
    name="create",
    summary="create customer accounts from a CSV file",
    description="Create one customer account per CSV row through Microsoft Graph.",
    epilog=EPILOG,
    columns=CREATE_COLUMNS,
    portal_header=PORTAL_CREATE_HEADER,
    options=(
        Option("--on-existing", "on_existing",
               "when the sign-in name or UPN already exists: fail the row (default), skip it, "
               "or update that customer's profile", choices=("fail", "skip", "update"), default="fail"),
        Option("--no-force-change", "no_force_change",
               "generated passwords need not be changed at first sign-in (default: they must)", store_true=True),
        Option("--jit-migration", "jit_migration",
               "just-in-time password migration: ATTRIBUTE is the tenant's Boolean custom attribute that the "
               "onPasswordSubmit listener's migration handler reads (e.g. requiresMigration). Each customer gets "
               "an unguessable password nobody receives (no passwords.csv) and the flag set to true; the legacy "
               "password is checked at first sign-in. Rows must not bring a password", metavar="ATTRIBUTE"),
        Option("--legacy-id-attribute", "legacy_id_attribute",
               "keep an export's object id (its id or objectId column, ignored otherwise) in this String custom "
               "attribute, e.g. legacyId: the customer's id in the system the file comes from", metavar="ATTRIBUTE"),
    ),
    confirm="never",
    build=build,
)
