"""One Graph call as the emulator sees it: `GraphRequest` in, `GraphResponse` out.

The HTTP layer (`app.py`) builds a request from the ASGI scope and `$batch` builds one per
inner request (`batching.py`), so that both reach the same routes with the same shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
# Graph's errors, and the token endpoint's answers, are plain JSON (GRAPH.md §3.3, §15.6).
ERROR_TYPE = "application/json"

# The query options Graph knows, which clients may send without the `$` (GRAPH.md §7).
QUERY_OPTIONS = ("filter", "select", "top", "orderby", "count", "search", "skiptoken", "skip", "expand", "deltatoken",
                 "format")


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

    @property
    def eventual(self) -> bool:
        """`ConsistencyLevel: eventual`, which advanced queries and $search need (GRAPH.md §7.2)."""
        return (self.header("consistencylevel") or "").lower() == "eventual"


@dataclass
class GraphResponse:
    status: int
    body: Any = None  # dict → JSON; str → text/plain; None → no body
    headers: dict[str, str] = field(default_factory=dict)

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
        if lowered.lstrip("$") in QUERY_OPTIONS:
            name = "$" + lowered.lstrip("$")
        out[name] = value
    return out
