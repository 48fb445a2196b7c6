"""What the Graph client needs from outside itself, named here so that neither `batch.auth`
nor the client imports the other: the TLS settings of an httpx client, and the protocol of a
token source (implemented in `batch.auth`)."""

from __future__ import annotations

import os
import ssl
from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenProvider(Protocol):
    async def token(self) -> str:
        """A valid access token for Graph (cached; fetched or refreshed when needed)."""
        ...

    def invalidate(self) -> None:
        """Forget the current token: Graph refused it (401), so the next call fetches a new one."""
        ...


def tls_verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """httpx's `verify`: a CA bundle file or directory becomes an SSL context (httpx 0.28
    deprecates paths)."""
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return verify


__all__ = ["TokenProvider", "tls_verify"]
