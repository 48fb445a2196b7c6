"""What the directory allows: the rules for creating, changing, deleting, restoring and
purging users, as GRAPH.md §1, §2, §5 and §6 describe them. Every refusal is a `GraphError`
with Graph's code and wording; every write happens inside one store transaction, so a
uniqueness check and the write it guards cannot be split by another request. What a body
may hold is checked in `userbody.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from . import errors, schema
from .errors import GraphError
from .records import IdentityRow, Tenant, UserRow
from .replication import ReplicationLag
from .store import Store
from .userbody import (
    check_identities,
    check_password_profile,
    check_upn_domain,
    clean_body,
    identity_json,
    is_local,
    password_policies,
    upn_identity,
)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def project(doc: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """The properties a response carries: the default set, or exactly what was selected."""
    names = select if select is not None else schema.DEFAULT_SELECT
    out: dict[str, Any] = {}
    for name in names:
        if name == "passwordProfile":
            out[name] = password_profile_view(doc.get("passwordProfile"))
        elif name in schema.LIST_VALUED:
            out[name] = doc.get(name) or []
        elif name.startswith("extension_"):
            if name in doc:
                out[name] = doc[name]
        else:
            out[name] = doc.get(name)
    return out


def password_profile_view(kept: Any) -> dict[str, Any] | None:
    """`$select=passwordProfile`: never the password. Graph shows the flags while the user must
    change the password at next sign-in and null otherwise (microsoft-graph-docs#13208: after an
    admin reset with "require change" the profile reads `forceChangePasswordNextSignIn: true`;
    after one without, it stays null)."""
    if not isinstance(kept, dict) or not kept.get("forceChangePasswordNextSignIn"):
        return None
    return {"password": None, "forceChangePasswordNextSignIn": True,
            "forceChangePasswordNextSignInWithMfa": bool(kept.get("forceChangePasswordNextSignInWithMfa"))}


class Directory:
    def __init__(self, store: Store, clock: Callable[[], float], retention_days: int = 30,
                 lag: ReplicationLag | None = None, *, password_reset_needs_role: bool = False,
                 keep_password_digests: bool = False) -> None:
        self.store = store
        self.clock = clock
        self.retention_seconds = retention_days * 86400
        self.lag = lag or ReplicationLag(0.0, None, clock)
        self.password_reset_needs_role = password_reset_needs_role
        self.keep_password_digests = keep_password_digests

    # ---- reading -------------------------------------------------------------------------
    # Reads see the directory as of now through the replication lag (`replication.py`);
    # the writes below check uniqueness against the true state.

    def as_of(self) -> float | None:
        """The moment reads see the directory as of (None: every write at once)."""
        return self.lag.as_of()

    def get_live(self, tenant: Tenant, key: str) -> UserRow:
        row = self.store.user(tenant.id, key, as_of=self.as_of())
        if row is None:
            raise errors.not_found(key)
        return row

    def get_deleted(self, tenant: Tenant, object_id: str) -> UserRow:
        self.purge_expired(tenant)
        row = self.store.user(tenant.id, object_id, ("deleted",), as_of=self.as_of())
        if row is None or row.id != object_id.lower():
            raise errors.not_found(object_id)
        return row

    def purge_expired(self, tenant: Tenant) -> None:
        """Soft-deleted users are gone for good after the retention period (GRAPH.md §6)."""
        expired = self.store.expired_deleted(tenant.id, self.clock() - self.retention_seconds)
        if expired:
            with self.store.transaction() as db:
                for user_id in expired:
                    self.store.purge_user(db, tenant.id, user_id, self.lag.next_write())

    def _writable(self, tenant: Tenant, key: str, state: str) -> UserRow:
        """The user a write names, as it truly is. Graph finds it through the lagging view
        first: one created a moment ago is 404 `Request_ResourceNotFound` (msgraph-sdk-java-
        core#353). It must also be in `state` in the true state, where the write applies."""
        seen = self.get_live(tenant, key) if state == "live" else self.get_deleted(tenant, key)
        if not self.lag.enabled:
            return seen
        true = self.store.user(tenant.id, seen.id, (state,))
        if true is None:
            raise errors.not_found(key)
        return true

    # ---- writing -------------------------------------------------------------------------

    def create(self, tenant: Tenant, body: Any) -> dict[str, Any]:
        values = clean_body(body, tenant, declared=self.store.declared_extensions(tenant.id), creating=True)
        identities = values.pop("identities", None)
        policies = password_policies(values.get("passwordPolicies"))
        user_id = str(uuid.uuid4())
        idents = check_identities(identities, tenant) if identities is not None else []
        has_local = any(is_local(i.sign_in_type) for i in idents)
        if not values.get("displayName"):
            raise errors.required_value("displayName")
        if identities is None:
            for prop in ("accountEnabled", "mailNickname", "passwordProfile", "userPrincipalName"):
                if values.get(prop) is None:
                    raise errors.required_value(prop)
        if has_local:
            if values.get("passwordProfile") is None:
                raise errors.required_value("passwordProfile")
            if "DisablePasswordExpiration" not in policies:
                raise errors.bad_request(
                    "Local account identities need password expiration disabled: "
                    "set passwordPolicies to 'DisablePasswordExpiration'.",
                    target="passwordPolicies",
                )
        profile = values.pop("passwordProfile", None)
        now = self.clock()
        doc: dict[str, Any] = {"id": user_id, **values}
        if profile is not None:
            doc["passwordProfile"] = check_password_profile(profile, policies)
            doc["lastPasswordChangeDateTime"] = iso(now)
        upn = values.get("userPrincipalName")
        if upn is not None:
            check_upn_domain(upn, tenant)
        else:
            # External ID and B2C name identity-only users `<object id>@<default domain>` (GRAPH.md §1.4).
            upn = f"{user_id}@{tenant.default_domain}"
        doc["userPrincipalName"] = upn
        doc.setdefault("accountEnabled", True)
        doc.setdefault("mailNickname", user_id.replace("-", "")[:32] if identities is not None else values.get("mailNickname"))
        doc.setdefault("userType", "Member")
        doc.setdefault("businessPhones", [])
        doc["createdDateTime"] = iso(now)
        doc["creationType"] = "LocalAccount" if has_local else None
        if doc.get("mail"):
            doc["proxyAddresses"] = [f"SMTP:{doc['mail']}"]
        if identities is not None:
            doc["identities"] = [identity_json(i) for i in idents] + [upn_identity(tenant, upn)]
        with self.store.transaction() as db:
            self._check_unique(tenant, doc, idents, exclude=None)
            self.store.write_user(db, tenant.id, doc, idents, visible=self.lag.next_write())
            if profile is not None and self.keep_password_digests:
                self.store.keep_password(db, user_id, profile["password"])
        return doc

    def update(self, tenant: Tenant, key: str, body: Any) -> None:
        current = self._writable(tenant, key, "live")
        values = clean_body(body, tenant, declared=self.store.declared_extensions(tenant.id))
        doc = dict(current.data)
        policies = password_policies(values.get("passwordPolicies", doc.get("passwordPolicies")))
        _refuse_cleared(values)
        if values.get("userPrincipalName"):
            check_upn_domain(values["userPrincipalName"], tenant)
        idents = _replace_identities(doc, values, tenant) if "identities" in values else None
        password = None
        if "passwordProfile" in values:
            profile = values.pop("passwordProfile")
            if profile is None:
                raise errors.invalid_value("passwordProfile")
            kept = check_password_profile(profile, policies, creating=False)
            if kept is not None:
                password = profile["password"]
                doc["passwordProfile"] = kept
                doc["lastPasswordChangeDateTime"] = iso(self.clock())
        _apply(doc, values)
        if "userPrincipalName" in values:
            _mirror_upn(doc)
        if "mail" in values:
            doc["proxyAddresses"] = [f"SMTP:{doc['mail']}"] if doc.get("mail") else []
        with self.store.transaction() as db:
            self._check_unique(tenant, doc, idents or [], exclude=current.id,
                               check_upn="userPrincipalName" in values, check_mail="mail" in values)
            self.store.write_user(db, tenant.id, doc, idents, visible=self.lag.next_write())
            if password is not None and self.keep_password_digests:
                self.store.keep_password(db, current.id, password)

    def delete(self, tenant: Tenant, key: str) -> None:
        current = self._writable(tenant, key, "live")
        now = self.clock()
        doc = dict(current.data, deletedDateTime=iso(now))
        with self.store.transaction() as db:
            self.store.write_user(db, tenant.id, doc, None, state="deleted", deleted=now,
                                  visible=self.lag.next_write())

    def restore(self, tenant: Tenant, object_id: str, body: Any) -> dict[str, Any]:
        current = self._writable(tenant, object_id, "deleted")
        options = body if isinstance(body, dict) else {}
        doc = dict(current.data)
        doc.pop("deletedDateTime", None)
        new_upn = options.get("newUserPrincipalName")
        if new_upn is not None:
            if not isinstance(new_upn, str) or not schema.upn_is_valid(new_upn):
                raise errors.bad_request("Property userPrincipalName is invalid.", target="userPrincipalName")
            check_upn_domain(new_upn, tenant)  # a verified domain, as on create (GRAPH.md §1.4)
            doc["userPrincipalName"] = new_upn
            _mirror_upn(doc)
        if options.get("autoReconcileProxyConflict") and doc.get("mail"):
            holder = self.store.mail_holder(tenant.id, doc["mail"])
            if holder and holder != current.id:
                doc["proxyAddresses"] = []
        idents = [IdentityRow(i["signInType"], i["issuer"], i["issuerAssignedId"])
                  for i in doc.get("identities") or [] if not _is_upn_identity(i)]
        with self.store.transaction() as db:
            self._check_unique(tenant, doc, idents, exclude=current.id,
                               check_mail=bool(doc.get("proxyAddresses")))
            self.store.write_user(db, tenant.id, doc, idents, state="live", deleted=None,
                                  visible=self.lag.next_write())
        return doc

    def purge(self, tenant: Tenant, object_id: str) -> None:
        current = self._writable(tenant, object_id, "deleted")
        with self.store.transaction() as db:
            self.store.purge_user(db, tenant.id, current.id, self.lag.next_write())

    def _check_unique(self, tenant: Tenant, doc: dict[str, Any], idents: list[IdentityRow], *, exclude: str | None,
                      check_upn: bool = True, check_mail: bool = True) -> None:
        store = self.store
        if check_upn:
            holder = store.upn_holder(tenant.id, doc["userPrincipalName"])
            if holder and holder != exclude:
                raise errors.conflict("userPrincipalName")
        for ident in idents:
            holder = store.identity_holder(tenant.id, ident.issuer, ident.assigned_id)
            if holder and holder != exclude:
                raise errors.conflict("identities")
        if check_mail and doc.get("mail"):
            holder = store.mail_holder(tenant.id, doc["mail"])
            if holder and holder != exclude:
                # Graph reports the mail's proxy address as the conflicting property (GRAPH.md §3.2).
                raise errors.conflict("proxyAddresses")


# ---- the parts of an update ---------------------------------------------------------------

def _refuse_cleared(values: dict[str, Any]) -> None:
    """Properties a user cannot be without."""
    if "displayName" in values and not values["displayName"]:
        raise errors.invalid_value("displayName")
    for prop in ("accountEnabled", "usageLocation", "userPrincipalName"):
        if prop in values and values[prop] is None:
            raise errors.invalid_value(prop)


def _replace_identities(doc: dict[str, Any], values: dict[str, Any], tenant: Tenant) -> list[IdentityRow]:
    """Identities are replaced as a whole and must keep the UPN identity (GRAPH.md §1.5)."""
    new = values.pop("identities")
    if new is None:
        raise errors.invalid_value("identities")
    idents = check_identities([i for i in new if not _is_upn_identity(i)], tenant)
    if not any(_is_upn_identity(i) for i in new):
        raise errors.bad_request(
            "The identities collection must include the userPrincipalName identity: "
            "identities are replaced as a whole.",
            target="identities",
        )
    had_local = any(is_local(i.get("signInType", "")) for i in doc.get("identities") or [])
    if not had_local and any(is_local(i.sign_in_type) for i in idents):
        raise errors.bad_request("Adding a local account identity to a user that has none is not allowed.",
                                 target="identities")
    upn = values.get("userPrincipalName", doc["userPrincipalName"])
    doc["identities"] = [identity_json(i) for i in idents] + [upn_identity(tenant, upn)]
    return idents


def _apply(doc: dict[str, Any], values: dict[str, Any]) -> None:
    """Write `values` into `doc`; null clears a property (an empty list for a list) and
    removes an extension attribute."""
    for name, value in values.items():
        if value is not None or not (name.startswith("extension_") or name in schema.USER):
            doc[name] = value
        elif name.startswith("extension_"):
            doc.pop(name, None)
        else:
            doc[name] = [] if name in schema.LIST_VALUED else None


def _is_upn_identity(item: dict[str, Any]) -> bool:
    return str(item.get("signInType", "")).lower() == "userprincipalname"


def _mirror_upn(doc: dict[str, Any]) -> None:
    """The userPrincipalName identity follows userPrincipalName."""
    for ident in doc.get("identities") or []:
        if _is_upn_identity(ident):
            ident["issuerAssignedId"] = doc["userPrincipalName"]


__all__ = ["Directory", "project", "iso", "is_local", "check_upn_domain", "GraphError"]
