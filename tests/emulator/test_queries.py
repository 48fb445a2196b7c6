"""GET /users with $top, paging, $filter, $count, $search, $orderby (GRAPH.md §7.1–§7.3, §3.2)."""

from __future__ import annotations

from typing import Any

import pytest
from emulator.helpers import DOMAIN, advanced_required, customer, error_of, graph_error

EVENTUAL = {"ConsistencyLevel": "eventual"}


def page_size_error(value: str) -> dict[str, Any]:
    return graph_error("Request_BadRequest", f"Invalid page size specified: '{value}'. Must be between 1 and 999 inclusive.")


@pytest.fixture
async def people(graph) -> dict[str, dict[str, Any]]:
    """Five users with known names, mails, UPNs, identities and creation times."""
    specs = [
        ("ada", "Ada Lovelace", "ada@example.com", True),
        ("alan", "Alan Turing", "alan@example.org", True),
        ("grace", "Grace Hopper", "grace@example.com", False),
        ("edsger", "Edsger Dijkstra", "edsger@example.net", True),
        ("barbara", "Barbara Liskov", "barbara@example.com", False),
    ]
    out = {}
    for key, name, mail, enabled in specs:
        out[key] = await graph.create(customer(mail, display_name=name, userPrincipalName=f"{key}@{DOMAIN}",
                                               accountEnabled=enabled))
        graph.clock.advance(3600)
    return out


async def ids_for(graph, params: dict[str, str], headers: dict[str, str] | None = None) -> list[str]:
    response = await graph.get("/v1.0/users", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [u["id"] for u in response.json()["value"]]


# ---- $top and paging ------------------------------------------------------------------------

@pytest.mark.parametrize("top", ["0", "1000", "-1", "abc", "99999"])
async def test_top_out_of_range(graph, top):
    response = await graph.get("/v1.0/users", params={"$top": top})
    assert response.status_code == 400
    assert error_of(response) == page_size_error(top)


@pytest.mark.parametrize("top", ["1", "999"])
async def test_top_in_range(graph, top):
    await graph.create()
    response = await graph.get("/v1.0/users", params={"$top": top})
    assert response.status_code == 200
    assert len(response.json()["value"]) == 1


async def test_default_page_size_is_100(graph):
    await graph.create_many(101)
    response = await graph.get("/v1.0/users", params={"$select": "id"})
    body = response.json()
    assert len(body["value"]) == 100
    assert body["@odata.nextLink"].startswith("http://emulator/v1.0/users?")
    last = await graph.get(body["@odata.nextLink"])
    assert len(last.json()["value"]) == 1
    assert "@odata.nextLink" not in last.json()


async def test_next_link_is_absolute_and_keeps_query(graph):
    await graph.create_many(3)
    response = await graph.get("/v1.0/users", params={"$top": "2", "$select": "id,displayName"})
    link = response.json()["@odata.nextLink"]
    assert link.startswith("http://emulator/v1.0/users?")
    assert "$top=2" in link and "$select=id,displayName" in link and "$skiptoken=" in link
    page = await graph.get(link)
    assert page.json()["@odata.context"] == "http://emulator/v1.0/$metadata#users(id,displayName)"
    assert set(page.json()["value"][0]) == {"id", "displayName"}


async def test_walk_all_pages_while_creating(graph):
    initial = {u["id"] for u in await graph.create_many(25)}
    seen: list[str] = []
    url: str | None = "/v1.0/users?$top=4&$select=id"
    created_during = set()
    while url:
        response = await graph.get(url)
        assert response.status_code == 200
        seen += [u["id"] for u in response.json()["value"]]
        created_during.add((await graph.create())["id"])
        url = response.json().get("@odata.nextLink")
    assert len(seen) == len(set(seen)), "a user was listed twice"
    assert initial <= set(seen), "a user that existed before the walk was lost"
    assert set(seen) <= initial | created_during


EXPIRED_TOKEN = graph_error(
    "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")


async def test_bad_skiptoken(graph):
    response = await graph.get("/v1.0/users", params={"$skiptoken": "!!!not-a-token"})
    assert response.status_code == 400
    assert error_of(response) == EXPIRED_TOKEN


async def test_skip_is_refused(graph):
    response = await graph.get("/v1.0/users", params={"$skip": "10"})
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_BadRequest", "'$skip' is not supported by the service.")


# ---- $filter ---------------------------------------------------------------------------------

FILTERS = [
    (f"identities/any(c:c/issuerAssignedId eq 'GRACE@example.com' and c/issuer eq '{DOMAIN}')", ["grace"]),
    (f"identities/any(x:x/issuer eq '{DOMAIN.upper()}' and x/issuerAssignedId eq 'ada@example.com')", ["ada"]),
    (f"identities/any(c:c/issuerAssignedId eq 'nobody@example.com' and c/issuer eq '{DOMAIN}')", []),
    (f"userPrincipalName eq 'alan@{DOMAIN}'", ["alan"]),
    (f"userPrincipalName eq 'ALAN@{DOMAIN.upper()}'", ["alan"]),
    ("startswith(userPrincipalName,'ed')", ["edsger"]),
    ("startswith(displayName,'a')", ["ada", "alan"]),
    ("startswith(mail,'BAR')", ["barbara"]),
    ("accountEnabled eq false", ["grace", "barbara"]),
    ("accountEnabled eq true and startswith(displayName,'A')", ["ada", "alan"]),
    ("mail eq 'ada@example.com' or mail eq 'edsger@example.net'", ["ada", "edsger"]),
    ("(startswith(displayName,'G') or startswith(displayName,'B')) and accountEnabled eq false", ["grace", "barbara"]),
    ("displayName eq 'Nobody'", []),
    ("displayName in ('Ada Lovelace','Alan Turing')", ["ada", "alan"]),
]


@pytest.mark.parametrize("text,expected", FILTERS)
async def test_filter(graph, people, text, expected):
    assert await ids_for(graph, {"$filter": text}) == [people[k]["id"] for k in expected]


async def test_filter_id_eq_and_in(graph, people):
    ada, grace = people["ada"]["id"], people["grace"]["id"]
    assert await ids_for(graph, {"$filter": f"id eq '{ada.upper()}'"}) == [ada]
    assert await ids_for(graph, {"$filter": f"id in ('{ada}','{grace}')"}) == [ada, grace]


@pytest.mark.parametrize("text", [
    "identities/any(c:c/issuerAssignedId eq 'ada@example.com')",
    f"identities/any(c:c/issuer eq '{DOMAIN}')",
    "identities/any(c:c/signInType eq 'emailAddress')",
])
async def test_identity_filter_needs_issuer_and_id(graph, people, text):
    response = await graph.get("/v1.0/users", params={"$filter": text})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'identities' of resource 'User'.")


async def test_identity_filter_social_issuer_only(graph):
    created = await graph.create({"displayName": "Fed", "identities": [
        {"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": "5eecb0cd"}]})
    assert await ids_for(graph, {"$filter": "identities/any(c:c/issuer eq 'facebook.com')"}) == [created["id"]]


@pytest.mark.parametrize("text,operator", [
    ("mail ne 'ada@example.com'", "ne"),
    ("endswith(mail,'example.com')", "endsWith"),
    ("not(startswith(displayName,'A'))", "not"),
    ("accountEnabled ne true", "ne"),
])
async def test_advanced_operators_need_consistency_level(graph, people, text, operator):
    for headers, params in [(None, {}), (EVENTUAL, {}), (None, {"$count": "true"})]:
        response = await graph.get("/v1.0/users", params={"$filter": text, **params}, headers=headers)
        assert response.status_code == 400
        assert error_of(response) == advanced_required(operator)


@pytest.mark.parametrize("text,expected", [
    ("createdDateTime ge 2026-05-28T21:00:00Z", ["alan", "grace", "edsger", "barbara"]),
    ("createdDateTime le 2026-05-28T22:26:40Z", ["ada", "alan", "grace"]),
    ("createdDateTime ge 2026-05-28T21:00:00Z and createdDateTime le 2026-05-28T22:26:40Z", ["alan", "grace"]),
    ("mail ne 'ada@example.com'", ["alan", "grace", "edsger", "barbara"]),
    ("endswith(mail,'example.com')", ["ada", "grace", "barbara"]),
    ("not(startswith(displayName,'A'))", ["grace", "edsger", "barbara"]),
    ("accountEnabled ne true", ["grace", "barbara"]),
])
async def test_advanced_operators_with_consistency_level_and_count(graph, people, text, expected):
    response = await graph.get("/v1.0/users", params={"$filter": text, "$count": "true"}, headers=EVENTUAL)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [u["id"] for u in body["value"]] == [people[k]["id"] for k in expected]
    assert body["@odata.count"] == len(expected)


def or_filter(n: int) -> str:
    return " or ".join(f"mail eq 'u{i}@example.com'" for i in range(n))


async def test_at_most_15_or_clauses_without_advanced(graph, people):
    assert (await graph.get("/v1.0/users", params={"$filter": or_filter(15)})).status_code == 200
    response = await graph.get("/v1.0/users", params={"$filter": or_filter(16)})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest",
        "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.")
    in_list = ",".join(f"'u{i}@example.com'" for i in range(16))
    assert (await graph.get("/v1.0/users", params={"$filter": f"mail in ({in_list})"})).status_code == 400
    advanced = await graph.get("/v1.0/users", params={"$filter": or_filter(16), "$count": "true"}, headers=EVENTUAL)
    assert advanced.status_code == 200


@pytest.mark.parametrize("text,message", [
    ("shoeSize eq '42'", "Unsupported or invalid query filter clause specified for property 'shoeSize' of resource 'User'."),
    ("manager/id eq '1'", "Unsupported or invalid query filter clause specified for property 'manager' of resource 'User'."),
])
async def test_unsupported_filter_property(graph, text, message):
    response = await graph.get("/v1.0/users", params={"$filter": text})
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_UnsupportedQuery", message)


@pytest.mark.parametrize("text,code", [
    ("displayName eq", "Request_BadRequest"), ("displayName eq 'x' and", "Request_BadRequest"),
    ("(displayName eq 'x'", "Request_BadRequest"), ("displayName xx 'x'", "Request_BadRequest"),
    ("accountEnabled eq 'true'", "Request_BadRequest"), ("displayName eq 'unterminated", "Request_BadRequest"),
    ("eq 'x'", "Request_UnsupportedQuery"),  # 'eq' read as an unknown property
])
async def test_malformed_filter_is_400(graph, text, code):
    response = await graph.get("/v1.0/users", params={"$filter": text})
    assert response.status_code == 400
    assert error_of(response)["code"] == code


async def test_deeply_nested_filter_is_400(graph):
    text = "(" * 3000 + "displayName eq 'x'" + ")" * 3000
    response = await graph.get("/v1.0/users", params={"$filter": text})
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_BadRequest", "Invalid filter clause: the filter is nested too deeply.")


# ---- $count ----------------------------------------------------------------------------------

async def test_count_true_without_header_is_ignored(graph, people):
    response = await graph.get("/v1.0/users", params={"$count": "true"})
    assert response.status_code == 200
    assert "@odata.count" not in response.json()
    assert len(response.json()["value"]) == 5


async def test_count_on_first_page_only(graph, people):
    response = await graph.get("/v1.0/users", params={"$count": "true", "$top": "2", "$filter": "endswith(mail,'.com')"},
                               headers=EVENTUAL)
    body = response.json()
    assert body["@odata.count"] == 3
    assert len(body["value"]) == 2
    second = await graph.get(body["@odata.nextLink"], headers=EVENTUAL)
    assert second.status_code == 200
    assert "@odata.count" not in second.json()
    assert len(second.json()["value"]) == 1


async def test_count_segment(graph, people):
    response = await graph.get("/v1.0/users/$count", headers=EVENTUAL)
    assert response.status_code == 200
    assert response.text == "5"
    assert response.headers["content-type"].startswith("text/plain")
    filtered = await graph.get("/v1.0/users/$count", params={"$filter": "accountEnabled eq false"}, headers=EVENTUAL)
    assert filtered.text == "2"


async def test_count_segment_without_header(graph, people):
    response = await graph.get("/v1.0/users/$count")
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_BadRequest", "$count is not currently supported.")


# ---- $search and $orderby ---------------------------------------------------------------------

@pytest.mark.parametrize("search,expected", [
    ('"displayName:Lovelace"', ["ada"]),
    ('"displayName:al"', ["alan"]),
    ('"displayName:Ada" OR "displayName:Grace"', ["ada", "grace"]),
    ('"mail:barbara"', ["barbara"]),
    ('"displayName:zzz"', []),
])
async def test_search(graph, people, search, expected):
    response = await graph.get("/v1.0/users", params={"$search": search}, headers=EVENTUAL)
    assert response.status_code == 200, response.text
    assert [u["id"] for u in response.json()["value"]] == [people[k]["id"] for k in expected]


async def test_search_without_header(graph, people):
    response = await graph.get("/v1.0/users", params={"$search": '"displayName:Ada"'})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_UnsupportedQuery",
        "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")


async def test_orderby_display_name(graph, people):
    ids = await ids_for(graph, {"$orderby": "displayName desc", "$select": "id"})
    assert ids == [people[k]["id"] for k in ["grace", "edsger", "barbara", "alan", "ada"]]


async def test_orderby_pages(graph, people):
    items = await graph.all_pages("/v1.0/users?$orderby=userPrincipalName&$top=2&$select=id")
    assert [u["id"] for u in items] == [people[k]["id"] for k in ["ada", "alan", "barbara", "edsger", "grace"]]


async def test_orderby_with_filter_needs_advanced(graph, people):
    response = await graph.get("/v1.0/users", params={"$orderby": "displayName", "$filter": "accountEnabled eq true"})
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_UnsupportedQuery", "Sorting not supported for current query.")
    ok = await graph.get("/v1.0/users", params={"$orderby": "displayName", "$filter": "accountEnabled eq true",
                                                "$count": "true"}, headers=EVENTUAL)
    assert [u["displayName"] for u in ok.json()["value"]] == ["Ada Lovelace", "Alan Turing", "Edsger Dijkstra"]


async def test_b2c_has_no_advanced_queries(make_graph):
    g = make_graph()
    tenant = g.add_tenant("fabrikamb2c.onmicrosoft.com", kind="b2c")
    app = g.add_app(["User.ReadWrite.All"], tenant)
    response = await g.get("/v1.0/users", app=app, params={"$filter": "endswith(mail,'.com')", "$count": "true"},
                           headers=EVENTUAL)
    assert error_of(response) == advanced_required("endsWith")
    count = await g.get("/v1.0/users/$count", app=app, headers=EVENTUAL)
    assert error_of(count) == graph_error("Request_BadRequest", "$count is not currently supported.")


# ---- the per-property $filter matrix (GRAPH.md §15.3) ------------------------------------------
# includes/filter-directory-objects.md (Default / Advanced cells) with resources/user.md's
# "Supports $filter (...)" lists: what user.md lists beyond the include's Default cells is
# advanced. Written out here, not read from the emulator, so that a change to either shows.

OPERATORS = ("eq", "ne", "not", "ge", "le", "in", "startswith", "endswith", "null")
MATRIX = {  # property: (kind, default operators, advanced operators)
    "id": ("guid", "eq in", "ne not"),
    "userPrincipalName": ("str", "eq le in startswith", "ne not ge endswith null"),
    "displayName": ("str", "eq in startswith", "ne not ge le null"),
    "mail": ("str", "eq ge le in startswith", "ne not endswith null"),
    "accountEnabled": ("bool", "eq in", "ne not ge le"),
    "createdDateTime": ("datetime", "eq ge le", "ne not in"),
    "givenName": ("str", "eq ge le in startswith", "ne not null"),
    "surname": ("str", "eq ge le in startswith", "ne not null"),
    "usageLocation": ("str", "eq ge le in startswith", "ne not null"),
    "userType": ("str", "eq in", "ne not null"),
    "creationType": ("str", "eq in", "ne not"),
    "employeeId": ("str", "eq startswith", "ne not ge le in null"),
    "jobTitle": ("str", "eq ge le in", "ne not startswith null"),
    "city": ("str", "eq ge in startswith", "ne not le null"),
    "country": ("str", "eq ge le in startswith", "ne not null"),
    "state": ("str", "eq ge le in startswith", "ne not null"),
    "department": ("str", "eq ge le in startswith", "ne not null"),
    "mailNickname": ("str", "eq ge le in startswith", "ne not null"),
    "companyName": ("str", "", "eq ne not ge le in startswith null"),
    "postalCode": ("str", "", "eq ne not ge le in startswith null"),
    "preferredLanguage": ("str", "", "eq ne not ge le in startswith null"),
    "employeeType": ("str", "", "eq ne not ge le in startswith"),
}
LITERALS = {"str": "'a'", "bool": "true", "datetime": "2026-01-01T00:00:00Z", "guid": "'00000000-0000-0000-0000-000000000001'"}
OPERATOR_NAMES = {"startswith": "startsWith", "endswith": "endsWith", "null": "eq"}


def clause(prop: str, kind: str, op: str) -> str:
    value = LITERALS[kind]
    return {"not": f"not({prop} eq {value})", "in": f"{prop} in ({value})", "startswith": f"startswith({prop},'a')",
            "endswith": f"endswith({prop},'a')", "null": f"{prop} eq null"}.get(op, f"{prop} {op} {value}")


MATRIX_CASES = [(prop, op) for prop in MATRIX for op in OPERATORS]


@pytest.mark.parametrize("prop,op", MATRIX_CASES, ids=[f"{p}-{o}" for p, o in MATRIX_CASES])
async def test_filter_matrix(graph, prop, op):
    kind, default, advanced = MATRIX[prop]
    text = clause(prop, kind, op)
    plain = await graph.get("/v1.0/users", params={"$filter": text})
    with_aqp = await graph.get("/v1.0/users", params={"$filter": text, "$count": "true"}, headers=EVENTUAL)
    unsupported = graph_error("Request_UnsupportedQuery",
                              f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'.")
    if kind != "str" and op in ("startswith", "endswith"):  # a string function on a non-string: a type error
        assert plain.status_code == with_aqp.status_code == 400
    elif op in default.split():
        assert plain.status_code == 200, plain.text
        assert with_aqp.status_code == 200, with_aqp.text
    elif op in advanced.split():
        # A property with no default operator at all is "unsupported" without the parameters
        # (employeeType: microsoft-graph-docs-contrib#1627); otherwise the operator needs them.
        assert error_of(plain) == (advanced_required(OPERATOR_NAMES.get(op, op)) if default else unsupported)
        assert with_aqp.status_code == 200, with_aqp.text
    else:
        assert error_of(plain) == unsupported
        assert error_of(with_aqp) == unsupported


async def test_no_advanced_matrix_in_b2c(make_graph):
    g = make_graph()
    tenant = g.add_tenant("fabrikamb2c.onmicrosoft.com", kind="b2c")
    app = g.add_app(["User.ReadWrite.All"], tenant)
    response = await g.get("/v1.0/users", app=app, params={"$filter": "companyName eq 'x'", "$count": "true"},
                           headers=EVENTUAL)
    assert error_of(response) == graph_error(
        "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'companyName' of resource 'User'.")


async def test_created_date_time_range_by_default(graph, people):
    text = "createdDateTime ge 2026-05-28T21:00:00Z and createdDateTime le 2026-05-28T22:26:40Z"
    assert await ids_for(graph, {"$filter": text}) == [people[k]["id"] for k in ["alan", "grace"]]


async def test_other_mails_any(graph):
    first = await graph.create(customer("one@example.com", otherMails=["Alt.One@example.org", "x@example.net"]))
    await graph.create(customer("two@example.com", otherMails=["two@example.org"]))
    assert await ids_for(graph, {"$filter": "otherMails/any(m:m eq 'alt.one@example.org')"}) == [first["id"]]
    assert await ids_for(graph, {"$filter": "otherMails/any(m:startswith(m,'x@'))"}) == [first["id"]]
    refused = await graph.get("/v1.0/users", params={"$filter": "otherMails/any(m:endswith(m,'.net'))"})
    assert error_of(refused) == advanced_required("endsWith")


async def test_identity_filter_ignores_the_issuer_of_local_identities(graph, people):
    """objectIdentity doc: filtering emailAddress/userName identities "ignores the issuer
    value. This is by design." (microsoft-graph-docs-contrib#4097)."""
    text = "identities/any(c:c/issuerAssignedId eq 'ada@example.com' and c/issuer eq 'someone-else.example')"
    assert await ids_for(graph, {"$filter": text}) == [people["ada"]["id"]]


async def test_identity_filter_compares_the_issuer_of_federated_identities(graph):
    created = await graph.create({"displayName": "Fed", "identities": [
        {"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": "5eecb0cd"}]})
    right = "identities/any(c:c/issuerAssignedId eq '5eecb0cd' and c/issuer eq 'facebook.com')"
    wrong = "identities/any(c:c/issuerAssignedId eq '5eecb0cd' and c/issuer eq 'google.com')"
    assert await ids_for(graph, {"$filter": right}) == [created["id"]]
    assert await ids_for(graph, {"$filter": wrong}) == []


# ---- $expand ---------------------------------------------------------------------------------

async def test_expand_manager_lists_none(graph, people):
    body = (await graph.get("/v1.0/users", params={"$expand": "manager($select=id)", "$select": "id"})).json()
    assert all(u["manager"] is None for u in body["value"]) and len(body["value"]) == 5
    one = (await graph.get(f"/v1.0/users/{people['ada']['id']}", params={"$expand": "memberOf"})).json()
    assert one["memberOf"] == []


@pytest.mark.parametrize("expand,message", [
    ("shoeSize", "Parsing OData Select and Expand failed: Could not find a property named 'shoeSize' on type "
                 "'microsoft.graph.user'."),
    ("displayName", "Property 'displayName' on type 'microsoft.graph.user' is not a navigation property or complex "
                    "property. Only navigation properties can be expanded."),
])
async def test_expand_of_what_cannot_be_expanded(graph, people, expand, message):
    for url in ("/v1.0/users", f"/v1.0/users/{people['ada']['id']}"):
        response = await graph.get(url, params={"$expand": expand})
        assert response.status_code == 400
        assert error_of(response) == graph_error("BadRequest", message)


# ---- page tokens expire (EmulatorSettings.page_token_ttl_seconds) ------------------------------

@pytest.mark.parametrize("url", ["/v1.0/users?$top=2", "/v1.0/users?$top=2&$orderby=displayName&$count=true"])
async def test_skiptoken_expires(make_graph, url):
    from batch.emulator import EmulatorSettings

    g = make_graph(EmulatorSettings(page_token_ttl_seconds=60))
    await g.create_many(5)
    headers = EVENTUAL if "$count" in url else None
    first = (await g.get(url, headers=headers)).json()["@odata.nextLink"]
    g.clock.advance(59)
    assert (await g.get(first, headers=headers)).status_code == 200
    g.clock.advance(1)
    late = await g.get(first, headers=headers)
    assert late.status_code == 400
    assert error_of(late) == EXPIRED_TOKEN


async def test_default_page_token_lives_an_hour(graph):
    await graph.create_many(3)
    link = (await graph.get("/v1.0/users?$top=1")).json()["@odata.nextLink"]
    graph.clock.advance(3599)
    assert (await graph.get(link)).status_code == 200
    graph.clock.advance(1)
    assert error_of(await graph.get(link)) == EXPIRED_TOKEN
