"""What Graph accepts in the JSON body of a user (GRAPH.md §1, §2): known property names
and extension attributes, value types, lengths and formats, password policies and profile,
and sign-in identities. Each check raises the `GraphError` Graph answers with. The facts
(names, lengths, formats) are the emulator's own, in `schema.py`, with their sources."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import errors, schema
from .extensionvalues import check_extension
from .records import IdentityRow, Tenant
from .schema import PASSWORD_POLICIES, USER, property_named

PASSWORD_PROFILE_KEYS = schema.PASSWORD_PROFILE_KEYS | {"@odata.type"}
WEAK_PASSWORD = ("The specified password does not comply with password complexity requirements. "
                 "Please provide a different password.")
BAD_ISSUER = "Issuer should match tenants domainName for non federated identity."
BAD_UPN_DOMAIN = ("The domain portion of the userPrincipalName property is invalid. "
                  "You must use one of the verified domain names in your organization.")


def is_local(sign_in_type: str) -> bool:
    """`emailAddress`, any custom `emailAddress…` type, and `userName` (GRAPH.md §1.5)."""
    lowered = sign_in_type.lower()
    return lowered.startswith("emailaddress") or lowered == "username"


def clean_body(body: Any, tenant: Tenant, *, declared: Mapping[str, str], creating: bool = False) -> dict[str, Any]:
    """The body's properties under their canonical names, each value checked ([user]);
    `declared`: the tenant's declared extension properties (full name → dataType),
    the only ones a body may write (batch/emulator/extensionvalues.py)."""
    if not isinstance(body, dict):
        raise errors.bad_request("Empty Payload. JSON content expected." if body is None else
                                 "Invalid request body: a JSON object is expected.")
    values: dict[str, Any] = {}
    for raw_name, value in body.items():
        if raw_name.startswith("@odata."):
            continue  # clients send @odata.type; Graph accepts it
        name = property_named(raw_name)
        if name is None:
            values[raw_name] = check_extension(raw_name, value, tenant.extensions_app_hex, declared)
        elif not (creating and name in schema.IGNORED_ON_CREATE):
            values[name] = _check_property(name, value, creating=creating)
    return values


def _check_property(name: str, value: Any, *, creating: bool) -> Any:
    prop = USER[name]
    if prop.read_only:
        if creating and name == "creationType":
            # The answer Graph gave to a POST with creationType (msgraph-sdk-javascript#1523).
            raise errors.invalid_value(name, with_message=True)
        # Graph's answer to other read-only properties has not been seen: this wording is the
        # emulator's own (UNSURE); the refusal itself follows "Read-only" in [user].
        raise errors.bad_request(f"Property '{name}' is read-only and cannot be set.", target=name)
    if value is None:
        return None
    return _KIND_CHECKS.get(prop.kind, _check_string)(name, value)


def _check_bool(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise errors.bad_request("Cannot convert a primitive value to the expected type 'Edm.Boolean'. "
                                 "See the inner exception for more details.", target=name)
    return value


def _check_list(name: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_value(name)
    # [update] otherMails: no accents, at most 250 addresses of at most 250 characters (GRAPH.md §1.6).
    if name == "otherMails" and (len(value) > 250 or any(len(v) > 250 or not _is_plain_email(v) for v in value)):
        raise errors.invalid_value(name)
    return list(value)


def _check_identities_shape(name: str, value: Any) -> Any:
    # An object where Graph's schema has a collection is refused by the OData reader before the
    # directory sees it: 400 `BadRequest` "Property identities in payload has a value that does
    # not match schema." (msgraph-sdk-php#708).
    if not isinstance(value, list):
        raise errors.schema_mismatch(name)
    if not all(isinstance(v, dict) for v in value):
        raise errors.invalid_value(name)
    return value


def _check_object(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise errors.invalid_value(name)
    return value


def _check_string(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise errors.bad_request(f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.", target=name)
    limit = USER[name].max_length
    if limit is not None and len(value) > limit:
        raise errors.invalid_value(name)
    rule = _STRING_RULES.get(name)
    return value if rule is None else rule(value)


_KIND_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "bool": _check_bool, "list": _check_list, "identities": _check_identities_shape, "passwordProfile": _check_object,
}


def _is_plain_email(value: str) -> bool:
    return not schema.has_accents(value) and schema.is_email(value)


def _valid_if(name: str, test: Callable[[str], bool]) -> Callable[[str], str]:
    """A string rule: `value` as it is when `test` holds, else Graph's invalid value of `name`."""
    def check(value: str) -> str:
        if not test(value):
            raise errors.invalid_value(name)
        return value
    return check


def _upn(value: str) -> str:
    # "Property userPrincipalName is invalid." (GRAPH.md §3.2, a 2018 Q&A answer).
    if not schema.upn_is_valid(value):
        raise errors.bad_request("Property userPrincipalName is invalid.", target="userPrincipalName")
    return value


def _usage_location(value: str) -> str:
    code = schema.usage_location(value)
    if code is None:
        raise errors.invalid_value("usageLocation")
    return code


def _policies(value: str) -> str:
    password_policies(value)
    return value


def _one_of(name: str) -> Callable[[str], str]:
    return _valid_if(name, lambda value: schema.is_member(name, value))


_STRING_RULES: dict[str, Callable[[str], str]] = {
    # [user] displayName: required at create and "cannot be cleared during updates".
    "displayName": _valid_if("displayName", lambda v: bool(v.strip())),
    "userPrincipalName": _upn,
    "mail": _valid_if("mail", _is_plain_email),
    "usageLocation": _usage_location,
    "preferredLanguage": _valid_if("preferredLanguage", schema.is_language_tag),
    "userType": _one_of("userType"),
    "ageGroup": _one_of("ageGroup"),
    "consentProvidedForMinor": _one_of("consentProvidedForMinor"),
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


def check_password_profile(profile: dict[str, Any], policies: set[str], *, creating: bool = True) -> dict[str, Any] | None:
    """What the directory keeps of a valid password profile: the flags, never the password.
    None for an update without a password: Graph answers such a PATCH with 204 and changes
    nothing, not even the flags (microsoft-graph-docs#4267)."""
    password = profile.get("password")
    for flag in ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"):
        if flag in profile and profile[flag] is not None and not isinstance(profile[flag], bool):
            raise errors.invalid_value("passwordProfile")
    unknown = set(profile) - PASSWORD_PROFILE_KEYS
    if unknown:
        raise errors.bad_request(f"Property '{sorted(unknown)[0]}' does not exist as a declared property or extension property.")
    if password is None:
        if not creating:
            return None
        # [user] passwordProfile: "required when a user is created".
        raise errors.required_value("passwordProfile.password")
    strong = "DisableStrongPassword" not in policies
    if not isinstance(password, str) or not schema.password_is_accepted(password, strong=strong):
        raise errors.bad_request(WEAK_PASSWORD, target="passwordProfile")
    return {
        "forceChangePasswordNextSignIn": bool(profile.get("forceChangePasswordNextSignIn", False)),
        "forceChangePasswordNextSignInWithMfa": bool(profile.get("forceChangePasswordNextSignInWithMfa", False)),
    }


def check_identities(items: list[dict[str, Any]], tenant: Tenant) -> list[IdentityRow]:
    """The sign-in identities of a body (without the userPrincipalName one), as rows."""
    if len(items) > schema.MAX_IDENTITIES:
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
    # [objid]: the issuer's 512 character limit holds for every identity; the id's 64 character
    # limit sits in the userName bullet, and a federated id "can be in any format chosen by the
    # issuer" with no limit documented. For emailAddress the doc is not explicit: kept strict.
    if len(issuer) > schema.ISSUER_MAX or (lowered != "federated" and len(assigned) > schema.ISSUER_ASSIGNED_ID_MAX):
        raise errors.invalid_value("identities")
    if lowered != "federated" and issuer.lower() != tenant.default_domain:
        raise errors.bad_request(BAD_ISSUER, target="identities")
    if lowered.startswith("emailaddress") and not _is_plain_email(assigned):
        raise errors.invalid_value("identities")
    if lowered == "username" and not schema.is_user_name(assigned):
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
