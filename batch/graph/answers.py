"""What an answer from Graph means: an httpx response (or one inner answer of a `$batch`) read
into a `GraphResult`, a transport failure put into words, and the verdict on an answer —
final, to be sent again (after how long), or ambiguous (GRAPH.md §3.3, §14).

The verdict's rules: 429 and 503 are sent again (after Retry-After); 500/502/504 are sent
again only for idempotent calls and leave any other call `ambiguous`; a connection that
failed before anything was sent is always safe to retry, one that dropped after sending
is retried only for idempotent calls."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from batch.graph.model import GraphResult
from batch.graph.retry import AMBIGUOUS_STATUS, parse_retry_after

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
    retry_after = parse_retry_after(result.headers.get("retry-after"), time.time())
    if status in (429, 503):
        return Verdict(result, retry=True, retry_after=retry_after)
    if status in AMBIGUOUS_STATUS:
        if idempotent:
            return Verdict(result, retry=True, retry_after=retry_after)
        result.ambiguous = True
    return Verdict(result)


def result_of(status: int, headers: dict[str, str], body: Any, attempts: int) -> GraphResult:
    """A `GraphResult` with Graph's error code and message lifted out of an error body."""
    code = message = None
    if status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
        elif isinstance(body, str) and body.strip():
            message = body.strip()[:500]
    return GraphResult(status, headers, body, attempts, error_code=code, error_message=message)


def failure_result(exc: httpx.HTTPError, attempts: int) -> GraphResult:
    """The result of a request that got no answer (status 0)."""
    return GraphResult(0, {}, None, attempts, error_code=type(exc).__name__, error_message=describe_failure(exc))


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
    "NOTHING_SENT", "Verdict", "describe_failure", "failure_result", "inner_body", "json_bytes", "judge",
    "lower_headers", "response_body", "result_of", "url_path",
]
