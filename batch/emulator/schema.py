"""The Graph v1.0 `user` resource as the emulator serves it, written from Graph's own
documentation and from real responses posted in public threads, never from entra-batch's
client validator (issue 11: "the emulator is Graph, not us").

Sources, all in microsoftgraph/microsoft-graph-docs-contrib unless named otherwise:
[user] api-reference/v1.0/resources/user.md (property table: types, "Read-only",
"Returned by default", "Maximum length is N characters"), [pwprofile]
api-reference/v1.0/resources/passwordprofile.md, [objid] api-reference/v1.0/resources/objectidentity.md,
[post] api-reference/v1.0/api/user-post-users.md, [update] api-reference/v1.0/api/user-update.md,
and the sections of shared/GRAPH.md that quote them. Where Graph's documentation is silent
and the rule was only ever our client's belief, the comment says so; such a rule is never
kinder than Graph (it refuses at least what Graph refuses, as far as anyone has seen).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

# ---- properties --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Property:
    """One property of `microsoft.graph.user`: its JSON kind (`str`, `bool`, `list` of strings,
    `identities`, `passwordProfile`, `object`), whether a client may write it, and its maximum
    length when [user] gives one."""

    kind: str
    read_only: bool = False
    max_length: int | None = None


def _p(kind: str = "str", max_length: int | None = None) -> Property:
    return Property(kind, False, max_length)


def _ro(kind: str = "str") -> Property:
    return Property(kind, True)


# [user] "Properties". Writable ones with the maximum lengths the table states; "Read-only" ones
# refuse a write. mail, employeeId, faxNumber, officeLocation, employeeType and preferredLanguage
# have no length in [user]: their limits (GRAPH.md §1.6, and 10 for a language tag) are kept
# from the earlier shared table, which is stricter than no limit, not kinder.
USER: dict[str, Property] = {
    "id": _ro(),  # "Key. Not nullable. Read-only." On POST Graph ignores it (see `IGNORED_ON_CREATE`)
    "accountEnabled": _p("bool"),
    "ageGroup": _p(),  # allowed values: see ENUMS
    "assignedLicenses": _ro("list"),  # written through assignLicense, never PATCH
    "assignedPlans": _ro("list"),
    "businessPhones": _p("list"),
    "city": _p(max_length=128),
    "companyName": _p(max_length=64),
    "consentProvidedForMinor": _p(),
    "country": _p(max_length=128),
    "createdDateTime": _ro(),
    "creationType": _ro(),
    "deletedDateTime": _ro(),
    "department": _p(max_length=64),
    "displayName": _p(max_length=256),
    "employeeId": _p(max_length=16),  # current user.md: "The maximum length is 16 characters"
    "employeeType": _p(max_length=64),  # no length in [user]; kept from GRAPH.md §1.6's table
    "externalUserState": _ro(),
    "externalUserStateChangeDateTime": _ro(),
    "faxNumber": _p(max_length=64),  # no length in [user]; kept
    "givenName": _p(max_length=64),
    "identities": _p("identities"),
    "imAddresses": _ro("list"),
    "jobTitle": _p(max_length=128),
    "lastPasswordChangeDateTime": _ro(),
    "legalAgeGroupClassification": _ro(),
    "mail": _p(max_length=256),  # no length in [user]; kept
    "mailNickname": _p(max_length=64),
    "mobilePhone": _p(max_length=64),
    "officeLocation": _p(max_length=128),  # not in [user]; 128 in the pages of types inheriting from user
    "onPremisesDistinguishedName": _ro(),
    "onPremisesDomainName": _ro(),
    "onPremisesImmutableId": _p(),
    "onPremisesLastSyncDateTime": _ro(),
    "onPremisesSamAccountName": _ro(),
    "onPremisesSecurityIdentifier": _ro(),
    "onPremisesSyncEnabled": _ro("bool"),
    "onPremisesUserPrincipalName": _ro(),
    "otherMails": _p("list"),
    "passwordPolicies": _p(),
    "passwordProfile": _p("passwordProfile"),
    "postalCode": _p(max_length=40),
    "preferredLanguage": _p(max_length=10),  # an ISO 639-1 tag such as en-US; the 10 is ours
    "proxyAddresses": _ro("list"),  # "Read-only, Not nullable"
    "refreshTokensValidFromDateTime": _ro(),
    "showInAddressList": _p("bool"),
    "signInSessionsValidFromDateTime": _ro(),  # "Read-only. Use revokeSignInSessions to reset."
    "state": _p(max_length=128),
    "streetAddress": _p(max_length=1024),
    "surname": _p(max_length=64),
    "usageLocation": _p(),
    "userPrincipalName": _p(max_length=113),  # GRAPH.md §1.4 (the SSPR page's UPN limits)
    "userType": _p(),
}

# [user]: "Returned by default" (GRAPH.md §1.7), in the order of the documented responses.
DEFAULT_SELECT: tuple[str, ...] = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                                   "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")

LIST_VALUED = frozenset(name for name, prop in USER.items() if prop.kind in ("list", "identities"))

# azure-ad-b2c/user-migration#25: an `id` in a POST /users body is silently dropped and a new id is
# assigned (the migration sample sent the old objectId and got a different one back).
IGNORED_ON_CREATE = frozenset({"id"})

# [user] ageGroup "Allowed values: null, Minor, NotAdult and Adult" (older copies of the page:
# "minor, notAdult and adult"), consentProvidedForMinor "null, Granted, Denied and NotRequired"
# (older: "granted, denied and notRequired"). As the documented case changed, members are
# compared case-insensitively (UNSURE) and stored as sent.
ENUMS: dict[str, frozenset[str]] = {
    "ageGroup": frozenset({"minor", "notadult", "adult"}),
    "consentProvidedForMinor": frozenset({"granted", "denied", "notrequired"}),
}
# [user] userType: "such as Member and Guest"; B2C's attribute page says Member (GRAPH.md §1.6).
# Whether Graph takes another case is not documented: only these spellings (never kinder).
USER_TYPES = frozenset({"Member", "Guest"})


def is_member(name: str, value: str) -> bool:
    """Whether `value` is one of the allowed values of the enumeration-like property `name`."""
    return value in USER_TYPES if name == "userType" else value.lower() in ENUMS[name]


_BY_LOWER = {name.lower(): name for name in USER}


def property_named(name: str) -> str | None:
    """The property's canonical name: OData matches names case-insensitively in this service
    (a `$select=DisplayName` answers `displayName`); None when the user has no such property."""
    return _BY_LOWER.get(name.strip().lower())


# ---- extension attributes -----------------------------------------------------------------------

# GRAPH.md §1.6 [B2CAttrs], [ExtAttrs]: `extension_<appId of the b2c-extensions-app, no hyphens>_<name>`;
# a string value holds at most 256 characters. The attribute name's own syntax is not documented
# beyond "letters"; we accept a letter then letters, digits and underscores.
_EXTENSION = re.compile(r"^extension_([0-9a-fA-F]{32})_([A-Za-z][A-Za-z0-9_]*)$")
EXTENSION_STRING_MAX = 256


def extension_app_hex(name: str) -> str | None:
    """The app id (32 lower-case hex digits) an extension attribute name belongs to, or None
    when `name` is not shaped as one."""
    match = _EXTENSION.fullmatch(name)
    return match.group(1).lower() if match else None


# ---- identities ([objid], GRAPH.md §1.5) --------------------------------------------------------

ISSUER_MAX = 512  # [objid] "issuer … 512 character limit"
ISSUER_ASSIGNED_ID_MAX = 64  # [objid] userName's "64 character limit"; applied to emailAddress too, none to federated
MAX_IDENTITIES = 10  # B2C user-profile-attributes: "up to 10 identities" (GRAPH.md §1.5)
# [objid]: for `userName` the id "must begin with a letter or number, and can only contain
# alphanumeric characters and the following special characters: - or _".
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def is_user_name(value: str) -> bool:
    return bool(_USER_NAME.fullmatch(value))


# [objid]: for `emailAddress` (and custom types starting with it) the id "must be a valid email
# address". Graph does not publish its address grammar; this is a plain one (one @, a dotted
# domain, ASCII only: [user] forbids accents in mail and otherMails).
_EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def is_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    if not at or len(value) > 254 or not local or len(local) > 64 or ".." in local:
        return False
    if local[0] == "." or local[-1] == ".":
        return False
    # The domain is a host name (RFC 1123): labels of 1-63 characters that neither start nor
    # end with a hyphen.
    return bool(_EMAIL.fullmatch(value)) and all(len(label) <= 63 and label[0] != "-" and label[-1] != "-"
                                                  for label in domain.split("."))


def has_accents(value: str) -> bool:
    """[user] mail, otherMails, userPrincipalName: "cannot contain accent characters"."""
    return not value.isascii()


# ---- userPrincipalName (GRAPH.md §1.4) ----------------------------------------------------------

# [post]/[update]: "only the following characters: A - Z a - z 0 - 9 ' . - _ ! # ^ ~"; the SSPR
# page: 64 before the @, 48 after, 113 in all, no "." just before the @.
_UPN_LOCAL = re.compile(r"^[A-Za-z0-9'._!#^~-]+$")


def upn_is_valid(upn: str) -> bool:
    if upn.count("@") != 1:
        return False
    local, _, domain = upn.partition("@")
    if not local or not domain or len(local) > 64 or len(domain) > 48 or len(upn) > 113:
        return False
    return not local.endswith(".") and bool(_UPN_LOCAL.fullmatch(local))


# ---- usageLocation and preferredLanguage --------------------------------------------------------

# [user] usageLocation: "A two letter country code (ISO standard 3166)". The officially assigned
# ISO 3166-1 alpha-2 codes.
ISO_3166: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)


def usage_location(value: str) -> str | None:
    """The code as stored (upper case), or None when it is not an ISO 3166 code. That Graph
    accepts lower case and surrounding spaces is not documented: a belief the emulator kept
    from its first version (UNSURE)."""
    code = value.strip()
    return code.upper() if code.isascii() and code.upper() in ISO_3166 else None


# [user] preferredLanguage: "Should follow ISO 639-1 Code; for example en-US".
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})?$")


def is_language_tag(value: str) -> bool:
    return bool(_LANGUAGE.fullmatch(value))


# ---- passwords (GRAPH.md §2.1: the Entra cloud password policy, SSPR page) ----------------------

PASSWORD_SYMBOLS = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> "
_PASSWORD_ALLOWED = frozenset(string.ascii_letters + string.digits + PASSWORD_SYMBOLS)
PASSWORD_MIN, PASSWORD_MAX = 8, 256
# [user] passwordPolicies: "DisableStrongPassword … DisablePasswordExpiration … may be specified
# together". Graph's matching of case is not documented; accepted case-insensitively (UNSURE).
PASSWORD_POLICIES = {"disablepasswordexpiration": "DisablePasswordExpiration",
                     "disablestrongpassword": "DisableStrongPassword"}
# [pwprofile]: password, forceChangePasswordNextSignIn, forceChangePasswordNextSignInWithMfa.
PASSWORD_PROFILE_KEYS = frozenset({"password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"})


def password_is_accepted(password: str, *, strong: bool) -> bool:
    """Whether the policy takes `password`: 8–256 characters of the allowed set, three of four
    classes; with DisableStrongPassword only a non-empty password of at most 256 characters
    (how weak Graph then lets a password be is not documented)."""
    if not password or len(password) > PASSWORD_MAX:
        return False
    if not strong:
        return True
    if len(password) < PASSWORD_MIN or any(c not in _PASSWORD_ALLOWED for c in password):
        return False
    classes = (any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(c in PASSWORD_SYMBOLS for c in password))
    return sum(classes) >= 3


__all__ = ["DEFAULT_SELECT", "ENUMS", "IGNORED_ON_CREATE", "LIST_VALUED", "USER", "Property", "property_named"]
