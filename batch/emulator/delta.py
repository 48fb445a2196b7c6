"""`GET /users/delta` (GRAPH.md §7.4): the first round lists live users, later rounds the
changes since the delta link was issued; removed users carry `@removed`. The round's state
(phase, position, last change, `$select`, id filter) travels in the page tokens."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote

from . import errors, odata
from .call import Call
from .directory import project
from .messages import GraphResponse
from .paging import bad_token, decode_token, issue_token, max_page_size, open_token, token_int, token_strings
from .permissions import READ
from .records import UserRow

MAX_IDS = 50


def delta(call: Call) -> GraphResponse:
    call.require(READ)
    request, tenant = call.request, call.tenant
    if tenant.kind == "b2c":
        raise errors.unsupported_query("Change enumeration is not supported for requested tenant.")
    call.directory.purge_expired(tenant)  # so that a 30-day purge shows as `reason: deleted`
    page_size = max_page_size(request.header("prefer"), default=100)
    state = _state(call)
    select = state.get("s")
    ids = state.get("f")
    where, params = ("", []) if not ids else (f"users.id IN ({','.join('?' * len(ids))})", list(ids))
    as_of = call.directory.as_of()  # a change enters delta once visible (replication.py)
    if state["p"] == "init":
        rows = call.store.select_users(tenant.id, "live", where, params, after_seq=int(state["a"]), limit=page_size + 1,
                                       as_of=as_of)
    else:
        rows = call.store.changes(tenant.id, int(state["a"]), int(state["u"]), where, params, page_size + 1,
                                  as_of=as_of)
    more = len(rows) > page_size
    rows = rows[:page_size]
    if more:
        state = dict(state, a=rows[-1].seq if state["p"] == "init" else rows[-1].change_seq)
    body: dict[str, Any] = {"@odata.context": call.context("users", select),
                            "value": [_item(r, select) for r in rows]}
    link_base = f"{request.base_url}/users/delta"
    now = call.now()
    if more:
        body["@odata.nextLink"] = f"{link_base}?$skiptoken={issue_token(state, now)}"
    else:
        next_round = {"c": int(state["u"]), "s": select, "f": ids}
        body["@odata.deltaLink"] = f"{link_base}?$deltatoken={issue_token(next_round, now)}"
    return GraphResponse(200, body)


def _state(call: Call) -> dict[str, Any]:
    """Where this page starts: a next link's state, a delta link's new round, or a first round."""
    q = call.request.query
    if "$skiptoken" in q:
        state = open_token(q["$skiptoken"], call.now(), call.settings.page_token_ttl_seconds)
        if state.get("p") not in ("init", "changes"):
            raise bad_token()
        return {"p": state["p"], "a": token_int(state, "a"), "u": token_int(state, "u"),
                "s": token_strings(state, "s"), "f": _token_ids(state)}
    if q.get("$deltatoken"):  # an empty one (the Location of a 410) starts a full round
        state = _open_delta_token(call, q["$deltatoken"])
        change = token_int(state, "c")
        return {"p": "changes", "a": change, "c": change,
                "u": _watermark(call), "s": token_strings(state, "s"), "f": _token_ids(state)}
    select = odata.parse_select(q.get("$select"))
    ids = _id_filter(q.get("$filter", ""))
    return {"p": "init", "a": 0, "u": _watermark(call), "s": select, "f": ids}


def _watermark(call: Call) -> int:
    """Where this round's changes stop: the newest change, or just below the oldest write
    not yet visible, so that the next delta link still reports it (replication.py)."""
    return call.store.change_watermark(call.tenant.id, call.directory.as_of())


def _open_delta_token(call: Call, token: str) -> dict[str, Any]:
    """A delta link's state, unless it is older than `delta_token_ttl_seconds` (seven days:
    delta-query-overview, "Token duration"); then Graph's answer to an expired one."""
    state = decode_token(token)
    if "t" not in state:
        raise bad_token()
    if call.now() - token_int(state, "t") < call.settings.delta_token_ttl_seconds:
        return state
    if _expiry_answer(call.settings.delta_expiry, call.settings.seed, token) == "syncStateNotFound":
        # "a 40X-series error with error codes such as syncStateNotFound" (delta-query-overview);
        # the wording is errors.md's description of the code.
        raise errors.GraphError(400, "syncStateNotFound", "The sync state generation is not found. "
                                "The delta token is expired and data must be synchronized again.")
    # "410 (gone) and a Location header containing a request URL with an empty $deltaToken (same
    # as the initial query)" (delta-query-overview, "Synchronization reset"); resyncRequired is
    # errors.md's code for "the delta token is no longer valid".
    raise errors.GraphError(410, "resyncRequired", "Resync required. The delta token is no longer valid, "
                            "and the app must reset the sync state.",
                            headers={"Location": _fresh_round(call, state)})


def _expiry_answer(setting: str, seed: int | None, token: str) -> str:
    if setting != "mixed":
        return setting
    digest = hashlib.sha256(f"{seed}:{token}".encode()).digest()
    return "syncStateNotFound" if digest[0] % 2 else "410"


def _fresh_round(call: Call, state: dict[str, Any]) -> str:
    """The first request of a new full round with the expired round's `$select` and id filter."""
    select = token_strings(state, "s")
    ids = _token_ids(state)
    query = []
    if select:
        query.append("$select=" + ",".join(select))
    if ids:
        query.append("$filter=" + quote(" or ".join(f"id eq '{i}'" for i in ids), safe="'"))
    query.append("$deltatoken=")
    return f"{call.request.base_url}/users/delta?" + "&".join(query)


def _token_ids(state: dict[str, Any]) -> list[str] | None:
    ids = token_strings(state, "f")
    if ids is not None and (len(ids) > MAX_IDS or not all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)):
        raise bad_token()
    return ids


def _item(row: UserRow, select: list[str] | None) -> dict[str, Any]:
    if row.state == "live":
        item = project(row.data, select)
        item["id"] = row.id
        return item
    return {"id": row.id, "@removed": {"reason": "changed" if row.state == "deleted" else "deleted"}}


def _id_filter(text: str) -> list[str] | None:
    """users/delta accepts only `id eq '…'` clauses joined by `or`, at most 50 (GRAPH.md §7.4)."""
    if not text.strip():
        return None
    ids = []
    for clause in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        match = re.fullmatch(r"\(?\s*id\s+eq\s+'([0-9a-fA-F-]{36})'\s*\)?", clause.strip())
        if not match:
            raise errors.unsupported_query("Unsupported query: users/delta supports only $filter=id eq '…' clauses joined by 'or'.")
        ids.append(match.group(1).lower())
    if len(ids) > MAX_IDS:
        raise errors.unsupported_query("Too many ids in the delta filter: at most 50 are supported.")
    return ids
