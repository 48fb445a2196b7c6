"""OData query options for users: `$filter` parsed into a tree and compiled to SQL over the
store's columns, `$select`, `$orderby`, `$top`, and the advanced-query rules of
GRAPH.md §7.2 (which operators need `ConsistencyLevel: eventual` and `$count=true`).

Directory string comparisons are case-insensitive, so every string column compares with
NOCASE. A filter that Graph refuses is refused with Graph's code and message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import errors
from .errors import GraphError
from .schema import USER as USER_PROPERTIES
from .schema import property_named as canonical_property

MAX_OR_CLAUSES = 15  # "Too many child clauses ... Max allowed: 15" (docs issue #21098)


@dataclass(frozen=True)
class Filterable:
    """How Graph lets one user property be filtered: the operators served by default, and
    those served only as an advanced query (`ConsistencyLevel: eventual` + `$count=true`).
    Operators are eq ne not ge le in startswith endswith, and `null` for `eq null`/`ne null`."""

    sql: str
    kind: str
    default: frozenset[str]
    advanced: frozenset[str]
    source: str

    def allows(self, op: str, advanced: bool) -> bool:
        return op in self.default or (advanced and op in self.advanced)


def _ops(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The matrix of includes/filter-directory-objects.md (microsoft-graph-docs-contrib, the user
# table of concepts/aad-advanced-queries.md): its "Default" cells are the default set, its
# "Advanced" cells advanced. An operator that the property's row of
# api-reference/v1.0/resources/user.md lists ("Supports $filter (eq, ne, NOT, ge, le, in,
# startsWith, ...)") but the include leaves blank is taken as advanced: user.md lists what is
# supported at all, and its IMPORTANT note sends "specific usage of $filter" to advanced
# queries. endsWith on mail, userPrincipalName and otherMails is advanced (aad-advanced-queries,
# "endsWith" row). Anything else is refused. Properties with no default operator (companyName,
# employeeType...) answer "Unsupported or invalid query filter clause" without the advanced
# parameters (reported for employeeType: microsoft-graph-docs-contrib#1627, microsoft-graph-docs#12591).
_INCLUDE = "includes/filter-directory-objects.md + resources/user.md"
_JSON = "json_extract(users.data, '$.{}')"
_MATRIX_ROWS: list[tuple[str, str, str, str, str]] = [
    # property, SQL, kind, default operators, advanced operators
    # id `in` is blank in the include but listed in user.md, and it is served without advanced
    # parameters: public clients page `/users?$filter=id in (...)` in chunks of 15, B2C ones too
    # (B2C has no advanced queries). Taken as default from that use, not from a document.
    ("id", "users.id", "guid", "eq in", "ne not"),
    ("userPrincipalName", "users.upn", "str", "eq le in startswith", "ne not ge endswith null"),
    ("displayName", "users.display_name", "str", "eq in startswith", "ne not ge le null"),
    ("mail", "users.mail", "str", "eq ge le in startswith", "ne not endswith null"),
    ("accountEnabled", "users.account_enabled", "bool", "eq in", "ne not ge le"),
    ("createdDateTime", "users.created", "datetime", "eq ge le", "ne not in"),
    ("givenName", _JSON.format("givenName"), "str", "eq ge le in startswith", "ne not null"),
    ("surname", _JSON.format("surname"), "str", "eq ge le in startswith", "ne not null"),
    ("usageLocation", _JSON.format("usageLocation"), "str", "eq ge le in startswith", "ne not null"),
    ("userType", _JSON.format("userType"), "str", "eq in", "ne not null"),
    ("creationType", _JSON.format("creationType"), "str", "eq in", "ne not"),
    ("employeeId", _JSON.format("employeeId"), "str", "eq startswith", "ne not ge le in null"),
    ("jobTitle", _JSON.format("jobTitle"), "str", "eq ge le in", "ne not startswith null"),
    ("city", _JSON.format("city"), "str", "eq ge in startswith", "ne not le null"),
    ("country", _JSON.format("country"), "str", "eq ge le in startswith", "ne not null"),
    ("state", _JSON.format("state"), "str", "eq ge le in startswith", "ne not null"),
    ("department", _JSON.format("department"), "str", "eq ge le in startswith", "ne not null"),
    ("mailNickname", _JSON.format("mailNickname"), "str", "eq ge le in startswith", "ne not null"),
    ("companyName", _JSON.format("companyName"), "str", "", "eq ne not ge le in startswith null"),
    ("postalCode", _JSON.format("postalCode"), "str", "", "eq ne not ge le in startswith null"),
    ("preferredLanguage", _JSON.format("preferredLanguage"), "str", "", "eq ne not ge le in startswith null"),
    ("employeeType", _JSON.format("employeeType"), "str", "", "eq ne not ge le in startswith"),
]
FILTERABLE: dict[str, Filterable] = {
    name: Filterable(sql, kind, _ops(default), _ops(advanced), _INCLUDE)
    for name, sql, kind, default, advanced in _MATRIX_ROWS
}
# A string collection, filtered with any(): `otherMails/any(x:x eq 'a@b.c')` (same sources).
OTHER_MAILS = Filterable("json_each.value", "str", _ops("eq ge le in startswith"), _ops("not endswith"), _INCLUDE)
# identities/any(...): eq only, "only where the signInType is not userPrincipalName" (user.md).
IDENTITIES = Filterable("", "str", _ops("eq"), frozenset(), _INCLUDE)
# Directory extension properties are outside the matrix: eq, in and startswith as before
# (extensibility-overview: "$filter ... eq" on extension properties).
EXTENSION_OPS = _ops("eq in startswith"), _ops("ne not null")

_ORDERABLE = {"displayName": "users.display_name", "userPrincipalName": "users.upn", "createdDateTime": "users.created"}
_SOCIAL_ISSUERS = {"google.com", "facebook.com", "mail", "phone"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<punct>[(),:])
      | (?P<word>[A-Za-z_][A-Za-z0-9_./]*)
    )""",
    re.VERBOSE,
)


@dataclass
class Query:
    """The compiled parts of a request's query options."""

    where: str = ""
    params: list[Any] = field(default_factory=list)
    # (operator, property, its row of the matrix): checked against the matrix by `check_advanced`
    uses: list[tuple[str, str, Filterable]] = field(default_factory=list)
    or_clauses: int = 0


def _syntax(message: str) -> GraphError:
    return errors.bad_request(f"Invalid filter clause: {message}")


class _Parser:
    def __init__(self, text: str, local_issuer: Callable[[str], bool]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise _syntax(f"syntax error at position {pos} in '{text}'.")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.query = Query()
        self.local_issuer = local_issuer
        self.negated = 0  # how many not() enclose the clause being read
        self.any_variable: str | None = None  # the lambda variable while reading otherMails/any(x: ...)

    # token helpers
    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (value and tok[1].lower() != value):
            want = value or kind or "a token"
            found = tok[1] if tok else "end of filter"
            raise _syntax(f"expected {want} but found '{found}'.")
        self.i += 1
        return tok[1]

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() in words

    # grammar
    def parse(self) -> Query:
        sql = self.expr()
        if self.peek() is not None:
            raise _syntax(f"unexpected '{self.peek()[1]}'.")  # type: ignore[index]
        self.query.where = sql
        return self.query

    def expr(self) -> str:
        parts = [self.conjunction()]
        while self.at_word("or"):
            self.take()
            self.query.or_clauses += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.negation()]
        while self.at_word("and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self) -> str:
        if self.at_word("not"):
            self.take()
            self.negated += 1
            inner = self.negation()
            self.negated -= 1
            return f"NOT ({inner})"
        return self.primary()

    def primary(self) -> str:
        tok = self.peek()
        if tok == ("punct", "("):
            self.take()
            inner = self.expr()
            self.take("punct", ")")
            return inner
        name = self.take("word")
        lowered = name.lower()
        if lowered in ("startswith", "endswith"):
            return self.function(lowered)
        if lowered.startswith("identities/any"):
            return self.identities_any()
        if lowered.startswith("othermails/any"):
            return self.other_mails_any()
        if "/" in name:
            raise errors.unsupported_filter(name.split("/")[0])
        return self.comparison(name)

    def column(self, name: str) -> tuple[Filterable, str]:
        canonical = canonical_property(name)
        if canonical and canonical in FILTERABLE:
            return FILTERABLE[canonical], canonical
        if name.lower().startswith("extension_"):
            return Filterable(f"json_extract(users.data, '$.\"{name}\"')", "str", *EXTENSION_OPS, "extension"), name
        raise errors.unsupported_filter(canonical or name)

    def literal(self, kind: str, prop: str) -> Any:
        tok_kind, value = self.peek() or ("", "")
        self.i += 1
        if tok_kind == "string":
            text = value[1:-1].replace("''", "'")
            if kind == "bool":
                raise errors.bad_request("A binary operator with incompatible types was detected. Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'Equal'.")
            if kind == "datetime":
                return _datetime(text, prop)
            if kind == "guid":
                return text.lower()
            return text
        if tok_kind == "word" and value.lower() in ("true", "false"):
            if kind != "bool":
                raise errors.bad_request("A binary operator with incompatible types was detected. Found operand types 'Edm.String' and 'Edm.Boolean' for operator kind 'Equal'.")
            return 1 if value.lower() == "true" else 0
        if tok_kind == "word" and value.lower() == "null":
            return None
        if tok_kind == "datetime" and kind == "datetime":
            return _datetime(value, prop)
        if tok_kind == "number" and kind == "str":
            return value
        raise _syntax(f"unexpected literal '{value}' for property '{prop}'.")

    def comparison(self, name: str) -> str:
        row, prop = self.column(name)
        return self.compare(row, prop)

    def compare(self, row: Filterable, prop: str) -> str:
        """`<property> <op> <literal>` with the property already read (also the `x eq 'v'` of
        a collection's any())."""
        sql, kind = row.sql, row.kind
        op = self.take("word").lower()
        if op not in ("eq", "ne", "gt", "ge", "lt", "le", "in"):
            raise _syntax(f"unknown operator '{op}'.")
        collate = " COLLATE NOCASE" if kind == "str" else ""
        if op == "in":
            self.take("punct", "(")
            values = [self.literal(kind, prop)]
            while self.peek() == ("punct", ","):
                self.take()
                values.append(self.literal(kind, prop))
            self.take("punct", ")")
            self.query.or_clauses += len(values) - 1
            self._use(op, row, prop)
            self.query.params.extend(values)
            marks = ",".join("?" * len(values))
            if kind == "guid":
                return _by_rowid(f"SELECT seq FROM users WHERE id IN ({marks})")
            if sql in _KEYED:  # a page ordered by seq would otherwise walk the listing index
                return _by_rowid(f"SELECT seq FROM users WHERE {_KEYED[sql]} IN ({marks})")
            return f"{sql}{collate} IN ({marks})"
        value = self.literal(kind, prop)
        if value is None:
            if op == "ne":
                self._use("ne", row, prop)
            self._use("null", row, prop)
            return f"{sql} IS NULL" if op == "eq" else f"{sql} IS NOT NULL"
        self._use(op, row, prop)
        self.query.params.append(value)
        symbol = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
        if op == "ne":
            return f"({sql} IS NULL OR {sql}{collate} != ?)"
        if kind == "guid" and op == "eq":
            return _by_rowid("SELECT seq FROM users WHERE id = ?")
        return f"{sql}{collate} {symbol} ?"

    def function(self, fn: str) -> str:
        self.take("punct", "(")
        argument = self.take("word")
        row, prop = (OTHER_MAILS, "otherMails") if argument == self.any_variable else self.column(argument)
        sql = row.sql
        self.take("punct", ",")
        value = self.literal(row.kind, prop)
        self.take("punct", ")")
        if row.kind != "str" or not isinstance(value, str):
            raise errors.unsupported_filter(prop)
        self._use(fn, row, prop)
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self.query.params.append(escaped + "%" if fn == "startswith" else "%" + escaped)
        # LIKE is case-insensitive for ASCII in SQLite, as directory matching is.
        return f"{sql} LIKE ? ESCAPE '\\'"

    def _use(self, op: str, row: Filterable, prop: str) -> None:
        """Note that the filter applies `op` (and `not`, when negated) to `prop`, for
        `check_advanced` to hold against the matrix."""
        if self.negated:
            self.query.uses.append(("not", prop, row))
        self.query.uses.append((op, prop, row))

    def other_mails_any(self) -> str:
        """`otherMails/any(x:x eq 'a@b.c')` or `otherMails/any(x:startswith(x,'a'))`: a match on
        any of the collection's values (includes/filter-directory-objects.md, otherMails row)."""
        self.take("punct", "(")
        variable = self.take("word")
        self.take("punct", ":")
        self.any_variable = variable
        try:
            if self.at_word("startswith", "endswith"):
                condition = self.function(self.take().lower())
            else:
                if self.take("word") != variable:
                    raise errors.unsupported_filter("otherMails")
                condition = self.compare(OTHER_MAILS, "otherMails")
        finally:
            self.any_variable = None
        self.take("punct", ")")
        return _by_rowid(f"SELECT u.seq FROM users u, json_each(json_extract(u.data, '$.otherMails')) WHERE {condition}")

    def identities_any(self) -> str:
        self.take("punct", "(")
        var = self.take("word")
        self.take("punct", ":")
        conditions: dict[str, str] = {}
        while True:
            path = self.take("word")
            if not path.lower().startswith(var.lower() + "/"):
                raise errors.unsupported_filter("identities")
            field_name = path.split("/", 1)[1].lower()
            self.take("word", "eq")
            kind, value = self.peek() or ("", "")
            if kind != "string":
                raise errors.unsupported_filter("identities")
            self.i += 1
            conditions[field_name] = value[1:-1].replace("''", "'")
            if self.at_word("and"):
                self.take()
                continue
            break
        self.take("punct", ")")
        issuer = conditions.pop("issuer", None)
        assigned = conditions.pop("issuerassignedid", None)
        if conditions:
            raise errors.unsupported_filter("identities")
        if assigned is None:
            # Only social issuers may be filtered without an issuerAssignedId (GRAPH.md §7.2).
            if issuer is None or issuer.lower() not in _SOCIAL_ISSUERS:
                raise errors.unsupported_filter("identities")
            self._use("eq", IDENTITIES, "identities")
            self.query.params.append(issuer)
            return _by_rowid("SELECT u.seq FROM identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = ?")
        if issuer is None:
            raise errors.unsupported_filter("identities")
        self._use("eq", IDENTITIES, "identities")
        self.query.params.extend([assigned, issuer])
        # "Filtering for emailAddress or userName identities ignores the issuer value. This is by
        # design." (resources/objectidentity.md; microsoft-graph-docs-contrib#4097). Federated
        # identities still compare it.
        return _by_rowid("SELECT u.seq FROM identities i JOIN users u ON u.id = i.user_id"
                         " WHERE i.assigned_id = ? AND (i.issuer = ? OR i.sign_in_type IN ('emailAddress', 'userName'))")


# Columns with an index that starts with them (database.py), for `in` lists.
_KEYED = {"users.upn": "upn", "users.mail": "mail"}


def _by_rowid(subquery: str) -> str:
    """Key lookups as a rowid list: SQLite then fetches those rows directly instead of
    walking the listing index and testing every user (a million-user scan per lookup).
    `users` in the subquery is the table the condition is applied to: the directory's, or
    the pending versions' when a read as of a moment shadows it (userstore.py)."""
    return f"users.seq IN ({subquery})"


def _datetime(text: str, prop: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_request(f"Invalid filter clause: '{text}' is not a valid DateTimeOffset for property '{prop}'.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compile_filter(text: str, local_issuer: Callable[[str], bool] = lambda _: True) -> Query:
    if not text.strip():
        return Query()
    try:
        return _Parser(text, local_issuer).parse()
    except RecursionError:  # thousands of nested parentheses or nots: a 400, not a crash
        raise _syntax("the filter is nested too deeply.") from None


_OPERATOR_NAMES = {"endswith": "endsWith", "startswith": "startsWith", "null": "eq"}


def check_advanced(query: Query, advanced: bool) -> None:
    """Hold the filter against the matrix (`FILTERABLE`): an operator a property serves only as
    an advanced query is refused without the advanced parameters with Graph's "required
    parameters might be missing"; one it never serves, and any use of a property that has
    no default operator at all (companyName...), with "Unsupported or invalid query filter
    clause" (GRAPH.md §7.2, §15.3)."""
    for op, prop, row in query.uses:
        if row.allows(op, advanced):
            continue
        if not advanced and op in row.advanced and row.default:
            raise errors.advanced_query_required(_OPERATOR_NAMES.get(op, op))
        raise errors.unsupported_filter(prop)
    if not advanced:
        if query.or_clauses + 1 > MAX_OR_CLAUSES:
            raise errors.bad_request(
                f"Too many child clauses specified in search filter expression containing 'OR' operators: "
                f"{query.or_clauses + 1}. Max allowed: {MAX_OR_CLAUSES}."
            )


def parse_select(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    names = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        canonical = canonical_property(name)
        if canonical is None and not name.lower().startswith("extension_"):
            raise errors.unknown_select(name)
        names.append(canonical or name)
    return names


# The user's navigation properties, as `$expand` may name them (resources/user.md,
# "Relationships"): the single-valued manager, and the directory collections. The emulator
# keeps no relationships, so every customer expands to no manager and empty collections.
SINGLE_NAVIGATION = frozenset({"manager"})
COLLECTION_NAVIGATION = frozenset({
    "memberOf", "transitiveMemberOf", "directReports", "ownedObjects", "ownedDevices", "registeredDevices",
    "createdObjects", "appRoleAssignments", "oauth2PermissionGrants", "licenseDetails", "extensions",
})
_NAVIGATION = {name.lower(): name for name in SINGLE_NAVIGATION | COLLECTION_NAVIGATION}


def parse_expand(text: str | None) -> dict[str, Any]:
    """`$expand` as the properties to add to each user (`manager`: None; a collection: []).
    Not ignored: a property that is not a navigation property is Graph's 400 (the OData
    parser's wording; "Parsing OData Select and Expand failed" is the one reproduced for
    unknown names, GRAPH.md §15.3). `manager($select=...)` options are accepted and moot."""
    if text is None or not text.strip():
        return {}
    added: dict[str, Any] = {}
    for raw in _split_top_level(text):
        name = raw.split("(", 1)[0].strip()
        navigation = _NAVIGATION.get(name.lower())
        if navigation is not None:
            added[navigation] = None if navigation in SINGLE_NAVIGATION else []
            continue
        if canonical_property(name) is not None:
            raise GraphError(400, "BadRequest", f"Property '{canonical_property(name)}' on type 'microsoft.graph.user' "
                             "is not a navigation property or complex property. Only navigation properties can be expanded.")
        raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property "
                         f"named '{name}' on type 'microsoft.graph.user'.")
    return added


def _split_top_level(text: str) -> list[str]:
    """`a,b($select=x,y)` → ['a', 'b($select=x,y)']: commas inside parentheses stay."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def parse_top(text: str | None, default: int = 100) -> int:
    if text is None:
        return default
    try:
        top = int(text)
    except ValueError:
        raise errors.bad_request(f"Invalid page size specified: '{text}'. Must be between 1 and 999 inclusive.") from None
    if not 1 <= top <= 999:
        raise errors.bad_request(f"Invalid page size specified: '{text}'. Must be between 1 and 999 inclusive.")
    return top


# Deleted items also sort by when they were deleted, with advanced queries only
# (directory-deleteditems-list.md: "$orderby ... on deletedDateTime" needs ConsistencyLevel).
_DELETED_ORDERABLE = {"deletedDateTime": "users.deleted"}


def parse_orderby(text: str | None, *, advanced: bool, filtered: bool, deleted: bool = False) -> str | None:
    if not text or not text.strip():
        return None
    parts = []
    for clause in text.split(","):
        words = clause.split()
        direction = words[1].lower() if len(words) > 1 else "asc"
        if deleted and words and words[0].lower() == "deleteddatetime":
            prop: str | None = "deletedDateTime"
            column = _DELETED_ORDERABLE["deletedDateTime"]
        else:
            prop = canonical_property(words[0]) if words else None
            column = _ORDERABLE.get(prop or "", "")
        if not column or direction not in ("asc", "desc") or len(words) > 2:
            raise errors.unsupported_query("Sorting not supported for current query.")
        if (prop in ("createdDateTime", "deletedDateTime") or filtered) and not advanced:
            raise errors.unsupported_query("Sorting not supported for current query.")
        collate = " COLLATE NOCASE" if prop not in ("createdDateTime", "deletedDateTime") else ""
        parts.append(f"{column}{collate} {direction.upper()}")
    return ", ".join(parts)


__all__ = ["FILTERABLE", "Filterable", "Query", "compile_filter", "check_advanced", "parse_expand", "parse_select", "parse_top", "parse_orderby", "USER_PROPERTIES"]
