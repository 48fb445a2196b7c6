"""The user resource as Graph defines it, shared by the emulator and `export`: property
names and types, which ones a client may write, and the default set returned without
`$select` (GRAPH.md §1.6, §1.7)."""

from __future__ import annotations

# name → JSON type: "str", "bool", "list", "identities", "passwordProfile", "readonly"
USER_PROPERTIES: dict[str, str] = {
    "id": "readonly",
    "accountEnabled": "bool",
    "ageGroup": "str",
    "businessPhones": "list",
    "city": "str",
    "companyName": "str",
    "consentProvidedForMinor": "str",
    "country": "str",
    "createdDateTime": "readonly",
    "creationType": "readonly",
    "deletedDateTime": "readonly",
    "department": "str",
    "displayName": "str",
    "employeeId": "str",
    "employeeType": "str",
    "externalUserState": "readonly",
    "faxNumber": "str",
    "givenName": "str",
    "identities": "identities",
    "imAddresses": "readonly",
    "jobTitle": "str",
    "lastPasswordChangeDateTime": "readonly",
    "legalAgeGroupClassification": "readonly",
    "mail": "str",
    "mailNickname": "str",
    "mobilePhone": "str",
    "officeLocation": "str",
    "onPremisesImmutableId": "str",
    "otherMails": "list",
    "passwordPolicies": "str",
    "passwordProfile": "passwordProfile",
    "postalCode": "str",
    "preferredLanguage": "str",
    "proxyAddresses": "readonly",
    "showInAddressList": "bool",
    "signInSessionsValidFromDateTime": "readonly",
    "state": "str",
    "streetAddress": "str",
    "surname": "str",
    "usageLocation": "str",
    "userPrincipalName": "str",
    "userType": "str",
}

DEFAULT_PROPERTIES: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

LIST_PROPERTIES = frozenset({"businessPhones", "otherMails", "proxyAddresses", "imAddresses", "identities"})

_BY_LOWER = {name.lower(): name for name in USER_PROPERTIES}


def canonical_property(name: str) -> str | None:
    """Graph matches property names case-insensitively; None when there is no such property."""
    return _BY_LOWER.get(name.strip().lower())
