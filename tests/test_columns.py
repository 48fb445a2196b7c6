"""Column names per verb and header matching (batch/columns.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.io.columns import (
    CREATE_COLUMNS,
    PORTAL_CREATE_HEADER,
    PORTAL_DELETE_HEADER,
    PORTAL_RESTORE_HEADER,
    Column,
    ColumnSet,
    match_headers,
    normalise_header,
)
from batch.io.quoting import shown

# Small column sets standing in for the delete and restore verbs (not written yet).
DELETE_COLUMNS = ColumnSet(
    verb="delete-test",
    columns=(
        Column("objectId", ("object id", "id")),
        Column("userPrincipalName", ("user principal name", "upn"), graph="userPrincipalName"),
        Column("signInName", ("sign in name", "email")),
    ),
    one_of=(("objectId", "userPrincipalName", "signInName"),),
    extensions=False,
)
RESTORE_COLUMNS = ColumnSet(
    verb="restore-test",
    columns=(Column("objectId", ("object id",), graph="id", required=True),),
    extensions=False,
)
EXTENSION = "extension_0123456789abcdef0123456789ABCDEF_requiresMigration"

PORTAL_CREATE_MAPPING = {
    0: "displayName", 1: "userPrincipalName", 2: "password", 3: "blockSignIn", 4: "givenName", 5: "surname",
    6: "jobTitle", 7: "department", 8: "usageLocation", 9: "streetAddress", 10: "state", 11: "country",
    12: "officeLocation", 13: "city", 14: "postalCode", 15: "businessPhone", 16: "mobilePhone",
}


def names(headers: list[str], columns: ColumnSet = CREATE_COLUMNS) -> list[str | None]:
    match = match_headers(headers, columns)
    return [match.by_index.get(i) for i in range(len(headers))]


# --- normalise_header ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("displayName", "displayname"),
    ("Display Name", "displayname"),
    ("DISPLAY_NAME", "displayname"),
    ("display-name", "displayname"),
    ("  Display \t _-Name  ", "displayname"),
    ("\ufeffdisplayName", "displayname"),
    ("Straße", "strasse"),  # casefold, not lower
    ("ext.loyalty", "ext.loyalty"),
])
def test_normalise_header(text: str, expected: str) -> None:
    assert normalise_header(text) == expected


# --- the create columns -------------------------------------------------------------------

def test_create_columns_canonical_names_and_requirements() -> None:
    assert CREATE_COLUMNS.names == (
        "signInType", "signInName", "displayName", "givenName", "surname", "blockSignIn", "accountEnabled",
        "usageLocation", "mail", "password", "forceChangePasswordNextSignIn", "userPrincipalName", "jobTitle",
        "department", "companyName", "city", "state", "country", "streetAddress", "postalCode", "officeLocation",
        "mobilePhone", "businessPhone", "preferredLanguage", "employeeId",
        *(f"federated{part}{n}" for n in ("", "2", "3", "4", "5") for part in ("Issuer", "Id")),
        "signIn.emailAddress", "signIn.userName", "signIn.federated",
    )
    assert [c.name for c in CREATE_COLUMNS.columns if c.required] == ["displayName"]
    assert CREATE_COLUMNS.one_of == (("signInName", "userPrincipalName", "federatedIssuer"),)


@pytest.mark.parametrize("header, expected", [
    ("sign in type", "signInType"), ("Sign-in type", "signInType"), ("sign in method", "signInType"),
    ("Sign-in method", "signInType"), ("identity type", "signInType"),
    ("sign in name", "signInName"), ("Sign-in name", "signInName"), ("email", "signInName"),
    ("Email Address", "signInName"), ("issuer assigned id", "signInName"), ("issuerAssignedId", "signInName"),
    ("login", "signInName"),
    ("name", "displayName"), ("Display name", "displayName"), ("displayName", "displayName"),
    ("First name", "givenName"), ("given name", "givenName"),
    ("Last name", "surname"), ("family name", "surname"),
    ("block sign in", "blockSignIn"), ("Blocked", "blockSignIn"),
    ("account enabled", "accountEnabled"), ("enabled", "accountEnabled"),
    ("usage location", "usageLocation"),
    ("contact email", "mail"), ("mail", "mail"),
    ("initial password", "password"), ("passwordProfile", "password"),
    ("force change password", "forceChangePasswordNextSignIn"),
    ("Force change password next sign in", "forceChangePasswordNextSignIn"),
    ("user principal name", "userPrincipalName"), ("UPN", "userPrincipalName"),
    ("jobTitle", "jobTitle"), ("department", "department"), ("companyName", "companyName"), ("city", "city"),
    ("State or province", "state"), ("Country or region", "country"), ("street address", "streetAddress"),
    ("ZIP or postal code", "postalCode"), ("postal code", "postalCode"), ("zip", "postalCode"),
    ("office", "officeLocation"), ("physicalDeliveryOfficeName", "officeLocation"),
    ("mobile phone", "mobilePhone"), ("mobile", "mobilePhone"),
    ("office phone", "businessPhone"), ("telephoneNumber", "businessPhone"),
    ("preferred language", "preferredLanguage"), ("employee id", "employeeId"),
])
def test_create_aliases(header: str, expected: str) -> None:
    assert names([header]) == [expected]


@pytest.mark.parametrize("header", ["displayname", "DISPLAYNAME", "Display Name", "display_name", "display-name",
                                    " display name ", "DiSpLaY__NaMe", "display - name"])
def test_case_spaces_underscores_and_dashes_are_ignored(header: str) -> None:
    assert names([header]) == ["displayName"]


def test_template_header_for_create() -> None:
    assert list(CREATE_COLUMNS.template_names) == [
        "signInType", "signInName", "displayName", "givenName", "surname", "blockSignIn", "usageLocation",
        "mail", "password", "forceChangePasswordNextSignIn",
    ]
    # The template the tool writes must read back as itself.
    match = match_headers(list(CREATE_COLUMNS.template_names), CREATE_COLUMNS)
    assert list(match.by_index.values()) == list(CREATE_COLUMNS.template_names)
    assert match.unknown == [] and match.missing == []



# --- the admin center's templates ---------------------------------------------------------

def test_portal_create_header_is_the_line_in_product_md() -> None:
    product = Path("/work/shared/PRODUCT.md")
    if not product.exists():
        pytest.skip("PRODUCT.md is not here")
    assert PORTAL_CREATE_HEADER in product.read_text(encoding="utf-8").splitlines()


def test_portal_create_header() -> None:
    headers = PORTAL_CREATE_HEADER.split(",")
    assert len(headers) == 17
    match = match_headers(headers, CREATE_COLUMNS)
    assert match.by_index == PORTAL_CREATE_MAPPING
    assert match.unknown == [] and match.missing == [] and match.suggestions == {}


def test_portal_delete_and_restore_headers() -> None:
    assert match_headers([PORTAL_DELETE_HEADER], DELETE_COLUMNS).by_index == {0: "userPrincipalName"}
    restore = match_headers([PORTAL_RESTORE_HEADER], RESTORE_COLUMNS)
    assert restore.by_index == {0: "objectId"} and restore.missing == []
    # The delete header is no restore header, and says so.
    wrong = match_headers([PORTAL_DELETE_HEADER], RESTORE_COLUMNS)
    assert wrong.by_index == {} and wrong.missing == ["objectId"] and wrong.unknown == [PORTAL_DELETE_HEADER]


@pytest.mark.parametrize("header, expected", [
    ("Name [displayName] Required", "displayName"),
    ("User name [userPrincipalName] Required", "userPrincipalName"),
    ("Initial password [passwordProfile] Required", "password"),
    ("Block sign in (Yes/No) [accountEnabled] Required", "blockSignIn"),
    ("Account enabled [accountEnabled]", "accountEnabled"),
    ("[accountEnabled]", "accountEnabled"),
    ("Email [displayName]", "displayName"),  # the label alone would be signInName
    ("Whatever [ DisplayName ]", "displayName"),  # property compared like a header
    ("Office [physicalDeliveryOfficeName]", "officeLocation"),
    ("Office [officeLocation]", "officeLocation"),  # the canonical name works in brackets too
    ("Sign-in name [signInName]", "signInName"),
    (f"Requires migration [{EXTENSION}]", EXTENSION),
])
def test_a_name_in_brackets_wins(header: str, expected: str) -> None:
    assert names([header]) == [expected]


def test_an_unknown_name_in_brackets_does_not_fall_back_to_the_label() -> None:
    match = match_headers(["Email [otherMails]", "Name"], CREATE_COLUMNS)
    assert match.by_index == {1: "displayName"}
    assert match.unknown == ["Email [otherMails]"]


@pytest.mark.parametrize("header, expected", [
    ("Block sign in (Yes/No)", "blockSignIn"),
    ("Display name Required", "displayName"),
    ("Display name (required)", "displayName"),
    ("Email *", "signInName"),
])
def test_remarks_and_required_markers_without_brackets(header: str, expected: str) -> None:
    assert names([header]) == [expected]


# --- extensions, duplicates, blanks -------------------------------------------------------

@pytest.mark.parametrize("header", [EXTENSION, "ext.loyaltyNumber", "EXT.loyalty_number"])
def test_extension_columns_keep_their_exact_header_text(header: str) -> None:
    match = match_headers(["name", "email", f" {header} "], CREATE_COLUMNS)
    assert match.by_index == {0: "displayName", 1: "signInName", 2: header}


@pytest.mark.parametrize("header", ["extension_0123_requiresMigration", "extension_requiresMigration",
                                    "ext.", "ext.loyalty number", f"{EXTENSION}x-"])
def test_malformed_extension_columns_are_unknown(header: str) -> None:
    assert match_headers(["name", "email", header], CREATE_COLUMNS).unknown == [header]


def test_extension_columns_are_unknown_when_the_verb_takes_none() -> None:
    match = match_headers(["upn", EXTENSION], DELETE_COLUMNS)
    assert match.by_index == {0: "userPrincipalName"} and match.unknown == [EXTENSION]


def test_duplicates_keep_the_first_column_and_report_the_others() -> None:
    match = match_headers(["Name", "email", "Display Name", "displayName [displayName]"], CREATE_COLUMNS)
    assert match.by_index == {0: "displayName", 1: "signInName"}
    assert match.unknown == [
        "Display Name (duplicate of displayName, column 1 'Name'; ignored)",
        "displayName [displayName] (duplicate of displayName, column 1 'Name'; ignored)",
    ]
    assert match.missing == []


def test_blank_headers() -> None:
    match = match_headers(["name", "", "email", "", " "], CREATE_COLUMNS)
    assert match.by_index == {0: "displayName", 2: "signInName"}
    assert match.unknown == ["column 2 (no header)"]  # trailing blanks are Excel's padding


def test_unknown_headers_are_listed_as_written() -> None:
    match = match_headers(["name", "email", "Favourite colour", "Notes "], CREATE_COLUMNS)
    assert match.unknown == ["Favourite colour", "Notes "]
    assert match.missing == []


# --- missing columns and suggestions ------------------------------------------------------

def test_missing_required_column_with_a_suggestion() -> None:
    match = match_headers(["Display Nme", "email"], CREATE_COLUMNS)
    assert match.missing == ["displayName"]
    assert match.suggestions == {"displayName": "Display Nme"}
    assert match.unknown == ["Display Nme"]


def test_missing_one_of_group() -> None:
    match = match_headers(["name", "Emial adress"], CREATE_COLUMNS)
    assert match.missing == ["signInName or userPrincipalName or federatedIssuer"]
    assert match.suggestions == {"signInName or userPrincipalName or federatedIssuer": "Emial adress"}


def test_missing_without_anything_close() -> None:
    match = match_headers(["givenName", "Favourite colour"], CREATE_COLUMNS)
    assert match.missing == ["displayName", "signInName or userPrincipalName or federatedIssuer"]
    assert match.suggestions == {}


def test_a_matched_header_is_never_suggested() -> None:
    # "surname" is close to nothing missing; "Display" is the only unmatched candidate.
    match = match_headers(["surname", "Display", "upn"], CREATE_COLUMNS)
    assert match.missing == ["displayName"]
    assert match.suggestions == {"displayName": "Display"}


def test_empty_header_line() -> None:
    match = match_headers([], CREATE_COLUMNS)
    assert match.by_index == {} and match.unknown == []
    assert match.missing == ["displayName", "signInName or userPrincipalName or federatedIssuer"]


# --- column set declarations --------------------------------------------------------------

def test_two_columns_claiming_one_spelling_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="would match both a and b"):
        ColumnSet("x", (Column("a", ("Mail",)), Column("b", ("m-a-i-l",))))
    with pytest.raises(ValueError, match="'Mail' would match both a and b"):
        ColumnSet("x", (Column("a", graph="mail"), Column("b", ("z",), graph="Mail")))


def test_one_of_and_template_must_name_columns() -> None:
    with pytest.raises(ValueError, match="'c' is not one of its columns"):
        ColumnSet("x", (Column("a"), Column("b")), one_of=(("a", "c"),))
    with pytest.raises(ValueError, match="'c' is not one of its columns"):
        ColumnSet("x", (Column("a"),), template=("c",))
    with pytest.raises(ValueError, match="duplicate column names"):
        ColumnSet("x", (Column("a"), Column("a")))


# --- properties ---------------------------------------------------------------------------

def _spellings(column: Column) -> list[str]:
    return [column.name, *column.aliases, *([column.graph] if column.graph else [])]


ALL_SPELLINGS = [(s, c.name) for c in CREATE_COLUMNS.columns for s in _spellings(c)]


@st.composite
def mangled(draw: st.DrawFn) -> tuple[str, str]:
    """A create spelling with random case and random spaces, '_' and '-' between its letters."""
    spelling, name = draw(st.sampled_from(ALL_SPELLINGS))
    out = []
    for char in spelling:
        out.append(draw(st.text(" _-", max_size=2)))
        out.append(char.upper() if draw(st.booleans()) else char.lower())
    out.append(draw(st.text(" _-\t", max_size=2)))
    return "".join(out), name


@given(mangled())
def test_any_mangling_of_a_spelling_matches_its_column(case: tuple[str, str]) -> None:
    header, name = case
    assert names([header]) == [name]


@given(st.permutations(PORTAL_CREATE_HEADER.split(",")))
def test_portal_columns_match_in_any_order(headers: list[str]) -> None:
    expected = {h: PORTAL_CREATE_MAPPING[i] for i, h in enumerate(PORTAL_CREATE_HEADER.split(","))}
    match = match_headers(headers, CREATE_COLUMNS)
    assert {headers[i]: n for i, n in match.by_index.items()} == expected


@given(st.lists(st.text(max_size=20), max_size=12))
def test_every_header_is_matched_or_reported(headers: list[str]) -> None:
    match = match_headers(headers, CREATE_COLUMNS)
    values = list(match.by_index.values())
    assert len(values) == len(set(values))
    for index, header in enumerate(headers):
        shown_as = shown(header)  # header text is reported escaped (issue 15: no control sequence on a terminal)
        reported = any(u == shown_as or u.startswith(f"{shown_as} (duplicate of ") for u in match.unknown)
        blank = not header.strip()
        assert (index in match.by_index) + reported + blank >= 1
    assert set(match.suggestions) <= set(match.missing)
    assert all(re.fullmatch(r"\w+( or \w+)*", m) for m in match.missing)
