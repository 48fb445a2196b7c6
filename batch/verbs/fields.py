"""The field rules of customer profiles: one table, used by `create` and `update` alike, so
that both check a column the same way and say the same thing about it.

A rule takes a column's name and its (stripped, non-blank) value, appends what is wrong to
`problems`, and gives the Graph property and value it becomes. Lengths and code lists come
from batch/rules.py (GRAPH.md §1.5, §1.6); the one email rule is `email_problem`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from batch import rules
from batch.io.quoting import shown
from batch.verbs.attribute_values import typed_value
from batch.verbs.attributes import Attribute, AttributeCatalog

TRUE_WORDS = frozenset({"yes", "y", "true", "1"})
FALSE_WORDS = frozenset({"no", "n", "false", "0"})
# Columns copied as they are into the body, after their length check.
PROFILE_COLUMNS = ("givenName", "surname", "jobTitle", "department", "companyName", "city", "state", "country",
                   "streetAddress", "postalCode", "officeLocation", "mobilePhone", "employeeId")
FLAG_COLUMNS = ("blockSignIn", "accountEnabled")


def parse_bool(value: str) -> bool:
    """Yes/No, true/false, 1/0 (any case); ValueError otherwise."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(value)


# --- the one email rule ------------------------------------------------------------------

# The common, plainly valid address, checked fast; anything else goes to email-validator,
# which gives the reason. Every address this accepts, email-validator accepts too (tested).
_PLAIN_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def plainly_valid_email(value: str) -> bool:
    """The common, plainly valid address (no reason needed): what `email_problem` passes
    without asking email-validator."""
    if len(value) > 254 or not _PLAIN_EMAIL.fullmatch(value):
        return False
    domain = value.rpartition("@")[2]
    if domain.rpartition(".")[2].lower() in _SPECIAL_USE:
        return False
    # Two characters then "--" at the start of a label are reserved for Punycode (RFC 5890
    # R-LDH labels, `xn--`): email-validator refuses most such labels and decodes the others,
    # so it decides them all (`0@00--0.aa` passed here once, and email-validator refused it).
    return not any(label[2:4] == "--" for label in domain.split("."))


def email_problem(value: str) -> str | None:
    """Why `value` is not an address Entra accepts, or None. Every email check of the client
    (sign-in names, mail, user keys) is this one."""
    if plainly_valid_email(value):
        return None
    if rules.has_accents(value):
        return "has accented characters, which Entra does not accept in an address"
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def sign_in_name_problem(column: str, value: str, sign_in_type: str) -> str | None:
    """Why `value` cannot be the issuerAssignedId of an `emailAddress` or `userName` identity."""
    if len(value) > rules.ISSUER_ASSIGNED_ID_MAX_LENGTH:
        return f"{column} is longer than {rules.ISSUER_ASSIGNED_ID_MAX_LENGTH} characters"
    if sign_in_type == "emailAddress":
        problem = email_problem(value)
        return f"{column} '{shown(value)}' is not a valid email address: {problem}" if problem else None
    if not rules.is_user_name(value):
        return (f"{column} '{shown(value)}' is not a valid user name: it must start with a letter or digit and hold only "
                "letters, digits, '-' and '_'")
    return None


# --- the table ---------------------------------------------------------------------------

Rule = Callable[[str, str, list[str]], tuple[str, Any]]


# Columns whose value may span lines: a postal address does (Excel's Alt+Enter, a quoted
# line break in the file). Every other text property is shown on one line (the portal, the
# sign-in pages, mail), so a line break or tab there is an accident of the spreadsheet.
MULTI_LINE_COLUMNS = frozenset({"streetAddress"})
_LINE_BREAK_OR_TAB = re.compile("[\r\n\t]")


def _text(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    limit = rules.PROPERTY_MAX_LENGTHS.get(column)
    if limit is not None and len(value) > limit:
        problems.append(f"{column} is {len(value)} characters long; Entra allows {limit}")
    if column not in MULTI_LINE_COLUMNS and (found := _LINE_BREAK_OR_TAB.search(value)):
        what = "a tab" if found.group() == "\t" else "a line break"
        problems.append(f"{column} holds {what} at character {found.start() + 1}; it is shown on one line: "
                        "remove it (only streetAddress may span lines)")
    return column, value


def _display_name(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    _text(column, value, problems)
    if "<" in value or ">" in value:
        problems.append(f"{column} cannot contain < or >")
    return column, value


def _usage_location(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    code = rules.normalise_usage_location(value)
    if code is None:
        problems.append(f"{column} '{shown(value)}' is not an ISO 3166-1 two-letter country code (e.g. US, FR, NA)")
    return column, code


def _mail(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    problem = email_problem(value)
    if problem:
        problems.append(f"{column} '{shown(value)}' is not a valid email address: {problem}")
    return column, value


def _language(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    if not rules.is_language_tag(value):
        problems.append(f"{column} '{shown(value)}' is not a language tag such as en-US")
    return column, value


def _business_phone(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    return "businessPhones", [value]


# Column → rule, in the order problems are reported. The flags (blockSignIn, accountEnabled)
# are read together by `account_enabled`, and custom attributes by `Extensions`.
FIELD_RULES: Mapping[str, Rule] = {
    "displayName": _display_name,
    **{column: _text for column in PROFILE_COLUMNS},
    "businessPhone": _business_phone,
    "usageLocation": _usage_location,
    "mail": _mail,
    "preferredLanguage": _language,
}


def check_field(column: str, value: str, problems: list[str]) -> tuple[str, Any]:
    """The Graph property and value of a filled field column (a key of FIELD_RULES)."""
    return FIELD_RULES[column](column, value, problems)


def check_fields(cells: Mapping[str, str], problems: list[str], *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The properties that the row's filled field columns give, in table order."""
    body: dict[str, Any] = {}
    for column, rule in FIELD_RULES.items():
        value = cells.get(column, "").strip()
        if value and column not in skip:
            prop, wanted = rule(column, value, problems)
            body[prop] = wanted
    return body


def flag(cells: Mapping[str, str], column: str, problems: list[str]) -> bool | None:
    """A Yes/No cell: None when blank (or not Yes/No, with the problem said)."""
    value = cells.get(column, "").strip()
    if not value:
        return None
    try:
        return parse_bool(value)
    except ValueError:
        problems.append(f"{column} '{shown(value)}' is not Yes/No (true/false, 1/0)")
        return None


def account_enabled(cells: Mapping[str, str], problems: list[str]) -> bool | None:
    """accountEnabled as the row gives it: blockSignIn inverted, or accountEnabled; None when
    the row gives neither."""
    block = flag(cells, "blockSignIn", problems)
    enabled = flag(cells, "accountEnabled", problems)
    if block is not None and enabled is not None and block == enabled:
        problems.append("blockSignIn and accountEnabled disagree")
    if block is not None:
        return not block
    return enabled


# --- custom attributes -------------------------------------------------------------------

def is_extension_column(column: str) -> bool:
    return column.lower().startswith(("extension_", "ext."))


class Extensions:
    """Custom attribute columns.

    With the tenant's catalog (`AttributeCatalog`, read at the start of a run): `ext.<name>`
    and a bare attribute name (claimed as `ext.<name>` once the catalog is known, batch/run/
    attributes.py) are found by name; `extension_<hex>_<name>` of the tenant's extensions app
    by property; `extension_<other hex>_<name>` (an export of another tenant) by its name
    (the run says so once, batch/run/attributes.foreign_note). Each value is checked against
    the attribute's declared type (batch/verbs/attribute_values.py). An attribute the tenant
    does not have is a problem naming the ones it has, for each row that gives it a value: an
    export of another tenant may carry attributes this one lacks, mostly blank, and only the
    rows that would lose a value are held back.

    Without a catalog (`validate` offline): `extension_<appId without hyphens>_<name>`, or
    `ext.<name>` with the extensions app id known (GRAPH.md §1.6 [B2CAttrs]); values are
    strings but "true"/"false", which become booleans.
    """

    def __init__(self, app_id: str | None, catalog: AttributeCatalog | None = None) -> None:
        self.catalog = catalog
        self.app_id = catalog.app_id if catalog is not None else app_id
        self.prefix = f"extension_{self.app_id.replace('-', '').lower()}_" if self.app_id else None

    def attribute(self, column: str, problems: list[str]) -> Attribute | None:
        """The tenant's attribute a column names (with a catalog), or None with the problem said."""
        assert self.catalog is not None
        lowered = column.lower()
        if lowered.startswith("ext."):
            name = column[4:]
            found = self.catalog.find(name)
        else:
            parsed = rules.parse_extension_name(column)
            if parsed is None:
                problems.append(f"column '{shown(column, 60)}' is not a custom attribute name "
                                "(ext.<name> or extension_<appId without hyphens>_<name>)")
                return None
            name = parsed[1]
            found = self.catalog.find(name)  # this tenant's, or another's mapped by name
        if found is None:
            problems.append(f"column '{shown(column, 60)}': this tenant has no custom attribute '{shown(name, 60)}'; "
                            f"its custom attributes are: {self.catalog.listed()}")
        return found

    def unknown(self, column: str) -> bool:
        """Whether a well-formed custom attribute column names an attribute the tenant lacks."""
        if self.catalog is None:
            return False
        if column.lower().startswith("ext."):
            return self.catalog.find(column[4:]) is None
        parsed = rules.parse_extension_name(column)
        return parsed is not None and self.catalog.find(parsed[1]) is None

    def property_name(self, column: str, problems: list[str]) -> str | None:
        """The Graph property of a custom attribute column, or None (with the problem said)."""
        if self.catalog is not None:
            found = self.attribute(column, problems)
            return found.property if found is not None else None
        if column.lower().startswith("ext."):
            if self.prefix is None:
                # `validate` offline without the app id: a run finds the extensions app by itself
                # (batch/run/attributes.py), so only the name's form can be checked here.
                if rules.parse_extension_name(f"extension_{'0' * 32}_{column[4:]}") is None:
                    problems.append(f"column '{shown(column, 60)}' is not a custom attribute name (ext.<name>)")
                return None
            full = self.prefix + column[4:]
        else:
            full = column
        if rules.parse_extension_name(full) is None:
            problems.append(f"column '{shown(column, 60)}' is not a custom attribute name "
                            "(extension_<appId without hyphens>_<name>)")
            return None
        if self.prefix is not None and not full.lower().startswith(self.prefix):
            problems.append(f"column '{shown(column, 60)}' belongs to another app than the extensions app {self.app_id}")
            return None
        return full

    def check(self, column: str, value: str, problems: list[str]) -> tuple[str, Any] | None:
        """The property and value of a custom attribute cell; None when there is nothing to
        set (a blank cell, or a column that is not a usable name, or a value that does not
        fit the attribute's type, with the problem said)."""
        if self.catalog is not None:
            if value.strip() == "" and self.unknown(column):
                return None  # nothing would be lost
            found = self.attribute(column, problems)
            if found is None or value.strip() == "":
                return None
            wanted = typed_value(column, value, found, problems)
            return None if wanted is None else (found.property, wanted)
        full = self.property_name(column, problems)
        if full is None or value == "":
            return None
        if len(value) > rules.EXTENSION_VALUE_MAX_LENGTH:
            problems.append(f"{shown(column, 60)} is longer than {rules.EXTENSION_VALUE_MAX_LENGTH} characters")
        lowered = value.strip().lower()
        return full, True if lowered == "true" else False if lowered == "false" else value
