"""Graph v1.0 for customer accounts, as one function from request to response.

`GraphService.handle` takes a parsed request (the HTTP layer in `app.py` builds it, and
`$batch` builds one per inner request) and returns a status, headers and a JSON body. In
between: the bearer token, the throttle, the route, the permission the route needs, and
Graph's error envelope for anything refused.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, unquote, urlencode

from . import errors, odata
from .directory import Directory, is_local, iso, project
from .errors import GraphError, error_body
from .faults import Fault, FaultInjector
from .settings import EmulatorSettings
from .store import Store, Tenant, UserRow
from .throttle import Throttle, request_cost
from .tokens import Principal, TokenAuthority

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
MAX_BATCH = 20

# Application permissions per kind of call (GRAPH.md §10), least privileged first.
READ = frozenset({"User.Read.All", "User.ReadWrite.All", "User.ReadUpdate.All", "Directory.Read.All", "Directory.ReadWrite.All"})
CREATE = frozenset({"User.Create", "User.ReadWrite.All", "Directory.ReadWrite.All"})
UPDATE = frozenset({"User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
ENABLE = frozenset({"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
PASSWORD = frozenset({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
IDENTITIES = frozenset({"User.ManageIdentities.All"})
MAIL = frozenset({"User-Mail.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
PHONE = frozenset({"User-Phone.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
DELETE_RESTORE = frozenset({"User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
LIST_DELETED = DELETE_RESTORE | {"User.Read.All", "Directory.Read.All"}
APPLICATIONS = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                          "Directory.ReadWrite.All"})
ORGANIZATION = frozenset({"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})


@dataclass
class GraphRequest:
    method: str
    segments: list[str]  # path after the version, percent-decoded, empty segments dropped
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any = None
    base_url: str = "https://graph.microsoft.com/v1.0"
    body_error: str | None = None  # set when the body was not valid JSON

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class GraphResponse:
    status: int
    body: Any = None  # dict → JSON; str → text/plain; None → no body
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fault | None = None  # a connection drop the HTTP layer must act out

    def json_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


def split_path(raw_path: str) -> list[str]:
    """`//v1.0/users/a%40b.com` → ['v1.0', 'users', 'a@b.com']; tolerant of `//` (GRAPH.md §14)."""
    return [unquote(part) for part in raw_path.split("/") if part]


def parse_query(raw: str) -> dict[str, str]:
    """Query options, with or without the `$` prefix, names case-insensitive; `+` is a space."""
    out: dict[str, str] = {}
    for pair in raw.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name = unquote(name.replace("+", " ")).strip()
        value = unquote(value.replace("+", " "))
        lowered = name.lower()
        if lowered.lstrip("$") in ("filter", "select", "top", "orderby", "count", "search", "skiptoken", "skip",
                                   "expand", "deltatoken", "format"):
            name = "$" + lowered.lstrip("$")
        out[name] = value
    return out


def _encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(state, dict):
            raise ValueError
        return state
    except (ValueError, UnicodeDecodeError):
        raise errors.bad_request("The specified page token value has expired and can no longer be included in your request.") from None


class GraphService:
    def __init__(self, store: Store, settings: EmulatorSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings or EmulatorSettings()
        self.clock = clock
        self.directory = Directory(store, clock, self.settings.retention_days)
        self.throttle = Throttle(self.settings.quotas, clock)
        self.tokens = TokenAuthority(store, clock, self.settings.token_lifetime_seconds)
        self.faults = FaultInjector(self.settings.faults, self.settings.latency, clock, self.settings.seed)
        self._size_cache: dict[str, tuple[float, str]] = {}

    # ---- entry points ----------------------------------------------------------------------

    def authenticate(self, request: GraphRequest) -> Principal | GraphResponse:
        try:
            return self.tokens.verify(request.header("authorization"))
        except GraphError as err:
            return self._error(err, request)

    def handle(self, request: GraphRequest, principal: Principal) -> GraphResponse:
        """One Graph call (a top-level request or one inside a $batch)."""
        tenant = self.store.tenant(principal.tenant_id)
        if tenant is None:
            return self._error(errors.unauthenticated("Access token validation failure. The tenant no longer exists."), request)
        cost = request_cost(request.method, request.segments, request.query, tenant.kind)
        decision = self.throttle.admit(
            app_id=principal.app_id, tenant_id=tenant.id, size_class=self._size_class(tenant), cost=cost,
            low_priority=(request.header("x-ms-throttle-priority") or "").lower() == "low",
        )
        headers = {"x-ms-resource-unit": str(decision.resource_units)}
        if decision.limit_percentage is not None:
            headers["x-ms-throttle-limit-percentage"] = f"{decision.limit_percentage:.2f}"
        if not decision.allowed:
            headers.update({"Retry-After": str(decision.retry_after), "x-ms-throttle-scope": decision.scope,
                            "x-ms-throttle-information": decision.information})
            return self._error(too_many_requests(), request, headers)
        try:
            response = self._route(request, principal, tenant)
        except GraphError as err:
            return self._error(err, request, headers)
        response.headers.update(headers)
        return self._finish(response, request)

    def injected(self, fault: Fault, request: GraphRequest) -> GraphResponse:
        """The response of an injected 429/503/504."""
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.kind == "429":
            headers.update({"x-ms-throttle-scope": "Tenant/ReadWrite/-/-", "x-ms-throttle-information": "CPULimitExceeded"})
            return self._error(too_many_requests(), request, headers)
        if fault.kind == "503":
            return self._error(GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."), request, headers)
        return self._error(GraphError(504, "UnknownError", "The gateway timed out waiting for the directory service."), request, headers)

    # ---- helpers ---------------------------------------------------------------------------

    def _finish(self, response: GraphResponse, request: GraphRequest) -> GraphResponse:
        request_id = str(uuid.uuid4())
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", request.header("client-request-id") or request_id)
        if response.body is not None:
            response.headers.setdefault("Content-Type", "text/plain" if isinstance(response.body, str) else JSON_TYPE)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    def _error(self, err: GraphError, request: GraphRequest, headers: dict[str, str] | None = None) -> GraphResponse:
        request_id = str(uuid.uuid4())
        body = error_body(err, request_id, request.header("client-request-id"), self.clock())
        merged = dict(headers or {})
        merged.update(err.headers)
        merged["request-id"] = request_id
        return self._finish(GraphResponse(err.status, body, merged), request)

    def _size_class(self, tenant: Tenant) -> str:
        if tenant.size_class != "auto":
            return tenant.size_class
        now = self.clock()
        cached = self._size_cache.get(tenant.id)
        if cached and now - cached[0] < 30:
            return cached[1]
        count = self.store.live_user_count(tenant.id)
        size = "S" if count < 50 else "M" if count <= 500 else "L"
        self._size_cache[tenant.id] = (now, size)
        return size

    @staticmethod
    def _require(principal: Principal, roles: frozenset[str]) -> None:
        if not principal.has_any(roles):
            raise errors.forbidden()

    def _advanced(self, request: GraphRequest, tenant: Tenant) -> bool:
        # Azure AD B2C has no advanced queries (GRAPH.md §7.2).
        return (tenant.kind != "b2c" and (request.header("consistencylevel") or "").lower() == "eventual"
                and request.query.get("$count", "").lower() == "true")

    # ---- routing ---------------------------------------------------------------------------

    def _route(self, request: GraphRequest, principal: Principal, tenant: Tenant) -> GraphResponse:
        seg = request.segments
        method = request.method.upper()
        if request.body_error:
            raise errors.bad_request(request.body_error)
        if not seg:
            raise errors.no_resource("")
        head = seg[0].lower()
        if head == "users":
            if len(seg) == 1:
                if method == "GET":
                    return self._list_users(request, principal, tenant)
                if method == "POST":
                    return self._create_user(request, principal, tenant)
                raise errors.method_not_allowed()
            second = seg[1].lower()
            if len(seg) == 2 and second == "$count":
                return self._count_users(request, principal, tenant)
            if len(seg) == 2 and second in ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"):
                if method != "GET":
                    raise errors.method_not_allowed()
                return self._delta(request, principal, tenant)
            if len(seg) == 2:
                key = _strip_key(seg[1])
                if method == "GET":
                    return self._get_user(request, principal, tenant, key)
                if method == "PATCH":
                    return self._update_user(request, principal, tenant, key)
                if method == "DELETE":
                    self._require(principal, DELETE_RESTORE)
                    self.directory.delete(tenant, key)
                    return GraphResponse(204)
                raise errors.method_not_allowed()
            raise errors.no_resource(seg[2])
        if head == "directory" and len(seg) >= 2 and seg[1].lower() == "deleteditems":
            return self._deleted_items(request, principal, tenant, seg[2:])
        if head.startswith("applications(appid=") and len(seg) == 2 and seg[1].lower() == "extensionproperties":
            if method != "GET":
                raise errors.method_not_allowed()
            self._require(principal, APPLICATIONS)
            return self._extension_properties(request, tenant, seg[0][len("applications(appId="):-1].strip("'\""))
        if head == "organization" and len(seg) == 1 and method == "GET":
            self._require(principal, ORGANIZATION)
            return GraphResponse(200, {
                "@odata.context": f"{request.base_url}/$metadata#organization",
                "value": [{
                    "id": tenant.id, "displayName": tenant.display_name,
                    "tenantType": "AAD B2C" if tenant.kind == "b2c" else "CIAM",
                    "verifiedDomains": [{"name": tenant.default_domain, "isDefault": True, "isInitial": True,
                                         "type": "Managed", "capabilities": "None"}],
                }],
            })
        raise errors.no_resource(seg[0])

    def _extension_properties(self, request: GraphRequest, tenant: Tenant, app_id: str) -> GraphResponse:
        """The custom attributes of the tenant's extensions app (`b2c-extensions-app`), as
        `GET /applications(appId='…')/extensionProperties` lists them. The emulator declares
        an attribute when a user is first given it (docs/emulator.md)."""
        if app_id.lower() != tenant.extensions_app_id.lower():
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{app_id}' does not exist or one of its "
                             "queried reference-property objects are not present.")
        values = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{name}")), "deletedDateTime": None,
                   "appDisplayName": "b2c-extensions-app. Do not modify. Used by AADB2C for storing user data.",
                   "dataType": "String", "isMultiValued": False, "isSyncedFromOnPremises": False, "name": name,
                   "targetObjects": ["User"]} for name in self.store.extension_properties(tenant.id)]
        select = [s.strip() for s in (request.query.get("$select") or "").split(",") if s.strip()]
        if select:
            values = [{k: v for k, v in item.items() if k in select or k == "id"} for item in values]
        return GraphResponse(200, {"@odata.context": f"{request.base_url}/$metadata#applications('{app_id}')/extensionProperties",
                                   "value": values})

    # ---- users -----------------------------------------------------------------------------

    def _create_user(self, request: GraphRequest, principal: Principal, tenant: Tenant) -> GraphResponse:
        self._require(principal, CREATE)
        doc = self.directory.create(tenant, request.body)
        body = {"@odata.context": f"{request.base_url}/$metadata#users/$entity", **project(doc, None)}
        # External ID answers with the default set only; B2C also echoes identities (GRAPH.md §1.1).
        if doc.get("identities") is not None and tenant.kind == "b2c":
            body["identities"] = doc["identities"]
            if doc.get("passwordPolicies"):
                body["passwordPolicies"] = doc["passwordPolicies"]
        return GraphResponse(201, body, {"Location": f"{request.base_url}/users/{doc['id']}"})

    def _get_user(self, request: GraphRequest, principal: Principal, tenant: Tenant, key: str) -> GraphResponse:
        self._require(principal, READ)
        select = odata.parse_select(request.query.get("$select"))
        row = self.directory.get_live(tenant, key)
        context = f"{request.base_url}/$metadata#users" + (f"({','.join(select)})" if select else "") + "/$entity"
        return GraphResponse(200, {"@odata.context": context, **project(row.data, select)})

    def _update_user(self, request: GraphRequest, principal: Principal, tenant: Tenant, key: str) -> GraphResponse:
        body = request.body
        if isinstance(body, dict):
            names = {k.lower() for k in body if not k.startswith("@odata.")}
            needed: list[frozenset[str]] = []
            if "accountenabled" in names:
                # Blocking sign-in needs User.EnableDisableAccount.All plus a read permission (GRAPH.md §5).
                needed += [ENABLE, READ]
            if "passwordprofile" in names:
                needed.append(PASSWORD)
            if "identities" in names:
                needed.append(IDENTITIES)
            if "othermails" in names:
                needed.append(MAIL)
            if names & {"businessphones", "mobilephone"}:
                needed.append(PHONE)
            if names - {"accountenabled", "passwordprofile", "identities", "othermails", "businessphones", "mobilephone"}:
                needed.append(UPDATE)
            for roles in needed or [UPDATE]:
                self._require(principal, roles)
        self.directory.update(tenant, key, body)
        return GraphResponse(204)

    def _list_users(self, request: GraphRequest, principal: Principal, tenant: Tenant) -> GraphResponse:
        self._require(principal, READ)
        return self._list(request, tenant, state="live", context="users")

    def _count_users(self, request: GraphRequest, principal: Principal, tenant: Tenant) -> GraphResponse:
        self._require(principal, READ)
        if request.method.upper() != "GET":
            raise errors.method_not_allowed()
        if tenant.kind == "b2c" or (request.header("consistencylevel") or "").lower() != "eventual":
            raise errors.bad_request("$count is not currently supported.")
        query = odata.compile_filter(request.query.get("$filter", ""))
        return GraphResponse(200, str(self.store.count_users(tenant.id, "live", query.where, query.params)))

    def _list(self, request: GraphRequest, tenant: Tenant, *, state: str, context: str) -> GraphResponse:
        q = request.query
        if "$skip" in q:
            raise errors.bad_request("'$skip' is not supported by the service.")
        advanced = self._advanced(request, tenant)
        search_ok = tenant.kind != "b2c" and (request.header("consistencylevel") or "").lower() == "eventual"
        query = odata.compile_filter(q.get("$filter", ""))
        odata.check_advanced(query, advanced)
        where, params = query.where, list(query.params)
        if "$search" in q:
            if not search_ok:
                raise errors.unsupported_query(
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
            search_where, search_params = _compile_search(q["$search"])
            where = f"({where}) AND ({search_where})" if where else search_where
            params += search_params
        select = odata.parse_select(q.get("$select"))
        top = odata.parse_top(q.get("$top"))
        order = odata.parse_orderby(q.get("$orderby"), advanced=advanced, filtered=bool(where))
        token = _decode_token(q["$skiptoken"]) if "$skiptoken" in q else {}
        if order:
            offset = int(token.get("o", 0))
            rows = self.store.select_users(tenant.id, state, where, params, order=order, offset=offset, limit=top + 1)
            next_state = {"o": offset + top}
        else:
            after = int(token.get("a", 0))
            rows = self.store.select_users(tenant.id, state, where, params, after_seq=after, limit=top + 1)
            next_state = {"a": rows[top - 1].seq} if len(rows) > top else {}
        more = len(rows) > top
        rows = rows[:top]
        body: dict[str, Any] = {"@odata.context": f"{request.base_url}/$metadata#{context}"
                                + (f"({','.join(select)})" if select else "")}
        if advanced and not token:
            body["@odata.count"] = self.store.count_users(tenant.id, state, where, params)
        body["value"] = [self._render(row, select, deleted=state == "deleted") for row in rows]
        if more:
            body["@odata.nextLink"] = _next_link(request, "$skiptoken", _encode_token(next_state))
        return GraphResponse(200, body)

    def _render(self, row: UserRow, select: list[str] | None, *, deleted: bool = False) -> dict[str, Any]:
        item = project(row.data, select)
        if deleted and select is None:
            item["deletedDateTime"] = row.data.get("deletedDateTime")
        return item

    def _delta(self, request: GraphRequest, principal: Principal, tenant: Tenant) -> GraphResponse:
        """users/delta: the first round lists live users, later rounds the changes since the
        delta link was issued; removed users carry `@removed` (GRAPH.md §7.4)."""
        self._require(principal, READ)
        if tenant.kind == "b2c":
            raise errors.unsupported_query("Change enumeration is not supported for requested tenant.")
        self.directory.purge_expired(tenant)  # so that a 30-day purge shows as `reason: deleted`
        q = request.query
        page_size = _max_page_size(request.header("prefer"), default=100)
        if "$skiptoken" in q:
            state = _decode_token(q["$skiptoken"])
        elif "$deltatoken" in q:
            state = _decode_token(q["$deltatoken"])
            state = {"p": "changes", "a": int(state.get("c", 0)), "c": int(state.get("c", 0)),
                     "u": self.store.max_change(tenant.id), "s": state.get("s"), "f": state.get("f")}
        else:
            select = odata.parse_select(q.get("$select"))
            ids = _delta_id_filter(q.get("$filter", ""))
            state = {"p": "init", "a": 0, "u": self.store.max_change(tenant.id), "s": select, "f": ids}
        select = state.get("s")
        ids = state.get("f")
        where, params = ("", []) if not ids else (f"users.id IN ({','.join('?' * len(ids))})", list(ids))
        if state["p"] == "init":
            rows = self.store.select_users(tenant.id, "live", where, params, after_seq=int(state["a"]), limit=page_size + 1)
            more = len(rows) > page_size
            rows = rows[:page_size]
            values = [self._delta_item(r, select) for r in rows]
            if more:
                state = dict(state, a=rows[-1].seq)
        else:
            rows = self.store.changes(tenant.id, int(state["a"]), int(state["u"]), where, params, page_size + 1)
            more = len(rows) > page_size
            rows = rows[:page_size]
            values = [self._delta_item(r, select) for r in rows]
            if more:
                state = dict(state, a=rows[-1].change_seq)
        body: dict[str, Any] = {"@odata.context": f"{request.base_url}/$metadata#users"
                                + (f"({','.join(select)})" if select else ""), "value": values}
        link_base = f"{request.base_url}/users/delta"
        if more:
            body["@odata.nextLink"] = f"{link_base}?$skiptoken={_encode_token(state)}"
        else:
            body["@odata.deltaLink"] = f"{link_base}?$deltatoken={_encode_token({'c': int(state['u']), 's': select, 'f': ids})}"
        return GraphResponse(200, body)

    def _delta_item(self, row: UserRow, select: list[str] | None) -> dict[str, Any]:
        if row.state == "live":
            item = project(row.data, select)
            item["id"] = row.id
            return item
        return {"id": row.id, "@removed": {"reason": "changed" if row.state == "deleted" else "deleted"}}

    # ---- deleted items ---------------------------------------------------------------------

    def _deleted_items(self, request: GraphRequest, principal: Principal, tenant: Tenant, rest: list[str]) -> GraphResponse:
        method = request.method.upper()
        if not rest:
            # The OData cast segment is mandatory (GRAPH.md §6).
            raise errors.bad_request("Unsupported request: listing deleted items needs the type cast segment, "
                                     "for example /directory/deletedItems/microsoft.graph.user.")
        self.directory.purge_expired(tenant)
        # `graph.user` is the namespace alias the Graph SDKs send (msgraph-sdk: deletedItems/graph.user).
        if rest[0].lower() in ("microsoft.graph.user", "graph.user"):
            if len(rest) == 1 and method == "GET":
                self._require(principal, LIST_DELETED)
                return self._list(request, tenant, state="deleted", context="directory/deletedItems/microsoft.graph.user")
            if len(rest) == 1:
                raise errors.method_not_allowed()
            raise errors.no_resource(rest[1])
        object_id = rest[0]
        if len(rest) == 1:
            if method == "GET":
                self._require(principal, LIST_DELETED)
                select = odata.parse_select(request.query.get("$select"))
                row = self.directory.get_deleted(tenant, object_id)
                item = self._render(row, select, deleted=True)
                return GraphResponse(200, {"@odata.context": f"{request.base_url}/$metadata#directoryObjects/$entity",
                                           "@odata.type": "#microsoft.graph.user", **item})
            if method == "DELETE":
                self._require(principal, DELETE_RESTORE)
                self.directory.purge(tenant, object_id)
                return GraphResponse(204)
            raise errors.method_not_allowed()
        if len(rest) == 2 and rest[1].lower() in ("restore", "microsoft.graph.restore"):
            if method != "POST":
                raise errors.method_not_allowed()
            self._require(principal, DELETE_RESTORE)
            doc = self.directory.restore(tenant, object_id, request.body)
            return GraphResponse(200, {"@odata.context": f"{request.base_url}/$metadata#directoryObjects/$entity",
                                       "@odata.type": "#microsoft.graph.user", **project(doc, None)})
        raise errors.no_resource(rest[1])


def too_many_requests() -> GraphError:
    return GraphError(429, "TooManyRequests", "Please retry again later.",
                      inner={"code": "429", "message": "Please retry after", "status": "429"})


def _strip_key(key: str) -> str:
    # Clients sometimes quote keys: users('a@b.com') style is not used, but '…' around a UPN is.
    return key[1:-1] if len(key) > 1 and key[0] == key[-1] == "'" else key


def _next_link(request: GraphRequest, name: str, token: str) -> str:
    query = {k: v for k, v in request.query.items() if k not in ("$skiptoken",)}
    query[name] = token
    path = "/".join(quote(s, safe="@$") for s in request.segments)
    return f"{request.base_url}/{path}?" + urlencode(query, quote_via=quote, safe="$,()'")


def _max_page_size(prefer: str | None, default: int) -> int:
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer or "")
    return max(1, min(999, int(match.group(1)))) if match else default


def _delta_id_filter(text: str) -> list[str] | None:
    """users/delta accepts only `id eq '…'` clauses joined by `or`, at most 50 (GRAPH.md §7.4)."""
    if not text.strip():
        return None
    ids = []
    for clause in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        match = re.fullmatch(r"\(?\s*id\s+eq\s+'([0-9a-fA-F-]{36})'\s*\)?", clause.strip())
        if not match:
            raise errors.unsupported_query("Unsupported query: users/delta supports only $filter=id eq '…' clauses joined by 'or'.")
        ids.append(match.group(1).lower())
    if len(ids) > 50:
        raise errors.unsupported_query("Too many ids in the delta filter: at most 50 are supported.")
    return ids


_SEARCHABLE = {"displayname": "users.display_name", "mail": "users.mail", "userprincipalname": "users.upn",
               "givenname": "json_extract(users.data, '$.givenName')", "surname": "json_extract(users.data, '$.surname')"}


def _compile_search(text: str) -> tuple[str, list[str]]:
    """`"displayName:ada" OR "mail:lovelace"`: each term matches a word that starts with the value
    (Graph tokenises; see docs/emulator.md)."""
    terms = re.findall(r'"([^"]*)"|(\bAND\b|\bOR\b)', text)
    if not terms:
        raise errors.unsupported_query("Invalid $search query: terms are written \"property:value\".")
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


__all__ = ["GraphService", "GraphRequest", "GraphResponse", "split_path", "parse_query", "JSON_TYPE", "MAX_BATCH",
           "iso", "is_local"]
