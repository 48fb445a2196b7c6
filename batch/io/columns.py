"""Column names per verb, and how a file's header line maps onto them.

Each verb declares a `ColumnSet`: its canonical column names (the keys of `Row.cells`), the
other spellings administrators use, the Graph property the Entra admin center writes in
brackets in its bulk templates, and which columns are required. `match_headers` turns a
file's header line into a `HeaderMatch`: which file column feeds which canonical name, and
what is unknown, missing or misspelt.

Matching rules (PRODUCT.md, "Input files"):

1. A name in brackets wins: `Name [displayName] Required` is `displayName`, whatever the
   label says. The bracketed name is compared with each column's Graph property and its
   canonical name. The admin center's `Block sign in (Yes/No) [accountEnabled] Required`
   is `blockSignIn`, not `accountEnabled`, because its values are inverted (Yes = blocked).
   A bracketed name that no column knows makes the header unknown: the label is *not*
   tried, so that a portal column (say `Email [mail]`) never lands in another column
   whose alias happens to match its label.
2. Otherwise the header is compared, normalised (`normalise_header`), with each column's
   canonical name, aliases and Graph property; failing that, once more without
   parenthesised remarks and a trailing "Required" (`Block sign in (Yes/No)`).
3. With `ColumnSet.extensions`, custom attributes pass through under their own header
   text (stripped): `extension_<32 hex app id>_<name>` and `ext.<name>`.

A header that maps to a canonical name already taken by an earlier column is not used:
the first one wins and the later one is listed in `HeaderMatch.unknown` with a note saying
which column it duplicates (a warning, not an error, like any unknown column). Blank
header cells are ignored; a blank one between named columns is listed as unknown.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, replace

from batch.io.quoting import shown

__all__ = [
    "CREATE_COLUMNS",
    "KEY_COLUMNS",
    "PORTAL_CREATE_HEADER",
    "PORTAL_DELETE_HEADER",
    "PORTAL_RESTORE_HEADER",
    "PORTAL_VERSION_LINE",
    "Column",
    "ColumnSet",
    "HeaderMatch",
    "key_columns",
    "match_headers",
    "normalise_header",
]


@dataclass(frozen=True)
class Column:
    """One input column of a verb."""

    name: str
    aliases: tuple[str, ...] = ()
    graph: str | None = None
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class ColumnSet:
    """The columns a verb reads.

    `one_of` groups need at least one of their columns present (e.g. a sign-in name or a
    UPN). `template` is the header `entra-batch template VERB` writes, in order; empty
    means every column in declaration order.
    """

    verb: str
    columns: tuple[Column, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    extensions: bool = True
    template: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.verb}: duplicate column names in {names}")
        for name in [*(n for group in self.one_of for n in group), *self.template]:
            if name not in names:
                raise ValueError(f"{self.verb}: {name!r} is not one of its columns")
        _lookup(self)  # raises on two columns claiming the same spelling

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def template_names(self) -> tuple[str, ...]:
        """The header of `entra-batch template VERB`."""
        return self.template or self.names


@dataclass(frozen=True)
class HeaderMatch:
    """What `match_headers` found in a header line."""

    by_index: dict[int, str]
    unknown: list[str]
    missing: list[str]
    suggestions: dict[str, str]


def normalise_header(text: str) -> str:
    """A header as compared: case-folded, without whitespace, '_', '-' (or a stray BOM)."""
    return _IGNORED.sub("", text).casefold()


def match_headers(headers: list[str], columns: ColumnSet) -> HeaderMatch:
    """Map a file's header cells onto `columns` (rules in the module docstring).

    `by_index` maps the 0-based position of each recognised header to its canonical name
    (for a custom attribute, its stripped header text). `missing` lists required columns
    not found and unsatisfied `one_of` groups, the latter written "a or b".
    `suggestions` maps a missing entry to the unmatched header that looks most like it.
    """
    lookup = _lookup(columns)
    by_index: dict[int, str] = {}
    taken: dict[str, int] = {}
    unknown: list[str] = []
    unmatched: list[str] = []
    last_named = max((i for i, h in enumerate(headers) if h.strip()), default=-1)
    for index, header in enumerate(headers):
        text = header.strip()
        if not text:
            if index < last_named:
                unknown.append(f"column {index + 1} (no header)")
            continue
        name = _match_one(text, columns, lookup)
        if name is None:
            unknown.append(shown(header))
            unmatched.append(header)
        elif name in taken:
            first = taken[name]
            unknown.append(f"{shown(header)} (duplicate of {name}, column {first + 1} "
                           f"'{shown(headers[first])}'; ignored)")
        else:
            taken[name] = index
            by_index[index] = name

    missing: list[str] = [c.name for c in columns.columns if c.required and c.name not in taken]
    groups = [group for group in columns.one_of if not any(name in taken for name in group)]
    missing += [" or ".join(group) for group in groups]

    suggestions: dict[str, str] = {}
    wanted = {c.name: c for c in columns.columns}
    for entry in missing:
        spellings = [s for name in entry.split(" or ") for s in _spellings(wanted[name])]
        closest = _closest(spellings, unmatched)
        if closest is not None:
            suggestions[entry] = closest
    return HeaderMatch(by_index=by_index, unknown=unknown, missing=missing, suggestions=suggestions)


# --- matching internals ------------------------------------------------------------------

_IGNORED = re.compile(r"[\s_\-\ufeff]+")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_REMARK = re.compile(r"\([^()]*\)")
_REQUIRED_SUFFIX = re.compile(r"(\*|required)$")
# Graph names custom attributes extension_<app id without dashes>_<attribute name>.
_EXTENSION = re.compile(r"extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+")
_EXTENSION_SHORT = re.compile(r"ext\.[A-Za-z0-9_]+", re.IGNORECASE)
_SUGGESTION_CUTOFF = 0.6


@dataclass(frozen=True)
class _Lookup:
    spelling: dict[str, str]  # normalised header → canonical name
    bracket: dict[str, str]  # normalised bracketed Graph property or canonical name → canonical name


def _spellings(column: Column) -> list[str]:
    return [column.name, *column.aliases, *([column.graph] if column.graph else [])]


@functools.cache
def _lookup(columns: ColumnSet) -> _Lookup:
    spelling: dict[str, str] = {}
    bracket: dict[str, str] = {}
    for column in columns.columns:
        for text in _spellings(column):
            key = normalise_header(text)
            owner = spelling.setdefault(key, column.name)
            if owner != column.name:
                raise ValueError(f"{columns.verb}: {text!r} would match both {owner} and {column.name}")
        # Every bracket name is a spelling too, so the check above covers these.
        for name in (column.graph, column.name):
            if name:
                bracket[normalise_header(name)] = column.name
    return _Lookup(spelling=spelling, bracket=bracket)


def _match_one(text: str, columns: ColumnSet, lookup: _Lookup) -> str | None:
    bracket = _BRACKET.search(text)
    if bracket is not None:
        prop = bracket.group(1).strip()
        if columns.extensions and _is_extension(prop):
            return prop
        key = normalise_header(prop)
        label = normalise_header(text[: bracket.start()])
        # The admin center's "Block sign in (Yes/No) [accountEnabled]": Yes means blocked.
        if key == "accountenabled" and label.startswith("blocksignin") and "blockSignIn" in columns.names:
            return "blockSignIn"
        return lookup.bracket.get(key)
    if columns.extensions and _is_extension(text):
        return text
    name = lookup.spelling.get(normalise_header(text))
    if name is None:
        bare = _REQUIRED_SUFFIX.sub("", normalise_header(_REMARK.sub("", text)))
        name = lookup.spelling.get(bare) if bare else None
    return name


def _is_extension(text: str) -> bool:
    return bool(_EXTENSION.fullmatch(text) or _EXTENSION_SHORT.fullmatch(text))


def _closest(spellings: list[str], headers: list[str]) -> str | None:
    best: tuple[float, str] | None = None
    for header in headers:
        candidate = normalise_header(_BRACKET.sub("", header)) or normalise_header(header)
        for spelling in spellings:
            ratio = difflib.SequenceMatcher(None, normalise_header(spelling), candidate).ratio()
            if ratio >= _SUGGESTION_CUTOFF and (best is None or ratio > best[0]):
                best = (ratio, header)
    return None if best is None else best[1]


# --- the verbs' columns ------------------------------------------------------------------

# Federated identities (batch/verbs/identities.py): `federatedIssuer`/`federatedId`, then
# `federatedIssuer2`/`federatedId2` … up to MAX_NUMBERED_FEDERATED.
MAX_NUMBERED_FEDERATED = 5
FEDERATED_PAIRS = tuple((f"federatedIssuer{'' if n == 1 else n}", f"federatedId{'' if n == 1 else n}")
                        for n in range(1, MAX_NUMBERED_FEDERATED + 1))
# The export's sign-in columns (batch/export/fields.py SIGN_IN_COLUMNS), read back by create.
EXPORT_COLUMNS = ("signIn.emailAddress", "signIn.userName", "signIn.federated")


def _federated_columns() -> tuple[Column, ...]:
    """`federatedIssuer`/`federatedId`, numbered for more (batch/verbs/identities.py): the
    numbered pairs are plain columns, so header matching needs nothing new for them."""
    columns: list[Column] = []
    for n, (issuer, assigned) in enumerate(FEDERATED_PAIRS, start=1):
        suffix = "" if n == 1 else f" {n}"
        which = "" if n == 1 else f" (identity {n})"
        columns += [
            Column(issuer, (f"social issuer{suffix}", f"federated issuer{suffix}", f"identity provider{suffix}"),
                   help=f"the issuer of a social or federated identity, e.g. google.com, facebook.com{which}"),
            Column(assigned, (f"social id{suffix}", f"federated id{suffix}", f"social issuer assigned id{suffix}"),
                   help=f"the id the issuer gave the customer (its issuerAssignedId){which}"),
        ]
    return tuple(columns)


FEDERATED_COLUMNS = _federated_columns()
# The export's identity columns (batch/export/fields.py), so that an export is create's input.
EXPORT_IDENTITY_COLUMNS = (
    Column(EXPORT_COLUMNS[0], help="the export's email sign-in names (several joined by '; ')"),
    Column(EXPORT_COLUMNS[1], help="the export's user-name sign-in names (several joined by '; ')"),
    Column(EXPORT_COLUMNS[2], help="the export's federated identities, issuer/issuerAssignedId "
                                   "(several joined by '; ')"),
)

CREATE_COLUMNS = ColumnSet(
    verb="create",
    columns=(
        Column("signInType", ("sign in type", "sign-in type", "sign in method", "sign-in method", "identity type"),
               help="emailAddress or userName (email and username too); blank: an @ in signInName means "
                    "emailAddress, otherwise userName"),
        Column("signInName", ("sign in name", "sign-in name", "email", "email address", "issuer assigned id",
                              "issuerAssignedId", "login"),
               help="the email address or user name the customer signs in with"),
        Column("displayName", ("name", "display name"), graph="displayName", required=True,
               help="the name shown for the customer"),
        Column("givenName", ("first name", "given name"), graph="givenName", help="first name"),
        Column("surname", ("last name", "family name"), graph="surname", help="last name"),
        Column("blockSignIn", ("block sign in", "blocked"),
               help="Yes to block sign-in (the account is created disabled); blank or No: enabled"),
        Column("accountEnabled", ("account enabled", "enabled"), graph="accountEnabled",
               help="true/false; the opposite of blockSignIn (give one or the other)"),
        Column("usageLocation", ("usage location",), graph="usageLocation",
               help="two-letter country code, e.g. US, FR, NA"),
        Column("mail", ("contact email",), graph="mail", help="contact email address (not the sign-in name)"),
        Column("password", ("initial password",), graph="passwordProfile",
               help="initial password; blank: one is generated and written to passwords.csv"),
        Column("forceChangePasswordNextSignIn", ("force change password", "force change password next sign in"),
               help="Yes/No: must the customer change the password at first sign-in"),
        Column("userPrincipalName", ("user principal name", "upn"), graph="userPrincipalName",
               help="user principal name; blank: Graph generates one"),
        Column("jobTitle", ("job title",), graph="jobTitle", help="job title"),
        Column("department", (), graph="department", help="department"),
        Column("companyName", ("company name", "company"), graph="companyName", help="company name"),
        Column("city", (), graph="city", help="city"),
        Column("state", ("state or province",), graph="state", help="state or province"),
        Column("country", ("country or region",), graph="country", help="country or region"),
        Column("streetAddress", ("street address",), graph="streetAddress", help="street address"),
        Column("postalCode", ("zip or postal code", "postal code", "zip"), graph="postalCode",
               help="ZIP or postal code"),
        Column("officeLocation", ("office", "office location"), graph="physicalDeliveryOfficeName",
               help="office location"),
        Column("mobilePhone", ("mobile phone", "mobile"), graph="mobile", help="mobile phone number"),
        Column("businessPhone", ("office phone", "business phone", "businessPhones"), graph="telephoneNumber",
               help="office phone number"),
        Column("preferredLanguage", ("preferred language",), graph="preferredLanguage",
               help="language tag, e.g. en-US"),
        Column("employeeId", ("employee id",), graph="employeeId", help="employee id"),
        *FEDERATED_COLUMNS,
        *EXPORT_IDENTITY_COLUMNS,
    ),
    # An export has userPrincipalName (and signIn.* columns); a social-only file has federatedIssuer.
    one_of=(("signInName", "userPrincipalName", "federatedIssuer"),),
    template=("signInType", "signInName", "displayName", "givenName", "surname", "blockSignIn", "usageLocation",
              "mail", "password", "forceChangePasswordNextSignIn"),
)

# A user key: any one of these identifies the customer of a row (PRODUCT.md, "user key").
KEY_COLUMNS = (
    Column("objectId", ("object id", "id", "user id"), graph="objectId", help="the customer's object id"),
    Column("userPrincipalName", ("user principal name", "upn", "user name"), graph="userPrincipalName",
           help="the customer's user principal name"),
    Column("signInName", ("sign in name", "sign-in name", "email", "email address", "issuer assigned id",
                          "issuerAssignedId", "login"),
           help="the email address or user name the customer signs in with"),
)


def key_columns(verb: str, template: tuple[str, ...]) -> ColumnSet:
    """The columns of a verb whose rows name one customer by a user key and hold nothing else."""
    return ColumnSet(verb=verb, columns=KEY_COLUMNS, one_of=(("objectId", "userPrincipalName", "signInName"),),
                     extensions=False, template=template)


DELETE_COLUMNS = key_columns("delete", template=("signInName",))
RESTORE_COLUMNS = key_columns("restore", template=("objectId",))

_PROFILE = {c.name: c for c in CREATE_COLUMNS.columns}
UPDATE_COLUMNS = ColumnSet(
    verb="update",
    columns=KEY_COLUMNS + tuple(replace(_PROFILE[name], required=False) for name in (
        "displayName", "givenName", "surname", "blockSignIn", "accountEnabled", "usageLocation", "mail", "jobTitle",
        "department", "companyName", "city", "state", "country", "streetAddress", "postalCode", "officeLocation",
        "mobilePhone", "businessPhone", "preferredLanguage", "employeeId")) + (
        Column("newSignInName", ("new sign in name", "new sign-in name", "new email"),
               help="a new email address or user name to sign in with (replaces the current one)"),
        *FEDERATED_COLUMNS,
        # An export is update's input too (issue 14): its federated identities are added as
        # federatedIssuer/federatedId's are. Its sign-in name columns are not read: which of
        # them would replace the customer's is newSignInName's to say.
        replace(EXPORT_IDENTITY_COLUMNS[2], help="federated identities to add, issuer/issuerAssignedId as the export "
                                                 "writes them (several joined by '; ')"),
    ),
    one_of=(("objectId", "userPrincipalName", "signInName"),),
    template=("signInName", "displayName", "givenName", "surname", "blockSignIn", "usageLocation"),
)
RESET_COLUMNS = key_columns("reset-password", template=("signInName",))
PURGE_COLUMNS = key_columns("purge", template=("objectId",))

# The Entra admin center's bulk templates, as downloaded (PRODUCT.md, "Input files").
PORTAL_VERSION_LINE = "version:v1.0"
PORTAL_CREATE_HEADER = (
    "Name [displayName] Required,User name [userPrincipalName] Required,"
    "Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required,"
    "First name [givenName],Last name [surname],Job title [jobTitle],Department [department],"
    "Usage location [usageLocation],Street address [streetAddress],State or province [state],"
    "Country or region [country],Office [physicalDeliveryOfficeName],City [city],"
    "ZIP or postal code [postalCode],Office phone [telephoneNumber],Mobile phone [mobile]"
)
PORTAL_DELETE_HEADER = "User name [userPrincipalName] Required"
PORTAL_RESTORE_HEADER = "Object ID [objectId] Required"
