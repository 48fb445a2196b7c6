"""Property tests for batch/rules.py and the emulator's $filter compiler.

Each rule is checked against an oracle written from GRAPH.md directly (not from the code
under test): §2.1 passwords, §1.5 userName identities, §1.4 userPrincipalName, §1.6
usageLocation; and `odata.compile_filter` must refuse any text only with a GraphError,
compile every well-formed filter to SQL the store can run, and match what it says.
"""

from __future__ import annotations

import string
import uuid
from datetime import datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batch import rules
from batch.emulator import Store
from batch.emulator.directory import Directory
from batch.emulator.errors import GraphError
from batch.emulator.odata import check_advanced, compile_filter

FAST = settings(max_examples=300, deadline=None, database=None)
SLOW = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---- GRAPH.md §2.1 password policy -------------------------------------------------------------

SYMBOLS = set("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")  # the listed symbols and blank space
ALLOWED = set(string.ascii_letters) | set(string.digits) | SYMBOLS


def strong_password_oracle(password: str) -> bool:
    if not 8 <= len(password) <= 256 or any(c not in ALLOWED for c in password):
        return False
    classes = [any(c in string.ascii_lowercase for c in password), any(c in string.ascii_uppercase for c in password),
               any(c in string.digits for c in password), any(c in SYMBOLS for c in password)]
    return sum(classes) >= 3


password_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from(sorted(ALLOWED | set("éß€\t\n"))), max_size=40),
    st.text(alphabet=st.sampled_from(sorted(ALLOWED)), min_size=250, max_size=260),
)


@FAST
@given(password_text)
@example("Xy12345678!")
@example("abcdefgh")
@example("abcDEF12")
@example("ABC def 1")
@example("Ünïcødé1!x")
@example("aB1" + "x" * 253)
@example("aB1" + "x" * 254)
def test_password_problem_matches_policy(password):
    problem = rules.password_problem(password)
    assert (problem is None) == strong_password_oracle(password), (password, problem)
    if problem is not None:
        assert isinstance(problem, str) and problem


@FAST
@given(password_text)
def test_password_problem_disable_strong(password):
    problem = rules.password_problem(password, strong=False)
    assert (problem is None) == (1 <= len(password) <= 256)


@FAST
@given(st.lists(st.sampled_from([string.ascii_lowercase, string.ascii_uppercase, string.digits, "!@#$%^&*"]),
                min_size=3, max_size=4, unique=True), st.data())
def test_three_classes_always_pass(classes, data):
    parts = [data.draw(st.text(alphabet=cls, min_size=3, max_size=10)) for cls in classes]
    password = "".join(parts)
    assert rules.password_problem(password) is None


# ---- GRAPH.md §1.5 userName ------------------------------------------------------------------

ALNUM = set(string.ascii_letters + string.digits)


def user_name_oracle(value: str) -> bool:
    return bool(value) and value[0] in ALNUM and all(c in ALNUM or c in "-_" for c in value)


@FAST
@given(st.one_of(st.text(max_size=30), st.text(alphabet=string.ascii_letters + string.digits + "-_.@ \n", max_size=20)))
@example("johnsmith")
@example("_john")
@example("john\n")
@example("jöhn")
def test_is_user_name(value):
    assert rules.is_user_name(value) == user_name_oracle(value), repr(value)


# ---- GRAPH.md §1.4 userPrincipalName ---------------------------------------------------------

UPN_LOCAL = set(string.ascii_letters + string.digits + "'.-_!#^~")


def upn_oracle(upn: str) -> bool:
    if upn.count("@") != 1:
        return False
    local, _, domain = upn.partition("@")
    return (0 < len(local) <= 64 and 0 < len(domain) <= 48 and len(upn) <= 113 and not local.endswith(".")
            and all(c in UPN_LOCAL for c in local))


upn_text = st.one_of(
    st.text(max_size=130),
    st.builds(lambda a, b: f"{a}@{b}", st.text(alphabet=sorted(UPN_LOCAL | set(" é\n@+")), max_size=70),
              st.text(alphabet=string.ascii_lowercase + ".-", max_size=55)),
)


@FAST
@given(upn_text)
@example("ada@contoso.onmicrosoft.com")
@example("ada.@contoso.onmicrosoft.com")
@example("a" * 64 + "@contoso.onmicrosoft.com")
@example("a" * 65 + "@contoso.onmicrosoft.com")
@example("ada\n@contoso.onmicrosoft.com")
@example("@contoso.onmicrosoft.com")
def test_upn_problem(upn):
    problem = rules.upn_problem(upn)
    assert (problem is None) == upn_oracle(upn), (upn, problem)


# ---- GRAPH.md §1.6 usageLocation -------------------------------------------------------------

ISO_SAMPLE = {"US", "GB", "JP", "DE", "FR", "NL", "IN", "BR", "ZA", "AU"}
NOT_ISO = {"UK", "EU", "XX", "ZZ", "AA", "QQ"}


@FAST
@given(st.text(max_size=6))
@example(" us ")
@example("ıt")  # dotless i upper-cases to 'I'
@example("ſe")  # long s upper-cases to 'S'
def test_normalise_usage_location(value):
    code = rules.normalise_usage_location(value)
    if code is None:
        return
    assert code in rules.USAGE_LOCATIONS
    stripped = value.strip()
    assert len(stripped) == 2 and stripped.isascii() and stripped.isalpha(), repr(value)
    assert code == stripped.upper()


@FAST
@given(st.sampled_from(sorted(rules.USAGE_LOCATIONS)), st.sampled_from([str.lower, str.upper, str.title]),
       st.sampled_from(["", " ", "\t"]))
def test_every_iso_code_is_accepted(code, case, pad):
    assert rules.normalise_usage_location(pad + case(code) + pad) == code


def test_usage_location_table():
    assert ISO_SAMPLE <= rules.USAGE_LOCATIONS
    assert not NOT_ISO & rules.USAGE_LOCATIONS
    assert all(len(c) == 2 and c.isupper() for c in rules.USAGE_LOCATIONS)


# ---- $filter ---------------------------------------------------------------------------------

FILTER_WORDS = ["displayName", "mail", "userPrincipalName", "id", "accountEnabled", "createdDateTime", "givenName",
                "identities/any(c:c/issuer", "c/issuerAssignedId", "eq", "ne", "ge", "le", "gt", "lt", "in", "and",
                "or", "not", "startswith", "endswith", "(", ")", ",", ":", "'x'", "''", "'a''b'", "true", "false",
                "null", "42", "-1.5", "2026-01-01T00:00:00Z", "2026-13-45T99:99Z", "extension_abc_x", "/", "'", "$",
                "any", "c", "eq'x'", "identities/any(", "x:x/issuer"]


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(FILTER_WORDS), max_size=14).map(" ".join),
                 st.lists(st.sampled_from(FILTER_WORDS), max_size=14).map("".join)))
@example("(" * 2000 + "displayName eq 'x'" + ")" * 2000)
@example("not " * 2000 + "displayName eq 'x'")
@example("identities/any(c:c/issuer eq 'a' and c/issuerAssignedId eq 'b' and c/issuer eq 'c')")
def test_compile_filter_only_raises_graph_error(text):
    try:
        query = compile_filter(text)
        check_advanced(query, advanced=False)
    except GraphError as err:
        assert err.status == 400
        assert err.code in ("Request_BadRequest", "Request_UnsupportedQuery")


# Well-formed filters: a small grammar over the properties the emulator indexes.

def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


literal_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
string_props = st.sampled_from(["displayName", "mail", "userPrincipalName", "givenName", "surname", "jobTitle", "city"])
comparison = st.one_of(
    st.builds(lambda p, v: f"{p} eq {quoted(v)}", string_props, literal_text),
    st.builds(lambda p, v: f"startswith({p},{quoted(v)})", string_props, literal_text),
    # endsWith is served on mail and userPrincipalName only (aad-advanced-queries)
    st.builds(lambda p, v: f"endswith({p},{quoted(v)})", st.sampled_from(["mail", "userPrincipalName"]), literal_text),
    st.builds(lambda p, v: f"{p} ne {quoted(v)}", string_props, literal_text),
    st.builds(lambda p, vs: f"{p} in ({','.join(quoted(v) for v in vs)})", string_props,
              st.lists(literal_text, min_size=1, max_size=4)),
    st.builds(lambda b: f"accountEnabled eq {b}", st.sampled_from(["true", "false"])),
    st.builds(lambda u: f"id eq '{u}'", st.uuids().map(str)),
    st.builds(lambda op, d: f"createdDateTime {op} {d.strftime('%Y-%m-%dT%H:%M:%SZ')}",
              st.sampled_from(["ge", "le"]), st.datetimes(min_value=datetime(1900, 1, 1))),
    st.builds(lambda a, i: f"identities/any(c:c/issuerAssignedId eq {quoted(a)} and c/issuer eq {quoted(i)})",
              literal_text, literal_text),
    st.just("mail eq null"),
)
well_formed = st.recursive(
    comparison,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not({a})", inner),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def filled_store():
    store = Store(":memory:")
    tenant = store.tenants()[0]
    directory = Directory(store, lambda: 1_780_000_000.0)
    for i, name in enumerate(["Ada O'Hara", "100%_real", "émile", "ALAN", "alan_b"]):
        directory.create(tenant, {
            "displayName": name, "givenName": name[:3], "passwordPolicies": "DisablePasswordExpiration",
            "identities": [{"signInType": "emailAddress", "issuer": tenant.default_domain,
                            "issuerAssignedId": f"u{i}@example.com"}],
            "mail": f"u{i}@example.com", "passwordProfile": {"password": "Xy12345678!"}})
    yield store, tenant
    store.close()


@SLOW
@given(well_formed)
def test_well_formed_filters_compile_and_run(filled_store, text):
    store, tenant = filled_store
    query = compile_filter(text)
    assert query.where
    assert query.where.count("?") == len(query.params)
    try:
        check_advanced(query, advanced=True)  # refused with advanced query parameters only for:
    except GraphError as err:  # identities take eq only, never under not() (resources/user.md)
        assert "property 'identities'" in err.message and "not(" in text, err
    store.count_users(tenant.id, "live", query.where, query.params)  # valid SQL over the store


def ascii_lower(value: str) -> str:
    return value.translate(str.maketrans(string.ascii_uppercase, string.ascii_lowercase))


@SLOW
@given(st.one_of(st.sampled_from(["ada o'hara", "100%", "100%_", "%", "_", "ALAN", "alan_", "alan%", "É", "é", "'"]),
                 literal_text))
def test_eq_and_startswith_match_like_the_directory(filled_store, value):
    """Directory matching is case-insensitive (ASCII); quotes, % and _ are literal."""
    store, tenant = filled_store
    names = {row.data["displayName"] for row in store.select_users(tenant.id, "live", limit=100)}
    for text, oracle in [
        (f"displayName eq {quoted(value)}", {n for n in names if ascii_lower(n) == ascii_lower(value)}),
        (f"startswith(displayName,{quoted(value)})", {n for n in names if ascii_lower(n).startswith(ascii_lower(value))}),
    ]:
        query = compile_filter(text)
        rows = store.select_users(tenant.id, "live", query.where, query.params, limit=100)
        assert {row.data["displayName"] for row in rows} == oracle, text


def test_compile_filter_of_empty_text():
    assert compile_filter("").where == ""
    assert compile_filter("   ").params == []


def test_extension_names():
    app = uuid.uuid4().hex
    assert rules.parse_extension_name(f"extension_{app}_loyalty") == (app, "loyalty")
    assert rules.parse_extension_name(f"extension_{app}_loyalty\n") is None
    assert rules.parse_extension_name("extension_123_loyalty") is None
