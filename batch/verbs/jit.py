"""`create --jit-migration ATTRIBUTE`: customers whose legacy passwords are unknown, created
for Entra External ID's just-in-time password migration.

How the tenant does it (entra-docs external-id/customers/how-to-migrate-passwords-just-in-time.md,
"1.2 Generate random strong password", "1.3 Create users with migration property", and "How the
JIT migration process works"): each customer is created with a unique strong random password
that nobody is given, `forceChangePasswordNextSignIn: false`, and a Boolean custom attribute
(the flag, e.g. `extension_<appId>_requiresMigration`) set to `true`. At the first sign-in the
password typed does not match, so an `onPasswordSubmitListener` whose handler is an
`onPasswordMigrationCustomExtensionHandler` (migrationPropertyId = the flag; Graph v1.0
resources/onpasswordmigrationcustomextensionhandler.md) calls the custom authentication
extension, which checks the password against the legacy system; its `MigratePassword` answer
makes Entra store that password and set the flag to `false`. The tool never clears the flag.

So the generated password is a lock, not a secret to hand over: it is never written anywhere
(no passwords.csv, no journal marker that would make `resume` "replace a lost password"), and a
row that brings its own password is refused: with JIT the legacy system checks the password at
first sign-in. A row's own cell for the flag is refused unless blank or true (a customer created
with `false` would never be migrated and could never sign in); the flag itself is only sent in
the `POST /users` body, never to a customer that already existed (`--on-existing update`).

`check_jit_start` runs before anything is sent (dry runs too): the attribute exists and is a
Boolean, and whether a password-submit listener reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batch.errors import ConfigError
from batch.graph import GraphCall, GraphClient, GraphResult
from batch.verbs.attributes import Attribute, AttributeCatalog
from batch.verbs.base import Rejected
from batch.verbs.create_rows import CreatePlan

FLAG_TYPE = "Boolean"
PASSWORD_SUBMIT = "#microsoft.graph.onPasswordSubmitListener"
MIGRATION_HANDLER = "#microsoft.graph.onPasswordMigrationCustomExtensionHandler"
PASSWORD_REFUSED = ("password: with --jit-migration the customer's legacy password is checked by the custom "
                    "authentication extension at first sign-in; leave this cell blank (or remove the password column). "
                    "retry.csv has this row with the cell emptied")
SOCIAL_NOTE = ("signs in only with a federated identity: no password to migrate, created without the "
               "--jit-migration flag")
FORCE_REFUSED = ("forceChangePasswordNextSignIn: with --jit-migration customers keep the password they migrate "
                 "(Entra creates them with false); leave this cell blank or No")


@dataclass(frozen=True)
class JitStart:
    """What the start check found: the flag attribute, the catalog it came from, and notes for
    the run's summary (whether a listener reads the flag)."""

    attribute: Attribute
    catalog: AttributeCatalog
    notes: tuple[str, ...]


async def check_jit_start(client: GraphClient, name: str, catalog: AttributeCatalog) -> JitStart:
    """The flag attribute `name` exists in the tenant and is a Boolean (else `ConfigError`,
    exit 2, naming the tenant's attributes), and a note on whether an onPasswordSubmit
    listener's migration handler reads it (GET /identity/authenticationEventListeners,
    EventListener.Read.All: identitycontainer-list-authenticationeventlisteners.md).

    `catalog`: the run's custom attributes (batch/run/attributes.py reads them; a run with
    --jit-migration stops before sending when they cannot be read)."""
    attribute = find_flag(catalog, name)
    answer = await client.request(GraphCall("GET", "/identity/authenticationEventListeners"))
    return JitStart(attribute, catalog, (listener_note(answer, attribute),))


def find_flag(catalog: AttributeCatalog, name: str) -> Attribute:
    """The attribute `name` names: its short name, `ext.<name>` or its full property name;
    it must be a Boolean (the migration handler's migrationPropertyId: `ConfigError` else)."""
    short = name[4:] if name.lower().startswith("ext.") else name
    found = catalog.find(short) or catalog.by_property(name)
    if found is None:
        raise ConfigError(f"--jit-migration {name}: the tenant has no custom attribute {short}; its attributes: "
                          f"{catalog.listed()}. Define a Boolean one (admin center: External Identities > Custom "
                          "user attributes), then run again")
    if found.data_type != FLAG_TYPE:
        raise ConfigError(f"--jit-migration {name}: the custom attribute {found.name} is a {found.data_type}; "
                          "the migration handler reads a Boolean flag. Define a Boolean attribute for it (admin center: "
                          f"External Identities > Custom user attributes). This tenant's attributes: {catalog.listed()}")
    return found


def migration_listeners(body: Any) -> list[tuple[str, str]]:
    """(listener name, migrationPropertyId) of each onPasswordSubmit listener with a JIT
    migration handler, in a `GET /identity/authenticationEventListeners` answer's body
    (resources/onpasswordsubmitlistener.md, onpasswordmigrationcustomextensionhandler.md).
    `doctor` reads the listeners with it too."""
    found = []
    for item in (body or {}).get("value") or [] if isinstance(body, dict) else []:
        handler = item.get("handler") if isinstance(item, dict) else None
        if (isinstance(handler, dict) and item.get("@odata.type") == PASSWORD_SUBMIT
                and handler.get("@odata.type") == MIGRATION_HANDLER and handler.get("migrationPropertyId")):
            found.append((str(item.get("displayName") or item.get("id")), str(handler["migrationPropertyId"])))
    return found


def listener_note(answer: GraphResult, attribute: Attribute) -> str:
    """What the run's notes say about the listener that will migrate these customers."""
    if answer.status in (401, 403):
        return (f"whether a password-submit listener reads {attribute.name} could not be checked (the token lacks "
                "EventListener.Read.All); customers cannot sign in until an onPasswordSubmit listener's migration "
                f"handler reads {attribute.property}")
    if not answer.ok:
        # A 429, 5xx or 404 says nothing about the listeners: only a listing is evidence.
        answer_text = f"HTTP {answer.status}" if answer.status else "no answer"
        detail = f" {answer.error_code}" if answer.error_code else ""
        return (f"whether a password-submit listener reads {attribute.name} could not be checked ({answer_text}"
                f"{detail}); customers cannot sign in until an onPasswordSubmit listener's migration handler reads "
                f"{attribute.property}")
    readers = [listener for listener, prop in migration_listeners(answer.body)
               if prop.lower() == attribute.property.lower()]
    if not readers:
        return (f"no password-submit listener reads {attribute.name}: customers cannot sign in until one does (an "
                "onPasswordSubmit listener with an onPasswordMigrationCustomExtensionHandler whose migrationPropertyId "
                f"is {attribute.property})")
    return (f"the onPasswordSubmit listener '{readers[0]}' reads {attribute.name}: each customer's legacy password is "
            "checked at first sign-in, then kept, and the flag set to false")


def social_only(plan: CreatePlan) -> bool:
    """Whether the customer signs in only through federated identities (Google, Facebook, an
    OIDC provider): it has no password at all ("For a social/federated-only identity none are
    required", user-post-users.md), so there is nothing for a password-submit listener to
    migrate. A JIT run creates it as a plain create would: no lock password, no flag."""
    return bool(plan.federated) and plan.sign_in_name is None


def checked(plan: CreatePlan, flag: str) -> CreatePlan | Rejected:
    """A create plan for a JIT run, or its rejection: no password of its own, no forced change,
    the flag's cell blank or true (and taken out of the body: create_call sends the flag). A
    social-only customer is created without the flag, which results.csv says."""
    problems: list[str] = []
    social = social_only(plan)
    if not plan.generates_password and not social:
        problems.append(PASSWORD_REFUSED)
    profile: Mapping[str, Any] = plan.body.get("passwordProfile") or {}
    if profile.get("forceChangePasswordNextSignIn"):
        problems.append(FORCE_REFUSED)
    for key in [k for k in plan.body if k.lower() == flag.lower()]:
        value = plan.body.pop(key)
        if value is not True and not social:
            column = plan.columns.get(key, key)
            problems.append(f"{column}: --jit-migration sets this flag to true for every customer; leave the cell "
                            "blank or true (a customer created with false is never migrated and cannot sign in)")
    if problems:
        return Rejected(plan.row, plan.key, tuple(problems))
    if social:
        plan.note = "; ".join(filter(None, (plan.note, SOCIAL_NOTE)))
    return plan


__all__ = ["FLAG_TYPE", "JitStart", "check_jit_start", "checked", "find_flag", "listener_note", "migration_listeners",
           "social_only"]
