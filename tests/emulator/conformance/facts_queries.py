"""Facts about listing users: $select, $top, $count, $search, $filter, $orderby, paging and
delta (GRAPH.md §7, §15.3). World: Ada and Grace live, Bob soft-deleted (world.py)."""

from __future__ import annotations

from typing import Any

from emulator.helpers import advanced_required
from fact import ABSENT, PRESENT, Fact, keys_are, length, matches, one_of

USER_LIST = "docs:api-reference/v1.0/api/user-list.md"
ADVANCED = "docs:concepts/aad-advanced-queries.md"
FILTER_MATRIX = "docs:api-reference/v1.0/includes/filter-directory-objects.md (via GRAPH.md §15.3)"
PAGING = "docs:concepts/paging.md"
OBJECT_IDENTITY = "docs:api-reference/v1.0/resources/objectidentity.md"
USER_DELTA = "docs:api-reference/v1.0/api/user-delta.md"
DELTA_USERS = "docs:concepts/delta-query-users.md"
DELTA_OVERVIEW = "docs:concepts/delta-query-overview.md"
EVENTUAL = {"ConsistencyLevel": "eventual"}
IDENTITY = "identities/any(c:c/issuerAssignedId eq 'ada@example.com' and c/issuer eq '{issuer}')"


def listing(name: str, source: str, query: str, status: int = 200, **expect: Any) -> Fact:
    return Fact(name, source, "GET", "/v1.0/users" + query, status, **expect)


def needs_advanced(name: str, source: str, query: str, operator: str, **expect: Any) -> Fact:
    error = advanced_required(operator)
    return listing(name, source, query, 400, code=error["code"], message=error["message"], **expect)


LIST = [
    listing("list gives live users only", USER_LIST, "", fields={
        "@odata.context": matches(r"/v1\.0/\$metadata#users$"), "value": length(2)}),
    listing("$select narrows every item", USER_LIST + " Example 2", "?$select=displayName,id",
            fields={"value.0": keys_are({"id", "displayName"})}),
    listing("$select of an unknown property", "GRAPH.md §15.3 (many 3rd-party reproductions)", "?$select=shoeSize",
            400, code="BadRequest",
            message="Parsing OData Select and Expand failed: Could not find a property named 'shoeSize' on type "
                    "'microsoft.graph.user'."),
    listing("$top above 999", "Microsoft Q&A 1129204 (GRAPH.md §3.2)", "?$top=1000", 400,
            message="Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."),
    listing("$top of 0", "Microsoft Q&A 1129204 (between 1 and 999 inclusive)", "?$top=0", 400),
    listing("$top=999 is allowed", USER_LIST, "?$top=999", fields={"value": length(2)}),
    listing("$skip is not supported", USER_LIST + " (Optional query parameters)", "?$skip=1", 400),
    listing("$count=true without ConsistencyLevel is ignored", ADVANCED, "?$count=true",
            fields={"@odata.count": ABSENT, "value": length(2)}),
    listing("$count=true with ConsistencyLevel", ADVANCED, "?$count=true", headers=EVENTUAL,
            fields={"@odata.count": 2}),
    listing("/users/$count without ConsistencyLevel", ADVANCED, "/$count", 400, code="Request_BadRequest",
            message="$count is not currently supported."),
    listing("/users/$count with ConsistencyLevel is text/plain", USER_LIST + " Example 4", "/$count",
            headers=EVENTUAL, text="2", response_headers={"content-type": matches(r"^text/plain")}),
    listing("$search without ConsistencyLevel", ADVANCED, '?$search="displayName:Ada"', 400,
            code="Request_UnsupportedQuery",
            message="Request with $search query parameter only works through MSGraph with a special request header: "
                    "'ConsistencyLevel: eventual'"),
    listing("$search with ConsistencyLevel", USER_LIST + " Example 7", '?$search="displayName:Ada"',
            headers=EVENTUAL, fields={"value": length(1), "value.0.id": "{ada}"}),
    listing("$orderby displayName works by default", ADVANCED, "?$orderby=displayName",
            fields={"value.0.displayName": "Ada Lovelace", "value.1.displayName": "Grace Hopper"}),
    listing("$orderby with $filter needs advanced queries", ADVANCED, "?$orderby=displayName&$filter=accountEnabled eq true",
            400, code="Request_UnsupportedQuery", message="Sorting not supported for current query."),
    listing("$orderby with $filter under advanced queries", ADVANCED,
            "?$orderby=displayName desc&$filter=accountEnabled eq true&$count=true", headers=EVENTUAL,
            fields={"value.0.displayName": "Grace Hopper"}),
]

FILTERS = [
    needs_advanced("endsWith without advanced queries", ADVANCED, "?$filter=endsWith(mail,'@example.com')", "endsWith"),
    listing("endsWith with advanced queries", ADVANCED, "?$filter=endsWith(mail,'@example.com')&$count=true",
            headers=EVENTUAL, fields={"value": length(2), "@odata.count": 2}),
    needs_advanced("ne without advanced queries", ADVANCED, "?$filter=accountEnabled ne true", "ne"),
    listing("ne with advanced queries", ADVANCED, "?$filter=accountEnabled ne true&$count=true", headers=EVENTUAL,
            fields={"value": length(0)}),
    listing("accountEnabled eq false works by default", ADVANCED, "?$filter=accountEnabled eq false",
            fields={"value": length(0)}),
    listing("startswith(displayName) works by default", FILTER_MATRIX, "?$filter=startswith(displayName,'Ada')",
            fields={"value": length(1), "value.0.id": "{ada}"}),
    listing("mail eq works by default", FILTER_MATRIX, "?$filter=mail eq 'grace@example.com'",
            fields={"value.0.id": "{grace}"}),
    listing("in on userPrincipalName works by default", FILTER_MATRIX, "?$filter=userPrincipalName in ('{ada_upn}')",
            fields={"value": length(1)}),
    listing("unfilterable property", ADVANCED + " (error table)", "?$filter=shoeSize eq '42'", 400,
            code="Request_UnsupportedQuery",
            message="Unsupported or invalid query filter clause specified for property 'shoeSize' of resource 'User'."),
    listing("companyName eq is advanced-only", FILTER_MATRIX, "?$filter=companyName eq 'x'", 400),
    listing("displayName has no ge", FILTER_MATRIX, "?$filter=displayName ge 'A'", 400),
    listing("jobTitle has no startsWith", FILTER_MATRIX, "?$filter=startswith(jobTitle,'E')", 400),
    listing("createdDateTime ge works by default", FILTER_MATRIX, "?$filter=createdDateTime ge 2020-01-01T00:00:00Z",
            fields={"value": length(2)}),
    listing("otherMails/any works by default", FILTER_MATRIX,
            "?$filter=otherMails/any(m:m eq 'ada.other@example.com')", fields={"value": length(1)}),
    listing("identities filter on issuer and issuerAssignedId", USER_LIST + " Example 3 + " + OBJECT_IDENTITY,
            "?$filter=" + IDENTITY.replace("{issuer}", "{domain}"), fields={"value": length(1), "value.0.id": "{ada}"}),
    listing("identities filter ignores the issuer of an emailAddress identity",
            OBJECT_IDENTITY + " + microsoftgraph/microsoft-graph-docs-contrib#4097",
            "?$filter=" + IDENTITY.replace("{issuer}", "other.onmicrosoft.com"), fields={"value": length(1)}),
    listing("identities filter of the deleted is empty", USER_LIST, "?$filter=" + IDENTITY.replace(
        "ada@example.com", "bob@example.com").replace("{issuer}", "{domain}"), fields={"value": length(0)}),
]

PAGES = [
    listing("$top=1 gives a nextLink with a skiptoken", PAGING, "?$top=1",
            fields={"value": length(1), "@odata.nextLink": matches(r"^https?://[^/]+/v1\.0/users\?.*\$skiptoken=")}),
    Fact("the last page has no nextLink", PAGING, "GET", "{next}", 200, given=("next_link",),
         fields={"value": length(1), "@odata.nextLink": ABSENT}),
    Fact("an expired page token", "GRAPH.md §15.3 (Directory_ExpiredPageToken)", "GET", "{next}", 400,
         given=("next_link", "eight_days_pass"), code="Directory_ExpiredPageToken",
         message="The specified page token value has expired and can no longer be included in your request."),
]

DELTA = [
    Fact("delta's first round ends with a deltaLink", USER_DELTA, "GET", "/v1.0/users/delta", 200,
         fields={"value": length(2), "@odata.deltaLink": matches(r"/v1\.0/users/delta\?\$deltatoken="),
                 "@odata.context": PRESENT}),
    Fact("a soft delete shows as @removed changed", DELTA_USERS, "GET", "{delta}", 200,
         given=("delta_link", "delete_ada"),
         fields={"value": length(1), "value.0.id": "{ada}", "value.0.@removed": {"reason": "changed"}}),
    Fact("a permanent delete shows as @removed deleted", DELTA_USERS, "GET", "{delta}", 200,
         given=("delta_link", "purge_bob"), fields={"value.0.id": "{bob}", "value.0.@removed": {"reason": "deleted"}}),
    Fact("a round with no changes is empty with a new deltaLink", USER_DELTA, "GET", "{delta}", 200,
         given=("delta_link",), fields={"value": length(0), "@odata.deltaLink": PRESENT}),
    Fact("an expired delta token", DELTA_OVERVIEW + " (syncStateNotFound, or 410 Gone with Location)", "GET", "{delta}",
         one_of(400, 410), given=("delta_link", "eight_days_pass")),
]

FACTS = LIST + FILTERS + PAGES + DELTA
