"""Page tokens and page links: `$skiptoken` and `$deltatoken` carry the listing's state as
URL-safe base64 JSON, so that any emulator on the same store can serve the next page."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from . import errors
from .messages import GraphRequest

EXPIRED_PAGE_TOKEN = "The specified page token value has expired and can no longer be included in your request."


def encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def issue_token(state: dict[str, Any], now: float) -> str:
    """A page token for `state` that remembers when it was handed out (`t`), so that it can
    expire (`EmulatorSettings.page_token_ttl_seconds`)."""
    return encode_token({**state, "t": int(now)})


def bad_token() -> errors.GraphError:
    """Graph's answer to a page token it cannot use: expired and garbage tokens alike
    (GRAPH.md §15.3; code `Directory_ExpiredPageToken`, msgraph-sdk-java#368)."""
    return errors.GraphError(400, "Directory_ExpiredPageToken", EXPIRED_PAGE_TOKEN)


def decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(state, dict):
            raise ValueError
        return state
    except (ValueError, UnicodeError, RecursionError):
        raise bad_token() from None


def open_token(token: str, now: float, ttl: int) -> dict[str, Any]:
    """The state of a page token handed out less than `ttl` seconds ago; an older one, or
    one that never came from `issue_token` (no time, a time to come), is the expired-token 400."""
    state = decode_token(token)
    if "t" not in state:
        raise bad_token()
    age = now - token_int(state, "t")
    if not -1 <= age < ttl:  # -1: `t` is whole seconds
        raise bad_token()
    return state


def token_int(state: dict[str, Any], key: str, default: int = 0) -> int:
    """A position kept in a page token: a whole number SQLite can hold, or the bad-token 400
    (a token is opaque to clients, but nothing stops one from crafting it)."""
    value = state.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise bad_token()
    return value


def token_strings(state: dict[str, Any], key: str) -> list[str] | None:
    """A list of names or ids kept in a page token (`$select`, the delta id filter), or None."""
    value = state.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_token()
    return value


def next_link(request: GraphRequest, name: str, token: str) -> str:
    """The request's own URL with its query options, the page token replaced."""
    query = {k: v for k, v in request.query.items() if k not in ("$skiptoken",)}
    query[name] = token
    path = "/".join(quote(s, safe="@$") for s in request.segments)
    return f"{request.base_url}/{path}?" + urlencode(query, quote_via=quote, safe="$,()'")


def max_page_size(prefer: str | None, default: int) -> int:
    """`Prefer: odata.maxpagesize=N`, kept within 1..999."""
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer or "")
    return max(1, min(999, int(match.group(1)))) if match else default
