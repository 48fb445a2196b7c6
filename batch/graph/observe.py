"""What `--verbose` shows: one `Exchange` per HTTP request the client sends (each inner answer
of a `$batch` too, and each token request), handed to an observer callback as it happens.

The library never prints: the CLI's observer writes the lines to stderr, and a run also
writes them to `run.log` in its folder. An exchange holds what helps to follow a run and to
quote to Microsoft support (method, path and query, status, `request-id`, duration, the
throttle headers) and never a header that carries a credential, a request body or an answer
body: those hold tokens, passwords and customer data."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from batch.graph.transport import TokenProvider

# Answer headers worth a line: Graph's request ids and throttling signals (GRAPH.md §9).
SHOWN_HEADERS = ("x-ms-throttle-limit-percentage", "x-ms-resource-unit", "x-ms-throttle-scope",
                 "x-ms-throttle-information", "retry-after")


@dataclass(frozen=True)
class Exchange:
    """One request and its answer. `kind` is `http` (a request on the wire), `item` (an inner
    request of a `$batch`, answered inside the envelope) or `token` (a token request: no
    path, `what` names the app). `status` 0 means no answer (`error` says why)."""

    kind: str
    method: str
    path: str
    status: int
    duration_ms: float | None = None
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # only SHOWN_HEADERS, lower-case
    error: str | None = None
    what: str = ""  # "$batch of 20", an inner item's id, the app of a token request

    def line(self) -> str:
        """The exchange as one line of text (`--verbose`, run.log)."""
        if self.kind == "token":
            head = f"token for app {self.what}"
            outcome = f"failed ({self.error})" if self.error else "obtained"
        else:
            head = f"{'  item ' + self.what + ': ' if self.kind == 'item' else ''}{self.method} {self.path}"
            if self.kind == "http" and self.what:
                head += f" ({self.what})"
            outcome = str(self.status) if self.status else f"no answer ({self.error or 'connection lost'})"
        parts = [f"{head} -> {outcome}"]
        if self.duration_ms is not None:
            parts.append(f"{self.duration_ms:.0f} ms")
        if self.request_id:
            parts.append(f"request-id {self.request_id}")
        parts += [f"{name} {value}" for name, value in self.headers.items()]
        return ", ".join(parts)


Observer = Callable[[Exchange], None]


def shown_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The throttle headers of an answer (any case), by their lower-case names."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    return {name: lower[name][:100] for name in SHOWN_HEADERS if name in lower}


def request_id_of(answer: Mapping[str, str], sent: Mapping[str, str] | None = None) -> str | None:
    """Graph's `request-id` (else the `client-request-id` it echoes, else the one we sent)."""
    lower = {str(k).lower(): str(v) for k, v in answer.items()}
    found = lower.get("request-id") or lower.get("client-request-id")
    if found is None and sent is not None:
        found = {str(k).lower(): str(v) for k, v in sent.items()}.get("client-request-id")
    return found[:100] if found else None


def shown_path(url: str, base_url: str) -> str:
    """A request's path and query as `--verbose` shows it: relative to the Graph base when it
    is under it. Graph URLs carry no credential; `$filter` values (customer data) stay, as
    the administrator needs them to follow the run."""
    if url.startswith(base_url):
        return url[len(base_url):] or "/"
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class ObservedTokenProvider:
    """A `TokenProvider` that reports each token request (not the cached answers) to an
    observer: which app, how long, obtained or failed (the error's type, never its text,
    which the run reports itself). The token itself is never reported."""

    def __init__(self, inner: TokenProvider, observer: Observer, app: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.observer = observer
        self.app = app
        self.clock = clock
        self._last: str | None = None

    async def token(self) -> str:
        start = self.clock()
        try:
            token = await self.inner.token()
        except BaseException as exc:
            if isinstance(exc, Exception):
                self.observer(Exchange("token", "POST", "", 0, (self.clock() - start) * 1000,
                                       error=type(exc).__name__, what=self.app))
            raise
        if token != self._last:  # a new token: it was requested, not served from the cache
            self._last = token
            self.observer(Exchange("token", "POST", "", 200, (self.clock() - start) * 1000, what=self.app))
        return token

    def invalidate(self) -> None:
        self.inner.invalidate()

    async def aclose(self) -> None:
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


__all__ = ["SHOWN_HEADERS", "Exchange", "ObservedTokenProvider", "Observer", "request_id_of", "shown_headers",
           "shown_path"]
