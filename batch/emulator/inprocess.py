"""The emulator in the client's own process: an httpx transport over the ASGI app, so that
code written for a real Graph endpoint runs unchanged (PRODUCT.md, `--target local`).

A dropped connection surfaces as `httpx.RemoteProtocolError`, as it would over a socket."""

from __future__ import annotations

import httpx

from .app import ConnectionDropped, EmulatorApp


class EmulatorTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self._asgi = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # dict vs MutableMapping scopes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDropped:
            raise httpx.RemoteProtocolError("Server disconnected without sending a complete response.",
                                            request=request) from None
