"""Federated identities and the export's identity columns in `create` and `update` rows
(batch/verbs/identities.py): the columns, the `signIn.federated` split rule, Graph's limits,
duplicates in a row and in the file, and what a federated-only customer is sent."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from batch.io.columns import CREATE_COLUMNS, UPDATE_COLUMNS, match_headers
from batch.io.csvio import Row
from batch.verbs.base import Rejected
from batch.verbs.create import CreateOptions, CreatePlan, CreateVerb
from batch.verbs.identities import join_federated, split_federated
from batch.verbs.lookups import UserKey, lookup_call
from batch.verbs.permissions import IDENTITIES
from batch.verbs.update import NEEDS as UPDATE_NEEDS
from batch.verbs.update import UpdatePlan, UpdateVerb

DOMAIN = "contoso.onmicrosoft.com"


def create(number: int = 1, verb: CreateVerb | None = None, **cells: str) -> CreatePlan | Rejected:
    base = {"signInName": "", "displayName": "Ada Lovelace", "federatedIssuer": "", "federatedId": ""}
    base.update(cells)
    return (verb or CreateVerb(CreateOptions(domain=DOMAIN))).validate(Row(number, base))


def plan(result: CreatePlan | Rejected) -> CreatePlan:
    assert isinstance(result, CreatePlan), f"expected a plan, got {result!r}"
    return result


def problems(result: CreatePlan | Rejected) -> str:
    assert isinstance(result, Rejected), f"expected a rejection, got {result!r}"
    return "; ".join(result.problems)


# ---- the columns --------------------------------------------------------------------------

def test_federated_columns_and_their_numbered_and_social_spellings() -> None:
    match = match_headers(["Name", "Social issuer", "Social ID", "federated issuer 2", "federatedId2",
                           "signIn.federated", "signIn.emailAddress", "signIn.userName"], CREATE_COLUMNS)
    assert list(match.by_index.values()) == ["displayName", "federatedIssuer", "federatedId", "federatedIssuer2",
                                             "federatedId2", "signIn.federated", "signIn.emailAddress",
                                             "signIn.userName"]
    assert match.missing == [] and match.unknown == []


def test_a_file_with_only_federated_identities_has_its_key_column() -> None:
    assert match_headers(["displayName", "federatedIssuer", "federatedId"], CREATE_COLUMNS).missing == []
    assert match_headers(["displayName", "userPrincipalName", "signIn.federated"], CREATE_COLUMNS).missing == []  # an export


def test_update_reads_the_federated_columns_and_they_need_manage_identities() -> None:
    match = match_headers(["signInName", "federatedIssuer", "federatedId", "federatedIssuer3", "federatedId3"],
                          UPDATE_COLUMNS)
    assert list(match.by_index.values()) == ["signInName", "federatedIssuer", "federatedId", "federatedIssuer3",
                                             "federatedId3"]
    assert frozenset({"User.ManageIdentities.All"}) in UPDATE_NEEDS.for_run(match.by_index.values())


@pytest.mark.parametrize("columns", [
    ["signInName", "federatedIssuer2", "federatedId2"],  # no first pair: finding 13(b)
    ["signInName", "federatedIssuer5", "federatedId5"],
    ["objectId", "signIn.federated"],
])
def test_every_federated_column_of_update_needs_manage_identities(columns: list[str]) -> None:
    """Any column that adds an identity makes the run check User.ManageIdentities.All before
    anything is sent, not only the first pair's: else the PATCHes fail with 403 mid-run."""
    match = match_headers(columns, UPDATE_COLUMNS)
    assert match.unknown == []
    assert IDENTITIES in UPDATE_NEEDS.for_run(match.by_index.values())
    assert IDENTITIES not in UPDATE_NEEDS.for_run(["signInName", "displayName"])


# ---- the split rule of signIn.federated ----------------------------------------------------------

@pytest.mark.parametrize(("text", "parts"), [
    ("google.com/108000000000000000001", ("google.com", "108000000000000000001")),
    ("facebook.com/5eecb0cd", ("facebook.com", "5eecb0cd")),
    ("appleid.apple.com/000123.abc/def.0456", ("appleid.apple.com", "000123.abc/def.0456")),  # an id may hold /
    ("https://accounts.example.com/abc", ("https://accounts.example.com", "abc")),
    ("https://login.example.com/tenant/v2.0/sub-1", ("https://login.example.com/tenant/v2.0", "sub-1")),
    ("https://idp.example.com//42", ("https://idp.example.com/", "42")),  # an issuer URL ending in /
    ("no-slash", None),
])
def test_split_federated(text: str, parts: tuple[str, str] | None) -> None:
    assert split_federated(text) == parts


_DOMAIN_ISSUER = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,10}){1,3}", fullmatch=True)
_URL_ISSUER = st.builds(lambda host, path: f"https://{host}{path}", _DOMAIN_ISSUER,
                        st.from_regex(r"(/[A-Za-z0-9._~-]{1,12}){0,3}/?", fullmatch=True))
_ID = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=64).filter(
    lambda v: v == v.strip() and ";" not in v)


@given(_DOMAIN_ISSUER, _ID)
@example("google.com", "a/b/c")
def test_a_domain_issuer_round_trips_whatever_its_id(issuer: str, assigned_id: str) -> None:
    assert split_federated(join_federated(issuer, assigned_id)) == (issuer, assigned_id)


@given(_URL_ISSUER, _ID.filter(lambda v: "/" not in v))
@example("https://idp.example.com/", "42")
def test_a_url_issuer_round_trips_when_its_id_holds_no_slash(issuer: str, assigned_id: str) -> None:
    assert split_federated(join_federated(issuer, assigned_id)) == (issuer, assigned_id)


# ---- create rows ----------------------------------------------------------------------------

def test_email_plus_google_sends_both_identities_and_a_password() -> None:
    made = plan(create(signInName="ada@example.com", federatedIssuer="google.com", federatedId="1001"))
    assert made.body["identities"] == [
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "ada@example.com"},
        {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1001"}]
    assert made.key == "ada@example.com" and made.generates_password
    assert made.body["passwordPolicies"] == "DisablePasswordExpiration" and "passwordProfile" in made.body
    assert made.federated == (("google.com", "1001"),)


def test_a_federated_only_customer_gets_no_password() -> None:
    made = plan(create(federatedIssuer="google.com", federatedId="1001"))
    assert made.body["identities"] == [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1001"}]
    assert "passwordProfile" not in made.body and "passwordPolicies" not in made.body
    assert not made.generates_password and made.with_password().generated_password is None
    assert made.key == "google.com/1001" and made.sign_in_name is None


def test_a_federated_only_row_with_a_password_is_refused() -> None:
    assert "password: a customer with only federated identities" in problems(
        create(federatedIssuer="google.com", federatedId="1001", password="Secret-123-abc"))


def test_numbered_pairs_and_signin_federated_all_count() -> None:
    made = plan(create(signInName="adal", federatedIssuer="google.com", federatedId="1",
                       federatedIssuer2="facebook.com", federatedId2="2",
                       **{"signIn.federated": "https://idp.example.com/x; appleid.apple.com/3"}))
    assert [(i["issuer"], i["issuerAssignedId"]) for i in made.body["identities"]] == [
        (DOMAIN, "adal"), ("google.com", "1"), ("facebook.com", "2"), ("https://idp.example.com", "x"),
        ("appleid.apple.com", "3")]


@pytest.mark.parametrize(("cells", "expected"), [
    ({"federatedIssuer": "google.com"}, "federatedIssuer is given without federatedId"),
    ({"federatedId2": "7", "federatedIssuer2": "", "signInName": "a@example.com"},
     "federatedId2 is given without federatedIssuer2"),
    ({"federatedIssuer": "i" * 513, "federatedId": "1"}, "federatedIssuer: the issuer is 513 characters long; "
                                                         "Entra allows 512"),
    ({"federatedIssuer": "Contoso.onmicrosoft.com", "federatedId": "1"}, "is the tenant's own domain"),
    ({"federatedIssuer": "google.com", "federatedId": "1", "signIn.federated": "GOOGLE.com/1"},
     "federated identity 'GOOGLE.com/1' is given twice in this row"),
    ({"signIn.federated": "google.com"}, "signIn.federated 'google.com' is not issuer/issuerAssignedId"),
    ({"signIn.federated": "google.com/"}, "is not issuer/issuerAssignedId"),
    ({"signIn.userName": "u" * 65}, "signIn.userName is longer than 64 characters"),
    ({"signIn.emailAddress": "not-an-address"}, "signIn.emailAddress 'not-an-address' is not a valid email"),
    ({"signIn.federated": "; ".join(f"idp{n}.example.com/{n}" for n in range(10))},
     "the row gives 10 sign-in identities; a customer can hold at most 9"),
    ({}, "signInName, userPrincipalName or a federated identity (federatedIssuer and federatedId) is required"),
])
def test_identity_problems_name_the_column(cells: dict[str, str], expected: str) -> None:
    assert expected in problems(create(**cells))


@pytest.mark.parametrize("length", [65, 300, 2048])
def test_a_federated_id_has_no_length_limit(length: int) -> None:
    """objectidentity.md puts the "64 character limit" in the `userName` bullet; a federated
    id "can be in any format chosen by the issuer" (finding 12)."""
    made = plan(create(federatedIssuer="https://idp.example.com", federatedId="9" * length))
    assert made.body["identities"][0]["issuerAssignedId"] == "9" * length
    planned = update(**{"signIn.federated": "google.com/" + "8" * length})
    assert isinstance(planned, UpdatePlan) and planned.federated[0].assigned_id == "8" * length


def test_the_same_federated_identity_in_two_rows_names_the_first() -> None:
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    plan(create(1, verb, federatedIssuer="google.com", federatedId="1001"))
    assert problems(create(2, verb, **{"signIn.federated": "Google.com/1001"})) == \
        "federated identity 'Google.com/1001' is already used by row 1 of this file"
    # The same id from another issuer is another identity.
    plan(create(3, verb, federatedIssuer="facebook.com", federatedId="1001"))


def test_an_export_local_name_and_signinname_share_the_duplicate_check() -> None:
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    plan(create(1, verb, signInName="ada@example.com"))
    assert "sign-in name 'ADA@example.com' is already used by row 1" in problems(
        create(2, verb, **{"signIn.emailAddress": "ADA@example.com"}))


def test_an_export_row_with_email_and_user_name_becomes_one_customer_with_both() -> None:
    made = plan(create(**{"signIn.emailAddress": "ada@example.com", "signIn.userName": "adal",
                          "signIn.federated": "google.com/1001",
                          "userPrincipalName": "0f0e@source.onmicrosoft.com"}))
    assert made.body["identities"] == [
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "ada@example.com"},
        {"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "adal"},
        {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1001"}]
    assert made.body["mail"] == "ada@example.com" and made.generates_password
    # Another tenant's generated UPN is dropped with a note: Graph generates one here.
    assert "userPrincipalName" not in made.body and made.upn is None
    assert "another tenant's" in made.note


def test_a_hand_made_file_keeps_refusing_a_foreign_upn() -> None:
    assert "must end with @contoso.onmicrosoft.com" in problems(
        create(federatedIssuer="google.com", federatedId="1", userPrincipalName="x@fabrikam.com"))


def test_a_federated_only_customer_is_looked_up_by_its_identity() -> None:
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    made = plan(create(federatedIssuer="google.com", federatedId="10'01"))
    assert "identities%2Fany%28c%3Ac%2FissuerAssignedId%20eq%20%2710%27%2701%27%20and%20c%2Fissuer%20eq%20" \
           "%27google.com%27%29" in verb.lookup_call(made).url
    assert "c%2Fissuer%20eq%20%27google.com%27" in lookup_call(UserKey("federated", "1", "google.com"), DOMAIN).url


# ---- update rows ----------------------------------------------------------------------------

def update(**cells: str) -> UpdatePlan | Rejected:
    return UpdateVerb(DOMAIN).validate(Row(1, {"signInName": "ada@example.com", **cells}))


def test_update_adds_a_missing_federated_identity_and_keeps_the_rest() -> None:
    planned = update(federatedIssuer="google.com", federatedId="1001")
    assert isinstance(planned, UpdatePlan)
    current = {"identities": [
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "ada@example.com"},
        {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": f"x@{DOMAIN}"}]}
    body = UpdateVerb(DOMAIN)._patch(planned, current)
    assert body == {"identities": [*current["identities"],
                                   {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1001"}]}
    held = {"identities": [*current["identities"], {"signInType": "federated", "issuer": "Google.com",
                                                    "issuerAssignedId": "1001"}]}
    assert UpdateVerb(DOMAIN)._patch(planned, held) == {}  # held already: nothing to send


def test_update_adds_the_identities_of_the_exports_signin_federated_column() -> None:
    """An export of one tenant is update's input too (issue 14 item 1): signIn.federated adds
    the identities it lists that the customer lacks, as federatedIssuer/federatedId do."""
    match = match_headers(["objectId", "displayName", "signIn.federated"], UPDATE_COLUMNS)
    assert match.unknown == [] and list(match.by_index.values()) == ["objectId", "displayName", "signIn.federated"]
    planned = update(**{"signIn.federated": "google.com/1001; https://idp.example.com/a/b/x", "federatedIssuer":
                        "facebook.com", "federatedId": "7"})
    assert isinstance(planned, UpdatePlan)
    assert [i.key() for i in planned.federated] == ["facebook.com/7", "google.com/1001", "https://idp.example.com/a/b/x"]
    current = {"identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1001"}]}
    assert UpdateVerb(DOMAIN)._patch(planned, current)["identities"] == [*current["identities"], *(
        {"signInType": "federated", "issuer": issuer, "issuerAssignedId": assigned}
        for issuer, assigned in (("facebook.com", "7"), ("https://idp.example.com/a/b", "x")))]
    assert "signIn.federated 'google.com' is not issuer/issuerAssignedId" in "; ".join(
        r.problems if isinstance(r := update(**{"signIn.federated": "google.com"}), Rejected) else ())
    cleared = update(**{"signIn.federated": "#clear"})
    assert isinstance(cleared, Rejected) and "signIn.federated cannot be cleared" in cleared.problems


def test_update_refuses_the_same_federated_identity_in_two_rows() -> None:
    """Two rows adding one identity to two customers race: one PATCH wins and the other
    fails with a conflict; as in create, the file's second row is refused (finding 6)."""
    verb = UpdateVerb(DOMAIN)
    assert isinstance(verb.validate(Row(1, {"signInName": "ada@example.com", "federatedIssuer": "google.com",
                                            "federatedId": "1001"})), UpdatePlan)
    second = verb.validate(Row(2, {"signInName": "bob@example.com", "signIn.federated": "Google.com/1001"}))
    assert isinstance(second, Rejected) and second.key == "bob@example.com"
    assert second.problems == ("federated identity 'Google.com/1001' is already used by row 1 of this file",)
    # The same id from another issuer is another identity; a row naming the same customer's key is refused as before.
    assert isinstance(verb.validate(Row(3, {"signInName": "cy@example.com", "federatedIssuer2": "facebook.com",
                                            "federatedId2": "1001"})), UpdatePlan)


def test_update_federated_problems() -> None:
    assert "federatedId is given without federatedIssuer" in "; ".join(
        r.problems if isinstance(r := update(federatedId="1"), Rejected) else ())
    cleared = update(federatedIssuer="#clear", federatedId="#clear")
    assert isinstance(cleared, Rejected) and "federatedIssuer cannot be cleared" in cleared.problems
