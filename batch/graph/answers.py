"""What an answer from Graph means: an httpx response (or one inner answer of a `$batch`) read
into a `GraphResult`, a transport failure put into words, and the verdict on an answer —
final, to be sent again (after how long), or ambiguous (GRAPH.md §3.3, §14).

The verdict's rules: 429 and 503 are sent again (after Retry-After); 500/502/504 are sent
again only for idempotent calls and leave any other call `ambiguous`; a connection that
failed before anything was sent is always safe to retry, one that dropped after sending
is retried only for idempotent calls."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from batch.graph.model import GraphResult
from batch.graph.retry import AMBIGUOUS_STATUS, retry_after_of

NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                httpx.ProxyError)
"""Transport failures that happen before the request leaves: resending can never apply it twice."""


@dataclass
class Verdict:
    """One attempt's result, and whether and when to try again."""

    result: GraphResult
    retry: bool = False
    retry_after: float | None = None


def judge(result: GraphResult, idempotent: bool) -> Verdict:
    """Is this answer final, to be retried (and after how long), or ambiguous? An ambiguous
    answer is marked on `result` itself."""
    status = result.status
    retry_after = retry_after_of(result.headers)
    if status in (429, 503):
        return Verdict(result, retry=True, retry_after=retry_after)
    if status in AMBIGUOUS_STATUS:
        if idempotent:
            return Verdict(result, retry=True, retry_after=retry_after)
        result.ambiguous = True
    return Verdict(result)


MAX_SERVER_TEXT = 1024
"""Characters kept of an error message from the server (a code is kept to MAX_SERVER_CODE):
enough for any message Graph writes, not for a body that echoes a request."""
MAX_SERVER_CODE = 128
REDACTED = "[redacted]"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_MIN_SECRET = 4  # shorter values would blank out ordinary words; no password or token is this short


# What an answer must not bring back, asked for only when there is server text to clean (an
# error): gathering a request's passwords for every successful answer is work for nothing.
Secrets = Callable[[], Iterable[str]]


def result_of(status: int, headers: dict[str, str], body: Any, attempts: int,
              secrets: Secrets = tuple) -> GraphResult:
    """A `GraphResult` with Graph's error code and message lifted out of an error body, made
    safe to keep (`server_text`): `secrets()` gives what the request carried that the answer
    must not bring back into results.csv, the journal or the terminal (its token, its
    passwords, the client secret)."""
    code = message = page = None
    if status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
        elif is_html(headers, body):
            # A gateway's error page, not Graph's answer: its title says enough, and a kilobyte
            # of markup must not end up in results.csv (GRAPH.md §15.5).
            page, body = body, None
        elif isinstance(body, str) and body.strip():
            message = body
    kept = tuple(secrets()) if code is not None or message is not None or page is not None else ()
    if page is not None:  # its secrets go before its title is cut, so that no part of one is left
        message = gateway_page(status, page, kept)
    return GraphResult(status, headers, body, attempts,
                       error_code=None if code is None else server_text(code, kept, MAX_SERVER_CODE),
                       error_message=None if message is None else server_text(message, kept))


_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
MAX_TITLE = 80


def is_html(headers: Mapping[str, str], body: Any) -> bool:
    """An HTML page (by its Content-Type, or by its first tag when the type is missing)."""
    if not isinstance(body, str):
        return False
    if "html" in headers.get("content-type", "").lower():
        return True
    return body.lstrip()[:14].lower().startswith(("<html", "<!doctype html"))


def gateway_page(status: int, page: str, secrets: Iterable[str] = ()) -> str:
    """An HTML error page in one short line: `HTTP 502 from a gateway (HTML page: 502 Bad Gateway)`.
    The title's entities are read (`&amp;` is `&`) before its `secrets` are taken out."""
    title = _TITLE.search(page)
    named = server_text(html.unescape(title.group(1)), secrets, limit=MAX_TITLE) if title else ""
    return f"HTTP {status} from a gateway (HTML page{': ' + named if named else ''}), not an answer from Graph"


def server_text(text: str, secrets: Iterable[str] = (), limit: int = MAX_SERVER_TEXT) -> str:
    """Text a server sent (an error message or code, a body that is not JSON), fit to be kept:
    every secret replaced by `[redacted]` (before anything is cut, so that no part of one is
    left), control characters (a terminal's escape sequences) made spaces, runs of white space
    one space, and at most `limit` characters, an ellipsis marking the cut."""
    for secret in sorted(_forms(secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text


def _forms(secrets: Iterable[str]) -> set[str]:
    """Each secret as an echo may spell it: as sent, and escaped inside a JSON string (a body
    echoed as text), in the request's UTF-8 form and in \\u escapes."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < _MIN_SECRET:
            continue
        forms.add(secret)
        forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        forms.add(json.dumps(secret)[1:-1])
        forms.add(html.escape(secret))  # an HTML page's text (a gateway's, or one quoted in a message)
        forms.add(html.escape(secret, quote=False))
        forms.add(quote(secret, safe=""))  # a URL's
    return forms


def request_secrets(token: str | None, bodies: Iterable[Any], also: Iterable[str] = ()) -> tuple[str, ...]:
    """What the answer to a request must not bring back: the bearer token it carried, every
    password in its body (or the bodies of a `$batch`), and `also` (the client secrets)."""
    found = [token] if token else []
    for body in bodies:
        found += _passwords(body)
    found += [s for s in also if s]
    return tuple(found)


def _passwords(value: Any) -> list[str]:
    """The values of every `password` key of a request body, however deep."""
    if isinstance(value, dict):
        found = []
        for key, inner in value.items():
            if str(key).lower() == "password" and isinstance(inner, str):
                found.append(inner)
            else:
                found += _passwords(inner)
        return found
    if isinstance(value, list):
        return [p for item in value for p in _passwords(item)]
    return []


def failure_result(exc: httpx.HTTPError, attempts: int, secrets: Secrets = tuple) -> GraphResult:
    """The result of a request that got no answer (status 0). The transport's words may quote
    what it failed to parse (a server echoing the request into a malformed answer): the
    request's `secrets` go, as from an answer's."""
    return GraphResult(0, {}, None, attempts, error_code=type(exc).__name__,
                       error_message=server_text(describe_failure(exc), tuple(secrets())))


def lower_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def response_body(response: httpx.Response) -> Any:
    """A JSON body parsed, any other body as text, no body as None."""
    if not response.content:
        return None
    content_type = response.headers.get("content-type", "")
    if "json" in content_type or response.content[:1] in (b"{", b"["):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def inner_body(body: Any, headers: Mapping[str, str]) -> Any:
    """Inner $batch bodies are JSON objects, or strings (text, or JSON Graph sent as a string)."""
    if isinstance(body, str) and "json" in headers.get("content-type", ""):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def describe_failure(exc: httpx.HTTPError) -> str:
    """A transport failure in words, without the request (whose headers hold the token)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, NOTHING_SENT):
        return f"Could not connect ({text}); nothing was sent."
    return f"No answer ({text}); the request may or may not have been applied."


def url_path(url: str) -> str:
    """The path of a URL, for logs and messages."""
    return urlsplit(url).path or url


__all__ = [
    "MAX_SERVER_TEXT", "NOTHING_SENT", "REDACTED", "Verdict", "describe_failure", "failure_result", "gateway_page",
    "inner_body", "is_html",
    "json_bytes", "judge", "lower_headers", "Secrets", "request_secrets", "response_body", "result_of", "server_text",
    "url_path",
]
