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

# property → (SQL expression, kind, operators allowed by default)
_STR_OPS = {"eq", "in", "startswith", "ge", "le"}
_COLUMNS: dict[str, tuple[str, str, set[str]]] = {
    "id": ("users.id", "guid", {"eq", "in"}),
    "userPrincipalName": ("users.upn", "str", {"eq", "in", "startswith"}),
    "displayName": ("users.display_name", "str", _STR_OPS),
    "mail": ("users.mail", "str", _STR_OPS),
    "accountEnabled": ("users.account_enabled", "bool", {"eq", "in"}),
    "createdDateTime": ("users.created", "datetime", set()),  # advanced query only (see docs/emulator.md)
}
for _name in ("givenName", "surname", "usageLocation", "userType", "creationType", "employeeId", "jobTitle",
              "city", "country", "state", "department", "companyName", "postalCode", "preferredLanguage",
              "mailNickname", "employeeType"):
    _COLUMNS[_name] = (f"json_extract(users.data, '$.{_name}')", "str", _STR_OPS if _name not in ("userType", "creationType") else {"eq", "in"})

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
    advanced_operators: list[str] = field(default_factory=list)  # need ConsistencyLevel + $count
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
            self.query.advanced_operators.append("not")
            return f"NOT ({self.negation()})"
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
        if "/" in name:
            raise errors.unsupported_filter(name.split("/")[0])
        return self.comparison(name)

    def column(self, name: str) -> tuple[str, str, set[str], str]:
        canonical = canonical_property(name)
        if canonical and canonical in _COLUMNS:
            sql, kind, ops = _COLUMNS[canonical]
            return sql, kind, ops, canonical
        if name.lower().startswith("extension_"):
            return f"json_extract(users.data, '$.\"{name}\"')", "str", {"eq", "in", "startswith"}, name
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
        sql, kind, ops, prop = self.column(name)
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
            self._require(op, ops, prop)
            self.query.params.extend(values)
            if kind == "guid":
                return _by_rowid(f"SELECT seq FROM users WHERE id IN ({','.join('?' * len(values))})")
            return f"{sql}{collate} IN ({','.join('?' * len(values))})"
        value = self.literal(kind, prop)
        if value is None:
            self.query.advanced_operators.append(f"{op} null")
            return f"{sql} IS NULL" if op == "eq" else f"{sql} IS NOT NULL"
        self._require(op, ops, prop)
        self.query.params.append(value)
        symbol = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
        if op == "ne":
            return f"({sql} IS NULL OR {sql}{collate} != ?)"
        if kind == "guid" and op == "eq":
            return _by_rowid("SELECT seq FROM users WHERE id = ?")
        return f"{sql}{collate} {symbol} ?"

    def function(self, fn: str) -> str:
        self.take("punct", "(")
        sql, kind, ops, prop = self.column(self.take("word"))
        self.take("punct", ",")
        value = self.literal(kind, prop)
        self.take("punct", ")")
        if kind != "str" or not isinstance(value, str):
            raise errors.unsupported_filter(prop)
        self._require(fn, ops, prop)
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self.query.params.append(escaped + "%" if fn == "startswith" else "%" + escaped)
        # LIKE is case-insensitive for ASCII in SQLite, as directory matching is.
        return f"{sql} LIKE ? ESCAPE '\\'"

    def _require(self, op: str, allowed: set[str], prop: str) -> None:
        """Operators outside a property's default set are advanced queries (GRAPH.md §7.2)."""
        if op not in allowed:
            self.query.advanced_operators.append({"endswith": "endsWith", "startswith": "startsWith"}.get(op, op))

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
            self.query.params.append(issuer)
            return _by_rowid("SELECT u.seq FROM identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = ?")
        if issuer is None:
            raise errors.unsupported_filter("identities")
        self.query.params.extend([assigned, issuer])
        return _by_rowid("SELECT u.seq FROM identities i JOIN users u ON u.id = i.user_id"
                         " WHERE i.assigned_id = ? AND i.issuer = ?")


def _by_rowid(subquery: str) -> str:
    """Key lookups as a rowid list: SQLite then fetches those rows directly instead of
    walking the listing index and testing every user (a million-user scan per lookup)."""
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


def check_advanced(query: Query, advanced: bool) -> None:
    """Refuse what needs advanced query parameters when they are missing (GRAPH.md §7.2)."""
    if not advanced:
        if query.advanced_operators:
            raise errors.advanced_query_required(query.advanced_operators[0].split()[0])
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


def parse_orderby(text: str | None, *, advanced: bool, filtered: bool) -> str | None:
    if not text or not text.strip():
        return None
    parts = []
    for clause in text.split(","):
        words = clause.split()
        prop = canonical_property(words[0]) if words else None
        direction = words[1].lower() if len(words) > 1 else "asc"
        if prop not in _ORDERABLE or direction not in ("asc", "desc") or len(words) > 2:
            raise errors.unsupported_query("Sorting not supported for current query.")
        if (prop == "createdDateTime" or filtered) and not advanced:
            raise errors.unsupported_query("Sorting not supported for current query.")
        collate = " COLLATE NOCASE" if prop != "createdDateTime" else ""
        parts.append(f"{_ORDERABLE[prop]}{collate} {direction.upper()}")
    return ", ".join(parts)


__all__ = ["Query", "compile_filter", "check_advanced", "parse_select", "parse_top", "parse_orderby", "USER_PROPERTIES"]
