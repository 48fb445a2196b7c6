"""One page of a list of users (`GET /users`, the deleted items): `$filter`, `$search`,
`$orderby`, `$select`, `$top`, `$count` and the `$skiptoken` of the next page."""

from __future__ import annotations

import re
from typing import Any

from . import errors, odata
from .call import Call
from .directory import project
from .messages import GraphResponse
from .paging import issue_token, next_link, open_token, token_int
from .records import UserRow

SEARCH_NEEDS_EVENTUAL = ("Request with $search query parameter only works through MSGraph with a special request "
                         "header: 'ConsistencyLevel: eventual'")


def list_users(call: Call, *, state: str, context: str) -> GraphResponse:
    request, tenant = call.request, call.tenant
    q = request.query
    if "$skip" in q:
        raise errors.bad_request("'$skip' is not supported by the service.")
    # Azure AD B2C has no advanced queries (GRAPH.md §7.2).
    advanced = tenant.kind != "b2c" and request.eventual and q.get("$count", "").lower() == "true"
    where, params = _where(call, advanced)
    select = odata.parse_select(q.get("$select"))
    expand = odata.parse_expand(q.get("$expand"))
    top = odata.parse_top(q.get("$top"))
    order = odata.parse_orderby(q.get("$orderby"), advanced=advanced, filtered=bool(where),
                                deleted=state == "deleted")
    token = open_token(q["$skiptoken"], call.now(), call.settings.page_token_ttl_seconds) if "$skiptoken" in q else {}
    store, as_of = call.store, call.directory.as_of()
    if order:
        offset = token_int(token, "o")
        rows = store.select_users(tenant.id, state, where, params, order=order, offset=offset, limit=top + 1,
                                  as_of=as_of)
        next_state = {"o": offset + top}
    else:
        after = token_int(token, "a")
        rows = store.select_users(tenant.id, state, where, params, after_seq=after, limit=top + 1, as_of=as_of)
        next_state = {"a": rows[top - 1].seq} if len(rows) > top else {}
    more = len(rows) > top
    rows = rows[:top]
    body: dict[str, Any] = {"@odata.context": call.context(context, select)}
    if advanced and not token:
        body["@odata.count"] = store.count_users(tenant.id, state, where, params, as_of=as_of)
    body["value"] = [{**render(row, select, deleted=state == "deleted"), **expand} for row in rows]
    if more:
        body["@odata.nextLink"] = next_link(request, "$skiptoken", issue_token(next_state, call.now()))
    return GraphResponse(200, body)


def render(row: UserRow, select: list[str] | None, *, deleted: bool = False) -> dict[str, Any]:
    """A user as a list or a GET shows it; a deleted one also says when it was deleted."""
    item = project(row.data, select)
    if deleted and select is None:
        item["deletedDateTime"] = row.data.get("deletedDateTime")
    return item


def _where(call: Call, advanced: bool) -> tuple[str, list[Any]]:
    """The SQL condition of `$filter` and `$search` together."""
    request = call.request
    query = odata.compile_filter(request.query.get("$filter", ""))
    odata.check_advanced(query, advanced)
    where, params = query.where, list(query.params)
    if "$search" in request.query:
        if call.tenant.kind == "b2c" or not request.eventual:
            raise errors.unsupported_query(SEARCH_NEEDS_EVENTUAL)
        search_where, search_params = compile_search(request.query["$search"])
        where = f"({where}) AND ({search_where})" if where else search_where
        params += search_params
    return where, params


_SEARCHABLE = {"displayname": "users.display_name", "mail": "users.mail", "userprincipalname": "users.upn",
               "givenname": "json_extract(users.data, '$.givenName')", "surname": "json_extract(users.data, '$.surname')"}


def compile_search(text: str) -> tuple[str, list[str]]:
    """`"displayName:ada" OR "mail:lovelace"`: each term matches a word that starts with the value
    (Graph tokenises; see docs/emulator.md)."""
    terms = re.findall(r'"([^"]*)"|(\bAND\b|\bOR\b)', text)
    kinds = ["joiner" if joiner else "term" for _, joiner in terms]
    # A joiner stands between two terms: `OR` alone, `"a:b" OR`, `AND OR` are not queries.
    if not terms or kinds[0] == "joiner" or kinds[-1] == "joiner" or any(
            a == b == "joiner" for a, b in zip(kinds, kinds[1:], strict=False)):
        raise errors.unsupported_query("Invalid $search query: terms are written \"property:value\", "
                                       "joined by AND or OR.")
    parts: list[str] = []
    params: list[str] = []
    for quoted, joiner in terms:
        if joiner:
            parts.append(joiner)
            continue
        prop, _, value = quoted.partition(":")
        column = _SEARCHABLE.get(prop.strip().lower())
        if column is None or not value:
            raise errors.unsupported_query(f"Invalid $search query: '{quoted}' is not property:value on a searchable property.")
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"({column} LIKE ? ESCAPE '\\' OR {column} LIKE ? ESCAPE '\\')")
        params += [escaped + "%", "% " + escaped + "%"]
    sql = ""
    for part in parts:
        if part in ("AND", "OR"):
            sql += f" {part} "
        else:
            sql += ("" if not sql or sql.endswith(" ") else " AND ") + part
    return sql, params
