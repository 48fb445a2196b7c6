"""What Graph accepts in the JSON body of a user (GRAPH.md §1, §2): known property names
and extension attributes, value types, lengths and formats, password policies and profile,
and sign-in identities. Each check raises the `GraphError` Graph answers with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import rules
from ..userschema import USER_PROPERTIES, canonical_property
from . import errors
from .records import IdentityRow, Tenant

PASSWORD_POLICIES = {"disablepasswordexpiration": "DisablePasswordExpiration", "disablestrongpassword": "DisableStrongPassword"}
PASSWORD_PROFILE_KEYS = {"password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa", "@odata.type"}
WEAK_PASSWORD = ("The specified password does not comply with password complexity requirements. "
                 "Please provide a different password.")
BAD_ISSUER = "Issuer should match tenants domainName for non federated identity."
BAD_UPN_DOMAIN = ("The domain portion of the userPrincipalName property is invalid. "
                  "You must use one of the verified domain names in your organization.")


def is_local(sign_in_type: str) -> bool:
    """`emailAddress`, any custom `emailAddress…` type, and `userName` (GRAPH.md §1.5)."""
    lowered = sign_in_type.lower()
    return lowered.startswith("emailaddress") or lowered == "username"


def clean_body(body: Any, tenant: Tenant) -> dict[str, Any]:
    """The body's properties under their canonical names, each value checked."""
    if not isinstance(body, dict):
        raise errors.bad_request("Empty Payload. JSON content expected." if body is None else
                                 "Invalid request body: a JSON object is expected.")
    values: dict[str, Any] = {}
    for raw_name, value in body.items():
        if raw_name.startswith("@odata."):
            continue  # clients send @odata.type; Graph accepts it
        name = canonical_property(raw_name)
        if name is None:
            values[raw_name] = _check_extension(raw_name, value, tenant)
            continue
        kind = USER_PROPERTIES[name]
        if kind == "readonly":
            raise errors.bad_request(f"Property '{name}' is read-only and cannot be set.", target=name)
        values[name] = None if value is None else _KIND_CHECKS.get(kind, _check_string)(name, value)
    return values


def _check_extension(raw_name: str, value: Any, tenant: Tenant) -> Any:
    ext = rules.parse_extension_name(raw_name)
    if ext is None or ext[0] != tenant.extensions_app_hex:
        raise errors.bad_request(f"Property '{raw_name}' does not exist as a declared property or extension property.")
    too_long = isinstance(value, str) and len(value) > rules.EXTENSION_VALUE_MAX_LENGTH
    if (value is not None and not isinstance(value, (str, bool, int, float))) or too_long:
        raise errors.bad_request(f"Invalid value specified for property '{raw_name}' of resource 'User'.", target=raw_name)
    return value


def _check_bool(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise errors.bad_request("Cannot convert a primitive value to the expected type 'Edm.Boolean'. "
                                 "See the inner exception for more details.", target=name)
    return value


def _check_list(name: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_value(name)
    if name == "otherMails" and (len(value) > 250 or any(len(v) > 250 or rules.has_accents(v) or not rules.is_email(v) for v in value)):
        raise errors.invalid_value(name)
    return list(value)


def _check_identities_shape(name: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise errors.invalid_value(name)
    return value


def _check_object(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise errors.invalid_value(name)
    return value


def _check_string(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise errors.bad_request(f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.", target=name)
    limit = rules.PROPERTY_MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise errors.invalid_value(name)
    rule = _STRING_RULES.get(name)
    return value if rule is None else rule(value)


_KIND_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "bool": _check_bool, "list": _check_list, "identities": _check_identities_shape, "passwordProfile": _check_object,
}


def _valid_if(name: str, test: Callable[[str], bool]) -> Callable[[str], str]:
    """A string rule: `value` as it is when `test` holds, else Graph's invalid value of `name`."""
    def check(value: str) -> str:
        if not test(value):
            raise errors.invalid_value(name)
        return value
    return check


def _upn(value: str) -> str:
    if rules.upn_problem(value):
        raise errors.bad_request("Property userPrincipalName is invalid.", target="userPrincipalName")
    return value


def _usage_location(value: str) -> str:
    code = rules.normalise_usage_location(value)
    if code is None:
        raise errors.invalid_value("usageLocation")
    return code


def _policies(value: str) -> str:
    password_policies(value)
    return value


_STRING_RULES: dict[str, Callable[[str], str]] = {
    "displayName": _valid_if("displayName", lambda v: bool(v.strip())),
    "userPrincipalName": _upn,
    "mail": _valid_if("mail", lambda v: not rules.has_accents(v) and rules.is_email(v)),
    "usageLocation": _usage_location,
    "preferredLanguage": _valid_if("preferredLanguage", rules.is_language_tag),
    "userType": _valid_if("userType", lambda v: v in ("Member", "Guest")),
    "passwordPolicies": _policies,
}


def password_policies(value: Any) -> set[str]:
    """`passwordPolicies` as a set of canonical names; refuses names Graph does not know."""
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


def check_password_profile(profile: dict[str, Any], policies: set[str]) -> dict[str, Any]:
    """What the directory keeps of a valid password profile: the flags, never the password."""
    password = profile.get("password")
    for flag in ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"):
        if flag in profile and profile[flag] is not None and not isinstance(profile[flag], bool):
            raise errors.invalid_value("passwordProfile")
    unknown = set(profile) - PASSWORD_PROFILE_KEYS
    if unknown:
        raise errors.bad_request(f"Property '{sorted(unknown)[0]}' does not exist as a declared property or extension property.")
    if password is None:
        raise errors.required_value("passwordProfile.password")
    if not isinstance(password, str) or rules.password_problem(password, strong="DisableStrongPassword" not in policies):
        raise errors.bad_request(WEAK_PASSWORD, target="passwordProfile")
    return {
        "forceChangePasswordNextSignIn": bool(profile.get("forceChangePasswordNextSignIn", False)),
        "forceChangePasswordNextSignInWithMfa": bool(profile.get("forceChangePasswordNextSignInWithMfa", False)),
    }


def check_identities(items: list[dict[str, Any]], tenant: Tenant) -> list[IdentityRow]:
    """The sign-in identities of a body (without the userPrincipalName one), as rows."""
    if len(items) > rules.MAX_IDENTITIES:
        raise errors.invalid_value("identities")
    out: list[IdentityRow] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        ident = _check_identity(item, tenant)
        key = (ident.issuer.lower(), ident.assigned_id.lower())
        if key in seen:
            raise errors.invalid_value("identities")
        seen.add(key)
        out.append(ident)
    return out


def _check_identity(item: dict[str, Any], tenant: Tenant) -> IdentityRow:
    sign_in_type, issuer, assigned = (item.get(k) for k in ("signInType", "issuer", "issuerAssignedId"))
    if not (isinstance(sign_in_type, str) and isinstance(issuer, str) and isinstance(assigned, str)
            and sign_in_type and issuer and assigned):
        raise errors.invalid_value("identities")
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
    return IdentityRow(sign_in_type, issuer, assigned)


def identity_json(ident: IdentityRow) -> dict[str, str]:
    return {"signInType": ident.sign_in_type, "issuer": ident.issuer, "issuerAssignedId": ident.assigned_id}


def upn_identity(tenant: Tenant, upn: str) -> dict[str, str]:
    """The identity that mirrors userPrincipalName in every user's `identities` (GRAPH.md §1.5)."""
    return {"signInType": "userPrincipalName", "issuer": tenant.default_domain, "issuerAssignedId": upn}


def check_upn_domain(upn: str, tenant: Tenant) -> None:
    if upn.partition("@")[2].lower() != tenant.default_domain:
        raise errors.bad_request(BAD_UPN_DOMAIN, target="userPrincipalName")
