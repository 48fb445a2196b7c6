"""Directory rules that both the client and the emulator need.

One module so that the tool validates a row exactly as Graph (and so the emulator) will:
password complexity, usage location codes, sign-in name syntax and property lengths.
Sources are the sections of shared/GRAPH.md named in each comment.
"""

from __future__ import annotations

import re
import string

# GRAPH.md §1.6 — lengths of the user properties we accept.
PROPERTY_MAX_LENGTHS: dict[str, int] = {
    "displayName": 256,
    "givenName": 64,
    "surname": 64,
    "mailNickname": 64,
    "city": 128,
    "state": 128,
    "country": 128,
    "jobTitle": 128,
    "department": 64,
    "companyName": 64,
    "mobilePhone": 64,
    "postalCode": 40,
    "streetAddress": 1024,
    "employeeId": 16,
    "officeLocation": 128,
    "preferredLanguage": 10,
    "faxNumber": 64,
    "employeeType": 64,
    "mail": 256,
    "userPrincipalName": 113,
}

EXTENSION_VALUE_MAX_LENGTH = 256  # GRAPH.md §1.6 [B2CAttrs]
ISSUER_ASSIGNED_ID_MAX_LENGTH = 64  # GRAPH.md §1.5
ISSUER_MAX_LENGTH = 512
MAX_IDENTITIES = 10

# ISO 3166-1 alpha-2, officially assigned codes (GRAPH.md §1.6 usageLocation).
USAGE_LOCATIONS: frozenset[str] = frozenset(
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

# GRAPH.md §2.1: the characters Entra accepts in a cloud password.
PASSWORD_SYMBOLS = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> "
PASSWORD_ALLOWED = frozenset(string.ascii_letters + string.digits + PASSWORD_SYMBOLS)
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256

_DIGIT = re.compile("[0-9]")
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# A deliberately plain address check: one @, a dotted domain, no spaces or accents.
# The client uses a full validator; Graph's own check is about this loose.
_EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_UPN_LOCAL = re.compile(r"^[A-Za-z0-9'._!#^~-]+$")
_EXTENSION = re.compile(r"^extension_([0-9a-fA-F]{32})_([A-Za-z][A-Za-z0-9_]*)$")
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})?$")


def password_problem(password: str, *, strong: bool = True) -> str | None:
    """Why Entra would refuse this password, or None when it complies (GRAPH.md §2.1)."""
    if not password:
        return "the password is empty"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"the password is longer than {PASSWORD_MAX_LENGTH} characters"
    if not strong:
        return None
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"the password is shorter than {PASSWORD_MIN_LENGTH} characters"
    if not PASSWORD_ALLOWED.issuperset(password):
        return "the password contains a character Entra does not allow (only ASCII letters, digits, symbols and space)"
    # Every character is ASCII here, so case changes tell letters apart, and a character that
    # is neither a letter nor a digit is one of the symbols.
    classes = ((password.upper() != password) + (password.lower() != password)
               + (_DIGIT.search(password) is not None) + (not password.isalnum()))
    if classes < 3:
        return "the password needs 3 of: lowercase, uppercase, digits, symbols"
    return None


def is_email(value: str) -> bool:
    if len(value) > 254 or value.count("@") != 1:
        return False
    local, _, domain = value.partition("@")
    if not local or len(local) > 64 or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return bool(_EMAIL.fullmatch(value)) and all(len(p) <= 63 for p in domain.split("."))


def is_user_name(value: str) -> bool:
    """GRAPH.md §1.5: a userName starts with a letter or digit; only alphanumerics, - and _."""
    return bool(_USER_NAME.fullmatch(value))


def upn_problem(upn: str) -> str | None:
    """GRAPH.md §1.4: characters and lengths of a userPrincipalName."""
    if upn.count("@") != 1:
        return "a userPrincipalName has exactly one @"
    local, _, domain = upn.partition("@")
    if len(upn) > 113 or len(local) > 64 or len(domain) > 48:
        return "a userPrincipalName has at most 64 characters before the @, 48 after, 113 in all"
    if not local or not domain:
        return "a userPrincipalName needs a name and a domain"
    if local.endswith("."):
        return "a userPrincipalName cannot have a '.' just before the @"
    if not _UPN_LOCAL.fullmatch(local):
        return "a userPrincipalName may only use A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @"
    return None


def normalise_usage_location(value: str) -> str | None:
    code = value.strip()
    # isascii: 'ı'.upper() is 'I', so "ıt" would otherwise pass as IT.
    return code.upper() if code.isascii() and code.upper() in USAGE_LOCATIONS else None


def is_language_tag(value: str) -> bool:
    return bool(_LANGUAGE.fullmatch(value))


def parse_extension_name(name: str) -> tuple[str, str] | None:
    """`extension_<appId without hyphens>_<name>` → (app id hex, attribute name)."""
    match = _EXTENSION.fullmatch(name)
    if not match:
        return None
    return match.group(1).lower(), match.group(2)


def has_accents(value: str) -> bool:
    return any(ord(c) > 127 for c in value)
