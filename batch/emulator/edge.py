"""What the HTTP edge checks before a request reaches Graph: the `Host` it was sent to, the
size of its body, and whether that body is JSON Graph could read.

Links the emulator writes (`@odata.nextLink`, `@odata.deltaLink`, `Location`, the OpenID
configuration, instance discovery) are built from the request's `Host`. A `Host` that is not
one of the names the emulator answers to is refused, never reflected: otherwise a page that
rebinds its own name to 127.0.0.1 could read the emulator's answers, and a client following
a next link would be sent to whatever host the request claimed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Microsoft Graph refuses requests over 4 MB: "The Microsoft Graph REST API has a 4 MB request
# limit. Anything above this will fail with the error message 'request too large (413)'"
# (section-post-pages, quoted in microsoftgraph/msgraph-sdk-php#477), confirmed by a Microsoft
# engineer in microsoftgraph/microsoft-graph-docs#85 ("there is a 4MB limit on the size of a
# request"). The same limit holds for $batch: it is one request.
MAX_BODY_BYTES = 4 * 1024 * 1024

# OData's JSON reader refuses structures nested deeper than its MaxNestingDepth quota
# (ODataMessageQuotas.MaxNestingDepth, 100 by default in Microsoft.OData.Core). Customer bodies
# and batch envelopes are a few levels deep; Python's own parser would give up near 1,000.
MAX_JSON_DEPTH = 100

BODY_NOT_JSON = ("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
                 "of valid JSON format.")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# The names the in-process emulator is reached by: `--target local` uses emulator.local, the
# tests http://emulator, and names under the special-use domains no public DNS answers for
# (RFC 6761: .test, .localhost; RFC 6762: .local), such as login.emulator.test.
IN_PROCESS_NAMES = LOOPBACK_NAMES | {"emulator", "emulator.local"}
IN_PROCESS_SUFFIXES = (".local", ".test", ".localhost")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HostPolicy:
    """The names (and, once bound, the port) the emulator answers to."""

    names: frozenset[str] = IN_PROCESS_NAMES
    port: int | None = None  # None: any port (in process there is no socket)
    default: str = "emulator.local"  # what a request without a Host header is taken to name
    suffixes: tuple[str, ...] = IN_PROCESS_SUFFIXES  # names ending so are ours too

    def authority(self, scheme: str, host: str | None) -> str | None:
        """`host:port` as links should carry it, or None when `host` is not one of ours."""
        if host is None or not host.strip():
            return self.default
        parsed = parse_host(host.strip())
        if parsed is None:
            return None
        name, port = parsed
        if name not in self.names and not (name.endswith(self.suffixes) and name[0] != "."):
            return None
        if self.port is not None and (port if port is not None else DEFAULT_PORTS.get(scheme)) != self.port:
            return None
        shown = f"[{name}]" if ":" in name else name
        return shown if port is None else f"{shown}:{port}"


def parse_host(host: str) -> tuple[str, int | None] | None:
    """`Host` as (lower-case name, port or None); None when it is not `name[:port]` or `[v6][:port]`."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket:
            return None
    elif host.count(":") > 1:
        return None
    else:
        name, colon, port_text = host.partition(":")
        rest = colon + port_text
    if rest and not (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit() and len(rest) <= 6):
        return None
    port = int(rest[1:]) if rest else None
    if port is not None and port > 65535:
        return None
    if not name or not all(c.isascii() and (c.isalnum() or c in ".-:_") for c in name):
        return None
    return name.lower(), port


def declared_length(headers: dict[str, str]) -> int | None:
    """The request's `Content-Length`, or None when it has none (or none that is a number)."""
    text = headers.get("content-length", "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def parse_json(body: bytes) -> tuple[Any, str | None]:
    """The JSON value of `body`, or the reason Graph would not read it."""
    try:
        value = json.loads(body)
        # A lone surrogate (`"\\ud800"`) parses but cannot be stored or sent back as UTF-8.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        return None, BODY_NOT_JSON
    if _deeper_than(value, MAX_JSON_DEPTH):
        return None, BODY_NOT_JSON
    return value, None


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
