"""Listings: a collection read page by page, following `@odata.nextLink` (GRAPH.md §7).

A listing with a hole is worth nothing, so a page that cannot be fetched (after the client's
retries) ends the listing with `GraphRequestFailed` instead of skipping it. A next link whose
page token Graph no longer honours ends it with `PageTokenExpired`, so that the caller can
start the listing again (`batch.export.listing.restartable`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from batch.errors import GraphRequestFailed
from batch.graph.answers import url_path
from batch.graph.model import GraphCall, GraphResult

EXPIRED_PAGE_TOKEN = "Directory_ExpiredPageToken"


class PageTokenExpired(GraphRequestFailed):
    """Graph refused a next link's `$skiptoken` as expired (400 Directory_ExpiredPageToken,
    GRAPH.md §15.3): the listing can only start again from its first URL."""


async def follow_pages(request: Callable[[GraphCall], Awaitable[GraphResult]], url: str,
                       headers: Mapping[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
    """GET a collection through `request` and follow `@odata.nextLink`, yielding each page's
    body (its `value`, and on the last page `@odata.deltaLink` for delta queries). The headers
    (e.g. `ConsistencyLevel: eventual`) are sent again with every page. A next link to
    another host is refused (`request` raises ValueError: the token goes to Graph only)."""
    next_url: str | None = url
    sent = dict(headers or {})
    while next_url:
        try:
            result = await request(GraphCall("GET", next_url, headers=sent))
        except ValueError as exc:
            raise GraphRequestFailed("Following @odata.nextLink", status=0, code="ForeignNextLink",
                                     detail=str(exc)) from None
        if next_url != url and result.status == 400 and result.error_code == EXPIRED_PAGE_TOKEN:
            raise PageTokenExpired(f"GET {url_path(url)} (a next page)", status=400, code=result.error_code,
                                   detail=result.error_message)
        if not result.ok or not isinstance(result.body, dict):
            raise GraphRequestFailed(f"GET {url_path(next_url)}", status=result.status, code=result.error_code,
                                     detail=result.error_message)
        yield result.body
        link = result.body.get("@odata.nextLink")
        next_url = link if isinstance(link, str) and link else None


__all__ = ["EXPIRED_PAGE_TOKEN", "PageTokenExpired", "follow_pages"]
