"""What the directory allows: the rules for creating, changing, deleting, restoring and
purging users, as GRAPH.md §1, §2, §5 and §6 describe them. Every refusal is a `GraphError`
with Graph's code and wording; every write happens inside one store transaction, so a
uniqueness check and the write it guards cannot be split by another request.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from .. import rules
from ..userschema import (
    DEFAULT_PROPERTIES,
    LIST_PROPERTIES,
    USER_PROPERTIES,
    canonical_property,
)
from . import errors
from .errors import GraphError
from .store import IdentityRow, Store, Tenant, UserRow

LOCAL_SIGN_IN_TYPES = ("emailaddress", "username")
PASSWORD_POLICIES = {"disablepasswordexpiration": "DisablePasswordExpiration", "disablestrongpassword": "DisableStrongPassword"}
WEAK_PASSWORD = ("The specified password does not comply with password complexity requirements. "
                 "Please provide a different password.")
BAD_ISSUER = "Issuer should match tenants domainName for non federated identity."
BAD_UPN_DOMAIN = ("The domain portion of the userPrincipalName property is invalid. "
                  "You must use one of the verified domain names in your organization.")


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_local(sign_in_type: str) -> bool:
    """`emailAddress`, any custom `emailAddress…` type, and `userName` (GRAPH.md §1.5)."""
    lowered = sign_in_type.lower()
    return lowered.startswith("emailaddress") or lowered == "username"


def project(doc: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """The properties a response carries: the default set, or exactly what was selected.
    Passwords are never returned: `passwordProfile` reads as null (GRAPH.md §1.1)."""
    names = select if select is not None else DEFAULT_PROPERTIES
    out: dict[str, Any] = {}
    for name in names:
        if name == "passwordProfile":
            out[name] = None
        elif name in LIST_PROPERTIES:
            out[name] = doc.get(name) or []
        elif name.startswith("extension_"):
            if name in doc:
                out[name] = doc[name]
        else:
            out[name] = doc.get(name)
    return out


class Directory:
    def __init__(self, store: Store, clock: Callable[[], float], retention_days: int = 30) -> None:
        self.store = store
        self.clock = clock
        self.retention_seconds = retention_days * 86400

    # ---- reading -------------------------------------------------------------------------

    def get_live(self, tenant: Tenant, key: str) -> UserRow:
        row = self.store.user(tenant.id, key)
        if row is None:
            raise errors.not_found(key)
        return row

    def get_deleted(self, tenant: Tenant, object_id: str) -> UserRow:
        self.purge_expired(tenant)
        row = self.store.user(tenant.id, object_id, ("deleted",))
        if row is None or row.id != object_id.lower():
            raise errors.not_found(object_id)
        return row

    def purge_expired(self, tenant: Tenant) -> None:
        """Soft-deleted users are gone for good after the retention period (GRAPH.md §6)."""
        expired = self.store.expired_deleted(tenant.id, self.clock() - self.retention_seconds)
        if expired:
            with self.store.transaction() as db:
                for user_id in expired:
                    self.store.purge_user(db, tenant.id, user_id)

    # ---- writing -------------------------------------------------------------------------

    def create(self, tenant: Tenant, body: Any) -> dict[str, Any]:
        values = _clean_body(body, tenant)
        identities = values.pop("identities", None)
        policies = _password_policies(values.get("passwordPolicies"))
        user_id = str(uuid.uuid4())
        idents = _check_identities(identities, tenant) if identities is not None else []
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
            doc["passwordProfile"] = _check_password_profile(profile, policies, required=True)
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
            doc["identities"] = [_identity_json(i) for i in idents] + [
                {"signInType": "userPrincipalName", "issuer": tenant.default_domain, "issuerAssignedId": upn}
            ]
        with self.store.transaction() as db:
            self._check_unique(tenant, doc, idents, exclude=None)
            self.store.write_user(db, tenant.id, doc, idents)
        return doc

    def update(self, tenant: Tenant, key: str, body: Any) -> None:
        current = self.get_live(tenant, key)
        values = _clean_body(body, tenant, updating=True)
        doc = dict(current.data)
        policies = _password_policies(values.get("passwordPolicies", doc.get("passwordPolicies")))
        idents: list[IdentityRow] | None = None
        if "displayName" in values and not values["displayName"]:
            raise errors.invalid_value("displayName")
        for prop in ("accountEnabled", "usageLocation", "userPrincipalName"):
            if prop in values and values[prop] is None:
                raise errors.invalid_value(prop)
        if values.get("userPrincipalName"):
            check_upn_domain(values["userPrincipalName"], tenant)
        if "identities" in values:
            new = values.pop("identities")
            if new is None:
                raise errors.invalid_value("identities")
            idents = _check_identities([i for i in new if str(i.get("signInType", "")).lower() != "userprincipalname"], tenant)
            upn_ident = [i for i in new if str(i.get("signInType", "")).lower() == "userprincipalname"]
            if not upn_ident:
                # Identities are replaced as a whole and must keep the UPN identity (GRAPH.md §1.5).
                raise errors.bad_request(
                    "The identities collection must include the userPrincipalName identity: "
                    "identities are replaced as a whole.",
                    target="identities",
                )
            had_local = any(is_local(i.get("signInType", "")) for i in doc.get("identities") or [])
            if not had_local and any(is_local(i.sign_in_type) for i in idents):
                raise errors.bad_request("Adding a local account identity to a user that has none is not allowed.",
                                         target="identities")
            doc["identities"] = [_identity_json(i) for i in idents]
            doc["identities"].append({"signInType": "userPrincipalName", "issuer": tenant.default_domain,
                                      "issuerAssignedId": values.get("userPrincipalName", doc["userPrincipalName"])})
        if "passwordProfile" in values:
            profile = values.pop("passwordProfile")
            if profile is None:
                raise errors.invalid_value("passwordProfile")
            doc["passwordProfile"] = _check_password_profile(profile, policies, required=True)
            doc["lastPasswordChangeDateTime"] = iso(self.clock())
        for name, value in values.items():
            if value is None and (name.startswith("extension_") or name in USER_PROPERTIES):
                doc.pop(name, None) if name.startswith("extension_") else doc.__setitem__(name, [] if name in LIST_PROPERTIES else None)
            else:
                doc[name] = value
        if "userPrincipalName" in values and doc.get("identities"):
            for ident in doc["identities"]:
                if ident["signInType"].lower() == "userprincipalname":
                    ident["issuerAssignedId"] = doc["userPrincipalName"]
        if "mail" in values:
            doc["proxyAddresses"] = [f"SMTP:{doc['mail']}"] if doc.get("mail") else []
        with self.store.transaction() as db:
            self._check_unique(tenant, doc, idents or [], exclude=current.id,
                               check_upn="userPrincipalName" in values, check_mail="mail" in values)
            self.store.write_user(db, tenant.id, doc, idents)

    def delete(self, tenant: Tenant, key: str) -> None:
        current = self.get_live(tenant, key)
        now = self.clock()
        doc = dict(current.data, deletedDateTime=iso(now))
        with self.store.transaction() as db:
            self.store.write_user(db, tenant.id, doc, None, state="deleted", deleted=now)

    def restore(self, tenant: Tenant, object_id: str, body: Any) -> dict[str, Any]:
        current = self.get_deleted(tenant, object_id)
        options = body if isinstance(body, dict) else {}
        doc = dict(current.data)
        doc.pop("deletedDateTime", None)
        new_upn = options.get("newUserPrincipalName")
        if new_upn is not None:
            if not isinstance(new_upn, str) or rules.upn_problem(new_upn):
                raise errors.bad_request("Property userPrincipalName is invalid.", target="userPrincipalName")
            check_upn_domain(new_upn, tenant)  # a verified domain, as on create (GRAPH.md §1.4)
            doc["userPrincipalName"] = new_upn
            for ident in doc.get("identities") or []:
                if ident["signInType"].lower() == "userprincipalname":
                    ident["issuerAssignedId"] = new_upn
        if options.get("autoReconcileProxyConflict") and doc.get("mail"):
            holder = self.store.mail_holder(tenant.id, doc["mail"])
            if holder and holder != current.id:
                doc["proxyAddresses"] = []
        idents = [IdentityRow(i["signInType"], i["issuer"], i["issuerAssignedId"])
                  for i in doc.get("identities") or [] if i["signInType"].lower() != "userprincipalname"]
        with self.store.transaction() as db:
            self._check_unique(tenant, doc, idents, exclude=current.id,
                               check_mail=bool(doc.get("proxyAddresses")))
            self.store.write_user(db, tenant.id, doc, idents, state="live", deleted=None)
        return doc

    def purge(self, tenant: Tenant, object_id: str) -> None:
        current = self.get_deleted(tenant, object_id)
        with self.store.transaction() as db:
            self.store.purge_user(db, tenant.id, current.id)

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


# ---- body checks -------------------------------------------------------------------------

def _clean_body(body: Any, tenant: Tenant, *, updating: bool = False) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("Empty Payload. JSON content expected." if body is None else
                                 "Invalid request body: a JSON object is expected.")
    values: dict[str, Any] = {}
    for raw_name, value in body.items():
        if raw_name.startswith("@odata."):
            continue  # clients send @odata.type; Graph accepts it
        name = canonical_property(raw_name)
        if name is None:
            ext = rules.parse_extension_name(raw_name)
            if ext is None or ext[0] != tenant.extensions_app_hex:
                raise errors.bad_request(
                    f"Property '{raw_name}' does not exist as a declared property or extension property."
                )
            if value is not None and not isinstance(value, (str, bool, int, float)):
                raise errors.bad_request(f"Invalid value specified for property '{raw_name}' of resource 'User'.",
                                         target=raw_name)
            if isinstance(value, str) and len(value) > rules.EXTENSION_VALUE_MAX_LENGTH:
                raise errors.bad_request(f"Invalid value specified for property '{raw_name}' of resource 'User'.",
                                         target=raw_name)
            values[raw_name] = value
            continue
        kind = USER_PROPERTIES[name]
        if kind == "readonly":
            raise errors.bad_request(f"Property '{name}' is read-only and cannot be set.", target=name)
        values[name] = _check_value(name, kind, value)
    return values


def _check_value(name: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise errors.bad_request("Cannot convert a primitive value to the expected type 'Edm.Boolean'. "
                                     "See the inner exception for more details.", target=name)
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.invalid_value(name)
        if name == "otherMails" and (len(value) > 250 or any(len(v) > 250 or rules.has_accents(v) or not rules.is_email(v) for v in value)):
            raise errors.invalid_value(name)
        return list(value)
    if kind == "identities":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise errors.invalid_value(name)
        return value
    if kind == "passwordProfile":
        if not isinstance(value, dict):
            raise errors.invalid_value(name)
        return value
    if not isinstance(value, str):
        raise errors.bad_request(f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.", target=name)
    limit = rules.PROPERTY_MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise errors.invalid_value(name)
    if name == "displayName" and not value.strip():
        raise errors.invalid_value(name)
    if name == "userPrincipalName":
        if rules.upn_problem(value):
            raise errors.bad_request("Property userPrincipalName is invalid.", target="userPrincipalName")
    if name == "mail" and (rules.has_accents(value) or not rules.is_email(value)):
        raise errors.invalid_value(name)
    if name == "usageLocation":
        code = rules.normalise_usage_location(value)
        if code is None:
            raise errors.invalid_value(name)
        return code
    if name == "preferredLanguage" and not rules.is_language_tag(value):
        raise errors.invalid_value(name)
    if name == "userType" and value not in ("Member", "Guest"):
        raise errors.invalid_value(name)
    if name == "passwordPolicies":
        _password_policies(value)
    return value


def _password_policies(value: Any) -> set[str]:
    if value is None or value == "":
        return set()
    if not isinstance(value, str):
        raise errors.invalid_value("passwordPolicies")
    out = set()
    for part in value.split(","):
        known = PASSWORD_POLICIES.get(part.strip().lower())
        if known is None:
            raise errors.invalid_value("passwordPolicies")
        out.add(known)
    return out


def _check_password_profile(profile: dict[str, Any], policies: set[str], *, required: bool) -> dict[str, Any]:
    password = profile.get("password")
    for flag in ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"):
        if flag in profile and profile[flag] is not None and not isinstance(profile[flag], bool):
            raise errors.invalid_value("passwordProfile")
    unknown = set(profile) - {"password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa", "@odata.type"}
    if unknown:
        raise errors.bad_request(f"Property '{sorted(unknown)[0]}' does not exist as a declared property or extension property.")
    if password is None:
        if required:
            raise errors.required_value("passwordProfile.password")
    elif not isinstance(password, str) or rules.password_problem(password, strong="DisableStrongPassword" not in policies):
        raise errors.bad_request(WEAK_PASSWORD, target="passwordProfile")
    # The password itself is never stored: only what a GET could legitimately report.
    return {
        "forceChangePasswordNextSignIn": bool(profile.get("forceChangePasswordNextSignIn", False)),
        "forceChangePasswordNextSignInWithMfa": bool(profile.get("forceChangePasswordNextSignInWithMfa", False)),
    }


def _check_identities(items: list[dict[str, Any]], tenant: Tenant) -> list[IdentityRow]:
    if len(items) > rules.MAX_IDENTITIES:
        raise errors.invalid_value("identities")
    out: list[IdentityRow] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        sign_in_type, issuer, assigned = (item.get(k) for k in ("signInType", "issuer", "issuerAssignedId"))
        if not all(isinstance(v, str) and v for v in (sign_in_type, issuer, assigned)):
            raise errors.invalid_value("identities")
        assert isinstance(sign_in_type, str) and isinstance(issuer, str) and isinstance(assigned, str)
        lowered = sign_in_type.lower()
        if lowered == "userprincipalname":
            raise errors.bad_request("A userPrincipalName identity mirrors userPrincipalName; set that property instead.",
                                     target="identities")
        if len(issuer) > rules.ISSUER_MAX_LENGTH or len(assigned) > rules.ISSUER_ASSIGNED_ID_MAX_LENGTH:
            raise errors.invalid_value("identities")
        if lowered != "federated" and issuer.lower() != tenant.default_domain:
            raise errors.bad_request(BAD_ISSUER, target="identities")
        if lowered.startswith("emailaddress") and (not rules.is_email(assigned) or rules.has_accents(assigned)):
            raise errors.invalid_value("identities")
        if lowered == "username" and not rules.is_user_name(assigned):
            raise errors.invalid_value("identities")
        key = (issuer.lower(), assigned.lower())
        if key in seen:
            raise errors.invalid_value("identities")
        seen.add(key)
        out.append(IdentityRow(sign_in_type, issuer, assigned))
    return out


def _identity_json(ident: IdentityRow) -> dict[str, str]:
    return {"signInType": ident.sign_in_type, "issuer": ident.issuer, "issuerAssignedId": ident.assigned_id}


def check_upn_domain(upn: str, tenant: Tenant) -> None:
    if upn.partition("@")[2].lower() != tenant.default_domain:
        raise errors.bad_request(BAD_UPN_DOMAIN, target="userPrincipalName")


__all__ = ["Directory", "project", "iso", "is_local", "check_upn_domain", "GraphError"]
